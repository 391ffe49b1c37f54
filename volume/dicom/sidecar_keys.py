"""The rest of the BIDS sidecar dcm2niix writes, key by key, from one representative header.

:mod:`volume.dicom.bids` computes the fields preprocessing needs (timing, readout, phase
encoding); this module adds every other key dcm2niix (v1.0.2026) writes for GE, Philips,
Siemens (classic, mosaic, XA enhanced), Canon/Toshiba and UIH, each from the element dcm2niix
reads it from, with dcm2niix's documented rules (its ``BIDS/README.md`` and source). Where
dcm2niix is wrong, volume writes what the files say instead; ``docs/fmri-and-diffusion.md``
lists those places and ``tests/test_sidecar_peers.py`` names each.

Everything is read from the representative header (:func:`volume.dicom.bids.stack_header`: the
stack's first image; for enhanced files its own and the shared functional groups), never per
file, and nothing here is patient identity (:mod:`volume.phi` decides; the identity keys dcm2niix
writes, such as ProcedureStepDescription and ImageComments, are left out). Values follow BIDS'
units: seconds for times, as dcm2niix writes them.

Private elements are found by their private creator (:meth:`VendorElements.get`), wherever the
vendor placed its block, so another vendor's element with the same number is never read.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

from ._tags import TAGS
from .fastheader import element_value
from .ge import CYCLING_OFF, ge_diffusion_cycling
from .series import Stack
from .siemens import protocol_number
from .values import dicom_seconds, first_value, to_float, to_int, to_str, to_strings

#: The standard keywords read here (their tags and VRs are in :data:`volume.dicom._tags.TAGS`, so a
#: little-endian header is read without pydicom).
HEADER_KEYWORDS = (
    "AcquisitionDateTime", "AcquisitionDuration", "AcquisitionNumber", "ArterialSpinLabelingContrast", "ImagesInAcquisition",
    "ASLPulseTrainDuration", "BodyPartExamined", "EchoNumbers", "EchoTrainLength", "GradientEchoTrainLength",
    "ImagingFrequency", "InversionTime", "InversionTimes", "MagnetizationTransfer",
    "MRAcquisitionFrequencyEncodingSteps", "MRAcquisitionPhaseEncodingStepsInPlane",
    "MRAcquisitionPhaseEncodingStepsOutOfPlane", "MRAcquisitionType", "NominalCardiacTriggerDelayTime",
    "NumberOfAverages", "NumberOfKSpaceTrajectories", "NumberOfPhaseEncodingSteps", "ParallelAcquisitionTechnique",
    "ParallelReductionFactorOutOfPlane", "PartialFourierDirection", "PixelBandwidth", "PulseSequenceName",
    "ReceiveCoilName", "SAR", "ScanningSequence", "ScanOptions", "SequenceName", "SequenceVariant", "SliceThickness",
    "SpacingBetweenSlices", "Spoiling", "TransmitterFrequency", "TriggerTime", "VariableFlipAngleFlag",
)

#: Manufacturer (0008,0070) first letters -> the name dcm2niix writes (its ``dcmStrManufacturer``);
#: other manufacturers keep the DICOM text.
MANUFACTURER_NAMES = (
    ("SI", "Siemens"), ("CP", "Siemens"), ("GE", "GE"), ("HI", "Hitachi"), ("ME", "Mediso"), ("PH", "Philips"),
    ("TO", "Toshiba"), ("CA", "Canon"), ("UI", "UIH"), ("BR", "Bruker"), ("MR", "MRSolutions"),
    ("HY", "Hyperfine"),
)

UIH_FREQUENCY_IN_HZ = 9e6
"""UIH writes ImagingFrequency in Hz (128176031), not MHz (dcm2niix issue 225): above this it is Hz."""

#: Private creators of the blocks read here.
SIEMENS_MR_HEADER = "SIEMENS MR HEADER"
SIEMENS_CSA_HEADER = "SIEMENS CSA HEADER"
SIEMENS_SDS = "SIEMENS MR SDS 01"
SIEMENS_SDI = "SIEMENS MR SDI 02"
GE_ACQU = "GEMS_ACQU_01"
GE_IMAG = "GEMS_IMAG_01"
GE_PARM = "GEMS_PARM_01"
PHILIPS_MR_005 = "Philips MR Imaging DD 005"
PHILIPS_IMAGING_001 = "Philips Imaging DD 001"
UIH_IMAGE = "Image Private Header"

MS_TO_S = 1e-3
US_TO_S = 1e-6
NS_TO_S = 1e-9

#: Siemens protocol (ASCCONV) values copied as they are: key -> (sidecar key, scale, keep-when).
#: ``keep-when`` ``"pos"``: only a value above zero (Siemens leaves zeros out anyway).
SIEMENS_PROTOCOL_NUMBERS: tuple[tuple[str, str, float], ...] = (
    ("dAveragesDouble", "AveragesDouble", 1.0),  # only when > 1 (see _siemens_protocol_keys)
    ("sKSpace.lBaseResolution", "BaseResolution", 1.0),
    ("lDelayTimeInTR", "DelayTime", US_TO_S),
    ("sTXSPEC.asNucleusInfo[0].flReferenceAmplitude", "TxRefAmp", 1.0),
    ("sKSpace.dPhaseResolution", "PhaseResolution", 1.0),
    ("sKSpace.dPhaseOversamplingForDialog", "PhaseOversampling", 1.0),
    ("sFastImaging.lEchoSpacing", "VendorReportedEchoSpacing", US_TO_S),
    ("sPat.lRefLinesPE", "RefLinesPE", 1.0),
)

#: Siemens protocol text values: key -> sidecar key.
SIEMENS_PROTOCOL_TEXTS = (
    ("sCoilElementID.tCoilID", "ReceiveCoilName"),
    ("sCoilSelectMeas.sCoilStringForConversion", "ReceiveCoilActiveElements"),
    ("tSequenceFileName", "PulseSequenceDetails"),
    ("sWipMemBlock.tFree", "WipMemBlock"),
)

SIEMENS_CONSISTENCY = (
    "sProtConsistencyInfo.tMeasuredBaselineString", "sProtConsistencyInfo.tBaselineString",
    "sProtConsistencyInfo.ulConvFromVersion",
)
"""ConsistencyInfo, the complete software version: the measured baseline (VE), the baseline (VB),
the version the protocol was converted from (XA), the first found."""

SIEMENS_COIL_COMBINE = {1: "Sum of Squares", 2: "Adaptive Combine"}
"""``ucCoilCombineMode`` -> CoilCombinationMethod."""

SIEMENS_PAT_MODE = {1: "SENSE", 2: "GRAPPA"}
"""``sPat.ucPATMode`` -> MatrixCoilMode; dcm2niix writes ``None`` for every other mode (pure SMS,
CompressedSense) and when iPAT is off."""

SIEMENS_DIFFUSION_SCHEME = {1: "Bipolar", 2: "Monopolar"}
"""``sDiffusion.dsScheme`` -> DiffusionScheme (CMRR's ``ucReadOutMode`` counts the other way)."""

SIEMENS_SHIMS = (
    ("sGRADSPEC.asGPAData[0].lOffsetX", "sGRADSPEC.lOffsetX"),
    ("sGRADSPEC.asGPAData[0].lOffsetY", "sGRADSPEC.lOffsetY"),
    ("sGRADSPEC.asGPAData[0].lOffsetZ", "sGRADSPEC.lOffsetZ"),
    ("sGRADSPEC.alShimCurrent[0]", None), ("sGRADSPEC.alShimCurrent[1]", None), ("sGRADSPEC.alShimCurrent[2]", None),
    ("sGRADSPEC.alShimCurrent[3]", None), ("sGRADSPEC.alShimCurrent[4]", None),
)
"""ShimSetting: the first-order shims (newer protocols first, then older), then five second-order."""

PARTIAL_FOURIER_DIRECTIONS = frozenset({"PHASE", "FREQUENCY", "SLICE_SELECT", "COMBINATION"})

SPOILING_TYPES = {"RF": "RF", "GRADIENT": "GRADIENT", "RF_AND_GRADIENT": "COMBINED"}
"""Spoiling (0018,9016) -> SpoilingType (BIDS). dcm2niix writes COMBINED for RF as well (a slip in
its test of the value: ``strstr(RF) && strstr(RF)``)."""

ASL_LABELING_TYPES = (("PSEUDOCONTINUOUS", "PCASL"), ("CONTINUOUS", "CASL"), ("PULSED", "PASL"))
"""ArterialSpinLabelingContrast (0018,9250) or GE's (0043,10A3) -> ArterialSpinLabelingType (most
specific first: PSEUDOCONTINUOUS contains CONTINUOUS)."""

GE_ASL_TECHNIQUES = (("3D PULSED CONTINUOUS", "PCASL"), ("3D CONTINUOUS", "CASL"))
"""GE's ASLLabelingTechnique (0043,10A4) text -> ArterialSpinLabelingType."""

PCASL_RF_BLOCK_MS = 0.92 * 20.0
"""Duration of one labeling RF block of the 2D pCASL sequence ``ep2d_pcasl`` (LOFT lab), ms:
LabelingDuration is NumRFBlocks of them (dcm2niix's rule for this sequence)."""


# --- small helpers ------------------------------------------------------------------------------


def manufacturer_name(text: Any) -> str | None:
    """The manufacturer as dcm2niix names it (``Siemens``, ``GE``, ``Philips``...), None if unknown."""
    s = to_str(text).upper()
    for prefix, name in MANUFACTURER_NAMES:
        if s.startswith(prefix):
            return name
    return None


def _positive(value: Any, scale: float = 1.0) -> float | None:
    f = to_float(value)
    return f * scale if f is not None and f > 0 else None


def _whole(value: Any) -> int | None:
    f = to_float(value)
    return int(round(f)) if f is not None and f > 0 else None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        parts = [to_str(v) for v in value]
        text = "\\".join(parts)
    else:
        text = to_str(value)
    return text or None


def _tokens(value: Any) -> list[str]:
    """The values of a multi-valued CS (a list or ``A\\B`` text), upper case."""
    if value is None:
        return []
    if isinstance(value, str):
        return [t.strip().upper() for t in value.split("\\") if t.strip()]
    return [t.strip().upper() for t in to_strings(value) if t.strip()]


def _first(*values: Any) -> Any:
    for v in values:
        if v is not None and v != "":
            return v
    return None


def _time_of_day(seconds: float) -> str:
    """Seconds since midnight as ``HH:MM:SS.ffffff`` (the sidecar's AcquisitionTime format)."""
    hh, rest = divmod(float(seconds), 3600.0)
    mm, ss = divmod(rest, 60.0)
    return f"{int(hh):02d}:{int(mm):02d}:{ss:09.6f}"


class VendorElements:
    """A vendor's private elements in a header, found by private creator.

    ``header`` is a :class:`volume.dicom.bids.Header`. A private element (gggg,xxee) belongs to the
    block whose creator (gggg,00xx) names the vendor's dictionary; the block number differs from
    file to file (anonymizers and converters move them), so it is looked up in each dataset.
    """

    def __init__(self, header: Any) -> None:
        self.header = header
        self._blocks: dict[tuple[int, int], dict[str, int]] = {}
        self._creators: dict[int, dict[int, list[int]]] = {}
        self._searched: list[Any] | None = None

    def _datasets(self) -> list[Any]:
        """The header's top level, its frame's functional groups and everything nested in them and
        in the top level (:class:`volume.dicom.bids.Header`'s order), walked once per stack."""
        if self._searched is None:
            top = self.header.ds
            found = [top]
            for group in getattr(self.header, "groups", []):
                found.append(group)
                found.extend(_nested(group, FUNCTIONAL_GROUPS))
            found.extend(_nested(top, FUNCTIONAL_GROUPS))
            self._searched = found
        return self._searched

    def _block(self, ds: Any, group: int) -> dict[str, int]:
        key = (id(ds), group)
        found = self._blocks.get(key)
        if found is None:
            found = {}
            for tag in self._creator_tags(ds).get(group, ()):
                owner = to_str(element_value(ds, tag, "LO")).upper()
                if owner:
                    found.setdefault(owner, tag & 0xFF)
            self._blocks[key] = found
        return found

    def _creator_tags(self, ds: Any) -> dict[int, list[int]]:
        """The tags (gggg,0010-00FF) of ``ds`` by group, in its order: where creators may be (one
        pass over a dataset's tags for all its groups)."""
        found = self._creators.get(id(ds))
        if found is None:
            found = {}
            keys = ds.keys() if hasattr(ds, "keys") else (e.tag for e in ds)
            for tag in keys:
                tag = int(tag)
                if 0x10 <= (tag & 0xFFFF) <= 0xFF:
                    found.setdefault(tag >> 16, []).append(tag)
            self._creators[id(ds)] = found
        return found

    def get(self, group: int, creator: str, element: int, vr: str) -> Any:
        """Element ``element`` (0x00-0xFF) of ``creator``'s block in ``group`` (first found), or None."""
        want = creator.upper()
        for ds in self._datasets():
            block = self._block(ds, group).get(want)
            if block is None:
                continue
            value = element_value(ds, (group << 16) | (block << 8) | element, vr)
            if value is not None and value != "":
                return value
        return None


#: Sequences whose items describe other images (references, original attributes, icons): their
#: values are never this image's (dcm2niix skips the same ones).
SKIPPED_SEQUENCES = frozenset({
    0x00081111, 0x00081115, 0x00081140, 0x00082112, 0x00089092, 0x00880200, 0x04000561,
    0x52009229, 0x52009230,  # the functional groups: searched for the representative frame only
})


FUNCTIONAL_GROUPS = frozenset({0x52009229, 0x52009230})
"""An enhanced file's shared and per-frame functional groups (searched for one frame only)."""

NESTING_DEPTH = 6
"""Sequences nested deeper than this are not searched."""

UNKNOWN_VRS = frozenset({"UN", None})
"""VRs of elements whose value may still turn out to be a sequence (pydicom converts a private
UN element by its dictionary when it is first read)."""

ITEM_TAG_BYTES = b"\xfe\xff\x00\xe0"
"""The Item tag (FFFE,E000), little endian: the first bytes of a sequence's value."""


def _sequences(ds: Any, skipped: frozenset[int]) -> list[Any]:
    """The sequence values of ``ds``'s elements in file order, those of ``skipped`` left out,
    without converting the other elements (pydicom converts each element it hands out by key;
    ``values()`` gives them as read: a sequence of defined length is still raw bytes then)."""
    found = []
    for elem in ds.values() if hasattr(ds, "values") else ds:  # pydicom's Dataset; volume's RawDataset
        vr = getattr(elem, "VR", None)
        if int(elem.tag) in skipped:
            continue
        raw = elem.value
        if not isinstance(raw, bytes):
            if vr == "SQ":
                found.append(raw)
            continue
        if vr != "SQ" and not (vr in UNKNOWN_VRS and raw.startswith(ITEM_TAG_BYTES)):
            continue  # not a sequence: left unconverted
        try:
            elem = ds[elem.tag]  # pydicom parses the sequence (a private UN one by its dictionary)
        except Exception:  # noqa: BLE001 - a value its dictionary cannot read is no sequence
            continue
        if elem.VR == "SQ":
            found.append(elem.value)
    return found


def _nested(ds: Any, skipped: frozenset[int] = SKIPPED_SEQUENCES, depth: int = 0) -> Iterator[Any]:
    """The datasets nested in ``ds``'s sequences (depth first), those of ``skipped`` left out."""
    if depth > NESTING_DEPTH:
        return
    try:
        sequences = _sequences(ds, skipped)
    except Exception:  # noqa: BLE001 - a malformed sequence is a missing one
        return
    for sequence in sequences:
        for item in sequence or ():
            yield item
            yield from _nested(item, skipped, depth + 1)


class Lookup:
    """Where one stack's keys are read: its header (standard keywords: the top level, then an
    enhanced file's own frame group and shared group, then nested sequences, as vendors nest them:
    Philips keeps enhanced attributes in its private (2005,140F) items even in classic files), its
    vendor's private elements, and the scan's top-level values (``acquisition``)."""

    def __init__(self, stack: Stack, vendor: str, header: Any) -> None:
        self.stack = stack
        self.vendor = vendor
        self.header = header
        self.private = VendorElements(header)
        self.acquisition: Mapping[str, Any] = stack.first.acquisition
        self.enhanced = stack.first.frame is not None and not stack.first.mosaic
        self._searched: list[Any] | None = None

    def datasets(self) -> list[Any]:
        """The datasets a standard keyword is looked up in, in order."""
        if self._searched is None:
            top = self.header.ds
            found = [top]
            for group in getattr(self.header, "groups", []):
                found.append(group)
                found.extend(_nested(group))
            found.extend(_nested(top))
            self._searched = found
        return self._searched

    def _holding(self, keyword: str) -> list[Any]:
        """The datasets (in search order) that hold ``keyword``'s element, so a lookup asks only
        those (a stack's header has a few datasets and a sidecar asks a few dozen keywords: asking
        each dataset costs less than indexing every tag of them)."""
        known = TAGS.get(keyword)
        if not known:
            return self.datasets()
        tag = known[0]
        return [ds for ds in self.datasets() if tag in ds]

    def get(self, keyword: str) -> Any:
        """A standard element's value (first found, empty values skipped), or None."""
        return first_value(self._holding(keyword), keyword)

    def missing(self, keyword: str) -> bool:
        """True when the scan found no top-level ``keyword`` (the sidecar writes it from there otherwise)."""
        return self.acquisition.get(keyword) in (None, "", [])


# --- the keys, vendor by vendor -------------------------------------------------------------------


def more_fields(stack: Stack, vendor: str, header: Any, protocol: Mapping[str, str], csa: Mapping[str, Any],
                fields: Mapping[str, Any], *, phase_positive: int | None = None) -> dict[str, Any]:
    """Every sidecar key of an MR stack that :func:`volume.dicom.bids.sidecar_fields` did not set.

    Parameters
    ----------
    stack
        An MR stack; ``header`` its representative header (:func:`volume.dicom.bids.stack_header`).
    vendor
        ``SIEMENS``, ``GE``, ``PHILIPS``, ``CANON``, ``TOSHIBA``, ``UIH`` or the DICOM text.
    protocol, csa
        Siemens' protocol (ASCCONV) and CSA image header (empty for other vendors).
    fields
        What ``sidecar_fields`` found so far (RepetitionTime, MultibandAccelerationFactor,
        BandwidthPerPixelPhaseEncode, ReconMatrixPE...): never overwritten.
    phase_positive
        The phase-encoding polarity found by ``sidecar_fields`` (1, 0 or None).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns as it converts values, quoting them: never on stderr
        return _more_fields(stack, vendor, header, protocol, csa, fields, phase_positive)


def _more_fields(stack: Stack, vendor: str, header: Any, protocol: Mapping[str, str], csa: Mapping[str, Any],
                 fields: Mapping[str, Any], phase_positive: int | None) -> dict[str, Any]:
    look = Lookup(stack, vendor, header)
    out: dict[str, Any] = {}
    out.update(_enhanced_fallbacks(look))
    out.update(_general(look, protocol))
    if vendor == "SIEMENS":
        general_mt = out.get("MTState")
        out.update(_siemens(look, protocol, csa, stack))
        if general_mt is not None:  # the DICOM element (0018,9020) outranks the protocol's ucMTC
            out["MTState"] = general_mt
    elif vendor == "GE":
        out.update(_ge(look, phase_positive))
    elif vendor == "PHILIPS":
        out.update(_philips(look))
    elif vendor == "UIH":
        out.update(_uih(look, fields))
    out.update(_asl(look, protocol, fields))
    merged = {**out, **fields}
    out.update(_derived(look, merged))
    return {k: v for k, v in out.items() if k not in fields and v is not None}


def _enhanced_fallbacks(look: Lookup) -> dict[str, Any]:
    """The MR fields the scan reads from the top level, from wherever else the file keeps them:
    an enhanced file's functional groups (TransmitterFrequency for ImagingFrequency), Siemens XA's
    private copies (0021,105A-C), AcquisitionDateTime for AcquisitionTime."""
    out: dict[str, Any] = {}
    vendor = look.vendor

    def fill(keyword: str, key: str, value: Any) -> None:
        if look.missing(keyword) and value is not None and value != "":
            out[key] = value

    frequency = _positive(_first(look.get("ImagingFrequency"), look.get("TransmitterFrequency")))
    fill("ImagingFrequency", "ImagingFrequency", frequency)
    fill("SliceThickness", "SliceThickness", _positive(look.get("SliceThickness")))
    fill("SpacingBetweenSlices", "SpacingBetweenSlices", _positive(look.get("SpacingBetweenSlices")))
    fill("PixelBandwidth", "PixelBandwidth", _positive(look.get("PixelBandwidth")))
    fill("MRAcquisitionType", "MRAcquisitionType", _text(look.get("MRAcquisitionType")))
    fill("BodyPartExamined", "BodyPart", _text(look.get("BodyPartExamined")))
    siemens = vendor == "SIEMENS"
    scanning = _first(look.get("ScanningSequence"),
                      look.private.get(0x0021, SIEMENS_SDS, 0x5A, "CS") if siemens else None)
    variant = _first(look.get("SequenceVariant"),
                     look.private.get(0x0021, SIEMENS_SDS, 0x5B, "CS") if siemens else None)
    fill("ScanningSequence", "ScanningSequence", _text(scanning))
    fill("SequenceVariant", "SequenceVariant", _text(variant))
    echo_train = _whole(look.get("EchoTrainLength"))
    gradient_train = _whole(look.get("GradientEchoTrainLength"))
    if gradient_train and gradient_train > 1:  # dcm2niix: the gradient echo train wins when > 1
        echo_train = gradient_train
    if echo_train and echo_train > 1:
        fill("EchoTrainLength", "EchoTrainLength", echo_train)
    inversion = _positive(_first(look.get("InversionTime"), look.get("InversionTimes")), MS_TO_S)
    fill("InversionTime", "InversionTime", inversion)
    if look.enhanced or look.missing("AcquisitionTime"):
        # the instance's own time: an enhanced file's frames carry FrameAcquisitionDateTime too, but
        # AcquisitionTime is the file's (0008,0032), else the time of its AcquisitionDateTime
        top = look.header.ds
        seconds = dicom_seconds(_first(top.get("AcquisitionTime"), top.get("AcquisitionDateTime")))
        if seconds is not None:
            out["AcquisitionTime"] = _time_of_day(seconds)
    if look.stack.first.echo_number is None:
        echo = _whole(look.get("EchoNumbers"))
        if echo:
            out["EchoNumber"] = echo
    if look.missing("ReceiveCoilName") and vendor != "SIEMENS":
        coil = _text(look.get("ReceiveCoilName"))
        if coil:
            out["ReceiveCoilName"] = coil
    return out


def _transfer_and_spoiling(look: Lookup) -> dict[str, Any]:
    """MTState, SpoilingState and SpoilingType, from the standard elements (a spoiled sequence
    variant, SP, says spoiled when Spoiling is absent)."""
    out: dict[str, Any] = {}
    mt = to_str(look.get("MagnetizationTransfer")).upper()
    if mt in ("OFF_RESONANCE", "ON_RESONANCE"):
        out["MTState"] = True
    elif mt == "NONE":
        out["MTState"] = False
    spoiling = to_str(look.get("Spoiling")).upper()
    if spoiling == "NONE":
        out["SpoilingState"] = False
    elif spoiling in SPOILING_TYPES:
        out.update(SpoilingState=True, SpoilingType=SPOILING_TYPES[spoiling])
    elif "SP" in _tokens(_first(look.get("SequenceVariant"), look.acquisition.get("SequenceVariant"))):
        out["SpoilingState"] = True
    return out


def _general(look: Lookup, protocol: Mapping[str, str]) -> dict[str, Any]:
    """Keys every vendor writes from standard elements."""
    out: dict[str, Any] = {}
    vendor = look.vendor
    name = manufacturer_name(look.acquisition.get("Manufacturer"))
    if name:
        out["Manufacturer"] = name
    frequency = to_float(look.acquisition.get("ImagingFrequency"))
    if vendor == "UIH" and frequency is not None and frequency > UIH_FREQUENCY_IN_HZ:
        out["ImagingFrequency"] = frequency / 1e6
    options = _first(look.get("ScanOptions"),
                     look.private.get(0x0021, SIEMENS_SDS, 0x5C, "CS") if vendor == "SIEMENS" else None)
    if options is not None:
        out["ScanOptions"] = _text(options)
    pulse_name = _text(look.get("PulseSequenceName"))
    if vendor == "GE":
        pulse_name = pulse_name or _text(look.private.get(0x0019, GE_ACQU, 0x9C, "LO"))
    sequence_name = _text(look.get("SequenceName")) or pulse_name
    if look.missing("SequenceName") and sequence_name:
        out["SequenceName"] = sequence_name
    if pulse_name:
        out["PulseSequenceName"] = pulse_name
    number = _whole(look.get("AcquisitionNumber"))
    if number:
        out["AcquisitionNumber"] = number
    sar = _positive(look.get("SAR"))
    if sar:
        out["SAR"] = sar
    averages = to_float(look.get("NumberOfAverages"))
    if averages is not None and averages > 1:
        out["NumberOfAverages"] = averages
    steps = _whole(_first(look.get("NumberOfPhaseEncodingSteps"), look.get("MRAcquisitionPhaseEncodingStepsInPlane")))
    if steps is None and vendor == "SIEMENS":
        steps = _whole(protocol_number(protocol, "sKSpace.lPhaseEncodingLines"))
    if steps:
        out["PhaseEncodingSteps"] = steps
    for keyword, key in (("MRAcquisitionFrequencyEncodingSteps", "FrequencyEncodingSteps"),
                         ("MRAcquisitionPhaseEncodingStepsOutOfPlane", "PhaseEncodingStepsOutOfPlane"),
                         ("NumberOfKSpaceTrajectories", "NumberOfKSpaceTrajectories")):
        value = _whole(look.get(keyword))
        if value:
            out[key] = value
    technique = _text(look.get("ParallelAcquisitionTechnique"))
    if technique:
        out["ParallelAcquisitionTechnique"] = technique
    direction = to_str(look.get("PartialFourierDirection")).upper()
    if direction in PARTIAL_FOURIER_DIRECTIONS:
        out["PartialFourierDirection"] = direction
    if vendor != "UIH":  # UIH's AcquisitionDuration is its readout time (see _uih)
        duration = _positive(look.get("AcquisitionDuration"))
        if duration is None and vendor == "GE":
            duration = _positive(look.private.get(0x0019, GE_ACQU, 0x5A, "FL"), US_TO_S)
        if duration:
            out["AcquisitionDuration"] = duration
    if vendor != "SIEMENS":  # Siemens: the protocol's sPat.lAccelFact3D (see _siemens)
        factor = to_float(look.get("ParallelReductionFactorOutOfPlane"))
        if factor is not None and factor >= 1:
            out["ParallelReductionFactorOutOfPlane"] = factor
    out.update(_transfer_and_spoiling(look))
    coil = _text(look.get("ReceiveCoilName"))
    if coil and vendor != "SIEMENS":
        out["CoilString"] = coil
    image_type = [t for v in _tokens(look.acquisition.get("ImageType")) for t in v.split("_")]
    correction = _nonlinear_correction(image_type)
    if correction is not None:
        out["NonlinearGradientCorrection"] = correction
    if is_derived(_tokens(look.acquisition.get("ImageType"))):
        out["RawImage"] = False
    if to_str(look.get("VariableFlipAngleFlag")).upper().startswith("Y"):
        out["VariableFlipAngleFlag"] = True  # dcm2niix writes only YES
    return out


DERIVED_MAPS = ("ADC", "TRACEW", "TRACE", "FA")
"""ImageType values of maps a scanner computed: the image is derived when one stands between two
other values (dcm2niix's test, on the values joined by underscores: ``_ADC_``)."""


def is_derived(image_type: list[str]) -> bool:
    """True when ImageType says the pixels were derived, not acquired: a ``DERIVED`` value (first
    value by the standard; dcm2niix looks anywhere), or a derived map's name among the middle values.
    dcm2niix then writes ``RawImage`` false (BIDS: "whether the image is raw data")."""
    joined = "_".join(image_type)
    return "DERIVED" in joined or any(f"_{name}_" in joined for name in DERIVED_MAPS)


def _nonlinear_correction(tokens: list[str]) -> bool | None:
    """NonlinearGradientCorrection from ImageType: ``DIS2D``/``DIS3D`` (distortion corrected) true,
    ``ND`` (not distortion corrected) false (dcm2niix tests ND last)."""
    value = None
    if "DIS2D" in tokens or "DIS3D" in tokens:
        value = True
    if "ND" in tokens:
        value = False
    return value


def _siemens(look: Lookup, protocol: Mapping[str, str], csa: Mapping[str, Any], stack: Stack) -> dict[str, Any]:
    out: dict[str, Any] = {}
    private = look.private
    out.update(_siemens_protocol_keys(protocol, stack))
    text_type = private.get(0x0021, SIEMENS_SDI, 0x75, "CS")
    if text_type is not None:
        types = [t for v in _tokens(text_type) for t in v.split("_")]
        out["ImageTypeText"] = types
        image_type = [t for v in _tokens(look.acquisition.get("ImageType")) for t in v.split("_")]
        correction = _nonlinear_correction(image_type + types)
        if correction is not None:
            out["NonlinearGradientCorrection"] = correction
    orientation = _text(private.get(0x0051, SIEMENS_MR_HEADER, 0x0E, "LO"))
    if orientation:
        out["ImageOrientationText"] = orientation
    elements = out.get("ReceiveCoilActiveElements") or _text(private.get(0x0021, SIEMENS_SDI, 0x4F, "LO"))
    if elements:
        out["ReceiveCoilActiveElements"] = elements
    coil = _first(_text(private.get(0x0051, SIEMENS_MR_HEADER, 0x0F, "LO")), _text(look.get("ReceiveCoilName")))
    if coil and coil != elements:
        out["CoilString"] = coil
    if "ReceiveCoilName" not in out and coil and look.missing("ReceiveCoilName"):
        out["ReceiveCoilName"] = coil
    table = _first(csa.get("ImaRelTablePosition"), private.get(0x0019, SIEMENS_MR_HEADER, 0x14, "IS"),
                   private.get(0x0021, SIEMENS_SDS, 0x05, "IS"))
    position = [to_float(v) for v in (table or [])] if isinstance(table, (list, tuple)) else []
    if len(position) == 3 and all(v is not None for v in position):
        out["TablePosition"] = [position[0], position[1], -position[2]]  # dcm2niix: z from head to feet
    dwell = _positive(_first((csa.get("RealDwellTime") or [None])[0], private.get(0x0019, SIEMENS_MR_HEADER, 0x18, "IS"),
                             private.get(0x0021, SIEMENS_SDI, 0x42, "IS")), NS_TO_S)
    if dwell:
        out["DwellTime"] = dwell
    if not protocol:
        return out
    mode = protocol_number(protocol, "sPat.ucPATMode")
    accel = protocol_number(protocol, "sPat.lAccelFactPE")
    out["MatrixCoilMode"] = SIEMENS_PAT_MODE.get(int(mode), "None") if accel and accel > 0 and mode else "None"
    return out


def _siemens_protocol_keys(protocol: Mapping[str, str], stack: Stack) -> dict[str, Any]:
    """Keys from the Siemens protocol (the CSA series header's ASCCONV, or XA's 0021,1019)."""
    out: dict[str, Any] = {}
    if not protocol:
        return out
    for key, name, scale in SIEMENS_PROTOCOL_NUMBERS:
        value = _positive(protocol_number(protocol, key), scale)
        if value is None or (name == "AveragesDouble" and value <= 1):
            continue
        out[name] = int(value) if name in ("BaseResolution", "RefLinesPE") else value
    if (protocol_number(protocol, "sKSpace.uc2DInterpolation") or 0) > 0:
        out["Interpolation2D"] = 1
    name_of_protocol = to_str(protocol.get("tProtocolName")).strip('"')
    if name_of_protocol and not stack.first.acquisition.get("ProtocolName"):
        out["ProtocolName"] = name_of_protocol  # removed from the DICOM header, kept in the protocol
    for key, name in SIEMENS_PROTOCOL_TEXTS:
        text = to_str(protocol_text(protocol, key)).strip('"')
        if text:
            out[name] = text
    consistency = _first(*(to_str(protocol.get(key)).strip('"') for key in SIEMENS_CONSISTENCY))
    if consistency:
        out["ConsistencyInfo"] = consistency
    combine = protocol_number(protocol, "ucCoilCombineMode")
    if combine is not None and int(combine) in SIEMENS_COIL_COMBINE:
        out["CoilCombinationMethod"] = SIEMENS_COIL_COMBINE[int(combine)]
    if protocol_number(protocol, "sPrepPulses.ucMTC") == 1:
        out["MTState"] = True
    factor = protocol_number(protocol, "sPat.lAccelFact3D")
    if factor is not None and factor >= 1:
        out["ParallelReductionFactorOutOfPlane"] = factor
    shims = [_first(protocol_number(protocol, new), protocol_number(protocol, old) if old else None)
             for new, old in SIEMENS_SHIMS]
    if shims[0]:
        out["ShimSetting"] = [v if v is not None else 0.0 for v in shims]  # Siemens leaves zeros out
    if stack.diffusion is not None:
        scheme = int(protocol_number(protocol, "sDiffusion.dsScheme") or 0)
        if scheme == 0:
            readout = int(protocol_number(protocol, "ucReadOutMode") or 0)
            scheme = 3 - readout if readout in (1, 2) else 0
        if scheme in SIEMENS_DIFFUSION_SCHEME:
            out["DiffusionScheme"] = SIEMENS_DIFFUSION_SCHEME[scheme]
    return out


def _ge(look: Lookup, phase_positive: int | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    private = look.private
    internal = _text(private.get(0x0019, GE_ACQU, 0x9E, "LO"))
    if internal:
        out["InternalPulseSequenceName"] = internal
    if phase_positive in (0, 1):
        out["PhaseEncodingPolarityGE"] = "Unflipped" if phase_positive else "Flipped"
    shims = [to_float(private.get(0x0043, GE_PARM, element, "SS")) for element in (0x02, 0x03, 0x04)]
    if all(v is not None for v in shims) and any(shims):
        out["ShimSetting"] = shims
    reuse = _text(private.get(0x0043, GE_PARM, 0x95, "LO"))
    if reuse:
        out["PrescanReuseString"] = reuse
    table = private.get(0x0043, GE_PARM, 0xB2, "LO")
    values = table if isinstance(table, (list, tuple)) else []
    z = to_float(values[2]) if len(values) > 2 else None
    if z is not None and abs(z) < 1e6:  # the table position along z (mm)
        out["TablePosition"] = [0.0, 0.0, z]
    asset = private.get(0x0043, GE_PARM, 0x83, "DS")
    factors = [to_float(v) for v in asset] if isinstance(asset, (list, tuple)) else []
    if len(factors) > 1 and factors[1] and factors[1] > 0:
        out["ParallelReductionFactorOutOfPlane"] = 1.0 / factors[1]
    pulse = to_str(private.get(0x0019, GE_ACQU, 0x9C, "LO")).lower()
    if ("epi2" in pulse and "pepolar" not in pulse) or internal == "EPI2":
        for element, key in ((0xE0, "NumberOfDiffusionDirectionGE"), (0xDF, "NumberOfDiffusionT2GE")):
            value = _whole(private.get(0x0019, GE_ACQU, element, "DS"))
            if value:
                out[key] = value
        cycling, tensor = ge_diffusion_cycling(look.header)
        if tensor and tensor > 0:
            out["TensorFileNumberGE"] = tensor
        if cycling != CYCLING_OFF:
            out["DiffGradientCyclingGE"] = cycling
    excitations = to_float(private.get(0x0027, GE_IMAG, 0x62, "FL"))
    if excitations is not None and excitations > 1:
        out["NumberOfExcitations"] = excitations
    zip_factor = _ge_zip(look)
    if zip_factor:
        out["Interpolation3D"] = zip_factor
    sensing = private.get(0x0043, GE_PARM, 0xB7, "LO")  # compressed sensing parameters, the factor first
    factor = to_float(sensing[0] if isinstance(sensing, (list, tuple)) and sensing else sensing)
    if factor is not None and factor > 1:
        out["CompressedSensingFactor"] = factor
    out.update(_deep_learning(_text(private.get(0x0043, GE_PARM, 0xCA, "LO"))))
    return out


GE_RELA = "GEMS_RELA_01"


def _ge_zip(look: Lookup) -> int | None:
    """GE's ZIP factor (slices interpolated through the plane, e.g. ZIP2): when the images of an
    acquisition (0020,1002) are not GE's locations (0021,104F), SliceThickness over SpacingBetweenSlices,
    rounded, above 1 (dcm2niix issue 373)."""
    images = to_int(look.get("ImagesInAcquisition"))
    locations = to_int(look.private.get(0x0021, GE_RELA, 0x4F, "SS"))
    thickness, spacing = to_float(look.get("SliceThickness")), to_float(look.get("SpacingBetweenSlices"))
    if not images or not locations or images == locations or not thickness or not spacing or spacing <= 0:
        return None
    factor = int(thickness / spacing + 0.5)  # rounded half up, as dcm2niix
    return factor if factor > 1 else None


def _deep_learning(details: str | None) -> dict[str, Any]:
    """DeepLearning and DeepLearningDetails: a reconstruction by a trained network, as the vendor names it
    (GE's deep learning parameters 0043,10CA, e.g. ``0.75\\High``; Philips' ``CS_SENSE_AI``)."""
    return {"DeepLearning": True, "DeepLearningDetails": details} if details else {}


PHILIPS_DEEP_LEARNING = (0x20051110, 0x20050011)
"""Philips' reconstruction name (2005,1110: ``CS_SENSE_AI`` for its deep-learning reconstruction) and
the creator of its block, a Philips one (dcm2niix reads it there)."""


def _philips(look: Lookup) -> dict[str, Any]:
    out: dict[str, Any] = {}
    ds = look.header.ds
    reconstruction = _text(element_value(ds, PHILIPS_DEEP_LEARNING[0], "CS"))
    if (reconstruction and "_AI" in reconstruction.upper()
            and to_str(element_value(ds, PHILIPS_DEEP_LEARNING[1], "LO")).upper().startswith("PHILIPS")):
        out.update(_deep_learning(reconstruction))
    prepulse = _positive(look.private.get(0x2001, PHILIPS_IMAGING_001, 0x1B, "FL"), MS_TO_S)
    if prepulse:
        out["InversionTime"] = prepulse  # PrepulseDelay (2001,101B): Philips' inversion delay, before 0018,0082
    table = to_float(look.private.get(0x2005, PHILIPS_MR_005, 0x3C, "FL"))
    if table is not None and abs(table) < 1e6:
        out["TablePosition"] = [0.0, 0.0, -table]  # dcm2niix: (2005,143C), z from head to feet
    trigger = _positive(_first(look.get("TriggerTime"), look.get("NominalCardiacTriggerDelayTime")))
    if trigger:
        out["TriggerDelayTime"] = trigger  # ms, as dcm2niix writes it
    return out


def _uih(look: Lookup, fields: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    private = look.private
    displayed = _text(private.get(0x0065, UIH_IMAGE, 0x05, "SH"))
    if displayed:
        out["PhaseEncodingDirectionDisplayed"] = displayed
    parallel = to_str(private.get(0x0065, UIH_IMAGE, 0x0D, "SH"))
    match = re.search(r":\s*(\d+(?:\.\d+)?)", parallel)
    if match and float(match.group(1)) > 0:
        out["ParallelReductionFactorInPlane"] = float(match.group(1))
    bandwidth = _positive(element_value(look.header.ds, 0x00191028, "FD") if look.header.ds is not None else None)
    recon = fields.get("ReconMatrixPE")
    if bandwidth and recon:
        ees = 1.0 / (bandwidth * recon)
        out.update(BandwidthPerPixelPhaseEncode=bandwidth, EffectiveEchoSpacing=ees, TotalReadoutTime=ees * (recon - 1))
    else:
        duration = _positive(look.get("AcquisitionDuration"))
        if duration:
            out["TotalReadoutTime"] = duration * MS_TO_S  # dcm2niix: UIH's readout time, in ms
    return out


def _asl(look: Lookup, protocol: Mapping[str, str], fields: Mapping[str, Any]) -> dict[str, Any]:
    """Arterial spin labeling: the standard's ASL macro, GE's private elements, or (Siemens) the
    sequence's protocol values, as dcm2niix reads them for each sequence."""
    out: dict[str, Any] = {}
    contrast = to_str(_first(look.get("ArterialSpinLabelingContrast"),
                             look.private.get(0x0043, GE_PARM, 0xA3, "CS") if look.vendor == "GE" else None)).upper()
    for word, kind in ASL_LABELING_TYPES:
        if word in contrast:
            out["ArterialSpinLabelingType"] = kind
            break
    if look.vendor == "GE":
        technique = to_str(look.private.get(0x0043, GE_PARM, 0xA4, "LO")).upper()
        for word, kind in GE_ASL_TECHNIQUES:
            if word in technique:
                out.setdefault("ArterialSpinLabelingType", kind)
                break
        labeling = _positive(look.private.get(0x0043, GE_PARM, 0xA5, "IS"), MS_TO_S)
        if labeling:
            out["LabelingDuration"] = labeling
            delay = _positive(look.acquisition.get("InversionTime"), MS_TO_S)
            if delay:
                out["PostLabelingDelay"] = delay  # GE: InversionTime is the post-labeling delay
            for element, key in ((0x60, "NumberOfPointsPerArm"), (0x61, "NumberOfArms")):
                value = _positive(look.private.get(0x0027, GE_IMAG, element, "FL"))
                if value:
                    out[key] = value
    elif out.get("ArterialSpinLabelingType") in ("CASL", "PCASL"):
        labeling = _positive(look.get("ASLPulseTrainDuration"), MS_TO_S)
        if labeling:
            out["LabelingDuration"] = labeling  # (0018,9258): duration of the label pulse, ms
    if out.get("ArterialSpinLabelingType") and look.vendor != "GE":
        delay = _positive(look.get("InversionTimes"), MS_TO_S)
        if delay:
            out["PostLabelingDelay"] = delay  # (0018,9079): from the end of the pulse train
    if look.vendor == "SIEMENS" and protocol:
        out.update(_siemens_asl(protocol, look, fields))
    return out


def protocol_text(protocol: Mapping[str, str], pattern: str) -> str | None:
    """A protocol value by key, else the first key (in the protocol's order) that contains
    ``pattern``: dcm2niix finds its keys as text anywhere in the protocol, so
    ``sCoilElementID.tCoilID`` is the first coil element's
    (``sCoilSelectMeas.aRxCoilSelectData[0].asList[0].sCoilElementID.tCoilID``)."""
    if pattern in protocol:
        return protocol[pattern]
    for key, value in protocol.items():
        if pattern in key:
            return value
    return None


def _free(protocol: Mapping[str, str], array: str, i: int) -> float | None:
    """``sWipMemBlock.<array>[i]`` (older protocols spell it sWiPMemBlock), or ``alTI[i]``."""
    if array == "alTI":
        return protocol_number(protocol, f"alTI[{i}]")
    return _first(protocol_number(protocol, f"sWipMemBlock.{array}[{i}]"),
                  protocol_number(protocol, f"sWiPMemBlock.{array}[{i}]"))


def _siemens_asl(protocol: Mapping[str, str], look: Lookup, fields: Mapping[str, Any]) -> dict[str, Any]:
    """The ASL keys dcm2niix reads from the WIP memory block of each Siemens ASL sequence
    (``tSequenceFileName``): the sequences' own parameter slots, in their units."""
    details = to_str(protocol.get("tSequenceFileName"))
    out: dict[str, Any] = {}

    def put(key: str, value: float | None, scale: float = 1.0) -> None:
        if value is not None and math.isfinite(value) and value != 0:
            out[key] = value * scale

    if "ep2d_pcasl" in details:
        out["ArterialSpinLabelingType"] = "PCASL"
        put("LabelingDistance", _free(protocol, "adFree", 1))
        put("PostLabelingDelay", _free(protocol, "adFree", 2), US_TO_S)
        blocks = _free(protocol, "adFree", 3)
        put("NumRFBlocks", blocks)
        if blocks and blocks > 0:
            out["LabelingDuration"] = PCASL_RF_BLOCK_MS * blocks * MS_TO_S
        put("RFGap", _free(protocol, "adFree", 4), US_TO_S)
        put("MeanGzx10", _free(protocol, "adFree", 10))
        put("PhiAdjust", _free(protocol, "adFree", 11))
    elif "tgse_pcasl" in details:
        out["ArterialSpinLabelingType"] = "PCASL"
        put("LabelingDuration", _free(protocol, "adFree", 2), US_TO_S)
        put("RFGap", _free(protocol, "adFree", 4), US_TO_S)
        put("MeanGzx10", _free(protocol, "adFree", 10))
        put("T1", _free(protocol, "adFree", 12), US_TO_S)
        put("NumRFBlocks", _free(protocol, "adFree", 3))
    elif "ep2d_pasl" in details or "tgse_pasl" in details:
        out.update(ArterialSpinLabelingType="PASL", PASLType="PICORE" if "ep2d_pasl" in details else "FAIR QII")
        put("BolusDuration", _free(protocol, "alTI", 0), US_TO_S)
        put("InversionTime", _free(protocol, "alTI", 2), US_TO_S)
    elif "ep2d_fairest" in details:
        out.update(ArterialSpinLabelingType="PASL", PASLType="FAIR")
        put("PostInversionDelay", _free(protocol, "adFree", 2), MS_TO_S)
        put("PostLabelingDelay", _free(protocol, "adFree", 4), MS_TO_S)
    if out.get("ArterialSpinLabelingType") == "PCASL" and fields.get("RepetitionTime"):
        out["RepetitionTimePreparation"] = fields["RepetitionTime"]
    if out and (protocol_number(protocol, "sKSpace.uc2DInterpolation") or 0) <= 0:
        voxel = _acquisition_voxel(look)
        if voxel:
            out["AcquisitionVoxelSize"] = voxel
    return out


def _acquisition_voxel(look: Lookup) -> list[float] | None:
    """Pixel spacing (columns, rows) and slice thickness of an ASL acquisition, mm."""
    spacing = look.stack.first.pixel_spacing
    thickness = _positive(_first(look.acquisition.get("SliceThickness"), look.stack.first.slice_thickness))
    if not spacing or not thickness:
        return None
    return [float(spacing[1]), float(spacing[0]), thickness]


def _derived(look: Lookup, fields: Mapping[str, Any]) -> dict[str, Any]:
    """Keys computed from others: DerivedVendorReportedEchoSpacing and PulseSequenceType."""
    out: dict[str, Any] = {}
    bandwidth = to_float(fields.get("BandwidthPerPixelPhaseEncode"))
    recon = to_float(fields.get("ReconMatrixPE"))
    if bandwidth and recon and bandwidth > 0 and recon > 0:
        factor = 1.0
        accel = to_float(fields.get("ParallelReductionFactorInPlane"))
        if accel and accel > 1:
            factor /= accel
        oversampling = to_float(fields.get("PhaseOversampling"))
        if oversampling and oversampling > 0:
            factor *= 1.0 + oversampling
        out["DerivedVendorReportedEchoSpacing"] = 1.0 / (bandwidth * factor * recon)
    scanning = _tokens(_first(fields.get("ScanningSequence"), look.acquisition.get("ScanningSequence")))
    variant = _tokens(_first(fields.get("SequenceVariant"), look.acquisition.get("SequenceVariant")))
    kind = pulse_sequence_type(scanning, variant, to_int(fields.get("MultibandAccelerationFactor")) or 1)
    if kind:
        out["PulseSequenceType"] = kind
    return out


def pulse_sequence_type(scanning: list[str], variant: list[str], multiband: int = 1) -> str | None:
    """BIDS' PulseSequenceType from ScanningSequence and SequenceVariant (dcm2niix's table, first
    match wins); None when the codes name none of its classes."""
    mb = multiband > 1
    if "EP" in scanning:
        if mb:
            return "Multiband Spin Echo EPI" if "SE" in scanning else "Multiband Gradient Echo EPI"
        return "Spin Echo EPI" if "SE" in scanning else "Gradient Echo EPI"
    if "GR" in scanning:
        if "MP" in variant and "IR" in scanning:
            return "MPRAGE"
        return "Spoiled Gradient Echo" if "SP" in variant else "Gradient Echo"
    if "SE" in scanning:
        return "Inversion Recovery Spin Echo" if "IR" in scanning else "Spin Echo"
    return None


__all__ = ["HEADER_KEYWORDS", "VendorElements", "is_derived", "manufacturer_name", "more_fields",
           "pulse_sequence_type"]

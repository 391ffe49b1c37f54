"""The BIDS sidecar fields preprocessing needs, computed as dcm2niix computes them.

fMRIPrep, FSL's topup/eddy, SPM's slice-timing correction and QSIPrep read these fields from the
JSON sidecar: SliceTiming, PhaseEncodingDirection, EffectiveEchoSpacing and TotalReadoutTime,
MultibandAccelerationFactor, ParallelReductionFactorInPlane, PartialFourier, AcquisitionMatrixPE,
ReconMatrixPE, and RepetitionTime/EchoTime/FlipAngle where enhanced files keep them in functional
groups. Each comes from the standard element when there is one, else from the vendor's private
header (Siemens CSA and protocol, GE's protocol data block and user data, Philips' private
elements), with dcm2niix's formulas so research users get the numbers they know.

Fields that name voxel axes refer to the file volume writes: ``i`` along the image columns (the
row direction of ImageOrientationPatient), ``j`` along the rows (its column direction, top to
bottom), ``k`` along the slices in increasing position along ``cross(row, col)``. SliceTiming
lists one time per written slice, in ``k`` order. dcm2niix stores rows bottom to top, so its
``j`` is our ``j-`` and vice versa: the world direction is the same.

Everything is read from one representative header (the stack's first image; for enhanced files
its shared and own functional groups), plus what the scan kept per image (slice times,
acquisition times, InstanceNumbers). Nothing here carries patient identity.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import Any

from . import uih
from .fastheader import element_value, read_raw
from .ge import (
    GE_ASSET,
    GE_ECHO_SPACING_US,
    ge_multiband,
    ge_phase_positive,
    ge_protocol,
    ge_repetition_time,
    ge_slice_timing,
    pepolar_polarity,
)
from .private import private_value
from .read import Skip, read_dataset
from .series import Stack
from .sidecar_keys import manufacturer_name, more_fields
from .siemens import (
    MOSAIC_REF_ACQ_TIMES,
    ascconv,
    csa_image,
    listed_slice_times,
    multiband_problem,
    parse_ascconv,
    protocol_number,
    times_by_instance,
)
from .values import first_value, seconds_from_first, to_float, to_int, to_str

#: The standard keywords read here (their tags and VRs are in :data:`volume.dicom._tags.TAGS`,
#: so reading them needs no pydicom).
HEADER_KEYWORDS = (
    "AcquisitionMatrix", "EchoTime", "EchoTrainLength", "FlipAngle", "GradientEchoTrainLength", "InversionRecovery",
    "ImagingFrequency", "InPlanePhaseEncodingDirection", "MRAcquisitionPhaseEncodingStepsInPlane",
    "NumberOfPhaseEncodingSteps", "ParallelReductionFactorInPlane", "PartialFourier", "PercentPhaseFieldOfView",
    "PercentSampling", "RectilinearPhaseEncodeReordering", "RepetitionTime", "ScanOptions",
    "SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence",
)

SIEMENS_PARTIAL_FOURIER = {1: 0.5, 2: 0.625, 4: 0.75, 8: 0.875, 16: 1.0}
"""Siemens ``sKSpace.ucPhasePartialFourier`` codes -> the fraction of k-space sampled."""

#: Private elements read here (tag, VR), besides those the scan reads (:data:`volume.dicom._tags.PRIVATE`).
SIEMENS_PAT_TEXT = ((0x00511011, "LO"), (0x00211009, "LO"))
SIEMENS_XA_PROTOCOL = (0x00211019, "OB")
SIEMENS_XA_PE_POSITIVE = (0x0021111C, "IS")
SIEMENS_XA_BWPPPE = (0x00211153, "FD")
SIEMENS_BWPPPE = (0x00191028, "FD")
SIEMENS_TIME_AFTER_START = (0x00211104, "DS")
PHILIPS_WATER_FAT_SHIFT = (0x20011022, "FL")
PHILIPS_EPI_FACTOR = (0x20011013, "SL")
PHILIPS_PARTIAL_FOURIER = (0x20011019, "CS")


#: Sequences not searched from the top of a file: the frames' groups are searched for one frame only.
FUNCTIONAL_GROUPS = frozenset({0x52009229, 0x52009230})


def _walk(item: Any, depth: int = 0) -> Iterator[Any]:
    """``item`` and every dataset nested in its sequences (depth-first, a few levels deep; the
    functional groups of an enhanced file are left out)."""
    yield item
    if depth > 4:
        return
    for elem in item:
        if elem.VR == "SQ" and int(elem.tag) not in FUNCTIONAL_GROUPS:
            for sub in elem.value:
                yield from _walk(sub, depth + 1)


#: Private creators of the blocks read here by tag, by vendor: (group, usual block) -> creator. A block a
#: PACS moved elsewhere is found by its creator (:func:`volume.dicom.private.private_value`), as
#: dcm2niix remaps them (issue 435).
PRIVATE_CREATORS: dict[str, dict[tuple[int, int], str]] = {
    "SIEMENS": {(0x0019, 0x10): "SIEMENS MR HEADER", (0x0021, 0x10): "SIEMENS MR SDS 01",
                (0x0021, 0x11): "SIEMENS MR SDI 02", (0x0029, 0x10): "SIEMENS CSA HEADER",
                (0x0051, 0x10): "SIEMENS MR HEADER"},
    "GE": {(0x0019, 0x10): "GEMS_ACQU_01", (0x0021, 0x10): "GEMS_RELA_01", (0x0025, 0x10): "GEMS_SERS_01",
           (0x0043, 0x10): "GEMS_PARM_01"},
    "PHILIPS": {(0x2001, 0x10): "Philips Imaging DD 001", (0x2005, 0x10): "Philips MR Imaging DD 001"},
    "UIH": {(0x0065, 0x10): "Image Private Header"},
}


class Header:
    """One image's header for lookups: top level first, then (enhanced) its own per-frame groups,
    then the shared groups, then any nested sequence of those (vendors nest freely). ``vendor``
    (``SIEMENS``, ``GE``...) names whose private blocks :meth:`raw` looks for when moved."""

    def __init__(self, ds: Any, frame: int | None, vendor: str = "") -> None:
        self.ds = ds
        self.vendor = vendor
        per = ds.get("PerFrameFunctionalGroupsSequence")
        shared = ds.get("SharedFunctionalGroupsSequence")
        self.groups = ([per[frame]] if per is not None and frame is not None and frame < len(per) else []) + (
            [shared[0]] if shared else [])

    def _datasets(self) -> Iterator[Any]:
        yield self.ds
        for group in self.groups:
            yield from _walk(group)
        nested = _walk(self.ds)
        next(nested)  # the top level, searched first already
        yield from nested

    def get(self, keyword: str) -> Any:
        """A standard element's value (first found), or None."""
        return first_value(self._datasets(), keyword)

    def raw(self, tag: int, vr: str) -> Any:
        """A private element's value (first found; raw bytes converted with ``vr``), or None; at the top
        level, in the vendor's block wherever a PACS moved it (:data:`PRIVATE_CREATORS`)."""
        for d in self._datasets():
            value = element_value(d, tag, vr)
            if value is not None and value != "":
                return value
        creator = PRIVATE_CREATORS.get(self.vendor, {}).get((tag >> 16, (tag >> 8) & 0xFF))
        if creator is None:
            return None
        value = private_value(self.ds, tag, vr, creator)
        return None if value == "" else value


def stack_header(stack: Stack, index: int = 0) -> Header | None:
    """The whole header of image ``index`` of ``stack`` (pixels not read), None when unreadable.

    Little-endian files are read whole by :func:`volume.dicom.fastheader.read_raw` (no pydicom
    import: 0.3 s and 40 MB of a small conversion); others by :func:`volume.dicom.read.read_dataset`.
    """
    f = stack.frames[index]
    frame = f.frame if f.frame is not None and not f.mosaic else None
    ds = read_raw(f.path) if frame is None else None
    if ds is None:
        ds = read_dataset(f.path, compression=f.file_compression, stop_before_pixels=True)
        if isinstance(ds, Skip):  # the scan read it once; a vanished file gives fewer fields
            return None
    return Header(ds, frame, _vendor(stack))


def _vendor(stack: Stack) -> str:
    m = str(stack.first.acquisition.get("Manufacturer", "")).upper()
    for name in ("SIEMENS", "GE", "PHILIPS", "CANON", "TOSHIBA", "UIH"):
        if m.startswith(name):
            return name
    return m


def _phase_direction(h: Header) -> str:
    """``ROW`` or ``COL`` (enhanced files say ``COLUMN``), "" when unknown."""
    text = to_str(h.get("InPlanePhaseEncodingDirection")).upper()
    return "COL" if text.startswith("COL") else "ROW" if text.startswith("ROW") else ""


def _number_list(value: Any) -> list[float]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return [v for v in (to_float(x) for x in value) if v is not None]
    v = to_float(value)
    if v is None and isinstance(value, str):
        return [v for v in (to_float(x) for x in value.replace("\\", " ").split()) if v is not None]
    return [] if v is None else [v]


# --- vendor headers ---------------------------------------------------------------------------


def _siemens_protocol(h: Header) -> dict[str, str]:
    """The Siemens protocol (ASCCONV): the CSA series header, else XA's (0021,1019)."""
    protocol = ascconv(h.ds)
    if protocol:
        return protocol
    raw = h.raw(*SIEMENS_XA_PROTOCOL)
    return parse_ascconv(bytes(raw)) if isinstance(raw, (bytes, bytearray)) else {}


# --- the fields -------------------------------------------------------------------------------


def _first_volume(stack: Stack, volume: int = 0) -> list[Any]:
    """The images of volume ``volume`` in written slice order."""
    n = stack.n_slices
    return stack.frames[volume * n : (volume + 1) * n]


def _slice_times(stack: Stack, vendor: str, h: Header, tr_s: float | None, protocol: dict[str, str],
                 ge: dict[str, str], csa: dict[str, Any] | None = None, notes: list[str] | None = None
                 ) -> list[float] | None:
    """Seconds from the start of a volume for each written slice, or None (``notes`` gets why, when
    the files hold times that cannot be right: then they are left out, never guessed)."""
    if stack.n_slices < 2 or str(stack.first.acquisition.get("MRAcquisitionType", "")).upper() == "3D":
        return None
    volumes = [_first_volume(stack, t) for t in range(min(stack.n_frames, 2))]
    single_band = is_single_band_reference(stack)

    def usable(times: list[float | None] | None) -> list[float] | None:
        if times is None or any(t is None for t in times):
            return None
        lo, hi = min(times), max(times)  # type: ignore[type-var]
        if hi - lo <= 0 or (tr_s and hi - lo > tr_s and not single_band):
            return None
        return [t - lo for t in times]  # type: ignore[operator]

    per_image = [[f.mr.slice_time if f.mr is not None else None for f in v] for v in volumes]
    if all(t is not None for t in per_image[0]):
        # Siemens XA writes a first volume that starts late: dcm2niix (and so research tools) read the
        # second when each file holds one volume
        one_per_file = stack.first.frame is not None and not stack.first.mosaic
        order = [1, 0] if one_per_file and len(per_image) > 1 else [0, 1]
        for t in order:
            if t < len(per_image):
                times = usable(per_image[t])
                if times is not None:
                    return _siemens_checked(times, vendor, h, protocol, notes, stack)
    if vendor == "GE":
        return ge_slice_timing(stack, h, ge, tr_s, lambda i: stack_header(stack, i)).times
    if stack.first.mosaic or stack.first.frame is not None:
        return None
    if vendor == "SIEMENS":  # each single-slice image lists its volume's times (CSA image header)
        listed = listed_slice_times(csa or {}, h.raw(*MOSAIC_REF_ACQ_TIMES))
        if listed is not None:
            times = usable(times_by_instance(listed, [f.instance_number for f in volumes[0]]))
            if times is not None:
                return _siemens_checked(times, vendor, h, protocol, notes, stack)
    if vendor in ("SIEMENS", "UIH"):  # AcquisitionTime of each slice (UIH's documented slice time)
        return usable(seconds_from_first([f.acquisition_time for f in volumes[0]]))
    return None


SINGLE_BAND_REFERENCE = "SBRef"
"""In SeriesDescription: the single-band reference of a multiband run (CMRR's and Siemens' name). Its
slices are excited one by one, so they take longer than the run's RepetitionTime, and share no
excitation: its measured slice times are kept as they are (dcm2niix keeps them too)."""


def is_single_band_reference(stack: Stack) -> bool:
    """True for a single-band reference image (:data:`SINGLE_BAND_REFERENCE` in SeriesDescription)."""
    return SINGLE_BAND_REFERENCE in (stack.series_description or "")


def _siemens_checked(times: list[float], vendor: str, h: Header, protocol: dict[str, str],
                     notes: list[str] | None, stack: Stack | None = None) -> list[float] | None:
    """``times``, unless a Siemens series' multiband factor says they cannot be right (then None, and why
    in ``notes``); a single-band reference's times are single-band by design."""
    if vendor != "SIEMENS" or (stack is not None and is_single_band_reference(stack)):
        return times
    factor = _pat_factor(h, "s") or protocol_number(protocol, "sSliceAcceleration.lMultiBandFactor")
    problem = multiband_problem(times, factor, "TimeAfterStart (0021,1104)" if h.raw(*SIEMENS_TIME_AFTER_START)
                                is not None else "the images' slice times")
    if problem:
        if notes is not None:
            notes.append(problem)
        return None
    return times


def _pat_factor(h: Header, letter: str) -> float | None:
    """A factor of Siemens' PAT text (0051,1011 or XA's 0021,1009, e.g. ``p2s4``): ``p`` in-plane
    (GRAPPA), ``s`` slices (multiband)."""
    for tag, vr in SIEMENS_PAT_TEXT:
        m = re.search(letter + r"(\d+)", to_str(h.raw(tag, vr)))
        if m:
            return float(m.group(1))
    return None


def _multiband(stack: Stack, vendor: str, h: Header, times: list[float] | None, protocol: dict[str, str],
               ge: dict[str, str]) -> int | None:
    if vendor == "GE":  # the factor GE states: its slice times can leave an excitation empty
        mb = ge_multiband(h, ge)
        return mb if mb > 1 else None
    if times:
        first = times[0]
        same = sum(1 for t in times if abs(t - first) < 1e-4)
        if same > 1:
            return same
    if vendor == "SIEMENS":
        factor = _pat_factor(h, "s")
        if factor:
            return int(factor)
        mb = protocol_number(protocol, "sSliceAcceleration.lMultiBandFactor")
        return int(mb) if mb and mb > 1 else None
    return None


def _in_plane_acceleration(vendor: str, h: Header, protocol: dict[str, str]) -> float | None:
    if vendor == "SIEMENS":
        factor = _pat_factor(h, "p")
        if factor:
            return factor
        value = protocol_number(protocol, "sPat.lAccelFactPE")
        if value:
            return value
    if vendor == "GE":
        asset = _number_list(h.raw(*GE_ASSET))
        if asset and asset[0] > 0:
            return 1.0 / asset[0]
    return to_float(h.get("ParallelReductionFactorInPlane"))


def _partial_fourier(vendor: str, h: Header, protocol: dict[str, str]) -> dict[str, Any]:
    if vendor == "SIEMENS":
        code = protocol_number(protocol, "sKSpace.ucPhasePartialFourier")
        if code is not None and int(code) in SIEMENS_PARTIAL_FOURIER:
            return {"PartialFourier": SIEMENS_PARTIAL_FOURIER[int(code)]}
        return {}
    if vendor == "PHILIPS":
        enabled = to_str(h.raw(*PHILIPS_PARTIAL_FOURIER)).upper() == "Y" or to_str(h.get("PartialFourier")).upper() == "YES"
        if enabled:
            steps = to_int(h.get("NumberOfPhaseEncodingSteps")) or to_int(h.get("MRAcquisitionPhaseEncodingStepsInPlane"))
            return {"PartialFourierEnabled": "YES", **({"PhaseEncodingStepsNoPartialFourier": steps} if steps else {})}
    return {}


def _acquisition_matrix_pe(h: Header, protocol: dict[str, str]) -> int | None:
    matrix = [int(v) for v in _number_list(h.get("AcquisitionMatrix"))]
    if len(matrix) == 4:
        pe = matrix[2] or matrix[3]
        if pe:
            return pe
    steps = to_int(h.get("MRAcquisitionPhaseEncodingStepsInPlane"))
    if steps:
        return steps
    lines = protocol_number(protocol, "sKSpace.lPhaseEncodingLines")
    return int(lines) if lines else None


def _readout(vendor: str, h: Header, recon_pe: int | None, acq_pe: int | None, protocol: dict[str, str],
             csa: dict[str, Any]) -> dict[str, Any]:
    """EffectiveEchoSpacing and TotalReadoutTime (s), or Philips' estimates from the water-fat shift."""
    if not recon_pe or recon_pe < 2:
        return {}
    out: dict[str, Any] = {}
    bwpppe = None
    if vendor == "SIEMENS":
        bwpppe = (to_float(h.raw(*SIEMENS_BWPPPE)) or to_float(h.raw(*SIEMENS_XA_BWPPPE))
                  or to_float((csa.get("BandwidthPerPixelPhaseEncode") or [None])[0]))
    if bwpppe and bwpppe > 0:
        ees = 1.0 / (bwpppe * recon_pe)
        out.update(BandwidthPerPixelPhaseEncode=bwpppe, EffectiveEchoSpacing=ees, TotalReadoutTime=ees * (recon_pe - 1))
        return out
    if vendor == "GE":
        out.update(_ge_readout(h, recon_pe, acq_pe))
        return out
    if vendor == "PHILIPS":
        wfs = to_float(h.raw(*PHILIPS_WATER_FAT_SHIFT))
        frequency = to_float(h.get("ImagingFrequency"))
        etl = to_int(h.get("EchoTrainLength"))
        if not etl or etl < 2:
            etl = to_int(h.get("GradientEchoTrainLength")) or to_int(h.raw(*PHILIPS_EPI_FACTOR)) or 1
        if wfs and frequency and etl:
            out["WaterFatShift"] = wfs
            actual = wfs / (frequency * 3.4 * (etl + 1))
            trt = actual * etl
            out.update(EstimatedEffectiveEchoSpacing=trt / (recon_pe - 1), EstimatedTotalReadoutTime=trt)
    return out


def _ge_readout(h: Header, recon_pe: int, acq_pe: int | None) -> dict[str, Any]:
    """GE's EffectiveEchoSpacing and TotalReadoutTime (GE's formula, in dcm2niix's ``GE/README.md``):
    the lines GE acquires, ``ceil(AcquisitionMatrixPE / R / f) * f`` (R the ASSET factor, f 4 with
    partial Fourier, ScanOptions PFF, else 2), less one, times its echo spacing (0043,102C, µs),
    spread over the acquisition matrix's lines; TotalReadoutTime over the reconstructed ones (an
    interpolated image has more). Without the echo spacing, the acquisition matrix or an in-plane
    factor (the ASSET factors 0043,1083, or ParallelReductionFactorInPlane above 1) nothing is written."""
    spacing_us = to_float(h.raw(*GE_ECHO_SPACING_US))
    if not spacing_us or spacing_us <= 0 or not acq_pe or acq_pe < 2:
        return {}
    asset = _number_list(h.raw(*GE_ASSET))
    accel = 1.0 / asset[0] if asset and asset[0] > 0 else 0.0
    standard = to_float(h.get("ParallelReductionFactorInPlane"))
    if standard is not None and standard > max(accel, 1.0):
        accel = standard
    if accel <= 0:
        return {}
    options = {str(v).upper() for v in (_listify(h.get("ScanOptions")))}
    rf = GE_ROUND_PARTIAL if "PFF" in options or to_str(h.get("PartialFourier")).upper() == "YES" else GE_ROUND_FULL
    acquired = math.ceil(acq_pe / accel / rf) * rf
    ees = (acquired - 1) * spacing_us * 1e-6 / (acq_pe - 1)
    return {"EffectiveEchoSpacing": ees, "TotalReadoutTime": ees * (recon_pe - 1)}


GE_ROUND_FULL, GE_ROUND_PARTIAL = 2, 4
"""GE rounds the lines it acquires to a multiple of 2, or of 4 with partial Fourier."""


def _listify(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return list(value)
    return str(value).replace("\\", " ").split()


def _timing(stack: Stack, vendor: str, h: Header, ge: dict[str, str]) -> dict[str, Any]:
    """RepetitionTime, EchoTime, FlipAngle in seconds/degrees from wherever the file keeps them
    (enhanced files: functional groups), with GE's group delay and multi-phase delay added to TR, and
    the TR measured between volumes of one-image-per-file series when it differs from the header's."""
    out: dict[str, Any] = {}
    tr = to_float(h.get("RepetitionTime"))
    if tr is not None and tr > 0:
        if vendor == "GE":
            tr = ge_repetition_time(stack, h, ge, tr)
        out["RepetitionTime"] = tr / 1000.0
    measured = _measured_tr(stack, vendor)
    if measured is not None and (tr is None or abs(measured - tr / 1000.0) > 0.05):
        if tr is not None:  # the header's TR: between excitations, or (inversion recovery) between inversions
            key = "RepetitionTimeInversion" if _inversion_recovery(vendor, h) else "RepetitionTimeExcitation"
            out[key] = tr / 1000.0
        out["RepetitionTime"] = measured
    te = to_float(h.get("EchoTime"))
    if te is None or te <= 0:
        te = stack.first.echo_time
    if te is not None and te > 0:
        out["EchoTime"] = te / 1000.0
    flip = to_float(h.get("FlipAngle"))
    if flip is not None and flip > 0:
        out["FlipAngle"] = flip
    return out


def _inversion_recovery(vendor: str, h: Header) -> bool:
    """An inversion-recovery sequence (ScanningSequence IR, or InversionRecovery 0018,9009 YES) of a vendor
    whose RepetitionTime is then the time between inversions (dcm2niix: not Philips, whose is between
    excitations)."""
    if vendor == "PHILIPS":
        return False
    scanning = "\\".join(_listify(h.get("ScanningSequence"))).upper()
    return "IR" in scanning or to_str(h.get("InversionRecovery")).upper().startswith("Y")


def _measured_tr(stack: Stack, vendor: str) -> float | None:
    """Seconds between volumes of a series of single-image files, from their AcquisitionTime at the
    first slice position (non-GE, as dcm2niix): None for other layouts or when times are missing."""
    if vendor == "GE" or stack.n_frames < 2 or stack.first.frame is not None:
        return None
    times = [stack.frames[t * stack.n_slices].acquisition_time for t in range(stack.n_frames)]
    if any(t is None for t in times):
        return None
    steps = [times[t + 1] - times[t] for t in range(len(times) - 1)]  # type: ignore[operator]
    if any(s <= 0 for s in steps):
        return None
    return sum(steps) / len(steps)


def sidecar_fields(stack: Stack) -> dict[str, Any]:
    """BIDS fields of an MR stack, in the order dcm2niix writes them, then every other key dcm2niix
    writes (:func:`volume.dicom.sidecar_keys.more_fields`); for other modalities the manufacturer
    as dcm2niix names it.

    ``OmittedFields`` maps a field the files hold but volume leaves out (never guessed) to why;
    ``SliceTimingInferredFrom`` names what slice times were inferred from when the files measured none.
    """
    name = manufacturer_name(stack.first.acquisition.get("Manufacturer"))
    if stack.modality != "MR" or stack.problem:
        return {"Manufacturer": name} if name else {}
    h = stack_header(stack)
    if h is None:
        return {"Manufacturer": name} if name else {}
    vendor = _vendor(stack)
    protocol = _siemens_protocol(h) if vendor == "SIEMENS" else {}
    csa = csa_image(h.ds) if vendor == "SIEMENS" else {}
    ge = ge_protocol(h) if vendor == "GE" else {}
    out: dict[str, Any] = {}
    out.update(_timing(stack, vendor, h, ge))
    for keyword, key in (("PercentPhaseFieldOfView", "PercentPhaseFOV"), ("PercentSampling", "PercentSampling")):
        value = to_float(h.get(keyword))
        if value is not None:
            out[key] = value
    phase = _phase_direction(h)
    acq_pe = _acquisition_matrix_pe(h, protocol)
    recon_pe = (stack.rows if phase == "COL" else stack.cols) if phase else (
        stack.rows if stack.rows == stack.cols else None)  # square: either direction has as many lines
    if acq_pe:
        out["AcquisitionMatrixPE"] = acq_pe
    if recon_pe:
        out["ReconMatrixPE"] = recon_pe
    accel = _in_plane_acceleration(vendor, h, protocol)
    if accel:
        out["ParallelReductionFactorInPlane"] = accel
    out.update(_partial_fourier(vendor, h, protocol))
    out.update(_readout(vendor, h, recon_pe, acq_pe, protocol, csa))
    tr_s = out.get("RepetitionTime")
    omitted: list[str] = []
    times = _slice_times(stack, vendor, h, tr_s, protocol, ge, csa, omitted)
    mb = _multiband(stack, vendor, h, times, protocol, ge)
    if mb:
        out["MultibandAccelerationFactor"] = mb
    positive = _phase_positive(vendor, h, csa)
    pepolar_why = ""
    if vendor == "GE":
        positive, pepolar_why = pepolar_polarity([f.mr.pepolar for f in stack.frames if f.mr is not None],
                                                 positive, phase or "")
    if phase:
        axis = "i" if phase == "ROW" else "j"
        if positive is None:
            out["PhaseEncodingAxis"] = axis
        else:
            out["PhaseEncodingDirection"] = axis if positive else axis + "-"
        out["InPlanePhaseEncodingDirectionDICOM"] = phase
    if times:
        out["SliceTiming"] = [round(t, 6) for t in times]
        if _protocol_inferred(stack, vendor, h, csa):
            out["SliceTimingInferredFrom"] = PROTOCOL_SLICE_TIMES
    elif omitted:
        out["OmittedFields"] = {"SliceTiming": omitted[0]}
    elif _wants_slice_timing(stack):
        out["OmittedFields"] = {"SliceTiming": _no_slice_timing(stack, vendor, h, ge, tr_s)}
    if pepolar_why:
        out["OmittedFields"] = {**out.get("OmittedFields", {}), "PhaseEncodingDirection": pepolar_why}
    out.update(_field_map(stack, vendor, protocol, h))
    out.update(more_fields(stack, vendor, h, protocol, csa, out, phase_positive=positive))
    return out


PROTOCOL_SLICE_TIMES = ("the protocol: sSliceArray.ucMode (the slice order), RepetitionTime and lDelayTimeInTR, slices "
                        "evenly spread (VB12/VB13 mosaics hold no measured times, CSA MosaicRefAcqTimes)")
"""What Siemens slice times are inferred from when the mosaics measured none (as dcm2niix infers them)."""


def _protocol_inferred(stack: Stack, vendor: str, h: Header, csa: dict[str, Any]) -> bool:
    """True when a Siemens mosaic's slice times came from its protocol (B12/B13 write no measured ones)."""
    return (vendor == "SIEMENS" and bool(stack.first.mosaic)
            and listed_slice_times(csa, h.raw(*MOSAIC_REF_ACQ_TIMES)) is None)


def _wants_slice_timing(stack: Stack) -> bool:
    """An fMRI or DWI time series of 2D slices: what slice timing correction (SPM, FSL, fMRIPrep's
    slice-timing step, eddy's slice-to-volume) needs SliceTiming for."""
    return (stack.n_slices >= 2 and stack.n_frames >= 2 and not stack.derived and stack.content in ("fMRI", "DWI")
            and str(stack.first.acquisition.get("MRAcquisitionType", "")).upper() != "3D")


#: Why a vendor's files give no slice times, when nothing more specific is known.
NO_SLICE_TIMES = {
    "PHILIPS": "Philips stores no slice times in its DICOM",
    "SIEMENS": "no slice times in the files (CSA MosaicRefAcqTimes, TimeAfterStart, a protocol slice order or "
               "per-slice AcquisitionTime)",
}


def _no_slice_timing(stack: Stack, vendor: str, h: Header, ge: dict[str, str], tr_s: float | None) -> str:
    """Why SliceTiming is left out (never guessed)."""
    if vendor == "GE":
        why = ge_slice_timing(stack, h, ge, tr_s, lambda i: stack_header(stack, i)).why
        if why:
            return why
    return NO_SLICE_TIMES.get(vendor, "no per-slice acquisition times in the files")


def _phase_positive(vendor: str, h: Header, csa: dict[str, Any]) -> int | None:
    if vendor == "SIEMENS":
        value = (csa.get("PhaseEncodingDirectionPositive") or [None])[0]
        if value is None:
            value = h.raw(*SIEMENS_XA_PE_POSITIVE)
        v = to_int(value)
        return v if v in (0, 1) else None
    if vendor == "GE":
        return ge_phase_positive(h)
    if vendor == "UIH":
        return uih.phase_positive(h.raw(uih.PHASE_NEGATIVE, "IS"))
    return None


GE_VELOCITY_ENCODE_SCALE = (0x001910E2, "DS")
"""GE's Velocity Encode Scale (0019,10E2): negative on a B0map's field map, ``-1 / (2 pi dTE)`` (dTE in
seconds; dcm2niix issue 617), the difference of the two echo times the map was computed from."""


def _field_map(stack: Stack, vendor: str, protocol: dict[str, str], h: Header) -> dict[str, Any]:
    out: dict[str, Any] = {}
    f0 = stack.first
    if f0.mr is not None and f0.mr.rwv_units.upper() == "HZ":
        out["Units"] = "Hz"
        scale = to_float(h.raw(*GE_VELOCITY_ENCODE_SCALE)) if vendor == "GE" else None
        te = f0.echo_time
        if scale is not None and scale < 0 and te:
            out.update(EchoTime1=te / 1000.0, EchoTime2=te / 1000.0 - 1.0 / (2.0 * math.pi * scale))
    if vendor == "SIEMENS" and {"P", "PHASE"} & set(f0.image_type):
        te1, te2 = protocol_number(protocol, "alTE[0]"), protocol_number(protocol, "alTE[1]")
        if te1 and te2:
            out.update(EchoTime1=te1 / 1e6, EchoTime2=te2 / 1e6)
    return out


__all__ = ["Header", "ge_phase_positive", "ge_protocol", "sidecar_fields", "stack_header"]

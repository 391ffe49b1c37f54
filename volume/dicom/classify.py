"""What each stack of an MR session is in BIDS terms, decided from DICOM facts by named rules.

:func:`stack_facts` reads what a stack's headers say (ImageType, ScanningSequence and
SequenceVariant, the sequence's name, echo and inversion times, b-values, the number of volumes,
the phase-encoding direction, ASL and field-map markers) into a plain :class:`Facts` record;
:func:`session_facts` adds what the other stacks of the session tell about it (its echo among the
series' echoes, a phase partner, the run an SBRef precedes). :func:`classify` then walks
:data:`RULES`, a table of named rules written as data, and returns the first that matches: a BIDS
datatype and suffix, ``sourcedata`` (converted whole, outside the raw dataset), or ``omit`` (no
image convert can write). ``docs/bids.md`` shows the table.

The description (SeriesDescription, ProtocolName) only breaks ties: a rule that reads it lists
``described`` among its conditions and comes after the rules that decide from facts, and only
chooses between destinations the facts allow (a gradient-echo EPI of a few volumes is a run or a
field map: the description says which). A "T1" in the description of a spin-echo with a 100 ms
echo time does not make it T1-weighted.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from .bids import Header, stack_header
from .series import Stack
from .siemens import ascconv, parse_ascconv, protocol_number
from .values import to_float, to_str

#: Standard and private elements read here beyond the scan (tag, VR): the fast reader and pydicom
#: both answer them by tag, so no dictionary look-up (and no pydicom import) is needed.
TAGS: dict[str, tuple[int, str]] = {
    "ScanOptions": (0x00180022, "CS"),
    "ContrastBolusAgent": (0x00180010, "LO"),
    "PulseSequenceName": (0x00189005, "SH"),
    "EchoPulseSequence": (0x00189008, "CS"),
    "TimeOfFlightContrast": (0x00189015, "CS"),
    "EchoPlanarPulseSequence": (0x00189018, "CS"),
    "AcquisitionContrast": (0x00089209, "CS"),
    "ComplexImageComponent": (0x00089208, "CS"),
    "FrameType": (0x00089007, "CS"),
    "ArterialSpinLabelingContrast": (0x00189250, "CS"),
    "EffectiveEchoTime": (0x00189082, "FD"),
    "GEPulseSequenceName": (0x0019109C, "LO"),
    "GEInternalPulseSequenceName": (0x0019109E, "LO"),
    "PhilipsScanningTechnique": (0x20011020, "LO"),
    "PhilipsASLLabelType": (0x20051429, "CS"),
}

B0_MAX = 50.0
"""s/mm2: a volume with a b-value at most this is unweighted (b=0; Philips writes 0.001-0.004)."""

EPI_FMAP_MAX_VOLUMES = 10
"""A spin-echo EPI without diffusion weighting of at most this many volumes is a field map
(reverse phase-encoding "topup" pairs hold 1-6); longer ones are runs."""

FLAIR_MIN_TI_MS = 1400.0
"""Inversion time from which a long-echo inversion recovery nulls water (FLAIR: 1.8-2.8 s at
1.5-3 T); below, a short-echo inversion recovery is T1-weighted (MPRAGE 0.9-1.1 s, T1-FLAIR)."""

STIR_MAX_TI_MS = 400.0
"""Inversion times up to this null fat (STIR, 0.13-0.25 s): with a long echo, a T2-weighted image."""

LONG_TE_MS = 45.0
"""Spin-echo echo time from which an image is T2-weighted (T2 TSE 80-120 ms; PD and T1 8-30 ms)."""

T2STAR_MIN_TE_MS = 15.0
"""Gradient-echo echo time from which an image is T2*-weighted (T1 FLASH/SPGR use 2-6 ms)."""

T1_MAX_TR_MS = 1200.0
"""Spin-echo repetition time below which a short-echo image is T1-weighted (T1 SE 400-700 ms);
above, proton-density-weighted (PD 2-4 s)."""

PD_MAX_FLIP = 10.0
"""Degrees: a short-echo, short-TR gradient echo with at most this flip angle is PD-weighted
(MPM's PDw uses 5-6 degrees, its T1w 18-21)."""

BOLD_TE_MS = (15.0, 60.0)
"""Echo times of BOLD fMRI (T2* contrast, 25-35 ms at 3 T, 40-50 at 1.5 T)."""

BOLD_MIN_TR_S = 0.3
"""Shortest repetition time of a BOLD run (multiband EPI goes down to 0.4-0.5 s)."""

FIELD_MAP_MAX_DELTA_TE_MS = 10.0
"""A two-echo gradient echo whose echoes lie at most this far apart is a B0 field map (BIDS
checks 0.1-10 ms between EchoTime1 and EchoTime2)."""

SAME_ACQUISITION_S = 2.0
"""Seconds between the first images of two series of one protocol and grid within which they are
one acquisition (a scanner acquires one protocol at a time): Siemens XA exports the magnitude
echoes and the phase of one field map as series 9001, 9002 and 10001, acquired 0.6 s apart."""

SAME_ACQUISITION_NUMBERS = 2
"""A magnitude and a phase series of one protocol and grid numbered at most this far apart are one
acquisition (Siemens numbers a field map's phase series after its magnitudes')."""

RECONSTRUCTION_WORDS = ("ND", "DIS2D", "DIS3D", "NORM", "FIL", "FM", "FSM")
"""ImageType words that tell reconstructions of one acquisition apart (Siemens: ND without
distortion correction, DIS2D/DIS3D with it, NORM prescan-normalized)."""

SBREF_LOOKAHEAD = 3
"""An SBRef precedes its run: the run is among the next this many stacks in acquisition order."""

GRADIENT_ECHO_NAMES = r"(epfid|ep_seg_fid|fl\d|fl_|tfl|fm\d|gre|swi|megre|fgre|efgre|spgr|ffe|medic)"
"""Sequence names (Siemens' SequenceName without its ``*``, GE's pulse sequence) of gradient echoes."""

SPIN_ECHO_NAMES = r"(epse|ep_b|ep2d_diff|tse|spc|se\d|tir|haste|fse|3dfse|blade|cube)"
"""Sequence names of spin echoes (SPACE ``spc``/``spcir``, TIRM ``tir``, GE ``fse``/``cube``)."""

PHILIPS_T1_TECHNIQUES = r"T1(TFE|FFE|TSE|SE)"
"""Philips scanning techniques (2001,1020; the enhanced PulseSequenceName) that name a T1-weighted
contrast: a 3D T1 TFE's inversion prepulse is in no standard element, and its flip angle of 8
degrees would otherwise read as proton-density weighting."""

FIELD_MAPPING_NAMES = r"(fm\d|b0map|3db0map|b0rf|gre_field_mapping|field_?map)"
"""Names of field-mapping sequences: Siemens' SequenceName (``*fm2d2r``) and sequence file
(``gre_field_mapping``), GE's pulse sequence (0019,109C/109E: ``B0map``, ``3db0map``, ``B0rf``)."""

DIFFUSION_NAMES = r"\*?(ep_b|ep2d_diff|re_b|epse_b)"
"""Siemens sequence names of diffusion sequences (``*ep_b0``, ``*ep_b1000#4``)."""

SIEMENS_XA_PROTOCOL = (0x00211019, "OB")
"""Siemens XA's protocol (ASCCONV) where older versions kept it in the CSA series header."""

SHIM_KEYS = tuple([f"sGRADSPEC.asGPAData[0].lOffset{a}" for a in "XYZ"]
                  + [f"sGRADSPEC.alShimCurrent[{i}]" for i in range(5)])
"""The Siemens protocol's shim settings (gradient offsets, then the 2nd-order shim currents)."""

SOURCEDATA, OMIT = "sourcedata", "omit"
"""The destinations that are not a BIDS datatype: converted into ``sourcedata/``, or left out
(no image ``volume convert`` can write)."""

_DERIVED_WORDS = frozenset({"MPR", "MIP", "MNIP", "PROJECTION", "MOCO", "SUBTRACTION", "SUB", "REFORMATTED",
                            "CSA", "SCREEN", "SWI", "T1MAP", "T2MAP", "T2STARMAP", "R2STARMAP", "CBF", "CBV",
                            "MTT", "TTP", "RELCBF", "PERFUSIONMAP", "COLFA", "FUSED", "SEGMENTATION",
                            "PHYSIOLOG", "PHYSIO", "RAWDATA", "RESAMPLED", "COMPOSED", "SUMMED", "AVERAGE", "MEAN",
                            "TTEST"})
"""ImageType words of images a scanner computed or reformatted (beside DERIVED or SECONDARY), and of
what it stores as an image without being one (Siemens XA's physiological logs: RAWDATA, PHYSIO)."""

_DESCRIBED_LOCALIZER = re.compile(r"(?<![a-z])(loc|localizer|localiser|scout|survey|aahead|3.?plane|tripilot|"
                                  r"calibration|asset.?cal|coil.?sens)", re.IGNORECASE)
_DESCRIBED_FMAP = re.compile(r"fmap|field.?map|topup|blip|pepolar|distortion|se.?epi|spin.?echo|reverse|"
                             r"(?<![a-z])sefm", re.IGNORECASE)
_DESCRIBED_ASL = re.compile(r"(?<![a-z])(p?c?asl|pasl|pcasl|perfusion.?asl|arterial.?spin)", re.IGNORECASE)
_DESCRIBED_M0 = re.compile(r"(?<![a-z0-9])m0", re.IGNORECASE)
_DESCRIBED_ANGIO = re.compile(r"tof|angio|(?<![a-z])mra", re.IGNORECASE)
_DESCRIBED_DSC = re.compile(r"dsc|(?<![a-z])pwi|bolus|dynamic.?susc", re.IGNORECASE)
_DESCRIBED_CONTRAST = (
    ("FLAIR", re.compile(r"flair|(?<![a-z])tirm|dark.?fluid", re.IGNORECASE)),
    ("T2starw", re.compile(r"t2\*|t2.?star|(?<![a-z])t2s(?![a-z])|(?<![a-z])gre(?![a-z])|hemo", re.IGNORECASE)),
    ("PDw", re.compile(r"(?<![a-z])pd(?![a-z])|proton", re.IGNORECASE)),
    ("T2w", re.compile(r"t2", re.IGNORECASE)),
    ("T1w", re.compile(r"t1|mprage|mp.?rage|bravo|spgr|tfe", re.IGNORECASE)),
)
"""Description words, as tie-breakers only: in order (FLAIR before T2, T2* before T2)."""


@dataclass(frozen=True)
class Facts:
    """What a stack's headers say, for the classifier: plain values, read once per stack.

    Times are ms (echo, inversion) and s (repetition); ``sequence`` holds ScanningSequence's
    values (SE, GR, IR, EP, RM), ``variant`` SequenceVariant's (SK, SP, MP, SS, OSP...).
    ``spin_echo`` is True, False (gradient echo) or None (unknown). The session's fields
    (``echoes``, ``echo_rank``...) are filled by :func:`session_facts`.
    """

    index: int
    stack_id: str
    series_uid: str
    series_number: int | None
    description: str
    protocol: str
    modality: str
    kind: str
    problem: str
    rgb: bool
    label: str
    volumes: int
    slices: int
    grid: tuple[Any, ...]
    image_type: tuple[str, ...] = ()
    sequence: frozenset[str] = frozenset()
    variant: frozenset[str] = frozenset()
    options: frozenset[str] = frozenset()
    sequence_name: str = ""
    epi: bool = False
    spin_echo: bool | None = None
    echo_time: float | None = None
    inversion_time: float | None = None
    repetition_time: float | None = None
    flip_angle: float | None = None
    acquisition_type: str = ""
    component: str = "mag"
    derived_kind: str = ""
    bvalues: tuple[float, ...] | None = None
    units: str = ""
    field_map_frames: bool = False
    ped: str = ""
    pe_axis: str = ""
    readout: bool = False
    echo_times_12: bool = False
    asl: str = ""
    contrast_agent: str = ""
    acquisition_contrast: str = ""
    time_of_flight: bool = False
    fieldmap_sequence: bool = False
    pepolar_sequence: bool = False
    technique: str = ""
    acquired: float | None = None
    manufacturer: str = ""
    shim: tuple[float, ...] | None = None
    # the session's: filled by session_facts
    order: int = 0
    echoes: int = 1
    echo_rank: int = 1
    echo_times: tuple[float, ...] = ()
    has_phase: bool = False
    has_magnitude: bool = False
    hz_partner: bool = False
    phase_partner: bool = False
    magnitude_echo_times: tuple[float, ...] = ()
    inversions: int = 1
    inversion_rank: int = 1
    sbref_for: int | None = None
    same_pe_dwi_follows: bool = False
    sidecar: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def series(self) -> tuple[str, int | None]:
        """The series the stack belongs to: its SeriesInstanceUID and number (exports that give one
        UID to several numbered series hold separate series, as the scan reads them)."""
        return (self.series_uid, self.series_number)

    @property
    def words(self) -> frozenset[str]:
        """ImageType (and FrameType) values split into words (``M_SE`` -> ``M``, ``SE``)."""
        return frozenset(w for v in self.image_type for w in re.split(r"[ _]", v) if w)

    @property
    def text(self) -> str:
        """The description and protocol name, for tie-breaks."""
        return f"{self.description} {self.protocol}"

    @property
    def max_b(self) -> float | None:
        return max(self.bvalues) if self.bvalues else None


def _words(value: Any) -> frozenset[str]:
    if value is None:
        return frozenset()
    items = list(value) if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue" else \
        str(value).replace("\\", " ").split()
    return frozenset(str(v).strip().upper() for v in items if str(v).strip())


def _values(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    items = list(value) if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue" else \
        str(value).split("\\")
    return tuple(str(v).strip().upper() for v in items if str(v).strip())


def _raw(h: Header | None, name: str) -> Any:
    if h is None:
        return None
    tag, vr = TAGS[name]
    return h.raw(tag, vr)


def _acquisition(acq: Mapping[str, Any], h: Header | None, keyword: str) -> Any:
    """A value the scan kept for the stack, else the header's (enhanced files keep ScanningSequence,
    flip angle and the like in their functional groups)."""
    value = acq.get(keyword)
    if value in (None, "", []) and h is not None:
        value = h.get(keyword)
    return value


def _component(stack: Stack, h: Header | None, image_type: tuple[str, ...]) -> str:
    """``phase``, ``real``, ``imag`` or ``mag``: the split label first (the scan's reading of
    ImageType), then ComplexImageComponent (enhanced files)."""
    parts = set(stack.label.split("_"))
    if "ph" in parts:
        return "phase"
    if "real" in parts:
        return "real"
    if "imag" in parts:
        return "imag"
    complex_part = to_str(_raw(h, "ComplexImageComponent")).upper()
    values = set(image_type)
    if complex_part == "PHASE" or {"P", "PHASE"} & values:
        return "phase"
    return {"REAL": "real", "IMAGINARY": "imag"}.get(complex_part, "mag")


def _spin_echo(name: str, h: Header | None, sequence: frozenset[str], technique: str) -> bool | None:
    """True for a spin echo, False for a gradient echo, None when the files do not say.

    Siemens' sequence name is the most specific (``epfid``: FID, a gradient echo, even where
    ScanningSequence says SE; ``epse``, ``ep_b``, ``tse``, ``spc``: spin echoes), then the
    enhanced EchoPulseSequence, Philips' scanning technique, then ScanningSequence.
    """
    bare = name.split("/")[-1].lstrip("*").lower()
    if re.match(GRADIENT_ECHO_NAMES, bare):
        return False
    if re.match(SPIN_ECHO_NAMES, bare):
        return True
    pulse = to_str(_raw(h, "EchoPulseSequence")).upper()
    if pulse in ("SPIN", "GRADIENT"):
        return pulse == "SPIN"
    technique = re.sub(r"^(T1|T2|PD)(?=[A-Z])", "", technique.upper())  # T1TFE, T2FFE: the contrast, then the technique
    if technique.startswith(("SE", "TSE", "IR", "DWISE")):
        return True
    if technique.startswith(("FE", "FFE", "T1FFE", "T2FFE", "TFE")):
        return False
    if "SE" in sequence and "GR" not in sequence:
        return True
    if "GR" in sequence and "SE" not in sequence:
        return False
    return None


def _is_epi(sequence: frozenset[str], name: str, h: Header | None, words: frozenset[str], technique: str,
            options: frozenset[str]) -> bool:
    if "EP" in sequence or to_str(_raw(h, "EchoPlanarPulseSequence")).upper() == "YES":
        return True
    if re.match(r"\*?ep", name.lower()) or "EPI" in words or "EPI" in technique.upper():
        return True
    ge = f"{to_str(_raw(h, 'GEPulseSequenceName'))} {to_str(_raw(h, 'GEInternalPulseSequenceName'))}".lower()
    return "epi" in ge or any(o.startswith("EPI") for o in options)


def _asl(h: Header | None, words: frozenset[str], name: str, protocol_file: str) -> str:
    """An ASL marker: the enhanced ArterialSpinLabelingContrast (CONTINUOUS, PSEUDOCONTINUOUS,
    PULSED), ImageType ASL, Philips' label type, or a sequence (file) named after ASL."""
    contrast = to_str(_raw(h, "ArterialSpinLabelingContrast")).upper()
    if contrast:
        return contrast
    if "ASL" in words or to_str(_raw(h, "PhilipsASLLabelType")):
        return "ASL"
    seq = f"{name} {protocol_file} {to_str(_raw(h, 'GEPulseSequenceName'))}".lower()
    return "ASL" if re.search(r"asl", seq) else ""


def _field_mapping(name: str, protocol_file: str, h: Header | None) -> bool:
    """The sequence is a field-mapping one (:data:`FIELD_MAPPING_NAMES`): Siemens' sequence name or
    file, GE's pulse sequence names."""
    ge = f"{to_str(_raw(h, 'GEPulseSequenceName'))} {to_str(_raw(h, 'GEInternalPulseSequenceName'))}"
    names = [name.split("/")[-1].lstrip("*"), protocol_file.replace("\\", "/").split("/")[-1], *ge.split()]
    return any(re.match(FIELD_MAPPING_NAMES, n, re.IGNORECASE) for n in names if n)


def _siemens_protocol(h: Header | None) -> dict[str, str]:
    """The Siemens protocol (ASCCONV): the CSA series header, else XA's (0021,1019)."""
    if h is None:
        return {}
    protocol = ascconv(h.ds)
    if protocol:
        return protocol
    raw = h.raw(*SIEMENS_XA_PROTOCOL)
    return parse_ascconv(bytes(raw)) if isinstance(raw, (bytes, bytearray)) else {}


def _shim(protocol: Mapping[str, str]) -> tuple[float, ...] | None:
    """The shim settings of :data:`SHIM_KEYS` (absent ones 0, as the protocol omits zeros), None
    when the protocol names none."""
    if not any(key in protocol for key in SHIM_KEYS):
        return None
    return tuple(protocol_number(protocol, key, 0.0) or 0.0 for key in SHIM_KEYS)


def _bvalues(stack: Stack) -> tuple[float, ...] | None:
    """The b-value of each volume (s/mm2), None unless every volume has one."""
    if stack.problem or not stack.frames:
        return None
    heads = [stack.frames[t * stack.n_slices].mr for t in range(stack.n_frames)]
    if any(mr is None or mr.bvalue is None for mr in heads):
        return None
    return tuple(float(mr.bvalue) for mr in heads)  # type: ignore[union-attr, arg-type]


def stack_facts(stack: Stack, sidecar: Mapping[str, Any], index: int = 0) -> Facts:
    """The :class:`Facts` of ``stack`` from its scan record, one header and its sidecar fields
    (:func:`volume.dicom.bids.sidecar_fields`); the session's fields keep their defaults."""
    f0 = stack.first
    acq = f0.acquisition
    h = stack_header(stack) if stack.modality == "MR" and not stack.problem else None
    image_type = _values(acq.get("ImageType")) + tuple(v for v in _values(_raw(h, "FrameType"))
                                                       if v not in _values(acq.get("ImageType")))
    sequence = _words(_acquisition(acq, h, "ScanningSequence"))
    variant = _words(_acquisition(acq, h, "SequenceVariant"))
    options = _words(_raw(h, "ScanOptions"))
    name = to_str(_acquisition(acq, h, "SequenceName") or _raw(h, "PulseSequenceName")
                  or _raw(h, "GEPulseSequenceName"))
    technique = to_str(_raw(h, "PhilipsScanningTechnique"))
    words = frozenset(w for v in image_type for w in re.split(r"[ _]", v) if w)
    siemens = _siemens_protocol(h) if "SIEMENS" in str(acq.get("Manufacturer", "")).upper() else {}
    protocol_file = siemens.get("tSequenceFileName", "")
    te = to_float(_acquisition(acq, h, "EchoTime"))
    if te is not None and te <= 0:  # 0: no echo time given (a computed image), not a short one
        te = None
    if te is None and sidecar.get("EchoTime") is not None:
        te = float(sidecar["EchoTime"]) * 1000.0
    if te is None:
        te = to_float(_raw(h, "EffectiveEchoTime"))
    ti = to_float(_acquisition(acq, h, "InversionTime"))
    words_ft = _words(_raw(h, "FrameType"))
    return Facts(
        index=index, stack_id=stack.id, series_uid=stack.series_uid, series_number=stack.series_number,
        description=stack.series_description or "", protocol=to_str(acq.get("ProtocolName")),
        modality=stack.modality, kind=stack.kind, problem=stack.problem, rgb=stack.rgb, label=stack.label,
        volumes=stack.n_frames, slices=stack.n_slices,
        grid=(stack.rows, stack.cols, stack.n_slices, tuple(round(v, 2) for v in stack.spacing or ())),
        image_type=image_type, sequence=sequence, variant=variant, options=options, sequence_name=name,
        epi=_is_epi(sequence, name, h, words, technique, options),
        spin_echo=_spin_echo(name, h, sequence, technique), echo_time=te,
        inversion_time=ti if ti and ti > 0 else None,
        repetition_time=sidecar.get("RepetitionTime"), flip_angle=to_float(_acquisition(acq, h, "FlipAngle")),
        acquisition_type=to_str(_acquisition(acq, h, "MRAcquisitionType")).upper(),
        component=_component(stack, h, image_type), derived_kind=stack.derived, bvalues=_bvalues(stack),
        units=str(sidecar.get("Units") or ""),
        field_map_frames=bool({"FIELD_MAP", "FIELDMAP", "B0_MAP"} & (set(image_type) | words_ft))
        or "fieldmap" in stack.label,
        ped=str(sidecar.get("PhaseEncodingDirection") or ""),
        pe_axis=str(sidecar.get("PhaseEncodingDirection") or sidecar.get("PhaseEncodingAxis") or "")[:1],
        readout=bool(sidecar.get("TotalReadoutTime") or sidecar.get("EffectiveEchoSpacing")),
        echo_times_12=bool(sidecar.get("EchoTime1") and sidecar.get("EchoTime2")),
        asl=_asl(h, words, name, protocol_file), contrast_agent=to_str(_raw(h, "ContrastBolusAgent")),
        acquisition_contrast=to_str(_raw(h, "AcquisitionContrast")).upper(),
        time_of_flight=to_str(_raw(h, "TimeOfFlightContrast")).upper() == "YES",
        fieldmap_sequence=_field_mapping(name, protocol_file, h),
        pepolar_sequence="epi_pepolar" in to_str(_raw(h, "GEPulseSequenceName")).lower(),
        technique=(technique or (name if str(acq.get("Manufacturer", "")).upper().startswith("PHILIPS") else "")).upper(),
        acquired=min((f.acquisition_time for f in stack.frames if f.acquisition_time is not None), default=None),
        manufacturer=str(acq.get("Manufacturer", "")), shim=_shim(siemens), sidecar=dict(sidecar),
    )


# --- the session ---------------------------------------------------------------------------------


def acquisition_order(facts: Sequence[Facts]) -> list[Facts]:
    """``facts`` in acquisition order: by the earliest AcquisitionTime when every stack has one,
    else by series number; ties by series number, then the scan's order."""
    timed = all(f.acquired is not None for f in facts)

    def key(f: Facts) -> tuple[Any, ...]:
        number = f.series_number if f.series_number is not None else 1 << 30
        return (f.acquired if timed else 0.0, number, f.index)

    return sorted(facts, key=key)


def same_acquisition(a: Facts, b: Facts) -> bool:
    """Two stacks of one acquisition: one series, or series a scanner writes apart for one protocol
    and grid: first images acquired at most :data:`SAME_ACQUISITION_S` apart (split echoes, the
    magnitude and phase of Siemens XA's field maps numbered 9001, 9002, 10001, or copies), or a
    magnitude and a phase series numbered at most :data:`SAME_ACQUISITION_NUMBERS` apart. Without
    acquisition times, two series of one image component are two acquisitions (repeats)."""
    if a.series == b.series:
        return True
    if not (a.protocol and a.protocol == b.protocol and a.grid == b.grid):
        return False
    if a.acquired is not None and b.acquired is not None and abs(a.acquired - b.acquired) <= SAME_ACQUISITION_S:
        return True
    return (a.component != b.component and a.series_number is not None and b.series_number is not None
            and abs(a.series_number - b.series_number) <= SAME_ACQUISITION_NUMBERS)


def reconstruction(f: Facts) -> tuple[str, ...]:
    """The ImageType words of :data:`RECONSTRUCTION_WORDS` a stack holds (which reconstruction of
    its acquisition it is)."""
    return tuple(w for w in RECONSTRUCTION_WORDS if w in f.words)


def session_facts(facts: Sequence[Facts]) -> list[Facts]:
    """``facts`` with what the other stacks of the session say about each (in the input order)."""
    ordered = acquisition_order(facts)
    rank = {f.index: k for k, f in enumerate(ordered)}
    out = []
    for f in facts:
        group = [g for g in facts if g.modality == "MR" and not g.problem and same_acquisition(f, g)]
        same_part = [g for g in group if g.component == f.component and g.grid == f.grid
                     and reconstruction(g) == reconstruction(f) and g.echo_time]
        times = tuple(sorted({round(g.echo_time, 3) for g in same_part}))  # type: ignore[arg-type]
        echo_rank = times.index(round(f.echo_time, 3)) + 1 if f.echo_time and round(f.echo_time, 3) in times else 1
        phases = [g for g in group if g.component == "phase" and g.grid == f.grid and not g.epi]
        magnitudes = {round(g.echo_time, 3) for g in group
                      if g.component == "mag" and g.grid == f.grid and not g.epi and g.echo_time}
        protocol_tis = sorted({round(g.inversion_time) for g in facts if g.protocol == f.protocol and f.protocol
                               and g.inversion_time and g.grid == f.grid and g.component == f.component
                               and not _is_derived(g) and "UNI" not in g.words})
        out.append(replace(
            f, order=rank[f.index], echoes=max(1, len(times)), echo_rank=echo_rank, echo_times=times,
            has_phase=any(g.component == "phase" for g in group),
            has_magnitude=any(g.component == "mag" for g in group if g.grid == f.grid),
            hz_partner=any((g.units.upper() == "HZ" or g.field_map_frames) for g in group
                           if g.series == f.series and g.index != f.index),
            phase_partner=bool(phases) and f.component != "phase",
            magnitude_echo_times=tuple(sorted(magnitudes)),
            inversions=max(1, len(protocol_tis)),
            inversion_rank=(protocol_tis.index(round(f.inversion_time)) + 1
                            if f.inversion_time and round(f.inversion_time) in protocol_tis else 1),
            sbref_for=_sbref_target(f, ordered),
            same_pe_dwi_follows=_dwi_follows(f, ordered),
        ))
    return out


def _successors(f: Facts, ordered: Sequence[Facts]) -> list[Facts]:
    k = next(i for i, g in enumerate(ordered) if g.index == f.index)
    return list(ordered[k + 1: k + 1 + SBREF_LOOKAHEAD])


def _sbref_target(f: Facts, ordered: Sequence[Facts]) -> int | None:
    """The index of the multi-volume EPI run a single-volume EPI stack precedes (same in-plane
    grid and slices, same phase encoding, same echo), or None."""
    if not (f.epi and f.volumes == 1):
        return None
    for g in _successors(f, ordered):
        if (g.epi and g.volumes > 1 and g.grid == f.grid and g.ped == f.ped and g.component == f.component
                and g.echo_rank == f.echo_rank and (g.max_b or 0) <= B0_MAX):
            return g.index
    return None


def _dwi_follows(f: Facts, ordered: Sequence[Facts]) -> bool:
    return any(g.ped == f.ped and g.grid[:3] == f.grid[:3] and (g.max_b or 0) > B0_MAX and g.volumes > 1
               for g in _successors(f, ordered))


# --- predicates ------------------------------------------------------------------------------------


def _is_derived(f: Facts) -> bool:
    """Computed or reformatted by the scanner: ImageType DERIVED or SECONDARY, or a word of
    :data:`_DERIVED_WORDS` (MPR, MIP, MOCO, SWI, maps...). MP2RAGE's UNI image is derived but raw
    data for BIDS (UNIT1), and so is a field map in Hz."""
    if "UNI" in f.words or f.units.upper() == "HZ" or f.field_map_frames:
        return False
    first = f.image_type[:2]
    if "DERIVED" in first or "SECONDARY" in first:
        return True
    joined = {w.replace(" ", "") for w in f.image_type}
    return bool(_DERIVED_WORDS & (f.words | joined))


def _diffusion(f: Facts) -> bool:
    return f.bvalues is not None and (f.max_b or 0) > B0_MAX


def _b0_only(f: Facts) -> bool:
    """Unweighted volumes of a diffusion sequence: b-values all <= :data:`B0_MAX`, and ImageType,
    AcquisitionContrast or the sequence's name says diffusion (fMRI files often carry b=0 too)."""
    diffusion_sequence = ("DIFFUSION" in f.words or f.acquisition_contrast == "DIFFUSION"
                          or bool(re.match(DIFFUSION_NAMES, f.sequence_name.lower())))
    return f.bvalues is not None and (f.max_b or 0) <= B0_MAX and diffusion_sequence


def _inversion(f: Facts) -> bool:
    return "IR" in f.sequence or "MP" in f.variant or "IR" in f.options or f.inversion_time is not None


def _short_te(f: Facts, limit: float) -> bool:
    return f.echo_time is not None and f.echo_time < limit


def _described_contrast(f: Facts) -> str:
    for suffix, pattern in _DESCRIBED_CONTRAST:
        if pattern.search(f.text):
            return suffix
    return ""


#: Every condition a rule may name: a function of the facts. The rules table is data; these are
#: the only code it refers to.
PREDICATES: dict[str, Callable[[Facts], bool]] = {
    "convertible": lambda f: not f.problem,
    "mr": lambda f: f.modality == "MR",
    "colour": lambda f: f.rgb,
    "localizer": lambda f: f.kind == "localizer" or "LOCALIZER" in f.words,
    "described_localizer": lambda f: bool(_DESCRIBED_LOCALIZER.search(f.text)),
    "scanner_diffusion_map": lambda f: f.derived_kind in ("ADC", "trace", "FA", "eADC"),
    "derived": _is_derived,
    "diffusion": _diffusion,
    "b0_only": _b0_only,
    "one_volume": lambda f: f.volumes == 1,
    "few_volumes": lambda f: f.volumes <= EPI_FMAP_MAX_VOLUMES,
    "same_pe_dwi_follows": lambda f: f.same_pe_dwi_follows,
    "field_map_hz": lambda f: f.units.upper() == "HZ" or (f.field_map_frames and f.component == "mag"
                                                           and not f.echo_time),
    "hz_partner": lambda f: f.hz_partner,
    "phase": lambda f: f.component == "phase",
    "magnitude": lambda f: f.component == "mag",
    "echo_times_12": lambda f: f.echo_times_12,
    "two_echoes": lambda f: f.echoes == 2,
    "close_echoes": lambda f: len(f.echo_times) == 2 and 0 < f.echo_times[1] - f.echo_times[0]
                              <= FIELD_MAP_MAX_DELTA_TE_MS,
    "several_echoes": lambda f: f.echoes >= 2,
    "three_echoes": lambda f: f.echoes >= 3,
    "phase_partner": lambda f: f.phase_partner,
    "two_magnitude_echoes": lambda f: len(f.magnitude_echo_times) == 2 and 0 < f.magnitude_echo_times[1]
                                      - f.magnitude_echo_times[0] <= FIELD_MAP_MAX_DELTA_TE_MS,
    "fieldmap_sequence": lambda f: f.fieldmap_sequence,
    "pepolar_sequence": lambda f: f.pepolar_sequence,
    "asl": lambda f: bool(f.asl),
    "described_asl": lambda f: bool(_DESCRIBED_ASL.search(f.text)),
    "described_m0": lambda f: bool(_DESCRIBED_M0.search(f.text)) or "M0" in f.words,
    "perfusion": lambda f: "PERFUSION" in f.words or bool(f.contrast_agent),
    "described_dsc": lambda f: bool(_DESCRIBED_DSC.search(f.text)),
    "epi": lambda f: f.epi,
    "spin_echo": lambda f: f.spin_echo is True,
    "gradient_echo": lambda f: f.spin_echo is False,
    "described_fmap": lambda f: bool(_DESCRIBED_FMAP.search(f.text)),
    "sbref_of_a_run": lambda f: f.sbref_for is not None,
    "bold_echo_time": lambda f: f.echo_time is not None and BOLD_TE_MS[0] <= f.echo_time <= BOLD_TE_MS[1],
    "bold_repetition": lambda f: f.repetition_time is not None and f.repetition_time >= BOLD_MIN_TR_S,
    "uni": lambda f: "UNI" in f.words,
    "two_inversions": lambda f: f.inversions == 2,
    "inversion": _inversion,
    "flair_inversion": lambda f: (f.inversion_time or 0) >= FLAIR_MIN_TI_MS,
    "stir_inversion": lambda f: f.inversion_time is not None and f.inversion_time <= STIR_MAX_TI_MS,
    "long_te": lambda f: f.echo_time is not None and f.echo_time >= LONG_TE_MS,
    "short_te": lambda f: _short_te(f, LONG_TE_MS),
    "t2star_te": lambda f: f.echo_time is not None and f.echo_time >= T2STAR_MIN_TE_MS,
    "t1_te": lambda f: _short_te(f, T2STAR_MIN_TE_MS),
    "t1_tr": lambda f: f.repetition_time is not None and f.repetition_time * 1000 < T1_MAX_TR_MS,
    "low_flip": lambda f: f.flip_angle is not None and f.flip_angle <= PD_MAX_FLIP,
    "time_of_flight": lambda f: f.time_of_flight or f.acquisition_contrast == "TOF",
    "described_angio": lambda f: bool(_DESCRIBED_ANGIO.search(f.text)),
    "three_d": lambda f: f.acquisition_type == "3D",
    "contrast_t1": lambda f: f.acquisition_contrast == "T1",
    "technique_t1": lambda f: bool(re.match(PHILIPS_T1_TECHNIQUES, f.technique)),
    "contrast_t2": lambda f: f.acquisition_contrast == "T2",
    "contrast_pd": lambda f: f.acquisition_contrast == "PROTON_DENSITY",
    "contrast_t2star": lambda f: f.acquisition_contrast == "T2_STAR",
    "contrast_flair": lambda f: f.acquisition_contrast == "FLUID_ATTENUATED",
    "described_t1": lambda f: _described_contrast(f) == "T1w",
    "described_t2": lambda f: _described_contrast(f) == "T2w",
    "described_pd": lambda f: _described_contrast(f) == "PDw",
    "described_t2star": lambda f: _described_contrast(f) == "T2starw",
    "described_flair": lambda f: _described_contrast(f) == "FLAIR",
    "sequence_known": lambda f: f.spin_echo is not None or bool(f.sequence - {"RM"}),
}


@dataclass(frozen=True)
class Rule:
    """One named rule: conditions (a predicate name -> the value it must have), where the stack
    goes, and why. ``suffix`` may name the echo or inversion (``magnitude{echo}``); ``entities``
    lists the entities the rule sets from the facts (``echo``, ``inv``)."""

    name: str
    when: Mapping[str, bool]
    datatype: str
    suffix: str = ""
    entities: tuple[str, ...] = ()
    why: str = ""

    @property
    def uses_description(self) -> bool:
        """True when a condition reads the description (a tie-breaker)."""
        return any(key.startswith("described_") for key in self.when)


def _r(name: str, datatype: str, suffix: str = "", why: str = "", entities: tuple[str, ...] = (),
       **when: bool) -> Rule:
    return Rule(name, dict(when), datatype, suffix, entities, why)


#: The classifier's rules, in the order they are tried: the first whose conditions all hold decides.
RULES: tuple[Rule, ...] = (
    _r("not-convertible", OMIT, why="no volume: convert cannot write it (the stack's problem says why)",
       convertible=False),
    _r("not-mr", SOURCEDATA, why="BIDS raw MRI holds MR images only", mr=False),
    _r("colour", SOURCEDATA, why="colour images (screen captures, colour maps) are not acquisitions", colour=True),
    _r("localizer", SOURCEDATA, why="a localizer (ImageType LOCALIZER, or planes in several orientations)",
       localizer=True),
    _r("scanner-diffusion-map", SOURCEDATA, why="ADC, trace or FA computed by the scanner",
       scanner_diffusion_map=True),
    _r("derived", SOURCEDATA, why="ImageType DERIVED/SECONDARY, or a reformat, projection, motion-corrected "
       "series or map computed by the scanner, or a physiological log stored as an image", derived=True),
    _r("described-localizer", SOURCEDATA, why="the description says localizer, scout, survey or calibration",
       described_localizer=True),
    _r("dwi", "dwi", "dwi", why="diffusion-weighted volumes (b > 50 s/mm2) with their b-values", diffusion=True,
       one_volume=False),
    _r("dwi-one-volume", SOURCEDATA, why="one diffusion-weighted volume: no .bval/.bvec to go with it",
       diffusion=True),
    _r("dwi-sbref", "dwi", "sbref", why="one b=0 volume of a diffusion sequence just before a DWI run with the "
       "same phase encoding", b0_only=True, one_volume=True, same_pe_dwi_follows=True),
    _r("dwi-b0-epi", "fmap", "epi", why="b=0 volumes only from a diffusion sequence: a reverse phase-encoding "
       "reference", b0_only=True),
    _r("fieldmap-hz", "fmap", "fieldmap", why="a B0 field map in Hz (RealWorldValueMapping units, or FrameType "
       "FIELD_MAP)", field_map_hz=True),
    _r("fieldmap-magnitude", "fmap", "magnitude", why="the magnitude image of a series holding a field map in Hz",
       magnitude=True, hz_partner=True, epi=False),
    _r("phasediff", "fmap", "phasediff", why="a gradient-echo phase difference with EchoTime1/EchoTime2",
       phase=True, epi=False, echo_times_12=True),
    _r("phase-echoes", "fmap", "phase{echo}", why="the phase of a two-echo gradient echo whose echoes are at "
       "most 10 ms apart", phase=True, epi=False, two_echoes=True, close_echoes=True, gradient_echo=True),
    _r("phasediff-magnitudes", "fmap", "phasediff", why="one phase image beside magnitude images of two echoes "
       "at most 10 ms apart (EchoTime1/EchoTime2 are theirs)", phase=True, epi=False, several_echoes=False,
       two_magnitude_echoes=True),
    _r("fieldmap-magnitudes", "fmap", "magnitude{echo}", why="the two magnitude echoes (at most 10 ms apart) "
       "of a gradient-echo field map whose phase is in the session", magnitude=True, epi=False,
       two_echoes=True, close_echoes=True, phase_partner=True),
    _r("fieldmap-incomplete", SOURCEDATA, why="an image of a field-mapping sequence that makes no BIDS field map: its "
       "magnitude or phase partner, its echo times or its units are not in the session", fieldmap_sequence=True,
       epi=False),
    _r("asl", "perf", "asl", why="arterial spin labelling (ArterialSpinLabelingContrast, ImageType ASL, a "
       "labelling type, or an ASL sequence)", asl=True, described_m0=False),
    _r("asl-m0", "perf", "m0scan", why="the M0 image of an ASL sequence", asl=True),
    _r("perfusion-dsc", SOURCEDATA, why="dynamic susceptibility contrast (ImageType PERFUSION or a contrast "
       "agent in a time series): no BIDS raw datatype", perfusion=True, one_volume=False),
    _r("described-asl", "perf", "asl", why="an EPI time series whose description says ASL", epi=True,
       one_volume=False, described_asl=True, described_m0=False),
    _r("described-dsc", SOURCEDATA, why="an EPI time series whose description says DSC or bolus", epi=True,
       one_volume=False, described_dsc=True),
    _r("ge-epi-pepolar", "fmap", "epi", why="GE's epi_pepolar sequence (0019,109C): EPI volumes at both "
       "phase-encoding polarities, a reverse phase-encoding field map", epi=True, pepolar_sequence=True),
    _r("epi-spin-echo", "fmap", "epi", why="a spin-echo EPI of at most 10 volumes without diffusion weighting "
       "(reverse phase-encoding field map)", epi=True, spin_echo=True, few_volumes=True, sbref_of_a_run=False),
    _r("described-epi-fmap", "fmap", "epi", why="an EPI of at most 10 volumes whose description says field "
       "map, topup or blip", epi=True, few_volumes=True, described_fmap=True, sbref_of_a_run=False),
    _r("bold", "func", "bold", why="an EPI time series (2 or more volumes)", epi=True, one_volume=False),
    _r("sbref", "func", "sbref", why="a single EPI volume (a single-band reference; a bold has 2 volumes or "
       "more)", epi=True, one_volume=True),
    _r("bold-gradient-echo", "func", "bold", why="a gradient-echo time series with a BOLD echo time "
       "(15-60 ms) and TR of 0.3 s or more", gradient_echo=True, one_volume=False, bold_echo_time=True,
       bold_repetition=True),
    _r("time-series", SOURCEDATA, why="a time series that is no fMRI, DWI or ASL (BIDS anat images are 3D)",
       one_volume=False),
    _r("mp2rage-uni", "anat", "UNIT1", why="the uniform image of an MP2RAGE (ImageType UNI)", uni=True),
    _r("mp2rage", "anat", "MP2RAGE", entities=("inv",), why="an inversion-prepared gradient echo acquired at two "
       "inversion times under one protocol", two_inversions=True, inversion=True, gradient_echo=True),
    _r("angio", "anat", "angio", why="time-of-flight angiography (TimeOfFlightContrast or AcquisitionContrast "
       "TOF)", time_of_flight=True),
    _r("multi-echo-gradient-echo", "anat", "MEGRE", entities=("echo",), why="a gradient echo with several echoes", gradient_echo=True,
       several_echoes=True),
    _r("multi-echo-spin-echo", "anat", "MESE", entities=("echo",), why="a spin echo with three echoes or more",
       spin_echo=True, three_echoes=True),
    _r("contrast-flair", "anat", "FLAIR", why="the scanner's AcquisitionContrast: FLUID_ATTENUATED",
       contrast_flair=True),
    _r("contrast-t2star", "anat", "T2starw", why="the scanner's AcquisitionContrast: T2_STAR", contrast_t2star=True),
    _r("contrast-pd", "anat", "PDw", why="the scanner's AcquisitionContrast: PROTON_DENSITY", contrast_pd=True),
    _r("contrast-t2", "anat", "T2w", why="the scanner's AcquisitionContrast: T2", contrast_t2=True),
    _r("contrast-t1", "anat", "T1w", why="the scanner's AcquisitionContrast: T1", contrast_t1=True),
    _r("technique-t1", "anat", "T1w", why="Philips' scanning technique names a T1 contrast (T1TFE, T1FFE, T1TSE)",
       technique_t1=True),
    _r("flair", "anat", "FLAIR", why="inversion recovery with TI >= 1400 ms and TE >= 45 ms (water nulled)",
       inversion=True, flair_inversion=True, long_te=True),
    _r("stir", "anat", "T2w", why="inversion recovery with TI <= 400 ms and TE >= 45 ms (fat nulled, STIR)",
       inversion=True, stir_inversion=True, long_te=True),
    _r("t1-inversion", "anat", "T1w", why="inversion-prepared with TE < 45 ms (MPRAGE, IR-SPGR, T1-FLAIR)",
       inversion=True, short_te=True, flair_inversion=False),
    _r("angio-described", "anat", "angio", why="a 3D gradient echo with TE < 15 ms whose description says TOF "
       "or angio", gradient_echo=True, three_d=True, t1_te=True, described_angio=True),
    _r("t2star", "anat", "T2starw", why="a gradient echo with TE >= 15 ms", gradient_echo=True, t2star_te=True),
    _r("pd-gradient-echo", "anat", "PDw", why="a gradient echo with TE < 15 ms and a flip angle <= 10 degrees",
       gradient_echo=True, t1_te=True, low_flip=True),
    _r("t1-gradient-echo", "anat", "T1w", why="a gradient echo with TE < 15 ms (FLASH, SPGR, FFE)",
       gradient_echo=True, t1_te=True),
    _r("t2-spin-echo", "anat", "T2w", why="a spin echo with TE >= 45 ms", spin_echo=True, long_te=True),
    _r("t1-spin-echo", "anat", "T1w", why="a spin echo with TE < 45 ms and TR < 1200 ms", spin_echo=True,
       short_te=True, t1_tr=True),
    _r("pd-spin-echo", "anat", "PDw", why="a spin echo with TE < 45 ms and TR >= 1200 ms", spin_echo=True,
       short_te=True),
    _r("described-flair", "anat", "FLAIR", why="the files name no sequence type; the description says FLAIR",
       sequence_known=False, described_flair=True),
    _r("described-t2star", "anat", "T2starw", why="the files name no sequence type; the description says T2*",
       sequence_known=False, described_t2star=True),
    _r("described-pd", "anat", "PDw", why="the files name no sequence type; the description says PD",
       sequence_known=False, described_pd=True),
    _r("described-t2", "anat", "T2w", why="the files name no sequence type; the description says T2",
       sequence_known=False, described_t2=True),
    _r("described-t1", "anat", "T1w", why="the files name no sequence type; the description says T1",
       sequence_known=False, described_t1=True),
    _r("unrecognised", SOURCEDATA, why="no rule recognised the acquisition"),
)


@dataclass(frozen=True)
class Decision:
    """Where a stack goes and which rule decided: a BIDS ``datatype`` and ``suffix`` (with the
    ``entities`` the rule set, e.g. ``{"echo": "2"}``), or :data:`SOURCEDATA` / :data:`OMIT`."""

    rule: str
    datatype: str
    suffix: str = ""
    entities: Mapping[str, str] = field(default_factory=dict)
    why: str = ""


def matches(rule: Rule, facts: Facts) -> bool:
    """True when every condition of ``rule`` holds for ``facts``."""
    return all(bool(PREDICATES[key](facts)) == value for key, value in rule.when.items())


def classify(facts: Facts, rules: Iterable[Rule] = RULES) -> Decision:
    """The first rule of ``rules`` that ``facts`` match, as a :class:`Decision`."""
    for rule in rules:
        if matches(rule, facts):
            echo = facts.echo_rank
            suffix = rule.suffix.replace("{echo}", str(echo))
            entities = {}
            if "echo" in rule.entities:
                entities["echo"] = str(echo)
            if "inv" in rule.entities:
                entities["inv"] = str(facts.inversion_rank)
            return Decision(rule.name, rule.datatype, suffix, entities, rule.why)
    raise AssertionError("the last rule matches everything")  # pragma: no cover


def check_rules(rules: Sequence[Rule] = RULES, predicates: Mapping[str, Any] = PREDICATES) -> list[str]:
    """Problems of a rules table: unknown conditions, repeated names (empty when sound)."""
    problems = []
    names = [r.name for r in rules]
    problems += [f"rule {n!r} is named twice" for n in sorted({n for n in names if names.count(n) > 1})]
    for r in rules:
        problems += [f"rule {r.name!r}: unknown condition {k!r}" for k in r.when if k not in predicates]
    return problems


def rules_table(rules: Sequence[Rule] = RULES) -> list[str]:
    """The rules as Markdown table rows (``docs/bids.md`` shows them: a test keeps the two equal)."""
    rows = ["| # | rule | conditions | goes to | why |", "|---|---|---|---|---|"]
    for k, rule in enumerate(rules, 1):
        conditions = ", ".join(name if value else f"not {name}" for name, value in rule.when.items()) or "(always)"
        where = rule.datatype if rule.datatype in (SOURCEDATA, OMIT) else f"{rule.datatype}/{rule.suffix}"
        where += "".join(f" {e}-" for e in rule.entities)
        rows.append(f"| {k} | `{rule.name}` | {conditions} | {where} | {rule.why} |")
    return rows


def by_series(facts: Iterable[Facts]) -> dict[tuple[str, int | None], list[Facts]]:
    """Facts grouped by SeriesInstanceUID, in the input order."""
    out: dict[tuple[str, int | None], list[Facts]] = defaultdict(list)
    for f in facts:
        out[f.series].append(f)
    return dict(out)


__all__ = ["OMIT", "PREDICATES", "RECONSTRUCTION_WORDS", "RULES", "SOURCEDATA", "Decision", "Facts", "Rule",
           "acquisition_order", "by_series", "check_rules", "classify", "matches", "reconstruction", "rules_table",
           "same_acquisition", "session_facts", "stack_facts"]

"""GE's conventions: where GE MR images keep what the standard elements leave out.

Diffusion
    The b-value of GE's (0043,1039) (its first value; some sequences add 10^9), the gradient in
    (0019,10BB/10BC/10BD), in a frame tied to the image ("freq, phase, slice"), turned into patient
    LPS by :data:`GE_GRADIENT_FRAMES` (dcm2niix's rule); a gradient shorter than unit length scales
    the b-value (multi-shell, :func:`ge_reduced_bvalue`).

Complex components and field maps
    GE names an image's complex component in its Private Image Type (0043,102F: phase, real,
    imaginary; ImageType says ``OTHER``), and stores a B0map series (PSD ``b0map``) as two volumes,
    the field map in Hz first (images numbered up to the locations in acquisition, 0021,104F), then
    the magnitude (:func:`mark_b0map_field_map`). Each becomes its own stack.

Phase-encoding polarity of ``epi_pepolar``
    GE's research PSD ``epi_pepolar`` acquires volumes at both polarities in one series: user data
    12 (0019,10B3) says which (:data:`PEPOLAR_MODES`) by volume number (TemporalPositionIdentifier),
    and GE stores the reversed volumes with their rows in reverse order (:func:`ge_pepolar`). The
    reversed volumes of an alternating series are their own stack (``_rev``), with the opposite
    polarity (:func:`pepolar_polarity`).

Repetition time
    RepetitionTime (0018,0080) leaves out the group delay of BrainWave ``epiRT`` series
    (0043,107C, seconds) and the delay between acquisitions of a multi-phase ``epi`` series (the
    protocol data block's ``DELACQNOAV``, seconds): the time between volumes is their sum
    (:func:`ge_repetition_time`).

Slice timing (:func:`ge_slice_timing`)
    GE writes no slice times. dcm2niix (v1.0.20260724, read here) derives them from the protocol data block
    (0025,101B) alone, for gradient-echo EPI (``epi`` and ``epiRT``): the slice order
    (``SLICEORDER``: 0 sequential, 1 interleaved), the HyperBand factor (``MBACCEL``, or
    (0043,10B6)), the number of slices and the repetition time less the group delay, which
    assumes the slices fill the TR evenly (:func:`ge_acquisition_times`). The times are those of
    GE's slice *locations*, numbered by InstanceNumber within a volume (ascending or descending
    along the slice normal as prescribed). Without a readable protocol block, the times measured
    per image: TriggerTime (0018,1060, ms: ``epi`` multi-phase) within the first volume, else the
    RTIA timer (0021,105E) within the second volume (the first one's is wrong on some releases),
    in seconds since software 24 and in 1/10,000 s before. GE's diffusion EPI (``epi2``) interleaves
    its excitations within the TR (GE's description, dcm2niix issue 635), unless its gradients cycle
    across TRs (:func:`ge_diffusion_cycling`). Anything else (cycling diffusion, variable multi-phase
    delays, HyperBand before software 26, InstanceNumbers that do not follow the slice positions)
    gives no times, and says why.
"""

from __future__ import annotations

import dataclasses
import gzip
import math
import re
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .values import to_float, to_int, to_str

# --- diffusion ----------------------------------------------------------------------------------

GE_BVALUE_OFFSET = 1_000_000_000
"""GE adds 10^9 (sometimes more) to the b-value of (0043,1039) for some sequences: only the
remainder is the b-value (as dcm2niix reads it)."""

GE_SHORT_GRADIENT = (0.03, 0.97)
"""A GE gradient vector with a length in this range encodes a reduced b-value (multi-shell)."""

GE_BVALUE_ROUNDING = 5.0
"""A reduced GE b-value is rounded to a multiple of this (s/mm2), at least this (as dcm2niix)."""

#: GE's gradient components (0019,10BB, 10BC, 10BD) -> components along the image's voxel axes
#: (column direction ``r``, *reversed* row direction ``-c``, normal ``n``), by the plane nearest the
#: slices and the phase-encoding direction (0018,1312): row ``i`` of each matrix is where GE's
#: ``i``-th component goes. This is what dcm2niix (v1.0.20260724, the reference research users
#: compare with) writes, checked case by case in ``tests/test_mr.py`` (axial, sagittal, coronal and
#: oblique slices, both phase directions, InstanceNumbers up or down the normal); it follows the
#: rule of dicm2nii that dcm2niix's authors validated on GE data (axial: ``(-x, y, z)``), except for
#: coronal slices phase-encoded along rows, where the binary differs from its own published rule
#: and both call ROW "untested".
GE_GRADIENT_FRAMES: dict[tuple[str, str], tuple[tuple[int, int, int], ...]] = {
    ("axial", "COL"): ((-1, 0, 0), (0, 1, 0), (0, 0, 1)),
    ("axial", "ROW"): ((0, -1, 0), (-1, 0, 0), (0, 0, 1)),
    ("sagittal", "COL"): ((1, 0, 0), (0, -1, 0), (0, 0, -1)),
    ("sagittal", "ROW"): ((0, 1, 0), (1, 0, 0), (0, 0, -1)),
    ("coronal", "COL"): ((-1, 0, 0), (0, -1, 0), (0, 0, 1)),
    ("coronal", "ROW"): ((0, -1, 0), (1, 0, 0), (0, 0, 1)),
}

#: The plane whose normal is nearest the slice normal, by its dominant patient axis (x, y, z).
_PLANE_OF_AXIS = ("sagittal", "coronal", "axial")


def ge_bvalue(value: Any) -> float | None:
    """The b-value of GE's (0043,1039) (its first value, less the 10^9 offset some sequences add)."""
    b = to_float(value)
    if b is None or b < 0:
        return None
    return float(b % GE_BVALUE_OFFSET) if b >= GE_BVALUE_OFFSET else b


def _unit3(v: Sequence[float]) -> tuple[float, float, float] | None:
    n = math.sqrt(sum(x * x for x in v))
    return None if n == 0 else (v[0] / n, v[1] / n, v[2] / n)


def ge_gradient(raw: tuple[float, float, float], iop: tuple[float, ...] | None, phase_direction: str
                ) -> tuple[float, float, float]:
    """GE's gradient (0019,10BB/BC/BD) as an LPS direction: its components turned into voxel-axis
    components by :data:`GE_GRADIENT_FRAMES`, then into the patient frame through the image's axes.
    Without an orientation or a phase direction the raw components are taken as voxel-axis ones, as
    dcm2niix does."""
    if iop is None:
        return raw
    r = _unit3(iop[:3]) or (1.0, 0.0, 0.0)
    c = _unit3(iop[3:]) or (0.0, 1.0, 0.0)
    n = (r[1] * c[2] - r[2] * c[1], r[2] * c[0] - r[0] * c[2], r[0] * c[1] - r[1] * c[0])
    frame = GE_GRADIENT_FRAMES.get((_PLANE_OF_AXIS[max(range(3), key=lambda i: abs(n[i]))], phase_direction))
    v = raw if frame is None else tuple(sum(raw[i] * frame[i][j] for i in range(3)) for j in range(3))
    # voxel-axis components along r, -c, n -> patient LPS
    return tuple(v[0] * r[i] - v[1] * c[i] + v[2] * n[i] for i in range(3))  # type: ignore[return-value]


GE_DTI = 16
"""GE's code for a DTI acquisition: the series' diffusion direction type (0021,105A) and an image's
"Vas collapse flag" (0043,1030) of a direction image."""

GE_T2 = 14
"""GE's image-level code (0043,1030) of a DTI series' initial T2 (b=0) images (dcm2niix issue 777)."""


def ge_trace_image(series_type: Any, image_type: Any, n_directions: Any) -> bool:
    """True when GE says an image belongs to a diffusion acquisition that is not DTI, so that a weighted
    image without a direction is a trace image (the mean of the directions), not a b=0 image.

    GE writes the nominal b-value and a zero vector on the T2 (b=0) images of a DTI series; so does it
    on the trace images of a DWI series. GE tells them apart (dcm2niix issues 690, 777): the series'
    diffusion direction type (0021,105A) is 16 for DTI; an image's code (0043,1030) is 14 for a DTI
    series' T2 images, 16 for its directions; NumberOfDiffusionDirection (0019,10E0) is 0 for an
    isotropic acquisition. Absent elements say nothing (the image is then read as b=0, dcm2niix's default).
    """
    image = to_int(image_type)
    if image == GE_T2:
        return False
    series = to_int(series_type)
    directions = to_float(n_directions)
    return ((series is not None and series > 0 and series != GE_DTI)
            or (image is not None and image > 0 and image != GE_DTI)
            or directions == 0)


def ge_reduced_bvalue(b: float, gradient: tuple[float, ...]) -> tuple[float, tuple[float, ...]]:
    """GE multi-shell: a gradient shorter than unit length scales the nominal b by its squared
    length (rounded to 5 s/mm2, as dcm2niix does); the direction is then made unit length."""
    length = math.sqrt(sum(v * v for v in gradient))
    if not GE_SHORT_GRADIENT[0] < length < GE_SHORT_GRADIENT[1]:
        return b, gradient
    reduced = b * length * length
    step = GE_BVALUE_ROUNDING
    b2 = step if 0 < reduced < step else float(int((reduced + step / 2) / step) * step)
    return b2, gradient


# --- complex components and field maps ----------------------------------------------------------

GE_COMPONENTS = {1: "ph", 2: "real", 3: "imag"}
"""GE's Private Image Type (0043,102F), SS: 0 magnitude, 1 phase, 2 real, 3 imaginary (GE's note in
dcm2niix's ``GE/README.md``). GE writes the complex component nowhere else: ImageType says ``OTHER``
for each, and a series may hold several at every slice position."""

GE_B0MAP = "B0MAP"
"""The PSD (0019,109C ``b0map``) or internal PSD (0019,109E ``B0map``) of GE's field map sequence."""


def ge_component(value: Any) -> str:
    """The complex component of GE's (0043,102F): ``ph``, ``real``, ``imag``, or "" (magnitude, absent)."""
    return GE_COMPONENTS.get(to_int(value), "") if value is not None else ""


def ge_b0map_locations(psd: Any, internal_psd: Any, locations: Any) -> int | None:
    """The slice locations of a GE B0map's field map, None for other series.

    GE's B0map series holds two volumes (dcm2niix issue 501): the field map in Hz, a map computed
    from the phase difference, then the magnitude image. Images numbered up to the locations in
    acquisition (0021,104F) are the field map (:func:`mark_b0map_field_map`).
    """
    if GE_B0MAP not in to_str(psd).upper() and to_str(internal_psd).upper() != GE_B0MAP:
        return None
    n = to_int(locations)
    return n if n is not None and n > 0 else None


FIELD_MAP_HZ = "Hz"
"""The unit of a field map's values (the ``rwv_units`` of :class:`volume.dicom.mr.MRFrame`)."""


def mark_b0map_field_map(frames: Sequence[Any]) -> list[Any]:
    """The images of a GE B0map series (:class:`volume.dicom.headers.FrameHeader`) with its field map
    marked as a map in Hz: those numbered up to the field map's locations, when the series also
    holds images numbered beyond them (the magnitude). Other series come back as they are."""
    frames = list(frames)
    limits = {f.mr.b0map_locations for f in frames if f.mr is not None and f.mr.b0map_locations}
    if len(limits) != 1:
        return frames
    n = limits.pop()
    if not any(f.instance_number is not None and f.instance_number > n for f in frames):
        return frames
    return [f.replace(mr=dataclasses.replace(f.mr, rwv_units=FIELD_MAP_HZ))
            if f.mr is not None and f.instance_number is not None and f.instance_number <= n else f
            for f in frames]


# --- epi_pepolar: volumes at both phase-encoding polarities ---------------------------------------

GE_PEPOLAR_PSD = "epi_pepolar"
"""The PSD name (0019,109C, e.g. ABCD's ``research/ABCD/epi_pepolar``) of GE's research sequence that
acquires EPI volumes at both phase-encoding polarities in one series."""

PEPOLAR_FORWARD, PEPOLAR_REVERSED, PEPOLAR_REV_FWD, PEPOLAR_FWD_REV = 0, 1, 2, 3
"""GE's user data 12 (0019,10B3) of an ``epi_pepolar`` series: all volumes forward, all reversed,
reversed then forward alternating (odd volumes reversed), forward then reversed alternating (even
volumes reversed); the volume is TemporalPositionIdentifier (0020,0100), from 1 (dcm2niix's
``kGE_EPI_PEPOLAR_*``, issue 532, ``neurolabusc/dcm_qa_polar``)."""

PEPOLAR_MODES = {PEPOLAR_FORWARD: "all volumes forward", PEPOLAR_REVERSED: "all volumes reversed",
                 PEPOLAR_REV_FWD: "reversed then forward, alternating",
                 PEPOLAR_FWD_REV: "forward then reversed, alternating"}

PEPOLAR_MODE_UNKNOWN = -1
"""The mode of an ``epi_pepolar`` image without a user data 12 GE defines (absent, or another value)."""

@dataclass(frozen=True, slots=True)
class Pepolar:
    """What GE says of one ``epi_pepolar`` image: its ``mode`` (:data:`PEPOLAR_MODES`, or
    :data:`PEPOLAR_MODE_UNKNOWN`), whether its phase encoding is ``reversed`` (None: unknown), and
    whether its pixel rows are stored in reverse order and are put back (``flip_rows``)."""

    mode: int
    reversed: bool | None
    flip_rows: bool = False


def ge_pepolar_mode(psd: Any, user_data_12: Any) -> int | None:
    """The ``epi_pepolar`` mode of an image (:data:`PEPOLAR_MODES`), :data:`PEPOLAR_MODE_UNKNOWN` when
    (0019,10B3) is absent or says something else, None when the PSD is not ``epi_pepolar``."""
    if GE_PEPOLAR_PSD not in to_str(psd).lower():
        return None
    value = to_float(user_data_12)
    if value is None or not math.isfinite(value):
        return PEPOLAR_MODE_UNKNOWN
    mode = int(round(value))  # dcm2niix rounds the DS
    return mode if mode in PEPOLAR_MODES else PEPOLAR_MODE_UNKNOWN


def ge_pepolar_reversed(mode: int, volume: Any) -> bool | None:
    """Whether volume ``volume`` (TemporalPositionIdentifier, from 1) of an ``epi_pepolar`` series of
    ``mode`` has the reversed phase-encoding polarity; None when the files do not say (an unknown
    mode, or an alternating mode without a whole volume number from 1)."""
    if mode == PEPOLAR_FORWARD:
        return False
    if mode == PEPOLAR_REVERSED:
        return True
    v = to_float(volume)
    if mode not in (PEPOLAR_REV_FWD, PEPOLAR_FWD_REV) or v is None or v < 1 or not float(v).is_integer():
        return None
    odd = int(v) % 2 == 1
    return odd if mode == PEPOLAR_REV_FWD else not odd


def ge_pepolar(psd: Any, user_data_12: Any, volume: Any, phase_direction: Any) -> Pepolar | None:
    """The :class:`Pepolar` of one GE image, None when its PSD is not ``epi_pepolar``.

    GE stores the volumes of reversed polarity with their rows in reverse order and nothing else
    changed in the header (``dcm_qa_polar``; dcm2niix reverses their rows, ``nii_flipImgY``, without
    changing the spatial transform): their rows are put back so that each pixel sits where the
    geometry says. That is documented for phase encoding along the columns (``COL``, the ABCD axial
    series); along the rows nothing says which order GE writes, so no pixel is moved.
    """
    mode = ge_pepolar_mode(psd, user_data_12)
    if mode is None:
        return None
    reversed_ = ge_pepolar_reversed(mode, volume)
    flip = bool(reversed_) and to_str(phase_direction).upper().startswith("COL")
    return Pepolar(mode=mode, reversed=reversed_, flip_rows=flip)


PEPOLAR_REVERSED_LABEL = "rev"
"""The stack label of the reversed volumes of an alternating ``epi_pepolar`` series (dcm2niix gives them
the series number + 1000)."""


def pepolar_part(pepolar: Pepolar | None) -> str:
    """The split key of an image: :data:`PEPOLAR_REVERSED_LABEL` for a reversed ``epi_pepolar`` image,
    else "" (forward, unknown, or not ``epi_pepolar``)."""
    return PEPOLAR_REVERSED_LABEL if pepolar is not None and pepolar.reversed else ""


def pepolar_polarity(pepolars: Sequence[Pepolar | None], positive: int | None, phase_direction: str
                     ) -> tuple[int | None, str]:
    """The phase-encoding polarity (1 positive, 0 negative, None unknown) of a stack of GE images whose
    ``epi_pepolar`` states are ``pepolars``, the header's polarity being ``positive``, and why it is
    unknown ("" when known or not ``epi_pepolar``).

    The header's polarity (0018,9034 or 0043,102A) is the same on every volume; reversed volumes have
    the opposite one (dcm2niix toggles it). Never guessed: an unknown mode or volume, or reversed
    volumes phase-encoded along the rows (whose pixel order is not documented), give none.
    """
    states = [p for p in pepolars if p is not None]
    if not states:
        return positive, ""
    if any(p.mode == PEPOLAR_MODE_UNKNOWN for p in states):
        return None, ("GE epi_pepolar without a user data 12 (0019,10B3) of 0-3: which volumes have the "
                      "reversed phase-encoding polarity is unknown")
    if any(p.reversed is None for p in states):
        return None, ("GE epi_pepolar with alternating polarities (0019,10B3 = "
                      f"{states[0].mode}) but no volume number (TemporalPositionIdentifier, 0020,0100): which "
                      "volumes are reversed is unknown")
    reversed_ = {p.reversed for p in states}
    if reversed_ == {False}:
        return positive, ""
    if len(reversed_) > 1:
        return None, "GE epi_pepolar volumes of both polarities in one stack"
    if not phase_direction.upper().startswith("COL"):
        return None, ("GE epi_pepolar reversed volumes not phase-encoded along the columns (InPlanePhaseEncoding"
                      "Direction ROW or absent): GE's pixel order is documented for COL only, so they are "
                      "written as stored")
    return (None if positive is None else 1 - positive), ""


def pepolar_warning(pepolars: Sequence[Pepolar | None]) -> str:
    """A warning for a stack whose ``epi_pepolar`` pixels may be stored mirrored and are not put back,
    or "" (none such, or all put back)."""
    states = [p for p in pepolars if p is not None]
    if any(p.reversed is None for p in states):
        return ("GE epi_pepolar: which volumes are phase-reversed is unknown (0019,10B3 or "
                "TemporalPositionIdentifier missing); GE stores those with their rows reversed, so some "
                "volumes may be upside down")
    if any(p.reversed and not p.flip_rows for p in states):
        return ("GE epi_pepolar: reversed volumes not phase-encoded along the columns are written as stored "
                "(GE's pixel order is documented for COL phase encoding only); check their orientation")
    return ""


# --- header elements ----------------------------------------------------------------------------

GE_PROTOCOL_BLOCK = (0x0025101B, "OB")
"""GE's Protocol Data Block: a gzip-compressed ``KEY "value"`` text after a 4-byte length."""

GE_USER_DATA = (0x0043102A, "OB")
"""GE's raw header (user data) with the phase-encoding polarity bits."""

GE_ECHO_SPACING_US = (0x0043102C, "SS")
GE_ASSET = (0x00431083, "DS")
GE_GROUP_DELAY_S = (0x0043107C, "FL")
"""Delay after slice group (seconds): the pause ``epiRT`` adds after each volume."""
GE_MULTIBAND = (0x004310B6, "LO")
"""Multiband parameters: the HyperBand factor first."""
GE_PULSE_SEQUENCE = (0x0019109C, "LO")
"""The pulse sequence (PSD) name: ``epi``, ``epiRT``, ``epi2``, ``epi_pepolar``..."""
GE_INTERNAL_PULSE_SEQUENCE = (0x0019109E, "LO")
"""The internal PSD name: ``EPI`` (gradient echo), ``EPI2`` (spin echo)."""
GE_RTIA_TIMER = (0x0021105E, "DS")
"""The real-time interactive acquisition timer of an image (seconds; 1/10,000 s before software 24)."""

GE_PROTOCOL_LINE = re.compile(r'\s*(\w+)\s+"(.*)"\s*$')
"""One ``KEY "value"`` line of the protocol data block."""


def ge_protocol(h: Any) -> dict[str, str]:
    """GE's Protocol Data Block (0025,101B) of header ``h`` (:class:`volume.dicom.bids.Header`) as
    ``{KEY: value}`` (empty when absent or unreadable)."""
    raw = h.raw(*GE_PROTOCOL_BLOCK)
    if not isinstance(raw, (bytes, bytearray)):
        return {}
    start = bytes(raw).find(b"\x1f\x8b")
    if start < 0:
        return {}
    try:
        text = gzip.decompress(bytes(raw)[start:]).decode("latin-1")
    except (OSError, EOFError, ValueError):
        return {}
    out = {}
    for line in text.splitlines():
        m = GE_PROTOCOL_LINE.match(line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def ge_phase_positive(h: Any) -> int | None:
    """GE's phase-encoding polarity: 1 ("Unflipped") or 0 ("Flipped"), None when unknown.

    From RectilinearPhaseEncodeReordering (0018,9034: REVERSE_LINEAR is unflipped), else GE's
    raw header in the user data (0043,102A): the EPI flag, the flip bit and the k-space y
    direction, at the offsets of its header version (as dcm2niix reads them).
    """
    reorder = to_str(h.get("RectilinearPhaseEncodeReordering")).upper()
    if reorder.startswith("REVERSE"):
        return 1
    if reorder.startswith("LINEAR"):
        return 0
    blob = h.raw(*GE_USER_DATA)
    if not isinstance(blob, (bytes, bytearray)) or len(blob) < 26:
        return None
    blob = bytes(blob)
    try:
        start = struct.unpack_from("<H", blob, 24)[0]
        version = struct.unpack_from("<f", blob, start)[0]
        if not 5 <= version <= 40:
            return None
        ky_offset = 0x394
        if version >= 25.002:
            start += 0x4C
            ky_offset = 0x394 - 0x8C
        if not struct.unpack_from("<H", blob, start + 0x3A)[0] & 0x800:
            return None  # not EPI
        flipped = bool(struct.unpack_from("<H", blob, start + 0x30)[0] & 0x4)
        if struct.unpack_from("<h", blob, start + ky_offset)[0] == 2:  # k-space read bottom-up
            flipped = not flipped
    except struct.error:
        return None
    return 0 if flipped else 1


def _numbers(value: Any) -> list[float]:
    """The numbers of a multi-valued element (or of its ``\\``-separated text)."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        items = list(value)
    else:
        items = str(value).replace("\\", " ").split()
    return [v for v in (to_float(x) for x in items) if v is not None]


def ge_multiband(h: Any, protocol: dict[str, str]) -> int:
    """The HyperBand factor: the larger of (0043,10B6)'s first value and the protocol's ``MBACCEL``
    (1 when neither says more)."""
    values = _numbers(h.raw(*GE_MULTIBAND))
    tag = int(values[0]) if values and values[0] >= 1 else 1
    block = to_float(protocol.get("MBACCEL"))
    return max(tag, int(block) if block and block >= 1 else 1)


# --- the EPI variant and its repetition time -----------------------------------------------------

EPI_RT, EPI_MULTIPHASE, EPI_PEPOLAR, EPI_DIFFUSION = "epiRT", "multi-phase epi", "epi_pepolar", "diffusion"
"""GE's EPI variants, as dcm2niix tells them apart (:func:`ge_epi_kind`)."""


def ge_epi_kind(h: Any, protocol: dict[str, str]) -> str:
    """Which GE EPI a series is, by the rules dcm2niix applies before it derives slice times: the
    PSD name (0019,109C: ``epi_pepolar``, ``epi2`` diffusion, ``epiRT``, ``epi``), the internal PSD
    name (0019,109E: ``EPI`` is gradient echo, ``EPI2`` spin echo) and the protocol's imaging options
    (``IOPT``: ``FMRI`` for BrainWave, ``MPh`` multi-phase, ``DIFF``). "" for anything else."""
    psd = to_str(h.raw(*GE_PULSE_SEQUENCE)).lower()
    internal = to_str(h.raw(*GE_INTERNAL_PULSE_SEQUENCE)).upper()
    iopt = protocol.get("IOPT", "")
    if "epi_pepolar" in psd:
        return EPI_PEPOLAR
    version = 2 if "epi2" in psd else 1 if "epirt" in psd else 0 if "epi" in psd else -1
    if internal == "EPI" and version != 1:
        version = 0
    if version == 1 or "FMRI" in iopt:
        return EPI_RT
    if version == 0 or "MPh" in iopt:
        return EPI_MULTIPHASE
    if version == 2 or internal == "EPI2" or "DIFF" in iopt:
        return EPI_DIFFUSION
    return ""


VARIABLE_DELAY = -1.0
"""The multi-phase delay of a series whose phases come at varying intervals (IOPT ``MPhVar``)."""


def multiphase_delay_s(protocol: dict[str, str]) -> float:
    """The protocol's delay between acquisitions (``DELACQNOAV``, seconds): 0 when ``DELACQ`` is
    ``Minimum`` in a multi-phase series, :data:`VARIABLE_DELAY` when the phases vary (``MPhVar``)."""
    iopt = protocol.get("IOPT", "")
    if "MPhVar" in iopt:
        return VARIABLE_DELAY
    if "MPh" in iopt and protocol.get("DELACQ", "").strip().upper() == "MINIMUM":
        return 0.0
    delay = to_float(protocol.get("DELACQNOAV"))
    return delay if delay is not None and delay > 0 else 0.0


def _is_time_series(stack: Any) -> bool:
    """A 2D acquisition of several slices, several volumes: the series slice times are for."""
    return (stack.n_slices >= 2 and stack.n_frames >= 2
            and str(stack.first.acquisition.get("MRAcquisitionType", "")).upper() != "3D")


def ge_repetition_time(stack: Any, h: Any, protocol: dict[str, str], tr_ms: float) -> float:
    """Milliseconds between volumes: RepetitionTime plus the group delay (0043,107C), plus, for a
    multi-phase ``epi`` time series, the protocol's delay between acquisitions (as dcm2niix)."""
    delay = to_float(h.raw(*GE_GROUP_DELAY_S))
    if delay and delay > 0:
        tr_ms += delay * 1000.0
    if protocol and _is_time_series(stack) and ge_epi_kind(h, protocol) == EPI_MULTIPHASE:
        extra = multiphase_delay_s(protocol)
        if extra > 0:
            tr_ms += extra * 1000.0
    return tr_ms


# --- slice timing -------------------------------------------------------------------------------

GE_SOFTWARE_VERSION = re.compile(r"([A-Za-z]{2})(\d+)\.(\d+)(?:_([A-Za-z]+)(\d*))?")
"""A GE release after the last ``:`` or ``\\`` of SoftwareVersions: ``DV26.0_R01_1725.a``,
``MR29.1_EA_2039.g`` (prefix, major, minor, release letters and number)."""

HYPERBAND_FIRST_MAJOR = 26.0
"""Before this software major version GE's HyperBand slice order is unknown (dcm2niix gives none)."""

HYPERBAND_27R3 = (27, 3)
"""From 27.0 R03 on (and any 27.1 or later), GE's interleaved HyperBand order swaps the last and
third-to-last excitations when their number is even; before, an even number of excitations gets
one more (empty) excitation."""


@dataclass(frozen=True)
class GEVersion:
    """A GE software release: ``major`` as a number (``26.0``, ``29.1``) and the ``release`` (R03 -> 3,
    EA -> 0); ``major`` is 0 when SoftwareVersions does not name one."""

    major: float = 0.0
    release: int = 0

    @property
    def is_27r3(self) -> bool:
        """27.0 R03 or later."""
        whole = int(self.major)
        return self.major >= 27.1 - 1e-9 or (whole == HYPERBAND_27R3[0] and self.release >= HYPERBAND_27R3[1])


def ge_software_version(text: Any) -> GEVersion:
    """The release named by SoftwareVersions, e.g. ``27\\LX\\MR Software release:RX27.0_R02_1831.a``
    -> 27.0 R02; ``28\\LX\\MR29.1_EA_2039.g`` -> 29.1 EA."""
    if isinstance(text, (list, tuple)) or type(text).__name__ == "MultiValue":
        text = "\\".join(str(v) for v in text)
    s = to_str(text)
    tail = s.rsplit(":", 1)[1] if ":" in s else s.rsplit("\\", 1)[-1]
    m = GE_SOFTWARE_VERSION.match(tail.strip())
    if not m:
        return GEVersion()
    letters, number = (m.group(4) or "").upper(), m.group(5) or ""
    release = int(number) if letters == "R" and number else 0
    return GEVersion(major=int(m.group(2)) + int(m.group(3)) / 10.0, release=release)


def ge_acquisition_times(n_slices: int, multiband: int, tr_s: float, interleaved: bool, version: GEVersion,
                         group_delay_s: float = 0.0, *, r3_order: bool | None = None) -> list[float]:
    """Seconds from the start of a volume at which each of GE's slice *locations* (in InstanceNumber
    order) is excited, by GE's slice-order convention.

    ``multiband`` locations are excited at once, ``ceil(n_slices / multiband)`` excitations filling
    ``tr_s - group_delay_s`` evenly; location ``k`` is excited with ``k mod excitations``.
    Sequential: excitation ``e`` at ``e * dt``. Interleaved: the even excitations first, then the
    odd ones. HyperBand before 27.0 R03 adds an excitation when their number is even; from 27.0
    R03 on, an interleaved even number swaps the last and third-to-last. ``r3_order`` overrides the
    release's order (GE's diffusion sequences keep the earlier one).
    """
    mb = max(1, multiband)
    excitations = math.ceil(n_slices / mb)
    after_r3 = version.is_27r3 if r3_order is None else r3_order
    if mb > 1 and not after_r3 and excitations % 2 == 0:
        excitations += 1
    dt = (tr_s - group_delay_s) / excitations
    order = (list(range(0, excitations, 2)) + list(range(1, excitations, 2))) if interleaved else list(range(excitations))
    slot = {e: i for i, e in enumerate(order)}  # excitation -> its place in time
    times = [slot[e] * dt for e in range(excitations)]
    if interleaved and mb > 1 and after_r3 and excitations > 2 and excitations % 2 == 0:
        times[-1], times[-3] = times[-3], times[-1]
    return [times[k % excitations] for k in range(n_slices)]


@dataclass(frozen=True)
class SliceTiming:
    """Slice times (seconds, one per written slice, ``k`` order) and where they come from, or
    ``times`` None and ``why`` (empty when the series is not one slice times are for)."""

    times: list[float] | None = None
    source: str = ""
    why: str = ""


SLICE_TIME_DECIMALS = 6
"""Slice times are rounded to a microsecond."""

RTIA_OLD_UNIT_S = 1e-4
"""The RTIA timer of GE software before 24 counts 1/10,000 s."""


def _location_ranks(stack: Any) -> list[int] | None:
    """For each written slice (``k`` order) its GE location (0-based rank of its InstanceNumber in
    the first volume), or None when the InstanceNumbers are missing or do not run monotonically
    along the slice positions (then GE's location order is not known)."""
    numbers = [f.instance_number for f in stack.frames[: stack.n_slices]]
    if any(v is None for v in numbers) or len(set(numbers)) != len(numbers):
        return None
    if all(a < b for a, b in zip(numbers, numbers[1:], strict=False)):
        return list(range(len(numbers)))
    if all(a > b for a, b in zip(numbers, numbers[1:], strict=False)):
        return list(range(len(numbers) - 1, -1, -1))
    return None


def _from_protocol(stack: Any, h: Any, protocol: dict[str, str], tr_s: float) -> SliceTiming:
    """Slice times from the protocol data block, as dcm2niix derives them."""
    kind = ge_epi_kind(h, protocol)
    if kind == EPI_DIFFUSION:
        return _diffusion_times(stack, h, protocol, tr_s)
    if not kind:
        return SliceTiming(why="GE stores no slice times, and its protocol block's slice order holds for "
                               "gradient-echo EPI (epi, epiRT) only")
    order = to_float(protocol.get("SLICEORDER"))
    if order is None:
        return SliceTiming(why="GE's protocol block (0025,101B) has no SLICEORDER")
    delay = to_float(h.raw(*GE_GROUP_DELAY_S))
    group_delay_s = delay if delay and delay > 0 else 0.0
    if kind == EPI_MULTIPHASE:
        extra = multiphase_delay_s(protocol)
        if extra == VARIABLE_DELAY:
            return SliceTiming(why="GE multi-phase EPI with variable delays between phases (IOPT MPhVar)")
        if extra > 0:
            group_delay_s = extra
    return _times_by_location(stack, h, protocol, tr_s, interleaved=order != 0, group_delay_s=group_delay_s,
                              source="GE protocol data block (0025,101B)")


def _diffusion_times(stack: Any, h: Any, protocol: dict[str, str], tr_s: float) -> SliceTiming:
    """Slice times of GE's diffusion EPI (``epi2``), as GE describes them (dcm2niix issue 635): the
    excitations interleaved within the TR, no group delay, the HyperBand order of releases before
    27.0 R03 whatever the release; unknown when the gradients cycle across TRs (ALLTR, 2TR, 3TR on
    Premier, UHP and 7.0T systems), where the order changes from TR to TR."""
    mode, _tensor = ge_diffusion_cycling(h)
    if mode not in (CYCLING_OFF, CYCLING_SPECIAL_OFF):
        return SliceTiming(why=f"GE diffusion with gradient cycling {mode} (0019,10B3): its slice order changes "
                               "from TR to TR")
    return _times_by_location(stack, h, protocol, tr_s, interleaved=True, group_delay_s=0.0, r3_order=False,
                              source="GE protocol data block (0025,101B), diffusion EPI")


def _times_by_location(stack: Any, h: Any, protocol: dict[str, str], tr_s: float, *, interleaved: bool,
                       group_delay_s: float, source: str, r3_order: bool | None = None) -> SliceTiming:
    """Each written slice's time from GE's acquisition order of its locations (unknown for HyperBand
    before :data:`HYPERBAND_FIRST_MAJOR`, or when the InstanceNumbers do not give the locations)."""
    mb = ge_multiband(h, protocol)
    version = ge_software_version(stack.first.acquisition.get("SoftwareVersions") or h.get("SoftwareVersions"))
    if mb > 1 and version.major < HYPERBAND_FIRST_MAJOR:
        return SliceTiming(why=f"GE HyperBand before software {HYPERBAND_FIRST_MAJOR:g}: its slice order is unknown")
    ranks = _location_ranks(stack)
    if ranks is None:
        return SliceTiming(why="InstanceNumbers missing or not in slice order: GE's acquisition order of the "
                               "slice locations is unknown")
    by_location = ge_acquisition_times(stack.n_slices, mb, tr_s, interleaved, version, group_delay_s,
                                       r3_order=r3_order)
    return SliceTiming(times=[round(by_location[r], SLICE_TIME_DECIMALS) for r in ranks], source=source)


# --- diffusion gradient cycling -------------------------------------------------------------------

GE_TENSOR_FILE = (0x001910B2, "DS")
"""User data 11: the diffusion tensor file number."""
GE_CYCLING_BLOCK = (0x001910B3, "DS")
"""User data 12: the diffusion gradient cycling block (2: 2TR, 3: 3TR)."""
GE_DERATING = (0x001910B6, "DS")
"""User data 15: the diffusion gradient derating (0.72 marks the special OFF mode on Premier)."""

CYCLING_OFF, CYCLING_ALL_TR, CYCLING_2TR, CYCLING_3TR, CYCLING_SPECIAL_OFF = "OFF", "ALLTR", "2TR", "3TR", "SPOFF"
"""GE's diffusion gradient cycling modes (DiffGradientCyclingGE), dcm2niix issues 635 and 796."""

CYCLING_MODELS = ("PREMIER", "UHP", "7.0T", "7T")
"""ManufacturerModelName words of the systems that cycle diffusion gradients across TRs."""

SPECIAL_OFF_DERATING = 0.72
"""Premier's user data 15 of the special OFF mode (ABCD, ADNI, HCP and UK Biobank protocols)."""

SPECIAL_OFF_DERATING_UHP = (0.5, 1.0)
"""UHP's and 7.0T's range of user data 15 of the special OFF mode."""


def ge_diffusion_cycling(h: Any) -> tuple[str, int | None]:
    """GE's diffusion gradient cycling mode (``OFF``, ``ALLTR``, ``2TR``, ``3TR``, ``SPOFF``) and the
    tensor file number (user data 11, or the cycling block's 2 or 3 when it is 0), from the model name
    (0008,1090) and GE's user data (0019,10B2/B3/B6), as GE describes them (dcm2niix issues 635, 796)."""
    tensor = to_float(h.raw(*GE_TENSOR_FILE))
    tensor_file = int(round(tensor)) if tensor is not None else None
    model = to_str(h.get("ManufacturerModelName")).upper()
    if not any(word in model for word in CYCLING_MODELS):
        return CYCLING_OFF, tensor_file
    derating = to_float(h.raw(*GE_DERATING)) or 0.0
    if "PREMIER" in model and abs(derating - SPECIAL_OFF_DERATING) < 1e-4:
        return CYCLING_SPECIAL_OFF, tensor_file
    if "PREMIER" not in model and SPECIAL_OFF_DERATING_UHP[0] <= derating <= SPECIAL_OFF_DERATING_UHP[1]:
        return CYCLING_SPECIAL_OFF, tensor_file
    block = to_float(h.raw(*GE_CYCLING_BLOCK))
    for value, mode in ((2, CYCLING_2TR), (3, CYCLING_3TR)):
        if block is not None and round(block) == value:
            return mode, value if not tensor_file else tensor_file
    return CYCLING_ALL_TR, tensor_file


def _measured(times: list[float | None], tr_s: float, multiband: int) -> list[float] | None:
    """Times of one volume as seconds from its first slice, when they are a volume's slice times:
    all present, spread over less than a TR, and (HyperBand) ``multiband`` slices at each time."""
    if any(t is None for t in times):
        return None
    lo, hi = min(times), max(times)  # type: ignore[type-var]
    if not 0 < hi - lo < tr_s:  # type: ignore[operator]
        return None
    out = [round(t - lo, SLICE_TIME_DECIMALS) for t in times]  # type: ignore[operator]
    if multiband > 1 and sum(1 for t in out if abs(t) < 1e-4) != multiband:
        return None
    return out


def _rtia_seconds(raw: list[float | None], tr_s: float) -> list[float | None]:
    """RTIA timer values in seconds: as they are when they span less than a TR, else in the
    1/10,000 s of older releases when that fits."""
    known = [v for v in raw if v is not None]
    if not known:
        return raw
    span = max(known) - min(known)
    scale = 1.0 if span < tr_s else RTIA_OLD_UNIT_S if span * RTIA_OLD_UNIT_S < tr_s else 0.0
    return [None if v is None or not scale else v * scale for v in raw]


def ge_slice_timing(stack: Any, h: Any, protocol: dict[str, str], tr_s: float | None,
                    header_of: Callable[[int], Any]) -> SliceTiming:
    """GE slice times of ``stack`` (a :class:`volume.dicom.series.Stack`) from its first image's header
    ``h`` and protocol block ``protocol``, ``tr_s`` the time between volumes; ``header_of(i)`` reads
    image ``i``'s header (for the RTIA timer)."""
    if not _is_time_series(stack):
        return SliceTiming()
    if not tr_s or tr_s <= 0:
        return SliceTiming(why="no RepetitionTime")
    if protocol:
        return _from_protocol(stack, h, protocol, tr_s)
    n = stack.n_slices
    mb = ge_multiband(h, {})
    first = stack.frames[:n]
    trigger = [None if f.trigger_time is None else f.trigger_time / 1000.0 for f in first]
    times = _measured(trigger, tr_s, mb)
    if times is not None:
        return SliceTiming(times=times, source="TriggerTime (0018,1060)")
    second = range(n, 2 * n)
    rtia = [to_float(hd.raw(*GE_RTIA_TIMER) if (hd := header_of(i)) is not None else None) for i in second]
    times = _measured(_rtia_seconds(rtia, tr_s), tr_s, mb)
    if times is not None:
        return SliceTiming(times=times, source="RTIA timer (0021,105E)")
    return SliceTiming(why="no GE protocol data block (0025,101B), and neither TriggerTime nor the RTIA timer "
                           "(0021,105E) gives one volume's slice times")


__all__ = ["GEVersion", "Pepolar", "SliceTiming", "ge_acquisition_times", "ge_b0map_locations", "ge_bvalue", "ge_component",
           "ge_diffusion_cycling", "ge_epi_kind", "ge_gradient", "ge_multiband", "ge_pepolar", "ge_pepolar_mode", "ge_pepolar_reversed",
           "ge_phase_positive", "ge_protocol", "ge_reduced_bvalue",
           "ge_repetition_time", "ge_slice_timing", "ge_software_version", "ge_trace_image", "mark_b0map_field_map",
           "pepolar_part", "pepolar_polarity", "pepolar_warning"]

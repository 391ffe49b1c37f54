"""DICOM output: a new, derived DICOM series from a Volume (reslices, projections).

One file per slice (and per frame of a 4D volume) in a folder, or a single ``.dcm`` file for a
one-slice volume (a projection). Geometry follows DICOM's own convention: pixel ``(r, c)`` of a
slice lies at ``IPP + c * dc * row_dir + r * dr * col_dir`` with ``row_dir = IOP[:3]``. For a Volume
``(slice, row, column)`` with LPS affine ``A`` that means::

    row_dir = A[:3, 2] / |A[:3, 2]|   (direction of increasing column index), dc = |A[:3, 2]|
    col_dir = A[:3, 1] / |A[:3, 1]|   (direction of increasing row index),    dr = |A[:3, 1]|
    IPP_k   = A @ (k, 0, 0, 1)

The series is new (SeriesInstanceUID, SOPInstanceUIDs) and marked ``DERIVED\\SECONDARY``. Patient
identity (:mod:`volume.phi`) is never invented. Without ``keep_identity`` the patient and study
fields are empty, the study and frame of reference are new, no date or time is written, and the
file says so as DICOM PS3.15 asks: PatientIdentityRemoved ``YES``, DeidentificationMethod (volume,
its version, the Basic Application Confidentiality Profile and the retained descriptors) and
DeidentificationMethodCodeSequence (DCM 113100), LongitudinalTemporalInformationModified
``REMOVED``. With it, the source's identity (``Volume.meta['identity']``) is copied as it was,
including StudyInstanceUID and FrameOfReferenceUID, so the series joins its study, and the file
says what the source said: PatientIdentityRemoved ``NO``, or the source's ``YES`` and method.

The files hold what their IOD asks (MR or CT Image, or Secondary Capture): every Type 1 and
Type 2 attribute of its modules (Type 2 empty when the source does not say), only the source
attributes that IOD holds (:data:`COPIED_BY_SOP_CLASS`), and the conditional ones by their
conditions; each value copied from the source fits its VR (:mod:`volume.io.dicom_vr`), and what
had to be cut or left out is said (``warn``, DeidentificationMethod). David Clunie's ``dciodvfy``
finds no error in them (``tests/test_dicom_validate.py``).

Writes are atomic: the files go into a temporary folder beside ``out`` which is renamed onto
``out`` at the end; a failure leaves nothing behind.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._version import __version__
from ..errors import OutputExistsError, UsageError
from ..ops.window import auto_window
from ..phi import PROFILE_CODE, RETAINED, deidentification_method
from ..volume import Volume
from .atomic import TEMP_PREFIX, atomic_folder, atomic_output, check_writable
from .dicom_vr import cut_text, fit_value, utf8_length

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
"""SOP Class UID of CT Image Storage (used when the source modality is CT)."""

MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
"""SOP Class UID of MR Image Storage (used when the source modality is MR)."""

SECONDARY_CAPTURE_STORAGE = "1.2.840.10008.5.1.4.1.1.7"
"""SOP Class UID of Secondary Capture Image Storage (any other modality, and colour images)."""

EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
"""Transfer syntax of every file written: uncompressed, readable by every DICOM tool."""

INT16_FIT_LIMIT = 32000
"""Largest stored magnitude when float data is fitted into int16 with a slope (headroom for DS rounding)."""

INTEGER_TOLERANCE = 1e-6
"""Float values within this of an integer are stored exactly as integers (slope 1)."""

DERIVED_SERIES_OFFSET = 1000
"""A derived series is numbered source SeriesNumber + this (1000 when the source number is unknown)."""

LO_MAX = 64
"""Longest value of a DICOM LO (Long String) element, e.g. SeriesDescription."""

ST_MAX = 1024
"""Longest value of a DICOM ST (Short Text) element, e.g. DerivationDescription."""

STATS_BLOCK = 4_000_000
"""Values examined at a time when choosing the storage (bounds temporary memory)."""

WINDOW_SAMPLE = 1_000_000
"""Voxels sampled (regularly) to choose the default display window."""

#: Identity the loader carries (:data:`volume.phi.CARRIED`) that a derived series never copies:
#: it has its own series UID and dates.
IDENTITY_NOT_COPIED = frozenset({"SeriesInstanceUID", "SeriesDate", "AcquisitionDate"})

IMAGE_TYPE_OTHER = "OTHER"
"""ImageType value 3 when the caller names none (CT and MR images require one; OTHER is a defined term)."""

LONGITUDINAL_REMOVED = "REMOVED"
"""LongitudinalTemporalInformationModified (0028,0303) of a file written without identity: no date or time."""

#: Source attributes every output copies (General Series, General Equipment, General Image). None is
#: identity but ProtocolName, which :mod:`volume.phi` retains (a descriptor, kept as it was).
GENERAL_COPIED = (
    "Manufacturer", "ManufacturerModelName", "ProtocolName", "BodyPartExamined", "PatientPosition",
    "ImageLaterality",
)

#: Source attributes of the MR Image module, copied into MR outputs only (other IODs do not hold them).
MR_COPIED = (
    "ScanningSequence", "SequenceVariant", "ScanOptions", "MRAcquisitionType", "SequenceName",
    "EchoTime", "RepetitionTime", "InversionTime", "EchoTrainLength", "FlipAngle",
    "MagneticFieldStrength", "ImagingFrequency",
)

#: Source attributes of the CT Image module, copied into CT outputs only.
CT_COPIED = ("KVP", "ConvolutionKernel")

#: What each SOP Class written copies from its source's acquisition fields.
COPIED_BY_SOP_CLASS = {
    MR_IMAGE_STORAGE: GENERAL_COPIED + MR_COPIED,
    CT_IMAGE_STORAGE: GENERAL_COPIED + CT_COPIED,
    SECONDARY_CAPTURE_STORAGE: GENERAL_COPIED,
}

#: Type 1 attributes of the MR Image module and a neutral value when the source lacks them.
MR_REQUIRED_DEFAULTS = {"ScanningSequence": "RM", "SequenceVariant": "NONE"}

#: Type 2 attributes (present, empty when unknown) of the Patient, General Study, General Series,
#: General Equipment, Frame of Reference and General Image modules: every output has them.
TYPE2_EMPTY = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
    "SeriesNumber",
    "Manufacturer",
    "PositionReferenceIndicator",
    "AcquisitionNumber",
)

#: Type 2 (and 2C attributes whose condition always holds) of each IOD beyond :data:`TYPE2_EMPTY`:
#: PatientPosition (General Series, 2C: required for CT and MR Image Storage), and the MR and CT
#: Image modules' own.
TYPE2_BY_SOP_CLASS = {
    MR_IMAGE_STORAGE: ("PatientPosition", "ScanOptions", "MRAcquisitionType", "EchoTime", "EchoTrainLength"),
    CT_IMAGE_STORAGE: ("PatientPosition", "KVP"),
    SECONDARY_CAPTURE_STORAGE: (),
}

#: Body Part Examined values of unpaired structures (PS3.16 Annex L, as dciodvfy applies it): for
#: these, Laterality (0020,0060) must be absent. For any other body part, or none, the General
#: Series module requires it (Type 2C), so it is written, empty when the source does not say.
UNPAIRED_BODY_PARTS = frozenset("""
    ABDOMEN ABDOMENPELVIS AORTA BLADDER BRAIN CEREBELLUM CERVIX CHEST CHESTABDOMEN CHESTABDPELVIS
    CIRCLEOFWILLIS COCCYX COLON CORONARYARTERY CSPINE CTSPINE DUODENUM ESOPHAGUS FACE GALLBLADDER
    HEAD HEADNECK HEART ILEUM ILIUM JAW JEJUNUM LARYNX LIVER LSPINE LSSPINE MAXILLA MEDIASTINUM
    MOUTH NECK NECKCHEST NECKCHESTABDOMEN NECKCHESTABDPELV NOSE PANCREAS PELVIS PENIS PHARYNX
    PROSTATE RECTUM SCALP SKULL SPINE SPLEEN SSPINE STERNUM STOMACH THYMUS THYROID TLSPINE TONGUE
    TRACHEA TSPINE URETER URETHRA UTERUS VAGINA VULVA WHOLEBODY
""".split())

ORIENTATION_LETTERS = (("R", "L"), ("A", "P"), ("F", "H"))
"""PatientOrientation letters of the -/+ LPS axes (x: right/left, y: anterior/posterior, z: feet/head)."""

ORIENTATION_LETTER_MIN = 1e-4
"""A direction cosine must exceed this to add its letter to a PatientOrientation value."""

DEIDENTIFICATION_NOTE = {"changed": "{keyword}: changed to fit its VR", "dropped": "{keyword}: left out, unfit for its VR"}
"""What DeidentificationMethod says of a copied value volume changed (one value per attribute)."""


def dicom_geometry(affine: np.ndarray) -> tuple[list[float], tuple[float, float], float]:
    """DICOM plane geometry of a Volume affine.

    Returns
    -------
    iop
        Six direction cosines: row direction (increasing column index), then column direction.
    pixel_spacing
        ``(dr, dc)``: mm between rows, then between columns (DICOM PixelSpacing order).
    slice_step
        mm between consecutive slices (norm of the slice axis).
    """
    a = np.asarray(affine, dtype=float)
    dr = float(np.linalg.norm(a[:3, 1]))
    dc = float(np.linalg.norm(a[:3, 2]))
    row_dir = a[:3, 2] / dc
    col_dir = a[:3, 1] / dr
    return [*row_dir.tolist(), *col_dir.tolist()], (dr, dc), float(np.linalg.norm(a[:3, 0]))


def slice_positions(affine: np.ndarray, n_slices: int) -> np.ndarray:
    """ImagePositionPatient (LPS mm) of each slice: ``(n_slices, 3)`` float64."""
    a = np.asarray(affine, dtype=float)
    k = np.arange(n_slices, dtype=float)
    return a[:3, 3][None, :] + k[:, None] * a[:3, 0][None, :]


def _value_stats(v: np.ndarray) -> tuple[float, float, bool, bool]:
    """``(min, max, any finite, all integral)`` of the finite values, in blocks (no full-size temporaries)."""
    flat = v.reshape(-1)
    lo, hi, seen, integral = np.inf, -np.inf, False, v.dtype.kind in "iub"
    for start in range(0, flat.size, STATS_BLOCK):
        block = flat[start : start + STATS_BLOCK]
        if v.dtype.kind == "f":
            block = block[np.isfinite(block)]
        if block.size == 0:
            continue
        seen = True
        lo, hi = min(lo, float(block.min())), max(hi, float(block.max()))
    if v.dtype.kind == "f" and seen:
        integral = True
        for start in range(0, flat.size, STATS_BLOCK):
            block = flat[start : start + STATS_BLOCK]
            block = block[np.isfinite(block)]
            if block.size and np.any(np.abs(block - np.rint(block)) > INTEGER_TOLERANCE):
                integral = False
                break
    return lo, hi, seen, integral


def choose_storage(values: np.ndarray) -> tuple[np.dtype, float, float]:
    """How to store modality values: ``(stored dtype, RescaleSlope, RescaleIntercept)``.

    Integer-valued data is stored exactly with slope 1: as int16 or uint16 when it fits, else as
    int16 with an integer intercept when its range spans at most 65536 values. Anything else
    (fractional values from interpolation, a wider range) is fitted into int16 with a slope and
    intercept chosen so the range spans about +-32000 levels; the error is at most half a slope.
    Slope and intercept are rounded to what a DICOM DS (16 characters) can hold first, so the
    stored numbers decode with exactly the values written in the header.
    """
    from pydicom.valuerep import format_number_as_ds

    v = np.asarray(values)
    if v.dtype == bool:
        return np.dtype(np.uint16), 1.0, 0.0
    lo, hi, seen, integral = _value_stats(v)
    if not seen:
        return np.dtype(np.int16), 1.0, 0.0
    if integral and lo >= -32768 and hi <= 32767:
        return np.dtype(np.int16), 1.0, 0.0
    if integral and lo >= 0 and hi <= 65535:
        return np.dtype(np.uint16), 1.0, 0.0
    if integral and hi - lo <= 65535:
        return np.dtype(np.int16), 1.0, float(round(lo) + 32768)
    intercept = float(format_number_as_ds((lo + hi) / 2))
    span = max(abs(hi - intercept), abs(lo - intercept))
    slope = float(format_number_as_ds(span / INT16_FIT_LIMIT)) if span > 0 else 1.0
    if slope <= 0 or not np.isfinite(slope):
        slope = 1.0
    return np.dtype(np.int16), slope, intercept


def quantize(values: np.ndarray, dtype: np.dtype, slope: float, intercept: float) -> np.ndarray:
    """Stored integers for modality ``values``: ``rint((values - intercept) / slope)``, clipped.

    NaNs (nothing measured there) become the lowest stored value.
    """
    info = np.iinfo(dtype)
    x = np.asarray(values, dtype=np.float64)
    if slope != 1.0 or intercept != 0.0:
        x = (x - intercept) / slope
    x = np.where(np.isfinite(x), x, info.min)
    return np.clip(np.rint(x), info.min, info.max).astype(dtype)


def _sop_class(modality: str, rgb: bool) -> str:
    if rgb:
        return SECONDARY_CAPTURE_STORAGE
    return {"CT": CT_IMAGE_STORAGE, "MR": MR_IMAGE_STORAGE}.get(modality, SECONDARY_CAPTURE_STORAGE)


def _ds(value: float) -> str:
    from pydicom.valuerep import format_number_as_ds

    v = float(value)
    if abs(v) < 1e-12:
        v = 0.0
    return format_number_as_ds(v)


class _Header:
    """The attributes every file of one output shares, each fitted to its VR, and notes on what changed.

    ``values`` keeps insertion order (keyword -> value written); ``notes`` holds one
    ``(keyword, message, kind)`` per change: ``kind`` is ``"changed"``, ``"dropped"`` (the value did
    not fit its VR) or ``"iod"`` (left out: the IOD does not allow it here).
    """

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.notes: list[tuple[str, str, str]] = []

    def put(self, keyword: str, value: Any, *, type2: bool = False) -> None:
        """Set ``keyword`` to ``value`` fitted to its VR; when it cannot fit, leave it out (``type2``: empty)."""
        fitted, note = fit_value(keyword, value)
        if note:
            self.notes.append((keyword, note, "dropped" if fitted is None else "changed"))
        if fitted is None:
            if not type2:
                self.values.pop(keyword, None)
                return
            fitted = ""
        self.values[keyword] = fitted

    def ensure(self, keyword: str) -> None:
        """Make a Type 2 attribute present: empty unless it already has a value."""
        self.values.setdefault(keyword, "")

    def drop(self, keyword: str, why: str) -> None:
        """Leave out an attribute the IOD does not allow here; note it when it held a value other than 0."""
        value = self.values.pop(keyword, None)
        try:
            said = float(value) != 0  # type: ignore[arg-type]
        except (TypeError, ValueError):
            said = value not in (None, "", [])
        if said:
            self.notes.append((keyword, f"{keyword}: left out, {why}", "iod"))

    def new_uid(self, keyword: str, source: Mapping[str, Any]) -> None:
        """A new UID for a Type 1 UID attribute the source does not give (or gives unfit: said)."""
        from pydicom.uid import generate_uid

        if self.values.get(keyword):
            return
        self.values[keyword] = generate_uid()
        if source.get(keyword):
            self.notes.append((keyword, f"{keyword}: a new UID written in place of the source's", "iod"))

    def text(self, keyword: str) -> set[str]:
        """The values of a code string attribute, as a set of upper-case strings."""
        v = self.values.get(keyword)
        items = v if isinstance(v, list) else [v]
        return {str(x).strip().upper() for x in items if x not in (None, "")}


def _copy_acquisition(h: _Header, sop_class: str, acquisition: Mapping[str, Any]) -> None:
    """The source's acquisition fields that ``sop_class``'s IOD holds, Type 2 ones empty when unknown."""
    for kw in COPIED_BY_SOP_CLASS[sop_class]:
        if kw in acquisition:
            h.put(kw, acquisition[kw])
    for kw in TYPE2_BY_SOP_CLASS[sop_class]:
        h.ensure(kw)
    if sop_class == MR_IMAGE_STORAGE:
        _mr_conditions(h)
    _laterality(h, acquisition)


def _mr_conditions(h: _Header) -> None:
    """The MR Image module's Type 1 defaults and its conditional attributes (PS3.3 C.8.3.1)."""
    for kw, default in MR_REQUIRED_DEFAULTS.items():
        if not h.values.get(kw):
            h.values[kw] = default
            h.notes.append((kw, f"{kw}: the source gives none that fits (Type 1 in MR images): written as {default}", "iod"))
    sequence, variant = h.text("ScanningSequence"), h.text("SequenceVariant")
    if "IR" in sequence:
        h.ensure("InversionTime")
    else:
        h.drop("InversionTime", "the MR Image IOD allows it only when ScanningSequence includes IR")
    if not ("EP" in sequence and "SK" not in variant):
        h.ensure("RepetitionTime")


def _laterality(h: _Header, acquisition: Mapping[str, Any]) -> None:
    """Laterality (General Series, Type 2C): required unless the body part is unpaired or ImageLaterality says it."""
    source = acquisition.get("Laterality")
    body = h.text("BodyPartExamined")
    if body and body <= UNPAIRED_BODY_PARTS:
        if source:
            h.notes.append(("Laterality", "Laterality: left out, BodyPartExamined is an unpaired structure", "iod"))
        return
    if source:
        h.put("Laterality", source)
    if not h.values.get("ImageLaterality"):
        h.ensure("Laterality")


def patient_orientation(iop: Sequence[float]) -> list[str]:
    """PatientOrientation (0020,0020) of an image plane: the letters of its row and column directions.

    Each value names the patient directions a direction cosine vector points to, the largest
    component first (``L``/``R``, ``P``/``A``, ``H``/``F``), e.g. ``["L", "P"]`` for an axial image.
    """
    return [_direction_letters(iop[:3]), _direction_letters(iop[3:6])]


def _direction_letters(direction: Sequence[float]) -> str:
    v = [float(x) for x in direction]
    order = sorted(range(3), key=lambda i: -abs(v[i]))
    return "".join(ORIENTATION_LETTERS[i][int(v[i] > 0)] for i in order if abs(v[i]) > ORIENTATION_LETTER_MIN)


def _description(base: str, suffix: str, h: _Header) -> str:
    """``base suffix``: the source's description cut, when needed, so that volume's suffix fits LO."""
    base_fit, note = fit_value("SeriesDescription", base) if base else ("", "")
    base_fit = str(base_fit or "")
    room = max(LO_MAX - utf8_length(suffix) - 1, 0) if suffix else LO_MAX
    if utf8_length(base) > room:
        note = (f"SeriesDescription (LO): the source's description ({len(base)} characters) cut to {room} bytes"
                + (f" so that '{suffix}' fits" if suffix else ""))
        base_fit = cut_text(base_fit, room)
    if note:
        h.notes.append(("SeriesDescription", note, "changed"))
    return " ".join(x for x in (base_fit, suffix) if x)


def _provenance(keep_identity: bool, acquisition: Mapping[str, Any], *, description_from_source: bool) -> dict[str, Any]:
    """PatientIdentityRemoved and DeidentificationMethod of the files written.

    Without identity: ``YES`` and volume's method, naming the descriptors of :data:`volume.phi.RETAINED`
    that came from the source. With it: what the source said (a source de-identified before keeps
    its ``YES`` and method), else ``NO``.
    """
    if keep_identity:
        removed = str(acquisition.get("PatientIdentityRemoved") or "").strip().upper()
        if removed == "YES":
            method = acquisition.get("DeidentificationMethod")
            return {"PatientIdentityRemoved": "YES", "DeidentificationMethod": method or "de-identified before volume; method not stated"}
        return {"PatientIdentityRemoved": "NO"}
    from_source = {"SeriesDescription": description_from_source, "ProtocolName": "ProtocolName" in acquisition}
    retained = tuple(kw for kw in RETAINED if from_source.get(kw))
    return {"PatientIdentityRemoved": "YES", "DeidentificationMethod": deidentification_method(__version__, retained)}


def _modality(meta: Mapping[str, Any], h: _Header) -> str:
    """Modality (Type 1) of the output: the source's, upper-cased; ``OT`` when it has none or it is no CS."""
    source = str(meta.get("modality") or "").strip().upper()
    if not source:
        return "OT"
    fitted, note = fit_value("Modality", source)
    if fitted:
        return str(fitted)
    h.notes.append(("Modality", f"{note}; written as OT", "dropped"))
    return "OT"


def _derived_number(meta: Mapping[str, Any]) -> int:
    """SeriesNumber of a derived series: the source's + :data:`DERIVED_SERIES_OFFSET` (that alone when unknown)."""
    try:
        return int(meta.get("series_number")) + DERIVED_SERIES_OFFSET  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return DERIVED_SERIES_OFFSET


def _report(h: _Header, out: Path, *, keep_identity: bool, warn: Callable[[str], None] | None) -> None:
    """Say what was changed to fit: one line each to ``warn`` (or the log) and, without identity, in the file.

    Without identity the file's DeidentificationMethod (volume's own) gains one value per attribute
    cut or left out to fit its VR; with identity the file says what the source said, so the log
    alone tells.
    """
    if not h.notes:
        return
    say = warn if warn is not None else logging.getLogger(__name__).warning
    for _, message, _ in h.notes:
        say(f"DICOM output {out.name}: {message}")
    method = h.values.get("DeidentificationMethod")
    if keep_identity or not isinstance(method, list):
        return
    for keyword, _, kind in h.notes:
        template = DEIDENTIFICATION_NOTE.get(kind)
        if template:
            method.append(cut_text(template.format(keyword=keyword), LO_MAX))
    h.values["DeidentificationMethod"] = list(dict.fromkeys(method))


def _default_window(values: np.ndarray) -> tuple[float, float]:
    flat = np.asarray(values).reshape(-1)
    if flat.size > WINDOW_SAMPLE:
        flat = flat[:: flat.size // WINDOW_SAMPLE]
    w = auto_window(flat)
    return float(w.center), float(w.width)


def _series_folder_files(folder: Path) -> list[Path]:
    """Entries of an existing output folder that a forced rewrite may replace; raise otherwise."""
    entries = list(folder.iterdir())
    foreign = [
        e for e in entries
        if not (e.is_file() and (e.suffix.lower() == ".dcm" or e.name.startswith(TEMP_PREFIX)))
    ]
    if foreign:
        raise OutputExistsError(
            f"{folder}: holds other files than a DICOM series ({foreign[0].name}, ...); "
            "choose a new or empty folder"
        )
    return entries


def write_dicom_series(
    vol: Volume, out: str | os.PathLike[str], *, force: bool = False, source_meta: Mapping[str, Any] | None = None,
    description: str | None = None, description_suffix: str = "derived", series_number: int | None = None,
    derived_from: str | None = None, keep_identity: bool = False, image_type: Sequence[str] = (),
    slice_thickness: float | None = None, window: tuple[float, float] | None = None,
    progress: Callable[[int], None] | None = None, warn: Callable[[str], None] | None = None,
) -> list[Path]:
    """Write ``vol`` as a new DICOM series; return the written file paths in slice order.

    MR or CT Image Storage for an MR or CT source, else Secondary Capture (see the module's
    docstring: every file validates against its IOD).

    Parameters
    ----------
    vol
        ``(S, R, C)``, ``(T, S, R, C)`` (one file per slice per frame, TemporalPositionIdentifier
        ``t + 1``), or RGB (uint8, Secondary Capture). Values are modality values (HU for CT).
    out
        A folder (files ``IM0001.dcm``...), or a ``.dcm`` file for one slice and frame.
    force
        Replace an existing ``.dcm`` file, or an existing folder that holds only ``.dcm`` files.
    source_meta
        The source's metadata (modality, identity, acquisition, series); default ``vol.meta``.
    description
        SeriesDescription (cut to 64 bytes, said); default: the source's and ``description_suffix``.
    description_suffix
        What the default description adds to the source's: ``"derived"``, ``"MIP coronal"``...
    series_number
        SeriesNumber (default: source number + :data:`DERIVED_SERIES_OFFSET`).
    derived_from
        Free text for DerivationDescription, e.g. ``"coronal MPR, linear interpolation"``.
    keep_identity
        Copy the source's patient and study identity (``meta['identity']``); without it those
        fields are empty and the study is new. Never invented.
    image_type
        Extra ImageType values after ``DERIVED\\SECONDARY`` (e.g. ``("MPR",)``, ``("MIP",)``);
        none gives :data:`IMAGE_TYPE_OTHER` (CT and MR images require a third value).
    slice_thickness
        SliceThickness in mm (default: the slice spacing, i.e. the affine's slice axis length).
    window
        ``(center, width)`` display window (default: a robust automatic window of the values).
    progress
        Called with 1 after each file.
    warn
        Called with one line per source value cut or left out to fit its VR or the IOD (never the
        value; default: this module's logger). Without identity DeidentificationMethod says it too.

    Returns
    -------
    list of pathlib.Path
        The files written, in slice order (frame by frame).

    Raises
    ------
    UsageError
        ``out`` ends in ``.dcm`` but the volume has more than one slice.
    OutputExistsError
        ``out`` exists and ``force`` is false (or the folder holds other files).

    Examples
    --------
    >>> vol = volume.load("ct")
    >>> files = volume.write_dicom_series(volume.reslice(vol, spacing=3.0), "iso", source_meta=vol.meta)
    >>> len(files), files[0]
    (48, PosixPath('iso/IM0001.dcm'))
    >>> volume.load("iso")
    Volume(48x64x64, 3x3x3 mm, SPL, axial, int16, 'Phantom head derived')
    """
    out = Path(out)
    meta = dict(source_meta if source_meta is not None else vol.meta)
    single_file = _check_output(vol, out, force)
    h, sop_class, storage, layout = _series(vol, meta, window, slice_thickness, keep_identity=keep_identity,
                                            description=description, description_suffix=description_suffix,
                                            series_number=series_number, derived_from=derived_from,
                                            image_type=image_type)
    _report(h, out, keep_identity=keep_identity, warn=warn)
    files = _SliceFiles(h.values, sop_class, keep_identity, layout, storage)
    return files.write(np.asarray(vol.array) if vol.is_4d else np.asarray(vol.array)[None], out, force=force,
                       single_file=single_file, progress=progress)


def _series(vol: Volume, meta: dict[str, Any], window: tuple[float, float] | None, slice_thickness: float | None,
            **values: Any) -> tuple[_Header, str, _Storage, _Layout]:
    """The values every file of the series shares (``values``: :func:`_series_values`' keywords),
    its SOP class, how its pixels are stored and where its slices lie."""
    h = _Header()
    modality = _modality(meta, h)
    sop_class = _sop_class(modality, bool(vol.rgb))
    storage = _storage(vol, meta, sop_class, window)
    layout = _layout(vol, meta, slice_thickness)
    _series_values(h, meta, sop_class, layout, **values)
    h.values["Modality"] = modality
    return h, sop_class, storage, layout


def _check_output(vol: Volume, out: Path, force: bool) -> bool:
    """Whether ``out`` is one ``.dcm`` file (of a one-image volume); refuse what would be clobbered."""
    single_file = out.suffix.lower() == ".dcm"
    n_frames, n_slices = vol.n_frames, vol.shape[0]
    if single_file and n_frames * n_slices != 1:
        raise UsageError(
            f"{out}: a .dcm file holds one image but the volume has {n_slices} slices"
            f"{f' x {n_frames} frames' if n_frames > 1 else ''}; give a folder as output instead"
        )
    if single_file:
        check_writable(out, force=force)
    elif out.exists() and not force and (not out.is_dir() or any(out.iterdir())):
        raise OutputExistsError(f"{out}: exists already; use --force to overwrite")
    return single_file


@dataclass(frozen=True)
class _Storage:
    """How the values are stored: type, rescale, window, photometric interpretation."""

    rgb: bool
    dtype: np.dtype
    slope: float
    intercept: float
    window: tuple[float, float] | None
    rescale: bool
    photometric: str
    ct: bool


def _storage(vol: Volume, meta: Mapping[str, Any], sop_class: str, window: tuple[float, float] | None) -> _Storage:
    rgb = bool(vol.rgb)
    if rgb:
        dtype, slope, intercept = np.dtype(np.uint8), 1.0, 0.0
    else:
        array = np.asarray(vol.array)
        dtype, slope, intercept = choose_storage(array)
        if window is None:
            window = _default_window(array)
    photometric = "RGB" if rgb else (
        "MONOCHROME1" if str(meta.get("photometric") or "") == "MONOCHROME1" else "MONOCHROME2"
    )
    rescale = not (sop_class == MR_IMAGE_STORAGE and slope == 1.0 and intercept == 0.0)
    return _Storage(rgb, dtype, slope, intercept, window, rescale, photometric, sop_class == CT_IMAGE_STORAGE)


@dataclass(frozen=True)
class _Layout:
    """Where the slices lie, and how many there are."""

    iop: list[float]
    row_mm: float
    col_mm: float
    step: float
    positions: np.ndarray
    thickness: float
    n_frames: int
    n_slices: int
    rows: int
    cols: int
    frame_interval_s: float | None


def _layout(vol: Volume, meta: Mapping[str, Any], slice_thickness: float | None) -> _Layout:
    iop, (dr, dc), step = dicom_geometry(vol.affine)
    n_slices, rows, cols = vol.shape
    thickness = float(slice_thickness) if slice_thickness is not None else step
    return _Layout(list(iop), dr, dc, step, slice_positions(vol.affine, n_slices), thickness, vol.n_frames,
                   n_slices, rows, cols, meta.get("frame_interval_s"))


def _series_values(h: _Header, meta: Mapping[str, Any], sop_class: str, layout: _Layout, *, keep_identity: bool,
                   description: str | None, description_suffix: str, series_number: int | None,
                   derived_from: str | None, image_type: Sequence[str]) -> None:
    """The values every file of the series shares: identity (or none), acquisition, UIDs, the
    series' number and description, dates, ImageType, derivation and provenance."""
    from pydicom.uid import generate_uid

    identity = dict(meta.get("identity") or {}) if keep_identity else {}
    acquisition = dict(meta.get("acquisition") or {})
    source_description = str(meta.get("series_description") or "").strip()
    for kw in TYPE2_EMPTY:
        h.values[kw] = ""
    for kw, value in identity.items():
        if kw not in IDENTITY_NOT_COPIED:
            h.put(kw, value, type2=kw in TYPE2_EMPTY)
    _copy_acquisition(h, sop_class, acquisition)
    h.new_uid("StudyInstanceUID", identity)
    h.values["SeriesInstanceUID"] = generate_uid()
    h.new_uid("FrameOfReferenceUID", identity)
    h.put("SeriesNumber", series_number if series_number is not None else _derived_number(meta), type2=True)
    if description is None:
        description = _description(source_description, description_suffix, h)
    h.put("SeriesDescription", description)
    _series_dates(h, keep_identity)
    h.values["ImageType"] = ["DERIVED", "SECONDARY", *(image_type or (IMAGE_TYPE_OTHER,))]
    if derived_from:
        h.put("DerivationDescription", str(derived_from))
    if sop_class == SECONDARY_CAPTURE_STORAGE:
        h.values["ConversionType"] = "WSD"
        h.values["PatientOrientation"] = patient_orientation(layout.iop)
    provenance = _provenance(keep_identity, acquisition, description_from_source=bool(source_description))
    for kw, value in provenance.items():
        h.put(kw, value)


def _series_dates(h: _Header, keep_identity: bool) -> None:
    """Now, as the series' dates and times with identity; none (Type 2C: present, empty) without."""
    if not keep_identity:
        h.values["ContentDate"], h.values["ContentTime"] = "", ""
        return
    now = _dt.datetime.now()
    date, time = now.strftime("%Y%m%d"), now.strftime("%H%M%S.%f")
    for kw in ("SeriesDate", "ContentDate", "InstanceCreationDate"):
        h.values[kw] = date
    for kw in ("SeriesTime", "ContentTime", "InstanceCreationTime"):
        h.values[kw] = time


@dataclass(frozen=True)
class _SliceFiles:
    """The dataset of each file of a series: the shared values, then the slice's own."""

    shared: Mapping[str, Any]
    sop_class: str
    keep_identity: bool
    layout: _Layout
    storage: _Storage

    def write(self, frames: np.ndarray, out: Path, *, force: bool, single_file: bool,
              progress: Callable[[int], None] | None) -> list[Path]:
        """Every slice of every frame (``frames``: (T, S, R, C)) as one file: ``out`` itself, or
        ``IM0001.dcm``... in the folder ``out`` (written whole or not at all)."""
        import pydicom

        tick = progress or (lambda n=1: None)
        if single_file:
            with atomic_output(out, force=force, suffix=".dcm") as tmp:
                pydicom.dcmwrite(tmp, self.dataset(0, 0, 1, frames[0, 0]), enforce_file_format=True)
            tick(1)
            return [out]
        width = max(4, len(str(self.layout.n_frames * self.layout.n_slices)))
        names: list[str] = []
        with atomic_folder(out, force=force, replaceable=_series_folder_files) as tmp:
            for t in range(self.layout.n_frames):
                for k in range(self.layout.n_slices):
                    names.append(f"IM{len(names) + 1:0{width}d}.dcm")
                    pydicom.dcmwrite(tmp / names[-1], self.dataset(t, k, len(names), frames[t, k]),
                                     enforce_file_format=True)
                    tick(1)
        return [out / name for name in names]

    def dataset(self, t: int, k: int, number: int, pixels: np.ndarray) -> Any:
        """The file of slice ``k`` of frame ``t``, instance ``number``."""
        from pydicom.dataset import Dataset, FileMetaDataset
        from pydicom.uid import generate_uid

        fm = FileMetaDataset()
        fm.MediaStorageSOPClassUID = self.sop_class
        fm.MediaStorageSOPInstanceUID = generate_uid()
        fm.TransferSyntaxUID = EXPLICIT_VR_LITTLE_ENDIAN
        ds = Dataset()
        ds.file_meta = fm
        ds.SpecificCharacterSet = "ISO_IR 192"
        ds.SOPClassUID = self.sop_class
        ds.SOPInstanceUID = fm.MediaStorageSOPInstanceUID
        for kw, value in self.shared.items():
            setattr(ds, kw, value)
        if not self.keep_identity:
            item = Dataset()
            item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = PROFILE_CODE
            ds.DeidentificationMethodCodeSequence = [item]
            ds.LongitudinalTemporalInformationModified = LONGITUDINAL_REMOVED
        ds.InstanceNumber = number
        self._geometry(ds, t, k)
        self._pixels(ds, pixels)
        return ds

    def _geometry(self, ds: Any, t: int, k: int) -> None:
        lay = self.layout
        ds.ImagePositionPatient = [_ds(v) for v in lay.positions[k]]
        ds.ImageOrientationPatient = [_ds(v) for v in lay.iop]
        ds.PixelSpacing = [_ds(lay.row_mm), _ds(lay.col_mm)]
        ds.SliceThickness = _ds(lay.thickness)
        if lay.n_slices > 1:
            ds.SpacingBetweenSlices = _ds(lay.step)
        ds.SliceLocation = _ds(float(np.dot(lay.positions[k], np.cross(lay.iop[:3], lay.iop[3:]))))
        if lay.n_frames > 1:
            ds.TemporalPositionIdentifier = t + 1
            ds.NumberOfTemporalPositions = lay.n_frames
            if lay.frame_interval_s and self.sop_class == MR_IMAGE_STORAGE:
                ds.TemporalResolution = _ds(float(lay.frame_interval_s) * 1000.0)

    def _pixels(self, ds: Any, pixels: np.ndarray) -> None:
        st = self.storage
        ds.Rows, ds.Columns = self.layout.rows, self.layout.cols
        ds.SamplesPerPixel = 3 if st.rgb else 1
        ds.PhotometricInterpretation = st.photometric
        if st.rgb:
            ds.PlanarConfiguration = 0
            data = pixels if pixels.dtype == np.uint8 else np.clip(pixels, 0, 255).astype(np.uint8)
        else:
            data = quantize(pixels, st.dtype, st.slope, st.intercept)
            if st.rescale:
                ds.RescaleIntercept = _ds(st.intercept)
                ds.RescaleSlope = _ds(st.slope)
                ds.RescaleType = "HU" if st.ct else "US"
            if st.window is not None:
                ds.WindowCenter = _ds(st.window[0])
                ds.WindowWidth = _ds(max(st.window[1], 1.0))
        ds.BitsAllocated = data.dtype.itemsize * 8
        ds.BitsStored = ds.BitsAllocated
        ds.HighBit = ds.BitsAllocated - 1
        ds.PixelRepresentation = 1 if data.dtype.kind == "i" else 0
        if not st.rgb:
            ds.SmallestImagePixelValue = int(data.min())
            ds.LargestImagePixelValue = int(data.max())
        ds.PixelData = np.ascontiguousarray(data).astype(data.dtype.newbyteorder("<"), copy=False).tobytes()


"""JSON sidecars beside NIfTI files: acquisition fields with BIDS/dcm2niix names, no patient identity.

Research tools (BIDS validators, fMRIPrep, nilearn) read these names. Times are in seconds as BIDS
wants (DICOM stores EchoTime, RepetitionTime and InversionTime in ms). Patient identity as
:mod:`volume.phi` defines it (name, ID, birth date, dates, UIDs, institution, station...) is left
out unless ``keep_phi`` is given; the policy's retained fields (SeriesDescription, ProtocolName,
AcquisitionTime as a time of day) are written as dcm2niix writes them.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._version import __version__
from ..phi import strip
from ..volume import Volume
from .atomic import atomic_output

CONVERSION_SOFTWARE = "volume"
"""The ``ConversionSoftware`` value of every sidecar."""

MS_TO_S = 1e-3
"""DICOM times (EchoTime, RepetitionTime, InversionTime) are ms; BIDS wants seconds."""

SIGNIFICANT_DIGITS = 10
"""Floats are rounded to this many significant digits (``0.004744``, not ``0.004744000000000001``)."""

#: DICOM keyword in ``meta["acquisition"]`` -> (sidecar key, scale), in the order written.
ACQUISITION_FIELDS: tuple[tuple[str, str, float | None], ...] = (
    ("MagneticFieldStrength", "MagneticFieldStrength", None),
    ("ImagingFrequency", "ImagingFrequency", None),
    ("Manufacturer", "Manufacturer", None),
    ("ManufacturerModelName", "ManufacturersModelName", None),
    ("SoftwareVersions", "SoftwareVersions", None),
    ("PatientPosition", "PatientPosition", None),
    ("BodyPartExamined", "BodyPart", None),
    ("MRAcquisitionType", "MRAcquisitionType", None),
    ("ProtocolName", "ProtocolName", None),
    ("ScanningSequence", "ScanningSequence", None),
    ("SequenceVariant", "SequenceVariant", None),
    ("SequenceName", "SequenceName", None),
    ("ImageType", "ImageType", None),
    ("AcquisitionTime", "AcquisitionTime", None),
    ("SliceThickness", "SliceThickness", None),
    ("SpacingBetweenSlices", "SpacingBetweenSlices", None),
    ("EchoTime", "EchoTime", MS_TO_S),
    ("RepetitionTime", "RepetitionTime", MS_TO_S),
    ("InversionTime", "InversionTime", MS_TO_S),
    ("FlipAngle", "FlipAngle", None),
    ("EchoTrainLength", "EchoTrainLength", None),
    ("PixelBandwidth", "PixelBandwidth", None),
    ("ReceiveCoilName", "ReceiveCoilName", None),
    ("KVP", "KVP", None),
    ("XRayTubeCurrent", "XRayTubeCurrent", None),
    ("ConvolutionKernel", "ConvolutionKernel", None),
    ("GantryDetectorTilt", "GantryDetectorTilt", None),
)

#: Multi-valued DICOM strings BIDS (and dcm2niix) write as one string joined with ``\\``.
BACKSLASH_JOINED = frozenset({"SoftwareVersions", "ScanningSequence", "SequenceVariant", "ScanOptions"})

def _number(value: Any, scale: float | None = None) -> Any:
    """A JSON-safe number: scaled, rounded to :data:`SIGNIFICANT_DIGITS`; None when not finite."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (list, tuple)):
        return [_number(v, scale) for v in value]
    if isinstance(value, int) and scale is None:
        return value
    try:
        f = float(value)
    except (TypeError, ValueError):
        return value if scale is None else None
    if not math.isfinite(f):
        return None
    if scale is not None:
        f *= scale
    f = float(f"{f:.{SIGNIFICANT_DIGITS}g}")
    return int(f) if scale is None and f.is_integer() and abs(f) < 2**53 else f


def _time_text(value: Any) -> str | None:
    """DICOM TM ``HHMMSS.ffffff`` as ``HH:MM:SS.ffffff`` (dcm2niix's AcquisitionTime format)."""
    s = str(value).strip().replace(":", "")
    if len(s) >= 14 and s[:8].isdigit():  # a DT: drop the date (it can identify the patient)
        s = s[8:]
    if len(s) < 2 or not s[:2].isdigit():
        return None
    hh, mm, rest = s[0:2], s[2:4] or "00", s[4:] or "00"
    try:
        seconds = float(rest)
    except ValueError:
        return None
    return f"{hh}:{mm}:{seconds:09.6f}"


def seconds_text(seconds: float) -> str:
    """Seconds since midnight as ``HH:MM:SS.ffffff`` (the sidecar's AcquisitionTime format)."""
    hh, rest = divmod(float(seconds), 3600.0)
    mm, ss = divmod(rest, 60.0)
    return f"{int(hh):02d}:{int(mm):02d}:{ss:09.6f}"


def _clean(value: Any) -> Any:
    """Strings stripped; DICOM multi-valued strings other than ImageType joined with ``\\``."""
    if isinstance(value, str):
        return value.strip()
    return value


def sidecar(vol: Volume, *, keep_phi: bool = False, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The sidecar mapping of ``vol`` (from ``vol.meta`` as the loader fills it).

    Parameters
    ----------
    keep_phi
        Add the identity the loader carries (``meta["identity"]``, :data:`volume.phi.CARRIED`:
        PatientName, PatientID, birth date, dates, UIDs, institution, station...). Off by default:
        then no key of the sidecar is identity under :mod:`volume.phi`, whatever ``extra`` holds.
    extra
        More keys, added last (e.g. what a converter did); a None value removes the key.
    """
    meta = vol.meta
    acq: Mapping[str, Any] = meta.get("acquisition") or {}
    out: dict[str, Any] = {}
    if meta.get("modality"):
        out["Modality"] = meta["modality"]
    for keyword, key, scale in ACQUISITION_FIELDS:
        value = acq.get(keyword)
        if value in (None, "", []):
            continue
        if keyword == "AcquisitionTime":
            value = _time_text(value)
        elif keyword == "ImageType":
            value = [str(v) for v in (value if isinstance(value, (list, tuple)) else [value])]
        elif keyword in BACKSLASH_JOINED and isinstance(value, (list, tuple)):
            value = "\\".join(str(v) for v in value)
        elif isinstance(value, str):
            value = _clean(value)
        else:
            value = _number(value, scale)
        if value in (None, "", []):
            continue
        if scale is not None and isinstance(value, list):
            value = value[0] if len(value) == 1 else value
        out[key] = value
    if meta.get("series_description"):
        out["SeriesDescription"] = meta["series_description"]
    if meta.get("series_number") is not None:
        out["SeriesNumber"] = meta["series_number"]
    if meta.get("echo_number") is not None:
        out["EchoNumber"] = meta["echo_number"]
    for key, value in (meta.get("scaling") or {}).items():
        out[key] = _number(value)
    if meta.get("image_orientation_patient"):
        out["ImageOrientationPatientDICOM"] = _number(list(meta["image_orientation_patient"]))
    if vol.is_4d and meta.get("frame_interval_s"):
        out["FrameInterval"] = _number(meta["frame_interval_s"])
    tilt = meta.get("tilt_corrected_deg")
    out["TiltCorrected"] = bool(tilt)
    if tilt:
        out["GantryTiltCorrectedDegrees"] = _number(tilt)
    gaps = meta.get("gaps_resampled")
    out["GapsResampled"] = bool(gaps)
    if gaps:
        out["GapsResampledSlicesIn"] = gaps.get("slices_in")
        out["GapsResampledSlicesOut"] = gaps.get("slices_out")
        out["GapsResampledSpacing"] = _number(gaps.get("spacing_mm"))
    if meta.get("warnings"):
        out["ConversionWarnings"] = list(meta["warnings"])
    out["ConversionSoftware"] = CONVERSION_SOFTWARE
    out["ConversionSoftwareVersion"] = __version__
    if keep_phi:
        for key, value in (meta.get("identity") or {}).items():
            out[key] = _clean(value)
        if meta.get("series_uid") and not str(meta["series_uid"]).startswith("no-uid:"):
            out.setdefault("SeriesInstanceUID", meta["series_uid"])
    if extra:
        out.update({key: _number(value) if isinstance(value, (float, list, tuple)) else value
                    for key, value in extra.items() if value is not None})
        for key in [k for k, v in extra.items() if v is None]:
            out.pop(key, None)
    return out if keep_phi else strip(out)


def sidecar_text(payload: Mapping[str, Any]) -> str:
    """JSON text of a sidecar (UTF-8, 2-space indent, a final newline)."""
    return json.dumps(payload, indent=2, ensure_ascii=False, allow_nan=False, default=str) + "\n"


def write_sidecar(
    vol: Volume,
    path: str | os.PathLike[str],
    *,
    force: bool = False,
    keep_phi: bool = False,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write :func:`sidecar` of ``vol`` to ``path`` atomically; returns the path.

    Raises
    ------
    OutputExistsError
        ``path`` exists and ``force`` is false.
    """
    path = Path(path)
    text = sidecar_text(sidecar(vol, keep_phi=keep_phi, extra=extra))
    with atomic_output(path, force=force, suffix=".json") as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path

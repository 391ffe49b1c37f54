"""United Imaging Healthcare (UIH) conventions: diffusion weighting, grids, slice times, polarity.

UIH writes its private elements in group 0065, block ``Image Private Header`` (UIH's own table,
published with dcm2niix: ``UIH/README.md``), and two layouts for fMRI and diffusion: one file per
slice, or one file per volume (a *grid*, like a Siemens mosaic). What volume reads, each checked
against dcm2niix on synthetic files (``tests/test_vendors.py``):

* b-value: (0065,1009) BActualValue (FD), before the standard DiffusionBValue;
* gradient direction: (0065,1037) MRDiffusionGradOrientation (FD, 3 values), components along the
  image's row direction, column direction and ``cross(row, col)`` (:func:`gradient_lps`); it is
  preferred to the standard DiffusionGradientOrientation, which UIH fills with the direction
  *before* the slices' rotation (dcm2niix issue 836);
* grid: ImageType holds ``VFRAME`` (or ``MOSAIC``) and (0065,1050) MRNumberOfSliceInVolume gives
  the slice count ``n``; tiles are ``ceil(sqrt(n))`` per row and ``ceil(n / per_row)`` rows
  (:func:`grid_layout`); each slice's ImagePositionPatient and AcquisitionTime are items of
  (0065,1051) MRVFrameSequence, in tile order. Without that sequence the top-level
  ImagePositionPatient is the first tile's (not the grid's corner, unlike Siemens) and tiles
  follow ``cross(row, col)`` at SpacingBetweenSlices, as dcm2niix reads them;
* slice times: each slice's AcquisitionTime (per file, or per grid tile), whose day may end
  between two slices (:func:`volume.dicom.values.seconds_from_first`);
* phase-encoding polarity: (0065,1058), 1 for a flipped (negative) direction, 0 for positive.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .fastheader import element_value, parse_items
from .values import dicom_seconds, to_float, to_floats, to_int, value_of

CREATOR = "Image Private Header"
"""The private creator of UIH's block (0065,10xx)."""

B_VALUE = 0x00651009
"""(0065,1009) BActualValue, FD: the b-value the sequence applied (s/mm2)."""

GRADIENT = 0x00651037
"""(0065,1037) MRDiffusionGradOrientation, FD x3: the gradient along row, column and normal."""

NUMBER_OF_SLICES = 0x00651050
"""(0065,1050) MRNumberOfSliceInVolume, DS: slices tiled in one grid image."""

VFRAME_SEQUENCE = 0x00651051
"""(0065,1051) MRVFrameSequence: one item per tile (ImagePositionPatient, AcquisitionTime...)."""

PHASE_NEGATIVE = 0x00651058
"""(0065,1058) phase-encoding polarity, IS: 1 flipped (negative), 0 positive (dcm2niix issue 410)."""

GRID_IMAGE_TYPES = frozenset({"VFRAME", "MOSAIC"})
"""ImageType values of a UIH grid (one file holding every slice of a volume)."""

def is_uih(manufacturer: Any) -> bool:
    """True for UIH's Manufacturer (0008,0070) value (``UIH``, ``United Imaging Healthcare``)."""
    return str(manufacturer or "").strip().upper().startswith(("UIH", "UNITED IMAGING"))


def gradient_lps(raw: Sequence[float] | None, iop: Sequence[float] | None) -> tuple[float, float, float] | None:
    """UIH's gradient (0065,1037) as a unit LPS direction: ``g0 * row + g1 * col + g2 * normal``.

    ``iop`` is ImageOrientationPatient (row direction, column direction); a zero vector stays zero
    (b=0, or an isotropic image); None without a gradient or an orientation.
    """
    if raw is None or iop is None or len(raw) < 3 or len(iop) < 6:
        return None
    row = np.asarray(iop[:3], dtype=float)
    col = np.asarray(iop[3:6], dtype=float)
    if not (np.all(np.isfinite(row)) and np.all(np.isfinite(col))) or not np.linalg.norm(row) or not np.linalg.norm(col):
        return None
    row, col = row / np.linalg.norm(row), col / np.linalg.norm(col)
    v = raw[0] * row + raw[1] * col + raw[2] * np.cross(row, col)
    n = float(np.linalg.norm(v))
    if n < 1e-6:
        return (0.0, 0.0, 0.0)
    return (float(v[0] / n), float(v[1] / n), float(v[2] / n))


def grid_layout(n: int, rows: int, cols: int) -> tuple[int, int] | str:
    """``(per_row, grid_rows)`` of a grid tiling ``n`` slices in a ``rows`` x ``cols`` image, or why not.

    UIH tiles ``ceil(sqrt(n))`` slices per row, in ``ceil(n / per_row)`` rows (its table for
    (0065,1050)); the image must split evenly.
    """
    if n < 1:
        return f"MRNumberOfSliceInVolume (0065,1050) is {n}"
    per_row = math.ceil(math.sqrt(n))
    grid_rows = math.ceil(n / per_row)
    if rows % grid_rows or cols % per_row:
        return (f"{rows}x{cols} pixels do not split into {grid_rows} rows of {per_row} tiles "
                f"({n} slices, MRNumberOfSliceInVolume 0065,1050)")
    return per_row, grid_rows


def is_grid(image_type: Sequence[str], manufacturer: Any) -> bool:
    """True for a UIH file holding a grid of slices (ImageType VFRAME or MOSAIC)."""
    return is_uih(manufacturer) and any(v in GRID_IMAGE_TYPES for v in image_type)


@dataclass(frozen=True)
class Tile:
    """One slice of a grid: its position (LPS mm), and when it was acquired (seconds since midnight)."""

    ipp: tuple[float, float, float]
    time: float | None


def _vframe_items(ds: Any) -> list[Any]:
    """The items of MRVFrameSequence (0065,1051), however the file encodes them (a pydicom sequence,
    or the raw bytes of a private element whose VR pydicom does not know)."""
    elem = None
    try:
        elem = ds.get(VFRAME_SEQUENCE)
    except Exception:  # noqa: BLE001 - a malformed element is a missing one
        return []
    if elem is None:
        return []
    value = elem.value
    if isinstance(value, (bytes, bytearray)):
        return list(parse_items(bytes(value), explicit=False) or [])
    return list(value) if value else []


def grid_tiles(ds: Any, n: int, iop: Sequence[float], first_ipp: Sequence[float] | None,
               spacing: float | None) -> list[Tile] | str:
    """Where each of the ``n`` tiles of a UIH grid lies and when it was acquired, or why that is unknown.

    From the items of MRVFrameSequence (0065,1051) when there is one per tile, each with its
    ImagePositionPatient; else tile ``k`` lies ``k * spacing`` along ``cross(row, col)`` from
    ``first_ipp`` (the top-level ImagePositionPatient: UIH's is the first tile's).
    """
    items = _vframe_items(ds)
    if len(items) == n:
        tiles = []
        for item in items:
            ipp = to_floats(value_of(item, "ImagePositionPatient"), 3)
            if ipp is None:
                break
            when = value_of(item, "AcquisitionTime") or value_of(item, "AcquisitionDateTime")
            tiles.append(Tile(ipp, dicom_seconds(when) if when else None))  # type: ignore[arg-type]
        else:
            return tiles
    if first_ipp is None:
        return ("ImagePositionPatient is missing at the top level and in MRVFrameSequence (0065,1051): "
                "the slices cannot be placed")
    if not spacing or spacing <= 0:
        return "SpacingBetweenSlices and SliceThickness are missing: the slices cannot be placed"
    row, col = np.asarray(iop[:3], float), np.asarray(iop[3:6], float)
    normal = np.cross(row, col)
    normal /= np.linalg.norm(normal)
    start = np.asarray(first_ipp, float)
    return [Tile(tuple(float(v) for v in start + k * spacing * normal), None) for k in range(n)]  # type: ignore[arg-type]


def number_of_slices(ds: Any) -> int | None:
    """MRNumberOfSliceInVolume (0065,1050) of a grid file, None when absent."""
    return to_int(to_float(element_value(ds, NUMBER_OF_SLICES, "DS")))


def phase_positive(value: Any) -> int | None:
    """The polarity volume writes (1 positive, 0 negative) from UIH's (0065,1058), None when unknown."""
    v = to_int(value)
    return {0: 1, 1: 0}.get(v) if v is not None else None


__all__ = [
    "B_VALUE", "CREATOR", "GRADIENT", "GRID_IMAGE_TYPES", "NUMBER_OF_SLICES", "PHASE_NEGATIVE", "Tile",
    "VFRAME_SEQUENCE", "grid_layout", "grid_tiles", "gradient_lps", "is_grid", "is_uih",
    "number_of_slices", "phase_positive",
]

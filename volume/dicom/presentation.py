"""What a header says about showing its pixels: rescale, lookup tables, windows, palette,
photometric interpretation, pixel aspect and frame timing (PS3.3 C.7.6.3, C.11, C.7.6.16).

Values come out as numbers, numpy tables and plain mappings, ready for the numpy transforms of
:mod:`volume.ops.pixel_transforms` and :func:`volume.ops.window.header_window`; nothing here
transforms an image. An enhanced (multi-frame) file's functional groups are asked first, then the
top-level attributes. A malformed value counts as missing.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from . import lut
from .values import functional, to_float

PALETTE_BITS = (8, 16)
"""Bit depths a palette's entries may have (PS3.3 C.7.6.3.1.5); anything else is read as 16."""

VOI_WINDOW_KEYWORDS = ("WindowCenter", "WindowWidth", "VOILUTFunction")
"""The attributes of a window, as :func:`volume.ops.window.header_window` reads them."""

DEFAULT_FRAME_MS = 100
"""Frame duration of an animation (ms) when the header gives no frame time."""

FRAME_TIME = 0x00181063
"""(0018,1063) Frame Time, as a Frame Increment Pointer names it."""

FRAME_TIME_VECTOR = 0x00181065
"""(0018,1065) Frame Time Vector, as a Frame Increment Pointer names it."""


class Lut(NamedTuple):
    """A lookup table of the header: ``data`` (one row per input value; ``(N, 3)`` for a palette),
    the input value of its first row, and the bits of its entries."""

    data: np.ndarray
    first_mapped: int
    bits: int


def photometric(ds: Any) -> str:
    """Photometric Interpretation, upper case (``MONOCHROME2``, ``PALETTE COLOR``...); ``""`` if absent."""
    return str(ds.get("PhotometricInterpretation", "")).strip().upper()


def inverted(ds: Any) -> bool:
    """MONOCHROME1: high values display dark."""
    return photometric(ds) == "MONOCHROME1"


def rescale(ds: Any, frame: int | None = None) -> tuple[float, float]:
    """Rescale ``(slope, intercept)`` of a frame: functional groups first, then top level.

    A missing or zero slope is 1; a missing intercept is 0.
    """
    slope = to_float(functional(ds, "PixelValueTransformationSequence", "RescaleSlope", frame))
    inter = to_float(functional(ds, "PixelValueTransformationSequence", "RescaleIntercept", frame))
    if slope is None:
        slope = to_float(ds.get("RescaleSlope"))
    if inter is None:
        inter = to_float(ds.get("RescaleIntercept"))
    return (slope if slope not in (None, 0.0) else 1.0), (inter if inter is not None else 0.0)


def _lut_item(ds: Any, sequence: str) -> Any:
    """The first item of a LUT sequence when it holds a descriptor and data, else None."""
    seq = ds.get(sequence)
    if not seq or "LUTData" not in seq[0] or "LUTDescriptor" not in seq[0]:
        return None
    return seq[0]


def _domain(descriptor: Any) -> np.ndarray:
    """Every input value a LUT descriptor maps: ``first .. first + entries - 1`` (0 entries: 65536)."""
    entries, first = int(descriptor[0]) or 2**16, int(descriptor[1])
    return np.arange(first, first + entries, dtype=np.int64)


def modality_lut(ds: Any) -> Lut | None:
    """The Modality LUT Sequence's table, or None when the file has none (then :func:`rescale`)."""
    item = _lut_item(ds, "ModalityLUTSequence")
    if item is None:
        return None
    desc = item.LUTDescriptor
    # pydicom reads the table (US or OW data, byte order); evaluated on its whole domain it is the table
    return Lut(lut.apply_modality_lut(_domain(desc), ds), int(desc[1]), int(desc[2]))


def voi_lut(ds: Any) -> Lut | None:
    """The first table of the VOI LUT Sequence, or None."""
    item = _lut_item(ds, "VOILUTSequence")
    if item is None:
        return None
    desc = item.LUTDescriptor
    return Lut(np.asarray(lut.apply_voi(_domain(desc), ds, index=0)), int(desc[1]), int(desc[2]))


def palette(ds: Any) -> Lut:
    """The RGB palette of a PALETTE COLOR image (``(N, 3)``; segmented palettes expanded)."""
    desc = ds.RedPaletteColorLookupTableDescriptor
    data = lut.apply_color_lut(_domain(desc), ds)
    try:
        bits = int(desc[2])
    except (TypeError, ValueError, IndexError):
        bits = PALETTE_BITS[-1]
    return Lut(np.asarray(data)[:, :3], int(desc[1]), bits if bits in PALETTE_BITS else PALETTE_BITS[-1])


def frame_window_values(ds: Any, frame: int | None = None) -> dict[str, Any]:
    """The window of a frame's Frame VOI LUT functional group (enhanced images; values None when
    absent), as :func:`volume.ops.window.header_window` reads it."""
    return {key: functional(ds, "FrameVOILUTSequence", key, frame) for key in VOI_WINDOW_KEYWORDS}


def file_window_values(ds: Any) -> dict[str, Any]:
    """The top-level window of a file (Window Center/Width, VOI LUT Function), as
    :func:`volume.ops.window.header_window` reads it."""
    return {key: ds.get(key) for key in VOI_WINDOW_KEYWORDS}


def stored_range(ds: Any) -> tuple[int, int] | None:
    """Smallest and largest stored value the header allows (integer data only), else None."""
    try:
        bits = int(ds.get("BitsStored") or ds.get("BitsAllocated") or 0)
        signed = int(ds.get("PixelRepresentation") or 0) == 1
    except (TypeError, ValueError):
        return None
    if bits <= 0 or bits > 32 or "PixelData" not in ds:
        return None
    if signed:
        return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return 0, 2**bits - 1


def sample_bits(ds: Any, samples: np.ndarray) -> int:
    """Bits per sample of decoded colour samples: Bits Stored, else the samples' own size."""
    try:
        return int(ds.get("BitsStored") or samples.dtype.itemsize * 8)
    except (TypeError, ValueError):
        return samples.dtype.itemsize * 8


def pixel_aspect(ds: Any, frame: int | None = None) -> float:
    """Height / width of one pixel: Pixel Spacing (frame's functional groups first), Imager
    Pixel Spacing, or Pixel Aspect Ratio; 1 when the header says nothing usable."""
    for value in (
        functional(ds, "PixelMeasuresSequence", "PixelSpacing", frame),
        ds.get("PixelSpacing"),
        ds.get("ImagerPixelSpacing"),
        ds.get("PixelAspectRatio"),
    ):
        try:
            v, h = float(value[0]), float(value[1])
        except (TypeError, ValueError, IndexError, KeyError):
            continue
        if v > 0 and h > 0 and math.isfinite(v / h):
            return v / h
    return 1.0


def _frame_time(ds: Any, count: int) -> list[float] | None:
    t = to_float(ds.get("FrameTime"))
    return [t] * count if t and t > 0 else None


def _frame_time_vector(ds: Any, count: int) -> list[float] | None:
    """Frame i lasts until frame i+1 starts; the last frame (and any zero step) gets the mean."""
    v = ds.get("FrameTimeVector")
    try:
        steps = [float(x) for x in v] if v is not None else []
    except (TypeError, ValueError):
        return None
    if len(steps) < 2 or not all(math.isfinite(s) and s >= 0 for s in steps):
        return None
    mean = float(np.mean(steps[1:]))
    durations = [s if s > 0 else mean for s in steps[1:]] + [mean]
    return (durations + [mean] * count)[:count]


def _rate(ds: Any, keyword: str, count: int) -> list[float] | None:
    r = to_float(ds.get(keyword))
    return [1000.0 / r] * count if r and r > 0 else None


def frame_durations_ms(ds: Any, count: int) -> tuple[list[float], str]:
    """Display duration of each frame (ms) and where it came from.

    Follows Frame Increment Pointer when it names Frame Time or Frame Time Vector; else Frame Time
    (ms), Frame Time Vector (ms since the previous frame: frame i lasts until frame i+1 starts),
    Cine Rate or Recommended Display Frame Rate (frames per second). Without any of them
    :data:`DEFAULT_FRAME_MS`.
    """
    pointers = _tags(ds.get("FrameIncrementPointer"))
    candidates = [name for tag, name in ((FRAME_TIME_VECTOR, "FrameTimeVector"), (FRAME_TIME, "FrameTime"))
                  if tag in pointers]
    candidates += ["FrameTime", "FrameTimeVector", "CineRate", "RecommendedDisplayFrameRate"]
    for name in candidates:
        if name == "FrameTime":
            got = _frame_time(ds, count)
        elif name == "FrameTimeVector":
            got = _frame_time_vector(ds, count)
        else:
            got = _rate(ds, name, count)
        if got:
            return got, name
    return [float(DEFAULT_FRAME_MS)] * count, "default"


def _tags(value: Any) -> set[int]:
    """Tags of an AT element (one or several), as ints; empty when absent or malformed."""
    if value is None:
        return set()
    items = value if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue" else [value]
    try:
        return {int(v) for v in items}
    except (TypeError, ValueError):
        return set()

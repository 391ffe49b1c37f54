"""DICOM's display pipeline as numpy functions: stored values -> modality -> VOI -> grey levels,
or palette indices -> RGB (PS3.3 C.11, PS3.4 N.2).

Every function takes arrays and numbers and returns an array: no dataset, no file. What the
header says (the rescale, the lookup tables, the windows) is read by the DICOM reader (its
``presentation`` module); which step applies when is decided by the picture job
(:mod:`volume.jobs.pictures`). Windowing by center and width is
:func:`volume.ops.window.apply_window`. highdicom's ``pixel_transforms.py`` is the model.

A lookup table is its entries (``lut_data``, one row per input value; three columns for a
palette) and the first input value it maps (``first_mapped``): inputs below it take the first
entry, inputs past the end the last one (PS3.3 C.11.1.1).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

UINT8_MAX = 255
"""Largest grey level of an 8-bit picture."""

UINT16_MAX = 65535
"""Largest value of a 16-bit picture sample."""

SIGNED_OFFSET = -32768
"""``raw16`` intercept of data that can be negative: sample = value + 32768 (so HU -1000 -> 31768)."""

MAX_TABLE_ENTRIES = 1 << 17
"""Widest stored-value range (max - min) :func:`through_table` evaluates through a table."""

MIN_RAW16_SLOPE = 1e-12
"""Smallest ``raw16`` slope of a constant image's own range (a slope of 0 would lose the value)."""


def apply_rescale(stored: np.ndarray, slope: float, intercept: float) -> np.ndarray:
    """Modality values by the rescale: ``stored * slope + intercept``.

    Parameters
    ----------
    stored
        Stored values, any numeric dtype and shape.
    slope, intercept
        Rescale Slope and Intercept (PS3.3 C.11.1.1.2).

    Returns
    -------
    numpy.ndarray
        ``stored`` itself for the identity rescale (slope 1, intercept 0), else float64.
    """
    if slope == 1.0 and intercept == 0.0:
        return stored
    return stored.astype(np.float64) * slope + intercept


def lut_indices(values: np.ndarray, first_mapped: int, entries: int) -> np.ndarray:
    """Row of a lookup table for each value: ``clip(rint(value) - first_mapped, 0, entries - 1)``."""
    x = np.asarray(values)
    if not np.issubdtype(x.dtype, np.integer):
        x = np.rint(x)
    x = x.astype(np.int64) - int(first_mapped)
    return np.clip(x, 0, entries - 1, out=x)


def apply_lut(values: np.ndarray, lut_data: np.ndarray, first_mapped: int) -> np.ndarray:
    """A lookup table applied to ``values`` (a Modality LUT, a VOI LUT or a palette).

    Parameters
    ----------
    values
        Input values, any shape (non-integers are rounded to the nearest entry).
    lut_data
        ``(N,)`` entries, or ``(N, K)`` for ``K`` channels (a palette: ``K`` = 3).
    first_mapped
        The input value of the first entry.

    Returns
    -------
    numpy.ndarray
        ``values.shape`` (plus ``K`` channels last), of ``lut_data``'s dtype.

    Examples
    --------
    >>> apply_lut(np.array([-5, 10, 11, 99]), np.array([0, 7, 9], np.uint16), 10)
    array([0, 0, 7, 9], dtype=uint16)
    """
    table = np.asarray(lut_data)
    return table[lut_indices(values, first_mapped, len(table))]


def to_uint8(samples: np.ndarray, bits: int) -> np.ndarray:
    """Samples of ``bits`` bits (0..2**bits - 1) scaled to 0..255, as uint8.

    Parameters
    ----------
    samples
        Unsigned integer samples (colour channels, palette entries), any shape.
    bits
        Their bit depth (uint8 samples are returned as they are).
    """
    if samples.dtype == np.uint8:
        return samples
    full = float(2**bits - 1)
    out = np.rint(samples.astype(np.float64) * (UINT8_MAX / full))
    return np.clip(out, 0, UINT8_MAX).astype(np.uint8)


def apply_voi_lut(values: np.ndarray, lut_data: np.ndarray, first_mapped: int, bits: int, *,
                  invert: bool = False) -> np.ndarray:
    """A VOI LUT applied to modality values, its ``bits``-bit output scaled to uint8 grey levels.

    Parameters
    ----------
    values
        Modality values, any shape.
    lut_data, first_mapped
        The VOI LUT (see :func:`apply_lut`).
    bits
        Bits of the LUT's entries (the third value of its descriptor): 2**bits - 1 is white.
    invert
        MONOCHROME1: high values display dark.

    Returns
    -------
    numpy.ndarray
        uint8 grey levels, ``values.shape``.
    """
    out = apply_lut(values, lut_data, first_mapped).astype(np.float64)
    out /= float(2**bits - 1)
    np.clip(out, 0.0, 1.0, out=out)
    if invert:
        out = 1.0 - out
    return np.rint(out * UINT8_MAX).astype(np.uint8)


def apply_palette(indices: np.ndarray, lut_data: np.ndarray, first_mapped: int, bits: int) -> np.ndarray:
    """PALETTE COLOR: stored indices (R, C) through a ``(N, 3)`` palette of ``bits``-bit entries,
    to uint8 RGB (R, C, 3)."""
    return to_uint8(apply_lut(indices, np.asarray(lut_data)[:, :3], first_mapped), bits)


def is_blank(values: np.ndarray) -> bool:
    """True when every element is equal (nothing to window)."""
    flat = np.asarray(values).reshape(-1)
    return flat.size == 0 or bool(flat.min() == flat.max())


def blank_grey(shape: tuple[int, ...], *, invert: bool = False) -> np.ndarray:
    """The picture of a constant image: black (white for MONOCHROME1), uint8."""
    return np.full(shape, UINT8_MAX if invert else 0, dtype=np.uint8)


def through_table(stored: np.ndarray, pipeline: Callable[[np.ndarray], np.ndarray],
                  max_entries: int = MAX_TABLE_ENTRIES) -> np.ndarray | None:
    """``pipeline(stored)`` for an elementwise ``pipeline``, evaluated once per stored value.

    The pipeline runs on ``min..max`` of ``stored`` and the image is looked up in the result:
    identical output, a fraction of the work on 512x512 images.

    Parameters
    ----------
    stored
        Integer stored values (R, C).
    pipeline
        An elementwise function of stored values (the modality and VOI steps with a known window).
    max_entries
        The widest range evaluated this way.

    Returns
    -------
    numpy.ndarray or None
        The looked-up image; None for non-integer data or a range wider than ``max_entries`` or
        than the image has pixels (a table that big saves nothing).
    """
    if not np.issubdtype(stored.dtype, np.integer) or stored.ndim != 2:
        return None
    lo, hi = int(stored.min()), int(stored.max())
    if hi - lo >= min(max_entries, stored.size):
        return None
    table = pipeline(np.arange(lo, hi + 1, dtype=np.int64).astype(stored.dtype))
    if lo == 0:
        return table[stored]
    return table[stored.astype(np.intp) - lo]


def raw16_mapping(values: np.ndarray, *, slope: float, intercept: float, stored_range: tuple[int, int] | None,
                  from_lut: bool = False) -> tuple[float, float]:
    """``(slope, intercept)`` of a 16-bit picture of modality values: ``value = sample * slope + intercept``.

    - A Modality LUT's output (``from_lut``) is unsigned: slope 1, intercept 0 (sample = value).
    - An integer rescale whose possible values (from ``stored_range``) all lie in 0..65535, e.g.
      MR: slope 1, intercept 0.
    - An integer rescale that can give negative values, e.g. CT: slope 1, intercept -32768
      (sample = HU + 32768, the DeepLesion convention), the same for every CT file whatever its
      storage, as long as the image's values lie in -32768..32767 (real CT always does).
    - A fractional slope (PET, some MR): sample = the stored value (shifted by 32768 when signed),
      with the file's slope: exact.
    - Anything else (32-bit data, float pixel data): the image's own min..max over 0..65535
      (lossy when that range is wider than 65535 steps).

    Parameters
    ----------
    values
        The image's modality values.
    slope, intercept
        The rescale of the stored values.
    stored_range
        Smallest and largest stored value the header allows, or None (float data, no header).
    from_lut
        The values come from a Modality LUT.
    """
    if from_lut:
        return 1.0, 0.0
    if stored_range is not None and slope > 0 and stored_range[1] - stored_range[0] <= UINT16_MAX:
        found = _rescale_mapping(values, slope, intercept, stored_range)
        if found is not None:
            return found
    finite = np.asarray(values, dtype=np.float64)
    lo, hi = float(np.nanmin(finite)), float(np.nanmax(finite))
    if hi - lo <= UINT16_MAX and float(lo).is_integer() and float(hi).is_integer():
        return 1.0, (0.0 if lo >= 0 and hi <= UINT16_MAX else lo)
    return max((hi - lo) / UINT16_MAX, MIN_RAW16_SLOPE), lo


def _rescale_mapping(values: np.ndarray, slope: float, intercept: float,
                     stored_range: tuple[int, int]) -> tuple[float, float] | None:
    """The ``raw16`` mapping of a rescale of 16-bit stored values (:func:`raw16_mapping`), or None."""
    s_lo, s_hi = stored_range
    if not (float(slope).is_integer() and float(intercept).is_integer()):
        offset = 0 if s_lo >= 0 else SIGNED_OFFSET
        return float(slope), float(intercept + offset * slope)
    if s_lo * slope + intercept >= 0 and s_hi * slope + intercept <= UINT16_MAX:
        return 1.0, 0.0
    v_lo, v_hi = float(np.min(values)), float(np.max(values))
    if SIGNED_OFFSET <= v_lo and v_hi <= UINT16_MAX + SIGNED_OFFSET:
        return 1.0, float(SIGNED_OFFSET)
    return None


def encode_raw16(values: np.ndarray, slope: float, intercept: float) -> tuple[np.ndarray, int]:
    """``rint((values - intercept) / slope)`` as uint16, and how many values were clipped."""
    x = (np.asarray(values, dtype=np.float64) - intercept) / slope
    x = np.rint(x)
    clipped = int(np.count_nonzero((x < 0) | (x > UINT16_MAX)))
    np.clip(x, 0, UINT16_MAX, out=x)
    return x.astype(np.uint16), clipped


__all__ = [
    "apply_lut",
    "apply_palette",
    "apply_rescale",
    "apply_voi_lut",
    "blank_grey",
    "encode_raw16",
    "is_blank",
    "lut_indices",
    "raw16_mapping",
    "through_table",
    "to_uint8",
]

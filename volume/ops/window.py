"""Display windowing: modality values to grey levels (DICOM PS3.3 C.11.2.1.2 VOI LUT functions).

Pure functions on arrays. Presets are the usual CT windows; without a window, a robust
percentile window ignores the few hottest and coldest voxels (and the empty background).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .presets import PRESETS  # re-exported; kept numpy-free so CLI help stays light

AUTO_PERCENTILES = (0.5, 99.5)
"""Percentiles of the (non-background) values that bound the automatic window."""

VOI_FUNCTIONS = ("LINEAR", "LINEAR_EXACT", "SIGMOID")
"""VOI LUT Functions DICOM defines for window center/width."""


@dataclass(frozen=True)
class Window:
    """A display window: values below ``center - width/2`` are black, above ``center + width/2`` white."""

    center: float
    width: float
    function: str = "LINEAR"

    def __post_init__(self) -> None:
        if not np.isfinite(self.center) or not np.isfinite(self.width) or self.width <= 0:
            raise ValueError(f"window width must be a positive number, got center {self.center}, width {self.width}")
        if self.function not in VOI_FUNCTIONS:
            raise ValueError(f"VOI LUT function must be one of {', '.join(VOI_FUNCTIONS)}, got {self.function!r}")

    @property
    def low(self) -> float:
        return self.center - self.width / 2

    @property
    def high(self) -> float:
        return self.center + self.width / 2


def parse_window(text: str) -> Window:
    """``"40,400"`` (center, width) or a preset name (see :data:`PRESETS`) to a :class:`Window`."""
    key = text.strip().lower().replace("_", "-").replace(" ", "-")
    if key in PRESETS:
        return Window(*PRESETS[key])
    parts = [p for p in re.split(r"[,/: ]+", text.strip()) if p]
    try:
        center, width = (float(p) for p in parts)
    except ValueError:
        raise ValueError(
            f"window must be CENTER,WIDTH (e.g. 40,400) or a preset ({', '.join(PRESETS)}), got {text!r}"
        ) from None
    return Window(center, width)


def auto_window(values: np.ndarray, percentiles: tuple[float, float] = AUTO_PERCENTILES) -> Window:
    """A robust window from the values' percentiles, ignoring a background at the minimum.

    Works on any shape; NaNs are ignored. A constant image gets a width of 1 around its value.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        return Window(0.0, 1.0)
    if v.size > 2_000_000:  # a regular subsample is plenty for percentiles
        v = v[:: v.size // 1_000_000]
    floor = v.min()
    body = v[v > floor]
    if body.size >= max(16, v.size // 100):
        v = body
    lo, hi = np.percentile(v, percentiles)
    if hi <= lo:
        return Window(float(lo), 1.0)
    return Window(float((lo + hi) / 2), float(hi - lo))


PROJECTION_PERCENTILES = (1.0, 99.5)
"""Percentiles of a projection's object pixels (background split off) that make its auto window."""

PROJECTION_MEDIAN_GREY = 0.4
"""The object's median is drawn at least this bright (fraction of the ramp): a CT MIP's soft tissue
is one narrow band of values far below its bones, and a ramp from the 1st percentile drew it black."""


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """The value that best splits ``values`` into two classes (Otsu: largest between-class variance)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0 or v.min() == v.max():
        return float(v.min()) if v.size else 0.0
    hist, edges = np.histogram(v, bins=bins)
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centres)
    with np.errstate(divide="ignore", invalid="ignore"):
        mu0 = m0 / w0
        mu1 = (m0[-1] - m0) / w1
        between = w0 * w1 * (mu0 - mu1) ** 2
    between = np.nan_to_num(between[:-1], nan=-1.0)
    return float(edges[int(np.argmax(between)) + 1])


def projection_window(values: np.ndarray, percentiles: tuple[float, float] = PROJECTION_PERCENTILES) -> Window:
    """An automatic window for a projection (MIP/MinIP picture), from the values it shows.

    A projection's histogram has two parts: the background (air around the body, rays that met
    only noise) and the object, whose values a MIP pushes up (every ray keeps its brightest
    voxel). A slice's window (percentiles of everything) spends most of the grey ramp on the gap
    between them and leaves the object washed out. Here the background is split off at the Otsu
    threshold and the window spans ``percentiles`` of the object's values, its low end lowered
    (not below the threshold) where needed to draw the object's median at least
    :data:`PROJECTION_MEDIAN_GREY` bright.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        return Window(0.0, 1.0)
    if v.size > 2_000_000:
        v = v[:: v.size // 1_000_000]
    threshold = otsu_threshold(v)
    body = v[v >= threshold]
    if body.size < max(16, v.size // 20):  # no clear object: fall back on everything
        body = v
    lo, hi, median = np.percentile(body, [*percentiles, 50.0])
    g = PROJECTION_MEDIAN_GREY
    lo = max(min(lo, (median - g * hi) / (1 - g)), threshold if body is not v else lo)
    if hi <= lo:
        return Window(float(lo), 1.0)
    return Window(float((lo + hi) / 2), float(hi - lo))


def apply_window(
    values: np.ndarray, window: Window, *, invert: bool = False, out_max: int = 255
) -> np.ndarray:
    """Map values to ``0..out_max`` grey levels with the window's VOI LUT function.

    Parameters
    ----------
    values
        Modality values, any shape.
    window
        Center, width and function (LINEAR, LINEAR_EXACT, SIGMOID as DICOM defines them).
    invert
        Invert after windowing (MONOCHROME1: high values display dark).
    out_max
        255 gives uint8, 65535 gives uint16.

    Returns
    -------
    numpy.ndarray
        Same shape, uint8 (or uint16 when ``out_max > 255``).
    """
    x = np.asarray(values, dtype=np.float64)
    c, w = float(window.center), float(window.width)
    if window.function == "LINEAR":
        if w <= 1:  # DICOM: width 1 is a threshold at the center
            y = np.where(x < c - 0.5, 0.0, 1.0)
        else:
            y = (x - (c - 0.5)) / (w - 1) + 0.5
    elif window.function == "LINEAR_EXACT":
        y = (x - c) / w + 0.5
    else:  # SIGMOID
        y = 1.0 / (1.0 + np.exp(-4.0 * (x - c) / w))
    y = np.clip(y, 0.0, 1.0)
    if invert:
        y = 1.0 - y
    dtype = np.uint8 if out_max <= 255 else np.uint16
    return np.rint(y * out_max).astype(dtype)


def header_window(acquisition: Mapping[str, object] | None) -> Window | None:
    """The series' own DICOM window (WindowCenter/WindowWidth, first value if several), or None.

    ``acquisition`` is ``Volume.meta['acquisition']`` (or any mapping with those keywords); a
    missing, non-numeric or non-positive width gives None.
    """
    if not acquisition:
        return None

    def first(value: object) -> float | None:
        if isinstance(value, (list, tuple)):
            value = value[0] if value else None
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return None
        return number if np.isfinite(number) else None

    center = first(acquisition.get("WindowCenter"))
    width = first(acquisition.get("WindowWidth"))
    if center is None or width is None or width <= 0:
        return None
    function = str(acquisition.get("VOILUTFunction") or "LINEAR").strip().upper()
    return Window(center, width, function if function in VOI_FUNCTIONS else "LINEAR")


def choose_window(
    values: np.ndarray,
    *,
    window: str | Window | None = None,
    acquisition: Mapping[str, object] | None = None,
) -> tuple[Window, str]:
    """The display window by precedence: explicit (text or preset name) > the series' DICOM window > auto.

    Returns ``(window, source)`` with ``source`` one of ``"explicit"``, ``"dicom"``, ``"auto"``.
    ``window="auto"`` skips the DICOM window; ``window="dicom"`` is the default order said aloud
    (the DICOM window, else auto). Raises ValueError for unparsable text.
    """
    if isinstance(window, Window):
        return window, "explicit"
    key = None if window is None else window.strip().lower()
    if key is not None and key not in ("auto", "dicom"):
        return parse_window(window), "explicit"  # type: ignore[arg-type]
    if key in (None, "dicom"):
        found = header_window(acquisition)
        if found is not None:
            return found, "dicom"
    return auto_window(values), "auto"

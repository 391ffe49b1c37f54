"""Display windowing: modality values to grey levels (DICOM PS3.3 C.11.2.1.2 VOI LUT functions).

Pure functions on arrays. Presets are the usual CT windows; without a window, a robust
percentile window ignores the few hottest and coldest voxels (and the empty background).

The automatic window depends on what the picture is (:data:`PICTURE_KINDS`). In a *slice*, air
sits at the minimum (0 in MR) and tissue spreads upwards from it. In a maximum intensity
*projection* each pixel is the brightest sample along its ray: air becomes a band of noise maxima
above the minimum, and even the darkest tissue sits far above air, so a window starting at air
draws every tissue pale. A projection's window therefore starts at its darkest tissue: the values
above the air/tissue split of its histogram (Otsu's threshold) set the percentiles.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import UsageError
from .presets import (
    BY_NAME,
    PRESETS,  # noqa: F401 - re-exported (volume.WINDOW_PRESETS); numpy-free for --help
    find_preset,
    preset_list,
    preset_name,
    preset_warning,
)

AUTO_PERCENTILES = (0.5, 99.5)
"""Percentiles of the (non-background) values that bound the automatic window."""

VOI_FUNCTIONS = ("LINEAR", "LINEAR_EXACT", "SIGMOID")
"""VOI LUT Functions DICOM defines for window center/width."""

PICTURE_KINDS = ("slice", "projection")
"""What an automatic window is for: a slice (or a mean/min projection, whose air stays at the
minimum) or a maximum intensity projection (air is a band of noise maxima; see the module doc)."""

AIR_FRACTION = 0.1
"""Otsu's lower class is air only when its median is below this fraction of the upper class's
99.5th percentile (measured: 0.000-0.016 on the MR MIPs of ../shared/data; 0.3-0.85 when a
picture holds no air and Otsu splits tissue from tissue)."""

WINDOW_SAMPLE = 2_000_000
"""At most this many values (a regular subsample) decide an automatic window."""

HISTOGRAM_BINS = 256
"""Bins of the histogram Otsu's threshold is searched in."""


@dataclass(frozen=True)
class Window:
    """A display window: values below ``center - width/2`` are black, above ``center + width/2`` white.

    Attributes
    ----------
    center, width
        In the values' units (HU for CT); ``width`` is positive.
    function
        DICOM's VOI LUT function: ``LINEAR``, ``LINEAR_EXACT`` or ``SIGMOID``.

    Raises
    ------
    ValueError
        A width that is not positive, a value that is not finite, or another function.

    Examples
    --------
    >>> w = volume.Window(40, 400)
    >>> w.low, w.high
    (-160.0, 240.0)
    """

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
    """``"40,400"`` (center, width) or the name of a preset with a window (``bone``, ``ct-bone``:
    :data:`volume.ops.presets.TABLE`) to a :class:`Window`.

    Raises
    ------
    ValueError
        For anything else, and for ``mr``, whose window is the automatic one (no fixed values).
    """
    name = preset_name(text)
    if name is not None:
        values = BY_NAME[name].window
        if values is None:
            raise ValueError(f"the {name} preset has no fixed window (it is the automatic one); use --window auto")
        return Window(*values)
    parts = [p for p in re.split(r"[,/: ]+", text.strip()) if p]
    try:
        center, width = (float(p) for p in parts)
    except ValueError:
        raise ValueError(
            f"window must be CENTER,WIDTH (e.g. 40,400), 'auto', 'dicom' or a preset ({preset_list()}), got {text!r}"
        ) from None
    return Window(center, width)


def auto_window(
    values: np.ndarray, percentiles: tuple[float, float] = AUTO_PERCENTILES, *, kind: str = "slice"
) -> Window:
    """A robust window from the values' percentiles, ignoring the background (air).

    Works on any shape; NaNs are ignored. ``kind`` (:data:`PICTURE_KINDS`) says what the values
    are drawn as: for a ``"slice"`` the background is the values at the minimum; for a
    ``"projection"`` (a MIP) it is the lower class of Otsu's threshold when that class is air
    (:data:`AIR_FRACTION`), so the window starts at the darkest tissue instead of at air.

    A constant image has nothing to window: its value is drawn black when it is 0 or less (air
    in MR, anything below water in CT), mid-grey otherwise (see :func:`is_constant`).
    """
    if kind not in PICTURE_KINDS:
        raise ValueError(f"kind must be one of {', '.join(PICTURE_KINDS)}, got {kind!r}")
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        return Window(0.0, 1.0)
    if v.size > WINDOW_SAMPLE:  # a regular subsample is plenty for percentiles
        v = v[:: v.size // (WINDOW_SAMPLE // 2)]
    floor, top = float(v.min()), float(v.max())
    if floor == top:
        return constant_window(floor)
    if kind == "projection":
        threshold = air_threshold(v)
        body = v if threshold is None else v[v >= threshold]
    else:
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


def constant_window(value: float) -> Window:
    """The window of a picture holding one value: black at or below 0, mid-grey above.

    A flat picture has no contrast to show: black says "air" (0 in MR, below water in CT),
    mid-grey "one uniform value" (never white, which reads as a saturated picture).
    ``LINEAR_EXACT`` puts ``value`` at exactly 0 or 0.5 of the grey range.
    """
    if value <= 0:
        return Window(value + 1.0, 2.0, "LINEAR_EXACT")  # value at the window's low end: black
    return Window(value, 2.0, "LINEAR_EXACT")  # value at the centre: mid-grey


def is_constant(values: np.ndarray) -> float | None:
    """The one value of ``values`` when every finite value is equal (None otherwise, or when empty)."""
    v = np.asarray(values)
    if v.dtype.kind == "f":
        v = v[np.isfinite(v)]
    if v.size == 0:
        return None
    lo, hi = v.min(), v.max()
    return float(lo) if lo == hi else None


def air_threshold(values: np.ndarray) -> float | None:
    """Otsu's threshold of ``values`` (values at or above it are tissue) when its lower class is air, else None.

    Otsu's method picks the cut of a histogram (:data:`HISTOGRAM_BINS` bins) that maximises the
    variance between the two classes. The lower class counts as air (noise) only when its median
    is below :data:`AIR_FRACTION` of the upper class's 99.5th percentile; a picture with no air
    would otherwise lose its darker tissue.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size < 2 or v.min() == v.max():
        return None
    threshold = otsu_threshold(v, bins=HISTOGRAM_BINS)
    low, high = v[v < threshold], v[v >= threshold]
    if low.size == 0 or high.size == 0:
        return None
    if np.median(low) > AIR_FRACTION * np.percentile(high, AUTO_PERCENTILES[1]):
        return None
    return threshold


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

    Examples
    --------
    >>> import numpy as np
    >>> volume.apply_window(np.array([-1000.0, 40.0, 240.0]), volume.Window(40, 400))
    array([  0, 128, 255], dtype=uint8)
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


def header_window(values: Mapping[str, object] | None) -> Window | None:
    """The window a DICOM header recommends (the first of several), or None: the one reading of
    Window Center/Width and the VOI LUT Function.

    Parameters
    ----------
    values
        A mapping with ``WindowCenter``, ``WindowWidth`` and ``VOILUTFunction``: a
        ``Volume.meta['acquisition']``, a pydicom dataset, or what
        the DICOM reader (its ``presentation`` module) reads from a frame's functional groups.

    Returns
    -------
    Window or None
        None for a missing, non-numeric or non-positive width or center; an unknown function is
        ``LINEAR``.

    Examples
    --------
    >>> header_window({"WindowCenter": [40, 400], "WindowWidth": [400, 2000]})
    Window(center=40.0, width=400.0, function='LINEAR')
    """
    if not values:
        return None
    center = _first_number(values.get("WindowCenter"))
    width = _first_number(values.get("WindowWidth"))
    if center is None or width is None or width <= 0:
        return None
    function = str(values.get("VOILUTFunction") or "LINEAR").strip().upper()
    return Window(center, width, function if function in VOI_FUNCTIONS else "LINEAR")


def _first_number(value: object) -> float | None:
    """A finite float from a number, a numeric string, or the first of several; else None."""
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        value = value[0] if len(value) else None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if np.isfinite(number) else None


HEADER_WINDOW_MODALITIES = ("CT",)
"""Modalities whose DICOM window a picture uses by default: Hounsfield units mean the same in a
slice, a reslice and a projection. MR/PET windows are set by the scanner for its own slices (often
one per slice) and saturate a MIP, so those get the automatic window unless ``--window dicom``."""


def default_window(modality: object) -> str:
    """``"dicom"`` (the header's window first) for :data:`HEADER_WINDOW_MODALITIES`, else ``"auto"``."""
    return "dicom" if str(modality or "").strip().upper() in HEADER_WINDOW_MODALITIES else "auto"


def choose_window(
    values: np.ndarray,
    *,
    window: str | Window | None = None,
    acquisition: Mapping[str, object] | None = None,
    kind: str = "slice",
) -> tuple[Window, str]:
    """The display window by precedence: explicit (text or preset name) > the series' DICOM window > auto.

    Returns ``(window, source)`` with ``source`` one of ``"explicit"``, ``"dicom"``, ``"auto"``.
    ``window="auto"`` skips the DICOM window; ``window="dicom"`` is the default order said aloud
    (the DICOM window, else auto). ``values`` are those of the picture drawn and ``kind`` what it
    is (:func:`auto_window`). Raises ValueError for unparsable text.
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
    return auto_window(values, kind=kind), "auto"


WINDOW_RULES = ("auto", "dicom")
"""Words ``--window`` takes besides CENTER,WIDTH and preset names: the automatic window, the header's."""


@dataclass(frozen=True)
class WindowRequest:
    """What a command was asked for the window of its pictures, resolved before any pixel is read.

    Attributes
    ----------
    rule
        ``"explicit"`` (``window`` holds it), ``"dicom"`` (the series' own window, else automatic)
        or ``"auto"`` (the automatic window of the picture drawn).
    window
        The explicit window, else None.
    preset
        The canonical name of the preset named (by ``--preset`` or ``--window``), else None.
    warning
        Why the preset may not suit the images' modality (:func:`volume.ops.presets.preset_warning`),
        else None.
    """

    rule: str
    window: Window | None = None
    preset: str | None = None
    warning: str | None = None

    def choose(self, values: np.ndarray, acquisition: Mapping[str, object] | None = None, *,
               kind: str = "slice") -> tuple[Window, str]:
        """The window of a picture of ``values`` (see :func:`choose_window`): ``(window, source)``."""
        if self.window is not None:
            return self.window, "explicit"
        return choose_window(values, window=self.rule, acquisition=acquisition, kind=kind)

    def ramp(self, acquisition: Mapping[str, object] | None = None) -> tuple[float, float] | None:
        """The grey ramp ``(low, high)`` of a 3D MIP/MinIP: the explicit window, the header's for
        ``dicom`` (when it has one), else None (the renderer's own range of the data)."""
        window = self.window
        if window is None and self.rule == "dicom":
            window = header_window(acquisition)
        return None if window is None else (window.low, window.high)


def resolve_window(window: str | None, preset: str | None, modality: object = None) -> WindowRequest:
    """The one reading of ``--window`` and ``--preset``, the same in every command.

    Parameters
    ----------
    window
        ``--window``: CENTER,WIDTH, a preset name (any alias), ``auto`` or ``dicom``; None if not given.
    preset
        ``--preset``: a preset name or alias (:data:`volume.ops.presets.TABLE`); None if not given.
    modality
        The images' Modality: it picks the default (:func:`default_window`) and the warning for a
        preset made for another modality. None: the automatic window, no warning.

    Returns
    -------
    WindowRequest
        The rule, the explicit window (a preset's, or CENTER,WIDTH), the preset's name and warning.

    Raises
    ------
    UsageError
        Both options given, an unknown preset, or a window that is neither numbers nor a name.

    Examples
    --------
    >>> resolve_window(None, "ct-bone", "CT").window
    Window(center=480.0, width=2500.0, function='LINEAR')
    >>> resolve_window(None, None, "MR").rule
    'auto'
    """
    if window is not None and preset is not None:
        raise UsageError("give either --window or --preset, not both")
    if preset is not None:
        found, option, typed = find_preset(preset), "--preset", preset.strip()
    elif window is not None and window.strip().lower() in WINDOW_RULES:
        return WindowRequest(window.strip().lower())
    elif window is not None and preset_name(window) is not None:
        found, option, typed = BY_NAME[preset_name(window)], "--window", window.strip()  # type: ignore[index]
    elif window is not None:
        try:
            return WindowRequest("explicit", parse_window(window))
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    else:
        return WindowRequest(default_window(modality))
    warning = preset_warning(option, typed, hounsfield=found.hounsfield, modality=modality)
    if found.window is None:  # mr: the automatic window of what is drawn
        return WindowRequest("auto", None, found.name, warning)
    return WindowRequest("explicit", Window(*found.window), found.name, warning)

"""Transfer functions for volume rendering: colour and opacity as functions of the voxel value.

Pure data and numpy; VTK objects are built from these in :mod:`volume.render.scene`.

CT presets are in Hounsfield units (the control points of 3D Slicer's well-known volume
rendering presets; ct-bone starts at 120 HU instead of Slicer's -16 HU, so that 20 cm of soft
tissue at opacity-per-mm does not hide the skeleton; ct-lung draws lung boundaries from -650 to
-350 HU in light colours at 0.08 per mm: Slicer's narrower -600..-400 HU in dark blue and green
left lung vessels faint, and more opacity would let the pleura in front outshine them). The MR
preset is *relative*: its control points are fractions of a display range taken from the data
(:func:`display_range`), because MR values have no absolute unit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from ..ops.presets import transfer_function

DISPLAY_PERCENTILE = 99.5
"""Percentile of the non-background values that sets the top of the automatic display range."""

SUBSAMPLE_LIMIT = 2_000_000
"""More voxels than this are subsampled (regularly) before computing percentiles."""


@dataclass(frozen=True)
class Preset:
    """A volume-rendering transfer function.

    Attributes
    ----------
    name
        Command-line name, e.g. ``ct-bone``.
    points
        Control points ``(value, red, green, blue, opacity)``, values increasing; colours 0..1,
        opacity 0..1 per millimetre of ray.
    relative
        True when ``value`` is a fraction of the data's display range (0 = low, 1 = high)
        instead of an absolute value (HU for CT).
    description
        One line for ``--help`` and the README.
    """

    name: str
    points: tuple[tuple[float, float, float, float, float], ...]
    relative: bool = False
    description: str = ""

    def absolute_points(self, low: float, high: float) -> np.ndarray:
        """Control points with values in data units: ``(N, 5)`` float64, values increasing.

        ``low``/``high`` is the display range that relative presets are scaled to.
        """
        pts = np.array(self.points, dtype=np.float64)
        if self.relative:
            span = high - low if high > low else 1.0
            pts[:, 0] = low + pts[:, 0] * span
        return pts


PRESETS: Mapping[str, Preset] = MappingProxyType(
    {
        "ct-bone": Preset(
            "ct-bone",
            (
                (-3024.0, 0.0, 0.0, 0.0, 0.0),
                (120.0, 0.729412, 0.254902, 0.301961, 0.0),
                (250.0, 0.85, 0.65, 0.45, 0.3),
                (641.385, 0.905882, 0.815686, 0.552941, 0.715686),
                (3071.0, 1.0, 1.0, 1.0, 0.705882),
            ),
            description="CT bone: soft tissue transparent (below 120 HU), bone ivory (HU)",
        ),
        "ct-soft-tissue": Preset(
            "ct-soft-tissue",
            (
                (-3024.0, 0.0, 0.0, 0.0, 0.0),
                (-155.407, 0.54902, 0.25098, 0.14902, 0.0),
                (217.641, 0.882353, 0.603922, 0.290196, 0.676471),
                (419.736, 1.0, 0.937033, 0.954531, 0.833333),
                (3071.0, 0.827451, 0.658824, 1.0, 0.803922),
            ),
            description="CT soft tissue and muscle, bone brighter (HU)",
        ),
        "ct-lung": Preset(
            "ct-lung",
            (
                (-1000.0, 0.0, 0.0, 0.0, 0.0),
                (-710.0, 0.85, 0.4, 0.3, 0.0),
                (-650.0, 0.95, 0.6, 0.5, 0.08),
                (-350.0, 1.0, 0.92, 0.85, 0.08),
                (-290.0, 1.0, 0.95, 0.9, 0.0),
                (3071.0, 1.0, 1.0, 1.0, 0.0),
            ),
            description=(
                "CT lung: the boundaries of aerated lung (-650..-350 HU) as light shaded surfaces, so "
                "vessels, airways and the pleura show; lung air and soft tissue transparent (HU)"
            ),
        ),
        "mr": Preset(
            "mr",
            (
                (0.0, 0.0, 0.0, 0.0, 0.0),
                (0.1, 0.168627, 0.0, 0.0, 0.0),
                (0.2, 0.403922, 0.145098, 0.0784314, 0.15),
                (0.55, 0.780392, 0.607843, 0.380392, 0.3),
                (1.0, 0.847059, 0.835294, 0.788235, 0.375),
                (4.0, 1.0, 1.0, 1.0, 0.5),
            ),
            relative=True,
            description="MR: relative to the data's display range (0.5th..99.5th percentile)",
        ),
    }
)
"""The named transfer functions; ``--preset`` reaches them by the names of
:data:`volume.ops.presets.TABLE` too (``bone`` is ``ct-bone``: :func:`transfer_name`)."""


def transfer_name(name: str) -> str:
    """The key in :data:`PRESETS` of a transfer function's own name or of any preset name or alias
    that has one (``bone``, ``ct-bone``, ``CT_Bone``: ``ct-bone``).

    Raises
    ------
    volume.errors.UsageError
        For a name of no preset, or of a 2D window only (``brain``).
    """
    return name if name in PRESETS else transfer_function(name)


def default_preset(modality: str | None) -> str:
    """``ct-bone`` for CT, ``mr`` for everything else."""
    return "ct-bone" if (modality or "").upper() == "CT" else "mr"


def display_range(values: np.ndarray, percentile: float = DISPLAY_PERCENTILE) -> tuple[float, float]:
    """``(low, high)`` for grey ramps: low is the minimum, high a high percentile of the rest.

    The minimum is the background (air, the outside of a CT's field of view); the high end
    ignores the hottest voxels (metal, a vessel) that would darken everything else.

    Parameters
    ----------
    values
        Voxel values, any shape; NaNs ignored.
    """
    v = np.asarray(values).ravel()
    if v.size > SUBSAMPLE_LIMIT:
        v = v[:: v.size // (SUBSAMPLE_LIMIT // 2)]
    v = v[np.isfinite(v)].astype(np.float64)
    if v.size == 0:
        return 0.0, 1.0
    low = float(v.min())
    body = v[v > low]
    high = float(np.percentile(body, percentile)) if body.size else low + 1.0
    if high <= low:
        high = low + 1.0
    return low, high


def default_level(values: np.ndarray, modality: str | None) -> float:
    """Isosurface level when none is given: 300 HU (bone) for CT, else mid display range."""
    if (modality or "").upper() == "CT":
        return CT_BONE_LEVEL
    low, high = display_range(values)
    return (low + high) / 2


CT_BONE_LEVEL = 300.0
"""Default CT isosurface level (HU): cortical and most trabecular bone lie above it."""

"""The immutable :class:`Volume` and the orientation helpers every other module uses.

Conventions, written down once (and for users in ``docs/conventions.md``):

* ``Volume.array`` is indexed ``(slice, row, column)``. A 4D volume adds a *leading* frame
  axis: ``(frame, slice, row, column)``. A colour volume adds a *trailing* RGB axis of length 3.
* ``Volume.affine`` maps ``(slice, row, column, 1)`` indices to patient LPS millimetres, DICOM's
  own frame: +x towards the patient's Left, +y Posterior, +z Superior. See
  :data:`AFFINE_CONVENTION`.
* RAS (NIfTI) and ITK index order appear only at the edges that write those formats.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

import numpy as np

from .conventions import INTO, PLANES

AFFINE_CONVENTION = "slice,row,column->LPS"
"""``Volume.affine @ [slice, row, column, 1]`` is the voxel centre in patient LPS millimetres."""

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
"""Flip x and y: LPS (DICOM) <-> RAS (NIfTI). Its own inverse."""

POSITIVE_LETTERS = "LPS"
"""Letter of the direction each LPS world axis (x, y, z) increases towards."""

NEGATIVE_LETTERS = "RAI"
"""Letter of the direction each LPS world axis (x, y, z) decreases towards."""

PLANE_NORMALS: Mapping[str, np.ndarray] = MappingProxyType({p: np.array(INTO[p]) for p in PLANES})
"""Unit normal (LPS) of each anatomical plane, pointing into its pictures (``volume.conventions``):
the direction a projection looks along and the slice axis of a reslice onto the plane."""

OBLIQUE_TOLERANCE_DEG = 0.5
"""A slice normal further than this from the nearest patient axis makes an orientation oblique."""

PROJECTION_NAMES: Mapping[str, str] = MappingProxyType({"max": "MIP", "min": "MinIP", "mean": "mean projection"})
"""How a projection's repr names its mode (``meta["projection"]["mode"]``)."""

AFFINE_ATOL = 1e-6
"""Absolute tolerance for the affine's last row and for orthogonality checks."""


def axis_codes(affine: np.ndarray) -> str:
    """Letters (LPS names) of the direction each index axis of ``affine`` increases towards.

    Returns three letters for the (slice, row, column) axes, e.g. ``"SPL"`` for an axial series
    stored feet-to-head with rows running anterior-to-posterior and columns right-to-left. Each
    world axis is used once (the largest cosine wins first), as nibabel's ``aff2axcodes`` does.

    Parameters
    ----------
    affine
        A (4, 4) affine of ``(slice, row, column)`` indices to patient LPS mm.

    Returns
    -------
    str
        Three of ``L R P A S I``: where the slice, row and column indices increase towards.

    Examples
    --------
    >>> vol = volume.load("ct")
    >>> volume.axis_codes(vol.affine)
    'SPL'
    """
    direction = np.asarray(affine, dtype=float)[:3, :3]
    norms = np.linalg.norm(direction, axis=0)
    cosines = direction / np.where(norms == 0, 1, norms)
    codes = [""] * 3
    free_world, free_index = [0, 1, 2], [0, 1, 2]
    for _ in range(3):
        sub = np.abs(cosines[np.ix_(free_world, free_index)])
        w, i = np.unravel_index(int(np.argmax(sub)), sub.shape)
        world, index = free_world[w], free_index[i]
        codes[index] = (POSITIVE_LETTERS if cosines[world, index] > 0 else NEGATIVE_LETTERS)[world]
        free_world.remove(world)
        free_index.remove(index)
    return "".join(codes)


def closest_plane(normal: np.ndarray) -> tuple[str, float]:
    """The anatomical plane whose normal is nearest to ``normal``, and the angle between them.

    Returns ``(plane, degrees)``; ``degrees`` is 0 for a plane exactly aligned with the patient.
    """
    n = np.asarray(normal, dtype=float)
    n = n / np.linalg.norm(n)
    best = max(PLANE_NORMALS, key=lambda p: abs(float(n @ PLANE_NORMALS[p])))
    cosine = min(1.0, abs(float(n @ PLANE_NORMALS[best])))
    return best, math.degrees(math.acos(cosine))


def nearest_axis(affine: np.ndarray, direction: np.ndarray) -> tuple[int, float]:
    """The voxel axis of ``affine`` most nearly parallel (or antiparallel) to ``direction``.

    The one answer to "which (slice, row, column) axis does a projection look along, or a picture
    of a plane cut across": projections, display pictures and patient-aligned grids all ask it.

    Parameters
    ----------
    affine
        (4, 4) or (3, 3): its first three columns are the (slice, row, column) axes in LPS.
    direction
        (3,) LPS vector, e.g. a plane's normal (:data:`PLANE_NORMALS`); need not be a unit vector.

    Returns
    -------
    (int, float)
        The axis (0 slice, 1 row, 2 column) and the angle between it and ``direction`` in degrees
        (0 when they are parallel).

    Examples
    --------
    >>> nearest_axis(np.eye(4), np.array([0.0, 0.0, 1.0]))
    (2, 0.0)
    """
    axes = np.asarray(affine, dtype=float)[:3, :3]
    unit = axes / np.linalg.norm(axes, axis=0)
    d = np.asarray(direction, dtype=float)
    cos = np.abs(d @ unit) / np.linalg.norm(d)
    axis = int(np.argmax(cos))
    return axis, math.degrees(math.acos(min(1.0, float(cos[axis]))))


def orientation_label(affine: np.ndarray) -> str:
    """Human description of a stack's orientation, e.g. ``"axial"`` or ``"axial (oblique 4.1°)"``."""
    plane, angle = closest_plane(np.asarray(affine, dtype=float)[:3, 0])
    if angle > OBLIQUE_TOLERANCE_DEG:
        return f"{plane} (oblique {angle:.1f}°)"
    return plane


def _readonly(array: np.ndarray) -> np.ndarray:
    view = array.view()
    view.flags.writeable = False
    return view


@dataclass(frozen=True, eq=False)
class Volume:
    """A 3D or 4D image with its place in the patient.

    Parameters
    ----------
    array
        Voxel values, shape ``(S, R, C)``, or ``(T, S, R, C)`` for 4D (frames leading); colour
        volumes add a trailing axis of 3 (RGB). Stored as a read-only view.
    affine
        float64 (4, 4): ``(slice, row, column)`` index -> patient LPS mm (:data:`AFFINE_CONVENTION`).
    meta
        A small read-only mapping: series UID, number, description, modality, photometric
        interpretation, acquisition parameters, and notes on what loading did (tilt, gaps).
    rgb
        True when the trailing axis holds red, green, blue.

    Examples
    --------
    >>> vol = volume.load("ct")
    >>> vol.shape, vol.spacing
    ((48, 128, 128), (3.0, 1.5, 1.5))
    >>> vol.world([0, 0, 0]).tolist()  # the first voxel's centre, patient LPS mm
    [-95.25, -95.25, -70.5]
    """

    array: np.ndarray
    affine: np.ndarray
    meta: Mapping[str, Any] = field(default_factory=dict)
    rgb: bool = False

    def __post_init__(self) -> None:
        array = np.asarray(self.array)
        affine = np.array(self.affine, dtype=np.float64, copy=True)
        if affine.shape != (4, 4):
            raise ValueError(f"affine must be 4x4, got shape {affine.shape}")
        if not np.all(np.isfinite(affine)):
            raise ValueError("affine has non-finite values")
        if not np.allclose(affine[3], [0, 0, 0, 1], atol=AFFINE_ATOL):
            raise ValueError(f"affine's last row must be 0 0 0 1, got {affine[3]}")
        if abs(np.linalg.det(affine[:3, :3])) < 1e-12:
            raise ValueError("affine is singular: voxel axes do not span 3D space")
        spatial_ndim = array.ndim - (1 if self.rgb else 0)
        if self.rgb and (array.ndim < 1 or array.shape[-1] != 3):
            raise ValueError(f"an RGB volume needs a trailing axis of 3, got shape {array.shape}")
        if spatial_ndim not in (3, 4):
            raise ValueError(
                f"array must be (S, R, C) or (T, S, R, C){' + (3,)' if self.rgb else ''}, "
                f"got shape {array.shape}"
            )
        if 0 in array.shape:
            raise ValueError(f"array is empty: shape {array.shape}")
        affine[3] = (0.0, 0.0, 0.0, 1.0)
        object.__setattr__(self, "array", _readonly(array))
        object.__setattr__(self, "affine", _readonly(affine))
        object.__setattr__(self, "meta", MappingProxyType(dict(self.meta)))

    # --- shape -----------------------------------------------------------------------------
    @property
    def is_4d(self) -> bool:
        """True when the array has a leading frame axis."""
        return self.array.ndim - (1 if self.rgb else 0) == 4

    @property
    def shape(self) -> tuple[int, int, int]:
        """Spatial shape ``(S, R, C)``, without frame or colour axes."""
        start = 1 if self.is_4d else 0
        return tuple(int(n) for n in self.array.shape[start : start + 3])  # type: ignore[return-value]

    @property
    def n_frames(self) -> int:
        """Number of frames (1 for a 3D volume)."""
        return int(self.array.shape[0]) if self.is_4d else 1

    # --- geometry --------------------------------------------------------------------------
    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size in mm along ``(slice, row, column)``: the norms of the affine's columns."""
        return tuple(float(v) for v in np.linalg.norm(self.affine[:3, :3], axis=0))  # type: ignore[return-value]

    @property
    def direction(self) -> np.ndarray:
        """(3, 3) unit vectors (columns) of the slice, row and column axes in LPS."""
        return self.affine[:3, :3] / np.array(self.spacing)

    @property
    def axcodes(self) -> str:
        """Letters of the direction each (slice, row, column) axis increases towards, e.g. ``SPL``."""
        return axis_codes(self.affine)

    @property
    def orientation(self) -> str:
        """``axial``, ``coronal``, ``sagittal``, with ``(oblique N°)`` when tilted from the patient axes."""
        return orientation_label(self.affine)

    def world(self, index: np.ndarray) -> np.ndarray:
        """Patient LPS mm of ``(..., 3)`` (slice, row, column) indices (fractional allowed)."""
        idx = np.asarray(index, dtype=float)
        return idx @ self.affine[:3, :3].T + self.affine[:3, 3]

    def index(self, world: np.ndarray) -> np.ndarray:
        """Fractional (slice, row, column) indices of ``(..., 3)`` patient LPS points."""
        inv = np.linalg.inv(self.affine)
        return np.asarray(world, dtype=float) @ inv[:3, :3].T + inv[:3, 3]

    @property
    def center(self) -> np.ndarray:
        """Patient LPS mm of the centre of the voxel grid."""
        return self.world((np.array(self.shape, dtype=float) - 1) / 2)

    # --- derived volumes -------------------------------------------------------------------
    def frame(self, t: int) -> Volume:
        """Frame ``t`` of a 4D volume as a 3D Volume (the volume itself when 3D and t == 0)."""
        if not self.is_4d:
            if t != 0:
                raise IndexError(f"a 3D volume has only frame 0, not {t}")
            return self
        return replace(self, array=self.array[t])

    def frames(self) -> Iterator[Volume]:
        """Each frame as a 3D Volume."""
        for t in range(self.n_frames):
            yield self.frame(t)

    def with_array(self, array: np.ndarray, affine: np.ndarray | None = None, **meta: Any) -> Volume:
        """A new Volume with another array (and optionally affine), meta updated with ``meta``."""
        return Volume(
            array=array,
            affine=self.affine if affine is None else affine,
            meta={**self.meta, **meta},
            rgb=self.rgb,
        )

    def describe(self) -> str:
        """What the volume shows, as its repr says it: its orientation (:attr:`orientation`), or for
        a projection the plane it was projected onto, e.g. ``coronal MIP (oblique 4.4°)`` when it
        was projected along a volume axis 4.4° from the plane's normal (not when resampled)."""
        info = self.meta.get("projection")
        if not isinstance(info, Mapping) or info.get("plane") not in PLANES:
            return self.orientation
        what = f"{info['plane']} {PROJECTION_NAMES.get(str(info.get('mode')), 'projection')}"
        angle = 0.0 if info.get("resampled") else float(info.get("angle_deg") or 0.0)
        return f"{what} (oblique {angle:.1f}°)" if angle > OBLIQUE_TOLERANCE_DEG else what

    def __repr__(self) -> str:
        sp = "x".join(f"{s:.3g}" for s in self.spacing)
        desc = self.meta.get("series_description") or ""
        four = f", {self.n_frames} frames" if self.is_4d else ""
        return (
            f"Volume({'x'.join(map(str, self.shape))}{four}, {sp} mm, {self.axcodes}, "
            f"{self.describe()}, {self.array.dtype}{', RGB' if self.rgb else ''}"
            f"{', ' + repr(desc) if desc else ''})"
        )

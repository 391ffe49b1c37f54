"""Reslicing: resample a Volume onto another voxel grid (isotropic, a patient plane, an oblique
plane, another image's grid), optionally averaging or taking the maximum over a slab.

Every operation composes affines. A target grid is an LPS affine ``T`` and a shape; output voxel
``o`` lies at patient position ``T @ o`` and takes the source's value interpolated at source index
``inv(A) @ T @ o`` (``A`` the source affine). Nothing else decides where a voxel is.

Outside the source (beyond half a voxel past its outermost voxel centres) the output holds the
modality's background: air (-1024 HU) for CT, 0 for anything else (:func:`background`).

Engine: SimpleITK's multi-threaded ``ResampleImageFilter`` (the faster on our benchmark, see
``benchmarks/bench_reslice.py``); scipy's ``ndimage.affine_transform`` for grids ITK cannot
represent (non-orthogonal axes) or when asked for (``engine="scipy"``). Both give the same values
for the same interpolation order (tests check it).

Target grids put the index axes where pictures want them, so each output slice already follows
the display conventions (rows top to bottom, columns left to right of the picture):

==========  ===============================  =====================  =====================
plane       slices stacked                   rows (top -> bottom)   columns (left->right)
==========  ===============================  =====================  =====================
axial       inferior -> superior (+z)        anterior -> posterior  right -> left
coronal     anterior -> posterior (+y)       superior -> inferior   right -> left
sagittal    left -> right (-x)               superior -> inferior   anterior -> posterior
==========  ===============================  =====================  =====================

Each triad also matches DICOM's slice normal (``cross(row_dir, col_dir)``), so a series written
from it loads back with the same affine.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, NamedTuple

import numpy as np

from .. import choices
from ..conventions import GRID_AXES, plane_name
from ..errors import ResourceLimitError, UsageError
from ..volume import PLANES, Volume, closest_plane

INTERPOLATIONS = choices.INTERPOLATIONS
"""Interpolation names: nearest neighbour (label maps), trilinear, cubic B-spline."""

SLAB_MODES = choices.SLAB_MODES
"""How a thick slice combines the samples across its thickness."""

ENGINES = ("auto", "sitk", "scipy")
"""Resampling back ends: auto picks SimpleITK whenever the grids are orthogonal."""

CT_BACKGROUND = -1024.0
"""Value outside a CT source: air in Hounsfield units."""

DEFAULT_BACKGROUND = 0.0
"""Value outside any non-CT source (MR, PET, ...): zero signal."""

PLANE_AXES: Mapping[str, np.ndarray] = MappingProxyType({p: np.array(GRID_AXES[p], dtype=float).T for p in PLANES})
"""(3, 3) unit LPS directions (columns) of the (slice, row, column) axes of each plane's grid
(:data:`volume.conventions.GRID_AXES`)."""

GRID_EPS = 1e-6
"""Slack (in voxels) when fitting a whole number of voxels into an extent: absorbs rounding."""

ORTHOGONAL_TOL = 1e-6
"""Largest |cosine| between two voxel axes for a grid to count as orthogonal (ITK-representable)."""

MAX_OUTPUT_VOXELS = 1_500_000_000
"""Refuse grids with more voxels than this (6 GB of float32): a typo like ``--spacing 0.01``."""

SLAB_CHUNK_VOXELS = 32_000_000
"""Fine-grid voxels resampled at a time for thick slices (128 MB of float32)."""

SLAB_SEARCH = 4
"""Try up to this many times the minimum samples per slab to find a grid overlapping slabs share."""

SLAB_MATCH_TOL = 1e-6
"""How close to a whole number of sample steps the slice step must be to share samples."""

INSIDE_MARGIN = 0.5
"""A point belongs to the source when within this many voxels past the outermost voxel centres."""

_SITK_INTERP = {"nearest": "sitkNearestNeighbor", "linear": "sitkLinear", "cubic": "sitkBSpline"}
_SCIPY_ORDER = {"nearest": 0, "linear": 1, "cubic": 3}


# --- helpers -------------------------------------------------------------------------------------
def background(vol: Volume | Mapping[str, Any]) -> float:
    """Value for voxels outside the source: -1024 (air) for CT, 0 otherwise."""
    meta = vol.meta if isinstance(vol, Volume) else vol
    return CT_BACKGROUND if str(meta.get("modality") or "").upper() == "CT" else DEFAULT_BACKGROUND


def _check_interp(interp: str) -> str:
    if interp not in INTERPOLATIONS:
        raise UsageError(f"interpolation must be one of {', '.join(INTERPOLATIONS)}, got {interp!r}")
    return interp


def _spacing3(spacing: float | Sequence[float] | None) -> np.ndarray | None:
    """One or three positive mm values -> (3,) array in (slice, row, column) order, or None."""
    if spacing is None:
        return None
    values = np.atleast_1d(np.asarray(spacing, dtype=float))
    if values.size == 1:
        values = np.repeat(values, 3)
    if values.size != 3 or not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise UsageError(f"spacing must be one or three positive numbers (mm), got {list(np.atleast_1d(spacing))}")
    return values


def is_orthogonal(affine: np.ndarray) -> bool:
    """True when the three voxel axes of ``affine`` are mutually perpendicular."""
    d = np.asarray(affine, dtype=float)[:3, :3]
    u = d / np.linalg.norm(d, axis=0)
    g = u.T @ u
    return bool(np.all(np.abs(g - np.eye(3)) <= ORTHOGONAL_TOL))


def voxel_map(src_affine: np.ndarray, target_affine: np.ndarray) -> np.ndarray:
    """The 4x4 map from target voxel indices to source voxel indices: ``inv(src) @ target``."""
    return np.linalg.inv(np.asarray(src_affine, float)) @ np.asarray(target_affine, float)


def native_spacing(vol: Volume, direction: np.ndarray) -> float:
    """The source's resolution along an LPS ``direction`` (mm per voxel step).

    For a direction along one of the source's axes this is that axis's spacing; otherwise the
    distance along ``direction`` that moves at most one voxel along every source axis.
    """
    u = np.asarray(direction, float) / np.linalg.norm(direction)
    steps = np.linalg.solve(np.asarray(vol.affine)[:3, :3], u)  # source voxels per mm along u
    return float(1.0 / np.max(np.abs(steps)))


def _corners(vol: Volume) -> np.ndarray:
    """(8, 3) LPS positions of the corner voxel centres of ``vol``."""
    s, r, c = (n - 1 for n in vol.shape)
    idx = np.array([[a, b, d] for a in (0, s) for b in (0, r) for d in (0, c)], dtype=float)
    return vol.world(idx)


def grid_from_axes(
    vol: Volume,
    axes: np.ndarray,
    spacing: Sequence[float],
    fov: Sequence[float] | None = None,
) -> tuple[np.ndarray, tuple[int, int, int]]:
    """A grid with unit LPS ``axes`` (columns: slice, row, column) covering ``vol``.

    Parameters
    ----------
    axes
        (3, 3) orthonormal directions of the (slice, row, column) index axes.
    spacing
        (3,) mm along (slice, row, column).
    fov
        Extent in mm along (slice, row, column), edge to edge (``fov / spacing`` voxels), centred
        on the source's centre; ``None`` (or a ``None`` entry) covers the source's voxel centres
        along that axis.

    Returns
    -------
    affine, shape
        float64 (4, 4) LPS affine and ``(S, R, C)``; the samples are centred in the extent.
    """
    axes = np.asarray(axes, float)
    sp = np.asarray(spacing, float)
    proj = _corners(vol) @ axes  # (8, 3): coordinate of each corner along each axis
    lo, hi = proj.min(axis=0), proj.max(axis=0)
    # voxels covering the source's voxel centres: the first and last centres on them (or inside)
    n = np.floor((hi - lo) / sp + GRID_EPS).astype(int) + 1
    if fov is not None:
        centre = vol.center @ axes
        for i, extent in enumerate(fov):
            if extent is not None:
                # a field of view is edge to edge: n voxels of sp mm fill it
                n[i] = max(1, int(np.floor(extent / sp[i] + GRID_EPS)))
                lo[i] = hi[i] = centre[i]
    start = (lo + hi) / 2 - (n - 1) * sp / 2
    affine = np.eye(4)
    affine[:3, :3] = axes * sp
    affine[:3, 3] = axes @ start
    return affine, (int(n[0]), int(n[1]), int(n[2]))


# --- grids ---------------------------------------------------------------------------------------
def plane_grid(
    vol: Volume,
    plane: str,
    spacing: float | Sequence[float] | None = None,
    fov: Sequence[float | None] | None = None,
) -> tuple[np.ndarray, tuple[int, int, int]]:
    """The grid of an anatomical ``plane`` aligned with the patient axes, covering ``vol``.

    Parameters
    ----------
    plane
        ``axial``, ``coronal`` or ``sagittal`` (axes in :data:`PLANE_AXES`).
    spacing
        mm, one value or (slice, row, column); default: the source's resolution along each axis.
    fov
        mm along (slice, row, column) centred on the source (``None`` entries: whole source).
    """
    axes = PLANE_AXES[plane_name(plane)]
    sp = _spacing3(spacing)
    if sp is None:
        sp = np.array([native_spacing(vol, axes[:, i]) for i in range(3)])
    return grid_from_axes(vol, axes, sp, fov)


def oblique_axes(normal: Sequence[float]) -> np.ndarray:
    """(3, 3) unit axes (slice, row, column) of slices perpendicular to ``normal`` (LPS).

    Slices are stacked along ``normal`` as given. The in-plane axes are those of the nearest
    anatomical plane (see :data:`PLANE_AXES`) tilted into the oblique plane, so pictures keep the
    display conventions of that plane.
    """
    n = np.asarray(normal, dtype=float)
    if n.shape != (3,) or not np.all(np.isfinite(n)) or np.linalg.norm(n) == 0:
        raise UsageError(f"normal must be three numbers x,y,z (LPS), not all zero, got {np.atleast_1d(normal).tolist()}")
    n = n / np.linalg.norm(n)
    plane, _ = closest_plane(n)
    canon = PLANE_AXES[plane]
    col = canon[:, 2] - (canon[:, 2] @ n) * n
    col /= np.linalg.norm(col)
    row = canon[:, 1] - (canon[:, 1] @ n) * n - (canon[:, 1] @ col) * col
    row /= np.linalg.norm(row)
    return np.stack([n, row, col], axis=1)


def oblique_grid(
    vol: Volume,
    normal: Sequence[float],
    spacing: float | Sequence[float] | None = None,
    fov: Sequence[float | None] | None = None,
) -> tuple[np.ndarray, tuple[int, int, int]]:
    """The grid of slices perpendicular to an LPS ``normal``, covering ``vol`` (see :func:`oblique_axes`)."""
    axes = oblique_axes(normal)
    sp = _spacing3(spacing)
    if sp is None:
        sp = np.array([native_spacing(vol, axes[:, i]) for i in range(3)])
    return grid_from_axes(vol, axes, sp, fov)


def isotropic_grid(vol: Volume, spacing: float | Sequence[float]) -> tuple[np.ndarray, tuple[int, int, int]]:
    """``vol``'s own orientation and first voxel centre with new ``spacing`` (mm, 1 or 3 values).

    Each axis gets as many voxels as fit in the source's extent (from the first to the last voxel
    centre), so no output voxel lies outside the source.
    """
    sp = _spacing3(spacing)
    assert sp is not None
    old = np.asarray(vol.spacing)
    extent = (np.asarray(vol.shape) - 1) * old
    n = np.floor(extent / sp + GRID_EPS).astype(int) + 1
    affine = np.array(vol.affine, dtype=float)
    affine[:3, :3] = affine[:3, :3] / old * sp
    return affine, (int(n[0]), int(n[1]), int(n[2]))


class Grid(NamedTuple):
    """A voxel grid to reslice onto: LPS ``(slice, row, column)`` affine, ``(S, R, C)`` shape, and a
    name for the record (``meta['reslice']['like']``)."""

    affine: np.ndarray
    shape: tuple[int, int, int]
    name: str = "grid"


def as_grid(like: Any) -> Grid:
    """``like`` as a :class:`Grid`: a Grid, an ``(affine, shape)`` pair, or anything with ``affine``
    and ``shape`` (a Volume, a stack source; the last three axes of a 4D shape)."""
    if isinstance(like, Grid):
        return like
    if isinstance(like, tuple) and len(like) == 2:
        affine, shape = like
        return Grid(np.asarray(affine, dtype=float), tuple(int(v) for v in shape[-3:]))  # type: ignore[arg-type]
    if hasattr(like, "affine") and hasattr(like, "shape"):
        return Grid(np.asarray(like.affine, dtype=float), tuple(int(v) for v in like.shape[-3:]),  # type: ignore[arg-type]
                    str(getattr(like, "id", "") or (getattr(like, "meta", {}) or {}).get("stack_id") or "grid"))
    raise UsageError(f"like must be a grid (affine, shape), a Volume or a stack source, got {type(like).__name__} "
                     "(a path: volume.reslice, or volume.api.like_grid)")


# --- resampling ----------------------------------------------------------------------------------
def _itk_geometry(affine: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]:
    """ITK origin, spacing and direction (row-major) of an LPS (slice, row, column) affine."""
    cols = np.asarray(affine, float)[:3, :3][:, ::-1]  # ITK index order: column, row, slice
    spacing = np.linalg.norm(cols, axis=0)
    direction = cols / spacing
    return tuple(np.asarray(affine, float)[:3, 3].tolist()), tuple(spacing.tolist()), tuple(direction.ravel().tolist())


def _sitk_resampler(
    data: np.ndarray, src_affine: np.ndarray, order: str, fill: float, out_dtype: np.dtype,
) -> Callable[[np.ndarray, tuple[int, int, int]], np.ndarray]:
    """A function ``(target_affine, shape) -> array`` resampling ``data`` with SimpleITK.

    The source is handed to ITK once (one copy), however many grids are asked for.
    """
    import SimpleITK as sitk

    if data.dtype == bool:
        data = data.astype(np.uint8)
    img = sitk.GetImageFromArray(data)
    origin, spacing, direction = _itk_geometry(src_affine)
    img.SetOrigin(origin)
    img.SetSpacing(spacing)
    img.SetDirection(direction)
    pixel_types = {
        np.dtype(np.float32): sitk.sitkFloat32, np.dtype(np.float64): sitk.sitkFloat64,
        np.dtype(np.int16): sitk.sitkInt16, np.dtype(np.uint16): sitk.sitkUInt16,
        np.dtype(np.int32): sitk.sitkInt32, np.dtype(np.uint32): sitk.sitkUInt32,
        np.dtype(np.uint8): sitk.sitkUInt8, np.dtype(np.int8): sitk.sitkInt8,
        np.dtype(np.int64): sitk.sitkInt64, np.dtype(np.uint64): sitk.sitkUInt64,
    }
    pixel_type = pixel_types.get(np.dtype(out_dtype), sitk.sitkFloat32)

    def run(target_affine: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
        f = sitk.ResampleImageFilter()
        origin, spacing, direction = _itk_geometry(target_affine)
        f.SetOutputOrigin(origin)
        f.SetOutputSpacing(spacing)
        f.SetOutputDirection(direction)
        f.SetSize((int(shape[2]), int(shape[1]), int(shape[0])))
        f.SetInterpolator(getattr(sitk, _SITK_INTERP[order]))
        f.SetDefaultPixelValue(float(fill))
        f.SetOutputPixelType(pixel_type)
        return np.asarray(_ImageBuffer(f.Execute(img)))

    return run


class _ImageBuffer:
    """Exposes a SimpleITK image's pixels to numpy without a copy, and keeps the image alive.

    ``sitk.GetArrayViewFromImage`` returns a view that does not reference its image; an array
    made from this object has it as ``base``, which holds the image.
    """

    def __init__(self, image: Any) -> None:
        import SimpleITK as sitk

        self._image = image
        self.__array_interface__ = sitk.GetArrayViewFromImage(image).__array_interface__


def _scipy_resampler(
    data: np.ndarray, src_affine: np.ndarray, order: str, fill: float, out_dtype: np.dtype,
) -> Callable[[np.ndarray, tuple[int, int, int]], np.ndarray]:
    """A function ``(target_affine, shape) -> array`` resampling ``data`` with scipy.ndimage."""

    def run(target_affine: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
        return _resample_scipy(data, src_affine, target_affine, shape, order, fill, out_dtype)

    return run


def _resample_scipy(
    data: np.ndarray, src_affine: np.ndarray, target_affine: np.ndarray, shape: tuple[int, int, int],
    order: str, fill: float, out_dtype: np.dtype,
) -> np.ndarray:
    from scipy import ndimage

    m = voxel_map(src_affine, target_affine)
    k = _SCIPY_ORDER[order]
    src = data if (k == 0 or data.dtype.kind == "f") else data.astype(np.float32)
    if src.dtype == bool:
        src = src.astype(np.uint8)
    out = ndimage.affine_transform(
        src, m[:3, :3], offset=m[:3, 3], output_shape=tuple(shape), order=k,
        mode="nearest", output=np.dtype(out_dtype) if k == 0 else np.float32,
    )
    # outside the source (beyond half a voxel past the edge voxel centres): fill
    upper = np.asarray(data.shape, float) - 1 + INSIDE_MARGIN
    r, c = np.meshgrid(np.arange(shape[1]), np.arange(shape[2]), indexing="ij")
    for s in range(shape[0]):
        idx = m[:3, 0] * s + m[:3, 1] * r[..., None] + m[:3, 2] * c[..., None] + m[:3, 3]
        outside = np.any((idx < -INSIDE_MARGIN) | (idx > upper), axis=-1)
        out[s][outside] = fill
    return out.astype(out_dtype, copy=False)


def _check_size(shape: Sequence[int], n_frames: int = 1) -> None:
    """Refuse output grids over :data:`MAX_OUTPUT_VOXELS` (a typo in a spacing, not a real request)."""
    voxels = int(np.prod(np.asarray(shape, dtype=np.int64))) * int(n_frames)
    if voxels > MAX_OUTPUT_VOXELS:
        raise ResourceLimitError(
            f"the new grid has {voxels:,} voxels ({'x'.join(map(str, shape))}"
            f"{f' x {n_frames} frames' if n_frames > 1 else ''}), over the limit of {MAX_OUTPUT_VOXELS:,}; "
            "choose a coarser --spacing or a smaller --fov"
        )


def _dtype_holding(dtype: np.dtype, fill: float) -> np.dtype:
    """``dtype``, or the smallest type that also holds ``fill`` (float32 for a fractional or NaN fill)."""
    if dtype.kind not in "iu":
        return dtype
    if not np.isfinite(fill) or fill != math.floor(fill):
        return np.dtype(np.float32)
    info = np.iinfo(dtype)
    if info.min <= fill <= info.max:
        return dtype
    return np.promote_types(dtype, np.min_scalar_type(int(fill)))


def resample(
    vol: Volume,
    target_affine: np.ndarray,
    target_shape: Sequence[int],
    *,
    interp: str = "linear",
    fill: float | None = None,
    engine: str = "auto",
    **meta: Any,
) -> Volume:
    """``vol`` resampled onto the grid ``(target_affine, target_shape)``.

    Parameters
    ----------
    vol
        3D or 4D (each frame resampled), grey or RGB (each channel resampled).
    target_affine
        float (4, 4): output (slice, row, column) index -> LPS mm.
    target_shape
        ``(S, R, C)`` of the output.
    interp
        ``nearest`` (keeps the source dtype: label maps stay labels; widened only when ``fill``
        does not fit it), ``linear`` or ``cubic`` (float32 output; RGB is rounded back to its
        integer type).
    fill
        Value outside the source; default :func:`background` (-1024 for CT, 0 otherwise).
    engine
        ``auto`` (SimpleITK when both grids are orthogonal, else scipy), ``sitk`` or ``scipy``.
    meta
        Entries added to the output's meta.

    Returns
    -------
    Volume
        ``(S, R, C)`` (``(T, S, R, C)`` for 4D) with affine ``target_affine``; voxel ``o`` holds
        the source interpolated at source index ``inv(vol.affine) @ target_affine @ o``.
    """
    order = _check_interp(interp)
    if engine not in ENGINES:
        raise UsageError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    target_affine = np.asarray(target_affine, dtype=float)
    shape = tuple(int(n) for n in target_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise UsageError(f"target shape must be three positive sizes (S, R, C), got {shape}")
    _check_size(shape, vol.n_frames)
    fill_value = background(vol) if fill is None else float(fill)
    if engine == "auto":
        engine = "sitk" if is_orthogonal(vol.affine) and is_orthogonal(target_affine) else "scipy"
    make = _sitk_resampler if engine == "sitk" else _scipy_resampler
    src = np.asarray(vol.array)
    if order == "nearest":
        out_dtype = _dtype_holding(src.dtype if src.dtype != bool else np.dtype(np.uint8), fill_value)
    else:
        out_dtype = np.dtype(np.float32)
    if vol.rgb and order != "nearest":
        out_dtype = src.dtype

    def one(data: np.ndarray) -> np.ndarray:
        if vol.rgb:
            channels = [make(data[..., ch], vol.affine, order, fill_value, np.dtype(np.float32))(target_affine, shape)
                        for ch in range(3)]
            stacked = np.stack(channels, axis=-1)
            if out_dtype.kind in "iu":
                info = np.iinfo(out_dtype)
                stacked = np.clip(np.rint(stacked), info.min, info.max)
            return stacked.astype(out_dtype)
        return make(data, vol.affine, order, fill_value, out_dtype)(target_affine, shape)

    if vol.is_4d:
        out = np.stack([one(src[t]) for t in range(vol.n_frames)])
    else:
        out = one(src)
    return Volume(out, target_affine, {**vol.meta, **meta}, rgb=vol.rgb)


def _slab_sampling(step: float, thickness: float, finest: float) -> tuple[int, int | None]:
    """Samples per slab, and how many fine-grid steps one output slice spans (None: no shared grid).

    A slab of ``thickness`` is sampled ``n`` times, ``thickness / n`` apart with ``thickness / n <=
    finest``. When the slice ``step`` is a whole number ``m`` of those sample steps, neighbouring
    (overlapping) slabs share samples: one fine grid along the slice axis serves them all.
    """
    n_min = max(1, math.ceil(thickness / finest - GRID_EPS))
    for n in range(n_min, SLAB_SEARCH * n_min + 1):
        m = step * n / thickness
        if round(m) >= 1 and abs(m - round(m)) < SLAB_MATCH_TOL:
            return n, int(round(m))
    return n_min, None


def _check_slab(vol: Volume, thickness: float, mode: str, engine: str) -> None:
    """Refuse an unknown slab mode or engine, a thickness that is no positive length, an RGB volume."""
    if mode not in SLAB_MODES:
        raise UsageError(f"mode must be one of {', '.join(SLAB_MODES)}, got {mode!r}")
    if not (np.isfinite(thickness) and thickness > 0):
        raise UsageError(f"thickness must be a positive number of mm, got {thickness}")
    if vol.rgb:
        raise UsageError("thick slices of colour (RGB) volumes are not supported; reslice without --thickness")
    if engine not in ENGINES:
        raise UsageError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")


def _combine_slab(samples: list[np.ndarray], mode: str, fill_value: float) -> np.ndarray:
    """A slab's samples (arrays of one shape; NaN: outside the source) combined by ``mode``;
    ``fill_value`` where no sample is inside."""
    if mode == "mean":
        total = np.zeros(samples[0].shape, np.float32)
        count = np.zeros(samples[0].shape, np.uint16)
        for a in samples:
            valid = np.isfinite(a)
            total += np.where(valid, a, 0.0)
            count += valid
        with np.errstate(invalid="ignore", divide="ignore"):
            out = total / count
        out[count == 0] = fill_value
        return out
    out = np.full(samples[0].shape, np.nan, np.float32)
    for a in samples:
        (np.fmax if mode == "max" else np.fmin)(out, a, out=out)
    out[np.isnan(out)] = fill_value
    return out


def resample_slab(
    vol: Volume,
    target_affine: np.ndarray,
    target_shape: Sequence[int],
    thickness: float,
    *,
    mode: str = "mean",
    interp: str = "linear",
    fill: float | None = None,
    engine: str = "auto",
    **meta: Any,
) -> Volume:
    """Thick slices: each output voxel combines the source over ``thickness`` mm along the slice axis.

    The slab of each output voxel, centred on it along the target's slice direction, is sampled
    ``n`` times, ``thickness / n`` apart and no further apart than the source's finest spacing
    (so every source voxel is seen), and the samples are averaged (``mean``), or their maximum
    (``max``, a slab MIP) or minimum (``min``) is taken. Samples outside the source are left out;
    voxels with no sample inside hold ``fill``. Overlapping slabs share their samples (one fine
    grid along the slice axis, processed in chunks) whenever the slice step allows it.

    Returns
    -------
    Volume
        float32, with the target's shape and affine (``(T, S, R, C)`` for 4D); ``meta['slab']``
        records thickness, mode and samples per slab.
    """
    _check_slab(vol, thickness, mode, engine)
    order = _check_interp(interp)
    target_affine = np.asarray(target_affine, dtype=float)
    shape = tuple(int(v) for v in target_shape)
    _check_size(shape, vol.n_frames)
    step = float(np.linalg.norm(target_affine[:3, 0]))
    normal = target_affine[:3, 0] / step
    n_sub, m = _slab_sampling(step, float(thickness), min(vol.spacing))
    h = thickness / n_sub
    fill_value = background(vol) if fill is None else float(fill)
    if engine == "auto":
        engine = "sitk" if is_orthogonal(vol.affine) and is_orthogonal(target_affine) else "scipy"
    make = _sitk_resampler if engine == "sitk" else _scipy_resampler
    plane_voxels = shape[1] * shape[2]

    def frame(data: np.ndarray) -> np.ndarray:
        src = data if data.dtype.kind == "f" else data.astype(np.float32)
        run = make(src, vol.affine, order, np.nan, np.dtype(np.float32))
        result = np.empty(shape, np.float32)
        if m is None:  # slabs cannot share samples: one resampling per sample offset
            samples = []
            for j in range(n_sub):
                shifted = target_affine.copy()
                shifted[:3, 3] += (-thickness / 2 + (j + 0.5) * h) * normal
                samples.append(np.array(run(shifted, shape), dtype=np.float32))
            return _combine_slab(samples, mode, fill_value)
        chunk = max(1, int((SLAB_CHUNK_VOXELS // plane_voxels - n_sub) // m) + 1)
        for k0 in range(0, shape[0], chunk):
            k1 = min(shape[0], k0 + chunk)
            fine_n = (k1 - k0 - 1) * m + n_sub
            fine_affine = target_affine.copy()
            fine_affine[:3, 0] = normal * h
            fine_affine[:3, 3] += (k0 * step - (n_sub - 1) / 2 * h) * normal
            fine = run(fine_affine, (fine_n, shape[1], shape[2]))
            result[k0:k1] = _combine_slab([fine[j : j + (k1 - k0 - 1) * m + 1 : m] for j in range(n_sub)],
                                          mode, fill_value)
        return result

    array = np.asarray(vol.array)
    out = np.stack([frame(array[t]) for t in range(vol.n_frames)]) if vol.is_4d else frame(array)
    info = {"thickness_mm": float(thickness), "slab_mode": mode, "slab_samples": int(n_sub)}
    return Volume(out, target_affine, {**vol.meta, **meta, "slab": info}, rgb=False)


# --- the one call the CLI makes ------------------------------------------------------------------
def reslice_grid(
    vol: Volume,
    *,
    plane: str | None = None,
    normal: Sequence[float] | None = None,
    like: Grid | tuple[np.ndarray, Sequence[int]] | Any | None = None,
    spacing: float | Sequence[float] | None = None,
    fov: Sequence[float | None] | None = None,
    thickness: float | None = None,
) -> tuple[np.ndarray, tuple[int, int, int], dict[str, Any]]:
    """The grid :func:`reslice` samples onto, from ``vol``'s geometry alone (no voxel is read).

    The parameters are :func:`reslice`'s. A job names its outputs (one picture per slice) from it
    before the series is loaded; ``vol`` may then be a volume of the right affine and shape whose
    array holds nothing (``numpy.broadcast_to``).

    Returns
    -------
    (numpy.ndarray, (int, int, int), dict)
        The grid's (4, 4) affine, its ``(S, R, C)`` shape, and what was asked (``meta['reslice']``).
    """
    chosen = [name for name, v in (("plane", plane), ("normal", normal), ("like", like)) if v is not None]
    if len(chosen) > 1:
        raise UsageError(f"choose one of plane, normal, like (got {' and '.join(chosen)})")
    sp = _spacing3(spacing)
    if like is not None:
        if sp is not None or fov is not None:
            raise UsageError("--like takes the other image's whole grid: drop --spacing and --fov")
        grid = as_grid(like)
        affine, shape = grid.affine, grid.shape
        how: dict[str, Any] = {"like": grid.name}
    else:
        if plane is not None:
            plane = plane_name(plane)
            axes = PLANE_AXES[plane]
            how = {"plane": plane}
        elif normal is not None:
            axes = oblique_axes(normal)
            how = {"normal": [round(float(v), 6) for v in axes[:, 0]]}
        else:
            axes = np.asarray(vol.direction)
            how = {"spacing_only": True}
        if sp is None:
            sp = np.array([native_spacing(vol, axes[:, i]) for i in range(3)])
            if thickness is not None:
                sp[0] = float(thickness)
        if plane is None and normal is None and fov is None:
            affine, shape = isotropic_grid(vol, sp)
        else:
            affine, shape = grid_from_axes(vol, axes, sp, fov)
    return np.asarray(affine, dtype=float), tuple(int(n) for n in shape), how  # type: ignore[return-value]


def reslice(
    vol: Volume,
    *,
    plane: str | None = None,
    normal: Sequence[float] | None = None,
    like: Grid | tuple[np.ndarray, Sequence[int]] | Any | None = None,
    spacing: float | Sequence[float] | None = None,
    fov: Sequence[float | None] | None = None,
    thickness: float | None = None,
    mode: str = "mean",
    interp: str = "linear",
    fill: float | None = None,
    engine: str = "auto",
) -> Volume:
    """Reslice ``vol``: onto a patient ``plane``, an oblique plane (``normal``), another image's grid
    (``like``), or (none of these) its own orientation with a new ``spacing``.

    Parameters
    ----------
    plane
        ``axial``, ``coronal`` or ``sagittal``: a grid aligned with the patient axes (see
        :data:`PLANE_AXES`) covering the whole source (or ``fov``).
    normal
        LPS (x, y, z) normal of oblique slices (see :func:`oblique_axes`).
    like
        Another image's exact grid: a :class:`Grid`, an ``(affine, shape)`` pair, a Volume or a stack
        source (:func:`volume.reslice` also takes a NIfTI file or DICOM series path).
    spacing
        mm, one value or (slice, row, column). Default: the source's resolution along each axis of
        the new grid; with ``thickness`` and a single default, slices are ``thickness`` apart.
    fov
        mm along (slice, row, column), centred on the source; ``None`` entries cover the source.
    thickness, mode
        Thick slices: combine ``thickness`` mm along the slice direction by ``mode`` (mean, max, min).
    interp
        ``nearest``, ``linear`` (default) or ``cubic``.
    fill
        Value outside the source (default -1024 for CT, else 0).

    Returns
    -------
    Volume
        The resliced volume; ``meta['reslice']`` records what was done.
    """
    affine, shape, how = reslice_grid(vol, plane=plane, normal=normal, like=like, spacing=spacing, fov=fov,
                                      thickness=thickness)
    how.update(interp=interp, spacing_mm=[round(float(v), 6) for v in np.linalg.norm(np.asarray(affine)[:3, :3], axis=0)])
    slice_step = float(np.linalg.norm(np.asarray(affine)[:3, 0]))
    extra = {
        "reslice": how,
        "slice_thickness": float(thickness) if thickness else slice_step,
        "image_orientation_patient": [*(np.asarray(affine)[:3, 2] / np.linalg.norm(np.asarray(affine)[:3, 2])).tolist(),
                                      *(np.asarray(affine)[:3, 1] / np.linalg.norm(np.asarray(affine)[:3, 1])).tolist()],
    }
    if thickness:
        how.update(thickness_mm=float(thickness), mode=mode)
        return resample_slab(vol, affine, shape, float(thickness), mode=mode, interp=interp, fill=fill,
                             engine=engine, **extra)
    return resample(vol, affine, shape, interp=interp, fill=fill, engine=engine, **extra)


def isotropic(vol: Volume, spacing: float | Sequence[float] = 1.0, *, interp: str = "linear",
              fill: float | None = None) -> Volume:
    """``vol`` in its own orientation resampled to ``spacing`` mm (see :func:`isotropic_grid`)."""
    return reslice(vol, spacing=spacing, interp=interp, fill=fill)

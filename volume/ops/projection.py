"""Maximum, minimum and mean intensity projections along anatomical planes, whole or in slabs.

A projection is a :class:`~volume.Volume` with one voxel (or one voxel per slab) along the
projected axis, so it overlays its source in any viewer: the other two axes keep the source's
in-plane geometry, and the projected axis' voxel sits at the slab centre.

* Default: project along the volume axis closest to the plane's normal (no interpolation, as
  workstations do for orthogonal acquisitions).
* ``resample=True``: sample the source onto a patient-aligned grid (slice axis along the plane
  normal, rows "down" and columns "right" of the display, see :mod:`volume.display`) one target
  slice at a time, for oblique acquisitions; composes ``inv(src_affine) @ target_affine``.

Memory: the inner loop is slice-wise (:func:`project_slices`): along the slice axis it keeps a
running max/min/sum per open slab; across rows or columns it reduces each slice as it comes. So
:func:`project_stack` streams a DICOM stack from disk holding a few slices, never the series.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import NotAVolumeError, UsageError
from ..volume import PLANE_NORMALS, Volume

MODES = ("max", "min", "mean")
"""Projection modes: maximum (MIP), minimum (MinIP), mean (average) intensity."""

RESAMPLE_ORDER = 1
"""Spline order used by ``resample=True`` (trilinear): no overshoot, exact on linear fields."""

MAX_RESAMPLED_SIDE = 4096
"""Largest side (voxels) of a patient-aligned grid built by ``resample=True``."""


@dataclass(frozen=True)
class SlabLayout:
    """Where the slabs are along the projected axis, in voxel indices.

    Slab ``j`` covers indices ``starts[j] .. starts[j] + size - 1``; consecutive slabs start
    ``step`` voxels apart (they overlap when ``step < size``). A whole-volume projection is one
    slab of every slice.
    """

    n: int
    """Voxels along the projected axis."""
    size: int
    """Voxels per slab."""
    step: int
    """Voxels between consecutive slab starts."""
    whole: bool = False
    """True for a whole-volume projection (no --slab)."""

    @property
    def starts(self) -> list[int]:
        return list(range(0, self.n - self.size + 1, self.step))

    @property
    def count(self) -> int:
        return len(self.starts)

    def open_slabs(self, k: int) -> range:
        """Indices ``j`` of the slabs that contain voxel ``k``."""
        lo = max(0, -(-(k - self.size + 1) // self.step))
        hi = min(self.count - 1, k // self.step)
        return range(lo, hi + 1)


def slab_layout(n: int, spacing_mm: float, slab_mm: float | None = None, step_mm: float | None = None) -> SlabLayout:
    """Slabs of ``slab_mm`` every ``step_mm`` (default: ``slab_mm``) over ``n`` voxels ``spacing_mm`` apart.

    Thicknesses are rounded (half up) to whole voxels (at least one); a slab thicker than the volume
    becomes one slab of the whole volume. Voxels after the last whole slab are not covered.
    """
    if slab_mm is None:
        if step_mm is not None:
            raise UsageError("--step needs --slab (the slab thickness in mm)")
        return SlabLayout(n=n, size=n, step=n, whole=True)
    if not (slab_mm > 0 and math.isfinite(slab_mm)):
        raise UsageError(f"--slab must be a positive thickness in mm, got {slab_mm}")
    if step_mm is not None and not (step_mm > 0 and math.isfinite(step_mm)):
        raise UsageError(f"--step must be a positive distance in mm, got {step_mm}")
    size = max(1, int(math.floor(slab_mm / spacing_mm + 0.5)))
    step = max(1, int(math.floor((step_mm if step_mm is not None else slab_mm) / spacing_mm + 0.5)))
    size = min(size, n)
    return SlabLayout(n=n, size=size, step=step)


def projection_axis(affine: np.ndarray, plane: str) -> tuple[int, float]:
    """The (slice, row, column) axis closest to ``plane``'s normal, and the angle (degrees) between them."""
    key = _plane(plane)
    a = np.asarray(affine, dtype=float)[:3, :3]
    unit = a / np.linalg.norm(a, axis=0)
    cos = np.abs(PLANE_NORMALS[key] @ unit)
    axis = int(np.argmax(cos))
    return axis, math.degrees(math.acos(min(1.0, float(cos[axis]))))


def _plane(plane: str) -> str:
    key = str(plane).strip().lower()
    if key not in PLANE_NORMALS:
        raise UsageError(f"plane must be one of {', '.join(PLANE_NORMALS)}, got {plane!r}")
    return key


def _mode(mode: str) -> str:
    key = str(mode).strip().lower()
    if key not in MODES:
        raise UsageError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    return key


def project_slices(
    slices: Iterable[np.ndarray],
    axis: int,
    mode: str,
    layout: SlabLayout,
    *,
    ignore_nan: bool = False,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """The streaming core: reduce a sequence of (R, C) slices, each read once, over slabs.

    Parameters
    ----------
    slices
        ``layout.n`` arrays of shape (R, C) if ``axis == 0``, else the S slices of the volume
        (``axis`` 1 reduces rows, 2 reduces columns, ``layout.n`` is R or C). Any real dtype.
    axis
        The (slice, row, column) axis projected.
    mode
        ``max``, ``min`` or ``mean``.
    layout
        Slabs along ``axis`` (:func:`slab_layout`).
    ignore_nan
        NaN marks "no data" (outside a resampled grid): ignored by every mode; a pixel without
        data stays NaN.

    Returns
    -------
    numpy.ndarray
        (count, R, C), (S, count, C) or (S, R, count) for axis 0, 1, 2; the input dtype for
        max/min, float32 for mean.

    Memory: for ``axis == 0`` one accumulator per open slab (``ceil(size / step)``), plus the output.
    """
    mode = _mode(mode)
    count = layout.count
    if count == 0:
        raise UsageError("no slab fits in the volume")
    reduce_max = np.fmax if ignore_nan else np.maximum
    reduce_min = np.fmin if ignore_nan else np.minimum
    out: np.ndarray | None = None
    open_acc: dict[int, list[Any]] = {}  # slab -> [accumulator, valid count (mean with NaN)]
    n_seen = 0
    starts = layout.starts
    for k, sl in enumerate(slices):
        sl = np.asarray(sl)
        n_seen += 1
        if axis == 0:
            if out is None:
                dtype = np.float32 if mode == "mean" else sl.dtype
                out = np.empty((count,) + sl.shape, dtype=dtype)
            for j in layout.open_slabs(k):
                acc = open_acc.get(j)
                if acc is None:
                    if mode == "mean":
                        valid = np.isfinite(sl) if ignore_nan else None
                        first = np.where(valid, sl, 0.0) if ignore_nan else sl
                        acc = [first.astype(np.float64), valid.astype(np.int32) if ignore_nan else None]
                    else:
                        acc = [sl.copy(), None]
                    open_acc[j] = acc
                elif mode == "max":
                    reduce_max(acc[0], sl, out=acc[0])
                elif mode == "min":
                    reduce_min(acc[0], sl, out=acc[0])
                else:
                    if ignore_nan:
                        valid = np.isfinite(sl)
                        acc[0] += np.where(valid, sl, 0.0)
                        acc[1] += valid
                    else:
                        acc[0] += sl
                if k == starts[j] + layout.size - 1:
                    done = open_acc.pop(j)
                    if mode == "mean":
                        if ignore_nan:
                            with np.errstate(invalid="ignore", divide="ignore"):
                                out[j] = np.where(done[1] > 0, done[0] / np.maximum(done[1], 1), np.nan)
                        else:
                            out[j] = done[0] / layout.size
                    else:
                        out[j] = done[0]
        else:
            along = axis - 1  # the slice's own axis (0 rows, 1 columns) that is reduced
            if out is None:
                out = np.empty((0,), dtype=np.float32 if mode == "mean" else sl.dtype)  # dtype only
                rows: list[np.ndarray] = []
            parts = []
            for s0 in starts:
                block = sl[s0 : s0 + layout.size] if along == 0 else sl[:, s0 : s0 + layout.size]
                if mode == "max":
                    parts.append((np.nanmax if ignore_nan else np.max)(block, axis=along))
                elif mode == "min":
                    parts.append((np.nanmin if ignore_nan else np.min)(block, axis=along))
                else:
                    parts.append((np.nanmean if ignore_nan else np.mean)(block, axis=along, dtype=np.float64))
            rows.append(np.stack(parts, axis=along).astype(out.dtype, copy=False))
        if progress is not None:
            progress(1)
    if axis == 0:
        if out is None or n_seen != layout.n:
            raise ValueError(f"expected {layout.n} slices, got {n_seen}")
        return out
    if not n_seen:
        raise ValueError("no slices to project")
    return np.stack(rows, axis=0)


def _output_affine(affine: np.ndarray, axis: int, layout: SlabLayout) -> np.ndarray:
    """Source affine with ``axis`` replaced: origin at the first slab's centre, step between slabs."""
    a = np.array(affine, dtype=float)
    step_vec = a[:3, axis].copy()
    centre_index = np.zeros(3)
    centre_index[axis] = layout.starts[0] + (layout.size - 1) / 2
    a[:3, 3] = a[:3, :3] @ centre_index + a[:3, 3]
    # one voxel per slab: as thick as the slab when whole, else as far apart as the slabs
    a[:3, axis] = step_vec * (layout.size if layout.whole or layout.count == 1 else layout.step)
    return a


def _projection_meta(plane: str, mode: str, axis: int, angle: float, layout: SlabLayout,
                     spacing: float, resampled: bool) -> dict[str, Any]:
    return {
        "projection": {
            "plane": plane,
            "mode": mode,
            "axis": axis,
            "angle_deg": round(angle, 3),
            "resampled": resampled,
            "slab_mm": round(layout.size * spacing, 6),
            "step_mm": None if layout.whole else round(layout.step * spacing, 6),
            "slices_per_slab": layout.size,
            "slabs": layout.count,
        }
    }


def project(
    vol: Volume,
    plane: str = "coronal",
    mode: str = "max",
    slab_mm: float | None = None,
    step_mm: float | None = None,
    resample: bool = False,
    *,
    progress: Callable[[int], None] | None = None,
) -> Volume:
    """Project ``vol`` along an anatomical plane's normal (MIP, MinIP, mean).

    Parameters
    ----------
    vol
        3D ``(S, R, C)`` or 4D ``(T, S, R, C)`` Volume (each frame is projected). Not RGB.
    plane
        ``axial`` (looks along superior-inferior), ``coronal`` (anterior-posterior), ``sagittal``
        (left-right).
    mode
        ``max``, ``min`` or ``mean``.
    slab_mm, step_mm
        Thick slabs of ``slab_mm`` starting every ``step_mm`` (default ``slab_mm``): one output
        voxel per slab along the projected axis. None: one projection of the whole volume.
    resample
        Reslice onto a patient-aligned grid first (exact anatomical plane for oblique series).

    Returns
    -------
    Volume
        Same in-plane axes as the source (or the patient-aligned grid when resampled) and
        ``layout.count`` voxels along the projected axis, whose affine column is the slab step
        (the slab thickness for a single projection) and whose origin is the first slab's centre.
        dtype: the source's for max/min, float32 for mean. ``meta["projection"]`` records plane,
        mode, axis, angle to the plane (degrees), slab and step (mm, rounded to whole voxels).
    """
    plane = _plane(plane)
    mode = _mode(mode)
    if vol.rgb:
        where = f"series {vol.meta['stack_id']}: " if vol.meta.get("stack_id") else ""
        raise NotAVolumeError(f"{where}projections of colour (RGB) images are not supported; "
                              "convert them to NIfTI or pictures with `volume convert` instead")
    if vol.is_4d:
        frames = [project(f, plane, mode, slab_mm, step_mm, resample, progress=progress) for f in vol.frames()]
        first = frames[0]
        return first.with_array(np.stack([np.asarray(f.array) for f in frames]))
    if resample:
        return _project_resampled(vol, plane, mode, slab_mm, step_mm, progress=progress)
    axis, angle = projection_axis(vol.affine, plane)
    spacing = vol.spacing[axis]
    layout = slab_layout(vol.shape[axis], spacing, slab_mm, step_mm)
    arr = np.asarray(vol.array)
    slices: Iterator[np.ndarray] = (arr[k] for k in range(arr.shape[0]))
    data = project_slices(slices, axis, mode, layout, progress=progress)
    affine = _output_affine(vol.affine, axis, layout)
    return vol.with_array(data, affine=affine, **_projection_meta(plane, mode, axis, angle, layout, spacing, False))


def aligned_grid(vol: Volume, plane: str) -> tuple[np.ndarray, tuple[int, int, int]]:
    """A patient-aligned grid covering ``vol``: slice axis along the plane normal, rows "down",
    columns "right" of the plane's display (:func:`volume.display.display_grid`).

    Spacing along each target axis is the source spacing of the source axis most aligned with it.

    Returns
    -------
    (numpy.ndarray, (int, int, int))
        The (4, 4) affine and the shape of the grid.
    """
    from ..display import display_grid

    up, right = display_grid(_plane(plane))
    axes = np.stack([PLANE_NORMALS[plane], -up, right])  # (3 target axes, xyz)
    src_dir = vol.direction
    spacing = np.array(vol.spacing)
    target_sp = np.array([spacing[int(np.argmax(np.abs(ax @ src_dir)))] for ax in axes])
    corners = np.array(list(np.ndindex(2, 2, 2)), dtype=float) * (np.array(vol.shape) - 1)
    world = vol.world(corners)
    coords = world @ axes.T  # (8, 3) positions along the target axes
    lo, hi = coords.min(axis=0), coords.max(axis=0)
    shape = np.floor((hi - lo) / target_sp + 1e-6).astype(int) + 1
    if shape.max() > MAX_RESAMPLED_SIDE:
        raise UsageError(f"--resample would build a grid of {tuple(shape)} voxels; too large")
    lo = lo + ((hi - lo) - (shape - 1) * target_sp) / 2  # centre the grid on the bounding box
    affine = np.eye(4)
    affine[:3, :3] = axes.T * target_sp
    affine[:3, 3] = axes.T @ lo
    return affine, (int(shape[0]), int(shape[1]), int(shape[2]))


def _resampled_slices(vol: Volume, affine: np.ndarray, shape: tuple[int, int, int]) -> Iterator[np.ndarray]:
    """Target slices (R, C) float32 sampled from ``vol`` (NaN outside), one at a time."""
    from scipy import ndimage

    m = np.linalg.inv(vol.affine) @ affine
    r, c = np.meshgrid(np.arange(shape[1]), np.arange(shape[2]), indexing="ij")
    base = (m[:3, 1, None, None] * r + m[:3, 2, None, None] * c + m[:3, 3, None, None]).astype(np.float64)
    src = np.asarray(vol.array)
    if src.dtype.kind not in "f":
        src = src.astype(np.float32)
    for k in range(shape[0]):
        coords = base + m[:3, 0, None, None] * k
        yield ndimage.map_coordinates(src, coords, order=RESAMPLE_ORDER, mode="constant", cval=np.nan,
                                      output=np.float32, prefilter=False)


def _project_resampled(vol: Volume, plane: str, mode: str, slab_mm: float | None, step_mm: float | None,
                       *, progress: Callable[[int], None] | None = None) -> Volume:
    affine, shape = aligned_grid(vol, plane)
    spacing = float(np.linalg.norm(affine[:3, 0]))
    layout = slab_layout(shape[0], spacing, slab_mm, step_mm)
    data = project_slices(_resampled_slices(vol, affine, shape), 0, mode, layout, ignore_nan=True, progress=progress)
    empty = ~np.isfinite(data)
    if empty.any():
        data[empty] = float(np.nanmin(np.asarray(vol.array))) if mode != "mean" or not empty.all() else 0.0
    if mode != "mean" and np.asarray(vol.array).dtype.kind in "iu":
        info = np.iinfo(np.asarray(vol.array).dtype)
        data = np.clip(np.rint(data), info.min, info.max).astype(np.asarray(vol.array).dtype)
    out_affine = _output_affine(affine, 0, layout)
    _, angle = projection_axis(vol.affine, plane)
    return vol.with_array(data, affine=out_affine, **_projection_meta(plane, mode, 0, angle, layout, spacing, True))


# --- streaming straight from DICOM files ---------------------------------------------------------


def can_stream(stack: Any) -> bool:
    """True when ``stack`` can be projected slice by slice from disk (3D, grey, no tilt, no gaps)."""
    g = stack.geometry
    return (
        g is not None and not stack.problem and stack.n_frames == 1 and not stack.rgb
        and not g.tilted and not g.gaps and stack.kind == "volume"
    )


def stack_slices(stack: Any) -> Iterator[np.ndarray]:
    """Decode a stack one slice at a time, in load order, rescaled to modality values.

    Each slice is (R, C): float32 when the rescale is fractional or varies, else the stored
    integer type when there is no rescale, else int32.
    """
    from ..dicom.pixels import output_dtype, read_stack

    base = output_dtype(stack)
    plain = {f.slope for f in stack.frames} == {1.0} and {f.intercept for f in stack.frames} == {0.0}
    dtype = base if (base == np.float32 or plain) else np.dtype(np.int32)
    for f in stack.frames:
        one = dataclasses.replace(stack, frames=[f], n_slices=1, n_frames=1)
        arr = read_stack(one)[0, 0]
        yield arr.astype(dtype, copy=False)


def _narrow(data: np.ndarray) -> np.ndarray:
    """int32 values that fit int16/uint16 are stored narrower (as the loader would)."""
    if data.dtype != np.int32 or data.size == 0:
        return data
    lo, hi = int(data.min()), int(data.max())
    for t in (np.int16, np.uint16) if lo >= 0 else (np.int16,):
        info = np.iinfo(t)
        if info.min <= lo and hi <= info.max:
            return data.astype(t)
    return data


def project_stack(
    stack: Any,
    plane: str = "coronal",
    mode: str = "max",
    slab_mm: float | None = None,
    step_mm: float | None = None,
    *,
    progress: Callable[[int], None] | None = None,
) -> Volume:
    """Project a DICOM stack streaming from disk: memory for a few slices plus the output.

    Same result as ``project(volume.load(stack), ...)`` (without ``resample``) for stacks where
    :func:`can_stream` holds; other stacks are loaded whole and projected.
    """
    if not can_stream(stack):
        from ..dicom import load

        return project(load(stack), plane, mode, slab_mm, step_mm, progress=progress)
    from ..dicom.loader import stack_meta

    plane = _plane(plane)
    mode = _mode(mode)
    affine = np.asarray(stack.geometry.affine, dtype=float)
    shape = (stack.n_slices, stack.rows, stack.cols)
    axis, angle = projection_axis(affine, plane)
    spacing = float(np.linalg.norm(affine[:3, axis]))
    layout = slab_layout(shape[axis], spacing, slab_mm, step_mm)
    data = _narrow(project_slices(stack_slices(stack), axis, mode, layout, progress=progress))
    meta = stack_meta(stack)
    meta.update(_projection_meta(plane, mode, axis, angle, layout, spacing, False))
    return Volume(data, _output_affine(affine, axis, layout), meta)


__all__ = [
    "MODES",
    "SlabLayout",
    "aligned_grid",
    "can_stream",
    "project",
    "project_slices",
    "project_stack",
    "projection_axis",
    "slab_layout",
    "stack_slices",
]

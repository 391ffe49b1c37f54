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

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..choices import PROJECTION_MODES
from ..conventions import GRID_AXES, plane_name
from ..errors import NotAVolumeError, UsageError
from ..sources import StackSource
from ..volume import PLANE_NORMALS, Volume, nearest_axis

MODES = PROJECTION_MODES
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
    def count(self) -> int:
        return 0 if self.size > self.n else (self.n - self.size) // self.step + 1

    @property
    def offset(self) -> int:
        """First slab start: the voxels no slab covers are split evenly between both ends."""
        if self.count == 0:
            return 0
        return (self.n - (self.size + (self.count - 1) * self.step)) // 2

    @property
    def starts(self) -> list[int]:
        return [self.offset + j * self.step for j in range(self.count)]

    def open_slabs(self, k: int) -> range:
        """Indices ``j`` of the slabs that contain voxel ``k``."""
        x = k - self.offset
        lo = max(0, -(-(x - self.size + 1) // self.step))
        hi = min(self.count - 1, x // self.step) if x >= 0 else -1
        return range(lo, hi + 1)


def slab_layout(n: int, spacing_mm: float, slab_mm: float | None = None, step_mm: float | None = None) -> SlabLayout:
    """Slabs of ``slab_mm`` every ``step_mm`` (default: ``slab_mm``) over ``n`` voxels ``spacing_mm`` apart.

    Thicknesses are rounded (half up) to whole voxels (at least one); a slab thicker than the volume
    becomes one slab of the whole volume. Slabs are centred on the volume: the few voxels no whole
    slab covers are split between both ends.
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
    """The (slice, row, column) axis closest to ``plane``'s normal, and the angle (degrees) between them
    (:func:`volume.volume.nearest_axis`)."""
    return nearest_axis(affine, PLANE_NORMALS[plane_name(plane)])


_plane = plane_name


def _mode(mode: str) -> str:
    key = str(mode).strip().lower()
    if key not in MODES:
        raise UsageError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    return key


FEW_SLABS = 4
"""Up to this many slabs across rows/columns are reduced one by one; more go through :func:`slab_reduce`."""


def slab_reduce(a: np.ndarray, axis: int, mode: str, layout: SlabLayout) -> np.ndarray:
    """Reduce every slab of ``layout`` along ``axis`` of a 2D array at once (no per-slab loop).

    Non-overlapping slabs are one gather; overlapping ones use running extremes over blocks of the
    slab size (van Herk / Gil-Werman: three passes whatever the slab size) or a cumulative sum.

    Returns
    -------
    numpy.ndarray
        ``a`` with ``axis`` replaced by ``layout.count`` slabs; ``a``'s dtype for max/min,
        float64 for mean.
    """
    size, step = layout.size, layout.step
    starts = np.asarray(layout.starts)
    x = np.moveaxis(np.asarray(a), axis, 0)
    if mode == "mean":  # window sums from a running sum, row by row (numpy's cumsum is slower here)
        cs = np.zeros((x.shape[0] + 1,) + x.shape[1:], dtype=np.float64)
        cs[1:] = x
        for i in range(2, cs.shape[0]):
            cs[i] += cs[i - 1]
        return np.moveaxis((cs[starts + size] - cs[starts]) / size, 0, axis)
    if step >= size:
        blocks = x[starts[:, None] + np.arange(size)]  # (count, size, ...): each voxel at most once
        res = blocks.max(axis=1) if mode == "max" else blocks.min(axis=1)
    else:
        op = np.maximum if mode == "max" else np.minimum
        n = x.shape[0]
        n_blocks = -(-n // size)
        if x.dtype.kind == "f":
            fill = -np.inf if mode == "max" else np.inf
        else:
            info = np.iinfo(x.dtype) if x.dtype.kind in "iu" else None
            fill = (info.min if mode == "max" else info.max) if info else (mode != "max")
        padded = np.full((n_blocks * size,) + x.shape[1:], fill, dtype=x.dtype)
        padded[:n] = x
        blocks = padded.reshape((n_blocks, size) + x.shape[1:])
        prefix = blocks.copy()
        suffix = blocks.copy()
        for i in range(1, size):  # running extremes within each block, forwards and backwards
            op(prefix[:, i - 1], prefix[:, i], out=prefix[:, i])
            op(suffix[:, size - i], suffix[:, size - i - 1], out=suffix[:, size - i - 1])
        res = op(suffix.reshape(padded.shape)[starts], prefix.reshape(padded.shape)[starts + size - 1])
    return np.moveaxis(res, 0, axis)


class SliceReducer:
    """Accumulates one projection from slices fed in order (the streaming core).

    ``add(k, slice)`` takes slice ``k`` (shape (R, C)) of the volume; ``result()`` returns the
    projection once all ``n_slices`` slices were added. Several reducers can share one pass over
    the slices (e.g. the three planes of a sheet), so the series is decoded once.

    Parameters
    ----------
    axis
        The (slice, row, column) axis projected.
    mode
        ``max``, ``min`` or ``mean``.
    layout
        Slabs along ``axis`` (:func:`slab_layout`); ``layout.n`` is S, R or C.
    n_slices
        Number of slices S that will be added.
    ignore_nan
        NaN marks "no data" (outside a resampled grid): ignored by every mode; a pixel without
        data stays NaN.

    Memory: for ``axis == 0`` one accumulator per open slab (``ceil(size / step)``), else one
    reduced row block per slice; plus the output.
    """

    def __init__(self, axis: int, mode: str, layout: SlabLayout, n_slices: int, *, ignore_nan: bool = False) -> None:
        if axis not in (0, 1, 2):
            raise ValueError(f"axis must be 0, 1 or 2, got {axis}")
        self.axis, self.mode, self.layout, self.n_slices = axis, _mode(mode), layout, n_slices
        self.ignore_nan = ignore_nan
        if layout.count == 0:
            raise UsageError("no slab fits in the volume")
        self._max = np.fmax if ignore_nan else np.maximum
        self._min = np.fmin if ignore_nan else np.minimum
        self._starts = layout.starts
        self._open: dict[int, list[Any]] = {}  # slab -> [accumulator, valid count (mean with NaN)]
        self._out: np.ndarray | None = None
        self._seen = 0

    def _alloc(self, sl: np.ndarray) -> np.ndarray:
        dtype = np.float32 if self.mode == "mean" else sl.dtype
        shape = [self.n_slices, sl.shape[0], sl.shape[1]]
        shape[self.axis] = self.layout.count
        if self.axis == 0 and self.layout.n != self.n_slices:
            raise ValueError(f"layout covers {self.layout.n} slices, the volume has {self.n_slices}")
        return np.empty(shape, dtype=dtype)

    def add(self, k: int, sl: np.ndarray) -> None:
        """Feed slice ``k`` (R, C)."""
        sl = np.asarray(sl)
        if self._out is None:
            self._out = self._alloc(sl)
        elif self.mode != "mean" and sl.dtype != self._out.dtype:
            self._promote(np.result_type(self._out.dtype, sl.dtype))
        out = self._out
        self._seen += 1
        if self.axis == 0:
            self._add_along_slices(k, sl, out)
            return
        along = self.axis - 1  # the slice's own axis (0 rows, 1 columns) that is reduced
        if self.ignore_nan or self.layout.count <= FEW_SLABS:
            size = self.layout.size
            for j, s0 in enumerate(self._starts):
                block = sl[s0 : s0 + size] if along == 0 else sl[:, s0 : s0 + size]
                if self.mode == "max":
                    part = (np.nanmax if self.ignore_nan else np.max)(block, axis=along)
                elif self.mode == "min":
                    part = (np.nanmin if self.ignore_nan else np.min)(block, axis=along)
                else:
                    part = (np.nanmean if self.ignore_nan else np.mean)(block, axis=along, dtype=np.float64)
                if along == 0:
                    out[k, j, :] = part
                else:
                    out[k, :, j] = part
            return
        out[k] = slab_reduce(sl, along, self.mode, self.layout)  # the slab axis sits where ``along`` was

    def _promote(self, dtype: np.dtype) -> None:
        """Widen the output and open accumulators (a later chunk of a stream needed a wider type)."""
        assert self._out is not None
        if dtype == self._out.dtype:
            return
        self._out = self._out.astype(dtype)
        for acc in self._open.values():
            acc[0] = acc[0].astype(dtype)

    def _add_along_slices(self, k: int, sl: np.ndarray, out: np.ndarray) -> None:
        for j in self.layout.open_slabs(k):
            acc = self._open.get(j)
            if acc is None:
                if self.mode == "mean":
                    if self.ignore_nan:
                        valid = np.isfinite(sl)
                        acc = [np.where(valid, sl, 0.0).astype(np.float64), valid.astype(np.int32)]
                    else:
                        acc = [sl.astype(np.float64), None]
                else:
                    acc = [sl.copy(), None]
                self._open[j] = acc
            elif self.mode == "max":
                self._max(acc[0], sl, out=acc[0])
            elif self.mode == "min":
                self._min(acc[0], sl, out=acc[0])
            elif self.ignore_nan:
                valid = np.isfinite(sl)
                acc[0] += np.where(valid, sl, 0.0)
                acc[1] += valid
            else:
                acc[0] += sl
            if k == self._starts[j] + self.layout.size - 1:
                done = self._open.pop(j)
                if self.mode != "mean":
                    out[j] = done[0]
                elif self.ignore_nan:
                    with np.errstate(invalid="ignore", divide="ignore"):
                        out[j] = np.where(done[1] > 0, done[0] / np.maximum(done[1], 1), np.nan)
                else:
                    out[j] = done[0] / self.layout.size

    def result(self) -> np.ndarray:
        """The projection: (count, R, C), (S, count, C) or (S, R, count); input dtype (max/min) or float32 (mean)."""
        if self._out is None or self._seen != self.n_slices:
            raise ValueError(f"expected {self.n_slices} slices, got {self._seen}")
        return self._out


def project_slices(
    slices: Iterable[np.ndarray],
    axis: int,
    mode: str,
    layout: SlabLayout,
    *,
    n_slices: int | None = None,
    ignore_nan: bool = False,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Reduce a sequence of (R, C) slices, each read once, over slabs (see :class:`SliceReducer`).

    ``n_slices`` defaults to ``layout.n`` when ``axis == 0``; for axes 1 and 2 pass it, or the
    slices are counted (held as an iterator, not a list).
    """
    it: Iterable[np.ndarray] = slices
    if n_slices is None:
        if axis == 0:
            n_slices = layout.n
        else:
            it = list(slices)
            n_slices = len(it)
    reducer = SliceReducer(axis, mode, layout, n_slices, ignore_nan=ignore_nan)
    for k, sl in enumerate(it):
        reducer.add(k, sl)
        if progress is not None:
            progress(1)
    return reducer.result()


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


SLAB_MATCH_MM = 1e-6
"""A slab within this of the thickness asked is the thickness asked (no rounding to state)."""


def slab_rounding(layout: SlabLayout, spacing: float, slab_mm: float | None, step_mm: float | None) -> str | None:
    """What the rounding of a slab (and step) to whole slices made of the request, or None when nothing changed.

    A slab is a whole number of the volume's slices, the number nearest the request (half up): no
    slice is cut in part, as on a workstation. ``--slab 20`` on 0.469 mm slices is 43 slices, 20.2 mm.
    """
    if slab_mm is None or layout.whole:
        return None
    parts = []
    made = layout.size * spacing
    if abs(made - slab_mm) > SLAB_MATCH_MM:
        parts.append(f"a {slab_mm:g} mm slab is {layout.size} slice{'s' if layout.size != 1 else ''} of "
                     f"{spacing:.3g} mm: {made:.3g} mm")
    if step_mm is not None and abs(layout.step * spacing - step_mm) > SLAB_MATCH_MM:
        parts.append(f"a {step_mm:g} mm step is {layout.step} slice{'s' if layout.step != 1 else ''}: "
                     f"{layout.step * spacing:.3g} mm")
    if not parts:
        return None
    return "; ".join(parts) + " (whole slices, the number nearest the request)"


def _projection_meta(plane: str, mode: str, axis: int, angle: float, layout: SlabLayout,
                     spacing: float, resampled: bool, slab_mm: float | None = None,
                     step_mm: float | None = None) -> dict[str, Any]:
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
            "slab_requested_mm": slab_mm,
            "step_requested_mm": step_mm,
            "rounding": slab_rounding(layout, spacing, slab_mm, step_mm),
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
        mode, axis, angle to the plane (degrees), the slab and step made (``slab_mm``,
        ``step_mm``: whole slices, the number nearest the request, half up), those asked
        (``slab_requested_mm``, ``step_requested_mm``) and, when they differ, ``rounding``: one
        sentence saying so (e.g. "a 20 mm slab is 43 slices of 0.469 mm: 20.2 mm ...").

    Raises
    ------
    UsageError
        An unknown plane or mode, or a slab or step that is no positive length.
    NotAVolumeError
        A colour (RGB) volume.

    Examples
    --------
    >>> mip = volume.project(volume.load("ct"), "coronal", "max", slab_mm=20)
    >>> mip.shape, mip.meta["projection"]["slab_mm"]
    ((48, 9, 128), 19.5)
    >>> mip.meta["projection"]["rounding"]
    'a 20 mm slab is 13 slices of 1.5 mm: 19.5 mm (whole slices, the number nearest the request)'
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
    data = project_slices(slices, axis, mode, layout, n_slices=arr.shape[0], progress=progress)
    affine = _output_affine(vol.affine, axis, layout)
    return vol.with_array(data, affine=affine, **_projection_meta(plane, mode, axis, angle, layout, spacing, False,
                                                                   slab_mm, step_mm))


def aligned_grid(vol: Volume, plane: str) -> tuple[np.ndarray, tuple[int, int, int]]:
    """A patient-aligned grid covering ``vol``: slice axis along the plane normal, rows "down",
    columns "right" of the plane's display (:func:`volume.display.display_grid`).

    Spacing along each target axis is the source spacing of the source axis most aligned with it.

    Returns
    -------
    (numpy.ndarray, (int, int, int))
        The (4, 4) affine and the shape of the grid.
    """
    axes = np.array(GRID_AXES[_plane(plane)], dtype=float)  # (3 target axes: slice, row, column; xyz)
    src_dir = vol.direction
    spacing = np.array(vol.spacing)
    target_sp = np.array([spacing[nearest_axis(src_dir, ax)[0]] for ax in axes])
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


def projection_layout(affine: np.ndarray, shape: Sequence[int], plane: str, slab_mm: float | None = None,
                      step_mm: float | None = None, resample: bool = False) -> tuple[int, SlabLayout]:
    """The axis :func:`project` projects a grid along and its slabs, from the geometry alone.

    What a job needs to name its outputs (one picture per slab) before a voxel is read: the same
    answer as the ``projection`` metadata of ``project(vol, plane, ..., resample=resample)`` for a
    volume with this ``affine`` and spatial ``shape`` (``(S, R, C)``).

    Returns
    -------
    (int, SlabLayout)
        The projected axis of the result (0 when resampled) and its :class:`SlabLayout`.
    """
    a = np.asarray(affine, dtype=float)
    if resample:  # the patient-aligned grid of a volume of this geometry (no voxel allocated)
        grid, grid_shape = aligned_grid(Volume(np.broadcast_to(np.uint8(0), tuple(shape)), a), plane)
        return 0, slab_layout(grid_shape[0], float(np.linalg.norm(grid[:3, 0])), slab_mm, step_mm)
    axis, _ = projection_axis(a, plane)
    return axis, slab_layout(int(shape[axis]), float(np.linalg.norm(a[:3, axis])), slab_mm, step_mm)


def _resampled_slices(vol: Volume, affine: np.ndarray, shape: tuple[int, int, int]) -> Iterator[np.ndarray]:
    """Target slices (R, C) float32 sampled from ``vol`` (NaN outside), one at a time."""
    from scipy import ndimage

    m = np.linalg.inv(vol.affine) @ affine
    r, c = np.meshgrid(np.arange(shape[1]), np.arange(shape[2]), indexing="ij")
    base = (m[:3, 1, None, None] * r + m[:3, 2, None, None] * c + m[:3, 3, None, None]).astype(np.float64)
    src = np.asarray(vol.array)  # sampled as it is (integers too): no float copy of the series
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
    return vol.with_array(data, affine=out_affine, **_projection_meta(plane, mode, 0, angle, layout, spacing, True,
                                                                       slab_mm, step_mm))


# --- streaming straight from DICOM files ---------------------------------------------------------


def can_stream(source: StackSource) -> bool:
    """True when ``source`` can be projected slice by slice from disk (3D, grey, no tilt, no gaps)."""
    return (not source.stream_problem() and source.n_frames == 1 and not source.rgb
            and source.meta.get("kind", "volume") == "volume")


STREAM_CHUNK = 32
"""Slices decoded together while streaming (read on a few threads): bounds memory, not the series."""


def chunk_bytes(source: StackSource, chunk: int = STREAM_CHUNK) -> int:
    """Decoded bytes of the chunk of slices :func:`stack_slices` holds at a time."""
    return -(-source.nbytes() * min(chunk, source.n_images) // max(1, source.n_images))


def stack_slices(source: StackSource, chunk: int = STREAM_CHUNK) -> Iterator[np.ndarray]:
    """Decode a source ``chunk`` slices at a time, in load order, in modality values.

    Yields (R, C) slices in the dtype the loader chooses (float32, the stored type, or the smallest
    signed type holding a chunk's integer rescale: a later chunk may be wider, and
    :class:`SliceReducer` widens with it). Memory: one chunk of slices.
    """
    n = source.n_images
    for k in range(0, n, chunk):
        block = source.read_slab(k, min(k + chunk, n))[0]
        for i in range(block.shape[0]):
            # a copy, so the consumer's last slice does not keep the whole chunk alive
            yield block[i].copy()
        del block  # before the next chunk is decoded: one chunk in memory at a time


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
    source: StackSource,
    plane: str = "coronal",
    mode: str = "max",
    slab_mm: float | None = None,
    step_mm: float | None = None,
    *,
    progress: Callable[[int], None] | None = None,
) -> Volume:
    """Project a stack source streaming from disk: memory for a chunk of slices plus the output.

    Same result as ``project(source.load(), ...)`` (without ``resample``) for sources where
    :func:`can_stream` holds; other sources are loaded whole and projected.
    """
    return project_stack_planes(source, [plane], mode, slab_mm, step_mm, progress=progress)[_plane(plane)]


def project_stack_planes(
    source: StackSource,
    planes: Sequence[str],
    mode: str = "max",
    slab_mm: float | None = None,
    step_mm: float | None = None,
    *,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Volume]:
    """Projections of a stack source along several planes from one streamed pass over its slices.

    Returns ``{plane: Volume}`` in the order given; see :func:`project_stack`.
    """
    names = [_plane(p) for p in planes]
    mode = _mode(mode)
    if not can_stream(source):
        vol = source.load(progress=progress)
        return {p: project(vol, p, mode, slab_mm, step_mm) for p in names}
    affine = np.asarray(source.affine, dtype=float)
    shape = tuple(source.shape)
    plans = []
    for p in names:
        axis, angle = projection_axis(affine, p)
        spacing = float(np.linalg.norm(affine[:3, axis]))
        layout = slab_layout(shape[axis], spacing, slab_mm, step_mm)
        plans.append((p, axis, angle, spacing, layout, SliceReducer(axis, mode, layout, shape[0])))
    for k, sl in enumerate(stack_slices(source)):
        for *_, reducer in plans:
            reducer.add(k, sl)
        if progress is not None:
            progress(1)
    meta = source.meta
    out = {}
    for p, axis, angle, spacing, layout, reducer in plans:
        info = {**meta, **_projection_meta(p, mode, axis, angle, layout, spacing, False, slab_mm, step_mm)}
        out[p] = Volume(_narrow(reducer.result()), _output_affine(affine, axis, layout), info)
    return out


__all__ = [
    "MODES",
    "SlabLayout",
    "aligned_grid",
    "can_stream",
    "chunk_bytes",
    "project",
    "project_slices",
    "project_stack",
    "project_stack_planes",
    "projection_layout",
    "slab_rounding",
    "SliceReducer",
    "projection_axis",
    "slab_layout",
    "slab_reduce",
    "stack_slices",
    "STREAM_CHUNK",
]

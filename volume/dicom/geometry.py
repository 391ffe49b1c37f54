"""Slice geometry from numbers: order, spacing, gaps, gantry tilt and the affine.

Pure numpy: every function takes positions and orientations as arrays, never datasets, so it is
tested with synthetic numbers. Conventions follow :mod:`volume.volume`: pixel ``(r, c)`` of a
slice lies at ``IPP + c * dc * row_dir + r * dr * col_dir`` where ``row_dir = IOP[:3]`` (the
direction of increasing column index), ``col_dir = IOP[3:]`` and ``(dr, dc) = PixelSpacing``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

POSITION_TOLERANCE_MM = 0.01
"""Two images closer than this along the slice normal are at the same position."""

MAX_POSITION_MM = 1e6
"""ImagePositionPatient coordinates beyond this (a kilometre from the scanner's origin) are a
broken header, not a patient: stacks with them are refused before any grid is sized from them."""

ORIENTATION_TOLERANCE = 1e-3
"""Two IOP vectors whose direction cosines differ by less than this are the same orientation."""

SPACING_REL_TOLERANCE = 0.05
"""A slice step differing from the median step by more than this fraction is a gap."""

SPACING_ABS_TOLERANCE_MM = 0.01
"""Steps within this many mm of the median are uniform whatever their relative difference."""

TILT_TOLERANCE_PIXELS = 0.05
"""In-plane drift of slice origins, in pixels, above which a stack is resampled (gantry tilt)."""

TILT_DRIFT_MM = 0.2
"""Steady in-plane drift of slice origins over a stack, mm, below which no tilt is corrected:
less than rounding IPPs to 0.1 mm can fake between two slices, and sub-voxel anyway."""

IOP_UNIT_TOLERANCE = 1e-2
"""IOP vectors must have unit length and be orthogonal within this (DICOM writes few decimals)."""


def median_1d(values: np.ndarray) -> float:
    """``float(np.median(values))`` of a 1D array, without ``np.median``'s import of ``numpy.ma``
    (10-15 ms of every command's start-up); NaN when any value is NaN, as ``np.median``."""
    v = np.sort(np.asarray(values, dtype=np.float64).ravel())
    n = v.size
    if n == 0 or np.isnan(v[-1]):
        return float("nan")
    mid = n // 2
    return float(v[mid]) if n % 2 else float((v[mid - 1] + v[mid]) / 2)


class GeometryError(ValueError):
    """Positions or orientations that define no volume; the loader adds file names.

    ``image`` is the index (in the caller's order) of the one image at fault, when there is one.
    """

    def __init__(self, message: str, image: int | None = None) -> None:
        super().__init__(message)
        self.image = image


def check_iop(iop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate an ImageOrientationPatient and return unit ``(row_dir, col_dir)``.

    Raises :class:`GeometryError` when the six numbers are not finite, not unit length, or not
    orthogonal (within :data:`IOP_UNIT_TOLERANCE`).
    """
    v = np.asarray(iop, dtype=float).reshape(-1)
    if v.shape != (6,) or not np.all(np.isfinite(v)):
        raise GeometryError(f"ImageOrientationPatient must be 6 finite numbers, got {v.tolist()}")
    row, col = v[:3], v[3:]
    nr, nc = np.linalg.norm(row), np.linalg.norm(col)
    if abs(nr - 1) > IOP_UNIT_TOLERANCE or abs(nc - 1) > IOP_UNIT_TOLERANCE:
        raise GeometryError(f"ImageOrientationPatient vectors are not unit length: {v.tolist()}")
    if abs(float(row @ col)) > IOP_UNIT_TOLERANCE:
        raise GeometryError(f"ImageOrientationPatient vectors are not orthogonal: {v.tolist()}")
    row = row / nr
    col = col - (col @ row) * row  # remove the small non-orthogonality DICOM rounding leaves
    return row, col / np.linalg.norm(col)


def slice_normal(iop: np.ndarray) -> np.ndarray:
    """Unit normal ``cross(row_dir, col_dir)`` of an ImageOrientationPatient (6 numbers)."""
    row, col = check_iop(iop)
    n = np.cross(row, col)
    return n / np.linalg.norm(n)


def same_orientation(a: np.ndarray, b: np.ndarray, tol: float = ORIENTATION_TOLERANCE) -> bool:
    """True when two IOPs give the same row and column directions within ``tol``."""
    return bool(np.max(np.abs(np.asarray(a, float) - np.asarray(b, float))) <= tol)


def affine_lps(
    iop: np.ndarray, origin: np.ndarray, pixel_spacing: tuple[float, float], slice_vector: np.ndarray
) -> np.ndarray:
    """4x4 affine mapping ``(slice, row, column)`` to LPS mm.

    Parameters
    ----------
    iop
        ImageOrientationPatient, 6 numbers.
    origin
        IPP of the first slice (index 0), 3 numbers.
    pixel_spacing
        DICOM PixelSpacing ``(dr, dc)``: distance between rows, between columns.
    slice_vector
        LPS step from one slice to the next, mm (3,).
    """
    row, col = check_iop(iop)
    dr, dc = (float(s) for s in pixel_spacing)
    affine = np.eye(4)
    affine[:3, 0] = np.asarray(slice_vector, dtype=float)
    affine[:3, 1] = col * dr
    affine[:3, 2] = row * dc
    affine[:3, 3] = np.asarray(origin, dtype=float)
    return affine


@dataclass
class StackGeometry:
    """Where the slices of one stack are, sorted along the slice normal.

    Attributes
    ----------
    order
        Indices into the input positions, sorted by increasing distance along the normal.
    distances
        Sorted distances along the normal, mm (n,).
    normal
        Unit slice normal (3,).
    spacing
        Median step between consecutive slices, mm (0.0 for a single slice).
    gaps
        Sorted slice indices ``i`` where the step from ``i`` to ``i + 1`` is not the median step.
    offsets
        In-plane offset of each sorted slice's origin from the first slice's, in *pixels*
        ``(rows, columns)``, shape (n, 2); zero for a stack without tilt.
    tilt_deg
        Angle between the line through the slice origins and the normal (0 when untilted).
    affine
        4x4 affine of the orthogonal, uniformly spaced grid the loader produces: slice axis along
        the normal, origin at the first sorted slice's IPP.
    """

    order: np.ndarray
    distances: np.ndarray
    normal: np.ndarray
    spacing: float
    gaps: list[int] = field(default_factory=list)
    offsets: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    tilt_deg: float = 0.0
    affine: np.ndarray = field(default_factory=lambda: np.eye(4))

    drift_mm: float = 0.0

    @property
    def tilted(self) -> bool:
        """True when slice origins drift in-plane steadily (gantry tilt): more than
        :data:`TILT_TOLERANCE_PIXELS` and, fitted linearly along the stack, more than
        :data:`TILT_DRIFT_MM` (rounded IPPs jitter, they do not drift)."""
        return bool(
            self.offsets.size
            and np.max(np.abs(self.offsets)) > TILT_TOLERANCE_PIXELS
            and self.drift_mm > TILT_DRIFT_MM
        )

    @property
    def uniform(self) -> bool:
        """True when every step equals the median step (no gap)."""
        return not self.gaps


POSITION_ROUNDING_MM = 0.1
"""Slice positions within this of a uniform grid are uniform: scanners round IPP to 0.1 mm or so."""

UNIFORM_FIT_REL_TOLERANCE = 0.05
"""... or within this fraction of the slice spacing (a missing slice moves some by half a step)."""


def fits_uniform(distances: np.ndarray, step: float) -> bool:
    """True when sorted ``distances`` lie on ``d[0] + i * step`` within header rounding."""
    d = np.asarray(distances, dtype=float)
    deviation = np.abs(d - (d[0] + np.arange(len(d)) * step))
    return bool(deviation.max() <= max(POSITION_ROUNDING_MM, UNIFORM_FIT_REL_TOLERANCE * abs(step)))


def uneven_steps(steps: np.ndarray) -> list[int]:
    """Indices of steps that differ from the median step beyond the spacing tolerances (and
    beyond what rounding positions to :data:`POSITION_ROUNDING_MM` can do)."""
    if steps.size == 0:
        return []
    median = median_1d(steps)
    tol = max(SPACING_ABS_TOLERANCE_MM, SPACING_REL_TOLERANCE * median, POSITION_ROUNDING_MM)
    return [int(i) for i in np.flatnonzero(np.abs(steps - median) > tol * (1 + 1e-9) + 1e-9)]


def _positions(ipps: np.ndarray) -> np.ndarray:
    """The (n, 3) positions; non-finite ones and ones beyond any scanner (:data:`MAX_POSITION_MM`)
    are refused."""
    p = np.asarray(ipps, dtype=float).reshape(-1, 3)
    if not np.all(np.isfinite(p)):
        raise GeometryError("ImagePositionPatient has non-finite values")
    far = np.abs(p).max(axis=1)
    if far.size and float(far.max()) > MAX_POSITION_MM:
        i = int(np.argmax(far))
        raise GeometryError(
            f"ImagePositionPatient holds {float(far[i]):.3g} mm, beyond any scanner "
            f"(over {MAX_POSITION_MM:.0e} mm from its origin): the header is broken",
            image=i,
        )
    return p


def stack_geometry(
    ipps: np.ndarray,
    iop: np.ndarray,
    pixel_spacing: tuple[float, float],
    *,
    single_slice_spacing: float = 1.0,
) -> StackGeometry:
    """Sort slices along the normal and measure spacing, gaps and tilt.

    Parameters
    ----------
    ipps
        (n, 3) ImagePositionPatient of each slice, any order.
    iop
        The stack's ImageOrientationPatient (6,).
    pixel_spacing
        ``(dr, dc)`` in mm.
    single_slice_spacing
        Slice thickness to give a one-slice stack (its spacing is otherwise undefined).

    Raises
    ------
    GeometryError
        Positions not finite or absurdly far (:data:`MAX_POSITION_MM`), or two slices at the
        same position (the caller splits 4D first).
    """
    p = _positions(ipps)
    row, col = check_iop(iop)
    normal = np.cross(row, col)
    normal /= np.linalg.norm(normal)
    d = p @ normal
    order = np.argsort(d, kind="stable")
    d_sorted = d[order]
    steps = np.diff(d_sorted)
    same = np.flatnonzero(steps < POSITION_TOLERANCE_MM)
    if same.size:
        i = int(same[0])
        raise GeometryError(
            f"two images at the same position ({d_sorted[i]:.3f} mm along the normal): "
            f"sorted images {i} and {i + 1}"
        )
    dr, dc = (float(s) for s in pixel_spacing)
    if p.shape[0] == 1:
        spacing = float(single_slice_spacing)
        offsets = np.zeros((1, 2))
        gaps: list[int] = []
        tilt = 0.0
        drift_mm = 0.0
    else:
        spacing = median_1d(steps)
        gaps = uneven_steps(steps)
        mean_step = float(d_sorted[-1] - d_sorted[0]) / (len(d_sorted) - 1)
        if not gaps or fits_uniform(d_sorted, mean_step):
            # uniform (steps uneven only by rounding in the headers): the mean step is exact
            # over the whole stack, where the median would drift by the rounding per slice
            gaps, spacing = [], mean_step
        rel = p[order] - p[order[0]]
        inplane = rel - np.outer(rel @ normal, normal)
        offsets = np.stack([inplane @ col / dr, inplane @ row / dc], axis=1)
        span = float(d_sorted[-1] - d_sorted[0])
        drift = float(np.linalg.norm(inplane[-1]))
        tilt = math.degrees(math.atan2(drift, span)) if span > 0 else 0.0
        # steady drift: the least-squares line through the in-plane offsets, over the span
        x = d_sorted - d_sorted.mean()
        slope = (x @ (inplane - inplane.mean(axis=0))) / max(float(x @ x), 1e-12)
        drift_mm = float(np.linalg.norm(slope)) * span
    affine = affine_lps(iop, p[order[0]], (dr, dc), normal * spacing)
    return StackGeometry(
        order=order,
        distances=d_sorted,
        normal=normal,
        spacing=spacing,
        gaps=gaps,
        offsets=offsets,
        tilt_deg=tilt,
        affine=affine,
        drift_mm=drift_mm,
    )


def uniform_grid(distances: np.ndarray, spacing: float) -> np.ndarray:
    """Positions of a uniform grid from the first to the last distance, step close to ``spacing``.

    The step is adjusted so the grid ends exactly on the last slice: ``n = round(span / spacing) + 1``.
    """
    d = np.asarray(distances, dtype=float)
    span = float(d[-1] - d[0])
    n = max(2, int(round(span / spacing)) + 1)
    return d[0] + np.arange(n) * (span / (n - 1))


def interpolation_weights(distances: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each target position: the index of the slice below it and the weight of the slice above.

    ``value(t) = (1 - w) * slice[i] + w * slice[i + 1]``; ``i`` is clipped so ``i + 1`` exists.
    """
    d = np.asarray(distances, dtype=float)
    t = np.asarray(targets, dtype=float)
    i = np.clip(np.searchsorted(d, t, side="right") - 1, 0, len(d) - 2)
    w = (t - d[i]) / (d[i + 1] - d[i])
    return i, np.clip(w, 0.0, 1.0)


TILT_PAD_SLACK = 0.01
"""Fractions of a pixel of drift ignored when growing a tilt-corrected grid (rounding in IPPs)."""

MAX_PADDING = 2.0**40
"""Rows or columns a tilt-corrected grid may grow by, at most (the memory limit refuses far less)."""


def tilt_padding(offsets: np.ndarray) -> tuple[tuple[int, int], tuple[int, int]]:
    """Rows and columns ``((before_r, after_r), (before_c, after_c))`` a tilt-corrected grid adds
    so it holds every pixel of every slice (as dcm2niix's ``_Tilt_1`` output does).

    ``offsets`` is :attr:`StackGeometry.offsets`, (n, 2) pixels.
    """
    off = np.asarray(offsets, dtype=float).reshape(-1, 2)
    # capped far below int64's range: an absurd drift gives an absurd (refused) grid, not an overflow
    before = np.ceil(np.clip(-off.min(axis=0), 0.0, MAX_PADDING) - TILT_PAD_SLACK).astype(np.int64)
    after = np.ceil(np.clip(off.max(axis=0), 0.0, MAX_PADDING) - TILT_PAD_SLACK).astype(np.int64)
    return (int(before[0]), int(after[0])), (int(before[1]), int(after[1]))


def output_grid(
    geometry: StackGeometry, rows: int, cols: int, *, resample_gaps: bool = True
) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Affine and ``(S, R, C)`` shape of the grid the loader produces for a stack.

    Tilted stacks grow by :func:`tilt_padding` (the origin moves back by the rows and columns
    added before); with ``resample_gaps``, stacks with gaps get the uniform grid of
    :func:`uniform_grid`. Otherwise it is :attr:`StackGeometry.affine` and the stored shape.
    """
    affine = np.array(geometry.affine, dtype=float, copy=True)
    n = len(geometry.distances)
    if geometry.tilted:
        (br, ar), (bc, ac) = tilt_padding(geometry.offsets)
        affine[:3, 3] -= br * affine[:3, 1] + bc * affine[:3, 2]
        rows, cols = rows + br + ar, cols + bc + ac
    if geometry.gaps and resample_gaps:
        targets = uniform_grid(geometry.distances, geometry.spacing)
        affine[:3, 0] = geometry.normal * float(targets[1] - targets[0])
        n = len(targets)
    return affine, (n, rows, cols)

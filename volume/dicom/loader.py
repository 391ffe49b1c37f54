"""The public entry points: :func:`scan` a tree of files, :func:`load` one stack as a Volume."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import AmbiguousSeriesError, NoDicomError, NotAVolumeError, SliceGapError, UsageError
from ..phi import strip
from ..volume import Volume
from .geometry import interpolation_weights, output_grid, tilt_padding, uniform_grid
from .headers import ScanReport, describe_skips, scan_files
from .pixels import DEFAULT_MAX_BYTES, check_grid, read_stack
from .scaling import DEFAULT_SCALING, vendor_scaling
from .series import Series, Stack, group_frames, select_stacks, stack_choice


@dataclass
class Scan:
    """What :func:`scan` found: series (each with its stacks) and the files it skipped.

    Attributes
    ----------
    series
        The series found, each with its stacks (``stacks`` lists them all).
    report
        Every image's header, and the files skipped with the reason (``skipped`` says it in a line).
    paths
        The paths scanned.

    Examples
    --------
    >>> found = volume.scan("ct")
    >>> len(found), found.report.n_files, found.skipped
    (1, 48, '')
    >>> found.select("2")
    [Stack('2', volume, 48x128x128, axial, 48 files)]
    """

    series: list[Series]
    report: ScanReport
    paths: tuple[str, ...]

    def __iter__(self) -> Iterator[Series]:
        return iter(self.series)

    def __len__(self) -> int:
        return len(self.series)

    @property
    def stacks(self) -> list[Stack]:
        """Every stack of every series, in series order."""
        return [st for s in self.series for st in s.stacks]

    @property
    def skipped(self) -> str:
        """One line on skipped files (empty when none were skipped)."""
        return describe_skips(self.report)

    def select(self, series: str | int | None = None) -> list[Stack]:
        """Stacks matching a stack id, series number, SeriesInstanceUID, description, folder name or
        part of a description (see :func:`~volume.dicom.series.select_stacks`); raises
        :class:`~volume.errors.AmbiguousSeriesError` when the matches belong to several series."""
        return select_stacks(self.stacks, series, where=_where(self.paths))

    def __repr__(self) -> str:
        return f"Scan({len(self.series)} series, {len(self.stacks)} stacks, {self.report.n_files} files)"


def _where(paths: tuple[str, ...]) -> str:
    return ", ".join(paths) if len(paths) <= 2 else f"{paths[0]} and {len(paths) - 1} more"


def scan(
    path: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    *,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> Scan:
    """Find every DICOM image under ``path`` and group it into series and stacks.

    Headers only: no pixel data is read. Non-DICOM, empty, truncated and unreadable files are
    counted in ``Scan.report`` and skipped.

    Parameters
    ----------
    path
        A folder (searched recursively), a file, or several of them.
    workers
        Processes reading headers (None: every core); under
        :data:`~volume.dicom.headers.PARALLEL_MIN_FILES` files they are read in this process.
    progress
        Called with the number of files read, as they are.

    Returns
    -------
    Scan
        The series (each with its stacks) and a report of the files skipped and why.

    Raises
    ------
    UsageError
        A path does not exist.

    Examples
    --------
    >>> found = volume.scan("ct")
    >>> found
    Scan(1 series, 1 stacks, 48 files)
    >>> found.stacks[0]
    Stack('2', volume, 48x128x128, axial, 48 files)
    """
    paths = (path,) if isinstance(path, (str, os.PathLike)) else tuple(path)
    str_paths = tuple(os.fspath(p) for p in paths)
    for p in str_paths:
        if not os.path.exists(p):
            raise UsageError(f"{p}: no such file or folder")
    report = scan_files(str_paths, workers=workers, progress=progress)
    return Scan(series=group_frames(report.frames), report=report, paths=str_paths)


def choose_stack(found: Scan, series: str | int | None = None) -> Stack:
    """The one stack ``series`` selects (or the only stack there is), with clear errors otherwise."""
    where = _where(found.paths)
    if not found.stacks:
        skipped = f" ({found.skipped})" if found.skipped else ""
        raise NoDicomError(f"{where}: no DICOM images found{skipped}")
    chosen = found.select(series)
    if not chosen:
        raise UsageError(no_match_message(found, series))
    if len(chosen) > 1:
        loadable = [s for s in chosen if not s.problem]
        if len(loadable) == 1 and series is None:  # the others cannot be loaded anyway
            return loadable[0]
        n_series = len({(s.series_uid, s.series_number) for s in chosen})
        raise AmbiguousSeriesError(where, [stack_choice(s) for s in chosen],
                                   selector=None if series is None else str(series), series=n_series)
    return chosen[0]


def no_match_message(found: Scan, series: str | int | None) -> str:
    """The message for a selector that matches nothing: what there is to choose from."""
    listed = "; ".join(stack_choice(s) for s in found.stacks[:12])
    more = f"; and {len(found.stacks) - 12} more (see `volume ls`)" if len(found.stacks) > 12 else ""
    return (f"{_where(found.paths)}: no stack matches {str(series)!r} (an ID, series number, UID, description, "
            f"folder name or part of a description); available: {listed}{more}")


def load(
    path: str | os.PathLike[str] | Stack | Scan,
    series: str | int | None = None,
    *,
    allow_gaps: bool = False,
    max_bytes: int = DEFAULT_MAX_BYTES,
    scaling: str = DEFAULT_SCALING,
    progress: Callable[[int], None] | None = None,
) -> Volume:
    """Load one stack as a :class:`~volume.Volume`.

    Parameters
    ----------
    path
        A folder or file (scanned), a :class:`Scan`, or a :class:`Stack` from one.
    series
        Which stack when there are several: a stack id (``ls`` shows them), a series number, a
        SeriesInstanceUID or a series description.
    allow_gaps
        Resample unevenly spaced slices (a missing slice) onto a uniform grid instead of refusing.
    max_bytes
        Refuse images whose headers describe more than this many bytes.
    scaling
        ``"precise"`` (default): Philips' measured floating-point values (ScaleSlope, or a
        RealWorldValueMapping), as dcm2niix writes them; ``"display"``: DICOM's display values
        (Rescale Slope/Intercept). Other vendors' images are the same either way
        (:mod:`volume.dicom.scaling`).

    Returns
    -------
    Volume
        ``(S, R, C)`` or ``(T, S, R, C)`` voxels in modality units; the affine places each voxel in
        patient LPS mm. Gantry tilt is corrected by resampling onto an orthogonal grid (grown so
        no pixel is lost; see ``meta["tilt_corrected_deg"]``).

    Raises
    ------
    NoDicomError, AmbiguousSeriesError, NotAVolumeError, SliceGapError, UnsupportedDicomError

    Examples
    --------
    >>> vol = volume.load("ct")
    >>> vol
    Volume(48x128x128, 3x1.5x1.5 mm, SPL, axial, int16, 'Phantom head')
    >>> vol.meta["modality"]
    'CT'
    """
    if isinstance(path, Stack):
        stack = path
    else:
        found = path if isinstance(path, Scan) else scan(path)
        stack = choose_stack(found, series)
    return load_stack(stack, allow_gaps=allow_gaps, max_bytes=max_bytes, scaling=scaling, progress=progress)


def _background(array: np.ndarray, modality: str) -> float:
    """Value for voxels a resampling brings in from outside the data: air for CT, else the minimum."""
    if modality == "CT":
        return float(min(-1024.0, array.min())) if array.dtype.kind in "if" else float(array.min())
    return float(array.min())


def _cast_like(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if np.dtype(dtype).kind in "iu":
        info = np.iinfo(dtype)
        return np.clip(np.rint(values), info.min, info.max).astype(dtype)
    return values.astype(dtype)


def correct_tilt(
    data: np.ndarray, offsets: np.ndarray, background: float, *, pad: bool = True
) -> tuple[np.ndarray, tuple[int, int]]:
    """Shift each slice in-plane so its origin lines up with the first slice's.

    ``data`` is ``(T, S, R, C[, 3])``; ``offsets`` is ``(S, 2)`` pixels (rows, columns) from
    :class:`~volume.dicom.geometry.StackGeometry`. With ``pad``, the grid grows by the drift so no
    pixel is lost; it then starts ``(before_r, before_c)`` pixels before the first slice's origin
    (returned, to shift the affine's origin). Voxel ``(s, r, c)`` of the result is slice ``s``
    sampled at ``(r - before_r - offset_r, c - before_c - offset_c)`` (linear interpolation), which
    places it at ``IPP_0 + (c - before_c) * dc * row_dir + (r - before_r) * dr * col_dir + d_s *
    normal``: an orthogonal grid. Voxels no slice covers get ``background``.
    """
    from scipy import ndimage

    (br, ar), (bc, ac) = tilt_padding(offsets) if pad else ((0, 0), (0, 0))
    shape = data.shape[:2] + (data.shape[2] + br + ar, data.shape[3] + bc + ac) + data.shape[4:]
    out = np.empty(shape, dtype=data.dtype)
    plane = np.empty(shape[2:], dtype=np.float32)
    for t in range(data.shape[0]):
        for s in range(data.shape[1]):
            plane.fill(background)
            plane[br : br + data.shape[2], bc : bc + data.shape[3]] = data[t, s]
            shift = (float(offsets[s, 0]), float(offsets[s, 1])) + ((0.0,) if data.ndim == 5 else ())
            moved = ndimage.shift(plane, shift, order=1, mode="constant", cval=background)
            out[t, s] = _cast_like(moved, data.dtype)
    return out, (br, bc)


def resample_slices(data: np.ndarray, distances: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Linear interpolation along the slice axis from ``distances`` to ``targets`` (mm along the normal)."""
    i, w = interpolation_weights(distances, targets)
    shape = (data.shape[0], len(targets)) + data.shape[2:]
    out = np.empty(shape, dtype=data.dtype)
    for k in range(len(targets)):
        a = data[:, i[k]].astype(np.float32)
        b = data[:, i[k] + 1].astype(np.float32)
        out[:, k] = _cast_like(a * (1 - w[k]) + b * w[k], data.dtype)
    return out


def _frame_interval(stack: Stack) -> float | None:
    """Seconds between frames of a 4D stack: RepetitionTime for MR, else from the ordering times."""
    if stack.n_frames < 2:
        return None
    attribute = {"TriggerTime": "trigger_time", "AcquisitionTime": "acquisition_time"}.get(stack.frame_order)
    if attribute is not None:
        values = [getattr(stack.frames[t * stack.n_slices], attribute) for t in range(stack.n_frames)]
        steps = np.diff(values)
        if np.all(np.isfinite(steps)) and np.median(steps) > 0:
            scale = 1e-3 if attribute == "trigger_time" else 1.0
            return float(np.median(steps)) * scale
    tr = stack.first.acquisition.get("RepetitionTime")
    try:
        return float(tr) / 1000.0 if tr else None
    except (TypeError, ValueError):
        return None


def stack_meta(stack: Stack) -> dict[str, Any]:
    """The metadata mapping a loaded Volume carries (no patient identity outside ``identity``)."""
    f0 = stack.first
    acq = strip(f0.acquisition)  # identity lives in ``identity`` only (volume.phi)
    return {
        "stack_id": stack.id,
        "series_uid": stack.series_uid,
        "series_number": stack.series_number,
        "series_description": stack.series_description,
        "modality": stack.modality,
        "patient_position": acq.get("PatientPosition"),
        "kind": stack.kind,
        "label": stack.label,
        "photometric": f0.photometric,
        "echo_number": f0.echo_number,
        "echo_time": f0.echo_time,
        "frame_order": stack.frame_order or None,
        "content": stack.content or None,
        "diffusion": stack.diffusion,
        "scaling": dict(stack.scaling),
        "frame_interval_s": _frame_interval(stack),
        "n_files": len(stack.files),
        "transfer_syntax": f0.transfer_syntax,
        "image_orientation_patient": list(f0.iop) if f0.iop else None,
        "slice_thickness": f0.slice_thickness,
        "acquisition": acq,
        "identity": dict(f0.identity),
        "warnings": list(stack.warnings),
    }


def load_stack(
    stack: Stack,
    *,
    allow_gaps: bool = False,
    max_bytes: int = DEFAULT_MAX_BYTES,
    scaling: str = DEFAULT_SCALING,
    progress: Callable[[int], None] | None = None,
) -> Volume:
    """Decode one stack into a Volume (see :func:`load`)."""
    stack = vendor_scaling(stack, scaling)
    if stack.problem:
        raise NotAVolumeError(f"series {stack.id}: {stack.problem}")
    geometry = stack.geometry
    assert geometry is not None
    if geometry.gaps and not allow_gaps:
        gap = next(w for w in stack.warnings if w.startswith("gap"))
        raise SliceGapError(
            f"series {stack.id}: uneven slice spacing, {gap[5:]}; "
            "use --allow-gaps (allow_gaps=True) to resample onto a uniform grid"
        )
    affine, shape = output_grid(geometry, stack.rows, stack.cols, resample_gaps=True)
    if geometry.tilted or geometry.gaps:
        what = "correcting its gantry tilt" if geometry.tilted else "filling its slice gaps"
        check_grid(stack, shape, what, max_bytes)
    data = read_stack(stack, max_bytes=max_bytes, progress=progress)
    meta = stack_meta(stack)
    if geometry.tilted:
        data, _ = correct_tilt(data, geometry.offsets, _background(data, stack.modality))
        meta["tilt_corrected_deg"] = round(geometry.tilt_deg, 3)
    if geometry.gaps:
        targets = uniform_grid(geometry.distances, geometry.spacing)
        data = resample_slices(data, geometry.distances, targets)
        meta["gaps_resampled"] = {
            "slices_in": int(len(geometry.distances)),
            "slices_out": int(len(targets)),
            "spacing_mm": float(targets[1] - targets[0]),
        }
    if data.shape[1:4] != shape:  # pragma: no cover - the grid and the data are built together
        raise AssertionError(f"loaded {data.shape[1:4]} but the grid is {shape}")
    array = data if stack.n_frames > 1 else data[0]
    return Volume(array=array, affine=affine, meta=meta, rgb=stack.rgb)

"""Calls that take what a user names (a folder, a file, a scan, a stack) and hand the operations
what they take (a :class:`~volume.sources.StackSource`, a voxel grid).

The operations (``volume.ops``) and writers (``volume.io``) know no file format of the input: this
module, above them and the DICOM reader, joins the two for the public API (``volume.reslice``,
``volume.project_stack``, ``volume.source``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .dicom.loader import Scan, choose_stack, scan
from .dicom.scaling import DEFAULT_SCALING
from .dicom.series import Stack
from .dicom.source import DicomSource
from .errors import UsageError
from .io.nifti import nifti_grid
from .ops import projection
from .ops import reslice as reslicing
from .volume import Volume

NIFTI_SUFFIXES = (".nii", ".nii.gz", ".hdr")
"""Names of NIfTI files (a grid to reslice onto is read from the header alone)."""


def source(item: str | os.PathLike[str] | Scan | Stack | DicomSource, series: str | int | None = None, *,
           scaling: str = DEFAULT_SCALING) -> DicomSource:
    """The stack source of ``item``: a folder or file (scanned, headers only), a :class:`Scan`, or a
    :class:`Stack` of one; ``series`` chooses among several stacks (as :func:`volume.load`).

    Parameters
    ----------
    item
        A DICOM folder or file, a :class:`Scan`, a :class:`Stack`, or a source (returned as it is).
    series
        Which stack when there are several (a stack id, series number, SeriesInstanceUID or
        description).
    scaling
        ``"precise"`` or ``"display"`` values of Philips images (:func:`volume.load`).

    Returns
    -------
    volume.dicom.source.DicomSource
        A :class:`StackSource`: shape, affine and metadata from the headers; slabs of images
        read on demand.

    Raises
    ------
    NoDicomError, AmbiguousSeriesError
        Nothing to read, or several stacks and no ``series``.

    Examples
    --------
    >>> src = volume.source("ct")
    >>> src.shape
    (48, 128, 128)
    """
    if isinstance(item, DicomSource):
        return item
    if isinstance(item, Stack):
        return DicomSource(item, scaling)
    found = item if isinstance(item, Scan) else scan(item)
    return DicomSource(choose_stack(found, series), scaling)


def like_grid(path: str | os.PathLike[str]) -> tuple[Any, tuple[int, int, int]]:
    """The voxel grid (LPS affine, ``(S, R, C)``) of another image: a NIfTI file or a DICOM series
    (scanned, headers only; it must hold one stack).

    Parameters
    ----------
    path
        A NIfTI file (``.nii``, ``.nii.gz``, ``.hdr``: its header alone is read) or a DICOM folder
        or file.

    Returns
    -------
    tuple
        ``(affine, (S, R, C))``: the (4, 4) LPS affine of ``(slice, row, column)`` and the shape,
        what :func:`reslice` takes as ``like``.

    Raises
    ------
    UsageError
        No such path, an unreadable NIfTI file, or a series without a usable grid.

    Examples
    --------
    >>> volume.write_nifti(volume.load("ct"), "ct.nii.gz")
    PosixPath('ct.nii.gz')
    >>> affine, shape = volume.like_grid("ct.nii.gz")
    >>> shape
    (48, 128, 128)
    """
    p = Path(path)
    if not p.exists():
        raise UsageError(f"{p}: no such file or folder (--like needs an image: NIfTI or DICOM)")
    if p.is_file() and p.name.lower().endswith(NIFTI_SUFFIXES):
        return nifti_grid(p)
    stack = choose_stack(scan(p))
    if stack.problem or stack.geometry is None:
        raise UsageError(f"{p}: series {stack.id} has no usable grid ({stack.problem or 'no geometry'})")
    s, r, c = stack.shape[-3:]
    return stack.geometry.affine.copy(), (int(s), int(r), int(c))


def reslice(vol: Volume, *, like: Any = None, **options: Any) -> Volume:
    """:func:`volume.ops.reslice.reslice`, where ``like`` may also name a NIfTI file or DICOM series.

    Parameters
    ----------
    vol
        The volume to resample.
    like
        Another image's grid: a NIfTI file or a DICOM series (:func:`like_grid`), or a grid.
    **options
        The other keywords of :func:`volume.ops.reslice.reslice`: ``plane``, ``normal``,
        ``spacing``, ``fov``, ``thickness``, ``mode``, ``interp``, ``fill``, ``engine``.

    Returns
    -------
    Volume
        float32 voxels on the new grid (its affine places them in patient LPS mm).

    Raises
    ------
    UsageError
        No grid asked for, or an option out of range.

    Examples
    --------
    >>> vol = volume.load("ct")
    >>> iso = volume.reslice(vol, spacing=3.0)
    >>> iso.shape, iso.spacing
    ((48, 64, 64), (3.0, 3.0, 3.0))
    >>> volume.axis_codes(volume.reslice(vol, plane="coronal").affine)
    'PIL'
    """
    if isinstance(like, (str, os.PathLike)):
        affine, shape = like_grid(like)
        like = reslicing.Grid(affine, shape, str(like))
    return reslicing.reslice(vol, like=like, **options)


def project_stack(item: Any, plane: str = "coronal", mode: str = "max", slab_mm: float | None = None,
                  step_mm: float | None = None, *, scaling: str = DEFAULT_SCALING,
                  progress: Callable[[int], None] | None = None) -> Volume:
    """:func:`volume.ops.projection.project_stack` of a stack, source, scan or path, streamed from disk.

    Parameters
    ----------
    item
        A DICOM folder or file, a :class:`Scan`, a :class:`Stack` or a :class:`StackSource`.
    plane, mode, slab_mm, step_mm
        As :func:`project`.
    scaling
        ``"precise"`` or ``"display"`` values of Philips images (:func:`volume.load`).
    progress
        Called with the number of images read, as they are.

    Returns
    -------
    Volume
        The projection, the same as ``project(volume.load(item), ...)`` with memory for a chunk
        of slices only.

    Examples
    --------
    >>> mip = volume.project_stack("ct", "coronal", "max")
    >>> mip.shape, mip.meta["projection"]["mode"]
    ((48, 1, 128), 'max')
    """
    return projection.project_stack(source(item, scaling=scaling), plane, mode, slab_mm, step_mm, progress=progress)

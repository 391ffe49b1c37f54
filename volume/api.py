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
    :class:`Stack` of one; ``series`` chooses among several stacks (as :func:`volume.load`)."""
    if isinstance(item, DicomSource):
        return item
    if isinstance(item, Stack):
        return DicomSource(item, scaling)
    found = item if isinstance(item, Scan) else scan(item)
    return DicomSource(choose_stack(found, series), scaling)


def like_grid(path: str | os.PathLike[str]) -> tuple[Any, tuple[int, int, int]]:
    """The voxel grid (LPS affine, ``(S, R, C)``) of another image: a NIfTI file or a DICOM series
    (scanned, headers only; it must hold one stack).

    Raises
    ------
    UsageError
        No such path, an unreadable NIfTI file, or a series without a usable grid.
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
    """:func:`volume.ops.reslice.reslice`, where ``like`` may also name a NIfTI file or DICOM series."""
    if isinstance(like, (str, os.PathLike)):
        affine, shape = like_grid(like)
        like = reslicing.Grid(affine, shape, str(like))
    return reslicing.reslice(vol, like=like, **options)


def project_stack(item: Any, plane: str = "coronal", mode: str = "max", slab_mm: float | None = None,
                  step_mm: float | None = None, *, scaling: str = DEFAULT_SCALING,
                  progress: Callable[[int], None] | None = None) -> Volume:
    """:func:`volume.ops.projection.project_stack` of a stack, source, scan or path, streamed from disk."""
    return projection.project_stack(source(item, scaling=scaling), plane, mode, slab_mm, step_mm, progress=progress)

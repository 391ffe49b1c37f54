"""NIfTI-1 output: the only place that knows RAS and NIfTI's (column, row, slice) voxel order.

A Volume's array is ``(slice, row, column)`` with an LPS affine; NIfTI wants ``(i, j, k)`` =
``(column, row, slice)`` (plus time last) with a RAS affine. So the data is transposed (a view, no
copy) and the affine's columns are permuted and flipped to RAS: ``LPS_TO_RAS @ A @ P``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..volume import LPS_TO_RAS, Volume
from .atomic import atomic_output

#: Permutation taking NIfTI (column, row, slice) indices to Volume (slice, row, column) indices.
IJK_TO_SRC = np.array(
    [[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]], dtype=float
)
"""``volume_index = IJK_TO_SRC @ nifti_index`` (homogeneous)."""


def nifti_affine(vol: Volume) -> np.ndarray:
    """The RAS affine of the NIfTI voxel grid ``(column, row, slice)`` of ``vol``."""
    return LPS_TO_RAS @ np.asarray(vol.affine) @ IJK_TO_SRC


def nifti_data(vol: Volume) -> np.ndarray:
    """``vol.array`` in NIfTI order: ``(C, R, S)``, ``(C, R, S, T)``; RGB volumes keep a trailing 3."""
    a = np.asarray(vol.array)
    if vol.rgb:
        spatial = a.ndim - 1
        if spatial == 4:  # (T, S, R, C, 3) -> (C, R, S, T, 3)
            return a.transpose(3, 2, 1, 0, 4)
        return a.transpose(2, 1, 0, 3)
    if a.ndim == 4:
        return a.transpose(3, 2, 1, 0)
    return a.transpose(2, 1, 0)


def to_nifti(vol: Volume) -> Any:
    """A ``nibabel.Nifti1Image`` of ``vol``: sform and qform code 1 (scanner), xyz in mm, t in s."""
    import nibabel as nib

    data = nifti_data(vol)
    affine = nifti_affine(vol)
    if vol.rgb:
        rgb_dtype = np.dtype([("R", "u1"), ("G", "u1"), ("B", "u1")])
        src = data if data.dtype == np.uint8 else (data >> 8).astype(np.uint8)
        data = np.ascontiguousarray(src).view(rgb_dtype)[..., 0]
    img = nib.Nifti1Image(data, affine)
    img.header.set_sform(affine, code=1)
    img.header.set_qform(affine, code=1)
    img.header.set_xyzt_units("mm", "sec")
    if vol.is_4d:
        interval = vol.meta.get("frame_interval_s")
        zooms = list(img.header.get_zooms())
        zooms[3] = float(interval) if interval else 1.0
        img.header.set_zooms(zooms)
    return img


def write_nifti(vol: Volume, path: str | os.PathLike[str], *, force: bool = False) -> Path:
    """Write ``vol`` as ``.nii`` or ``.nii.gz`` (by extension), atomically; returns the path."""
    import nibabel as nib

    path = Path(path)
    name = path.name.lower()
    if not (name.endswith(".nii") or name.endswith(".nii.gz")):
        raise ValueError(f"{path}: a NIfTI file name ends in .nii or .nii.gz")
    img = to_nifti(vol)
    with atomic_output(path, force=force, suffix=".nii.gz" if name.endswith(".gz") else ".nii") as tmp:
        nib.save(img, tmp)
    return path

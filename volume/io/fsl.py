"""FSL's ``.bval`` and ``.bvec`` files beside a diffusion NIfTI.

FSL (and MRtrix, QSIPrep, dipy reading FSL files) wants one b-value per volume, and one gradient
direction per volume *relative to the image's voxel axes*: component ``i`` along the first voxel
axis of the written file, and so on, with the first component negated when the image's affine
has a positive determinant (FSL then stores images left-right flipped internally). This is
dcm2niix's convention too. volume keeps directions in patient LPS (``Volume.meta["diffusion"]``)
and turns them into this frame only here, from the affine of the file written.

Numbers are written as dcm2niix writes them: ``%g`` with 6 significant digits, one space apart,
one line for b-values and three lines (x, y, z) for vectors.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..volume import LPS_TO_RAS
from .atomic import atomic_output
from .nifti import ras_affine


def voxel_bvecs(bvecs_lps: Sequence[Sequence[float]], affine_lps: np.ndarray) -> np.ndarray:
    """Gradient directions (patient LPS, one per volume) as FSL bvecs ``(3, N)`` of the NIfTI file
    written from a Volume with LPS ``(slice, row, column)`` affine ``affine_lps``.

    The file's voxel axes are NIfTI's ``(i, j, k) = (column, row, slice)`` in RAS
    (:func:`volume.io.nifti.ras_affine`); each direction is projected on their unit vectors, and the
    i component negated when that affine's determinant is positive. Zero vectors stay zero.
    """
    ras = ras_affine(affine_lps)[:3, :3]
    axes = ras / np.linalg.norm(ras, axis=0)
    g = np.asarray(bvecs_lps, dtype=float).reshape(-1, 3) @ LPS_TO_RAS[:3, :3]  # LPS -> RAS (rows)
    v = g @ np.linalg.inv(axes).T  # components along the (possibly non-orthogonal) voxel axes
    if np.linalg.det(axes) > 0:
        v[:, 0] = -v[:, 0]
    norms = np.linalg.norm(v, axis=1)
    v = np.divide(v, norms[:, None], out=np.zeros_like(v), where=norms[:, None] > 1e-9)
    v[np.abs(v) < 5e-7] = 0.0  # no "-0" in the file
    return v.T


def _g(value: float) -> str:
    """A number as dcm2niix writes it (``%g``: 6 significant digits, no ``-0``)."""
    text = f"{float(value):g}"
    return "0" if text in ("-0", "0") else text


def bval_text(bvals: Sequence[float]) -> str:
    """The ``.bval`` file: one line of b-values (s/mm2)."""
    return " ".join(_g(b) for b in bvals) + "\n"


def bvec_text(bvecs: np.ndarray) -> str:
    """The ``.bvec`` file: three lines (x, y, z) of one value per volume."""
    return "".join(" ".join(_g(v) for v in row) + "\n" for row in np.asarray(bvecs).reshape(3, -1))


def bval_bvec_paths(image: str | os.PathLike[str]) -> tuple[Path, Path]:
    """``(x.bval, x.bvec)`` beside ``x.nii`` or ``x.nii.gz``."""
    p = Path(image)
    stem = p.name[: -len(".nii.gz")] if p.name.endswith(".nii.gz") else p.stem
    return p.with_name(stem + ".bval"), p.with_name(stem + ".bvec")


def diffusion_paths(image: str | os.PathLike[str], diffusion: Mapping[str, Any]) -> list[Path]:
    """The files :func:`write_bval_bvec` writes for ``diffusion``: the ``.bval``, and the ``.bvec``
    when every direction is known."""
    bval, bvec = bval_bvec_paths(image)
    return [bval] if diffusion.get("bvecs_lps") is None else [bval, bvec]


def write_bval_bvec(
    diffusion: Mapping[str, Any], affine_lps: np.ndarray, image: str | os.PathLike[str], *, force: bool = False,
    which: Sequence[Path] | None = None,
) -> list[Path]:
    """Write ``.bval`` and ``.bvec`` beside ``image`` (atomically; existing files kept unless ``force``).

    ``diffusion`` is a Volume's ``meta["diffusion"]`` (``bvals``, ``bvecs_lps``); ``which`` limits the
    files written (a resumed batch writes only those missing). When ``bvecs_lps`` is None (a b>0
    volume's direction is not in the files) only the ``.bval`` is written: a made-up vector would
    be accepted by every tool and give wrong science. Returns the paths written.
    """
    bval_path, bvec_path = bval_bvec_paths(image)
    texts = {bval_path: bval_text(diffusion["bvals"])}
    if diffusion.get("bvecs_lps") is not None:
        texts[bvec_path] = bvec_text(voxel_bvecs(diffusion["bvecs_lps"], affine_lps))
    written = []
    for path, text in texts.items():
        if which is not None and path not in which:
            continue
        with atomic_output(path, force=force, suffix=path.suffix) as tmp:
            tmp.write_text(text, encoding="ascii")
        written.append(path)
    return written

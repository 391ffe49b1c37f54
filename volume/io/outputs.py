"""What an ``-o`` names: a file of a format the command writes, or a folder, decided in one place.

Each command keeps its accepted extensions in one mapping (extension -> what it writes, e.g.
``{".png": "picture", ".nii.gz": "nifti"}``) and asks :func:`output_kind`. An extension that names
a file format the command cannot write (``-o out.gif``) is a usage error listing what it can;
a name without one (``-o slabs``, ``-o results.v2``), a name ending in ``/`` and an existing
folder are folders. An output that cannot be written where it is (a folder on its way is a file,
cannot be created or is read-only, a name too long) is refused here too, before any work
(:func:`volume.io.atomic.check_output_path`). Nothing here imports more than the standard library
and :mod:`volume.io.atomic` (``--help`` stays fast).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from ..errors import UsageError
from ..io.atomic import check_name, check_output_path

FOLDER = "folder"
"""The kind of an ``-o`` that names a folder."""

FILE_SUFFIXES = frozenset(
    {
        # pictures and video
        ".png", ".jpg", ".jpeg", ".jpe", ".gif", ".tif", ".tiff", ".bmp", ".webp", ".svg", ".ico", ".heic",
        ".avif", ".jp2", ".j2k", ".pbm", ".pgm", ".ppm", ".pnm", ".eps", ".ps", ".pdf",
        ".mp4", ".m4v", ".webm", ".mov", ".avi", ".mkv", ".mpg", ".mpeg", ".wmv", ".flv", ".ogv",
        # volumes, meshes and arrays
        ".nii", ".nii.gz", ".gz", ".nrrd", ".nhdr", ".mha", ".mhd", ".mgh", ".mgz", ".mnc", ".img", ".hdr", ".dcm",
        ".dicom", ".ima", ".npy", ".npz", ".h5", ".hdf5", ".mat", ".vtk", ".vti", ".vtp", ".stl", ".ply",
        ".obj", ".glb", ".gltf",
        # tables, text and archives
        ".csv", ".tsv", ".json", ".txt", ".xml", ".html", ".parquet", ".xlsx", ".xls", ".zip", ".tar",
        ".tgz", ".tar.gz", ".xz", ".bz2", ".7z",
    }
)
"""Extensions that name a file format (whatever the command): an ``-o`` ending in one of them is
never taken for a folder."""


def suffix_of(name: str, formats: Mapping[str, str] = {}) -> str:  # noqa: B006 - read only
    """The extension of ``name``, lower case: the longest of ``formats`` (or of the two-part
    :data:`FILE_SUFFIXES`) it ends with (``.nii.gz``), else its last one (``.gif``); ``""`` when
    it has none."""
    lower = name.lower()
    known = [s for s in (*formats, *FILE_SUFFIXES) if s.count(".") > 1 or s in formats]
    known = [s for s in known if lower.endswith(s) and len(lower) > len(s)]
    if known:
        return max(known, key=len)
    return Path(lower).suffix


def output_kind(out: str | os.PathLike[str], formats: Mapping[str, str], *, folder: bool = True,
                option: str = "-o", explain: str = "") -> tuple[str, Path]:
    """What ``out`` asks for: ``(kind, path)``, ``kind`` one of ``formats``' values or :data:`FOLDER`.

    Parameters
    ----------
    out
        The ``-o`` value as typed (a trailing ``/`` says "a folder" whatever the name).
    formats
        Extension -> kind of every file the command writes.
    folder
        Whether the command writes into a folder at all.
    explain
        What the command writes, added to a refusal (``convert writes ... into the folder``).

    Raises
    ------
    UsageError
        An extension that names another file format, or a folder where the command writes files
        only, or an existing file where a folder is meant.
    """
    text = os.fspath(out)
    path = check_name(text)
    listing = ", ".join(formats) if formats else ""
    if text.endswith(("/", os.sep)) or path.is_dir():
        if not folder:
            raise UsageError(f"{text}: is a folder; {option} takes a file: {listing}")
        return FOLDER, check_output_path(path, folder=True)
    suffix = suffix_of(path.name, formats)
    if suffix in formats:
        return formats[suffix], check_output_path(path)
    if suffix in FILE_SUFFIXES:
        can = f"{listing} or a folder" if folder and listing else (listing or "a folder")
        how = f" (a folder named {path.name}: write {text}/)" if folder else ""
        raise UsageError(f"{text}: cannot write {suffix} files here; {option} takes {can}{how}"
                         + (f"; {explain}" if explain else ""))
    if not folder:
        raise UsageError(f"{text}: {option} takes a file: {listing}")
    if path.exists():
        raise UsageError(f"{text}: exists and is not a folder; {option} takes {listing + ' or ' if listing else ''}a folder")
    return FOLDER, check_output_path(path, folder=True)

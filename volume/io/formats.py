"""The one registry of output formats: file extension -> kind, writer, and the commands that write it.

Every ``-o`` of the command line is read against this table (:func:`kinds`, then
:func:`volume.io.outputs.output_kind` decides file or folder), the help of each ``-o`` lists what
it says (:func:`help_list`), the table of ``docs/pictures-and-selection.md`` is made from it
(:func:`markdown_table`; ``python -m volume.io.formats`` prints it, a test compares), and the
commands that choose a writer by extension ask :func:`writer`. Adding a format that a writer
already encodes is one :class:`OutputFormat` entry (``docs/development.md``).

A writer is named ``"module:function"`` and imported only when asked for, so this module imports
nothing but the standard library: ``--help`` lists the formats without numpy. Every picture is
written by :func:`volume.io.image.write_picture` and every GIF by :func:`volume.io.image.write_gif`
(mip and reslice annotate their pictures, ``png`` writes each image as stored, ``render`` its RGB
renderings); an extension appears once per group of commands that take it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from ..errors import UsageError


class OutputFormat(NamedTuple):
    """One file format an ``-o`` can name (a named tuple: ``--help`` reads the registry, and
    :mod:`dataclasses` would cost its start-up a few milliseconds).

    Attributes
    ----------
    suffix
        The file extension, lower case, with its dot (``.nii.gz``).
    kind
        What is written: ``picture``, ``nifti``, ``dicom``, ``animation``, ``mesh`` or ``table``.
    writer
        ``"module:function"`` of the function that writes it (:func:`writer` imports it).
    commands
        The commands whose ``-o`` accepts it.
    name
        The format's name, for help and the docs (``PNG``, ``NIfTI-1, gzip``).
    note
        When a command writes it only with an option (``with --turntable``), else ``""``.
    """

    suffix: str
    kind: str
    writer: str
    commands: tuple[str, ...]
    name: str
    note: str = ""


_PICTURE = "volume.io.image:write_picture"
_GIF = "volume.io.image:write_gif"

FORMATS: tuple[OutputFormat, ...] = (
    # pictures of planes (mip, reslice): windowed, orientation letters, scale bar
    OutputFormat(".png", "picture", _PICTURE, ("mip", "reslice"), "PNG"),
    OutputFormat(".jpg", "picture", _PICTURE, ("mip", "reslice"), "JPEG"),
    OutputFormat(".jpeg", "picture", _PICTURE, ("mip", "reslice"), "JPEG"),
    # volumes: the projection or the reslice itself
    OutputFormat(".nii", "nifti", "volume.io.nifti:write_nifti", ("mip", "reslice"), "NIfTI-1"),
    OutputFormat(".nii.gz", "nifti", "volume.io.nifti:write_nifti", ("mip", "reslice"), "NIfTI-1, gzip"),
    OutputFormat(".dcm", "dicom", "volume.io.dicom_out:write_dicom_series", ("mip", "reslice"), "DICOM"),
    # png: each DICOM image as stored (one input file: -o NAME.png)
    OutputFormat(".png", "picture", _PICTURE, ("png",), "PNG"),
    OutputFormat(".jpg", "picture", _PICTURE, ("png",), "JPEG"),
    OutputFormat(".gif", "animation", _GIF, ("png",), "GIF", "with --gif"),
    # renderings
    OutputFormat(".png", "picture", _PICTURE, ("render",), "PNG"),
    OutputFormat(".jpg", "picture", _PICTURE, ("render",), "JPEG"),
    OutputFormat(".jpeg", "picture", _PICTURE, ("render",), "JPEG"),
    OutputFormat(".tif", "picture", _PICTURE, ("render",), "TIFF"),
    OutputFormat(".tiff", "picture", _PICTURE, ("render",), "TIFF"),
    # turntables (render --turntable, mip --turntable)
    OutputFormat(".gif", "animation", _GIF, ("mip", "render"), "GIF", "with --turntable"),
    OutputFormat(".mp4", "animation", "volume.io.movie:write_movie", ("mip", "render"), "MP4 (H.264)",
                 "with --turntable; the movie extra"),
    OutputFormat(".webm", "animation", "volume.io.movie:write_movie", ("mip", "render"), "WebM (VP9)",
                 "with --turntable; the movie extra"),
    # meshes
    OutputFormat(".stl", "mesh", "volume.render.mesh:write_mesh", ("mesh",), "STL, binary"),
    OutputFormat(".ply", "mesh", "volume.render.mesh:write_mesh", ("mesh",), "PLY, binary"),
    OutputFormat(".obj", "mesh", "volume.render.mesh:write_mesh", ("mesh",), "Wavefront OBJ"),
    # tables
    OutputFormat(".csv", "table", "volume.jobs.index:write_index", ("index",), "CSV"),
    OutputFormat(".parquet", "table", "volume.jobs.index:write_index", ("index",), "Parquet", "the parquet extra"),
    OutputFormat(".pq", "table", "volume.jobs.index:write_index", ("index",), "Parquet", "the parquet extra"),
)
"""Every output format, grouped by writer. A new format is one entry here."""

FOLDERS: Mapping[str, str] = {
    "mip": "a folder (one picture per series, or per slab)",
    "reslice": "a folder of PNGs (or a DICOM series with `--format dcm`)",
    "png": "a folder mirroring the input",
    "convert": "a folder (`<series>.nii.gz` + `.json`, `--format nii` for `.nii`)",
}
"""What an ``-o`` that names no file is, for the commands that write into folders."""

COMMANDS = ("mip", "reslice", "png", "convert", "render", "mesh", "index")
"""The commands that write files, in the order the docs' table lists them."""


def for_command(command: str, kind: str | None = None) -> tuple[OutputFormat, ...]:
    """The formats ``command``'s ``-o`` accepts (of ``kind`` only, when given), in table order."""
    return tuple(f for f in FORMATS if command in f.commands and (kind is None or f.kind == kind))


def kinds(command: str) -> dict[str, str]:
    """``{suffix: kind}`` of ``command``'s ``-o`` (for :func:`volume.io.outputs.output_kind`)."""
    return {f.suffix: f.kind for f in for_command(command)}


def suffixes(command: str, kind: str | None = None) -> tuple[str, ...]:
    """The extensions ``command`` writes (of ``kind`` only, when given), e.g. ``(".gif", ".mp4", ".webm")``."""
    return tuple(f.suffix for f in for_command(command, kind))


def find(command: str, path: str | Path) -> OutputFormat | None:
    """The format ``path`` names for ``command`` (its longest matching extension), or None."""
    name = Path(path).name.lower()
    found = [f for f in for_command(command) if name.endswith(f.suffix) and len(name) > len(f.suffix)]
    return max(found, key=lambda f: len(f.suffix)) if found else None


def writer(command: str, path: str | Path) -> Callable[..., Any]:
    """The function that writes ``path`` for ``command`` (imported now).

    Raises
    ------
    UsageError
        When ``command`` writes no file of that extension (the message lists those it does).
    """
    fmt = find(command, path)
    if fmt is None:
        raise UsageError(f"{path}: volume {command} writes {', '.join(suffixes(command)) or 'no files'}")
    module, _, function = fmt.writer.partition(":")
    return getattr(importlib.import_module(module), function)


def help_list(command: str, kind: str | None = None) -> str:
    """``.png/.jpg/.jpeg (picture), .nii/.nii.gz (nifti), .dcm (dicom)``: what ``-o`` takes, for help."""
    groups: dict[tuple[str, str], list[str]] = {}
    for f in for_command(command, kind):
        groups.setdefault((f.kind, f.note), []).append(f.suffix)
    return ", ".join(f"{'/'.join(s)} ({k}{', ' + n if n else ''})" for (k, n), s in groups.items())


def markdown_table() -> str:
    """The docs' table of what each command's ``-o`` can name (``docs/pictures-and-selection.md``)."""
    rows = ["| command | files `-o` can name | otherwise |", "|---|---|---|"]
    for command in COMMANDS:
        groups: dict[tuple[str, str], list[str]] = {}
        for f in for_command(command):
            groups.setdefault((f.kind, f.note), []).append(f"`{f.suffix}`")
        files = "; ".join(f"{' '.join(s)} ({k}{', ' + n if n else ''})" for (k, n), s in groups.items()) or "none"
        rows.append(f"| `{command}` | {files} | {FOLDERS.get(command, '')} |")
    return "\n".join(rows)


if __name__ == "__main__":  # pragma: no cover - prints the docs' table
    print(markdown_table())

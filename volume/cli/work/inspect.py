"""The work of ``volume ls`` and ``volume info`` (declared in :mod:`volume.cli.inspect`): the table
(or JSON) of the stacks under a path, and one file's header with identity hidden."""

from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any

from ...dicom import read, scan
from ...dicom.headers import iter_files
from ...dicom.series import dimensions_text
from ...dicom.values import plain_value
from ...errors import NoDicomError, UsageError
from ...phi import HIDDEN, element_is_identity
from ..app import progress_bar, stderr_is_terminal, stdout_is_terminal

SIZE_COLUMN = "SIZE SxRxC"
"""The size column of ``volume ls``: slices x rows x columns, the order of ``Volume.shape`` and its repr."""

VOXEL_COLUMN = "VOXEL SxRxC (mm)"
"""The voxel column: spacing along slices, rows, columns, the order of ``Volume.spacing`` and its repr."""


def _dims(d: dict[str, Any]) -> str:
    return dimensions_text(tuple(d["shape"]), d["rgb"])


def _voxel(d: dict[str, Any]) -> str:
    sp = d["spacing_mm"]
    if sp is None:
        return "-"
    return "x".join(f"{v:.3g}" for v in sp)  # (slice, row, column), as Volume's repr


def ls(path: Path, *, as_json: bool, workers: int | None, keep_phi: bool) -> None:
    """``volume ls``: one row per stack (a rich table, or JSON), a summary; exit 3 when none."""
    files = None
    if stderr_is_terminal() and path.exists():  # a bar with a total (walking the tree is cheap)
        files = sum(1 for _ in iter_files([path]))
    with progress_bar("reading headers", files) as advance:
        found = scan(path, workers=workers, progress=advance)
    rows = [st.describe(keep_phi=keep_phi) for st in found.stacks]
    if as_json:
        payload = {
            "path": os.fspath(path),
            "files": found.report.n_files,
            "stacks": rows,
            "skipped": dict(found.report.skipped),
        }
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
    else:
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        console = Console(width=None if stdout_is_terminal() else 220, highlight=False, soft_wrap=False)
        table = Table(box=None, pad_edge=False, header_style="bold")
        for col in ("ID", "DESCRIPTION", "MOD", "KIND", SIZE_COLUMN, VOXEL_COLUMN, "ORIENTATION", "FILES", "NOTES"):
            table.add_column(col, overflow="fold")
        for d in rows:
            notes = "; ".join(d["notes"] + d["warnings"] + ([f"cannot load: {d['problem']}"] if d["problem"] else []))
            orient = d["orientation"] + (f" {d['axcodes']}" if d["axcodes"] else "")
            cells = (d["id"], d["series_description"], d["modality"], d["content"] or d["kind"], _dims(d), _voxel(d),
                     orient, str(d["files"]), notes)
            # header text is data, never rich markup or terminal control sequences
            table.add_row(*(Text("".join(ch if ch.isprintable() else "?" for ch in str(c))) for c in cells))
        if rows:
            console.print(table)
        n_series = len(found.series)
        summary = (f"{len(rows)} stack{'s' if len(rows) != 1 else ''} in {n_series} series, "
                   f"{found.report.n_files} file{'s' if found.report.n_files != 1 else ''}")
        if found.skipped:
            summary += f"; {found.skipped}"
        console.print(Text(summary))
    if not rows:
        raise NoDicomError(f"{path}: no DICOM images found" + (f" ({found.skipped})" if found.skipped else ""))


# --- info ----------------------------------------------------------------------------------

def _element_json(elem: Any, keep_phi: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "tag": f"({elem.tag.group:04X},{elem.tag.element:04X})",
        "keyword": elem.keyword,
        "name": elem.name,
        "vr": elem.VR,
    }
    if not keep_phi and element_is_identity(elem):
        entry["value"] = HIDDEN
    elif elem.VR == "SQ":
        entry["value"] = [[_element_json(e, keep_phi) for e in item] for item in elem.value]
    elif elem.tag in (0x7FE00010, 0x7FE00008, 0x7FE00009) or elem.VR in ("OB", "OW", "OF", "OD", "OL", "OV", "UN"):
        length = getattr(elem, "length", None)
        if length is None and elem.value is not None:
            length = len(elem.value)
        entry["value"] = f"<{length} bytes>" if length not in (None, 0xFFFFFFFF) else "<encapsulated>"
    else:
        entry["value"] = plain_value(elem.value)
    return entry


INDENT = "   "
"""One level of sequence nesting in ``info``'s text (pydicom's own indent)."""


def _header_text(ds: Any, keep_phi: bool, depth: int = 0) -> list[str]:
    """pydicom's text of a dataset, line by line, with identity values (:mod:`volume.phi`) hidden."""
    pad = INDENT * depth
    lines = []
    for elem in ds:
        hide = not keep_phi and element_is_identity(elem)
        if elem.VR == "SQ":
            head = f"{pad}{elem.tag}  {elem.name}  "
            if hide:
                lines.append(head + HIDDEN)
                continue
            lines.append(head + f"{len(elem.value)} item(s) ---- ")
            for item in elem.value:
                lines += _header_text(item, keep_phi, depth + 1)
                lines.append(pad + INDENT + "---------")
        elif hide:
            lines.append(f"{pad}{elem.tag} {elem.name:<35} {elem.VR}: {HIDDEN}")
        else:
            lines.append(pad + repr(elem))
    return lines


def info(file: Path, *, as_json: bool, keep_phi: bool) -> None:
    """``volume info``: every element of one file's header, identity hidden unless ``keep_phi``."""
    if not file.exists():
        raise UsageError(f"{file}: no such file")
    if file.is_dir():
        raise UsageError(f"{file}: is a folder; `volume info` takes one file (use `volume ls` for folders)")
    if not file.is_file():  # a FIFO or device would block the read forever
        raise UsageError(f"{file}: not a regular file")
    try:
        ds = read.read_dataset(file, defer_size=256, corrupt="raise")
        if not isinstance(ds, read.Skip):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # pydicom's warnings can quote values: never on stderr
                list(ds.iterall())  # parse everything now so a broken header fails here
    except Exception as exc:  # noqa: BLE001
        raise NoDicomError(f"{file}: unreadable DICOM header ({type(exc).__name__}); the file is truncated or corrupt") from None
    if ds in (read.Skip.NOT_DICOM, read.Skip.EMPTY):
        raise NoDicomError(f"{file}: not a DICOM file (no DICM preamble)")
    if ds == read.Skip.UNREADABLE:
        raise UsageError(f"{file}: cannot be read (permission denied?)")
    if isinstance(ds, read.Skip):
        raise NoDicomError(f"{file}: unreadable DICOM header ({ds}); the file is truncated or corrupt")
    if as_json:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            elements = []
            if getattr(ds, "file_meta", None):
                elements += [_element_json(e, keep_phi) for e in ds.file_meta]
            elements += [_element_json(e, keep_phi) for e in ds]
        sys.stdout.write(json.dumps(elements, indent=1, default=str) + "\n")
        return
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a malformed value is shown as it is, never warned about
            lines = []
            if getattr(ds, "file_meta", None):  # the file meta group first, as pydicom prints it
                lines += [f"{'Dataset.file_meta ':-<49}", *_header_text(ds.file_meta, keep_phi), f"{'':-<49}"]
            text = "\n".join(lines + _header_text(ds, keep_phi))
        sys.stdout.write(text + "\n")
    except Exception as exc:  # noqa: BLE001
        raise NoDicomError(f"{file}: header values cannot be shown ({type(exc).__name__}); the file is corrupt") from None

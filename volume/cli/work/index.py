"""The work of ``volume index`` (declared in :mod:`volume.cli.index`): one row per DICOM file into a
CSV or Parquet table."""

from __future__ import annotations

import sys
from pathlib import Path

from ...errors import UsageError
from ...io import formats
from ...io.atomic import check_writable
from ...io.names import safe_name
from ...jobs.index import iter_input_files, table_format, write_index
from ..app import err, progress_bar


def index(path: Path, *, out: Path | None, fields: str | None, keep_phi: bool, workers: int | None,
          force: bool) -> None:
    """``volume index``: the table written, its name on stdout and a summary on stderr."""
    if not path.exists():
        raise UsageError(f"{path}: no such file or folder")
    if out is None:
        out = Path(f"{safe_name(path.resolve().name, fallback='dicom')}_index.csv")
    if formats.find("index", out) is None:
        raise UsageError(f"{out}: the index is written as {', '.join(formats.suffixes('index'))}; choose one of those extensions")
    table_format(out)
    check_writable(out, force=force)  # an existing table, or one that cannot be written there: before any work
    wanted = _split_fields(fields)
    files = list(iter_input_files(path))
    with progress_bar("reading headers", len(files)) as advance:
        summary = write_index(path, out, fields=wanted, keep_phi=keep_phi, workers=workers,
                              force=force, progress=advance, files=files)
    sys.stdout.write(f"{out}\n")
    sys.stdout.flush()
    line = f"{summary.rows} row{'s' if summary.rows != 1 else ''} from {summary.files} file{'s' if summary.files != 1 else ''}"
    if summary.skipped:
        total = sum(summary.skipped.values())
        line += f"; {total} skipped (" + ", ".join(f"{n} {r}" for r, n in summary.skipped.most_common()) + ")"
    err(line)


def _split_fields(text: str | None) -> list[str]:
    """``KVP,(0018,1150),PatientAge`` -> ``["KVP", "(0018,1150)", "PatientAge"]`` (tags kept whole)."""
    if not text:
        return []
    out: list[str] = []
    buf = ""
    depth = 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(0, depth - 1)
        if ch == "," and depth == 0:
            out.append(buf.strip())
            buf = ""
        else:
            buf += ch
    out.append(buf.strip())
    # a bare "0018,1150" split into "0018" and "1150": glue 4-hex-digit pairs back together
    merged: list[str] = []
    i = 0
    while i < len(out):
        a = out[i]
        if i + 1 < len(out) and _is_hex4(a) and _is_hex4(out[i + 1]):
            merged.append(f"{a},{out[i + 1]}")
            i += 2
        else:
            merged.append(a)
            i += 1
    return [f for f in merged if f]


def _is_hex4(text: str) -> bool:
    return len(text) == 4 and all(c in "0123456789abcdefABCDEF" for c in text)

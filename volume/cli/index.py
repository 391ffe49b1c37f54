"""``volume index``: one row per DICOM file (headers only) into CSV or Parquet."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ..errors import UsageError
from .app import app, err, progress_bar


@app.command("index")
def index_command(
    path: Annotated[Path, typer.Argument(help="A DICOM file or a folder (searched recursively).")],
    out: Annotated[Path | None, typer.Option("--output", "-o", "--out", help="The table: .csv, or .parquet (needs pyarrow). Default: <folder>_index.csv here, named after PATH.")] = None,
    fields: Annotated[str | None, typer.Option(help="Extra columns: DICOM keywords or tags, comma-separated, e.g. KVP,ConvolutionKernel,(0018,1150); identity fields need --keep-phi.")] = None,
    keep_phi: Annotated[bool, typer.Option("--keep-phi", help="Add identity columns (patient, study, dates, institution) and real UIDs; allow identity --fields.")] = False,
    workers: Annotated[int | None, typer.Option("--workers", "-j", min=1, help="Processes reading headers (default: all cores).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing table.")] = False,
) -> None:
    """Write one row per DICOM file under PATH: series, geometry, pixel format, transfer syntax.

    Reads headers only (parsing stops at the pixel data tag), in parallel, streaming rows to the
    table. No patient identity unless --keep-phi (DICOM PS3.15's Basic Profile, docs/privacy.md):
    UIDs appear as *_key columns (SHA-256 prefixes) that group and join rows without revealing the UID. Non-DICOM files are skipped and counted;
    when no file is DICOM nothing is written (exit 3). In CSV, text cells starting with = + - @
    (formulas for a spreadsheet) get a leading ' unless they are numbers; Parquet keeps them raw.
    """
    from ..jobs.index import iter_input_files, table_format, write_index

    if not path.exists():
        raise UsageError(f"{path}: no such file or folder")
    if out is None:
        from ..io.names import safe_name

        out = Path(f"{safe_name(path.resolve().name, fallback='dicom')}_index.csv")
    table_format(out)
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

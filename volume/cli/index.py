"""``volume index``: one row per DICOM file (headers only) into CSV or Parquet.

The declaration of the command; its work is :mod:`volume.cli.work.index`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..io.formats import help_list
from .app import app, given


@app.command("index")
def index_command(
    path: Annotated[Path, typer.Argument(help="A DICOM file or a folder (searched recursively).")],
    out: Annotated[Path | None, typer.Option("--output", "-o", "--out", help=f"The table: {help_list('index')}. Default: <folder>_index.csv here, named after PATH.")] = None,
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
    from .work import index as work  # the work imports numpy and the library: only when the command runs
    work.index(**given(locals()))

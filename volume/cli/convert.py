"""``volume convert``: every stack under a path to NIfTI (+ JSON sidecar)."""

from __future__ import annotations

import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from ..errors import UsageError
from .app import app, err, parse_size, progress_bar, warn

MAX_AUTO_THREADS = 4
"""Compression threads ``--threads 0`` (the default) uses at most: ISA-L saturates the disk beyond."""


class NiftiFormat(str, Enum):
    """Output file format."""

    nii_gz = "nii.gz"
    nii = "nii"


@app.command("convert")
def convert_command(
    path: Annotated[Path, typer.Argument(help="A DICOM folder (searched recursively) or file.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output folder (created if missing).")],
    fmt: Annotated[NiftiFormat, typer.Option("--format", "-f", help="nii.gz (compressed, default) or nii.")] = NiftiFormat.nii_gz,
    series: Annotated[
        str | None,
        typer.Option("--series", "-s", help="Only this series: a series number, stack id (`volume ls`) or SeriesInstanceUID."),
    ] = None,
    allow_gaps: Annotated[
        bool, typer.Option("--allow-gaps", help="Resample series with missing slices onto a uniform grid instead of refusing them.")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing outputs (default: keep them and skip).")] = False,
    keep_phi: Annotated[
        bool, typer.Option("--keep-phi", help="Write patient identity (name, ID, birth date, UIDs) into the sidecars.")
    ] = False,
    sidecar: Annotated[bool, typer.Option("--sidecar/--no-sidecar", help="Write a JSON sidecar beside each image.")] = True,
    threads: Annotated[
        int, typer.Option("--threads", min=0, help="gzip compression threads per file (0: one per core, at most 4).")
    ] = 0,
    max_memory: Annotated[
        str | None,
        typer.Option("--max-memory", help="Refuse a series whose headers claim more memory than this (e.g. 8G, 500M; default 16G)."),
    ] = None,
) -> None:
    """Convert every stack under PATH to <SeriesNumber>_<SeriesDescription>[_label].nii.gz + .json.

    Stacks split from one series get a label (echoes _e1/_e2, _ph for phase, localizer planes).
    Prints each written file on stdout, problems and a summary (converted, skipped, failed) on
    stderr. Exit code 1 when a series failed (the others are converted), 5 when every output
    existed already.
    """
    from ..convert import (
        CONVERTED,
        FAILED,
        SKIPPED,
        ConvertOptions,
        ConvertResult,
        exit_code,
        run_tasks,
        select_tasks,
        summary,
    )
    from ..dicom import scan

    if output.exists() and not output.is_dir():
        raise UsageError(f"{output}: exists and is not a folder; -o takes a folder")
    if threads == 0:
        threads = max(1, min(MAX_AUTO_THREADS, os.cpu_count() or 1))
    limit = {} if max_memory is None else {"max_bytes": parse_size(max_memory)}
    options = ConvertOptions(
        format=fmt.value, force=force, allow_gaps=allow_gaps, keep_phi=keep_phi, threads=threads, sidecar=sidecar,
        **limit,
    )
    with progress_bar("reading headers", None) as advance:
        found = scan(path, progress=advance)
    if found.skipped:
        warn(found.skipped)
    tasks = select_tasks(found, series)

    def report(result: ConvertResult) -> None:
        where = f"series {result.stack_id}"
        if result.status == CONVERTED:
            for f in result.files:
                sys.stdout.write(f"{f}\n")
            sys.stdout.flush()
            for w in result.warnings:
                warn(f"{where}: {w}")
        elif result.status == SKIPPED:
            err(f"{where}: skipped, {result.message}")
        elif result.status == FAILED:
            for f in result.files:  # written before the failure (e.g. the image, not the sidecar)
                sys.stdout.write(f"{f}\n")
            err(f"{where}: failed: {result.message}")

    total = sum(len(t.stack.frames) for t in tasks)
    with progress_bar("converting", total) as advance:
        results = run_tasks(tasks, output, options, progress=advance, on_result=report)
    err(summary(results))
    code = exit_code(results)
    if code:
        raise typer.Exit(code)

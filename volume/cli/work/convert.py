"""The work of ``volume convert`` (declared in :mod:`volume.cli.convert`): the options built,
:func:`volume.jobs.convert.run_batch` run (this process, a pool or a dask cluster), then the
closing lines."""

from __future__ import annotations

from pathlib import Path

import typer

from ...errors import EXIT_INTERRUPTED, UsageError
from ...io.outputs import output_kind
from ...jobs.convert import FAILED, ConvertBatch, ConvertOptions, run_batch, summary
from ..app import err, parse_size
from .common import EVENTS

FAILED_ROWS = 50
"""Failed series listed in the closing table (the report has them all)."""


def convert(path: Path, *, output: str | None, fmt: str, series: str | None, allow_gaps: bool,
            force: bool, keep_phi: bool, sidecar: bool, threads: int, max_memory: str | None, workers: int | None,
            skip_existing: bool, scheduler: str | None, report_path: Path | None, philips_scaling: str,
            single_file: bool) -> None:
    """``volume convert``: the options, the batch, the closing lines; raises ``typer.Exit`` with the code."""
    _, folder = output_kind("." if output is None else output, {},
                            explain="convert writes <series>.nii.gz and .json for each series into a folder")
    if skip_existing and force:
        raise UsageError("--skip-existing and --force exclude each other: keep existing outputs, or overwrite them")
    options = ConvertOptions(
        format=fmt, force=force, allow_gaps=allow_gaps, keep_phi=keep_phi, sidecar=sidecar,
        skip_existing=skip_existing, scaling=philips_scaling,
        max_bytes=None if max_memory is None else parse_size(max_memory),
    )
    batch = run_batch(path, folder, options, series=series, workers=workers, scheduler=scheduler, threads=threads,
                      report=report_path, single_file=single_file, events=EVENTS)
    err(summary(batch.results))
    _closing_table(batch, report_path is not None)
    if batch.interrupted:
        left = batch.not_run()
        if left:
            how = ("the same command without --force and with --skip-existing" if force
                   else "the same command" + ("" if skip_existing else " with --skip-existing"))
            err(f"{left} of {len(batch.tasks)} series not converted; {how} finishes them")
        raise typer.Exit(EXIT_INTERRUPTED)
    if batch.exit_code():
        raise typer.Exit(batch.exit_code())


def _closing_table(batch: ConvertBatch, reported: bool) -> None:
    """The failures again, after the lines scrolled by (a batch of several series)."""
    failed = [r for r in batch.results if r.status == FAILED]
    if len(batch.tasks) < 2 or not failed:
        return
    order = {t.stack.id: k for k, t in enumerate(batch.tasks)}
    failed.sort(key=lambda r: order.get(r.stack_id, 0))
    for r in failed[:FAILED_ROWS]:
        err(f"failed series {r.stack_id} ({r.name}): {r.message}")
    if len(failed) > FAILED_ROWS:
        err(f"  ... and {len(failed) - FAILED_ROWS} more failed series" + (" (see the report)" if reported else ""))

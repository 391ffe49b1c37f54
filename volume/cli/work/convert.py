"""The work of ``volume convert`` (declared in :mod:`volume.cli.convert`): checks, the scan, the
series converted in this process, a pool or a dask cluster, the closing table and the report."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import typer

from ... import lifecycle
from ...errors import EXIT_INTERRUPTED, UsageError
from ...io.nifti_stream import memory_budget
from ...io.outputs import output_kind
from ...jobs.convert import (
    CONVERTED,
    FAILED,
    SKIPPED,
    ConvertOptions,
    ConvertResult,
    auto_workers,
    batch_report,
    check_report,
    exit_code,
    iter_results,
    select_tasks,
    summary,
    task_outputs,
    write_report,
)
from ...jobs.inputs import read_input
from ..app import err, parse_size, progress_bar, warn
from .common import EVENTS

MAX_AUTO_THREADS = 4
"""Compression threads ``--threads 0`` (the default) uses at most: ISA-L saturates the disk beyond."""


def convert(path: Path, *, output: str | None, fmt: str, series: str | None, allow_gaps: bool,
            force: bool, keep_phi: bool, sidecar: bool, threads: int, max_memory: str | None, workers: int | None,
            skip_existing: bool, scheduler: str | None, report_path: Path | None, philips_scaling: str,
            single_file: bool) -> None:
    """``volume convert``: the output folder checked, then :func:`run_convert`."""
    _, folder = output_kind("." if output is None else output, {}, explain="convert writes <series>.nii.gz and .json for each series into a folder")
    run_convert(
        path, folder, fmt=fmt, series=series, allow_gaps=allow_gaps, force=force, keep_phi=keep_phi,
        sidecar=sidecar, threads=threads, max_memory=max_memory, workers=workers, skip_existing=skip_existing,
        scheduler=scheduler, report_path=report_path, scaling=philips_scaling, single_file=single_file,
    )


FAILED_ROWS = 50
"""Failed series listed in the closing table (the report has them all)."""


def run_convert(
    path: Path,
    output: Path,
    *,
    fmt: str = "nii.gz",
    series: str | None = None,
    allow_gaps: bool = False,
    force: bool = False,
    keep_phi: bool = False,
    sidecar: bool = True,
    threads: int = 0,
    max_memory: str | None = None,
    workers: int | None = None,
    skip_existing: bool = False,
    scheduler: str | None = None,
    report_path: Path | None = None,
    scaling: str = "precise",
    single_file: bool = False,
) -> None:
    """The body of ``volume convert``: checks, scan, tasks in this process / a pool / a cluster,
    printing as results come, the closing table, the report; raises ``typer.Exit`` with the code."""
    if output.exists() and not output.is_dir():
        raise UsageError(f"{output}: exists and is not a folder; -o takes a folder")
    if skip_existing and force:
        raise UsageError("--skip-existing and --force exclude each other: keep existing outputs, or overwrite them")
    if scheduler is not None and workers is not None:
        raise UsageError("--workers is for the local pool; with --scheduler the cluster's workers run the series")
    if report_path is not None:
        # refused before any work; a resumed run (--skip-existing) replaces its own report
        check_report(report_path, force=force or skip_existing)
    limit = {} if max_memory is None else {"max_bytes": parse_size(max_memory)}
    parallel_threads = threads or 1  # in a pool or a cluster, the workers are the parallelism
    local_threads = threads or max(1, min(MAX_AUTO_THREADS, os.cpu_count() or 1))
    options = ConvertOptions(
        format=fmt, force=force, allow_gaps=allow_gaps, keep_phi=keep_phi, threads=local_threads, sidecar=sidecar,
        skip_existing=skip_existing, scaling=scaling, **limit,
    )
    client = None
    if scheduler is not None:
        from ...jobs import cluster  # the dask extra's job: imported for --scheduler only (docs/design.md)

        client = cluster.connect(scheduler)  # fails in a few seconds, before the scan
        if cluster.n_workers(client) == 0:
            warn(f"the dask cluster at {scheduler} has no workers yet: the series wait until one joins")
    try:
        started = time.time()
        # a cluster's workers read the files by absolute path
        found, series = read_input(Path(os.path.abspath(path)) if client is not None else path, series,
                                   verb="converting", single_file=single_file,
                                   alone="--single-file converts this image alone", events=EVENTS)
        tasks = select_tasks(found, series)
        if report_path is not None:
            _check_report_is_not_an_output(report_path, tasks, output, options)
        n_workers = 1 if client is not None else auto_workers(tasks, workers)
        if client is not None or n_workers > 1:
            options = replace(options, threads=parallel_threads)
        if n_workers > 1 and max_memory is None:  # the workers share this machine's memory budget
            options = replace(options, max_bytes=max(1, memory_budget() // n_workers))

        def show(result: ConvertResult) -> None:
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
                sys.stdout.flush()
                err(f"{where}: failed: {result.message}")

        results: list[ConvertResult] = []
        interrupted = False
        total = sum(len(t.stack.frames) for t in tasks)
        with progress_bar("converting", total) as advance:
            if client is not None:
                stream = cluster.iter_results(tasks, output, options, client, progress=advance)
            else:
                stream = iter_results(tasks, output, options, workers=n_workers, progress=advance)
            try:
                for result in stream:
                    results.append(result)
                    show(result)
            except KeyboardInterrupt:
                interrupted = True
                results.extend(_stop(stream, show))
        finished = time.time()
    finally:
        if client is not None:
            cluster.close(client, stopping=lifecycle.stop_signal() is not None)
    err(summary(results))
    failed = [r for r in results if r.status == FAILED]
    if len(tasks) > 1 and failed:  # the closing table: failures again, after the lines scrolled by
        order = {t.stack.id: k for k, t in enumerate(tasks)}
        failed.sort(key=lambda r: order.get(r.stack_id, 0))
        for r in failed[:FAILED_ROWS]:
            err(f"failed series {r.stack_id} ({r.name}): {r.message}")
        if len(failed) > FAILED_ROWS:
            err(f"  ... and {len(failed) - FAILED_ROWS} more failed series" + (" (see the report)" if report_path else ""))
    if report_path is not None:
        doc = batch_report(
            results, tasks, options, output=output, started=started, finished=finished, interrupted=interrupted,
            workers=n_workers, scheduler=scheduler, series=series, files_scanned=found.report.n_files,
        )
        write_report(report_path, doc, force=force or skip_existing)
    if interrupted:
        left = len(tasks) - len(results)
        if left:
            how = ("the same command without --force and with --skip-existing" if force
                   else "the same command" + ("" if skip_existing else " with --skip-existing"))
            err(f"{left} of {len(tasks)} series not converted; {how} finishes them")
        raise typer.Exit(EXIT_INTERRUPTED)
    code = exit_code(results)
    if code:
        raise typer.Exit(code)


def _stop(stream: Any, show: Callable[[Any], None]) -> list[Any]:
    """After Ctrl-C: when it reached us between two results rather than inside ``stream``, hand
    the interrupt to ``stream`` so it stops its workers; collect (and show) the results it still
    yields (a cluster's tasks that finished their file meanwhile)."""
    more: list[Any] = []
    if getattr(stream, "gi_frame", None) is None:  # the generator stopped itself already
        return more
    try:
        result = stream.throw(KeyboardInterrupt)
        while True:
            more.append(result)
            show(result)
            result = next(stream)
    except (KeyboardInterrupt, StopIteration):
        pass
    return more


def _check_report_is_not_an_output(report_path: Path, tasks: Any, output: Path, options: Any) -> None:
    """Refuse, before any work, a report path that one of the planned outputs would take."""
    target = os.path.abspath(report_path)
    for task in tasks:
        if target in (os.path.abspath(p) for p in task_outputs(output, task.name, options, task.stack)):
            raise UsageError(f"{report_path}: series {task.stack.id} writes its output there; put the report elsewhere")

"""The work of ``volume bids`` (declared in :mod:`volume.cli.bids`): the plan printed, or written
with each file on stdout and problems on stderr."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from ...errors import UsageError
from ...io.atomic import check_output_path
from ...jobs.bids import CONVERTED, FAILED, SKIPPED, BidsResult, exit_code, plan_bids, summary
from ...jobs.convert import ConvertOptions
from ..app import err, progress_bar, warn


def bids(sources: list[Path], *, output: Path, subject: str, session: str | None, config: Path | None,
         plan: bool, json_out: bool, force: bool, keep_phi: bool, allow_gaps: bool = False) -> None:
    """``volume bids``: plan, then print it (``--plan``) or write it."""
    missing = [s for s in sources if not s.exists()]
    if missing:
        raise UsageError(f"{missing[0]}: no such file or folder")
    check_output_path(output, folder=True)  # a file on the way, read-only, a name too long: before any work
    if output.exists() and not output.is_dir():
        raise UsageError(f"{output}: exists and is not a folder; -o takes the dataset's folder")
    if json_out and not plan:
        raise UsageError("--json prints the plan: use it with --plan")
    with progress_bar("reading headers", None) as advance:
        the_plan = plan_bids(sources, output, subject=subject, session=session, config=config,
                             keep_phi=keep_phi, progress=advance)
    for note in the_plan.notes:
        warn(note)
    if plan:
        text = json.dumps(the_plan.to_dict(), indent=2, default=str) if json_out else the_plan.table()
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
        return
    for item in the_plan.items:
        if not item.is_bids and item.reason:
            where = item.path or "left out"
            warn(f"series {item.stack.id}: {where}: {item.reason}")

    def show(result: BidsResult) -> None:
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
            err(f"{where}: failed: {result.message}")

    total = sum(len(i.stack.frames) for i in the_plan.items)
    with progress_bar("converting", total) as advance:
        results = the_plan.write(force=force, keep_phi=keep_phi, on_result=show, progress=advance,
                                 options=ConvertOptions(allow_gaps=allow_gaps))
    err(summary(results))
    code = exit_code(results)
    if code:
        raise typer.Exit(code)

"""``volume bids``: a whole MR session into a BIDS dataset, without a configuration file.

The declaration of the command; its work is :mod:`volume.cli.work.bids`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .app import app, given


@app.command("bids")
def bids_command(
    sources: Annotated[list[Path], typer.Argument(metavar="SOURCE...", help="DICOM folders or files of one subject's session (searched recursively).")],
    output: Annotated[Path, typer.Option("--output", "-o", metavar="BIDS_ROOT", help="The dataset's folder (created if missing; other subjects and sessions in it are left untouched).")],
    subject: Annotated[str, typer.Option("--subject", help="The subject's label (letters and digits; sub- is added).")],
    session: Annotated[str | None, typer.Option("--session", help="The session's label (ses- is added). Default: no session level.")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="Rules (JSON or TOML) that match sidecar fields and descriptions and give datatype, suffix, entities and sidecar fields, overriding the guess (docs/bids.md).")] = None,
    plan: Annotated[bool, typer.Option("--plan", help="Print where each stack goes and which rule decided; write nothing.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="With --plan: the plan as JSON.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite files that exist (default: keep them; a re-run skips what it wrote).")] = False,
    allow_gaps: Annotated[bool, typer.Option("--allow-gaps", help="Resample series with missing slices onto a uniform grid instead of refusing them (as convert).")] = False,
    keep_phi: Annotated[bool, typer.Option("--keep-phi", help="Write identity: sidecar identity as convert --keep-phi, age and sex into participants.tsv, acquisition times into the sidecars and scans.tsv.")] = False,
) -> None:
    """Convert one subject's MR session into a BIDS dataset: anat, func, dwi, fmap, perf.

    Each stack is classified from its DICOM headers (image type, sequence, echo and inversion
    times, b-values, volumes, phase encoding) by named rules; descriptions only break ties. Field
    maps are linked to the runs they correct (B0FieldIdentifier/B0FieldSource, IntendedFor).
    Localizers, scanner-derived images and series whose required fields the files lack are
    converted into sourcedata/. Prints each file written on stdout; exit 1 when a series failed,
    5 when another scan's file holds a planned name (use --session, or --force), 2 for bad options.
    """
    from .work import bids as work  # the work imports numpy and the library: only when the command runs
    work.bids(**given(locals()))

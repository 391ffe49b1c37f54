"""``volume ls`` (stacks under a path) and ``volume info`` (one file's header).

The declarations of the commands; their work is :mod:`volume.cli.work.inspect`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .app import app, given

PathArg = Annotated[Path, typer.Argument(help="A DICOM file or a folder (searched recursively).")]


@app.command("ls")
def ls_command(
    path: PathArg,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
    workers: Annotated[int | None, typer.Option("--workers", "-j", help="Processes reading headers (default: all cores for big trees).")] = None,
    keep_phi: Annotated[bool, typer.Option("--keep-phi", help="JSON: add each stack's series and study UIDs (default: a series_key, a hash of the UID).")] = False,
) -> None:
    """List every stack found under PATH: one row per 3D/4D stack, localizer or image set.

    Dimensions are columns x rows x slices (x frames); voxel size is in mm in the same order.
    No patient identity: series are named by number and description; --json gives a series_key
    (a hash of the UID) in place of the UID unless --keep-phi.
    """
    from .work import inspect as work  # the work imports numpy and the library: only when the command runs
    work.ls(**given(locals()))


@app.command("info")
def info_command(
    file: Annotated[Path, typer.Argument(help="One DICOM file.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON: a list of {tag, keyword, name, vr, value}.")] = False,
    keep_phi: Annotated[bool, typer.Option("--keep-phi", help="Show patient identity (hidden by default).")] = False,
) -> None:
    """Print one file's header element by element (tag, name, VR, value), pixel data not read.

    Identity (DICOM PS3.15's Basic Profile: names, IDs, dates, UIDs, institution, private
    elements...; docs/privacy.md) shows as <hidden> unless --keep-phi.
    """
    from .work import inspect as work  # the work imports numpy and the library: only when the command runs
    work.info(**given(locals()))

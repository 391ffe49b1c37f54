"""``volume sample``: write a small synthetic CT series to try the other commands on.

The declaration of the command; its work is :mod:`volume.cli.work.sample`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .app import app, given


@app.command("sample")
def sample_command(
    out: Annotated[Path, typer.Argument(help="Folder to create (must not hold files yet, unless --force).")],
    slices: Annotated[int, typer.Option(min=1, max=2000, help="Number of axial slices.")] = 48,
    size: Annotated[int, typer.Option(min=8, max=1024, help="Rows and columns per slice.")] = 128,
    force: Annotated[bool, typer.Option("--force", help="Write into a folder that already has files.")] = False,
) -> None:
    """Write a synthetic CT head phantom (bright marker at the patient's left-anterior-superior)."""
    from .work import sample as work  # the work imports numpy and the library: only when the command runs
    work.sample(**given(locals()))

"""The work of ``volume sample`` (declared in :mod:`volume.cli.sample`): the synthetic CT written."""

from __future__ import annotations

from pathlib import Path

import typer

from ...errors import OutputExistsError
from ...sample import write_sample_ct


def sample(out: Path, *, slices: int, size: int, force: bool) -> None:
    """``volume sample``: the phantom's files written into ``out``, and their count printed."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not force:
        raise OutputExistsError(f"{out}: exists and is not an empty folder; use --force to write into it")
    paths = write_sample_ct(out, slices=slices, size=size)
    typer.echo(f"{out} ({len(paths)} files)")

"""The work of ``volume sample`` (declared in :mod:`volume.cli.sample`): the synthetic CT written."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from ... import lifecycle
from ...errors import OutputExistsError
from ...io.atomic import check_output_path, make_folder, temporary_folder
from ...sample import write_sample_ct


def sample(out: Path, *, slices: int, size: int, force: bool) -> None:
    """``volume sample``: the phantom's files written into ``out``, and their count printed.

    The files are written into a temporary folder beside ``out`` and moved into it once all are
    whole, so an interrupted or failed run leaves no half-written file.
    """
    check_output_path(out, folder=True)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not force:
        raise OutputExistsError(f"{out}: exists and is not an empty folder; use --force to write into it")
    with temporary_folder(out) as tmp:
        written = write_sample_ct(tmp, slices=slices, size=size)
        make_folder(out)
        with lifecycle.deferred(), lifecycle.publishing():  # all the files, or none of them
            for path in written:
                os.replace(path, out / path.name)
    typer.echo(f"{out} ({len(written)} files)")

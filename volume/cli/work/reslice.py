"""The work of ``volume reslice`` (declared in :mod:`volume.cli.reslice`): the numbers parsed, the
options built and :func:`volume.jobs.reslice.reslice_folder` called."""

from __future__ import annotations

from pathlib import Path

import typer

from ...errors import UsageError
from ...jobs import reslice as job
from ..app import err, parse_size
from .common import EVENTS

OUTPUT_FORMATS = job.OUTPUT_FORMATS
"""Every file ``-o`` can name, by extension (:mod:`volume.io.formats`, the one registry)."""


def _numbers(text: str | None, option: str, counts: tuple[int, ...]) -> list[float] | None:
    """Parse ``"1"``, ``"1,2,3"`` into floats, checking how many there are."""
    if text is None:
        return None
    parts = [p for p in text.replace(" ", ",").split(",") if p]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise UsageError(f"{option} takes comma-separated numbers, got {text!r}") from None
    if len(values) not in counts:
        raise UsageError(f"{option} takes {' or '.join(map(str, counts))} numbers, got {len(values)} ({text!r})")
    return values


def _spacing(text: str | None) -> tuple[float, ...] | None:
    """--spacing: one value, or width,height,depth (column, row, slice) -> (slice, row, column)."""
    values = _numbers(text, "--spacing", (1, 3))
    if values is None:
        return None
    if any(not v > 0 for v in values):
        raise UsageError(f"--spacing must be positive (mm), got {text!r}")
    return tuple(values if len(values) == 1 else values[::-1])


def _fov(text: str | None) -> tuple[float | None, ...] | None:
    """--fov: in-plane square, width,height, or width,height,depth -> (slice, row, column)."""
    values = _numbers(text, "--fov", (1, 2, 3))
    if values is None:
        return None
    if any(not v > 0 for v in values):
        raise UsageError(f"--fov must be positive (mm), got {text!r}")
    if len(values) == 1:
        return (None, values[0], values[0])
    if len(values) == 2:
        return (None, values[1], values[0])
    return (values[2], values[1], values[0])


def reslice(path: Path, *, out: str | None, slice_no: int | None, spacing: str | None, plane: str | None,
            normal: str | None, thickness: float | None, mode: str, like: Path | None, interp: str,
            fov: str | None, fmt: str, fill: float | None, window: str | None, preset: str | None, series: str | None,
            labels: bool, keep_phi: bool, allow_gaps: bool, force: bool, max_memory: str | None) -> None:
    """``volume reslice``: the options, then the series loaded, resliced and written."""
    normal_v = _numbers(normal, "--normal", (3,))
    options = job.ResliceOptions(
        plane=plane, normal=None if normal_v is None else (normal_v[0], normal_v[1], normal_v[2]), like=like,
        spacing=_spacing(spacing), fov=_fov(fov), thickness=thickness, mode=mode, interp=interp, fill=fill,
        format=fmt, slice_no=slice_no, window=window, preset=preset, labels=labels, keep_phi=keep_phi,
        allow_gaps=allow_gaps, force=force, max_bytes=None if max_memory is None else parse_size(max_memory),
    )
    done = job.reslice_folder(path, out, options, series=series, events=EVENTS)
    err(done.tally.line())
    if done.exit_code():
        raise typer.Exit(done.exit_code())

"""The work of ``volume mip`` (declared in :mod:`volume.cli.mip`): the options built and
:func:`volume.jobs.mip.mip_folder` called, or ``--turntable``."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from ...errors import UsageError
from ...jobs import mip as job
from ...jobs.existing import Tally
from ...ops.window import resolve_window
from ...render.offscreen import TURN_AXES, check_turn, parse_size
from ...render.offscreen import turntable as spin
from ..app import err, progress_bar, warn
from ..app import parse_size as parse_bytes
from .common import EVENTS, check_turntable, load_series, skip_if_exists, write_animation

OUTPUT_FORMATS = job.OUTPUT_FORMATS
"""Every file ``-o`` can name, by extension (:mod:`volume.io.formats`, the one registry)."""


TURNTABLE_MODES = {"max": "mip", "min": "minip"}
"""Projection modes a turntable can turn (VTK's ray caster blends by maximum or minimum)."""


def _turntable(path: Path, series: str | None, mode: str, out: str | Path | None, window: str | None, preset: str | None,
               n: int, axis: str, size: str, allow_gaps: bool, force: bool, max_memory: str | None) -> None:
    """``volume mip --turntable N -o spin.mp4``: a rotating MIP/MinIP, rendered as ``volume render --mode mip``.

    VTK's ray cast (parallel rays, trilinear samples twice per smallest voxel side) was measured
    against an exact projection of the volume resampled in mm for every angle: 7 to 14 times
    faster, no less sharp (docs/benchmarks-web.md).
    """
    if out is None:
        raise UsageError("--turntable needs -o OUT.mp4 (or .webm, .gif)")
    out = Path(out)
    if mode not in TURNTABLE_MODES:
        raise UsageError(f"--turntable turns a max or min projection, not --mode {mode}")
    axis = axis.upper()
    if axis not in TURN_AXES:
        raise UsageError(f"unknown --axis {axis!r}; choose one of {', '.join(TURN_AXES)}")
    resolve_window(window, preset)  # refused before the series is read
    check_turntable(out, n)
    check_turn("anterior", axis)
    wh = parse_size(size)
    skip_if_exists(out, force=force, verb="projected")
    vol = load_series(path, series, 1, allow_gaps, max_memory)
    ramp = None
    if window is not None or preset is not None:  # else the renderer's range of the data
        request = resolve_window(window, preset, vol.meta.get("modality"))
        if request.warning:
            warn(f"series {vol.meta.get('stack_id', '')}: {request.warning}")
        ramp = request.ramp(vol.meta.get("acquisition"))
    with progress_bar("rendering", n) as advance:
        frames = spin(vol, n, axis=axis, mode=TURNTABLE_MODES[mode], window=ramp, size=wh, progress=advance)
    sys.stdout.write(f"{write_animation(frames, out, force, 'mip')}\n")
    err(Tally("projected", done=1).line())


def mip(path: Path, *, plane: str, planes: str | None, mode: str, out: str | None, slab: float | None,
        step: float | None, window: str | None, preset: str | None, cmap: str | None, series: str | None,
        resample: bool, labels: bool, allow_gaps: bool, force: bool, keep_phi: bool, max_memory: str | None,
        turntable: int | None, axis: str, size: str) -> None:
    """``volume mip``: the options, then each stack projected and written (or ``--turntable``)."""
    if turntable is not None:
        _turntable(path, series, mode, out, window, preset, turntable, axis, size, allow_gaps, force, max_memory)
        return
    options = job.MipOptions(
        planes=job.planes_of(plane, planes), mode=mode, slab_mm=slab, step_mm=step, window=window, preset=preset,
        cmap=cmap, resample=resample, labels=labels, allow_gaps=allow_gaps, force=force, keep_phi=keep_phi,
        max_bytes=None if max_memory is None else parse_bytes(max_memory),
    )
    batch = job.mip_folder(path, out, options, series=series, events=EVENTS)
    err(batch.tally.line())
    if batch.exit_code():
        raise typer.Exit(batch.exit_code())

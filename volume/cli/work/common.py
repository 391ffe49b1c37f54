"""What the work of several commands shares: how a job's events are printed, the series a render
shows (``render``, ``view``, ``serve``, ``mesh``, ``mip --turntable``), and the checks and writing
of a turntable."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from ...dicom import load
from ...errors import UsageError
from ...io import formats
from ...io.atomic import check_writable
from ...io.movie import check_movie_support
from ...jobs.events import Events
from ...jobs.existing import Tally, check_outputs
from ...jobs.inputs import read_input
from ..app import err, progress_bar, warn
from ..app import parse_size as parse_bytes


def print_path(path: Path) -> None:
    """A written file on stdout, at once (a listing stopped by Ctrl-C lists exactly what is whole)."""
    sys.stdout.write(f"{path}\n")
    sys.stdout.flush()


EVENTS = Events(warn=warn, status=err, written=print_path, progress=progress_bar)
"""How the command line shows what a job says: warnings and status lines on stderr, written files
on stdout, progress bars on a terminal."""

ANIMATION_SUFFIXES = formats.suffixes("render", "animation")
"""Outputs that hold a turntable: an animated GIF (Pillow) or a movie (imageio-ffmpeg), as the
registry of formats (:mod:`volume.io.formats`) says."""
MAX_TURNTABLE = 720
"""Most frames a turntable may have."""


def check_turntable(output: Path, turntable: int | None) -> None:
    """The output suffix fits --turntable (and the movie extra is there for a movie)."""
    suffix = output.suffix.lower()
    if turntable is None:
        return
    if suffix not in ANIMATION_SUFFIXES:
        raise UsageError(f"{output}: --turntable writes an .mp4 or .webm movie, or an animated .gif")
    if not 1 <= turntable <= MAX_TURNTABLE:
        raise UsageError(f"--turntable must be 1..{MAX_TURNTABLE} frames, got {turntable}")
    if suffix != ".gif":
        check_movie_support(output)


def write_animation(frames, output: Path, force: bool, command: str = "render") -> Path:
    """Write turntable frames as a GIF or a movie: the writer the registry names for the suffix."""
    return formats.writer(command, output)(frames, output, force=force)


def load_series(path: Path, series: str | None, frame: int, allow_gaps: bool, max_memory: str | None = None,
                verb: str = "rendering"):
    """The series to show; ``frame`` is ``--frame`` as typed (1-based, as every number the command
    line takes: :func:`frame_index` turns it into the API's 0-based index); ``max_memory``
    (``--max-memory``) bounds the pixel memory it may claim. A file stands for its series (see
    :func:`volume.cli.work.inputs.scan_input`)."""
    limit = {} if max_memory is None else {"max_bytes": parse_bytes(max_memory)}
    if frame < FIRST_NUMBER:
        raise UsageError(f"--frame {frame}: frames count from {FIRST_NUMBER}")
    found, series = read_input(path, series, verb=verb, events=EVENTS)
    vol = load(found, series, allow_gaps=allow_gaps, **limit)
    if vol.is_4d:
        if frame > vol.n_frames:
            raise UsageError(f"--frame {frame} is out of range: this series has {vol.n_frames} frames (1..{vol.n_frames})")
        warn(f"series {vol.meta.get('stack_id', '')}: 4D, {vol.n_frames} frames: using frame {frame} "
             "(--frame picks another)")
    elif frame != FIRST_NUMBER:
        raise UsageError(f"--frame {frame}: this series is 3D (only frame 1)")
    return vol


FIRST_NUMBER = 1
"""Slice and frame numbers on the command line count from 1, as picture names and viewers do; the
Python API counts from 0 (docs/conventions.md)."""


def frame_index(frame: int) -> int:
    """The API's 0-based index of ``--frame N`` (1-based)."""
    return frame - FIRST_NUMBER


def skip_if_exists(output: Path, *, force: bool, verb: str, series: str | None = None) -> None:
    """End a one-output job (``render``, ``mip --turntable``) here, exit 5, when its output exists
    and no ``--force``: skipped and counted as every job skips (:mod:`volume.jobs.existing`), before
    the series is read when ``-o`` names the output."""
    check_writable(output, force=True)  # a folder in the way is an error, not an output
    existing = check_outputs([output], force=force)
    if existing.all:
        err(f"{f'series {series}: ' if series else ''}skipped, {existing.message()}")
        tally = Tally(verb)
        tally.skip_existing()
        err(tally.line())
        raise typer.Exit(tally.exit_code())

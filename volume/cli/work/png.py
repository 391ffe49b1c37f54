"""The work of ``volume png`` (declared in :mod:`volume.cli.png`): every DICOM image under a path
written as pictures by a pool of workers, listed as they come, with what Ctrl-C left finished."""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from ... import lifecycle
from ...errors import EXIT_OUTPUT_EXISTS, NoDicomError, UsageError
from ...io import formats
from ...io.outputs import FOLDER, output_kind, suffix_of
from ...jobs.existing import FORCE_HINT, Tally
from ...jobs.pictures import DisplayOptions
from ...jobs.png import PngSettings, PngSummary, convert_many, plan_outputs
from ...ops.window import resolve_window
from ...parallel.pool import default_workers
from ..app import err, progress_bar, warn

MTIME_SLACK_S = 0.05
"""Seconds before the run's start still counted as this run's writes (file clocks are coarse)."""

OUTPUT_FORMATS = formats.kinds("png")
"""Files ``-o`` can name (for one input file), by extension (:mod:`volume.io.formats`, the one
registry). Any other file extension is a usage error listing these; a name without one is the
output folder."""


def png(path: Path, *, out: str | None, fmt: str, quality: int, size: int | None, keep_ratio: bool,
        square_pixels: bool, window: str | None, preset: str | None, raw16: bool, gif: bool,
        workers: int | None, force: bool) -> int:
    """``volume png``: checks, the plan of outputs, the pool's results listed; the exit code."""
    if not path.exists():
        raise UsageError(f"{path}: no such file or folder")
    request = resolve_window(window, preset)  # the header's window unless --window/--preset (checked per file)
    if raw16 and fmt == "jpg":
        raise UsageError("--raw16 writes 16-bit PNG; JPEG has 8 bits: drop --format jpg")
    if raw16 and (window is not None or preset is not None):
        raise UsageError("--raw16 writes modality values without windowing: drop --window/--preset")
    if keep_ratio and size is None:
        raise UsageError("--keep-ratio needs --size")
    auto = request.rule == "auto" and (window is not None or preset is not None)
    if out is None:
        out = "."
    kind, out_path = output_kind(out, OUTPUT_FORMATS)
    one_file = kind != FOLDER
    if one_file:  # `volume png ct.dcm -o ct.png`: the picture itself (frames: ct_f0001.png...)
        if not path.is_file():
            raise UsageError(f"{out}: names one picture, but {path} is a folder; give an output folder "
                             f"(-o {out_path.name[: -len(suffix_of(out_path.name, OUTPUT_FORMATS))] or 'png'}/)")
        if kind == "animation" and not gif:
            raise UsageError(f"{out}: a .gif is the animation of a multi-frame file: add --gif (or write .png)")
        if kind != "animation":
            fmt = suffix_of(out_path.name, OUTPUT_FORMATS).lstrip(".")
        if raw16 and fmt == "jpg":
            raise UsageError("--raw16 writes 16-bit PNG; JPEG has 8 bits: write a .png")
    settings = PngSettings(
        display=DisplayOptions(window=request.window, auto=auto, raw16=raw16),
        fmt=fmt, quality=quality, size=size, keep_ratio=keep_ratio, gif=gif, force=force,
        square=square_pixels, gif_always=kind == "animation", preset=request.preset, preset_option="--preset" if preset is not None else "--window",
    )
    stem = str(out_path)[: -len(suffix_of(out_path.name, OUTPUT_FORMATS))] if one_file else ""
    jobs = [(str(path), stem)] if one_file else plan_outputs(path, out_path)
    n_workers = min(workers or default_workers(), max(1, len(jobs)))
    summary = PngSummary()
    started = time.time()
    done = 0  # jobs whose pictures are all listed
    printed: set[str] = set()  # pictures of job ``done`` listed so far
    results = convert_many(jobs, settings, workers=n_workers)
    try:
        with progress_bar("writing pictures", len(jobs)) as advance:
            for result in results:
                summary.add(result)
                with _no_interrupt():  # listed and remembered together, never one of the two
                    for written in result.written:
                        sys.stdout.write(written + "\n")
                        printed.add(written)
                done += 1
                printed.clear()
                advance(1)
    except KeyboardInterrupt:
        # Ctrl-C: stop the workers (whatever they finish is whole: atomic writes), then list
        # every picture this run finished that was not listed yet, and exit 130 as usual.
        results.close()
        for written in finished_pictures(jobs[done:], settings, since=started):
            if written not in printed:
                sys.stdout.write(written + "\n")
        sys.stdout.flush()
        raise
    sys.stdout.flush()
    for note, _ in summary.notes.most_common():
        warn(f"{note}: {_which_series(summary.note_series[note])}")
    for source, message in summary.errors:
        err(f"error: {os.fspath(source)}: {message}")
    tally = summary.tally()
    err(_summary_line(summary, tally))
    if summary.pictures == 0 and summary.kept == 0 and not summary.errors:
        raise NoDicomError(f"{path}: no DICOM images found")
    code = tally.exit_code()
    if code == EXIT_OUTPUT_EXISTS:  # one line saying why nothing was written
        err(f"{out_path}: nothing written, the pictures exist already; {FORCE_HINT}")
    return code


def _summary_line(summary: PngSummary, tally: Tally) -> str:
    """``167 pictures written from 167 files, skipped 3 (2 no pixel data, 1 not DICOM), failed 0``:
    the tail every batch ends with (:class:`volume.jobs.existing.Tally`), files counted."""
    def plural(n: int, word: str) -> str:
        return f"{n} {word}{'s' if n != 1 else ''}"

    head = f"{plural(summary.pictures, 'picture')} written from {plural(summary.files, 'file')}"
    skipped = f"skipped {tally.skipped}"
    if summary.skipped:
        reasons = ", ".join(f"{n} {r}" for r, n in summary.skipped.most_common())
        hint = f"; {FORCE_HINT}" if tally.existing else ""
        skipped += f" ({reasons}{hint})"
    line = f"{head}, {skipped}, failed {tally.failed}"
    if summary.kept_beside:  # frames of a file that exist, beside the ones written now
        line += f"; {plural(summary.kept_beside, 'existing picture')} kept ({FORCE_HINT})"
    return line


SERIES_LISTED = 5
"""Series a warning names one by one; the rest are counted."""


def _which_series(series: dict[str, list[str]]) -> str:
    """``series 5339 FLAIR_ROI in brainix/ROI (22 files); ...``: which series (and where) a warning is about."""
    def files(n: int) -> str:
        return f"{n} file{'s' if n != 1 else ''}"

    parts = []
    for label, sources in list(series.items())[:SERIES_LISTED]:
        folders = {os.path.dirname(src) or "." for src in sources}
        where = os.path.commonpath(sorted(folders)) if len(folders) > 1 else folders.pop()
        parts.append(f"{label or 'unreadable series'} in {where} ({files(len(sources))})")
    rest = list(series.values())[SERIES_LISTED:]
    if rest:
        parts.append(f"and {len(rest)} more series ({files(sum(map(len, rest)))})")
    return "; ".join(parts)


def finished_pictures(jobs: Sequence[tuple[str, str]], settings: PngSettings, *, since: float) -> Iterator[str]:
    """Pictures of ``jobs`` ((source, output stem) pairs) written at or after ``since``, in job order.

    What an interrupted batch finished but did not report: ``STEM.png``, ``STEM_f0001.png``...
    (or ``.jpg``), and ``STEM.gif`` with ``--gif``. Writes are atomic, so every file found is
    whole; older files (kept from an earlier run) are not listed. Each output folder is listed
    once.
    """
    ext = "jpg" if settings.fmt in ("jpg", "jpeg") else "png"
    listings: dict[str, dict[str, float]] = {}
    seen: set[str] = set()
    for _, stem in jobs:
        folder, name = os.path.split(stem)
        if folder not in listings:
            listings[folder] = _recent_files(folder or ".", since - MTIME_SLACK_S)
        pattern = re.compile(re.escape(name) + r"(?:_f\d{4,})?\." + ext + ("|" + re.escape(name) + r"\.gif" if settings.gif else ""))
        for file in sorted(f for f in listings[folder] if pattern.fullmatch(f)):
            path = os.path.join(folder, file)
            if path not in seen:
                seen.add(path)
                yield path


def _recent_files(folder: str, since: float) -> dict[str, float]:
    """``{name: mtime}`` of the regular files in ``folder`` modified at or after ``since``."""
    out: dict[str, float] = {}
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                try:
                    if entry.is_file(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_mtime >= since:
                        out[entry.name] = entry.stat(follow_symlinks=False).st_mtime
                except OSError:
                    continue
    except OSError:
        pass
    return out


@contextlib.contextmanager
def _no_interrupt() -> Iterator[None]:
    """Hold back a stop signal (Ctrl-C, SIGTERM, SIGHUP) for the few statements inside; it is
    raised right after them (:func:`volume.lifecycle.deferred`)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    with lifecycle.deferred():
        yield

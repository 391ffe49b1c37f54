"""Where a conversion's CPU time goes, phase by phase, per file: one process, one thread of work.

Usage::

    python benchmarks/profile_convert.py FOLDER [--format nii] [--rounds 3] [--cprofile out.prof]

Runs ``volume convert``'s work on FOLDER in this process as a pool worker would (the header scan
and every series one after the other: no pool, one compression and one reading thread), with
timers around the named steps of the pipeline (each step's time excludes the steps it calls),
and prints each step's CPU time (``time.process_time``: not disturbed by other jobs waiting for
the CPU, unlike wall time) in all and per file. The **first round** is what a fresh process does
(the imports a step makes on its first call, empty caches); the later rounds (their median) show
the same work with every cache warm. ``--cprofile`` also writes a cProfile of one more round, not
counted (per function; its overhead inflates Python-heavy steps). Works on this checkout and on
older ones (``PYTHONPATH`` at a ``git archive`` of a revision: the header module was
``volume.dicom.scan`` before issue 23).
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import importlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

#: (module, attribute, step): the functions timed, patched where their callers look them up
#: (``HEADERS``: the header module, whichever name it has).
STEPS = (
    ("HEADERS", "iter_files", "list files"),
    ("HEADERS", "read_compiled", "header: open, read, parse (fast reader)"),
    ("HEADERS", "read_fast", "header: open, read, parse (fast reader)"),
    ("HEADERS", "_read_dataset", "header: pydicom (files the fast reader declines)"),
    ("HEADERS", "read_dataset", "header: pydicom (files the fast reader declines)"),
    ("HEADERS", "_frames_from_dataset", "header: records (values to FrameHeader)"),
    ("HEADERS", "_mosaic_frames", "header: Siemens mosaic tiles (CSA)"),
    ("volume.dicom.loader", "group_frames", "group into series and stacks, order, geometry"),
    ("volume.jobs.convert", "select_tasks", "plan output names"),
    ("volume.dicom.source", "vendor_scaling", "vendor scaling (Philips)"),
    ("volume.io.nifti_stream", "decide", "choose the output type"),
    ("volume.dicom.pixels", "_read", "pixels: read, decode, copy, rescale"),
    ("volume.io.nifti_stream", "_store", "pixels: cast into the output type"),
    ("volume.io.nifti_stream", "_store_integers", "pixels: cast into the output type"),
    ("volume.io.nifti.NiftiSink", "write", "NIfTI write (and gzip)"),
    ("volume.io.nifti.NiftiSink", "__exit__", "NIfTI close (and gzip flush)"),
    ("volume.jobs.convert", "sidecar_fields", "sidecar: BIDS fields (vendor headers re-read)"),
    ("volume.jobs.convert", "write_sidecar", "sidecar: JSON write"),
    ("volume.jobs.convert", "write_bval_bvec", "bval/bvec write"),
    ("volume.jobs.convert", "convert_stack", "convert_stack: the rest (checks, names, meta)"),
)


class Timers:
    """Exclusive CPU seconds per step (a step's time minus the timed steps it calls)."""

    def __init__(self) -> None:
        self.total: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._stack: list[list[float]] = []

    def wrap(self, fn: Any, step: str) -> Any:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            frame = [time.process_time(), 0.0]
            self._stack.append(frame)
            try:
                return fn(*args, **kwargs)
            finally:
                self._stack.pop()
                spent = time.process_time() - frame[0]
                self.total[step] += spent - frame[1]
                self.calls[step] += 1
                if self._stack:
                    self._stack[-1][1] += spent
        return timed


def _resolve(path: str) -> Any:
    """A module or a class by dotted name (``volume.io.nifti.NiftiSink``)."""
    try:
        return importlib.import_module(path)
    except ImportError:
        module, _, name = path.rpartition(".")
        return getattr(importlib.import_module(module), name)


def _headers_module() -> str:
    """The header module's name: ``volume.dicom.headers`` (``volume.dicom.scan`` before issue 23)."""
    try:
        importlib.import_module("volume.dicom.headers")
        return "volume.dicom.headers"
    except ImportError:
        importlib.import_module("volume.dicom.scan")
        return "volume.dicom.scan"


def patch(timers: Timers) -> None:
    """Put the timers around :data:`STEPS` and make the work serial and single-threaded."""
    headers = _headers_module()
    for where, attr, step in STEPS:
        owner = sys.modules[headers] if where == "HEADERS" else _resolve(where)
        if hasattr(owner, attr):
            setattr(owner, attr, timers.wrap(getattr(owner, attr), step))
    sys.modules[headers].PARALLEL_MIN_FILES = 10**12
    sys.modules["volume.dicom.pixels"].MAX_READ_THREADS = 1
    stream = sys.modules["volume.io.nifti_stream"]

    def serial_slabs(source: Any, per_slab: int, progress: Any, read: Any = None) -> Any:
        """The writer's slabs read in this thread (the writer reads the next one on a thread)."""
        for start in range(0, source.n_images, per_slab):
            stop = min(start + per_slab, source.n_images)
            if hasattr(stream, "_reader"):  # slabs of values or stored integers (2026-12-07)
                yield start, (read or stream._reader(source, None))(start, stop, progress=progress)
            else:
                values, lo, hi = source.read_slab(start, stop, progress=progress)
                yield start, values, lo, hi

    stream._slabs = serial_slabs


def convert_once(folder: Path, out: Path, fmt: str) -> int:
    """The work of ``volume convert FOLDER -o OUT --workers 1 --threads 1`` in this process; the files written."""
    from volume.dicom import scan  # the function (volume.dicom.loader.scan)
    from volume.jobs.convert import CONVERTED, ConvertOptions, run_tasks, select_tasks

    found = scan(folder, workers=1)
    tasks = select_tasks(found)
    options = ConvertOptions(format=fmt, force=True, threads=1)
    results = run_tasks(tasks, out, options, workers=1)
    return sum(len(r.files) for r in results if r.status == CONVERTED)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--format", default="nii", choices=("nii", "nii.gz"))
    parser.add_argument("--rounds", type=int, default=3, help="rounds after the first (imports) round")
    parser.add_argument("--cprofile", type=Path, help="write a cProfile of the last round here")
    args = parser.parse_args(argv)
    started = time.process_time()
    import volume.jobs.convert  # noqa: F401 - what the convert command imports first

    imported = time.process_time() - started
    timers = Timers()
    patch(timers)
    n_files = sum(1 for p in args.folder.rglob("*") if p.is_file())
    work = Path(tempfile.mkdtemp(prefix="volume-profile-"))
    rounds: list[dict[str, float]] = []
    totals: list[float] = []
    try:
        for r in range(args.rounds + 1):
            timers.total.clear()
            out = work / f"out{r}"
            t0 = time.process_time()
            written = convert_once(args.folder, out, args.format)
            totals.append(time.process_time() - t0)
            rounds.append(dict(timers.total))
            shutil.rmtree(out, ignore_errors=True)
        if args.cprofile:  # one more round, not counted above (the profiler's overhead)
            profile = cProfile.Profile(time.process_time)
            with profile:
                convert_once(args.folder, work / "profiled", args.format)
            profile.dump_stats(args.cprofile)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    steady = rounds[1:] or rounds
    steps = list(dict.fromkeys(step for _, _, step in STEPS))
    first = rounds[0]
    median = {s: statistics.median(r.get(s, 0.0) for r in steady) for s in steps}
    whole = statistics.median(totals[1:] or totals)
    print(f"{args.folder}: {n_files} files, {written} files written ({args.format}); "
          f"load average {os.getloadavg()[0]:.1f}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"imports before the work: {imported:.3f} s CPU")
    print(f"first round (a fresh process): {totals[0]:.3f} s CPU, {totals[0] / n_files * 1e3:.3f} ms per file; "
          f"later rounds (warm caches, median of {len(steady)}): {whole:.3f} s, {whole / n_files * 1e3:.3f} ms per file\n")
    print("| step | first round: CPU s | ms per file | share | later rounds: ms per file |")
    print("|---|---|---|---|---|")
    for step in steps:
        if first.get(step) or median[step]:
            f = first.get(step, 0.0)
            print(f"| {step} | {f:.3f} | {f / n_files * 1e3:.4f} | {f / totals[0]:.0%} | {median[step] / n_files * 1e3:.4f} |")
    rest_first = totals[0] - sum(first.values())
    rest = whole - sum(median.values())
    print(f"| everything else (scan loop, plan, results) | {rest_first:.3f} | {rest_first / n_files * 1e3:.4f} | "
          f"{rest_first / totals[0]:.0%} | {rest / n_files * 1e3:.4f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

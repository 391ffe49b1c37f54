"""Real ``volume`` processes, started in milliseconds: a process that has imported everything forks
one child per command (tests/test_faults.py).

A fresh interpreter takes 0.5-1.5 s to import numpy, pydicom, VTK and the command's work; forking a
process that imported them once takes a few milliseconds, so a test can interrupt dozens of real
commands at dozens of points. Each child is a real process: it gets real signals, runs
``volume.cli.main`` with its own stdout and stderr (files), and ends as the interpreter ends a
program (:func:`finish`: non-daemon threads joined, ``atexit`` handlers run, streams flushed), so
a thread that will not join hangs it as it would hang ``volume``.

Used three ways:

* ``python forked.py serve``: a fork server for the test process, one JSON request per line on
  stdin (``{"op": "run", "job": {...}}`` answers ``{"pid": N}``; ``{"op": "wait", "pid": N,
  "timeout": s}`` answers ``{"code": exit code, "ended": time.monotonic()}`` or ``{"timeout": true}``).
  Started in a mount namespace of its own (``unshare``), it also answers ``{"op": "tmpfs", "cases":
  [...], "root": folder}``: each case's command runs with its output on a small tmpfs of its own,
  and the outcome (exit code, streams, the files left and whether each is whole) comes back;
* imported, for :func:`whole` (is an output file complete?) and :func:`temporaries`.

A job may carry a *trip*, a fault planted in the child before the command runs:

* ``{"kind": "write", "n": 3, "signal": 15, "slow_s": 0.01}``: the n-th ``write()`` into a
  temporary file (any file whose path holds ``.volume-tmp-``, opened by Python code: NIfTI, the
  threaded gzip writer's own thread, PNG, DICOM, tables) sends ``signal`` to the process;
  ``slow_s`` makes every such write slower (a slow disk: queues fill, the main thread waits);
  ``"stuck": true`` makes that write never end, swallowing every interrupt;
* ``{"kind": "timer", "after_s": 0.05, "signal": 2}``: ``signal`` arrives ``after_s`` after the
  first temporary file is made (writers that write from C: VTK meshes, ffmpeg movies);
* ``{"kind": "held", "signal": 9}``: ``signal`` is sent as soon as the first temporary file exists
  (made and held, before a byte of it is written): a moment that a timer cannot hit for writers
  that write from C while holding the interpreter (VTK meshes);
* ``{"kind": "enospc", "n": 2}``: the n-th write into a temporary fails with ENOSPC, half its bytes
  written (a full disk, where no tmpfs can be mounted);
* ``{"kind": "fsize", "bytes": 4096}``: RLIMIT_FSIZE: any write beyond that size fails (EFBIG), in
  C code and in child processes too.

The time a tripped signal was sent is written to ``job["trip_log"]`` (``time.monotonic()``).
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import gzip
import io
import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

TEMP_PREFIX = ".volume-tmp-"
"""volume.io.TEMP_PREFIX, spelled out: this module reads outputs without importing volume."""

FILLER = "filler.bin"
"""What fills a small disk before a case runs on it (not an output)."""

POLL_S = 0.002
"""How often a waiting parent looks for the end of a child."""


# --- the children ---------------------------------------------------------------------------------


def preload() -> None:
    """Import what the commands use, once, before forking (each child then starts in milliseconds)."""
    import importlib

    import numpy  # noqa: F401
    import pydicom  # noqa: F401

    from volume.cli.app import load_commands

    load_commands([])
    for name in ("inspect", "convert", "mip", "reslice", "render", "png", "index", "sample"):
        importlib.import_module(f"volume.cli.work.{name}")
    for name in ("nibabel", "PIL.Image", "PIL.PngImagePlugin", "isal.igzip_threaded", "isal.isal_zlib",
                 "pyarrow.parquet", "SimpleITK", "scipy.ndimage", "vtkmodules.vtkIOPLY", "vtkmodules.vtkIOGeometry",
                 "vtkmodules.vtkCommonMisc", "vtkmodules.util.misc", "imageio_ffmpeg", "multiprocessing",
                 "concurrent.futures.process", "rich.console"):
        with contextlib.suppress(ImportError):
            importlib.import_module(name)


def spawn(job: dict[str, Any]) -> int:
    """Fork a child running ``job`` (see the module docstring); return its pid."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        try:
            code = _child(job)
        except BaseException:  # noqa: BLE001 - a child must never return into its parent's code
            import traceback

            traceback.print_exc()
            code = 99
        finish(code)
    return pid


def _child(job: dict[str, Any]) -> int:
    os.chdir(job.get("cwd") or ".")
    os.environ.update(job.get("env") or {})
    os.environ["VOLUME_NO_PROGRESS"] = "1"
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    for fd, key in ((1, "stdout"), (2, "stderr")):
        target = os.open(job[key], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(target, fd)
        os.close(target)
    # as a fresh interpreter started from a terminal has them
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    for name in job.get("ignore") or ():  # as nohup (SIGHUP) or a background job (SIGINT) starts it
        signal.signal(getattr(signal, name), signal.SIG_IGN)
    if job.get("trip"):
        install_trip(job["trip"], job.get("trip_log"))
    if job.get("ready"):  # a file saying the command handles stop signals now (its start-up is over)
        _announce_ready(job["ready"])
    sys.argv = ["volume", *job["args"]]
    from volume.cli.app import main

    return main(list(job["args"]), as_program=True)


def _announce_ready(marker: str) -> None:
    import volume.lifecycle as lifecycle

    install = lifecycle.handle_stop_signals

    def handle(*args: Any, **kwargs: Any) -> Any:
        restore = install(*args, **kwargs)
        Path(marker).write_text("ready")
        return restore

    lifecycle.handle_stop_signals = handle


def finish(code: int) -> None:
    """End a child as the interpreter ends ``volume``: join non-daemon threads, run ``atexit``,
    flush, exit with ``code``."""
    import atexit
    import gc
    import threading

    gc.freeze()
    try:
        threading._shutdown()  # type: ignore[attr-defined]  # what Py_FinalizeEx calls first
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code if isinstance(code, int) else 1)


def reap(pid: int, timeout: float) -> tuple[int | None, float]:
    """Wait up to ``timeout`` s for child ``pid``: ``(exit code, time.monotonic() at its end)``, or
    ``(None, now)`` when it still runs. A child ended by a signal has code ``-signal``."""
    end = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        now = time.monotonic()
        if done:
            return os.waitstatus_to_exitcode(status), now
        if now >= end:
            return None, now
        time.sleep(POLL_S)


# --- trips: faults planted in a child -------------------------------------------------------------


class _Tripped:
    """A file opened for writing into a temporary: counts writes, trips on the chosen one."""

    def __init__(self, fh: Any, trip: dict[str, Any], log: str | None) -> None:
        self._fh, self._trip, self._log = fh, trip, log

    def write(self, data: Any) -> int:
        trip = self._trip
        trip["count"] = trip.get("count", 0) + 1
        if trip.get("slow_s"):
            time.sleep(trip["slow_s"])
        if trip["kind"] == "enospc" and trip["count"] >= trip["n"]:
            if trip["count"] == trip["n"]:  # half of it reached the disk, as on a disk filling up
                self._fh.write(data[: len(data) // 2])
                with contextlib.suppress(OSError):
                    self._fh.flush()
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        if trip["count"] == trip["n"] and trip.get("stuck"):
            # a write that will not end, and swallows the interrupt (a C call, a library catching
            # everything): only the watchdog can end it
            try:
                _send(trip["signal"], self._log)
            except BaseException:  # noqa: BLE001, S110 - the point of this fault
                pass
            while True:
                try:
                    time.sleep(0.05)
                except BaseException:  # noqa: BLE001, S110
                    pass
        if trip["count"] == trip["n"]:
            _send(trip["signal"], self._log)
        return self._fh.write(data)

    def __enter__(self) -> _Tripped:
        return self

    def __exit__(self, *exc: Any) -> None:
        self._fh.close()

    def __iter__(self) -> Any:
        return iter(self._fh)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fh, name)


def _send(signum: int, log: str | None) -> None:
    if log:
        with builtins.open(log, "w") as fh:  # noqa: PTH123 - not the tripped open
            fh.write(repr(time.monotonic()))
    os.kill(os.getpid(), signum)


def install_trip(trip: dict[str, Any], log: str | None) -> None:
    """Plant ``trip`` (see the module docstring) in this process."""
    kind = trip["kind"]
    if kind == "fsize":
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write beyond the limit fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (trip["bytes"], trip["bytes"]))
        return
    if kind in ("held", "timer"):
        import threading

        import volume.lifecycle as lifecycle

        real_hold = lifecycle.hold

        def hold(path: Any, **kw: Any) -> None:
            real_hold(path, **kw)
            if not trip.get("armed"):
                trip["armed"] = True
                if kind == "held":
                    _send(trip["signal"], log)
                else:
                    threading.Timer(trip["after_s"], _send, (trip["signal"], log)).start()

        lifecycle.hold = hold
        return
    real_open = builtins.open

    def tripped_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        fh = real_open(file, mode, *args, **kwargs)
        if isinstance(file, (str, os.PathLike)) and TEMP_PREFIX in os.fspath(file) and set(mode) & set("wax+"):
            return _Tripped(fh, trip, log)
        return fh

    builtins.open = tripped_open
    io.open = tripped_open  # pathlib opens through io.open


# --- is an output whole? ---------------------------------------------------------------------------


def temporaries(folder: str | os.PathLike[str]) -> list[str]:
    """Every temporary file or folder under ``folder`` (what an interrupted writer could leave)."""
    root = Path(folder)
    return sorted(str(p) for p in root.rglob("*") if p.name.startswith(TEMP_PREFIX)) if root.exists() else []


def whole(path: str | os.PathLike[str]) -> str:
    """Why the output file ``path`` is not whole ('' when it is), read by each format's own reader."""
    p = Path(path)
    name = p.name.lower()
    try:
        if name.endswith(".nii.gz") or name.endswith(".nii"):
            data = gzip.decompress(p.read_bytes()) if name.endswith(".gz") else p.read_bytes()
            return _nifti_whole(data)
        if name.endswith(".json"):
            json.loads(p.read_text(encoding="utf-8"))
            return ""
        if name.endswith((".png", ".jpg", ".jpeg", ".gif", ".tif", ".tiff")):
            from PIL import Image

            with Image.open(p) as im:
                for frame in range(getattr(im, "n_frames", 1)):
                    im.seek(frame)
                    im.load()
            return ""
        if name.endswith(".dcm") or p.parent.name.startswith(TEMP_PREFIX):
            import pydicom

            ds = pydicom.dcmread(p)
            expected = int(ds.Rows) * int(ds.Columns) * int(ds.SamplesPerPixel) * int(ds.BitsAllocated) // 8
            return "" if len(ds.PixelData) >= expected else f"pixel data {len(ds.PixelData)} of {expected} bytes"
        if name.endswith((".stl", ".ply", ".obj")):
            return _mesh_whole(p)
        if name.endswith((".mp4", ".webm")):
            from volume.io.movie import read_movie

            return "" if read_movie(p) else "no frame"
        if name.endswith(".csv"):
            import csv

            rows = list(csv.reader(p.open(newline="", encoding="utf-8")))
            return "" if rows and p.read_bytes().endswith(b"\n") and len({len(r) for r in rows}) == 1 else "ragged"
        if name.endswith(".parquet"):
            import pyarrow.parquet as pq

            pq.read_table(p)
            return ""
        if name.endswith((".bval", ".bvec", ".txt")):
            return "" if p.read_bytes().endswith(b"\n") else "no final newline"
        return ""  # DICOM of `volume sample` (no extension)...
    except Exception as exc:  # noqa: BLE001 - any reader's complaint means "not whole"
        return f"{type(exc).__name__}: {exc}"


def _nifti_whole(data: bytes) -> str:
    import numpy as np

    if len(data) < 352:
        return "shorter than a header"
    dim = np.frombuffer(data, "<i2", 8, 40)
    bitpix = int(np.frombuffer(data, "<i2", 1, 72)[0])
    offset = int(np.frombuffer(data, "<f4", 1, 108)[0])
    voxels = int(np.prod(dim[1 : 1 + dim[0]].astype(np.int64)))
    want = offset + voxels * bitpix // 8
    return "" if len(data) == want else f"{len(data)} of {want} bytes"


def _mesh_whole(p: Path) -> str:
    suffix = p.suffix.lower()
    data = p.read_bytes()
    if suffix == ".stl":
        count = int.from_bytes(data[80:84], "little") if len(data) >= 84 else -1
        return "" if count > 0 and len(data) == 84 + 50 * count else f"{len(data)} bytes for {count} triangles"
    if suffix == ".obj":
        faces, points = data.count(b"\nf "), data.count(b"\nv ")
        return "" if faces and points and data.endswith(b"\n") else f"{points} points, {faces} faces"
    from vtkmodules.vtkIOPLY import vtkPLYReader

    reader = vtkPLYReader()
    reader.SetFileName(os.fspath(p))
    reader.Update()
    header = data[: data.find(b"end_header")].decode("ascii", "replace").split()
    faces = int(header[header.index("face") + 1]) if "face" in header else -1
    got = reader.GetOutput().GetNumberOfCells()
    return "" if faces > 0 and got == faces else f"{got} of {faces} faces"


# --- the fork server ------------------------------------------------------------------------------


def serve() -> None:
    """Answer the test process's requests (module docstring) until stdin closes."""
    preload()
    print(json.dumps({"ready": os.getpid()}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        if request["op"] == "run":
            answer: dict[str, Any] = {"pid": spawn(request["job"])}
        elif request["op"] == "tmpfs":  # (the server runs in a mount namespace of its own)
            answer = {"results": run_on_tmpfs(request["cases"], Path(request["root"]))}
        else:
            code, ended = reap(int(request["pid"]), float(request["timeout"]))
            answer = {"timeout": True} if code is None else {"code": code, "ended": ended}
        print(json.dumps(answer), flush=True)
    os._exit(0)


# --- a small disk: each case on a tmpfs of its own, inside a mount namespace -------------------------


def _mount_tmpfs(folder: Path, size: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0777", "tmpfs", os.fspath(folder)],
                   check=True, capture_output=True)


def run_on_tmpfs(cases: list[dict[str, Any]], root: Path) -> list[dict[str, Any]]:
    """Each case (``args`` with ``{out}`` for its output folder, ``size`` in bytes, ``free``: bytes
    left once a filler takes the rest, ``name``) on a fresh tmpfs: its exit code, stdout, stderr,
    the files left and why any is not whole."""
    results = []
    for case in cases:
        disk = root / case["name"]
        _mount_tmpfs(disk, case["size"])
        if case.get("free") is not None:  # the disk holds something already: this much is left
            (disk / FILLER).write_bytes(bytes(case["size"] - case["free"]))
        try:
            job = {"args": [a.replace("{out}", os.fspath(disk)) for a in case["args"]],
                   "cwd": case.get("cwd") or os.fspath(root), "stdout": os.fspath(root / f"{case['name']}.out"),
                   "stderr": os.fspath(root / f"{case['name']}.err"), "trip": case.get("trip")}
            started = time.monotonic()
            pid = spawn(job)
            code, ended = reap(pid, case.get("timeout", 120))
            if code is None:
                os.kill(pid, signal.SIGKILL)
                reap(pid, 10)
            files = sorted(str(p) for p in disk.rglob("*") if p.is_file() and p.name != FILLER)
            results.append({
                "name": case["name"], "code": code, "stdout": Path(job["stdout"]).read_text(),
                "stderr": Path(job["stderr"]).read_text(), "temporaries": temporaries(disk),
                "files": {f: whole(f) for f in files if TEMP_PREFIX not in f}, "disk": os.fspath(disk),
                "seconds": round(ended - started, 3),
            })
        finally:
            subprocess.run(["umount", os.fspath(disk)], capture_output=True)
    return results


if __name__ == "__main__" and sys.argv[1:] == ["serve"]:
    serve()

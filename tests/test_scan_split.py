"""A header scan shared between this process and forked workers gives the records of a scan in
one process: the same frames in the same order, the same skips; each run of files is read by one
process; a worker that dies leaves its runs to this process; without ``fork`` nothing is split.

Each case runs in a fresh interpreter (one thread, so the pool forks, as ``volume convert`` does)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import real

#: Scans ``FOLDER`` in one process and split (runs of 7 files, 2 processes), compares them, and
#: prints which processes read runs. ``MODE``: "split", "crash" (every worker dies at its first
#: run) or "thread" (another thread runs, so the pool cannot fork).
SCRIPT = textwrap.dedent(
    """
    import os, sys, threading
    from volume.dicom import headers

    folder, mode, log = sys.argv[1], sys.argv[2], sys.argv[3]
    parent = os.getpid()
    one = headers.scan_files([folder], workers=1)

    read_many = headers._read_many
    def spy(paths):
        with open(log, "a") as f:
            f.write(f"{os.getpid()} {len(paths)}\\n")
        if mode == "crash" and os.getpid() != parent:
            os._exit(9)
        return read_many(paths)
    headers._read_many = spy
    headers.PARALLEL_MIN_FILES = 0
    headers.SCAN_RUN_FILES = 7

    stop = threading.Event()
    if mode == "thread":
        threading.Thread(target=stop.wait).start()
    try:
        split = headers.scan_files([folder], workers=2)
    finally:
        stop.set()
    assert [f.__getstate__() for f in split.frames] == [f.__getstate__() for f in one.frames]
    assert [(f.path, f.frame) for f in split.frames] == [(f.path, f.frame) for f in one.frames]
    assert split.skipped == one.skipped and split.n_files == one.n_files
    assert split.skipped_files == one.skipped_files
    print(len(one.frames), sum(one.skipped.values()), parent)
    """
)


def _scan(tmp_path: Path, mode: str) -> tuple[int, int, dict[int, int]]:
    """Frames, skipped files, and files read per process id (the parent's pid is the last value)."""
    tree = tmp_path / "tree"
    for name in ("T1", "T2"):
        src = real("dicom", "brainix", name)
        (tree / name).mkdir(parents=True)
        for f in sorted(src.iterdir())[:12]:
            (tree / name / f.name).write_bytes(f.read_bytes())
    (tree / "notes.txt").write_text("not an image\n")
    (tree / "empty.dcm").write_bytes(b"")
    log = tmp_path / "runs.log"
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tree), mode, str(log)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    frames, skipped, parent = (int(v) for v in done.stdout.split())
    per_pid: dict[int, int] = {}
    for line in (log.read_text() if log.exists() else "").splitlines():
        pid, n = (int(v) for v in line.split())
        per_pid[pid] = per_pid.get(pid, 0) + n
    per_pid[-1] = parent
    return frames, skipped, per_pid


def test_a_split_scan_reads_every_file_once_in_two_processes_and_gives_the_same_records(tmp_path):
    frames, skipped, per_pid = _scan(tmp_path, "split")
    parent = per_pid.pop(-1)
    assert (frames, skipped) == (24, 2)
    assert len(per_pid) == 2 and parent in per_pid, per_pid  # this process and one worker
    assert sum(per_pid.values()) == 26  # every file read once


def test_a_worker_that_dies_leaves_its_runs_to_this_process(tmp_path):
    frames, skipped, per_pid = _scan(tmp_path, "crash")
    parent = per_pid.pop(-1)
    assert (frames, skipped) == (24, 2)
    assert per_pid[parent] == 26  # all read here in the end (the records compared equal above)


def test_without_fork_the_scan_is_not_split(tmp_path):
    frames, skipped, per_pid = _scan(tmp_path, "thread")
    per_pid.pop(-1)
    assert (frames, skipped) == (24, 2)
    assert per_pid == {}  # no run was handed out: the whole list read in this process

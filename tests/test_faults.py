"""Interrupted, killed, preempted, out of disk (issue 21): no hang, no litter, no truncated file
reported as written.

Real processes throughout. Most are forked from a process that imported everything once
(tests/forked.py): dozens of commands interrupted at dozens of points cost seconds, not minutes.
Faults are planted at exact points of each writer (the n-th write into its temporary file, a
moment after the file appears) or sent from outside at chosen moments:

* **stop signals** (SIGINT, SIGTERM, SIGHUP) through every writer: threaded and plain gzip,
  ``.nii``, PNG, DICOM, STL/PLY/OBJ meshes, MP4 movies; each run must end within 2 s of the signal
  with 128 + signal, one line saying so, no temporary file, and every file left whole;
* **kill -9** at such points, then the same command again: only whole outputs, the dead
  process's temporaries swept, those of a live process (or another host) kept;
* **a killed pool**: ``kill -9`` of a ``--workers 2`` conversion leaves no worker and releases the
  caller's pipes; SIGTERM stops the pool within 2 s; a dask client that vanishes gets its running
  task stopped;
* **a full disk**: every writer on a small tmpfs of its own (in a mount namespace), or, where
  none can be mounted, ENOSPC injected at each write (RLIMIT_FSIZE for writers in C);
* **output-path mistakes** for every command (a file on the way, a broken link, a read-only folder,
  a name too long): one line, exit 2;
* **vanished inputs**: "cannot read", naming the input.

No exit 70 anywhere. Times asserted are only the 2 s from a signal to the end of the process; the
start-up of processes gets generous timeouts (a loaded 2-core machine).
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import synth
from forked import TEMP_PREFIX, temporaries, whole

from volume.cli import main

HERE = Path(__file__).resolve().parent

STOP_WITHIN_S = 2.0
"""The issue's bound: from the first stop signal to the end of the process."""

START_TIMEOUT_S = 120.0
"""Generous: a process's start-up on a loaded machine is no fault."""

STOP_LINES = {
    signal.SIGINT: "volume: interrupted; nothing half-written was left",
    signal.SIGTERM: "volume: interrupted by SIGTERM; nothing half-written was left",
    signal.SIGHUP: "volume: interrupted by SIGHUP; nothing half-written was left",
}
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
#: What never belongs on stderr: tracebacks, bugs, VTK's and Python's own lines.
NEVER_ON_STDERR = ("Traceback", "internal error", "Exception ignored", "ERR|", "WARN|", "Warning:")


# --- the fork server --------------------------------------------------------------------------------


class ForkServer:
    """tests/forked.py serving: ``run(job)`` starts a command, ``wait(pid)`` its end."""

    def __init__(self) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
        #: a mount namespace of its own, where it may mount a small tmpfs (None: it cannot)
        self.namespace = _namespace_prefix()
        self.proc = subprocess.Popen([*(self.namespace or []), sys.executable, str(HERE / "forked.py"), "serve"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=HERE)
        self.pid = json.loads(self._line())["ready"]

    def _line(self) -> str:
        line = self.proc.stdout.readline()
        assert line, "the fork server ended"
        return line

    def _ask(self, request: dict) -> dict:
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return json.loads(self._line())

    def run(self, args: list, folder: Path, *, trip: dict | None = None, cwd: Path | None = None,
            ignore: list[str] = ()) -> Job:
        folder.mkdir(parents=True, exist_ok=True)
        job = {"args": [str(a) for a in args], "cwd": str(cwd or folder), "stdout": str(folder / "stdout.txt"),
               "stderr": str(folder / "stderr.txt"), "trip": trip, "trip_log": str(folder / "tripped.txt"),
               "ignore": list(ignore), "ready": str(folder / "ready.txt")}
        return Job(self, self._ask({"op": "run", "job": job})["pid"], job)

    def wait(self, pid: int, timeout: float) -> dict:
        return self._ask({"op": "wait", "pid": pid, "timeout": timeout})

    def on_tmpfs(self, cases: list[dict], root: Path) -> list[dict]:
        """Run each case with its output on a small tmpfs (tests/forked.py: run_on_tmpfs)."""
        assert self.namespace is not None
        return self._ask({"op": "tmpfs", "cases": cases, "root": str(root)})["results"]

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


class Job:
    """A command forked by the server: its pid, its end, its streams, when a trip fired."""

    def __init__(self, server: ForkServer, pid: int, job: dict) -> None:
        self.server, self.pid, self.job = server, pid, job
        self.code: int | None = None
        self.ended = 0.0

    def ready(self, timeout: float = START_TIMEOUT_S) -> None:
        """Wait until the command handles stop signals (its start-up is over)."""
        marker, end = Path(self.job["ready"]), time.monotonic() + timeout
        while not marker.exists():
            assert time.monotonic() < end, "the command never started"
            time.sleep(0.001)

    def wait(self, timeout: float = START_TIMEOUT_S) -> int:
        answer = self.server.wait(self.pid, timeout)
        if answer.get("timeout"):
            os.kill(self.pid, signal.SIGKILL)
            self.server.wait(self.pid, 30)
            pytest.fail(f"{self.job['args']} still ran after {timeout} s (a hang); stderr: {self.stderr!r}")
        self.code, self.ended = answer["code"], answer["ended"]
        return self.code

    @property
    def stdout(self) -> str:
        return Path(self.job["stdout"]).read_text()

    @property
    def stderr(self) -> str:
        return Path(self.job["stderr"]).read_text()

    @property
    def tripped_at(self) -> float | None:
        log = Path(self.job["trip_log"])
        return float(log.read_text()) if log.exists() and log.read_text() else None

    def listed(self) -> set[Path]:
        cwd = Path(self.job["cwd"])
        return {(cwd / line).resolve() for line in self.stdout.splitlines() if line.strip()}


@pytest.fixture(scope="module")
def forks():
    server = ForkServer()
    yield server
    server.close()


# --- data ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ct(tmp_path_factory) -> Path:
    """A CT phantom (volume sample's: a bone shell, so meshes and renderings have a surface) of 80
    axial slices of 192 x 192, with noise of +-40 HU: it compresses as real CT does, in many blocks."""
    import numpy as np
    import pydicom

    from volume.sample import write_sample_ct

    folder = tmp_path_factory.mktemp("ct") / "ct"
    rng = np.random.default_rng(21)
    for path in write_sample_ct(folder, slices=80, size=192):
        ds = pydicom.dcmread(path)
        noisy = ds.pixel_array.astype(np.int32) + rng.integers(-40, 41, size=ds.pixel_array.shape)
        ds.PixelData = noisy.astype(np.int16).tobytes()
        ds.save_as(path)
    return folder


@pytest.fixture(scope="module")
def batch(tmp_path_factory) -> Path:
    """Three series (converted one per worker in a pool)."""
    root = tmp_path_factory.mktemp("batch") / "src"
    for number in (1, 2, 3):
        synth.write_series(root / f"s{number}", shape=(12, 48, 40), series_number=number, seed=number,
                           description=f"series{number}")
    return root


def on_disk(folder: Path) -> set[Path]:
    return {p.resolve() for p in folder.rglob("*") if p.is_file() and TEMP_PREFIX not in str(p)} if folder.exists() else set()


def assert_only_whole_files(folder: Path, job: Job | None = None) -> set[Path]:
    """No temporary file; every file whole; every file listed on stdout is there."""
    assert temporaries(folder) == [], f"left behind: {temporaries(folder)}"
    files = on_disk(folder)
    broken = {str(f): why for f in files if (why := whole(f))}
    assert broken == {}, broken
    if job is not None:
        missing = {p for p in job.listed() if p not in files}
        assert missing == set(), f"listed but not there: {missing}"
    return files


def assert_stopped(job: Job, signum: int, folder: Path, *, sent: float | None = None) -> None:
    """Ended within 2 s of the signal with 128 + signal and its one line, nothing left half-written
    (or, when the command finished before the signal, exit 0 and whole files)."""
    code = job.wait()
    err = job.stderr
    for bad in NEVER_ON_STDERR:
        assert bad not in err, err
    if code == 0:  # done before the signal came (or after: the process was ending with its own code)
        assert_only_whole_files(folder, job)
        assert job.listed(), "exit 0 and nothing written"
        return
    assert code == 128 + signum, f"exit {code} after {signal.Signals(signum).name}; stderr: {err!r}"
    at = job.tripped_at if sent is None else sent
    assert at is not None
    assert job.ended - at <= STOP_WITHIN_S, f"ended {job.ended - at:.2f} s after the signal"
    lines = [line for line in err.splitlines() if line.startswith("volume: interrupted")]
    assert lines == [STOP_LINES[signum]], err
    assert_only_whole_files(folder, job)


# --- stop signals through every writer -------------------------------------------------------------

#: Writers: argv (source, output folder), and the points where a stop signal is planted: the n-th
#: write into a temporary file (``slow_s`` a slow disk), or a moment after the file appears (C
#: writers). Conversions read the big phantom (many gzip blocks), the others the small one.
WRITERS = {
    "nii.gz threaded": (lambda src, out: ["convert", src, "-o", out, "--threads", "2"],
                        [{"kind": "write", "n": n, "slow_s": 0.02} for n in (1, 4, 8)]),
    "nii.gz plain": (lambda src, out: ["convert", src, "-o", out, "--threads", "1"],
                     [{"kind": "write", "n": n} for n in (1, 3, 6)]),
    "nii": (lambda src, out: ["convert", src, "-o", out, "-f", "nii"],
            [{"kind": "write", "n": n} for n in (1, 2, 3)]),  # header, voxels, sidecar
    "png": (lambda src, out: ["png", src, "-o", out, "--workers", "1"],
            [{"kind": "write", "n": n} for n in (1, 9, 40)]),
    "dicom": (lambda src, out: ["reslice", src, "--spacing", "2", "--format", "dcm", "-o", out / "series"],
              [{"kind": "write", "n": n} for n in (1, 2000, 6000)]),  # pydicom writes element by element
    "stl": (lambda src, out: ["mesh", src, "--level", "500", "-o", out / "m.stl"],
            [{"kind": "held"}, *[{"kind": "timer", "after_s": t} for t in (0.005, 0.02)]]),
    "ply": (lambda src, out: ["mesh", src, "--level", "500", "-o", out / "m.ply"],
            [{"kind": "held"}, *[{"kind": "timer", "after_s": t} for t in (0.005, 0.02)]]),
    "obj": (lambda src, out: ["mesh", src, "--level", "500", "-o", out / "m.obj"],
            [{"kind": "held"}, *[{"kind": "timer", "after_s": t} for t in (0.02, 0.05)]]),
    "mp4": (lambda src, out: ["render", src, "--mode", "mip", "--size", "64x64", "--turntable", "4", "-o", out / "t.mp4"],
            [{"kind": "held"}, *[{"kind": "timer", "after_s": t} for t in (0.03, 0.1)]]),
}


@pytest.mark.parametrize("writer", list(WRITERS))
def test_stop_signals_at_every_point_of_every_writer(forks, ct, small_ct, tmp_path, writer):
    """Each point gets one of the three signals in turn: every writer sees each of them."""
    argv, points = WRITERS[writer]
    _needs_extras(writer)
    src = ct if writer.startswith("nii") else small_ct
    stopped = 0
    for k, (point, signum) in enumerate(zip(points, SIGNALS, strict=True)):
        out = tmp_path / f"run{k}"
        job = forks.run(argv(src, out / "out"), out, trip={**point, "signal": int(signum)})
        assert_stopped(job, signum, out / "out")
        if point["kind"] == "write":  # the signal comes at that write: before the output is whole
            assert job.code == 128 + signum, f"{writer}: the planted signal never stopped it ({point})"
        stopped += job.code == 128 + signum
        if point["kind"] == "held":  # the signal comes as the temporary file is made: before it is whole
            assert job.code == 128 + signum, f"{writer}: the planted signal never stopped it ({point})"
    # a moment after the temporary file appears may come after a writer in C is done, on a busy
    # machine: those two points are checked by assert_stopped alone
    assert stopped, f"{writer}: no planted signal came while it wrote"


def test_ctrl_c_while_the_threaded_gzip_writer_closes(forks, ct, tmp_path):
    """The hang of the issue: the main thread waits in the threaded writer's close (its queues full,
    the disk slow) when Ctrl-C comes; then SIGTERM at the same point."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        out = tmp_path / signal.Signals(signum).name
        # the last blocks are written while the main thread waits in close(): signal on the last write
        job = forks.run(["convert", ct, "-o", out / "out", "--threads", "2"], out,
                        trip={"kind": "write", "n": 8, "slow_s": 0.1, "signal": int(signum)})
        assert_stopped(job, signum, out / "out")
        assert job.code == 128 + signum


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_stop_signals_from_outside_at_any_moment(forks, ct, tmp_path, signum):
    """Signals sent by another process at moments spread over a whole conversion."""
    for k, delay in enumerate((0.0, 0.05, 0.15, 0.3)):
        out = tmp_path / f"run{k}"
        job = forks.run(["convert", ct, "-o", out / "out"], out)
        job.ready()
        time.sleep(delay)
        sent = time.monotonic()
        os.kill(job.pid, signum)
        assert_stopped(job, signum, out / "out", sent=sent)


def test_a_second_signal_changes_nothing(forks, ct, tmp_path):
    """The first signal decides (its code, its line); one sent while the job unwinds is ignored."""
    out = tmp_path / "run"
    job = forks.run(["convert", ct, "-o", out / "out"], out)
    job.ready()
    time.sleep(0.05)
    sent = time.monotonic()
    os.kill(job.pid, signal.SIGINT)
    os.kill(job.pid, signal.SIGTERM)
    os.kill(job.pid, signal.SIGINT)
    assert_stopped(job, signal.SIGINT, out / "out", sent=sent)


def test_a_job_stuck_after_the_signal_is_ended_by_the_watchdog(forks, ct, tmp_path):
    """A write that will not end and swallows the interrupt: 1.5 s after the signal the watchdog
    removes the temporary file, prints the line and ends the process with the signal's code."""
    out = tmp_path / "run"
    job = forks.run(["convert", ct, "-o", out / "out", "--threads", "1"], out,
                    trip={"kind": "write", "n": 2, "signal": int(signal.SIGTERM), "stuck": True})
    assert_stopped(job, signal.SIGTERM, out / "out")
    assert job.code == 128 + signal.SIGTERM
    assert job.ended - job.tripped_at >= 1.0  # (the watchdog, not the unwinding, ended it)


def test_a_signal_that_is_ignored_stays_ignored(forks, ct, tmp_path):
    """``nohup`` ignores SIGHUP for its command: a SIGHUP in the middle of the write changes nothing."""
    out = tmp_path / "run"
    job = forks.run(["convert", ct, "-o", out / "out", "--threads", "1"], out, ignore=["SIGHUP"],
                    trip={"kind": "write", "n": 1, "signal": int(signal.SIGHUP)})
    assert job.wait() == 0, job.stderr
    assert job.tripped_at is not None  # the signal did come
    assert {p.name for p in assert_only_whole_files(out / "out", job)} == {"2_Phantom_head.nii.gz", "2_Phantom_head.json"}


# --- kill -9, then the same command again ------------------------------------------------------------

#: Writers killed outright at a point of their write, then run again: argv, the point, and the
#: option of the second run (``--skip-existing`` resumes a conversion).
KILLED = {
    "nii.gz threaded": (lambda src, out: ["convert", src, "-o", out, "--threads", "2"],
                        {"kind": "write", "n": 4, "slow_s": 0.02}, ["--skip-existing"]),
    "nii.gz sidecar": (lambda src, out: ["convert", src, "-o", out, "--threads", "1"],
                       {"kind": "write", "n": 7}, ["--skip-existing"]),
    "dicom": (lambda src, out: ["reslice", src, "--spacing", "2", "--format", "dcm", "-o", out / "series"],
              {"kind": "write", "n": 3000}, []),
    "png": (lambda src, out: ["png", src, "-o", out, "--workers", "1"], {"kind": "write", "n": 155}, []),
    "stl": (lambda src, out: ["mesh", src, "--level", "500", "-o", out / "m.stl"], {"kind": "held"}, []),
}


@pytest.mark.parametrize("writer", list(KILLED))
def test_kill_9_and_a_rerun_leave_exactly_the_whole_outputs(forks, ct, small_ct, tmp_path, writer):
    argv, point, again = KILLED[writer]
    ct = ct if writer.startswith("nii") else small_ct
    reference = tmp_path / "reference"
    done = forks.run(argv(ct, reference / "out"), reference)
    assert done.wait() == 0, done.stderr
    expected = {p.relative_to(reference / "out") for p in on_disk(reference / "out")}

    out = tmp_path / "killed"
    job = forks.run(argv(ct, out / "out"), out, trip={**point, "signal": int(signal.SIGKILL)})
    assert job.wait() == -signal.SIGKILL
    left = temporaries(out / "out")
    assert left, "killed while writing: its temporary file is there"
    assert all(f"_{job.pid}_" in Path(t).name for t in left)  # named by the process that made it

    rerun = forks.run(argv(ct, out / "out") + again, tmp_path / "rerun")
    assert rerun.wait() == 0, rerun.stderr
    files = assert_only_whole_files(out / "out", rerun)
    assert {p.relative_to((out / "out").resolve()) for p in files} == expected


def test_the_sweep_removes_only_temporaries_of_dead_processes_of_this_host(forks, ct, tmp_path):
    from volume.io.atomic import host_name

    out = tmp_path / "out"
    out.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = host_name()
    planted = {
        f"{TEMP_PREFIX}{host}_{dead.pid}_aaaa.nii.gz": False,       # dead, this host: swept
        f"{TEMP_PREFIX}{host}_{os.getpid()}_bbbb.nii.gz": True,     # alive (this test): kept
        f"{TEMP_PREFIX}{host}_{forks.pid}_cccc.json": True,         # alive (the fork server): kept
        f"{TEMP_PREFIX}elsewhere-node7_{dead.pid}_dddd.nii": True,  # another host's: cannot tell, kept
        f"{TEMP_PREFIX}eeee.nii.gz": True,                          # an older volume's name: kept
    }
    for name in planted:
        (out / name).write_bytes(b"half a file")
    folder = out / f"{TEMP_PREFIX}{host}_{dead.pid}_ffff"  # a dead DICOM writer's temporary folder
    folder.mkdir()
    (folder / "IM0001.dcm").write_bytes(b"DICM")
    job = forks.run(["convert", ct, "-o", out], tmp_path / "run")
    assert job.wait() == 0, job.stderr
    left = {Path(t).name for t in temporaries(out)}
    assert left == {name for name, kept in planted.items() if kept}


# --- a pool whose parent is killed; a dask client that vanishes -----------------------------------------

#: Runs the CLI in a fresh interpreter after PRELUDE (argv[1]: the CLI arguments as JSON).
RUNNER = """
import json, sys
{prelude}
from volume.cli.app import run
sys.argv = ["volume", *json.loads(sys.argv[1])]
run()
"""

#: Every series' image writer, in the workers: its temporary file on disk, a marker naming the
#: worker's pid, then a long wait between images (a big series being written).
SLOW_SERIES = """
import os, time
from pathlib import Path
import volume.jobs.convert as NS  # where convert_stack looks the writer up
from volume.io.atomic import atomic_output
def _writer(stack, path, **kw):
    with atomic_output(path) as tmp:
        tmp.write_bytes(b"half a file")
        Path({markers!r}, str(os.getpid())).write_text("writing")
        for _ in range(1200):
            time.sleep(0.05)
            if kw.get("progress") is not None:
                kw["progress"](0)
    raise AssertionError("never reached: the test stops the run")
NS.convert_image = _writer
"""


def start(args: list, prelude: str = "") -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", RUNNER.format(prelude=prelude), json.dumps([str(a) for a in args])],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "VOLUME_NO_PROGRESS": "1"},
        start_new_session=True,  # its own process group: the test signals exactly whom it means
    )


#: A writer torn down mid-write by a stop signal raises an error of its own while the job unwinds.
TORN_WRITER = """
import signal
from volume import lifecycle
import volume.jobs.convert as NS
from volume.io.atomic import atomic_output
def _writer(stack, path, **kw):
    with atomic_output(path) as tmp:
        tmp.write_bytes(b"half a file")
        try:
            raise lifecycle.Interrupted(signal.SIGHUP)
        except KeyboardInterrupt:
            raise ValueError("write to closed file")
NS.convert_image = _writer
"""


def test_an_error_while_unwinding_after_a_stop_is_the_stop(ct, tmp_path):
    """After a stop signal, what a torn-down writer raises is not reported as a bug: the stop's own
    line and code, and nothing half-written (this was a rare ``internal error: ValueError`` under load)."""
    out = tmp_path / "out"
    proc = start(["convert", ct, "-o", out, "--workers", "1"], TORN_WRITER)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGHUP, stderr
    assert "internal error" not in stderr
    assert "interrupted by SIGHUP; nothing half-written was left" in stderr
    assert temporaries(out) == []


def wait_for_workers(markers: Path, proc: subprocess.Popen, n: int) -> list[int]:
    end = time.monotonic() + START_TIMEOUT_S
    while len(list(markers.iterdir())) < n:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < end, "the workers never started writing"
        time.sleep(0.02)
    return sorted(int(p.name) for p in markers.iterdir())


def running(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its reaper does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return state not in ("Z", "X")


def gone_within(pids: list[int], seconds: float) -> list[int]:
    end = time.monotonic() + seconds
    while any(running(p) for p in pids) and time.monotonic() < end:
        time.sleep(0.01)
    return [p for p in pids if running(p)]


def test_a_killed_pool_leaves_no_worker_and_releases_the_pipes(batch, tmp_path):
    out, markers = tmp_path / "out", tmp_path / "markers"
    markers.mkdir()
    proc = start(["convert", batch, "-o", out, "--workers", "2"], SLOW_SERIES.format(markers=str(markers)))
    workers = wait_for_workers(markers, proc, 2)
    assert len(temporaries(out)) == 2
    killed = time.monotonic()
    proc.kill()  # kill -9: no clean-up of its own
    stdout, stderr = proc.communicate(timeout=30)  # returns once nobody holds its stdout and stderr
    released = time.monotonic() - killed
    assert released <= STOP_WITHIN_S, f"the pipes were held {released:.2f} s after the kill"
    assert gone_within(workers, STOP_WITHIN_S) == []
    assert temporaries(out) == []  # each worker removed its own temporary file
    assert "Traceback" not in stderr


def test_sigterm_stops_a_pool_within_two_seconds(batch, tmp_path):
    out, markers = tmp_path / "out", tmp_path / "markers"
    markers.mkdir()
    proc = start(["convert", batch, "-o", out, "--workers", "2"], SLOW_SERIES.format(markers=str(markers)))
    workers = wait_for_workers(markers, proc, 2)
    sent = time.monotonic()
    proc.terminate()
    stdout, stderr = proc.communicate(timeout=30)
    assert time.monotonic() - sent <= STOP_WITHIN_S
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    assert STOP_LINES[signal.SIGTERM] in stderr.splitlines() and "Traceback" not in stderr
    assert gone_within(workers, 0.5) == []
    assert temporaries(out) == [] and on_disk(out) == set()


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    import warnings

    with warnings.catch_warnings():  # "port 8787 in use" when another cluster runs on this machine
        warnings.simplefilter("ignore", UserWarning)
        local = distributed.LocalCluster(n_workers=1, processes=True, threads_per_worker=1, dashboard_address=None,
                                         host="127.0.0.1")
    with local, distributed.Client(local, set_as_default=False) as client:
        yield local.scheduler_address, client


def test_the_task_of_a_vanished_dask_client_stops(batch, cluster, tmp_path):
    """kill -9 of ``convert --scheduler``: nobody sets the stop event, yet the worker stops the task
    (the scheduler released it) and its temporary file goes."""
    address, client = cluster
    out, markers = tmp_path / "out", tmp_path / "markers"
    markers.mkdir()
    client.run(exec, "import volume.jobs.convert as NS\nNS._faults_real = NS.convert_image\n"
               + SLOW_SERIES.format(markers=str(markers)), {})
    try:
        proc = start(["convert", batch / "s1", "-o", out, "--scheduler", address])
        wait_for_workers(markers, proc, 1)
        assert len(temporaries(out)) == 1
        proc.kill()
        proc.communicate(timeout=30)
        end = time.monotonic() + 30  # the scheduler notices the lost client; the task checks twice a second
        while temporaries(out) and time.monotonic() < end:
            time.sleep(0.05)
        assert temporaries(out) == [], "the task of the vanished client went on writing"
        assert on_disk(out) == set()
    finally:
        client.run(exec, "import volume.jobs.convert as NS\nNS.convert_image = NS._faults_real\n", {})


# --- a full disk: every writer ------------------------------------------------------------------------

#: Every writer, with its output on a disk too small for it: argv ({out}: the small disk), whether
#: it writes several files (a batch: one line per failed item, what fitted stays, listed), and the
#: room left on the disk (a page: the write fails half-way; none: at once, for outputs under a page).
PAGE = 4096
FULL_DISK = {
    "convert nii.gz threaded": (["convert", "{src}", "-o", "{out}/c", "--threads", "2"], True, PAGE),
    "convert nii.gz plain": (["convert", "{src}", "-o", "{out}/c", "--threads", "1"], True, PAGE),
    "convert nii": (["convert", "{src}", "-o", "{out}/c", "-f", "nii"], True, PAGE),
    "convert batch": (["convert", "{batch}", "-o", "{out}/c", "--workers", "1"], True, None),
    "mip png": (["mip", "{src}", "-o", "{out}/m.png"], False, 0),
    "mip dicom": (["mip", "{src}", "-o", "{out}/m.dcm"], False, PAGE),
    "mip nifti": (["mip", "{src}", "-o", "{out}/m.nii.gz"], False, 0),
    "reslice dicom": (["reslice", "{src}", "--spacing", "3", "--format", "dcm", "-o", "{out}/series"], False, PAGE),
    "reslice nifti": (["reslice", "{src}", "--spacing", "3", "-o", "{out}/r.nii.gz"], False, PAGE),
    "reslice png": (["reslice", "{src}", "--plane", "coronal", "-o", "{out}/pictures"], True, PAGE),
    "png": (["png", "{src}", "-o", "{out}/p", "--workers", "1"], True, PAGE),
    "index csv": (["index", "{src}", "-o", "{out}/i.csv", "--workers", "1"], False, PAGE),
    "index parquet": (["index", "{src}", "-o", "{out}/i.parquet", "--workers", "1"], False, PAGE),
    "mesh stl": (["mesh", "{src}", "--level", "500", "-o", "{out}/m.stl"], False, PAGE),
    "mesh ply": (["mesh", "{src}", "--level", "500", "-o", "{out}/m.ply"], False, PAGE),
    "mesh obj": (["mesh", "{src}", "--level", "500", "-o", "{out}/m.obj"], False, PAGE),
    "render png": (["render", "{src}", "--size", "64x64", "-o", "{out}/r.png"], False, 0),
    "render gif": (["render", "{src}", "--size", "48x48", "--turntable", "2", "-o", "{out}/r.gif"], False, 0),
    "render mp4": (["render", "{src}", "--mode", "mip", "--size", "48x48", "--turntable", "2", "-o", "{out}/r.mp4"], False, 0),
    "sample": (["sample", "{out}/s", "--slices", "8", "--size", "64"], False, PAGE),
    "bids": (["bids", "{src}", "-o", "{out}/b", "--subject", "01"], True, PAGE),
}

#: Optional extras a case needs (the test skips without them; CI installs them all).
EXTRAS = {"mp4": "imageio_ffmpeg", "movie": "imageio_ffmpeg", "parquet": "pyarrow"}


def _needs_extras(case: str) -> None:
    for word, module in EXTRAS.items():
        if word in case:
            pytest.importorskip(module, reason=f"{case} needs {module} (an optional extra)")


SMALL_DISK_BYTES = 4 * PAGE
"""The small disk's size; a file of this size fills it first (see FULL_DISK: the room left)."""

#: How a full disk is said: ENOSPC on a tmpfs or injected; EFBIG where the file-size limit stands in.
FULL_DISK_WORDS = ("No space left on device", "File too large")


@pytest.fixture(scope="module")
def small_ct(tmp_path_factory) -> Path:
    """The CT phantom, smaller (40 slices of 128 x 128, noisy): every writer once, quickly."""
    import numpy as np
    import pydicom

    from volume.sample import write_sample_ct

    folder = tmp_path_factory.mktemp("small") / "ct"
    rng = np.random.default_rng(7)
    for path in write_sample_ct(folder, slices=40, size=128):
        ds = pydicom.dcmread(path)
        noisy = ds.pixel_array.astype(np.int32) + rng.integers(-40, 41, size=ds.pixel_array.shape)
        ds.PixelData = noisy.astype(np.int16).tobytes()
        ds.save_as(path)
    return folder


def _namespace_prefix() -> list[str] | None:
    """A command prefix under which a program may mount a tmpfs of its own (a private mount
    namespace: as root, or in a user namespace), or None."""
    unshare = shutil.which("unshare")
    if unshare is None or not sys.platform.startswith("linux"):
        return None
    for prefix in ([unshare, "-m", "--propagation", "private"], [unshare, "-r", "-m"]):
        probe = subprocess.run([*prefix, "sh", "-c", "mount -t tmpfs -o size=4096 tmpfs /mnt 2>/dev/null || "
                                "mount -t tmpfs -o size=4096 tmpfs \"$TMPDIR\""], capture_output=True,
                               env={**os.environ, "TMPDIR": tempfile.mkdtemp()})
        if probe.returncode == 0:
            return prefix
    return None


def _expand(args: list[str], ct: Path, batch: Path, out: str) -> list[str]:
    return [a.format(src=ct, batch=batch, out=out) for a in args]


@pytest.fixture(scope="module")
def full_disk_runs(small_ct, batch, tmp_path_factory, forks) -> dict[str, dict]:
    """Every writer of FULL_DISK on a small tmpfs (each its own), in one mount namespace; where no
    tmpfs can be mounted, ENOSPC injected at the first write into a temporary file (RLIMIT_FSIZE for
    writers in C: VTK, ffmpeg, Arrow)."""
    ct = small_ct
    root = tmp_path_factory.mktemp("disks")
    if forks.namespace is None:
        return _injected_full_disk(ct, batch, root, forks)
    # the batch's first series fits, the next ones do not
    first = forks.run(["convert", batch / "s1", "-o", root / "first"], root / "first-run")
    assert first.wait() == 0
    room = sum(-(-p.stat().st_size // PAGE) * PAGE for p in on_disk(root / "first")) + PAGE
    cases = []
    for name, (args, _, free) in FULL_DISK.items():
        cases.append({"name": name.replace(" ", "-"), "args": _expand(args, ct, batch, "{out}"),
                      "size": SMALL_DISK_BYTES + (room if free is None else 0),
                      "free": room if free is None else free})
    results = {r["name"].replace("-", " "): r for r in forks.on_tmpfs(cases, root)}
    for r in results.values():
        r["how"] = "tmpfs"
    return results


def _injected_full_disk(ct: Path, batch: Path, root: Path, forks: ForkServer) -> dict[str, dict]:
    in_c = ("mesh", "render mp4", "render webm", "index parquet")
    results = {}
    for name, (args, _, _) in FULL_DISK.items():
        disk = root / name.replace(" ", "-")
        trip = ({"kind": "fsize", "bytes": SMALL_DISK_BYTES} if name.startswith(in_c)
                else {"kind": "enospc", "n": 4 if name == "convert batch" else 1})
        job = forks.run(_expand(args, ct, batch, str(disk)), root / f"{disk.name}-run", trip=trip)
        code = job.wait()
        files = on_disk(disk)
        results[name] = {"code": code, "stdout": job.stdout, "stderr": job.stderr, "temporaries": temporaries(disk),
                         "files": {str(f): whole(f) for f in files}, "disk": str(disk), "how": "injected"}
    return results


@pytest.mark.parametrize("writer", list(FULL_DISK))
def test_every_writer_on_a_full_disk(full_disk_runs, writer):
    """Exit 1, a line per output that did not fit saying so and naming it, nothing partial left,
    every file listed is whole (what fitted before the disk filled)."""
    _needs_extras(writer)
    run = full_disk_runs[writer]
    _, batch, _ = FULL_DISK[writer]
    err = run["stderr"]
    assert run["code"] == 1, f"exit {run['code']} ({run['how']}); stderr: {err!r}"
    for bad in NEVER_ON_STDERR:
        assert bad not in err, err
    problems = [line for line in err.splitlines() if line.strip() and not line.startswith("volume: warning:")
                and not line.startswith(("volume: converted", "volume: projected"))
                and " written from " not in line]
    assert problems, err
    assert all(line.startswith("volume: ") and any(w in line for w in FULL_DISK_WORDS) for line in problems), problems
    if not batch:
        assert len(problems) == 1, problems
        assert run["disk"] in problems[0], f"the line names the output: {problems[0]!r}"
    assert run["temporaries"] == []
    assert {f: why for f, why in run["files"].items() if why} == {}
    listed = {line.strip() for line in run["stdout"].splitlines() if line.strip()}
    assert listed <= set(run["files"]), listed - set(run["files"])
    if writer == "convert batch" and run["how"] == "tmpfs":  # what fitted is there, whole and listed
        assert any(name.endswith("1_series1.nii.gz") for name in listed), listed


# --- output-path mistakes, in every command ----------------------------------------------------------

#: Every command's output, given the output path ``out`` (a folder, or the folder a file goes in).
OUTPUT_COMMANDS = {
    "convert": lambda src, out: ["convert", src, "-o", out],
    "convert report": lambda src, out: ["convert", src, "-o", out.parent.parent / "ok", "--report", out / "r.json"],
    "mip picture": lambda src, out: ["mip", src, "-o", out / "m.png"],
    "mip folder": lambda src, out: ["mip", src, "-o", out],
    "mip dicom": lambda src, out: ["mip", src, "-o", out / "m.dcm"],
    "mip turntable": lambda src, out: ["mip", src, "--turntable", "2", "-o", out / "t.gif"],
    "reslice nifti": lambda src, out: ["reslice", src, "--spacing", "3", "-o", out / "r.nii.gz"],
    "reslice dicom": lambda src, out: ["reslice", src, "--spacing", "3", "--format", "dcm", "-o", out / "series"],
    "reslice pictures": lambda src, out: ["reslice", src, "--plane", "coronal", "-o", out],
    "render": lambda src, out: ["render", src, "--size", "32x32", "-o", out / "r.png"],
    "render movie": lambda src, out: ["render", src, "--size", "32x32", "--turntable", "2", "-o", out / "t.mp4"],
    "mesh": lambda src, out: ["mesh", src, "--level", "500", "-o", out / "m.stl"],
    "png": lambda src, out: ["png", src, "-o", out, "--workers", "1"],
    "index": lambda src, out: ["index", src, "-o", out / "i.csv", "--workers", "1"],
    "sample": lambda src, out: ["sample", out / "s", "--slices", "2", "--size", "8"],
    "view screenshots": lambda src, out: ["view", src, "--screenshots", out],
    "bids": lambda src, out: ["bids", src, "-o", out, "--subject", "01"],
}


def _file_on_the_way(tmp: Path) -> Path:
    (tmp / "notes.txt").write_text("a file, not a folder")
    return tmp / "notes.txt" / "out"


def _broken_link_on_the_way(tmp: Path) -> Path:
    (tmp / "gone").symlink_to(tmp / "nowhere" / "at-all")
    return tmp / "gone" / "out"


def _name_too_long(tmp: Path) -> Path:
    return tmp / ("x" * 300) / "out"


def _read_only(tmp: Path) -> Path:
    folder = tmp / "read-only"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
    else:  # root writes through permissions: only a read-only file system stops it
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=4096", "tmpfs", str(folder)], capture_output=True)
        if done.returncode != 0:
            pytest.skip("as root, a read-only folder needs a read-only mount, which is not permitted here")
    return folder / "out"


MISTAKES = {"a file on the way": _file_on_the_way, "a broken link on the way": _broken_link_on_the_way,
            "a name too long": _name_too_long, "a read-only folder": _read_only}


@pytest.fixture
def mistakes(tmp_path):
    made: list[Path] = []

    def make(kind: str) -> Path:
        out = MISTAKES[kind](tmp_path)
        made.append(out)
        return out

    yield make
    for out in made:
        if out.parent.name == "read-only":
            subprocess.run(["umount", str(out.parent)], capture_output=True)
            with contextlib.suppress(OSError):
                out.parent.chmod(0o755)


@pytest.mark.parametrize("kind", list(MISTAKES))
@pytest.mark.parametrize("command", list(OUTPUT_COMMANDS))
def test_every_command_refuses_an_output_path_mistake_in_one_line(small_ct, mistakes, capfd, monkeypatch, command, kind):
    for var in ("DISPLAY", "WAYLAND_DISPLAY"):  # view must never open a window
        monkeypatch.delenv(var, raising=False)
    _needs_extras(command)
    out = mistakes(kind)
    before = sorted(out.parents[1].rglob("*")) if out.parents[1].exists() else []
    code = main([str(a) for a in OUTPUT_COMMANDS[command](small_ct, out)])
    stdout, err = capfd.readouterr()
    assert code == 2, f"exit {code}; stderr: {err!r}"
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("volume: warning:")]
    assert len(lines) == 1 and lines[0].startswith("volume: "), err
    assert "Traceback" not in err and "internal error" not in err
    assert str(out.parent.name)[:40] in lines[0] or "screenshots" in lines[0], lines[0]  # names the output
    after = sorted(out.parents[1].rglob("*")) if out.parents[1].exists() else []
    assert after == before and stdout == ""  # nothing written, nothing listed


# --- an input deleted during the run -------------------------------------------------------------------

#: Commands reading the files of a folder (argv given the source and an output folder).
READERS = {
    "convert": lambda src, out: ["convert", src, "-o", out],
    "mip": lambda src, out: ["mip", src, "-o", out],
    "reslice": lambda src, out: ["reslice", src, "--spacing", "3", "-o", out / "r.nii.gz"],
    "render": lambda src, out: ["render", src, "--size", "32x32", "-o", out / "r.png"],
    "mesh": lambda src, out: ["mesh", src, "--level", "500", "-o", out / "m.stl"],
    "png": lambda src, out: ["png", src, "-o", out, "--workers", "1"],
    "index": lambda src, out: ["index", src, "-o", out / "i.csv", "--workers", "1"],
    "bids": lambda src, out: ["bids", src, "-o", out, "--subject", "01"],
}


@pytest.mark.parametrize("command", list(READERS))
def test_an_input_deleted_during_the_run_is_cannot_read_and_named(small_ct, tmp_path, capfd, monkeypatch, command):
    """Each command lists or scans the files first, then one of them is deleted (another process,
    a sync tool, a cleaning script): the message says it cannot *read* it and names it."""
    src = tmp_path / "src"
    shutil.copytree(small_ct, src)
    victim = sorted(src.iterdir())[len(list(src.iterdir())) // 2]
    import volume.cli.work.index as index_work
    import volume.cli.work.png as png_work
    import volume.jobs.bids as bids_job
    import volume.jobs.inputs as inputs

    def then_delete(real):
        def wrapped(*args, **kwargs):
            result = real(*args, **kwargs)
            if inspect.isgenerator(result):  # listed first, then deleted
                result = list(result)
            victim.unlink(missing_ok=True)
            return result
        return wrapped

    monkeypatch.setattr(inputs, "scan", then_delete(inputs.scan))
    monkeypatch.setattr(bids_job, "scan", then_delete(bids_job.scan))
    monkeypatch.setattr(png_work, "plan_outputs", then_delete(png_work.plan_outputs))
    monkeypatch.setattr(index_work, "iter_input_files", then_delete(index_work.iter_input_files))
    out = tmp_path / "out"
    code = main([str(a) for a in READERS[command](src, out)])
    stdout, err = capfd.readouterr()
    assert not victim.exists()
    assert "Traceback" not in err and "internal error" not in err and "cannot write" not in err, err
    assert "cannot read" in err and victim.name in err, err
    assert code == (0 if command == "index" else 1), err  # index lists it among the skipped files
    assert temporaries(out) == []
    for f in on_disk(out):
        assert whole(f) == "", f

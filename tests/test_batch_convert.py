"""Whole archives (issue 8): ``volume convert`` over a process pool and a dask cluster,
``--skip-existing``, ``--report``, worker crashes and Ctrl-C.

Every mode must write the same bytes (the local pool, this process, a dask ``LocalCluster`` of two
worker processes on loopback); a failing or crashing series is one failed result while the others
are written; an interrupted batch leaves whole files only and resumes with ``--skip-existing``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import nibabel
import numpy as np
import pytest
import synth

import volume
from volume.cli import main
from volume.dicom.headers import NATIVE_SYNTAXES
from volume.errors import EXIT_INTERRUPTED, EXIT_NOT_A_VOLUME, EXIT_OUTPUT_EXISTS, EXIT_PARTIAL, EXIT_USAGE
from volume.io.atomic import TEMP_PREFIX
from volume.jobs.convert import ConvertTask, auto_workers, plan, stack_bytes

PATIENT = ("Doe^Jane", "PID-0042", "19700101")
"""Identity synth writes into every series: must never reach a report."""

#: (series number, description, orientation) of the synthetic archive; shapes are small on purpose.
ARCHIVE = [
    (1, "axial", synth.AXIAL),
    (2, "oblique", synth.oblique_iop()),
    (3, "sagittal", synth.SAGITTAL),
    (4, "coronal", synth.CORONAL),
]
SHAPE = (10, 24, 20)
ALL_NAMES = sorted(f"{n}_{d}{ext}" for n, d, _ in ARCHIVE for ext in (".nii.gz", ".json"))


def write_archive(folder: Path) -> Path:
    for number, description, iop in ARCHIVE:
        synth.write_series(folder / f"s{number}", shape=SHAPE, iop=iop, series_number=number,
                           description=description, seed=number)
    return folder


def write_gappy(folder: Path) -> None:
    """Series 9: a missing slice (10 mm where the others are 3 mm): refused without --allow-gaps."""
    positions = [(0.0, 0.0, 3.0 * k + (7.0 if k >= 4 else 0.0)) for k in range(8)]
    synth.write_series(folder, shape=(8, 16, 16), positions=positions, series_number=9, description="gappy")


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    return write_archive(tmp_path_factory.mktemp("archive"))


@pytest.fixture(scope="module")
def pool_output(archive, tmp_path_factory) -> Path:
    """The archive converted by a pool of two workers (the reference the other modes must match)."""
    out = tmp_path_factory.mktemp("pool") / "out"
    assert main(["convert", str(archive), "-o", str(out), "--workers", "2"]) == 0
    return out


def run_cli(args: list, capfd) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capfd.readouterr()
    return code, out, err


def files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file()) if folder.exists() else []


def leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.startswith(TEMP_PREFIX)] if folder.exists() else []


def assert_same_bytes(a: Path, b: Path) -> None:
    names_a, names_b = [p.name for p in files(a)], [p.name for p in files(b)]
    assert names_a == names_b == ALL_NAMES
    for name in names_a:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def assert_whole(folder: Path) -> None:
    """Every file in ``folder`` is a complete NIfTI or JSON file."""
    for p in files(folder):
        if p.name.endswith(".nii.gz"):
            assert np.asarray(nibabel.load(p).dataobj).size > 0
        else:
            json.loads(p.read_text())


def check_world_positions(path: Path) -> None:
    """Every voxel of the written file holds the synthetic field at the RAS position its affine gives."""
    img = nibabel.load(path)
    data = np.asarray(img.get_fdata())
    ijk = np.indices(data.shape).reshape(3, -1)
    ras = img.affine[:3, :3] @ ijk + img.affine[:3, 3:4]
    expected = synth.linear_field(-ras[0], -ras[1], ras[2])  # RAS -> LPS
    np.testing.assert_allclose(data.reshape(-1), expected, atol=0.51)


# --- the local pool ------------------------------------------------------------------------------


def test_one_worker_and_two_workers_write_the_same_bytes(archive, pool_output, tmp_path, capfd):
    out = tmp_path / "one"
    # gzip bytes depend on the compression threads: one per file, as in the pool
    code, stdout, stderr = run_cli(["convert", archive, "-o", out, "--workers", "1", "--threads", "1"], capfd)
    assert code == 0, stderr
    assert "converted 4, skipped 0, failed 0" in stderr
    assert sorted(Path(line).name for line in stdout.splitlines()) == ALL_NAMES
    assert_same_bytes(out, pool_output)
    check_world_positions(pool_output / "2_oblique.nii.gz")
    check_world_positions(pool_output / "3_sagittal.nii.gz")


def test_a_failing_series_among_good_ones_is_reported_and_the_others_written(archive, tmp_path, capfd):
    src = tmp_path / "src"
    shutil.copytree(archive, src / "good")
    write_gappy(src / "gappy")
    out, report = tmp_path / "out", tmp_path / "report.json"
    code, stdout, stderr = run_cli(["convert", src, "-o", out, "--workers", "2", "--report", report], capfd)
    assert code == EXIT_PARTIAL, stderr
    assert "Traceback" not in stderr
    assert "converted 4, skipped 0, failed 1" in stderr
    assert [p.name for p in files(out)] == ALL_NAMES  # the good ones, whole
    assert_whole(out)
    assert {Path(line) for line in stdout.splitlines()} == set(files(out))
    failures = [line for line in stderr.splitlines() if "uneven slice spacing" in line]
    assert failures[0].startswith("volume: series 9: failed:")
    assert failures[-1].startswith("volume: failed series 9 (9_gappy):")  # the closing table
    doc = json.loads(report.read_text())
    failed = [s for s in doc["series"] if s["status"] == "failed"]
    assert [(s["stack_id"], s["name"]) for s in failed] == [("9", "9_gappy")]
    assert "uneven slice spacing" in failed[0]["error"] and "--allow-gaps" in failed[0]["error"]
    assert failed[0]["exit_code"] == EXIT_NOT_A_VOLUME and failed[0]["files"] == []
    assert doc["exit_code"] == EXIT_PARTIAL and doc["interrupted"] is False
    assert doc["totals"]["failed"] == 1 and doc["totals"]["converted"] == 4


def test_report_content(archive, tmp_path, capfd):
    out, report = tmp_path / "out", tmp_path / "r.json"
    before = time.time()
    code, stdout, stderr = run_cli(["convert", archive, "-o", out, "--workers", "2", "--report", report], capfd)
    assert code == 0, stderr
    assert report.read_text().endswith("\n") and not leftovers(tmp_path)
    text = report.read_text()
    for secret in PATIENT:
        assert secret not in text
    doc = json.loads(text)
    assert doc["version"] == volume.__version__ and doc["interrupted"] is False and doc["exit_code"] == 0
    started = datetime.fromisoformat(doc["started"].replace("Z", "+00:00")).timestamp()
    finished = datetime.fromisoformat(doc["finished"].replace("Z", "+00:00")).timestamp()
    assert before - 1 <= started <= finished <= time.time() + 1
    assert doc["options"]["workers"] == 2 and doc["options"]["threads"] == 1  # a pool: one gzip thread per file
    assert doc["options"]["format"] == "nii.gz" and doc["options"]["scheduler"] is None
    assert doc["totals"] == {
        "stacks": 4, "converted": 4, "skipped": 0, "failed": 0, "existing": 0, "not_run": 0,
        "files_written": 8, "images": 4 * SHAPE[0], "files_scanned": 4 * SHAPE[0],
    }
    assert [s["stack_id"] for s in doc["series"]] == ["1", "2", "3", "4"]  # in scan order, not completion order
    for entry in doc["series"]:
        assert entry["status"] == "converted" and entry["error"] == "" and entry["exit_code"] == 0
        assert entry["seconds"] >= 0 and entry["existing"] == [] and entry["warnings"] == []
        assert [Path(f) for f in entry["files"]] == [out / f"{entry['name']}.nii.gz", out / f"{entry['name']}.json"]
    assert doc["not_run"] == []
    assert set(stdout.split()) == {f for e in doc["series"] for f in e["files"]}


def test_an_existing_report_is_refused_before_any_work(archive, tmp_path, capfd):
    out, report = tmp_path / "out", tmp_path / "r.json"
    report.write_text("{}")
    code, stdout, stderr = run_cli(["convert", archive, "-o", out, "--report", report], capfd)
    assert code == EXIT_OUTPUT_EXISTS and stdout == ""
    assert stderr.strip().splitlines() == [f"volume: {report}: exists already; use --force to overwrite"]
    assert not out.exists() and report.read_text() == "{}"
    code, stdout, stderr = run_cli(["convert", archive, "-o", out, "--report", report, "--force"], capfd)
    assert code == 0 and json.loads(report.read_text())["totals"]["converted"] == 4


def test_skip_existing_writes_only_what_is_missing(archive, pool_output, tmp_path, capfd):
    out = tmp_path / "out"
    out.mkdir()
    for p in files(pool_output):
        (out / p.name).write_bytes(p.read_bytes())
    (out / "2_oblique.nii.gz").unlink()  # as if interrupted between a series' image and sidecar...
    (out / "3_sagittal.json").unlink()  # ...or after its image
    kept = {p.name: p.stat().st_mtime_ns for p in files(out)}
    time.sleep(0.02)
    code, stdout, stderr = run_cli(["convert", archive, "-o", out, "--skip-existing", "--workers", "2"], capfd)
    assert code == 0, stderr
    assert sorted(stdout.split()) == [str(out / "2_oblique.nii.gz"), str(out / "3_sagittal.json")]
    assert "converted 2, skipped 0, failed 0, already done 2" in stderr
    assert {p.name: p.stat().st_mtime_ns for p in files(out) if p.name in kept} == kept  # untouched
    assert_same_bytes(out, pool_output)
    # everything there: a resumed run is done (exit 0, nothing printed); without the flag, exit 5
    code, stdout, stderr = run_cli(["convert", archive, "-o", out, "--skip-existing"], capfd)
    assert (code, stdout) == (0, "") and "converted 0, skipped 0, failed 0, already done 4" in stderr
    code, stdout, stderr = run_cli(["convert", archive, "-o", out], capfd)
    assert code == EXIT_OUTPUT_EXISTS and "converted 0, skipped 4, failed 0" in stderr


def test_skip_existing_and_force_exclude_each_other(archive, tmp_path, capfd):
    code, stdout, stderr = run_cli(["convert", archive, "-o", tmp_path / "o", "--skip-existing", "--force"], capfd)
    assert code == EXIT_USAGE and stdout == "" and len(stderr.strip().splitlines()) == 1
    assert "--skip-existing" in stderr and "--force" in stderr and not (tmp_path / "o").exists()


def test_default_workers(archive, monkeypatch):
    found = volume.scan(archive)
    tasks = plan(found.stacks)
    assert auto_workers(tasks[:1]) == 1  # one stack: this process
    assert auto_workers(tasks) == 1  # small stacks: a pool would cost more than it saves
    assert auto_workers(tasks, 8) == 4  # never more workers than stacks
    monkeypatch.setattr("volume.jobs.convert.POOL_MIN_BYTES", 0)
    monkeypatch.setattr("volume.parallel.pool.default_workers", lambda: 2)
    assert auto_workers(tasks) == 2 and auto_workers(tasks[:1]) == 1
    assert isinstance(tasks[0], ConvertTask)


#: JPEG Baseline (Process 1): a transfer syntax whose images must be decoded.
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"


def test_default_workers_follow_the_work_to_share(archive, monkeypatch):
    """A pool by default only where there is CPU work to share: images to compress (``.nii.gz``)
    or to decode; uncompressed images written uncompressed (mostly copying) stay in this process."""
    tasks = plan(volume.scan(archive).stacks)
    assert all(f.transfer_syntax in NATIVE_SYNTAXES and not f.file_compression for t in tasks for f in t.stack.frames)
    size = sum(stack_bytes(t.stack) for t in tasks)
    monkeypatch.setattr("volume.parallel.pool.default_workers", lambda: 2)
    monkeypatch.setattr("volume.jobs.convert.POOL_MIN_BYTES", size)
    assert auto_workers(tasks) == 2  # .nii.gz: every image is compressed
    assert auto_workers(tasks, compressed=False) == 1  # .nii of native images: copying
    assert auto_workers(tasks, 2, compressed=False) == 2  # --workers asks for a pool anyway
    jpeg = [replace(t, stack=replace(t.stack, frames=[f.replace(transfer_syntax=JPEG_BASELINE) for f in t.stack.frames]))
            for t in tasks]
    assert auto_workers(jpeg, compressed=False) == 2  # images to decode
    monkeypatch.setattr("volume.jobs.convert.POOL_MIN_BYTES", size + 1)
    assert auto_workers(tasks) == 1 and auto_workers(jpeg, compressed=False) == 1  # too little work


# --- real processes: worker crashes and Ctrl-C ------------------------------------------------

#: Runs the CLI in a fresh interpreter after PRELUDE (argv[1]: the CLI arguments as JSON).
RUNNER = """
import json, sys
{prelude}
from volume.cli import main
sys.exit(main(json.loads(sys.argv[1]), as_program=True))  # as the volume program runs it (cli.run)
"""

#: Series 2's image writer: an atomic temporary file on disk, then MODE ("kill": the worker dies
#: as the out-of-memory killer would do it; "hang": a minute, between images, with the marker file
#: written so the test knows when to press Ctrl-C).
SERIES_2_WRITER = """
import os, signal, time
from pathlib import Path
import volume.jobs.convert as NS  # where convert_stack looks the writer up
from volume.io.atomic import atomic_output
NS._volume_real = getattr(NS, "_volume_real", NS.convert_image)
def _writer(stack, path, **kw):
    if path is not None and Path(path).name.startswith("2_"):
        with atomic_output(path) as tmp:
            tmp.write_bytes(b"half a file")
            if {mode!r} == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            Path({marker!r}).write_text("writing")
            for _ in range(600):
                time.sleep(0.1)
                if kw.get("progress") is not None:
                    kw["progress"](0)
    return NS._volume_real(stack, path, **kw)
NS.convert_image = _writer
"""


def start(args: list, prelude: str = "") -> subprocess.Popen:
    env = {**os.environ, "VOLUME_NO_PROGRESS": "1"}

    def as_in_a_terminal() -> None:  # a test runner started in the background ignores SIGINT
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    return subprocess.Popen(
        [sys.executable, "-c", RUNNER.format(prelude=prelude), json.dumps([str(a) for a in args])],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, preexec_fn=as_in_a_terminal,
    )


def wait_for(marker: Path, proc: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not marker.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "series 2 never started writing"
        time.sleep(0.05)


def test_a_worker_that_dies_fails_its_series_only(archive, pool_output, tmp_path):
    out, report = tmp_path / "out", tmp_path / "r.json"
    prelude = SERIES_2_WRITER.format(mode="kill", marker=str(tmp_path / "m"))
    proc = start(["convert", archive, "-o", out, "--workers", "2", "--report", report], prelude)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_PARTIAL, stderr
    assert "Traceback" not in stderr
    assert "volume: series 2: failed: the worker process died" in stderr
    assert "converted 3, skipped 0, failed 1" in stderr
    assert leftovers(out) == []  # the dead worker's temporary file was removed
    written = sorted(p.name for p in files(out))
    assert written == [n for n in ALL_NAMES if not n.startswith("2_")]
    assert {Path(line) for line in stdout.splitlines()} == set(files(out))
    for name in written:
        assert (out / name).read_bytes() == (pool_output / name).read_bytes()
    doc = json.loads(report.read_text())
    [entry] = [s for s in doc["series"] if s["status"] == "failed"]
    assert entry["stack_id"] == "2" and "worker process died" in entry["error"]


def test_ctrl_c_in_a_pool_leaves_whole_files_and_resumes(archive, pool_output, tmp_path, capfd):
    out, report, marker = tmp_path / "out", tmp_path / "r.json", tmp_path / "marker"
    prelude = SERIES_2_WRITER.format(mode="hang", marker=str(marker))
    proc = start(["convert", archive, "-o", out, "--workers", "2", "--report", report], prelude)
    wait_for(marker, proc)
    assert leftovers(out), "series 2's temporary file exists while it is written"
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == EXIT_INTERRUPTED, stderr
    assert "Traceback" not in stderr
    assert "volume: interrupted; nothing half-written was left" in stderr
    assert leftovers(out) == []
    assert not (out / "2_oblique.nii.gz").exists()
    listed = {Path(line) for line in stdout.splitlines()}
    assert listed == set(files(out))  # what workers wrote before they were stopped is reported too
    assert_whole(out)
    doc = json.loads(report.read_text())
    assert doc["interrupted"] is True and doc["exit_code"] == EXIT_INTERRUPTED
    assert "2" in {s["stack_id"] for s in doc["not_run"]}
    # the same command with --skip-existing finishes the rest
    code, stdout, stderr = run_cli(["convert", archive, "-o", out, "--skip-existing", "--workers", "2"], capfd)
    assert code == 0, stderr
    assert str(out / "2_oblique.nii.gz") in stdout.split()
    assert_same_bytes(out, pool_output)


# --- a dask cluster ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    with warnings.catch_warnings():  # "port 8787 in use" when another cluster runs on this machine
        warnings.simplefilter("ignore", UserWarning)
        local = distributed.LocalCluster(
            n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None, host="127.0.0.1",
        )
    with local, distributed.Client(local, set_as_default=False) as client:
        yield local.scheduler_address, client


def test_dask_cluster_writes_the_same_bytes_as_the_pool(archive, pool_output, cluster, tmp_path, capfd):
    address, _ = cluster
    out, report = tmp_path / "out", tmp_path / "r.json"
    code, stdout, stderr = run_cli(["convert", archive, "-o", out, "--scheduler", address, "--report", report], capfd)
    assert code == 0, stderr
    assert stderr.strip().splitlines() == ["volume: converted 4, skipped 0, failed 0"]
    assert sorted(Path(line) for line in stdout.splitlines()) == files(out)  # paths as given, not absolute
    assert_same_bytes(out, pool_output)  # sidecars hold no timestamp of the conversion
    doc = json.loads(report.read_text())
    assert doc["options"]["scheduler"] == address and doc["totals"]["converted"] == 4


def test_dask_ctrl_c_stops_the_tasks_and_resumes(archive, pool_output, cluster, tmp_path, capfd):
    address, client = cluster
    out, marker = tmp_path / "out", tmp_path / "marker"
    client.run(exec, SERIES_2_WRITER.format(mode="hang", marker=str(marker)), {})
    try:
        proc = start(["convert", archive, "-o", out, "--scheduler", address])
        wait_for(marker, proc)
        assert leftovers(out)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        client.run(exec, "import volume.jobs.convert as NS\nNS.convert_image = NS._volume_real\n", {})
    assert proc.returncode == EXIT_INTERRUPTED, stderr
    assert "Traceback" not in stderr and "volume: interrupted; nothing half-written was left" in stderr
    end = time.monotonic() + 30  # the client waits 0.8 s; the task stops at its next check on its own
    while leftovers(out) and time.monotonic() < end:
        time.sleep(0.05)
    assert leftovers(out) == []  # the running task stopped and removed its temporary file
    assert {Path(line) for line in stdout.splitlines()} == set(files(out))  # what finished was reported
    assert not (out / "2_oblique.nii.gz").exists()
    assert_whole(out)
    code, stdout, stderr = run_cli(["convert", archive, "-o", out, "--scheduler", address, "--skip-existing"], capfd)
    assert code == 0, stderr
    assert_same_bytes(out, pool_output)


def test_dask_worker_that_cannot_see_the_inputs_fails_the_series(archive, cluster, tmp_path):
    import dataclasses

    from volume.jobs.cluster import iter_results
    from volume.jobs.convert import ConvertOptions

    _, client = cluster
    [task] = plan(volume.scan(archive / "s1").stacks)
    moved = [dataclasses.replace(f, path="/nonexistent/volume-test/" + Path(f.path).name) for f in task.stack.frames]
    task = ConvertTask(dataclasses.replace(task.stack, frames=moved), task.name)
    [result] = list(iter_results([task], tmp_path / "out", ConvertOptions(), client))
    assert result.status == "failed" and result.exit_code == EXIT_PARTIAL
    assert "cannot see the input files" in result.message and "shared filesystem" in result.message
    assert not (tmp_path / "out").exists()


def test_unreachable_scheduler_is_one_line_and_exit_2(archive, tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for address in (f"tcp://127.0.0.1:{port}", "not an address"):
        proc = start(["convert", archive, "-o", tmp_path / "out", "--scheduler", address])
        stdout, stderr = proc.communicate(timeout=60)  # a guard against a hang, not a timing assert
        assert proc.returncode == EXIT_USAGE, stderr
        assert stdout == "" and len(stderr.splitlines()) == 1 and stderr.startswith("volume: ")
        assert not (tmp_path / "out").exists()
    assert "cannot reach the dask scheduler" in start(
        ["convert", archive, "-o", tmp_path / "out", "--scheduler", f"tcp://127.0.0.1:{port}"]
    ).communicate(timeout=60)[1]


@pytest.fixture()
def listener():
    """A TCP port that accepts connections and then says nothing, or what ``say`` is set to."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    said: dict[str, bytes] = {"say": b""}
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:  # closed at the end of the test
                return
            held.append(conn)
            if said["say"]:
                conn.sendall(said["say"])

    threading.Thread(target=accept, daemon=True).start()
    yield f"tcp://127.0.0.1:{server.getsockname()[1]}", said
    server.close()
    for conn in held:
        conn.close()


def test_a_port_that_never_speaks_is_refused_within_the_timeout(listener):
    """An HTTP port (the dashboard's, say) accepts and waits for a request: dask's Client would wait
    for its handshake until the peer hangs up; --scheduler gives up after its timeout."""
    pytest.importorskip("distributed")
    from volume.errors import UsageError
    from volume.parallel.dask import connect

    address, _ = listener
    raised: list[BaseException] = []

    def attempt() -> None:
        try:
            connect(address, timeout=0.5)
        except BaseException as exc:  # noqa: BLE001 - examined below
            raised.append(exc)

    thread = threading.Thread(target=attempt, daemon=True)
    thread.start()
    thread.join(60)  # a guard against a hang, not a timing assert
    assert not thread.is_alive(), "connect() waited for a peer that never speaks"
    [exc] = raised
    assert isinstance(exc, UsageError)
    assert re.match(r"cannot reach the dask scheduler at tcp://127\.0\.0\.1:\d+ within 0\.5 s", str(exc)), exc


def test_what_answers_garbage_is_not_a_scheduler(listener):
    pytest.importorskip("distributed")
    from volume.errors import UsageError
    from volume.parallel.dask import connect

    address, said = listener
    said["say"] = b"\xff" * 64 + b"HTTP/1.1 400 Bad Request\r\n\r\n"
    with pytest.raises(UsageError, match="what answered there is not a dask scheduler"):
        connect(address, timeout=2)


def test_a_worker_address_is_not_the_scheduler(cluster):
    from volume.errors import UsageError
    from volume.parallel.dask import connect

    _, client = cluster
    worker = next(iter(client.scheduler_info()["workers"]))
    with pytest.raises(UsageError, match="what answered there is a dask Worker, not the scheduler"):
        connect(worker)


def test_scheduler_without_dask_installed(archive, tmp_path, capfd, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import fails as if not installed
    code, stdout, stderr = run_cli(["convert", archive, "-o", tmp_path / "o", "--scheduler", "tcp://127.0.0.1:8786"],
                                   capfd)
    assert code == EXIT_USAGE and stdout == ""
    assert stderr.strip().splitlines() == [
        'volume: --scheduler needs dask.distributed, which is not installed: pip install "volume[dask]"'
    ]


def test_scheduler_and_workers_exclude_each_other(archive, tmp_path, capfd):
    code, _, stderr = run_cli(["convert", archive, "-o", tmp_path / "o", "--scheduler", "tcp://h:1", "--workers", "2"],
                              capfd)
    assert code == EXIT_USAGE and "--workers" in stderr


def test_dask_a_series_that_kills_its_workers_fails_alone(archive, pool_output, cluster, tmp_path, capfd):
    """dask retries a task whose worker died on other workers, then gives up (KilledWorker), also
    on tasks that were merely queued on the dying workers: those are rerun alone and succeed."""
    from distributed.diagnostics.plugin import WorkerPlugin

    address, client = cluster
    code = SERIES_2_WRITER.format(mode="kill", marker=str(tmp_path / "m"))

    class KillOnSeries2(WorkerPlugin):  # installed in every worker, including the restarted ones
        name = "volume-test-kill-on-series-2"

        def setup(self, worker):
            exec(code, {})

    out, report = tmp_path / "out", tmp_path / "r.json"
    client.register_plugin(KillOnSeries2())
    try:
        code_, stdout, stderr = run_cli(["convert", archive, "-o", out, "--scheduler", address, "--report", report],
                                        capfd)
    finally:
        client.unregister_worker_plugin(KillOnSeries2.name)
        client.run(exec, "import volume.jobs.convert as NS\nNS.convert_image = NS._volume_real\n", {})
    assert code_ == EXIT_PARTIAL, stderr
    assert "volume: series 2: failed: the worker process died" in stderr
    assert "converted 3, skipped 0, failed 1" in stderr
    assert leftovers(out) == []  # the killed workers' temporary files were removed
    written = [p.name for p in files(out)]
    assert written == [n for n in ALL_NAMES if not n.startswith("2_")]
    for name in written:
        assert (out / name).read_bytes() == (pool_output / name).read_bytes()
    [entry] = [s for s in json.loads(report.read_text())["series"] if s["status"] == "failed"]
    assert entry["stack_id"] == "2"


# --- review findings: resuming with a report, the in-process Ctrl-C window, selectors -----------


def test_resume_with_the_same_report_replaces_it(archive, tmp_path, capfd):
    out, report = tmp_path / "out", tmp_path / "report.json"
    assert run_cli(["convert", archive, "-o", out, "--report", report], capfd)[0] == 0
    (out / "3_sagittal.json").unlink()
    code, stdout, _ = run_cli(["convert", archive, "-o", out, "--report", report, "--skip-existing"], capfd)
    assert code == 0
    assert stdout.splitlines() == [str(out / "3_sagittal.json")]
    doc = json.loads(report.read_text())
    assert doc["options"]["skip_existing"] is True
    assert sorted(p.name for p in files(out)) == ALL_NAMES


def test_report_path_taken_by_an_output_is_refused_before_any_work(archive, tmp_path, capfd):
    out = tmp_path / "out"
    code, stdout, err = run_cli(["convert", archive, "-o", out, "--report", out / "2_oblique.json"], capfd)
    assert code == EXIT_USAGE and stdout == ""
    assert "2_oblique.json" in err and len(err.strip().splitlines()) == 1
    assert not out.exists() or files(out) == []


def test_report_names_the_chosen_stacks_not_a_uid_selector(archive, tmp_path, capfd):
    import pydicom

    uid = str(pydicom.dcmread(next((archive / "s2").iterdir())).SeriesInstanceUID)
    out, report = tmp_path / "out", tmp_path / "report.json"
    assert run_cli(["convert", archive, "-o", out, "--series", uid, "--report", report], capfd)[0] == 0
    text = report.read_text()
    assert uid not in text
    assert json.loads(text)["options"]["series"] == ["2"]


def test_ctrl_c_between_image_and_sidecar_in_process_lists_the_image(archive, tmp_path, capfd, monkeypatch):
    import volume.jobs.convert as job  # where convert_stack looks the sidecar writer up

    real, calls = job.write_sidecar, []

    def interrupted_second_time(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(job, "write_sidecar", interrupted_second_time)
    out, report = tmp_path / "out", tmp_path / "report.json"
    code, stdout, err = run_cli(["convert", archive, "-o", out, "--workers", "1", "--report", report], capfd)
    assert code == EXIT_INTERRUPTED
    on_disk = {str(p) for p in files(out)}
    assert set(stdout.splitlines()) == on_disk and len(on_disk) == 3  # series 1 whole, series 2's image
    entries = {e["stack_id"]: e for e in json.loads(report.read_text())["series"]}
    assert entries["2"]["status"] == "failed" and entries["2"]["files"] == [str(out / "2_oblique.nii.gz")]


def _convert_in_a_daemon(args: tuple[str, str]) -> int:
    return main(["convert", args[0], "-o", args[1], "--workers", "2"])


def test_batches_run_inside_someone_elses_pool_worker(archive, tmp_path):
    """A daemonic worker (a user's multiprocessing.Pool calling volume) may not start children:
    convert's pool and png's pool fall back to one process instead of an internal error."""
    import multiprocessing

    out = tmp_path / "out"
    with multiprocessing.get_context("fork").Pool(1) as pool:
        code = pool.map(_convert_in_a_daemon, [(str(archive), str(out))])[0]
    assert code == 0
    assert sorted(p.name for p in files(out)) == ALL_NAMES

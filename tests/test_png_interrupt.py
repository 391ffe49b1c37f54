"""Ctrl-C in the middle of `volume png`: every picture finished is listed, nothing partial, exit 130.

A real process gets a real SIGINT after a few pictures: once to the process alone (``kill -INT``),
once to its whole process group (a terminal's Ctrl-C also reaches the worker processes). The
pictures it lists on stdout are exactly the new files on disk; one kept from an earlier run is
not listed; no temporary file is left.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file

from volume.io.atomic import TEMP_PREFIX

N_FILES = 24
"""Input files; with a pause per picture the batch is far from done when interrupted."""

SAVES_BEFORE_CTRL_C = 5
"""Pictures saved (in any process) before SIGINT is sent."""

#: Runs the CLI with a pause after each saved picture, and says SAVED on stderr each time.
RUNNER = """
import json, sys, time
import volume.jobs.png as B
_real = B.write_picture
def _slow(*a, **k):
    out = _real(*a, **k)
    sys.stderr.write("SAVED\\n"); sys.stderr.flush()
    time.sleep(0.2)
    return out
B.write_picture = _slow
from volume.cli import main
sys.exit(main(json.loads(sys.argv[1]), as_program=True))  # as the volume program runs it (cli.run)
"""


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("png_int") / "src"
    folder.mkdir()
    for i in range(N_FILES):
        shutil.copy(get_testdata_file("CT_small.dcm"), folder / f"ct{i:02d}.dcm")
    return folder


def _as_in_a_terminal() -> None:  # a test runner started in the background ignores SIGINT
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize(("workers", "to"), [(1, "process"), (2, "process"), (2, "group")])
def test_ctrl_c_lists_every_finished_picture(source, tmp_path, workers, to):
    out = tmp_path / "out"
    out.mkdir()
    old = out / f"ct{N_FILES - 1:02d}.png"  # kept from an earlier run: not this run's work
    old.write_bytes(b"an earlier picture")
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    env = {**os.environ, "VOLUME_NO_PROGRESS": "1"}
    args = ["png", str(source), "-o", str(out), "--workers", str(workers)]
    proc = subprocess.Popen(
        [sys.executable, "-c", RUNNER, json.dumps(args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=env, preexec_fn=_as_in_a_terminal, start_new_session=(to == "group"),
    )
    saved = 0
    deadline = time.monotonic() + 60
    while saved < SAVES_BEFORE_CTRL_C and time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line and proc.poll() is not None:
            break
        saved += "SAVED" in line
    assert saved == SAVES_BEFORE_CTRL_C, "the batch never got going"
    if to == "group":
        os.killpg(proc.pid, signal.SIGINT)
    else:
        proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr
    if to == "process":  # (a worker idle at a group's SIGINT prints a traceback: see below)
        assert "Traceback" not in stderr
    assert not [p for p in out.rglob("*") if p.name.startswith(TEMP_PREFIX)]
    listed = [Path(line) for line in stdout.splitlines() if line.strip()]
    assert len(listed) == len(set(listed))
    new = {p for p in out.rglob("*") if p.is_file()} - {old}
    assert set(listed) == new  # every finished picture listed, and only those
    assert len(new) >= SAVES_BEFORE_CTRL_C  # the ones finished before the interrupt, at least
    assert old.read_bytes() == b"an earlier picture"
    from PIL import Image

    for p in listed:  # whole pictures
        with Image.open(p) as im:
            im.load()


#: One picture takes 5 s; the other worker finishes everything else and waits, idle, for work.
RUNNER_ONE_SLOW = RUNNER.replace(
    "    time.sleep(0.2)\n",
    "    if str(a[0]).endswith('ct00.png'):\n        sys.stderr.write('SLOW\\n'); sys.stderr.flush(); time.sleep(5)\n",
)


def test_ctrl_c_in_a_terminal_with_an_idle_worker_prints_no_traceback(source, tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "VOLUME_NO_PROGRESS": "1"}
    args = ["png", str(source), "-o", str(out), "--workers", "2"]
    proc = subprocess.Popen(
        [sys.executable, "-c", RUNNER_ONE_SLOW, json.dumps(args)], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env=env, preexec_fn=_as_in_a_terminal, start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if "SLOW" in line or (not line and proc.poll() is not None):
            break
    time.sleep(2.0)  # the other worker has converted the rest and waits for work
    os.killpg(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    listed = {Path(line) for line in stdout.splitlines() if line.strip()}
    assert listed == {p for p in out.rglob("*") if p.is_file()}
    assert "Traceback" not in stderr, stderr

"""A reader that quits (``volume convert ... | head -1``) does not stop a batch halfway.

Each command runs in a real process whose stdout is a pipe with its read end already closed:
every write to stdout fails with EPIPE, deterministically (no race with a reader).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from synth import write_series

NOTE = "standard output was closed early"


def _run(args: list[str], *, closed: bool) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VOLUME_NO_PROGRESS": "1"}
    cmd = [sys.executable, "-m", "volume", *map(str, args)]
    if not closed:
        return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(cmd, stdout=write_end, stderr=subprocess.PIPE, text=True, env=env, timeout=300)
    finally:
        os.close(write_end)


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("study")
    for n in range(4):
        write_series(root / f"s{n}", series_number=10 + n, description=f"series {n}", seed=n)
    return root


@pytest.mark.parametrize("workers", ["1", "2"])
def test_convert_goes_on_to_the_end_when_its_reader_quits(study, tmp_path, workers):
    listed = _run(["convert", study, "-o", tmp_path / "listed", "-j", workers], closed=False)
    assert listed.returncode == 0, listed.stderr
    expected = sorted(Path(line).name for line in listed.stdout.splitlines())
    assert len(expected) == 8  # four images, four sidecars

    cut = _run(["convert", study, "-o", tmp_path / "cut", "-j", workers], closed=True)
    assert cut.returncode == 0, cut.stderr
    assert "Traceback" not in cut.stderr
    assert sorted(p.name for p in (tmp_path / "cut").iterdir()) == expected  # nothing lost, no temp files
    notes = [line for line in cut.stderr.splitlines() if NOTE in line]
    assert len(notes) == 1 and notes[0].startswith("volume: ")
    for name in expected:  # every image whole and equal to the listed run's
        if name.endswith(".nii.gz"):
            a = nib.load(tmp_path / "listed" / name)
            b = nib.load(tmp_path / "cut" / name)
            np.testing.assert_array_equal(np.asarray(a.dataobj), np.asarray(b.dataobj))
            np.testing.assert_array_equal(a.affine, b.affine)


def test_a_file_writing_command_notes_the_cut_listing(study, tmp_path):
    out = tmp_path / "mip.png"
    cut = _run(["mip", study / "s0", "-o", out], closed=True)
    assert cut.returncode == 0, cut.stderr
    assert out.is_file() and out.stat().st_size > 0
    assert sum(NOTE in line for line in cut.stderr.splitlines()) == 1


@pytest.mark.parametrize("args", [["ls", "{study}"], ["ls", "{study}", "--json"], ["--version"], ["--help"]])
def test_a_listing_command_ends_quietly(study, args):
    cut = _run([a.format(study=study) for a in args], closed=True)
    assert cut.returncode == 0
    assert cut.stderr == ""


def test_a_listing_to_an_open_pipe_is_unchanged(study):
    listed = _run(["ls", study], closed=False)
    assert listed.returncode == 0 and listed.stderr == ""
    assert all(f"series {n}" in listed.stdout for n in range(4))

"""``--max-memory`` on every command that loads a volume: a small limit refuses, a large one works.

The loader's refusal says "raise it with --max-memory": the option exists wherever the message
can appear (convert has its own tests; here mip, reslice, render, mesh and view).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import synth

from volume.cli import main
from volume.errors import EXIT_USAGE, ResourceLimitError

SHAPE = (10, 32, 32)
"""10 slices of 32x32 uint16: 20 KiB of pixels."""

SMALL = "5K"
"""A limit below the series' 20 KiB."""

LARGE = "1G"
"""A limit far above it."""

#: argv for a source folder and an output folder, per command.
COMMANDS = {
    "mip": lambda src, out: ["mip", src, "-o", out / "m.png"],
    "reslice": lambda src, out: ["reslice", src, "--spacing", "2", "-o", out / "r.nii.gz"],
    "render": lambda src, out: ["render", src, "--size", "40x40", "-o", out / "r.png"],
    "mesh": lambda src, out: ["mesh", src, "--level", "960", "-o", out / "m.stl"],
    "view": lambda src, out: ["view", src],  # refused before any window opens
}


@pytest.fixture(scope="module")
def series(tmp_path_factory) -> Path:
    return synth.write_series(tmp_path_factory.mktemp("mm") / "s", shape=SHAPE).folder


def run(args: list, capfd) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capfd.readouterr()
    return code, out, err


def files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


@pytest.mark.parametrize("command", list(COMMANDS))
def test_small_limit_refuses_in_one_line(series, tmp_path, capfd, command):
    out = tmp_path / "out"
    code, stdout, stderr = run(COMMANDS[command](series, out) + ["--max-memory", SMALL], capfd)
    assert code == ResourceLimitError.exit_code, stderr
    lines = [line for line in stderr.splitlines() if not line.startswith("volume: warning:")]
    assert len(lines) == 1 and lines[0].startswith("volume: "), stderr
    assert "--max-memory" in lines[0]  # the hint names this very option (and the default would not refuse)
    assert "Traceback" not in stderr and stdout == ""
    assert files(out) == []


@pytest.mark.parametrize("command", [c for c in COMMANDS if c != "view"])
def test_large_limit_works(series, tmp_path, capfd, command):
    out = tmp_path / "out"
    code, stdout, stderr = run(COMMANDS[command](series, out) + ["--max-memory", LARGE], capfd)
    assert code == 0, stderr
    written = [Path(line) for line in stdout.splitlines() if line.strip()]
    assert written and all(p.is_file() and p.stat().st_size > 0 for p in written)


@pytest.mark.parametrize("command", list(COMMANDS))
def test_bad_size_is_a_usage_error(series, tmp_path, capfd, command):
    code, _, stderr = run(COMMANDS[command](series, tmp_path / "out") + ["--max-memory", "lots"], capfd)
    assert code == EXIT_USAGE and "--max-memory" in stderr and "Traceback" not in stderr


def test_streamed_mip_needs_one_chunk_not_the_whole_series(tmp_path, capfd):
    """40 slices of 16x16 (20 KiB): a projection streams 32 slices (16 KiB) at a time, so an
    18 KiB limit projects it, while reslice, which loads it whole, refuses."""
    src = synth.write_series(tmp_path / "s", shape=(40, 16, 16)).folder
    code, stdout, stderr = run(["mip", src, "-o", tmp_path / "m.png", "--max-memory", "18K"], capfd)
    assert code == 0, stderr
    assert Path(stdout.strip()).is_file()
    code, _, stderr = run(["mip", src, "-o", tmp_path / "m2.png", "--max-memory", "10K"], capfd)
    assert code == ResourceLimitError.exit_code and "--max-memory" in stderr
    code, _, stderr = run(["reslice", src, "--spacing", "2", "-o", tmp_path / "r.nii.gz", "--max-memory", "18K"], capfd)
    assert code == ResourceLimitError.exit_code and "--max-memory" in stderr
    assert not (tmp_path / "m2.png").exists() and not (tmp_path / "r.nii.gz").exists()

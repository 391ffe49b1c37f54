"""One command line: one meaning per short flag, one default-naming rule, help readable in a pipe,
a summary line for batches, and a clean ``git status`` after the quickstart."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest
from synth import write_series

from volume.cli import COMMANDS, app, load_commands, main

ROOT = Path(__file__).resolve().parents[1]


def _options() -> dict[str, list[tuple[str, list[str], str]]]:
    """``command -> [(long name, short flags, help)]`` for every option of every command."""
    from typer.main import get_command

    load_commands([])
    group = get_command(app)
    out = {}
    for name, command in group.commands.items():
        rows = []
        for p in command.params:
            if p.param_type_name != "option":
                continue
            flags = [*p.opts, *p.secondary_opts]
            longs = [f for f in flags if f.startswith("--")]
            rows.append((longs[0], [f for f in flags if not f.startswith("--")], p.help or ""))
        out[name] = rows
    return out


def test_every_command_is_checked():
    assert set(_options()) == set(COMMANDS)


def test_one_meaning_per_short_flag_across_every_command():
    meanings: dict[str, set[tuple[str, str]]] = defaultdict(set)
    shorts_of: dict[str, set[tuple[tuple[str, ...], str]]] = defaultdict(set)
    for command, rows in _options().items():
        for long, shorts, _ in rows:
            for short in shorts:
                meanings[short].add((long, command))
            shorts_of[long].add((tuple(shorts), command))
    clashes = {s: sorted(m) for s, m in meanings.items() if len({long for long, _ in m}) > 1}
    assert clashes == {}, f"a short flag with several meanings: {clashes}"
    # and the reverse: an option has the same short flag (or none) in every command that has it
    uneven = {long: sorted(v) for long, v in shorts_of.items() if len({s for s, _ in v}) > 1}
    assert uneven == {}, f"an option spelt differently across commands: {uneven}"
    assert {s: next(iter(m))[0] for s, m in meanings.items()} == {
        "-o": "--output", "-s": "--series", "-p": "--plane", "-m": "--mode", "-w": "--window", "-f": "--format",
        "-j": "--workers",
    }


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_help_is_whole_in_a_pipe(command, capsys):
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert "…" not in out and "╭" not in out  # no cut words, no panels in a log
    assert all(len(line) <= 80 for line in out.splitlines())
    squeezed = re.sub(r"\s+", "", out)
    for long, _, text in _options()[command]:
        assert long in out
        assert re.sub(r"\s+", "", text) in squeezed, f"{command} {long}: help cut"


def test_the_command_list_is_whole_in_a_pipe(capsys):
    from typer.main import get_command

    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    commands = out.split("Commands:")[1]
    assert "..." not in commands and "…" not in out and "╭" not in out
    squeezed = re.sub(r"\s+", "", commands)
    for name, command in get_command(app).commands.items():
        first = command.help.split("\n\n")[0]
        assert re.sub(r"\s+", "", first) in squeezed, f"{name}: {first!r} cut"


@pytest.fixture(scope="module")
def series(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("naming") / "t2"
    write_series(folder, shape=(6, 12, 14), field_fn=lambda x, y, z: 200.0 + 3.0 * x + z, series_number=21,
                 description="t2 tse", names="ordered")
    return folder


DEFAULT_NAMES = {
    "mip": ([], ["21_t2_tse_mip_coronal.png"]),
    "reslice": (["--spacing", "2"], ["21_t2_tse_iso_2mm.nii.gz"]),
    "render": (["--size", "40x40", "--no-marker"], ["21_t2_tse_render_vr_anterior.png"]),
    "mesh": (["--level", "160"], ["21_t2_tse_mesh_160.stl"]),
    "convert": ([], ["21_t2_tse.nii.gz", "21_t2_tse.json"]),
    "png": ([], [f"IM000{k}.png" for k in range(1, 7)]),
    "index": ([], ["t2_index.csv"]),
}


@pytest.mark.parametrize("command", sorted(DEFAULT_NAMES))
def test_without_o_every_command_writes_here_named_after_its_input(command, series, tmp_path, monkeypatch, capsys):
    if command in ("render", "mesh"):
        pytest.importorskip("vtk")
    monkeypatch.chdir(tmp_path)
    extra, names = DEFAULT_NAMES[command]
    assert main([command, str(series), *extra]) == 0
    assert capsys.readouterr().out.split() == names
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)
    # and a second run keeps them (exit 5 for single outputs, counted as kept by the batches)
    main([command, str(series), *extra])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)


def test_mip_of_several_series_ends_with_a_summary(tmp_path, capsys):
    for k in range(3):
        write_series(tmp_path / "study" / f"s{k}", shape=(4, 8, 8), series_number=40 + k, seed=k)
    write_series(tmp_path / "study" / "one", shape=(1, 8, 8), series_number=50, seed=9)  # not a volume
    assert main(["mip", str(tmp_path / "study"), "-o", str(tmp_path / "out")]) == 0
    captured = capsys.readouterr()
    assert len(captured.out.split()) == 3
    assert captured.err.strip().splitlines()[-1] == "volume: projected 3, skipped 1, failed 0"


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="not a git checkout")
def test_quickstart_output_is_ignored_by_git():
    for path in ("quickstart-out/dicom/IM0001.dcm", "quickstart-out/coronal_mip.png"):
        done = subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT)
        assert done.returncode == 0, f"{path} would show in git status"

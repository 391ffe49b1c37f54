"""One numbering: slice and frame numbers on the command line count from 1 (as picture names and
viewers do), the Python API from 0; ``volume ls`` shows sizes and voxels in ``Volume``'s order."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from synth import write_enhanced_4d, write_series

from volume import load
from volume.cli import main
from volume.errors import EXIT_USAGE
from volume.io.image import read_picture


@pytest.fixture(scope="module")
def series(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("numbering") / "t1"
    write_series(folder, shape=(5, 10, 12), pixel_spacing=(1.5, 1.25), slice_spacing=3.0,
                 field_fn=lambda x, y, z: 300.0 + 4.0 * x + 2.0 * z, series_number=5, description="t1")
    return folder


@pytest.fixture(scope="module")
def four_d(tmp_path_factory) -> Path:
    """Three frames; frame t (0-based) holds the field + 100 t."""
    folder = tmp_path_factory.mktemp("numbering_4d") / "fmri"
    folder.mkdir()
    write_enhanced_4d(folder / "fmri.dcm", shape=(3, 6, 12, 10), field_fn=lambda x, y, z: 300.0 + 0.0 * x)
    return folder


def _ls_row(capsys, path: Path) -> dict[str, str]:
    assert main(["ls", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = re.split(r"\s{2,}", lines[0].strip())
    return dict(zip(header, re.split(r"\s{2,}", lines[1].strip()), strict=False))


def test_ls_shows_size_and_voxel_in_the_order_of_volume(series, capsys):
    row = _ls_row(capsys, series)
    vol = load(series)
    size, voxel = row["SIZE SxRxC"], row["VOXEL SxRxC (mm)"]
    assert size == "x".join(map(str, vol.shape)) == "5x10x12"  # slices x rows x columns
    assert voxel == "x".join(f"{v:.3g}" for v in vol.spacing) == "3x1.5x1.25"
    shown = re.match(r"Volume\((\S+), (\S+) mm, (\w+),", repr(vol))
    assert shown.groups() == (size, voxel, row["ORIENTATION"].split()[-1])  # the letters too: SPL
    assert main(["ls", str(series), "--json"]) == 0
    described = json.loads(capsys.readouterr().out)["stacks"][0]
    assert tuple(described["shape"]) == vol.shape


def test_ls_of_a_4d_series_names_its_frames_as_volume_does(four_d, capsys):
    row = _ls_row(capsys, four_d)
    vol = load(four_d)
    assert row["SIZE SxRxC"] == "6x12x10, 3 frames"
    assert "6x12x10, 3 frames" in repr(vol)


def test_render_frame_counts_from_1(four_d, tmp_path, capsys):
    pytest.importorskip("vtk")
    from volume.render.offscreen import render

    vol = load(four_d)
    small = ["--mode", "mip", "--window", "0,800", "--size", "32x32", "--no-marker"]
    pictures = {}
    for frame in (1, 3):
        out = tmp_path / f"f{frame}.png"
        assert main(["render", str(four_d), *small, "--frame", str(frame), "-o", str(out)]) == 0
        assert f"using frame {frame}" in capsys.readouterr().err
        pictures[frame] = np.asarray(read_picture(out))
    for frame, index in ((1, 0), (3, 2)):  # the API counts from 0
        api = render(vol, mode="mip", window=(-400, 400), size=(32, 32), marker=False, frame=index)  # 0,800: centre, width
        assert np.array_equal(pictures[frame], api[..., :3] if pictures[frame].ndim == 3 else api)
    assert pictures[3].mean() > pictures[1].mean()  # frame 3 holds +200
    for bad in ("0", "4"):
        assert main(["render", str(four_d), *small, "--frame", bad, "-o", str(tmp_path / "x.png")]) == EXIT_USAGE
        assert "1..3" in capsys.readouterr().err or bad == "0"
    assert not (tmp_path / "x.png").exists()


def test_reslice_slice_counts_from_1(series, tmp_path):
    assert main(["reslice", str(series), "--plane", "axial", "--no-labels", "-o", str(tmp_path / "all")]) == 0
    names = sorted(p.name for p in (tmp_path / "all").iterdir())
    assert names[0] == "axial_001.png"
    assert main(["reslice", str(series), "--plane", "axial", "--no-labels", "--slice", "1",
                 "-o", str(tmp_path / "one.png")]) == 0
    assert np.array_equal(read_picture(tmp_path / "one.png"), read_picture(tmp_path / "all" / names[0]))
    assert main(["reslice", str(series), "--plane", "axial", "--slice", "0", "-o", str(tmp_path / "z.png")]) == EXIT_USAGE

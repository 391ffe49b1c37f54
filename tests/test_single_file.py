"""One file given where a series is expected stands for its series (as with dcm2niix), and says so."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from synth import write_series

from volume.cli import main
from volume.io.image import read_picture


def _field(x, y, z):
    return 200.0 + 3.0 * x + 2.0 * z


@pytest.fixture()
def folder(tmp_path) -> Path:
    """Two series in one folder, as many exports have them: 6 slices of series 21, 4 of series 22."""
    root = tmp_path / "export"
    write_series(root, shape=(6, 12, 14), field_fn=_field, series_number=21, description="t2", names="ordered")
    other = write_series(tmp_path / "tmp22", shape=(4, 8, 8), series_number=22, description="other", seed=5)
    for p in other.paths:
        p.rename(root / f"X{p.name}")
    return root


def _warnings(err: str) -> list[str]:
    return [ln for ln in err.splitlines() if ln.startswith("volume: warning:")]


def test_convert_one_file_converts_its_series_and_says_so(folder, tmp_path, capsys):
    one = folder / "IM0003.dcm"
    assert main(["convert", str(one), "-o", str(tmp_path / "out")]) == 0
    captured = capsys.readouterr()
    written = captured.out.split()
    assert [Path(p).name for p in written] == ["21_t2.nii.gz", "21_t2.json"]  # series 22 is not converted
    assert nib.load(written[0]).shape == (14, 12, 6)
    lines = _warnings(captured.err)
    assert len(lines) == 1
    assert f"{one}: one image of series 21 t2 (6 files in {folder})" in lines[0] and "--single-file" in lines[0]
    # the image alone, when asked
    assert main(["convert", str(one), "--single-file", "-o", str(tmp_path / "alone")]) == 0
    captured = capsys.readouterr()
    assert nib.load(captured.out.split()[0]).shape == (14, 12, 1) and _warnings(captured.err) == []


def test_mip_reslice_and_render_of_one_file_use_its_series(folder, tmp_path, capsys):
    one = folder / "IM0001.dcm"
    assert main(["mip", str(one), "--no-labels", "-o", str(tmp_path / "one.png")]) == 0
    assert "one image of series 21" in capsys.readouterr().err
    assert main(["mip", str(folder), "--series", "21", "--no-labels", "-o", str(tmp_path / "all.png")]) == 0
    np.testing.assert_array_equal(read_picture(tmp_path / "one.png"), read_picture(tmp_path / "all.png"))
    assert main(["reslice", str(one), "--spacing", "2", "-o", str(tmp_path / "r.nii.gz")]) == 0
    assert "reslicing the whole series" in capsys.readouterr().err
    assert nib.load(tmp_path / "r.nii.gz").shape[2] > 1
    pytest.importorskip("vtk")
    assert main(["render", str(one), "--size", "48x48", "-o", str(tmp_path / "v.png")]) == 0
    assert "rendering the whole series" in capsys.readouterr().err


def test_mip_of_a_lone_image_says_what_it_is_in_one_line(tmp_path, capsys):
    lone = write_series(tmp_path / "lone", shape=(1, 8, 8), series_number=23, description="scout")
    assert main(["mip", str(lone.paths[0]), "-o", str(tmp_path / "x.png")]) == 4
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "series 23 is a single image (1 file), not a volume" in err[0] and "volume png" in err[0]
    assert not (tmp_path / "x.png").exists()

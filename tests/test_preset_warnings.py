"""Presets made for another modality are warned about, and warnings name the series they are about."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from synth import write_series

from volume.cli import main
from volume.ops.presets import PRESETS, preset_name, preset_warning


def _mr(folder: Path, **kw):
    return write_series(folder, shape=(5, 10, 12), field_fn=lambda x, y, z: 300.0 + 4.0 * x, series_number=31,
                        description="t1 axial", **kw)


def _ct(folder: Path, **kw):
    return write_series(folder, shape=(5, 10, 12), field_fn=lambda x, y, z: 10.0 * x, modality="CT",
                        stored_dtype=np.int16, series_number=32, description="ct head", **kw)


def _warnings(err: str) -> list[str]:
    return [ln for ln in err.splitlines() if ln.startswith("volume: warning:")]


def test_preset_warning_says_which_modality_fits():
    assert preset_name("Soft_Tissue") == "soft-tissue" and preset_name("40,400") is None and preset_name(None) is None
    for name in PRESETS:
        assert preset_warning("--preset", name, hounsfield=True, modality="CT") is None
        text = preset_warning("--preset", name, hounsfield=True, modality="MR")
        assert f"--preset {name}" in text and "Hounsfield" in text and "MR" in text
        assert preset_warning("--preset", name, hounsfield=True, modality="") is None  # unknown: no guess
    assert "CT" in preset_warning("--preset", "mr", hounsfield=False, modality="CT")
    assert preset_warning("--preset", "mr", hounsfield=False, modality="PT") is None


@pytest.mark.parametrize("option", [["--preset", "lung"], ["--window", "lung"]])
def test_mip_warns_about_a_ct_preset_on_mr_and_names_the_series(tmp_path, capsys, option):
    mr, ct = _mr(tmp_path / "mr"), _ct(tmp_path / "ct")
    assert main(["mip", str(mr.folder), *option, "-o", str(tmp_path / "mr.png")]) == 0
    lines = _warnings(capsys.readouterr().err)
    assert len(lines) == 1 and "series 31:" in lines[0] and f"{option[0]} lung" in lines[0] and "MR" in lines[0]
    assert main(["mip", str(ct.folder), *option, "-o", str(tmp_path / "ct.png")]) == 0
    assert _warnings(capsys.readouterr().err) == []


def test_reslice_warns_when_the_window_is_drawn(tmp_path, capsys):
    mr = _mr(tmp_path / "mr")
    assert main(["reslice", str(mr.folder), "--plane", "coronal", "--window", "bone", "-o", str(tmp_path / "cor")]) == 0
    lines = _warnings(capsys.readouterr().err)
    assert len(lines) == 1 and "series 31:" in lines[0] and "--window bone" in lines[0]
    # a NIfTI file is not windowed: nothing to warn about
    assert main(["reslice", str(mr.folder), "--plane", "coronal", "--window", "bone", "-o",
                 str(tmp_path / "cor.nii.gz")]) == 0
    assert _warnings(capsys.readouterr().err) == []


def test_png_warns_per_series_with_its_folder_and_count(tmp_path, capsys):
    mr, ct = _mr(tmp_path / "tree" / "a"), _ct(tmp_path / "tree" / "b")
    assert main(["png", str(tmp_path / "tree"), "--preset", "lung", "-o", str(tmp_path / "png")]) == 0
    lines = _warnings(capsys.readouterr().err)
    assert len(lines) == 1
    assert "--preset lung" in lines[0] and f"series 31 t1 axial in {mr.folder} (5 files)" in lines[0]
    assert "series 32" not in lines[0] and str(ct.folder) not in lines[0]


def test_png_threshold_warning_names_the_series(tmp_path, capsys):
    """BRAINIX's ROI masks say center 0, width 1: the warning must say which series that was."""
    mask = write_series(tmp_path / "tree" / "roi", shape=(4, 8, 8), field_fn=lambda x, y, z: (x > -25) * 1.0,
                        series_number=44, description="mask", extra={"WindowCenter": "0", "WindowWidth": "1"})
    _mr(tmp_path / "tree" / "t1")
    assert main(["png", str(tmp_path / "tree"), "-o", str(tmp_path / "png")]) == 0
    lines = _warnings(capsys.readouterr().err)
    assert len(lines) == 1 and "threshold" in lines[0]
    assert lines[0].endswith(f"series 44 mask in {mask.folder} (4 files)")


def test_render_warns_about_presets_of_the_other_modality(tmp_path, capsys):
    pytest.importorskip("vtk")
    mr, ct = _mr(tmp_path / "mr"), _ct(tmp_path / "ct")
    small = ["--size", "48x48", "--no-marker"]
    assert main(["render", str(mr.folder), "--preset", "ct-bone", *small, "-o", str(tmp_path / "a.png")]) == 0
    lines = _warnings(capsys.readouterr().err)
    assert len(lines) == 1 and "series 31:" in lines[0] and "--preset ct-bone" in lines[0]
    assert main(["render", str(ct.folder), "--preset", "mr", *small, "-o", str(tmp_path / "b.png")]) == 0
    lines = _warnings(capsys.readouterr().err)
    assert len(lines) == 1 and "series 32:" in lines[0] and "--preset mr" in lines[0]
    assert main(["render", str(ct.folder), "--preset", "ct-bone", *small, "-o", str(tmp_path / "c.png")]) == 0
    assert _warnings(capsys.readouterr().err) == []


def _4d(folder: Path):
    n = 4
    positions = [np.array([-30.0, -40.0, 20.0 + 3.0 * (k % n)]) for k in range(2 * n)]
    return write_series(folder, shape=(2 * n, 10, 12), positions=positions, series_number=33, description="fmri",
                        field_fn=lambda x, y, z: 200.0 + 3.0 * x, names="ordered",
                        extra=lambda k: {"TemporalPositionIdentifier": 1 + k // n})


def test_every_warning_of_reslice_render_and_mesh_names_its_series(tmp_path, capsys):
    four_d = _4d(tmp_path / "4d")
    assert main(["reslice", str(four_d.folder), "--plane", "axial", "-o", str(tmp_path / "ax")]) == 0
    lines = _warnings(capsys.readouterr().err)
    assert lines and all(ln.startswith("volume: warning: series 33: ") for ln in lines), lines
    pytest.importorskip("vtk")
    assert main(["render", str(four_d.folder), "--size", "48x48", "-o", str(tmp_path / "r.png")]) == 0
    lines = _warnings(capsys.readouterr().err)
    assert lines and all(ln.startswith("volume: warning: series 33: ") for ln in lines), lines
    assert main(["mesh", str(_mr(tmp_path / "mr").folder), "-o", str(tmp_path / "m.stl")]) == 0
    lines = _warnings(capsys.readouterr().err)
    assert len(lines) == 1 and lines[0].startswith("volume: warning: series 31: no --level given"), lines

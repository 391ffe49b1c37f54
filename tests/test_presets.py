"""One preset vocabulary: every command that draws pictures takes the same names (``bone`` and
``ct-bone`` alike), resolves them the same way (``resolve_window``) and lists them in its help."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from pydicom.data import get_testdata_file
from synth import write_series

from volume.cli import main
from volume.errors import EXIT_USAGE, UsageError
from volume.io.image import read_picture
from volume.ops import presets
from volume.ops.window import Window, parse_window, resolve_window

#: Every name a preset had before the vocabulary was one: the window presets of mip/png and the
#: transfer functions of render/view. Each must keep working.
OLD_NAMES = ("brain", "subdural", "stroke", "soft-tissue", "mediastinum", "abdomen", "liver", "lung", "bone",
             "ct-bone", "ct-soft-tissue", "ct-lung", "mr")


@pytest.fixture(scope="module")
def ct(tmp_path_factory) -> Path:
    """A small CT whose values span -1000..2000 HU (so every CT window draws something)."""
    folder = tmp_path_factory.mktemp("preset_ct") / "ct"
    write_series(folder, shape=(8, 16, 18), field_fn=lambda x, y, z: 40.0 * x + 10.0 * y + 5.0 * z,
                 modality="CT", stored_dtype=np.int16, slopes=1.0, intercepts=-1024.0, series_number=3,
                 description="ct")
    return folder


def test_every_old_name_and_every_alias_names_one_preset():
    for name in OLD_NAMES:
        assert presets.preset_name(name) is not None, name
    for preset in presets.TABLE:
        for name in preset.names:
            assert presets.find_preset(name) is preset
            assert presets.find_preset(name.upper().replace("-", "_")) is preset  # case and _ ignored
    assert presets.preset_name("ct-bone") == presets.preset_name("bone") == "bone"
    with pytest.raises(UsageError, match="ct-bone"):  # the refusal lists the names with their aliases
        presets.find_preset("nope")


def test_each_preset_says_its_2d_window_and_its_3d_transfer_function():
    from volume.render.presets import PRESETS as TRANSFER

    for preset in presets.TABLE:
        assert preset.transfer is None or preset.transfer in TRANSFER
        assert (preset.window is None) == (not preset.hounsfield)  # mr: the automatic window
    assert {p.transfer for p in presets.TABLE} - {None} == set(TRANSFER)  # every transfer function is named
    assert presets.transfer_function("bone") == presets.transfer_function("ct-bone") == "ct-bone"
    with pytest.raises(UsageError, match="2D window"):
        presets.transfer_function("brain")


def test_resolve_window_is_the_same_for_a_name_and_its_alias():
    for preset in presets.TABLE:
        requests = {resolve_window(None, name, "CT") for name in preset.names}
        requests |= {resolve_window(name, None, "CT") for name in preset.names}
        windows = {(r.rule, r.window) for r in requests}
        assert len(windows) == 1, preset.name
    assert resolve_window(None, "ct-bone", "CT").window == Window(480.0, 2500.0)
    assert resolve_window(None, "mr", "MR").rule == "auto"
    assert resolve_window("40,400", None, "CT").window == Window(40.0, 400.0)
    assert resolve_window(None, None, "CT").rule == "dicom" and resolve_window(None, None, "MR").rule == "auto"
    assert parse_window("CT_Lung") == Window(-600.0, 1500.0)
    for bad in (("1,2", "lung"), ("wide", None), (None, "nope")):
        with pytest.raises(UsageError):
            resolve_window(*bad)


def test_the_warning_names_the_option_and_the_name_as_typed():
    request = resolve_window(None, "ct-bone", "MR")
    assert "--preset ct-bone" in request.warning and "Hounsfield" in request.warning
    assert "MR" in resolve_window("mr", None, "CT").warning
    assert resolve_window(None, "bone", "CT").warning is None and resolve_window(None, "bone", None).warning is None


def _picture(path: Path) -> np.ndarray:
    return np.asarray(read_picture(path))


@pytest.mark.parametrize("alias", ["bone", "ct-bone", "CT_BONE"])
def test_mip_png_and_reslice_take_every_name_of_a_preset(ct, tmp_path, alias):
    common = ["--no-labels"]
    assert main(["mip", str(ct), "--preset", alias, *common, "-o", str(tmp_path / "mip.png")]) == 0
    assert main(["mip", str(ct), "--window", "480,2500", *common, "-o", str(tmp_path / "mip_w.png")]) == 0
    assert np.array_equal(_picture(tmp_path / "mip.png"), _picture(tmp_path / "mip_w.png"))
    # reslice pictures take --preset like the others (and --window with a preset name)
    assert main(["reslice", str(ct), "--plane", "coronal", "--preset", alias, *common, "--slice", "2",
                 "-o", str(tmp_path / "r.png")]) == 0
    assert main(["reslice", str(ct), "--plane", "coronal", "--window", alias, *common, "--slice", "2",
                 "-o", str(tmp_path / "r_w.png")]) == 0
    assert main(["reslice", str(ct), "--plane", "coronal", "--window", "480,2500", *common, "--slice", "2",
                 "-o", str(tmp_path / "r_n.png")]) == 0
    assert np.array_equal(_picture(tmp_path / "r.png"), _picture(tmp_path / "r_n.png"))
    assert np.array_equal(_picture(tmp_path / "r_w.png"), _picture(tmp_path / "r_n.png"))
    src = get_testdata_file("CT_small.dcm")
    assert main(["png", src, "--preset", alias, "-o", str(tmp_path / "p.png")]) == 0
    assert main(["png", src, "--window", "480,2500", "-o", str(tmp_path / "p_w.png")]) == 0
    assert np.array_equal(_picture(tmp_path / "p.png"), _picture(tmp_path / "p_w.png"))


def test_reslice_refuses_both_window_and_preset(ct, tmp_path, capsys):
    code = main(["reslice", str(ct), "--plane", "coronal", "--preset", "bone", "--window", "40,400",
                 "-o", str(tmp_path / "r")])
    assert code == EXIT_USAGE and "not both" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("name", ["bone", "ct-bone"])
def test_render_and_turntables_take_every_name_of_a_preset(ct, tmp_path, name, capsys):
    pytest.importorskip("vtk")
    small = ["--size", "40x40", "--no-marker"]
    assert main(["render", str(ct), "--preset", name, *small, "-o", str(tmp_path / f"{name}.png")]) == 0
    assert main(["render", str(ct), "--preset", "ct-bone", *small, "-o", str(tmp_path / "ref.png")]) == 0
    assert np.array_equal(_picture(tmp_path / f"{name}.png"), _picture(tmp_path / "ref.png"))
    # mip/minip take a preset's window as their grey ramp, in render and in mip --turntable
    assert main(["render", str(ct), "--mode", "mip", "--preset", name, *small, "-o", str(tmp_path / "m.png")]) == 0
    assert main(["render", str(ct), "--mode", "mip", "--window", "480,2500", *small,
                 "-o", str(tmp_path / "m_w.png")]) == 0
    assert np.array_equal(_picture(tmp_path / "m.png"), _picture(tmp_path / "m_w.png"))
    assert main(["mip", str(ct), "--turntable", "2", "--size", "40x40", "--preset", name,
                 "-o", str(tmp_path / "spin.gif")]) == 0


def test_render_says_which_presets_draw_a_volume_rendering(ct, tmp_path, capsys):
    pytest.importorskip("vtk")
    code = main(["render", str(ct), "--preset", "brain", "-o", str(tmp_path / "x.png")])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE and "brain is a 2D window" in err and "bone" in err
    assert not (tmp_path / "x.png").exists()


PICTURE_COMMANDS = ("mip", "png", "reslice", "render", "view", "serve")


@pytest.mark.parametrize("command", PICTURE_COMMANDS)
def test_every_picture_command_lists_every_preset_name_in_its_help(command, capsys):
    assert main([command, "--help"]) == 0
    text = re.sub(r"-\s+", "-", re.sub(r"\s+", " ", capsys.readouterr().out))  # help wraps at hyphens
    for preset in presets.TABLE:
        for name in preset.names:
            assert re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text), f"{command} --help: {name}"


def test_the_docs_table_of_presets_is_the_table():
    page = (Path(__file__).resolve().parent.parent / "docs" / "conventions.md").read_text(encoding="utf-8")
    found = re.search(r"<!-- presets-table -->\n(.*?)\n<!-- /presets-table -->", page, flags=re.S)
    assert found and found.group(1) == presets.markdown_table(), "regenerate it: python -m volume.ops.presets"

"""``-o`` says what is written: an extension a command cannot write is a usage error listing what it
can, a picture name for many pictures says what to do, and nothing is created on refusal."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from synth import write_series

from volume.cli import main
from volume.errors import UsageError
from volume.io.image import read_picture
from volume.io.outputs import FILE_SUFFIXES, FOLDER, output_kind


@pytest.fixture(scope="module")
def mr(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("out_mr") / "mr"
    write_series(folder, shape=(6, 12, 14), field_fn=lambda x, y, z: 200.0 + 3.0 * x + z, series_number=21,
                 description="t2")
    return folder


def _one_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("volume: ") and "Traceback" not in err, err
    return lines[0]


def test_output_kind_decides_file_or_folder(tmp_path):
    formats = {".png": "picture", ".nii.gz": "nifti", ".nii": "nifti"}
    assert output_kind(tmp_path / "a.png", formats) == ("picture", tmp_path / "a.png")
    assert output_kind(str(tmp_path / "a.NII.GZ"), formats)[0] == "nifti"
    assert output_kind(str(tmp_path / "slabs"), formats)[0] == FOLDER
    assert output_kind(str(tmp_path / "results.v2"), formats)[0] == FOLDER  # not a file format
    assert output_kind(str(tmp_path / "a.gif") + "/", formats)[0] == FOLDER  # a trailing slash says folder
    (tmp_path / "b.gif").mkdir()
    assert output_kind(str(tmp_path / "b.gif"), formats)[0] == FOLDER  # an existing folder
    for suffix in sorted(FILE_SUFFIXES - set(formats)):
        with pytest.raises(UsageError, match=r"\.png, \.nii\.gz, \.nii or a folder"):
            output_kind(str(tmp_path / f"x{suffix}"), formats)
    with pytest.raises(UsageError, match="takes a file"):
        output_kind(str(tmp_path / "plain"), formats, folder=False)


def test_mip_refuses_an_extension_it_cannot_write(mr, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["mip", str(mr), "-o", "out.tif"]) == 2
    line = _one_error(capsys.readouterr().err)
    assert "out.tif" in line and ".png" in line and ".nii.gz" in line and ".dcm" in line and "out.tif/" in line
    assert list(tmp_path.iterdir()) == []
    # a .gif is a turntable's: mip says to add --turntable (the registry of formats knows it)
    assert main(["mip", str(mr), "-o", "out.gif"]) == 2
    assert "--turntable" in _one_error(capsys.readouterr().err)
    assert list(tmp_path.iterdir()) == []
    # the same name with a slash is a folder, as asked
    assert main(["mip", str(mr), "-o", "out.tif/"]) == 0
    assert [p.name for p in (tmp_path / "out.tif").iterdir()] == ["21_t2_mip_coronal.png"]


def test_reslice_picture_name_for_many_slices_says_what_to_do(mr, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["reslice", str(mr), "--plane", "coronal", "-o", "cor.png"]) == 2
    line = _one_error(capsys.readouterr().err)
    assert "cor.png" in line and "-o cor/" in line and "--slice N" in line and ".nii.gz" in line
    assert list(tmp_path.iterdir()) == []
    assert main(["reslice", str(mr), "--plane", "coronal", "-o", "cor.webm"]) == 2
    assert ".webm" in _one_error(capsys.readouterr().err)
    # all of them in a folder, or one of them by number: the same picture
    assert main(["reslice", str(mr), "--plane", "coronal", "-o", "cor"]) == 0
    files = capsys.readouterr().out.split()
    assert len(files) > 3
    k = len(files) // 2 + 1
    assert main(["reslice", str(mr), "--plane", "coronal", "--slice", str(k), "-o", "one.png"]) == 0
    assert capsys.readouterr().out.split() == ["one.png"]
    np.testing.assert_array_equal(read_picture(tmp_path / "one.png"), read_picture(Path(files[k - 1])))
    assert main(["reslice", str(mr), "--plane", "coronal", "--slice", str(len(files) + 1), "-o", "two.png"]) == 2
    assert f"has {len(files)} slices" in _one_error(capsys.readouterr().err)
    assert not (tmp_path / "two.png").exists()
    assert main(["reslice", str(mr), "--plane", "coronal", "--slice", "2", "-o", "x.nii.gz"]) == 2
    assert "--slice" in _one_error(capsys.readouterr().err)


def test_png_outputs(mr, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    one = sorted(mr.iterdir())[0]
    assert main(["png", str(mr), "-o", "all.png"]) == 2  # a folder of 6 files into one picture name
    assert "all/" in _one_error(capsys.readouterr().err)
    assert main(["png", str(one), "-o", "x.tif"]) == 2
    line = _one_error(capsys.readouterr().err)
    assert ".png, .jpg, .gif or a folder" in line
    assert main(["png", str(one), "-o", "x.gif"]) == 2
    assert "--gif" in _one_error(capsys.readouterr().err)
    assert list(tmp_path.iterdir()) == []
    assert main(["png", str(one), "--gif", "-o", "x.gif"]) == 0  # exactly the file asked for
    assert capsys.readouterr().out.split() == ["x.gif"]
    from PIL import Image

    with Image.open(tmp_path / "x.gif") as im:
        assert im.format == "GIF" and im.size == (14, 12)


def test_convert_takes_a_folder_only(mr, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["convert", str(mr), "-o", "t2.nii.gz"]) == 2
    line = _one_error(capsys.readouterr().err)
    assert "t2.nii.gz" in line and "a folder" in line and "for each series" in line
    assert list(tmp_path.iterdir()) == []


def test_reslice_pictures_without_o(mr, tmp_path, monkeypatch, capsys):
    """A folder named after the series holding pictures named by what they are; one slice here."""
    monkeypatch.chdir(tmp_path)
    assert main(["reslice", str(mr), "--spacing", "3", "--format", "png"]) == 0
    files = capsys.readouterr().out.split()
    assert files[0] == "21_t2_iso_3mm/iso_3mm_001.png" and len(files) > 2
    assert main(["reslice", str(mr), "--spacing", "3", "--slice", "2"]) == 0
    assert capsys.readouterr().out.split() == ["21_t2_iso_3mm_002.png"]
    np.testing.assert_array_equal(read_picture(tmp_path / "21_t2_iso_3mm_002.png"), read_picture(tmp_path / files[1]))

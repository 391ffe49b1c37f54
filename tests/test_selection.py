"""Choosing a series: never a silent pick among several, messages as ``volume ls`` shows stacks and
worded for the interface in use, folder names and parts of descriptions when unambiguous."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import pytest
from synth import CORONAL, SAGITTAL, write_series

import volume
from volume.cli import main
from volume.errors import AmbiguousSeriesError

TREE = {  # folder: (series number, description)
    "knee": (301, "knee t1"),
    "brain/T2": (301, "brain t2"),
    "brain/T1": (601, "T1/SE/extrp"),
    "brain/FLAIR": (401, "sT2W/FLAIR"),
    "brain/ROI": (5339, "FLAIR_ROI"),
}


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("selection")
    for k, (folder, (number, description)) in enumerate(TREE.items()):
        write_series(root / folder, shape=(4 + k, 10, 12), series_number=number, description=description, seed=k)
    return root


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_shared_numbers_get_ids_that_no_other_series_answers_to(tree):
    ids = {s.id: s.series_description for s in volume.scan(tree).stacks}
    assert ids == {"301#1": "brain t2", "301#2": "knee t1", "401": "sT2W/FLAIR", "601": "T1/SE/extrp",
                   "5339": "FLAIR_ROI"}


@pytest.mark.parametrize("command", [
    ["reslice", "--spacing", "2", "-o", "x.nii.gz"],
    ["mip", "-o", "x.png"],
    ["convert", "-o", "out"],
])
def test_a_number_two_series_share_is_never_a_silent_pick(tree, tmp_path, monkeypatch, capsys, command):
    monkeypatch.chdir(tmp_path)
    assert main([command[0], str(tree), "--series", "301", *command[1:]]) == 4
    line = _one_line(capsys.readouterr().err)
    assert f"volume: {tree}: --series 301 matches 2 stacks of 2 series; choose one with --series ID: " in line
    assert "301#1 brain t2 (MR volume 5x10x12); 301#2 knee t1 (MR volume 4x10x12)" in line
    assert "series=" not in line
    assert list(tmp_path.iterdir()) == []


def test_the_python_message_speaks_python(tree):
    with pytest.raises(AmbiguousSeriesError) as info:
        volume.load(tree, series="301")
    text = str(info.value)
    assert 'series="301" matches 2 stacks' in text and 'choose one with series="ID"' in text
    assert "--series" not in text.replace(str(tree), "") and "301#2 knee t1 (MR volume 4x10x12)" in text
    assert volume.load(tree, series="301#2").meta["series_description"] == "knee t1"


@pytest.mark.parametrize("selector, description", [
    ("T1", "T1/SE/extrp"),       # a folder name, as people name series on disk (descriptions hold t1 twice)
    ("flair", "sT2W/FLAIR"),     # a folder name, case ignored
    ("t2", "brain t2"),          # the folder T2 before any description holding t2
    ("extrp", "T1/SE/extrp"),    # a part of one description
    ("FLAIR_ROI", "FLAIR_ROI"),  # a whole description
])
def test_folder_names_and_parts_of_descriptions_select_when_unambiguous(tree, tmp_path, selector, description, capsys):
    out = tmp_path / f"{selector}.nii.gz"
    assert main(["reslice", str(tree), "--series", selector, "--spacing", "2", "-o", str(out)]) == 0
    capsys.readouterr()
    assert volume.load(tree, series=selector).meta["series_description"] == description
    assert nib.load(out).shape[0] > 0


def test_a_part_of_several_descriptions_lists_them(tree, capsys):
    assert main(["reslice", str(tree), "--series", "fla", "--spacing", "2", "-o", "never.nii.gz"]) == 4
    line = _one_line(capsys.readouterr().err)
    assert "--series fla matches 2 stacks of 2 series" in line
    assert "401 sT2W/FLAIR (MR volume 7x10x12); 5339 FLAIR_ROI (MR volume 8x10x12)" in line


def test_a_number_is_never_a_part_of_a_description(tree, capsys):
    """No series is numbered 1; "T1/SE/extrp" and "knee t1" hold a 1, and still nothing is picked."""
    assert main(["reslice", str(tree), "--series", "1", "--spacing", "2", "-o", "never.nii.gz"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "no stack matches '1'" in line and "601 T1/SE/extrp (MR volume 6x10x12)" in line


def test_no_selector_where_one_is_needed_lists_every_stack_as_ls_does(tree, capsys):
    assert main(["reslice", str(tree), "--spacing", "2", "-o", "never.nii.gz"]) == 4
    line = _one_line(capsys.readouterr().err)
    assert f"volume: {tree}: 5 stacks of 5 series found; choose one with --series ID: 301#1 brain t2" in line
    assert "601 T1/SE/extrp (MR volume 6x10x12)" in line


def test_several_stacks_of_one_series(tmp_path, capsys):
    """A three-plane localizer is one series: --series 9 takes all its planes where several fit
    (mip) and lists them where one is needed (reslice)."""
    for iop in (CORONAL, SAGITTAL):
        write_series(tmp_path / "loc", shape=(3, 8, 8), iop=iop, series_number=9, description="loc",
                     series_uid="1.2.826.0.1.3680043.8.498.99", seed=len(iop) + int(iop[1] * 10))
    assert main(["mip", str(tmp_path / "loc"), "--series", "9", "-o", str(tmp_path / "mips")]) == 0
    assert len(capsys.readouterr().out.split()) == 2
    assert main(["reslice", str(tmp_path / "loc"), "--series", "9", "--spacing", "2", "-o", "x.nii.gz"]) == 4
    line = _one_line(capsys.readouterr().err)
    assert "--series 9 matches 2 stacks; choose one with --series ID: 9_coronal loc (MR localizer 3x8x8); " \
           "9_sagittal loc (MR localizer 3x8x8)" in line

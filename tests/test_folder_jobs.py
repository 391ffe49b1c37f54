"""Folder jobs in the library (issue 23 item 3): ``volume mip``, ``reslice`` and ``convert`` are jobs
of ``volume.jobs`` that the Python API calls as the command line does, with frozen options, events
to watch them, and the rule that one file stands for its series."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from synth import write_series

import volume
from volume.errors import NotAVolumeError, UsageError
from volume.jobs.events import Events


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("study")
    write_series(root / "t1", shape=(8, 12, 10), series_number=3, description="t1")
    write_series(root / "t2", shape=(6, 10, 10), series_number=4, description="t2", seed=1)
    return root


def _recording() -> tuple[Events, dict[str, list]]:
    said: dict[str, list] = {"warn": [], "status": [], "written": [], "progress": []}

    import contextlib

    @contextlib.contextmanager
    def bar(label, total):
        said["progress"].append(label)
        yield lambda n=1: None

    return Events(warn=said["warn"].append, status=said["status"].append, written=said["written"].append,
                  progress=bar), said


def test_mip_folder_projects_every_stack_and_announces_each_file(study, tmp_path):
    events, said = _recording()
    batch = volume.mip_folder(study, tmp_path / "mips", volume.MipOptions(planes=("axial", "coronal")), events=events)
    assert [r.status for r in batch.results] == ["projected", "projected"]
    assert said["written"] == batch.files and len(batch.files) == 2
    assert all(f.suffix == ".png" and f.exists() and "mip_sheet" in f.name for f in batch.files)
    assert "projecting 3" in said["progress"] and batch.exit_code() == 0
    again = volume.mip_folder(study, tmp_path / "mips", volume.MipOptions(planes=("axial", "coronal")))
    assert [r.status for r in again.results] == ["skipped", "skipped"] and again.exit_code() == 5


def test_mip_folder_writes_the_projection_as_nifti_on_the_series_grid(study, tmp_path):
    out = tmp_path / "t1_mip.nii.gz"
    batch = volume.mip_folder(study / "t1", out, volume.MipOptions(planes=("axial",)))
    assert batch.files == [out]
    vol = volume.load(study / "t1")
    img = nib.load(out)
    assert img.shape[2] == 1  # one voxel along the projected (slice) axis
    np.testing.assert_allclose(np.asarray(img.dataobj)[..., 0].T, vol.array.max(axis=0))


def test_mip_options_refuse_what_the_command_refuses():
    with pytest.raises(UsageError, match="--step needs --slab"):
        volume.MipOptions(step_mm=5)
    with pytest.raises(UsageError, match="--slab works on one plane"):
        volume.MipOptions(planes=("axial", "coronal"), slab_mm=10)
    with pytest.raises(UsageError):
        volume.MipOptions(planes=("diagonal",))
    with pytest.raises(UsageError):
        volume.MipOptions(window="bogus")
    assert volume.MipOptions(planes=("Axial", "axial")).planes == ("axial",)


def test_one_output_file_for_several_stacks_is_refused_before_any_work(study, tmp_path):
    with pytest.raises(UsageError, match="2 stacks to project"):
        volume.mip_folder(study, tmp_path / "one.png")
    assert not (tmp_path / "one.png").exists()


def test_reslice_folder_writes_a_coronal_grid_from_one_file_of_the_series(study, tmp_path):
    one = sorted((study / "t1").iterdir())[3]  # a file stands for its series
    events, said = _recording()
    out = tmp_path / "cor.nii.gz"
    done = volume.reslice_folder(one, out, volume.ResliceOptions(plane="coronal", spacing=(2.0,)), events=events)
    assert done.status == "resliced" and done.files == [out] and said["written"] == [out]
    assert any("one image of series" in w for w in said["warn"])
    affine = nib.load(out).affine
    np.testing.assert_allclose(np.linalg.norm(affine[:3, :3], axis=0), [2.0, 2.0, 2.0])
    np.testing.assert_allclose(np.abs(affine[:3, 2]), [0.0, 2.0, 0.0], atol=1e-9)  # slices step along A-P
    assert volume.reslice_folder(one, out, volume.ResliceOptions(plane="coronal", spacing=(2.0,))).status == "skipped"


def test_reslice_options_need_one_target():
    with pytest.raises(UsageError, match="say what to reslice to"):
        volume.ResliceOptions()
    with pytest.raises(UsageError, match="choose one of"):
        volume.ResliceOptions(plane="axial", normal=(0, 0, 1))
    assert volume.ResliceOptions(spacing=(1.0,), thickness=4, mode="max").what == "iso_1mm_4mm_max"


def test_convert_folder_in_a_pool_with_a_report(study, tmp_path):
    report = tmp_path / "report.json"
    seen = []
    results = volume.convert_folder(study, tmp_path / "nii", workers=2, report=report, on_result=seen.append)
    assert sorted(r.status for r in results) == ["converted", "converted"] and seen == results
    doc = json.loads(report.read_text())
    assert doc["totals"]["converted"] == 2 and doc["options"]["workers"] == 2
    with pytest.raises(UsageError, match="--workers is for the local pool"):
        volume.convert_folder(study, tmp_path / "x", workers=2, scheduler="tcp://nowhere:1")


def test_convert_folder_single_file_takes_the_file_literally(study, tmp_path):
    one = sorted((study / "t2").iterdir())[0]
    whole = volume.convert_folder(one, tmp_path / "a")
    alone = volume.convert_folder(one, tmp_path / "b", single_file=True)
    assert nib.load(whole[0].files[0]).shape[2] == 6
    assert len(alone) == 1 and (alone[0].status == "failed" or nib.load(alone[0].files[0]).shape[2] == 1)


def test_mip_folder_of_a_folder_without_volumes_says_so(tmp_path):
    write_series(tmp_path / "loc", shape=(1, 12, 10), description="loc")
    with pytest.raises(NotAVolumeError):
        volume.mip_folder(tmp_path / "loc", tmp_path / "out")

"""``volume convert`` on synthetic series whose geometry and values the test chose.

Outputs are read back with nibabel: every voxel, placed through the written RAS affine, must hold
the field value at that patient position. The CLI runs in-process (``volume.cli.main``).
"""

from __future__ import annotations

import json
import os
import pickle
import re
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from synth import AXIAL, SAGITTAL, linear_field, oblique_iop, write_series

import volume
from volume.cli import main
from volume.errors import EXIT_NO_DICOM, EXIT_OUTPUT_EXISTS, EXIT_PARTIAL, EXIT_USAGE
from volume.jobs.convert import (
    CONVERTED,
    FAILED,
    SKIPPED,
    ConvertOptions,
    convert,
    convert_stack,
    exit_code,
    plan,
    stack_stem,
)


def _check_field(img: nib.Nifti1Image, field=linear_field, atol: float = 0.51) -> None:
    """Every voxel of a 3D ``img`` equals ``field`` at its LPS position through the RAS sform."""
    assert int(img.header["sform_code"]) == 1 and int(img.header["qform_code"]) == 1
    np.testing.assert_allclose(img.get_qform(), img.affine, atol=1e-3)
    ijk = np.stack(np.meshgrid(*(np.arange(n) for n in img.shape[:3]), indexing="ij"), axis=-1)
    ras = ijk @ img.affine[:3, :3].T + img.affine[:3, 3]
    x, y, z = -ras[..., 0], -ras[..., 1], ras[..., 2]
    np.testing.assert_allclose(img.get_fdata(), field(x, y, z), atol=atol)


def _run(capsys, *args: str) -> tuple[int, list[str], str]:
    code = main(["convert", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def _load_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


# --- geometry and values ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "iop", [AXIAL, SAGITTAL, oblique_iop(degrees=23.7)], ids=["axial", "sagittal", "oblique"]
)
def test_every_voxel_where_dicom_says(tmp_path: Path, capsys, iop) -> None:
    write_series(tmp_path / "in", iop=iop, description="T1 mprage", series_number=5,
                 extra={"EchoTime": 12.5, "RepetitionTime": 2300, "InversionTime": 900, "FlipAngle": 9})
    code, out, err = _run(capsys, tmp_path / "in", "-o", tmp_path / "out")
    assert code == 0, err
    image, sidecar = tmp_path / "out" / "5_T1_mprage.nii.gz", tmp_path / "out" / "5_T1_mprage.json"
    assert out == [str(image), str(sidecar)]
    assert "converted 1, skipped 0, failed 0" in err
    img = nib.load(image)
    assert img.shape == (10, 12, 6)
    _check_field(img)
    meta = _load_json(sidecar)
    assert meta["EchoTime"] == pytest.approx(0.0125)  # seconds, as BIDS wants
    assert meta["RepetitionTime"] == pytest.approx(2.3)
    assert meta["InversionTime"] == pytest.approx(0.9)
    assert meta["FlipAngle"] == 9
    assert meta["SeriesNumber"] == 5 and meta["SeriesDescription"] == "T1 mprage"
    assert meta["Modality"] == "MR" and meta["Manufacturer"] == "SynthCo"
    np.testing.assert_allclose(meta["ImageOrientationPatientDICOM"], iop, atol=1e-9)
    assert meta["ConversionSoftware"] == "volume" and meta["ConversionSoftwareVersion"] == volume.__version__
    assert meta["TiltCorrected"] is False and meta["GapsResampled"] is False


def test_ct_hounsfield_units_stay_int16(tmp_path: Path, capsys) -> None:
    write_series(tmp_path / "in", modality="CT", intercepts=-1024.0,
                 field_fn=lambda x, y, z: linear_field(x, y, z) - 1500.0)
    code, out, _ = _run(capsys, tmp_path / "in", "-o", tmp_path / "out", "--format", "nii")
    assert code == 0
    assert out[0].endswith(".nii")
    img = nib.load(out[0])
    assert img.get_data_dtype() == np.int16
    assert img.dataobj.slope in (1.0, None) and img.dataobj.inter in (0.0, None)
    _check_field(img, lambda x, y, z: linear_field(x, y, z) - 1500.0)


def test_fractional_rescale_values_exact(tmp_path: Path, capsys) -> None:
    write_series(tmp_path / "in", slopes=0.25, intercepts=-7.5)
    code, out, _ = _run(capsys, tmp_path / "in", "-o", tmp_path / "out")
    assert code == 0
    img = nib.load(out[0])
    assert img.get_data_dtype() in (np.int16, np.uint16)  # raw integers + scl_slope/scl_inter
    assert img.dataobj.slope == pytest.approx(0.25)
    _check_field(img, atol=0.126)


def test_varying_rescale_gives_float32(tmp_path: Path, capsys) -> None:
    write_series(tmp_path / "in", slopes=[0.5, 0.25, 1.0, 0.75, 0.5, 2.0])
    code, out, _ = _run(capsys, tmp_path / "in", "-o", tmp_path / "out")
    assert code == 0
    img = nib.load(out[0])
    assert img.get_data_dtype() == np.float32
    _check_field(img, atol=1.01)


def test_4d_series_keeps_frames_and_repetition_time(tmp_path: Path, capsys) -> None:
    uid = "1.2.826.0.1.3680043.8.498.4242"
    for t in range(3):
        write_series(tmp_path / "in", shape=(4, 6, 5), series_uid=uid, seed=t, iop=oblique_iop(),
                     extra={"TemporalPositionIdentifier": t + 1, "RepetitionTime": 2000.0},
                     field_fn=lambda x, y, z, t=t: linear_field(x, y, z) + 100 * t)
    code, out, err = _run(capsys, tmp_path / "in", "-o", tmp_path / "out")
    assert code == 0, err
    img = nib.load(out[0])
    assert img.shape == (5, 6, 4, 3)
    assert img.header.get_zooms()[3] == pytest.approx(2.0)
    assert img.header.get_xyzt_units() == ("mm", "sec")
    for t in range(3):
        _check_field(img.slicer[..., t], lambda x, y, z, t=t: linear_field(x, y, z) + 100 * t)
    assert _load_json(Path(out[1]))["RepetitionTime"] == pytest.approx(2.0)


def test_gantry_tilt_corrected_and_noted(tmp_path: Path, capsys) -> None:
    shift = 2.0 * np.tan(np.radians(12.0))
    positions = [np.array([-20.0, -30.0 + k * shift, 10.0 + 2.0 * k]) for k in range(8)]
    write_series(tmp_path / "in", shape=(8, 20, 12), modality="CT", positions=positions, pixel_spacing=(1.0, 1.0))
    code, out, err = _run(capsys, tmp_path / "in", "-o", tmp_path / "out")
    assert code == 0
    assert "tilt" in err and "corrected" in err
    img = nib.load(out[0])
    meta = _load_json(Path(out[1]))
    assert meta["TiltCorrected"] is True
    assert meta["GantryTiltCorrectedDegrees"] == pytest.approx(12.0, abs=0.05)
    # every voxel inside a slice's original extent is the field at its position
    data = img.get_fdata()
    ijk = np.stack(np.meshgrid(*(np.arange(n) for n in img.shape), indexing="ij"), axis=-1)
    ras = ijk @ img.affine[:3, :3].T + img.affine[:3, 3]
    lps = ras * np.array([-1.0, -1.0, 1.0])
    expected = linear_field(lps[..., 0], lps[..., 1], lps[..., 2])
    ipps = np.array(positions)[ijk[..., 2]]
    np.testing.assert_allclose((lps - ipps)[..., 2], 0.0, atol=1e-3)  # each voxel in its slice's plane
    src_row = (lps - ipps)[..., 1]  # col_dir is +y, 1 mm rows
    inside = (src_row >= 0) & (src_row <= 19)
    assert inside.sum() >= 8 * 19 * 12
    np.testing.assert_allclose(data[inside], expected[inside], atol=1.01)


def test_gap_refused_then_resampled_with_allow_gaps(tmp_path: Path, capsys) -> None:
    positions = [np.array([0.0, 0.0, 2.0 * k]) for k in range(8) if k != 3]
    write_series(tmp_path / "in", shape=(7, 8, 9), positions=positions)
    code, out, err = _run(capsys, tmp_path / "in", "-o", tmp_path / "out")
    assert code == EXIT_PARTIAL and out == []
    assert "--allow-gaps" in err
    code, out, err = _run(capsys, tmp_path / "in", "-o", tmp_path / "out", "--allow-gaps")
    assert code == 0, err
    img = nib.load(out[0])
    assert img.shape == (9, 8, 8)
    _check_field(img, atol=1.01)
    meta = _load_json(Path(out[1]))
    assert meta["GapsResampled"] is True and meta["GapsResampledSlicesIn"] == 7


# --- names -------------------------------------------------------------------------------------


def test_echoes_become_separate_files(tmp_path: Path, capsys) -> None:
    uid = "1.2.826.0.1.3680043.8.498.4343"
    for e, te in enumerate((10.0, 30.0)):
        write_series(tmp_path / "in", shape=(4, 6, 5), series_uid=uid, seed=e, description="ME GRE",
                     extra={"EchoNumbers": e + 1, "EchoTime": te},
                     field_fn=lambda x, y, z, e=e: linear_field(x, y, z) + 50 * e)
    code, out, _ = _run(capsys, tmp_path / "in", "-o", tmp_path / "out")
    assert code == 0
    names = sorted(Path(p).name for p in out)
    assert names == ["7_ME_GRE_e1.json", "7_ME_GRE_e1.nii.gz", "7_ME_GRE_e2.json", "7_ME_GRE_e2.nii.gz"]
    for e in range(2):
        _check_field(nib.load(tmp_path / "out" / f"7_ME_GRE_e{e + 1}.nii.gz"),
                     lambda x, y, z, e=e: linear_field(x, y, z) + 50 * e)
        meta = _load_json(tmp_path / "out" / f"7_ME_GRE_e{e + 1}.json")
        assert meta["EchoNumber"] == e + 1
        assert meta["EchoTime"] == pytest.approx((0.010, 0.030)[e])


def test_three_plane_localizer_named_apart(tmp_path: Path, capsys) -> None:
    uid = "1.2.826.0.1.3680043.8.498.4444"
    for k, iop in enumerate((AXIAL, SAGITTAL, oblique_iop(degrees=90.0, axis=(1, 0, 0)))):
        write_series(tmp_path / "in", shape=(3, 6, 6), iop=iop, series_uid=uid, seed=k, series_number=1,
                     description="3-plane")
    code, out, _ = _run(capsys, tmp_path / "in", "-o", tmp_path / "out")
    assert code == 0
    images = sorted(Path(p).name for p in out if p.endswith(".nii.gz"))
    assert len(images) == 3 and len(set(images)) == 3
    assert all(n.startswith("1_3-plane_") and "localizer" in n for n in images)


def test_hostile_description_cannot_escape_output(tmp_path: Path, capsys) -> None:
    write_series(tmp_path / "in" / "a", description="../../etc/x", series_number=3)
    write_series(tmp_path / "in" / "b", description="/abs\\..\\pa\x01th\nname\x7f", series_number=4)
    out_dir = tmp_path / "deep" / "out"
    code, out, err = _run(capsys, tmp_path / "in", "-o", out_dir)
    assert code == 0, err
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(Path(p).name for p in out)
    for p in out:
        assert Path(p).resolve().parent == out_dir.resolve()
        assert all(ch.isprintable() and ch not in "/\\" for ch in Path(p).name)
        assert ".." not in Path(p).name
    assert sorted(os.listdir(tmp_path)) == ["deep", "in"]  # nothing landed beside or above -o
    assert sorted(os.listdir(tmp_path / "deep")) == ["out"]
    assert not Path("/etc/x.nii.gz").exists()


def test_same_names_get_deterministic_suffixes_and_series_keeps_its_name(tmp_path: Path, capsys) -> None:
    a = write_series(tmp_path / "in" / "a", description="dup", series_number=2, seed=1)
    b = write_series(tmp_path / "in" / "b", description="DUP", series_number=2, seed=2,
                     field_fn=lambda x, y, z: linear_field(x, y, z) + 7)
    found = volume.scan(tmp_path / "in")
    names = [t.name for t in plan(found.stacks)]
    assert len(names) == 2 and names[0].casefold() != names[1].casefold()
    assert names == [t.name for t in plan(volume.scan(tmp_path / "in").stacks)]  # deterministic
    # converting one series alone gives it the name it has in the whole study
    second = next(t for t in plan(found.stacks) if t.stack.series_uid == b.series_uid)
    code, out, _ = _run(capsys, tmp_path / "in", "-o", tmp_path / "out", "--series", b.series_uid)
    assert code == 0
    assert [Path(p).name for p in out] == [f"{second.name}.nii.gz", f"{second.name}.json"]
    _check_field(nib.load(out[0]), lambda x, y, z: linear_field(x, y, z) + 7)
    assert a.series_uid != b.series_uid


def test_stem_of_stack_without_description(tmp_path: Path) -> None:
    write_series(tmp_path, description="")
    (stack,) = volume.scan(tmp_path).stacks
    assert stack_stem(stack) == "7"


# --- existing outputs, failures, selection ------------------------------------------------------


def test_existing_output_kept_without_force(tmp_path: Path, capsys) -> None:
    write_series(tmp_path / "in", description="T1")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "7_T1.nii.gz").write_bytes(b"keep me")
    before = os.stat(out_dir / "7_T1.nii.gz").st_mtime_ns
    code, out, err = _run(capsys, tmp_path / "in", "-o", out_dir)
    assert code == EXIT_OUTPUT_EXISTS
    assert out == []
    assert "skipped" in err and "7_T1.nii.gz" in err and "--force" in err
    assert "converted 0, skipped 1, failed 0" in err
    assert (out_dir / "7_T1.nii.gz").read_bytes() == b"keep me"
    assert os.stat(out_dir / "7_T1.nii.gz").st_mtime_ns == before
    assert sorted(p.name for p in out_dir.iterdir()) == ["7_T1.nii.gz"]  # no sidecar, no temporaries
    code, out, _ = _run(capsys, tmp_path / "in", "-o", out_dir, "--force")
    assert code == 0 and len(out) == 2
    _check_field(nib.load(out_dir / "7_T1.nii.gz"))


def test_failing_series_does_not_stop_the_others(tmp_path: Path, capsys) -> None:
    write_series(tmp_path / "in" / "good1", description="good one", series_number=1)
    bad = write_series(tmp_path / "in" / "bad", description="broken", series_number=2)
    write_series(tmp_path / "in" / "good3", description="good three", series_number=3)
    # truncate one image's pixel data: the header still scans, decoding fails
    data = bad.paths[2].read_bytes()
    bad.paths[2].write_bytes(data[: len(data) - 100])
    code, out, err = _run(capsys, tmp_path / "in", "-o", tmp_path / "out")
    assert code == EXIT_PARTIAL
    assert sorted(Path(p).name for p in out) == [
        "1_good_one.json", "1_good_one.nii.gz", "3_good_three.json", "3_good_three.nii.gz"
    ]
    failed = [line for line in err.splitlines() if "failed:" in line]
    assert len(failed) == 1 and "series 2" in failed[0]
    assert "converted 2, skipped 0, failed 1" in err
    assert "Traceback" not in err
    assert not any(p.name.startswith("2_") for p in (tmp_path / "out").iterdir())


def test_select_by_number_and_unknown_series(tmp_path: Path, capsys) -> None:
    write_series(tmp_path / "in" / "a", description="A", series_number=11)
    write_series(tmp_path / "in" / "b", description="B", series_number=12)
    code, out, _ = _run(capsys, tmp_path / "in", "-o", tmp_path / "out", "--series", "12")
    assert code == 0 and [Path(p).name for p in out] == ["12_B.nii.gz", "12_B.json"]
    code, out, err = _run(capsys, tmp_path / "in", "-o", tmp_path / "out", "--series", "99")
    assert code == EXIT_USAGE and "11" in err and "12" in err


def test_output_that_is_a_file_is_a_usage_error(tmp_path: Path, capsys) -> None:
    write_series(tmp_path / "in")
    (tmp_path / "file").write_text("x")
    code, out, err = _run(capsys, tmp_path / "in", "-o", tmp_path / "file")
    assert code == EXIT_USAGE and out == [] and "not a folder" in err
    assert (tmp_path / "file").read_text() == "x"


def test_no_dicom_is_exit_3(tmp_path: Path, capsys) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "notes.txt").write_text("hello")
    code, out, err = _run(capsys, tmp_path / "in", "-o", tmp_path / "out")
    assert code == EXIT_NO_DICOM and out == []
    assert "no DICOM" in err


# --- sidecar identity ---------------------------------------------------------------------------


def test_sidecar_has_no_identity_unless_keep_phi(tmp_path: Path, capsys) -> None:
    info = write_series(tmp_path / "in", description="T2")
    code, out, _ = _run(capsys, tmp_path / "in", "-o", tmp_path / "a")
    assert code == 0
    text = Path(out[1]).read_text()
    for secret in ("Doe", "PID-0042", "19700101", "PatientName", "PatientID", "PatientBirthDate",
                   info.series_uid, "20240101"):
        assert secret not in text
    code, out, _ = _run(capsys, tmp_path / "in", "-o", tmp_path / "b", "--keep-phi")
    assert code == 0
    meta = _load_json(Path(out[1]))
    assert meta["PatientName"] == "Doe^Jane"
    assert meta["PatientID"] == "PID-0042"
    assert meta["PatientBirthDate"] == "19700101"
    assert meta["SeriesInstanceUID"] == info.series_uid


# --- the task API used by batch runners ----------------------------------------------------------


def test_convert_stack_is_a_picklable_task(tmp_path: Path) -> None:
    write_series(tmp_path / "in", description="T1", series_number=8)
    found = volume.scan(tmp_path / "in")
    (task,) = plan(found.stacks)
    options = ConvertOptions(format="nii")
    task2, options2 = pickle.loads(pickle.dumps((task, options)))
    result = convert_stack(task2.stack, tmp_path / "out", options2, name=task2.name)
    assert result.status == CONVERTED and result.exit_code == 0
    assert result.files == (str(tmp_path / "out" / "8_T1.nii"), str(tmp_path / "out" / "8_T1.json"))
    again = pickle.loads(pickle.dumps(result))
    assert again == result
    assert json.loads(json.dumps(again.to_dict()))["files"] == list(result.files)
    skipped = convert_stack(task.stack, tmp_path / "out", options, name=task.name)
    assert skipped.status == SKIPPED and skipped.existing
    assert exit_code([result, skipped]) == 0
    assert exit_code([skipped]) == EXIT_OUTPUT_EXISTS


def test_library_convert_reports_failures_as_results(tmp_path: Path) -> None:
    write_series(tmp_path / "in" / "ok", series_number=1)
    write_series(tmp_path / "in" / "gap", series_number=2,
                 positions=[np.array([0.0, 0.0, 3.0 * k]) for k in range(6) if k != 2], shape=(5, 12, 10))
    results = convert(tmp_path / "in", tmp_path / "out", ConvertOptions())
    assert [r.status for r in results] == [CONVERTED, FAILED]
    assert "allow-gaps" in results[1].message and results[1].exit_code == 4
    assert exit_code(results) == EXIT_PARTIAL


def test_interrupt_mid_write_leaves_nothing(tmp_path: Path, capsys, monkeypatch) -> None:
    import volume.io.nifti as nifti

    write_series(tmp_path / "in" / "a", series_number=1)
    write_series(tmp_path / "in" / "b", series_number=2)
    real_write = nifti.NiftiSink.write
    sinks: list = []

    def interrupted(self, data):  # both writers (in memory, streamed) go through NiftiSink
        if self not in sinks:
            sinks.append(self)
            self.writes = 0
        self.writes += 1
        if len(sinks) > 1 and self.writes > 1:  # the second file: Ctrl-C after its first bytes
            raise KeyboardInterrupt
        return real_write(self, data)

    monkeypatch.setattr(nifti.NiftiSink, "write", interrupted)
    code, out, err = _run(capsys, tmp_path / "in", "-o", tmp_path / "out")
    assert code == 130  # EXIT_INTERRUPTED
    # the first series is complete; nothing of the second, no temporary file
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["1_synthetic.json", "1_synthetic.nii.gz"]
    assert out == [str(tmp_path / "out" / "1_synthetic.nii.gz"), str(tmp_path / "out" / "1_synthetic.json")]


def test_sidecar_time_is_the_first_acquired_image_and_sequences_are_joined(tmp_path: Path, capsys) -> None:
    write_series(tmp_path / "in", extra=lambda k: {"AcquisitionTime": f"0959{59 - k:02d}.25",
                                                   "ScanningSequence": ["SE", "IR"], "SequenceVariant": "SK"})
    code, out, _ = _run(capsys, tmp_path / "in", "-o", tmp_path / "out")
    assert code == 0
    meta = _load_json(Path(out[1]))
    assert meta["AcquisitionTime"] == "09:59:54.250000"  # the last of 6 slices was acquired first
    assert meta["ScanningSequence"] == "SE\\IR" and meta["SequenceVariant"] == "SK"


@settings(max_examples=200, deadline=None)
@given(
    descriptions=st.lists(st.text(max_size=40), min_size=1, max_size=6),
    numbers=st.lists(st.one_of(st.none(), st.integers(-5, 100000)), min_size=1, max_size=6),
    labels=st.lists(st.sampled_from(["", "e1", "e2", "ph", "axial", "../x", "a/b"]), min_size=1, max_size=6),
)
def test_planned_names_are_safe_and_unique(descriptions, numbers, labels) -> None:
    from types import SimpleNamespace

    from volume.jobs.convert import plan_names

    n = min(len(descriptions), len(numbers), len(labels))
    stacks = [SimpleNamespace(series_number=numbers[i], series_description=descriptions[i], label=labels[i],
                              kind="localizer" if i % 2 else "volume") for i in range(n)]
    names = plan_names(stacks)  # type: ignore[arg-type]
    assert len({name.casefold() for name in names}) == n
    for name in names:
        assert re.fullmatch(r"[A-Za-z0-9._+-]+", name), name
        assert ".." not in name and not name.startswith(".")
        assert (Path("/out") / f"{name}.nii.gz").parent == Path("/out")

"""The DICOM series writer: what it writes loads back (our loader, dcm2niix) on the same grid."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pydicom
import pytest
from synth import AXIAL, CORONAL, SAGITTAL, linear_field, oblique_iop, synthetic_volume, write_series

import volume
from volume.errors import OutputExistsError, UsageError
from volume.io.dicom_out import choose_storage, quantize, write_dicom_series
from volume.volume import Volume


def index_map(loaded: Volume, original: Volume) -> np.ndarray:
    """The integer 4x4 map from loaded voxel indices to original voxel indices (asserts it is one)."""
    m = np.linalg.inv(np.asarray(original.affine)) @ np.asarray(loaded.affine)
    np.testing.assert_allclose(m, np.rint(m), atol=1e-4)
    return np.rint(m).astype(int)


def assert_same_grid(loaded: Volume, original: Volume, atol: float) -> None:
    """Every loaded voxel lies on an original voxel centre and holds its value."""
    assert sorted(loaded.shape) == sorted(original.shape)
    m = index_map(loaded, original)
    k, j, i = np.meshgrid(*(np.arange(n) for n in loaded.shape), indexing="ij")
    idx = np.stack([k, j, i, np.ones_like(k)], axis=-1) @ m.T
    values = np.asarray(original.array)[idx[..., 0], idx[..., 1], idx[..., 2]]
    np.testing.assert_allclose(np.asarray(loaded.array, float), np.asarray(values, float), atol=atol)


@pytest.mark.parametrize("iop", [AXIAL, CORONAL, SAGITTAL, oblique_iop()], ids=["axial", "coronal", "sagittal", "oblique"])
def test_series_round_trips_through_loader(tmp_path, iop):
    vol = synthetic_volume(shape=(7, 9, 11), iop=iop, spacing=(2.5, 1.5, 1.25), dtype=np.float32)
    paths = write_dicom_series(vol, tmp_path / "out", description="test")
    assert len(paths) == 7 and all(p.exists() for p in paths)
    back = volume.load(tmp_path / "out")
    # float data is fitted into int16 with a slope: error at most half a slope
    assert_same_grid(back, vol, atol=0.02)
    np.testing.assert_allclose(back.spacing, vol.spacing, atol=1e-6)
    assert back.meta["modality"] == "MR"
    assert back.meta["series_description"] == "test"


def test_integer_ct_stored_exactly_and_headers(tmp_path):
    src = synthetic_volume(
        shape=(4, 6, 5), spacing=(3.0, 0.7, 0.7), dtype=np.int16,
        field_fn=lambda x, y, z: np.rint(-1024 + 10 * x + y + z),
        meta={"modality": "CT", "series_number": 3, "series_description": "abdomen",
              "identity": {"PatientName": "Doe^Jane", "PatientID": "PID-1", "StudyInstanceUID": "1.2.3.4"},
              "acquisition": {"KVP": 120, "Manufacturer": "SynthCo", "InstitutionName": "Somewhere"}},
    )
    paths = write_dicom_series(src, tmp_path / "ct", derived_from="axial MPR", image_type=("MPR",))
    ds = pydicom.dcmread(paths[0])
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.2"
    assert list(ds.ImageType) == ["DERIVED", "SECONDARY", "MPR"]
    assert ds.SeriesNumber == 1003 and ds.SeriesDescription == "abdomen derived"
    assert float(ds.RescaleSlope) == 1.0 and float(ds.RescaleIntercept) == 0.0
    assert ds.KVP == 120 and ds.Manufacturer == "SynthCo"
    # identity is not written unless asked, and never invented
    assert str(ds.PatientName) == "" and ds.PatientID == ""
    assert "InstitutionName" not in ds
    assert ds.StudyInstanceUID != "1.2.3.4"
    uids = {pydicom.dcmread(p).SOPInstanceUID for p in paths}
    assert len(uids) == len(paths)
    assert len({pydicom.dcmread(p).SeriesInstanceUID for p in paths}) == 1
    back = volume.load(tmp_path / "ct")
    assert_same_grid(back, src, atol=0)
    assert back.meta["modality"] == "CT"

    kept = write_dicom_series(src, tmp_path / "ct_phi", keep_identity=True)
    ds = pydicom.dcmread(kept[0])
    assert str(ds.PatientName) == "Doe^Jane" and ds.PatientID == "PID-1"
    assert ds.StudyInstanceUID == "1.2.3.4"
    assert "PatientBirthDate" in ds and ds.PatientBirthDate == ""
    assert ds.PatientIdentityRemoved == "NO" and "DeidentificationMethod" not in ds


def test_a_source_deidentified_before_stays_so_with_keep_identity(tmp_path):
    """--keep-phi copies what the source said: a de-identified source keeps its YES and method."""
    meta = {"modality": "MR", "series_description": "t1", "identity": {"PatientName": "ANON^7", "PatientID": "ANON7"},
            "acquisition": {"PatientIdentityRemoved": "YES", "DeidentificationMethod": ["CTP", "site profile 3"]}}
    src = synthetic_volume(shape=(2, 4, 4), spacing=(1.0, 1.0, 1.0), meta=meta)
    ds = pydicom.dcmread(write_dicom_series(src, tmp_path / "kept", keep_identity=True)[0])
    assert ds.PatientIdentityRemoved == "YES" and list(ds.DeidentificationMethod) == ["CTP", "site profile 3"]
    assert str(ds.PatientName) == "ANON^7" and "DeidentificationMethodCodeSequence" not in ds
    ds = pydicom.dcmread(write_dicom_series(src, tmp_path / "own", keep_identity=False)[0])
    assert ds.PatientIdentityRemoved == "YES" and list(ds.DeidentificationMethod)[0].startswith("volume ")
    assert list(ds.DeidentificationMethod)[2] == "kept uncleaned: SeriesDescription"  # no ProtocolName in the source
    assert ds.DeidentificationMethodCodeSequence[0].CodeValue == "113100"
    # the scanner reads what the source said (both readers)
    write_series(tmp_path / "anon", shape=(2, 4, 4), extra={"PatientIdentityRemoved": "YES",
                                                            "DeidentificationMethod": ["CTP", "site profile 3"]})
    acquisition = volume.load(tmp_path / "anon").meta["acquisition"]
    assert acquisition["PatientIdentityRemoved"] == "YES"
    assert acquisition["DeidentificationMethod"] == ["CTP", "site profile 3"]


def test_ipp_iop_follow_dicom_convention(tmp_path):
    vol = synthetic_volume(shape=(3, 4, 5), iop=oblique_iop(), spacing=(2.0, 1.5, 1.25))
    paths = write_dicom_series(vol, tmp_path / "s")
    for k, p in enumerate(paths):
        ds = pydicom.dcmread(p)
        row_dir = np.array(ds.ImageOrientationPatient[:3], float)
        col_dir = np.array(ds.ImageOrientationPatient[3:], float)
        dr, dc = (float(v) for v in ds.PixelSpacing)
        ipp = np.array(ds.ImagePositionPatient, float)
        for r, c in [(0, 0), (3, 4), (2, 1)]:
            dicom_world = ipp + c * dc * row_dir + r * dr * col_dir
            np.testing.assert_allclose(dicom_world, vol.world([k, r, c]), atol=1e-6)


def test_fitted_slope_error_bounded():
    rng = np.random.default_rng(1)
    values = rng.uniform(-1500.3, 3000.7, size=10_000)
    dtype, slope, intercept = choose_storage(values)
    assert dtype == np.int16 and slope < 0.1
    stored = quantize(values, dtype, slope, intercept)
    np.testing.assert_allclose(stored * slope + intercept, values, atol=slope / 2 + 1e-9)
    # integer-valued float data in uint16 range: exact, slope 1
    assert choose_storage(np.array([0.0, 40000.0])) == (np.uint16, 1.0, 0.0)
    # integers spanning more than either 16-bit type but at most 65536 values: exact, with an intercept
    wide = np.array([-1024, 7, 50000], dtype=np.int32)
    dtype, slope, intercept = choose_storage(wide)
    assert dtype == np.int16 and slope == 1.0
    np.testing.assert_array_equal(quantize(wide, dtype, slope, intercept) * slope + intercept, wide)
    # NaNs are ignored when choosing, and stored as the lowest value
    dtype, slope, intercept = choose_storage(np.array([np.nan, 1.0, 2.0]))
    assert (dtype, slope, intercept) == (np.int16, 1.0, 0.0)
    assert quantize(np.array([np.nan]), dtype, slope, intercept)[0] == -32768


def test_single_slice_to_dcm_file(tmp_path):
    vol = synthetic_volume(shape=(1, 6, 8), iop=CORONAL, spacing=(40.0, 1.0, 1.0))
    (path,) = write_dicom_series(vol, tmp_path / "mip.dcm", slice_thickness=40.0)
    ds = pydicom.dcmread(path)
    assert float(ds.SliceThickness) == 40.0 and "SpacingBetweenSlices" not in ds
    x, y, z = (np.array(ds.ImagePositionPatient, float))
    slope, intercept = float(ds.get("RescaleSlope", 1.0)), float(ds.get("RescaleIntercept", 0.0))
    assert float(ds.pixel_array[0, 0]) * slope + intercept == pytest.approx(
        linear_field(x, y, z), abs=0.02
    )
    with pytest.raises(OutputExistsError):
        write_dicom_series(vol, tmp_path / "mip.dcm")
    write_dicom_series(vol, tmp_path / "mip.dcm", force=True)
    many = synthetic_volume(shape=(3, 6, 8))
    with pytest.raises(UsageError, match="folder"):
        write_dicom_series(many, tmp_path / "many.dcm")
    assert not (tmp_path / "many.dcm").exists()


def test_existing_folder_needs_force_and_no_partial_output(tmp_path, monkeypatch):
    vol = synthetic_volume(shape=(3, 4, 5))
    out = tmp_path / "series"
    write_dicom_series(vol, out)
    with pytest.raises(OutputExistsError):
        write_dicom_series(vol, out)
    first = sorted(p.name for p in out.iterdir())
    again = write_dicom_series(vol, out, force=True)
    assert sorted(p.name for p in out.iterdir()) == first == [p.name for p in again]
    # a foreign file in the folder: refuse even with force
    (out / "notes.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match="other files"):
        write_dicom_series(vol, out, force=True)
    assert (out / "notes.txt").exists()

    # a failure in the middle leaves nothing behind
    import volume.io.dicom_out as mod

    calls = {"n": 0}
    real = mod.quantize

    def failing(*a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("disk full")
        return real(*a, **k)

    monkeypatch.setattr(mod, "quantize", failing)
    with pytest.raises(RuntimeError):
        write_dicom_series(vol, tmp_path / "partial")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["series"]


def test_4d_series_round_trips(tmp_path):
    base = synthetic_volume(shape=(3, 4, 5))
    arr = np.stack([np.asarray(base.array) + 100 * t for t in range(3)])
    vol = Volume(arr, base.affine, {"modality": "MR", "frame_interval_s": 2.0})
    write_dicom_series(vol, tmp_path / "four")
    back = volume.load(tmp_path / "four")
    assert back.is_4d and back.n_frames == 3
    for t in range(3):
        assert_same_grid(back.frame(t), vol.frame(t), atol=0.02)


@pytest.mark.skipif(shutil.which("dcm2niix") is None, reason="dcm2niix not installed")
def test_dcm2niix_reads_same_grid(tmp_path):
    import nibabel as nib

    vol = synthetic_volume(shape=(6, 9, 11), iop=oblique_iop(), spacing=(2.5, 1.5, 1.25), dtype=np.float32)
    write_dicom_series(vol, tmp_path / "obl")
    out = tmp_path / "nii"
    out.mkdir()
    subprocess.run(["dcm2niix", "-z", "n", "-f", "x", "-o", str(out), str(tmp_path / "obl")],
                   check=True, capture_output=True)
    img = nib.load(out / "x.nii")
    data = img.get_fdata()
    ijk = np.stack(np.meshgrid(*(np.arange(n) for n in data.shape[:3]), indexing="ij"), -1)
    ras = ijk @ img.affine[:3, :3].T + img.affine[:3, 3]
    lps = ras * np.array([-1.0, -1.0, 1.0])
    expected = linear_field(lps[..., 0], lps[..., 1], lps[..., 2])
    np.testing.assert_allclose(data, expected, atol=0.05)
    assert sorted(data.shape) == sorted(vol.shape)


def test_mr_modality_lut_only_when_values_need_it(tmp_path):
    """The MR IOD has no Modality LUT: integer MR values go without one; fractional ones keep the slope."""
    ints = synthetic_volume(shape=(2, 4, 5), dtype=np.int16, field_fn=lambda x, y, z: np.rint(100 + x + 2 * y))
    ds = pydicom.dcmread(write_dicom_series(ints, tmp_path / "ints")[0])
    assert "RescaleSlope" not in ds and "RescaleIntercept" not in ds and "RescaleType" not in ds
    assert_same_grid(volume.load(tmp_path / "ints"), ints, atol=0)
    floats = synthetic_volume(shape=(2, 4, 5), dtype=np.float32)
    ds = pydicom.dcmread(write_dicom_series(floats, tmp_path / "floats")[0])
    assert float(ds.RescaleSlope) < 1 and ds.RescaleType == "US"
    ct = synthetic_volume(shape=(2, 4, 5), dtype=np.int16, meta={"modality": "CT"})
    ds = pydicom.dcmread(write_dicom_series(ct, tmp_path / "ct")[0])
    assert float(ds.RescaleSlope) == 1.0 and ds.RescaleType == "HU"  # Type 1 in CT images


def test_notes_go_to_the_log_without_a_warn_callback(tmp_path, caplog):
    meta = {"modality": "MR", "acquisition": {"ProtocolName": "p" * 70, "ScanningSequence": "GR", "SequenceVariant": "SP"}}
    vol = synthetic_volume(shape=(1, 4, 5), meta=meta)
    with caplog.at_level("WARNING", logger="volume.io.dicom_out"):
        write_dicom_series(vol, tmp_path / "x.dcm")
    assert [r.getMessage() for r in caplog.records] == ["DICOM output x.dcm: ProtocolName (LO): 70 characters, cut to 64"]
    said: list[str] = []
    write_dicom_series(vol, tmp_path / "y.dcm", warn=said.append)
    assert said == ["DICOM output y.dcm: ProtocolName (LO): 70 characters, cut to 64"]

"""``volume reslice`` end to end: DICOM in, NIfTI / PNG / DICOM out, every voxel where it belongs."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from PIL import Image
from synth import AXIAL, SAGITTAL, linear_field, oblique_iop, phantom_field, synthetic_volume, write_series

import volume
from volume.cli import main
from volume.io.nifti import write_nifti

OBLIQUE = oblique_iop(AXIAL, axis=(1.0, 0.3, 0.2), degrees=12.0)


def run(capsys, *args) -> tuple[int, list[str], str]:
    code = main(["reslice", *map(str, args)])
    cap = capsys.readouterr()
    return code, [line for line in cap.out.splitlines() if line], cap.err


@pytest.fixture
def series(tmp_path: Path):
    """An oblique MR series of the linear field (stored exactly: slope 1, integers)."""
    return write_series(tmp_path / "dicom", shape=(10, 16, 14), iop=OBLIQUE, origin=(-20.0, -25.0, -10.0),
                        pixel_spacing=(1.5, 1.25), slice_spacing=2.5,
                        field_fn=lambda x, y, z: linear_field(x, y, z) * 10)


def nifti_world(img) -> tuple[np.ndarray, np.ndarray]:
    """LPS position of every NIfTI voxel, and the data (float)."""
    data = img.get_fdata()
    ijk = np.stack(np.meshgrid(*(np.arange(n) for n in data.shape[:3]), indexing="ij"), -1)
    ras = ijk @ img.affine[:3, :3].T + img.affine[:3, 3]
    return ras * np.array([-1.0, -1.0, 1.0]), data


def check_nifti_field(img, src: volume.Volume, atol: float) -> int:
    """Voxels inside the source hold 10 * linear_field at their own position (via the NIfTI affine)."""
    lps, data = nifti_world(img)
    idx = src.index(lps)
    inside = np.all((idx >= -1e-6) & (idx <= np.array(src.shape) - 1 + 1e-6), -1)
    expected = linear_field(lps[..., 0], lps[..., 1], lps[..., 2]) * 10
    np.testing.assert_allclose(data[inside], expected[inside], atol=atol)
    return int(inside.sum())


def test_isotropic_nifti(tmp_path, capsys, series):
    out = tmp_path / "iso.nii.gz"
    code, lines, err = run(capsys, series.folder, "--spacing", "1.0", "-o", out)
    assert code == 0, err
    assert lines == [str(out)]
    img = nib.load(out)
    np.testing.assert_allclose(img.header.get_zooms()[:3], (1.0, 1.0, 1.0), atol=1e-6)
    src = volume.load(series.folder)
    # the stored values round to integers: half a unit of rounding, times interpolation
    assert check_nifti_field(img, src, atol=0.6) == np.prod(img.shape)


@pytest.mark.parametrize("plane,codes", [("axial", ("L", "P", "S")), ("coronal", ("L", "I", "P")),
                                         ("sagittal", ("P", "I", "R"))])
def test_planes_nifti(tmp_path, capsys, series, plane, codes):
    out = tmp_path / f"{plane}.nii.gz"
    code, lines, err = run(capsys, series.folder, "--plane", plane, "--spacing", "2", "-o", out)
    assert code == 0, err
    img = nib.load(out)
    assert nib.aff2axcodes(img.affine) == codes  # NIfTI (i, j, k) = our (column, row, slice)
    direction = img.affine[:3, :3] / 2.0
    np.testing.assert_allclose(np.abs(direction), np.abs(np.round(direction)), atol=1e-9)  # truly aligned
    assert check_nifti_field(img, volume.load(series.folder), atol=0.6) > 300


def test_oblique_thick_png_folder_and_three_spacings(tmp_path, capsys, series):
    out = tmp_path / "obl"
    code, lines, err = run(capsys, series.folder, "--normal", "0.2,0.1,0.97", "--thickness", "5", "-o", out)
    assert code == 0, err
    files = sorted(out.glob("*.png"))
    assert [Path(x) for x in lines] == files and len(files) >= 3
    with Image.open(files[0]) as pic:
        assert pic.mode == "L"
    # same reslice as NIfTI: slices 5 mm apart along the normal, as asked
    nii = tmp_path / "obl.nii.gz"
    code, _, err = run(capsys, series.folder, "--normal", "0.2,0.1,0.97", "--thickness", "5", "-o", nii)
    assert code == 0, err
    img = nib.load(nii)
    assert img.shape[2] == len(files)
    k_axis = img.affine[:3, 2] * np.array([-1.0, -1.0, 1.0])  # RAS -> LPS
    n = np.array([0.2, 0.1, 0.97])
    np.testing.assert_allclose(k_axis, 5.0 * n / np.linalg.norm(n), atol=1e-6)
    # --spacing WIDTH,HEIGHT,DEPTH
    aniso = tmp_path / "aniso.nii.gz"
    code, _, err = run(capsys, series.folder, "--plane", "axial", "--spacing", "0.5,0.75,3", "-o", aniso)
    assert code == 0, err
    np.testing.assert_allclose(nib.load(aniso).header.get_zooms()[:3], (0.5, 0.75, 3.0), atol=1e-6)


def test_axial_png_orientation_marker(tmp_path, capsys):
    """A bright ball at the patient's left-anterior-superior lands top-right on an axial picture,
    even from an oblique acquisition."""
    marker = (25.0, -25.0, 0.0)  # left (+x), anterior (-y)
    info = write_series(tmp_path / "dicom", shape=(12, 40, 40), iop=OBLIQUE, origin=(-50.0, -50.0, -15.0),
                        pixel_spacing=(2.5, 2.5), slice_spacing=2.5, field_fn=phantom_field(marker, radius=8.0))
    src = volume.load(info.folder)
    centre = src.center
    out = tmp_path / "ax"
    code, lines, err = run(capsys, info.folder, "--plane", "axial", "--spacing", "1", "--fov", "200,200,1",
                           "--no-labels", "-o", out)
    assert code == 0, err
    assert len(lines) == 1
    with Image.open(lines[0]) as im:
        pic = np.asarray(im, dtype=float)
    assert pic.shape == (200, 200)
    rows, cols = np.nonzero(pic >= pic.max() * 0.9)
    # display: anterior at the top, patient's left on the right; 1 mm pixels centred on the series
    assert rows.mean() == pytest.approx(100 + (marker[1] - centre[1]) - 0.5, abs=3)
    assert cols.mean() == pytest.approx(100 + (marker[0] - centre[0]) - 0.5, abs=3)
    assert rows.mean() < 100 and cols.mean() > 100


def test_like_nifti(tmp_path, capsys, series):
    other = synthetic_volume(shape=(8, 10, 12), iop=SAGITTAL, origin=(-10.0, -20.0, 5.0), spacing=(2.0, 1.7, 1.1))
    ref = write_nifti(other, tmp_path / "ref.nii.gz")
    out = tmp_path / "matched.nii.gz"
    code, _, err = run(capsys, series.folder, "--like", ref, "-o", out)
    assert code == 0, err
    img, ref_img = nib.load(out), nib.load(ref)
    assert img.shape == ref_img.shape
    np.testing.assert_allclose(img.affine, ref_img.affine, atol=1e-5)
    assert check_nifti_field(img, volume.load(series.folder), atol=0.6) > 50


def test_dicom_output_loads_back_on_the_same_grid(tmp_path, capsys, series):
    nii = tmp_path / "sag.nii.gz"
    dcm = tmp_path / "sag"
    args = (series.folder, "--plane", "sagittal", "--spacing", "1.5")
    assert run(capsys, *args, "-o", nii)[0] == 0
    code, lines, err = run(capsys, *args, "-o", dcm, "--format", "dcm")
    assert code == 0, err
    files = sorted(dcm.glob("*.dcm"))
    assert [Path(x) for x in lines] == files
    back = volume.load(dcm)
    ref = nib.load(nii)
    # same grid (our loader's NIfTI affine == the reslice's) and the same values
    np.testing.assert_allclose(volume.io.nifti.nifti_affine(back), ref.affine, atol=1e-4)
    ds = pydicom.dcmread(files[0])
    # float voxels are stored as int16 with a fitted slope: at most half a slope off
    tol = float(ds.RescaleSlope) / 2 + 1e-3
    np.testing.assert_allclose(np.asarray(back.array, float).transpose(2, 1, 0), ref.get_fdata(), atol=tol)
    assert back.orientation == "sagittal"
    assert list(ds.ImageType)[:3] == ["DERIVED", "SECONDARY", "MPR"]
    assert ds.SeriesInstanceUID != series.series_uid
    assert str(ds.PatientName) == "" and ds.PatientID == ""
    if shutil.which("dcm2niix"):
        conv = tmp_path / "d2n"
        conv.mkdir()
        subprocess.run(["dcm2niix", "-z", "n", "-f", "x", "-o", str(conv), str(dcm)], check=True, capture_output=True)
        theirs = nib.load(conv / "x.nii")
        lps, data = nifti_world(theirs)
        ours_lps, ours = nifti_world(ref)
        # dcm2niix may order axes differently: compare as sets of (position, value)
        a = np.concatenate([lps.reshape(-1, 3), data.reshape(-1, 1)], 1)
        b = np.concatenate([ours_lps.reshape(-1, 3), ours.reshape(-1, 1)], 1)
        a = a[np.lexsort(np.round(a[:, :3], 3).T)]
        b = b[np.lexsort(np.round(b[:, :3], 3).T)]
        np.testing.assert_allclose(a, b, atol=tol)


def test_keep_phi_copies_identity(tmp_path, capsys, series):
    code, lines, err = run(capsys, series.folder, "--plane", "axial", "--spacing", "3", "--format", "dcm",
                           "--keep-phi", "-o", tmp_path / "phi")
    assert code == 0, err
    ds = pydicom.dcmread(lines[0])
    src = pydicom.dcmread(series.paths[0])
    assert ds.PatientName == src.PatientName and ds.PatientID == src.PatientID
    assert ds.StudyInstanceUID == src.StudyInstanceUID
    assert ds.FrameOfReferenceUID == src.FrameOfReferenceUID
    assert ds.SeriesInstanceUID != src.SeriesInstanceUID


def test_ct_background_outside(tmp_path, capsys):
    info = write_series(tmp_path / "ct", shape=(6, 12, 12), modality="CT", iop=OBLIQUE, stored_dtype=np.int16,
                        field_fn=lambda x, y, z: np.full_like(x, 40.0), pixel_spacing=(2.0, 2.0))
    out = tmp_path / "ct.nii.gz"
    code, _, err = run(capsys, info.folder, "--plane", "axial", "-o", out)
    assert code == 0, err
    data = nib.load(out).get_fdata()
    # inside the series the constant 40 HU (no blending with the outside), air outside
    assert set(np.unique(data).tolist()) == {-1024.0, 40.0}


def test_usage_errors(tmp_path, capsys, series):
    f = series.folder
    cases = [
        (f,),  # nothing to do
        (f, "--plane", "axial", "--normal", "0,0,1"),
        (f, "--spacing", "1,2"),
        (f, "--spacing", "0"),
        (f, "--normal", "0,0,0"),
        (f, "--normal", "a,b,c"),
        (f, "--plane", "axial", "--mode", "max"),
        (f, "--like", tmp_path / "missing.nii.gz"),
        (f, "--plane", "axial", "--thickness", "-2"),
        (tmp_path / "nowhere", "--plane", "axial"),
    ]
    for args in cases:
        code, lines, err = run(capsys, *args, "-o", tmp_path / "x.nii.gz")
        assert code == 2, (args, err)
        assert lines == [] and err.startswith("volume: ") and len(err.strip().splitlines()) == 1
        assert not (tmp_path / "x.nii.gz").exists()


def test_existing_output_needs_force(tmp_path, capsys, series):
    out = tmp_path / "a.nii.gz"
    assert run(capsys, series.folder, "--spacing", "2", "-o", out)[0] == 0
    before = out.read_bytes()
    code, lines, err = run(capsys, series.folder, "--spacing", "3", "-o", out)
    assert code == 5 and "--force" in err and out.read_bytes() == before
    assert run(capsys, series.folder, "--spacing", "3", "-o", out, "--force")[0] == 0
    assert out.read_bytes() != before
    dcm = tmp_path / "d"
    assert run(capsys, series.folder, "--spacing", "3", "-o", dcm, "--format", "dcm")[0] == 0
    assert run(capsys, series.folder, "--spacing", "3", "-o", dcm, "--format", "dcm")[0] == 5
    assert run(capsys, series.folder, "--spacing", "3", "-o", dcm, "--format", "dcm", "--force")[0] == 0


def test_real_brainix_coronal(tmp_path, capsys, data_dir):
    t1 = data_dir / "dicom" / "brainix" / "T1"
    out = tmp_path / "cor.nii.gz"
    code, _, err = run(capsys, t1, "--plane", "coronal", "--spacing", "1", "-o", out)
    assert code == 0, err
    img = nib.load(out)
    assert nib.aff2axcodes(img.affine) == ("L", "I", "P")
    src = volume.load(t1)
    # the coronal grid covers the whole (oblique) series: height >= 21 slices x 6 mm
    assert img.shape[1] >= 126
    # a voxel well inside the brain equals the source interpolated there (sampled by hand)
    lps, data = nifti_world(img)
    centre = np.array(img.shape) // 2
    idx = src.index(lps[tuple(centre)])
    from scipy import ndimage

    expected = ndimage.map_coordinates(np.asarray(src.array, float), idx[:, None], order=1)[0]
    assert data[tuple(centre)] == pytest.approx(expected, abs=1e-3)

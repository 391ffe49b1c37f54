"""``volume mip`` end to end: pictures read back with Pillow, NIfTI with nibabel, DICOM with the loader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from synth import AXIAL, SAGITTAL, oblique_iop, phantom_field, write_series

from volume import load, scan
from volume.cli import main
from volume.display import orient_for_display, slice_axes
from volume.io.image import read_picture
from volume.io.nifti import to_nifti
from volume.ops.projection import projection_axis

MARKER = (30.0, -30.0, 25.0)
"""Patient left-anterior-superior, LPS mm."""

QUADRANT = {"axial": ("top", "right"), "coronal": ("top", "right"), "sagittal": ("top", "left")}
"""Where a left-anterior-superior marker must land in each plane's picture."""

PRONE_AXIAL = (-1.0, 0.0, 0.0, 0.0, -1.0, 0.0)
"""Axial images of a prone patient: columns run to the patient's right, rows anteriorly."""

SHAPE = (30, 36, 40)
SPACING = (3.0, 2.0, 1.75)  # slice, row, column mm


def _series(folder: Path, iop, *, description="phantom", series_number=7, photometric="MONOCHROME2", modality="MR"):
    row, col = np.asarray(iop[:3]), np.asarray(iop[3:])
    normal = np.cross(row, col)
    origin = -((np.array(SHAPE) - 1) / 2 * np.array(SPACING)) @ np.stack([normal, col, row])
    return write_series(
        folder, shape=SHAPE, iop=iop, origin=origin, pixel_spacing=SPACING[1:], slice_spacing=SPACING[0],
        field_fn=phantom_field(MARKER, radius=9.0), description=description, series_number=series_number,
        photometric=photometric, modality=modality,
    )


LAST_ERR: list[str] = []
"""stderr of the last :func:`run` with capsys (for message checks)."""


def run(*args, capsys=None) -> tuple[int, list[str]]:
    code = main(["mip", *map(str, args)])
    lines = []
    if capsys is not None:
        captured = capsys.readouterr()
        lines = captured.out.splitlines()
        LAST_ERR[:] = [captured.err]
    return code, lines


@pytest.fixture(scope="module")
def series(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("mip_series")
    made = {}
    acquisitions = (
        ("axial", AXIAL),
        ("sagittal_desc", SAGITTAL),
        ("oblique", oblique_iop(AXIAL, degrees=14.0)),
        ("axial_prone", PRONE_AXIAL),
    )
    for name, iop in acquisitions:
        _series(root / name, iop, description=name)
        made[name] = root / name
    return made


def _expected_size_mm(folder: Path, plane: str) -> tuple[float, float]:
    """Physical (height, width) of the picture: the kept axes' extents in display order."""
    vol = load(folder)
    axis, _ = projection_axis(vol.affine, plane)
    keep = [a for a in range(3) if a != axis]
    dummy = np.zeros([vol.shape[a] for a in keep])
    img, (row_mm, col_mm) = orient_for_display(dummy, slice_axes(vol.affine, axis), plane)
    return img.shape[0] * row_mm, img.shape[1] * col_mm


@pytest.mark.parametrize("name", ["axial", "sagittal_desc", "oblique", "axial_prone"])
@pytest.mark.parametrize("plane", ["axial", "coronal", "sagittal"])
def test_marker_quadrant_and_aspect(series, tmp_path, capsys, name, plane):
    out = tmp_path / f"{plane}.png"
    code, lines = run(series[name], "--plane", plane, "--no-labels", "-o", out, capsys=capsys)
    assert code == 0 and lines == [str(out)]
    pic = read_picture(out)
    assert pic.ndim == 2 and pic.dtype == np.uint8
    r, c = np.argwhere(pic >= 200).mean(axis=0)
    h, w = pic.shape
    vertical, horizontal = QUADRANT[plane]
    assert (r < h / 2) == (vertical == "top"), f"marker row {r:.0f} of {h}"
    assert (c > w / 2) == (horizontal == "right"), f"marker column {c:.0f} of {w}"
    height_mm, width_mm = _expected_size_mm(series[name], plane)
    assert h / w == pytest.approx(height_mm / width_mm, rel=0.03)


def test_nifti_equals_numpy_over_canonical_volume(series, tmp_path, capsys):
    import nibabel as nib

    out = tmp_path / "avg.nii.gz"
    code, lines = run(series["sagittal_desc"], "--plane", "axial", "--mode", "mean", "-o", out, capsys=capsys)
    assert code == 0 and lines == [str(out)]
    got = nib.as_closest_canonical(nib.load(out))
    src = nib.as_closest_canonical(to_nifti(load(series["sagittal_desc"])))
    expected = np.asarray(src.dataobj, dtype=np.float64).mean(axis=2, keepdims=True)
    np.testing.assert_allclose(np.asarray(got.dataobj, dtype=np.float64), expected, rtol=1e-5)
    np.testing.assert_allclose(got.affine[:3, :2], src.affine[:3, :2], atol=1e-6)
    np.testing.assert_allclose(got.affine[:3, 3][:2], src.affine[:3, 3][:2], atol=1e-6)
    centre_z = (src.affine @ np.r_[(np.array(src.shape) - 1) / 2, 1])[2]
    assert got.affine[2, 3] == pytest.approx(centre_z)


def test_slabs_as_pictures_and_nifti(series, tmp_path, capsys):
    import nibabel as nib

    # axial series: 30 slices 3 mm apart; 12 mm slabs every 6 mm -> 4 slices each, starts 0, 2, ... 26
    code, lines = run(series["axial"], "--plane", "axial", "--slab", 12, "--step", 6, "-o", tmp_path / "slabs", capsys=capsys)
    assert code == 0 and len(lines) == 14
    assert all(Path(p).parent == tmp_path / "slabs" and p.endswith(".png") for p in lines)
    code, lines = run(series["axial"], "--plane", "axial", "--slab", 12, "-o", tmp_path / "slabs.nii.gz", capsys=capsys)
    assert code == 0
    img = nib.load(lines[0])
    assert img.shape == (40, 36, 7)  # NIfTI (column, row, slab)
    src = load(series["axial"])
    for j in range(7):  # 28 of 30 slices covered, one left at each end: slab j's centre is slice 1 + 4j + 1.5
        centre = img.affine @ [0, 0, j, 1]
        expected_lps = src.world([1 + 4 * j + 1.5, 0, 0])
        assert centre[2] == pytest.approx(expected_lps[2])
    code, _ = run(series["axial"], "--plane", "axial", "--slab", 12, "-o", tmp_path / "x.png", capsys=capsys)
    assert code == 2


def test_several_series_default_names_and_single_file_refused(tmp_path, capsys, monkeypatch):
    root = tmp_path / "study"
    _series(root / "a", AXIAL, description="T1 axial", series_number=3)
    _series(root / "b", SAGITTAL, description="T2/sag", series_number=4)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    code, lines = run(root, "--plane", "coronal", capsys=capsys)
    assert code == 0
    assert sorted(lines) == ["3_T1_axial_mip_coronal.png", "4_T2_sag_mip_coronal.png"]
    assert all((work / p).is_file() for p in lines)
    code, _ = run(root, "--plane", "coronal", "-o", tmp_path / "one.png", capsys=capsys)
    assert code == 2
    assert "--series" in LAST_ERR[0] and "one.png" in LAST_ERR[0]
    code, lines = run(root, "--plane", "sagittal", "--mode", "min", "--series", "4", "-o", tmp_path / "min.png", capsys=capsys)
    assert code == 0 and lines == [str(tmp_path / "min.png")]
    code, lines = run(root, "--planes", "all", "-o", tmp_path / "sheets", capsys=capsys)
    assert code == 0 and sorted(Path(p).name for p in lines) == ["3_T1_axial_mip_sheet.png", "4_T2_sag_mip_sheet.png"]
    # existing outputs are kept unless --force
    code, _ = run(root, "--plane", "coronal", capsys=capsys)
    assert code == 5
    code, lines = run(root, "--plane", "coronal", "--force", capsys=capsys)
    assert code == 0 and len(lines) == 2


def test_windowing_presets_and_monochrome1(tmp_path, capsys):
    m2 = _series(tmp_path / "m2", AXIAL, photometric="MONOCHROME2")
    m1 = _series(tmp_path / "m1", AXIAL, photometric="MONOCHROME1")
    a = tmp_path / "a.png"
    b = tmp_path / "b.png"
    assert run(m2.folder, "--plane", "coronal", "--no-labels", "--window", "550,900", "-o", a)[0] == 0
    assert run(m1.folder, "--plane", "coronal", "--no-labels", "--window", "550,900", "-o", b)[0] == 0
    np.testing.assert_array_equal(read_picture(b), 255 - read_picture(a))
    body = read_picture(a)
    assert body.min() < 30 and body.max() == 255  # body 100 near black, marker 1000 white
    c = tmp_path / "c.png"
    assert run(m2.folder, "--plane", "coronal", "--no-labels", "--preset", "brain", "-o", c)[0] == 0
    assert read_picture(c).max() == 255  # the 1000 marker is far above the 40/80 brain window
    d = tmp_path / "d.png"
    assert run(m2.folder, "--plane", "coronal", "--cmap", "hot", "-o", d)[0] == 0
    assert read_picture(d).shape[-1] == 3
    for bad in (["--window", "wide"], ["--preset", "nope"], ["--window", "1,2", "--preset", "lung"],
                ["--cmap", "nope"], ["--step", "3"], ["--planes", "front"]):
        code, _ = run(m2.folder, *bad, "-o", tmp_path / "bad.png", capsys=capsys)
        assert code == 2, bad
    assert not (tmp_path / "bad.png").exists()
    code, _ = run(tmp_path / "missing", capsys=capsys)
    assert code == 2


def test_dicom_output_keeps_projection_geometry(series, tmp_path, capsys):
    pytest.importorskip("volume.io.dicom_out")
    out = tmp_path / "mip.dcm"
    code, lines = run(series["axial"], "--plane", "coronal", "-o", out, capsys=capsys)
    assert code == 0 and lines == [str(out)]
    nii = tmp_path / "mip.nii"
    assert run(series["axial"], "--plane", "coronal", "-o", nii)[0] == 0
    back = load(out)  # a single-slice volume read by our own loader
    import nibabel as nib

    ref = nib.load(nii)
    data = np.asarray(ref.dataobj, dtype=float)[:, 0, :]  # (x column, z slice)
    # every pixel of the DICOM image holds the projection value found at its world position
    pic = np.asarray(back.array, dtype=float)[0]
    rr, cc = np.meshgrid(np.arange(pic.shape[0]), np.arange(pic.shape[1]), indexing="ij")
    world = back.world(np.stack([np.zeros_like(rr), rr, cc], -1))
    ras = np.c_[world.reshape(-1, 3) * [-1, -1, 1], np.ones(rr.size)]
    ijk = np.rint((np.linalg.inv(ref.affine) @ ras.T).T[:, :3]).astype(int)
    np.testing.assert_allclose(pic.ravel(), data[ijk[:, 0], ijk[:, 2]], atol=1.0)
    import pydicom

    ds = pydicom.dcmread(out)
    assert "MIP" in ds.ImageType and not ds.get("PatientName") and not ds.get("PatientID")
    up = back.direction[:, 1]  # DICOM rows run down: inferior for a coronal picture
    assert up @ [0, 0, -1] > 0.99 and back.direction[:, 2] @ [1, 0, 0] > 0.99


def test_brainix_coronal_is_taller_than_its_slice_count(data_dir, tmp_path, capsys):
    code, lines = run(data_dir / "dicom" / "brainix", "--plane", "coronal", "--series", "601", "-o", tmp_path / "c.png",
                      capsys=capsys)
    assert code == 0
    pic = read_picture(lines[0])
    vol_stack = scan(data_dir / "dicom" / "brainix").select("601")[0]
    spacing = vol_stack.spacing  # (6 mm slices, 0.469 mm pixels)
    assert pic.shape[0] > 22
    assert pic.shape[0] == pytest.approx(22 * spacing[0] / spacing[2], abs=2)
    assert pic.shape[1] == 512


def test_4d_series_projects_every_frame_to_nifti_and_frame_one_to_a_picture(tmp_path, capsys):
    import nibabel as nib
    from synth import linear_field

    uid = "1.2.826.0.1.3680043.8.498.4711"
    for t in range(3):  # frame t holds the field plus 100 t
        write_series(tmp_path / "4d", shape=(6, 20, 18), series_uid=uid, seed=10 + t,
                     field_fn=lambda x, y, z, t=t: linear_field(x, y, z) + 100 * t,
                     extra={"TemporalPositionIdentifier": t + 1})
    code, lines = run(tmp_path / "4d", "--plane", "axial", "-o", tmp_path / "p.nii.gz", capsys=capsys)
    assert code == 0
    img = nib.load(lines[0])
    assert img.shape == (18, 20, 1, 3)
    data = np.asarray(img.dataobj, dtype=float)
    np.testing.assert_allclose(data[..., 2] - data[..., 0], 200.0, atol=1.0)
    code, lines = run(tmp_path / "4d", "--plane", "axial", "-o", tmp_path / "p.png", capsys=capsys)
    assert code == 0 and Path(lines[0]).is_file()
    assert "4D" in LAST_ERR[0] and "frame 1 of 3" in LAST_ERR[0]


@pytest.mark.parametrize("plane", ["axial", "coronal", "sagittal"])
def test_resample_projects_an_oblique_series_along_the_patient_axis(series, tmp_path, capsys, plane):
    import nibabel as nib

    pic_path, nii_path = tmp_path / "r.png", tmp_path / "r.nii.gz"
    assert run(series["oblique"], "--plane", plane, "--resample", "--no-labels", "-o", pic_path, capsys=capsys)[0] == 0
    assert "oblique" not in LAST_ERR[0]  # no nearest-axis warning when resampling
    pic = read_picture(pic_path)
    r, c = np.argwhere(pic >= 200).mean(axis=0)
    vertical, horizontal = QUADRANT[plane]
    assert (r < pic.shape[0] / 2) == (vertical == "top") and (c > pic.shape[1] / 2) == (horizontal == "right")
    assert run(series["oblique"], "--plane", plane, "--resample", "-o", nii_path)[0] == 0
    img = nib.load(nii_path)
    direction = img.affine[:3, :3] / np.linalg.norm(img.affine[:3, :3], axis=0)
    np.testing.assert_allclose(np.abs(direction).max(axis=0), 1.0, atol=1e-9)  # patient-aligned axes
    # the ball's projection sits at the marker's in-plane position
    data = np.asarray(img.dataobj)
    hot = np.argwhere(data > 500)
    ras = (img.affine @ np.c_[hot, np.ones(len(hot))].T).T[:, :3].mean(axis=0)
    lps = ras * [-1, -1, 1]
    keep = [a for a in range(3) if a != {"sagittal": 0, "coronal": 1, "axial": 2}[plane]]
    np.testing.assert_allclose(lps[keep], np.array(MARKER)[keep], atol=1.5)

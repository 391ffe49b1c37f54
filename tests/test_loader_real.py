"""Real DICOM data (../shared/data) against the reference converter dcm2niix.

For every series both tools convert, the NIfTI of our Volume (``volume.io.nifti.to_nifti``) and
dcm2niix's NIfTI must describe the same world grid (affine and shape after
``nibabel.as_closest_canonical``) and hold the same values. Where the two tools resample (gantry
tilt, slice gaps) values are compared by how they were made, not loosely. Skips without the data
or without the dcm2niix binary.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import DATA

import volume
from volume.errors import SliceGapError

#: dcm2niix writes float32 affines: grids agree to this many mm.
AFFINE_ATOL_MM = 1e-3

#: Every folder of ../shared/data/dicom holding a series (checked against the disk below).
SERIES_FOLDERS = [
    "brainix/T1", "brainix/T2", "brainix/FLAIR", "brainix/ROI", "knix_loc", "knee_t1_j2k",
    "d2n_generic_anat", "d2n_generic_implicit", "d2n_non_isotropic", "d2n_jpeg", "d2n_jpegls",
    "d2n_j2k", "d2n_rle",
]


def _convert(exe: str, folder: Path, out: Path) -> dict[str, Path]:
    """dcm2niix's NIfTI files for ``folder``, by file name."""
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run([exe, "-z", "n", "-b", "n", "-f", "%s_%e_%j", "-o", str(out), str(folder)],
                   check=True, capture_output=True, timeout=120)
    return {p.name: p for p in sorted(out.glob("*.nii"))}


def _canonical(img):
    import nibabel as nib

    c = nib.as_closest_canonical(img)
    return c, np.asarray(c.affine)


def _ours(vol: volume.Volume):
    from volume.io.nifti import to_nifti

    return _canonical(to_nifti(vol))


def _theirs(path: Path):
    import nibabel as nib

    return _canonical(nib.load(path))


def _same_grid(a, b) -> bool:
    (ia, aa), (ib, ab) = a, b
    return ia.shape == ib.shape and np.allclose(aa, ab, atol=AFFINE_ATOL_MM)


def _match(vol: volume.Volume, outputs: dict[str, Path]):
    """(ours, theirs) canonical images of the one dcm2niix output with the same grid as ``vol``."""
    ours = _ours(vol)
    hits = [p for p in outputs.values() if _same_grid(ours, _theirs(p))]
    assert len(hits) == 1, (
        f"{vol}: {len(hits)} dcm2niix outputs share its grid; theirs: "
        + "; ".join(f"{n} {_theirs(p)[0].shape}" for n, p in outputs.items())
    )
    return ours[0], _theirs(hits[0])[0]


def test_the_list_covers_every_series_folder(data_dir: Path) -> None:
    root = data_dir / "dicom"
    leaves = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_dir() and any(q.is_file() for q in p.iterdir())}
    assert leaves == set(SERIES_FOLDERS)


@pytest.mark.parametrize("folder", SERIES_FOLDERS)
def test_same_grid_and_values_as_dcm2niix(data_dir: Path, dcm2niix: str, tmp_path: Path, folder: str) -> None:
    src = data_dir / "dicom" / folder
    outputs = _convert(dcm2niix, src, tmp_path)
    found = volume.scan(src)
    assert found.stacks and not found.skipped
    assert len(found.stacks) == len(outputs)
    for stack in found.stacks:
        assert not stack.problem, stack.problem
        ours, theirs = _match(volume.load(stack), outputs)
        a, b = ours.get_fdata(), theirs.get_fdata()
        # knee_t1_j2k is Philips with a RealWorldValueMapping (slope 5.988) and no Rescale Slope:
        # both write the mapped values by default (display values: the test below)
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_knee_j2k_values_agree_with_gdcm(data_dir: Path) -> None:
    """GDCM reads DICOM's display values: ``scaling="display"`` gives exactly those; the default
    (Philips' RealWorldValueMapping, slope 5.988) is them times the mapping's slope."""
    sitk = pytest.importorskip("SimpleITK")
    src = data_dir / "dicom" / "knee_t1_j2k"
    vol = volume.load(src, scaling="display")
    precise = volume.load(src)
    slope = precise.meta["scaling"]["PhilipsRWVSlope"]
    assert slope == pytest.approx(5.988278, rel=1e-6) and precise.meta["scaling"]["UsePhilipsFloatNotDisplayScaling"] == 1
    np.testing.assert_allclose(np.asarray(precise.array), np.asarray(vol.array) * slope, rtol=1e-6)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(src)))
    img = reader.Execute()
    ref = sitk.GetArrayFromImage(img)  # (slice, row, column) in ITK's slice order
    origin = np.array(img.GetOrigin())
    first = vol.world([0, 0, 0]) if np.allclose(vol.world([0, 0, 0]), origin, atol=1e-3) else None
    if first is None:  # ITK sorted the other way along the normal
        ref = ref[::-1]
        assert np.allclose(vol.world([vol.shape[0] - 1, 0, 0]), origin, atol=1e-3)
    np.testing.assert_array_equal(np.asarray(vol.array), ref)


def test_knix_localizer_is_three_stacks(data_dir: Path) -> None:
    found = volume.scan(data_dir / "dicom" / "knix_loc")
    assert sorted((s.label, s.kind, s.n_slices) for s in found.stacks) == [
        ("axial", "localizer", 9), ("coronal", "localizer", 9), ("sagittal", "localizer", 9)
    ]
    for s in found.stacks:
        assert volume.load(s).orientation == s.label


def test_compressed_syntaxes_decode_to_the_same_volume(data_dir: Path) -> None:
    # JPEG baseline/lossless, JPEG-LS, JPEG 2000 and RLE copies of one series (the explicit and
    # implicit VR folders hold other pixel values; dcm2niix agrees with us on each, above)
    ref = volume.load(data_dir / "dicom" / "d2n_jpeg")
    for name in ("d2n_jpegls", "d2n_j2k", "d2n_rle"):
        vol = volume.load(data_dir / "dicom" / name)
        assert vol.meta["transfer_syntax"] != ref.meta["transfer_syntax"]
        np.testing.assert_array_equal(vol.affine, ref.affine)
        np.testing.assert_array_equal(vol.array, ref.array)
    assert volume.load(data_dir / "dicom" / "d2n_generic_implicit").meta["transfer_syntax"] == "1.2.840.10008.1.2"


def test_brainix_geometry(data_dir: Path) -> None:
    vol = volume.load(data_dir / "dicom" / "brainix" / "T1")
    assert vol.shape == (22, 512, 512)
    assert vol.spacing[0] == pytest.approx(6.0, abs=1e-3)  # 5 mm slices 6 mm apart: positions win
    assert vol.orientation.startswith("axial (oblique")
    assert vol.meta["acquisition"]["SliceThickness"] == pytest.approx(5.0)


# --- dicom-edge --------------------------------------------------------------------------------


def _edge(exe: str, name: str, tmp_path: Path) -> tuple[Path, dict[str, Path]]:
    src = DATA / "dicom-edge" / name
    if not src.is_dir():
        pytest.skip(f"{src} not found")
    return src, _convert(exe, src, tmp_path)


def _one(outputs: dict[str, Path], suffix: str) -> Path:
    hits = [p for n, p in outputs.items() if n.endswith(suffix)]
    assert len(hits) == 1, outputs
    return hits[0]


def test_gantry_tilt_matches_dcm2niix_tilt_corrected_grid(data_dir: Path, dcm2niix: str, tmp_path: Path) -> None:
    src, outputs = _edge(dcm2niix, "gantrytilting", tmp_path)
    vol = volume.load(src)
    assert vol.meta["tilt_corrected_deg"] == pytest.approx(14.0, abs=0.1)
    ours = _ours(vol)
    theirs = _theirs(_one(outputs, "_Tilt_1.nii"))
    assert _same_grid(ours, theirs)  # same orthogonal grid, grown by the drift
    a, b = ours[0].get_fdata(), theirs[0].get_fdata()
    # both interpolate the same slices in-plane: tiny differences at edges only
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.999
    assert np.mean(np.abs(a - b)) < 0.5  # HU, over the whole volume (values span ~3000 HU)
    assert np.mean(np.abs(a - b) > 20) < 1e-3
    # the uncorrected dcm2niix output is sheared: a different grid
    sheared = [p for n, p in outputs.items() if not n.endswith("_Tilt_1.nii")]
    assert len(sheared) == 1 and not _same_grid(ours, _theirs(sheared[0]))


def test_gap_is_refused_then_resampled_like_dcm2niix(data_dir: Path, dcm2niix: str, tmp_path: Path) -> None:
    src, outputs = _edge(dcm2niix, "sliceincrement", tmp_path)
    with pytest.raises(SliceGapError) as exc:
        volume.load(src)
    assert "IM-0001-0009-0001.dcm" in str(exc.value) and "IM-0001-0010-0001.dcm" in str(exc.value)
    vol = volume.load(src, allow_gaps=True)
    ours, ours_aff = _ours(vol)
    theirs, theirs_aff = _theirs(_one(outputs, "_Eq_1.nii"))
    # dcm2niix equalises to another step (4 mm, we keep the 5 mm median); same in-plane grid
    np.testing.assert_allclose(ours_aff[:3, :2], theirs_aff[:3, :2], atol=AFFINE_ATOL_MM)
    np.testing.assert_allclose(ours_aff[:3, 3], theirs_aff[:3, 3], atol=AFFINE_ATOL_MM)
    a, b = ours.get_fdata(), theirs.get_fdata()
    assert a.shape[:2] == b.shape[:2]
    # both are linear interpolations of the same slices: sample ours at their slice positions
    k = (theirs_aff[2, 3] + np.arange(b.shape[2]) * theirs_aff[2, 2] - ours_aff[2, 3]) / ours_aff[2, 2]
    for kb, kk in enumerate(k):
        i = int(min(np.floor(kk + 1e-9), a.shape[2] - 2))
        w = kk - i
        ours_at = a[..., i] * (1 - w) + a[..., i + 1] * w
        assert np.max(np.abs(ours_at - b[..., kb])) <= 1.0 + 1e-6  # integer rounding only


def test_tilt_and_gap_together(data_dir: Path, dcm2niix: str, tmp_path: Path) -> None:
    src, outputs = _edge(dcm2niix, "sliceincrement_2", tmp_path)
    vol = volume.load(src, allow_gaps=True)
    assert vol.meta["tilt_corrected_deg"] > 10 and vol.meta["gaps_resampled"]["slices_in"] == 4
    ours = _ours(vol)
    theirs = _theirs(_one(outputs, "_Tilt_Eq_1.nii"))
    assert _same_grid(ours, theirs)
    a, b = ours[0].get_fdata(), theirs[0].get_fdata()
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.998
    assert np.mean(np.abs(a - b)) < 1.0


@pytest.mark.parametrize("name", ["slicecount", "rgb", "sliceorientation"])
def test_edge_series_identical_to_dcm2niix(data_dir: Path, dcm2niix: str, tmp_path: Path, name: str) -> None:
    src, outputs = _edge(dcm2niix, name, tmp_path)
    found = volume.scan(src)
    assert len(found.stacks) == len(outputs)
    for stack in found.stacks:
        vol = volume.load(stack)
        ours, theirs = _match(vol, outputs)
        if vol.rgb:
            a, b = np.asarray(ours.dataobj), np.asarray(theirs.dataobj)
            for c in "RGB":
                np.testing.assert_array_equal(a[c], b[c])
        else:
            np.testing.assert_array_equal(ours.get_fdata(), theirs.get_fdata())


def test_sliceorientation_is_two_volumes(data_dir: Path) -> None:
    found = volume.scan(data_dir / "dicom-edge" / "sliceorientation")
    assert sorted((s.id, s.kind) for s in found.stacks) == [("202", "volume"), ("501", "volume")]


def test_images_at_one_position_are_frames_not_slices(data_dir: Path, dcm2niix: str, tmp_path: Path) -> None:
    src, outputs = _edge(dcm2niix, "notavolume", tmp_path)
    vol = volume.load(src)
    assert vol.is_4d and vol.shape[0] == 1 and vol.n_frames == 4  # never a fake 3D stack
    assert vol.meta["frame_order"] == "AcquisitionNumber"
    ours, theirs = _match(vol, outputs)
    a, b = ours.get_fdata(), theirs.get_fdata()
    # dcm2niix orders these frames by InstanceNumber, we by AcquisitionNumber (here reversed)
    np.testing.assert_array_equal(a, b[..., ::-1])


# --- a real Siemens mosaic (nibabel's test data: 2 DWI volumes of 48 slices) ---------------------


@pytest.fixture
def siemens_mosaic(tmp_path: Path) -> Path:
    import gzip

    import nibabel

    src = Path(nibabel.__file__).parent / "nicom" / "tests" / "data"
    names = ["siemens_dwi_0.dcm.gz", "siemens_dwi_1000.dcm.gz"]
    if not all((src / n).is_file() for n in names):
        pytest.skip("nibabel's Siemens mosaic test files are not installed")
    folder = tmp_path / "mosaic"
    folder.mkdir()
    for n in names:
        (folder / n[:-3]).write_bytes(gzip.decompress((src / n).read_bytes()))
    return folder


def test_siemens_mosaic_matches_dcm2niix(siemens_mosaic: Path, dcm2niix: str, tmp_path: Path) -> None:
    outputs = _convert(dcm2niix, siemens_mosaic, tmp_path / "out")
    vol = volume.load(siemens_mosaic)
    assert vol.n_frames == 2 and vol.shape == (48, 128, 128)
    ours, theirs = _match(vol, outputs)
    np.testing.assert_array_equal(ours.get_fdata(), theirs.get_fdata())


def test_siemens_mosaic_first_slice_where_nibabel_puts_it(siemens_mosaic: Path) -> None:
    import pydicom
    from nibabel.nicom.dicomwrappers import wrapper_from_data

    vol = volume.load(siemens_mosaic)
    wrapper = wrapper_from_data(pydicom.dcmread(next(siemens_mosaic.iterdir())))
    normal = np.asarray(wrapper.slice_normal)
    first = np.asarray(wrapper.image_position)
    last = first + 47 * 3.0 * normal  # SpacingBetweenSlices 3 mm
    ends = {tuple(np.round(vol.world([0, 0, 0]), 3)), tuple(np.round(vol.world([47, 0, 0]), 3))}
    assert ends == {tuple(np.round(first, 3)), tuple(np.round(last, 3))}

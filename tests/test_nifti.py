"""The NIfTI writer: header packed by hand, voxels written straight from the array.

Files are read back with nibabel (an independent reader): the RAS affine must place every voxel
at the world position the Volume's LPS affine gives it, values must come back exactly, and the
header must say what NIfTI readers expect (sform/qform code 1, mm/s units, pixdim[4] = TR).
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from synth import AXIAL, CORONAL, SAGITTAL, linear_field, oblique_iop, rotation, synthetic_volume

from volume import Volume
from volume.errors import OutputExistsError
from volume.io.nifti import nifti_affine, nifti_header, quaternion, stored_data, to_nifti, write_nifti

ORIENTATIONS = {
    "axial": AXIAL,
    "coronal": CORONAL,
    "sagittal": SAGITTAL,
    "oblique": oblique_iop(degrees=23.0),
    "oblique_sag": oblique_iop(SAGITTAL, axis=(0.2, 1.0, -0.4), degrees=-31.0),
}


def _lps_of_nifti_voxels(img: nib.Nifti1Image) -> np.ndarray:
    """(I, J, K, 3) LPS mm of every voxel of ``img`` through its sform (RAS) affine."""
    shape = img.shape[:3]
    ijk = np.stack(np.meshgrid(*(np.arange(n) for n in shape), indexing="ij"), axis=-1)
    ras = ijk @ img.affine[:3, :3].T + img.affine[:3, 3]
    return ras * np.array([-1.0, -1.0, 1.0])


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
@pytest.mark.parametrize("orientation", list(ORIENTATIONS))
def test_every_voxel_through_the_ras_affine(tmp_path: Path, orientation: str, suffix: str) -> None:
    vol = synthetic_volume(shape=(7, 9, 11), iop=ORIENTATIONS[orientation], dtype=np.float32)
    path = write_nifti(vol, tmp_path / f"v{suffix}")
    img = nib.load(path)
    assert img.shape == (11, 9, 7)  # (columns, rows, slices)
    assert int(img.header["sform_code"]) == 1 and int(img.header["qform_code"]) == 1
    np.testing.assert_allclose(img.get_sform(), nifti_affine(vol), atol=1e-4)
    np.testing.assert_allclose(img.get_qform(), img.get_sform(), atol=1e-4)  # orthogonal: both agree
    assert img.header.get_xyzt_units() == ("mm", "sec")
    world = _lps_of_nifti_voxels(img)
    expected = linear_field(world[..., 0], world[..., 1], world[..., 2])
    np.testing.assert_allclose(img.get_fdata(), expected, atol=1e-2)


@pytest.mark.parametrize("seed", range(6))
def test_quaternion_matches_nibabel_for_any_rotation(seed: int) -> None:
    rng = np.random.default_rng(seed)
    r = rotation(rng.normal(size=3), rng.uniform(-180, 180))
    if seed % 2:
        r[:, 2] *= -1  # left-handed: qfac -1
    zooms = rng.uniform(0.3, 4.0, size=3)
    affine = np.eye(4)
    affine[:3, :3] = r * zooms
    affine[:3, 3] = rng.normal(scale=50, size=3)
    ours = nib.Nifti1Header.from_fileobj(__import__("io").BytesIO(nifti_header((4, 5, 6), np.int16, affine)))
    np.testing.assert_allclose(ours.get_qform(), affine, atol=1e-4)
    np.testing.assert_allclose(ours.get_sform(), affine, atol=1e-4)
    (b, c, d), qfac = quaternion(r)
    assert qfac == (-1.0 if seed % 2 else 1.0)
    ref = nib.Nifti1Header()
    ref.set_qform(affine, code=1)
    np.testing.assert_allclose(ours["pixdim"][:4], ref["pixdim"][:4], atol=1e-5)
    np.testing.assert_allclose(ref.get_qform(), ours.get_qform(), atol=1e-4)


def test_header_fields_match_nibabels_own_image(tmp_path: Path) -> None:
    vol = synthetic_volume(iop=oblique_iop(), dtype=np.int16)
    img = nib.load(write_nifti(vol, tmp_path / "a.nii"))
    ref = to_nifti(vol)
    for key in ("dim", "datatype", "bitpix", "qform_code", "sform_code", "xyzt_units", "srow_x", "srow_y", "srow_z"):
        np.testing.assert_array_equal(img.header[key], ref.header[key], err_msg=key)
    np.testing.assert_allclose(img.header["pixdim"], ref.header["pixdim"], atol=1e-6)
    assert img.dataobj.offset == 352
    assert os.path.getsize(tmp_path / "a.nii") == 352 + vol.array.nbytes
    np.testing.assert_array_equal(np.asarray(img.dataobj), ref.get_fdata().astype(np.int16))


@pytest.mark.parametrize("threads", [1, 2])
def test_gzip_is_one_standard_stream(tmp_path: Path, threads: int) -> None:
    vol = synthetic_volume(shape=(40, 128, 128), dtype=np.int16)  # 1.3 MB: several compression blocks
    write_nifti(vol, tmp_path / "a.nii.gz", threads=threads)
    write_nifti(vol, tmp_path / "a.nii")
    packed = (tmp_path / "a.nii.gz").read_bytes()
    raw = gzip.decompress(packed)  # the stdlib reader, not nibabel
    assert raw == (tmp_path / "a.nii").read_bytes()
    member = zlib.decompressobj(16 + zlib.MAX_WBITS)
    assert member.decompress(packed) == raw and member.unused_data == b""  # one gzip member


def test_4d_frames_last_and_frame_interval_in_pixdim4(tmp_path: Path) -> None:
    base = synthetic_volume(shape=(5, 6, 7), iop=oblique_iop(), dtype=np.int16)
    frames = np.stack([np.asarray(base.array) + 100 * t for t in range(3)])
    vol = Volume(frames, base.affine, {"frame_interval_s": 2.5})
    img = nib.load(write_nifti(vol, tmp_path / "a.nii.gz"))
    assert img.shape == (7, 6, 5, 3)
    assert img.header.get_zooms()[3] == pytest.approx(2.5)
    assert img.header.get_xyzt_units() == ("mm", "sec")
    data = np.asarray(img.dataobj)
    for t in range(3):
        np.testing.assert_array_equal(data[..., t], frames[t].transpose(2, 1, 0))


def test_rgb_volume_is_rgb24(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    arr = rng.integers(0, 256, size=(3, 4, 5, 3), dtype=np.uint8)
    vol = Volume(arr, synthetic_volume(shape=(3, 4, 5)).affine, {}, rgb=True)
    img = nib.load(write_nifti(vol, tmp_path / "c.nii"))
    assert img.header["datatype"] == 128
    data = np.asarray(img.dataobj)
    assert data.shape == (5, 4, 3)
    for ch, name in enumerate("RGB"):
        np.testing.assert_array_equal(data[name], arr[..., ch].transpose(2, 1, 0))
    wide = Volume(arr.astype(np.uint16) << 8, vol.affine, {}, rgb=True)
    img16 = nib.load(write_nifti(wide, tmp_path / "c16.nii"))
    np.testing.assert_array_equal(np.asarray(img16.dataobj)["G"], arr[..., 1].transpose(2, 1, 0))


def test_uniform_fractional_rescale_stored_as_integers_with_scl(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    raw = rng.integers(-2000, 3000, size=(4, 5, 6)).astype(np.int16)
    slope, inter = 0.37, -12.5
    values = raw.astype(np.float32) * np.float32(slope) + np.float32(inter)
    vol = Volume(values, np.eye(4), {})
    img = nib.load(write_nifti(vol, tmp_path / "s.nii", rescale=(slope, inter)))
    assert img.get_data_dtype() == np.int16
    assert img.dataobj.slope == pytest.approx(slope) and img.dataobj.inter == pytest.approx(inter)
    np.testing.assert_allclose(img.get_fdata(), values.transpose(2, 1, 0), rtol=1e-6, atol=1e-4)
    # values not on the rescale grid (e.g. after interpolation) stay float32
    values[0, 0, 0] += 0.1
    img2 = nib.load(write_nifti(Volume(values, np.eye(4), {}), tmp_path / "f.nii", rescale=(slope, inter)))
    assert img2.get_data_dtype() == np.float32
    np.testing.assert_array_equal(img2.get_fdata(), values.transpose(2, 1, 0))


def test_unsigned_types(tmp_path: Path) -> None:
    small = np.arange(60, dtype=np.uint16).reshape(3, 4, 5)
    assert stored_data(Volume(small, np.eye(4), {})).dtype == np.int16  # fits: signed, like dcm2niix
    big = small.copy()
    big[0, 0, 0] = 60000
    img = nib.load(write_nifti(Volume(big, np.eye(4), {}), tmp_path / "u.nii"))
    assert img.get_data_dtype() == np.uint16
    np.testing.assert_array_equal(np.asarray(img.dataobj), big.transpose(2, 1, 0))


def test_strided_array_is_written_in_order(tmp_path: Path) -> None:
    full = synthetic_volume(shape=(6, 8, 10), dtype=np.float32)
    view = Volume(np.asarray(full.array)[:, ::2, ::-1], np.eye(4), {})
    assert not view.array.flags.c_contiguous
    img = nib.load(write_nifti(view, tmp_path / "v.nii.gz"))
    np.testing.assert_array_equal(img.get_fdata(), np.asarray(view.array).transpose(2, 1, 0))


def test_existing_file_is_kept_without_force(tmp_path: Path) -> None:
    path = tmp_path / "a.nii.gz"
    path.write_bytes(b"precious")
    vol = synthetic_volume(dtype=np.int16)
    with pytest.raises(OutputExistsError, match="--force"):
        write_nifti(vol, path)
    assert path.read_bytes() == b"precious"
    assert [p.name for p in tmp_path.iterdir()] == ["a.nii.gz"]  # no temporary left behind
    write_nifti(vol, path, force=True)
    assert nib.load(path).shape == (28, 24, 20)


def test_bad_suffix_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\.nii"):
        write_nifti(synthetic_volume(), tmp_path / "a.img")


def test_dimension_beyond_nifti1_is_a_clear_error() -> None:
    from volume.errors import UnsupportedDicomError

    with pytest.raises(UnsupportedDicomError, match="32767"):
        nifti_header((4, 4, 40000), np.int16, np.eye(4))

"""The series loader on synthetic series whose geometry the test chose.

Every test writes DICOM files with pydicom (tests/synth.py) whose pixel values sample a known
function of the patient position; the loaded Volume must hold, at every voxel, the value of
that function at the voxel's world position through its affine.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from pydicom.uid import ExplicitVRBigEndian, ImplicitVRLittleEndian, RLELossless
from synth import (
    AXIAL,
    CORONAL,
    SAGITTAL,
    check_volume_against_field,
    linear_field,
    oblique_iop,
    write_enhanced,
    write_enhanced_4d,
    write_mosaic,
    write_series,
)

import volume
from volume.errors import AmbiguousSeriesError, NoDicomError, NotAVolumeError, SliceGapError


def _only_stack(found: volume.Scan) -> volume.Stack:
    assert len(found.stacks) == 1, found.stacks
    return found.stacks[0]


# --- orientation and order -----------------------------------------------------------------


@pytest.mark.parametrize(
    "iop",
    [AXIAL, CORONAL, SAGITTAL, oblique_iop(degrees=23.7), oblique_iop(SAGITTAL, axis=(0.2, 1, -0.4), degrees=-31.0)],
    ids=["axial", "coronal", "sagittal", "oblique23", "oblique_sag"],
)
def test_every_voxel_at_its_world_position(tmp_path: Path, iop) -> None:
    info = write_series(tmp_path, iop=iop, origin=(-30.0, 40.0, 60.0))
    vol = volume.load(tmp_path)
    assert vol.shape == (6, 12, 10)
    np.testing.assert_allclose(vol.spacing, (3.0, 1.5, 1.25), atol=1e-6)
    # slice axis along the normal cross(row, col); origin is the lowest slice's IPP
    np.testing.assert_allclose(vol.direction[:, 0], info.normal, atol=1e-6)
    np.testing.assert_allclose(vol.affine[:3, 3], info.ipps[0], atol=1e-6)
    check_volume_against_field(vol)


def test_descending_positions_and_reversed_instance_numbers(tmp_path: Path) -> None:
    # files written head-to-feet, InstanceNumber counting the other way, random names
    info = write_series(tmp_path, slice_spacing=-2.5, instance_numbers="reverse", names="shuffled")
    vol = volume.load(tmp_path)
    check_volume_against_field(vol)
    # sorted ascending along the normal: the first slice is the most inferior one
    assert vol.affine[2, 3] == pytest.approx(min(p[2] for p in info.ipps))
    assert vol.axcodes[0] == "S"
    np.testing.assert_allclose(vol.spacing[0], 2.5)


def test_instance_numbers_disagreeing_with_position_are_ignored(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    perm = rng.permutation(8) + 1
    write_series(tmp_path, shape=(8, 6, 7), instance_numbers="none",
                 extra=lambda k: {"InstanceNumber": int(perm[k])})
    check_volume_against_field(volume.load(tmp_path))


def test_file_names_and_extensions_mean_nothing(tmp_path: Path) -> None:
    write_series(tmp_path / "a", names="ordered", series_number=1, description="one")
    info = write_series(tmp_path / "a", names="shuffled", series_number=2, description="two", seed=5)
    for p in info.paths[:3]:  # odd extensions on some files
        os.rename(p, str(p) + ".txt")
    found = volume.scan(tmp_path)
    assert sorted(s.id for s in found.stacks) == ["1", "2"]
    check_volume_against_field(volume.load(tmp_path, series=2))
    check_volume_against_field(volume.load(found, series="one"))


# --- pixel values: rescale, dtype, photometric, encodings ------------------------------------


def test_int16_ct_rescale_stays_int16(tmp_path: Path) -> None:
    field = lambda x, y, z: -900.0 + 2 * x + 3 * y + 5 * z  # noqa: E731 - negative HU
    write_series(tmp_path, modality="CT", stored_dtype=np.int16, intercepts=-1024.0, field_fn=field)
    vol = volume.load(tmp_path)
    assert vol.array.dtype == np.int16
    assert vol.array.min() < 0
    check_volume_against_field(vol, field)


def test_unsigned_ct_with_intercept_becomes_signed(tmp_path: Path) -> None:
    field = lambda x, y, z: -600.0 + 2 * x + 3 * y + 5 * z  # noqa: E731
    write_series(tmp_path, modality="CT", stored_dtype=np.uint16, intercepts=-1024.0, field_fn=field)
    vol = volume.load(tmp_path)
    assert vol.array.dtype.kind == "i"
    check_volume_against_field(vol, field)


@pytest.mark.parametrize(
    "stored,field",
    [
        (np.int16, lambda x, y, z: -32700.0 - 40.0 * (z - 20.0) + 0 * x),  # late slices below int16
        (np.uint16, lambda x, y, z: 32000.0 + 100.0 * (z - 20.0) + 0 * x),  # late slices above int16
    ],
    ids=["int16_below", "uint16_above"],
)
def test_rescale_widens_only_when_values_need_it(tmp_path: Path, stored, field) -> None:
    # the first slices fit int16 after the intercept, the last ones do not: int32, all exact
    write_series(tmp_path, stored_dtype=stored, intercepts=-1024.0 if stored == np.int16 else 1024.0,
                 field_fn=field, modality="CT")
    vol = volume.load(tmp_path)
    assert vol.array.dtype == np.int32
    check_volume_against_field(vol, field)


def test_integer_slope_above_one_keeps_integers(tmp_path: Path) -> None:
    write_series(tmp_path, slopes=2.0, intercepts=-100.0)
    vol = volume.load(tmp_path)
    assert vol.array.dtype.kind == "i"
    # stored values are rounded to the nearest multiple of the slope: error up to slope / 2
    check_volume_against_field(vol, atol=1.0 + 1e-6)


def test_fractional_slope_gives_float32(tmp_path: Path) -> None:
    write_series(tmp_path, slopes=0.25, intercepts=3.5)
    vol = volume.load(tmp_path)
    assert vol.array.dtype == np.float32
    check_volume_against_field(vol, atol=0.125 + 1e-3)


def test_slope_varying_per_slice_gives_float32(tmp_path: Path) -> None:
    slopes = [1.0, 2.0, 0.5, 1.0, 3.0, 1.5]
    intercepts = [0.0, -10.0, 5.0, 0.0, 20.0, -1.0]
    info = write_series(tmp_path, slopes=slopes, intercepts=intercepts)
    vol = volume.load(tmp_path)
    assert vol.array.dtype == np.float32
    # each slice exact to its own quantisation
    for k in range(6):
        np.testing.assert_allclose(vol.array[k], info.values[k], atol=1e-3)
    check_volume_against_field(vol, atol=max(slopes) / 2 + 1e-3)


def test_monochrome1_is_remembered_not_inverted(tmp_path: Path) -> None:
    write_series(tmp_path, photometric="MONOCHROME1")
    vol = volume.load(tmp_path)
    assert vol.meta["photometric"] == "MONOCHROME1"
    check_volume_against_field(vol)  # values are the stored modality values, not inverted


@pytest.mark.parametrize(
    "syntax", [ImplicitVRLittleEndian, ExplicitVRBigEndian, RLELossless], ids=["implicit", "big_endian", "rle"]
)
def test_transfer_syntaxes(tmp_path: Path, syntax: str) -> None:
    write_series(tmp_path, iop=oblique_iop(degrees=11.0), transfer_syntax=syntax)
    vol = volume.load(tmp_path)
    assert vol.meta["transfer_syntax"] == syntax
    check_volume_against_field(vol)


def test_signed_values_in_big_endian(tmp_path: Path) -> None:
    field = lambda x, y, z: -300.0 + 2 * x + 3 * y + 5 * z  # noqa: E731
    write_series(tmp_path, stored_dtype=np.int16, field_fn=field, transfer_syntax=ExplicitVRBigEndian)
    vol = volume.load(tmp_path)
    assert vol.array.min() < 0
    check_volume_against_field(vol, field)


# --- gantry tilt and gaps ------------------------------------------------------------------


def _tilted_positions(n: int, spacing: float, degrees: float, origin=(-20.0, -30.0, 10.0)) -> list[np.ndarray]:
    """Positions of a CT whose gantry is tilted: IOP stays axial, origins drift along y."""
    shift = spacing * np.tan(np.radians(degrees))
    return [np.asarray(origin) + np.array([0.0, k * shift, k * spacing]) for k in range(n)]


@pytest.mark.parametrize("degrees", [14.0, -9.5])
def test_gantry_tilt_is_corrected_onto_an_orthogonal_grid(tmp_path: Path, degrees: float) -> None:
    n, rows, cols = 10, 40, 16
    info = write_series(tmp_path, shape=(n, rows, cols), modality="CT", pixel_spacing=(1.0, 1.0),
                        positions=_tilted_positions(n, 2.0, degrees))
    stack = _only_stack(volume.scan(tmp_path))
    assert any("tilt" in w for w in stack.warnings)
    vol = volume.load(tmp_path)
    assert vol.meta["tilt_corrected_deg"] == pytest.approx(abs(degrees), abs=0.05)
    # orthogonal grid along the true slice normal
    d = vol.direction
    np.testing.assert_allclose(d.T @ d, np.eye(3), atol=1e-9)
    np.testing.assert_allclose(d[:, 0], [0, 0, 1], atol=1e-9)
    # the grid grows by the drift: no pixel of any slice is lost
    drift = int(np.ceil(abs(np.tan(np.radians(degrees))) * 2.0 * (n - 1) - 0.01))
    assert vol.shape == (n, rows + drift, cols)
    assert stack.describe()["shape"] == list(vol.shape)  # `ls` shows what load returns
    # each voxel's source row in its slice, from its world position and that slice's IPP
    k, j, i = np.meshgrid(*(np.arange(s) for s in vol.shape), indexing="ij")
    world = vol.world(np.stack([k, j, i], -1))
    ipps = np.array(info.ipps)[k]
    src_row = ((world - ipps) @ info.col_dir) / 1.0
    src_dist = (world - ipps) @ info.normal
    np.testing.assert_allclose(src_dist, 0.0, atol=1e-9)  # every voxel lies in its slice's plane
    expected = linear_field(world[..., 0], world[..., 1], world[..., 2])
    values = np.asarray(vol.array, float)
    inside = (src_row >= 0) & (src_row <= rows - 1)
    assert inside.sum() >= n * (rows - 1) * cols  # the grid covers every slice's full extent
    np.testing.assert_allclose(values[inside], expected[inside], atol=1.01)
    outside = (src_row < -1) | (src_row > rows)
    assert outside.any()
    assert (values[outside] == values.min()).all()  # background, not smeared values


def _gap_positions(spacing: float, missing: int, n: int, iop=AXIAL) -> list[np.ndarray]:
    normal = np.cross(iop[:3], iop[3:])
    return [np.array([-10.0, -20.0, 30.0]) + k * spacing * normal for k in range(n) if k != missing]


def test_positions_rounded_in_the_headers_are_not_gaps(tmp_path: Path) -> None:
    # 0.625 mm slices whose IPPs the scanner wrote with one decimal: steps of 0.6 and 0.7 mm
    positions = [np.array([-10.0, -20.0, round(30.0 + 0.625 * k, 1)]) for k in range(40)]
    write_series(tmp_path, shape=(40, 6, 5), positions=positions)
    vol = volume.load(tmp_path)
    assert vol.spacing[0] == pytest.approx(0.625, abs=1e-3)
    # a slice holds the field at its rounded position: within 0.05 mm of the true one, and the
    # uniform grid through the rounded end positions is within another 0.05 mm (5 units per mm)
    check_volume_against_field(vol, atol=0.5 + 5 * 0.1 + 1e-6)


def test_gap_is_refused_naming_files_and_positions(tmp_path: Path) -> None:
    info = write_series(tmp_path, shape=(7, 8, 9), positions=_gap_positions(2.0, 3, 8))
    with pytest.raises(SliceGapError) as exc:
        volume.load(tmp_path)
    msg = str(exc.value)
    below, above = info.paths[2].name, info.paths[3].name  # slices at 34 mm and 38 mm
    assert below in msg and above in msg
    assert "34.00" in msg and "38.00" in msg
    assert "allow_gaps" in msg or "--allow-gaps" in msg


def test_allow_gaps_resamples_with_field_values(tmp_path: Path) -> None:
    iop = oblique_iop(degrees=8.0)
    write_series(tmp_path, shape=(7, 8, 9), iop=iop, positions=_gap_positions(2.0, 3, 8, iop))
    vol = volume.load(tmp_path, allow_gaps=True)
    assert vol.shape[0] == 8
    np.testing.assert_allclose(vol.spacing[0], 2.0, atol=1e-9)
    assert vol.meta["gaps_resampled"]["slices_in"] == 7
    check_volume_against_field(vol, atol=1.01)  # interpolated between two rounded slices


def test_gap_with_uneven_but_allowed_target_spacing(tmp_path: Path) -> None:
    # steps 2, 2, 5, 2, 2: the resampled grid spans the data exactly with about 2 mm steps
    d = [0, 2, 4, 9, 11, 13]
    write_series(tmp_path, shape=(6, 5, 4), positions=[np.array([0.0, 0.0, 20.0 + v]) for v in d])
    vol = volume.load(tmp_path, allow_gaps=True)
    last = vol.world([vol.shape[0] - 1, 0, 0])
    assert last[2] == pytest.approx(33.0)
    check_volume_against_field(vol, atol=1.01)


# --- duplicates, junk, localizers --------------------------------------------------------------


def test_duplicate_file_is_dropped(tmp_path: Path) -> None:
    info = write_series(tmp_path / "a")
    copy = tmp_path / "b" / "copy_of_one"
    copy.parent.mkdir()
    copy.write_bytes(info.paths[2].read_bytes())
    vol = volume.load(tmp_path)
    assert vol.shape == (6, 12, 10)
    check_volume_against_field(vol)
    assert _only_stack(volume.scan(tmp_path)).warnings == ["duplicate: 1 identical file(s) ignored"]


def test_siemens_mosaic_without_slice_count_is_refused_clearly(tmp_path: Path) -> None:
    write_series(tmp_path, shape=(2, 8, 8), extra={"ImageType": ["ORIGINAL", "PRIMARY", "M", "ND", "MOSAIC"]})
    with pytest.raises(NotAVolumeError, match="mosaic.*MOSAIC.*number of slices.*NumberOfImagesInMosaic.*0019,100A"):
        volume.load(tmp_path)


@pytest.mark.parametrize("iop", [AXIAL, oblique_iop(SAGITTAL, degrees=21.0)], ids=["axial", "oblique_sag"])
def test_siemens_mosaic_is_unpacked(tmp_path: Path, iop) -> None:
    write_mosaic(tmp_path, shape=(5, 6, 7), iop=iop, n_volumes=2)  # 5 tiles of 6x7 in a 3x3 mosaic
    vol = volume.load(tmp_path)
    assert vol.n_frames == 2 and vol.shape == (5, 6, 7)
    np.testing.assert_allclose(vol.spacing, (3.0, 2.0, 1.5), atol=1e-6)
    for t in range(2):
        check_volume_against_field(vol.frame(t), lambda x, y, z, t=t: linear_field(x, y, z) + 100 * t)


def _write_junk(folder: Path) -> dict[str, int]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "notes.txt").write_text("not dicom at all\n")
    (folder / "empty.dcm").write_bytes(b"")
    (folder / "random.bin").write_bytes(np.random.default_rng(0).bytes(3000))
    return {"not DICOM": 2, "empty": 1}


def test_mixed_folder_with_junk_and_three_plane_localizer(tmp_path: Path) -> None:
    info = write_series(tmp_path / "t1", series_number=3, description="T1")
    # a truncated copy of a real image
    data = info.paths[0].read_bytes()
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "truncated").write_bytes(data[: len(data) // 3])
    _write_junk(tmp_path / "junk")
    # a localizer: one series in three orientations
    uid = "1.2.826.0.1.3680043.8.498.1"
    planes = ((AXIAL, (-5.0, -5, 0)), (CORONAL, (-5.0, 0, 5)), (SAGITTAL, (0.0, -5, 5)))
    for seed, (iop, origin) in enumerate(planes):
        write_series(tmp_path / "loc", shape=(3, 8, 8), iop=iop, origin=origin, series_uid=uid,
                     series_number=1, description="loc", extra={"ImageType": ["ORIGINAL", "PRIMARY", "LOCALIZER"]},
                     seed=10 + seed)
    found = volume.scan(tmp_path)
    assert found.report.skipped["empty"] == 1
    assert found.report.skipped["not DICOM"] >= 2
    assert sum(found.report.skipped.values()) == 4  # 3 junk + 1 truncated
    assert "skipped 4 files" in found.skipped
    loc = [s for s in found.stacks if s.series_number == 1]
    assert len(loc) == 3
    assert {s.kind for s in loc} == {"localizer"}
    assert sorted(s.label for s in loc) == ["axial", "coronal", "sagittal"]
    assert all(s.n_slices == 3 for s in loc)
    # the single volume is chosen when the other stacks are localizers?  No: ambiguity is explicit
    with pytest.raises(AmbiguousSeriesError):
        volume.load(tmp_path)
    check_volume_against_field(volume.load(tmp_path, series=3))
    for s in loc:
        vol = volume.load(s)
        check_volume_against_field(vol)
        assert vol.orientation == s.label


def test_the_only_loadable_stack_is_chosen(tmp_path: Path) -> None:
    write_series(tmp_path / "t1", series_number=3)
    # a secondary capture without geometry beside it: listed, not loadable
    write_series(tmp_path / "sc", shape=(1, 4, 4), series_number=99,
                 extra=lambda k: {"ImagePositionPatient": None})
    found = volume.scan(tmp_path)
    assert len(found.stacks) == 2 and sum(1 for s in found.stacks if s.problem) == 1
    check_volume_against_field(volume.load(tmp_path))
    with pytest.raises(NotAVolumeError, match="ImagePositionPatient"):
        volume.load(tmp_path, series=99)


def test_folder_without_dicom(tmp_path: Path) -> None:
    _write_junk(tmp_path)
    with pytest.raises(NoDicomError, match="no DICOM"):
        volume.load(tmp_path)


def test_single_image_and_two_slices(tmp_path: Path) -> None:
    write_series(tmp_path / "one", shape=(1, 6, 5))
    vol = volume.load(tmp_path / "one")
    assert vol.shape == (1, 6, 5)
    check_volume_against_field(vol)
    write_series(tmp_path / "two", shape=(2, 6, 5), slice_spacing=4.0)
    vol = volume.load(tmp_path / "two")
    assert vol.spacing[0] == pytest.approx(4.0)
    check_volume_against_field(vol)


def test_series_split_by_matrix_and_pixel_spacing(tmp_path: Path) -> None:
    uid = "1.2.826.0.1.3680043.8.498.90"
    write_series(tmp_path, shape=(4, 8, 6), series_uid=uid, seed=1)
    write_series(tmp_path, shape=(4, 10, 6), series_uid=uid, seed=2)
    write_series(tmp_path, shape=(4, 8, 6), series_uid=uid, seed=3, pixel_spacing=(0.7, 0.7))
    found = volume.scan(tmp_path)
    assert len(found.stacks) == 3
    shapes = sorted(tuple(s.shape) for s in found.stacks)
    assert shapes == [(4, 8, 6), (4, 8, 6), (4, 10, 6)]
    assert sorted(s.id for s in found.stacks) == ["7_6x10_1.25x1.5mm", "7_6x8_0.7mm", "7_6x8_1.25x1.5mm"]
    for s in found.stacks:
        check_volume_against_field(volume.load(s))


def test_dicomdir_is_an_index_not_an_image(tmp_path: Path) -> None:
    from pydicom.data import get_testdata_file

    dicomdir = Path(get_testdata_file("DICOMDIR"))
    (tmp_path / "DICOMDIR").write_bytes(dicomdir.read_bytes())
    write_series(tmp_path / "s")
    found = volume.scan(tmp_path)
    assert found.report.skipped == {"DICOMDIR index": 1}
    check_volume_against_field(volume.load(found))


# --- 4D, echoes ------------------------------------------------------------------------------


def _write_frames(folder: Path, n_frames: int, tag: str | None, **kw) -> str:
    """A series of ``n_frames`` repeats of the same positions, ``tag`` numbering the frames.

    Frame t holds the field plus ``100 * t`` so frames are told apart.
    """
    uid = "1.2.826.0.1.3680043.8.498.77"
    for t in range(n_frames):
        extra = {tag: t + 1} if tag else {}
        write_series(folder, shape=(4, 6, 5), series_uid=uid, field_fn=lambda x, y, z, t=t: linear_field(x, y, z) + 100 * t,
                     extra=extra, seed=100 + t, **kw)
    return uid


@pytest.mark.parametrize("tag", ["TemporalPositionIdentifier", "AcquisitionNumber"])
def test_4d_ordered_by_header_field(tmp_path: Path, tag: str) -> None:
    _write_frames(tmp_path, 3, tag)
    vol = volume.load(tmp_path)
    assert vol.is_4d and vol.n_frames == 3 and vol.shape == (4, 6, 5)
    for t in range(3):
        check_volume_against_field(vol.frame(t), lambda x, y, z, t=t: linear_field(x, y, z) + 100 * t)
    stack = _only_stack(volume.scan(tmp_path))
    assert stack.kind == "4D"
    assert stack.describe()["frame_order"] == tag


def test_4d_ordered_by_trigger_time_gives_frame_interval(tmp_path: Path) -> None:
    uid = "1.2.826.0.1.3680043.8.498.78"
    for t in range(3):
        write_series(tmp_path, shape=(3, 4, 4), series_uid=uid, seed=t, extra={"TriggerTime": 40.0 * t},
                     field_fn=lambda x, y, z, t=t: linear_field(x, y, z) + 100 * t)
    vol = volume.load(tmp_path)
    assert vol.n_frames == 3
    assert vol.meta["frame_interval_s"] == pytest.approx(0.040)
    check_volume_against_field(vol.frame(2), lambda x, y, z: linear_field(x, y, z) + 200)


def test_repeated_positions_with_nothing_ordering_them(tmp_path: Path) -> None:
    _write_frames(tmp_path, 2, None)
    with pytest.raises(NotAVolumeError, match="nothing orders them") as exc:
        volume.load(tmp_path)
    assert not isinstance(exc.value, SliceGapError)
    assert _only_stack(volume.scan(tmp_path)).problem


def test_one_extra_image_at_a_position_is_refused(tmp_path: Path) -> None:
    info = write_series(tmp_path, shape=(5, 6, 5))
    write_series(tmp_path, shape=(1, 6, 5), positions=[info.ipps[2]], series_uid=info.series_uid, seed=9)
    with pytest.raises(NotAVolumeError, match="duplicated or missing"):
        volume.load(tmp_path)


def test_multi_echo_gives_one_stack_per_echo(tmp_path: Path) -> None:
    uid = "1.2.826.0.1.3680043.8.498.79"
    for e, te in enumerate((10.0, 30.0, 50.0)):
        write_series(tmp_path, shape=(4, 6, 5), series_uid=uid, seed=e, extra={"EchoNumbers": e + 1, "EchoTime": te},
                     field_fn=lambda x, y, z, e=e: linear_field(x, y, z) + 50 * e)
    found = volume.scan(tmp_path)
    assert sorted(s.id for s in found.stacks) == ["7_e1", "7_e2", "7_e3"]
    with pytest.raises(AmbiguousSeriesError, match="7_e1"):
        volume.load(found)
    for e in range(3):
        vol = volume.load(found, series=f"7_e{e + 1}")
        assert vol.meta["echo_number"] == e + 1
        check_volume_against_field(vol, lambda x, y, z, e=e: linear_field(x, y, z) + 50 * e)


# --- enhanced multi-frame ---------------------------------------------------------------------


@pytest.mark.parametrize("per_frame_orientation", [False, True], ids=["shared_iop", "per_frame_iop"])
def test_enhanced_multiframe(tmp_path: Path, per_frame_orientation: bool) -> None:
    iop = oblique_iop(CORONAL, degrees=19.0)
    write_enhanced(tmp_path / "mf.dcm", iop=iop, per_frame_orientation=per_frame_orientation,
                   frame_order=[2, 0, 4, 1, 3])
    vol = volume.load(tmp_path)
    assert vol.shape == (5, 8, 9)
    np.testing.assert_allclose(vol.spacing, (2.5, 1.0, 2.0), atol=1e-6)
    check_volume_against_field(vol)


def test_enhanced_multiframe_with_fractional_rescale(tmp_path: Path) -> None:
    write_enhanced(tmp_path / "mf.dcm", slope=0.5, intercept=-20.0)
    vol = volume.load(tmp_path)
    assert vol.array.dtype == np.float32
    check_volume_against_field(vol, atol=0.25 + 1e-3)


def test_enhanced_multiframe_4d(tmp_path: Path) -> None:
    write_enhanced_4d(tmp_path / "dce.dcm", shape=(3, 4, 6, 5), iop=oblique_iop(degrees=14.0))
    vol = volume.load(tmp_path)
    assert vol.n_frames == 3 and vol.shape == (4, 6, 5)
    assert vol.meta["frame_order"] == "TemporalPositionIdentifier"
    for t in range(3):
        check_volume_against_field(vol.frame(t), lambda x, y, z, t=t: linear_field(x, y, z) + 100 * t)


# --- scan API ------------------------------------------------------------------------------


def test_scan_repr_and_describe(tmp_path: Path) -> None:
    write_series(tmp_path, iop=oblique_iop(degrees=5.0), description="T2 tse")
    found = volume.scan(tmp_path)
    assert "1 series" in repr(found)
    d = _only_stack(found).describe()
    assert d["shape"] == [6, 12, 10]
    assert d["kind"] == "volume"
    assert d["orientation"].startswith("axial (oblique")
    assert d["spacing_mm"] == [3.0, 1.5, 1.25]
    assert "Doe" not in repr(d) and "PID-0042" not in repr(d)  # no identity in summaries


def test_meta_keeps_identity_apart(tmp_path: Path) -> None:
    write_series(tmp_path, extra={"InstitutionName": "Saint Synth", "StationName": "MR7", "EchoTime": 12.0,
                                  "PatientPosition": "FFS"})
    vol = volume.load(tmp_path)
    assert vol.meta["patient_position"] == "FFS"
    assert vol.meta["identity"]["PatientID"] == "PID-0042"
    assert vol.meta["identity"]["InstitutionName"] == "Saint Synth"
    assert vol.meta["acquisition"]["EchoTime"] == 12.0
    assert "InstitutionName" not in vol.meta["acquisition"] and "StationName" not in vol.meta["acquisition"]
    rest = {k: v for k, v in vol.meta.items() if k != "identity"}
    assert "PID-0042" not in repr(rest) and "Doe" not in repr(rest)
    assert vol.meta["modality"] == "MR" and vol.meta["series_number"] == 7


def test_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(volume.UsageError):
        volume.scan(tmp_path / "nope")


def test_unknown_series_lists_available(tmp_path: Path) -> None:
    write_series(tmp_path)
    with pytest.raises(volume.UsageError, match="available: 7"):
        volume.load(tmp_path, series="42")


def test_lying_frame_count_costs_nothing(tmp_path: Path) -> None:
    info = write_series(tmp_path, shape=(1, 6, 5), extra={"NumberOfFrames": 10_000_000})
    found = volume.scan(tmp_path)
    (stack,) = found.stacks
    assert len(stack.frames) == 1  # one record carries the problem, not ten million
    assert "NumberOfFrames is 10000000" in stack.problem and info.paths[0].name in stack.problem
    with pytest.raises(NotAVolumeError, match="NumberOfFrames"):
        volume.load(found)

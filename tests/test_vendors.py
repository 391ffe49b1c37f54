"""UIH, Canon/Toshiba and Siemens conventions, each on synthetic files that hold exactly it.

Each test writes a series whose geometry, b-values, directions and slice times are chosen here,
then checks what volume writes in world terms: every voxel's value at its patient position, the
``.bval``/``.bvec`` as world directions, SliceTiming by slice position. Where dcm2niix is installed
the same files go through it too, and the two must agree in world space; where they may not, the
test names dcm2niix's mistake and shows it on the files.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from peers import bvec_world, load_canonical, read_bval, read_bvec
from synth import AXIAL, CORONAL, SAGITTAL, check_volume_against_field, oblique_iop, write_mosaic
from vendor_synth import (
    ascconv_header,
    csa_header,
    field_of,
    siemens_csa,
    siemens_xa_time_after_start,
    time_of_day,
    uih_diffusion,
    write_4d,
    write_uih_grid,
)

import volume
from volume.cli import main
from volume.jobs.convert import convert

X, Y, Z, D = (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0), (0.6, 0.48, 0.64)

OBLIQUE = oblique_iop(AXIAL, degrees=25.0)


# --- helpers --------------------------------------------------------------------------------------


def _convert(src: Path, out: Path) -> dict[str, Path]:
    """Convert ``src`` (one stack expected) to ``.nii``; the written files by suffix."""
    results = convert(src, out)
    files = [Path(f) for r in results for f in r.files]
    by = {p.name.split(".", 1)[1] if "." in p.name else p.name: p for p in files}
    return {"nii": by.get("nii.gz") or by.get("nii"), "bval": by.get("bval"), "bvec": by.get("bvec"),
            "json": by.get("json"), "results": results}  # type: ignore[dict-item]


def _world_bvecs(files: dict[str, Path]) -> np.ndarray:
    """The written directions as unit world (LPS) vectors, one row per volume."""
    ras = bvec_world(read_bvec(files["bvec"]), nib.load(str(files["nii"])).affine)
    return ras * [-1, -1, 1]


def _frame_lps(iop, g) -> np.ndarray:
    """``g`` given along the image's row, column and normal, as a unit LPS vector."""
    row, col = np.asarray(iop[:3], float), np.asarray(iop[3:], float)
    v = g[0] * row + g[1] * col + g[2] * np.cross(row, col)
    return v / np.linalg.norm(v)


def _dcm2niix(exe: str, src: Path, out: Path) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run([exe, "-z", "n", "-f", "x", "-o", str(out), str(src)], check=True, capture_output=True)
    stem = out / "x"
    return {k: stem.with_suffix("." + k) for k in ("nii", "bval", "bvec", "json")}


def _times_by_position(nii: Path, times: list[float], iop=AXIAL) -> list[float]:
    """SliceTiming in order of the slices' position along ``cross(row, col)`` of ``iop``, lowest first."""
    affine = nib.load(str(nii)).affine
    normal_ras = np.cross(np.asarray(iop[:3]), np.asarray(iop[3:])) * [-1, -1, 1]
    along = [float((affine @ [0, 0, k, 1])[:3] @ normal_ras) for k in range(len(times))]
    return [t for _, t in sorted(zip(along, times, strict=True))]


def _sidecar(files: dict[str, Path]) -> dict:
    return json.loads(files["json"].read_text())


# --- UIH ------------------------------------------------------------------------------------------


UIH_VOLUMES = [(0.0, (0.0, 0.0, 0.0)), (1000.0, X), (1000.0, Y), (1000.0, Z), (1000.0, D)]


def _uih_classic(folder: Path, iop, *, standard: bool = False) -> None:
    """A UIH DWI of one file per slice; ``standard`` adds the standard elements with other values
    (UIH's own win: the standard direction is the one before rotation, dcm2niix issue 836)."""

    def private(ds, t, k):
        b, g = UIH_VOLUMES[t]
        uih_diffusion(ds, b, g)
        if standard:
            ds.DiffusionBValue = 0.0 if t == 0 else 900.0
            ds.DiffusionGradientOrientation = [0.0, 0.0, 1.0]

    write_4d(folder, len(UIH_VOLUMES), lambda t, k: {"Manufacturer": "UIH", "PatientPosition": "HFS",
                                                     "ImageType": ["ORIGINAL", "PRIMARY", "M", "NONE"]},
             iop=iop, private_of=private)


@pytest.mark.parametrize("iop", [OBLIQUE, SAGITTAL, oblique_iop(CORONAL, degrees=20.0)],
                         ids=["oblique-axial", "sagittal", "oblique-coronal"])
def test_uih_directions_are_components_along_the_image_axes(tmp_path: Path, iop) -> None:
    """(0065,1037) holds the gradient along the image's row, column and normal, (0065,1009) the
    b-value; both win over the standard elements UIH fills with other values."""
    _uih_classic(tmp_path / "in", iop, standard=True)
    files = _convert(tmp_path / "in", tmp_path / "out")
    assert read_bval(files["bval"]).tolist() == [0, 1000, 1000, 1000, 1000]
    world = _world_bvecs(files)
    assert np.allclose(world[0], 0)
    np.testing.assert_allclose(world[1:], [_frame_lps(iop, g) for _, g in UIH_VOLUMES[1:]], atol=2e-6)
    vol = volume.load(tmp_path / "in")
    for t in range(5):
        check_volume_against_field(vol.frame(t), field_of(t))


def _uih_grid_voxels_are_right(folder: Path, n_volumes: int) -> volume.Volume:
    vol = volume.load(folder)
    assert vol.n_frames == n_volumes
    for t in range(n_volumes):
        check_volume_against_field(vol.frame(t), field_of(t))
    return vol


def test_uih_grid_slices_are_placed_by_their_vframe_items(tmp_path: Path) -> None:
    """A UIH DWI of one grid per volume (ImageType VFRAME) with no top-level ImagePositionPatient:
    5 slices in 2 rows of 3 tiles, stored top slice first; each tile lands where its
    MRVFrameSequence item puts it, the volumes carry UIH's b-values and directions, and each
    slice's time is its item's AcquisitionTime."""
    times = [0.0, 0.8, 0.2, 1.0, 0.4]
    write_uih_grid(tmp_path / "in", UIH_VOLUMES, iop=OBLIQUE, tile_order=[4, 3, 2, 1, 0], slice_times=times)
    (stack,) = volume.scan(tmp_path / "in").stacks
    assert stack.shape == (5, 5, 6, 5) and not stack.problem
    _uih_grid_voxels_are_right(tmp_path / "in", 5)
    files = _convert(tmp_path / "in", tmp_path / "out")
    assert read_bval(files["bval"]).tolist() == [0, 1000, 1000, 1000, 1000]
    np.testing.assert_allclose(_world_bvecs(files)[1:], [_frame_lps(OBLIQUE, g) for _, g in UIH_VOLUMES[1:]],
                               atol=2e-6)
    assert _times_by_position(files["nii"], _sidecar(files)["SliceTiming"], OBLIQUE) == pytest.approx(times, abs=1e-6)


def test_uih_fmri_grids_convert_with_their_slice_times(tmp_path: Path) -> None:
    """A UIH fMRI (grids without diffusion weighting): a 4D NIfTI in volume order, no .bval/.bvec,
    SliceTiming from each tile's AcquisitionTime."""
    times = [0.0, 1.2, 0.4, 1.6, 0.8]
    write_uih_grid(tmp_path / "in", [(None, None)] * 3, iop=SAGITTAL, slice_times=times)
    _uih_grid_voxels_are_right(tmp_path / "in", 3)
    files = _convert(tmp_path / "in", tmp_path / "out")
    assert files["bval"] is None and files["bvec"] is None
    assert _times_by_position(files["nii"], _sidecar(files)["SliceTiming"], SAGITTAL) == pytest.approx(times, abs=1e-6)


@pytest.mark.parametrize(("n", "tile"), [(4, (6, 5)), (9, (4, 4)), (20, (4, 3))])
def test_uih_grid_layouts_tile_ceil_sqrt_per_row(tmp_path: Path, n: int, tile: tuple[int, int]) -> None:
    """``ceil(sqrt(n))`` tiles per row, ``ceil(n / per_row)`` rows (20 slices: 5 x 4), as UIH's table says."""
    write_uih_grid(tmp_path / "in", UIH_VOLUMES[:2], n=n, tile=tile, iop=SAGITTAL)
    _uih_grid_voxels_are_right(tmp_path / "in", 2)


def test_uih_grid_without_vframe_items_starts_at_the_top_level_position(tmp_path: Path) -> None:
    """Without MRVFrameSequence, the top-level ImagePositionPatient is the first tile's (UIH's grid,
    unlike a Siemens mosaic, is not shifted by its corner) and the tiles follow ``cross(row, col)``."""
    write_uih_grid(tmp_path / "in", UIH_VOLUMES[:3], iop=OBLIQUE, vframe=False, top_ipp=True, image_type="MOSAIC")
    _uih_grid_voxels_are_right(tmp_path / "in", 3)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"n_element": False}, "MRNumberOfSliceInVolume 0065,1050) is missing"),
    ({"vframe": False}, "ImagePositionPatient is missing at the top level and in MRVFrameSequence"),
])
def test_a_uih_grid_that_cannot_be_placed_is_refused_by_name(tmp_path: Path, capsys, kwargs, message) -> None:
    """A grid volume cannot place: one line naming the file and what is missing, exit 1, no output."""
    write_uih_grid(tmp_path / "in", UIH_VOLUMES[:2], **kwargs)
    assert main(["convert", str(tmp_path / "in"), "-o", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert message in err and "UIH grid" in err
    assert not list((tmp_path / "out").glob("*.nii*"))


def test_uih_agrees_with_dcm2niix_on_per_slice_files_and_grids(tmp_path: Path, dcm2niix: str) -> None:
    """The same UIH files through dcm2niix: the same grid and voxels, b-values and world directions."""
    _uih_classic(tmp_path / "slices", OBLIQUE, standard=True)
    write_uih_grid(tmp_path / "grids", UIH_VOLUMES, iop=SAGITTAL, tile_order=[4, 3, 2, 1, 0])
    for name in ("slices", "grids"):
        ours = _convert(tmp_path / name, tmp_path / "ours" / name)
        theirs = _dcm2niix(dcm2niix, tmp_path / name, tmp_path / "theirs" / name)
        a, b = load_canonical(ours["nii"]), load_canonical(theirs["nii"])
        np.testing.assert_allclose(a[1], b[1], atol=1e-3, err_msg=name)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(read_bval(ours["bval"]), read_bval(theirs["bval"]))
        np.testing.assert_allclose(_world_bvecs(ours), _world_bvecs(theirs), atol=1e-4, err_msg=name)


def test_uih_slice_times_pass_midnight(tmp_path: Path) -> None:
    """UIH's slice time is each slice's AcquisitionTime; a volume that starts before midnight and
    ends after it keeps its order (R002 series do)."""
    rel = [0.0, 1.0, 0.5, 1.5]
    start = 86400 - 1.2
    write_4d(tmp_path / "in", 2, lambda t, k: {
        "Manufacturer": "UIH", "RepetitionTime": 2000, "MRAcquisitionType": "2D",
        "AcquisitionTime": time_of_day(start + 2.0 * t + rel[k])})
    files = _convert(tmp_path / "in", tmp_path / "out")
    assert _sidecar(files)["SliceTiming"] == pytest.approx(rel, abs=1e-6)


def test_dcm2niix_rounds_uih_slice_times_to_float32(tmp_path: Path, dcm2niix: str) -> None:
    """dcm2niix's mistake, named: it reads AcquisitionTime HHMMSS.ffffff into a 32-bit float, so
    afternoon times lose everything below 1/64 s (13:40:52.312 is 134052.3125). UIH's slice times
    come out up to 16 ms off (0.1 s apart becomes 0.09375). volume keeps the files' times."""
    rel = [0.0, 0.1, 0.2, 0.3]
    start = 13 * 3600 + 40 * 60 + 52.312
    write_4d(tmp_path / "in", 2, lambda t, k: {
        "Manufacturer": "UIH", "RepetitionTime": 2000, "MRAcquisitionType": "2D",
        "AcquisitionTime": time_of_day(start + 2.0 * t + rel[k])})
    ours = _sidecar(_convert(tmp_path / "in", tmp_path / "ours"))["SliceTiming"]
    theirs = json.loads(_dcm2niix(dcm2niix, tmp_path / "in", tmp_path / "theirs")["json"].read_text())["SliceTiming"]
    assert ours == pytest.approx(rel, abs=1e-6)
    as_float32 = [float(np.float32(float(time_of_day(start + r)))) for r in rel]
    float32_times = [round(v - as_float32[0], 3) for v in as_float32]  # what a float32 clock says
    assert theirs == pytest.approx(float32_times, abs=2e-3)
    assert max(abs(a - b) for a, b in zip(theirs, rel, strict=True)) > 0.005


def test_uih_phase_encoding_polarity(tmp_path: Path) -> None:
    """(0065,1058) 1 is a flipped (negative) phase-encoding direction, 0 a positive one."""
    for flag, expected in ((0, "j"), (1, "j-")):
        src = tmp_path / f"in{flag}"
        write_4d(src, 1, lambda t, k: {"Manufacturer": "UIH", "InPlanePhaseEncodingDirection": "COL"},
                 private_of=lambda ds, t, k, flag=flag: ds.private_block(0x0065, "Image Private Header", create=True)
                 .add_new(0x58, "IS", str(flag)))
        assert _sidecar(_convert(src, tmp_path / f"out{flag}"))["PhaseEncodingDirection"] == expected


# --- Canon / Toshiba ------------------------------------------------------------------------------


def _canon(folder: Path, vectors, *, vendor: str = "CANON_MEC", iop=AXIAL, phase: str = "COL", standard: bool = True,
           comments: bool = False, position: str = "HFS") -> None:
    """A Canon/Toshiba DWI: volume ``t`` weighted b=1000 along ``vectors[t]`` (world) or None for b=0,
    which then carries neither b-value nor direction (as Canon writes them); ``comments`` writes the
    direction as Canon's ImageComments text instead, components as given (image frame)."""

    def private(ds, t, k):
        v = vectors[t]
        if v is None:
            return
        ds.DiffusionBValue = 1000.0
        if standard:
            ds.DiffusionGradientOrientation = list(v)
        if comments:
            ds.ImageComments = f"b=1000({v[0]:.3f},{v[1]:.3f},{v[2]:.3f})"

    write_4d(folder, len(vectors), lambda t, k: {"Manufacturer": vendor, "PatientPosition": position,
                                                 "InPlanePhaseEncodingDirection": phase, "ScanningSequence": "SE\\EP",
                                                 "ImageType": ["ORIGINAL", "PRIMARY"]},
             iop=iop, private_of=private)


@pytest.mark.parametrize("vendor", ["CANON_MEC", "TOSHIBA_MEC"])
@pytest.mark.parametrize("b0", [0, 2], ids=["b0-first", "b0-third"])
def test_canon_images_without_a_b_value_are_the_b0_volumes(tmp_path: Path, vendor: str, b0: int) -> None:
    """Canon/Toshiba write the standard b-value and direction only on weighted images: in a series
    whose other images are weighted, an image without them is b=0, in the DWI with its own volume."""
    vectors: list = [X, Y, D]
    vectors.insert(b0, None)
    _canon(tmp_path / "in", vectors, vendor=vendor, iop=OBLIQUE)
    files = _convert(tmp_path / "in", tmp_path / "out")
    assert len(files["results"]) == 1
    bvals = read_bval(files["bval"])
    assert bvals.tolist() == [0 if v is None else 1000 for v in vectors]
    world = _world_bvecs(files)
    for t, v in enumerate(vectors):
        np.testing.assert_allclose(world[t], np.zeros(3) if v is None else np.asarray(v) / np.linalg.norm(v), atol=2e-6)
    vol = volume.load(tmp_path / "in")
    for t in range(4):
        check_volume_against_field(vol.frame(t), field_of(t))


@pytest.mark.parametrize("iop", [AXIAL, OBLIQUE, SAGITTAL, CORONAL, oblique_iop(CORONAL, degrees=15.0)],
                         ids=["axial", "oblique", "sagittal", "coronal", "oblique-coronal"])
@pytest.mark.parametrize("phase", ["COL", "ROW"])
def test_canon_comment_directions_follow_ge_image_frame_rule_like_dcm2niix(tmp_path: Path, dcm2niix: str, iop,
                                                                          phase: str) -> None:
    """Directions only in ImageComments (``b=1000(x,y,z)``): the same world directions as dcm2niix
    (GE's image-frame rule on the components (y, x, z)), every orientation, either phase axis."""
    _canon(tmp_path / "in", [None, X, Y, Z, D], iop=iop, phase=phase, standard=False, comments=True)
    ours = _convert(tmp_path / "in", tmp_path / "ours")
    theirs = _dcm2niix(dcm2niix, tmp_path / "in", tmp_path / "theirs")
    np.testing.assert_array_equal(read_bval(ours["bval"]), read_bval(theirs["bval"]))
    np.testing.assert_allclose(_world_bvecs(ours), _world_bvecs(theirs), atol=1e-4)


def test_canon_comment_directions_need_head_first_supine(tmp_path: Path) -> None:
    """GE's image-frame rule (and so Canon's) holds for head-first supine: for another patient
    position the text gives no direction, never one turned by the wrong rule."""
    _canon(tmp_path / "in", [None, X, Y], standard=False, comments=True, position="FFS")
    stacks = volume.scan(tmp_path / "in").stacks
    for stack in stacks:
        for f in stack.frames:
            assert f.mr is None or f.mr.gradient is None or not any(f.mr.gradient) or f.mr.bvalue == 0


def test_dcm2niix_turns_canon_world_directions_when_the_first_image_is_b0(tmp_path: Path, dcm2niix: str) -> None:
    """dcm2niix's mistake, named: it decides from the *first* file whether Canon's directions are
    world (0018,9089) or image-frame ones (ImageComments). With the b=0 image first (it carries no
    direction) it turns the standard world directions by GE's image-frame rule. volume writes the
    files' DiffusionGradientOrientation; dcm2niix agrees once a weighted image comes first."""
    vectors = [None, X, Y, D]
    _canon(tmp_path / "first", vectors, iop=OBLIQUE)
    _canon(tmp_path / "second", [X, None, Y, D], iop=OBLIQUE)
    truth = np.array([np.asarray(v) / np.linalg.norm(v) for v in (X, Y, D)])
    ours = _world_bvecs(_convert(tmp_path / "first", tmp_path / "ours"))
    np.testing.assert_allclose(ours[1:], truth, atol=2e-6)
    theirs_first = _world_bvecs(_dcm2niix(dcm2niix, tmp_path / "first", tmp_path / "t1"))
    theirs_second = _world_bvecs(_dcm2niix(dcm2niix, tmp_path / "second", tmp_path / "t2"))
    assert not np.allclose(np.abs(theirs_first[1:]), np.abs(truth), atol=1e-2)  # not even up to sign
    np.testing.assert_allclose(theirs_second[[0, 2, 3]], truth, atol=1e-4)


# --- Siemens diffusion -----------------------------------------------------------------------------


def _siemens_dwi(folder: Path, volumes, *, image_type=("ORIGINAL", "PRIMARY", "DIFFUSION", "NONE"), iop=OBLIQUE):
    """A Siemens DWI of single-slice files: ``volumes`` of ``(b, direction or None)``."""

    def private(ds, t, k):
        b, g = volumes[t]
        block = ds.private_block(0x0019, "SIEMENS MR HEADER", create=True)
        block.add_new(0x0C, "IS", str(int(b)))
        if g is not None:
            block.add_new(0x0E, "FD", list(g))

    write_4d(folder, len(volumes), lambda t, k: {"Manufacturer": "SIEMENS", "ImageType": list(image_type),
                                                 "PatientPosition": "HFS", "AcquisitionNumber": t + 1},
             iop=iop, private_of=private)


def test_b5_volumes_without_a_direction_are_the_b0_volumes(tmp_path: Path) -> None:
    """CMRR's sequences write b=5 on every volume of a b=5 series: the volumes without a direction
    are its unweighted (b=0) volumes, the others keep b=5 and their directions (dcm2niix: "volumes
    without gradients are actually B=0")."""
    volumes = [(5, None), (5, X), (5, Y), (5, D)]
    _siemens_dwi(tmp_path / "in", volumes)
    files = _convert(tmp_path / "in", tmp_path / "out")
    assert read_bval(files["bval"]).tolist() == [0, 5, 5, 5]
    world = _world_bvecs(files)
    np.testing.assert_allclose(world[0], 0)
    np.testing.assert_allclose(world[1:], [np.asarray(g) / np.linalg.norm(g) for _, g in volumes[1:]], atol=2e-6)


def test_a_low_b_image_without_direction_is_no_trace_image(tmp_path: Path) -> None:
    """A b=5 image without a direction in a b=0/1000 series is an unweighted reference image: it stays
    in the DWI (b=5, zero vector), never split off as a trace image."""
    _siemens_dwi(tmp_path / "in", [(0, None), (5, None), (1000, X), (1000, Y)])
    (stack,) = volume.scan(tmp_path / "in").stacks
    assert stack.derived == "" and stack.n_frames == 4
    files = _convert(tmp_path / "in", tmp_path / "out")
    assert read_bval(files["bval"]).tolist() == [0, 5, 1000, 1000]


def test_dcm2niix_reads_b5_references_only_when_first(tmp_path: Path, dcm2niix: str) -> None:
    """dcm2niix's mistake, named: its b=5 rule looks at the first volume only; when the direction-
    less b=5 volume comes second it writes b=5 with a zero vector. volume reads the series the same
    whichever volume comes first (b=0), and agrees with dcm2niix when the reference comes first."""
    _siemens_dwi(tmp_path / "first", [(5, None), (5, X), (5, Y)])
    _siemens_dwi(tmp_path / "second", [(5, X), (5, None), (5, Y)])
    assert read_bval(_convert(tmp_path / "first", tmp_path / "o1")["bval"]).tolist() == [0, 5, 5]
    assert read_bval(_dcm2niix(dcm2niix, tmp_path / "first", tmp_path / "t1")["bval"]).tolist() == [0, 5, 5]
    assert read_bval(_convert(tmp_path / "second", tmp_path / "o2")["bval"]).tolist() == [5, 0, 5]
    assert read_bval(_dcm2niix(dcm2niix, tmp_path / "second", tmp_path / "t2")["bval"]).tolist() == [5, 5, 5]


@pytest.mark.parametrize(("volumes", "image_type", "expected"), [
    ([(0, None)] * 3, ("ORIGINAL", "PRIMARY", "DIFFUSION", "NONE"), [0, 0, 0]),
    ([(0, None)] * 3, ("ORIGINAL", "PRIMARY", "M", "ND"), None),
    ([(5, None)] * 3, ("ORIGINAL", "PRIMARY", "DIFFUSION", "NONE"), None),
    ([(5, D)], ("ORIGINAL", "PRIMARY", "DIFFUSION", "NONE"), [5]),
    ([(1000, None)], ("ORIGINAL", "PRIMARY", "DIFFUSION", "NONE"), None),
], ids=["b0-diffusion", "b0-not-diffusion", "b5-no-direction", "one-volume-b5", "one-trace-volume"])
def test_when_a_series_is_diffusion(tmp_path: Path, volumes, image_type, expected) -> None:
    """dcm2niix's rule: b=0 volumes only are a diffusion series when ImageType says DIFFUSION (zero
    b-values and vectors); one nominal b≈0 value without any direction is none; a single volume
    with a direction is one (b=5 along it); a single trace volume is none."""
    _siemens_dwi(tmp_path / "in", volumes, image_type=image_type)
    files = _convert(tmp_path / "in", tmp_path / "out")
    if expected is None:
        assert files["bval"] is None and files["bvec"] is None
        return
    assert read_bval(files["bval"]).tolist() == expected
    world = _world_bvecs(files)
    for (_b, g), w in zip(volumes, world, strict=True):
        np.testing.assert_allclose(w, np.zeros(3) if g is None else np.asarray(g) / np.linalg.norm(g), atol=2e-6)


def test_siemens_diffusion_rules_agree_with_dcm2niix(tmp_path: Path, dcm2niix: str) -> None:
    """b=0-only DIFFUSION series, b=5 references first, b=0 with b=5 volumes: the same b-values and
    world directions as dcm2niix."""
    cases = {"b0": [(0, None)] * 3, "b5ref": [(5, None), (5, X), (5, Y), (5, D)], "b0b5": [(0, None), (5, X), (5, Y)]}
    for name, volumes in cases.items():
        _siemens_dwi(tmp_path / name, volumes)
        ours = _convert(tmp_path / name, tmp_path / "ours" / name)
        theirs = _dcm2niix(dcm2niix, tmp_path / name, tmp_path / "theirs" / name)
        np.testing.assert_array_equal(read_bval(ours["bval"]), read_bval(theirs["bval"]), err_msg=name)
        np.testing.assert_allclose(_world_bvecs(ours), _world_bvecs(theirs), atol=1e-4, err_msg=name)


# --- Siemens slice times --------------------------------------------------------------------------


LISTED_MS = [0.0, 250.0, 500.0, 750.0, 125.0]
"""Slice times (ms) a volume lists, in InstanceNumber order: interleaved."""


def _field_map(folder: Path, *, reverse: bool, private_copy: bool = False) -> None:
    """A 2D gradient-echo series (gre_field_mapping) of single-slice images whose CSA image header lists
    every slice's time (MosaicRefAcqTimes) in InstanceNumber order; ``reverse`` numbers the images
    top slice first; ``private_copy`` keeps only the (0019,1029) copy."""
    n = len(LISTED_MS)

    def tags(t, k):
        return {"Manufacturer": "SIEMENS", "MRAcquisitionType": "2D", "ScanningSequence": "GR", "RepetitionTime": 1000,
                "SequenceName": "*fm2d2", "InstanceNumber": t * n + (n - k if reverse else k + 1)}

    def private(ds, t, k):
        if private_copy:
            ds.private_block(0x0019, "SIEMENS MR HEADER", create=True).add_new(0x29, "FD", LISTED_MS)
        else:
            siemens_csa(ds, image=csa_header([("MosaicRefAcqTimes", "FD", LISTED_MS)]))

    write_4d(folder, 2, tags, shape=(n, 6, 5), private_of=private)


@pytest.mark.parametrize("reverse", [False, True], ids=["numbered-upward", "numbered-downward"])
@pytest.mark.parametrize("private_copy", [False, True], ids=["csa", "0019,1029"])
def test_single_slice_images_take_the_times_their_csa_header_lists(tmp_path: Path, reverse: bool,
                                                                  private_copy: bool) -> None:
    """Each image lists its volume's slice times in InstanceNumber order: the slice with the i-th
    number gets the i-th time, whichever way the numbers run (dcm2niix reads them so)."""
    _field_map(tmp_path / "in", reverse=reverse, private_copy=private_copy)
    files = _convert(tmp_path / "in", tmp_path / "out")
    expected = [t / 1000 for t in (LISTED_MS[::-1] if reverse else LISTED_MS)]  # lowest slice first
    assert _times_by_position(files["nii"], _sidecar(files)["SliceTiming"]) == pytest.approx(expected, abs=1e-6)


DCM2NIIX_TRIES = 12
"""dcm2niix v1.0.20260724 writes the CSA times of single-slice images in some runs only, on the very
same files (otherwise: "Siemens MoCo? Bogus slice timing (range -1..-1)"): it is run until it does."""


def test_csa_slice_times_agree_with_dcm2niix(tmp_path: Path, dcm2niix: str) -> None:
    """When dcm2niix writes these times, they are volume's, slice by slice."""
    _field_map(tmp_path / "in", reverse=False)
    ours = _convert(tmp_path / "in", tmp_path / "ours")
    a = _times_by_position(ours["nii"], _sidecar(ours)["SliceTiming"])
    for attempt in range(DCM2NIIX_TRIES):
        theirs = _dcm2niix(dcm2niix, tmp_path / "in", tmp_path / f"theirs{attempt}")
        listed = json.loads(theirs["json"].read_text()).get("SliceTiming")
        if listed is not None:
            assert a == pytest.approx(_times_by_position(theirs["nii"], listed), abs=1e-6)
            return
    pytest.skip(f"dcm2niix wrote no SliceTiming in {DCM2NIIX_TRIES} runs")


def _xa_classic(folder: Path, times: list[float], *, multiband: int | None = None) -> None:
    """Siemens XA exported as classic files: TimeAfterStart (0021,1104) on each, the first volume late."""
    n = len(times)

    def private(ds, t, k):
        siemens_xa_time_after_start(ds, 3.0 * t + times[k] + (0.25 if t == 0 else 0.0))
        if multiband:
            ds.private_block(0x0021, "SIEMENS MR SDS 01").add_new(0x09, "LO", f"p2s{multiband}")

    write_4d(folder, 2, lambda t, k: {"Manufacturer": "Siemens Healthineers", "SoftwareVersions": "syngo MR XA11",
                                      "MRAcquisitionType": "2D", "ScanningSequence": "EP", "RepetitionTime": 3000},
             shape=(n, 6, 5), private_of=private)


def test_xa_classic_files_take_time_after_start(tmp_path: Path) -> None:
    times = [0.0, 1.0, 0.5, 1.5]
    _xa_classic(tmp_path / "in", times)
    files = _convert(tmp_path / "in", tmp_path / "out")
    assert _times_by_position(files["nii"], _sidecar(files)["SliceTiming"]) == pytest.approx(times, abs=1e-6)


def test_xa11_single_band_times_of_a_multiband_series_are_left_out(tmp_path: Path, capsys) -> None:
    """XA11 writes single-band TimeAfterStart values for multiband series (dcm2niix issue 303): four
    different times cannot be those of a multiband factor 2 acquisition (at most two). No SliceTiming,
    a warning on stderr naming the series, the reason in the sidecar's OmittedFields. Times that do
    pair up are kept."""
    _xa_classic(tmp_path / "bad", [0.0, 1.0, 0.5, 1.5], multiband=2)
    assert main(["convert", str(tmp_path / "bad"), "-o", str(tmp_path / "o1")]) == 0
    err = capsys.readouterr().err
    sidecar = json.loads(next((tmp_path / "o1").glob("*.json")).read_text())
    assert "SliceTiming" not in sidecar and sidecar["MultibandAccelerationFactor"] == 2
    assert "multiband factor of 2 allows 2" in sidecar["OmittedFields"]["SliceTiming"]
    assert "SliceTiming left out" in err and "multiband factor of 2" in err and "series 7" in err
    _xa_classic(tmp_path / "good", [0.0, 1.0, 0.0, 1.0], multiband=2)
    files = _convert(tmp_path / "good", tmp_path / "o2")
    assert _sidecar(files)["SliceTiming"] == pytest.approx([0.0, 1.0, 0.0, 1.0])


def test_siemens_slice_times_pass_midnight(tmp_path: Path) -> None:
    """2D images without listed times: each slice's AcquisitionTime, a day's end between slices (E11)."""
    rel = [0.0, 1.0, 0.5, 1.5]
    write_4d(tmp_path / "in", 2, lambda t, k: {
        "Manufacturer": "SIEMENS", "RepetitionTime": 2000, "MRAcquisitionType": "2D", "ScanningSequence": "EP",
        "AcquisitionTime": time_of_day(86400 - 0.7 + 2.0 * t + rel[k])})
    files = _convert(tmp_path / "in", tmp_path / "out")
    assert _sidecar(files)["SliceTiming"] == pytest.approx(rel, abs=1e-6)


def _b12_mosaic(folder: Path, *, measured: bool) -> None:
    """Siemens mosaics (VB12-style when not ``measured``: no MosaicRefAcqTimes, the protocol's slice
    order instead)."""
    info = write_mosaic(folder, shape=(5, 6, 7), n_volumes=2)
    protocol = {"sSliceArray.lSize": "5", "sSliceArray.ucMode": "0x4", "lDelayTimeInTR": "0",
                **{f"sSliceArray.asSlice[{i}].sPosition.dTra": f"{float(info.ipps[i][2]):.4f}" for i in range(5)},
                **{f"sSliceArray.asSlice[{i}].sPosition.dSag": f"{float(info.ipps[i][0]):.4f}" for i in range(5)},
                **{f"sSliceArray.asSlice[{i}].sPosition.dCor": f"{float(info.ipps[i][1]):.4f}" for i in range(5)},
                "sSliceArray.asSlice[0].sNormal.dTra": "1"}
    for path in info.paths:
        ds = pydicom.dcmread(path)
        ds.Manufacturer = "SIEMENS"
        ds.RepetitionTime = 2000
        ds.MRAcquisitionType = "2D"
        image = csa_header([("MosaicRefAcqTimes", "FD", [0.0, 800.0, 400.0, 1200.0, 1600.0])]) if measured else None
        siemens_csa(ds, image=image, series=ascconv_header(protocol))
        ds.save_as(path)


def test_protocol_inferred_mosaic_times_are_named_in_the_sidecar(tmp_path: Path) -> None:
    """VB12/VB13 mosaics hold no measured slice times: they come from the protocol (interleaved,
    5 slices: 0, 2, 4 then 1, 3, over the TR), and the sidecar says so. Measured times are not flagged."""
    _b12_mosaic(tmp_path / "b12", measured=False)
    files = _convert(tmp_path / "b12", tmp_path / "o1")
    sidecar = _sidecar(files)
    step = 2.0 / 5
    expected = [0.0, 3 * step, 1 * step, 4 * step, 2 * step]
    assert _times_by_position(files["nii"], sidecar["SliceTiming"]) == pytest.approx(expected, abs=1e-6)
    assert "sSliceArray.ucMode" in sidecar["SliceTimingInferredFrom"]
    _b12_mosaic(tmp_path / "e11", measured=True)
    files = _convert(tmp_path / "e11", tmp_path / "o2")
    sidecar = _sidecar(files)
    assert _times_by_position(files["nii"], sidecar["SliceTiming"]) == pytest.approx([0, 0.8, 0.4, 1.2, 1.6])
    assert "SliceTimingInferredFrom" not in sidecar

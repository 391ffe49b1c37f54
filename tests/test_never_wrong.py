"""Never silently wrong: a gradient direction the files do not give is never written as zero.

A DWI is written for each vendor's convention (the standard elements, Siemens', Philips' and GE's
private ones, the enhanced MR Diffusion functional group): with its directions, every b>0 volume
gets the direction its files carry (never zero); with them removed, the ``.bval`` is written, no
``.bvec``, one warning names the series and the sidecar says why. Isotropic (trace) volumes, which
the files mark as such, keep their zero vectors. (The peers' real series are checked the same way
in ``tests/test_peers.py``.)
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from peers import bvec_world, read_bval, read_bvec
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from synth import AXIAL, base_dataset, oblique_iop, write_enhanced_4d, write_mosaic

from volume.cli import main
from volume.jobs.convert import convert

DIRECTIONS = [(0.0, 0.0, 0.0), (1.0, 0.0, 0.0), (0.0, 0.6, 0.8), (-0.48, 0.6, 0.64)]
"""Patient-LPS gradients of the synthetic DWIs, b=0 first, then b=1000."""

GE_RAW = [(0.0, 0.0, 0.0), (0.6, 0.48, 0.64), (1.0, 0.0, 0.0), (0.0, 0.0, 1.0)]
"""GE's image-frame gradients (0019,10BB-BD) of the GE DWI."""

CLASSIC = ("standard", "siemens", "philips", "ge", "ge standard b")
VENDORS = (*CLASSIC, "siemens csa", "enhanced")


def _weighting(ds: Dataset, vendor: str, b: float, t: int, with_directions: bool) -> None:
    """Write volume ``t``'s b-value and (unless removed) gradient the way ``vendor`` stores them."""
    g = DIRECTIONS[t]
    if vendor == "standard":
        ds.DiffusionBValue = b
        ds.DiffusionDirectionality = "DIRECTIONAL" if b else "NONE"
        if with_directions:
            ds.DiffusionGradientOrientation = list(g)
    elif vendor == "siemens":
        ds.Manufacturer = "SIEMENS"
        block = ds.private_block(0x0019, "SIEMENS MR HEADER", create=True)
        block.add_new(0x0C, "IS", str(int(b)))
        if with_directions:
            block.add_new(0x0E, "FD", list(g))
    elif vendor == "philips":
        ds.Manufacturer = "Philips Medical Systems"
        ds.private_block(0x2001, "Philips Imaging DD 001", create=True).add_new(0x03, "FL", b)
        if with_directions:
            block = ds.private_block(0x2005, "Philips MR Imaging DD 001", create=True)
            for element, value in zip((0xB0, 0xB1, 0xB2), g, strict=True):
                block.add_new(element, "FL", value)
    else:  # GE: b in (0043,1039) or the standard element, the gradient in its image frame
        ds.Manufacturer = "GE MEDICAL SYSTEMS"
        ds.InPlanePhaseEncodingDirection = "COL"
        if vendor == "ge standard b":
            ds.DiffusionBValue = b
        else:
            ds.private_block(0x0043, "GEMS_PARM_01", create=True).add_new(0x39, "IS", [int(b), 8, 0, 0])
        if with_directions:
            block = ds.private_block(0x0019, "GEMS_ACQU_01", create=True)
            for element, value in zip((0xBB, 0xBC, 0xBD), GE_RAW[t], strict=True):
                block.add_new(element, "DS", value)


def write_dwi(folder: Path, vendor: str, *, with_directions: bool = True, iop=oblique_iop(AXIAL, degrees=9.0)) -> None:
    """A 4-slice DWI (b=0, then three b=1000 directions) in ``vendor``'s convention."""
    folder.mkdir(parents=True, exist_ok=True)
    if vendor == "enhanced":
        _write_enhanced_dwi(folder / "e.dcm", with_directions)
        return
    if vendor == "siemens csa":
        _write_csa_mosaic_dwi(folder, with_directions)
        return
    series, study, frame = generate_uid(), generate_uid(), generate_uid()
    normal = np.cross(np.asarray(iop[:3]), np.asarray(iop[3:]))
    for t in range(len(DIRECTIONS)):
        for k in range(4):
            ds = base_dataset(series_uid=series, study_uid=study, frame_uid=frame, rows=3, cols=3, description="dwi")
            ds.ImageType = ["ORIGINAL", "PRIMARY", "DIFFUSION", "NONE"]
            ds.ImageOrientationPatient = list(iop)
            ds.ImagePositionPatient = [float(v) for v in np.array([-3.0, 2.0, 7.0]) + 3.0 * k * normal]
            ds.PixelSpacing = [2.0, 2.0]
            ds.SliceThickness = 3.0
            ds.InstanceNumber = t * 4 + k + 1
            ds.AcquisitionTime = f"1200{10 + t:02d}.{k}"
            _weighting(ds, vendor, 0.0 if t == 0 else 1000.0, t, with_directions)
            ds.PixelData = np.full((3, 3), 10 * t + k, np.uint16).tobytes()
            ds.save_as(folder / f"i{t * 4 + k:03d}.dcm", enforce_file_format=True)


def _write_enhanced_dwi(path: Path, with_directions: bool) -> None:
    """An enhanced MR file whose frames carry the MR Diffusion functional group (volume = temporal
    position): DiffusionBValue, DiffusionDirectionality and, unless removed, the gradient sequence."""
    write_enhanced_4d(path, shape=(len(DIRECTIONS), 3, 4, 5))
    ds = pydicom.dcmread(path)
    for fg in ds.PerFrameFunctionalGroupsSequence:
        t = int(fg.FrameContentSequence[0].TemporalPositionIndex) - 1
        item = Dataset()
        item.DiffusionBValue = 0.0 if t == 0 else 1000.0
        item.DiffusionDirectionality = "NONE" if t == 0 else "DIRECTIONAL"
        if with_directions and t:
            g = Dataset()
            g.DiffusionGradientOrientation = list(DIRECTIONS[t])
            item.DiffusionGradientDirectionSequence = [g]
        fg.MRDiffusionSequence = [item]
    ds.save_as(path)


def csa_header(tags: dict[str, tuple[str, list[float]]]) -> bytes:
    """A Siemens CSA image header ("SV10" format): per tag a 64-byte name, VM, VR, syngo type, item
    count and check word 77; per item four int32 (the length in the second) and its text, padded to 4."""
    out = b"SV10\x04\x03\x02\x01" + struct.pack("<II", len(tags), 77)
    for name, (vr, values) in tags.items():
        out += struct.pack("<64si4s3i", name.encode(), len(values), vr.encode(), 0, len(values), 77)
        for value in values:
            text = f"{value:.8f}".encode() + b"\0"
            out += struct.pack("<4i", len(text), len(text), 77, len(text)) + text + b"\0" * (-len(text) % 4)
    return out


def _write_csa_mosaic_dwi(folder: Path, with_directions: bool, b_in_0019: bool = False) -> None:
    """Siemens mosaics whose diffusion weighting is in the CSA image header (0029,1010): B_value and
    (unless removed) DiffusionGradientDirection, patient LPS; ``b_in_0019`` also writes the b-value
    (not the direction) in the private (0019,100C)."""
    info = write_mosaic(folder, shape=(4, 3, 3), n_volumes=len(DIRECTIONS))
    for t, path in enumerate(info.paths):
        ds = pydicom.dcmread(path)
        ds.Manufacturer = "SIEMENS"
        tags = {"B_value": ("IS", [0.0 if t == 0 else 1000.0])}
        if with_directions and t:
            tags["DiffusionGradientDirection"] = ("FD", list(DIRECTIONS[t]))
        ds.private_block(0x0029, "SIEMENS CSA HEADER", create=True).add_new(0x10, "OB", csa_header(tags))
        if b_in_0019:
            ds.private_block(0x0019, "SIEMENS MR HEADER").add_new(0x0C, "IS", "0" if t == 0 else "1000")
        ds.save_as(path)


def test_a_siemens_direction_only_in_the_csa_header_is_read(tmp_path: Path) -> None:
    """The b-value in (0019,100C), the direction only in the CSA image header: the CSA direction."""
    _write_csa_mosaic_dwi(tmp_path / "in", with_directions=True, b_in_0019=True)
    (result,) = convert(tmp_path / "in", tmp_path / "out")
    assert not any("gradient" in w for w in result.warnings)
    stem = _stem(tmp_path / "out")
    world = bvec_world(read_bvec(stem.with_suffix(".bvec")), nib.load(str(stem.with_suffix(".nii.gz"))).affine)
    np.testing.assert_allclose(world[1:], np.array(DIRECTIONS[1:]) * [-1, -1, 1] / np.linalg.norm(DIRECTIONS[1:], axis=1,
                                                                                                   keepdims=True), atol=1e-5)


def test_the_csa_header_written_here_reads_back() -> None:
    from volume.dicom.siemens import parse_csa

    assert parse_csa(csa_header({"B_value": ("IS", [1000.0]), "DiffusionGradientDirection": ("FD", [0.0, 0.6, 0.8])})) == {
        "B_value": [1000], "DiffusionGradientDirection": [0.0, 0.6, 0.8]}


def _stem(folder: Path) -> Path:
    image = next(folder.glob("*.nii.gz"))
    return image.with_name(image.name.removesuffix(".nii.gz"))


@pytest.mark.parametrize("vendor", VENDORS)
def test_every_weighted_volume_gets_the_direction_its_files_carry(tmp_path: Path, vendor: str) -> None:
    """With the directions present, no b>0 volume has a zero direction, whatever the convention; the
    standard, Siemens, Philips and enhanced ones give back the written LPS gradients in world space."""
    write_dwi(tmp_path / "in", vendor)
    (result,) = convert(tmp_path / "in", tmp_path / "out")
    assert not any("gradient" in w for w in result.warnings)
    stem = _stem(tmp_path / "out")
    bvals, bvecs = read_bval(stem.with_suffix(".bval")), read_bvec(stem.with_suffix(".bvec"))
    assert bvals.tolist() == [0, 1000, 1000, 1000]
    assert (np.linalg.norm(bvecs[:, bvals > 0], axis=0) > 0.99).all()
    if not vendor.startswith("ge"):
        world = bvec_world(bvecs, nib.load(str(stem.with_suffix(".nii.gz"))).affine)
        expected = np.array(DIRECTIONS[1:]) * [-1, -1, 1]  # LPS -> RAS
        np.testing.assert_allclose(world[1:], expected / np.linalg.norm(expected, axis=1, keepdims=True), atol=1e-5)


@pytest.mark.parametrize("vendor", VENDORS)
def test_removed_directions_give_no_bvec_a_warning_and_a_note(tmp_path: Path, vendor: str,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """The same DWI with its gradient elements removed: the .bval stays, no .bvec is written (a zero
    vector would be accepted by FSL, MRtrix and QSIPrep), exactly one warning names the series, the
    sidecar says why, and ``volume ls`` says the directions are missing."""
    write_dwi(tmp_path / "in", vendor, with_directions=False)
    assert main(["convert", str(tmp_path / "in"), "-o", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    stem = _stem(tmp_path / "out")
    assert stem.with_suffix(".bval").read_text() == "0 1000 1000 1000\n"
    assert not stem.with_suffix(".bvec").exists()
    lines = [line for line in err.splitlines() if "no gradient direction" in line]
    assert len(lines) == 1 and lines[0].startswith("volume: warning: series ") and "3 of 4 volumes" in lines[0]
    sidecar = json.loads(stem.with_suffix(".json").read_text())
    assert "no gradient direction in the files for 3 of 4 volumes" in sidecar["OmittedFields"]["bvec"]
    assert main(["ls", str(tmp_path / "in")]) == 0
    assert "directions missing" in capsys.readouterr().out
    assert main(["convert", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--skip-existing"]) == 0


@pytest.mark.parametrize("marker", ["zero vector", "ISOTROPIC"])
def test_volumes_the_files_call_isotropic_keep_zero_vectors(tmp_path: Path, marker: str) -> None:
    """A trace-weighted acquisition (b=0 and isotropic b=1000 images only), marked as the standard
    marks it (an explicit zero DiffusionGradientOrientation, or directionality ISOTROPIC): zero
    vectors are what the files say, so the .bvec is written, without a warning."""
    write_dwi(tmp_path / "in", "standard", with_directions=False)
    for path in (tmp_path / "in").iterdir():
        ds = pydicom.dcmread(path)
        if ds.DiffusionBValue:
            if marker == "zero vector":
                ds.DiffusionGradientOrientation = [0.0, 0.0, 0.0]
            else:
                ds.DiffusionDirectionality = "ISOTROPIC"
        ds.save_as(path)
    (result,) = convert(tmp_path / "in", tmp_path / "out")
    assert not any("gradient" in w for w in result.warnings)
    stem = _stem(tmp_path / "out")
    assert not read_bvec(stem.with_suffix(".bvec")).any()
    assert "bvec" not in json.loads(stem.with_suffix(".json").read_text()).get("OmittedFields", {})


@pytest.mark.parametrize("vendor", CLASSIC)
def test_one_volume_without_its_direction_stays_in_the_series_and_no_bvec_is_written(
        tmp_path: Path, vendor: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Directions for two b=1000 volumes, none at all for the third: that volume is neither split off
    as a trace image (its files do not say isotropic) nor, on GE, read as a b=0 image (GE's b=0
    images carry a zero vector, not none): the series keeps its 4 volumes, gets its .bval and no
    .bvec, and one warning names the one volume."""
    write_dwi(tmp_path / "in", vendor)
    for path in (tmp_path / "in").iterdir():
        ds = pydicom.dcmread(path)
        if ds.InstanceNumber > 12:  # the last volume
            for tag in (0x00189089, 0x0019100E, 0x200510B0, 0x200510B1, 0x200510B2, 0x001910BB, 0x001910BC,
                        0x001910BD):
                if tag in ds:
                    del ds[tag]
            ds.save_as(path)
    assert main(["convert", str(tmp_path / "in"), "-o", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    images = list((tmp_path / "out").glob("*.nii.gz"))
    assert len(images) == 1, images
    stem = _stem(tmp_path / "out")
    assert nib.load(str(images[0])).shape[3] == 4
    assert stem.with_suffix(".bval").read_text() == "0 1000 1000 1000\n"
    assert not stem.with_suffix(".bvec").exists()
    assert any("no gradient direction" in line and "1 of 4 volumes" in line for line in err.splitlines()), err

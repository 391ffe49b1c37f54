"""Vendor conventions found in an audit of dcm2niix's source against volume (issue 20's follow-up).

Each test writes a series that holds exactly one convention (and, where it matters, the same series
without the element the convention rests on), checks what volume makes of it (stacks, voxel
values, sidecar keys, slice times by position), and, where dcm2niix is installed, that dcm2niix
reads the same files the same way. Where dcm2niix is wrong the test says so and why.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from synth import AXIAL, base_dataset, write_mosaic
from vendor_synth import csa_header, siemens_csa

import volume
from volume.jobs.convert import convert

N_SLICES = 4
"""Slices of the synthetic classic series."""

SLICE_MM = 3.0


def write_classic(folder: Path, volumes: int, *, manufacturer: str, image_type=("ORIGINAL", "PRIMARY", "OTHER"),
                  description: str = "series", per_image: Callable[[Dataset, int, int], None] | None = None,
                  size: int = 4) -> Path:
    """``volumes`` x :data:`N_SLICES` single-slice files of ``size`` x ``size`` pixels at the same
    positions, InstanceNumbers volume by volume; every pixel of volume ``t``, slice ``k`` holds
    ``100 * (t + 1) + k``; ``per_image(ds, t, k)`` adds the convention under test."""
    folder.mkdir(parents=True, exist_ok=True)
    series, study, frame = generate_uid(), generate_uid(), generate_uid()
    for t in range(volumes):
        for k in range(N_SLICES):
            ds = base_dataset(series_uid=series, study_uid=study, frame_uid=frame, rows=size, cols=size,
                              description=description)
            ds.Manufacturer = manufacturer
            ds.ImageType = list(image_type)
            ds.MRAcquisitionType = "2D"
            ds.ScanningSequence = "GR"
            ds.EchoTime, ds.RepetitionTime = 2.0, 500.0
            ds.InPlanePhaseEncodingDirection = "COL"
            ds.PatientPosition = "HFS"
            ds.ImageOrientationPatient = list(AXIAL)
            ds.ImagePositionPatient = [0.0, 0.0, SLICE_MM * k]
            ds.PixelSpacing = [2.0, 2.0]
            ds.SliceThickness = SLICE_MM
            ds.InstanceNumber = t * N_SLICES + k + 1
            if per_image is not None:
                per_image(ds, t, k)
            ds.PixelData = np.full((size, size), 100 * (t + 1) + k, np.uint16).tobytes()
            ds.save_as(folder / f"i{t * N_SLICES + k:03d}.dcm", enforce_file_format=True)
    return folder


def slice_values(vol: volume.Volume) -> list[float]:
    """One value per slice (ascending along the normal) of a 3D volume whose slices are constant."""
    assert vol.array.ndim == 3
    return [float(vol.array[k].mean()) for k in range(vol.array.shape[0])]


def run_dcm2niix(exe: str, src: Path, out: Path) -> dict[str, dict[str, Any]]:
    """dcm2niix's sidecars for ``src`` by file stem (``%s_%p`` names, as volume's are ``number_description``)."""
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run([exe, "-z", "n", "-f", "%s_%p", "-o", str(out), str(src)], check=True, capture_output=True,
                   timeout=60)
    return {p.stem: json.loads(p.read_text()) for p in sorted(out.glob("*.json"))}


def converted(src: Path, out: Path) -> dict[str, dict[str, Any]]:
    """volume's sidecars for ``src`` by file stem."""
    results = convert(src, out)
    assert all(r.status == "converted" for r in results), [r.message for r in results]
    return {p.name.split(".")[0]: json.loads(p.read_text()) for p in sorted(out.glob("*.json"))}


def nifti_slices(path: Path) -> list[float]:
    """One value per slice (ascending z, the axial series' normal) of a 3D NIfTI whose slices are constant."""
    img = nib.as_closest_canonical(nib.load(str(path)))
    data = np.asarray(img.dataobj, dtype=float)
    assert data.ndim == 3
    return [float(data[:, :, k].mean()) for k in range(data.shape[2])]


# --- GE: the complex component in (0043,102F) -------------------------------------------------------


def _ge_component(ds: Dataset, t: int, k: int) -> None:
    ds.private_block(0x0043, "GEMS_PARM_01", create=True).add_new(0x2F, "SS", t)  # 0 M, 1 P, 2 R, 3 I


def test_ge_complex_components_are_separate_stacks(tmp_path: Path) -> None:
    """GE names the complex component in its Private Image Type (0043,102F: 0 magnitude, 1 phase,
    2 real, 3 imaginary) and writes ImageType OTHER for all: a series holding the four at every
    position is four stacks, never one 4D image mixing them."""
    write_classic(tmp_path / "in", 4, manufacturer="GE MEDICAL SYSTEMS", per_image=_ge_component)
    stacks = volume.scan(tmp_path / "in").stacks
    assert sorted(s.label for s in stacks) == ["", "imag", "ph", "real"]
    for s in stacks:
        t = ["", "ph", "real", "imag"].index(s.label)
        assert s.n_frames == 1
        assert slice_values(volume.load(tmp_path / "in", series=s.id)) == [100 * (t + 1) + k for k in range(N_SLICES)]


def test_ge_components_without_the_private_type_are_ordered_by_instance_number(tmp_path: Path) -> None:
    """The same files with (0043,102F) removed: nothing tells the components apart, so the images at
    each position are volumes in InstanceNumber order, and the stack says so (no component is guessed)."""
    write_classic(tmp_path / "in", 2, manufacturer="GE MEDICAL SYSTEMS")
    (stack,) = volume.scan(tmp_path / "in").stacks
    assert stack.n_frames == 2
    assert "ordered by InstanceNumber (nothing else in the files orders them)" in stack.notes[0]


def test_ge_components_split_as_dcm2niix_splits_them(tmp_path: Path, dcm2niix: str) -> None:
    """Magnitude and phase of one GE series: dcm2niix writes two files (``_ph`` for the phase), with
    the same voxels as volume's two stacks."""
    write_classic(tmp_path / "in", 2, manufacturer="GE MEDICAL SYSTEMS", description="swan",
                  per_image=_ge_component)
    theirs = run_dcm2niix(dcm2niix, tmp_path / "in", tmp_path / "d")
    ours = converted(tmp_path / "in", tmp_path / "v")
    assert sorted(theirs) == sorted(ours) == ["7_swan", "7_swan_ph"]
    assert "PHASE" in theirs["7_swan_ph"]["ImageType"]
    for stem in ours:
        assert nifti_slices(tmp_path / "v" / f"{stem}.nii.gz") == nifti_slices(tmp_path / "d" / f"{stem}.nii")


# --- GE: B0map, the field map in Hz then the magnitude ----------------------------------------------


def _ge_b0map(psd: str = "b0map", locations: int | None = N_SLICES) -> Callable[[Dataset, int, int], None]:
    def add(ds: Dataset, t: int, k: int) -> None:
        ds.private_block(0x0019, "GEMS_ACQU_01", create=True).add_new(0x9C, "LO", psd)
        if locations is not None:
            ds.private_block(0x0021, "GEMS_RELA_01", create=True).add_new(0x4F, "SS", locations)
        ds.ImagesInAcquisition = 2 * N_SLICES

    return add


def test_ge_b0map_is_a_field_map_in_hz_and_a_magnitude(tmp_path: Path) -> None:
    """GE's B0map (PSD ``b0map``) writes the field map in Hz first (InstanceNumbers up to the locations
    in acquisition, 0021,104F), then the magnitude: two stacks, the field map's sidecar in Hz."""
    write_classic(tmp_path / "in", 2, manufacturer="GE MEDICAL SYSTEMS", description="B0map", per_image=_ge_b0map())
    ours = converted(tmp_path / "in", tmp_path / "out")
    assert sorted(ours) == ["7_B0map", "7_B0map_fieldmaphz"]
    assert ours["7_B0map_fieldmaphz"]["Units"] == "Hz" and "Units" not in ours["7_B0map"]
    assert nifti_slices(tmp_path / "out" / "7_B0map_fieldmaphz.nii.gz") == [100 + k for k in range(N_SLICES)]
    assert nifti_slices(tmp_path / "out" / "7_B0map.nii.gz") == [200 + k for k in range(N_SLICES)]
    stacks = {s.label: s for s in volume.scan(tmp_path / "in").stacks}
    assert stacks["fieldmaphz"].content == "field map"


@pytest.mark.parametrize("per_image", [_ge_b0map(locations=None), _ge_b0map(psd="fgre")],
                         ids=["no-locations", "another-psd"])
def test_no_field_map_without_ges_b0map_convention(tmp_path: Path, per_image) -> None:
    """Without the locations of the field map (0021,104F), or another PSD: no image is called a field
    map; the two volumes stay one 4D stack in InstanceNumber order, and say so."""
    write_classic(tmp_path / "in", 2, manufacturer="GE MEDICAL SYSTEMS", per_image=per_image)
    (stack,) = volume.scan(tmp_path / "in").stacks
    assert stack.n_frames == 2 and stack.content != "field map"


def test_ge_b0map_splits_as_dcm2niix_splits_it(tmp_path: Path, dcm2niix: str) -> None:
    """dcm2niix's issue 501 rule, on the same files: the same two files, the same units and voxels."""
    write_classic(tmp_path / "in", 2, manufacturer="GE MEDICAL SYSTEMS", description="B0map", per_image=_ge_b0map())
    theirs = run_dcm2niix(dcm2niix, tmp_path / "in", tmp_path / "d")
    ours = converted(tmp_path / "in", tmp_path / "v")
    assert sorted(theirs) == sorted(ours)
    for stem in ours:
        assert ours[stem].get("Units") == theirs[stem].get("Units")
        assert nifti_slices(tmp_path / "v" / f"{stem}.nii.gz") == nifti_slices(tmp_path / "d" / f"{stem}.nii")


# --- RawImage: derived images -------------------------------------------------------------------------


@pytest.mark.parametrize(("image_type", "raw"), [
    (("DERIVED", "PRIMARY", "ADC", "ND"), False),
    (("ORIGINAL", "PRIMARY", "TRACEW", "ND"), False),
    (("ORIGINAL", "PRIMARY", "M", "ND"), None),
    (("ORIGINAL", "PRIMARY", "M", "ADC"), None),
])
def test_derived_images_are_not_raw_images(tmp_path: Path, image_type: tuple[str, ...], raw: bool | None) -> None:
    """dcm2niix writes ``RawImage: false`` for images ImageType calls derived: a DERIVED value, or the
    name of a derived map (ADC, TRACEW, TRACE, FA) between two other values; otherwise no key."""
    write_classic(tmp_path / "in", 1, manufacturer="SIEMENS", image_type=image_type)
    (sidecar,) = converted(tmp_path / "in", tmp_path / "out").values()
    assert sidecar.get("RawImage") is raw


def test_raw_image_as_dcm2niix_writes_it(tmp_path: Path, dcm2niix: str) -> None:
    write_classic(tmp_path / "in", 1, manufacturer="SIEMENS", image_type=("DERIVED", "PRIMARY", "ADC", "ND"))
    (theirs,) = run_dcm2niix(dcm2niix, tmp_path / "in", tmp_path / "d").values()
    (ours,) = converted(tmp_path / "in", tmp_path / "v").values()
    assert theirs["RawImage"] is ours["RawImage"] is False


# --- Siemens: the single-band reference's slice times -----------------------------------------------

SBREF_TIMES_MS = [0.0, 800.0, 400.0, 1200.0, 1600.0]
"""One single-band volume's slice times: 1.6 s for 5 slices, longer than the run's 1 s TR."""


def _mosaic(folder: Path, description: str, *, pat: str | None = None) -> None:
    """One Siemens mosaic volume of 5 slices (TR 1 s) whose CSA header lists :data:`SBREF_TIMES_MS`."""
    info = write_mosaic(folder, shape=(5, 6, 7), n_volumes=1)
    for path in info.paths:
        ds = pydicom.dcmread(path)
        ds.Manufacturer = "SIEMENS"
        ds.RepetitionTime, ds.EchoTime = 1000, 30
        ds.MRAcquisitionType = "2D"
        ds.ScanningSequence, ds.SequenceVariant = "EP", "SK"
        ds.SeriesDescription = ds.ProtocolName = description
        # a tag before MosaicRefAcqTimes: dcm2niix checks a count left by the previous tag
        siemens_csa(ds, image=csa_header([("NumberOfImagesInMosaic", "US", [5]),
                                          ("MosaicRefAcqTimes", "FD", SBREF_TIMES_MS)]))
        if pat is not None:
            ds.private_block(0x0051, "SIEMENS MR HEADER", create=True).add_new(0x11, "LO", pat)
        ds.save_as(path)


@pytest.mark.parametrize("pat", [None, "p2s4"], ids=["no-pat", "multiband-pat"])
def test_single_band_reference_keeps_slice_times_beyond_the_tr(tmp_path: Path, pat: str | None) -> None:
    """An SBRef is acquired one slice at a time: its slices take longer than the multiband run's TR,
    and share no excitation. Its measured times are kept (the multiband factor of the PAT text does
    not make them wrong); the same times in another series are beyond a TR and left out."""
    _mosaic(tmp_path / "sbref", "rfMRI_REST_AP_SBRef", pat=pat)
    (sidecar,) = converted(tmp_path / "sbref", tmp_path / "o1").values()
    assert sidecar["SliceTiming"] == pytest.approx([t / 1000 for t in SBREF_TIMES_MS])
    _mosaic(tmp_path / "other", "rfMRI_REST_AP", pat=pat)
    (sidecar,) = converted(tmp_path / "other", tmp_path / "o2").values()
    assert "SliceTiming" not in sidecar


def test_single_band_reference_times_as_dcm2niix_writes_them(tmp_path: Path, dcm2niix: str) -> None:
    _mosaic(tmp_path / "in", "rfMRI_SBRef")
    (theirs,) = run_dcm2niix(dcm2niix, tmp_path / "in", tmp_path / "d").values()
    (ours,) = converted(tmp_path / "in", tmp_path / "v").values()
    assert ours["SliceTiming"] == pytest.approx(theirs["SliceTiming"], abs=1e-6)


# --- private blocks a PACS moved ---------------------------------------------------------------------

GRADIENTS = [(0.0, 0.0, 0.0), (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.6, 0.8)]
"""b=0, then three directions at b=1000."""


def _squat(ds: Dataset, group: int) -> None:
    """Another owner in block 10 of ``group``: the vendor's block is then created at 11 (as a PACS renumbers it)."""
    ds.add_new((group << 16) | 0x10, "LO", "SOMEONE ELSE")


def _ge_dwi(moved: bool) -> Callable[[Dataset, int, int], None]:
    def add(ds: Dataset, t: int, k: int) -> None:
        ds.ScanningSequence = ["EP", "SE"]
        if moved:
            _squat(ds, 0x0019)
            _squat(ds, 0x0043)
        acq = ds.private_block(0x0019, "GEMS_ACQU_01", create=True)
        for element, value in zip((0xBB, 0xBC, 0xBD), GRADIENTS[t], strict=True):
            acq.add_new(element, "DS", value)
        acq.add_new(0x9C, "LO", "epi2")
        ds.private_block(0x0043, "GEMS_PARM_01", create=True).add_new(0x39, "IS", [0 if t == 0 else 1000, 8, 0, 0])

    return add


def _philips_dwi(moved: bool) -> Callable[[Dataset, int, int], None]:
    def add(ds: Dataset, t: int, k: int) -> None:
        if moved:
            _squat(ds, 0x2001)
            _squat(ds, 0x2005)
        ds.private_block(0x2001, "Philips Imaging DD 001", create=True).add_new(0x03, "FL", 0.0 if t == 0 else 1000.0)
        block = ds.private_block(0x2005, "Philips MR Imaging DD 001", create=True)
        for element, value in zip((0xB0, 0xB1, 0xB2), GRADIENTS[t], strict=True):
            block.add_new(element, "FL", value)

    return add


def _world(folder: Path) -> tuple[list[float], np.ndarray]:
    from peers import bvec_world, read_bval, read_bvec

    (image,) = [p for p in folder.iterdir() if ".nii" in p.name]
    stem = folder / image.name.split(".nii")[0]
    bvec = bvec_world(read_bvec(stem.with_suffix(".bvec")), nib.load(str(image)).affine)
    return read_bval(stem.with_suffix(".bval")).tolist(), bvec


@pytest.mark.parametrize(("vendor", "writer"), [("GE MEDICAL SYSTEMS", _ge_dwi), ("Philips Medical Systems", _philips_dwi)],
                         ids=["ge", "philips"])
def test_moved_private_blocks_give_the_same_diffusion(tmp_path: Path, vendor: str, writer) -> None:
    """The vendor's diffusion elements in block 11 (another owner in block 10, as PACS renumber blocks):
    read by their private creator, the same b-values and world directions as at their usual place."""
    write_classic(tmp_path / "usual", 4, manufacturer=vendor, per_image=writer(False))
    write_classic(tmp_path / "moved", 4, manufacturer=vendor, per_image=writer(True))
    converted(tmp_path / "usual", tmp_path / "o1")
    converted(tmp_path / "moved", tmp_path / "o2")
    bvals, world = _world(tmp_path / "o1")
    assert bvals == [0, 1000, 1000, 1000]
    moved_bvals, moved_world = _world(tmp_path / "o2")
    assert moved_bvals == bvals
    np.testing.assert_allclose(moved_world, world, atol=1e-6)
    assert (np.linalg.norm(world[1:], axis=1) > 0.99).all()


@pytest.mark.parametrize(("vendor", "writer"), [("GE MEDICAL SYSTEMS", _ge_dwi), ("Philips Medical Systems", _philips_dwi)],
                         ids=["ge", "philips"])
def test_moved_private_blocks_as_dcm2niix_reads_them(tmp_path: Path, dcm2niix: str, vendor: str, writer) -> None:
    """dcm2niix remaps GE's and Philips' renumbered blocks by their creators (its issue 435): the same
    b-values and world directions."""
    write_classic(tmp_path / "in", 4, manufacturer=vendor, per_image=writer(True))
    run_dcm2niix(dcm2niix, tmp_path / "in", tmp_path / "d")
    converted(tmp_path / "in", tmp_path / "v")
    theirs_bvals, theirs = _world(tmp_path / "d")
    bvals, ours = _world(tmp_path / "v")
    assert bvals == theirs_bvals
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


def _moved_csa_mosaic(folder: Path) -> None:
    """Two Siemens mosaic volumes whose CSA image header (slice count, slice times) is in block 11 of
    group 0029, no 0019 block: a PACS moved it (dcm2niix's issue 435)."""
    info = write_mosaic(folder, shape=(5, 6, 7), n_volumes=2)
    for path in info.paths:
        ds = pydicom.dcmread(path)
        ds.Manufacturer = "SIEMENS"
        ds.RepetitionTime, ds.EchoTime = 2000, 30
        ds.MRAcquisitionType = "2D"
        ds.ScanningSequence, ds.SequenceVariant = "EP", "SK"
        del ds[0x00190010], ds[0x0019100A]
        _squat(ds, 0x0029)
        siemens_csa(ds, image=csa_header([("NumberOfImagesInMosaic", "US", [5]),
                                          ("MosaicRefAcqTimes", "FD", SBREF_TIMES_MS)]))
        ds.save_as(path)


def test_a_mosaic_whose_csa_block_moved_is_split_and_timed(tmp_path: Path) -> None:
    """The CSA header found by its creator in block 11: the mosaic splits into its 5 slices (the count
    is nowhere else) and keeps the header's slice times."""
    _moved_csa_mosaic(tmp_path / "in")
    (sidecar,) = converted(tmp_path / "in", tmp_path / "out").values()
    assert sidecar["SliceTiming"] == pytest.approx([t / 1000 for t in SBREF_TIMES_MS])
    assert nib.load(str(next((tmp_path / "out").glob("*.nii.gz")))).shape == (7, 6, 5, 2)


def test_a_moved_csa_block_as_dcm2niix_reads_it(tmp_path: Path, dcm2niix: str) -> None:
    _moved_csa_mosaic(tmp_path / "in")
    (theirs,) = run_dcm2niix(dcm2niix, tmp_path / "in", tmp_path / "d").values()
    (ours,) = converted(tmp_path / "in", tmp_path / "v").values()
    assert ours["SliceTiming"] == pytest.approx(theirs["SliceTiming"], abs=1e-6)


# --- GE: trace images or b=0 images? ------------------------------------------------------------------

GE_TRACE_GRADIENTS = [*GRADIENTS, (0.0, 0.0, 0.0)]
"""b=0, three directions, then a weighted image without a direction (GE's nominal b-value, zero vector)."""


def _ge_dwi_with_trace(marker: str) -> Callable[[Dataset, int, int], None]:
    """A GE DWI whose last volume has b=1000 and a zero vector; ``marker`` says how GE marks the series:
    NumberOfDiffusionDirection (0019,10E0) 0 or 3, the series' diffusion direction type (0021,105A) 4
    (not DTI), the images' Vas collapse flag (0043,1030: 14 T2, 16 DTI, 17 the last), or nothing."""

    def add(ds: Dataset, t: int, k: int) -> None:
        ds.ScanningSequence = ["EP", "SE"]
        acq = ds.private_block(0x0019, "GEMS_ACQU_01", create=True)
        for element, value in zip((0xBB, 0xBC, 0xBD), GE_TRACE_GRADIENTS[t], strict=True):
            acq.add_new(element, "DS", value)
        acq.add_new(0x9C, "LO", "epi2")
        if marker in ("directions-0", "directions-3"):
            acq.add_new(0xE0, "DS", marker[-1])
        parm = ds.private_block(0x0043, "GEMS_PARM_01", create=True)
        parm.add_new(0x39, "IS", [0 if t == 0 else 1000, 8, 0, 0])
        if marker == "image-flags":
            parm.add_new(0x30, "SS", 14 if t == 0 else 16 if t < 4 else 17)
        if marker == "series-type":
            ds.private_block(0x0021, "GEMS_RELA_01", create=True).add_new(0x5A, "SS", 4)

    return add


@pytest.mark.parametrize(("marker", "trace"), [("none", False), ("directions-3", False), ("directions-0", True),
                                               ("series-type", True), ("image-flags", True)])
def test_ge_weighted_images_without_a_direction(tmp_path: Path, marker: str, trace: bool) -> None:
    """GE writes b=1000 and a zero vector on the T2 (b=0) images of a DTI series and on the trace
    images of a DWI: what GE says of the acquisition decides (0021,105A not 16, 0043,1030 not 14 or
    16, 0019,10E0 of 0: not DTI, so a trace image, in its own stack); saying nothing, it is b=0."""
    write_classic(tmp_path / "in", 5, manufacturer="GE MEDICAL SYSTEMS", description="dwi",
                  per_image=_ge_dwi_with_trace(marker))
    ours = converted(tmp_path / "in", tmp_path / "out")
    bval = (tmp_path / "out" / "7_dwi.bval").read_text().split()
    if trace:
        assert sorted(ours) == ["7_dwi", "7_dwi_trace"]
        assert bval == ["0", "1000", "1000", "1000"]
        assert nifti_slices(tmp_path / "out" / "7_dwi_trace.nii.gz") == [500 + k for k in range(N_SLICES)]
    else:
        assert sorted(ours) == ["7_dwi"]
        assert bval == ["0", "1000", "1000", "1000", "0"]


@pytest.mark.parametrize("marker", ["none", "directions-3", "directions-0", "series-type", "image-flags"])
def test_ge_trace_images_as_dcm2niix_reads_them(tmp_path: Path, dcm2niix: str, marker: str) -> None:
    """dcm2niix reads the same markers (its ``_ADC`` file holds the trace image), with one difference:
    it takes the image-level flag (0043,1030) of the first image only, a T2 image (14) there, so it
    calls the last image (17: not a DTI image) b=0; volume reads each image's own flag."""
    write_classic(tmp_path / "in", 5, manufacturer="GE MEDICAL SYSTEMS", description="dwi",
                  per_image=_ge_dwi_with_trace(marker))
    run_dcm2niix(dcm2niix, tmp_path / "in", tmp_path / "d")
    converted(tmp_path / "in", tmp_path / "v")
    theirs = (tmp_path / "d" / "7_dwi.bval").read_text().split()
    ours = (tmp_path / "v" / "7_dwi.bval").read_text().split()
    if marker == "image-flags":
        assert theirs == [*ours, "0"]
    else:
        assert ours == theirs
        assert (tmp_path / "d" / "7_dwi_ADC.nii").exists() == (tmp_path / "v" / "7_dwi_trace.nii.gz").exists()


# --- GE: the readout of an interpolated EPI ------------------------------------------------------------

GE_ECHO_SPACING_US = 636
GE_ACQUIRED_PE = 6
"""Phase-encoding lines of the acquisition matrix; the images have 8 rows (interpolated)."""


def _ge_epi(asset: str | None, *, partial_fourier: bool = True) -> Callable[[Dataset, int, int], None]:
    def add(ds: Dataset, t: int, k: int) -> None:
        ds.ScanningSequence = ["EP", "GR"]
        ds.AcquisitionMatrix = [0, GE_ACQUIRED_PE, GE_ACQUIRED_PE, 0]
        ds.ScanOptions = ["EPI_GEMS", "PFF"] if partial_fourier else ["EPI_GEMS"]
        parm = ds.private_block(0x0043, "GEMS_PARM_01", create=True)
        parm.add_new(0x2C, "SS", GE_ECHO_SPACING_US)
        if asset is not None:
            parm.add_new(0x83, "DS", [asset, "1"])

    return add


@pytest.mark.parametrize(("asset", "partial_fourier", "acquired"), [("0.5", True, 4), ("1", False, 6), ("1", True, 8)])
def test_ge_readout_of_an_interpolated_epi(tmp_path: Path, asset: str, partial_fourier: bool, acquired: int) -> None:
    """GE's formula: the lines acquired, ceil(AcquisitionMatrixPE / R / f) * f (f = 4 with partial
    Fourier, else 2), less one, times the echo spacing (0043,102C) is spread over the acquisition
    matrix's lines for EffectiveEchoSpacing; TotalReadoutTime spans the reconstructed image's lines
    (8 here, 6 acquired: interpolated)."""
    write_classic(tmp_path / "in", 2, manufacturer="GE MEDICAL SYSTEMS", per_image=_ge_epi(asset, partial_fourier=partial_fourier),
                  size=8)
    (sidecar,) = converted(tmp_path / "in", tmp_path / "out").values()
    ees = (acquired - 1) * GE_ECHO_SPACING_US * 1e-6 / (GE_ACQUIRED_PE - 1)
    assert sidecar["EffectiveEchoSpacing"] == pytest.approx(ees, rel=1e-9)
    assert sidecar["TotalReadoutTime"] == pytest.approx(ees * (8 - 1), rel=1e-9)


def test_ge_readout_without_an_in_plane_factor_is_left_out(tmp_path: Path) -> None:
    """Without GE's ASSET factors (0043,1083) nor a ParallelReductionFactorInPlane the lines acquired
    are not known: no readout time (dcm2niix divides by the missing factor and writes none either)."""
    write_classic(tmp_path / "in", 2, manufacturer="GE MEDICAL SYSTEMS", per_image=_ge_epi(None), size=8)
    (sidecar,) = converted(tmp_path / "in", tmp_path / "out").values()
    assert "EffectiveEchoSpacing" not in sidecar and "TotalReadoutTime" not in sidecar


def test_ge_readout_as_dcm2niix_computes_it(tmp_path: Path, dcm2niix: str) -> None:
    write_classic(tmp_path / "in", 2, manufacturer="GE MEDICAL SYSTEMS", description="epi", per_image=_ge_epi("0.5"),
                  size=8)
    (theirs,) = run_dcm2niix(dcm2niix, tmp_path / "in", tmp_path / "d").values()
    (ours,) = converted(tmp_path / "in", tmp_path / "v").values()
    for key in ("EffectiveEchoSpacing", "TotalReadoutTime"):
        assert ours[key] == pytest.approx(theirs[key], rel=1e-5)


# --- Philips: the inversion delay in PrepulseDelay (2001,101B) ------------------------------------------


def _philips_inversion(prepulse_ms: float | None, standard_ms: float | None) -> Callable[[Dataset, int, int], None]:
    def add(ds: Dataset, t: int, k: int) -> None:
        block = ds.private_block(0x2001, "Philips Imaging DD 001", create=True)
        if prepulse_ms is not None:
            block.add_new(0x1B, "FL", prepulse_ms)
        if standard_ms is not None:
            ds.InversionTime = standard_ms

    return add


@pytest.mark.parametrize(("prepulse", "standard", "expected"), [(1100.0, None, 1.1), (None, 900.0, 0.9),
                                                                  (1100.0, 900.0, 1.1), (0.0, None, None)])
def test_philips_inversion_time_from_its_prepulse_delay(tmp_path: Path, prepulse, standard, expected) -> None:
    """Philips writes the inversion delay of an inversion-recovery sequence in its PrepulseDelay
    (2001,101B, ms), which dcm2niix reads before InversionTime (0018,0082); a zero delay is none."""
    write_classic(tmp_path / "in", 1, manufacturer="Philips Medical Systems", per_image=_philips_inversion(prepulse, standard))
    (sidecar,) = converted(tmp_path / "in", tmp_path / "out").values()
    assert sidecar.get("InversionTime") == (pytest.approx(expected) if expected else None)


def test_philips_inversion_time_as_dcm2niix_reads_it(tmp_path: Path, dcm2niix: str) -> None:
    write_classic(tmp_path / "in", 1, manufacturer="Philips Medical Systems", per_image=_philips_inversion(1100.0, 900.0))
    (theirs,) = run_dcm2niix(dcm2niix, tmp_path / "in", tmp_path / "d").values()
    (ours,) = converted(tmp_path / "in", tmp_path / "v").values()
    assert ours["InversionTime"] == pytest.approx(theirs["InversionTime"])


# --- acceleration and reconstruction keys: variable flip angle, compressed sensing, deep learning -------


def _reconstruction(vendor: str, flag: str | None, *, cs: str = "1.24", dl: bool = True) -> Callable[[Dataset, int, int], None]:
    def add(ds: Dataset, t: int, k: int) -> None:
        if flag is not None:
            ds.VariableFlipAngleFlag = flag
        if vendor.startswith("GE"):
            parm = ds.private_block(0x0043, "GEMS_PARM_01", create=True)
            parm.add_new(0xB7, "LO", [cs, "1", "10", "0"])  # compressed sensing parameters, the factor first
            if dl:
                parm.add_new(0xCA, "LO", ["0.75", "High"])  # deep learning parameters
        if vendor.startswith("Philips") and dl:
            ds.private_block(0x2005, "Philips MR Imaging DD 001", create=True).add_new(0x01, "LO", "block 10")
            ds.private_block(0x2005, "Philips MR Imaging DD 002", create=True).add_new(0x10, "CS", "CS_SENSE_AI")

    return add


@pytest.mark.parametrize(("vendor", "expected"), [
    ("GE MEDICAL SYSTEMS", {"VariableFlipAngleFlag": True, "CompressedSensingFactor": 1.24, "DeepLearning": True,
                            "DeepLearningDetails": "0.75\\High"}),
    ("Philips Medical Systems", {"VariableFlipAngleFlag": True, "DeepLearning": True, "DeepLearningDetails": "CS_SENSE_AI"}),
], ids=["ge", "philips"])
def test_reconstruction_keys(tmp_path: Path, vendor: str, expected: dict[str, Any]) -> None:
    """VariableFlipAngleFlag (0018,1315) YES; GE's compressed sensing factor (0043,10B7, the first value,
    above 1) and deep-learning parameters (0043,10CA); Philips' ``..._AI`` reconstruction (2005,1110)."""
    write_classic(tmp_path / "in", 1, manufacturer=vendor, per_image=_reconstruction(vendor, "YES"))
    (sidecar,) = converted(tmp_path / "in", tmp_path / "out").values()
    assert {key: sidecar.get(key) for key in expected} == expected


def test_no_reconstruction_keys_without_their_elements(tmp_path: Path) -> None:
    """Flag NO, a compressed sensing factor of 1, no deep-learning parameters: none of the keys."""
    write_classic(tmp_path / "in", 1, manufacturer="GE MEDICAL SYSTEMS",
                  per_image=_reconstruction("GE", "NO", cs="1", dl=False))
    (sidecar,) = converted(tmp_path / "in", tmp_path / "out").values()
    assert not {"VariableFlipAngleFlag", "CompressedSensingFactor", "DeepLearning", "DeepLearningDetails"} & set(sidecar)


@pytest.mark.parametrize("vendor", ["GE MEDICAL SYSTEMS", "Philips Medical Systems"], ids=["ge", "philips"])
def test_reconstruction_keys_as_dcm2niix_writes_them(tmp_path: Path, dcm2niix: str, vendor: str) -> None:
    write_classic(tmp_path / "in", 1, manufacturer=vendor, per_image=_reconstruction(vendor, "YES"))
    (theirs,) = run_dcm2niix(dcm2niix, tmp_path / "in", tmp_path / "d").values()
    (ours,) = converted(tmp_path / "in", tmp_path / "v").values()
    keys = {"VariableFlipAngleFlag", "CompressedSensingFactor", "DeepLearning", "DeepLearningDetails"} & set(theirs)
    assert len(keys) >= 3 and {k: ours.get(k) for k in keys} == {k: theirs[k] for k in keys}


# --- GE: diffusion EPI slice times and gradient cycling -------------------------------------------------

GE_SOFTWARE = "27\\LX\\MR Software release:RX27.0_R03_1831.a"


def _ge_diffusion_epi(folder: Path, *, model: str, order: str = "1", mb: int = 1, cycling: dict[int, str] | None = None,
                      descending: bool = False) -> None:
    """A GE diffusion EPI (PSD epi2) time series of 6 slices, TR 3 s, with its protocol block's SLICEORDER
    ``order`` and HyperBand factor; ``cycling`` sets GE's user data (0019,10B2/B3/B6) by element."""
    from test_ge import epi_protocol, write_ge_epi

    def per_image(t: int, loc: int) -> dict[str, Any]:
        return {"ManufacturerModelName": model}

    write_ge_epi(folder, n_slices=6, n_volumes=2, tr_ms=3000.0, psd="epi2", internal_psd="EPI2",
                 protocol=epi_protocol(interleaved=order == "1", mb=mb, iopt="DIFF"), software=GE_SOFTWARE,
                 per_image=per_image, descending=descending)
    for path in folder.iterdir():
        ds = pydicom.dcmread(path)
        for element, value in (cycling or {}).items():
            ds.private_block(0x0019, "GEMS_ACQU_01").add_new(element, "DS", value)
        ds.save_as(path)


def _times_by_location(folder: Path, descending: bool = False) -> list[float]:
    """SliceTiming of the one sidecar in ``folder``, in GE's location order (InstanceNumber within a volume)."""
    (json_path,) = folder.glob("*.json")
    times = json.loads(json_path.read_text())["SliceTiming"]
    return times[::-1] if descending else times  # volume's k runs up the normal; GE's locations went down it


@pytest.mark.parametrize(("order", "mb", "expected"), [
    ("1", 1, [0.0, 1.5, 0.5, 2.0, 1.0, 2.5]),  # six excitations, the even ones first
    ("0", 1, [0.0, 1.5, 0.5, 2.0, 1.0, 2.5]),  # interleaved whatever SLICEORDER says
    ("1", 2, [0.0, 2.0, 1.0, 0.0, 2.0, 1.0]),  # HyperBand 2: three excitations, two locations each
    ("1", 3, [0.0, 2.0, 1.0, 0.0, 2.0, 1.0]),  # two excitations and one more, empty (the order before 27.0 R03)
])
@pytest.mark.parametrize("descending", [False, True], ids=["ascending", "descending"])
def test_ge_diffusion_epi_slice_times(tmp_path: Path, order: str, mb: int, expected: list[float], descending: bool) -> None:
    """GE's diffusion EPI interleaves its excitations within the TR, with the HyperBand order of the
    releases before 27.0 R03 (GE's description, dcm2niix issue 635); times by location, InstanceNumber order."""
    _ge_diffusion_epi(tmp_path / "in", model="DISCOVERY MR750", order=order, mb=mb, descending=descending)
    convert(tmp_path / "in", tmp_path / "out")
    assert _times_by_location(tmp_path / "out", descending) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(("model", "cycling", "mode", "tensor"), [
    ("DISCOVERY MR750", {0xB3: "2"}, None, None),
    ("SIGNA Premier", {}, "ALLTR", None),
    ("SIGNA Premier", {0xB3: "2", 0xB2: "0"}, "2TR", 2),
    ("SIGNA Premier", {0xB3: "3", 0xB2: "5"}, "3TR", 5),
    ("SIGNA Premier", {0xB6: "0.72", 0xB3: "2"}, "SPOFF", None),
    ("SIGNA UHP", {0xB6: "0.8"}, "SPOFF", None),
    ("SIGNA 7.0T", {0xB6: "0.3", 0xB3: "3"}, "3TR", 3),
])
def test_ge_diffusion_gradient_cycling(tmp_path: Path, model: str, cycling: dict[int, str], mode: str | None,
                                       tensor: int | None) -> None:
    """Premier, UHP and 7.0T systems cycle the diffusion gradients across TRs (GE's user data 12,
    0019,10B3: 2TR, 3TR, else all TRs), unless in the special OFF mode (user data 15, 0019,10B6); the
    slice order then changes from TR to TR and no SliceTiming is written (OFF and SPOFF keep GE's order)."""
    _ge_diffusion_epi(tmp_path / "in", model=model, cycling=cycling)
    (sidecar,) = converted(tmp_path / "in", tmp_path / "out").values()
    assert sidecar.get("DiffGradientCyclingGE") == mode
    assert sidecar.get("TensorFileNumberGE") == tensor
    assert ("SliceTiming" in sidecar) == (mode in (None, "SPOFF"))
    if mode not in (None, "SPOFF"):
        assert "gradient cycling" in sidecar["OmittedFields"]["SliceTiming"]


@pytest.mark.parametrize(("model", "cycling", "mb"), [("DISCOVERY MR750", {}, 1), ("DISCOVERY MR750", {}, 3),
                                                      ("SIGNA Premier", {0xB6: "0.72"}, 1), ("SIGNA Premier", {}, 1)],
                         ids=["off", "off-hyperband", "special-off", "all-tr"])
def test_ge_diffusion_epi_as_dcm2niix_reads_it(tmp_path: Path, dcm2niix: str, model: str, cycling: dict[int, str],
                                              mb: int) -> None:
    _ge_diffusion_epi(tmp_path / "in", model=model, cycling=cycling, mb=mb)
    (theirs,) = run_dcm2niix(dcm2niix, tmp_path / "in", tmp_path / "d").values()
    (ours,) = converted(tmp_path / "in", tmp_path / "v").values()
    assert ours.get("DiffGradientCyclingGE") == theirs.get("DiffGradientCyclingGE")
    assert ("SliceTiming" in ours) == ("SliceTiming" in theirs)
    if "SliceTiming" in theirs:  # same slice order (both ascending): same list
        assert ours["SliceTiming"] == pytest.approx(theirs["SliceTiming"], abs=1e-6)


# --- GE's ZIP interpolation; the TR of an inversion-recovery time series ---------------------------------


@pytest.mark.parametrize(("images", "thickness", "expected"), [(8, 6.0, 2), (4, 6.0, None), (8, 3.0, None)],
                         ids=["zip2", "locations-agree", "thickness-is-spacing"])
def test_ge_zip_interpolation(tmp_path: Path, images: int, thickness: float, expected: int | None) -> None:
    """GE interpolates slices through the plane (ZIP2): more images in the acquisition (0020,1002) than
    GE's locations (0021,104F, 4 here) and slices thicker than their spacing (3 mm) by the ZIP factor."""

    def add(ds: Dataset, t: int, k: int) -> None:
        ds.ImagesInAcquisition = images
        ds.SliceThickness, ds.SpacingBetweenSlices = thickness, SLICE_MM
        ds.private_block(0x0021, "GEMS_RELA_01", create=True).add_new(0x4F, "SS", N_SLICES)

    write_classic(tmp_path / "in", 1, manufacturer="GE MEDICAL SYSTEMS", per_image=add)
    (sidecar,) = converted(tmp_path / "in", tmp_path / "out").values()
    assert sidecar.get("Interpolation3D") == expected


def _timed(scanning: list[str], vendor: str) -> Callable[[Dataset, int, int], None]:
    def add(ds: Dataset, t: int, k: int) -> None:
        ds.ScanningSequence = scanning
        ds.RepetitionTime = 2000
        ds.AcquisitionTime = f"1200{10 * t:02d}.000000"  # volumes 10 s apart

    return add


@pytest.mark.parametrize(("scanning", "vendor", "key"), [
    (["GR", "IR"], "SIEMENS", "RepetitionTimeInversion"),
    (["GR"], "SIEMENS", "RepetitionTimeExcitation"),
    (["GR", "IR"], "Philips Medical Systems", "RepetitionTimeExcitation"),
])
def test_measured_tr_of_an_inversion_recovery_series(tmp_path: Path, scanning: list[str], vendor: str, key: str) -> None:
    """Volumes further apart than RepetitionTime: the measured time is RepetitionTime, and the header's
    TR is kept under the name of what it times: between inversions for an inversion-recovery sequence
    (ScanningSequence IR), between excitations otherwise and for Philips (dcm2niix's rule)."""
    write_classic(tmp_path / "in", 2, manufacturer=vendor, per_image=_timed(scanning, vendor))
    (sidecar,) = converted(tmp_path / "in", tmp_path / "out").values()
    assert sidecar["RepetitionTime"] == pytest.approx(10.0)
    assert sidecar[key] == pytest.approx(2.0)


def test_zip_and_inversion_tr_as_dcm2niix_writes_them(tmp_path: Path, dcm2niix: str) -> None:
    def add(ds: Dataset, t: int, k: int) -> None:
        ds.ImagesInAcquisition, ds.SliceThickness, ds.SpacingBetweenSlices = 8, 6.0, SLICE_MM
        ds.private_block(0x0021, "GEMS_RELA_01", create=True).add_new(0x4F, "SS", N_SLICES)

    write_classic(tmp_path / "zip", 1, manufacturer="GE MEDICAL SYSTEMS", per_image=add)
    write_classic(tmp_path / "ir", 2, manufacturer="SIEMENS", per_image=_timed(["GR", "IR"], "SIEMENS"))
    for name, key in (("zip", "Interpolation3D"), ("ir", "RepetitionTimeInversion")):
        (theirs,) = run_dcm2niix(dcm2niix, tmp_path / name, tmp_path / f"{name}_d").values()
        (ours,) = converted(tmp_path / name, tmp_path / f"{name}_v").values()
        assert ours[key] == pytest.approx(theirs[key])

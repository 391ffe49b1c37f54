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
                  description: str = "series", per_image: Callable[[Dataset, int, int], None] | None = None) -> Path:
    """``volumes`` x :data:`N_SLICES` single-slice files at the same positions, InstanceNumbers volume by
    volume; every pixel of volume ``t``, slice ``k`` holds ``100 * (t + 1) + k``; ``per_image(ds, t, k)``
    adds the convention under test."""
    folder.mkdir(parents=True, exist_ok=True)
    series, study, frame = generate_uid(), generate_uid(), generate_uid()
    for t in range(volumes):
        for k in range(N_SLICES):
            ds = base_dataset(series_uid=series, study_uid=study, frame_uid=frame, rows=4, cols=4,
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
            ds.PixelData = np.full((4, 4), 100 * (t + 1) + k, np.uint16).tobytes()
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

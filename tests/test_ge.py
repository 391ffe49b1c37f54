"""GE MR series, convention by convention: slice times, repetition time, diffusion directions.

Each test writes a small GE series whose every header value is chosen here (the protocol data
block (0025,101B) as GE compresses it, the PSD names, the HyperBand factor, the group delay,
TriggerTime, the RTIA timer, InstanceNumbers up or down the slice normal), converts it, and checks
the sidecar against what GE's convention gives, derived here from the convention's statement
(:func:`convention_times`), never from volume's code. Where dcm2niix is installed, it converts the
same files and must agree in world space.
"""

from __future__ import annotations

import gzip
import json
import shutil
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pydicom
import pytest
from conftest import DATA
from peers import bvec_world, read_bval, read_bvec, slice_times_by_position
from pydicom.uid import generate_uid
from synth import AXIAL, CORONAL, SAGITTAL, base_dataset, oblique_iop

from volume.cli import main
from volume.dicom.ge import ge_software_version
from volume.jobs.convert import convert

SOFTWARE_27R3 = "27\\LX\\MR Software release:DV28.0_R02_1947.a"
"""A release from 27.0 R03 on (DV28): interleaved HyperBand swaps its last two odd excitations."""
SOFTWARE_26 = "27\\LX\\MR Software release:DV26.0_R01_1725.a"
"""A release before 27.0 R03: an even number of HyperBand excitations gets one more."""
SOFTWARE_25 = "25\\LX\\MR Software release:DV25.0_R02_1549.b"
"""A release before 26: its HyperBand slice order is not known."""

SLICE_GAP_MM = 2.5
ORIGIN = np.array([-4.0, -6.0, 10.0])
TIME_ATOL_S = 2e-6
"""Slice times are written to the microsecond."""


# --- writing GE series ------------------------------------------------------------------------------


def protocol_block(fields: dict[str, str]) -> bytes:
    """GE's protocol data block: ``KEY "value"`` lines, gzip-compressed, after their 4-byte length."""
    text = 'ENTRY "Head First"\n' + "".join(f'{key} "{value}"\n' for key, value in fields.items())
    packed = gzip.compress(text.encode("latin-1"))
    return struct.pack("<I", len(packed)) + packed


def epi_protocol(*, interleaved: bool = True, mb: int = 1, iopt: str = "EPI, FMRI", delacq: str = "Minimum",
                 delacqnoav: str = "0", n_slices: int | None = None) -> dict[str, str]:
    """The protocol block's fields of a gradient-echo EPI (``SLICEORDER`` 1 interleaved, 0 sequential)."""
    fields = {"PSEQ": "Gradient Echo", "IOPT": iopt, "SLICEORDER": "1" if interleaved else "0", "VIEWORDER": "1",
              "DELACQ": delacq, "DELACQNOAV": delacqnoav}
    if mb > 1:
        fields["MBACCEL"] = str(mb)
    if n_slices is not None:
        fields["NOSLC"] = str(n_slices)
    return fields


def location_positions(n_slices: int, iop=AXIAL) -> list[np.ndarray]:
    """LPS position of GE's slice location ``loc`` (its InstanceNumber order) of an ascending prescription."""
    normal = np.cross(np.asarray(iop[:3], float), np.asarray(iop[3:], float))
    return [ORIGIN + loc * SLICE_GAP_MM * normal for loc in range(n_slices)]


def write_ge_epi(folder: Path, *, n_slices: int, n_volumes: int = 2, tr_ms: float = 1000.0,
                 protocol: dict[str, str] | None = None, descending: bool = False, software: str = SOFTWARE_27R3,
                 psd: str = "epiRT", internal_psd: str = "EPI", multiband_tag: int | None = None,
                 group_delay_s: float | None = None, iop=AXIAL, numbers: Callable[[int, int], int] | None = None,
                 per_image: Callable[[int, int], dict[str, Any]] | None = None) -> None:
    """A GE 2D EPI time series, one file per image, 2x2 pixels holding the volume's index.

    Location ``l`` (0-based, InstanceNumber order within a volume) lies ``l`` slice gaps up the
    normal, or down it when ``descending`` (GE numbers locations as prescribed). ``per_image(t, l)``
    gives more keywords (and ``"RTIA"``: the RTIA timer) of volume ``t``'s location ``l``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    series, study, frame = generate_uid(), generate_uid(), generate_uid()
    block = protocol_block(protocol) if protocol is not None else None
    positions = location_positions(n_slices, iop)
    if descending:
        positions = positions[::-1]
    for t in range(n_volumes):
        for loc in range(n_slices):
            ds = base_dataset(series_uid=series, study_uid=study, frame_uid=frame, rows=2, cols=2,
                              description="ge epi")
            ds.Manufacturer = "GE MEDICAL SYSTEMS"
            ds.SoftwareVersions = software.split("\\")
            ds.MRAcquisitionType = "2D"
            ds.ScanningSequence = ["EP", "GR"]
            ds.ImageType = ["ORIGINAL", "PRIMARY", "EPI", "NONE"]
            ds.RepetitionTime = tr_ms
            ds.EchoTime = 30.0
            ds.InPlanePhaseEncodingDirection = "COL"
            ds.PatientPosition = "HFS"
            ds.ImageOrientationPatient = list(iop)
            ds.ImagePositionPatient = [float(v) for v in positions[loc]]
            ds.PixelSpacing = [3.0, 3.0]
            ds.SliceThickness = SLICE_GAP_MM
            ds.InstanceNumber = numbers(t, loc) if numbers else t * n_slices + loc + 1
            acq = ds.private_block(0x0019, "GEMS_ACQU_01", create=True)
            acq.add_new(0x9C, "LO", psd)
            acq.add_new(0x9E, "LO", internal_psd)
            if block is not None:
                ds.private_block(0x0025, "GEMS_SERS_01", create=True).add_new(0x1B, "OB", block)
            parm = ds.private_block(0x0043, "GEMS_PARM_01", create=True)
            if multiband_tag:
                parm.add_new(0xB6, "LO", [str(multiband_tag), "4", "19"])
            if group_delay_s is not None:
                parm.add_new(0x7C, "FL", group_delay_s)
            for key, value in (per_image(t, loc) if per_image else {}).items():
                if key == "RTIA":
                    ds.private_block(0x0021, "GEMS_RELA_01", create=True).add_new(0x5E, "DS", f"{value:.6f}")
                else:
                    setattr(ds, key, value)
            ds.PixelData = np.full((2, 2), 100 + t, np.uint16).tobytes()
            ds.save_as(folder / f"i{t * n_slices + loc:05d}.dcm", enforce_file_format=True)


def convention_times(n_slices: int, mb: int, tr_s: float, interleaved: bool, after_27r3: bool,
                     delay_s: float = 0.0) -> list[float]:
    """GE's slice-order convention as GE and dcm2niix's notes state it, location by location.

    ``mb`` locations are excited together: location ``l`` in excitation ``l mod E``, ``E`` =
    ceil(slices / mb) excitations (before 27.0 R03, HyperBand plays one more when ``E`` is even).
    They are played evenly over the TR less the delay: in order when sequential; interleaved, the
    even excitations first, then the odd ones, the last two of those swapped (HyperBand from
    27.0 R03, ``E`` even and above 2).
    """
    excitations = -(-n_slices // mb)
    if mb > 1 and not after_27r3 and excitations % 2 == 0:
        excitations += 1
    if interleaved:
        evens, odds = list(range(0, excitations, 2)), list(range(1, excitations, 2))
        if mb > 1 and after_27r3 and excitations > 2 and excitations % 2 == 0:
            odds[-2:] = odds[-1], odds[-2]
        played = evens + odds
    else:
        played = list(range(excitations))
    step = (tr_s - delay_s) / excitations
    return [played.index(loc % excitations) * step for loc in range(n_slices)]


def _outputs(folder: Path) -> tuple[dict[str, Any], nib.Nifti1Image]:
    (image,) = folder.glob("*.nii.gz")
    return json.loads(image.with_name(image.name.replace(".nii.gz", ".json")).read_text()), nib.load(str(image))


def written_locations(img: nib.Nifti1Image, n_slices: int, descending: bool, iop=AXIAL) -> list[int]:
    """GE's location of each written slice ``k``, from the file's affine and where each was put."""
    positions = location_positions(n_slices, iop)
    if descending:
        positions = positions[::-1]
    out = []
    for k in range(n_slices):
        centre = (img.affine @ [0, 0, k, 1])[:3] * [-1, -1, 1]  # RAS -> LPS; in-plane offset is 0 at voxel 0
        out.append(int(np.argmin([np.linalg.norm(centre - p) for p in positions])))
    return out


def assert_times(sidecar: dict[str, Any], img: nib.Nifti1Image, expected_by_location: list[float],
                 descending: bool, iop=AXIAL) -> None:
    locations = written_locations(img, len(expected_by_location), descending, iop)
    np.testing.assert_allclose(sidecar["SliceTiming"], [expected_by_location[loc] for loc in locations],
                               atol=TIME_ATOL_S)


# --- slice timing from the protocol data block --------------------------------------------------------


@pytest.mark.parametrize("mb", range(2, 9))
@pytest.mark.parametrize("descending", [False, True], ids=["ascending", "descending"])
@pytest.mark.parametrize("interleaved", [True, False], ids=["interleaved", "sequential"])
def test_hyperband_slice_times_follow_ges_convention(tmp_path: Path, mb: int, descending: bool, interleaved: bool) -> None:
    """Every HyperBand factor 2-8, up or down the normal, interleaved or sequential: the slice times
    GE's convention gives, slice by slice in world space. ``4 mb - 1`` slices make an even number of
    excitations (one location left out of the last), where the releases before and after 27.0 R03
    differ; descending series are written by a release before it."""
    n, tr_s = 4 * mb - 1, 1.2
    software = SOFTWARE_26 if descending else SOFTWARE_27R3
    write_ge_epi(tmp_path / "in", n_slices=n, tr_ms=tr_s * 1000, descending=descending, software=software,
                 protocol=epi_protocol(interleaved=interleaved, mb=mb), multiband_tag=mb)
    (result,) = convert(tmp_path / "in", tmp_path / "out")
    assert result.status == "converted" and result.warnings == ()
    sidecar, img = _outputs(tmp_path / "out")
    assert sidecar["MultibandAccelerationFactor"] == mb
    assert "OmittedFields" not in sidecar
    assert_times(sidecar, img, convention_times(n, mb, tr_s, interleaved, not descending), descending)


@pytest.mark.parametrize(("n", "mb", "software", "interleaved"), [
    (15, 1, SOFTWARE_27R3, True),    # single band, odd count
    (16, 1, SOFTWARE_26, True),      # single band, even count: no extra excitation
    (24, 3, SOFTWARE_27R3, True),    # 8 excitations: the swap
    (21, 3, SOFTWARE_27R3, True),    # 7 excitations: no swap
    (24, 3, SOFTWARE_26, False),     # sequential, before 27.0 R03: 9 excitations
    (16, 4, "28\\LX\\MR29.1_EA_2039.g", True),  # a 29.1 EA release names no "Software release:"
])
def test_slice_times_for_other_counts_and_releases(tmp_path: Path, n: int, mb: int, software: str,
                                                   interleaved: bool) -> None:
    write_ge_epi(tmp_path / "in", n_slices=n, protocol=epi_protocol(interleaved=interleaved, mb=mb), software=software)
    convert(tmp_path / "in", tmp_path / "out")
    sidecar, img = _outputs(tmp_path / "out")
    after = ge_software_version(software).is_27r3
    assert after == (software != SOFTWARE_26)
    assert_times(sidecar, img, convention_times(n, mb, 1.0, interleaved, after), False)
    assert sidecar.get("MultibandAccelerationFactor", 1) == mb


def test_the_multiband_factor_comes_from_either_element(tmp_path: Path) -> None:
    """(0043,10B6) without the protocol's MBACCEL, and MBACCEL without (0043,10B6), say the same."""
    for name, protocol, tag in (("tag", epi_protocol(mb=1), 4), ("block", epi_protocol(mb=4), None)):
        write_ge_epi(tmp_path / name, n_slices=16, protocol=protocol, multiband_tag=tag)
        convert(tmp_path / name, tmp_path / f"out_{name}")
        sidecar, img = _outputs(tmp_path / f"out_{name}")
        assert sidecar["MultibandAccelerationFactor"] == 4
        assert_times(sidecar, img, convention_times(16, 4, 1.0, True, True), False)


def test_epirt_group_delay_lengthens_the_tr_not_the_slice_spacing(tmp_path: Path) -> None:
    """BrainWave's group delay (0043,107C, seconds) pauses after each volume: RepetitionTime is the
    header's plus the delay; the slices still fill the header's TR."""
    write_ge_epi(tmp_path / "in", n_slices=32, tr_ms=2000, group_delay_s=0.033, protocol=epi_protocol())
    convert(tmp_path / "in", tmp_path / "out")
    sidecar, img = _outputs(tmp_path / "out")
    assert sidecar["RepetitionTime"] == pytest.approx(2.033)
    assert_times(sidecar, img, convention_times(32, 1, 2.033, True, True, delay_s=0.033), False)
    assert max(sidecar["SliceTiming"]) == pytest.approx(2.0 - 2.0 / 32)


def test_multiphase_delay_is_seconds_added_to_the_tr(tmp_path: Path) -> None:
    """A multi-phase ``epi`` with 0.35 s between phases (the protocol's DELACQNOAV, in seconds):
    RepetitionTime 1.35 (not 1.00035), and the slices fill the 1.0 s of the header's TR."""
    write_ge_epi(tmp_path / "in", n_slices=10, tr_ms=1000, psd="epi", descending=True,
                 protocol=epi_protocol(iopt="MPh, EPI", delacq="0.35", delacqnoav="0.35"))
    convert(tmp_path / "in", tmp_path / "out")
    sidecar, img = _outputs(tmp_path / "out")
    assert sidecar["RepetitionTime"] == pytest.approx(1.35)
    assert_times(sidecar, img, convention_times(10, 1, 1.35, True, True, delay_s=0.35), True)
    write_ge_epi(tmp_path / "min", n_slices=10, tr_ms=1000, psd="epi",
                 protocol=epi_protocol(iopt="MPh, EPI", delacq="Minimum", delacqnoav="0.35"))
    convert(tmp_path / "min", tmp_path / "out_min")
    sidecar, img = _outputs(tmp_path / "out_min")
    assert sidecar["RepetitionTime"] == pytest.approx(1.0)  # DELACQ Minimum: no delay
    assert_times(sidecar, img, convention_times(10, 1, 1.0, True, True), False)


# --- what cannot be derived is left out, with its reason ----------------------------------------------


def _left_out(tmp_path: Path, capsys: pytest.CaptureFixture[str], folder: str = "in") -> tuple[dict[str, Any], str]:
    assert main(["convert", str(tmp_path / folder), "-o", str(tmp_path / f"out_{folder}")]) == 0
    err = capsys.readouterr().err
    sidecar, _ = _outputs(tmp_path / f"out_{folder}")
    assert "SliceTiming" not in sidecar
    return sidecar, err


@pytest.mark.parametrize(("case", "why"), [
    ("variable delays", "variable delays"),
    ("hyperband before 26", "HyperBand before software 26"),
    ("instance numbers out of slice order", "InstanceNumbers missing or not in slice order"),
    ("diffusion with gradient cycling", "gradient cycling ALLTR"),
    ("no protocol block, nothing measured", "no GE protocol data block"),
    ("trigger times without the hyperband groups", "no GE protocol data block"),
])
def test_slice_times_that_cannot_be_derived_are_left_out(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                         case: str, why: str) -> None:
    """Never guessed: no SliceTiming, one warning naming the series, and the reason in the sidecar."""
    kw: dict[str, Any] = {"n_slices": 12, "protocol": epi_protocol()}
    if case == "variable delays":
        kw.update(psd="epi", protocol=epi_protocol(iopt="MPhVar, EPI", delacqnoav="1"))
    elif case == "hyperband before 26":
        kw.update(software=SOFTWARE_25, protocol=epi_protocol(mb=2))
    elif case == "instance numbers out of slice order":
        kw.update(numbers=lambda t, loc: t * 12 + (loc * 5) % 12 + 1)
    elif case == "diffusion with gradient cycling":  # a Premier cycles diffusion gradients across TRs by default
        kw.update(psd="epi2", internal_psd="EPI2", protocol=epi_protocol(iopt="EPI, DIFF"),
                  per_image=lambda t, loc: {"ManufacturerModelName": "SIGNA Premier"})
    elif case == "no protocol block, nothing measured":
        kw.update(protocol=None, per_image=lambda t, loc: {"TriggerTime": 0.0, "RTIA": 0.0})
    else:  # TriggerTimes all distinct although (0043,10B6) says 2 slices are excited at once
        kw.update(protocol=None, multiband_tag=2, per_image=lambda t, loc: {"TriggerTime": 1000.0 * t + 50.0 * loc})
    write_ge_epi(tmp_path / "in", **kw)
    sidecar, err = _left_out(tmp_path, capsys)
    assert why in sidecar["OmittedFields"]["SliceTiming"]
    lines = [line for line in err.splitlines() if "SliceTiming left out" in line]
    assert len(lines) == 1 and lines[0].startswith("volume: warning: series 7:") and why in lines[0]


# --- without a protocol block: the times GE measured --------------------------------------------------


def _measured_case(tmp_path: Path, source: str) -> tuple[list[float], dict[str, Any], nib.Nifti1Image]:
    """An interleaved 9-slice series with its slice times only in TriggerTime (ms, from the start of
    the series) or the RTIA timer (seconds, or 1/10,000 s before software 24; the first volume's
    values wrong, as on some releases)."""
    n, tr = 9, 1.8
    times = convention_times(n, 1, tr, True, True)

    def per_image(t: int, loc: int) -> dict[str, Any]:
        start = t * tr + 0.013
        if source == "TriggerTime":
            return {"TriggerTime": round((start + times[loc]) * 1000.0, 3)}
        value = (start + times[loc]) if t else 7.5 * loc  # volume 0: nonsense
        return {"RTIA": value / 1e-4 if source == "RTIA old" else value}

    write_ge_epi(tmp_path / "in", n_slices=n, n_volumes=3, tr_ms=tr * 1000, protocol=None, per_image=per_image)
    (result,) = convert(tmp_path / "in", tmp_path / "out")
    assert result.warnings == ()
    sidecar, img = _outputs(tmp_path / "out")
    return times, sidecar, img


@pytest.mark.parametrize("source", ["TriggerTime", "RTIA", "RTIA old"])
def test_without_a_protocol_block_the_measured_times_are_used(tmp_path: Path, source: str) -> None:
    """TriggerTime within the first volume; the RTIA timer within the second, in seconds or in
    1/10,000 s (older releases), told apart by which fits within a TR."""
    times, sidecar, img = _measured_case(tmp_path, source)
    assert_times(sidecar, img, times, False)


def test_dcm_qa_stc_without_its_protocol_blocks(tmp_path: Path) -> None:
    """dcm2niix's GE slice-timing suite with its protocol blocks removed: TriggerTime, the RTIA timer
    and its older unit give the times dcm2niix derives from the blocks (to GE's rounding: ms, 0.1 ms)."""
    root = DATA / "peers" / "dcm_qa_stc"
    if not root.is_dir():
        pytest.skip(f"{root} not found")
    for case, ref in (("TriggerTime/4_epi_ascending", "GE_Brain_Routine_4"), ("RTIA/2_epiRT_ascending", "GE_Brain_Routine_2"),
                      ("RTIAold/15_Zugfahrt", "GE_Zugfahrt_test_4_15")):
        src = tmp_path / case.replace("/", "_")
        src.mkdir()
        for path in (root / "In" / "GE" / case).iterdir():
            ds = pydicom.dcmread(path, force=True)
            del ds[0x0025101B]
            ds.save_as(src / path.name)
        (result,) = convert(src, tmp_path / "out" / src.name)
        sidecar, img = _outputs(tmp_path / "out" / src.name)
        reference = json.loads((root / "Ref" / f"{ref}.json").read_text())
        theirs = nib.load(str(root / "Ref" / f"{ref}.nii"))
        a = slice_times_by_position(sidecar["SliceTiming"], img.affine, img.shape[2])
        b = slice_times_by_position(reference["SliceTiming"], theirs.affine, theirs.shape[2])
        np.testing.assert_allclose([p for p, _ in a], [p for p, _ in b], atol=0.05, err_msg=case)
        np.testing.assert_allclose([t for _, t in a], [t for _, t in b], atol=1.1e-3, err_msg=case)


# --- dcm2niix on the same files -------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "kw"), [
    ("hb8 77 descending", {"n_slices": 77, "descending": True, "protocol": epi_protocol(mb=8), "multiband_tag": 8}),
    ("hb3 48 before 27r3", {"n_slices": 48, "software": SOFTWARE_26, "protocol": epi_protocol(mb=3), "multiband_tag": 3}),
    ("epiRT group delay", {"n_slices": 32, "tr_ms": 2000, "group_delay_s": 0.055, "protocol": epi_protocol()}),
    ("multi-phase delay", {"n_slices": 10, "psd": "epi", "descending": True,
                           "protocol": epi_protocol(iopt="MPh, EPI", delacq="0.35", delacqnoav="0.35")}),
])
def test_slice_times_and_tr_agree_with_dcm2niix(tmp_path: Path, dcm2niix: str, name: str, kw: dict[str, Any]) -> None:
    write_ge_epi(tmp_path / "in", n_volumes=2, **kw)
    convert(tmp_path / "in", tmp_path / "ours")
    (tmp_path / "theirs").mkdir()
    subprocess.run([dcm2niix, "-z", "n", "-f", "x", "-o", str(tmp_path / "theirs"), str(tmp_path / "in")],
                   check=True, capture_output=True)
    ours, img = _outputs(tmp_path / "ours")
    theirs = json.loads((tmp_path / "theirs" / "x.json").read_text())
    timg = nib.load(str(tmp_path / "theirs" / "x.nii"))
    assert ours["RepetitionTime"] == pytest.approx(theirs["RepetitionTime"])
    assert ours.get("MultibandAccelerationFactor") == theirs.get("MultibandAccelerationFactor")
    a = slice_times_by_position(ours["SliceTiming"], img.affine, img.shape[2])
    b = slice_times_by_position(theirs["SliceTiming"], timg.affine, timg.shape[2])
    np.testing.assert_allclose(np.array(a), np.array(b), atol=1e-4, err_msg=name)


# --- diffusion directions -----------------------------------------------------------------------------

RAW_GRADIENTS = [(0.0, 0.0, 0.0), (0.6, 0.48, 0.64), (1.0, 0.0, 0.0), (0.0, 0.0, 1.0)]
"""GE's (0019,10BB/BC/BD) per volume, b=0 first."""


def write_ge_dwi(folder: Path, *, iop=AXIAL, phase: str = "COL", b_in: str = "private", descending: bool = False,
                 gradients: bool = True) -> None:
    """A GE DWI of :data:`RAW_GRADIENTS` at b=1000, the b-value in GE's (0043,1039) (plus 10^9, as
    some sequences write it) or in the standard DiffusionBValue (0018,9087); never the standard
    direction (0018,9089)."""
    folder.mkdir(parents=True, exist_ok=True)
    series, study, frame = generate_uid(), generate_uid(), generate_uid()
    n = 4
    positions = location_positions(n, iop)
    if descending:
        positions = positions[::-1]
    for t, raw in enumerate(RAW_GRADIENTS):
        for loc in range(n):
            ds = base_dataset(series_uid=series, study_uid=study, frame_uid=frame, rows=3, cols=3, description="dwi")
            ds.Manufacturer = "GE MEDICAL SYSTEMS"
            ds.ImageType = ["ORIGINAL", "PRIMARY", "OTHER"]
            ds.MRAcquisitionType = "2D"
            ds.InPlanePhaseEncodingDirection = phase
            ds.PatientPosition = "HFS"
            ds.ImageOrientationPatient = list(iop)
            ds.ImagePositionPatient = [float(v) for v in positions[loc]]
            ds.PixelSpacing = [2.0, 2.0]
            ds.SliceThickness = SLICE_GAP_MM
            ds.InstanceNumber = t * n + loc + 1
            b = 0 if t == 0 else 1000
            if b_in == "standard":
                ds.DiffusionBValue = float(b)
            else:
                ds.private_block(0x0043, "GEMS_PARM_01", create=True).add_new(
                    0x39, "IS", [b + (1_000_000_000 if b else 0), 8, 0, 0])
            if gradients:
                block = ds.private_block(0x0019, "GEMS_ACQU_01", create=True)
                for element, value in zip((0xBB, 0xBC, 0xBD), raw, strict=True):
                    block.add_new(element, "DS", value)
            ds.PixelData = np.full((3, 3), 10 * (t + 1) + loc, np.uint16).tobytes()
            ds.save_as(folder / f"i{t * n + loc:03d}.dcm", enforce_file_format=True)


def _world_bvecs(folder: Path, stem: str = "*") -> tuple[np.ndarray, np.ndarray]:
    image = next(folder.glob(f"{stem}.nii*"))
    base = image.with_name(image.name.split(".nii")[0])
    return read_bval(base.with_suffix(".bval")), bvec_world(read_bvec(base.with_suffix(".bvec")), nib.load(str(image)).affine)


def test_ge_directions_whatever_carries_the_b_value(tmp_path: Path) -> None:
    """The standard b-value (0018,9087) without the standard direction (0018,9089): GE's own
    gradient gives the directions, the same as with GE's b-value (0043,1039); no b=1000 volume
    gets a zero vector."""
    iop = oblique_iop(AXIAL, degrees=14.0)
    write_ge_dwi(tmp_path / "std", iop=iop, b_in="standard")
    write_ge_dwi(tmp_path / "ge", iop=iop, b_in="private")
    for name in ("std", "ge"):
        (result,) = convert(tmp_path / name, tmp_path / f"out_{name}")
        assert all(w.startswith("SliceTiming left out") for w in result.warnings)  # a DWI without GE's block
    bvals, world = _world_bvecs(tmp_path / "out_std")
    bvals_ge, world_ge = _world_bvecs(tmp_path / "out_ge")
    assert bvals.tolist() == bvals_ge.tolist() == [0, 1000, 1000, 1000]
    np.testing.assert_allclose(world, world_ge, atol=1e-6)
    assert (np.linalg.norm(world[1:], axis=1) > 0.99).all()


@pytest.mark.parametrize("iop", [oblique_iop(AXIAL, degrees=20.0), oblique_iop(SAGITTAL, degrees=20.0),
                                 oblique_iop(CORONAL, degrees=20.0), (-1.0, 0.0, 0.0, 0.0, 1.0, 0.0)],
                         ids=["oblique-axial", "oblique-sagittal", "oblique-coronal", "axial-rows-right"])
@pytest.mark.parametrize("phase", ["COL", "ROW"])
def test_ge_directions_agree_with_dcm2niix_on_oblique_slices(tmp_path: Path, dcm2niix: str, iop, phase: str) -> None:
    """GE's image-frame gradients turned into world directions as dcm2niix turns them, on oblique
    slices of each plane and images whose rows run right, InstanceNumbers down the normal, the
    b-value in the standard element."""
    write_ge_dwi(tmp_path / "in", iop=iop, phase=phase, b_in="standard", descending=True)
    convert(tmp_path / "in", tmp_path / "ours")
    (tmp_path / "theirs").mkdir()
    subprocess.run([dcm2niix, "-z", "n", "-f", "x", "-o", str(tmp_path / "theirs"), str(tmp_path / "in")],
                   check=True, capture_output=True)
    bvals, ours = _world_bvecs(tmp_path / "ours")
    theirs_bvals, theirs = _world_bvecs(tmp_path / "theirs", "x")
    assert bvals.tolist() == theirs_bvals.tolist()
    np.testing.assert_allclose(ours[1:], theirs[1:], atol=1e-5)


def test_ge_dwi_without_gradients_gets_no_bvec(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """GE's b-values with its gradient elements removed: the .bval, no .bvec, one warning naming the
    series, and the reason in the sidecar."""
    write_ge_dwi(tmp_path / "in", gradients=False)
    assert main(["convert", str(tmp_path / "in"), "-o", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert [p.suffix for p in sorted((tmp_path / "out").iterdir())] == [".bval", ".json", ".gz"]
    sidecar = json.loads(next((tmp_path / "out").glob("*.json")).read_text())
    assert "no gradient direction" in sidecar["OmittedFields"]["bvec"]
    assert sum("no gradient direction" in line and "series 7" in line for line in err.splitlines()) == 1
    shutil.rmtree(tmp_path / "out")

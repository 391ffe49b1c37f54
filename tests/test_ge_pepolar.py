"""GE's ``epi_pepolar``: EPI volumes at both phase-encoding polarities in one series.

GE's research PSD ``epi_pepolar`` (0019,109C; ABCD's ``research/ABCD/epi_pepolar``) says in its user
data 12 (0019,10B3) which volumes have the reversed polarity: 0 all forward, 1 all reversed, 2
reversed then forward (odd volumes reversed), 3 forward then reversed (even volumes reversed), the
volume being TemporalPositionIdentifier (0020,0100) from 1. GE stores the reversed volumes with their
rows in reverse order and nothing else changed (``neurolabusc/dcm_qa_polar``; dcm2niix reverses
their rows, toggles their polarity and gives them the series number + 1000, issue 532).

The synthetic series below hold, in volume ``t``, the linear field of the patient position plus
``100 * t``, written as GE writes it (reversed volumes upside down); every test checks the voxels
against the world positions the files' geometry gives.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest
from pydicom.uid import generate_uid
from synth import AXIAL, base_dataset, linear_field

import volume
from volume.cli import main
from volume.jobs.convert import convert

ABCD_PSD = "research/ABCD/epi_pepolar"
SLICES, ROWS, COLS = 3, 6, 5
ROW_SPACING, COL_SPACING, SLICE_MM = 2.0, 2.5, 3.0
ORIGIN = np.array([-10.0, -20.0, 30.0])
VOLUME_STEP = 100.0
"""Volume ``t`` holds the linear field plus ``VOLUME_STEP * t``."""

REVERSED_VOLUMES = {0: lambda v: False, 1: lambda v: True, 2: lambda v: v % 2 == 1, 3: lambda v: v % 2 == 0}
"""GE's user data 12 -> is volume ``v`` (TemporalPositionIdentifier, from 1) reversed (dcm_qa_polar's README)."""


def world_field(t: int) -> np.ndarray:
    """The values of volume ``t`` at each pixel's world position, ``(slices, rows, cols)``."""
    k, r, c = np.indices((SLICES, ROWS, COLS), dtype=float)
    row_dir, col_dir = np.array(AXIAL[:3]), np.array(AXIAL[3:])
    normal = np.cross(row_dir, col_dir)
    pos = (ORIGIN[:, None, None, None] + normal[:, None, None, None] * k * SLICE_MM
           + col_dir[:, None, None, None] * r * ROW_SPACING + row_dir[:, None, None, None] * c * COL_SPACING)
    return linear_field(pos[0], pos[1], pos[2]) + VOLUME_STEP * t


def write_pepolar(folder: Path, volumes: int, mode: int | None, *, phase: str = "COL", temporal: bool = True,
                  psd: str = ABCD_PSD, number: int = 7, description: str = "fMRI_FM", readout: bool = False) -> Path:
    """An ``epi_pepolar`` series of ``volumes`` volumes of single-slice files; ``mode`` is user data 12
    (None: absent); the reversed volumes' rows are stored in reverse order, as GE stores them. ``readout``
    adds GE's echo spacing and ASSET factor (what a BIDS field map's TotalReadoutTime comes from)."""
    folder.mkdir(parents=True, exist_ok=True)
    series, study, frame = generate_uid(), generate_uid(), generate_uid()
    for t in range(volumes):
        values = world_field(t)
        if mode is not None and REVERSED_VOLUMES[mode](t + 1):
            values = values[:, ::-1, :]
        for k in range(SLICES):
            ds = base_dataset(series_uid=series, study_uid=study, frame_uid=frame, rows=ROWS, cols=COLS,
                              series_number=number, description=description)
            ds.Manufacturer = "GE MEDICAL SYSTEMS"
            ds.ProtocolName = description
            ds.ImageType = ["ORIGINAL", "PRIMARY", "OTHER"]
            ds.MRAcquisitionType = "2D"
            ds.ScanningSequence, ds.SequenceVariant = ["EP", "GR"], "SS"
            ds.EchoTime, ds.RepetitionTime, ds.FlipAngle = 30.0, 2000.0, 90.0
            ds.InPlanePhaseEncodingDirection = phase
            ds.RectilinearPhaseEncodeReordering = "REVERSE_LINEAR"  # GE: the header's polarity, Unflipped
            ds.PatientPosition = "HFS"
            ds.ImageOrientationPatient = list(AXIAL)
            ds.ImagePositionPatient = [float(v) for v in ORIGIN + np.array([0.0, 0.0, SLICE_MM * k])]
            ds.PixelSpacing = [ROW_SPACING, COL_SPACING]
            ds.SliceThickness = SLICE_MM
            ds.InstanceNumber = t * SLICES + k + 1
            if temporal:
                ds.TemporalPositionIdentifier = t + 1
            block = ds.private_block(0x0019, "GEMS_ACQU_01", create=True)
            block.add_new(0x9C, "LO", psd)
            if mode is not None:
                block.add_new(0xB3, "DS", str(mode))
            if readout:
                ds.AcquisitionMatrix = [0, COLS, ROWS, 0] if phase == "COL" else [ROWS, 0, 0, COLS]
                parm = ds.private_block(0x0043, "GEMS_PARM_01", create=True)
                parm.add_new(0x2C, "SS", 636)  # echo spacing, us
                parm.add_new(0x83, "DS", ["0.5", "1"])  # ASSET: in-plane factor 2
            ds.PixelData = np.round(values[k]).astype(np.uint16).tobytes()
            ds.save_as(folder / f"i{t * SLICES + k:03d}.dcm", enforce_file_format=True)
    return folder


def world_values(path: Path) -> np.ndarray:
    """A written 4D NIfTI's voxels minus the linear field at the position its affine gives, per volume
    (``(volumes, voxels)``): volume ``t`` of the source gives ``VOLUME_STEP * t`` everywhere."""
    img = nib.load(str(path))
    data = np.asarray(img.dataobj, dtype=float)
    if data.ndim == 3:
        data = data[..., None]
    ijk = np.indices(data.shape[:3]).reshape(3, -1)
    ras = img.affine[:3, :3] @ ijk + img.affine[:3, 3:4]
    field = linear_field(-ras[0], -ras[1], ras[2])  # RAS -> LPS
    return np.stack([data[..., t].reshape(-1) - field for t in range(data.shape[3])])


def source_volumes(path: Path) -> list[int]:
    """Which source volume (``t``) each volume of a written file is; fails unless every voxel agrees."""
    diff = world_values(path)
    out = []
    for row in diff:
        t = round(float(row.mean()) / VOLUME_STEP)
        np.testing.assert_allclose(row, VOLUME_STEP * t, atol=0.51)
        out.append(t)
    return out


def ped_world(sidecar: dict[str, Any], nii: Path) -> tuple[float, ...]:
    """The PhaseEncodingDirection of a sidecar as a RAS vector through its NIfTI's affine (files written
    with different voxel axes agree here)."""
    ped = sidecar["PhaseEncodingDirection"]
    axis = nib.load(str(nii)).affine[:3, "ijk".index(ped[0])]
    return tuple(np.round(-axis if ped.endswith("-") else axis, 3) + 0.0)


def converted(src: Path, out: Path) -> dict[str, tuple[dict[str, Any], Path]]:
    """volume's outputs by stem: (sidecar, NIfTI)."""
    results = convert(src, out)
    assert all(r.status == "converted" for r in results), [r.message for r in results]
    return {p.name[: -len(".json")]: (json.loads(p.read_text()), p.with_name(p.name[: -len(".json")] + ".nii.gz"))
            for p in sorted(out.glob("*.json"))}


def dcm2niix_outputs(exe: str, src: Path, out: Path) -> dict[str, tuple[dict[str, Any], Path]]:
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run([exe, "-z", "n", "-f", "%s_%p", "-o", str(out), str(src)], check=True, capture_output=True,
                   timeout=60)
    return {p.stem: (json.loads(p.read_text()), p.with_suffix(".nii")) for p in sorted(out.glob("*.json"))}


# --- what volume makes of each mode ------------------------------------------------------------------


@pytest.mark.parametrize(("mode", "ped", "polarity"), [(0, "j", "Unflipped"), (1, "j-", "Flipped")])
def test_one_polarity_series_is_one_stack(tmp_path: Path, mode: int, ped: str, polarity: str) -> None:
    """User data 12 = 0: every volume forward, as the header says; 1: every volume reversed, the
    polarity toggled and the rows put back where the geometry says. One stack either way."""
    write_pepolar(tmp_path / "in", 3, mode)
    (stack,) = volume.scan(tmp_path / "in").stacks
    assert (stack.id, stack.n_frames, stack.warnings) == ("7", 3, [])
    ((sidecar, nii),) = converted(tmp_path / "in", tmp_path / "out").values()
    assert source_volumes(nii) == [0, 1, 2]
    assert (sidecar["PhaseEncodingDirection"], sidecar["PhaseEncodingPolarityGE"]) == (ped, polarity)
    assert "PhaseEncodingDirection" not in sidecar.get("OmittedFields", {})


@pytest.mark.parametrize(("mode", "forward", "reversed_"), [(2, [1, 3], [0, 2]), (3, [0, 2], [1, 3])])
def test_alternating_series_is_two_stacks_of_opposite_polarity(tmp_path: Path, mode: int, forward: list[int],
                                                               reversed_: list[int]) -> None:
    """User data 12 = 2 (reversed then forward) or 3 (forward then reversed): the reversed volumes are
    their own stack (``_rev``) with the opposite PhaseEncodingDirection, their rows put back; the
    forward ones keep the header's polarity. Every voxel is where the geometry says."""
    write_pepolar(tmp_path / "in", 4, mode)
    stacks = {s.id: s for s in volume.scan(tmp_path / "in").stacks}
    assert sorted(stacks) == ["7", "7_rev"]
    assert [s.n_frames for s in stacks.values()] == [2, 2]
    outputs = converted(tmp_path / "in", tmp_path / "out")
    assert sorted(outputs) == ["7_fMRI_FM", "7_fMRI_FM_rev"]
    fwd, rev = outputs["7_fMRI_FM"], outputs["7_fMRI_FM_rev"]
    assert source_volumes(fwd[1]) == forward
    assert source_volumes(rev[1]) == reversed_
    assert (fwd[0]["PhaseEncodingDirection"], fwd[0]["PhaseEncodingPolarityGE"]) == ("j", "Unflipped")
    assert (rev[0]["PhaseEncodingDirection"], rev[0]["PhaseEncodingPolarityGE"]) == ("j-", "Flipped")


def test_reversed_volumes_are_upside_down_without_the_convention(tmp_path: Path) -> None:
    """The same files under another PSD name: nothing says the rows are reversed, so the reversed
    volumes come out as stored, upside down in the world (what the convention corrects)."""
    write_pepolar(tmp_path / "in", 2, 1, psd="research/ABCD/epi")
    ((_sidecar, nii),) = converted(tmp_path / "in", tmp_path / "out").values()
    diff = world_values(nii)
    assert not np.allclose(diff[0], 0.0, atol=0.51)  # volume 0 is not where the geometry says
    loaded = volume.load(tmp_path / "in")
    np.testing.assert_allclose(loaded.array[0], world_field(0)[:, ::-1, :], atol=0.51)  # as stored


# --- where the files do not say: never guessed -------------------------------------------------------


@pytest.mark.parametrize(("mode", "temporal", "why"), [
    (None, True, "without a user data 12 (0019,10B3)"),
    (2, False, "no volume number (TemporalPositionIdentifier, 0020,0100)"),
])
def test_unknown_polarity_is_left_out(tmp_path: Path, capsys, mode: int | None, temporal: bool, why: str) -> None:
    """Without user data 12, or an alternating series without volume numbers, which volumes are
    reversed is unknown: one stack, a warning that some volumes may be upside down, and no
    PhaseEncodingDirection (only the axis), with the reason in the sidecar and on stderr."""
    write_pepolar(tmp_path / "in", 2, mode if mode is not None else None, temporal=temporal)
    (stack,) = volume.scan(tmp_path / "in").stacks
    assert any("may be upside down" in w for w in stack.warnings), stack.warnings
    code = main(["convert", str(tmp_path / "in"), "-o", str(tmp_path / "out")])
    assert code == 0
    err = capsys.readouterr().err
    assert "PhaseEncodingDirection left out" in err and why in err
    (sidecar,) = [json.loads(p.read_text()) for p in (tmp_path / "out").glob("*.json")]
    assert "PhaseEncodingDirection" not in sidecar and "PhaseEncodingPolarityGE" not in sidecar
    assert sidecar["PhaseEncodingAxis"] == "j"
    assert why in sidecar["OmittedFields"]["PhaseEncodingDirection"]


def test_row_phase_encoding_reversed_volumes_are_written_as_stored(tmp_path: Path) -> None:
    """GE's reversed row order is documented for COL phase encoding only: with ROW, the reversed
    stack's pixels are written as stored, with a warning, and its PhaseEncodingDirection left out."""
    write_pepolar(tmp_path / "in", 2, 2, phase="ROW")
    stacks = {s.id: s for s in volume.scan(tmp_path / "in").stacks}
    assert stacks["7"].warnings == []
    assert any("written as stored" in w for w in stacks["7_rev"].warnings)
    outputs = converted(tmp_path / "in", tmp_path / "out")
    rev_sidecar, rev_nii = outputs["7_fMRI_FM_rev"]
    stored = world_field(0)[:, ::-1, :]  # what the file holds
    loaded = volume.load(tmp_path / "in", series="7_rev")
    np.testing.assert_allclose(loaded.array, stored, atol=0.51)
    assert "PhaseEncodingDirection" not in rev_sidecar
    assert "documented for COL only" in rev_sidecar["OmittedFields"]["PhaseEncodingDirection"]
    assert outputs["7_fMRI_FM"][0]["PhaseEncodingDirection"] == "i"
    assert rev_nii.exists()


# --- BIDS: two field maps of opposite dir- -----------------------------------------------------------


def test_bids_sees_two_epi_field_maps_of_opposite_direction(tmp_path: Path) -> None:
    """``volume bids`` puts both stacks of an alternating epi_pepolar series in fmap/ as ``_epi``,
    with opposite ``dir-`` labels."""
    write_pepolar(tmp_path / "in", 4, 2, readout=True)
    code = main(["bids", str(tmp_path / "in"), "-o", str(tmp_path / "bids"), "--subject", "01"])
    assert code == 0
    names = sorted(p.name for p in (tmp_path / "bids").rglob("*_epi.nii.gz"))
    assert len(names) == 2, names
    dirs = sorted(n.split("dir-")[1].split("_")[0] for n in names)
    assert dirs == ["AP", "PA"]


# --- as dcm2niix reads the same files ----------------------------------------------------------------


@pytest.mark.parametrize("mode", [0, 1, 2, 3])
def test_as_dcm2niix_converts_them(tmp_path: Path, dcm2niix: str, mode: int) -> None:
    """dcm2niix on the same files: the same split (its reversed volumes as series + 1000), the same
    voxels in the world for every volume, the same PhaseEncodingDirection and PhaseEncodingPolarityGE."""
    write_pepolar(tmp_path / "in", 4, mode)
    ours = converted(tmp_path / "in", tmp_path / "v")
    theirs = dcm2niix_outputs(dcm2niix, tmp_path / "in", tmp_path / "d")
    names = {"7_fMRI_FM": "7_fMRI_FM", "7_fMRI_FM_rev": "1007_fMRI_FM"}
    if mode in (0, 1):
        names = {"7_fMRI_FM": "7_fMRI_FM"}  # one polarity: no split (all reversed: no + 1000 either)
    assert sorted(ours) == sorted(names) and sorted(theirs) == sorted(names.values())
    for stem, their_stem in names.items():
        (ours_json, ours_nii), (their_json, their_nii) = ours[stem], theirs[their_stem]
        assert source_volumes(ours_nii) == source_volumes(their_nii)
        assert ped_world(ours_json, ours_nii) == ped_world(their_json, their_nii)
        assert ours_json["PhaseEncodingPolarityGE"] == their_json["PhaseEncodingPolarityGE"]


def test_dcm2niix_guesses_where_the_files_do_not_say(tmp_path: Path, dcm2niix: str) -> None:
    """dcm2niix's mistake, named: without user data 12 it takes mode 0 (its default), every volume
    forward, and writes a PhaseEncodingDirection for a series whose reversed volumes it cannot
    know; volume leaves it out (test above)."""
    write_pepolar(tmp_path / "in", 2, None)
    ((their_json, their_nii),) = dcm2niix_outputs(dcm2niix, tmp_path / "in", tmp_path / "d").values()
    forward = write_pepolar(tmp_path / "fwd", 2, 0)
    ((fwd_json, fwd_nii),) = converted(forward, tmp_path / "v").values()
    assert ped_world(their_json, their_nii) == ped_world(fwd_json, fwd_nii)
    assert their_json["PhaseEncodingPolarityGE"] == "Unflipped"

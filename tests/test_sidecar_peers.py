"""volume's whole sidecar against dcm2niix's, on every series of the peers' suites (issue 20).

For each series of ``../shared/data/peers``: dcm2niix's sidecar (the ``Ref/*.json`` of the
``dcm_qa_*`` suites; for dicom2nifti's cases, the ``dcm2niix`` binary run here once per module)
and volume's. Every key dcm2niix writes that is not patient identity (:mod:`volume.phi` decides)
must be in volume's sidecar with the same value (numbers within 1e-4 relative; the phase-encoding
direction as a world direction and slice times by slice position, since the two files store rows
in opposite orders; AcquisitionTime as a time of day within a millisecond), and the NIfTI's
pixdim[4] must be the repetition time. Where dcm2niix is wrong, the difference is named in
:data:`DCM2NIIX_MISTAKES` with its reason; dcm2niix's own renderings of a value are
``peers.DCM2NIIX_RENDERINGS``.
"""

from __future__ import annotations

import fnmatch
import json
import subprocess
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest
from conftest import DATA
from peers import matching_sidecar, same_value, whole_sidecar_differences

from volume.jobs.convert import ConvertOptions, convert

PEERS = DATA / "peers"
D2N = PEERS / "dicom2nifti" / "tests" / "data"
QA_SUITES = ("dcm_qa_nih", "dcm_qa_philips_dwi", "dcm_qa_ts", "dcm_qa_12bit", "dcm_qa_enh", "dcm_qa_stc")

pytestmark = pytest.mark.skipif(not PEERS.is_dir(), reason=f"peers' test suites not found at {PEERS}")

#: Differences that are dcm2niix's mistakes: (case pattern, key) -> why volume writes otherwise.
DCM2NIIX_MISTAKES: dict[tuple[str, str], str] = {
    ("dcm_qa_enh/Philips_WIP_B0_NS_801_e1", "ScanningSequence"):
        "dcm2niix keeps the last ScanningSequence of the file (RM, the field-map frames'); the magnitude "
        "frames of this stack say GR",
    ("dcm_qa_enh/Philips_WIP_B0_NS_801_e2_fieldmaphz", "EchoNumber"):
        "dcm2niix numbers the echoes it splits itself; the file's EchoNumbers (0018,0086) is 1 in every frame",
    ("dcm_qa_stc/GE_Brain_Routine_*", "TablePosition"):
        "the dcm2niix that wrote this Ref (v1.0.20260416) read it from another element (3e-09 mm); the "
        "current dcm2niix reads GE's (0043,10B2), which these files lack, and writes none",
    ("dcm_qa_stc/GE_Zugfahrt_test_4_15", "TablePosition"):
        "the same older reading: 1.5e19 mm; the current dcm2niix writes none",
    ("dcm_qa_stc/GE_Brain_Routine_4", "TriggerDelayTime"):
        "GE's TriggerTime (0018,1060) of this epi series is the first image's slice time (dcm_qa_stc's "
        "README), not a delay after a trigger",
    ("dicom2nifti/*", "ProtocolName"):
        "the files have no ProtocolName (0018,1030); dcm2niix writes their SequenceName (or SeriesDescription) "
        "in its place",
    ("dicom2nifti/philips_enhanced/*", "TablePosition"):
        "(2005,143C) holds -1.7e38, the largest float (no position); dcm2niix writes it as a table position",
    ("dicom2nifti/siemens/fmri/*", "SliceTiming"):
        "dcm2niix splits this mosaic (no CSA image header) into all 64 tiles of its 8x8 grid; the protocol's "
        "slice array (sSliceArray.lSize) has 50 slices, and volume writes their 50 times",
    ("dicom2nifti/siemens/dti/*", "ReconMatrixPE"):
        "dcm2niix does not split these mosaics (no CSA image header): 1344 is the whole mosaic's width, not "
        "the image's 192",
    ("dicom2nifti/siemens/*_classic/*", "MultibandAccelerationFactor"):
        "dcm2niix counts the slices that share the first slice time; these files give no slice times (its "
        "warning: 'Bogus slice timing (range -1..-1)'), so all four 'share' -1",
    ("dicom2nifti/siemens/*_classic/*", "PulseSequenceType"):
        "follows that multiband factor (Multiband Gradient Echo EPI); the files say single-band",
}

#: References whose DICOM input is not in this copy of the suites.
WITHOUT_INPUT = {
    "dcm_qa_enh": {"Canon_DTI_PA-ortho_9000", "Philips_WIP_AnatBrain_T1W3D_301", "Philips_WIP_AnatBrain_T1W3D_301_ph",
                   "Philips_WIP_resting_state_1001_e1", "Philips_WIP_resting_state_1001_e2"},
    "dcm_qa_philips_dwi": {"701_DTI_Biobank_2mm_MB3S2_EPI_enh"},
}


# --- the two converters' outputs ---------------------------------------------------------------------


def _qa_cases() -> list[str]:
    return [f"{suite}/{p.stem}" for suite in QA_SUITES for p in sorted((PEERS / suite / "Ref").glob("*.json"))
            if p.stem not in WITHOUT_INPUT.get(suite, set())]


def _d2n_cases() -> list[str]:
    return sorted(str(p.relative_to(D2N)) for p in D2N.glob("*/*/*") if p.is_dir()) if D2N.is_dir() else []


@pytest.fixture(scope="module")
def volume_outputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """volume's outputs: one folder per QA suite and per dicom2nifti case (each converted once)."""
    root = tmp_path_factory.mktemp("volume")
    for suite in QA_SUITES:
        if (PEERS / suite / "In").is_dir():
            results = convert(PEERS / suite / "In", root / suite)
            assert all(r.status == "converted" for r in results), [r.message for r in results]
    for case in _d2n_cases():
        results = convert(D2N / case, root / "dicom2nifti" / case, ConvertOptions())
        assert all(r.status == "converted" for r in results), [r.message for r in results]
    return root


@pytest.fixture(scope="module")
def dcm2niix_outputs(tmp_path_factory: pytest.TempPathFactory, dcm2niix: str) -> Path:
    """dcm2niix's outputs for dicom2nifti's cases (the QA suites keep theirs in Ref/)."""
    root = tmp_path_factory.mktemp("dcm2niix")
    for case in _d2n_cases():
        out = root / case
        out.mkdir(parents=True)
        subprocess.run([dcm2niix, "-z", "n", "-f", "%s_%p", "-o", str(out), str(D2N / case)],
                       capture_output=True, timeout=120, check=False)
    return root


# --- the comparison ---------------------------------------------------------------------------------


def _named(case: str, key: str) -> str:
    for (pattern, name), why in DCM2NIIX_MISTAKES.items():
        if name == key and fnmatch.fnmatch(case, pattern):
            return why
    return ""


def sidecar_differences(case: str, ours_json: Path, ref: dict[str, Any], ref_affine: np.ndarray | None) -> list[str]:
    """:func:`peers.whole_sidecar_differences` of volume's sidecar and NIfTI at ``ours_json``, the
    differences named for ``case`` left out."""
    ours = json.loads(ours_json.read_text())
    img = nib.load(str(ours_json.with_suffix(".nii.gz")))
    return whole_sidecar_differences(ours, img, ref, ref_affine, skip=lambda key: bool(_named(case, key)))


@pytest.mark.parametrize("case", _qa_cases())
def test_sidecar_has_every_key_dcm2niix_writes_qa(volume_outputs: Path, case: str) -> None:
    """The dcm_qa_* suites: dcm2niix's Ref sidecar against volume's."""
    suite, name = case.split("/")
    ref_json = PEERS / suite / "Ref" / f"{name}.json"
    ref = json.loads(ref_json.read_text())
    ref_nii = ref_json.with_suffix(".nii")
    ref_affine = nib.load(str(ref_nii)).affine if ref_nii.exists() else None
    ours = matching_sidecar(ref, volume_outputs / suite, prefer_4d=True)
    assert sidecar_differences(case, ours, ref, ref_affine) == []


@pytest.mark.parametrize("case", _d2n_cases())
def test_sidecar_has_every_key_dcm2niix_writes_dicom2nifti(volume_outputs: Path, dcm2niix_outputs: Path,
                                                           case: str) -> None:
    """dicom2nifti's cases: the dcm2niix binary's sidecar against volume's."""
    theirs = [p for p in sorted((dcm2niix_outputs / case).glob("*.json")) if "_ADC" not in p.name]
    assert theirs, f"dcm2niix wrote no sidecar for {case}"
    for ref_json in theirs:
        ref = json.loads(ref_json.read_text())
        ref_affine = nib.load(str(ref_json.with_suffix(".nii"))).affine
        ours = matching_sidecar(ref, volume_outputs / "dicom2nifti" / case, prefer_4d=True)
        assert sidecar_differences(f"dicom2nifti/{case}", ours, ref, ref_affine) == [], ref_json.name


def test_named_differences_still_happen(volume_outputs: Path) -> None:
    """Each mistake named for a QA Ref is still a difference (a fixed one must leave the list)."""
    for (pattern, key), _why in DCM2NIIX_MISTAKES.items():
        if pattern.startswith("dicom2nifti/"):
            continue
        cases = [c for c in _qa_cases() if fnmatch.fnmatch(c, pattern)]
        assert cases, pattern
        for case in cases:
            suite, name = case.split("/")
            ref = json.loads((PEERS / suite / "Ref" / f"{name}.json").read_text())
            ours = json.loads(matching_sidecar(ref, volume_outputs / suite, prefer_4d=True).read_text())
            assert key in ref and not same_value(ours.get(key), ref[key]), (case, key)

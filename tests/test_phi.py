"""The identity policy itself (volume.phi): its table is PS3.15's, its answers, and start-up cost.

What every output does with it is tested channel by channel in ``test_phi_leak.py``.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest
from pydicom.datadict import dictionary_VR, keyword_for_tag

from volume import phi
from volume.dicom.headers import ACQUISITION_KEYWORDS, IDENTITY_KEYWORDS


def test_table_is_pydicoms_dictionary():
    """Every row of the transcribed Table E.1-1 names a real attribute by its own tag and keyword."""
    assert len(phi.BASIC_PROFILE) == 456
    actions = {"D", "Z", "X", "U", "X/Z", "X/D", "Z/D", "X/Z/D", "X/Z/U*"}
    for keyword, (tag, action) in phi.BASIC_PROFILE.items():
        assert keyword_for_tag(tag) == keyword, f"{tag:08X}"
        assert action in actions, keyword
    for keyword, (tag, _why) in phi.EXTRA.items():
        assert keyword_for_tag(tag) == keyword and keyword not in phi.BASIC_PROFILE


@pytest.mark.parametrize("keyword, action", [
    ("PatientName", "Z"), ("PatientID", "Z"), ("PatientBirthDate", "Z"), ("PatientSex", "Z"),
    ("PatientAge", "X"), ("PatientWeight", "X"), ("OtherPatientIDsSequence", "X"), ("AccessionNumber", "Z"),
    ("StudyID", "Z"), ("InstitutionName", "X/Z/D"), ("StationName", "X/Z/D"), ("DeviceSerialNumber", "X/Z/D"),
    ("ReferringPhysicianName", "Z"), ("StudyInstanceUID", "U"), ("SeriesInstanceUID", "U"),
    ("SOPInstanceUID", "U"), ("FrameOfReferenceUID", "U"), ("StudyDate", "Z"), ("AcquisitionDateTime", "X/Z/D"),
    ("ContentDate", "Z/D"), ("SeriesDescription", "X"), ("ProtocolName", "X/D"), ("AcquisitionTime", "X/Z"),
])
def test_known_rows_of_the_profile(keyword, action):
    """Spot checks against the standard's text (PS3.15 Table E.1-1)."""
    assert phi.BASIC_PROFILE[keyword][1] == action


def test_identity_answers():
    assert phi.is_identity("PatientName") and phi.is_identity(0x00100010)
    assert phi.is_identity("StudyDate") and phi.is_identity("StudyInstanceUID")
    assert phi.is_identity("InstanceCreationDate")  # beyond the table (EXTRA)
    for kept in phi.RETAINED:  # in the table, retained under an option
        assert kept in phi.BASIC_PROFILE and not phi.is_identity(kept)
        assert not phi.is_identity(phi.BASIC_PROFILE[kept][0])
    for plain in ("Rows", "ImagePositionPatient", "Manufacturer", "EchoTime", "SeriesNumber", "Modality"):
        assert not phi.is_identity(plain)
    # any date, wherever it stands (here one the table does not list)
    assert phi.is_identity("FrameAcquisitionDateTime", "DT") and phi.is_identity(0x00181012, "DA")
    assert not phi.is_identity("FrameAcquisitionDateTime")
    # private data, curves and overlays by tag; a private creator only names the vendor
    assert phi.is_identity(0x00291010) and phi.is_identity(0x0019100C)
    assert not phi.is_identity(0x00290010) and phi.is_private(0x00290010)
    assert phi.is_identity(0x50003000) and phi.is_identity(0x60023000) and phi.is_identity(0x60004000)
    assert not phi.is_identity(0x60000010)  # overlay rows: geometry, not content


def test_strip_and_uid_key():
    meta = {"PatientName": "Doe^Jane", "SeriesDescription": "T1", "EchoTime": 4.2, "StudyDate": "20240101"}
    assert phi.strip(meta) == {"SeriesDescription": "T1", "EchoTime": 4.2}
    uid = "1.2.840.113619.2.55.3.1"
    assert phi.uid_key(uid) == hashlib.sha256(uid.encode()).hexdigest()[:16]
    assert phi.uid_key(f" {uid}\x00") == phi.uid_key(uid)
    assert phi.uid_key(None) is None and phi.uid_key("") is None


def test_deidentification_method_fits_lo():
    values = phi.deidentification_method("0.1.0", ("SeriesDescription", "ProtocolName"))
    assert values[0] == "volume 0.1.0" and "Basic Application Confidentiality Profile" in values[1]
    assert "SeriesDescription" in values[2] and "ProtocolName" in values[2]
    assert all(len(v) <= 64 for v in values)  # LO
    assert phi.PROFILE_CODE == ("113100", "DCM", "Basic Application Confidentiality Profile")


def test_scanner_reads_identity_the_policy_names():
    """The scanner carries exactly the policy's CARRIED identity, and nothing else it reads as
    acquisition parameters is identity."""
    assert IDENTITY_KEYWORDS == phi.CARRIED
    assert all(phi.is_identity(kw, dictionary_VR(kw)) for kw in phi.CARRIED)
    leaked = [kw for kw in ACQUISITION_KEYWORDS if phi.is_identity(kw, dictionary_VR(kw))]
    assert leaked == []


def test_import_is_light():
    """The CLI imports the policy early: no numpy, no pydicom."""
    code = "import sys, volume.phi; print(sorted(m for m in ('numpy', 'pydicom') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"

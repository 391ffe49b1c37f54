"""Every output channel against one identity policy (issue 17; issue 9 before it).

The source series holds a unique marker in every identity field PS3.15's Basic Profile names that a
scanner writes (names, IDs, birth date and time, sex, age, weight, size, addresses, physicians,
operators, institution, department, station, device serial, accession number, study ID and
description, comments, every date and time, study/series/SOP/frame-of-reference UIDs, a private
element, a sequence of other patient IDs), and a marker in each field the policy retains.

Every channel runs on it: ``ls`` (table and ``--json``), ``info`` (text and ``--json``), ``index``
(CSV and Parquet), ``convert`` (NIfTI, sidecar, ``--report``), ``mip``/``reslice`` (``.dcm``, PNG,
NIfTI), ``png`` (8-bit, ``--raw16`` text chunks, JPEG), ``render``, ``mesh``, the web page title,
and stderr of failing commands. Without ``--keep-phi`` no identity marker may appear in any byte of
any file written (gzip streams inflated, PNG text chunks decoded, Parquet read), any file name,
stdout or stderr. With ``--keep-phi`` each channel meant to carry identity carries it (so the search
is not blind), and the channels agree on *what* is identity: what ``info`` hides, what ``index``
refuses, what sidecars and DICOM outputs leave out are the same keywords, ``volume.phi``'s.
"""

from __future__ import annotations

import gzip
import io
import json
import shutil
import subprocess
import sys
import zlib
from pathlib import Path

import pydicom
import pytest
import synth
from pydicom.dataset import Dataset

from volume import phi
from volume.cli import main

UID_ROOT = "1.2.826.0.1.3680043.10.543."

#: One unique marker per identity field (keyword -> the value written into every source file).
IDENTITY = {
    "PatientName": "Mkpatient^Mkquorra",
    "PatientID": "MK-PID-4471",
    "IssuerOfPatientID": "MK-ISSUER-3101",
    "OtherPatientIDs": "MK-OTHERID-8802",
    "OtherPatientNames": "Mkothername^Mkilse",
    "PatientBirthName": "Mkbirthname^Mktova",
    "PatientMotherBirthName": "Mkmother^Mksalka",
    "PatientBirthDate": "19030405",
    "PatientBirthTime": "131314.131314",
    "PatientSex": "MKSEXQ",
    "PatientAge": "093Y",
    "PatientWeight": "87.654321",
    "PatientSize": "1.98765",
    "PatientAddress": "Mkpataddress Road 99",
    "PatientTelephoneNumbers": "MKPHONE5550199",
    "MedicalRecordLocator": "MKMRL6161",
    "PatientComments": "Mkpatcomment",  # LT: pydicom prints up to 16 characters
    "AdditionalPatientHistory": "Mkhistory text",
    "Occupation": "MKOCCUPATION",
    "EthnicGroup": "MKETHNIC",
    "MilitaryRank": "MKRANKQ",
    "PatientReligiousPreference": "MKRELIGION",
    "AccessionNumber": "MKACC5521",
    "StudyID": "MKSTUDY42",
    "StudyDescription": "Mkstudydesc chest",
    "AdmissionID": "MKADM1919",
    "RequestedProcedureDescription": "Mkrequestedproc",
    "PerformedProcedureStepID": "MKPPS7777",
    "PerformedProcedureStepDescription": "Mkppsdescription",
    "ReferringPhysicianName": "Mkreferrer^Mkzed",
    "PerformingPhysicianName": "Mkperformer^Mkyun",
    "NameOfPhysiciansReadingStudy": "Mkreader^Mkxia",
    "OperatorsName": "Mkoperator^Mkwim",
    "PhysiciansOfRecord": "Mkrecord^Mkvee",
    "RequestingPhysician": "Mkrequester^Mkuma",
    "InstitutionName": "Mkinstitution Hospital",
    "InstitutionAddress": "Mkinstaddress Lane 12",
    "InstitutionalDepartmentName": "Mkdepartment Imaging",
    "StationName": "MKSTATION9",
    "DeviceSerialNumber": "MKSERIAL7310",
    "ContrastBolusAgent": "Mkcontrastagent",
    "ImageComments": "Mkimagecomment",
    "DerivationDescription": "Mkderivation text",
    "StudyDate": "19110912",
    "SeriesDate": "19120913",
    "AcquisitionDate": "19130914",
    "ContentDate": "19140915",
    "InstanceCreationDate": "19150916",
    "AcquisitionDateTime": "19160917101112.131415",
    "StudyTime": "071707.071707",
    "SeriesTime": "081808.081808",
    "ContentTime": "091909.091909",
    "InstanceCreationTime": "101011.101011",
    "TimezoneOffsetFromUTC": "+0937",
    "StudyInstanceUID": UID_ROOT + "7001",
    "SeriesInstanceUID": UID_ROOT + "7002",
    "FrameOfReferenceUID": UID_ROOT + "7003",
}
PRIVATE_CREATOR, PRIVATE_VALUE = "ACME PRIVATE 1", "Mkprivate secret"
SEQUENCE_PATIENT_ID = "MK-SEQPID-5555"

#: Markers in the fields the policy retains (they may and do appear in outputs).
RETAINED = {"SeriesDescription": "Mkseries Axial", "ProtocolName": "Mkprotocol T1", "AcquisitionTime": "121314.151617"}


def tokens(keyword: str, value: str) -> list[str]:
    """The texts a marker could be written as: itself, a name's parts, a date or time reformatted."""
    out = [value]
    if "^" in value:
        out += value.split("^")
    if keyword.endswith("Date") or keyword.endswith("DateTime"):
        out += [value[:8], f"{value[:4]}-{value[4:6]}-{value[6:8]}"]
    if keyword.endswith("Time") and not keyword.endswith("DateTime"):
        out.append(f"{value[:2]}:{value[2:4]}:{value[4:6]}")
    return out


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> dict:
    """Two identified series (CT axial, MR coronal); every UID written is a secret too."""
    root = tmp_path_factory.mktemp("phi") / "src"
    synth.write_series(root / "a", shape=(5, 8, 7), extra={**IDENTITY, **RETAINED}, series_number=3,
                       description=RETAINED["SeriesDescription"], modality="CT", intercepts=-1024,
                       series_uid=IDENTITY["SeriesInstanceUID"], study_uid=IDENTITY["StudyInstanceUID"])
    b_identity = {k: v for k, v in IDENTITY.items() if not k.endswith("UID")}
    synth.write_series(root / "b", shape=(4, 8, 7), extra={**b_identity, **RETAINED}, series_number=4,
                       iop=synth.CORONAL, description="coronal")
    uids = set()
    for p in sorted(root.rglob("*")):
        if not p.is_file():
            continue
        ds = pydicom.dcmread(p)
        ds.add_new(0x00290010, "LO", PRIVATE_CREATOR)
        ds.add_new(0x00291010, "LO", PRIVATE_VALUE)
        item = Dataset()
        item.PatientID = SEQUENCE_PATIENT_ID
        item.TypeOfPatientID = "TEXT"
        ds.OtherPatientIDsSequence = [item]
        ds.save_as(p, enforce_file_format=True)
        uids |= {ds.SOPInstanceUID, ds.SeriesInstanceUID, ds.StudyInstanceUID, ds.FrameOfReferenceUID,
                 ds.file_meta.MediaStorageSOPInstanceUID}
    secrets = sorted({t for kw, v in IDENTITY.items() for t in tokens(kw, v)} | uids
                     | {PRIVATE_VALUE, SEQUENCE_PATIENT_ID})
    return {"root": root, "secrets": secrets, "first": sorted((root / "a").iterdir())[0]}


def test_markers_are_identity_and_retained_are_not():
    """The test's own list of identity fields is the policy's, field by field."""
    assert all(phi.is_identity(kw) for kw in IDENTITY), [kw for kw in IDENTITY if not phi.is_identity(kw)]
    assert not any(phi.is_identity(kw) for kw in RETAINED) and set(RETAINED) == set(phi.RETAINED)
    assert set(phi.CARRIED) <= set(IDENTITY)  # every carried field has a marker: keep-phi checks are complete
    assert phi.is_identity(0x00291010) and not phi.is_identity(0x00290010)


# --- the search ---------------------------------------------------------------------------------


def file_texts(path: Path) -> list[bytes]:
    """The bytes of ``path`` and every decoded layer a secret could hide in."""
    raw = path.read_bytes()
    texts = [raw]
    if raw[:2] == b"\x1f\x8b":
        texts.append(gzip.decompress(raw))
    if path.suffix.lower() in (".png", ".gif", ".jpg", ".jpeg", ".tif", ".tiff"):
        from PIL import Image

        with Image.open(path) as im:
            texts.append(repr(im.info).encode("utf-8", "replace"))
            texts.append(repr(getattr(im, "text", {})).encode("utf-8", "replace"))
            texts.append(repr(dict(im.getexif())).encode("utf-8", "replace"))
        pos = 8  # compressed PNG text chunks (zTXt, iTXt) inflated by hand as well
        while path.suffix.lower() == ".png" and pos + 8 <= len(raw):
            length = int.from_bytes(raw[pos:pos + 4], "big")
            kind = raw[pos + 4:pos + 8]
            body = raw[pos + 8:pos + 8 + length]
            if kind in (b"zTXt", b"iTXt", b"iCCP"):
                try:
                    texts.append(zlib.decompress(body[body.index(b"\x00") + 2:]))
                except (ValueError, zlib.error):
                    pass
            pos += 12 + length
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        texts.append(repr(pq.read_table(path).to_pylist()).encode())
        texts.append(repr(pq.read_metadata(path).metadata).encode())
    return texts


def found(secrets: list[str], folder: Path | None, *streams: str) -> list[str]:
    """Every secret found, as ``where: secret``, in file names and bytes under ``folder`` and in ``streams``."""
    hits = []
    for p in sorted(folder.rglob("*")) if folder is not None and folder.exists() else []:
        hits += [f"name {p.name}: {s}" for s in secrets if s.lower() in p.name.lower()]
        if not p.is_file():
            continue
        for blob in file_texts(p):
            low = blob.lower()
            for s in secrets:
                for enc in ("utf-8", "utf-16-le"):
                    if s.lower().encode(enc) in low:
                        hits.append(f"{p.name}: {s} ({enc})")
    for text in streams:
        hits += [f"stream: {s}" for s in secrets if s.lower() in text.lower()]
    return sorted(set(hits))


def test_the_search_sees_through_gzip_png_text_and_parquet(tmp_path):
    from PIL import Image, PngImagePlugin

    (tmp_path / "a.json.gz").write_bytes(gzip.compress(b'{"PatientName": "Mkpatient^Mkquorra"}'))
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "MK-PID-4471 " * 20, zip=True)
    Image.new("L", (4, 4)).save(tmp_path / "b.png", pnginfo=info)
    buf = io.BytesIO()
    Image.new("L", (4, 4)).save(buf, format="PNG")
    (tmp_path / "c.png").write_bytes(buf.getvalue())
    hits = found(["Mkquorra", "MK-PID-4471"], tmp_path, "date 1903-04-05")
    assert any(h.startswith("a.json.gz") for h in hits) and any(h.startswith("b.png") for h in hits)
    assert not any(h.startswith("c.png") for h in hits)
    assert found(tokens("PatientBirthDate", "19030405"), None, "born 1903-04-05") == ["stream: 1903-04-05"]


def run(args: list, capfd) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capfd.readouterr()
    return code, out, err


# --- without --keep-phi: no channel carries identity ----------------------------------------------

#: Every output channel (argv given the source folder, one series, the first file, an output folder).
CHANNELS = {
    "ls": lambda src, one, f, out: ["ls", src],
    "ls-json": lambda src, one, f, out: ["ls", src, "--json"],
    "info": lambda src, one, f, out: ["info", f],
    "info-json": lambda src, one, f, out: ["info", f, "--json"],
    "index-csv": lambda src, one, f, out: ["index", src, "-o", out / "i.csv", "--workers", "1"],
    "index-parquet": lambda src, one, f, out: ["index", src, "-o", out / "i.parquet", "--workers", "1"],
    "convert-report": lambda src, one, f, out: ["convert", src, "-o", out, "--report", out / "report.json"],
    "convert-nii": lambda src, one, f, out: ["convert", src, "-o", out, "-f", "nii"],
    "mip-dcm": lambda src, one, f, out: ["mip", one, "-o", out / "m.dcm"],
    "mip-png": lambda src, one, f, out: ["mip", src, "-o", out, "--planes", "all"],
    "mip-nifti": lambda src, one, f, out: ["mip", one, "-o", out / "m.nii.gz"],
    "mip-slabs": lambda src, one, f, out: ["mip", one, "-o", out, "--slab", "4"],
    "reslice-dcm": lambda src, one, f, out: ["reslice", one, "--spacing", "2", "--format", "dcm", "-o", out / "series"],
    "reslice-nifti": lambda src, one, f, out: ["reslice", one, "--spacing", "2", "-o", out / "r.nii.gz"],
    "reslice-png": lambda src, one, f, out: ["reslice", one, "--plane", "coronal", "-o", out],
    "png": lambda src, one, f, out: ["png", src, "-o", out, "--workers", "1"],
    "png-raw16": lambda src, one, f, out: ["png", one, "-o", out, "--raw16", "--workers", "1"],
    "jpg": lambda src, one, f, out: ["png", one, "-o", out, "--format", "jpg", "--workers", "1"],
    "render-png": lambda src, one, f, out: ["render", one, "--size", "40x40", "-o", out / "r.png"],
    "render-gif": lambda src, one, f, out: ["render", one, "--size", "32x32", "--turntable", "3", "-o", out / "t.gif"],
    "mesh-stl": lambda src, one, f, out: ["mesh", one, "--level", "960", "-o", out / "m.stl"],
    "mesh-ply": lambda src, one, f, out: ["mesh", one, "--level", "960", "-o", out / "m.ply"],
    "mesh-obj": lambda src, one, f, out: ["mesh", one, "--level", "960", "-o", out / "m.obj"],
}


@pytest.mark.parametrize("name", list(CHANNELS))
def test_no_channel_carries_identity(source, tmp_path, capfd, name):
    out = tmp_path / "out"
    src = source["root"]
    code, stdout, stderr = run(CHANNELS[name](src, src / "a", source["first"], out), capfd)
    assert code == 0, stderr
    if not name.startswith(("ls", "info")):
        assert any(p.is_file() for p in out.rglob("*")), "nothing written"
    assert found(source["secrets"], out, stdout, stderr) == []


def test_retained_fields_are_where_the_policy_says(source, tmp_path, capfd):
    """Series description (stack and file names), protocol name and acquisition time (sidecars)."""
    code, stdout, _ = run(["convert", source["root"] / "a", "-o", tmp_path], capfd)
    assert code == 0
    (sidecar,) = tmp_path.glob("*.json")
    assert "Mkseries_Axial" in sidecar.name
    meta = json.loads(sidecar.read_text())
    assert meta["SeriesDescription"] == RETAINED["SeriesDescription"]
    assert meta["ProtocolName"] == RETAINED["ProtocolName"]
    assert meta["AcquisitionTime"] == "12:13:14.151617"  # a time of day, never a date
    code, stdout, _ = run(["ls", source["root"], "--json"], capfd)
    assert RETAINED["SeriesDescription"] in {s["series_description"] for s in json.loads(stdout)["stacks"]}


def test_errors_and_warnings_carry_no_identity(source, tmp_path, capfd):
    """Broken input whose messages could quote header text: one clear line, never identity, not
    even with --keep-phi (streams are no channel for identity)."""
    src = tmp_path / "broken"
    shutil.copytree(source["root"] / "a", src)
    for p in sorted(src.iterdir())[:2]:
        ds = pydicom.dcmread(p)
        ds.ImageOrientationPatient = [0, 0, 0, 0, 0, 0]
        ds.save_as(p)
    corrupt = tmp_path / "corrupt.dcm"  # the element after PatientName has a garbage VR: pydicom warns
    raw = bytearray(source["first"].read_bytes())
    end = raw.index(IDENTITY["PatientName"].encode()) + len(IDENTITY["PatientName"])
    end += raw[end] == 0x20  # padding
    raw[end + 4:end + 6] = b"\x01\x02"
    corrupt.write_bytes(bytes(raw))
    failing = [  # exit non-zero with one line on stderr
        ["convert", src, "-o", tmp_path / "o1"],
        ["mip", src / "nothing", "-o", tmp_path / "o2"],
        ["index", source["root"], "-o", tmp_path / "x.csv", "--fields", "PatientName,StudyDate"],
        ["mip", source["root"], "-o", tmp_path / "o4", "--series", "99", "--keep-phi"],
        ["convert", source["root"], "-o", tmp_path / "o5", "--series", "99", "--keep-phi"],
    ]
    for args in failing:
        code, stdout, stderr = run(args, capfd)
        assert code != 0 and stderr.strip() and "Traceback" not in stderr, args
        assert found(source["secrets"], None, stdout, stderr) == [], args
    noted = [  # succeed for what can be used; what cannot is noted on stdout or stderr
        ["ls", src], ["reslice", src, "--spacing", "2", "-o", tmp_path / "o3" / "r.nii.gz"],
        ["mip", src, "-o", tmp_path / "o6"],
    ]
    for args in noted:
        code, stdout, stderr = run(args, capfd)
        assert "Traceback" not in stderr, args
        assert found(source["secrets"], None, stdout, stderr) == [], args
    for keep in ([], ["--keep-phi"]):  # in a process of its own: pytest would catch pydicom's warnings
        done = subprocess.run([sys.executable, "-m", "volume", "info", str(corrupt), *keep],
                              capture_output=True, text=True)
        assert done.returncode == 0 and done.stderr == ""
        assert (IDENTITY["PatientName"] in done.stdout) == bool(keep)
    for out in ("o1", "o3", "o6"):
        assert found(source["secrets"], tmp_path / out) == []


# --- with --keep-phi: the channels meant to carry identity carry it --------------------------------


def test_keep_phi_info_shows_every_marker(source, capfd):
    f = source["first"]
    own_uids = [str(pydicom.dcmread(f).SOPInstanceUID)]
    for args in (["info", f, "--keep-phi"], ["info", f, "--json", "--keep-phi"]):
        code, stdout, _ = run(args, capfd)
        assert code == 0
        missing = [v for v in [*IDENTITY.values(), PRIVATE_VALUE, SEQUENCE_PATIENT_ID, *own_uids] if v not in stdout]
        assert missing == [], args


#: ``index --keep-phi`` columns and the identity field each holds.
INDEX_PHI_COLUMNS = {
    "patient_name": "PatientName", "patient_id": "PatientID", "patient_birth_date": "PatientBirthDate",
    "patient_sex": "PatientSex", "patient_age": "PatientAge", "study_date": "StudyDate", "study_time": "StudyTime",
    "series_date": "SeriesDate", "accession_number": "AccessionNumber", "study_id": "StudyID",
    "study_description": "StudyDescription", "institution_name": "InstitutionName",
    "referring_physician_name": "ReferringPhysicianName", "study_instance_uid": "StudyInstanceUID",
    "series_instance_uid": "SeriesInstanceUID", "frame_of_reference_uid": "FrameOfReferenceUID",
}


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_keep_phi_index_has_identity_columns(source, tmp_path, capfd, suffix):
    out = tmp_path / f"i.{suffix}"
    code, _, stderr = run(["index", source["root"] / "a", "-o", out, "--keep-phi", "--workers", "1"], capfd)
    assert code == 0, stderr
    if suffix == "csv":
        import csv

        rows = list(csv.DictReader(out.open(encoding="utf-8")))
    else:
        import pyarrow.parquet as pq

        rows = pq.read_table(out).to_pylist()
    for column, keyword in INDEX_PHI_COLUMNS.items():
        assert {str(r[column]) for r in rows} == {IDENTITY[keyword]}, column
    assert float(rows[0]["patient_weight"]) == float(IDENTITY["PatientWeight"])


def test_keep_phi_ls_json_has_uids(source, capfd):
    code, stdout, _ = run(["ls", source["root"], "--json", "--keep-phi"], capfd)
    stack = next(s for s in json.loads(stdout)["stacks"] if s["series_number"] == 3)
    assert stack["series_uid"] == IDENTITY["SeriesInstanceUID"]
    assert stack["study_uid"] == IDENTITY["StudyInstanceUID"]
    assert stack["series_key"] == phi.uid_key(IDENTITY["SeriesInstanceUID"])


def test_keep_phi_sidecar_carries_what_the_policy_carries(source, tmp_path, capfd):
    code, _, stderr = run(["convert", source["root"] / "a", "-o", tmp_path, "--keep-phi",
                           "--report", tmp_path / "report.json"], capfd)
    assert code == 0, stderr
    (sidecar,) = [p for p in tmp_path.glob("*.json") if p.name != "report.json"]
    meta = json.loads(sidecar.read_text())
    for keyword in phi.CARRIED:
        assert str(meta[keyword]) == IDENTITY[keyword] or float(meta[keyword]) == float(IDENTITY[keyword]), keyword
    # the report never holds identity, --keep-phi or not
    assert found(source["secrets"], None, (tmp_path / "report.json").read_text()) == []


DICOM_RUNS = {
    "mip": lambda one, out: ["mip", one, "-o", out / "m.dcm"],
    "reslice": lambda one, out: ["reslice", one, "--spacing", "2", "--format", "dcm", "-o", out / "series"],
}

#: Identity elements a DICOM output holds with new values volume made (never the source's).
VOLUME_MADE = {"SOPInstanceUID", "MediaStorageSOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID",
               "FrameOfReferenceUID", "DerivationDescription"}


@pytest.mark.parametrize("command", list(DICOM_RUNS))
def test_dicom_outputs_without_identity_say_so(source, tmp_path, capfd, command):
    code, _, stderr = run(DICOM_RUNS[command](source["root"] / "a", tmp_path), capfd)
    assert code == 0, stderr
    files = sorted(tmp_path.rglob("*.dcm"))
    assert files
    for p in files:
        ds = pydicom.dcmread(p)
        assert ds.PatientIdentityRemoved == "YES"
        method = list(ds.DeidentificationMethod)
        assert method[0].startswith("volume ") and "Basic Application Confidentiality Profile" in method[1]
        assert "SeriesDescription" in method[2] and "ProtocolName" in method[2]  # what it kept, said
        (code_item,) = ds.DeidentificationMethodCodeSequence
        assert (code_item.CodeValue, code_item.CodingSchemeDesignator) == ("113100", "DCM")
        assert ds.LongitudinalTemporalInformationModified == "REMOVED"
        for elem in [*ds.file_meta, *ds.iterall()]:
            if phi.element_is_identity(elem) and elem.keyword not in VOLUME_MADE and elem.VR != "SQ":
                assert elem.value in ("", None, []), elem.keyword  # present only as an empty Type 2 element
        assert not {ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID} & set(source["secrets"])
        assert ds.ProtocolName == RETAINED["ProtocolName"] and RETAINED["SeriesDescription"] in ds.SeriesDescription


@pytest.mark.parametrize("command", list(DICOM_RUNS))
def test_dicom_outputs_with_keep_phi_join_their_study(source, tmp_path, capfd, command):
    from volume.io.dicom_out import IDENTITY_NOT_COPIED

    code, stdout, stderr = run(DICOM_RUNS[command](source["root"] / "a", tmp_path) + ["--keep-phi"], capfd)
    assert code == 0, stderr
    assert found(source["secrets"], None, stdout, stderr) == []  # streams never carry identity
    # the PatientSex marker is none of M, F, O (its enumerated values): left out (empty, Type 2), said so
    assert "PatientSex (CS): not one of its enumerated values, left out" in stderr
    for p in sorted(tmp_path.rglob("*.dcm")):
        ds = pydicom.dcmread(p)
        assert ds.PatientIdentityRemoved == "NO" and "DeidentificationMethod" not in ds
        for keyword in set(phi.CARRIED) - IDENTITY_NOT_COPIED:
            expected = "" if keyword == "PatientSex" else IDENTITY[keyword]
            assert str(ds.data_element(keyword).value) == expected, keyword
        assert ds.SeriesInstanceUID != IDENTITY["SeriesInstanceUID"]  # a new series of the same study


def test_page_title_names_the_patient_only_with_keep_phi(source):
    pytest.importorskip("vtk")
    import volume
    from volume.render.web import page_title

    vol = volume.load(source["root"] / "a")
    assert found(source["secrets"], None, page_title(vol)) == []
    assert page_title(vol) == f"volume: {RETAINED['SeriesDescription']}"
    title = page_title(vol, keep_phi=True)
    assert IDENTITY["PatientName"] in title and IDENTITY["PatientID"] in title


# --- the channels agree on what is identity ---------------------------------------------------------


def test_info_hides_exactly_the_identity(source, capfd):
    """Every element ``info`` hides is one the test calls identity, and every such element is hidden."""
    code, stdout, _ = run(["info", source["first"], "--json"], capfd)

    def walk(entries):
        for e in entries:
            yield e
            if e["vr"] == "SQ" and isinstance(e["value"], list):
                for item in e["value"]:
                    yield from walk(item)

    hidden = {e["keyword"] or e["tag"] for e in walk(json.loads(stdout)) if e["value"] == phi.HIDDEN}
    uids = {"SOPInstanceUID", "MediaStorageSOPInstanceUID"}
    assert hidden == set(IDENTITY) | uids | {"OtherPatientIDsSequence", "(0029,1010)"}


def test_index_refuses_exactly_the_identity(source):
    """``index --fields`` refuses a field exactly when ``info`` hides it, for every field of the file."""
    from volume.errors import UsageError
    from volume.jobs.index import field_columns

    ds = pydicom.dcmread(source["first"])
    refused = set()
    for elem in [*ds.file_meta, *ds]:
        if elem.tag == 0x7FE00010:
            continue
        field = elem.keyword or f"({elem.tag.group:04X},{elem.tag.element:04X})"
        try:
            field_columns([field], keep_phi=False)
        except UsageError as exc:
            assert "--keep-phi" in str(exc)
            refused.add(field)
        field_columns([field], keep_phi=True)  # allowed with --keep-phi
    uids = {"SOPInstanceUID", "MediaStorageSOPInstanceUID"}
    assert refused == set(IDENTITY) | uids | {"OtherPatientIDsSequence", "(0029,1010)"}


def test_sidecar_keys_are_never_identity_without_keep_phi(source):
    import volume
    from volume.io.sidecar import sidecar

    vol = volume.load(source["root"] / "a")
    assert [k for k in sidecar(vol) if phi.is_identity(k)] == []
    kept = sidecar(vol, keep_phi=True)
    assert {k for k in kept if phi.is_identity(k)} == set(phi.CARRIED)

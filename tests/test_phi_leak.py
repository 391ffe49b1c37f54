"""No patient data leaks (issue 9): every output of every command on identified data is searched.

The synthetic series carries a patient name, ID, birth date and other identifying elements. Every
output-producing command runs on it; every byte of every file written (gzip streams inflated, PNG
text chunks decoded, Parquet tables read), every output name, stdout and stderr are searched for
the identity and must not hold it. DICOM outputs are the exception by design: they carry identity
only with ``--keep-phi`` (then exactly the source's) and always get new instance and series UIDs.
The ``--keep-phi`` runs prove the search finds identity where it is asked for, so it can fail.
"""

from __future__ import annotations

import gzip
import io
import zlib
from pathlib import Path

import pydicom
import pytest
import synth

from volume.cli import main

#: Identifying values put into every source file, and searched for in every output.
IDENTITY = {
    "PatientName": "Doe^Jane",
    "PatientID": "PID-0042",
    "PatientBirthDate": "19700101",
    "AccessionNumber": "ACC-98765",
    "InstitutionName": "Saint Secret Hospital",
    "ReferringPhysicianName": "Who^Doctor",
    "OtherPatientIDs": "OTHER-777",
    "PatientAddress": "1 Hidden Lane",
}
#: What must never appear (the name's parts too: "Doe^Jane" may be written "Jane Doe").
SECRETS = ("Doe^Jane", "Jane", "PID-0042", "19700101", "1970-01-01", "ACC-98765", "Saint Secret", "Who^Doctor",
           "OTHER-777", "Hidden Lane")


@pytest.fixture(scope="module")
def identified(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("phi")
    synth.write_series(root / "src" / "a", shape=(5, 8, 7), extra=dict(IDENTITY), series_number=3,
                       description="T1 axial", modality="CT", intercepts=-1024)
    synth.write_series(root / "src" / "b", shape=(4, 8, 7), extra=dict(IDENTITY), series_number=4,
                       iop=synth.CORONAL, description="coronal")
    return root / "src"


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
            exif = im.getexif()
            texts.append(repr(dict(exif)).encode("utf-8", "replace"))
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


def leaks(folder: Path, *streams: str) -> list[str]:
    found = []
    for p in sorted(folder.rglob("*")):
        for secret in SECRETS:
            if secret.lower() in p.name.lower():
                found.append(f"name {p.name}: {secret}")
        if not p.is_file() or p.suffix == ".dcm":
            continue
        for blob in file_texts(p):
            for secret in SECRETS:
                for enc in ("utf-8", "utf-16-le"):
                    if secret.encode(enc) in blob:
                        found.append(f"{p.name}: {secret} ({enc})")
    for text in streams:
        found += [f"output stream: {s}" for s in SECRETS if s in text]
    return sorted(set(found))


def run(args: list, capfd) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capfd.readouterr()
    return code, out, err


#: Every output-producing run (name, argv builder given the source folder, one series, output folder).
RUNS = {
    "convert": lambda src, one, out: ["convert", src, "-o", out],
    "convert-nii": lambda src, one, out: ["convert", src, "-o", out, "-f", "nii"],
    "mip-png": lambda src, one, out: ["mip", src, "-o", out, "--planes", "all"],
    "mip-nifti": lambda src, one, out: ["mip", one, "-o", out / "m.nii.gz"],
    "mip-slabs": lambda src, one, out: ["mip", one, "-o", out, "--slab", "4"],
    "reslice-nifti": lambda src, one, out: ["reslice", one, "--spacing", "2", "-o", out / "r.nii.gz"],
    "reslice-png": lambda src, one, out: ["reslice", one, "--plane", "coronal", "-o", out],
    "render-png": lambda src, one, out: ["render", one, "--size", "40x40", "-o", out / "r.png"],
    "render-gif": lambda src, one, out: ["render", one, "--size", "32x32", "--turntable", "3", "-o", out / "t.gif"],
    "mesh-stl": lambda src, one, out: ["mesh", one, "--level", "960", "-o", out / "m.stl"],
    "mesh-ply": lambda src, one, out: ["mesh", one, "--level", "960", "-o", out / "m.ply"],
    "mesh-obj": lambda src, one, out: ["mesh", one, "--level", "960", "-o", out / "m.obj"],
    "png": lambda src, one, out: ["png", src, "-o", out, "--workers", "1"],
    "png-raw16": lambda src, one, out: ["png", one, "-o", out, "--raw16", "--workers", "1"],
    "jpg": lambda src, one, out: ["png", one, "-o", out, "--format", "jpg", "--workers", "1"],
    "index-csv": lambda src, one, out: ["index", src, "-o", out / "i.csv", "--workers", "1"],
    "index-parquet": lambda src, one, out: ["index", src, "-o", out / "i.parquet", "--workers", "1"],
    "ls": lambda src, one, out: ["ls", src],
    "ls-json": lambda src, one, out: ["ls", src, "--json"],
    "info": lambda src, one, out: ["info", sorted(one.iterdir())[0]],
    "info-json": lambda src, one, out: ["info", sorted(one.iterdir())[0], "--json"],
}


@pytest.mark.parametrize("name", list(RUNS))
def test_no_identity_in_any_output(identified, tmp_path, capfd, name):
    out = tmp_path / "out"
    code, stdout, stderr = run(RUNS[name](identified, identified / "a", out), capfd)
    assert code == 0, stderr
    if not name.startswith(("ls", "info")):
        assert any(p.is_file() for p in out.rglob("*")), "nothing written"
    assert leaks(out, stdout, stderr) == []


def test_errors_name_no_identity(identified, tmp_path, capfd):
    """Broken input whose messages could quote header text: still no identity."""
    import shutil

    src = tmp_path / "broken"
    shutil.copytree(identified / "a", src)
    for p in sorted(src.iterdir())[:2]:
        ds = pydicom.dcmread(p)
        ds.ImageOrientationPatient = [0, 0, 0, 0, 0, 0]
        ds.save_as(p)
    for args in (["ls", src], ["convert", src, "-o", tmp_path / "o1"], ["mip", src, "-o", tmp_path / "o2"],
                 ["reslice", src, "--spacing", "2", "-o", tmp_path / "o3" / "r.nii.gz"]):
        code, stdout, stderr = run(args, capfd)
        assert leaks(tmp_path / "o1", stdout, stderr) == []


@pytest.mark.parametrize("name, args, where", [
    ("convert", lambda src, out: ["convert", src, "-o", out, "--keep-phi"], "json"),
    ("index", lambda src, out: ["index", src, "-o", out / "i.csv", "--keep-phi", "--workers", "1"], "csv"),
    ("info", lambda src, out: ["info", sorted((src / "a").iterdir())[0], "--keep-phi"], "stdout"),
])
def test_keep_phi_writes_identity_where_asked(identified, tmp_path, capfd, name, args, where):
    """The search above is not blind: with --keep-phi the identity is found."""
    out = tmp_path / "out"
    code, stdout, stderr = run(args(identified, out), capfd)
    assert code == 0, stderr
    found = leaks(out, stdout, stderr)
    assert any("PID-0042" in f for f in found), found
    assert any("Doe^Jane" in f or "Jane" in f for f in found), found
    if where != "stdout":
        assert any(f.split(":")[0].endswith(where) for f in found), found


# --- DICOM outputs: identity only as the source had it, always new UIDs ----------------------


DICOM_RUNS = {
    "mip": lambda one, out, phi: ["mip", one, "-o", out / "m.dcm"] + phi,
    "reslice": lambda one, out, phi: ["reslice", one, "--spacing", "2", "--format", "dcm", "-o", out / "series"] + phi,
}


@pytest.mark.parametrize("keep_phi", [False, True])
@pytest.mark.parametrize("command", list(DICOM_RUNS))
def test_dicom_outputs_carry_identity_only_with_keep_phi_and_new_uids(identified, tmp_path, capfd, command, keep_phi):
    one = identified / "a"
    source = pydicom.dcmread(sorted(one.iterdir())[0])
    source_uids = set()
    for p in one.iterdir():
        ds = pydicom.dcmread(p, stop_before_pixels=True)
        source_uids |= {ds.SOPInstanceUID, ds.SeriesInstanceUID}
    out = tmp_path / "out"
    code, stdout, stderr = run(DICOM_RUNS[command](one, out, ["--keep-phi"] if keep_phi else []), capfd)
    assert code == 0, stderr
    for secret in SECRETS:  # streams never carry identity, even with --keep-phi
        assert secret not in stdout and secret not in stderr
    files = sorted(p for p in out.rglob("*.dcm"))
    assert files
    for p in files:
        ds = pydicom.dcmread(p)
        assert ds.SOPInstanceUID not in source_uids and ds.SeriesInstanceUID not in source_uids
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        raw = p.read_bytes()
        if keep_phi:
            assert str(ds.PatientName) == str(source.PatientName)
            assert ds.PatientID == source.PatientID
            assert ds.StudyInstanceUID == source.StudyInstanceUID  # joins the source's study
            for keyword in ("PatientBirthDate", "AccessionNumber", "OtherPatientIDs", "PatientAddress"):
                if keyword in ds:  # what is kept is the source's own value, nothing new
                    assert str(ds.data_element(keyword).value) == str(source.data_element(keyword).value)
        else:
            for secret in SECRETS:
                assert secret.encode() not in raw, f"{p.name} holds {secret}"
            assert ds.get("StudyInstanceUID") != source.StudyInstanceUID
            for keyword in ("PatientName", "PatientID", "PatientBirthDate"):
                assert str(ds.get(keyword, "") or "") in ("", "ANONYMOUS", "Anonymous")  # empty or a placeholder


def test_leak_search_sees_through_gzip_and_png_text(tmp_path):
    """The search itself: a secret hidden in a gzip stream or a compressed PNG text chunk is found."""
    from PIL import Image, PngImagePlugin

    (tmp_path / "a.json.gz").write_bytes(gzip.compress(b'{"PatientName": "Doe^Jane"}'))
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "PID-0042 " * 20, zip=True)
    Image.new("L", (4, 4)).save(tmp_path / "b.png", pnginfo=info)
    buf = io.BytesIO()
    Image.new("L", (4, 4)).save(buf, format="PNG")
    (tmp_path / "c.png").write_bytes(buf.getvalue())
    found = leaks(tmp_path)
    assert any(f.startswith("a.json.gz") for f in found) and any(f.startswith("b.png") for f in found)
    assert not any(f.startswith("c.png") for f in found)

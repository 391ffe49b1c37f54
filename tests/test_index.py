"""`volume index`: one row per file, right series counts, no identity, and no pixel data read."""

from __future__ import annotations

import builtins
import csv
import hashlib
import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from synth import write_enhanced, write_series

import volume.jobs.index as index_mod
from volume.cli import main
from volume.errors import UsageError
from volume.jobs.index import build_columns, write_index


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def run(args: list, capsys) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


# --- real data ------------------------------------------------------------------------------


def test_real_tree_rows_and_series_counts(data_dir, tmp_path):
    src = data_dir / "dicom"
    out = tmp_path / "index.csv"
    summary = write_index(src, out, workers=1)
    rows = read_csv(out)
    n_files = sum(1 for p in src.rglob("*") if p.is_file())
    assert len(rows) == summary.rows == n_files  # one row per file
    brainix = [r for r in rows if r["path"].startswith("brainix/")]
    assert len(brainix) == 88
    per_series = Counter(r["series_key"] for r in brainix)
    assert sorted(per_series.values()) == [22, 22, 22, 22]
    by_folder = {r["path"].split("/")[1] for r in brainix}
    assert by_folder == {"T1", "T2", "FLAIR", "ROI"}
    for folder in by_folder:  # each folder is exactly one series
        assert len({r["series_key"] for r in brainix if r["path"].split("/")[1] == folder}) == 1
    knix = [r for r in rows if r["path"].startswith("knix_loc/")]
    assert Counter(r["plane"].split()[0] for r in knix) == {"axial": 9, "coronal": 9, "sagittal": 9}
    syntaxes = {r["path"].split("/")[0]: r["transfer_syntax_name"] for r in rows if r["path"].startswith("d2n_")}
    assert "JPEG 2000" in syntaxes["d2n_j2k"] and "RLE" in syntaxes["d2n_rle"]
    t1 = next(r for r in brainix if r["path"].startswith("brainix/T1/"))
    assert (t1["rows"], t1["columns"], t1["frames"], t1["has_pixels"]) == ("512", "512", "1", "1")
    assert float(t1["slice_thickness"]) == 5.0


class _Tracked:
    """A file object recording the furthest byte any read reached."""

    def __init__(self, fh, record):
        self._fh, self._record = fh, record

    def _note(self):
        self._record[0] = max(self._record[0], self._fh.tell())

    def read(self, *a):
        data = self._fh.read(*a)
        self._note()
        return data

    def readinto(self, b):
        n = self._fh.readinto(b)
        self._note()
        return n

    def __getattr__(self, name):
        return getattr(self._fh, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._fh.close()


def _pixel_value_offset(path: Path) -> int:
    ds = pydicom.dcmread(path, defer_size=64)
    return ds.get_item(0x7FE00010, keep_deferred=True).value_tell


def test_no_pixel_data_is_read(data_dir, tmp_path, monkeypatch):
    """Every read of every file stops before the first byte of its pixel data."""
    files = sorted(p for p in (data_dir / "dicom").rglob("*") if p.is_file())
    files += [Path(get_testdata_file(n)) for n in ("MR_small_RLE.dcm", "JPEG2000.dcm", "examples_ybr_color.dcm")]
    pixel_start = {str(p): _pixel_value_offset(p) for p in files}
    furthest: dict[str, list[int]] = {}
    real_open = builtins.open

    def tracking_open(file, mode="r", *a, **k):
        fh = real_open(file, mode, *a, **k)
        key = str(file)
        if key in pixel_start and "r" in mode:
            furthest.setdefault(key, [0])
            return _Tracked(fh, furthest[key])
        return fh

    # and nobody may decode pixels either
    def no_pixels(*a, **k):
        raise AssertionError("pixel data was decoded")

    monkeypatch.setattr(pydicom.dataset.Dataset, "pixel_array", property(no_pixels))
    monkeypatch.setattr(builtins, "open", tracking_open)
    try:
        summary = write_index(data_dir, tmp_path / "i.csv", workers=1, files=[str(p) for p in files])
    finally:
        monkeypatch.setattr(builtins, "open", real_open)
    assert summary.rows == len(files)
    assert set(furthest) == set(pixel_start)  # the trap saw every file
    for key, (pos,) in furthest.items():
        assert pos <= pixel_start[key], f"{key}: read up to byte {pos}, pixel data starts at {pixel_start[key]}"


def test_truncated_pixel_data_still_indexes_in_worker_processes(tmp_path, monkeypatch):
    """Files whose pixel bytes are missing: a reader that touched pixels would fail on them."""
    series = write_series(tmp_path / "in", shape=(6, 64, 64), names="ordered")
    for p in series.paths:
        cut = _pixel_value_offset(p) + 10
        p.write_bytes(p.read_bytes()[:cut])
    monkeypatch.setattr(index_mod, "PARALLEL_MIN_FILES", 0)
    summary = write_index(tmp_path / "in", tmp_path / "i.csv", workers=2)
    rows = read_csv(tmp_path / "i.csv")
    assert summary.rows == 6 and all(r["rows"] == "64" and r["has_pixels"] == "1" for r in rows)


# --- synthetic ------------------------------------------------------------------------------


@pytest.fixture
def study(tmp_path: Path) -> Path:
    root = tmp_path / "study"
    a = write_series(root / "a", shape=(4, 8, 8), series_number=3, modality="CT",
                     extra={"KVP": 120, "PatientAge": "042Y"})
    write_series(root / "b", shape=(3, 8, 8), series_number=4, study_uid=a.series_uid[:-1] + "9")
    write_enhanced(root / "enh.dcm", shape=(5, 8, 9), pixel_spacing=(1.0, 2.0))
    shutil.copy(get_testdata_file("rtplan.dcm"), root / "plan.dcm")
    shutil.copy(get_testdata_file("DICOMDIR"), root / "DICOMDIR")
    (root / "readme.txt").write_text("hello")
    return root


def test_rows_skips_and_multiframe(study, tmp_path):
    summary = write_index(study, tmp_path / "i.csv", workers=1)
    rows = {r["path"]: r for r in read_csv(tmp_path / "i.csv")}
    assert summary.rows == 4 + 3 + 1 + 1 == len(rows)
    assert summary.skipped == {"not DICOM": 1, "DICOMDIR index": 1}
    images = [r for r in rows.values() if r["modality"] != "RTPLAN"]
    assert Counter(r["series_number"] for r in images) == {"3": 4, "4": 3, "7": 1}
    enh = rows["enh.dcm"]
    assert (enh["frames"], enh["pixel_spacing_row"], enh["pixel_spacing_col"]) == ("5", "1.0", "2.0")
    assert enh["ipp_z"] != "" and enh["plane"] == "axial"
    plan = rows["plan.dcm"]
    assert plan["has_pixels"] == "0" and plan["rows"] == "" and plan["modality"] == "RTPLAN"
    assert plan["sop_class"] == "RT Plan Storage"


def test_no_identity_unless_keep_phi(study, tmp_path):
    secrets = ["Doe^Jane", "PID-0042", "19700101", "20240101"]
    ds = pydicom.dcmread(next((study / "a").iterdir()))
    secrets += [ds.SOPInstanceUID, ds.SeriesInstanceUID, ds.StudyInstanceUID]
    write_index(study, tmp_path / "plain.csv", workers=1)
    text = (tmp_path / "plain.csv").read_text()
    for s in secrets:
        assert s not in text
    rows = read_csv(tmp_path / "plain.csv")
    key = hashlib.sha256(ds.SeriesInstanceUID.encode()).hexdigest()[:16]
    assert sum(r["series_key"] == key for r in rows) == 4  # keys still group the series
    write_index(study, tmp_path / "phi.csv", workers=1, keep_phi=True)
    text = (tmp_path / "phi.csv").read_text()
    for s in secrets:
        assert s in text


def test_fields_types_and_sequences(study, tmp_path):
    pa = pytest.importorskip("pyarrow.parquet")
    out = tmp_path / "i.parquet"
    write_index(study, out, workers=1, fields=["KVP", "PatientAge", "(0028,0030)", "SharedFunctionalGroupsSequence"],
                keep_phi=True)  # PatientAge is identity (PS3.15 Basic Profile)
    table = pa.read_table(out)
    assert str(table.schema.field("KVP").type) == "double"
    assert str(table.schema.field("PixelSpacing").type) == "string"
    data = table.to_pylist()
    kvp = [r["KVP"] for r in data if r["series_number"] == 3]
    assert kvp == [120.0] * 4
    assert [r["PatientAge"] for r in data if r["series_number"] == 3] == ["042Y"] * 4
    enh = next(r for r in data if r["path"] == "enh.dcm")
    shared = json.loads(enh["SharedFunctionalGroupsSequence"])
    assert shared[0]["PixelMeasuresSequence"][0]["PixelSpacing"] == [1.0, 2.0]


def test_identity_fields_need_keep_phi(tmp_path):
    with pytest.raises(UsageError, match="--keep-phi"):
        write_index(tmp_path, tmp_path / "x.csv", fields=["PatientName"])
    # patient characteristics, descriptions, private elements and any date are identity too
    for field in ("PatientAge", "StudyDescription", "(0029,1010)", "DateOfSecondaryCapture"):
        with pytest.raises(UsageError, match="--keep-phi"):
            write_index(tmp_path, tmp_path / "x.csv", fields=[field])
    assert [c.name for c in build_columns(["(0029,0010)", "SeriesDescription"])][-2:] == ["0029,0010", "SeriesDescription"]
    with pytest.raises(UsageError, match="did you mean"):
        write_index(tmp_path, tmp_path / "x.csv", fields=["PatientNmae"])
    assert not (tmp_path / "x.csv").exists()


def test_parquet_streams_in_batches_and_matches_csv(study, tmp_path, monkeypatch):
    pq = pytest.importorskip("pyarrow.parquet")
    monkeypatch.setattr(index_mod, "PARQUET_BATCH_ROWS", 3)
    write_index(study, tmp_path / "i.parquet", workers=1)
    write_index(study, tmp_path / "i.csv", workers=1)
    meta = pq.ParquetFile(tmp_path / "i.parquet").metadata
    assert meta.num_row_groups >= 3  # written as it went, not in one go
    pq_rows = pq.read_table(tmp_path / "i.parquet").to_pylist()
    csv_rows = read_csv(tmp_path / "i.csv")
    assert len(pq_rows) == len(csv_rows) == 9
    for a, b in zip(pq_rows, csv_rows, strict=True):
        for k, v in a.items():
            if isinstance(v, float):
                assert np.isclose(v, float(b[k]))
            else:
                assert ("" if v is None else str(v)) == b[k]


def test_cli_index(study, tmp_path, capsys, monkeypatch):
    out = tmp_path / "t.csv"
    monkeypatch.setattr(index_mod, "PARALLEL_MIN_FILES", 0)  # exercise the process pool
    code, stdout, err = run(["index", study, "-o", out, "--fields", "KVP,0018,0050", "--workers", "2"], capsys)
    assert code == 0 and stdout.strip() == str(out)
    assert "9 rows from 11 files" in err
    header = read_csv(out)[0].keys()
    assert "KVP" in header and "SliceThickness" in header
    code, _, err = run(["index", study, "-o", out], capsys)
    assert code == 5 and "--force" in err
    code, _, _ = run(["index", study, "-o", out, "--force"], capsys)
    assert code == 0
    code, _, err = run(["index", study, "-o", tmp_path / "t.xlsx"], capsys)
    assert code == 2 and ".csv" in err
    code, _, err = run(["index", study, "-o", tmp_path / "p.csv", "--fields", "PatientID"], capsys)
    assert code == 2 and "--keep-phi" in err


_REAL_INDEX_FILE = None


def _index_or_die(path, spec):
    if path.endswith("enh.dcm"):
        import os

        os._exit(1)  # a reader process killed outright
    real = _REAL_INDEX_FILE if index_mod.index_file is _index_or_die else index_mod.index_file
    return real(path, spec)


def test_a_file_that_kills_its_reader_is_skipped(study, tmp_path, monkeypatch):
    global _REAL_INDEX_FILE
    _REAL_INDEX_FILE = index_mod.index_file
    monkeypatch.setattr(index_mod, "index_file", _index_or_die)
    monkeypatch.setattr(index_mod, "PARALLEL_MIN_FILES", 0)
    summary = write_index(study, tmp_path / "i.csv", workers=2)
    assert summary.skipped["crashed the header reader"] == 1
    assert summary.rows == 8 and "enh.dcm" not in {r["path"] for r in read_csv(tmp_path / "i.csv")}


# --- CSV formula injection ------------------------------------------------------------------

FORMULA = '=HYPERLINK("http://x","y")'


@pytest.fixture
def hostile(tmp_path: Path) -> Path:
    """A series described by a spreadsheet formula, a file named like one, and negative numbers."""
    root = tmp_path / "hostile"
    write_series(root / "formula", shape=(2, 4, 4), description=FORMULA, series_number=1)
    bad = next((root / "formula").iterdir())
    bad.rename(root / "@SUM(1+1)")  # at the top: its path cell starts with @
    write_series(root / "numbers", shape=(2, 4, 4), series_number=2, origin=(-12.5, -40.0, -7.25),
                 intercepts=-1024.0, description="-", extra={"WindowCenter": "-12.5", "WindowWidth": "400"})
    return root


def test_csv_escapes_formula_text_but_keeps_numbers(hostile, tmp_path):
    out = tmp_path / "i.csv"
    write_index(hostile, out, workers=1, fields=["(0028,1050)", "ImagePositionPatient", "ImageType"])
    rows = read_csv(out)
    formula = [r for r in rows if r["series_number"] == "1"]
    assert len(formula) == 2
    assert {r["series_description"] for r in formula} == {"'" + FORMULA}  # shown as text, not run
    assert "'@SUM(1+1)" in {r["path"] for r in formula}
    numbers = [r for r in rows if r["series_number"] == "2"]
    assert len(numbers) == 2
    for r in numbers:  # real numbers stay numbers: negative floats, a numeric text field
        assert r["ipp_x"] == "-12.5" and r["ipp_y"] == "-40.0"
        assert r["rescale_intercept"] == "-1024.0" and float(r["rescale_intercept"]) == -1024.0
        assert r["window_center"] == "-12.5"
        assert r["WindowCenter"] == "-12.5"  # VM 1-n: a text column holding a number
        assert json.loads(r["ImagePositionPatient"])[0] == -12.5
        assert r["series_description"] == "'-"  # a lone minus is not a number
    text = out.read_text(encoding="utf-8")
    for line in text.splitlines()[1:]:  # no cell of the raw file starts a formula
        for cell in next(csv.reader([line])):
            assert not cell.startswith(("=", "+", "@")) and not (cell.startswith("-") and not _is_number(cell)), cell


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def test_parquet_keeps_text_raw(hostile, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    out = tmp_path / "i.parquet"
    write_index(hostile, out, workers=1)
    data = pq.read_table(out).to_pylist()
    assert {r["series_description"] for r in data if r["series_number"] == 1} == {FORMULA}
    assert {r["rescale_intercept"] for r in data if r["series_number"] == 2} == {-1024.0}
    assert "@SUM(1+1)" in {r["path"] for r in data}


@pytest.mark.parametrize(("value", "cell"), [
    ("=1+1", "'=1+1"), ("+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"), ("@SUM(A1)", "'@SUM(A1)"),
    ("-2+3", "'-2+3"), ("\tx", "'\tx"), ("\rx", "'\rx"), ("a=b", "a=b"), ("", ""),
    ("-12.5", "-12.5"), ("+3", "+3"), ("-1e-3", "-1e-3"), ("-0.5\\1\\-2", "-0.5\\1\\-2"), ("-1,-2", "-1,-2"),
    (-12.5, "-12.5"), (-3, -3), (None, ""),
])
def test_csv_cell(value, cell):
    assert index_mod.csv_cell(value) == cell


# --- no DICOM at all ------------------------------------------------------------------------


@pytest.mark.parametrize("content", ["empty", "junk"])
def test_no_dicom_writes_nothing_and_exits_3(tmp_path, capsys, content):
    src = tmp_path / "src"
    src.mkdir()
    if content == "junk":
        (src / "notes.txt").write_text("hello")
        (src / "zeros.dcm").write_bytes(bytes(4096))
    out = tmp_path / "out" / "i.csv"
    code, stdout, err = run(["index", src, "-o", out], capsys)
    assert code == 3 and stdout == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and str(src) in lines[0] and "no DICOM" in lines[0] and "nothing written" in lines[0]
    if content == "junk":
        assert "2 not DICOM" in lines[0]
    assert not (tmp_path / "out").exists()  # no table, no header-only file, no folder
    with pytest.raises(index_mod.NoDicomError):
        write_index(src, tmp_path / "lib.parquet" if content == "junk" else tmp_path / "lib.csv", workers=1)
    assert [p.name for p in tmp_path.iterdir()] == ["src"]


def test_identity_columns_are_the_identity_policys():
    """Issue 23: the index's identity columns come from volume/phi.py, not from a list of their own."""
    from volume import phi
    from volume.jobs.index import column_name, default_columns, phi_columns

    names = [c.name for c in phi_columns()]
    assert names == [column_name(k) for k in phi.INDEXED]
    assert set(phi.CARRIED) <= set(phi.INDEXED)
    assert all(phi.is_identity(k) for k in phi.INDEXED)
    assert not {c.name for c in default_columns()} & set(names)
    assert column_name("SOPInstanceUID") == "sop_instance_uid" and column_name("IssuerOfPatientID") == "issuer_of_patient_id"

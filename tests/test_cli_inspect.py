"""``volume ls`` and ``volume info``: exit codes, JSON structure, table contents, no PHI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from synth import AXIAL, CORONAL, SAGITTAL, oblique_iop, write_series

from volume.cli.app import main
from volume.errors import EXIT_NO_DICOM, EXIT_USAGE


@pytest.fixture(autouse=True)
def _quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOLUME_NO_PROGRESS", "1")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A T2 volume, a three-plane localizer, a series with a gap, a tilted CT, a duplicate, junk."""
    root = tmp_path_factory.mktemp("study")
    t2 = write_series(root / "t2", iop=oblique_iop(degrees=12.0), series_number=5, description="T2 tse")
    (root / "copies").mkdir()
    (root / "copies" / "dup").write_bytes(t2.paths[0].read_bytes())
    uid = "1.2.826.0.1.3680043.8.498.501"
    for k, iop in enumerate((AXIAL, CORONAL, SAGITTAL)):
        write_series(root / "loc", shape=(3, 8, 8), iop=iop, series_uid=uid, series_number=1,
                     description="scout", seed=20 + k, extra={"ImageType": ["ORIGINAL", "PRIMARY", "LOCALIZER"]})
    write_series(root / "gap", shape=(4, 6, 6), series_number=9, description="gappy",
                 positions=[np.array([0.0, 0.0, z]) for z in (0, 2, 4, 10)])
    write_series(root / "tilt", shape=(4, 6, 6), series_number=11, description="tilted", modality="CT",
                 positions=[np.array([0.0, 0.5 * k, 2.0 * k]) for k in range(4)])
    (root / "junk").mkdir()
    (root / "junk" / "README.txt").write_text("notes")
    (root / "junk" / "empty").write_bytes(b"")
    return root


def test_ls_table(capsys, study: Path) -> None:
    code, out, err = run(capsys, "ls", study)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["ID", "DESCRIPTION", "MOD", "KIND"]
    rows = {line.split()[0]: line for line in lines[1:] if line and not line.startswith(" ")}
    assert {"5", "1_axial", "1_coronal", "1_sagittal", "9", "11"} <= set(rows)
    assert "localizer" in rows["1_coronal"] and "coronal PIL" in rows["1_coronal"]
    assert "6x12x10" in rows["5"] and "3x1.5x1.25" in rows["5"] and "axial (oblique" in rows["5"]
    assert "duplicate: 1 identical file(s) ignored" in rows["5"]
    assert "gap" in out and "tilt" in rows["11"]
    assert "skipped 2 files: 1 not DICOM, 1 empty" in lines[-1]
    assert "6 stacks in 4 series" in lines[-1]
    assert "Doe" not in out and "PID-0042" not in out


def test_ls_json(capsys, study: Path) -> None:
    code, out, _ = run(capsys, "ls", study, "--json")
    assert code == 0
    data = json.loads(out)
    assert set(data) == {"path", "files", "stacks", "skipped"}
    assert data["skipped"] == {"not DICOM": 1, "empty": 1}
    assert data["files"] == 6 + 1 + 9 + 4 + 4 + 2
    by_id = {s["id"]: s for s in data["stacks"]}
    t2 = by_id["5"]
    assert t2["kind"] == "volume" and t2["shape"] == [6, 12, 10] and t2["spacing_mm"] == [3.0, 1.5, 1.25]
    assert t2["files"] == 6 and t2["series_description"] == "T2 tse" and t2["modality"] == "MR"
    assert t2["axcodes"] == "SPL" and t2["problem"] is None
    assert sorted(s["label"] for s in data["stacks"] if s["series_number"] == 1) == ["axial", "coronal", "sagittal"]
    assert any(w.startswith("gap") for w in by_id["9"]["warnings"])
    assert any(w.startswith("tilt") for w in by_id["11"]["warnings"])
    assert "Doe" not in out and "PID-0042" not in out


def test_ls_real_localizer(capsys, data_dir: Path) -> None:
    code, out, _ = run(capsys, "ls", data_dir / "dicom" / "knix_loc", "--json")
    assert code == 0
    stacks = json.loads(out)["stacks"]
    assert [(s["id"], s["kind"], s["shape"]) for s in stacks] == [
        ("1_axial", "localizer", [9, 256, 256]),
        ("1_coronal", "localizer", [9, 256, 256]),
        ("1_sagittal", "localizer", [9, 256, 256]),
    ]


def test_ls_errors(capsys, tmp_path: Path) -> None:
    code, out, err = run(capsys, "ls", tmp_path / "missing")
    assert code == EXIT_USAGE and "no such file" in err and len(err.strip().splitlines()) == 1
    (tmp_path / "a.txt").write_text("x")
    code, out, err = run(capsys, "ls", tmp_path)
    assert code == EXIT_NO_DICOM
    assert "no DICOM images found" in err and "1 not DICOM" in err
    assert "Traceback" not in err


def test_ls_shows_unloadable_stacks(capsys, tmp_path: Path) -> None:
    write_series(tmp_path, shape=(2, 6, 6), extra={"ImageType": ["ORIGINAL", "PRIMARY", "M", "MOSAIC"]})
    code, out, _ = run(capsys, "ls", tmp_path, "--json")
    assert code == 0
    (stack,) = json.loads(out)["stacks"]
    assert "MOSAIC" in stack["problem"]


def test_info_hides_identity(capsys, study: Path) -> None:
    f = next((study / "t2").iterdir())
    code, out, _ = run(capsys, "info", f)
    assert code == 0
    assert "(0020,0032) Image Position (Patient)" in out
    assert "(7FE0,0010) Pixel Data" in out
    assert "Doe" not in out and "PID-0042" not in out and "19700101" not in out
    assert out.count("(0002,0010) Transfer Syntax UID") == 1
    code, out, _ = run(capsys, "info", f, "--keep-phi")
    assert code == 0 and "Doe^Jane" in out and "PID-0042" in out


def test_info_json(capsys, study: Path) -> None:
    f = next((study / "t2").iterdir())
    code, out, _ = run(capsys, "info", f, "--json")
    assert code == 0
    elements = json.loads(out)
    assert all(set(e) == {"tag", "keyword", "name", "vr", "value"} for e in elements)
    by_kw = {e["keyword"]: e for e in elements}
    assert by_kw["TransferSyntaxUID"]["tag"] == "(0002,0010)"
    assert by_kw["PatientName"]["value"].startswith("<hidden")
    assert by_kw["Rows"] == {"tag": "(0028,0010)", "keyword": "Rows", "name": "Rows", "vr": "US", "value": 12}
    assert by_kw["PixelData"]["value"] == f"<{12 * 10 * 2} bytes>"
    assert len(by_kw["ImagePositionPatient"]["value"]) == 3
    code, out, _ = run(capsys, "info", f, "--json", "--keep-phi")
    assert {e["keyword"]: e for e in json.loads(out)}["PatientName"]["value"] == "Doe^Jane"


def test_info_errors(capsys, tmp_path: Path) -> None:
    code, _, err = run(capsys, "info", tmp_path)
    assert code == EXIT_USAGE and "one file" in err
    code, _, err = run(capsys, "info", tmp_path / "nope.dcm")
    assert code == EXIT_USAGE
    (tmp_path / "x.dcm").write_text("not dicom")
    code, _, err = run(capsys, "info", tmp_path / "x.dcm")
    assert code == EXIT_NO_DICOM and "not a DICOM file" in err and "Traceback" not in err

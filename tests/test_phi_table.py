"""A marker in every attribute of PS3.15 Table E.1-1, at every depth, against every output (issue 21).

tests/test_phi_leak.py plants markers in the 57 identity fields a scanner writes. Here the source
holds one in *every* attribute of the Basic Profile's table (456, each by its VR: text, names,
UIDs, dates, times, numbers, bytes, a code item for each sequence), three times over: at the top
of the dataset, inside an item of a sequence that is not identity itself (AnatomicRegionSequence),
and one level deeper (its AnatomicRegionModifierSequence). The file meta group holds private
information and its creator's UID, a private element and the overlay and curve rows hold markers
too. The policy's three retained attributes (``volume.phi.RETAINED``) hold ordinary values.

Every channel of tests/test_phi_leak.py then runs on it: no marker may appear in any file written,
any name, stdout or stderr, without ``--keep-phi``; ``info`` hides every planted element at every
depth, and shows them all with ``--keep-phi`` (the search is not blind). NIfTI headers say what
docs/privacy.md says they say.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import re
import zlib
from pathlib import Path

import pydicom
import pytest
import synth
from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset
from test_phi_leak import CHANNELS

import volume
from volume import phi
from volume.cli import main

UID_ROOT = "1.2.826.0.1.3680043.10.543.98"
"""Every planted UID starts so (a search for the prefix finds any of them)."""

TEXT_MARKER = re.compile(rb"qz\d{4}x")
"""Every planted text (names, descriptions, codes, bytes) holds QZnnnnX: one search finds any."""

DEPTHS = (0, 1, 2)
"""Top level, in a sequence item, in a sequence item of that item."""


def _date(n: int) -> str:
    return (dt.date(1701, 1, 1) + dt.timedelta(days=37 * n)).strftime("%Y%m%d")


def _time(n: int) -> str:
    return f"{n % 24:02d}{(7 * n) % 60:02d}{(13 * n) % 60:02d}.{n:06d}"


def marker(n: int, vr: str) -> tuple[object, list[str]]:
    """The value planted for attribute number ``n`` of VR ``vr``, and the texts that would betray
    it in an output (beyond :data:`TEXT_MARKER` and :data:`UID_ROOT`)."""
    text = f"QZ{n:04d}X"
    if vr in ("LO", "SH", "LT", "ST", "UT", "UC", "CS", "AE"):
        return text, []
    if vr == "PN":
        return f"{text}^QZ{n:04d}X", []
    if vr == "UR":
        return f"http://{text.lower()}.example", []
    if vr == "UI":
        return f"{UID_ROOT}{n:04d}", []
    if vr == "DA":
        d = _date(n)
        return d, [d, f"{d[:4]}-{d[4:6]}-{d[6:]}"]
    if vr == "DT":
        d, t = _date(n), _time(n)
        return d + t, [d, f"{d[:4]}-{d[4:6]}-{d[6:]}", t]
    if vr == "TM":
        t = _time(n)
        return t, [t, f"{t[:2]}:{t[2:4]}:{t[4:6]}.{t[7:]}"]
    if vr == "DS":
        return f"97{n:04d}.25", [f"97{n:04d}.25"]
    if vr == "IS":
        return f"96{n:05d}", [f"96{n:05d}"]
    if vr == "AS":
        return f"{n % 900 + 100:03d}W", [f"{n % 900 + 100:03d}W"]
    if vr in ("OB", "OW", "UN"):
        return (text + "\0").encode("ascii"), []
    if vr == "US":
        return n, []  # a number no search can find: `info` hiding it is what is checked
    if vr == "SQ":
        item = Dataset()
        item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = text, "99QZ", f"{text} meaning"
        return [item], []
    raise AssertionError(f"no marker for VR {vr}")


#: Attributes that must stay as each file has them for the series to load (one per file).
PER_FILE = {"SOPInstanceUID", "MediaStorageSOPInstanceUID"}


#: VRs whose planted value ``info --keep-phi`` shows as text (bytes are shown by their length).
SHOWN_AS_TEXT = ("LO", "SH", "LT", "ST", "UT", "UC", "CS", "AE", "PN", "SQ")


def plant(ds: Dataset, depth: int, extra: list[str], index: int, shown: set[str]) -> list[str]:
    """Every attribute of the table into ``ds`` (``depth`` offsets the numbers); returns their keywords.
    ``extra`` gets the texts betraying the markers, ``shown`` the text markers ``info`` would show."""
    planted = []
    for k, (keyword, (tag, _action)) in enumerate(sorted(phi.BASIC_PROFILE.items())):
        if keyword in phi.RETAINED or (depth == 0 and keyword in PER_FILE) or tag >> 16 in (0x0000, 0x0002):
            continue  # (command and file meta groups do not belong in a dataset)
        vr = dictionary_VR(tag).split(" or ")[0]
        value, tokens = marker(1000 * depth + k, vr)
        ds.add_new(tag, vr, value)
        extra.extend(tokens)
        planted.append(keyword)
        if vr in SHOWN_AS_TEXT:
            shown.add(f"qz{1000 * depth + k:04d}x")
    if depth == 0:
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"{UID_ROOT}7{index:04d}"
    return planted


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("table") / "src"
    series = synth.write_series(root / "a", shape=(5, 8, 7), series_number=3, description="table axial",
                                modality="CT", intercepts=-1024)
    extra: list[str] = []
    planted: set[str] = set()
    shown = {"qz9002x", "qz9003x", "qz9005x"}  # the private element, the overlay comment, the procedure
    for index, path in enumerate(series.paths):
        ds = pydicom.dcmread(path)
        planted |= set(plant(ds, 0, extra, index, shown))
        outer, inner = Dataset(), Dataset()
        planted |= set(plant(inner, 2, extra, index, shown))
        outer.AnatomicRegionModifierSequence = [inner]
        planted |= set(plant(outer, 1, extra, index, shown))
        ds.AnatomicRegionSequence = [outer]
        ds.ProtocolName, ds.AcquisitionTime = "table protocol", "101010"
        ds.file_meta.PrivateInformationCreatorUID = f"{UID_ROOT}6001"
        ds.file_meta.PrivateInformation = b"QZ9001X private\0"
        ds.add_new(0x00291010, "LO", "QZ9002X")  # private data (its creator stays visible)
        ds.add_new(0x00290010, "LO", "ACME 1")
        ds.add_new(0x60004000, "LT", "QZ9003X overlay comment")
        ds.add_new(0x50003000, "OB", b"QZ9004X curve\0")
        procedure = Dataset()  # not in the table: its code meanings are free text (volume.phi.EXTRA)
        procedure.CodeValue, procedure.CodingSchemeDesignator, procedure.CodeMeaning = "CTHEAD", "99QZ", "QZ9005X"
        ds.ProcedureCodeSequence = [procedure]
        ds.save_as(path, enforce_file_format=True)
    return {"root": root, "one": root / "a", "first": series.paths[0], "planted": planted,
            "tokens": sorted({t.lower() for t in extra}), "shown": shown}


def blobs(path: Path) -> list[bytes]:
    """The bytes of an output and every decoded layer a marker could hide in (as test_phi_leak does)."""
    raw = path.read_bytes()
    out = [raw]
    if raw[:2] == b"\x1f\x8b":
        out.append(gzip.decompress(raw))
    if path.suffix.lower() == ".png":
        pos = 8
        while pos + 8 <= len(raw):
            length, kind = int.from_bytes(raw[pos:pos + 4], "big"), raw[pos + 4:pos + 8]
            if kind in (b"zTXt", b"iTXt"):
                body = raw[pos + 8:pos + 8 + length]
                try:
                    out.append(zlib.decompress(body[body.index(b"\x00") + 2:]))
                except (ValueError, zlib.error):
                    pass
            pos += 12 + length
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        out.append(repr(pq.read_table(path).to_pylist()).encode())
    return out


def betrayals(tokens: list[str], folder: Path | None, *streams: str) -> list[str]:
    """Every marker found (text markers and planted UIDs by their shared shape, the rest one by one)
    in the names and bytes under ``folder`` and in ``streams``; UTF-16 text is searched too."""
    texts: list[tuple[str, bytes]] = [("stream", s.encode("utf-8", "replace")) for s in streams]
    for p in sorted(folder.rglob("*")) if folder is not None and folder.exists() else []:
        texts.append((f"name {p.name}", p.name.encode()))
        if p.is_file():
            texts += [(p.name, b) for b in blobs(p)]
    hits = []
    for where, blob in texts:
        for low in {blob.lower(), blob.lower().replace(b"\x00", b"")}:
            hits += [f"{where}: {m.group().decode()}" for m in TEXT_MARKER.finditer(low)]
            if UID_ROOT.encode() in low:
                hits.append(f"{where}: a planted UID")
            hits += [f"{where}: {t}" for t in tokens if t.encode() in low]
    return sorted(set(hits))


def test_the_search_finds_what_is_planted(source, capfd):
    """``info --keep-phi`` shows the planted values: the markers are where the search looks."""
    assert len(source["planted"]) >= 440  # the table, less the retained and the file meta rows
    code = main(["info", str(source["first"]), "--keep-phi", "--json"])
    out, _ = capfd.readouterr()
    assert code == 0
    assert betrayals(source["tokens"], None, out)  # (UIDs, dates, times, text: found)
    found = {m.decode() for m in TEXT_MARKER.findall(out.lower().encode())}
    assert found == source["shown"]  # every text marker, at every depth


@pytest.mark.parametrize("name", list(CHANNELS))
def test_no_channel_carries_any_attribute_of_the_table(source, tmp_path, capfd, name):
    out = tmp_path / "out"
    code = main([str(a) for a in CHANNELS[name](source["root"], source["one"], source["first"], out)])
    stdout, stderr = capfd.readouterr()
    assert code == 0, stderr
    assert betrayals(source["tokens"], out, stdout, stderr) == []


def _walk(entries: list[dict], depth: int = 0):
    for entry in entries:
        yield entry, depth
        if entry["vr"] == "SQ" and isinstance(entry["value"], list):
            for item in entry["value"]:
                yield from _walk(item, depth + 1)


def test_info_hides_every_planted_attribute_at_every_depth_and_in_the_file_meta(source, capfd):
    code = main(["info", str(source["first"]), "--json"])
    out, _ = capfd.readouterr()
    assert code == 0
    entries = list(_walk(json.loads(out)))
    shown = [(e["keyword"] or e["tag"], d) for e, d in entries
             if (e["keyword"] in source["planted"] or e["keyword"] in phi.EXTRA) and e["value"] != phi.HIDDEN]
    assert shown == []
    by_tag = {e["tag"]: e["value"] for e, _ in entries}
    for tag in ("(0002,0100)", "(0002,0102)", "(0029,1010)", "(6000,4000)", "(5000,3000)", "(0008,1032)"):
        assert by_tag[tag] == phi.HIDDEN, tag
    assert by_tag["(0008,2218)"] != phi.HIDDEN  # the carrying sequence is not identity: its items are searched
    depths = {d for e, d in entries if e["keyword"] in source["planted"] and e["value"] == phi.HIDDEN}
    assert depths == set(DEPTHS)
    assert TEXT_MARKER.search(out.lower().encode()) is None


def test_nifti_headers_say_only_who_wrote_them(source, tmp_path, capfd):
    """docs/privacy.md: every NIfTI header's ``descrip`` is ``volume <version>`` (convert, mip, reslice)."""
    import nibabel

    runs = [["convert", source["one"], "-o", tmp_path / "c"], ["mip", source["one"], "-o", tmp_path / "m.nii.gz"],
            ["reslice", source["one"], "--spacing", "2", "-o", tmp_path / "r.nii"]]
    for args in runs:
        assert main([str(a) for a in args]) == 0, capfd.readouterr().err
    capfd.readouterr()
    written = sorted(tmp_path.rglob("*.nii*"))
    assert len(written) == 3
    for path in written:
        assert nibabel.load(path).header["descrip"].item() == f"volume {volume.__version__}".encode(), path

"""The fast header reader gives exactly the records pydicom gives, or steps aside."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian, RLELossless
from synth import add_nested_undefined_length_sequences, oblique_iop, write_enhanced, write_series

import volume
from volume.dicom import fastheader
from volume.dicom.headers import header_wanted, iter_files, read_header


def read_fast(path: str) -> object:
    """:func:`fastheader.read_fast` of what the scanner wants."""
    return fastheader.read_fast(path, header_wanted())


def _same(path: Path) -> tuple[list, str]:
    fast = read_header(str(path), fast=True)
    slow = read_header(str(path), fast=False)
    assert fast == slow
    return fast


def _add_awkward_elements(path: Path, syntax: str) -> None:
    """Rewrite ``path`` with undefined-length nested sequences, a private UN and a 40 KB blob."""
    ds = pydicom.dcmread(path)
    add_nested_undefined_length_sequences(ds)
    ds.add_new(0x00291010, "OB" if syntax != ImplicitVRLittleEndian else "OB", b"\x01\x02" * 20000)
    ds.add_new(0x00291020, "UN", b"garbage!")
    ds.ImageComments = "a \\ backslash stays"
    ds.WindowCenter = ["40", "400"]
    ds.WindowWidth = "350 "
    ds.ImageType = "ORIGINAL"  # a single value: one string, not characters
    ds.save_as(path, enforce_file_format=True)


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian], ids=["explicit", "implicit"])
def test_same_records_as_pydicom_with_sequences_and_private_data(tmp_path: Path, syntax: str) -> None:
    info = write_series(tmp_path, shape=(3, 5, 4), iop=oblique_iop(degrees=7.0), transfer_syntax=syntax,
                        slopes=0.5, intercepts=-3.0, extra={"EchoNumbers": 2, "EchoTime": "12.5"})
    for p in info.paths:
        _add_awkward_elements(p, syntax)
        assert isinstance(read_fast(str(p)), fastheader.FastDataset)  # really the fast path
        frames, reason = _same(p)
        assert reason == "" and frames[0].image_type == ("ORIGINAL",)
        assert frames[0].acquisition["WindowCenter"] == [40.0, 400.0]
        assert frames[0].echo_number == 2 and frames[0].slope == 0.5


def test_what_it_leaves_to_pydicom(tmp_path: Path) -> None:
    big = write_series(tmp_path / "be", shape=(1, 4, 4), transfer_syntax=ExplicitVRBigEndian)
    rle = write_series(tmp_path / "rle", shape=(1, 4, 4), transfer_syntax=RLELossless)
    write_enhanced(tmp_path / "mf" / "enhanced.dcm", shape=(2, 4, 4))
    latin = write_series(tmp_path / "latin", shape=(1, 4, 4),
                         extra={"SpecificCharacterSet": "ISO_IR 100", "PatientName": "Müller^Jürgen"})
    assert read_fast(str(big.paths[0])) is None
    assert read_fast(str(tmp_path / "mf" / "enhanced.dcm")) is None
    assert isinstance(read_fast(str(latin.paths[0])), fastheader.FastDataset)  # its character set
    assert isinstance(read_fast(str(rle.paths[0])), fastheader.FastDataset)
    for p in iter_files([tmp_path]):
        frames, reason = _same(Path(p))
        assert reason == "" and frames
    assert read_header(str(latin.paths[0]))[0][0].identity["PatientName"] == "Müller^Jürgen"


def test_truncated_and_junk(tmp_path: Path) -> None:
    info = write_series(tmp_path / "s", shape=(1, 30, 30))
    data = info.paths[0].read_bytes()
    cut = tmp_path / "cut"
    cut.write_bytes(data[:-100])  # pixel data shorter than its length says
    assert read_header(str(cut)) == ([], "truncated or corrupt")
    head = tmp_path / "head"
    head.write_bytes(data[:300])  # ends inside the header
    assert read_header(str(head))[1] == "truncated or corrupt"
    junk = tmp_path / "junk"
    junk.write_bytes(b"\0" * 128 + b"DICM" + np.random.default_rng(1).bytes(500))
    assert read_header(str(junk))[1] in ("not DICOM", "truncated or corrupt", "no pixel data")
    text = tmp_path / "t.txt"
    text.write_text("hello")
    assert read_header(str(text)) == ([], "not DICOM")


def test_same_records_on_real_data(data_dir: Path) -> None:
    files = list(iter_files([data_dir]))
    assert files
    fast_used = 0
    for p in files:
        _same(Path(p))
        fast_used += isinstance(read_fast(p), fastheader.FastDataset)
    assert fast_used > len(files) // 2


@pytest.mark.parametrize("charset, text", [
    ("ISO_IR 100", "IRM cérébrale, neuro-crâne"),   # BRAINIX's own description (Latin-1)
    ("ISO_IR 192", "Müller^Łukasz 東京"),           # UTF-8
    ("ISO_IR 144", "Иванов^Пётр"),                  # Cyrillic
])
def test_text_beyond_ascii_is_read_in_the_files_character_set(tmp_path: Path, charset: str, text: str) -> None:
    """Names and descriptions in the dataset's character set take the fast path, with pydicom's values."""
    info = write_series(tmp_path, shape=(2, 4, 4), transfer_syntax=ExplicitVRLittleEndian)
    for p in info.paths:
        ds = pydicom.dcmread(p)
        ds.SpecificCharacterSet = charset
        ds.PatientName = text if "^" in text else "Doe^Jane"
        ds.StudyDescription = text.replace("^", " ")
        ds.InstitutionAddress = text.replace("^", ", ")
        ds.save_as(p, enforce_file_format=True)
        fast = read_fast(str(p))
        assert isinstance(fast, fastheader.FastDataset), charset
        slow = pydicom.dcmread(p, stop_before_pixels=True)
        for keyword in ("PatientName", "StudyDescription", "InstitutionAddress"):
            assert fast.values[keyword] == str(slow[keyword].value), keyword
        _same(p)


def test_text_in_a_character_set_it_does_not_decode_is_left_to_pydicom(tmp_path: Path) -> None:
    """ISO 2022 text is ASCII bytes with escape sequences: read as ASCII it would be wrong."""
    info = write_series(tmp_path, shape=(1, 4, 4), transfer_syntax=ExplicitVRLittleEndian)
    ds = pydicom.dcmread(info.paths[0])
    ds.SpecificCharacterSet = ["", "ISO 2022 IR 87"]  # Japanese with code extensions
    ds.PatientName = "Yamada^Tarou=山田^太郎"
    ds.save_as(info.paths[0], enforce_file_format=True)
    assert read_fast(str(info.paths[0])) is None
    frames, _ = _same(info.paths[0])
    assert frames[0].identity["PatientName"] == "Yamada^Tarou=山田^太郎"
    no_set = write_series(tmp_path / "none", shape=(1, 4, 4), extra={"PatientName": "Müller^Jürgen"})
    assert read_fast(str(no_set.paths[0])) is None  # beyond ASCII, no character set named


def test_every_brainix_file_takes_the_fast_path(data_dir: Path) -> None:
    """BRAINIX's Latin-1 study description once sent every file of it to pydicom (0.2 s of import)."""
    files = list(iter_files([data_dir / "dicom" / "brainix"]))
    assert files
    slow = [p for p in files if not isinstance(read_fast(p), fastheader.FastDataset)]
    assert slow == []


def test_pydicom_test_files() -> None:
    from pydicom.data import get_testdata_file

    folder = Path(get_testdata_file("CT_small.dcm")).parent
    for p in sorted(folder.iterdir()):
        if p.is_file() and "truncated" not in p.name and p.stat().st_size < 2_000_000:
            _same(p)


def test_embedded_tag_table_is_pydicoms_dictionary() -> None:
    """Every keyword the scanner reads is in the embedded table, with pydicom's tag and VR."""
    from pydicom.datadict import dictionary_VR, tag_for_keyword

    from volume.dicom import bids, sidecar_keys
    from volume.dicom._tags import PRIVATE_TAGS, TAGS
    from volume.dicom.headers import (
        ACQUISITION_KEYWORDS,
        HEADER_KEYWORDS,
        HEADER_SEQUENCES,
        IDENTITY_KEYWORDS,
    )

    nested = {kw for inner in HEADER_SEQUENCES.values() for kw in inner}
    scanned = set(HEADER_KEYWORDS + ACQUISITION_KEYWORDS + IDENTITY_KEYWORDS)
    read = scanned | nested | set(bids.HEADER_KEYWORDS) | set(sidecar_keys.HEADER_KEYWORDS)
    assert read == set(TAGS)  # every entry is read by someone
    for keyword, (tag, vr) in TAGS.items():
        assert tag_for_keyword(keyword) == tag, keyword
        assert dictionary_VR(tag) == vr, keyword
    expected = {TAGS[kw][0]: kw for kw in scanned} | {tag: kw for kw, (tag, _vr) in PRIVATE_TAGS.items()}
    assert expected == {tag: kw for tag, (kw, _vr) in header_wanted().elements.items()}


def test_wanted_takes_keywords_beyond_the_table() -> None:
    """A keyword missing from the embedded table comes from pydicom; an unknown one is refused;
    what a reader wants is its own frozen object, never a global setting."""
    before = dict(header_wanted().elements)
    mine = fastheader.wanted(["Rows", "PatientComments"])
    assert dict(mine.elements) == {0x00280010: ("Rows", "US"), 0x00104000: ("PatientComments", "LT")}
    with pytest.raises(ValueError, match="NoSuchKeyword"):
        fastheader.wanted(["Rows", "NoSuchKeyword"])
    with pytest.raises(TypeError):
        mine.elements[0x00280011] = ("Columns", "US")  # type: ignore[index]
    assert dict(header_wanted().elements) == before


def test_native_series_scans_without_importing_pydicom(tmp_path: Path) -> None:
    """Scanning native little-endian files never imports pydicom (its import costs 0.13-0.2 s)."""
    import subprocess
    import sys

    write_series(tmp_path / "s", shape=(3, 4, 4), transfer_syntax=ImplicitVRLittleEndian)
    write_series(tmp_path / "e", shape=(2, 4, 4), transfer_syntax=ExplicitVRLittleEndian)
    code = (
        "import sys, volume\n"
        "found = volume.scan(sys.argv[1], workers=1)\n"
        "print(len(found.stacks), sum(len(s.frames) for s in found.stacks), 'pydicom' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["2", "5", "False"], out.stdout + out.stderr


def test_scan_keeps_a_small_record_per_file(tmp_path: Path) -> None:
    """Files of a stack share one record of everything they have in common (series, size,
    orientation, acquisition and identity dicts); each file keeps only what varies (path, SOP UID,
    position, pixel offset, rescale, times): about 700 bytes per file here, with paths of ~90
    characters. Per-file values are not kept in the value cache."""
    import gc
    import sys
    import tracemalloc

    import volume

    scan_module = sys.modules["volume.dicom.headers"]
    extra = {"Manufacturer": "ACME", "ProtocolName": "t1_se", "RepetitionTime": "500", "EchoTime": "12",
             "PatientName": "Doe^Jane", "PatientID": "X1", "StudyDate": "20240101", "ImageType": ["ORIGINAL", "PRIMARY"]}
    for k in range(2):
        write_series(tmp_path / f"s{k}", shape=(80, 2, 2), series_number=k + 1, extra=extra)
    volume.scan(tmp_path / "s0", workers=1)  # lazy imports and first-call caches outside the trace
    fastheader._CACHE.clear()
    scan_module._SHARED.clear()
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        found = volume.scan(tmp_path, workers=1)
        gc.collect()
        per_file = (tracemalloc.get_traced_memory()[0] - before) / found.report.n_files
    finally:
        tracemalloc.stop()
    frames = found.stacks[0].frames
    assert len(found.stacks) == 2 and len(frames) == 80
    assert frames[0].acquisition is frames[-1].acquisition and frames[0].identity is frames[-1].identity
    assert frames[0].iop is frames[-1].iop and frames[0].ipp != frames[-1].ipp
    assert frames[0].acquisition["ProtocolName"] == "t1_se" and frames[0].identity["PatientID"] == "X1"
    assert frames[0]._common is frames[-1]._common  # one shared part for the stack
    assert per_file < 850, per_file  # 700 measured; 1,028 before the shared part


def test_files_whose_windows_differ_share_one_part_and_keep_their_own_windows(tmp_path: Path) -> None:
    """Windows and times often differ from file to file of a stack: each record keeps its own
    acquisition fields, and the files still share one part of everything else."""
    info = write_series(tmp_path, shape=(4, 4, 4), extra=lambda k: {
        "Manufacturer": "ACME", "WindowCenter": str(40 + k), "WindowWidth": "400"})
    frames = volume.scan(tmp_path, workers=1).stacks[0].frames
    assert [f.acquisition["WindowCenter"] for f in frames] == [40.0, 41.0, 42.0, 43.0]
    assert all(f.acquisition["Manufacturer"] == "ACME" for f in frames)
    assert all(f._common is frames[0]._common for f in frames)
    assert frames[1].replace(acquisition={}).acquisition == {} and frames[1].acquisition["WindowWidth"] == 400.0
    assert frames[1] != frames[2] and frames[2] == frames[2].replace()
    assert len(info.paths) == 4


def test_read_set_memo_answers_as_the_function_would() -> None:
    """A part of a record made once per distinct set of the values it read: a header that agrees
    on what the function read gets the remembered result; one that differs in any of them (or
    makes the function read other keywords) gets the function's own answer."""
    import sys

    memo_type = sys.modules["volume.dicom.headers"].ReadSetMemo
    calls = []

    def fn(get, scale):  # reads B only when A says so; a sequence's item (a dict) is a value too
        calls.append(1)
        a = get("A")
        return (a, get("B") * scale if a == "yes" else None, get("C"))

    memo = memo_type(fn)
    item = ({"CodeValue": "ms"},)
    headers = [
        {"A": "yes", "B": 2, "C": item, "D": 1},
        {"A": "yes", "B": 2, "C": item, "D": 2},  # differs only where fn never reads: a hit
        {"A": "yes", "B": 3, "C": item},
        {"A": "no", "B": 5, "C": item},
        {"A": "no", "B": 6, "C": item},  # B is not read when A is "no": a hit
        {"A": "yes", "B": 2, "C": ({"CodeValue": "s"},)},
    ]
    for h in headers:
        assert memo(h.get, 10) == fn(h.get, 10)
    assert memo(headers[0].get, 100) == ("yes", 200, item)  # the arguments are part of the key
    assert len(calls) == 2 * len(headers) - 2 + 1


def _siemens_mosaics(folder: Path, *, bits_stored: int = 16) -> list[Path]:
    """Synthetic Siemens mosaics (two volumes of 5 tiles), garbage above ``bits_stored``."""
    from synth import write_mosaic

    info = write_mosaic(folder, shape=(5, 6, 7), n_volumes=2)
    for p in info.paths:
        ds = pydicom.dcmread(p)
        ds.Manufacturer = "SIEMENS"
        if bits_stored < 16:
            ds.BitsStored, ds.HighBit = bits_stored, bits_stored - 1
            stored = np.frombuffer(ds.PixelData, np.uint16).copy()
            stored[::3] |= np.uint16(0xFFFF ^ ((1 << bits_stored) - 1))
            ds.PixelData = stored.tobytes()
        ds.save_as(p, enforce_file_format=True)
    return info.paths


def test_siemens_mosaics_take_the_fast_path_with_pydicoms_records_and_pixels(tmp_path: Path) -> None:
    """A Siemens mosaic's CSA headers are wanted elements (their bytes), so its header is read
    without pydicom; its tiles are read straight from the file, as pydicom decodes them (the
    bits above BitsStored cleared)."""
    from volume.dicom import pixels
    from volume.dicom.loader import scan

    paths = _siemens_mosaics(tmp_path, bits_stored=12)
    for p in paths:
        assert isinstance(read_fast(str(p)), fastheader.FastDataset)
        frames, reason = _same(p)
        assert reason == "" and len(frames) == 5 and frames[0].mosaic == 3
    stack = scan(tmp_path, workers=1).stacks[0]
    for p in paths:
        tiles = [f for f in stack.frames if f.path == str(p)]
        native = pixels._mosaic_tiles(tiles)
        assert native is not None
        by_pydicom = pixels._decode_with_pydicom(str(p), tiles)
        assert all(np.array_equal(a, b) for a, b in zip(native, by_pydicom, strict=True))
    assert max(int(t.max()) for t in native) < 2**12


def test_a_siemens_mosaic_converts_without_importing_pydicom(tmp_path: Path) -> None:
    """pydicom's import (0.2 s) was paid by every conversion of Siemens EPI mosaics."""
    import subprocess
    import sys

    _siemens_mosaics(tmp_path / "m")
    code = (
        "import sys, volume\n"
        "vol = volume.load(sys.argv[1])\n"
        "print(vol.shape, vol.n_frames, 'pydicom' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "m")], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["(5,", "6,", "7)", "2", "False"], out.stdout + out.stderr

"""The compiled reader's one call (``_walk.read``: open, read, walk, convert) answers as the Python
reader does: the same values, of the same types, or it steps aside and the Python reader decides.

The Python converter (:func:`volume.dicom.fastheader._value`) is the reference: the compiled one
must give what it gives for every value it converts, and convert nothing the Python one refuses.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from synth import write_series

from volume.dicom import fastheader
from volume.dicom.headers import header_wanted, iter_files, read_header

pytestmark = pytest.mark.skipif(fastheader._walk is None, reason="the compiled walk is not built (no C compiler)")

#: VRs the converter meets: the file's (explicit) and the dictionary's (implicit, or a file's UN).
TEXT_VRS = ("AE", "AS", "CS", "DA", "DT", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR", "UT")
NUMBER_VRS = ("DS", "IS")
BINARY_VRS = ("US", "SS", "UL", "SL", "FL", "FD", "OB", "OW")
OTHER_VRS = ("UN", "SQ", "AT", "OF", "OD", "OL", "OV", "SV", "UV")

#: Characters of the mutated values: numbers' parts, separators, padding, odd spaces, words float()
#: takes (inf, nan), an underscore (float("1_0") is 10.0), bytes beyond ASCII.
ALPHABET = [*b"0123456789", *b"+-.eE", *b" \\", 0, 9, 10, 13, 0x1C, 0x1F, *b"_xinfa", 0x80, 0xC3, 0xA9]


def typed(value: Any) -> Any:
    """A value with its type spelt out (floats by their bits): equal only when both are the same."""
    if isinstance(value, tuple):
        return ("tuple", tuple(typed(v) for v in value))
    if isinstance(value, float):
        return ("float", value.hex())
    return (type(value).__name__, value)


def python_value(raw: bytes, file_vr: bytes | None, dict_vr: str) -> tuple[bool, Any]:
    """(True, value) from the Python converter, (False, None) when it refuses the value."""
    try:
        return True, fastheader._value(raw, file_vr, "Keyword", dict_vr, False, None)
    except (fastheader._Unsupported, ValueError, UnicodeDecodeError, fastheader.StructError):
        return False, None


def check(raw: bytes, file_vr: bytes | None, dict_vr: str) -> bool:
    """The compiled converter gives the Python one's value or steps aside; True when it converted."""
    converted, value = fastheader._walk.convert(raw, file_vr, dict_vr)
    if converted:
        ok, expected = python_value(raw, file_vr, dict_vr)
        assert ok, (raw, file_vr, dict_vr, value)
        assert typed(value) == typed(expected), (raw, file_vr, dict_vr)
    return converted


def _numbers(rng: np.random.Generator) -> bytes:
    """Numbers as writers spell them: one or several, padded, signed, with exponents."""
    parts = []
    for _ in range(int(rng.integers(1, 4))):
        x = float(rng.normal(0, 10.0 ** int(rng.integers(-8, 12))))
        spelt = [repr(x), f"{x:.6g}", f"{x:e}", f"{x:.3f}", str(int(x)), f"{int(x):+d}", f"{x:.0f}."][int(rng.integers(7))]
        parts.append(" " * int(rng.integers(0, 2)) + spelt + " " * int(rng.integers(0, 2)))
    return "\\".join(parts).encode()


def test_the_converter_agrees_on_well_formed_values() -> None:
    rng = np.random.default_rng(7)
    converted = 0
    for _ in range(4000):
        raw = _numbers(rng)
        for vr in NUMBER_VRS:
            converted += check(raw, vr.encode(), vr)
            converted += check(raw + b" ", None, vr)
            converted += check(raw + b"\0", b"UN", vr)
    for vr in (*TEXT_VRS, *BINARY_VRS):
        for raw in (b"", b"ab", b"ORIGINAL\\PRIMARY\\M\\ND ", b"1.2.840.10008.5.1.4.1.1.4\0", b"\x01\x02\x03\x04" * 3):
            converted += check(raw, vr.encode(), vr)
            converted += check(raw, None, vr)
    assert converted > 12000  # most of them in C (IS refuses fractions): the test compares something


def test_the_converter_agrees_on_mutated_values() -> None:
    """200,000 values of random bytes from the characters numbers and text are made of."""
    rng = np.random.default_rng(24)
    vrs = (*TEXT_VRS, *NUMBER_VRS, *BINARY_VRS, *OTHER_VRS)
    converted = 0
    for k in range(200_000):
        raw = bytes(rng.choice(ALPHABET, size=int(rng.integers(0, 12))).tolist())
        vr = vrs[k % len(vrs)]
        dict_vr = vr if k % 3 else vrs[int(rng.integers(len(vrs)))]
        file_vr = None if k % 5 == 0 else vr.encode()
        converted += check(raw, file_vr, dict_vr)
    assert converted > 50_000


def test_the_converter_steps_aside_for_what_it_does_not_read() -> None:
    convert = fastheader._walk.convert
    assert convert(b"M\xc3\xbcller", b"PN", "PN") == (False, None)  # the character set decides
    assert convert(b"1.5", b"IS", "IS") == (False, None)  # Python refuses it: pydicom reads the file
    assert convert(b"1\\\\2", b"DS", "DS") == (False, None)  # an empty number in a list: refused too
    assert convert(b"1_000", b"DS", "DS") == (False, None)  # float() reads it; left to float()
    assert convert(b"\x01\x02", b"UN", "US or SS") == (False, None)
    assert convert(b"\x01\x02", b"UN", "US") == (True, 0x0201)
    assert convert(b"-1.5e3\\ 2 ", b"DS", "DS") == (True, (-1500.0, 2.0))
    assert convert(b"  ", None, "IS") == (True, None)
    assert convert(b"", b"US", "US") == (True, "")  # as fastheader._value: an empty value is ""
    with pytest.raises(ValueError):
        convert(b"1", b"XX", "DS")


def _answer(result: object) -> object:
    if isinstance(result, fastheader.FastDataset):
        pixel = None if result._pixel is None else (result._pixel.value_tell, result._pixel.length)
        values = {k: typed(v) if not isinstance(v, tuple) or not v or type(v[0]) is not dict else v
                  for k, v in result.values.items()}
        return ("dataset", values, pixel, result.file_meta, result.compression)
    return result


def three_ways(path: str) -> tuple[object, object, object]:
    """(the Python walk, the compiled walk, the compiled read) of one file; the read's None means
    it stepped aside (the caller then asks the walks)."""
    compiled = header_wanted()
    python = dataclasses.replace(compiled, table=None)
    read = fastheader.read_compiled(path, compiled)
    return (_answer(fastheader.read_fast(path, python)), _answer(fastheader.read_fast(path, compiled, compiled=False)),
            None if read is None else _answer(read))


def test_the_read_agrees_on_real_files(data_dir: Path) -> None:
    files = [p for p in iter_files([data_dir]) if Path(p).stat().st_size < 50_000_000]
    read = 0
    for _ in range(2):  # the second time, values are remembered
        for p in files:
            python, walked, compiled = three_ways(p)
            assert python == walked, p
            if compiled is not None:
                assert compiled == python, p
                read += 1
    assert read > len(files) // 2


def _with_values(path: Path, rng: np.random.Generator) -> bytes:
    """A file's bytes with the values of its per-file elements (position, number, time, UID,
    windows) replaced by random bytes of the same length from :data:`ALPHABET`."""
    data = bytearray(path.read_bytes())
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    for keyword in ("ImagePositionPatient", "InstanceNumber", "AcquisitionTime", "SOPInstanceUID", "WindowCenter",
                    "WindowWidth", "SliceLocation", "PatientName"):
        elem = ds.get_item(keyword)  # still raw: where its value is
        if elem is None or rng.random() < 0.5:
            continue
        length = elem.length
        data[elem.value_tell : elem.value_tell + length] = bytes(rng.choice(ALPHABET, size=length).tolist())
    return bytes(data)


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian], ids=["explicit", "implicit"])
def test_the_read_agrees_on_files_with_mutated_values(tmp_path: Path, syntax: str) -> None:
    info = write_series(tmp_path / "seed", shape=(2, 4, 4), transfer_syntax=syntax,
                        extra={"SliceLocation": "12.5", "WindowCenter": "40", "WindowWidth": "400",
                               "PatientName": "Doe^Jane", "AcquisitionTime": "101010.5"})
    rng = np.random.default_rng(5)
    outcomes = set()
    for k in range(600):
        path = tmp_path / f"case{k % 20}.dcm"
        path.write_bytes(_with_values(info.paths[k % 2], rng))
        python, walked, compiled = three_ways(str(path))
        assert python == walked, k
        if compiled is not None:
            assert compiled == python, k
        outcomes.add((compiled is not None, python if not isinstance(python, tuple) else "dataset"))
    assert {(True, "dataset"), (False, "dataset"), (False, None)} <= outcomes


def test_the_read_steps_aside_for_files_it_does_not_read(tmp_path: Path) -> None:
    """Empty files, folders, named pipes (never opened), gzip files, no preamble: the Python reader
    and the scanner's size check decide, as before."""
    info = write_series(tmp_path / "s", shape=(1, 4, 4))
    wanted = header_wanted()
    assert isinstance(fastheader.read_compiled(str(info.paths[0]), wanted), fastheader.FastDataset)
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "short").write_bytes(b"DICM")
    (tmp_path / "headless").write_bytes(info.paths[0].read_bytes()[128:])
    os.mkfifo(tmp_path / "pipe")
    for name in ("empty", "short", "headless", "pipe", "missing", "s"):
        assert fastheader.read_compiled(str(tmp_path / name), wanted) is None, name
    assert fastheader.read_compiled("bad\0name", wanted) is None
    assert read_header(str(tmp_path / "pipe")) == ([], "empty")  # never opened: a pipe would wait for a writer
    assert read_header(str(tmp_path / "empty")) == ([], "empty")

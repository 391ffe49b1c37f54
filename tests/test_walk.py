"""The compiled element walk (volume/dicom/_walk.c) answers exactly as the Python walk does.

The Python walk of :mod:`volume.dicom.fastheader` is the reference; the compiled one must give the
same values, the same pixel position and the same reason to step aside, on real files, on files
with every awkward structure, and on thousands of damaged ones (cut, bytes changed, lengths
broken), where it must also never read outside the file's bytes.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from synth import add_nested_undefined_length_sequences, oblique_iop, write_series

from volume.dicom import fastheader
from volume.dicom.headers import header_wanted, iter_files, read_header

pytestmark = pytest.mark.skipif(fastheader._walk is None, reason="the compiled walk is not built (no C compiler)")


def _answer(result: object) -> object:
    """A read_fast result as plain data: the values, the pixel data's place, the file meta."""
    if isinstance(result, fastheader.FastDataset):
        pixel = None if result._pixel is None else (result._pixel.value_tell, result._pixel.length)
        return ("dataset", result.values, pixel, result.file_meta, result.compression)
    return result


def both(path: Path | str) -> tuple[object, object]:
    """(Python walk, compiled walk) answers for one file."""
    compiled = header_wanted()
    python = dataclasses.replace(compiled, table=None)
    return _answer(fastheader.read_fast(str(path), python)), _answer(fastheader.read_fast(str(path), compiled))


def _awkward(path: Path, syntax: str) -> None:
    """Undefined-length nested sequences, items of both kinds, a wanted sequence, private blobs."""
    ds = pydicom.dcmread(path)
    add_nested_undefined_length_sequences(ds)
    mapping = Dataset()
    mapping.RealWorldValueSlope = 2.5
    mapping.RealWorldValueIntercept = -1.0
    units = Dataset()
    units.CodeValue = "ms"
    mapping.MeasurementUnitsCodeSequence = [units]
    ds.RealWorldValueMappingSequence = [mapping]
    ds.add_new(0x00291010, "OB", b"\x01\x02" * 2000)
    ds.add_new(0x00291020, "UN", b"garbage!")
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.StudyDescription = "IRM cérébrale"
    ds.save_as(path, enforce_file_format=True)


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Synthetic files of both syntaxes with every structure the walk meets."""
    root = tmp_path_factory.mktemp("walk")
    paths = []
    for syntax, name in ((ExplicitVRLittleEndian, "explicit"), (ImplicitVRLittleEndian, "implicit")):
        info = write_series(root / name, shape=(2, 6, 5), iop=oblique_iop(degrees=5.0), transfer_syntax=syntax,
                            slopes=0.5, intercepts=-3.0)
        for p in info.paths:
            _awkward(p, syntax)
        paths.extend(info.paths)
    return paths


def test_same_answers_on_synthetic_files(seeds: list[Path]) -> None:
    for p in seeds:
        python, compiled = both(p)
        assert python == compiled, p
        assert python[0] == "dataset" and python[1]["RealWorldValueMappingSequence"][0]["RealWorldValueSlope"] == 2.5


def test_same_answers_on_real_files(data_dir: Path) -> None:
    files = [p for p in iter_files([data_dir]) if Path(p).stat().st_size < 50_000_000]
    assert files
    datasets = 0
    for p in files:
        python, compiled = both(p)
        assert python == compiled, p
        datasets += isinstance(python, tuple)
    assert datasets > len(files) // 2


def _damaged(data: bytes, rng: np.random.Generator) -> bytes:
    """``data`` cut, with bytes changed or an element length broken (in its first 4 KB)."""
    out = bytearray(data)
    kind = rng.integers(4)
    if kind == 0:
        return bytes(out[: int(rng.integers(0, len(out)))])
    end = min(len(out), 4096)
    if kind == 1:
        for _ in range(int(rng.integers(1, 6))):
            out[int(rng.integers(132, end))] = int(rng.integers(256))
    elif kind == 2:
        at = int(rng.integers(132, end - 4))
        out[at : at + 4] = rng.bytes(4)
    else:  # an undefined length where a length was
        at = int(rng.integers(132, end - 4))
        out[at : at + 4] = b"\xff\xff\xff\xff"
    return bytes(out)


def test_same_answers_on_damaged_files(seeds: list[Path], tmp_path: Path) -> None:
    """1,500 damaged files: the two walks agree on each (and the compiled one never crashes)."""
    rng = np.random.default_rng(24)
    originals = [p.read_bytes() for p in seeds]
    answers = set()
    for k in range(1500):
        path = tmp_path / f"case{k % 50}"
        path.write_bytes(_damaged(originals[k % len(originals)], rng))
        python, compiled = both(path)
        assert python == compiled, k
        answers.add(python if not isinstance(python, tuple) else "dataset")
    assert {"dataset", None, fastheader.TRUNCATED} <= answers  # the damage reached every outcome


def test_same_records_either_way(seeds: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """The scanner's records are the same, whichever walk read the header."""
    import sys

    scan_module = sys.modules["volume.dicom.headers"]
    compiled = [read_header(str(p)) for p in seeds]
    python = dataclasses.replace(scan_module.header_wanted(), table=None)
    monkeypatch.setattr(scan_module, "header_wanted", lambda: python)
    assert [read_header(str(p)) for p in seeds] == compiled
    assert all(frames for frames, _reason in compiled)


def test_walk_refuses_what_is_not_its_table() -> None:
    with pytest.raises(ValueError):
        fastheader._walk.walk(b"\0" * 200, 132, True, "not a table", 200)
    with pytest.raises(TypeError):
        fastheader._walk.table([1, 2])
    with pytest.raises(TypeError):  # a cache needs the dict its values go into
        fastheader._walk.walk(b"\0" * 200, 132, True, header_wanted().table, 200, {})


def test_remembered_values_depend_on_the_character_set(tmp_path: Path) -> None:
    """The walk looks a value up by its bytes and the character set's: the same bytes in a file
    of another character set are converted again (UTF-8 and Latin-1 read them differently)."""
    info = write_series(tmp_path, shape=(2, 4, 4), transfer_syntax=ExplicitVRLittleEndian)
    texts = {"ISO_IR 192": "Müller", "ISO_IR 100": "MÃ¼ller"}  # the same bytes: 4d c3 bc 6c 6c 65 72
    assert texts["ISO_IR 192"].encode("utf-8") == texts["ISO_IR 100"].encode("latin-1")
    for p, (charset, text) in zip(info.paths, texts.items(), strict=True):
        ds = pydicom.dcmread(p)
        ds.SpecificCharacterSet = charset
        ds.StudyDescription = text
        ds.save_as(p, enforce_file_format=True)
    for p, text in zip(info.paths, texts.values(), strict=True):
        for _ in range(2):  # the second read finds the first's values remembered
            assert fastheader.read_fast(str(p), header_wanted()).values["StudyDescription"] == text
        python, compiled = both(p)
        assert python == compiled

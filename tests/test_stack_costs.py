"""The per-stack fast paths of a conversion (issue 24, third round) give what the plain paths give:
uncompressed images read by ``preadv`` into their place, fractional rescales checked in pieces that
cross image boundaries, the Siemens protocol (ASCCONV) parsed in one pass over its text."""

from __future__ import annotations

import random
import re
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
import synth

import volume.dicom.pixels as pixels
import volume.io.nifti_stream as ns
from volume.dicom import scan
from volume.dicom.fastheader import read_raw
from volume.dicom.private import creator_blocks, find_block, private_value
from volume.dicom.siemens import parse_ascconv
from volume.dicom.source import DicomSource
from volume.errors import InputReadError, UnsupportedDicomError
from volume.io.nifti import write_nifti

BITS_STORED = 12
"""Bits stored of the 16-bit test images whose upper bits hold garbage (overlays)."""


def _stack(folder: Path):
    (stack,) = [s for s in scan(folder).stacks if not s.problem]
    return stack


def _with_garbage_above(paths: list[Path], bits_stored: int, signed: bool) -> None:
    """Rewrite each file with BitsStored ``bits_stored`` and garbage in every third pixel's upper bits."""
    for p in paths:
        ds = pydicom.dcmread(p)
        stored = ds.pixel_array.astype(np.int16 if signed else np.uint16)
        raw = stored.view(np.uint16)
        upper = np.uint16(0xFFFF ^ ((1 << bits_stored) - 1))
        raw[::3] = (raw[::3] & ~upper) | (np.uint16(0x2000) if signed else upper)  # not the sign's copies
        ds.BitsStored, ds.HighBit = bits_stored, bits_stored - 1
        ds.PixelData = raw.tobytes()
        ds.save_as(p, enforce_file_format=True)


def _read_both_ways(stack, monkeypatch) -> tuple[np.ndarray, np.ndarray]:
    direct = pixels.read_stack(stack)
    with monkeypatch.context() as m:
        m.setattr(pixels, "_PREADV", False)
        through_file = pixels.read_stack(stack)
    return direct, through_file


@pytest.mark.skipif(not pixels._PREADV, reason="no os.preadv on this platform")
@pytest.mark.parametrize("signed", [False, True])
def test_direct_read_clears_or_sign_extends_the_bits_above_bits_stored(tmp_path, monkeypatch, signed) -> None:
    field = (lambda x, y, z: 100.0 + 3 * x - 2 * y + z) if not signed else (lambda x, y, z: -300.0 + 3 * x - 2 * y + z)
    info = synth.write_series(tmp_path / "in", shape=(4, 7, 9), field_fn=field,
                              stored_dtype=np.int16 if signed else np.uint16,
                              extra={"PixelRepresentation": 1} if signed else None)
    _with_garbage_above(info.paths, BITS_STORED, signed)
    stack = _stack(tmp_path / "in")
    direct, through_file = _read_both_ways(stack, monkeypatch)
    assert direct.dtype == through_file.dtype and np.array_equal(direct, through_file)
    vol = DicomSource(stack).load()
    synth.check_volume_against_field(vol, field)  # the garbage is gone: values are the field's


@pytest.mark.skipif(not pixels._PREADV, reason="no os.preadv on this platform")
def test_direct_read_of_a_file_cut_after_the_scan_names_it(tmp_path, monkeypatch) -> None:
    info = synth.write_series(tmp_path / "in", shape=(3, 8, 8))
    stack = _stack(tmp_path / "in")
    cut = stack.frames[1].path
    data = Path(cut).read_bytes()
    Path(cut).write_bytes(data[:-10])
    messages = []
    for preadv in (True, False):
        monkeypatch.setattr(pixels, "_PREADV", preadv)
        with pytest.raises(UnsupportedDicomError) as caught:
            pixels.read_stack(stack)
        messages.append(str(caught.value))
    assert messages[0] == messages[1]
    assert Path(cut).name in messages[0] and "ends early (118 of 128 bytes)" in messages[0]
    assert len(info.paths) == 3


def test_a_vanished_file_is_reported_as_unreadable(tmp_path) -> None:
    synth.write_series(tmp_path / "in", shape=(3, 8, 8))
    stack = _stack(tmp_path / "in")
    Path(stack.frames[2].path).unlink()
    with pytest.raises(InputReadError, match="cannot read .*No such file.*moved or deleted"):
        pixels.read_stack(stack)


#: (write_series keywords, the stored NIfTI dtype): uniform fractional rescales.
FRACTIONAL = {
    "int16": (dict(slopes=0.25, intercepts=-7.5), np.int16),
    "uint16_late": (dict(slopes=0.5, intercepts=-7.5, field_fn=lambda x, y, z: 16000.0 + 100.0 * (z - 20.0) + x), np.uint16),
    "too_wide_float32": (dict(slopes=0.01, stored_dtype=np.int32,
                              field_fn=lambda x, y, z: 600.0 + 10.0 * (z - 20.0) + 0.5 * x), np.float32),
}


@pytest.mark.parametrize("name", list(FRACTIONAL))
@pytest.mark.parametrize("piece", [7, 120, 2**18])
def test_fractional_rescale_checked_in_pieces_across_images_is_byte_identical(tmp_path, monkeypatch, name,
                                                                              piece) -> None:
    """Pieces of 7 values cross every image boundary (12x10 images); 2**18 holds the whole slab."""
    kw, dtype = FRACTIONAL[name]
    stack = _stack(synth.write_series(tmp_path / "in", **kw).folder)
    source = DicomSource(stack)
    opts = dict(rescale=source.values.rescale, description="volume test")
    a = write_nifti(source.load(), tmp_path / "memory.nii", **opts)
    monkeypatch.setattr(ns, "SCALE_CHUNK_VALUES", piece)
    b = tmp_path / "stream.nii"
    ns.write_nifti_stack(source, b, slab_bytes=10**9, **opts)  # one slab: every piece in one call
    assert a.read_bytes() == b.read_bytes()
    assert nib.load(b).get_data_dtype() == dtype


def _spy_stored_slabs(monkeypatch) -> list[str]:
    """What each slab given as stored integers became: ``array`` (written as read), ``misfit`` (the
    type is too narrow: written again), ``values`` (checked value by value)."""
    seen: list[str] = []
    real = ns._store_integers

    def spy(*args, **kwargs):
        got = real(*args, **kwargs)
        seen.append("values" if got is None else "misfit" if got is False else "array")
        return got

    monkeypatch.setattr(ns, "_store_integers", spy)
    return seen


def _both_writers(folder, tmp_path, monkeypatch, suffix: str = ".nii", **stream_kw) -> tuple:
    """The series in ``folder`` written whole from memory and streamed (the stored slabs spied):
    ``(source, memory file, streamed file, what each stored slab became)``."""
    source = DicomSource(_stack(folder))
    opts = dict(rescale=source.values.rescale, description="volume test")
    a = write_nifti(source.load(), tmp_path / f"memory{suffix}", **opts)
    seen = _spy_stored_slabs(monkeypatch)
    b = tmp_path / f"stream{suffix}"
    ns.write_nifti_stack(source, b, **stream_kw, **opts)
    return source, a, b, seen


@pytest.mark.parametrize(("field", "dtype"), [
    (lambda x, y, z: 40.0 + 0.5 * x + 0.25 * y + z, np.int16),
    (lambda x, y, z: 16000.0 + 300.0 * (z - 20.0) + 0.5 * x, np.uint16),  # int16 until the last slices
])
def test_stored_integers_of_a_fractional_rescale_are_written_as_read(tmp_path, monkeypatch, field, dtype) -> None:
    info = synth.write_series(tmp_path / "in", shape=(6, 32, 32), slopes=0.5, intercepts=-7.25, field_fn=field)
    # three slabs of two images
    source, a, b, seen = _both_writers(info.folder, tmp_path, monkeypatch, ".nii.gz", slab_bytes=2 * 32 * 32 * 4)
    assert a.read_bytes() == b.read_bytes()
    img = nib.load(b)
    assert img.get_data_dtype() == dtype
    assert img.dataobj.slope == 0.5 and img.dataobj.inter == -7.25
    vol = source.load()
    np.testing.assert_array_equal(np.moveaxis(img.get_fdata(), (0, 1, 2), (2, 1, 0)), vol.array.astype(np.float64))
    synth.check_volume_against_field(vol, field, atol=0.26)
    assert "array" in seen and "values" not in seen
    assert ("misfit" in seen) == (dtype == np.uint16)


def test_stored_integers_float32_cannot_tell_apart_are_stored_as_their_values_give(tmp_path, monkeypatch) -> None:
    """Near 1e6, float32 steps by 0.0625: a slope of 0.01 maps neighbouring stored integers to one
    value. The file holds the integers recovered from the values (one per value, as in memory), not
    the stored ones: the stored integers are never written as read then."""
    field = lambda x, y, z: 1e6 + 0.2 * (x + 40) + 0.1 * (y + 50) + 0.05 * z  # noqa: E731
    info = synth.write_series(tmp_path / "in", shape=(6, 32, 32), slopes=0.01, intercepts=1e6, field_fn=field)
    source, a, b, seen = _both_writers(info.folder, tmp_path, monkeypatch)
    assert a.read_bytes() == b.read_bytes()
    assert seen and set(seen) == {"values"}
    img = nib.load(b)
    in_file = np.moveaxis(np.asanyarray(img.dataobj.get_unscaled()), (0, 1, 2), (2, 1, 0))
    stored = np.stack([pydicom.dcmread(p).pixel_array for p in info.paths])
    assert in_file.shape == stored.shape and not np.array_equal(np.sort(in_file, axis=None), np.sort(stored, axis=None))
    values = source.load().array
    np.testing.assert_array_equal(in_file.astype(np.float32) * np.float32(0.01) + np.float32(1e6), values)


def test_compressed_images_of_a_fractional_rescale_are_checked_value_by_value(tmp_path, monkeypatch) -> None:
    from pydicom.uid import RLELossless

    info = synth.write_series(tmp_path / "in", shape=(4, 16, 16), slopes=0.25, intercepts=-7.5,
                              transfer_syntax=RLELossless)
    source, a, b, seen = _both_writers(info.folder, tmp_path, monkeypatch)
    assert a.read_bytes() == b.read_bytes() and nib.load(b).get_data_dtype() == np.int16
    assert seen == []  # the decoder's values: never given as stored integers


def test_one_inexact_value_in_the_last_piece_makes_the_slab_float32(tmp_path, monkeypatch) -> None:
    stack = _stack(synth.write_series(tmp_path / "in", slopes=0.25, intercepts=-7.5).folder)
    source = DicomSource(stack)
    values, lo, hi = source.read_slab(0, source.n_images)
    values = values.copy()
    values.reshape(-1)[-1] += np.float32(0.1)  # no stored integer gives it
    monkeypatch.setattr(ns, "SCALE_CHUNK_VALUES", 7)
    storage = ns.decide(source, source.values.rescale)
    stats = ns._Stats()
    assert ns._store(values, lo, hi, np.zeros(len(values)), storage, "scaled", source, stats) is None
    assert stats.exact is False
    stats = ns._Stats()
    assert ns._store(values[:-1], lo, hi, np.zeros(len(values) - 1), storage, "scaled", source, stats) is not None
    assert stats.exact is True


# --- private blocks ---------------------------------------------------------------------------


class _AnswersOnlyGet:
    """A dataset that answers ``get(tag)`` but cannot list its tags (as the fast reader's)."""

    def __init__(self, ds) -> None:
        self._ds = ds

    def get(self, key, default=None):
        return self._ds.get(key, default)


def test_a_moved_private_block_is_found_by_its_creator_in_every_kind_of_dataset(tmp_path) -> None:
    (path,) = synth.write_series(tmp_path / "in", shape=(1, 4, 4)).paths
    ds = pydicom.dcmread(path)
    ds.add_new(0x00290010, "LO", "SOMEONE ELSE")
    ds.add_new(0x00290013, "LO", "SIEMENS CSA HEADER")  # moved: 0029,10xx -> 0029,13xx
    ds.add_new(0x00291310, "OB", b"moved!")
    ds.add_new(0x00291010, "OB", b"theirs")
    ds.add_new(0x00330010, "LO", "SIEMENS CSA HEADER")  # another group
    ds.save_as(path, enforce_file_format=True)
    ds = pydicom.dcmread(path)
    raw = read_raw(str(path))
    assert raw is not None
    for d in (ds, raw, _AnswersOnlyGet(ds)):
        assert find_block(d, 0x0029, "siemens csa header") == 0x13
        assert find_block(d, 0x0029, "NOBODY") is None
        assert find_block(d, 0x0031, "SIEMENS CSA HEADER") is None
        assert bytes(private_value(d, 0x00291010, "OB", "SIEMENS CSA HEADER")) == b"moved!"
    assert list(creator_blocks(ds, 0x0029)) == [0x10, 0x13] == list(creator_blocks(raw, 0x0029))


# --- the Siemens protocol ----------------------------------------------------------------------


def _protocol(body: bytes) -> bytes:
    return b"junk ### ASCCONV BEGIN object=MrProtDataImpl@MrProtocolData ###\n" + body + b"### ASCCONV END ###junk"


def test_ascconv_keys_values_comments_quotes_and_every_line_break() -> None:
    body = (b'ulVersion\t = \t51130001\n'
            b'tProtocolName\t = \t""EPI PE=AP""  # a comment = 3\r\n'
            b'  sSliceArray.asSlice[0].dThickness = 3.0   \r'
            b'sKSpace.ucMultiSliceMode = 0x2\x0bsWipMemBlock.alFree[4]=7\x85'
            b'# sCommented = 1\n'
            b'not a key line\n'
            b'1starts.with.digit = 5\n'
            b'sTab\x1f=\x1f4\x1f\n'
            b'sEmpty = \n'
            b'sNumbers.adValue[2] = 1.5\n'
            b'sNumbers.adValue[2] = 2.5\n')
    assert parse_ascconv(_protocol(body)) == {
        "ulVersion": "51130001",
        "tProtocolName": "EPI PE=AP",
        "sSliceArray.asSlice[0].dThickness": "3.0",
        "sKSpace.ucMultiSliceMode": "0x2",
        "sWipMemBlock.alFree[4]": "7",
        "sTab": "4",
        "sEmpty": "",
        "sNumbers.adValue[2]": "2.5",  # the last of a repeated key
    }


def test_ascconv_absent_or_unterminated_gives_nothing() -> None:
    assert parse_ascconv(b"no protocol here") == {}
    assert parse_ascconv(b"### ASCCONV BEGIN ###\nsA = 1\n") == {}  # no end mark
    assert parse_ascconv(b"### ASCCONV BEGIN ### ASCCONV END ###") == {}  # no line after the begin mark
    assert parse_ascconv(b"### ASCCONV BEGIN ###\nsA = 1\n### ASCCONV END ###\nsB = 2\n### ASCCONV END ###") == {
        "sA": "1"}


_REFERENCE_LINE = re.compile(r"^\s*([A-Za-z_][\w.\[\]]*)\s*=\s*(.*?)\s*$")


def _reference(raw: bytes) -> dict[str, str]:
    """The protocol read line by line: each line cut at its first ``#``, then ``key = value``."""
    found = re.search(rb"### ASCCONV BEGIN[^\n]*\n(.*?)### ASCCONV END ###", raw, re.S)
    out: dict[str, str] = {}
    for line in (found.group(1).decode("latin-1").splitlines() if found else []):
        m = _REFERENCE_LINE.match(line.split("#", 1)[0])
        if m:
            out[m.group(1)] = m.group(2).strip('"')
    return out


def test_ascconv_one_pass_agrees_with_a_line_by_line_reading() -> None:
    """Random texts of protocol pieces, blanks, quotes, comments, every kind of line break and
    Latin-1 letters, ASCII or not, with the marks anywhere."""
    pieces = [b"a", b"B", b"_", b"[", b"]", b".", b"0", b" ", b"\t", b"=", b"#", b'"', b"\r", b"\n", b"\r\n", b"\x0b",
              b"\x0c", b"\x1c", b"\x1e", b"\x1f", b"\x85", b"\xa0", b"\xe9", b"\xb2", b"\xb5", b"sKey.a[0]", b" = "]
    marks = [b"### ASCCONV BEGIN", b"### ASCCONV END ###", b"### ASCCONV BEGIN ###\n"]
    rng = random.Random(24)
    for trial in range(4000):
        if trial % 3 == 0:
            raw = b"".join(rng.choice(pieces + marks) for _ in range(rng.randint(0, 12)))
        else:
            raw = _protocol(b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 40))))
        if trial % 2:
            raw = bytes(c for c in raw if c < 128)
        got, want = parse_ascconv(raw), _reference(raw)
        assert got == want and list(got) == list(want), raw

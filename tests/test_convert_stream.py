"""Streaming conversion (volume.io.nifti_stream): the same bytes as the in-memory writer, memory
bounded by slabs, and convert's policy (stream plain stacks, refuse only what must be loaded whole
and does not fit the budget)."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import synth
from pydicom.uid import ExplicitVRBigEndian, RLELossless

import volume.dicom.pixels as pixels
import volume.io.nifti_stream as ns
from volume.cli import main
from volume.dicom import scan
from volume.dicom.loader import load_stack
from volume.dicom.source import DicomSource
from volume.errors import EXIT_NOT_A_VOLUME, EXIT_PARTIAL, ResourceLimitError
from volume.io.atomic import TEMP_PREFIX
from volume.io.nifti import NiftiSink, write_nifti
from volume.io.sidecar import sidecar
from volume.jobs.convert import CONVERTED, FAILED, ConvertOptions, convert_stack
from volume.sources import shell as volume_shell

ONE_IMAGE = 1
"""``slab_bytes`` that makes every slab one image: every slab boundary is exercised."""


def _stack(folder: Path):
    (stack,) = [s for s in scan(folder).stacks if not s.problem]
    return stack


def _pair(stack, tmp: Path, ext: str, *, level: int = 1, threads: int = 1, slab_bytes: int = ONE_IMAGE):
    """The in-memory and the streamed file of ``stack`` (same options, same vendor scaling)."""
    source = DicomSource(stack)
    kw = dict(level=level, threads=threads, rescale=source.values.rescale, description="volume test")
    a = write_nifti(source.load(), tmp / f"memory.{ext}", **kw)
    b = tmp / f"stream.{ext}"
    ns.write_nifti_stack(source, b, slab_bytes=slab_bytes, **kw)
    return a, b


def _world_lps(img: nib.Nifti1Image) -> np.ndarray:
    ijk = np.stack(np.meshgrid(*(np.arange(n) for n in img.shape[:3]), indexing="ij"), axis=-1)
    return (ijk @ img.affine[:3, :3].T + img.affine[:3, 3]) * np.array([-1.0, -1.0, 1.0])


def _check_field(img: nib.Nifti1Image, field=synth.linear_field, atol: float = 0.51) -> None:
    lps = _world_lps(img)
    np.testing.assert_allclose(img.get_fdata(), field(lps[..., 0], lps[..., 1], lps[..., 2]), atol=atol)


def _ramp(base: float, per_mm: float):
    """A field rising along z (slices 20..35 mm): later slices need a wider stored type than early ones."""
    return lambda x, y, z: base + per_mm * (z - 20.0) + 0.5 * x + 0.25 * y


#: name -> (write_series keywords, the stored NIfTI dtype the in-memory writer chooses).
CASES = {
    "ct_int16_hu": (dict(stored_dtype=np.int16, intercepts=-1024.0, modality="CT",
                         field_fn=lambda x, y, z: -500 + 2 * x + 3 * y + 5 * z), np.int16),
    "mr_uint16_as_int16": (dict(), np.int16),
    "mr_uint16_above_32767_late": (dict(field_fn=_ramp(31000.0, 200.0)), np.uint16),
    "int_rescale_needs_int32_late": (dict(intercepts=-1024.0, field_fn=_ramp(30000.0, 300.0)), np.int32),
    "int_rescale_varying_intercepts": (dict(intercepts=[0, -1024, 0, 5, 0, -3]), np.int16),
    "fractional_uniform": (dict(slopes=0.25, intercepts=-7.5), np.int16),
    "fractional_uint16_late": (dict(slopes=0.5, intercepts=-7.5, field_fn=_ramp(16000.0, 100.0)), np.uint16),
    "fractional_too_wide_float32": (dict(slopes=0.01, stored_dtype=np.int32, field_fn=_ramp(600.0, 10.0)), np.float32),
    "varying_rescale_float32": (dict(slopes=[0.5, 0.25, 1.0, 0.75, 0.5, 2.0]), np.float32),
    "uint8": (dict(stored_dtype=np.uint8, field_fn=lambda x, y, z: 100 + 0.5 * x + z), np.uint8),
    "rle_compressed": (dict(transfer_syntax=RLELossless), np.int16),
    "big_endian": (dict(transfer_syntax=ExplicitVRBigEndian), np.int16),
}

#: (extension, gzip level, threads): plain, one-thread ISA-L stream, threaded blocks.
OUTPUTS = [("nii", 1, 1), ("nii.gz", 1, 1), ("nii.gz", 2, 2)]


@pytest.fixture(scope="module")
def case_stacks(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("cases")
    return {name: _stack(synth.write_series(root / name, **kw).folder) for name, (kw, _) in CASES.items()}


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize(("ext", "level", "threads"), OUTPUTS)
def test_streamed_file_is_byte_identical(case_stacks, name, ext, level, threads, tmp_path) -> None:
    a, b = _pair(case_stacks[name], tmp_path, ext, level=level, threads=threads)
    assert a.read_bytes() == b.read_bytes()
    img = nib.load(b)
    assert img.get_data_dtype() == CASES[name][1]  # the late-widening cases really were rewritten


def test_streamed_values_are_the_field(case_stacks, tmp_path) -> None:
    for name in ("mr_uint16_above_32767_late", "int_rescale_needs_int32_late", "fractional_uint16_late"):
        (tmp_path / name).mkdir()
        _, b = _pair(case_stacks[name], tmp_path / name, "nii.gz")
        kw = CASES[name][0]
        _check_field(nib.load(b), kw["field_fn"], atol=0.51 * float(kw.get("slopes", 1.0)) + 1e-3)


def test_4d_series_byte_identical_and_sidecar_equal(tmp_path) -> None:
    uid = "1.2.826.0.1.3680043.8.498.4243"
    for t in range(3):
        synth.write_series(tmp_path / "in", shape=(4, 6, 5), series_uid=uid, seed=t, iop=synth.oblique_iop(),
                           extra={"TemporalPositionIdentifier": t + 1, "RepetitionTime": 2000.0},
                           field_fn=lambda x, y, z, t=t: synth.linear_field(x, y, z) + 100 * t)
    stack = _stack(tmp_path / "in")
    assert stack.n_frames == 3
    for k, (ext, level, threads) in enumerate(OUTPUTS):
        (tmp_path / str(k)).mkdir()
        a, b = _pair(stack, tmp_path / str(k), ext, level=level, threads=threads, slab_bytes=5 * 6 * 2 * 3)
        assert a.read_bytes() == b.read_bytes()
    img = nib.load(b)
    assert img.shape == (5, 6, 4, 3) and img.header.get_zooms()[3] == pytest.approx(2.0)
    shell = volume_shell(DicomSource(stack))
    assert sidecar(shell) == sidecar(load_stack(stack))
    assert np.array_equal(shell.affine, load_stack(stack).affine)


def test_enhanced_multiframe_4d_byte_identical(tmp_path) -> None:
    synth.write_enhanced_4d(tmp_path / "in" / "mf.dcm", shape=(3, 4, 6, 5))
    stack = _stack(tmp_path / "in")
    a, b = _pair(stack, tmp_path, "nii.gz", slab_bytes=7 * 60)  # slabs cross frame boundaries
    assert a.read_bytes() == b.read_bytes()


def test_compressed_multiframe_read_by_slab_is_exact(tmp_path) -> None:
    """Frames of a compressed multi-frame file are decoded from the path, a slab at a time."""
    import pydicom

    synth.write_enhanced_4d(tmp_path / "plain" / "mf.dcm", shape=(2, 5, 16, 12))
    ds = pydicom.dcmread(tmp_path / "plain" / "mf.dcm")
    ds.compress(RLELossless, ds.pixel_array, encoding_plugin="pydicom")
    (tmp_path / "rle").mkdir()
    ds.save_as(tmp_path / "rle" / "mf.dcm")
    plain, rle = _stack(tmp_path / "plain"), _stack(tmp_path / "rle")
    assert rle.first.transfer_syntax == RLELossless and rle.first.frame is not None
    np.testing.assert_array_equal(load_stack(rle).array, load_stack(plain).array)
    values, _, _ = pixels.read_slab(rle, 3, 7)
    np.testing.assert_array_equal(values, load_stack(plain).array.reshape(10, 16, 12)[3:7])
    a, b = _pair(rle, tmp_path, "nii.gz", slab_bytes=3 * 16 * 12 * 2)
    assert a.read_bytes() == b.read_bytes()


def test_real_series_byte_identical(data_dir, tmp_path) -> None:
    """Every streamable real stack (JPEG, JPEG-LS, JPEG 2000, RLE, RGB, enhanced, localizers)."""
    folders = [p for p in sorted((data_dir / "dicom").iterdir()) if p.is_dir()] + [data_dir / "dicom-edge" / "rgb"]
    done = rgb = 0
    for folder in folders:
        for k, stack in enumerate(scan(folder).stacks):
            if ns.stream_problem(DicomSource(stack)):
                continue
            out = tmp_path / f"{folder.name}_{k}"
            out.mkdir()
            a, b = _pair(stack, out, "nii.gz", threads=2, slab_bytes=3 * stack.rows * stack.cols)
            assert a.read_bytes() == b.read_bytes(), f"{folder.name} {stack.id}"
            done += 1
            rgb += stack.rgb
    assert done >= 10 and rgb >= 1


# --- memory -------------------------------------------------------------------------------------


def _peak_bytes(fn) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


#: The values written into the big synthetic series, by world position (LPS, mm).
_FIELDS = {
    "tall_ct": lambda x, y, z: -600 + 2 * x + 3 * y + 5 * z,
    "fractional_mr": lambda x, y, z: 100 + x + 2 * y + 3 * z,
}


@pytest.fixture(scope="module")
def tall_ct(tmp_path_factory):
    """200 slices of 256x256 CT (int16 HU): 26 MB decoded."""
    folder = tmp_path_factory.mktemp("tall") / "ct"
    return synth.write_series(folder, shape=(200, 256, 256), stored_dtype=np.int16, intercepts=-1024.0,
                              modality="CT", slice_spacing=1.0, pixel_spacing=(1.0, 1.0),
                              field_fn=_FIELDS["tall_ct"], names="ordered")


def test_streaming_memory_is_bounded_by_slabs(tall_ct, tmp_path) -> None:
    stack = _stack(tall_ct.folder)
    volume_bytes = ns.in_memory_bytes(DicomSource(stack))
    assert volume_bytes == 200 * 256 * 256 * 2
    budget = 3 * 2**20  # slabs of 1 MiB
    options = ConvertOptions(max_bytes=budget, sidecar=False)
    streamed = _peak_bytes(lambda: convert_stack(stack, tmp_path / "s", options))
    # the measurement sees numpy's arrays: loading the same series whole peaks above its size
    loaded = _peak_bytes(lambda: load_stack(stack))
    assert loaded >= volume_bytes
    assert streamed < volume_bytes / 4, f"peak {streamed / 2**20:.1f} MiB for a {volume_bytes / 2**20:.0f} MiB volume"
    img = nib.load(tmp_path / "s" / "7_synthetic.nii.gz")
    assert img.get_data_dtype() == np.int16
    lps = _world_lps(img)
    data = np.asarray(img.dataobj)
    for k in (0, 99, 199):  # world positions of whole slices against the field
        expected = -600 + 2 * lps[:, :, k, 0] + 3 * lps[:, :, k, 1] + 5 * lps[:, :, k, 2]
        np.testing.assert_allclose(data[:, :, k], expected, atol=0.51)


@pytest.fixture(scope="module")
def fractional_mr(tmp_path_factory):
    """72 slices of 256x256 MR with a fractional rescale (0.25): float32 values, 18 MiB decoded."""
    folder = tmp_path_factory.mktemp("fractional") / "mr"
    return synth.write_series(folder, shape=(72, 256, 256), slopes=0.25, intercepts=-7.5,
                              field_fn=_FIELDS["fractional_mr"])


#: What streaming a big stack with the default slabs may hold in numpy arrays at its peak.
DEFAULT_PEAK_LIMIT = 8 * 2**20


@pytest.mark.parametrize("which", ["tall_ct", "fractional_mr"])
def test_default_slabs_keep_a_conversion_small(which, request, tmp_path) -> None:
    """By default a stack is streamed in slabs of SLAB_BYTES decoded bytes: its arrays peak at a
    few slabs, not at the 16 MiB slabs that raised each conversion's peak memory by 20-30 MiB
    (issue 24); the file is the in-memory writer's, byte for byte."""
    stack = _stack(request.getfixturevalue(which).folder)
    source = DicomSource(stack)
    assert ns.in_memory_bytes(source) >= 2 * DEFAULT_PEAK_LIMIT
    kw = dict(rescale=source.values.rescale, description="volume test")
    streamed = tmp_path / "stream.nii"
    peak = _peak_bytes(lambda: ns.write_nifti_stack(source, streamed, **kw))
    assert peak < DEFAULT_PEAK_LIMIT, f"peak {peak / 2**20:.1f} MiB"
    whole = write_nifti(source.load(), tmp_path / "memory.nii", **kw)
    assert streamed.read_bytes() == whole.read_bytes()
    _check_field(nib.load(streamed), field=_FIELDS[which], atol=0.51)


# --- convert's policy ---------------------------------------------------------------------------


def test_convert_streams_a_stack_over_the_budget(tmp_path, monkeypatch) -> None:
    synth.write_series(tmp_path / "in", shape=(12, 20, 16), slopes=0.25, intercepts=-7.5, iop=synth.oblique_iop())
    stack = _stack(tmp_path / "in")
    assert ns.in_memory_bytes(DicomSource(stack)) == 12 * 20 * 16 * 4  # float32: 15 KiB

    def no_loading(*a, **kw):
        raise AssertionError("the stack was loaded whole")

    monkeypatch.setattr("volume.dicom.source.load_stack", no_loading)
    result = convert_stack(stack, tmp_path / "out", ConvertOptions(max_bytes=6000))
    assert result.status == CONVERTED, result.message
    img = nib.load(result.files[0])
    assert img.get_data_dtype() == np.int16 and img.dataobj.slope == pytest.approx(0.25)
    _check_field(img, atol=0.126)
    side = json.loads(Path(result.files[1]).read_text())
    assert side["SeriesNumber"] == 7 and side["TiltCorrected"] is False


def test_default_budget_is_half_the_available_memory() -> None:
    assert ConvertOptions().max_bytes is None
    assert ns.memory_budget() == pytest.approx(ns.available_memory() / 2, rel=0.05)
    assert ns.memory_budget(123) == 123


def _tilted(folder: Path) -> Path:
    shift = 2.0 * np.tan(np.radians(12.0))
    positions = [np.array([-20.0, -30.0 + k * shift, 10.0 + 2.0 * k]) for k in range(8)]
    return synth.write_series(folder, shape=(8, 20, 12), modality="CT", positions=positions,
                              pixel_spacing=(1.0, 1.0)).folder


def test_tilted_series_over_the_budget_is_refused_clearly(tmp_path, capfd) -> None:
    stack = _stack(_tilted(tmp_path / "in"))
    assert ns.stream_problem(DicomSource(stack))
    result = convert_stack(stack, tmp_path / "out", ConvertOptions(max_bytes=1000))
    assert result.status == FAILED and result.exit_code == EXIT_NOT_A_VOLUME
    assert "gantry tilt" in result.message and "--max-memory" in result.message and "\n" not in result.message
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
    with pytest.raises(ResourceLimitError, match="whole series in memory"):
        ns.should_stream(DicomSource(stack), 1000)
    # the CLI: one line, exit 1 (a series failed); a budget that fits converts it (tilt corrected)
    code = main(["convert", str(tmp_path / "in"), "-o", str(tmp_path / "cli"), "--max-memory", "1K"])
    out, err = capfd.readouterr()
    assert code == EXIT_PARTIAL and out == ""
    (line,) = [line for line in err.splitlines() if "tilt" in line]
    assert "over the 1.0 KiB budget; raise it with --max-memory (e.g. --max-memory 8K)" in line
    assert main(["convert", str(tmp_path / "in"), "-o", str(tmp_path / "cli"), "--max-memory", "1M"]) == 0
    assert "tilt" in capfd.readouterr().err


def test_gap_series_refused_for_gaps_first_then_for_memory(tmp_path) -> None:
    positions = [np.array([-30.0, -40.0, 20.0 + 3.0 * k]) for k in (0, 1, 2, 4, 5, 6)]
    stack = _stack(synth.write_series(tmp_path / "in", positions=positions).folder)
    plain = convert_stack(stack, tmp_path / "out", ConvertOptions(max_bytes=100))
    assert plain.status == FAILED and "--allow-gaps" in plain.message
    gaps = convert_stack(stack, tmp_path / "out", ConvertOptions(max_bytes=100, allow_gaps=True))
    assert gaps.status == FAILED and "slice gaps" in gaps.message and "--max-memory" in gaps.message
    ok = convert_stack(stack, tmp_path / "out", ConvertOptions(allow_gaps=True))
    assert ok.status == CONVERTED and ok.notes["gaps_resampled"]["slices_out"] == 7


def test_skip_existing_rewrites_a_missing_sidecar_from_the_headers(tmp_path) -> None:
    stack = _stack(synth.write_series(tmp_path / "in", shape=(4, 6, 5)).folder)
    first = convert_stack(stack, tmp_path / "out")
    image, side = (Path(p) for p in first.files)
    text = side.read_text()
    side.unlink()
    again = convert_stack(stack, tmp_path / "out", ConvertOptions(skip_existing=True))
    assert again.status == CONVERTED and again.files == (str(side),)
    assert side.read_text() == text


# --- interruptions -------------------------------------------------------------------------------


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.mark.parametrize("splits", [(), (352,), (352, 2**20 + 352, 2**20 + 400), tuple(range(1000, 3_600_000, 333_333))])
def test_threaded_gzip_sink_writes_isal_blocks_whatever_the_splits(splits, tmp_path) -> None:
    """The two-thread sink hands ISA-L's threaded writer whole blocks itself (no BufferedWriter
    copy): its file is the one ISA-L writes of the same bytes in one call, however they arrive
    (a header, then slabs that cross the 1 MiB blocks anywhere), and decompresses to them."""
    import gzip

    from isal import igzip_threaded

    data = (np.arange(3_700_000, dtype=np.uint32) * 2654435761 >> 20).astype(np.uint8).tobytes()
    reference = tmp_path / "isal.gz"
    with igzip_threaded.open(reference, "wb", compresslevel=1, threads=2) as fh:
        fh.write(data)
    ours = tmp_path / "sink.gz"
    with NiftiSink(ours, compress=True, level=1, threads=2) as sink:
        for a, b in zip((0, *splits), (*splits, len(data)), strict=True):
            sink.write(memoryview(data)[a:b])
    assert gzip.decompress(ours.read_bytes()) == data
    assert ours.read_bytes() == reference.read_bytes()


def test_ctrl_c_mid_stream_leaves_nothing(tall_ct, tmp_path, monkeypatch) -> None:
    stack = _stack(tall_ct.folder)
    real_write = NiftiSink.write
    writes = []

    def interrupted(self, data):
        writes.append(1)
        if len(writes) == 6:  # the header and a few slabs are written: Ctrl-C
            raise KeyboardInterrupt
        return real_write(self, data)

    monkeypatch.setattr(NiftiSink, "write", interrupted)
    with pytest.raises(KeyboardInterrupt):
        convert_stack(stack, tmp_path / "out", ConvertOptions(max_bytes=3 * 2**20))
    assert _leftovers(tmp_path / "out") == []


def test_decoding_error_mid_stream_leaves_nothing(tall_ct, tmp_path, monkeypatch) -> None:
    stack = _stack(tall_ct.folder)
    real = pixels.read_slab

    def failing(stack, start, stop, **kw):
        if start > 50:
            raise pixels.UnsupportedDicomError("IM0060.dcm: cannot decode pixel data (test)")
        return real(stack, start, stop, **kw)

    monkeypatch.setattr("volume.dicom.source.read_slab", failing)
    result = convert_stack(stack, tmp_path / "out", ConvertOptions(max_bytes=3 * 2**20, format="nii"))
    assert result.status == FAILED and "cannot decode" in result.message
    assert not any(name.startswith(TEMP_PREFIX) for name in _leftovers(tmp_path / "out"))
    assert _leftovers(tmp_path / "out") == []

"""Hostile and broken input: one clear line on stderr, a documented exit code, no traceback.

Each case builds a broken input from a valid synthetic series and runs the loader and the CLI on
it. The rules (issue 9): the exit code is one of the documented ones, stderr holds exactly one
line naming the file or series (plus optional warning lines), there is never a Python traceback,
and no patient identity appears anywhere in the output.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pydicom
import pytest
import synth

import volume
from volume.cli import main
from volume.errors import EXIT_NO_DICOM, EXIT_NOT_A_VOLUME, EXIT_USAGE, VolumeError

DOCUMENTED_EXIT_CODES = {0, 1, 2, 3, 4, 5, 130}
PATIENT = ("Doe^Jane", "Doe", "PID-0042", "19700101")


def run_cli(args: list[str], capfd) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capfd.readouterr()
    return code, out, err


def assert_clean_failure(code: int, out: str, err: str, *, expect: set[int] | int, mention: str | None = None):
    expected = {expect} if isinstance(expect, int) else expect
    assert code in expected, f"exit {code}, stderr: {err!r}"
    assert "Traceback" not in err and "Traceback" not in out
    errors = [line for line in err.splitlines() if line.strip() and "warning:" not in line]
    assert len(errors) == 1, f"want one error line, got {errors!r}"
    if mention is not None:
        assert mention in errors[0], f"{mention!r} not in {errors[0]!r}"
    for secret in PATIENT:
        assert secret not in out and secret not in err


def good_series(tmp_path: Path, name: str = "s", **kw) -> synth.SynthSeries:
    return synth.write_series(tmp_path / name, shape=(4, 6, 5), **kw)


def mutate(path: Path, **changes) -> None:
    """Rewrite one file with header elements changed (None deletes)."""
    ds = pydicom.dcmread(path)
    for key, value in changes.items():
        if value is None:
            if key in ds:
                delattr(ds, key)
        else:
            setattr(ds, key, value)
    ds.save_as(path)


# --- no input at all ------------------------------------------------------------------------


def test_missing_path_is_a_usage_error(tmp_path, capfd):
    code, out, err = run_cli(["ls", tmp_path / "nope"], capfd)
    assert_clean_failure(code, out, err, expect=EXIT_USAGE, mention="nope")


def test_empty_folder_says_no_dicom(tmp_path, capfd):
    code, out, err = run_cli(["ls", tmp_path], capfd)
    assert_clean_failure(code, out, err, expect=EXIT_NO_DICOM, mention=str(tmp_path))


def test_folder_of_junk_counts_what_it_skipped(tmp_path, capfd):
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "zeros.dcm").write_bytes(bytes(4096))
    (tmp_path / "empty").write_bytes(b"")
    code, out, err = run_cli(["ls", tmp_path], capfd)
    assert_clean_failure(code, out, err, expect=EXIT_NO_DICOM)
    assert "3 files" in err and "not DICOM" in err and "empty" in err


def test_load_of_junk_raises_no_dicom(tmp_path):
    (tmp_path / "zeros").write_bytes(bytes(1000))
    with pytest.raises(volume.NoDicomError, match="no DICOM images"):
        volume.load(tmp_path)


# --- broken headers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"PixelSpacing": None}, "PixelSpacing"),
        ({"PixelSpacing": [0, 0]}, "PixelSpacing"),
        ({"PixelSpacing": [-1, 1]}, "PixelSpacing"),
        ({"PixelSpacing": ["nan", "1"]}, "PixelSpacing"),
        ({"ImageOrientationPatient": None}, "ImageOrientationPatient"),
        ({"ImageOrientationPatient": [0, 0, 0, 0, 0, 0]}, "ImageOrientationPatient"),
        ({"ImageOrientationPatient": [1, 0, 0, 1, 0, 0]}, "ImageOrientationPatient"),
        ({"ImagePositionPatient": None}, "ImagePositionPatient"),
        ({"ImagePositionPatient": ["nan", "0", "0"]}, "ImagePositionPatient"),
    ],
    ids=["ps-missing", "ps-zero", "ps-negative", "ps-nan", "iop-missing", "iop-zero",
         "iop-parallel", "ipp-missing", "ipp-nan"],
)
def test_broken_geometry_in_every_file_is_not_a_volume(tmp_path, capfd, changes, words):
    s = good_series(tmp_path)
    for p in s.paths:
        mutate(p, **changes)
    with pytest.raises(VolumeError) as info:
        volume.load(s.folder)
    assert words in str(info.value)
    code, out, err = run_cli(["ls", s.folder], capfd)
    assert code == 0 and "Traceback" not in err  # ls lists it, with the problem as a note
    assert "cannot load" in out


def test_one_file_with_broken_geometry_is_split_off_not_merged(tmp_path):
    s = good_series(tmp_path)
    mutate(s.paths[0], ImageOrientationPatient=None)
    found = volume.scan(s.folder)
    kinds = sorted(st.kind for st in found.stacks)
    assert len(found.stacks) == 2, kinds
    good = [st for st in found.stacks if not st.problem]
    assert len(good) == 1 and good[0].n_slices == 3


@pytest.mark.parametrize("rows, cols", [(0, 5), (6, 0)])
def test_zero_rows_or_columns(tmp_path, rows, cols):
    s = good_series(tmp_path)
    for p in s.paths:
        mutate(p, Rows=rows, Columns=cols)
    with pytest.raises(VolumeError, match="Rows x Columns"):
        volume.load(s.folder)


def test_absurd_size_is_refused_before_allocating(tmp_path):
    s = good_series(tmp_path)
    for p in s.paths:
        mutate(p, Rows=60000, Columns=60000)
    with pytest.raises(VolumeError) as info:
        volume.load(s.folder, max_bytes=2**30)
    assert "GiB" in str(info.value) or "bytes" in str(info.value)


def test_pixel_data_shorter_than_header_says(tmp_path):
    s = good_series(tmp_path)
    ds = pydicom.dcmread(s.paths[1])
    ds.PixelData = ds.PixelData[: len(ds.PixelData) // 2]
    ds.save_as(s.paths[1])
    with pytest.raises(VolumeError, match=re.escape(s.paths[1].name)):
        volume.load(s.folder)


def test_huge_number_of_frames_with_little_data(tmp_path):
    s = good_series(tmp_path)
    mutate(s.paths[0], NumberOfFrames=10_000_000)
    found = volume.scan(s.folder)
    for st in found.stacks:
        if s.paths[0].name in " ".join(os.path.basename(f) for f in st.files):
            with pytest.raises(VolumeError):
                volume.load(st, max_bytes=2**30)


def test_bits_allocated_12_is_refused_clearly(tmp_path):
    s = good_series(tmp_path)
    for p in s.paths:
        mutate(p, BitsAllocated=12, BitsStored=12, HighBit=11)
    with pytest.raises(VolumeError, match="BitsAllocated|decode"):
        volume.load(s.folder)


def test_corrupt_compressed_frame(tmp_path):
    s = good_series(tmp_path, transfer_syntax=synth.RLELossless)
    ds = pydicom.dcmread(s.paths[2])
    raw = bytearray(ds.PixelData)
    raw[-40:] = b"\xff" * 40  # garbage RLE segments
    raw[20:60] = b"\x7f" * 40
    ds.PixelData = bytes(raw)
    ds.save_as(s.paths[2])
    try:
        volume.load(s.folder)
    except VolumeError as exc:
        assert s.paths[2].name in str(exc) or "decode" in str(exc)


def test_truncated_files_at_every_tenth(tmp_path, capfd):
    s = good_series(tmp_path)
    data = s.paths[0].read_bytes()
    for i in range(1, 10):
        cut = tmp_path / f"cut{i}"
        cut.mkdir()
        for p in s.paths[1:]:
            (cut / p.name).write_bytes(p.read_bytes())
        (cut / "truncated").write_bytes(data[: len(data) * i // 10])
        try:
            vol = volume.load(cut)
            assert vol.shape[1:] == (6, 5)
        except VolumeError:
            pass
        code, out, err = run_cli(["ls", cut], capfd)
        assert code in DOCUMENTED_EXIT_CODES and "Traceback" not in err


def test_two_slices_at_one_position_with_different_content(tmp_path):
    s = good_series(tmp_path)
    ds = pydicom.dcmread(s.paths[0])
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    arr = ds.pixel_array.copy()
    arr[0, 0] += 7
    ds.PixelData = arr.tobytes()
    ds.save_as(s.folder / "other")
    with pytest.raises(VolumeError) as info:
        volume.load(s.folder)
    assert "position" in str(info.value)


def test_single_slice_series_loads_as_a_thin_volume(tmp_path):
    s = synth.write_series(tmp_path / "one", shape=(1, 6, 5))
    vol = volume.load(s.folder)
    assert vol.shape == (1, 6, 5)
    synth.check_volume_against_field(vol)


def test_dicomdir_pointing_at_missing_files_is_ignored(tmp_path):
    s = good_series(tmp_path)
    from pydicom.data import get_testdata_file

    dicomdir = get_testdata_file("DICOMDIR")
    (s.folder / "DICOMDIR").write_bytes(Path(dicomdir).read_bytes())
    found = volume.scan(s.folder)
    assert found.report.skipped.get("DICOMDIR index") == 1
    assert volume.load(s.folder).shape == (4, 6, 5)


def test_unreadable_file_is_counted(tmp_path, monkeypatch):
    s = good_series(tmp_path)
    if os.geteuid() != 0:
        os.chmod(s.paths[0], 0)
    else:  # root reads every file whatever its permissions: make opening it fail as it would
        import builtins

        real_open = builtins.open
        victim = os.path.realpath(s.paths[0])

        def deny(file, *args, **kwargs):
            if isinstance(file, (str, os.PathLike)) and os.path.realpath(file) == victim:
                raise PermissionError(13, "Permission denied", os.fspath(file))
            return real_open(file, *args, **kwargs)

        monkeypatch.setattr(builtins, "open", deny)
        # the compiled reader opens files itself: where open() fails it leaves the file to Python
        from volume.dicom import fastheader

        real_compiled = fastheader.read_compiled_many
        monkeypatch.setattr(fastheader, "read_compiled_many", lambda paths, wanted: [
            None if os.path.realpath(p) == victim else real_compiled([p], wanted)[0] for p in paths])
    found = volume.scan(s.folder, workers=1)
    assert found.report.skipped.get("unreadable") == 1
    assert volume.load(found).shape == (3, 6, 5)


def test_mixed_transfer_syntaxes_in_one_series_load_together(tmp_path):
    uid = pydicom.uid.generate_uid()
    a = synth.write_series(tmp_path / "mix", shape=(4, 6, 5), series_uid=uid, seed=1)
    # re-encode two of the files with RLE, keeping the series
    for p in a.paths[:2]:
        ds = pydicom.dcmread(p)
        ds.compress(synth.RLELossless, encoding_plugin="pydicom")
        ds.save_as(p)
    vol = volume.load(a.folder)
    synth.check_volume_against_field(vol)


def test_info_on_junk_and_folders(tmp_path, capfd):
    (tmp_path / "junk").write_bytes(b"\x00" * 300)
    code, out, err = run_cli(["info", tmp_path / "junk"], capfd)
    assert_clean_failure(code, out, err, expect=EXIT_NO_DICOM, mention="junk")
    code, out, err = run_cli(["info", tmp_path], capfd)
    assert_clean_failure(code, out, err, expect=EXIT_USAGE)


def test_info_hides_identity_by_default(tmp_path, capfd):
    s = good_series(tmp_path)
    code, out, err = run_cli(["info", s.paths[0]], capfd)
    assert code == 0
    assert "Doe^Jane" not in out and "PID-0042" not in out
    assert "SeriesDescription" in out or "Series Description" in out
    code, out, err = run_cli(["info", s.paths[0], "--keep-phi"], capfd)
    assert "Doe^Jane" in out


def test_not_a_volume_exit_code_for_ambiguous_positions(tmp_path, capfd):
    s = good_series(tmp_path)
    for p in s.paths:  # one position, and no InstanceNumber to fall back on
        mutate(p, ImagePositionPatient=[0, 0, 0], InstanceNumber=None)
    with pytest.raises(volume.NotAVolumeError, match="nothing orders them"):
        volume.load(s.folder)


def test_images_at_one_position_numbered_by_instance_are_a_2d_series(tmp_path):
    """The same images with InstanceNumbers: a 2D series in that order (as a cine is), never a 3D stack."""
    s = good_series(tmp_path)
    for p in s.paths:
        mutate(p, ImagePositionPatient=[0, 0, 0])
    stack = volume.scan(s.folder).stacks[0]
    assert (stack.kind, stack.n_slices, stack.n_frames, stack.frame_order) == ("2D series", 1, 4, "InstanceNumber")
    assert [f.instance_number for f in stack.frames] == [1, 2, 3, 4]
    assert any("ordered by InstanceNumber" in n for n in stack.notes)


def test_random_header_mutations_never_crash(tmp_path):
    """A small seeded fuzzer: flip, delete and corrupt header elements; only VolumeErrors escape."""
    rng = np.random.default_rng(1234)
    base = good_series(tmp_path, name="base")
    keywords = ["Rows", "Columns", "PixelSpacing", "ImageOrientationPatient", "ImagePositionPatient",
                "BitsAllocated", "BitsStored", "PixelRepresentation", "RescaleSlope", "RescaleIntercept",
                "SamplesPerPixel", "PhotometricInterpretation", "NumberOfFrames", "SeriesInstanceUID",
                "SOPInstanceUID", "HighBit", "PlanarConfiguration"]
    junk_values = [None, 0, -1, 1, 3, 65535, "nan", "", "abc", [1, 2], [0, 0, 0, 0, 0, 0], "MONOCHROME1",
                   "YBR_FULL", 12, 1.5]
    for case in range(40):
        folder = tmp_path / f"case{case}"
        folder.mkdir()
        for p in base.paths:
            (folder / p.name).write_bytes(p.read_bytes())
        victims = rng.choice(len(base.paths), size=int(rng.integers(1, len(base.paths) + 1)), replace=False)
        for v in victims:
            path = folder / base.paths[int(v)].name
            ds = pydicom.dcmread(path)
            for _ in range(int(rng.integers(1, 4))):
                kw = keywords[int(rng.integers(len(keywords)))]
                val = junk_values[int(rng.integers(len(junk_values)))]
                try:
                    if val is None:
                        if kw in ds:
                            delattr(ds, kw)
                    else:
                        setattr(ds, kw, val)
                except Exception:  # noqa: BLE001 - pydicom refuses some values outright
                    continue
            try:
                ds.save_as(path)
            except Exception:  # noqa: BLE001
                path.write_bytes(bytes(rng.integers(0, 256, 500, dtype=np.uint8)))
        try:
            found = volume.scan(folder)
            for st in found.stacks:
                try:
                    volume.load(st, max_bytes=2**28)
                except VolumeError:
                    pass
        except VolumeError:
            pass


def test_exit_code_for_not_a_volume_from_cli_is_documented(tmp_path, capfd):
    s = good_series(tmp_path)
    for p in s.paths:
        mutate(p, ImagePositionPatient=[0, 0, 0], InstanceNumber=None)
    found = volume.scan(s.folder)
    assert found.stacks[0].problem
    assert EXIT_NOT_A_VOLUME == 4

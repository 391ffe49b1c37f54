"""Hostile and broken input for every command (issue 9): no tracebacks, no hangs, nothing lost.

Every command (ls, info, convert, mip, reslice, render, mesh, png, index) meets the same broken
inputs. Each run asserts: the exit code is a documented one and the expected one; stderr holds
exactly one error line naming the path or series (besides ``volume: warning:`` lines and the
batch summary line some commands print); no ``Traceback``; and the output folder holds whole
outputs or nothing: no ``.volume-tmp-*`` leftovers, no partial files.

Commands run in-process through :func:`volume.cli.main` (fast); a few runs go through a real
subprocess to prove what reaches a terminal (tracebacks, Ctrl-C).
"""

from __future__ import annotations

import errno
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest
import synth

import volume
from volume.cli import main
from volume.dicom.headers import read_header
from volume.errors import (
    EXIT_NO_DICOM,
    EXIT_NOT_A_VOLUME,
    EXIT_OUTPUT_EXISTS,
    EXIT_PARTIAL,
    EXIT_USAGE,
    ResourceLimitError,
    VolumeError,
)
from volume.io.atomic import TEMP_PREFIX

DOCUMENTED_EXIT_CODES = {0, 1, 2, 3, 4, 5, 130}
PATIENT = ("Doe^Jane", "PID-0042", "19700101")
#: Informational lines some batch commands print on stderr besides the one error line.
SUMMARY_LINE = re.compile(r"^volume: ((converted|projected|resliced|rendered) \d+, skipped \d+, failed \d+|\d+ pictures? written|\d+ rows? from)")
SHAPE = (4, 6, 5)
#: Real DICOM beside the checkout (optional: the fuzzer uses its series as seeds when present).
REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

# --- commands: argv for a source path and an output folder; where outputs appear -------------

COMMANDS = {
    "ls": lambda src, out: ["ls", src],
    "info": lambda src, out: ["info", src],
    "convert": lambda src, out: ["convert", src, "-o", out],
    "mip": lambda src, out: ["mip", src, "-o", out],
    "reslice": lambda src, out: ["reslice", src, "--spacing", "2", "-o", out / "r.nii.gz"],
    "render": lambda src, out: ["render", src, "--size", "40x40", "-o", out / "r.png"],
    "mesh": lambda src, out: ["mesh", src, "--level", "960", "-o", out / "m.stl"],
    "png": lambda src, out: ["png", src, "-o", out, "--workers", "1"],
    "index": lambda src, out: ["index", src, "-o", out / "i.csv", "--workers", "1"],
    # view opens a window on good input: only its refusals run here (they come before any window)
    "view": lambda src, out: ["view", src],
    # serve would serve good input until Ctrl-C: only its refusals run here (before any socket)
    "serve": lambda src, out: ["serve", src, "--port", "0"],
}
WRITERS = [c for c in COMMANDS if c not in ("ls", "info", "view", "serve")]
#: Commands that need a 3D volume (others work file by file or on headers).
VOLUME_COMMANDS = ("convert", "mip", "reslice", "render", "mesh")


def run_cli(args: list, capfd) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capfd.readouterr()
    return code, out, err


def error_lines(err: str) -> list[str]:
    return [
        line for line in err.splitlines()
        if line.strip() and not line.startswith("volume: warning:") and not SUMMARY_LINE.match(line)
    ]


def assert_clean(
    code: int, out: str, err: str, *, expect: int | set[int], mention: str | tuple[str, ...] | None = None
) -> None:
    """A clean end: expected exit code, one error line (when failing), no traceback, no PHI."""
    expected = {expect} if isinstance(expect, int) else set(expect)
    assert code in expected, f"exit {code} (want {expected}); stderr: {err!r}"
    assert code in DOCUMENTED_EXIT_CODES
    assert "Traceback" not in err and "Traceback" not in out
    errors = error_lines(err)
    if code == 0:
        assert errors == [], errors
    else:
        assert len(errors) == 1, f"want exactly one error line, got {errors!r}"
        assert errors[0].startswith("volume: ")
        if mention is not None:
            options = (mention,) if isinstance(mention, str) else mention
            assert any(m in errors[0] for m in options), f"none of {options!r} in {errors[0]!r}"
    for secret in PATIENT:
        assert secret not in out and secret not in err, secret


def leftovers(folder: Path) -> list[Path]:
    """Temporary files an interrupted or failed writer left behind."""
    if not folder.exists():
        return []
    return [p for p in folder.rglob("*") if p.name.startswith(TEMP_PREFIX)]


def output_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


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


# --- broken inputs --------------------------------------------------------------------------


def _empty(tmp: Path) -> Path:
    (tmp / "empty").mkdir()
    return tmp / "empty"


def _junk(tmp: Path) -> Path:
    d = tmp / "junk"
    d.mkdir()
    (d / "notes.txt").write_text("not an image")
    (d / "image.dcm").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    return d


def _missing(tmp: Path) -> Path:
    return tmp / "does-not-exist"


def _zeros(tmp: Path) -> Path:
    p = tmp / "zeros.dcm"
    p.write_bytes(bytes(8192))
    return p


def _truncated(tmp: Path) -> Path:
    s = synth.write_series(tmp / "trunc", shape=(1,) + SHAPE[1:])
    data = s.paths[0].read_bytes()
    s.paths[0].write_bytes(data[: len(data) * 4 // 10])  # cut inside the header
    return s.folder


def _no_pixels(tmp: Path) -> Path:
    s = synth.write_series(tmp / "nopix", shape=SHAPE)
    for p in s.paths:
        mutate(p, PixelData=None)
    return s.folder


def _iop_zero(tmp: Path) -> Path:
    s = synth.write_series(tmp / "iop0", shape=SHAPE)
    for p in s.paths:
        mutate(p, ImageOrientationPatient=[0, 0, 0, 0, 0, 0])
    return s.folder


def _one_slice(tmp: Path) -> Path:
    return synth.write_series(tmp / "one", shape=(1,) + SHAPE[1:]).folder


def _links(tmp: Path) -> Path:
    """A good series beside a symlink loop, a dangling link and a FIFO (reading it would block)."""
    d = tmp / "links"
    synth.write_series(d / "series", shape=SHAPE)
    (d / "series" / "up").symlink_to("..")
    (d / "dangling").symlink_to(tmp / "nowhere")
    os.mkfifo(d / "fifo")
    return d


def _same_position(tmp: Path) -> Path:
    """Two images at one position with different content (and different SOP instance UIDs)."""
    s = synth.write_series(tmp / "twins", shape=SHAPE)
    ds = pydicom.dcmread(s.paths[0])
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    arr = ds.pixel_array.copy()
    arr[0, 0] += 7
    ds.PixelData = arr.tobytes()
    ds.save_as(s.folder / "twin")
    return s.folder


def _good(tmp: Path) -> Path:
    return synth.write_series(tmp / "good", shape=SHAPE).folder


INPUTS = {
    "empty": _empty, "junk": _junk, "missing": _missing, "zeros": _zeros, "truncated": _truncated,
    "no-pixels": _no_pixels, "iop-zero": _iop_zero, "one-slice": _one_slice, "links-and-fifo": _links,
    "same-position": _same_position,
}

#: Expected exit code per (case, command); commands not listed follow the case's default.
EXPECTED: dict[str, dict[str, int | set[int]]] = {
    "empty": {"default": EXIT_NO_DICOM, "info": EXIT_USAGE},  # info takes one file
    "junk": {"default": EXIT_NO_DICOM},
    "missing": {"default": EXIT_USAGE},
    "zeros": {"default": EXIT_NO_DICOM},
    # index lists the truncated file's row (what its header holds); info shows that header
    "truncated": {"default": EXIT_NO_DICOM, "index": 0, "info": 0},
    # files without pixel data: index rows and info headers are still wanted
    "no-pixels": {"default": EXIT_NO_DICOM, "index": 0, "info": 0},
    # no usable geometry: every volume command refuses; 2D pictures, headers and rows are fine
    "iop-zero": {"default": EXIT_NOT_A_VOLUME, "convert": EXIT_PARTIAL, "ls": 0, "info": 0, "png": 0, "index": 0},
    # one slice: a thin volume for convert/reslice/render; no projection or surface from it
    "one-slice": {"default": 0, "mip": EXIT_NOT_A_VOLUME, "mesh": EXIT_NOT_A_VOLUME},
    # loops not followed, the FIFO not read (info is given the dangling link: a usage error)
    "links-and-fifo": {"default": 0, "info": EXIT_USAGE},
    # not a volume: refused by the volume commands, named; pictures and rows are fine
    "same-position": {"default": EXIT_NOT_A_VOLUME, "convert": EXIT_PARTIAL, "ls": 0, "info": 0, "png": 0, "index": 0},
}


@pytest.mark.parametrize("case", list(INPUTS))
@pytest.mark.parametrize("command", list(COMMANDS))
def test_broken_input(tmp_path, capfd, command, case):
    table = EXPECTED[case]
    expect = table.get(command, table.get("view", table["default"]) if command == "serve" else table["default"])
    if command == "serve" and expect == 0:
        pytest.skip("serve would serve the good input until Ctrl-C")
    src = INPUTS[case](tmp_path)
    if command == "info" and src.is_dir() and any(src.iterdir()):
        src = sorted(src.iterdir())[0]
    out = tmp_path / "out"
    code, stdout, stderr = run_cli(COMMANDS[command](src, out), capfd)
    if command == "view" and expect == 0:
        pytest.skip("view would open a window")
    mention = None
    if code not in (0, EXIT_PARTIAL):
        mention = (src.name, "series 7")  # the message names the path or series it is about
    if case == "iop-zero" and code != 0:
        mention = "ImageOrientationPatient" if command in ("reslice", "render", "mesh", "convert", "view", "serve") else "7"
    assert_clean(code, stdout, stderr, expect=expect, mention=mention)
    assert leftovers(out) == []
    written = output_files(out)
    if code == 0:
        for line in stdout.splitlines():  # every path printed on stdout exists, whole
            if command not in ("ls", "info") and line.strip():
                assert Path(line).is_file() and Path(line).stat().st_size > 0, line
    else:
        assert written == [], f"a failed {command} left {written}"


# --- header text used for names --------------------------------------------------------------

HOSTILE_DESCRIPTIONS = {
    "traversal": "../../etc/x",
    "control": "a\x07b\nc\td\x1b[31mred\x00",
    "markup": "[/bold] [red]x",
    "absolute": "/tmp/abs",
    "dots": "..",
}
NAMED_OUTPUTS = ("convert", "mip")  # outputs named from the series description


@pytest.mark.parametrize("which", list(HOSTILE_DESCRIPTIONS))
@pytest.mark.parametrize("command", ["ls", "convert", "mip", "png", "index"])
def test_hostile_series_description(tmp_path, capfd, command, which):
    src = synth.write_series(tmp_path / "src", shape=SHAPE, description=HOSTILE_DESCRIPTIONS[which]).folder
    out = tmp_path / "deep" / "out"
    before = set(tmp_path.rglob("*"))
    code, stdout, stderr = run_cli(COMMANDS[command](src, out), capfd)
    assert_clean(code, stdout, stderr, expect=0)
    for text in (stdout, stderr):  # no terminal control sequences from header text
        assert "\x1b" not in text and "\x07" not in text and "\x00" not in text
    created = set(tmp_path.rglob("*")) - before
    for p in created:
        if p in out.parents:
            continue  # the -o folder's own parents, created for it
        assert out == p or out in p.parents, f"{p} written outside -o {out}"
        assert re.fullmatch(r"[A-Za-z0-9._+-]+", p.name), p.name
        assert not p.name.startswith("."), p.name
    if command in NAMED_OUTPUTS:
        assert output_files(out), "nothing written"
        for line in stdout.splitlines():
            assert Path(line).resolve().parent == out.resolve()


# --- existing outputs -----------------------------------------------------------------------


@pytest.mark.parametrize("command", WRITERS)
def test_existing_outputs_are_kept_without_force_and_replaced_with_it(tmp_path, capfd, command):
    src = synth.write_series(tmp_path / "src", shape=SHAPE).folder
    out = tmp_path / "out"
    code, stdout, stderr = run_cli(COMMANDS[command](src, out), capfd)
    assert_clean(code, stdout, stderr, expect=0)
    files = output_files(out)
    assert files
    marker = b"precious user data"
    for p in files:
        p.write_bytes(marker)
    code, stdout, stderr = run_cli(COMMANDS[command](src, out), capfd)
    assert_clean(code, stdout, stderr, expect={EXIT_OUTPUT_EXISTS, 0})
    if code == 0:  # batch commands may skip existing outputs with a warning: then say so
        assert "exist" in stderr
    else:
        assert "--force" in stderr
    assert all(p.read_bytes() == marker for p in files), "an existing output was changed without --force"
    assert output_files(out) == files and leftovers(out) == []
    code, stdout, stderr = run_cli(COMMANDS[command](src, out) + ["--force"], capfd)
    assert_clean(code, stdout, stderr, expect=0)
    assert output_files(out) == files and leftovers(out) == []
    assert all(p.read_bytes() != marker for p in files), "--force did not replace the outputs"


# --- the frame-count bomb and short pixel data (scanner and reader) ---------------------------


def test_huge_number_of_frames_gives_one_record_with_a_problem(tmp_path, capfd):
    s = synth.write_series(tmp_path / "s", shape=SHAPE)
    mutate(s.paths[0], NumberOfFrames=10_000_000)
    found = volume.scan(s.folder)
    bad = [st for st in found.stacks if any(os.path.basename(f) == s.paths[0].name for f in st.files)]
    assert len(bad) == 1 and len(bad[0].frames) == 1
    assert "NumberOfFrames is 10000000" in bad[0].problem and s.paths[0].name in bad[0].problem
    with pytest.raises(VolumeError, match="NumberOfFrames"):
        volume.load(bad[0])
    good = [st for st in found.stacks if st is not bad[0]]
    assert len(good) == 1 and good[0].n_slices == SHAPE[0] - 1  # the honest files still load
    code, out, err = run_cli(["ls", s.folder], capfd)
    assert_clean(code, out, err, expect=0)
    assert "NumberOfFrames is 10000000" in out


def test_huge_number_of_frames_in_compressed_data(tmp_path):
    s = synth.write_series(tmp_path / "s", shape=(1,) + SHAPE[1:], transfer_syntax=synth.RLELossless)
    mutate(s.paths[0], NumberOfFrames=5_000_000)
    found = volume.scan(s.folder)
    assert len(found.stacks) == 1 and len(found.stacks[0].frames) == 1
    assert "NumberOfFrames is 5000000" in found.stacks[0].problem


def test_frames_that_fit_the_pixel_data_still_expand(tmp_path):
    """The guard is exact: a classic multi-frame file whose data holds every frame is loaded."""
    rows, cols, n = 6, 5, 3
    ds = synth.base_dataset(series_uid=pydicom.uid.generate_uid(), study_uid=pydicom.uid.generate_uid(),
                            frame_uid=pydicom.uid.generate_uid(), rows=rows, cols=cols)
    ds.NumberOfFrames = n
    ds.PixelData = np.arange(n * rows * cols, dtype=np.uint16).tobytes()
    path = tmp_path / "mf.dcm"
    ds.save_as(path, enforce_file_format=True)
    frames, reason = read_header(str(path))
    assert reason == "" and len(frames) == n and not frames[0].problem
    ds.PixelData = ds.PixelData[: -2]  # one pixel short: refused
    ds.save_as(path, enforce_file_format=True)
    frames, reason = read_header(str(path))
    assert len(frames) == 1 and "NumberOfFrames is 3" in frames[0].problem


def test_short_pixel_data_is_refused_before_allocating(tmp_path):
    """Headers claiming 6000x6000 over 4 files (288 MB) with a few bytes each: no big allocation."""
    import tracemalloc

    s = synth.write_series(tmp_path / "s", shape=SHAPE)
    for p in s.paths:
        mutate(p, Rows=6000, Columns=6000)
    found = volume.scan(s.folder)
    tracemalloc.start()
    try:
        with pytest.raises(VolumeError, match="pixel data is .* bytes"):
            volume.load(found)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50 * 2**20, f"{peak / 2**20:.0f} MiB allocated before refusing"


def test_one_position_a_world_away_is_refused_naming_its_file(tmp_path, capfd):
    """One file's ImagePositionPatient at 1e30 mm (found by the fuzzer, seed 8): it made a
    'tilted' stack whose grid size overflowed to negative numbers (exit 70 in reslice/mip)."""
    s = synth.write_series(tmp_path / "s", shape=SHAPE, names="ordered")
    culprit = s.paths[2]
    mutate(culprit, ImagePositionPatient=[1e30, 1e30, 1e30])
    with pytest.raises(VolumeError, match="ImagePositionPatient") as info:
        volume.load(s.folder)
    assert culprit.name in str(info.value)
    for command in (["convert", s.folder, "-o", tmp_path / "out"],
                    ["reslice", s.folder, "--spacing", "2", "-o", tmp_path / "out" / "r.nii.gz"],
                    ["mip", s.folder, "-o", tmp_path / "out" / "m.png"]):
        code, out, err = run_cli(command, capfd)
        assert_clean(code, out, err, expect={EXIT_PARTIAL, EXIT_NOT_A_VOLUME}, mention=culprit.name)
    assert output_files(tmp_path / "out") == []


@pytest.mark.parametrize("case", ["tilt", "gap"])
def test_positions_asking_for_a_huge_grid_are_refused_before_allocating(tmp_path, capfd, case):
    """A few 64x64 images whose positions (within a kilometre) make a tilt-corrected grid of
    terabytes, or a gap filled by 450,000 slices (3.4 GiB): the memory limit refuses before any
    allocation, naming the grid and the positions."""
    import tracemalloc

    if case == "tilt":
        positions = [(0.0, 0.0, 0.0), (0.0, 0.0, 2.0), (9e5, 9e5, 4.0)]
    else:
        positions = [(0.0, 0.0, 0.0), (0.0, 0.0, 2.0), (0.0, 0.0, 4.0), (0.0, 0.0, 9e5)]
    s = synth.write_series(tmp_path / "s", shape=(len(positions), 64, 64), positions=positions,
                           field_fn=lambda x, y, z: 0 * x + 100.0)
    found = volume.scan(s.folder)
    limit = 100 * 2**20  # the images take 32 KiB: only the grid can pass it
    tracemalloc.start()
    try:
        with pytest.raises(ResourceLimitError, match="ImagePositionPatient"):
            volume.load(found, allow_gaps=True, max_bytes=limit)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50 * 2**20, f"{peak / 2**20:.0f} MiB allocated before refusing"
    args = ["--allow-gaps"] if case == "gap" else []
    code, out, err = run_cli(["mip", s.folder, "-o", tmp_path / "out" / "m.png", "--max-memory", "100M", *args], capfd)
    assert_clean(code, out, err, expect=EXIT_NOT_A_VOLUME, mention="limit")
    assert output_files(tmp_path / "out") == []


def test_absurd_image_is_refused_by_the_memory_limit(tmp_path, capfd):
    s = synth.write_series(tmp_path / "s", shape=SHAPE)
    for p in s.paths:
        mutate(p, Rows=65535, Columns=65535)
    with pytest.raises(ResourceLimitError, match="limit"):
        volume.load(s.folder)
    code, out, err = run_cli(["convert", s.folder, "-o", tmp_path / "out"], capfd)
    assert_clean(code, out, err, expect={EXIT_PARTIAL, EXIT_NOT_A_VOLUME}, mention="limit")
    assert output_files(tmp_path / "out") == []


# --- disk full ------------------------------------------------------------------------------


def _disk_fills_after(monkeypatch, n_ok: int) -> dict[str, int]:
    """Make every atomic write after the first ``n_ok`` fail with ENOSPC, half its bytes on disk.

    The temporary file really holds a truncated output when the error is raised, as on a full
    disk; DICOM series folders fail on their third slice.
    """
    import contextlib

    import volume.io.atomic as atomic

    real = atomic.atomic_output
    calls = {"n": 0}

    @contextlib.contextmanager
    def full(path, *args, **kwargs):
        with real(path, *args, **kwargs) as tmp:
            yield tmp
            calls["n"] += 1
            if calls["n"] > n_ok:
                if tmp.exists():
                    tmp.write_bytes(tmp.read_bytes()[: tmp.stat().st_size // 2])
                raise OSError(errno.ENOSPC, "No space left on device", str(tmp))

    for module in ("volume.io.nifti", "volume.io.image", "volume.io.sidecar", "volume.io.dicom_out",
                   "volume.render.mesh", "volume.render.offscreen", "volume.jobs.index", "volume.jobs.pictures"):
        __import__(module)
    for name, mod in list(sys.modules.items()):  # every writer that bound the name at import
        if (name == "volume" or name.startswith("volume.")) and getattr(mod, "atomic_output", None) is real:
            monkeypatch.setattr(mod, "atomic_output", full)
    import pydicom as pydicom_module

    real_write = pydicom_module.dcmwrite
    slices = {"n": 0}

    def dcmwrite(path, *args, **kwargs):
        slices["n"] += 1
        if slices["n"] > 2:
            Path(path).write_bytes(b"DICM half")
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_write(path, *args, **kwargs)

    monkeypatch.setattr(pydicom_module, "dcmwrite", dcmwrite)
    return calls


DISK_FULL_COMMANDS = {
    **{c: COMMANDS[c] for c in WRITERS},
    "reslice-png": lambda src, out: ["reslice", src, "--spacing", "2", "-o", out],
    "reslice-dcm": lambda src, out: ["reslice", src, "--spacing", "2", "--format", "dcm", "-o", out],
    "mip-slabs": lambda src, out: ["mip", src, "--slab", "3", "-o", out],
}


#: Commands writing several files: the disk also fills after their first output.
SEVERAL_OUTPUTS = ("convert", "mip", "png", "reslice-png", "mip-slabs")


@pytest.mark.parametrize(
    "command, n_ok", [(c, 0) for c in DISK_FULL_COMMANDS] + [(c, 1) for c in SEVERAL_OUTPUTS]
)
def test_disk_full_leaves_whole_files_or_nothing(tmp_path, capfd, monkeypatch, command, n_ok):
    src = synth.write_series(tmp_path / "src" / "a", shape=SHAPE).folder
    if command in ("convert", "mip", "png"):  # batches: two series
        synth.write_series(tmp_path / "src" / "b", shape=SHAPE, series_number=8)
        src = tmp_path / "src"
    out = tmp_path / "out"
    _disk_fills_after(monkeypatch, n_ok)
    code, stdout, stderr = run_cli(DISK_FULL_COMMANDS[command](src, out), capfd)
    assert code == EXIT_PARTIAL, stderr
    assert "Traceback" not in stderr and "internal error" not in stderr
    errors = error_lines(stderr)
    assert errors and all("No space left on device" in line for line in errors), errors
    if command not in ("convert", "png", "mip"):  # batches: one line per failed item
        assert len(errors) == 1, errors
    assert leftovers(out) == []
    listed = {Path(line) for line in stdout.splitlines() if line.strip()}
    on_disk = set(output_files(out))
    if command == "reslice-dcm":  # a DICOM series folder is published whole or not at all
        assert on_disk == set() or code == 0
    else:
        assert on_disk <= listed, f"files not reported on stdout: {on_disk - listed}"
    for p in on_disk:  # what is there is whole
        if p.name.endswith(".nii.gz"):
            import nibabel

            assert np.asarray(nibabel.load(p).dataobj).size > 0
        elif p.suffix == ".png":
            from PIL import Image

            with Image.open(p) as im:
                im.load()


# --- real processes: what reaches the terminal ------------------------------------------------

#: Runs the CLI in a fresh interpreter; PRELUDE may patch things first (argv[1] = the CLI args as JSON).
RUNNER = """
import json, sys
{prelude}
from volume.cli import main
sys.exit(main(json.loads(sys.argv[1]), as_program=True))  # as the volume program runs it (cli.run)
"""

#: Makes the NIfTI writer stop half-way for a minute, with the temporary file on disk.
SLOW_WRITER = """
import time, volume.io.nifti as nifti
_real = nifti.NiftiSink.write
_sinks = []
def _slow(self, data):  # every NIfTI writer (in memory or streamed) goes through NiftiSink
    if self not in _sinks:
        _sinks.append(self)
        if len(_sinks) == 2:  # the second series: its header written, then a long pause
            _real(self, data)
            self._fh.flush()
            sys.stderr.write("WRITING\\n"); sys.stderr.flush()
            time.sleep(60)
            return
    _real(self, data)
nifti.NiftiSink.write = _slow
"""


def start(args: list, prelude: str = "", **kwargs) -> subprocess.Popen:
    import json

    env = {**os.environ, "VOLUME_NO_PROGRESS": "1"}

    def as_in_a_terminal() -> None:  # a test runner started in the background ignores SIGINT
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    kwargs.setdefault("preexec_fn", as_in_a_terminal)
    return subprocess.Popen(
        [sys.executable, "-c", RUNNER.format(prelude=prelude), json.dumps([str(a) for a in args])],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, **kwargs,
    )


def test_ctrl_c_in_the_middle_of_a_batch_exits_130_and_leaves_no_partial_file(tmp_path):
    synth.write_series(tmp_path / "src" / "a", shape=(20, 64, 64), series_number=1)
    synth.write_series(tmp_path / "src" / "b", shape=(20, 64, 64), series_number=2)
    out = tmp_path / "out"
    proc = start(["convert", tmp_path / "src", "-o", out, "-f", "nii"], prelude=SLOW_WRITER)
    deadline = time.monotonic() + 60
    line = ""
    while "WRITING" not in line and time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line and proc.poll() is not None:
            break
    assert "WRITING" in line, "the writer never started"
    assert leftovers(out), "the temporary file should exist while writing"
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "interrupted" in stderr
    assert leftovers(out) == []
    listed = {Path(x) for x in stdout.splitlines() if x.strip()}
    assert set(output_files(out)) == listed  # the first series, whole; nothing of the second
    assert {p.name for p in listed} == {"1_synthetic.nii", "1_synthetic.json"}


def test_ctrl_c_on_a_big_series_exits_130_whatever_the_moment(tmp_path):
    """200 slices of 256x256, interrupted while converting: 130 and no partial file, or done."""
    src = synth.write_series(tmp_path / "big", shape=(200, 256, 256), names="ordered").folder
    out = tmp_path / "out"
    proc = start(["convert", src, "-o", out, "--threads", "1"])
    time.sleep(1.0)  # interpreter started, headers being read or pixels decoded
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode in (0, 130), stderr
    assert "Traceback" not in stderr
    assert leftovers(out) == []
    listed = {Path(x) for x in stdout.splitlines() if x.strip()}
    assert set(output_files(out)) == listed
    if proc.returncode == 130:
        assert "interrupted" in stderr


def test_no_traceback_reaches_the_terminal(tmp_path):
    """A real process on broken input, and on an internal bug (only --debug shows a traceback)."""
    src = synth.write_series(tmp_path / "src", shape=SHAPE, description="[/bold]\x1b[2J").folder
    mutate(next(iter(sorted(src.iterdir()))), NumberOfFrames=10_000_000, Rows=0)
    (src / "zeros").write_bytes(bytes(5000))
    for args in (["ls", src], ["convert", src, "-o", tmp_path / "out"], ["mip", src, "-o", tmp_path / "m"]):
        proc = start(args)
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode in DOCUMENTED_EXIT_CODES, stderr
        assert "Traceback" not in stderr and "\x1b" not in stderr + stdout
    bug = "import volume.dicom as D\ndef _boom(*a, **k):\n    raise RuntimeError('a bug')\nD.scan = _boom\n"
    proc = start(["ls", src], prelude=bug)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 70 and "Traceback" not in stderr and "internal error" in stderr
    proc = start(["--debug", "ls", src], prelude=bug)
    stdout, stderr = proc.communicate(timeout=120)
    assert "Traceback" in stderr and "a bug" in stderr


# --- two writers in one folder -----------------------------------------------------------------


def test_two_commands_writing_into_one_folder_at_once(tmp_path):
    a = synth.write_series(tmp_path / "a", shape=(30, 64, 64), series_number=1, seed=1).folder
    b = synth.write_series(tmp_path / "b", shape=(30, 64, 64), series_number=2, seed=2).folder
    out = tmp_path / "out"
    procs = [start(["convert", a, "-o", out]), start(["convert", b, "-o", out]),
             start(["convert", a, "-o", out])]  # the third races the first for the same names
    results = [p.communicate(timeout=120) + (p.returncode,) for p in procs]
    for _stdout, stderr, _code in results:
        assert "Traceback" not in stderr
    assert results[1][2] == 0
    assert sorted(c for _, _, c in (results[0], results[2])) in ([0, EXIT_OUTPUT_EXISTS], [0, 0])
    assert leftovers(out) == []
    import nibabel

    names = sorted(p.name for p in output_files(out))
    assert names == ["1_synthetic.json", "1_synthetic.nii.gz", "2_synthetic.json", "2_synthetic.nii.gz"]
    for n, folder in ((1, a), (2, b)):
        img = nibabel.load(out / f"{n}_synthetic.nii.gz")
        vol = volume.load(folder)
        got = np.asarray(img.dataobj)
        assert got.shape == vol.shape[::-1]  # NIfTI is (column, row, slice)
        np.testing.assert_array_equal(np.sort(got.ravel()), np.sort(np.asarray(vol.array).ravel()))


# --- usage errors: bad options are exit 2 and one line, for every command ----------------------

USAGE_ERRORS = [
    ["nosuchcommand"],
    ["convert", "{src}", "-o"],  # -o without its folder
    ["convert", "{src}", "-o", "{out}", "--threads", "-3"],
    ["convert", "{src}", "-o", "{out}", "--format", "tiff"],
    ["mip", "{src}", "--plane", "diagonal", "-o", "{out}"],
    ["mip", "{src}", "--slab", "-1", "-o", "{out}"],
    ["mip", "{src}", "--window", "nan,inf", "-o", "{out}"],
    ["mip", "--no-such-option", "{src}"],
    ["reslice", "{src}", "--spacing", "0", "-o", "{out}/r.nii.gz"],
    ["reslice", "{src}", "--spacing", "nan", "-o", "{out}/r.nii.gz"],
    ["reslice", "{src}", "--normal", "0,0,0", "-o", "{out}/r.nii.gz"],
    ["reslice", "{src}", "-o", "{out}/r.nii.gz"],  # nothing to reslice to
    ["render", "{src}", "--size", "100000x100000", "-o", "{out}/r.png"],
    ["render", "{src}", "--turntable", "100000", "-o", "{out}/r.gif"],
    ["mesh", "{src}", "--level", "nan", "-o", "{out}/m.stl"],
    ["mesh", "{src}", "--smooth", "100000", "-o", "{out}/m.stl"],
    ["png", "{src}", "-o", "{out}", "--size", "100000"],  # was minutes of resampling
    ["png", "{src}", "-o", "{out}", "--quality", "500"],
    ["index", "{src}", "-o", "{out}/i.txt"],
    ["index", "{src}", "-o", "{out}/i.csv", "--fields", "nonsense,(zz"],
    ["info"],
    ["view", "{src}", "--size", "0x0"],
    ["view", "{src}", "--window", "abc"],
    ["view", "{src}", "--frame", "99"],
    ["view", "{src}", "--mode", "bogus"],
    ["serve", "{src}", "--window", "abc", "--port", "0"],
    ["serve", "{src}", "--frame", "99", "--port", "0"],
    ["serve", "{src}", "--port", "70000"],
    ["view", "{src}", "--web", "--mode", "bogus"],
    ["render", "{src}", "--turntable", "4", "--axis", "Q", "-o", "{out}/s.mp4"],
    ["render", "{src}", "--turntable", "4", "-o", "{out}/s.avi"],
    ["mip", "{src}", "--turntable", "4", "--mode", "mean", "-o", "{out}/s.mp4"],
    ["mip", "{src}", "--turntable", "4"],
]


@pytest.mark.parametrize("argv", USAGE_ERRORS, ids=lambda a: "-".join(x.strip("{}-") for x in a[:4]))
def test_usage_errors_are_one_line_and_exit_2(tmp_path, capfd, monkeypatch, argv):
    for var in ("DISPLAY", "WAYLAND_DISPLAY"):  # view must never open a window here
        monkeypatch.delenv(var, raising=False)
    src = synth.write_series(tmp_path / "src", shape=SHAPE).folder
    out = tmp_path / "out"
    args = [a.format(src=src, out=out) for a in argv]
    code, stdout, stderr = run_cli(args, capfd)
    assert_clean(code, stdout, stderr, expect=EXIT_USAGE)
    assert "np.float64" not in stderr and "internal error" not in stderr
    assert output_files(out) == []


# --- the mutation fuzzer, a few hundred cases ---------------------------------------------------


def _fuzz_module():
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "fuzz.py"
    spec = importlib.util.spec_from_file_location("volume_fuzz", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["volume_fuzz"] = module
    spec.loader.exec_module(module)
    return module


def test_mutation_fuzzer_finds_no_crash_and_no_hang():
    """benchmarks/fuzz.py in-process: synthetic and real seeds, the loader and the fast commands.

    ``python benchmarks/fuzz.py --cases 5000`` runs every command on many more cases.
    """
    import warnings

    fuzz = _fuzz_module()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = fuzz.fuzz(250, seed=20261122, commands=("ls", "info", "convert", "index"), time_limit=30,
                           data=REAL_DATA, in_process=True)  # real seeds too when ../shared/data is there
    summary = report.summary()
    assert summary["cases"] == 250
    assert summary["crash"] == 0 and summary["hang"] == 0, (summary["crash_signatures"], summary["hangs"])
    assert summary["clean_error"] > 25 and summary["ok"] > 25  # mutations do break things, not all of them


def test_fuzzer_reports_crashes_it_is_shown(tmp_path, monkeypatch):
    """The fuzzer is not blind: a loader that raises a non-VolumeError is counted as a crash."""
    fuzz = _fuzz_module()
    import volume

    def broken(*args, **kwargs):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(volume, "load", broken)
    report = fuzz.fuzz(3, seed=1, commands=("ls",), in_process=True)
    assert report.summary()["crash"] == 3
    assert any("ZeroDivisionError" in sig for sig in report.crashes)


# --- regressions the fuzzer found ----------------------------------------------------------------


def test_png_refuses_a_frame_count_the_data_cannot_hold(tmp_path, capfd):
    """NumberOfFrames 1e308 on a compressed file made `volume png` allocate 7 GB for minutes."""
    s = synth.write_series(tmp_path / "s", shape=(2, 6, 5), transfer_syntax=synth.RLELossless)
    mutate(s.paths[0], NumberOfFrames="1e308")
    mutate(s.paths[1], NumberOfFrames=10_000_000)
    out = tmp_path / "out"
    code, stdout, stderr = run_cli(["png", s.folder, "-o", out, "--workers", "1"], capfd)
    assert code == EXIT_PARTIAL and "Traceback" not in stderr
    assert "NumberOfFrames" in stderr
    assert output_files(out) == [] and leftovers(out) == []


class PanicException(BaseException):
    """Stands in for pyo3's PanicException (a Rust decoder's panic), which is a BaseException."""


def test_a_decoder_panic_is_corrupt_data_not_a_crash(tmp_path, capfd, monkeypatch):
    s = synth.write_series(tmp_path / "s", shape=(3, 6, 5), transfer_syntax=synth.RLELossless)

    def panic(*args, **kwargs):
        raise PanicException("index out of bounds: the len is 131072 but the index is 131072")

    monkeypatch.setattr(pydicom.dataset.Dataset, "pixel_array", property(panic))
    monkeypatch.setattr("pydicom.pixels.iter_pixels", panic)
    with pytest.raises(VolumeError, match="cannot decode pixel data"):
        volume.load(s.folder)
    for args in (["convert", s.folder, "-o", tmp_path / "c"], ["png", s.folder, "-o", tmp_path / "p", "--workers", "1"]):
        code, stdout, stderr = run_cli(args, capfd)
        assert code == EXIT_PARTIAL, stderr
        assert "Traceback" not in stderr and "internal error" not in stderr


# --- the memory limit -----------------------------------------------------------------------------


def test_convert_max_memory_refuses_and_allows(tmp_path, capfd):
    s = synth.write_series(tmp_path / "s", shape=SHAPE)  # 4 x 6 x 5 uint16: 240 bytes, 60 per image
    out = tmp_path / "out"
    # a plain series is streamed, 3 images in memory at a time: only a budget below that refuses it
    code, stdout, stderr = run_cli(["convert", s.folder, "-o", out, "--max-memory", "100"], capfd)
    assert_clean(code, stdout, stderr, expect=EXIT_PARTIAL, mention="(180 bytes), over the 100 bytes limit")
    assert output_files(out) == []
    code, stdout, stderr = run_cli(["convert", s.folder, "-o", out, "--max-memory", "200"], capfd)
    assert_clean(code, stdout, stderr, expect=0)  # 240 bytes over a 200-byte budget: streamed
    assert len(output_files(out)) == 2
    for bad in ("abc", "0", "-5G", "nan", "inf"):
        code, stdout, stderr = run_cli(["convert", s.folder, "-o", tmp_path / "x", f"--max-memory={bad}"], capfd)
        assert_clean(code, stdout, stderr, expect=EXIT_USAGE, mention="--max-memory")


def test_info_on_a_fifo_does_not_block(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    proc = start(["info", fifo])
    stdout, stderr = proc.communicate(timeout=60)  # blocked forever before
    assert proc.returncode == EXIT_USAGE and "not a regular file" in stderr


def test_file_meta_group_length_of_zero_bytes(tmp_path, capfd):
    """(0002,0000) with a zero-length value made the fast header reader raise struct.error (exit 70)."""
    s = synth.write_series(tmp_path / "s", shape=SHAPE)
    raw = s.paths[0].read_bytes()
    assert raw[132:140] == b"\x02\x00\x00\x00UL\x04\x00"
    s.paths[0].write_bytes(raw[:138] + b"\x00\x00" + raw[144:])
    frames, reason = read_header(str(s.paths[0]))  # no exception: a record or a reason
    assert frames or reason
    for args in (["ls", s.folder], ["convert", s.folder, "-o", tmp_path / "o"], ["index", s.folder, "-o", tmp_path / "i.csv"]):
        code, stdout, stderr = run_cli(args, capfd)
        assert code in DOCUMENTED_EXIT_CODES and "internal error" not in stderr, stderr


def test_no_decoder_that_can_abort_the_process_is_used():
    """GDCM (installed with dicom2nifti) aborts Python on some corrupt JPEG 2000: never used."""
    from pydicom.pixels import decoders
    from pydicom.pixels.decoders.base import Decoder

    from volume.dicom.pixels import UNSAFE_DECODER_PLUGINS, disable_unsafe_decoders

    disable_unsafe_decoders()
    for name in dir(decoders):
        decoder = getattr(decoders, name)
        if isinstance(decoder, Decoder):
            assert not set(UNSAFE_DECODER_PLUGINS) & set(decoder.available_plugins), name


def test_corrupt_jpeg2000_palette_file_is_a_clean_error(data_dir, tmp_path):
    """Found by the fuzzer: J2K data labelled PALETTE COLOR with 3 samples made GDCM abort (exit 134)."""
    import shutil

    src = tmp_path / "j2k"
    shutil.copytree(data_dir / "dicom" / "d2n_j2k", src)
    victim = sorted(src.iterdir())[0]
    mutate(victim, PhotometricInterpretation="PALETTE COLOR", SamplesPerPixel=3, PlanarConfiguration=0)
    (tmp_path / "one").mkdir()
    shutil.copy(victim, tmp_path / "one" / victim.name)
    for args in (["convert", tmp_path / "one", "-o", tmp_path / "c"], ["png", tmp_path / "one", "-o", tmp_path / "p", "--workers", "1"]):
        proc = start(args)
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode in DOCUMENTED_EXIT_CODES, (proc.returncode, stderr[-500:])
        assert "Traceback" not in stderr

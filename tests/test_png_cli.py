"""`volume png` from the command line: trees, names, errors, reruns, parallel workers, exit codes."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydicom.data import get_testdata_file

from volume.cli import main
from volume.errors import EXIT_OUTPUT_EXISTS


def run(args: list[str], capsys) -> tuple[int, list[str], str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, [line for line in out.splitlines() if line], err


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A messy input tree: subfolders, odd names, a clash, an SR, a text file, a multi-frame file."""
    root = tmp_path / "in"
    (root / "sub dir" / "déjà").mkdir(parents=True)
    (root / "..hidden").mkdir()
    shutil.copy(get_testdata_file("CT_small.dcm"), root / "ct.dcm")
    shutil.copy(get_testdata_file("MR_small.dcm"), root / "ct")  # clashes with ct.dcm -> ct_2
    shutil.copy(get_testdata_file("MR_small_RLE.dcm"), root / "sub dir" / "déjà" / "mr rle.DCM")
    shutil.copy(get_testdata_file("SC_rgb_rle_2frame.dcm"), root / "sub dir" / "two.dcm")
    shutil.copy(get_testdata_file("rtplan.dcm"), root / "..hidden" / "plan.dcm")
    shutil.copy(get_testdata_file("reportsi.dcm"), root / "report.dcm")
    (root / "notes.txt").write_text("not a DICOM file")
    return root


def test_tree_is_mirrored_with_safe_names(tree, tmp_path, capsys):
    out = tmp_path / "out"
    code, written, err = run(["png", tree, "-o", out, "--workers", "1"], capsys)
    assert code == 0, err
    rel = sorted(Path(p).relative_to(out).as_posix() for p in written)
    assert rel == sorted([
        "ct.png", "ct_2.png", "sub_dir/deja/mr_rle.png", "sub_dir/two_f0001.png", "sub_dir/two_f0002.png",
    ])
    for p in written:
        assert Path(p).resolve().is_relative_to(out.resolve()) and Path(p).is_file()
    assert "5 pictures written from 7 files" in err
    assert "skipped 3 (" in err and "2 no pixel data" in err and "1 not DICOM" in err
    assert not list(out.rglob(".volume-tmp-*"))  # atomic writes leave nothing behind


def test_parallel_run_matches_serial(tree, tmp_path, capsys):
    code1, w1, _ = run(["png", tree, "-o", tmp_path / "serial", "--workers", "1"], capsys)
    code2, w2, _ = run(["png", tree, "-o", tmp_path / "pool", "--workers", "2"], capsys)
    assert code1 == code2 == 0
    r1 = [Path(p).relative_to(tmp_path / "serial") for p in w1]
    r2 = [Path(p).relative_to(tmp_path / "pool") for p in w2]
    assert r1 == r2  # same order too: results come back in input order
    for a in r1:
        np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "serial" / a)),
                                      np.asarray(Image.open(tmp_path / "pool" / a)))


def test_errors_are_reported_at_the_end_and_exit_1(tree, tmp_path, capsys):
    shutil.copy(get_testdata_file("MR_truncated.dcm"), tree / "sub dir" / "broken.dcm")
    out = tmp_path / "out"
    code, written, err = run(["png", tree, "-o", out, "--workers", "2"], capsys)
    assert code == 1
    assert len(written) == 5  # the batch went on
    lines = err.splitlines()
    assert any("error:" in ln and "broken.dcm" in ln and "pixel data" in ln for ln in lines)
    assert lines[-1].endswith("failed 1")


def test_existing_outputs_are_kept_unless_force(tree, tmp_path, capsys):
    out = tmp_path / "out"
    run(["png", tree, "-o", out, "--workers", "1"], capsys)
    target = out / "ct.png"
    os.utime(target, (1_000_000, 1_000_000))
    code, written, err = run(["png", tree, "-o", out, "--workers", "1"], capsys)
    assert code == EXIT_OUTPUT_EXISTS and written == []  # nothing written: every output existed
    assert "skipped 7 (4 with existing outputs, 2 no pixel data, 1 not DICOM; use --force to overwrite)" in err
    assert target.stat().st_mtime == 1_000_000
    code, written, err = run(["png", tree, "-o", out, "--workers", "1", "--force"], capsys)
    assert code == 0 and len(written) == 5
    assert target.stat().st_mtime != 1_000_000


def test_single_multiframe_file_and_gif(tmp_path, capsys):
    src = get_testdata_file("examples_ybr_color.dcm")
    code, written, _ = run(["png", src, "-o", tmp_path / "frames"], capsys)
    assert code == 0
    assert [Path(p).name for p in written] == [f"examples_ybr_color_f{i:04d}.png" for i in range(1, 31)]
    code, written, _ = run(["png", src, "-o", tmp_path / "anim", "--gif"], capsys)
    assert code == 0 and [Path(p).name for p in written] == ["examples_ybr_color.gif"]
    assert Image.open(written[0]).format == "GIF"


def test_preset_jpg_and_size(tmp_path, capsys):
    src = get_testdata_file("CT_small.dcm")
    code, written, _ = run(["png", src, "-o", tmp_path, "--preset", "lung", "--format", "jpg",
                            "--quality", "90", "--size", "64", "--keep-ratio"], capsys)
    assert code == 0 and len(written) == 1 and written[0].endswith(".jpg")
    img = Image.open(written[0])
    assert img.format == "JPEG" and img.size == (64, 64)


def test_window_auto_and_raw16(tmp_path, capsys):
    src = get_testdata_file("MR_small.dcm")
    code, written, _ = run(["png", src, "-o", tmp_path / "a", "--window", "auto"], capsys)
    assert code == 0
    code, written, _ = run(["png", src, "-o", tmp_path / "r", "--raw16"], capsys)
    assert code == 0 and Image.open(written[0]).mode.startswith("I")


@pytest.mark.parametrize(
    "extra",
    [
        ["--raw16", "--format", "jpg"],
        ["--window", "40,400", "--preset", "lung"],
        ["--window", "40"],
        ["--keep-ratio"],
        ["--raw16", "--window", "40,400"],
    ],
)
def test_usage_errors_exit_2(tmp_path, capsys, extra):
    code, written, err = run(["png", get_testdata_file("CT_small.dcm"), "-o", tmp_path, *extra], capsys)
    assert code == 2 and written == []
    assert err.strip() and "Traceback" not in err


def test_bad_choice_is_refused_without_traceback(tmp_path, capsys):
    # typer validates Enum choices itself; the exit code is click's (2) once cli/app.py maps
    # typer's vendored click exceptions (until then it reports an internal error, 70)
    code, written, err = run(["png", get_testdata_file("CT_small.dcm"), "-o", tmp_path, "--preset", "nope"], capsys)
    assert code != 0 and written == [] and "Traceback" not in err and "nope" in err


def test_missing_input_and_no_images(tmp_path, capsys):
    code, _, err = run(["png", tmp_path / "nothing", "-o", tmp_path / "o"], capsys)
    assert code == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "a.txt").write_text("x")
    code, _, err = run(["png", empty, "-o", tmp_path / "o"], capsys)
    assert code == 3 and "no DICOM images" in err


def test_output_inside_input_is_not_rescanned(tree, capsys):
    out = tree / "png"
    code, written, _ = run(["png", tree, "-o", out, "--workers", "1"], capsys)
    assert code == 0 and len(written) == 5
    code, written, err = run(["png", tree, "-o", out, "--workers", "1"], capsys)
    assert code == EXIT_OUTPUT_EXISTS and "1 not DICOM" in err  # the PNGs were not read as inputs


def test_pool_with_another_thread_running(tree, tmp_path):
    """With a progress bar's thread alive the pool must not fork it: forkserver workers still work."""
    import threading

    from volume.jobs.png import PngSettings, convert_many, plan_outputs

    stop = threading.Event()
    bar = threading.Thread(target=stop.wait, daemon=True)
    bar.start()
    try:
        results = list(convert_many(plan_outputs(tree, tmp_path / "o"), PngSettings(), workers=2))
    finally:
        stop.set()
    assert sum(len(r.written) for r in results) == 5
    assert not any(r.error for r in results)


def test_one_file_to_a_named_picture(tmp_path, capsys):
    src = get_testdata_file("CT_small.dcm")
    code, written, _ = run(["png", src, "-o", tmp_path / "slice.jpg"], capsys)
    assert code == 0 and written == [str(tmp_path / "slice.jpg")]
    assert Image.open(written[0]).format == "JPEG"
    code, written, _ = run(["png", get_testdata_file("SC_rgb_rle_2frame.dcm"), "-o", tmp_path / "two.png"], capsys)
    assert code == 0 and [Path(p).name for p in written] == ["two_f0001.png", "two_f0002.png"]
    code, _, _ = run(["png", src, "-o", tmp_path / "slice.png"], capsys)
    assert code == 0
    code, written, err = run(["png", src, "-o", tmp_path / "slice.png"], capsys)
    assert code == EXIT_OUTPUT_EXISTS and written == [] and "skipped 1 (1 with existing outputs" in err


def test_real_tree(data_dir, tmp_path, capsys):
    src = data_dir / "dicom"
    n_files = sum(1 for p in src.rglob("*") if p.is_file())
    code, written, err = run(["png", src, "-o", tmp_path / "o", "--workers", "2"], capsys)
    assert code == 0, err
    assert len(written) == n_files  # every file is one single-frame image here
    # BRAINIX's ROI masks carry a threshold window (center 0, width 1) that would make them all
    # white: the pictures show the mask instead
    roi = [np.asarray(Image.open(p)) for p in written if "/brainix/ROI/" in p.replace(os.sep, "/")]
    assert len(roi) == 22
    shown = [a for a in roi if a.max() > a.min()]
    assert shown and all(set(np.unique(a)) == {0, 255} for a in shown)
    t1 = np.asarray(Image.open(next(p for p in written if p.endswith("brainix/T1/IM-0001-0011.png"))))
    assert t1.shape == (512, 512) and t1.std() > 20  # a real, windowed brain slice


def _dies_on_three(x: int) -> int:
    if x == 3:
        os._exit(1)  # a worker killed outright, as by a decoder's segfault
    return 10 * x


def test_a_crashing_worker_does_not_stop_the_batch():
    from volume.parallel.pool import ordered_map

    got = list(ordered_map(_dies_on_three, range(12), workers=2, chunk=3, on_crash=lambda x: -x))
    assert got == [0, 10, 20, -3] + [10 * x for x in range(4, 12)]


_REAL_CONVERT = None


def _convert_or_die(job, settings):
    import volume.jobs.png as batch

    if job[0].endswith("two.dcm"):
        os._exit(1)
    # forked workers see the patched module (and _REAL_CONVERT); forkserver ones a fresh import
    real = _REAL_CONVERT if batch.convert_file is _convert_or_die else batch.convert_file
    return real(job, settings)


def test_png_batch_reports_a_crashed_file(tree, tmp_path, monkeypatch):
    import volume.jobs.png as batch

    global _REAL_CONVERT
    _REAL_CONVERT = batch.convert_file
    monkeypatch.setattr(batch, "convert_file", _convert_or_die)  # forked workers inherit it
    results = list(batch.convert_many(batch.plan_outputs(tree, tmp_path / "o"), batch.PngSettings(), workers=2))
    crashed = [r for r in results if r.error]
    assert [Path(r.source).name for r in crashed] == ["two.dcm"] and "worker process died" in crashed[0].error
    # the other images were written (a retried file written before the crash counts as kept)
    assert sum(len(r.written) + r.kept for r in results) == 3
    assert sorted(p.name for p in (tmp_path / "o").rglob("*.png")) == ["ct.png", "ct_2.png", "mr_rle.png"]

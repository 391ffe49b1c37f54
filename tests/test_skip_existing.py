"""Skipping what exists, the same way in every job (``volume/jobs/existing.py``): a re-run keeps every
output, counts each item whose outputs exist as skipped (``skipped N``), exits 5 when nothing was
left to do, and writes only what is missing when a batch was cut short."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from synth import write_series

from volume.cli import main
from volume.errors import EXIT_OUTPUT_EXISTS
from volume.jobs.existing import Tally, check_outputs

SUMMARY = re.compile(r"^volume: (?:\w+ \d+|\d+ pictures? written from \d+ files?), skipped (\d+)", re.M)
"""The closing line every job ends with: what it did, then ``skipped N``."""


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    """Three small MR series in one folder (three items for the batches)."""
    root = tmp_path_factory.mktemp("skip") / "study"
    for k in range(3):
        write_series(root / f"s{k}", shape=(5, 8, 9), field_fn=lambda x, y, z, k=k: 400.0 + 5.0 * x + k * z,
                     series_number=20 + k, description=f"t{k}", seed=k)
    return root


def _run(capsys, *args) -> tuple[int, list[str], str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out.split(), captured.err


def _state(folder: Path) -> dict[str, tuple[int, bytes]]:
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _skipped(err: str) -> int:
    found = SUMMARY.findall(err)
    assert len(found) == 1, err
    return int(found[0])


JOBS = {
    "mip": (["mip", "{src}", "-o", "{out}/"], 3),
    "mip-slabs": (["mip", "{src}/s0", "--plane", "axial", "--slab", "6", "-o", "{out}/"], 1),
    "reslice": (["reslice", "{src}/s1", "--plane", "coronal", "-o", "{out}/"], 1),
    "png": (["png", "{src}", "-o", "{out}/", "--workers", "1"], 15),
    "convert": (["convert", "{src}", "-o", "{out}/"], 3),
    "render": (["render", "{src}/s2", "--size", "32x32", "--no-marker", "-o", "{out}/r.png"], 1),
}
"""Each job, its command line, and how many items it counts (series; files for png)."""


@pytest.mark.parametrize("job", sorted(JOBS))
def test_a_rerun_skips_every_item_and_counts_it(job, study, tmp_path, capsys):
    if job == "render":
        pytest.importorskip("vtk")
    argv, items = JOBS[job]
    argv = [a.format(src=study, out=tmp_path / "out") for a in argv]
    code, first, err = _run(capsys, *argv)
    assert code == 0 and first and _skipped(err) == 0, err
    before = _state(tmp_path / "out")
    code, listed, err = _run(capsys, *argv)
    assert code == EXIT_OUTPUT_EXISTS and listed == [], err
    assert _skipped(err) == items and "failed 0" in err and "use --force to overwrite" in err
    assert _state(tmp_path / "out") == before  # nothing touched
    code, again, _ = _run(capsys, *argv, "--force")
    assert code == 0 and sorted(again) == sorted(first)


def test_mip_skips_before_reading_a_pixel(study, tmp_path, capsys, monkeypatch):
    from volume.jobs import mip as work

    out = tmp_path / "out"
    assert _run(capsys, "mip", study, "-o", f"{out}/")[0] == 0

    def no_projection(*args, **kwargs):
        raise AssertionError("an existing output's series was projected again")

    monkeypatch.setattr(work, "_project", no_projection)
    code, _, err = _run(capsys, "mip", study, "-o", f"{out}/")
    assert code == EXIT_OUTPUT_EXISTS and "projected 0, skipped 3, failed 0" in err


def test_a_rerun_resumes_a_batch_cut_short(study, tmp_path, capsys):
    out = tmp_path / "out"
    # mip: one series' picture lost; the other two are skipped
    code, first, _ = _run(capsys, "mip", study, "-o", f"{out}/mip/")
    assert code == 0
    Path(first[1]).unlink()
    code, listed, err = _run(capsys, "mip", study, "-o", f"{out}/mip/")
    assert code == 0 and listed == [first[1]] and "projected 1, skipped 2, failed 0" in err
    # slabs and slices: the missing pictures of one series are written, the others kept
    for argv in (["mip", study / "s0", "--plane", "axial", "--slab", "6", "-o", f"{out}/slabs/"],
                 ["reslice", study / "s1", "--plane", "coronal", "-o", f"{out}/cor/"]):
        code, first, _ = _run(capsys, *argv)
        assert code == 0 and len(first) > 1
        kept = {p: Path(p).stat().st_mtime_ns for p in first[:-1]}
        Path(first[-1]).unlink()
        code, listed, err = _run(capsys, *argv)
        assert code == 0 and listed == [first[-1]] and ", skipped 0, failed 0" in err
        assert {p: Path(p).stat().st_mtime_ns for p in first[:-1]} == kept
    # png: one picture lost; convert: one series' NIfTI and sidecar lost (they are one result)
    for argv, items in ((["png", study, "-o", f"{out}/png/", "--workers", "1"], 15),
                        (["convert", study, "-o", f"{out}/nii/"], 3)):
        code, first, _ = _run(capsys, *argv)
        assert code == 0
        stem = Path(first[0]).name.split(".")[0]
        lost = [p for p in first if Path(p).name.split(".")[0] == stem]
        for p in lost:
            Path(p).unlink()
        code, listed, err = _run(capsys, *argv)
        assert code == 0 and sorted(listed) == sorted(lost), err
        assert _skipped(err) == items - 1


def test_check_outputs_and_the_tally():
    tmp = Path(__file__).resolve().parent
    here = tmp / "synth.py"
    none = tmp / "no_such_output.png"
    found = check_outputs([here, none], force=False)
    assert found.present == (here,) and found.missing == (none,) and found.any and not found.all
    assert check_outputs([here], force=False).message() == f"{here} exists; use --force to overwrite"
    assert check_outputs([here, here], force=False).message().endswith("and 1 more exist; use --force to overwrite")
    assert not check_outputs([here], force=True).any  # --force: nothing counts as existing
    counts = Tally("projected")
    counts.skip_existing()
    assert counts.line() == "projected 0, skipped 1, failed 0" and counts.exit_code() == EXIT_OUTPUT_EXISTS
    counts.done += 1
    assert counts.exit_code() == 0
    counts.failed += 1
    assert counts.exit_code() == 1


def test_every_job_words_its_summary_the_same_way(study, tmp_path, capsys):
    lines = []
    for argv in (["mip", study, "-o", f"{tmp_path}/a/"], ["convert", study, "-o", f"{tmp_path}/b/"],
                 ["reslice", study / "s0", "--spacing", "3", "-o", f"{tmp_path}/c.nii.gz"],
                 ["png", study / "s0", "-o", f"{tmp_path}/d/", "--workers", "1"]):
        code, _, err = _run(capsys, *argv)
        assert code == 0
        lines.append(err.strip().splitlines()[-1])
    for line in lines:
        assert re.search(r", skipped \d+(?: \([^)]*\))?, failed \d+", line), line
    assert np.all([SUMMARY.search(line) for line in lines])

"""Benchmark: whole-process ``volume mip`` vs ``dcm2niix -z n`` on the same CT series; peak memory.

Usage::

    python benchmarks/bench_mip.py [--slices 300] [--long 1000] [--repeat 3] [--series DIR] [--long-series DIR]

1. Time: a ``--slices``-slice 512x512 CT written by ``benchmarks/make_ct.py`` (or ``--series``).
   Each command runs as its own process (interpreter start, imports, header scan, pixel reading,
   projection, writing), best of ``--repeat`` after one warm-up run so every contender reads
   from the page cache. ``dcm2niix -z n`` (read and write the series uncompressed) is the
   reference: the issue's goal is ``volume mip`` within 2x of it.
2. Peak memory (max RSS of the process, via ``wait4``) on a long series (``--long`` slices):
   ``volume mip`` streams slice by slice, so its peak stays near the interpreter's own footprint
   plus a few slices, whatever the series length; loading the whole volume first
   (``volume.load`` + ``project``) and dcm2niix hold the series.

Ratios are time / dcm2niix's time (< 2 is the goal) and memory / the series' size in memory.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

LOAD_THEN_PROJECT = (
    "import sys, volume; from volume.ops.projection import project; "
    "v = volume.load(sys.argv[1]); project(v, 'coronal', 'max')"
)
"""The non-streaming way: the whole volume in memory, then the projection."""


def run(cmd: list[str]) -> tuple[float, float]:
    """Run ``cmd``; return (wall seconds, peak RSS MiB). Raises on a non-zero exit."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {err[-500:]}")
    return elapsed, usage.ru_maxrss / 1024.0


def best(cmd: list[str], repeat: int, before=None) -> tuple[float, float]:
    times, peaks = [], []
    for _ in range(repeat + 1):  # the first run warms the page cache
        if before:
            before()
        t, m = run(cmd)
        times.append(t)
        peaks.append(m)
    return min(times[1:]), max(peaks)


def make_ct(folder: Path, slices: int) -> Path:
    if not folder.exists():
        subprocess.run([sys.executable, str(HERE / "make_ct.py"), str(folder), "--slices", str(slices)],
                       check=True, stdout=subprocess.DEVNULL)
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--long", type=int, default=1000, help="slices of the long series for peak memory (0: skip)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--series", help="time this DICOM folder instead of a synthetic CT")
    parser.add_argument("--long-series", help="measure memory on this folder instead of a synthetic long CT")
    args = parser.parse_args(argv)

    volume_exe = shutil.which("volume") or str(Path(sys.executable).with_name("volume"))
    dcm2niix = shutil.which("dcm2niix")
    work = Path(tempfile.mkdtemp(prefix="bench_mip_"))
    try:
        ct = Path(args.series) if args.series else make_ct(work / f"ct{args.slices}", args.slices)
        out = work / "out"
        out.mkdir()
        n_files = sum(1 for p in ct.rglob("*") if p.is_file())
        print(f"series: {ct} ({n_files} files); machine: {os.cpu_count()} cores; best of {args.repeat}")

        def clean_d2n() -> None:
            shutil.rmtree(out / "d2n", ignore_errors=True)
            (out / "d2n").mkdir()

        ref = None
        if dcm2niix:
            ref, ref_mem = best([dcm2niix, "-z", "n", "-o", str(out / "d2n"), str(ct)], args.repeat, clean_d2n)
            print(f"{'dcm2niix -z n':44s} {ref:6.2f} s  {ref_mem:7.0f} MiB peak")
        else:
            print("dcm2niix not found: no reference time")
        cases = [
            ("volume mip --plane coronal -o x.png", ["--plane", "coronal", "-o", str(out / "c.png")]),
            ("volume mip --plane axial -o x.png", ["--plane", "axial", "-o", str(out / "a.png")]),
            ("volume mip --plane sagittal -o x.nii", ["--plane", "sagittal", "-o", str(out / "s.nii")]),
            ("volume mip --plane axial --slab 20 -o x.nii", ["--plane", "axial", "--slab", "20", "-o", str(out / "slab.nii")]),
            ("volume mip --planes all -o sheet.png", ["--planes", "all", "-o", str(out / "sheet.png")]),
        ]
        for label, extra in cases:
            t, m = best([volume_exe, "mip", str(ct), *extra, "--force"], args.repeat)
            ratio = f"{t / ref:5.2f}x dcm2niix" if ref else ""
            print(f"{label:44s} {t:6.2f} s  {m:7.0f} MiB peak  {ratio}")

        if args.long or args.long_series:
            long_ct = Path(args.long_series) if args.long_series else make_ct(work / f"ct{args.long}", args.long)
            files = [p for p in long_ct.rglob("*") if p.is_file()]
            data_mib = sum(p.stat().st_size for p in files) / 2**20
            print(f"\npeak memory, long series: {len(files)} files, {data_mib:.0f} MiB on disk")
            rows = [
                ("volume mip --plane coronal (streamed)", [volume_exe, "mip", str(long_ct), "--plane", "coronal",
                                                           "-o", str(out / "long_c.png"), "--force"]),
                ("volume mip --plane axial (streamed)", [volume_exe, "mip", str(long_ct), "--plane", "axial",
                                                         "-o", str(out / "long_a.png"), "--force"]),
                ("volume.load + project (whole volume)", [sys.executable, "-c", LOAD_THEN_PROJECT, str(long_ct)]),
                ("python -c 'import volume' (baseline)", [sys.executable, "-c", "import volume, volume.cli"]),
            ]
            if dcm2niix:
                rows.append(("dcm2niix -z n", [dcm2niix, "-z", "n", "-o", str(out / "d2n"), str(long_ct)]))
            for label, cmd in rows:
                if cmd[0] == dcm2niix:
                    clean_d2n()
                t, m = run(cmd)
                print(f"{label:44s} {t:6.2f} s  {m:7.0f} MiB peak  ({m / data_mib:4.2f}x the series)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

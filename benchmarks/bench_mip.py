"""Benchmark: whole-process ``volume mip`` vs ``dcm2niix -z n`` on the same CT series; peak memory.

Usage::

    python benchmarks/bench_mip.py [--slices 300] [--long 1000] [--repeat 3] [--series DIR] [--long-series DIR]
    python benchmarks/bench_mip.py --slices 0 --long 2000     # the issue's 2,000-slice MIP only

1. Time: a ``--slices``-slice 512x512 CT written by ``benchmarks/make_ct.py`` (or ``--series``).
   Each command runs as its own process (interpreter start, imports, header scan, pixel reading,
   projection, writing), best of ``--repeat`` after one warm-up run so every contender reads
   from the page cache. ``dcm2niix -z n`` (read and write the series uncompressed) is the
   reference: the issue's goal is ``volume mip`` within 2x of it.
2. Wall time and peak memory (max RSS of the process, via ``wait4``), one run each, on a long
   series (``--long`` slices, 2,000 for the issue's goal of a peak under 300 MB): ``volume mip``
   streams slice by slice, so its peak stays near the interpreter's own footprint plus a few
   slices, whatever the series length. Against it in the same run: ``volume.load`` + ``project``
   (the whole volume in memory), what a user writes with pydicom + numpy (read every file, sort,
   stack, ``max``, rescale), SimpleITK (``ImageSeriesReader`` + ``MaximumProjection`` + write), and
   ``dcm2niix -z n`` (converts, no projection: a reference for reading the series).

Ratios are time / dcm2niix's time (< 2 is the goal) and memory / the series' size on disk.
The synthetic CTs are kept in the temp folder (``volume-bench-ct<N>-mip``) between runs.
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

from peers import dcm2niix_binary  # benchmarks/peers.py (the script's folder is on sys.path)

HERE = Path(__file__).resolve().parent

# Contenders cache their bytecode as an installed package does (a stale .pyc never rewritten
# costs every run ~0.05 s of compiling).
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)

LOAD_THEN_PROJECT = (
    "import sys, volume; from volume.ops.projection import project; "
    "v = volume.load(sys.argv[1]); project(v, 'coronal', 'max')"
)
"""The non-streaming way: the whole volume in memory, then the projection."""

PYDICOM_NUMPY = (
    "import os, sys, numpy as np, pydicom\n"
    "folder = sys.argv[1]\n"
    "ds = [pydicom.dcmread(os.path.join(folder, f)) for f in os.listdir(folder) if f[0] != '.']\n"
    "ds.sort(key=lambda d: float(d.ImagePositionPatient[2]))\n"
    "vol = np.stack([d.pixel_array for d in ds])\n"
    "mip = vol.max(axis=1) * float(ds[0].RescaleSlope) + float(ds[0].RescaleIntercept)\n"
)
"""What a user writes with pydicom and numpy: read every file, sort by z, stack, ``max``, rescale."""

SIMPLEITK = (
    "import sys, SimpleITK as sitk\n"
    "r = sitk.ImageSeriesReader()\n"
    "r.SetFileNames(r.GetGDCMSeriesFileNames(sys.argv[1]))\n"
    "mip = sitk.MaximumProjection(r.Execute(), 1)\n"
    "sitk.WriteImage(mip, sys.argv[2])\n"
)
"""SimpleITK: read the series (GDCM, sorted by position), ``MaximumProjection`` along rows (coronal)."""


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
    """The synthetic CT in ``folder``, written by ``make_ct.py`` unless complete already."""
    marker = folder / ".complete"
    if not marker.exists():
        shutil.rmtree(folder, ignore_errors=True)
        subprocess.run([sys.executable, str(HERE / "make_ct.py"), str(folder), "--slices", str(slices)],
                       check=True, stdout=subprocess.DEVNULL)
        marker.write_text("")
    return folder


def cached_ct(slices: int) -> Path:
    """A ``slices``-slice CT kept in the temp folder between runs (never in the repository)."""
    return make_ct(Path(tempfile.gettempdir()) / f"volume-bench-ct{slices}-mip", slices)


#: The issue's goal for the peak memory of a 2,000-slice MIP (MB = 10**6 bytes).
PEAK_GOAL_MB = 300


def long_series(args: argparse.Namespace, volume_exe: str, dcm2niix: str | None, work: Path, out: Path) -> int:
    """Wall time and peak RSS of a MIP of the long series, one run each, vs pydicom+numpy and SimpleITK."""
    long_ct = Path(args.long_series) if args.long_series else cached_ct(args.long)
    files = [p for p in long_ct.rglob("*") if p.is_file() and not p.name.startswith(".")]
    data_mib = sum(p.stat().st_size for p in files) / 2**20
    for p in files:  # page cache: every contender reads from memory
        p.read_bytes()
    print(f"\nlong series: {len(files)} files, {data_mib:.0f} MiB on disk; one run each; "
          f"load average {os.getloadavg()[0]:.1f}")
    rows = [
        ("volume mip --plane coronal -o x.png (streamed)", [volume_exe, "mip", str(long_ct), "--plane", "coronal",
                                                            "-o", str(out / "long_c.png"), "--force"]),
        ("volume mip --plane axial -o x.png (streamed)", [volume_exe, "mip", str(long_ct), "--plane", "axial",
                                                          "-o", str(out / "long_a.png"), "--force"]),
        ("volume.load + project (whole volume)", [sys.executable, "-c", LOAD_THEN_PROJECT, str(long_ct)]),
        ("pydicom + numpy (read all, stack, max)", [sys.executable, "-c", PYDICOM_NUMPY, str(long_ct)]),
        ("SimpleITK series reader + MaximumProjection", [sys.executable, "-c", SIMPLEITK, str(long_ct),
                                                         str(out / "sitk_mip.nii")]),
        ("python -c 'import volume' (baseline)", [sys.executable, "-c", "import volume, volume.cli"]),
    ]
    if dcm2niix:
        rows.append(("dcm2niix -z n (convert, no MIP)", [dcm2niix, "-z", "n", "-o", str(out / "d2n"), str(long_ct)]))
    measured = {}
    for label, cmd in rows:
        if cmd[0] == dcm2niix:
            shutil.rmtree(out / "d2n", ignore_errors=True)
            (out / "d2n").mkdir()
        try:
            measured[label] = run(cmd)
        except RuntimeError as exc:
            print(f"{label}: failed: {exc}")
    ref = measured.get("volume mip --plane coronal -o x.png (streamed)")
    print("\n| command (whole process, one run) | wall s | peak RSS | vs the series | time vs volume coronal "
          "| memory vs volume coronal |")
    print("|---|---|---|---|---|---|")
    for label, (t, m) in measured.items():
        rel = f"{t / ref[0]:.2f}x | {m / ref[1]:.2f}x" if ref else "- | -"
        print(f"| {label} | {t:.2f} | {m:.0f} MiB | {m / data_mib:.2f}x | {rel} |")
    if ref:
        peak_mb = ref[1] * 2**20 / 1e6
        print(f"\ngoal: peak under {PEAK_GOAL_MB} MB: volume mip coronal peaked at {peak_mb:.0f} MB "
              f"({'met' if peak_mb < PEAK_GOAL_MB else 'NOT met'})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=300, help="slices of the timed series (0: skip)")
    parser.add_argument("--long", type=int, default=1000, help="slices of the long series for peak memory (0: skip)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--series", help="time this DICOM folder instead of a synthetic CT")
    parser.add_argument("--long-series", help="measure memory on this folder instead of a synthetic long CT")
    args = parser.parse_args(argv)

    volume_exe = shutil.which("volume") or str(Path(sys.executable).with_name("volume"))
    dcm2niix = dcm2niix_binary()
    work = Path(tempfile.mkdtemp(prefix="bench_mip_"))
    try:
        ct = Path(args.series) if args.series else cached_ct(args.slices) if args.slices else None
        out = work / "out"
        out.mkdir()
        if ct is None:
            return long_series(args, volume_exe, dcm2niix, work, out)
        n_files = sum(1 for p in ct.rglob("*") if p.is_file() and not p.name.startswith("."))
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
            long_series(args, volume_exe, dcm2niix, work, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Whole-process DICOM -> NIfTI conversion time: ``volume convert`` against its peers, same run.

Usage::

    python benchmarks/bench_convert.py [--slices 300] [--rounds 5] [--data DIR] [--phases]

Generates a 300-slice 512x512 CT with ``benchmarks/make_ct.py`` (kept in ``--data``, default
``$TMPDIR/volume-bench-ct<slices>``, never committed), then runs each converter as a separate
process, one after the other, for ``--rounds`` rounds (a warm-up round first, not counted, so
every tool reads the files from the page cache). Output folders are emptied before every run.
Prints the median and best wall time of each tool and the ratios the issue sets as goals:
``volume .nii.gz <= 0.5 x dcm2niix -z y`` and ``volume .nii <= 1.5 x dcm2niix -z n``.
``--phases`` also times scan / load / write inside one process (where the time goes).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from peers import dcm2niix_binary  # benchmarks/peers.py (the script's folder is on sys.path)

HERE = Path(__file__).resolve().parent

GOAL_GZ = 0.5
"""Goal: ``volume`` .nii.gz wall time at most this fraction of ``dcm2niix -z y``."""

GOAL_NII = 1.5
"""Goal: ``volume`` .nii wall time at most this multiple of ``dcm2niix -z n``."""

TIMEOUT_S = 600
"""A converter taking longer than this is reported as timed out."""

PYDICOM_LOOP = """
import sys, glob, os
import numpy as np, pydicom, nibabel as nib
src, out = sys.argv[1], sys.argv[2]
files = [os.path.join(src, f) for f in os.listdir(src)]
ds = [pydicom.dcmread(f) for f in files]
iop = np.array(ds[0].ImageOrientationPatient, float)
normal = np.cross(iop[:3], iop[3:])
ds.sort(key=lambda d: float(np.dot(np.array(d.ImagePositionPatient, float), normal)))
arr = np.stack([d.pixel_array * float(d.RescaleSlope) + float(d.RescaleIntercept) for d in ds])
dr, dc = (float(v) for v in ds[0].PixelSpacing)
p0, p1 = (np.array(d.ImagePositionPatient, float) for d in ds[:2])
aff = np.eye(4)
aff[:3, 0] = iop[:3] * dc
aff[:3, 1] = iop[3:] * dr
aff[:3, 2] = p1 - p0
aff[:3, 3] = p0
aff = np.diag([-1, -1, 1, 1]) @ aff
nib.save(nib.Nifti1Image(arr.astype(np.int16).transpose(2, 1, 0), aff), os.path.join(out, "ct.nii.gz"))
"""

SIMPLEITK = """
import sys, os
import SimpleITK as sitk
src, out = sys.argv[1], sys.argv[2]
reader = sitk.ImageSeriesReader()
reader.SetFileNames(reader.GetGDCMSeriesFileNames(src))
sitk.WriteImage(reader.Execute(), os.path.join(out, "ct.nii.gz"))
"""

DICOM2NIFTI = """
import sys, os
import dicom2nifti
dicom2nifti.dicom_series_to_nifti(sys.argv[1], os.path.join(sys.argv[2], "ct.nii.gz"), reorient_nifti=False)
"""


def _volume_cmd() -> list[str]:
    exe = shutil.which("volume")
    return [exe] if exe else [sys.executable, "-m", "volume"]


def contenders(src: Path) -> dict[str, list[str]]:
    """Name -> command line (``{out}`` is replaced by the run's output folder)."""
    py = sys.executable
    tools: dict[str, list[str]] = {
        "volume .nii.gz": [*_volume_cmd(), "convert", str(src), "-o", "{out}"],
        "volume .nii": [*_volume_cmd(), "convert", str(src), "-o", "{out}", "--format", "nii"],
    }
    d2n = dcm2niix_binary()
    if d2n:
        tools["dcm2niix -z y"] = [d2n, "-z", "y", "-o", "{out}", str(src)]
        tools["dcm2niix -z n"] = [d2n, "-z", "n", "-o", "{out}", str(src)]
    tools["dicom2nifti"] = [py, "-c", DICOM2NIFTI, str(src), "{out}"]
    tools["SimpleITK"] = [py, "-c", SIMPLEITK, str(src), "{out}"]
    tools["pydicom+nibabel"] = [py, "-c", PYDICOM_LOOP, str(src), "{out}"]
    return tools


def run_once(cmd: list[str], out: Path) -> tuple[float, float] | None:
    """(wall, CPU) seconds of one run into an emptied ``out``; None when it failed.

    CPU is user + system time of the process and its children: less disturbed than wall time when
    other jobs share the machine.
    """
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    argv = [str(out) if a == "{out}" else a for a in cmd]
    env = {**os.environ, "VOLUME_NO_PROGRESS": "1"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # cache bytecode as an installed package does
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, timeout=TIMEOUT_S)
    dt = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    if proc.returncode != 0 or not any(out.iterdir()):
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-1:]
        print(f"  failed ({proc.returncode}): {' '.join(argv[:3])}... {tail}", file=sys.stderr)
        return None
    return dt, cpu


def phases(src: Path, work: Path) -> None:
    """Time the steps of a conversion inside one process (imports excluded)."""
    from volume.dicom import load_stack, scan
    from volume.io.nifti import write_nifti

    t0 = time.perf_counter()
    found = scan(src)
    t1 = time.perf_counter()
    vol = load_stack(found.stacks[0])
    t2 = time.perf_counter()
    write_nifti(vol, work / "p.nii", force=True)
    t3 = time.perf_counter()
    write_nifti(vol, work / "p.nii.gz", force=True)
    t4 = time.perf_counter()
    n = len(found.stacks[0].files)
    print(f"phases: scan {t1 - t0:.3f} s ({n / (t1 - t0):.0f} files/s), decode {t2 - t1:.3f} s, "
          f"write .nii {t3 - t2:.3f} s, write .nii.gz {t4 - t3:.3f} s "
          f"({vol.array.nbytes / 2**20 / (t4 - t3):.0f} MB/s)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (after one warm-up round)")
    parser.add_argument("--data", type=Path, default=None, help="CT folder (generated when missing)")
    parser.add_argument("--only", nargs="*", default=None, help="run only these tools (names as printed)")
    parser.add_argument("--phases", action="store_true", help="also time scan/decode/write in-process")
    args = parser.parse_args(argv)

    src = args.data or Path(tempfile.gettempdir()) / f"volume-bench-ct{args.slices}"
    if not src.is_dir() or len(os.listdir(src)) != args.slices:
        if src.exists():
            shutil.rmtree(src)
        print(f"generating {args.slices}-slice CT in {src} ...", file=sys.stderr)
        subprocess.run([sys.executable, str(HERE / "make_ct.py"), str(src), "--slices", str(args.slices)], check=True)
    tools = contenders(src)
    if args.only:
        tools = {k: v for k, v in tools.items() if k in args.only}
    work = Path(tempfile.mkdtemp(prefix="volume-bench-"))
    times: dict[str, list[float]] = {name: [] for name in tools}
    cpus: dict[str, list[float]] = {name: [] for name in tools}
    try:
        for rnd in range(args.rounds + 1):
            order = list(tools)
            if rnd % 2:
                order.reverse()  # alternate the order so neither end of a round is favoured
            for name in order:
                got = run_once(tools[name], work / "out")
                if rnd > 0 and got is not None:
                    times[name].append(got[0])
                    cpus[name].append(got[1])
            if rnd:
                print(f"round {rnd}/{args.rounds} done", file=sys.stderr)
        if args.phases:
            phases(src, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    size_mb = sum(f.stat().st_size for f in src.iterdir()) / 2**20
    print(f"\n{args.slices} slices 512x512 ({size_mb:.0f} MB) | {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, Python {platform.python_version()} | {args.rounds} rounds")
    print(f"{'tool':<18} {'median s':>9} {'best s':>8} {'CPU s':>7}")
    med, best, cpu = {}, {}, {}
    for name, ts in times.items():
        if not ts:
            print(f"{name:<18} {'failed':>9}")
            continue
        med[name], best[name], cpu[name] = statistics.median(ts), min(ts), statistics.median(cpus[name])
        print(f"{name:<18} {med[name]:9.3f} {best[name]:8.3f} {cpu[name]:7.3f}")
    print()
    for ours, ref, goal in (
        ("volume .nii.gz", "dcm2niix -z y", GOAL_GZ),
        ("volume .nii", "dcm2niix -z n", GOAL_NII),
    ):
        if ours in med and ref in med:
            ratio = med[ours] / med[ref]
            verdict = "met" if ratio <= goal else "NOT met"
            print(f"{ours} / {ref} = {ratio:.2f} wall (median), {best[ours] / best[ref]:.2f} best, "
                  f"{cpu[ours] / cpu[ref]:.2f} CPU (goal at most {goal}: {verdict})")
    if "volume .nii.gz" in med:
        for peer in ("dicom2nifti", "SimpleITK", "pydicom+nibabel"):
            if peer in med:
                print(f"{peer} / volume .nii.gz = {med[peer] / med['volume .nii.gz']:.2f}")
    print(textwrap.dedent("""
        (wall time of whole processes, medians; dcm2niix -z y uses its built-in zlib when pigz is
        not installed)"""))
    return 0


if __name__ == "__main__":
    sys.exit(main())

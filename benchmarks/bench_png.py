"""Benchmark: a folder of 512x512 CT slices to PNG, pictures per second, volume vs the seeds' way.

Usage::

    python benchmarks/bench_png.py [--slices 200] [--series DIR] [--workers 2] [--repeat 1]

The series is written by ``benchmarks/make_ct.py`` (int16, rescale intercept -1024, a header
window) into a temporary folder unless ``--series`` names one. Every contender writes one 8-bit
PNG per slice into its own fresh folder:

* ``volume png (CLI)``: the command a user runs, process start included (``--workers N``);
* ``volume batch, N workers`` / ``1 worker``: the library's batch driver, in this process;
* ``pydicom + Pillow, 1 process``: the lean hand-written loop (dcmread, rescale, header window,
  ``Image.save``), what the display pipeline costs at its barest;
* ``seeds: pydicom + matplotlib``: what the seed scripts did, ``plt.imshow(ds.pixel_array,
  cmap="gray")`` + ``plt.savefig`` per file, one process (skipped when matplotlib is missing);
  and the same spread over N processes with ``multiprocessing.Pool``.

Ratios are pictures per second relative to ``volume png (CLI)`` (< 1: slower than volume).
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

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def volume_cli(files: list[Path], src: Path, out: Path, workers: int) -> int:
    exe = Path(sys.executable).parent / "volume"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "volume"]
    res = subprocess.run([*cmd, "png", str(src), "-o", str(out), "--workers", str(workers)],
                         capture_output=True, text=True, env={**os.environ, "VOLUME_NO_PROGRESS": "1"})
    if res.returncode != 0:
        raise RuntimeError(res.stderr)
    return len(res.stdout.splitlines())


def volume_batch(files: list[Path], src: Path, out: Path, workers: int) -> int:
    from volume.jobs.png import PngSettings, convert_many, plan_outputs

    n = 0
    for r in convert_many(plan_outputs(src, out), PngSettings(), workers=workers):
        n += len(r.written)
    return n


def _lean_one(args: tuple[str, str]) -> int:
    import pydicom
    from PIL import Image

    path, target = args
    ds = pydicom.dcmread(path)
    hu = ds.pixel_array.astype(np.float32) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    c = float(ds.WindowCenter[0] if ds["WindowCenter"].VM > 1 else ds.WindowCenter)
    w = float(ds.WindowWidth[0] if ds["WindowWidth"].VM > 1 else ds.WindowWidth)
    grey = np.clip((hu - (c - 0.5)) / (w - 1) + 0.5, 0, 1) * 255
    Image.fromarray(np.rint(grey).astype(np.uint8)).save(target, compress_level=4)
    return 1


def lean(files: list[Path], src: Path, out: Path, workers: int) -> int:
    out.mkdir(parents=True, exist_ok=True)
    return sum(_lean_one((str(f), str(out / (f.name + ".png")))) for f in files)


def _seed_one(args: tuple[str, str]) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pydicom

    path, target = args
    ds = pydicom.dcmread(path)
    plt.imshow(ds.pixel_array, cmap="gray")
    plt.axis("off")
    plt.savefig(target, bbox_inches="tight", pad_inches=0)
    plt.close()
    return 1


def seeds(files: list[Path], src: Path, out: Path, workers: int) -> int:
    out.mkdir(parents=True, exist_ok=True)
    return sum(_seed_one((str(f), str(out / (f.name + ".png")))) for f in files)


def seeds_pool(files: list[Path], src: Path, out: Path, workers: int) -> int:
    from multiprocessing import get_context

    out.mkdir(parents=True, exist_ok=True)
    jobs = [(str(f), str(out / (f.name + ".png"))) for f in files]
    with get_context("forkserver").Pool(workers) as pool:
        return sum(pool.map(_seed_one, jobs, chunksize=4))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=200)
    parser.add_argument("--series", type=Path, help="an existing folder of slices (default: make one)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1, help="runs per contender (best is kept)")
    args = parser.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="bench_png_"))
    try:
        if args.series:
            src = args.series
        else:
            from make_ct import make_ct

            src = tmp / "ct"
            t = time.perf_counter()
            make_ct(src, slices=args.slices)
            print(f"wrote {args.slices} slices of 512x512 in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        files = sorted(p for p in src.rglob("*") if p.is_file())
        w = args.workers
        contenders = {
            f"volume png (CLI), {w} workers": volume_cli,
            f"volume batch, {w} workers": volume_batch,
            "volume batch, 1 worker": lambda f, s, o, _: volume_batch(f, s, o, 1),
            "pydicom + Pillow, 1 process": lean,
        }
        try:
            import matplotlib  # noqa: F401

            contenders["seeds: pydicom + matplotlib, 1 process"] = seeds
            contenders[f"seeds: pydicom + matplotlib, {w} processes"] = seeds_pool
        except ImportError:
            print("matplotlib not installed: the seeds' approach is skipped", file=sys.stderr)
        best: dict[str, float] = {}
        for run in range(args.repeat):
            for i, (name, fn) in enumerate(contenders.items()):
                out = tmp / f"out_{run}_{i}"
                t = time.perf_counter()
                n = fn(files, src, out, w)
                dt = time.perf_counter() - t
                if n != len(files):
                    raise RuntimeError(f"{name}: wrote {n} pictures for {len(files)} files")
                best[name] = min(best.get(name, dt), dt)
                shutil.rmtree(out, ignore_errors=True)
        ref = len(files) / best[next(iter(contenders))]
        cpu = os.cpu_count()
        print(f"{len(files)} CT slices 512x512 -> PNG, {cpu} cores, best of {args.repeat}")
        print(f"{'contender':<44} {'seconds':>8} {'pictures/s':>11} {'vs volume CLI':>14}")
        for name, dt in best.items():
            rate = len(files) / dt
            print(f"{name:<44} {dt:8.2f} {rate:11.1f} {rate / ref:13.2f}x")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

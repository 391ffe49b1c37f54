"""Streamed vs in-memory ``volume convert`` (and dcm2niix, same run): wall time and peak memory.

Usage::

    python benchmarks/bench_stream.py [--slices 300] [--rounds 5] [--big 1500] [--budget 200M]

Part 1: the 300-slice 512x512 CT of ``make_ct.py``, converted by whole processes alternately:
``volume convert`` as shipped (streams plain stacks slab by slab), the same command forced to load
the series whole first (the in-memory writer, as before streaming), and ``dcm2niix``; .nii.gz and
.nii. Part 2: a ``--big``-slice series (750 MB of int16 for 1500 slices) converted with
``--max-memory BUDGET`` (streamed), loaded whole for comparison, and projected by ``volume mip``.
Peak memory is each child's maximum resident set size (``os.wait4``). Data sets are generated into
``$TMPDIR`` (never committed) and kept between runs.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from peers import dcm2niix_binary  # benchmarks/peers.py (the script's folder is on sys.path)

HERE = Path(__file__).resolve().parent

#: Runs ``volume`` with the streaming policy off: every stack is loaded whole, then written.
IN_MEMORY = (
    "import sys, volume.io.nifti_stream as ns; ns.should_stream = lambda *a, **k: False; "
    "from volume.cli import main; sys.exit(main(sys.argv[1:]))"
)
SHIPPED = "import sys; from volume.cli import main; sys.exit(main(sys.argv[1:]))"


def run(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one child process; raises when it fails."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {err[-500:]}")
    return wall, usage.ru_maxrss / 1024


def make(src: Path, slices: int) -> Path:
    if not (src.is_dir() and len(os.listdir(src)) == slices):
        shutil.rmtree(src, ignore_errors=True)
        subprocess.run([sys.executable, str(HERE / "make_ct.py"), str(src), "--slices", str(slices)], check=True)
    return src


def contenders(src: Path, out: Path, fmt: str) -> dict[str, list[str]]:
    dcm2niix = dcm2niix_binary() or str(Path(sys.executable).parent / "dcm2niix")
    volume_args = ["convert", str(src), "-o", str(out), "--format", fmt, "--no-sidecar"]
    return {
        f"volume {fmt} streamed": [sys.executable, "-c", SHIPPED, *volume_args],
        f"volume {fmt} in memory": [sys.executable, "-c", IN_MEMORY, *volume_args],
        f"dcm2niix -z {'y' if fmt == 'nii.gz' else 'n'}": [
            dcm2niix, "-z", "y" if fmt == "nii.gz" else "n", "-b", "n", "-o", str(out), str(src)],
    }


def part1(src: Path, work: Path, rounds: int) -> None:
    print(f"\n{len(os.listdir(src))} slices 512x512, whole processes, {rounds} rounds (+1 warm-up), alternating")
    print(f"{'tool':28s} {'median s':>9s} {'best s':>8s} {'peak RSS MiB':>13s}")
    for fmt in ("nii.gz", "nii"):
        tools = contenders(src, work / "out", fmt)
        times: dict[str, list[float]] = {k: [] for k in tools}
        rss: dict[str, float] = {}
        for r in range(rounds + 1):
            for name, cmd in tools.items():
                shutil.rmtree(work / "out", ignore_errors=True)
                (work / "out").mkdir(parents=True)
                wall, peak = run(cmd)
                if r:
                    times[name].append(wall)
                    rss[name] = max(rss.get(name, 0.0), peak)
        for name in tools:
            print(f"{name:28s} {statistics.median(times[name]):9.3f} {min(times[name]):8.3f} {rss[name]:13.0f}")
        names = list(tools)
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"  streamed / in memory = {med[names[0]] / med[names[1]]:.2f}, "
              f"streamed / {names[2]} = {med[names[0]] / med[names[2]]:.2f} (medians)")


def part2(big: Path, work: Path, budget: str) -> None:
    n = len(os.listdir(big))
    print(f"\n{n} slices 512x512 int16 ({n * 512 * 512 * 2 / 2**20:.0f} MiB decoded), one run each")
    print(f"{'command':44s} {'wall s':>7s} {'peak RSS MiB':>13s}")
    out = work / "big"
    cases = {
        f"convert .nii.gz --max-memory {budget} (streamed)":
            [sys.executable, "-c", SHIPPED, "convert", str(big), "-o", str(out), "--max-memory", budget],
        "convert .nii.gz loaded whole (before)":
            [sys.executable, "-c", IN_MEMORY, "convert", str(big), "-o", str(out)],
        "mip coronal (streamed projection)":
            [sys.executable, "-c", SHIPPED, "mip", str(big), "--plane", "coronal", "-o", str(out / "mip.png")],
    }
    for name, cmd in cases.items():
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        wall, peak = run(cmd)
        print(f"{name:44s} {wall:7.2f} {peak:13.0f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slices", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--big", type=int, default=1500, help="slices of the big series (0: skip part 2)")
    ap.add_argument("--budget", default="200M", help="--max-memory for the big series")
    ap.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()))
    args = ap.parse_args()
    print(f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    work = Path(tempfile.mkdtemp(prefix="volume-bench-stream-"))
    try:
        part1(make(args.data / f"volume-bench-ct{args.slices}", args.slices), work, args.rounds)
        if args.big:
            part2(make(args.data / f"volume-bench-ct{args.big}", args.big), work, args.budget)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

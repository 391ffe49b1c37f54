"""Benchmark: ``volume convert`` of a whole archive (200 series x 60 slices) vs dcm2niix; files/s, memory.

Usage::

    python benchmarks/bench_tree.py [--series 200] [--slices 60] [--size 256] [--ct-every 4]
                                    [--only w1,w2,dask,dcm2niix] [--format nii.gz|nii]

The archive (``make_tree.py``: 3 MR series for every CT, ``--size``² pixels, patient/study/series
folders, random file names) is written once into the temp folder's cache and read once before
timing (page cache). Each contender runs once, as a whole process, into an empty output folder:

- ``volume convert ARCHIVE -o OUT --workers 1`` (this process converts every series);
- ``volume convert ARCHIVE -o OUT --workers 2`` (a process pool, one series per task);
- ``volume convert ARCHIVE -o OUT --scheduler tcp://...`` on a dask ``LocalCluster`` of 2 worker
  processes (1 thread each) started by this script on loopback before the run (its start-up is
  not timed; its workers import volume on their first task, which is timed);
- ``dcm2niix -z y`` (or ``-z n`` with ``--format nii``) on the same folder (it recurses by itself).

Printed: wall seconds, files per second, the ratio to dcm2niix's time, outputs written, and peak
memory (psutil, RSS sampled every 0.1 s): of the main process, of its largest worker (pool
processes, or the dask worker processes), and of all of them together. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# Contenders cache their bytecode as an installed package does (a stale .pyc never rewritten
# costs every run ~0.05 s of compiling).
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
sys.path.insert(0, str(HERE))

from make_tree import cached_tree  # noqa: E402
from peers import dcm2niix_binary  # noqa: E402

#: Seconds between two RSS samples.
SAMPLE_S = 0.1


class RssSampler(threading.Thread):
    """Peak RSS (bytes) of a main process, of each of its descendants and extra pids, and of their sum."""

    def __init__(self, main_pid: int, extra_pids: tuple[int, ...] = ()) -> None:
        super().__init__(daemon=True)
        self.main_pid, self.extra_pids = main_pid, extra_pids
        self.main_peak = self.total_peak = 0
        self.others: dict[int, int] = {}
        self._stop_event = threading.Event()

    def run(self) -> None:
        import psutil

        try:
            main = psutil.Process(self.main_pid)
        except psutil.Error:
            return
        extras = []
        for pid in self.extra_pids:
            try:
                extras.append(psutil.Process(pid))
            except psutil.Error:
                pass
        while not self._stop_event.is_set():
            total = 0
            try:
                procs = [main, *main.children(recursive=True), *extras]
            except psutil.Error:
                procs = extras
            for p in procs:
                try:
                    rss = p.memory_info().rss
                except psutil.Error:
                    continue
                total += rss
                if p.pid == self.main_pid:
                    self.main_peak = max(self.main_peak, rss)
                else:
                    self.others[p.pid] = max(self.others.get(p.pid, 0), rss)
            self.total_peak = max(self.total_peak, total)
            self._stop_event.wait(SAMPLE_S)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def run(cmd: list[str], extra_pids: tuple[int, ...] = ()) -> dict:
    """Run ``cmd`` once; wall seconds, exit code, peaks (MiB) and the tail of stderr."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    sampler = RssSampler(proc.pid, extra_pids)
    sampler.start()
    _, err = proc.communicate()
    seconds = time.perf_counter() - t0
    sampler.stop()
    mib = 2**20
    return {
        "seconds": seconds,
        "code": proc.returncode,
        "main_mib": sampler.main_peak / mib,
        "worker_mib": max(sampler.others.values(), default=0) / mib,
        "total_mib": sampler.total_peak / mib,
        "stderr": err.decode(errors="replace").strip().splitlines()[-3:],
    }


def warm(folder: Path) -> tuple[int, int]:
    """Read every file once (page cache); returns (files, bytes)."""
    n = size = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            if not name.startswith("."):
                with open(os.path.join(root, name), "rb") as fh:
                    size += len(fh.read())
                n += 1
    return n, size


def count_outputs(folder: Path, suffix: str) -> int:
    return sum(1 for p in folder.rglob(f"*{suffix}"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=200)
    parser.add_argument("--slices", type=int, default=60)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--ct-every", type=int, default=4)
    parser.add_argument("--format", choices=("nii.gz", "nii"), default="nii.gz")
    parser.add_argument("--only", help="comma-separated: w1,w2,dask,dcm2niix (default: all)")
    args = parser.parse_args(argv)
    only = set(args.only.split(",")) if args.only else {"w1", "w2", "dask", "dcm2niix"}

    volume_exe = shutil.which("volume") or str(Path(sys.executable).with_name("volume"))
    dcm2niix = dcm2niix_binary()
    help_text = subprocess.run([volume_exe, "convert", "--help"], capture_output=True, text=True,
                               env={**os.environ, "COLUMNS": "200"}).stdout
    has = {opt: opt in help_text for opt in ("--workers", "--scheduler")}

    tree = cached_tree(args.series, args.slices, args.size, args.ct_every)
    n_files, n_bytes = warm(tree)
    print(f"archive: {tree}: {n_files} files ({args.series} series x {args.slices} slices of {args.size}x{args.size}, "
          f"every {args.ct_every}th CT, the others MR), {n_bytes / 2**20:.0f} MiB; output .{args.format}; "
          f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}", flush=True)

    work = Path(tempfile.mkdtemp(prefix="volume-bench-tree-out-"))
    rows: dict[str, dict] = {}
    suffix = "." + args.format
    fmt = ["--format", args.format]
    try:
        def volume_run(label: str, extra: list[str], extra_pids: tuple[int, ...] = ()) -> None:
            out = work / label
            out.mkdir()
            r = run([volume_exe, "convert", str(tree), "-o", str(out), *fmt, *extra], extra_pids)
            r["outputs"] = count_outputs(out, suffix)
            rows[label] = r
            shutil.rmtree(out, ignore_errors=True)
            print(f"  {label}: {r['seconds']:.1f} s, exit {r['code']}, {r['outputs']} outputs", flush=True)

        if "w1" in only:
            volume_run("volume convert --workers 1", ["--workers", "1"] if has["--workers"] else [])
        if "w2" in only:
            if has["--workers"]:
                volume_run("volume convert --workers 2", ["--workers", "2"])
            else:
                print("  volume convert has no --workers yet: skipped")
        if "dask" in only:
            if has["--scheduler"]:
                from distributed import Client, LocalCluster

                with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster, Client(cluster) as client:
                    pids = tuple(client.run(os.getpid).values())
                    volume_run("volume convert --scheduler (LocalCluster, 2 workers)",
                               ["--scheduler", cluster.scheduler_address], pids)
            else:
                print("  volume convert has no --scheduler yet: skipped")
        if "dcm2niix" in only and dcm2niix:
            out = work / "d2n"
            out.mkdir()
            z = "y" if args.format == "nii.gz" else "n"
            r = run([dcm2niix, "-z", z, "-o", str(out), str(tree)])
            r["outputs"] = count_outputs(out, suffix)
            rows[f"dcm2niix -z {z}"] = r
            print(f"  dcm2niix -z {z}: {r['seconds']:.1f} s, exit {r['code']}, {r['outputs']} outputs", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    ref = next((r["seconds"] for label, r in rows.items() if label.startswith("dcm2niix")), None)
    print("\n| contender | wall s | files/s | time vs dcm2niix | outputs | peak RSS main | largest worker "
          "| all processes |")
    print("|---|---|---|---|---|---|---|---|")
    for label, r in rows.items():
        ratio = f"{r['seconds'] / ref:.2f}x" if ref else "-"
        worker = f"{r['worker_mib']:.0f} MiB" if r["worker_mib"] else "-"
        print(f"| {label} | {r['seconds']:.1f} | {n_files / r['seconds']:,.0f} | {ratio} | {r['outputs']} "
              f"| {r['main_mib']:.0f} MiB | {worker} | {r['total_mib']:.0f} MiB |")
        if r["code"]:
            print(f"|   exit {r['code']}: {' / '.join(r['stderr'])} |")
    print(f"\nload average after: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: header scan of a 20,000-file archive; files per second and memory vs the peers.

Usage::

    python benchmarks/bench_scan.py [--series 200] [--slices 100] [--size 64] [--kept-series 20]
                                    [--only volume,volume-1,pydicom,sitk]

The archive (``--series`` x ``--slices`` files of ``--size``² pixels, patient/study/series
folders, written once by ``make_tree.py`` into the temp folder's cache) is read once before
timing so every contender reads from the page cache. Each contender runs once in its own
process and does what a user needs before converting: find every file, read its header, group
the files into series and order each series by position.

- ``volume.scan`` default (this process and forked workers on all cores from 10,000 files) and ``workers=1``;
- a ``pydicom.dcmread(stop_before_pixels=True)`` loop, datasets grouped by SeriesInstanceUID
  and sorted by ImagePositionPatient (what dicom2nifti and dicom-numpy style code does);
- SimpleITK's GDCM series discovery: ``ImageSeriesReader.GetGDCMSeriesIDs`` per folder
  (it does not recurse) and ``GetGDCMSeriesFileNames`` per series (sorted by position).

Printed per contender: files per second (time inside the process, imports included, from the
first import to the grouped result), the ratio to the pydicom loop, the peak RSS of the process
(``wait4``; with a pool, of its largest process) and the peak RSS summed over the process and
its children (psutil, sampled every 0.1 s; at least the former), and the Python memory kept per file by the result
(tracemalloc over ``--kept-series`` series in one process; C++ memory of SimpleITK not counted).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

HERE = Path(__file__).resolve().parent

# Contenders cache their bytecode as an installed package does (a stale .pyc never rewritten
# costs every run ~0.05 s of compiling).
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
sys.path.insert(0, str(HERE))

from make_tree import cached_tree  # noqa: E402

#: Code each contender runs in its own process: argv = [folder, mode, kept]; prints one JSON line.
CONTENDER = r'''
import json, os, sys, time
t0 = time.perf_counter()
folder, mode, kept = sys.argv[1], sys.argv[2], sys.argv[3] == "kept"
if kept:
    import tracemalloc
if mode.startswith("volume"):
    import volume
elif mode == "pydicom":
    import pydicom
else:
    import SimpleITK as sitk
if kept:  # first use of each library outside the trace (lazy imports, first-call caches)
    first = next(os.path.join(r, fs[0]) for r, _d, fs in sorted(os.walk(folder)) if fs and fs[0][0] != ".")
    if mode.startswith("volume"):
        volume.scan(folder, workers=1 if mode == "volume-1" else None)  # the pool's imports too
        from volume.dicom import fastheader
        fastheader._CACHE.clear()  # values shared between files are part of what a scan keeps
        (sys.modules.get("volume.dicom.headers") or sys.modules["volume.dicom.scan"])._SHARED.clear()
    elif mode == "pydicom":
        pydicom.dcmread(first, stop_before_pixels=True)
    else:
        sitk.ImageSeriesReader.GetGDCMSeriesIDs(os.path.dirname(first))
    import gc
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
if mode.startswith("volume"):
    result = volume.scan(folder, workers=1 if mode == "volume-1" else None)
    n_series, n_files = len(result.stacks), sum(len(s.frames) for s in result.stacks)
elif mode == "pydicom":
    result = {}
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            if name.startswith("."):
                continue
            ds = pydicom.dcmread(os.path.join(root, name), stop_before_pixels=True)
            result.setdefault(ds.SeriesInstanceUID, []).append(ds)
    for group in result.values():
        group.sort(key=lambda ds: float(ds.ImagePositionPatient[2]))
    n_series, n_files = len(result), sum(map(len, result.values()))
else:
    reader = sitk.ImageSeriesReader
    result = {}
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        if not any(not f.startswith(".") for f in files):
            continue
        for uid in reader.GetGDCMSeriesIDs(root):
            result[uid] = reader.GetGDCMSeriesFileNames(root, uid)
    n_series, n_files = len(result), sum(map(len, result.values()))
seconds = time.perf_counter() - t0
if kept:
    gc.collect()
kept_bytes = tracemalloc.get_traced_memory()[0] - base if kept else None
print(json.dumps({"seconds": seconds, "series": n_series, "files": n_files, "kept_bytes": kept_bytes}))
'''

#: Contenders: label -> mode passed to :data:`CONTENDER`.
MODES = {
    "volume.scan (default: pool of all cores)": "volume",
    "volume.scan(workers=1)": "volume-1",
    "pydicom dcmread(stop_before_pixels) loop": "pydicom",
    "SimpleITK GDCM series discovery": "sitk",
}

#: Seconds between two RSS samples of the process tree.
SAMPLE_S = 0.1


def tree_rss_peak(pid: int, stop: threading.Event, out: list[float]) -> None:
    """Sample the summed RSS of ``pid`` and its descendants until ``stop``; append the peak (MiB)."""
    import psutil

    peak = 0
    try:
        proc = psutil.Process(pid)
    except psutil.Error:
        out.append(0.0)
        return
    while not stop.is_set():
        total = 0
        try:
            for p in [proc, *proc.children(recursive=True)]:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
        except psutil.Error:
            break
        peak = max(peak, total)
        stop.wait(SAMPLE_S)
    out.append(peak / 2**20)


def run(folder: Path, mode: str, kept: bool = False) -> dict:
    """Run one contender in a fresh process; its JSON result plus ``peak_mib`` and ``tree_mib``."""
    proc = subprocess.Popen([sys.executable, "-c", CONTENDER, str(folder), mode, "kept" if kept else "time"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stop, tree = threading.Event(), []
    sampler = threading.Thread(target=tree_rss_peak, args=(proc.pid, stop, tree), daemon=True)
    sampler.start()
    _, status, usage = os.wait4(proc.pid, 0)
    stop.set()
    sampler.join()
    out, err = proc.stdout.read(), proc.stderr.read()  # type: ignore[union-attr]
    if os.waitstatus_to_exitcode(status):
        raise RuntimeError(f"{mode} failed: {err.decode(errors='replace')[-800:]}")
    result = json.loads(out.decode().strip().splitlines()[-1])
    result["peak_mib"] = usage.ru_maxrss / 1024
    # sampling can miss a short peak: the sum over processes is at least the largest process
    result["tree_mib"] = max(tree[0] if tree else 0.0, result["peak_mib"])
    return result


def warm(folder: Path) -> tuple[int, int]:
    """Read every file once (page cache); returns (files, bytes)."""
    n = size = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            with open(os.path.join(root, name), "rb") as fh:
                size += len(fh.read())
            n += 1
    return n, size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=200)
    parser.add_argument("--slices", type=int, default=100)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--kept-series", type=int, default=20,
                        help="series of the smaller archive on which kept memory is traced (0: skip)")
    parser.add_argument("--only", help="comma-separated modes: " + ",".join(MODES.values()))
    args = parser.parse_args(argv)
    only = set(args.only.split(",")) if args.only else set(MODES.values())

    folder = cached_tree(args.series, args.slices, args.size)
    n_files, n_bytes = warm(folder)
    print(f"archive: {folder}: {n_files - 1} files ({args.series} series x {args.slices} slices of "
          f"{args.size}x{args.size}), {n_bytes / 2**20:.0f} MiB; {os.cpu_count()} cores; "
          f"load average {os.getloadavg()[0]:.1f}")
    results = {}
    for label, mode in MODES.items():
        if mode in only:
            results[label] = r = run(folder, mode)
            print(f"  {label}: {r['files']} files in {r['series']} series, {r['seconds']:.2f} s", flush=True)
    if args.kept_series:
        small = cached_tree(args.kept_series, args.slices, args.size)
        warm(small)
        for label, mode in MODES.items():
            if label in results:
                k = run(small, mode, kept=True)
                results[label]["kept_per_file"] = k["kept_bytes"] / max(k["files"], 1)
    ref = next((r for label, r in results.items() if "pydicom" in label), None)
    print("\n| contender | files/s | vs pydicom loop | peak RSS (largest process) | peak RSS (all processes) "
          "| Python bytes kept per file |")
    print("|---|---|---|---|---|---|")
    for label, r in results.items():
        rate = r["files"] / r["seconds"]
        ratio = f"{rate / (ref['files'] / ref['seconds']):.1f}x" if ref else "-"
        kept = f"{r['kept_per_file']:,.0f}" if "kept_per_file" in r else "-"
        print(f"| {label} | {rate:,.0f} | {ratio} | {r['peak_mib']:.0f} MiB | {r['tree_mib']:.0f} MiB | {kept} |")
    print(f"\nload average after: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

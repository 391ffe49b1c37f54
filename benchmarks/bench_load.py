"""Loading a 300-slice 512x512 CT: ``volume.load`` against SimpleITK's ImageSeriesReader.

Usage::

    python benchmarks/bench_load.py [FOLDER] [--slices 300] [--repeats 5]

Without FOLDER, a synthetic CT (``benchmarks/make_ct.py``) is written once into
``$TMPDIR/volume-bench-ct<slices>`` and reused. Both readers run in this process, alternately,
``--repeats`` times each after one warm-up (so both read from the page cache); the script prints
every time, the medians and minimums, and their ratio (issue 2 asks volume <= 0.25 x SimpleITK).
SimpleITK gets its file names from GDCM (``GetGDCMSeriesFileNames``), as its documentation shows;
that step sorts the files and is part of its time, as the scan is part of ours. A naive pydicom
loop (``dcmread`` every file, sort by position, stack, rescale) is timed too, as the baseline most
scripts use.

Peak memory is measured in a fresh subprocess for each reader: ``tracemalloc``'s peak of traced
allocations (numpy's buffers are traced) during the load, and the growth of the process's
peak resident set size (``VmHWM``), both as multiples of the volume's size in bytes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def load_volume(folder: str):
    import volume

    return volume.load(folder).array


def load_sitk(folder: str):
    import SimpleITK as sitk

    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(folder))
    return sitk.GetArrayViewFromImage(reader.Execute())


def load_pydicom(folder: str):
    import numpy as np
    import pydicom

    slices = [pydicom.dcmread(os.path.join(folder, name)) for name in os.listdir(folder)]
    normal = np.cross(*np.reshape(np.array(slices[0].ImageOrientationPatient, float), (2, 3)))
    slices.sort(key=lambda ds: float(np.dot(np.array(ds.ImagePositionPatient, float), normal)))
    arr = np.stack([ds.pixel_array for ds in slices])
    return arr * float(slices[0].RescaleSlope) + float(slices[0].RescaleIntercept)


READERS = {"volume": load_volume, "SimpleITK": load_sitk, "pydicom loop": load_pydicom}


def _peak_rss() -> int:
    """Peak resident set size of this process in bytes (VmHWM: reset by exec, unlike ru_maxrss)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _memory_child(reader: str, folder: str) -> None:
    """Run in a subprocess: load once, print peak memory figures as JSON."""
    import tracemalloc

    import numpy as np  # noqa: F401 - imports before the baseline
    import pydicom  # noqa: F401
    import SimpleITK  # noqa: F401

    import volume  # noqa: F401

    base_rss = _peak_rss()
    tracemalloc.start()
    arr = READERS[reader](folder)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = _peak_rss()
    print(json.dumps({"nbytes": int(arr.nbytes), "traced_peak": peak, "rss_growth": rss - base_rss}))


def measure_memory(reader: str, folder: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, folder, "--memory-child", reader],
        check=True, capture_output=True, text=True, timeout=600,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def ensure_series(folder: str | None, slices: int) -> str:
    if folder:
        return folder
    path = Path(tempfile.gettempdir()) / f"volume-bench-ct{slices}"
    if not path.is_dir() or len(os.listdir(path)) != slices:
        sys.path.insert(0, str(HERE))
        from make_ct import make_ct

        print(f"writing a {slices}-slice CT to {path} ...", file=sys.stderr)
        make_ct(path, slices=slices)
    return str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", help="a CT series folder (default: generate one)")
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-memory", action="store_true", help="skip the memory measurements")
    parser.add_argument("--no-pydicom", action="store_true", help="skip the naive pydicom loop")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        _memory_child(args.memory_child, args.folder)
        return 0
    folder = ensure_series(args.folder, args.slices)
    names = [n for n in READERS if not (args.no_pydicom and n == "pydicom loop")]
    times: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    for n in names:  # warm-up: imports, page cache
        READERS[n](folder)
    for _ in range(args.repeats):
        for n in names:
            t0, c0 = time.perf_counter(), time.process_time()
            arr = READERS[n](folder)
            times[n].append(time.perf_counter() - t0)
            cpu[n].append(time.process_time() - c0)
            del arr
    print(f"series: {folder} ({len(os.listdir(folder))} files); {os.cpu_count()} CPUs; "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'reader':<14} {'median s':>9} {'min s':>7} {'CPU s':>7}   runs (wall s)")
    for n in names:
        runs = " ".join(f"{t:.3f}" for t in times[n])
        print(f"{n:<14} {statistics.median(times[n]):9.3f} {min(times[n]):7.3f} "
              f"{statistics.median(cpu[n]):7.3f}   {runs}")
    med = statistics.median(times["volume"]) / statistics.median(times["SimpleITK"])
    best = min(times["volume"]) / min(times["SimpleITK"])
    pairs = sorted(v / s for v, s in zip(times["volume"], times["SimpleITK"], strict=True))
    print(f"volume / SimpleITK: {med:.3f} (medians), {best:.3f} (minimums), "
          f"{statistics.median(pairs):.3f} (median of paired runs)  [target <= 0.25]")
    print(f"CPU time (all threads) volume / SimpleITK: "
          f"{statistics.median(cpu['volume']) / statistics.median(cpu['SimpleITK']):.3f} (medians)")
    if "pydicom loop" in times:
        print(f"volume / pydicom loop: {statistics.median(times['volume']) / statistics.median(times['pydicom loop']):.3f}")
    if not args.no_memory:
        print(f"{'peak memory':<14} {'traced/volume':>14} {'peak RSS growth/volume':>23}")
        for n in names:
            m = measure_memory(n, folder)
            print(f"{n:<14} {m['traced_peak'] / m['nbytes']:14.2f} {m['rss_growth'] / m['nbytes']:23.2f}"
                  f"   (volume {m['nbytes'] / 2**20:.0f} MiB)")
        print("[target for volume: < 1.5]")
    return 0


if __name__ == "__main__":
    sys.exit(main())

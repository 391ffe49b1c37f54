"""Benchmark: converting a diffusion series and an fMRI series, volume vs the dcm2niix binary.

Usage::

    python benchmarks/bench_dwi.py [--rounds 7] [--peers ../shared/data/peers]

The series, from the peers' suites: the 544-image Philips DWI of ``dcm_qa_philips_dwi`` (each file
gzip-compressed there: they are decompressed into a temporary folder first, because dcm2niix cannot
read ``.gz`` DICOM; volume converts both, the ``.gz`` run is shown too) and the 150-image GE fMRI
``mr_0004`` of ``dcm_qa_nih``. Whole processes, as a user runs them (``python -m volume convert``
with bytecode cached, and the dcm2niix executable itself), ``.nii.gz`` against ``dcm2niix -z y`` and
``.nii`` against ``-z n``. Rounds alternate the contenders so a burst of load from other jobs hits
all of them; round 0 warms the caches and is dropped. Printed: median wall time, CPU time (user +
system, from ``wait4``) and peak resident memory of each command, and the ratios to dcm2niix.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_session import gunzip_tree, run  # one way to time a contender (bytecode cached, as installed)
from peers import dcm2niix_binary  # benchmarks/peers.py (the script's folder is on sys.path)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--peers", type=Path, default=ROOT.parent / "shared" / "data" / "peers")
    args = parser.parse_args(argv)
    d2n = dcm2niix_binary()
    if d2n is None:
        print("dcm2niix not found (pip install dcm2niix)", file=sys.stderr)
        return 2
    dwi_gz = args.peers / "dcm_qa_philips_dwi" / "In" / "cl" / "DICOM"
    fmri = args.peers / "dcm_qa_nih" / "In" / "20180918GE" / "mr_0004"
    work = Path(tempfile.mkdtemp(prefix="volume-bench-dwi-"))
    try:
        dwi = gunzip_tree(dwi_gz, work / "dwi")
        out = work / "out"
        volume = [sys.executable, "-m", "volume", "convert"]
        cases = {
            "Philips DWI, 544 images (.nii.gz)": {
                "volume": volume + [str(dwi), "-o", str(out / "v"), "--force"],
                "volume, the .gz files": volume + [str(dwi_gz), "-o", str(out / "g"), "--force"],
                "dcm2niix -z y": [d2n, "-z", "y", "-f", "%s", "-o", str(out / "d"), str(dwi)],
            },
            "Philips DWI, 544 images (.nii)": {
                "volume": volume + [str(dwi), "-o", str(out / "v"), "-f", "nii", "--force"],
                "dcm2niix -z n": [d2n, "-z", "n", "-f", "%s", "-o", str(out / "d"), str(dwi)],
            },
            "GE fMRI, 150 images (.nii.gz)": {
                "volume": volume + [str(fmri), "-o", str(out / "v"), "--force"],
                "dcm2niix -z y": [d2n, "-z", "y", "-f", "%s", "-o", str(out / "d"), str(fmri)],
            },
            "GE fMRI, 150 images (.nii)": {
                "volume": volume + [str(fmri), "-o", str(out / "v"), "-f", "nii", "--force"],
                "dcm2niix -z n": [d2n, "-z", "n", "-f", "%s", "-o", str(out / "d"), str(fmri)],
            },
        }
        results: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
        print(f"{args.rounds} interleaved rounds; {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}; "
              f"{subprocess.run([d2n, '-v'], capture_output=True, text=True).stdout.splitlines()[0]}", flush=True)
        for r in range(args.rounds + 1):
            for case, contenders in cases.items():
                for label, cmd in contenders.items():
                    shutil.rmtree(out / "d", ignore_errors=True)
                    for sub in ("v", "g", "d"):
                        (out / sub).mkdir(parents=True, exist_ok=True)
                    measured = run(cmd)
                    if r:
                        results.setdefault((case, label), []).append(measured)
        print(f"load average after: {os.getloadavg()[0]:.1f}\n")
        print("| series | contender | wall s | CPU s | peak MiB | wall vs dcm2niix | CPU vs dcm2niix | memory vs dcm2niix |")
        print("|---|---|---|---|---|---|---|---|")
        for case, contenders in cases.items():
            med = {label: tuple(statistics.median(m[i] for m in results[(case, label)]) for i in range(3))
                   for label in contenders}
            ref = next(v for k, v in med.items() if k.startswith("dcm2niix"))
            for label, (w, c, m) in med.items():
                print(f"| {case} | {label} | {w:.3f} | {c:.3f} | {m:.0f} | {w / ref[0]:.2f}x | {c / ref[1]:.2f}x | "
                      f"{m / ref[2]:.2f}x |")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: start-up and small conversions, this checkout vs the same checkout with some files
taken from an older revision (what one change saved), vs dcm2niix; interleaved rounds.

Usage::

    python benchmarks/bench_startup.py [--before ee3e4b66] [--files all|volume/dicom/fastheader.py,...]
                                       [--rounds 10] [--small DIR] [--ct DIR]

"now" is the working tree's ``volume`` package (with its compiled modules, when built); "before" is
the whole package at ``--before`` (``--files all``, the default; a pure-Python revision), or a copy
of the working tree in which the listed ``--files`` are replaced by their content at ``--before``
(deleted when they did not exist there), so only those changes differ. Both run as
``python -m volume`` with ``PYTHONPATH`` pointing at the copy. Rounds alternate the contenders
(before, now, dcm2niix, before, now, ...) so a burst of load from other jobs hits all of them; each
command's wall time and CPU time (user + system of the process and its children, from
``wait4``) are collected, and the medians printed with their ratios. Bytecode is cached as in
an installed package (``PYTHONDONTWRITEBYTECODE`` is dropped; round 0 writes it and is not
counted). The small series defaults to ``../shared/data/dicom/brainix/T1`` (22 slices of
512x512), the CT to the 300-slice synthetic CT of ``make_ct.py`` (written into the temp folder
when missing).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from peers import dcm2niix_binary  # benchmarks/peers.py (the script's folder is on sys.path)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

#: The revision before issue 24 (the default "before").
DEFAULT_BEFORE = "ee3e4b66"


def make_tree_copy(dest: Path, revision: str | None, files: tuple[str, ...]) -> Path:
    """``dest/volume``: the working tree's package, ``files`` replaced by their content at ``revision``
    (``("all",)``: the whole package at ``revision``)."""
    if revision and files == ("all",):
        dest.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision, "volume"], capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
        return dest
    shutil.copytree(ROOT / "volume", dest / "volume", ignore=shutil.ignore_patterns("__pycache__"))
    if revision:
        for rel in files:
            shown = subprocess.run(["git", "-C", str(ROOT), "show", f"{revision}:{rel}"], capture_output=True)
            target = dest / rel
            if shown.returncode:
                target.unlink(missing_ok=True)
            else:
                target.write_bytes(shown.stdout)
    return dest


def run(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """(wall s, CPU s) of one run; raises on a non-zero exit."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=tempfile.gettempdir())
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if os.waitstatus_to_exitcode(status):
        raise RuntimeError(f"{' '.join(cmd)}: exit {os.waitstatus_to_exitcode(status)}: {err[-400:]}")
    return wall, usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default=DEFAULT_BEFORE, help="revision the --files come from")
    parser.add_argument("--files", default="all", help="all (the whole package) or comma-separated files")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--small", default=str(ROOT.parent / "shared" / "data" / "dicom" / "brainix" / "T1"))
    parser.add_argument("--ct", help="the 300-slice CT folder (default: make_ct.py's, cached in the temp folder)")
    args = parser.parse_args(argv)

    ct = Path(args.ct) if args.ct else Path(tempfile.gettempdir()) / "volume-bench-ct300"
    if not ct.exists():
        subprocess.run([sys.executable, str(HERE / "make_ct.py"), str(ct), "--slices", "300"], check=True)
    work = Path(tempfile.mkdtemp(prefix="volume-bench-startup-"))
    try:
        trees = {
            "before": make_tree_copy(work / "before", args.before, tuple(args.files.split(","))),
            "now": make_tree_copy(work / "now", None, ()),
        }
        base_env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # cache bytecode
        envs = {k: {**base_env, "PYTHONPATH": str(v)} for k, v in trees.items()}
        out = work / "out"
        d2n = dcm2niix_binary()

        def vol(tree: str, *extra: str) -> tuple[list[str], dict[str, str]]:
            return [sys.executable, "-m", "volume", *extra], envs[tree]

        cases: dict[str, dict[str, tuple[list[str], dict[str, str] | None]]] = {
            f"convert {Path(args.small).name} (.nii.gz)": {
                t: vol(t, "convert", args.small, "-o", str(out / t), "--force") for t in trees},
            "convert CT 300 slices (.nii.gz)": {
                t: vol(t, "convert", str(ct), "-o", str(out / t), "--force") for t in trees},
            "convert CT 300 slices (--format nii)": {
                t: vol(t, "convert", str(ct), "-o", str(out / t), "-f", "nii", "--force") for t in trees},
            "volume --version": {t: vol(t, "--version") for t in trees},
            "volume convert --help": {t: vol(t, "convert", "--help") for t in trees},
        }
        if d2n:
            cases[f"convert {Path(args.small).name} (.nii.gz)"]["dcm2niix -z y"] = (
                [d2n, "-z", "y", "-f", "small", "-o", str(out / "d2n"), args.small], None)
            cases["convert CT 300 slices (.nii.gz)"]["dcm2niix -z y"] = (
                [d2n, "-z", "y", "-f", "ct", "-o", str(out / "d2n"), str(ct)], None)
            cases["convert CT 300 slices (--format nii)"]["dcm2niix -z n"] = (
                [d2n, "-z", "n", "-f", "ct", "-o", str(out / "d2n"), str(ct)], None)
        results: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for name in ("before", "now", "d2n"):
            (out / name).mkdir(parents=True)
        print(f"before = working tree with {args.files} from {args.before}; {args.rounds} interleaved rounds; "
              f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}", flush=True)
        for r in range(args.rounds + 1):  # round 0 warms caches (bytecode, page cache) and is dropped
            for case, contenders in cases.items():
                for label, (cmd, env) in contenders.items():
                    if label.startswith("dcm2niix"):
                        for p in (out / "d2n").iterdir():
                            p.unlink()
                    measured = run(cmd, env)
                    if r:
                        results.setdefault((case, label), []).append(measured)
        print(f"load average after: {os.getloadavg()[0]:.1f}\n")
        print("| command | contender | median wall s | median CPU s | wall vs before | CPU vs before "
              "| wall vs dcm2niix | CPU vs dcm2niix |")
        print("|---|---|---|---|---|---|---|---|")
        for case, contenders in cases.items():
            med = {label: (statistics.median(w for w, _ in results[(case, label)]),
                           statistics.median(c for _, c in results[(case, label)])) for label in contenders}
            ref = next((v for k, v in med.items() if k.startswith("dcm2niix")), None)
            for label, (w, c) in med.items():
                b = med["before"]
                vs_before = f"{w / b[0]:.2f}x | {c / b[1]:.2f}x" if not label.startswith("dcm2niix") else "- | -"
                vs_d2n = f"{w / ref[0]:.2f}x | {c / ref[1]:.2f}x" if ref else "- | -"
                print(f"| {case} | {label} | {w:.3f} | {c:.3f} | {vs_before} | {vs_d2n} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

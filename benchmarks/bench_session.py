"""Benchmark: whole MR sessions and small series, volume vs the dcm2niix binary, same run.

Usage::

    python benchmarks/bench_session.py [--rounds 5] [--copies 3] [--peers ../shared/data/peers]
                                       [--only session,ct,small] [--volume-arg=--workers=1]
                                       [--before REVISION]

The cases:

* **a whole session**: every image of dcm2niix's ``dcm_qa_nih`` (GE fMRI and Siemens EPI
  mosaics), ``dcm_qa_stc/In/GE`` (GE EPI with the four ways GE stores slice times) and
  ``dcm_qa_philips_dwi`` (Philips DWI, classic and enhanced; their gzip-compressed files
  decompressed, since dcm2niix cannot read ``.gz`` DICOM) in one folder, one sub-folder per
  series as exported. ``--copies N`` repeats it N times under new UIDs (each UID's leading ``1``
  replaced by the copy's digit, the same length, so every byte offset stays), which makes a
  session the size of a long clinical MR exam (3 copies: about 4,800 files, 130 MB). The session
  is built once into the temp folder (``$VOLUME_BENCH_CACHE`` or ``/tmp``) and kept.
* **the 300-slice CT** of ``benchmarks/make_ct.py`` (512x512 int16, 150 MB).
* **small series**: the 150-image GE fMRI ``mr_0004`` of ``dcm_qa_nih`` and the 544-image
  Philips DWI (decompressed), as in ``bench_dwi.py``.

Each converted to ``.nii`` (``--format nii`` against ``dcm2niix -z n``) and to ``.nii.gz`` (against
``dcm2niix -z y``), whole processes as a user runs them (``python -m volume convert`` with bytecode
cached, the dcm2niix executable itself). Rounds alternate the contenders, so a burst of load from
other jobs hits all of them, in an order drawn anew for each round and case (the first run after a
``dcm2niix -z y`` run pays more system time, whichever it is); round 0 warms the page cache and is
dropped. Printed: the median
wall time, CPU time (user + system of the process and its children, from ``wait4``) and peak
resident memory (the largest process: ``wait4`` reports the largest of the process and its
waited-for children) of each command, and the ratios to dcm2niix measured in the same rounds.

``--before REVISION`` adds a third contender, ``volume before``: the package at that revision
(``git archive``, its compiled walk built there when it has one), run the same way with
``PYTHONPATH`` pointing at it, in the same rounds: what the changes since then saved, measured
under the same load.
"""

from __future__ import annotations

import argparse
import gzip
import os
import random
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

#: The session's parts, under the peers' folder.
SESSION_PARTS = ("dcm_qa_nih/In", "dcm_qa_stc/In/GE", "dcm_qa_philips_dwi/In")

#: Files of the peers' folders that are not images of the session (their READMEs, DICOMDIR indexes).
NOT_IMAGES = ("README", "DICOMDIR")

#: The issue's goals, as ratios to dcm2niix measured in the same run (label: (measure, at most)).
GOALS = {
    "session .nii": ("CPU", 1.0),
    "session .nii.gz": ("wall", 0.6),
    "CT 300 slices .nii": ("wall", 1.0),
    "GE fMRI 150 .nii": ("wall", 1.5),
    "Philips DWI 544 .nii": ("wall", 1.5),
    "GE fMRI 150 .nii.gz": ("wall", 1.5),
    "Philips DWI 544 .nii.gz": ("wall", 1.5),
}


def run(cmd: list[str], pythonpath: str | None = None) -> tuple[float, float, float]:
    """(wall s, CPU s, peak RSS MiB) of one run (``pythonpath``: where ``volume`` is imported
    from, else this checkout); raises on a non-zero exit."""
    env = {**os.environ, "VOLUME_NO_PROGRESS": "1"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # cache bytecode as an installed package does
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                            cwd=tempfile.gettempdir())
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    if code:
        raise RuntimeError(f"{' '.join(cmd)}: exit {code}: {err[-400:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def _uids(data: bytes) -> list[str]:
    """The study, series, instance and frame-of-reference UIDs of a DICOM file's bytes."""
    import io

    import pydicom

    ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True, force=True)
    found = {str(ds.get(k, "")) for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID",
                                         "FrameOfReferenceUID")}
    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        found.add(str(meta.get("MediaStorageSOPInstanceUID", "")))
    return sorted((u for u in found if u.startswith("1.")), key=len, reverse=True)


def _renamed(data: bytes, uids: list[str], copy: int) -> bytes:
    """``data`` with every UID's leading ``1`` replaced by ``copy + 1`` (the same length, new UIDs)."""
    for uid in uids:
        data = data.replace(uid.encode(), f"{copy + 1}{uid[1:]}".encode())
    return data


def build_session(peers: Path, dest: Path, copies: int) -> tuple[Path, int, int]:
    """The session folder (built once, kept), its file count and bytes."""
    done = dest / ".complete"
    if not done.exists():
        shutil.rmtree(dest, ignore_errors=True)
        for part in SESSION_PARTS:
            src = peers / part
            for path in sorted(p for p in src.rglob("*") if p.is_file()):
                if path.name.startswith(NOT_IMAGES):
                    continue
                data = path.read_bytes()
                if data[:2] == b"\x1f\x8b":
                    data = gzip.decompress(data)
                if data[128:132] != b"DICM":
                    continue
                uids = _uids(data) if copies > 1 else []
                rel = path.relative_to(peers).with_suffix("") if path.suffix == ".gz" else path.relative_to(peers)
                for k in range(copies):
                    out = dest / f"copy{k + 1}" / rel
                    out.parent.mkdir(parents=True, exist_ok=True)
                    out.write_bytes(_renamed(data, uids, k) if k else data)
        done.touch()
    files = [p for p in dest.rglob("*") if p.is_file() and p.name != ".complete"]
    return dest, len(files), sum(p.stat().st_size for p in files)


def gunzip_tree(src: Path, dest: Path) -> Path:
    """``src``'s gzip-compressed DICOM files, decompressed into ``dest`` (built once, kept)."""
    if not dest.is_dir():
        tmp = dest.with_name(dest.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for path in sorted(src.glob("IM_*.gz")):
            (tmp / path.stem).write_bytes(gzip.decompress(path.read_bytes()))
        tmp.rename(dest)
    return dest


def cached_ct(cache: Path, slices: int = 300) -> Path:
    """The ``make_ct.py`` CT of ``slices`` slices (built once, kept)."""
    src = cache / f"volume-bench-ct{slices}"
    if not src.is_dir() or len(os.listdir(src)) != slices:
        shutil.rmtree(src, ignore_errors=True)
        subprocess.run([sys.executable, str(HERE / "make_ct.py"), str(src), "--slices", str(slices)], check=True)
    return src


def build_before(revision: str, dest: Path) -> Path:
    """``dest`` holding the ``volume`` package at ``revision``, its compiled walk built when the
    revision has one (the same compiler and flags as ``pip install``)."""
    # setup.py alone builds the extension: a pyproject.toml an older setuptools cannot read (an SPDX
    # licence string before setuptools 77) would stop the build
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision, "volume", "setup.py"],
                             capture_output=True)
    if archive.returncode:  # an older revision without setup.py
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision, "volume"], capture_output=True, check=True)
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    if (dest / "setup.py").exists() and (dest / "volume" / "dicom" / "_walk.c").exists():
        subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace"], cwd=dest, check=True,
                       capture_output=True)
    return dest


def read_all(folder: Path) -> None:
    """Read every file once (the page cache)."""
    for p in folder.rglob("*"):
        if p.is_file():
            p.read_bytes()


def cases(args: argparse.Namespace, d2n: str, out: Path, cache: Path) -> dict[str, dict[str, list[str]]]:
    """Case -> contender -> command line."""
    volume = [sys.executable, "-m", "volume", "convert"]
    extra = list(args.volume_arg or [])
    found: dict[str, dict[str, list[str]]] = {}

    def pair(label: str, src: Path) -> None:
        for suffix, fmt, z in ((".nii", ["-f", "nii"], "n"), (".nii.gz", [], "y")):
            command = volume + [str(src), "-o", str(out / "v"), "--force", *fmt, *extra]
            found[f"{label} {suffix}"] = {
                "volume": command,
                **({"volume before": command} if args.before else {}),
                f"dcm2niix -z {z}": [d2n, "-z", z, "-f", "%s_%p", "-o", str(out / "d"), str(src)],
            }

    only = set(args.only.split(",")) if args.only else {"session", "ct", "small"}
    if "session" in only:
        session, n, size = build_session(args.peers, cache / f"volume-bench-session{args.copies}", args.copies)
        print(f"session: {n} files, {size / 2**20:.0f} MiB, in {session}", flush=True)
        read_all(session)
        pair(f"session ({n} files)", session)
    if "ct" in only:
        ct = cached_ct(cache)
        read_all(ct)
        pair("CT 300 slices", ct)
    if "small" in only:
        fmri = args.peers / "dcm_qa_nih" / "In" / "20180918GE" / "mr_0004"
        dwi = gunzip_tree(args.peers / "dcm_qa_philips_dwi" / "In" / "cl" / "DICOM", cache / "volume-bench-philips-dwi")
        pair("GE fMRI 150", fmri)
        pair("Philips DWI 544", dwi)
    return found


def shuffled(items: list, seed: str) -> list:
    """``items`` in an order drawn from ``seed`` (the run's seed, the round and the case): a
    contender runs after any other as often as not, and another run draws other orders (a seed
    fixed in the script gave every run the same ones, so the same contender paid the effect below). The first run after a ``dcm2niix -z y`` run was measured to
    pay 0.1-0.25 s more system time (the kernel zeroing pages), whichever program it is, so a
    fixed order would charge it to one contender."""
    out = list(items)
    random.Random(seed).shuffle(out)
    return out


def goal_of(case: str) -> tuple[str, float] | None:
    """The issue's goal for ``case`` (its label without the file count)."""
    key = case.split(" (")[0] + (" " + case.rsplit(" ", 1)[-1] if " (" in case else "")
    return GOALS.get(key)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--copies", type=int, default=3, help="copies of the session under new UIDs")
    parser.add_argument("--peers", type=Path, default=ROOT.parent / "shared" / "data" / "peers")
    parser.add_argument("--only", help="comma-separated: session, ct, small (default: all)")
    parser.add_argument("--volume-arg", action="append", help="an extra argument for volume convert (repeatable)")
    parser.add_argument("--before", help="also run volume at this git revision (same rounds)")
    parser.add_argument("--seed", type=int, help="of the run order (default: drawn anew, printed)")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(10**6)
    d2n = dcm2niix_binary()
    if d2n is None:
        print("dcm2niix not found (pip install dcm2niix)", file=sys.stderr)
        return 2
    if not args.peers.is_dir():
        print(f"{args.peers}: the peers' suites are not there", file=sys.stderr)
        return 2
    cache = Path(os.environ.get("VOLUME_BENCH_CACHE") or tempfile.gettempdir())
    work = Path(tempfile.mkdtemp(prefix="volume-bench-session-"))
    try:
        out = work / "out"
        before = str(build_before(args.before, work / "before")) if args.before else None
        table = cases(args, d2n, out, cache)
        results: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
        print(f"{args.rounds} interleaved rounds; {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}; "
              f"{subprocess.run([d2n, '-v'], capture_output=True, text=True).stdout.splitlines()[0]}; "
              f"{'volume before = ' + args.before + '; ' if args.before else ''}order seed {seed}; "
              f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", flush=True)
        for r in range(args.rounds + 1):
            for case, contenders in table.items():
                for label, cmd in shuffled(list(contenders.items()), f"{seed} {r} {case}"):
                    for sub in ("v", "d"):
                        shutil.rmtree(out / sub, ignore_errors=True)
                        (out / sub).mkdir(parents=True)
                    measured = run(cmd, before if label == "volume before" else None)
                    if r:
                        results.setdefault((case, label), []).append(measured)
            print(f"round {r}/{args.rounds} done", file=sys.stderr, flush=True)
        print(f"load average after: {os.getloadavg()[0]:.1f}\n")
        print("| case | contender | wall s | CPU s | peak MiB | wall vs dcm2niix | CPU vs dcm2niix | "
              "memory vs dcm2niix | goal |")
        print("|---|---|---|---|---|---|---|---|---|")
        for case, contenders in table.items():
            med = {label: tuple(statistics.median(m[i] for m in results[(case, label)]) for i in range(3))
                   for label in contenders}
            ref = next(v for k, v in med.items() if k.startswith("dcm2niix"))
            goal = goal_of(case)
            for label, (w, c, m) in med.items():
                verdict = ""
                if goal and label == "volume":
                    ratio = (w / ref[0]) if goal[0] == "wall" else (c / ref[1])
                    verdict = f"{goal[0]} <= {goal[1]}x: {'met' if ratio <= goal[1] else 'NOT met'}"
                print(f"| {case} | {label} | {w:.3f} | {c:.3f} | {m:.0f} | {w / ref[0]:.2f}x | {c / ref[1]:.2f}x | "
                      f"{m / ref[2]:.2f}x | {verdict} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

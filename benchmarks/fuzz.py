"""Seeded mutation fuzzer: broken DICOM against the loader and every command (issue 9).

Usage::

    python benchmarks/fuzz.py --cases 2000 --seed 1 [--time-limit 30] [--real ../shared/data]
                              [--keep crashes/] [--commands ls,convert,...] [--json report.json]

Each case copies one valid seed series (synthetic ones built here: explicit and implicit VR,
signed CT with rescale, RLE, big endian, enhanced and classic multi-frame, a single slice; and
the small real series of ``../shared/data/dicom``, ``dicom-edge`` and the peers' suites in
``peers`` when present), then mutates one to
three of its files: header elements set to junk or deleted (through pydicom), header or pixel
bytes flipped, zeroed, inserted or deleted, element lengths corrupted, files truncated, the
transfer syntax swapped without re-encoding, files duplicated at one position or replaced by
junk. The loader (``scan`` + ``load`` of every stack) and the CLI commands then run on the case
in a worker process that is killed when a case exceeds ``--time-limit`` seconds.

Outcome of a case (the worst over its runs):

- ``ok``: every run succeeded;
- ``clean error``: some runs refused with a :class:`~volume.errors.VolumeError` / a documented
  exit code (0-5, 130), one message, no traceback;
- ``crash``: an exception other than VolumeError from the loader, an undocumented exit code
  (70: internal error), a traceback on stderr, or a ``.volume-tmp-*`` file left in the output;
- ``hang``: over the time limit (the worker is killed and replaced).

The goal is 0 crashes and 0 hangs. Crash signatures are printed grouped; ``--keep DIR`` keeps
each crashing case's folder with a ``CASE.txt`` saying which mutations made it.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))  # tests/synth.py builds the synthetic seeds

#: Exit codes the README documents for input problems (70, internal error, counts as a crash).
DOCUMENTED_EXIT_CODES = frozenset({0, 1, 2, 3, 4, 5, 130})

#: Largest array the fuzzer lets the loader allocate (a header claiming more must be refused).
FUZZ_MAX_BYTES = 2**28

#: Address-space limit of a worker process: a runaway allocation fails instead of swapping.
WORKER_MEMORY_LIMIT = 6 * 2**30

#: Commands run on every case by default (render and mesh: every RENDER_EVERY-th case, vtk is slow).
DEFAULT_COMMANDS = ("ls", "info", "convert", "mip", "png", "index", "reslice", "render", "mesh")

#: render/mesh run on one case in this many (they take ~0.3 s each).
RENDER_EVERY = 8

#: Header keywords the element mutations pick from.
KEYWORDS = (
    "Rows", "Columns", "PixelSpacing", "ImageOrientationPatient", "ImagePositionPatient", "BitsAllocated",
    "BitsStored", "HighBit", "PixelRepresentation", "RescaleSlope", "RescaleIntercept", "SamplesPerPixel",
    "PhotometricInterpretation", "NumberOfFrames", "SeriesInstanceUID", "SOPInstanceUID", "PlanarConfiguration",
    "WindowCenter", "WindowWidth", "SliceThickness", "SpacingBetweenSlices", "SeriesNumber", "InstanceNumber",
    "SeriesDescription", "ImageType", "Modality", "AcquisitionTime", "EchoTime", "EchoNumbers",
    "TemporalPositionIdentifier", "FrameTime", "GridFrameOffsetVector", "VOILUTFunction", "SOPClassUID",
    "StudyInstanceUID", "FrameOfReferenceUID", "TriggerTime", "AcquisitionNumber",
)

#: Junk values for element mutations (None deletes the element).
JUNK_VALUES: tuple[Any, ...] = (
    None, 0, -1, 1, 2, 3, 7, 12, 65535, 2**31 - 1, 10_000_000, "nan", "inf", "-inf", "", "abc", "1e308", [1, 2],
    [0, 0, 0, 0, 0, 0], [1, 0, 0, 1, 0, 0], ["nan"] * 6, [1e30, 1e30, 1e30], "MONOCHROME1", "YBR_FULL",
    "PALETTE COLOR", "RGB", 1.5, "../../etc/x", "a\x07b\x1b[31m\n", "[/bold]", "\\".join(["1"] * 50), "ORIGINAL\\PRIMARY\\MOSAIC",
    "LOCALIZER", "1.2.3", "CT", "SIGMOID",
)

#: Transfer syntaxes a swap mutation relabels a file with (its bytes are not re-encoded).
SYNTAXES = (
    "1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.5",
    "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.90",
    "1.2.840.10008.1.2.1.99", "1.2.3.4.5",
)


# --- seeds -----------------------------------------------------------------------------------


def make_synthetic_seeds(root: Path) -> list[Path]:
    """Write the synthetic seed series (small: 3-4 slices of 6-12 pixels) under ``root``."""
    import pydicom
    import synth
    from pydicom.uid import ExplicitVRBigEndian, ImplicitVRLittleEndian, generate_uid

    seeds = []

    def add(name: str, fn: Callable[[Path], Any]) -> None:
        folder = root / name
        fn(folder)
        seeds.append(folder)

    add("native", lambda f: synth.write_series(f, shape=(4, 8, 7)))
    add("implicit", lambda f: synth.write_series(f, shape=(3, 6, 5), transfer_syntax=ImplicitVRLittleEndian))
    add("ct", lambda f: synth.write_series(f, shape=(4, 8, 6), modality="CT", intercepts=-1024, slopes=1.0,
                                           stored_dtype=np.int16, extra={"WindowCenter": 40, "WindowWidth": 400}))
    add("rle", lambda f: synth.write_series(f, shape=(3, 6, 5), transfer_syntax=synth.RLELossless))
    add("bigendian", lambda f: synth.write_series(f, shape=(3, 6, 5), transfer_syntax=ExplicitVRBigEndian))
    add("oblique", lambda f: synth.write_series(f, shape=(4, 7, 6), iop=synth.oblique_iop(), slopes=0.5))
    add("one", lambda f: synth.write_series(f, shape=(1, 6, 5)))
    add("enhanced", lambda f: synth.write_enhanced(f / "enhanced.dcm", shape=(4, 6, 5)))

    def classic(folder: Path) -> None:  # a classic (non-enhanced) multi-frame cine
        folder.mkdir(parents=True)
        ds = synth.base_dataset(series_uid=generate_uid(), study_uid=generate_uid(), frame_uid=generate_uid(),
                                rows=6, cols=5)
        ds.NumberOfFrames = 3
        ds.FrameTime = 40
        ds.ImagePositionPatient = [0, 0, 0]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [1, 1]
        ds.PixelData = np.arange(3 * 6 * 5, dtype=np.uint16).tobytes()
        ds.save_as(folder / "cine.dcm", enforce_file_format=True)

    add("cine", classic)
    for p in seeds:  # the seeds themselves must load: a mutation is then what breaks them
        for f in p.iterdir():
            pydicom.dcmread(f)
    return seeds


def real_seeds(data: Path | None) -> list[Path]:
    """Small real series: every folder of ``data/dicom`` and ``data/dicom-edge`` under 3 MB, and
    every folder of the peers' suites (``data/peers``: fMRI, DWI, mosaics, enhanced, field maps)
    holding DICOM files directly, under 3 MB."""
    if data is None or not data.is_dir():
        return []
    found = []
    for group in ("dicom", "dicom-edge"):
        for folder in sorted((data / group).glob("*")):
            files = [p for p in folder.rglob("*") if p.is_file()]
            if files and sum(p.stat().st_size for p in files) < 3 * 2**20:
                found.append(folder)
    peers = data / "peers"
    if peers.is_dir():
        for folder in sorted(p for p in peers.rglob("*") if p.is_dir()):
            files = [p for p in folder.iterdir() if p.is_file() and p.name not in ("LICENSE", "DICOMDIR") and p.suffix not in (".json", ".nii", ".gz", ".bval",
                                                                                     ".bvec", ".md", ".txt")]
            if len(files) >= 1 and sum(p.stat().st_size for p in files) < 3 * 2**20 and folder.name not in ("Ref",):
                found.append(folder)
    return found


# --- mutations -------------------------------------------------------------------------------


def _pixel_offset(raw: bytes) -> int:
    """Offset of the (7FE0,0010) element in ``raw`` (little or big endian), or len(raw)."""
    for tag in (b"\xe0\x7f\x10\x00", b"\x7f\xe0\x00\x10"):
        i = raw.rfind(tag)
        if i > 0:
            return i
    return len(raw)


def mutate_element(path: Path, rng: np.random.Generator) -> str:
    import pydicom

    ds = pydicom.dcmread(path, force=True)
    keyword = KEYWORDS[int(rng.integers(len(KEYWORDS)))]
    value = JUNK_VALUES[int(rng.integers(len(JUNK_VALUES)))]
    with contextlib.suppress(Exception):
        if value is None:
            if keyword in ds:
                delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
        ds.save_as(path)
        return f"{keyword}={value!r}"
    return f"{keyword}={value!r} (refused by pydicom)"


def mutate_syntax(path: Path, rng: np.random.Generator) -> str:
    import pydicom

    ds = pydicom.dcmread(path, force=True)
    syntax = SYNTAXES[int(rng.integers(len(SYNTAXES)))]
    raw = path.read_bytes()
    old = str(getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "") or "")
    if not old:
        return "syntax: none to swap"
    new = syntax.encode() + (b"\x00" if len(syntax) % 2 else b"")
    old_b = old.encode() + (b"\x00" if len(old) % 2 else b"")
    if len(new) == len(old_b):
        path.write_bytes(raw.replace(old_b, new, 1))
    else:
        ds.file_meta.TransferSyntaxUID = syntax
        with contextlib.suppress(Exception):
            ds.save_as(path, enforce_file_format=False)
    return f"TransferSyntaxUID {old} -> {syntax} (bytes kept)"


def mutate_bytes(path: Path, rng: np.random.Generator) -> str:
    raw = bytearray(path.read_bytes())
    if len(raw) < 4:
        return "bytes: file too small"
    px = min(_pixel_offset(bytes(raw)), len(raw))
    last = len(raw) - 1

    def pick(lo: int, hi: int) -> int:
        """A random index in [lo, hi), clamped into the file."""
        lo, hi = max(0, min(lo, last)), max(0, min(hi, len(raw)))
        return int(rng.integers(lo, hi)) if hi > lo else lo

    kind = ["flip-header", "flip-pixels", "zero", "insert", "delete", "length", "truncate"][int(rng.integers(7))]
    if kind == "flip-header":
        for _ in range(int(rng.integers(1, 9))):
            raw[pick(128, max(133, px))] ^= 1 << int(rng.integers(8))
    elif kind == "flip-pixels":
        for _ in range(int(rng.integers(1, 64))):
            raw[pick(px + 8, len(raw))] = int(rng.integers(256))
    elif kind == "zero":
        i = pick(0, len(raw))
        n = int(rng.integers(1, 256))
        raw[i:i + n] = bytes(len(raw[i:i + n]))
    elif kind == "insert":
        i = pick(132, max(133, px))
        raw[i:i] = bytes(rng.integers(0, 256, int(rng.integers(1, 16)), dtype=np.uint8))
    elif kind == "delete":
        i = pick(132, max(133, px))
        del raw[i:i + int(rng.integers(1, 16))]
    elif kind == "length":  # an element's length field set to something wrong (often huge)
        i = pick(132, max(133, min(px + 4, len(raw) - 8)))
        value = [0xFFFFFFFF, 0xFFFF, 0x7FFFFFFF, int(rng.integers(0, 2**32)), 1, 0][int(rng.integers(6))]
        raw[i + 4:i + 8] = int(value).to_bytes(4, "little")
    else:
        raw = raw[: int(rng.integers(0, len(raw)))]
    path.write_bytes(bytes(raw))
    return f"bytes:{kind}"


def mutate_folder(folder: Path, rng: np.random.Generator) -> list[str]:
    """Mutate one to three files of ``folder`` in place; return what was done."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    done = []
    if not files:
        return done
    if rng.random() < 0.05:  # a file of junk among good ones
        junk = folder / f"junk{int(rng.integers(1000))}"
        junk.write_bytes(bytes(rng.integers(0, 256, int(rng.integers(0, 4096)), dtype=np.uint8)))
        done.append(f"{junk.name}: random bytes")
    if rng.random() < 0.05 and len(files) > 1:  # a second file at the same position, other content
        import pydicom
        from pydicom.uid import generate_uid

        with contextlib.suppress(Exception):
            ds = pydicom.dcmread(files[0])
            ds.SOPInstanceUID = generate_uid()
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            if "PixelData" in ds and ds.file_meta.TransferSyntaxUID in ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2"):
                ds.PixelData = bytes(reversed(ds.PixelData))
            ds.save_as(folder / "twin")
            done.append("twin: a second image at one position")
    n_victims = int(rng.integers(1, min(3, len(files)) + 1))
    for idx in rng.choice(len(files), size=n_victims, replace=False):
        path = files[int(idx)]
        for _ in range(int(rng.integers(1, 4))):
            r = rng.random()
            try:
                if r < 0.5:
                    what = mutate_element(path, rng)
                elif r < 0.58:
                    what = mutate_syntax(path, rng)
                else:
                    what = mutate_bytes(path, rng)
            except Exception as exc:  # noqa: BLE001 - pydicom cannot read it any more: bytes only
                try:
                    what = mutate_bytes(path, rng) + f" (after {type(exc).__name__})"
                except Exception as again:  # noqa: BLE001 - the fuzzer's own bug must not end the run
                    what = f"mutation failed: {type(again).__name__}"
            done.append(f"{path.name}: {what}")
    return done


# --- running one case ------------------------------------------------------------------------


@dataclass
class RunResult:
    """What one run (the loader, or one command) did on a case."""

    name: str
    outcome: str  # ok, error, crash
    detail: str = ""


COMMAND_ARGS: dict[str, Callable[[Path, Path, Path], list[str]]] = {
    "ls": lambda src, f, out: ["ls", str(src)],
    "info": lambda src, f, out: ["info", str(f)],
    "convert": lambda src, f, out: ["convert", str(src), "-o", str(out / "convert")],
    "mip": lambda src, f, out: ["mip", str(src), "-o", str(out / "mip")],
    "png": lambda src, f, out: ["png", str(src), "-o", str(out / "png"), "--workers", "1"],
    "index": lambda src, f, out: ["index", str(src), "-o", str(out / "index.csv"), "--workers", "1"],
    "reslice": lambda src, f, out: ["reslice", str(src), "--spacing", "3", "--series", "1",
                                    "-o", str(out / "r.nii.gz")],
    "render": lambda src, f, out: ["render", str(src), "--size", "32x32", "-o", str(out / "r.png")],
    "mesh": lambda src, f, out: ["mesh", str(src), "-o", str(out / "m.stl")],
}


def _first_stack_id(src: Path) -> str | None:
    with contextlib.suppress(Exception):
        import volume

        stacks = volume.scan(src, workers=1).stacks
        good = [st for st in stacks if not st.problem] or stacks
        return good[0].id if good else None
    return None


def run_loader(src: Path) -> RunResult:
    import volume
    from volume.errors import VolumeError

    try:
        found = volume.scan(src, workers=1)
        errors = 0
        for st in found.stacks:
            try:
                vol = volume.load(st, max_bytes=FUZZ_MAX_BYTES)
                arr = np.asarray(vol.array)
                assert vol.affine.shape == (4, 4) and np.all(np.isfinite(vol.affine)), "affine not finite"
                assert arr.ndim in (3, 4, 5), f"array of {arr.ndim} dimensions"
            except VolumeError:
                errors += 1
        return RunResult("load", "error" if errors else "ok")
    except VolumeError:
        return RunResult("load", "error")
    except Exception as exc:  # noqa: BLE001 - exactly what the fuzzer looks for
        return RunResult("load", "crash", _signature(exc))


def _signature(exc: BaseException) -> str:
    tb = traceback.extract_tb(exc.__traceback__)
    where = next((f"{Path(f.filename).name}:{f.lineno}" for f in reversed(tb) if "/volume/" in f.filename),
                 f"{Path(tb[-1].filename).name}:{tb[-1].lineno}" if tb else "?")
    first = str(exc).splitlines()[0][:160] if str(exc) else ""
    return f"{type(exc).__name__} at {where}: {first}"


def run_command(name: str, src: Path, victim: Path, out: Path) -> RunResult:
    from volume.cli import main
    from volume.io.atomic import TEMP_PREFIX

    args = COMMAND_ARGS[name](src, victim, out)
    if name == "reslice":
        stack = _first_stack_id(src)
        args[args.index("--series") + 1] = stack or "1"
    stdout, stderr = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            code = main(args)
    except BaseException as exc:  # noqa: BLE001 - main must never raise
        return RunResult(name, "crash", f"main raised {_signature(exc)}")
    text = stdout.getvalue() + stderr.getvalue()
    leftover = [p.name for p in out.rglob(f"{TEMP_PREFIX}*")] if out.exists() else []
    if code not in DOCUMENTED_EXIT_CODES:
        line = next((x for x in stderr.getvalue().splitlines() if "internal error" in x), stderr.getvalue()[:200])
        return RunResult(name, "crash", f"exit {code}: {line.strip()}")
    if "Traceback" in text:
        return RunResult(name, "crash", "traceback printed")
    if leftover:
        return RunResult(name, "crash", f"temporary files left: {leftover[:3]}")
    return RunResult(name, "ok" if code == 0 else "error")


def run_case(src: Path, commands: tuple[str, ...], case_index: int) -> list[RunResult]:
    """The loader and each command on one case folder (outputs in a scratch folder)."""
    files = sorted(p for p in src.rglob("*") if p.is_file())
    victim = files[0] if files else src
    results = [run_loader(src)]
    with tempfile.TemporaryDirectory(prefix="fuzz-out-") as tmp:
        out = Path(tmp)
        for name in commands:
            if name in ("render", "mesh") and case_index % RENDER_EVERY:
                continue
            results.append(run_command(name, src, victim, out))
    return results


# --- the loop --------------------------------------------------------------------------------


@dataclass
class Report:
    """Counts over a fuzzing run."""

    cases: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    runs: Counter[str] = field(default_factory=Counter)
    crashes: Counter[str] = field(default_factory=Counter)
    hangs: list[str] = field(default_factory=list)
    seconds: float = 0.0
    examples: dict[str, str] = field(default_factory=dict)
    slowest: list[tuple[float, str]] = field(default_factory=list)

    def add(self, results: list[RunResult], mutations: list[str], case_dir: Path, keep: Path | None) -> str:
        self.cases += 1
        for r in results:
            self.runs[f"{r.name}:{r.outcome}"] += 1
            if r.outcome == "crash":
                sig = f"{r.name}: {r.detail}"
                self.crashes[sig] += 1
                if sig not in self.examples:
                    self.examples[sig] = "; ".join(mutations)
                    if keep is not None:
                        dest = keep / f"case{self.cases:05d}"
                        shutil.copytree(case_dir, dest, dirs_exist_ok=True)
                        (dest / "CASE.txt").write_text(sig + "\n" + "\n".join(mutations) + "\n")
        outcome = ("crash" if any(r.outcome == "crash" for r in results)
                   else "clean error" if any(r.outcome == "error" for r in results) else "ok")
        self.outcomes[outcome] += 1
        return outcome

    def summary(self) -> dict[str, Any]:
        return {
            "cases": self.cases,
            "ok": self.outcomes["ok"],
            "clean_error": self.outcomes["clean error"],
            "crash": self.outcomes["crash"],
            "hang": self.outcomes["hang"],
            "seconds": round(self.seconds, 1),
            "runs": dict(sorted(self.runs.items())),
            "crash_signatures": dict(self.crashes.most_common()),
            "crash_examples": self.examples,
            "hangs": self.hangs,
            "slowest_cases": [{"seconds": round(t, 2), "case": m} for t, m in self.slowest],
        }


def _worker(conn: Any, commands: tuple[str, ...]) -> None:
    """Worker process: run cases sent over ``conn`` until told to stop."""
    with contextlib.suppress(Exception):
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (WORKER_MEMORY_LIMIT, WORKER_MEMORY_LIMIT))
    devnull = os.open(os.devnull, os.O_WRONLY)  # C libraries (vtk, codecs) write to fd 1/2 directly
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    os.environ["VOLUME_NO_PROGRESS"] = "1"
    import warnings

    warnings.simplefilter("ignore")
    import volume.cli  # noqa: F401 - import once, before the first case

    while True:
        msg = conn.recv()
        if msg is None:
            return
        path, index = msg
        try:
            results = run_case(Path(path), commands, index)
        except BaseException as exc:  # noqa: BLE001
            results = [RunResult("case", "crash", f"harness: {_signature(exc)}")]
        conn.send(results)


class WorkerPool:
    """One worker process with a per-case time limit (killed and replaced on a hang)."""

    def __init__(self, commands: tuple[str, ...], time_limit: float) -> None:
        import multiprocessing as mp

        self.ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        self.commands = commands
        self.time_limit = time_limit
        self.proc = None
        self.conn = None

    def _start(self) -> None:
        parent, child = self.ctx.Pipe()
        self.proc = self.ctx.Process(target=_worker, args=(child, self.commands), daemon=True)
        self.proc.start()
        self.conn = parent

    def run(self, path: Path, index: int) -> list[RunResult] | None:
        """Results, or None when the case went over the time limit."""
        if self.proc is None or not self.proc.is_alive():
            self._start()
        self.conn.send((str(path), index))
        if self.conn.poll(self.time_limit):
            try:
                return self.conn.recv()
            except EOFError:
                pass
            code = self.proc.exitcode if self.proc else None
            self.proc = None
            return [RunResult("case", "crash", f"worker died (exit {code}: out of memory or a signal)")]
        self.stop(kill=True)
        return None

    def stop(self, kill: bool = False) -> None:
        if self.proc is None:
            return
        if kill:
            self.proc.kill()
        else:
            with contextlib.suppress(Exception):
                self.conn.send(None)
        self.proc.join(5)
        self.proc = None


class CaseTimeout(BaseException):
    """Raised by the alarm in a case that runs over the time limit (in-process runs)."""


def _run_with_alarm(case_dir: Path, commands: tuple[str, ...], index: int, limit: float) -> list[RunResult] | None:
    """:func:`run_case` in this process; None when it runs over ``limit`` seconds (main thread only)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        return run_case(case_dir, commands, index)

    def alarm(signum: int, frame: Any) -> None:
        raise CaseTimeout

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        results = run_case(case_dir, commands, index)
    except CaseTimeout:
        return None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    if any("CaseTimeout" in r.detail for r in results):
        return None
    return results


def fuzz(
    cases: int,
    seed: int,
    *,
    commands: tuple[str, ...] = DEFAULT_COMMANDS,
    time_limit: float = 30.0,
    data: Path | None = None,
    keep: Path | None = None,
    in_process: bool = False,
    progress: bool = False,
) -> Report:
    """Run ``cases`` mutated cases; ``in_process`` (tests) skips the worker and its time limit."""
    rng = np.random.default_rng(seed)
    report = Report()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="volume-fuzz-") as tmp:
        root = Path(tmp)
        seeds = make_synthetic_seeds(root / "seeds") + real_seeds(data)
        pool = None if in_process else WorkerPool(commands, time_limit)
        try:
            for i in range(cases):
                seed_dir = seeds[int(rng.integers(len(seeds)))]
                case_dir = root / "case"
                shutil.rmtree(case_dir, ignore_errors=True)
                shutil.copytree(seed_dir, case_dir)
                mutations = [f"seed {seed_dir.name}"] + mutate_folder(case_dir, rng)
                t0 = time.perf_counter()
                if pool is None:
                    results = _run_with_alarm(case_dir, commands, i, time_limit)
                else:
                    results = pool.run(case_dir, i)
                if results is None:
                    report.cases += 1
                    report.outcomes["hang"] += 1
                    report.hangs.append("; ".join(mutations))
                    if keep is not None:
                        dest = keep / f"hang{report.cases:05d}"
                        shutil.copytree(case_dir, dest, dirs_exist_ok=True)
                        (dest / "CASE.txt").write_text("\n".join(mutations) + "\n")
                    outcome = "hang"
                else:
                    outcome = report.add(results, mutations, case_dir, keep)
                    took = time.perf_counter() - t0
                    report.slowest = sorted([*report.slowest, (took, "; ".join(mutations))], reverse=True)[:3]
                if progress and (outcome in ("crash", "hang") or (i + 1) % 100 == 0):
                    print(f"case {i + 1}/{cases}: {outcome} ({time.perf_counter() - t0:.1f} s) "
                          f"{dict(report.outcomes)}", file=sys.stderr, flush=True)
        finally:
            if pool is not None:
                pool.stop()
    report.seconds = time.perf_counter() - start
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--time-limit", type=float, default=30.0, help="seconds per case before it is a hang")
    parser.add_argument("--commands", default=",".join(DEFAULT_COMMANDS))
    parser.add_argument("--real", type=Path, default=HERE.parent.parent / "shared" / "data",
                        help="folder with dicom/ and dicom-edge/ (real seeds); skipped when absent")
    parser.add_argument("--keep", type=Path, help="copy crashing and hanging cases here")
    parser.add_argument("--json", type=Path, help="write the report as JSON")
    args = parser.parse_args(argv)
    import warnings

    warnings.simplefilter("ignore")  # pydicom complains about every junk value it is given
    commands = tuple(c for c in args.commands.split(",") if c)
    unknown = set(commands) - set(COMMAND_ARGS)
    if unknown:
        parser.error(f"unknown commands: {', '.join(sorted(unknown))}")
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
    report = fuzz(args.cases, args.seed, commands=commands, time_limit=args.time_limit, data=args.real,
                  keep=args.keep, progress=True)
    summary = report.summary()
    print(f"cases {summary['cases']}: ok {summary['ok']}, clean error {summary['clean_error']}, "
          f"crash {summary['crash']}, hang {summary['hang']} ({summary['seconds']} s, seed {args.seed})")
    for sig, n in report.crashes.most_common():
        print(f"  crash x{n}: {sig}\n      e.g. {report.examples[sig]}")
    for h in report.hangs:
        print(f"  hang: {h}")
    if report.slowest:
        print(f"  slowest case: {report.slowest[0][0]:.1f} s ({report.slowest[0][1]})")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1))
    return 1 if summary["crash"] or summary["hang"] else 0


if __name__ == "__main__":
    sys.exit(main())

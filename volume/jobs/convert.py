"""DICOM stacks to NIfTI files with JSON sidecars.

Two layers, so batch runners (a process pool, dask) can reuse the first:

* :func:`convert_stack` converts one stack: a pure task with picklable inputs (a
  :class:`~volume.dicom.Stack`, an output folder, :class:`ConvertOptions`, a planned name) and a
  picklable :class:`ConvertResult`. It never raises for bad input: a failing series becomes a
  ``failed`` result with one message, so the other series go on.
* :func:`plan` names every stack of a scan first (deterministic and collision-safe, whatever
  subset is converted), and :func:`convert` runs the tasks in order.

Output names are ``<SeriesNumber>_<SeriesDescription>[_<label>]`` made filesystem-safe
(:func:`~volume.io.names.safe_name`): the label tells apart stacks split from one series (echoes
``e1``/``e2``, ``ph``ase, localizer planes), and localizers say so.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any

from .. import lifecycle
from .._version import __version__
from ..choices import NIFTI_FORMATS
from ..dicom.bids import sidecar_fields
from ..dicom.headers import NATIVE_SYNTAXES
from ..dicom.loader import Scan
from ..dicom.series import Stack
from ..dicom.source import DicomSource
from ..errors import (
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OUTPUT_EXISTS,
    EXIT_PARTIAL,
    NoDicomError,
    NotAVolumeError,
    OutputExistsError,
    UsageError,
    VolumeError,
)
from ..io.atomic import TEMP_PREFIX, atomic_output, check_writable, sweep
from ..io.fsl import diffusion_paths, write_bval_bvec
from ..io.names import safe_name, unique_names
from ..io.nifti import DEFAULT_GZIP_LEVEL, acquisition_header
from ..io.nifti_stream import convert_image, memory_budget
from ..io.sidecar import seconds_text, write_sidecar
from ..parallel.pool import default_workers, in_daemon_process, unordered_map
from .events import QUIET, Events
from .existing import Tally, check_outputs
from .inputs import read_input

FORMATS = NIFTI_FORMATS
"""Output formats: gzip-compressed (default) or plain NIfTI-1."""

CONVERTED, SKIPPED, FAILED = "converted", "skipped", "failed"
"""The three outcomes of a stack: written, kept (an output existed), or not converted."""

EXISTING = "existing"
"""A fourth outcome with ``skip_existing``: every output was there already (a resumed run)."""

LOCALIZER_SUFFIX = "localizer"
"""Appended to the names of localizer stacks whose description does not say so already."""

_LOCALIZER_WORDS = re.compile(r"(?<![a-z])(loc|scout|survey|topogram|surview)", re.IGNORECASE)
"""Descriptions that already say "localizer" (``Loc (Right)``, ``3pl_loc``, ``Scout``, ``Topogram``)."""


@dataclass(frozen=True)
class ConvertOptions:
    """How to convert: format, overwrite policy, relaxations. Picklable (tasks are shipped to workers).

    Parameters
    ----------
    format
        ``"nii.gz"`` or ``"nii"``.
    force
        Overwrite existing outputs (otherwise a stack whose outputs exist is skipped).
    allow_gaps
        Resample series with missing slices onto a uniform grid instead of refusing them.
    keep_phi
        Write patient identity into the sidecars.
    level
        ISA-L gzip level (0-3) for ``.nii.gz``.
    threads
        Compression threads per file (1 in a process pool: the pool is the parallelism).
    max_bytes
        Memory budget (bytes) of a stack that must be loaded whole (tilt or gaps resampled);
        None: half the memory available. Other stacks are streamed slab by slab, whatever their size.
    sidecar
        Write the JSON sidecar.
    skip_existing
        Resume an interrupted batch: a stack whose outputs all exist is ``existing`` (done
        before, not an error); a stack with some outputs present gets only the missing ones
        written. Excludes ``force``.
    scaling
        ``"precise"``: Philips' measured floating-point values (as dcm2niix writes them);
        ``"display"``: DICOM's display values (:mod:`volume.dicom.scaling`).
    diffusion_files
        Write ``.bval``/``.bvec`` beside a diffusion stack (off where a layout forbids them, as BIDS
        does for anything but a ``dwi`` image).

    Examples
    --------
    >>> options = volume.ConvertOptions(format="nii", force=True)
    >>> [r.files for r in volume.convert_folder("ct", "nifti", options)]
    [('nifti/2_Phantom_head.nii', 'nifti/2_Phantom_head.json')]
    """

    format: str = "nii.gz"
    force: bool = False
    allow_gaps: bool = False
    keep_phi: bool = False
    level: int = DEFAULT_GZIP_LEVEL
    threads: int = 1
    max_bytes: int | None = None
    sidecar: bool = True
    skip_existing: bool = False
    scaling: str = "precise"
    diffusion_files: bool = True

    def __post_init__(self) -> None:
        if self.force and self.skip_existing:
            raise UsageError("--skip-existing and --force exclude each other (keep or overwrite existing outputs?)")
        if self.format not in FORMATS:
            raise UsageError(f"format must be one of {', '.join(FORMATS)}, got {self.format!r}")
        if self.scaling not in ("precise", "display"):
            raise UsageError(f"scaling must be precise or display, got {self.scaling!r}")
        if not 0 <= self.level <= 3:
            raise UsageError(f"gzip level must be 0-3 (ISA-L), got {self.level}")
        if self.threads < 1:
            raise UsageError(f"threads must be at least 1, got {self.threads}")

    @property
    def suffix(self) -> str:
        """File suffix of the images: ``.nii.gz`` or ``.nii``."""
        return "." + self.format


@dataclass(frozen=True)
class ConvertTask:
    """One stack and the file-name stem planned for it."""

    stack: Stack
    name: str


@dataclass(frozen=True)
class ConvertResult:
    """What happened to one stack. Picklable and JSON-friendly (:meth:`to_dict`).

    ``files`` lists the files written (image first); for a skipped stack, ``existing`` lists the
    outputs that were already there. ``exit_code`` is the code a single-series command would have
    returned (0 when converted).
    """

    stack_id: str
    name: str
    status: str
    files: tuple[str, ...] = ()
    existing: tuple[str, ...] = ()
    message: str = ""
    exit_code: int = 0
    warnings: tuple[str, ...] = ()
    seconds: float = 0.0
    series_number: int | None = None
    series_description: str = ""
    notes: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict (lists instead of tuples)."""
        d = asdict(self)
        for key in ("files", "existing", "warnings"):
            d[key] = list(d[key])
        return d


# --- names -----------------------------------------------------------------------------------


def stack_stem(stack: Stack) -> str:
    """The safe, un-deduplicated name stem of ``stack``: ``<number>_<description>[_<label>]``.

    Localizers get ``_localizer`` unless their description says it already (loc, scout, survey).
    Nothing from the header can add a path separator, ``..`` or a control character.
    """
    parts = [str(stack.series_number) if stack.series_number is not None else "series"]
    if stack.series_description:
        parts.append(safe_name(stack.series_description, fallback=""))
    if stack.label:
        parts.append(safe_name(stack.label, fallback=""))
    if stack.kind == "localizer" and not _LOCALIZER_WORDS.search(stack.series_description or ""):
        parts.append(LOCALIZER_SUFFIX)
    return safe_name("_".join(p for p in parts if p))


def plan_names(stacks: Sequence[Stack]) -> list[str]:
    """Unique stems for ``stacks`` in order: the second ``x`` becomes ``x_2`` (case-insensitively)."""
    return unique_names([stack_stem(s) for s in stacks])


def plan(stacks: Sequence[Stack], selected: Iterable[Stack] | None = None) -> list[ConvertTask]:
    """Name every stack of ``stacks`` (a whole scan), then keep the ``selected`` ones.

    Names are planned over all stacks so that converting one series with ``--series`` gives it the
    same name as converting the whole study.
    """
    names = plan_names(stacks)
    tasks = [ConvertTask(s, n) for s, n in zip(stacks, names, strict=True)]
    if selected is None:
        return tasks
    keep = {id(s) for s in selected}
    return [t for t in tasks if id(t.stack) in keep]


def output_paths(out_dir: str | os.PathLike[str], name: str, options: ConvertOptions) -> tuple[Path, Path]:
    """``(image, sidecar)`` paths of stem ``name`` in ``out_dir``; refuses names that leave it."""
    out = Path(out_dir)
    if name != safe_name(name) or "/" in name or os.sep in name:
        raise UsageError(f"{name!r}: not a safe output name")
    return out / f"{name}{options.suffix}", out / f"{name}.json"


def task_outputs(out_dir: str | os.PathLike[str], name: str, options: ConvertOptions, stack: Stack) -> list[Path]:
    """Every file converting ``stack`` as ``name`` writes, image first: the sidecar (unless
    ``options.sidecar`` is off), and ``.bval``/``.bvec`` for a diffusion stack."""
    image, sidecar = output_paths(out_dir, name, options)
    paths = [image] + ([sidecar] if options.sidecar else [])
    diffusion = stack.diffusion
    if diffusion is not None and options.diffusion_files:
        paths.extend(diffusion_paths(image, diffusion))
    return paths


# --- one stack ---------------------------------------------------------------------------------


def _earliest_time(stack: Stack) -> float | None:
    """Seconds since midnight of the stack's first acquired image (AcquisitionTime, else ContentTime)."""
    times = [f.acquisition_time for f in stack.frames if f.acquisition_time is not None]
    return min(times) if times else None


def _strip_series_prefix(message: str, stack_id: str) -> str:
    prefix = f"series {stack_id}: "
    return message[len(prefix):] if message.startswith(prefix) else message


def _notes(vol: Any) -> tuple[list[str], dict[str, Any]]:
    """Warnings to show and what loading did (tilt, gaps) from a Volume's meta."""
    meta = vol.meta
    warnings = [w for w in meta.get("warnings", ()) if not w.startswith(("tilt", "gap"))]
    notes: dict[str, Any] = {}
    tilt = meta.get("tilt_corrected_deg")
    if tilt:
        notes["tilt_corrected_deg"] = tilt
        warnings.append(f"gantry tilt {tilt:.1f}° corrected (resampled onto an orthogonal grid)")
    gaps = meta.get("gaps_resampled")
    if gaps:
        notes["gaps_resampled"] = dict(gaps)
        warnings.append(
            f"uneven slices resampled: {gaps['slices_in']} slices -> {gaps['slices_out']} "
            f"at {gaps['spacing_mm']:.3g} mm"
        )
    return warnings, notes


def _omitted(extra: dict[str, Any], diffusion: dict[str, Any] | None) -> list[str]:
    """Record in the sidecar's ``OmittedFields`` the values the files do not give (the bvec of a
    DWI whose directions are missing; SliceTiming, which :func:`sidecar_fields` leaves out with its
    reason); return the warnings not shown yet (the bvec's is the stack's own warning)."""
    omitted = dict(extra.get("OmittedFields") or {})
    shown = set(omitted)
    if diffusion is not None and diffusion.get("bvecs_lps") is None:
        omitted["bvec"] = diffusion["bvecs_missing"]
    if omitted:
        extra["OmittedFields"] = omitted
    return [f"{key} left out: {why}" for key, why in omitted.items() if key in shown]


def convert_stack(
    stack: Stack,
    out_dir: str | os.PathLike[str],
    options: ConvertOptions | None = None,
    *,
    name: str | None = None,
    progress: Callable[[int], None] | None = None,
    sidecar_extra: Mapping[str, Any] | None = None,
) -> ConvertResult:
    """Convert one stack to ``<out_dir>/<name>.nii[.gz]`` and ``<name>.json``.

    Parameters
    ----------
    stack
        A stack from :func:`volume.scan`.
    out_dir
        Output folder (created when missing).
    options
        :class:`ConvertOptions` (defaults: ``.nii.gz``, no overwrite).
    name
        The planned stem (:func:`plan`); defaults to :func:`stack_stem` (not deduplicated).
    progress
        Called with 1 per decoded image (not picklable: leave it out in worker processes).
    sidecar_extra
        Fields added to the sidecar last (``volume bids``: TaskName, field-map links); a None
        value removes the field.

    Returns
    -------
    ConvertResult
        ``converted`` with the files written; ``skipped`` when an output exists and not
        ``force`` (nothing is touched); ``failed`` with one message naming the series. Only
        ``KeyboardInterrupt``/``SystemExit`` propagate (no half-written files are left).

    Examples
    --------
    >>> stack = volume.scan("ct").stacks[0]
    >>> result = volume.convert_stack(stack, "nifti")
    >>> result.status, result.files
    ('converted', ('nifti/2_Phantom_head.nii.gz', 'nifti/2_Phantom_head.json'))
    """
    options = options or ConvertOptions()
    name = name or stack_stem(stack)
    start = time.perf_counter()
    base = dict(
        stack_id=stack.id,
        name=name,
        series_number=stack.series_number,
        series_description=stack.series_description,
    )

    def done(status: str, **kw: Any) -> ConvertResult:
        return ConvertResult(status=status, seconds=round(time.perf_counter() - start, 4), **base, **kw)

    written: list[str] = []
    try:
        image_path, json_path = output_paths(out_dir, name, options)
        wanted = task_outputs(out_dir, name, options, stack)
        found = check_outputs(wanted, force=options.force)  # the one rule (volume/jobs/existing.py)
        existing = list(found.present)
        if found.all and options.skip_existing:
            return done(EXISTING, existing=tuple(map(str, existing)), message="all outputs exist already")
        if found.any and not options.skip_existing:  # an image and its sidecar are one result
            return done(SKIPPED, existing=tuple(map(str, existing)), message=found.message(),
                        exit_code=EXIT_OUTPUT_EXISTS)
        if stack.problem:
            raise NotAVolumeError(stack.problem)
        source = DicomSource(stack, options.scaling)
        stack = source.stack  # its values scaled as the file is written (the sidecar reads them too)
        fields = sidecar_fields(stack)  # read once: the sidecar's keys and the NIfTI header's MR fields
        # the NIfTI's time step is the sidecar's RepetitionTime (functional groups, GE's delays, measured)
        source.frame_interval = fields.get("RepetitionTime")

        # streamed slab by slab unless tilt or gaps are resampled; with skip_existing only missing outputs are written
        vol = convert_image(
            source, image_path if image_path not in existing else None, allow_gaps=options.allow_gaps,
            max_bytes=options.max_bytes, force=options.force, level=options.level, threads=options.threads,
            rescale=source.values.rescale, description=f"volume {__version__}", progress=progress,
            acquisition=acquisition_header(fields, source.shape[-3]),
        )
        warnings, notes = _notes(vol)
        if image_path not in existing:
            written.append(str(image_path))
        diffusion = vol.meta.get("diffusion")
        if diffusion is not None and options.diffusion_files:
            missing = [p for p in diffusion_paths(image_path, diffusion) if p not in existing]
            written.extend(map(str, write_bval_bvec(diffusion, vol.affine, image_path, force=options.force,
                                                    which=missing)))
        if options.sidecar and json_path not in existing:
            first = _earliest_time(stack)
            has_time = bool((vol.meta.get("acquisition") or {}).get("AcquisitionTime"))
            extra = {"AcquisitionTime": seconds_text(first)} if first is not None and has_time else {}
            extra.update(fields)
            warnings.extend(_omitted(extra, diffusion))
            if stack.frame_order:
                extra["VolumesOrderedBy"] = stack.frame_order
            extra.update(sidecar_extra or {})
            write_sidecar(vol, json_path, force=options.force, keep_phi=options.keep_phi, extra=extra)
            written.append(str(json_path))
        return done(CONVERTED, files=tuple(written), existing=tuple(map(str, existing)), warnings=tuple(warnings),
                    notes=notes)
    except OutputExistsError as exc:  # another process created it meanwhile
        return done(SKIPPED, files=tuple(written), existing=(), message=str(exc), exit_code=exc.exit_code)
    except VolumeError as exc:
        return done(FAILED, files=tuple(written), message=_strip_series_prefix(str(exc), stack.id),
                    exit_code=exc.exit_code)
    except MemoryError:
        return done(FAILED, files=tuple(written), exit_code=EXIT_INTERNAL,
                    message="out of memory; convert this series on a machine with more memory")
    except OSError as exc:
        lifecycle.raise_if_stopping(exc)
        return done(FAILED, files=tuple(written), exit_code=EXIT_PARTIAL, message=_os_error_message(exc, out_dir))
    except Exception as exc:  # noqa: BLE001 - a bug on one series must not stop the others
        lifecycle.raise_if_stopping(exc)
        first = str(exc).splitlines()[0][:300] if str(exc) else ""
        return done(FAILED, files=tuple(written), exit_code=EXIT_INTERNAL,
                    message=f"internal error: {type(exc).__name__}: {first} (a bug: please report it)")


def _os_error_message(exc: OSError, out_dir: str | os.PathLike[str]) -> str:
    """What failed, named: an output that cannot be written, or an input that cannot be read any more
    (a file of the series deleted or moved since the scan)."""
    what = exc.strerror or str(exc)
    name = os.fspath(exc.filename) if exc.filename is not None else None
    if name is not None and not _is_under(name, out_dir):
        return f"cannot read {name}: {what} (was it moved or deleted during the run?)"
    return f"cannot write {name or os.fspath(out_dir)}: {what}"


def _is_under(path: str, folder: str | os.PathLike[str]) -> bool:
    """Whether ``path`` lies in ``folder`` (or is it)."""
    try:
        return os.path.commonpath([os.path.abspath(path), os.path.abspath(folder)]) == os.path.abspath(folder)
    except ValueError:  # different drives
        return False


# --- many stacks --------------------------------------------------------------------------------


def select_tasks(found: Any, series: str | int | None = None) -> list[ConvertTask]:
    """Plan names over every stack of a :class:`~volume.dicom.Scan`, keep those ``series`` selects.

    Raises
    ------
    NoDicomError
        The scan found no image.
    UsageError
        ``series`` matches no stack (the message lists what is there).
    """
    stacks = found.stacks
    if not stacks:
        where = ", ".join(found.paths)
        raise NoDicomError(f"{where}: no DICOM images found" + (f" ({found.skipped})" if found.skipped else ""))
    if series is None:
        return plan(stacks)
    chosen = found.select(series)
    if not chosen:
        ids = ", ".join(s.id for s in stacks[:20]) + (", ..." if len(stacks) > 20 else "")
        raise UsageError(f"no series matches {str(series)!r}; available: {ids} (see `volume ls`)")
    return plan(stacks, chosen)


def run_tasks(
    tasks: Sequence[ConvertTask],
    out_dir: str | os.PathLike[str],
    options: ConvertOptions | None = None,
    *,
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
    on_result: Callable[[ConvertResult], None] | None = None,
) -> list[ConvertResult]:
    """Run :func:`convert_stack` over ``tasks``: in this process (``workers=1``, in order) or
    over a process pool (results in the order they complete; see :func:`iter_results`).

    ``progress`` gets 1 per decoded image (in a pool: a stack's images when it is done),
    ``on_result`` each result as soon as it is known (to print as we go).
    """
    results = []
    for result in iter_results(tasks, out_dir, options, workers=workers, progress=progress):
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results


CONVERTING = "converting"
"""The label of a batch's progress (images decoded)."""

MAX_AUTO_THREADS = 4
"""Compression threads ``threads=0`` gives a series converted in this process: ISA-L saturates the
disk beyond."""


@dataclass
class ConvertBatch:
    """A batch as it ran: its tasks, the results in the order they came, and how it ended.

    ``interrupted`` says a stop (Ctrl-C, SIGTERM) ended it early: the results are those of the
    series finished by then (whole files only).
    """

    tasks: list[ConvertTask]
    results: list[ConvertResult]
    options: ConvertOptions
    output: Path
    started: float
    finished: float = 0.0
    interrupted: bool = False
    workers: int = 1
    scheduler: str | None = None
    series: str | None = None
    files_scanned: int | None = None

    def exit_code(self) -> int:
        """130 when interrupted (the command line says which signal), else :func:`exit_code`."""
        return EXIT_INTERRUPTED if self.interrupted else exit_code(self.results)

    def report(self) -> dict[str, Any]:
        """The ``--report`` document of the batch (:func:`batch_report`)."""
        return batch_report(self.results, self.tasks, self.options, output=self.output, started=self.started,
                            finished=self.finished, interrupted=self.interrupted, workers=self.workers,
                            scheduler=self.scheduler, series=self.series, files_scanned=self.files_scanned)

    def not_run(self) -> int:
        """Series of the batch without a result (a stopped batch)."""
        return len(self.tasks) - len(self.results)


def announce(result: ConvertResult, events: Events) -> None:
    """What a result says as it comes: its files (written), its warnings, why it was skipped or failed."""
    where = f"series {result.stack_id}"
    if result.status in (CONVERTED, FAILED):  # a failed one may have written its image, not its sidecar
        for f in result.files:
            events.written(Path(f))
    if result.status == CONVERTED:
        for w in result.warnings:
            events.warn(f"{where}: {w}")
    elif result.status == SKIPPED:
        events.status(f"{where}: skipped, {result.message}")
    elif result.status == FAILED:
        events.status(f"{where}: failed: {result.message}")


def _local_options(options: ConvertOptions, threads: int | None, n_workers: int, on_cluster: bool) -> ConvertOptions:
    """``options`` for where the series run: ``threads`` 0 is up to :data:`MAX_AUTO_THREADS` in this
    process, 1 per worker in a pool or a cluster (the workers are the parallelism); the workers
    of a pool share this machine's memory budget."""
    parallel = on_cluster or n_workers > 1
    if threads is not None:
        auto = 1 if parallel else max(1, min(MAX_AUTO_THREADS, os.cpu_count() or 1))
        options = replace(options, threads=threads or auto)
    if n_workers > 1 and options.max_bytes is None:
        options = replace(options, max_bytes=max(1, memory_budget() // n_workers))
    return options


def _check_report(report: Path, tasks: Sequence[ConvertTask], out_dir: Path, options: ConvertOptions) -> None:
    """Refuse, before any work, a report path that one of the planned outputs would take."""
    target = os.path.abspath(report)
    for task in tasks:
        if target in (os.path.abspath(p) for p in task_outputs(out_dir, task.name, options, task.stack)):
            raise UsageError(f"{report}: series {task.stack.id} writes its output there; put the report elsewhere")


def _stop(stream: Any, on_result: Callable[[ConvertResult], None]) -> list[ConvertResult]:
    """After Ctrl-C: when it reached us between two results rather than inside ``stream``, hand
    the interrupt to ``stream`` so it stops its workers; collect the results it still yields (a
    cluster's tasks that finished their file meanwhile)."""
    more: list[ConvertResult] = []
    if getattr(stream, "gi_frame", None) is None:  # the generator stopped itself already
        return more
    try:
        result = stream.throw(KeyboardInterrupt)
        while True:
            more.append(result)
            on_result(result)
            result = next(stream)
    except (KeyboardInterrupt, StopIteration):
        pass
    return more


def _run(batch: ConvertBatch, client: Any, on_result: Callable[[ConvertResult], None], events: Events) -> None:
    """The batch's tasks in this process, a pool or a cluster; a stop collects what finished."""
    total = sum(len(t.stack.frames) for t in batch.tasks)
    with events.progress(CONVERTING, total) as advance:
        if client is not None:
            from . import cluster  # the dask extra's job: imported for a scheduler only (docs/design.md)

            stream = cluster.iter_results(batch.tasks, batch.output, batch.options, client, progress=advance)
        else:
            stream = iter_results(batch.tasks, batch.output, batch.options, workers=batch.workers, progress=advance)
        try:
            for result in stream:
                batch.results.append(result)
                on_result(result)
        except KeyboardInterrupt:
            batch.interrupted = True
            batch.results.extend(_stop(stream, on_result))


def _connect(scheduler: str, events: Events) -> Any:
    from . import cluster  # the dask extra's job: imported for a scheduler only (docs/design.md)

    client = cluster.connect(scheduler)  # fails in a few seconds, before the scan
    if cluster.n_workers(client) == 0:
        events.warn(f"the dask cluster at {scheduler} has no workers yet: the series wait until one joins")
    return client


def _close(client: Any) -> None:
    from . import cluster

    cluster.close(client, stopping=lifecycle.stop_signal() is not None)


def _announcing(events: Events, on_result: Callable[[ConvertResult], None] | None) -> Callable[[ConvertResult], None]:
    """What to do with each result: say it (:func:`announce`), then hand it to ``on_result``."""
    def each(result: ConvertResult) -> None:
        announce(result, events)
        if on_result is not None:
            on_result(result)

    return each


def _check_request(output: Path, options: ConvertOptions, *, workers: int | None, scheduler: str | None,
                   report: str | os.PathLike[str] | None) -> None:
    """Refuse, before any work, an output that is not a folder, a pool with a cluster, and a report
    that exists (a resumed run, ``skip_existing``, replaces its own report)."""
    if output.exists() and not output.is_dir():
        raise UsageError(f"{output}: exists and is not a folder; -o takes a folder")
    if scheduler is not None and workers is not None:
        raise UsageError("--workers is for the local pool; with --scheduler the cluster's workers run the series")
    if report is not None:
        check_report(report, force=options.force or options.skip_existing)


def run_batch(
    path: Any,
    out_dir: str | os.PathLike[str],
    options: ConvertOptions | None = None,
    *,
    series: str | int | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    threads: int | None = None,
    report: str | os.PathLike[str] | None = None,
    single_file: bool = False,
    events: Events = QUIET,
    on_result: Callable[[ConvertResult], None] | None = None,
) -> ConvertBatch:
    """Convert every stack under ``path``: the one orchestration of ``volume convert`` and of
    :func:`convert` (in this process, a process pool or a dask cluster; the report; a stop).

    Parameters
    ----------
    path
        A folder, a file (it stands for its series unless ``single_file``), or a
        :class:`~volume.dicom.Scan`.
    out_dir
        The output folder (created when missing).
    options
        :class:`ConvertOptions`.
    series
        Which stacks (as :func:`volume.load` takes it); default: all.
    workers
        Worker processes (None: all cores when there are several series of
        :data:`POOL_MIN_BYTES` in all, else this process). Not with ``scheduler``.
    scheduler
        A dask.distributed scheduler (``tcp://host:8786``) whose workers convert the series.
    threads
        Compression threads per file, replacing ``options.threads``: 0 is up to
        :data:`MAX_AUTO_THREADS` in this process, 1 in a pool or a cluster.
    report
        Write the JSON report there (refused before any work when it exists, unless ``force``
        or ``skip_existing``, or when a series writes there).
    single_file
        Take a file ``path`` literally: that image alone.
    events
        Where warnings, status lines, written files and progress go.
    on_result
        Called with each result as soon as it is known.

    Returns
    -------
    ConvertBatch
        The tasks, the results, whether a stop ended the batch early.

    Raises
    ------
    UsageError
        A bad combination (``workers`` with ``scheduler``), an output that is not a folder, a report
        path that exists or is an output, no stack matching ``series``.
    NoDicomError
        Nothing to convert.
    """
    options = options or ConvertOptions()
    output = Path(out_dir)
    _check_request(output, options, workers=workers, scheduler=scheduler, report=report)
    client = _connect(scheduler, events) if scheduler is not None else None
    try:
        batch = _plan_batch(path, output, options, series=series, workers=workers, scheduler=scheduler,
                            threads=threads, single_file=single_file, events=events, on_cluster=client is not None)
        if report is not None:
            _check_report(Path(report), batch.tasks, output, batch.options)
        _run(batch, client, _announcing(events, on_result), events)
        batch.finished = time.time()
    finally:
        if client is not None:
            _close(client)
    if report is not None:
        write_report(report, batch.report(), force=options.force or options.skip_existing)
    return batch


def _plan_batch(path: Any, output: Path, options: ConvertOptions, *, series: str | int | None, workers: int | None,
                scheduler: str | None, threads: int | None, single_file: bool, events: Events,
                on_cluster: bool) -> ConvertBatch:
    """The scan (a cluster's workers read the files by absolute path), the tasks, where they run."""
    started = time.time()
    if isinstance(path, Scan):
        found = path
    else:
        source = Path(os.path.abspath(path)) if on_cluster else Path(path)
        found, series = read_input(source, series, verb="converting",
                                   single_file=single_file, alone="--single-file converts this image alone",
                                   events=events)
    tasks = select_tasks(found, series)
    n_workers = 1 if on_cluster else auto_workers(tasks, workers, compressed=options.format == "nii.gz")
    return ConvertBatch(tasks, [], _local_options(options, threads, n_workers, on_cluster), output, started,
                        workers=n_workers, scheduler=scheduler, series=None if series is None else str(series),
                        files_scanned=found.report.n_files)


def _counting(progress: Callable[[int], None] | None) -> Events:
    """Events that hand the images a batch converts to ``progress`` (and say nothing else)."""
    @contextlib.contextmanager
    def bar(label: str, total: int | None) -> Iterator[Callable[[int], None]]:
        yield progress if progress is not None and label == CONVERTING else (lambda n=1: None)

    return Events(progress=bar)


def convert(
    path: Any,
    out_dir: str | os.PathLike[str],
    options: ConvertOptions | None = None,
    *,
    series: str | int | None = None,
    progress: Callable[[int], None] | None = None,
    on_result: Callable[[ConvertResult], None] | None = None,
    workers: int | None = 1,
    scheduler: str | None = None,
    report: str | os.PathLike[str] | None = None,
    single_file: bool = False,
) -> list[ConvertResult]:
    """Convert every stack under ``path`` (``volume convert``'s job, :func:`run_batch`).

    Parameters
    ----------
    path
        A folder, a file (it stands for its series when more images of it are beside it, unless
        ``single_file``), or a :class:`~volume.dicom.Scan`.
    out_dir
        The output folder (created when missing).
    options
        :class:`ConvertOptions` (default: ``.nii.gz`` with sidecars, existing outputs kept).
    series
        Which stacks (as :func:`volume.load` takes it); default: all.
    progress
        Called with the number of images decoded, as they are.
    on_result
        Called with each :class:`ConvertResult` as soon as it is known.
    workers
        Worker processes: 1 (default) converts in this process, None chooses as ``volume convert``
        does (all cores for several big series).
    scheduler
        A dask.distributed scheduler address: its workers convert the series.
    report
        Write the JSON report of the batch there.
    single_file
        Take a file ``path`` literally: that image alone.

    Returns
    -------
    list of ConvertResult
        One per stack, in the order they finished.

    Raises
    ------
    UsageError, NoDicomError
        As :func:`run_batch`.
    KeyboardInterrupt
        After a stop (Ctrl-C): the series finished by then are whole, the report is written.

    Examples
    --------
    >>> results = volume.convert_folder("ct", "nifti")
    >>> [r.files for r in results if r.status == "converted"]
    [('nifti/2_Phantom_head.nii.gz', 'nifti/2_Phantom_head.json')]
    """
    batch = run_batch(path, out_dir, options, series=series, workers=workers, scheduler=scheduler, report=report,
                      single_file=single_file, events=_counting(progress), on_result=on_result)
    if batch.interrupted:
        raise KeyboardInterrupt
    return batch.results


def exit_code(results: Sequence[ConvertResult]) -> int:
    """The exit code of a batch.

    ``1`` when any stack failed (the others were still converted); ``5`` when nothing was
    written because every output existed already (``--force`` overwrites); ``0`` otherwise,
    including runs where some outputs existed and the rest were converted, and resumed runs
    (``skip_existing``) where every stack was done before.
    """
    return tally(results).exit_code()


def tally(results: Sequence[ConvertResult]) -> Tally:
    """The batch's counts as every job counts them (:class:`volume.jobs.existing.Tally`): a
    ``skipped`` stack is one whose outputs existed; ``already done`` ones (``skip_existing``) are
    neither done now nor skipped."""
    counts = Tally(CONVERTED, done=sum(r.status == CONVERTED for r in results),
                   failed=sum(r.status == FAILED for r in results))
    for _ in (r for r in results if r.status == SKIPPED):
        counts.skip_existing()
    return counts


def summary(results: Sequence[ConvertResult]) -> str:
    """``converted 3, skipped 1, failed 0`` (counts of stacks), then ``, already done 2`` when a
    resumed run (``skip_existing``) found stacks whose outputs all existed."""
    text = tally(results).line()
    done = sum(r.status == EXISTING for r in results)
    return f"{text}, already done {done}" if done else text


# --- batches: a process pool, worker crashes, reports ------------------------------------------

POOL_MIN_BYTES = 8 * 2**20
"""Below this many bytes of images to compress or decode, ``auto_workers`` converts in this
process: starting a pool of workers costs more than converting a few small series. Images stored
uncompressed and written uncompressed (``--format nii``) do not count: their conversion is mostly
copying, and a pool of 2 took 8-15% more CPU to save 8% of the wall time (a 4,692-file MR session
and a 40-series tree; with ``.nii.gz`` the pool saved 14% for 4% more CPU: docs/benchmarks.md)."""

CRASH_MESSAGE = "the worker process died converting this series (a crash in a decoder, or out of memory)"
"""The message of a stack whose worker process was killed (twice: once in the pool, once alone)."""


def stack_bytes(stack: Stack) -> int:
    """Bytes of the stored images of ``stack``, from its headers (no pixel read)."""
    total = 0
    for f in stack.frames:
        total += f.rows * f.cols * max(1, f.samples) * max(1, f.bits_allocated // 8)
    return total


def _decoded(stack: Stack) -> bool:
    """Whether ``stack``'s images need decoding (a compressed transfer syntax, a gzip file)."""
    return any(f.transfer_syntax not in NATIVE_SYNTAXES or f.file_compression for f in stack.frames)


def auto_workers(tasks: Sequence[ConvertTask], workers: int | None = None, *, compressed: bool = True) -> int:
    """Worker processes for ``tasks``: ``workers`` (at most one per task) when given; otherwise
    all cores when there are several stacks and at least :data:`POOL_MIN_BYTES` of images to
    compress (``compressed``: the output is gzipped) or to decode, else 1 (this process); always
    1 inside a daemonic worker process, which may not start children."""
    if in_daemon_process():
        return 1
    if workers is not None:
        return max(1, min(workers, len(tasks)))
    if len(tasks) < 2:
        return 1
    work = sum(stack_bytes(t.stack) for t in tasks if compressed or _decoded(t.stack))
    if work < POOL_MIN_BYTES:
        return 1

    return max(1, min(default_workers(), len(tasks)))


def convert_task(task: ConvertTask, out_dir: str, options: ConvertOptions) -> ConvertResult:
    """:func:`convert_stack` of one planned task (picklable: what pool workers run)."""
    return convert_stack(task.stack, out_dir, options, name=task.name)


RETRY_MTIME_SLACK_S = 0.1
"""File times come from a coarse clock: outputs this much older than the batch start still count as its own."""


def retry_task(task: ConvertTask, out_dir: str, options: ConvertOptions, since: float) -> ConvertResult:
    """Rerun a task whose result was lost with a broken pool: outputs it wrote before (newer than
    ``since``, the batch start) are reported as written by it, not as existing."""
    if options.force:
        return convert_task(task, out_dir, options)
    wanted = task_outputs(out_dir, task.name, options, task.stack)
    before = [p for p in wanted if p.exists() and p.stat().st_mtime < since - RETRY_MTIME_SLACK_S]
    if before and not options.skip_existing:  # the first attempt was skipped without writing
        return convert_task(task, out_dir, options)
    result = convert_stack(task.stack, out_dir, replace(options, skip_existing=True), name=task.name)
    old = {str(p) for p in before}
    fresh = tuple(p for p in result.existing if p not in old)
    if not fresh or result.status not in (CONVERTED, EXISTING):
        return result
    files = tuple(str(p) for p in wanted if str(p) in fresh or str(p) in result.files)
    return replace(result, status=CONVERTED, files=files, existing=tuple(p for p in result.existing if p in old),
                   message="")


def failed_result(task: ConvertTask, message: str, exit_code: int = EXIT_PARTIAL) -> ConvertResult:
    """The failed result of a task that did not run to its end (nothing of it written)."""
    stack = task.stack
    return ConvertResult(
        stack_id=stack.id, name=task.name, status=FAILED, message=message, exit_code=exit_code,
        series_number=stack.series_number, series_description=stack.series_description,
    )


def crashed_result(task: ConvertTask) -> ConvertResult:
    """The failed result of a task whose worker process died."""
    return failed_result(task, CRASH_MESSAGE, EXIT_INTERNAL)


def temp_files(out_dir: str | os.PathLike[str]) -> set[str]:
    """Names of ``atomic_output`` temporary files in ``out_dir``."""
    try:
        return {e.name for e in os.scandir(out_dir) if e.name.startswith(TEMP_PREFIX)}
    except OSError:
        return set()


def remove_leftovers(out_dir: str | os.PathLike[str], before: set[str]) -> None:
    """Remove the temporary files that appeared in ``out_dir`` since ``before`` (:func:`temp_files`).
    Call it only when no worker of this batch runs: they are what dead workers left."""
    for name in temp_files(out_dir) - before:
        try:
            os.unlink(os.path.join(out_dir, name))
        except OSError:
            pass


def iter_results(
    tasks: Sequence[ConvertTask],
    out_dir: str | os.PathLike[str],
    options: ConvertOptions | None = None,
    *,
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
) -> Iterator[ConvertResult]:
    """Yield the :class:`ConvertResult` of each task as soon as it is known.

    ``workers=1`` converts in this process, in order, ``progress`` getting 1 per decoded image.
    More workers convert one stack per task over a process pool
    (:func:`volume.parallel.pool.unordered_map`): results come in the order they complete, ``progress``
    gets a stack's images when it is done. A worker that dies (segfault, out-of-memory killer)
    makes its stack one failed result (:data:`CRASH_MESSAGE`) and removes the temporary file it
    left; the others go on. Ctrl-C (``KeyboardInterrupt`` while waiting) stops the workers, whose
    temporary files are removed, and propagates; results already yielded are whole files.
    """
    options = options or ConvertOptions()
    if workers <= 1:
        started = time.time()
        for task in tasks:
            counted = 0

            def tick(n: int = 1) -> None:
                nonlocal counted
                counted += n
                if progress is not None:
                    progress(n)

            try:
                result = convert_stack(task.stack, out_dir, options, name=task.name, progress=tick)
            except KeyboardInterrupt:  # between a series' image and its sidecar: report the image
                yield from _written_meanwhile([task], set(), out_dir, options, started)
                raise
            rest = len(task.stack.frames) - counted
            if progress is not None and rest > 0:
                progress(rest)
            yield result
        return

    before = temp_files(out_dir)
    since = time.time()

    fn = partial(convert_task, out_dir=os.fspath(out_dir), options=options)
    retry = partial(retry_task, out_dir=os.fspath(out_dir), options=options, since=since)
    mapped = unordered_map(fn, tasks, workers=workers, in_flight=workers + 1, on_crash=crashed_result,
                           on_broken=partial(remove_leftovers, out_dir, before), retry_fn=retry)
    reported: set[int] = set()
    try:
        for i, result in mapped:
            reported.add(i)
            if progress is not None:
                progress(len(tasks[i].stack.frames))
            yield result
    except KeyboardInterrupt:
        mapped.close()  # workers stopped: their temporary files are gone
        sweep(out_dir, again=True)  # and what a worker killed before it could unwind left
        yield from _written_meanwhile(tasks, reported, out_dir, options, since)
        raise
    finally:
        mapped.close()  # stops the workers now, whatever stopped us (Ctrl-C, the caller closing us)


def _written_meanwhile(tasks: Sequence[ConvertTask], reported: set[int], out_dir: str | os.PathLike[str],
                       options: ConvertOptions, since: float) -> Iterator[ConvertResult]:
    """After stopping the workers: results for the outputs of unreported tasks that this run wrote
    (a worker stopped between a series' image and its sidecar, or before its result came back)."""
    for i, task in enumerate(tasks):
        if i in reported:
            continue
        wanted = task_outputs(out_dir, task.name, options, task.stack)
        fresh = []
        for path in wanted:
            try:
                if path.stat().st_mtime >= since - RETRY_MTIME_SLACK_S:
                    fresh.append(str(path))
            except OSError:
                pass
        if not fresh:
            continue
        stack = task.stack
        base = dict(stack_id=stack.id, name=task.name, series_number=stack.series_number,
                    series_description=stack.series_description, files=tuple(fresh))
        if len(fresh) == len(wanted):
            yield ConvertResult(status=CONVERTED, **base)
        else:
            yield ConvertResult(status=FAILED, exit_code=EXIT_INTERRUPTED, **base,
                                message="interrupted after its image was written; --skip-existing writes the rest")


REPORT_FORMAT = 1
"""Version of the ``--report`` JSON layout (bumped when a field changes meaning)."""


def _json_safe(value: Any) -> Any:
    """numpy scalars and other stragglers as plain JSON values."""
    item = getattr(value, "item", None)
    if callable(item):
        return item()
    return str(value)


def batch_report(
    results: Sequence[ConvertResult],
    tasks: Sequence[ConvertTask],
    options: ConvertOptions,
    *,
    output: str | os.PathLike[str],
    started: float,
    finished: float,
    interrupted: bool = False,
    workers: int = 1,
    scheduler: str | None = None,
    series: str | None = None,
    files_scanned: int | None = None,
) -> dict[str, Any]:
    """The ``--report`` document: one entry per stack with an outcome, stacks not run, totals.

    ``started``/``finished`` are epoch seconds (written as UTC ISO 8601). No patient identity: stacks
    are named by id, number and description (as the output files are); the input path is left
    out (the folders of PACS exports are often named after patients).
    """
    def iso(t: float) -> str:
        return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")

    order = {t.stack.id: k for k, t in enumerate(tasks)}
    ordered = sorted(results, key=lambda r: order.get(r.stack_id, len(order)))
    entries = []
    for r in ordered:
        d = r.to_dict()
        message = d.pop("message")
        d["error"] = message if r.status in (FAILED, SKIPPED) else ""
        entries.append(d)
    seen = {r.stack_id for r in results}
    not_run = [{"stack_id": t.stack.id, "name": t.name} for t in tasks if t.stack.id not in seen]
    counts = {s: sum(r.status == s for r in results) for s in (CONVERTED, SKIPPED, FAILED, EXISTING)}
    return {
        "report_format": REPORT_FORMAT,
        "software": "volume",
        "version": __version__,
        "started": iso(started),
        "finished": iso(finished),
        "seconds": round(finished - started, 3),
        "interrupted": interrupted,
        "exit_code": EXIT_INTERRUPTED if interrupted else exit_code(results),
        "output": os.fspath(output),
        "options": {
            "format": options.format, "force": options.force, "skip_existing": options.skip_existing,
            "scaling": options.scaling,
            "allow_gaps": options.allow_gaps, "keep_phi": options.keep_phi, "sidecar": options.sidecar,
            "gzip_level": options.level, "threads": options.threads, "max_bytes": options.max_bytes,
            "workers": workers, "scheduler": scheduler,
            # the stacks a --series selector chose, not the selector (it may be a UID)
            "series": None if series is None else [t.stack.id for t in tasks],
        },
        "totals": {
            "stacks": len(tasks), **counts, "not_run": len(not_run),
            "files_written": sum(len(r.files) for r in results),
            "images": sum(len(t.stack.frames) for t in tasks if t.stack.id in seen),
            "files_scanned": files_scanned,
        },
        "series": entries,
        "not_run": not_run,
    }


def check_report(path: str | os.PathLike[str], *, force: bool = False) -> Path:
    """Refuse a report path up front, before any work (:class:`OutputExistsError` when it exists)."""
    return check_writable(path, force=force)


def write_report(path: str | os.PathLike[str], report: dict[str, Any], *, force: bool = False) -> Path:
    """Write ``report`` as indented JSON, atomically (:func:`volume.io.atomic.atomic_output`)."""
    text = json.dumps(report, indent=2, ensure_ascii=False, default=_json_safe) + "\n"
    with atomic_output(path, force=force) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)

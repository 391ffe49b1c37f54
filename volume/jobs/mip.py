"""Projections of every stack under a path, written as pictures, NIfTI or DICOM: ``volume mip``'s
job, and :func:`volume.mip_folder`'s.

The stacks to project are chosen (every volume or 4D stack, or the ``series`` asked for), each
one's outputs named before a voxel is read (a re-run skips what exists:
:mod:`volume.jobs.existing`), projected streaming from disk when it can (one chunk of slices at a
time), and written. A stack that fails is reported and the batch goes on; with one stack its
error is raised.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..choices import PROJECTION_MODES
from ..conventions import PLANES, plane_name
from ..dicom.loader import Scan, no_match_message
from ..dicom.pixels import DEFAULT_MAX_BYTES
from ..dicom.series import Stack, stack_choice
from ..dicom.source import DicomSource
from ..display import display_picture, display_volume, edge_labels
from ..errors import NoDicomError, NotAVolumeError, UsageError, VolumeError
from ..io import formats
from ..io.image import Picture, colormap_lut, write_picture, write_sheet
from ..io.names import safe_name, unique_names
from ..io.outputs import FOLDER, output_kind
from ..ops.projection import can_stream, chunk_bytes, project, project_stack_planes, projection_layout
from ..ops.window import WindowRequest, is_constant, resolve_window
from ..volume import Volume
from .events import QUIET, Events
from .existing import Tally, check_outputs
from .inputs import read_input

MODE_TAGS = {"max": "mip", "min": "minip", "mean": "meanip"}
"""File-name tag of each mode: ``<series>_mip_coronal.png``, ``_minip_``, ``_meanip_``."""

MODE_NAMES = {"max": "maximum", "min": "minimum", "mean": "mean"}
"""How messages name each mode."""

OBLIQUE_WARN_DEG = 10.0
"""Warn when the projected volume axis is further than this from the plane's normal (and no ``resample``)."""

PROJECTABLE_KINDS = ("volume", "4D")
"""Stack kinds projected when no ``series`` is given (localizers and 2D sets are skipped)."""

OUTPUT_FORMATS = formats.kinds("mip")
"""Every file the output can name, by extension, and what is written (:mod:`volume.io.formats`,
the one registry). Any other file extension is a usage error listing these; a name without one is
a folder."""

SLAB_NUMBER_WIDTH = 3
"""Fewest digits of the slab number in picture names (``..._mip_coronal_001.png``), counted from 1."""

WINDOW_SAMPLE = 2_000_000
"""At most this many projection values (a regular subsample) decide an automatic window."""

LISTED_STACKS = 12
"""Stacks a message lists one by one."""


def planes_of(plane: str = "coronal", planes: str | None = None) -> tuple[str, ...]:
    """The planes asked for: ``plane``, or ``planes``: ``all`` or a comma list (``--planes``)."""
    if planes is None:
        return (plane_name(plane),)
    text = planes.strip().lower()
    if text == "all":
        return tuple(PLANES)
    chosen = [p.strip() for p in text.split(",") if p.strip()]
    try:
        names = [plane_name(p) for p in chosen]
    except UsageError:
        names = []
    if not names:
        raise UsageError(f"--planes takes 'all' or a comma list of {', '.join(PLANES)}; got {planes!r}")
    return tuple(dict.fromkeys(names))


@dataclass(frozen=True)
class MipOptions:
    """How to project and draw: what ``volume mip`` takes besides its path and output.

    Attributes
    ----------
    planes
        Anatomical planes: one (a picture, a NIfTI or a DICOM file per stack) or several (a
        sheet of pictures side by side).
    mode
        ``max`` (MIP), ``min`` (MinIP) or ``mean``.
    slab_mm, step_mm
        Thick slabs of ``slab_mm`` mm, their starts ``step_mm`` apart (default: ``slab_mm``).
    window, preset
        The display window (``"40,400"``, a preset name, ``dicom`` or ``auto``) or a preset
        (:func:`volume.ops.window.resolve_window`); default: the series' window for CT, else auto.
    cmap
        A colour map of the pictures (:data:`volume.io.image.COLORMAPS`).
    resample
        Reslice onto the patient-aligned grid first (exact planes for oblique series).
    labels
        Orientation letters and a scale bar on pictures.
    allow_gaps
        Resample series with missing slices instead of refusing them.
    force
        Overwrite existing outputs.
    keep_phi
        A DICOM output keeps the source's patient and study identity.
    max_bytes
        Refuse a series whose pixels need more memory than this (None: the default limit).

    Raises
    ------
    UsageError
        An unknown plane, mode, colour map, window or preset; a slab or step that is not a
        positive number of mm; a step without a slab; slabs of several planes.

    Examples
    --------
    >>> options = volume.MipOptions(planes=("axial", "coronal", "sagittal"), mode="max")
    >>> [str(f) for f in volume.mip_folder("ct", "mips", options).files]  # the three side by side
    ['mips/2_Phantom_head_mip_sheet.png']
    """

    planes: tuple[str, ...] = ("coronal",)
    mode: str = "max"
    slab_mm: float | None = None
    step_mm: float | None = None
    window: str | None = None
    preset: str | None = None
    cmap: str | None = None
    resample: bool = False
    labels: bool = True
    allow_gaps: bool = False
    force: bool = False
    keep_phi: bool = False
    max_bytes: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "planes", tuple(dict.fromkeys(plane_name(p) for p in self.planes)))
        if not self.planes:
            raise UsageError("a projection needs a plane")
        if self.mode not in PROJECTION_MODES:
            raise UsageError(f"unknown mode {self.mode!r}; choose one of {', '.join(PROJECTION_MODES)}")
        resolve_window(self.window, self.preset)  # a bad window or preset is refused before any work
        if self.cmap is not None:
            try:
                colormap_lut(self.cmap)
            except ValueError as exc:
                raise UsageError(str(exc)) from None
        if self.step_mm is not None and self.slab_mm is None:
            raise UsageError("--step needs --slab (the slab thickness in mm)")
        for name, value in (("--slab", self.slab_mm), ("--step", self.step_mm)):
            if value is not None and not value > 0:
                raise UsageError(f"{name} must be a positive number of mm, got {value}")
        if len(self.planes) > 1 and self.slab_mm is not None:
            raise UsageError("--slab works on one plane at a time; drop --planes or --slab")

    @property
    def tag(self) -> str:
        """What output names say: ``mip_coronal``, ``minip_sheet``."""
        return f"{MODE_TAGS[self.mode]}_{'sheet' if len(self.planes) > 1 else self.planes[0]}"


@dataclass(frozen=True)
class Target:
    """Where the output goes: a ``kind`` (picture, nifti, dicom, folder) and a path (None: here)."""

    kind: str
    path: Path | None

    @property
    def single(self) -> bool:
        """One file for one stack."""
        return self.kind != FOLDER


def target_of(out: str | os.PathLike[str] | None, options: MipOptions) -> Target:
    """What ``out`` asks for (:func:`volume.io.outputs.output_kind`), checked against ``options``."""
    if out is None:
        return Target(FOLDER, None)
    kind, path = output_kind(out, OUTPUT_FORMATS)
    if kind == "animation":
        raise UsageError(f"{out}: a {path.suffix} is a rotating projection: add --turntable N (or write "
                         f"{formats.help_list('mip', 'picture')})")
    if kind == "picture" and options.slab_mm is not None:
        raise UsageError(f"{path}: --slab makes one picture per slab; give a folder (-o slabs/) or a .nii.gz")
    if kind in ("nifti", "dicom") and len(options.planes) > 1:
        raise UsageError("--planes makes a picture sheet: write it as .png/.jpg (NIfTI and DICOM hold one plane)")
    return Target(kind, path)


@dataclass
class MipResult:
    """What happened to one stack: ``projected``, ``skipped`` (its outputs exist) or ``failed``."""

    stack_id: str
    status: str
    files: list[Path] = field(default_factory=list)
    message: str = ""
    error: VolumeError | None = None


@dataclass
class MipBatch:
    """The results of a batch, its counts, and its exit code."""

    results: list[MipResult]
    tally: Tally

    @property
    def files(self) -> list[Path]:
        """Every file written, in order."""
        return [f for r in self.results for f in r.files]

    def exit_code(self) -> int:
        """The batch's exit code; when every stack failed the same way, that error's."""
        failures = [r.error for r in self.results if r.error is not None]
        if failures and not self.files and len({type(e) for e in failures}) == 1:
            return failures[0].exit_code
        return self.tally.exit_code()


def _listed(stacks: Sequence[Stack]) -> str:
    more = "; ..." if len(stacks) > LISTED_STACKS else ""
    return "; ".join(stack_choice(s) for s in stacks[:LISTED_STACKS]) + more


def _default_stacks(found: Scan, where: str, events: Events) -> list[Stack]:
    """Every volume or 4D stack of ``found`` (the others warned about as skipped)."""
    only = found.stacks[0] if len(found.stacks) == 1 else None
    if only is not None and only.kind not in PROJECTABLE_KINDS and only.problem:
        raise NotAVolumeError(f"series {only.id}: cannot load: {only.problem}")
    if only is not None and only.kind not in PROJECTABLE_KINDS:
        raise NotAVolumeError(f"{where}: series {only.id} is a {only.kind} ({len(only.files)} file"
                              f"{'s' if len(only.files) != 1 else ''}), not a volume; --series {only.id} "
                              "projects it anyway, `volume png` draws its images")
    chosen = []
    for st in found.stacks:
        if st.kind in PROJECTABLE_KINDS:
            chosen.append(st)
        elif st.problem:
            events.warn(f"series {st.id}: skipped, cannot load: {st.problem}")
        else:
            events.warn(f"series {st.id}: skipped, a {st.kind} is not a volume (choose it with --series {st.id} "
                        "to project it anyway)")
    if not chosen:
        raise NotAVolumeError(f"{where}: no volume to project among {len(found.stacks)} stacks; --series ID projects "
                              f"one anyway: {_listed(found.stacks)}")
    return chosen


def choose_stacks(found: Scan, series: str | None, events: Events = QUIET) -> list[Stack]:
    """The stacks to project: the ``series`` choice, else every volume/4D stack (others skipped,
    warned about); stacks that cannot be loaded are warned about and left out."""
    where = ", ".join(found.paths)
    if not found.stacks:
        skipped = f" ({found.skipped})" if found.skipped else ""
        raise NoDicomError(f"{where}: no DICOM images found{skipped}")
    if series is not None:
        chosen = found.select(series)
        if not chosen:
            raise UsageError(no_match_message(found, series))
    else:
        chosen = _default_stacks(found, where, events)
    usable = []
    for st in chosen:
        if st.problem:
            events.warn(f"series {st.id}: skipped, cannot load: {st.problem}")
        else:
            usable.append(st)
    if not usable:
        raise NotAVolumeError(f"{where}: none of the selected stacks can be loaded (see the warnings above)")
    return usable


def _planned(target: Target, base: str, options: MipOptions, source: DicomSource) -> list[Path]:
    """The files one stack's projection will be written to, named before a voxel is read (so that a
    re-run skips what exists: :func:`volume.jobs.existing.check_outputs`)."""
    if target.kind != FOLDER:
        assert target.path is not None
        return [target.path]
    folder = target.path if target.path is not None else Path()
    if len(options.planes) > 1 or options.slab_mm is None:
        return [folder / f"{base}.png"]
    _, layout = projection_layout(source.affine, source.shape, options.planes[0], options.slab_mm, options.step_mm,
                                  options.resample)
    slab_folder = folder if target.path is not None else folder / base
    width = max(SLAB_NUMBER_WIDTH, len(str(layout.count)))
    return [slab_folder / f"{base}_{j + 1:0{width}d}.png" for j in range(layout.count)]


def _project(source: DicomSource, options: MipOptions, events: Events) -> dict[str, Volume]:
    """Projections of one stack per plane (streamed from disk in one pass unless resampling).

    ``options.max_bytes`` bounds the pixel memory: a streamed projection holds one chunk of slices
    at a time, so it streams while a chunk fits; otherwise the series is loaded whole, and refused
    when it needs more than the limit.
    """
    o = options
    limit = DEFAULT_MAX_BYTES if o.max_bytes is None else min(o.max_bytes, DEFAULT_MAX_BYTES)
    with events.progress(f"projecting {source.stack.id}", source.n_images) as advance:
        if not o.resample and can_stream(source) and chunk_bytes(source) <= limit:
            return project_stack_planes(source, list(o.planes), o.mode, o.slab_mm, o.step_mm, progress=advance)
        vol = source.load(allow_gaps=o.allow_gaps, progress=advance,
                          **({} if o.max_bytes is None else {"max_bytes": o.max_bytes}))
        return {p: project(vol, p, o.mode, o.slab_mm, o.step_mm, o.resample) for p in o.planes}


def _picture_kind(mode: str) -> str:
    """What an automatic window is computed for: a MIP's histogram is not a slice's."""
    return "projection" if mode == "max" else "slice"


def _notes(stack_id: str, projs: dict[str, Volume], options: MipOptions) -> list[str]:
    """The warnings about a stack's projections: oblique, constant, slabs rounded."""
    notes = []
    for plane, proj in projs.items():
        angle = proj.meta["projection"]["angle_deg"]
        if angle > OBLIQUE_WARN_DEG and not options.resample:
            notes.append(f"series {stack_id}: oblique by {angle:.1f}° to the {plane} plane; projected along the "
                         "nearest volume axis (--resample projects along the patient axis)")
        notes += [n for n in (_constant_note(stack_id, plane, options, proj), _slab_note(stack_id, proj)) if n]
    return notes


def _constant_note(stack_id: str, plane: str, options: MipOptions, proj: Volume) -> str | None:
    """A warning when a projection holds one value everywhere (a whole-head MinIP meets air on
    every ray), else None."""
    value = is_constant(proj.frame(0).array if proj.is_4d else proj.array)
    if value is None:
        return None
    mode = options.mode
    what = f"series {stack_id}: the {plane} {MODE_NAMES[mode]} intensity projection is constant (every pixel {value:g})"
    if mode == "min" and options.slab_mm is None:
        return f"{what}: every ray through the whole series meets air; --slab MM projects thick slabs instead (e.g. --slab 20)"
    if mode == "min":
        return f"{what}: every ray of every slab meets air; a smaller --slab projects thinner slabs"
    return what


def _slab_note(stack_id: str, proj: Volume) -> str | None:
    """The warning that says what a slab was made of when that is not exactly what ``--slab`` asked
    (whole slices, the number nearest the request: ``volume.ops.projection.slab_rounding``)."""
    rounding = proj.meta["projection"].get("rounding")
    return f"series {stack_id}: {rounding}" if rounding else None


def _values(projs: dict[str, Volume]) -> Any:
    """A regular subsample of every projection's values (frame 0 of 4D), float32, for windowing."""
    arrays = [np.asarray(v.frame(0).array if v.is_4d else v.array) for v in projs.values()]
    total = sum(a.size for a in arrays)
    stride = max(1, total // WINDOW_SAMPLE)
    return np.concatenate([a.reshape(-1)[::stride].astype(np.float32) for a in arrays])


@dataclass(frozen=True)
class _Drawing:
    """What every picture of one stack shares: window, inversion, letters, colour map."""

    request: WindowRequest
    options: MipOptions
    events: Events

    def window(self, projs: dict[str, Volume]) -> Any:
        meta = next(iter(projs.values())).meta
        return self.request.choose(_values(projs), meta.get("acquisition"), kind=_picture_kind(self.options.mode))[0]


def _write_sheet(projs: dict[str, Volume], path: Path, drawing: _Drawing) -> list[Path]:
    """Several planes side by side on one sheet, at one pixel size."""
    window, labels = drawing.window(projs), drawing.options.labels
    invert = _inverted(projs)
    pixel_mm = min(min(v.spacing[a] for a in range(3) if a != v.meta["projection"]["axis"]) for v in projs.values())
    pictures = []
    for plane, proj in projs.items():
        img, p = display_picture(proj, plane, window, axis=proj.meta["projection"]["axis"], invert=invert,
                                 pixel_mm=pixel_mm)
        pictures.append(Picture(img, edge_labels(plane) if labels else None, p if labels else None,
                                plane if labels else None))
    written = write_sheet(path, pictures, force=drawing.options.force, cmap=drawing.options.cmap)
    drawing.events.written(written)
    return [written]


def _inverted(projs: dict[str, Volume]) -> bool:
    return str(next(iter(projs.values())).meta.get("photometric") or "").upper() == "MONOCHROME1"


def _write_pictures(projs: dict[str, Volume], base: str, target: Target, drawing: _Drawing,
                    keep: Sequence[Path] = ()) -> list[Path]:
    """The pictures of one stack's projections; the slab pictures in ``keep`` exist and are left as
    they are (a re-run writes the missing ones)."""
    first = next(iter(projs.values()))
    if first.is_4d:
        drawing.events.warn(f"series {first.meta.get('stack_id', '')}: 4D, the picture shows frame 1 of "
                            f"{first.n_frames}; -o NAME.nii.gz keeps every frame")
    folder = target.path if target.kind == FOLDER and target.path is not None else Path()
    single = target.path if target.kind == "picture" else folder / f"{base}.png"
    if len(projs) > 1:
        return _write_sheet(projs, single, drawing)
    window, options = drawing.window(projs), drawing.options
    plane, proj = next(iter(projs.items()))
    axis = proj.meta["projection"]["axis"]
    count = proj.shape[axis]
    letters = edge_labels(plane) if options.labels else None
    if count == 1 and proj.meta["projection"]["step_mm"] is None:
        names: list[tuple[int, Path]] = [(0, single)]
    else:  # slabs: one picture each, in a folder
        slab_folder = folder if target.path is not None else folder / base
        width = max(SLAB_NUMBER_WIDTH, len(str(count)))
        kept = set(keep)
        names = [(j, slab_folder / f"{base}_{j + 1:0{width}d}.png") for j in range(count)]
        names = [(j, n) for j, n in names if n not in kept]
    written = []
    for j, name in names:
        img, p = display_picture(proj, plane, window, axis=axis, index=j, invert=_inverted(projs))
        written.append(write_picture(name, img, force=options.force, labels=letters,
                                     scale_bar_mm_per_px=p if options.labels else None, cmap=options.cmap))
        drawing.events.written(written[-1])
    return written


def _write_data(projs: dict[str, Volume], target: Target, drawing: _Drawing) -> list[Path]:
    """A projection as NIfTI (every slab and frame) or as a DICOM file (one projection)."""
    plane, proj = next(iter(projs.items()))
    assert target.path is not None
    options = drawing.options
    write = formats.writer("mip", target.path)  # write_nifti or write_dicom_series
    if target.kind == "nifti":
        files = [write(proj, target.path, force=options.force)]
    else:
        files = _write_dicom(write, proj, plane, target.path, drawing, _values(projs))
    for f in files:
        drawing.events.written(f)
    return files


def _write_dicom(write: Any, proj: Volume, plane: str, path: Path, drawing: _Drawing, values: Any) -> list[Path]:
    info = proj.meta["projection"]
    if proj.is_4d or proj.shape[info["axis"]] > 1:
        raise UsageError(f"{path}: a .dcm file holds one projection; for slabs or 4D use .nii.gz (or a folder of PNGs)")
    mode = drawing.options.mode
    window, _ = drawing.request.choose(values, proj.meta.get("acquisition"), kind=_picture_kind(mode))
    files = write(
        display_volume(proj, plane, axis=info["axis"]), path, force=drawing.options.force,
        description_suffix=f"{MODE_TAGS[mode].upper()} {plane}",
        derived_from=f"{mode} intensity projection, {plane}, {info['slab_mm']:g} mm slab",
        image_type=("MIP" if mode == "max" else "MINIP" if mode == "min" else "AVERAGE",),
        slice_thickness=float(info["slab_mm"]), window=(window.center, window.width),
        keep_identity=drawing.options.keep_phi,
        warn=lambda note: drawing.events.warn(f"series {proj.meta.get('stack_id', '')}: {note}"),
    )
    return [Path(f) for f in files]


def _one_stack(stack: Stack, base: str, target: Target, options: MipOptions, events: Events) -> MipResult:
    """Project and write one stack (its outputs checked first); a failure raises."""
    source = DicomSource(stack)
    existing = check_outputs(_planned(target, base, options, source), force=options.force)
    if existing.all:  # the one rule of every job (volume/jobs/existing.py): no pixel is read
        events.status(f"series {stack.id}: skipped, {existing.message()}")
        return MipResult(stack.id, "skipped", message=existing.message())
    request = resolve_window(options.window, options.preset, stack.modality)
    if request.warning:
        events.warn(f"series {stack.id}: {request.warning}")
    projs = _project(source, options, events)
    for note in _notes(stack.id, projs, options):
        events.warn(note)
    drawing = _Drawing(request, options, events)
    if target.kind in ("picture", FOLDER):
        files = _write_pictures(projs, base, target, drawing, keep=existing.present)
    else:
        files = _write_data(projs, target, drawing)
    return MipResult(stack.id, "projected", files)


def mip_folder(path: str | os.PathLike[str] | Scan, output: str | os.PathLike[str] | None = None,
               options: MipOptions | None = None, *, series: str | None = None,
               events: Events = QUIET) -> MipBatch:
    """Project every volume under ``path`` and write each projection (``volume mip``'s job).

    Parameters
    ----------
    path
        A DICOM folder (searched recursively), a file (it stands for its series when more images
        of that series are beside it), or a :class:`~volume.dicom.Scan`.
    output
        A picture (``.png``/``.jpg``), NIfTI or DICOM file for one stack, or a folder (created;
        default: here): ``<series>_mip_<plane>.png`` per stack, a sub-folder of pictures per slab.
    options
        :class:`MipOptions` (default: a coronal MIP).
    series
        Which stacks (as :func:`volume.load` takes it); default: every volume and 4D stack.
    events
        Where warnings, status lines, written files and progress go (default: nowhere).

    Returns
    -------
    MipBatch
        One :class:`MipResult` per stack, the counts, the exit code.

    Raises
    ------
    UsageError
        Bad options, no such path, or several stacks for one output file.
    NoDicomError, NotAVolumeError
        Nothing to project.
    VolumeError
        When one stack is projected, its failure (several: each failure is a result).

    Examples
    --------
    >>> batch = volume.mip_folder("ct", "mips", volume.MipOptions(planes=("axial",)))
    >>> [str(f) for f in batch.files]
    ['mips/2_Phantom_head_mip_axial.png']
    """
    options = options or MipOptions()
    target = target_of(output, options)
    if isinstance(path, Scan):
        found = path
    else:
        if not Path(path).exists():
            raise UsageError(f"{path}: no such file or folder")
        found, series = read_input(Path(path), series, verb="projecting", events=events)
    stacks = choose_stacks(found, series, events)
    if target.single and len(stacks) > 1:
        raise UsageError(f"{len(stacks)} stacks to project and -o {target.path} holds one: give a folder (-o OUT/) "
                         f"or choose one with --series ID: {_listed(stacks)}")
    bases = [f"{stem}_{options.tag}" for stem in unique_names([safe_name(st.name) for st in stacks])]
    tally = Tally("projected")
    tally.skipped = (len(found.stacks) if series is None else len(found.select(series))) - len(stacks)
    results = []
    for stack, base in zip(stacks, bases, strict=True):
        try:
            result = _one_stack(stack, base, target, options, events)
        except VolumeError as exc:
            if len(stacks) == 1:
                raise
            text = str(exc)
            result = MipResult(stack.id, "failed", message=text, error=exc)
            events.status(text if text.startswith(f"series {stack.id}") else f"series {stack.id}: {text}")
        results.append(result)
        tally.done += result.status == "projected"
        tally.failed += result.status == "failed"
        if result.status == "skipped":
            tally.skip_existing()
    return MipBatch(results, tally)

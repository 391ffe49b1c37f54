"""The work of ``volume mip`` (declared in :mod:`volume.cli.mip`): projections of every stack
under a path written as pictures, NIfTI or DICOM, and ``--turntable``."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import typer

from ...conventions import PLANES, plane_name
from ...dicom.loader import no_match_message
from ...dicom.pixels import DEFAULT_MAX_BYTES
from ...dicom.series import stack_choice
from ...dicom.source import DicomSource
from ...display import display_picture, display_volume, edge_labels
from ...errors import NoDicomError, NotAVolumeError, UsageError, VolumeError
from ...io import formats
from ...io.image import Picture, colormap_lut, write_picture, write_sheet
from ...io.names import safe_name, unique_names
from ...jobs.existing import Tally, check_outputs
from ...ops.projection import can_stream, chunk_bytes, project, project_stack_planes, projection_layout
from ...ops.window import WindowRequest, is_constant, resolve_window
from ...render.offscreen import TURN_AXES, check_turn, parse_size
from ...render.offscreen import turntable as spin
from ...volume import Volume
from ..app import err, progress_bar, warn
from ..app import parse_size as parse_bytes
from ..mip import Mode, Plane
from ..outputs import output_kind
from .common import check_turntable, load_series, skip_if_exists, write_animation
from .inputs import read_input

MODE_TAGS = {"max": "mip", "min": "minip", "mean": "meanip"}
"""File-name tag of each mode: ``<series>_mip_coronal.png``, ``_minip_``, ``_meanip_``."""

OBLIQUE_WARN_DEG = 10.0
"""Warn when the projected volume axis is further than this from the plane's normal (and no --resample)."""

PROJECTABLE_KINDS = ("volume", "4D")
"""Stack kinds projected when no --series is given (localizers and 2D sets are skipped)."""

MODE_NAMES = {"max": "maximum", "min": "minimum", "mean": "mean"}
"""How messages name each mode."""

OUTPUT_FORMATS = formats.kinds("mip")
"""Every file ``-o`` can name, by extension, and what is written (:mod:`volume.io.formats`, the one
registry). Any other file extension is a usage error listing these; a name without one is a folder."""


@dataclass
class Target:
    """Where the output goes: a ``kind`` (picture, nifti, dicom, folder) and a path (None: cwd)."""

    kind: str
    path: Path | None

    @property
    def single(self) -> bool:
        return self.kind != "folder"


def _target(out: str | None, turntable: bool = False) -> Target:
    if out is None:
        return Target("folder", None)
    kind, path = output_kind(out, OUTPUT_FORMATS)
    if kind == "animation" and not turntable:
        raise UsageError(f"{out}: a {path.suffix} is a rotating projection: add --turntable N (or write "
                         f"{formats.help_list('mip', 'picture')})")
    return Target(kind, path)


def _planes(plane: Plane, planes: str | None) -> list[str]:
    if planes is None:
        return [plane.value]
    text = planes.strip().lower()
    if text == "all":
        return list(PLANES)
    chosen = [p.strip() for p in text.split(",") if p.strip()]
    try:
        names = [plane_name(p) for p in chosen]
    except UsageError:
        names = []
    if not names:
        raise UsageError(f"--planes takes 'all' or a comma list of {', '.join(PLANES)}; got {planes!r}")
    return list(dict.fromkeys(names))


def _stacks(found: Any, series: str | None) -> list[Any]:
    """The stacks to project: the --series choice, else every volume/4D stack (others skipped with a warning)."""
    where = ", ".join(found.paths)
    if not found.stacks:
        skipped = f" ({found.skipped})" if found.skipped else ""
        raise NoDicomError(f"{where}: no DICOM images found{skipped}")
    if series is not None:
        chosen = found.select(series)
        if not chosen:
            raise UsageError(no_match_message(found, series))
    else:
        chosen = []
        only = found.stacks[0] if len(found.stacks) == 1 else None
        if only is not None and only.kind not in PROJECTABLE_KINDS and only.problem:
            raise NotAVolumeError(f"series {only.id}: cannot load: {only.problem}")
        if only is not None and only.kind not in PROJECTABLE_KINDS:
            raise NotAVolumeError(f"{where}: series {only.id} is a {only.kind} ({len(only.files)} file"
                                  f"{'s' if len(only.files) != 1 else ''}), not a volume; --series {only.id} "
                                  "projects it anyway, `volume png` draws its images")
        for st in found.stacks:
            if st.kind in PROJECTABLE_KINDS:
                chosen.append(st)
            elif st.problem:
                warn(f"series {st.id}: skipped, cannot load: {st.problem}")
            else:
                warn(f"series {st.id}: skipped, a {st.kind} is not a volume (choose it with --series {st.id} to project it anyway)")
        if not chosen:
            listed = "; ".join(stack_choice(s) for s in found.stacks[:12]) + ("; ..." if len(found.stacks) > 12 else "")
            raise NotAVolumeError(f"{where}: no volume to project among {len(found.stacks)} stacks; --series ID projects "
                                  f"one anyway: {listed}")
    usable = []
    for st in chosen:
        if st.problem:
            warn(f"series {st.id}: skipped, cannot load: {st.problem}")
        else:
            usable.append(st)
    if not usable:
        raise NotAVolumeError(f"{where}: none of the selected stacks can be loaded (see the warnings above)")
    return usable


def _planned(target: Target, base: str, planes: list[str], source: DicomSource, slab: float | None,
             step: float | None, resample: bool) -> list[Path]:
    """The files one stack's projection will be written to, named before a voxel is read (so that a
    re-run skips what exists: :func:`volume.jobs.existing.check_outputs`)."""
    if target.kind != "folder":
        assert target.path is not None
        return [target.path]
    folder = target.path if target.path is not None else Path()
    if len(planes) > 1 or slab is None:
        return [folder / f"{base}.png"]
    _, layout = projection_layout(source.affine, source.shape, planes[0], slab, step, resample)
    slab_folder = folder if target.path is not None else folder / base
    width = max(SLAB_NUMBER_WIDTH, len(str(layout.count)))
    return [slab_folder / f"{base}_{j + 1:0{width}d}.png" for j in range(layout.count)]


SLAB_NUMBER_WIDTH = 3
"""Fewest digits of the slab number in picture names (``..._mip_coronal_001.png``), counted from 1."""


def _project(source: DicomSource, planes: list[str], mode: str, slab: float | None, step: float | None,
             resample: bool, allow_gaps: bool, max_bytes: int | None = None) -> dict[str, Volume]:
    """Projections of one stack per plane (streamed from disk in one pass unless resampling).

    ``max_bytes`` (``--max-memory``) bounds the pixel memory: a streamed projection holds one
    chunk of slices at a time, so it streams while a chunk fits; otherwise the series is loaded
    whole, and refused when it needs more than the limit.
    """
    stack = source.stack
    limit = DEFAULT_MAX_BYTES if max_bytes is None else min(max_bytes, DEFAULT_MAX_BYTES)
    with progress_bar(f"projecting {stack.id}", source.n_images) as advance:
        if not resample and can_stream(source) and chunk_bytes(source) <= limit:
            return project_stack_planes(source, planes, mode, slab, step, progress=advance)
        vol = source.load(allow_gaps=allow_gaps, progress=advance, **({} if max_bytes is None else {"max_bytes": max_bytes}))
        return {p: project(vol, p, mode, slab, step, resample) for p in planes}


def _picture_kind(mode: str) -> str:
    """What an automatic window is computed for: a MIP's histogram is not a slice's."""
    return "projection" if mode == "max" else "slice"


def _constant_note(stack_id: str, plane: str, mode: str, proj: Volume, slab: float | None) -> str | None:
    """A warning when a projection holds one value everywhere (a whole-head MinIP meets air on
    every ray), else None."""
    value = is_constant(proj.frame(0).array if proj.is_4d else proj.array)
    if value is None:
        return None
    what = f"series {stack_id}: the {plane} {MODE_NAMES[mode]} intensity projection is constant (every pixel {value:g})"
    if mode == "min" and slab is None:
        return f"{what}: every ray through the whole series meets air; --slab MM projects thick slabs instead (e.g. --slab 20)"
    if mode == "min":
        return f"{what}: every ray of every slab meets air; a smaller --slab projects thinner slabs"
    return what


def _slab_note(stack_id: str, proj: Volume) -> str | None:
    """The warning that says what a slab was made of when that is not exactly what ``--slab`` asked
    (whole slices, the number nearest the request: ``volume.ops.projection.slab_rounding``)."""
    rounding = proj.meta["projection"].get("rounding")
    return f"series {stack_id}: {rounding}" if rounding else None


WINDOW_SAMPLE = 2_000_000
"""At most this many projection values (a regular subsample) decide an automatic window."""


def _values(projs: dict[str, Volume]) -> Any:
    """A regular subsample of every projection's values (frame 0 of 4D), float32, for windowing."""
    arrays = [np.asarray(v.frame(0).array if v.is_4d else v.array) for v in projs.values()]
    total = sum(a.size for a in arrays)
    stride = max(1, total // WINDOW_SAMPLE)
    return np.concatenate([a.reshape(-1)[::stride].astype(np.float32) for a in arrays])


def _write_pictures(projs: dict[str, Volume], base: str, target: Target, *, request: WindowRequest,
                    cmap: str | None, labels: bool, force: bool, mode: str = "max",
                    keep: Sequence[Path] = ()) -> list[Path]:
    """The pictures of one stack's projections; the slab pictures in ``keep`` exist and are left as
    they are (a re-run writes the missing ones)."""
    first = next(iter(projs.values()))
    meta = first.meta
    window, _ = request.choose(_values(projs), meta.get("acquisition"), kind=_picture_kind(mode))
    invert = str(meta.get("photometric") or "").upper() == "MONOCHROME1"
    if first.is_4d:
        warn(f"series {meta.get('stack_id', '')}: 4D, the picture shows frame 1 of {first.n_frames}; "
             "-o NAME.nii.gz keeps every frame")
    folder = target.path if target.kind == "folder" and target.path is not None else Path()
    tag = base
    if len(projs) > 1:  # a sheet of planes
        pixel_mm = min(min(v.spacing[a] for a in range(3) if a != v.meta["projection"]["axis"]) for v in projs.values())
        pictures = []
        for plane, proj in projs.items():
            img, p = display_picture(proj, plane, window, axis=proj.meta["projection"]["axis"], invert=invert,
                                     pixel_mm=pixel_mm)
            pictures.append(Picture(img, edge_labels(plane) if labels else None, p if labels else None,
                                    plane if labels else None))
        path = target.path if target.kind == "picture" else folder / f"{tag}.png"
        return [write_sheet(path, pictures, force=force, cmap=cmap)]
    plane, proj = next(iter(projs.items()))
    axis = proj.meta["projection"]["axis"]
    count = proj.shape[axis]
    letters = edge_labels(plane) if labels else None
    if count == 1 and proj.meta["projection"]["step_mm"] is None:
        img, p = display_picture(proj, plane, window, axis=axis, invert=invert)
        path = target.path if target.kind == "picture" else folder / f"{tag}.png"
        return [write_picture(path, img, force=force, labels=letters, scale_bar_mm_per_px=p if labels else None, cmap=cmap)]
    # slabs: one picture each, in a folder
    if target.kind == "picture":
        raise UsageError(f"{target.path}: --slab makes one picture per slab; give a folder (-o slabs/) or a .nii.gz")
    slab_folder = folder if target.path is not None else folder / tag
    width = max(SLAB_NUMBER_WIDTH, len(str(count)))
    written = []
    kept = set(keep)
    try:
        for j in range(count):
            name = slab_folder / f"{tag}_{j + 1:0{width}d}.png"
            if name in kept:
                continue
            img, p = display_picture(proj, plane, window, axis=axis, index=j, invert=invert)
            written.append(write_picture(name, img, force=force, labels=letters,
                                         scale_bar_mm_per_px=p if labels else None, cmap=cmap))
    except BaseException:  # disk full, Ctrl-C: the whole pictures already written are listed
        sys.stdout.write("".join(f"{f}\n" for f in written))
        sys.stdout.flush()
        raise
    return written


def _write_data(projs: dict[str, Volume], target: Target, *, mode: str, request: WindowRequest,
                force: bool, keep_phi: bool = False) -> list[Path]:
    if len(projs) > 1:
        raise UsageError("--planes makes a picture sheet: write it as .png/.jpg (NIfTI and DICOM hold one plane)")
    plane, proj = next(iter(projs.items()))
    assert target.path is not None
    write = formats.writer("mip", target.path)  # write_nifti or write_dicom_series
    if target.kind == "nifti":
        return [write(proj, target.path, force=force)]
    info = proj.meta["projection"]
    if proj.is_4d or proj.shape[info["axis"]] > 1:
        raise UsageError(f"{target.path}: a .dcm file holds one projection; for slabs or 4D use .nii.gz (or a folder of PNGs)")
    window, _ = request.choose(_values(projs), proj.meta.get("acquisition"), kind=_picture_kind(mode))
    files = write(
        display_volume(proj, plane, axis=info["axis"]), target.path, force=force,
        description_suffix=f"{MODE_TAGS[mode].upper()} {plane}",
        derived_from=f"{mode} intensity projection, {plane}, {info['slab_mm']:g} mm slab",
        image_type=("MIP" if mode == "max" else "MINIP" if mode == "min" else "AVERAGE",),
        slice_thickness=float(info["slab_mm"]), window=(window.center, window.width), keep_identity=keep_phi,
        warn=lambda note: warn(f"series {proj.meta.get('stack_id', '')}: {note}"),
    )
    return [Path(f) for f in files]


TURNTABLE_MODES = {"max": "mip", "min": "minip"}
"""Projection modes a turntable can turn (VTK's ray caster blends by maximum or minimum)."""


def _turntable(path: Path, series: str | None, mode: str, out: str | Path | None, window: str | None, preset: str | None,
               n: int, axis: str, size: str, allow_gaps: bool, force: bool, max_memory: str | None) -> None:
    """``volume mip --turntable N -o spin.mp4``: a rotating MIP/MinIP, rendered as ``volume render --mode mip``.

    VTK's ray cast (parallel rays, trilinear samples twice per smallest voxel side) was measured
    against an exact projection of the volume resampled in mm for every angle: 7 to 14 times
    faster, no less sharp (docs/benchmarks-web.md).
    """
    if out is None:
        raise UsageError("--turntable needs -o OUT.mp4 (or .webm, .gif)")
    out = Path(out)
    if mode not in TURNTABLE_MODES:
        raise UsageError(f"--turntable turns a max or min projection, not --mode {mode}")
    axis = axis.upper()
    if axis not in TURN_AXES:
        raise UsageError(f"unknown --axis {axis!r}; choose one of {', '.join(TURN_AXES)}")
    resolve_window(window, preset)  # refused before the series is read
    check_turntable(out, n)
    check_turn("anterior", axis)
    wh = parse_size(size)
    skip_if_exists(out, force=force, verb="projected")
    vol = load_series(path, series, 1, allow_gaps, max_memory)
    ramp = None
    if window is not None or preset is not None:  # else the renderer's range of the data
        request = resolve_window(window, preset, vol.meta.get("modality"))
        if request.warning:
            warn(f"series {vol.meta.get('stack_id', '')}: {request.warning}")
        ramp = request.ramp(vol.meta.get("acquisition"))
    with progress_bar("rendering", n) as advance:
        frames = spin(vol, n, axis=axis, mode=TURNTABLE_MODES[mode], window=ramp, size=wh, progress=advance)
    sys.stdout.write(f"{write_animation(frames, out, force, 'mip')}\n")
    err(Tally("projected", done=1).line())


def mip(path: Path, *, plane: Plane, planes: str | None, mode: Mode, out: str | None, slab: float | None,
        step: float | None, window: str | None, preset: str | None, cmap: str | None, series: str | None,
        resample: bool, labels: bool, allow_gaps: bool, force: bool, keep_phi: bool, max_memory: str | None,
        turntable: int | None, axis: str, size: str) -> None:
    """``volume mip``: checks, scan, then each stack projected and written (or ``--turntable``)."""
    if turntable is not None:
        _turntable(path, series, mode.value, out, window, preset, turntable, axis, size, allow_gaps, force, max_memory)
        return

    max_bytes = None if max_memory is None else parse_bytes(max_memory)
    resolve_window(window, preset)  # a bad --window/--preset is refused before any work
    if cmap is not None:
        try:
            colormap_lut(cmap)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    if step is not None and slab is None:
        raise UsageError("--step needs --slab (the slab thickness in mm)")
    for name, value in (("--slab", slab), ("--step", step)):
        if value is not None and not value > 0:
            raise UsageError(f"{name} must be a positive number of mm, got {value}")
    chosen_planes = _planes(plane, planes)
    if len(chosen_planes) > 1 and slab is not None:
        raise UsageError("--slab works on one plane at a time; drop --planes or --slab")
    target = _target(out)
    if target.kind == "picture" and slab is not None:
        raise UsageError(f"{target.path}: --slab makes one picture per slab; give a folder (-o slabs/) or a .nii.gz")
    if target.kind in ("nifti", "dicom") and len(chosen_planes) > 1:
        raise UsageError("--planes makes a picture sheet: write it as .png/.jpg (NIfTI and DICOM hold one plane)")
    if not path.exists():
        raise UsageError(f"{path}: no such file or folder")

    found, series = read_input(path, series, verb="projecting")
    stacks = _stacks(found, series)
    if target.single and len(stacks) > 1:
        listed = "; ".join(stack_choice(s) for s in stacks[:12]) + ("; ..." if len(stacks) > 12 else "")
        raise UsageError(f"{len(stacks)} stacks to project and -o {target.path} holds one: give a folder (-o OUT/) "
                         f"or choose one with --series ID: {listed}")
    tag = MODE_TAGS[mode.value]
    suffix = "sheet" if len(chosen_planes) > 1 else chosen_planes[0]
    bases = [f"{stem}_{tag}_{suffix}" for stem in unique_names([safe_name(st.name) for st in stacks])]
    tally = Tally("projected")
    tally.skipped = (len(found.stacks) if series is None else len(found.select(series))) - len(stacks)
    written: list[Path] = []
    failures: list[VolumeError] = []
    for stack, base in zip(stacks, bases, strict=True):
        source = DicomSource(stack)
        existing = check_outputs(_planned(target, base, chosen_planes, source, slab, step, resample), force=force)
        if existing.all:  # the one rule of every job (volume/jobs/existing.py): no pixel is read
            err(f"series {stack.id}: skipped, {existing.message()}")
            tally.skip_existing()
            continue
        request = resolve_window(window, preset, stack.modality)
        if request.warning:
            warn(f"series {stack.id}: {request.warning}")
        try:
            projs = _project(source, chosen_planes, mode.value, slab, step, resample, allow_gaps, max_bytes)
            for p, proj in projs.items():
                angle = proj.meta["projection"]["angle_deg"]
                if angle > OBLIQUE_WARN_DEG and not resample:
                    warn(f"series {stack.id}: oblique by {angle:.1f}° to the {p} plane; projected along the nearest "
                         "volume axis (--resample projects along the patient axis)")
                note = _constant_note(stack.id, p, mode.value, proj, slab)
                if note:
                    warn(note)
                note = _slab_note(stack.id, proj)
                if note:
                    warn(note)
            if target.kind in ("picture", "folder"):
                files = _write_pictures(projs, base, target, request=request, cmap=cmap, labels=labels,
                                        force=force, mode=mode.value, keep=existing.present)
            else:
                files = _write_data(projs, target, mode=mode.value, request=request, force=force, keep_phi=keep_phi)
        except VolumeError as exc:
            if len(stacks) == 1:
                raise
            text = str(exc)
            err(text if text.startswith(f"series {stack.id}") else f"series {stack.id}: {text}")
            failures.append(exc)
            tally.failed += 1
            continue
        for f in files:
            sys.stdout.write(f"{f}\n")
        sys.stdout.flush()
        written.extend(files)
        tally.done += 1
    err(tally.line())
    if failures and not written and len({type(e) for e in failures}) == 1:
        raise typer.Exit(failures[0].exit_code)
    if tally.exit_code():
        raise typer.Exit(tally.exit_code())

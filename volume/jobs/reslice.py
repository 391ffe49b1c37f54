"""One series of a folder resampled onto a new grid and written as NIfTI, pictures or a DICOM
series: ``volume reslice``'s job, and :func:`volume.reslice_folder`'s.

The series is chosen (a file stands for its series), its outputs named before it is read (a
re-run skips what exists: :mod:`volume.jobs.existing`), loaded, resliced
(:func:`volume.api.reslice`: a plane, a normal, spacing, thick slabs or another image's grid),
and written.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..api import like_grid
from ..api import reslice as reslice_volume
from ..choices import INTERPOLATIONS, RESLICE_FORMATS, SLAB_MODES
from ..conventions import plane_name
from ..dicom import choose_stack, load
from ..dicom.loader import Scan
from ..dicom.series import Stack
from ..dicom.source import DicomSource
from ..display import display_picture, edge_labels, volume_picture
from ..errors import UsageError
from ..io import formats
from ..io.dicom_out import write_dicom_series
from ..io.image import write_picture
from ..io.names import safe_name
from ..io.outputs import FOLDER, output_kind
from ..ops.reslice import reslice_grid
from ..ops.window import Window, WindowRequest, resolve_window
from ..volume import Volume, closest_plane
from .events import QUIET, Events
from .existing import Tally, check_outputs
from .inputs import read_input

OUTPUT_FORMATS = {suffix: "dcm" if kind == "dicom" else kind for suffix, kind in formats.kinds("reslice").items()}
"""Every file the output can name, by extension, and what is written (:mod:`volume.io.formats`,
the one registry; its ``dicom`` is ``format="dcm"`` here). Any other file extension is a usage
error listing these; a name without one is a folder (of PNG pictures, or of a DICOM series with
``format="dcm"``)."""

PICTURE_WIDTH_MIN = 3
"""Fewest digits of the slice number in picture names (``cor_001.png``)."""

IMAGE_TYPE = {"mean": "MPR", "max": "MIP", "min": "MINIP"}
"""Third ImageType value of a DICOM reslice: MPR (or MIP/MINIP for thick max/min slabs)."""

FIRST_NUMBER = 1
"""Slice numbers count from 1, as picture names do."""

WINDOW_SAMPLE = 1_000_000
"""At most this many values (a regular subsample) decide an automatic window."""


@dataclass(frozen=True)
class ResliceOptions:
    """What to resample onto and how to write it: what ``volume reslice`` takes besides its path
    and output.

    Attributes
    ----------
    plane
        A grid aligned with the patient axes (``axial``, ``coronal``, ``sagittal``).
    normal
        Oblique slices perpendicular to this LPS direction.
    like
        Another image's exact grid: a NIfTI file or a DICOM series.
    spacing
        Voxel size in mm: one value (isotropic) or (slice, row, column).
    fov
        Field of view in mm (slice, row, column; None: the series' extent along that axis).
    thickness
        Thick slices: combine this many mm along the slice direction.
    mode
        How thick slices combine: ``mean``, ``max`` or ``min``.
    interp
        ``nearest``, ``linear`` or ``cubic``.
    fill
        Value outside the series (None: -1024 for CT, 0 otherwise).
    format
        ``auto`` (from the output's name), ``nifti``, ``png`` or ``dcm``.
    slice_no
        Write the picture of this slice only (1-based).
    window, preset
        The display window of pictures and DICOM output (:func:`volume.ops.window.resolve_window`).
    labels
        Orientation letters and a scale bar on pictures.
    keep_phi
        DICOM output keeps the source's patient and study identity.
    allow_gaps
        Resample series with missing slices instead of refusing them.
    force
        Overwrite existing outputs.
    max_bytes
        Refuse a series whose headers claim more memory than this (None: the default limit).

    Raises
    ------
    UsageError
        Nothing to reslice to, several targets, ``like`` with a spacing, field of view or
        thickness, a thickness that is not positive, a slab mode without a thickness, an unknown
        plane, mode, interpolation, format, window or preset, or a ``like`` path that is missing.

    Examples
    --------
    >>> options = volume.ResliceOptions(spacing=3.0, interp="linear")
    >>> volume.reslice_folder("ct", "iso.nii.gz", options).files
    [PosixPath('iso.nii.gz')]
    """

    plane: str | None = None
    normal: tuple[float, float, float] | None = None
    like: str | os.PathLike[str] | None = None
    spacing: tuple[float, ...] | None = None
    fov: tuple[float | None, ...] | None = None
    thickness: float | None = None
    mode: str = "mean"
    interp: str = "linear"
    fill: float | None = None
    format: str = "auto"
    slice_no: int | None = None
    window: str | None = None
    preset: str | None = None
    labels: bool = True
    keep_phi: bool = False
    allow_gaps: bool = False
    force: bool = False
    max_bytes: int | None = None

    def __post_init__(self) -> None:
        if self.plane is not None:
            object.__setattr__(self, "plane", plane_name(self.plane))
        if isinstance(self.spacing, (int, float)):  # one number: isotropic, as volume.reslice takes it
            object.__setattr__(self, "spacing", (float(self.spacing),))
        for name, value, allowed in (("mode", self.mode, SLAB_MODES), ("interp", self.interp, INTERPOLATIONS),
                                     ("format", self.format, RESLICE_FORMATS)):
            if value not in allowed:
                raise UsageError(f"unknown {name} {value!r}; choose one of {', '.join(allowed)}")
        self._check_target()
        if self.thickness is not None and not self.thickness > 0:
            raise UsageError(f"--thickness must be a positive number of mm, got {self.thickness}")
        if self.mode != "mean" and self.thickness is None:
            raise UsageError("--mode needs --thickness (the slab in mm to combine)")
        if self.like is not None and not Path(self.like).exists():
            raise UsageError(f"{self.like}: no such file or folder (--like)")
        if self.slice_no is not None and self.slice_no < FIRST_NUMBER:
            raise UsageError(f"--slice {self.slice_no}: slices count from {FIRST_NUMBER}")
        resolve_window(self.window, self.preset)  # a bad window or preset is refused before the series is read

    def _check_target(self) -> None:
        targets = sum(x is not None for x in (self.plane, self.normal, self.like))
        if targets > 1:
            raise UsageError("choose one of --plane, --normal and --like")
        if targets == 0 and self.spacing is None:
            raise UsageError("say what to reslice to: --spacing, --plane, --normal or --like")
        if self.like is not None and (self.spacing is not None or self.fov is not None or self.thickness is not None):
            raise UsageError("--like takes the other image's whole grid: drop --spacing, --fov and --thickness")

    @property
    def what(self) -> str:
        """What the reslice makes, for its names: ``coronal``, ``iso_1mm``, ``oblique_5mm_max``..."""
        if self.plane is not None:
            what = self.plane
        elif self.normal is not None:
            what = "oblique"
        elif self.like is not None:
            what = "like"
        else:
            what = "iso" if self.spacing and len(self.spacing) == 1 else "resampled"
        if self.spacing and self.like is None:
            what += "_" + "x".join(f"{v:g}" for v in self.spacing[::-1]) + "mm"
        if self.thickness:
            what += f"_{self.thickness:g}mm_{self.mode}"
        return what

    @property
    def picture_kind(self) -> str:
        """Thick maximum slabs are projections (their histogram is not a slice's); the rest are slices."""
        return "projection" if self.thickness and self.mode == "max" else "slice"

    def grid(self) -> dict[str, Any]:
        """The keywords of :func:`volume.ops.reslice.reslice_grid` and :func:`volume.api.reslice`."""
        return dict(plane=self.plane, normal=None if self.normal is None else list(self.normal), like=self.like,
                    spacing=None if self.spacing is None else list(self.spacing),
                    fov=None if self.fov is None else list(self.fov), thickness=self.thickness)


@dataclass
class ResliceResult:
    """What a reslice did: ``resliced`` (with the files written) or ``skipped`` (its outputs exist)."""

    stack_id: str
    status: str
    files: list[Path] = field(default_factory=list)
    message: str = ""
    tally: Tally = field(default_factory=lambda: Tally("resliced"))

    def exit_code(self) -> int:
        """0 when written, 5 when skipped because its outputs exist."""
        return self.tally.exit_code()


def output_of(out: str | os.PathLike[str] | None, options: ResliceOptions) -> tuple[str, Path | None]:
    """What to write and where: ``("nifti" | "dcm" | "png" | "picture", path or None)``.

    ``png`` is a folder of pictures, ``picture`` one picture file (one slice: ``slice_no``).
    """
    fmt, slice_no = options.format, options.slice_no
    if out is None:
        return (fmt if fmt != "auto" else ("png" if slice_no is not None else "nifti")), None
    found, path = output_kind(out, OUTPUT_FORMATS)
    if fmt == "auto":
        kind = "png" if found == FOLDER else found
    elif fmt == "nifti" and found != "nifti":
        raise UsageError(f"{out}: NIfTI output needs a name ending in .nii or .nii.gz")
    elif fmt == "png" and found not in (FOLDER, "picture"):
        raise UsageError(f"{out}: --format png writes pictures: a folder, or a .png with --slice N")
    elif fmt == "dcm" and found not in (FOLDER, "dcm"):
        raise UsageError(f"{out}: --format dcm writes a DICOM series into a folder (or one .dcm file)")
    else:
        kind = {FOLDER: "png"}.get(found, found) if fmt == "png" else fmt
    if kind == "picture" and slice_no is None:
        stem = path.name[: -len(path.suffix)] if path.suffix else path.name
        raise UsageError(f"{out}: a reslice makes one picture per slice; give a folder (-o {stem}/) for all of "
                         "them, --slice N for slice N alone, or a .nii.gz for the volume")
    if slice_no is not None and kind not in ("png", "picture"):
        raise UsageError("--slice N writes the picture of one slice: give -o NAME.png or a folder")
    return kind, path


def _n_slices(stack: Stack, options: ResliceOptions) -> int | None:
    """Slices of the reslice of ``stack``, from its headers (None when they give no grid: loading says why)."""
    if stack.problem or stack.geometry is None:
        return None
    source = DicomSource(stack)
    geometry = Volume(np.broadcast_to(np.uint8(0), tuple(source.shape[-3:])), source.affine)  # holds no voxel
    grid = options.grid()
    like = grid.pop("like")
    _, shape, _ = reslice_grid(geometry, like=like_grid(like) if like is not None else None, **grid)
    return shape[0]


def _check_slice(options: ResliceOptions, n_slices: int | None) -> None:
    if options.slice_no is not None and n_slices is not None and options.slice_no > n_slices:
        raise UsageError(f"--slice {options.slice_no}: this reslice has {n_slices} slices (--slice 1..{n_slices})")


def _planned(kind: str, out_path: Path, picture_base: str, n_slices: int | None, slice_no: int | None) -> list[Path] | None:
    """The files a reslice will write (None when unknown before loading): the NIfTI, the DICOM file
    or folder, the one picture, or a picture per slice."""
    if kind == "dcm" and out_path.is_dir() and not any(out_path.iterdir()):
        return None  # an empty folder is where a DICOM series may go: nothing exists yet
    if kind in ("nifti", "dcm", "picture"):
        return [out_path]
    if slice_no is not None:
        n = n_slices or slice_no
        return [out_path / f"{picture_base}_{slice_no:0{max(PICTURE_WIDTH_MIN, len(str(n)))}d}.png"]
    if n_slices is None:
        return None
    width = max(PICTURE_WIDTH_MIN, len(str(n_slices)))
    return [out_path / f"{picture_base}_{k:0{width}d}.png" for k in range(1, n_slices + 1)]


def _window(vol: Volume, values: np.ndarray, request: WindowRequest, kind: str) -> Window:
    """The display window of pictures (and DICOM output) drawn from ``values``: the user's, else the
    modality's default (:func:`volume.ops.window.default_window`: the header's window for CT, an
    automatic window of what is drawn otherwise)."""
    flat = np.asarray(values).reshape(-1)
    sample = flat[:: max(1, flat.size // WINDOW_SAMPLE)].astype(np.float32)
    return request.choose(sample, vol.meta.get("acquisition"), kind=kind)[0]


@dataclass(frozen=True)
class _Pictures:
    """Where a reslice's pictures go: a folder of every slice, one slice in it, or one file."""

    folder: Path
    base: str
    plane: str
    only: int | None = None
    file: Path | None = None
    keep: tuple[Path, ...] = ()


def _write_pictures(vol: Volume, where: _Pictures, request: WindowRequest, options: ResliceOptions,
                    events: Events) -> list[Path]:
    """Pictures of every slice (``folder/base_001.png``...), of slice ``only`` (1-based) alone, or
    that slice as ``file``. One window for all slices (so slice ``k`` alone is the same picture as
    in the folder). The pictures in ``keep`` exist and are left as they are (a re-run writes the
    missing ones)."""
    first = vol.frame(0) if vol.is_4d else vol
    if vol.is_4d:
        events.warn(f"series {vol.meta.get('stack_id', '')}: 4D, the pictures show frame 1 of {vol.n_frames}; "
                    "-o NAME.nii.gz keeps every frame")
    invert = str(vol.meta.get("photometric") or "").upper() == "MONOCHROME1"
    letters = edge_labels(where.plane) if options.labels else None
    n = first.shape[0]
    width = max(PICTURE_WIDTH_MIN, len(str(n)))
    window = None if first.rgb else _window(vol, first.array, request, options.picture_kind)
    chosen = range(n) if where.only is None else [where.only - FIRST_NUMBER]
    written = []
    with events.progress("writing pictures", len(chosen)) as advance:
        for k in chosen:
            target = where.file if where.file is not None else where.folder / f"{where.base}_{k + 1:0{width}d}.png"
            if target not in where.keep:
                if window is None:
                    img, p = volume_picture(first, where.plane, axis=0, index=k)
                else:
                    img, p = display_picture(first, where.plane, window, axis=0, index=k, invert=invert)
                written.append(write_picture(target, img, force=options.force, labels=letters,
                                             scale_bar_mm_per_px=p if options.labels else None))
                events.written(written[-1])
            advance(1)
    return written


def _write_dicom(vol: Volume, out: Path, request: WindowRequest, options: ResliceOptions, events: Events) -> list[Path]:
    window = None
    if not vol.rgb:
        w = _window(vol, vol.array, request, options.picture_kind)
        window = (w.center, w.width)
    what = options.what.replace("_", " ")
    derivation = f"reslice: {what}, {vol.meta.get('reslice', {}).get('interp', 'linear')} interpolation"
    if options.thickness:
        derivation += f", {options.thickness:g} mm thick ({options.mode})"
    with events.progress("writing DICOM", vol.n_frames * vol.shape[0]) as advance:
        files = write_dicom_series(
            vol, out, force=options.force, description_suffix=what, derived_from=derivation,
            keep_identity=options.keep_phi, image_type=(IMAGE_TYPE[options.mode] if options.thickness else "MPR",),
            slice_thickness=float(vol.meta.get("slice_thickness") or vol.spacing[0]), window=window,
            progress=advance, warn=lambda note: events.warn(f"series {vol.meta.get('stack_id', '')}: {note}"),
        )
    for f in files:
        events.written(Path(f))
    return [Path(f) for f in files]


def _write(result: Volume, kind: str, out_path: Path, picture_base: str, request: WindowRequest,
           options: ResliceOptions, events: Events, keep: Sequence[Path]) -> list[Path]:
    """The reslice written as ``kind``: NIfTI, a DICOM series, or pictures."""
    if kind == "nifti":
        files = [formats.writer("reslice", out_path)(result, out_path, force=options.force)]
        events.written(files[0])
        return files
    if kind == "dcm":
        return _write_dicom(result, out_path, request, options, events)
    plane = options.plane if options.plane is not None else closest_plane(result.direction[:, 0])[0]
    where = _Pictures(out_path, picture_base, plane, options.slice_no,
                      out_path if kind == "picture" else None, tuple(keep))
    return _write_pictures(result, where, request, options, events)


def reslice_folder(path: str | os.PathLike[str] | Scan, output: str | os.PathLike[str] | None = None,
                   options: ResliceOptions | None = None, *, series: str | None = None,
                   events: Events = QUIET) -> ResliceResult:
    """Reslice one series under ``path`` and write it (``volume reslice``'s job).

    Parameters
    ----------
    path
        A DICOM folder or file holding one series (a file stands for its series), or a
        :class:`~volume.dicom.Scan`.
    output
        A NIfTI file, a picture (with ``slice_no``), a DICOM file, or a folder (of pictures, or of
        a DICOM series with ``format="dcm"``). Default: ``<series>_<what>.nii.gz`` here.
    options
        :class:`ResliceOptions` (one of plane, normal, like or spacing is needed).
    series
        Which series, when ``path`` holds several (as :func:`volume.load` takes it).
    events
        Where warnings, status lines, written files and progress go (default: nowhere).

    Returns
    -------
    ResliceResult
        The files written, or ``skipped`` when every output existed.

    Raises
    ------
    UsageError
        Bad options or output, no such path, a slice number past the reslice's end.
    VolumeError
        The series cannot be chosen, loaded or resliced.

    Examples
    --------
    >>> done = volume.reslice_folder("ct", "cor.nii.gz", volume.ResliceOptions(plane="coronal"))
    >>> done.files
    [PosixPath('cor.nii.gz')]
    """
    if options is None:
        raise UsageError("say what to reslice to: ResliceOptions(plane=..., normal=..., like=... or spacing=...)")
    kind, out_path = output_of(output, options)
    if isinstance(path, Scan):
        found = path
    else:
        if not Path(path).exists():
            raise UsageError(f"{path}: no such file or folder")
        found, series = read_input(Path(path), series, verb="reslicing", events=events)
    stack = choose_stack(found, series)
    base = safe_name(f"{stack.name}_{options.what}")
    n_slices = _n_slices(stack, options)
    _check_slice(options, n_slices)
    if out_path is None:
        out_path = Path(f"{base}.nii.gz") if kind == "nifti" else Path() if options.slice_no is not None else Path(base)
    # pictures in a folder of their own are named by what they are; one written here by the series too
    picture_base = base if output is None and options.slice_no is not None else safe_name(options.what)
    existing = check_outputs(_planned(kind, out_path, picture_base, n_slices, options.slice_no) or [],
                             force=options.force)
    done = ResliceResult(stack.id, "skipped", message=existing.message())
    if existing.all:  # the one rule of every job (volume/jobs/existing.py): the series is not even read
        events.status(f"series {stack.id}: skipped, {existing.message()}")
        done.tally.skip_existing()
        return done
    request = resolve_window(options.window, options.preset, stack.modality)
    if request.warning and kind != "nifti":  # a NIfTI output is not windowed: nothing to warn about
        events.warn(f"series {stack.id}: {request.warning}")
    limit = {} if options.max_bytes is None else {"max_bytes": options.max_bytes}
    with events.progress(f"loading {stack.id}", stack.n_slices * stack.n_frames) as advance:
        vol = load(stack, allow_gaps=options.allow_gaps, progress=advance, **limit)
    for note in vol.meta.get("warnings") or []:
        events.warn(f"series {stack.id}: {note}")
    result = reslice_volume(vol, mode=options.mode, interp=options.interp, fill=options.fill, **options.grid())
    _check_slice(options, result.shape[0])
    done.files = _write(result, kind, out_path, picture_base, request, options, events, existing.present)
    done.status, done.message = "resliced", ""
    done.tally.done += 1
    return done

"""The work of ``volume reslice`` (declared in :mod:`volume.cli.reslice`): one series resampled onto
a new grid and written as NIfTI, pictures or a DICOM series."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import typer

from ...api import like_grid
from ...api import reslice as reslice_volume
from ...dicom import choose_stack, load
from ...dicom.source import DicomSource
from ...display import display_picture, edge_labels, volume_picture
from ...errors import UsageError
from ...io import formats
from ...io.dicom_out import write_dicom_series
from ...io.image import write_picture
from ...io.names import safe_name
from ...jobs.existing import Tally, check_outputs
from ...ops.reslice import reslice_grid
from ...ops.window import WindowRequest, resolve_window
from ...volume import Volume, closest_plane
from ..app import err, parse_size, progress_bar, warn
from ..outputs import FOLDER, output_kind
from ..reslice import Format, Interp, Plane, SlabMode
from .common import FIRST_NUMBER
from .inputs import read_input

OUTPUT_FORMATS = {suffix: "dcm" if kind == "dicom" else kind for suffix, kind in formats.kinds("reslice").items()}
"""Every file ``-o`` can name, by extension, and what is written (:mod:`volume.io.formats`, the one
registry; its ``dicom`` is ``--format dcm`` here). Any other file extension is a usage error listing
these; a name without one is a folder (of PNG pictures, or of a DICOM series with ``--format dcm``)."""

PICTURE_WIDTH_MIN = 3
"""Fewest digits of the slice number in picture names (``cor_001.png``)."""

IMAGE_TYPE = {"mean": "MPR", "max": "MIP", "min": "MINIP"}
"""Third ImageType value of a DICOM reslice: MPR (or MIP/MINIP for thick max/min slabs)."""


def _numbers(text: str | None, option: str, counts: tuple[int, ...]) -> list[float] | None:
    """Parse ``"1"``, ``"1,2,3"`` into floats, checking how many there are."""
    if text is None:
        return None
    parts = [p for p in text.replace(" ", ",").split(",") if p]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise UsageError(f"{option} takes comma-separated numbers, got {text!r}") from None
    if len(values) not in counts:
        raise UsageError(f"{option} takes {' or '.join(map(str, counts))} numbers, got {len(values)} ({text!r})")
    return values


def _spacing(text: str | None) -> list[float] | None:
    """--spacing: one value, or width,height,depth (column, row, slice) -> (slice, row, column)."""
    values = _numbers(text, "--spacing", (1, 3))
    if values is None:
        return None
    if any(not v > 0 for v in values):
        raise UsageError(f"--spacing must be positive (mm), got {text!r}")
    return values if len(values) == 1 else values[::-1]


def _fov(text: str | None) -> list[float | None] | None:
    """--fov: in-plane square, width,height, or width,height,depth -> (slice, row, column)."""
    values = _numbers(text, "--fov", (1, 2, 3))
    if values is None:
        return None
    if any(not v > 0 for v in values):
        raise UsageError(f"--fov must be positive (mm), got {text!r}")
    if len(values) == 1:
        return [None, values[0], values[0]]
    if len(values) == 2:
        return [None, values[1], values[0]]
    return [values[2], values[1], values[0]]


def _output(out: str | None, fmt: Format, slice_no: int | None) -> tuple[str, Path | None]:
    """What to write and where: ``("nifti" | "dcm" | "png" | "picture", path or None)``.

    ``png`` is a folder of pictures, ``picture`` one picture file (one slice: ``--slice``).
    """
    if out is None:
        kind = fmt.value if fmt != Format.auto else ("png" if slice_no is not None else "nifti")
        return kind, None
    found, path = output_kind(out, OUTPUT_FORMATS)
    if fmt == Format.auto:
        kind = "png" if found == FOLDER else found
    elif fmt == Format.nifti and found != "nifti":
        raise UsageError(f"{out}: NIfTI output needs a name ending in .nii or .nii.gz")
    elif fmt == Format.png and found not in (FOLDER, "picture"):
        raise UsageError(f"{out}: --format png writes pictures: a folder, or a .png with --slice N")
    elif fmt == Format.dcm and found not in (FOLDER, "dcm"):
        raise UsageError(f"{out}: --format dcm writes a DICOM series into a folder (or one .dcm file)")
    else:
        kind = {FOLDER: "png"}.get(found, found) if fmt == Format.png else fmt.value
    if kind == "picture" and slice_no is None:
        stem = path.name[: -len(path.suffix)] if path.suffix else path.name
        raise UsageError(f"{out}: a reslice makes one picture per slice; give a folder (-o {stem}/) for all of "
                         "them, --slice N for slice N alone, or a .nii.gz for the volume")
    if slice_no is not None and kind not in ("png", "picture"):
        raise UsageError("--slice N writes the picture of one slice: give -o NAME.png or a folder")
    return kind, path


def _display_plane(vol: Volume, plane: str | None) -> str:
    if plane is not None:
        return plane
    return closest_plane(vol.direction[:, 0])[0]


def _window(vol: Volume, values, request: WindowRequest, kind: str):
    """The display window of pictures (and DICOM output) drawn from ``values``: the user's, else the
    modality's default (:func:`volume.ops.window.default_window`: the header's window for CT, an
    automatic window of what is drawn otherwise)."""
    return request.choose(values, vol.meta.get("acquisition"), kind=kind)[0]


def _picture_kind(thickness: float | None, mode: str) -> str:
    """Thick maximum slabs are projections (their histogram is not a slice's); the rest are slices."""
    return "projection" if thickness and mode == "max" else "slice"


def _write_pictures(vol: Volume, folder: Path, base: str, plane: str, *, request: WindowRequest,
                    labels: bool, force: bool, kind: str = "slice", only: int | None = None,
                    file: Path | None = None, keep: tuple[Path, ...] = ()) -> list[Path]:
    """Pictures of every slice (``folder/base_001.png``...), of slice ``only`` (1-based) alone, or
    that slice as ``file``. One window for all slices (so slice ``k`` alone is the same picture as
    in the folder). The pictures in ``keep`` exist and are left as they are (a re-run writes the
    missing ones)."""
    meta = vol.meta
    first = vol.frame(0) if vol.is_4d else vol
    if vol.is_4d:
        warn(f"series {meta.get('stack_id', '')}: 4D, the pictures show frame 1 of {vol.n_frames}; "
             "-o NAME.nii.gz keeps every frame")
    flat = np.asarray(first.array).reshape(-1)
    sample = flat[:: max(1, flat.size // 1_000_000)].astype(np.float32)
    invert = str(meta.get("photometric") or "").upper() == "MONOCHROME1"
    letters = edge_labels(plane) if labels else None
    n = first.shape[0]
    width = max(PICTURE_WIDTH_MIN, len(str(n)))
    written = []
    if not first.rgb:
        window = _window(vol, sample, request, kind)
    chosen = range(n) if only is None else [only - FIRST_NUMBER]
    kept = set(keep)
    with progress_bar("writing pictures", len(chosen)) as advance:
        try:
            for k in chosen:
                if first.rgb:
                    img, p = volume_picture(first, plane, axis=0, index=k)
                else:
                    img, p = display_picture(first, plane, window, axis=0, index=k, invert=invert)
                target = file if file is not None else folder / f"{base}_{k + 1:0{width}d}.png"
                if target in kept:
                    advance(1)
                    continue
                written.append(write_picture(target, img, force=force, labels=letters,
                                             scale_bar_mm_per_px=p if labels else None))
                advance(1)
        except BaseException:  # disk full, Ctrl-C: the whole pictures already written are listed
            sys.stdout.write("".join(f"{f}\n" for f in written))
            sys.stdout.flush()
            raise
    return written


def _write_dicom(vol: Volume, out: Path, *, what: str, mode: str, thickness: float | None,
                 request: WindowRequest, keep_phi: bool, force: bool) -> list[Path]:
    window = None
    if not vol.rgb:
        flat = np.asarray(vol.array).reshape(-1)
        w = _window(vol, flat[:: max(1, flat.size // 1_000_000)].astype(np.float32), request,
                    _picture_kind(thickness, mode))
        window = (w.center, w.width)
    tag = IMAGE_TYPE[mode] if thickness else "MPR"
    how = vol.meta.get("reslice", {})
    derivation = f"reslice: {what}, {how.get('interp', 'linear')} interpolation"
    if thickness:
        derivation += f", {thickness:g} mm thick ({mode})"
    total = vol.n_frames * vol.shape[0]
    with progress_bar("writing DICOM", total) as advance:
        files = write_dicom_series(vol, out, force=force, description_suffix=what, derived_from=derivation,
                                   keep_identity=keep_phi, image_type=(tag,),
                                   slice_thickness=float(vol.meta.get("slice_thickness") or vol.spacing[0]),
                                   window=window, progress=advance,
                                   warn=lambda note: warn(f"series {vol.meta.get('stack_id', '')}: {note}"))
    return [Path(f) for f in files]


def reslice(path: Path, *, out: str | None, slice_no: int | None, spacing: str | None, plane: Plane | None,
            normal: str | None, thickness: float | None, mode: SlabMode, like: Path | None, interp: Interp,
            fov: str | None, fmt: Format, fill: float | None, window: str | None, preset: str | None, series: str | None,
            labels: bool, keep_phi: bool, allow_gaps: bool, force: bool, max_memory: str | None) -> None:
    """``volume reslice``: checks, the series loaded, resampled, and written."""
    limit = {} if max_memory is None else {"max_bytes": parse_size(max_memory)}
    spacing_v = _spacing(spacing)
    fov_v = _fov(fov)
    normal_v = _numbers(normal, "--normal", (3,))
    if sum(x is not None for x in (plane, normal_v, like)) > 1:
        raise UsageError("choose one of --plane, --normal and --like")
    if plane is None and normal_v is None and like is None and spacing_v is None:
        raise UsageError("say what to reslice to: --spacing, --plane, --normal or --like")
    if like is not None and (spacing_v is not None or fov_v is not None or thickness is not None):
        raise UsageError("--like takes the other image's whole grid: drop --spacing, --fov and --thickness")
    if thickness is not None and not thickness > 0:
        raise UsageError(f"--thickness must be a positive number of mm, got {thickness}")
    if mode != SlabMode.mean and thickness is None:
        raise UsageError("--mode needs --thickness (the slab in mm to combine)")
    if like is not None and not like.exists():
        raise UsageError(f"{like}: no such file or folder (--like)")
    resolve_window(window, preset)  # a bad --window/--preset is refused before the series is read
    kind, out_path = _output(out, fmt, slice_no)
    if not path.exists():
        raise UsageError(f"{path}: no such file or folder")

    found, series = read_input(path, series, verb="reslicing")
    stack = choose_stack(found, series)
    what = _what(plane, normal_v, like, spacing_v, thickness, mode)
    base = safe_name(f"{stack.name}_{what}")
    n_slices = _n_slices(stack, plane=plane.value if plane else None, normal=normal_v, like=like,
                         spacing=spacing_v, fov=fov_v, thickness=thickness)
    if slice_no is not None and n_slices is not None and slice_no > n_slices:
        raise UsageError(f"--slice {slice_no}: this reslice has {n_slices} slices (--slice 1..{n_slices})")
    if out_path is None:
        out_path = Path(f"{base}.nii.gz") if kind == "nifti" else Path() if slice_no is not None else Path(base)
    # pictures in a folder of their own are named by what they are; one written here by the series too
    picture_base = base if out is None and slice_no is not None else safe_name(what)
    tally = Tally("resliced")
    planned = _planned(kind, out_path, picture_base, n_slices, slice_no)
    existing = check_outputs(planned or [], force=force)
    if existing.all:  # the one rule of every job (volume/jobs/existing.py): the series is not even read
        err(f"series {stack.id}: skipped, {existing.message()}")
        tally.skip_existing()
        err(tally.line())
        raise typer.Exit(tally.exit_code())
    request = resolve_window(window, preset, stack.modality)
    if request.warning and kind != "nifti":  # a NIfTI output is not windowed: nothing to warn about
        warn(f"series {stack.id}: {request.warning}")
    with progress_bar(f"loading {stack.id}", stack.n_slices * stack.n_frames) as advance:
        vol = load(stack, allow_gaps=allow_gaps, progress=advance, **limit)
    for note in vol.meta.get("warnings") or []:
        warn(f"series {stack.id}: {note}")

    result = reslice_volume(
        vol, plane=plane.value if plane else None, normal=normal_v, like=like,
        spacing=spacing_v, fov=fov_v, thickness=thickness, mode=mode.value, interp=interp.value, fill=fill,
    )
    n_slices = result.shape[0]
    if slice_no is not None and slice_no > n_slices:
        raise UsageError(f"--slice {slice_no}: this reslice has {n_slices} slices (--slice 1..{n_slices})")
    written: list[Path]
    if kind == "nifti":
        written = [formats.writer("reslice", out_path)(result, out_path, force=force)]
    elif kind == "dcm":
        written = _write_dicom(result, out_path, what=what.replace("_", " "), mode=mode.value, thickness=thickness,
                               request=request, keep_phi=keep_phi, force=force)
    else:
        display_plane = _display_plane(result, plane.value if plane else None)
        written = _write_pictures(result, out_path, picture_base, display_plane, request=request, labels=labels,
                                  force=force, kind=_picture_kind(thickness, mode.value), only=slice_no,
                                  file=out_path if kind == "picture" else None, keep=existing.present)
    for f in written:
        sys.stdout.write(f"{f}\n")
    sys.stdout.flush()
    tally.done += 1
    err(tally.line())


def _what(plane: Plane | None, normal: list[float] | None, like: Path | None, spacing: list[float] | None,
          thickness: float | None, mode: SlabMode) -> str:
    """What a reslice makes, for its names: ``coronal``, ``iso_1mm``, ``oblique_5mm_max``..."""
    if plane is not None:
        what = plane.value
    elif normal is not None:
        what = "oblique"
    elif like is not None:
        what = "like"
    else:
        what = "iso" if spacing and len(spacing) == 1 else "resampled"
    if spacing and like is None:
        what += "_" + "x".join(f"{v:g}" for v in spacing[::-1]) + "mm"
    if thickness:
        what += f"_{thickness:g}mm_{mode.value}"
    return what


def _n_slices(stack, **grid) -> int | None:
    """Slices of the reslice of ``stack``, from its headers (None when they give no grid: loading says why)."""
    if stack.problem or stack.geometry is None:
        return None
    source = DicomSource(stack)
    geometry = Volume(np.broadcast_to(np.uint8(0), tuple(source.shape[-3:])), source.affine)  # holds no voxel
    like = grid.pop("like")
    _, shape, _ = reslice_grid(geometry, like=like_grid(like) if like is not None else None, **grid)
    return shape[0]


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

"""``volume reslice``: multiplanar reformats, isotropic resampling, oblique planes, another image's grid.

The declaration of the command; its work is :mod:`volume.cli.work.reslice`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..choices import INTERPOLATIONS, PLANES, RESLICE_FORMATS, SLAB_MODES
from ..io.formats import help_list
from ..ops.presets import PRESET_HELP
from .app import SERIES_HELP, app, choice_enum, given

Plane = choice_enum("Plane", PLANES, "Anatomical planes.")


Interp = choice_enum("Interp", INTERPOLATIONS, "Interpolation.")


SlabMode = choice_enum("SlabMode", SLAB_MODES, "How thick slices combine their samples.")


Format = choice_enum("Format", RESLICE_FORMATS, "Output formats.")


@app.command("reslice")
def reslice_command(
    path: Annotated[Path, typer.Argument(help="A DICOM folder (searched recursively) or file holding one series (or choose with --series).")],
    out: Annotated[str | None, typer.Option("--output", "-o", metavar="PATH", help=f"A file: {help_list('reslice')} (a picture: one slice, --slice N); or a folder of PNG pictures, or (with --format dcm) a folder for a DICOM series. Default: <series>_<what>.nii.gz here.")] = None,
    slice_no: Annotated[int | None, typer.Option("--slice", min=1, help="Write the picture of this slice only (1-based, as picture names count): -o NAME.png, or into the -o folder.")] = None,
    spacing: Annotated[str | None, typer.Option("--spacing", help="Voxel size in mm: one value (isotropic) or WIDTH,HEIGHT,DEPTH (column, row, slice). Alone: keep the series' orientation.")] = None,
    plane: Annotated[Plane | None, typer.Option("--plane", "-p", help="A grid aligned with the patient axes: axial (slices inferior->superior), coronal (anterior->posterior), sagittal (left->right).")] = None,
    normal: Annotated[str | None, typer.Option("--normal", help="Oblique slices perpendicular to X,Y,Z (LPS: +x patient's left, +y posterior, +z superior), e.g. 0.2,0.1,0.97.")] = None,
    thickness: Annotated[float | None, typer.Option("--thickness", help="Thick slices: combine this many mm along the slice direction (slices this far apart unless --spacing).")] = None,
    mode: Annotated[SlabMode, typer.Option("--mode", "-m", help="How --thickness combines: mean (average), max (slab MIP) or min.")] = SlabMode.mean,
    like: Annotated[Path | None, typer.Option("--like", help="Resample onto this image's exact grid: a NIfTI file or a DICOM series.")] = None,
    interp: Annotated[Interp, typer.Option("--interp", help="nearest (label maps), linear, or cubic (B-spline).")] = Interp.linear,
    fov: Annotated[str | None, typer.Option("--fov", help="Crop to this field of view in mm, centred on the series: SIZE (in-plane square), WIDTH,HEIGHT, or WIDTH,HEIGHT,DEPTH. Default: the whole series.")] = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="auto (from -o: .nii/.nii.gz NIfTI, .dcm DICOM, else a folder of PNGs), nifti, png, or dcm (a new DICOM series in the -o folder).")] = Format.auto,
    fill: Annotated[float | None, typer.Option("--fill", help="Value outside the series (default: -1024 for CT, 0 otherwise).")] = None,
    window: Annotated[str | None, typer.Option("--window", "-w", help="PNG/DICOM display window CENTER,WIDTH, a preset name, 'dicom' or 'auto'. Default: the series' window for CT, else an automatic window of the slices drawn (of the slabs: --thickness with --mode max draws projections).")] = None,
    preset: Annotated[str | None, typer.Option("--preset", metavar="NAME", help=f"PNG/DICOM display window by name. {PRESET_HELP}")] = None,
    series: Annotated[str | None, typer.Option("--series", "-s", help=SERIES_HELP)] = None,
    labels: Annotated[bool, typer.Option("--labels/--no-labels", help="Orientation letters and a scale bar on PNG pictures.")] = True,
    keep_phi: Annotated[bool, typer.Option("--keep-phi", help="DICOM output: copy patient and study identity from the source so the series joins its study (default: none, and the files say they were de-identified).")] = False,
    allow_gaps: Annotated[bool, typer.Option("--allow-gaps", help="Resample series with missing slices instead of refusing them.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing outputs.")] = False,
    max_memory: Annotated[str | None, typer.Option("--max-memory", help="Refuse a series whose headers claim more memory than this (e.g. 8G, 500M; default 16G).")] = None,
) -> None:
    """Resample one series onto a new grid: isotropic voxels, a patient-aligned plane, oblique planes or another image's grid.

    Every output voxel is the series interpolated at that voxel's own patient position. Outside the series: air (-1024) for CT, 0 otherwise (--fill).

    --plane grids are aligned with the patient axes even for oblique acquisitions and cover the whole series unless --fov. --thickness averages (or with --mode max/min, takes the maximum/minimum) over the slab instead of sampling one plane.

    Output: .nii/.nii.gz; a folder of PNG pictures (radiology display conventions, square pixels); or --format dcm, a new derived DICOM series (new UIDs, position and orientation per slice; no patient identity unless --keep-phi). Each written file is printed.
    """
    from .work import reslice as work  # the work imports numpy and the library: only when the command runs
    work.reslice(**given(locals()))

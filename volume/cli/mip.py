"""``volume mip``: maximum / minimum / mean intensity projections as pictures, NIfTI or DICOM.

The declaration of the command; its work is :mod:`volume.cli.work.mip`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..choices import PLANES, PROJECTION_MODES
from ..io.formats import help_list
from ..ops.presets import PRESET_HELP
from .app import SERIES_HELP, app, choice_enum, given

Plane = choice_enum("Plane", PLANES, "Anatomical planes.")


Mode = choice_enum("Mode", PROJECTION_MODES, "Projection modes.")


@app.command("mip")
def mip_command(
    path: Annotated[Path, typer.Argument(help="A DICOM folder (searched recursively) or file.")],
    plane: Annotated[Plane, typer.Option("--plane", "-p", help="Anatomical plane of the picture: the projection looks along its normal.")] = Plane.coronal,
    planes: Annotated[str | None, typer.Option("--planes", help="'all' (axial, coronal, sagittal side by side on one sheet) or a comma list.")] = None,
    mode: Annotated[Mode, typer.Option("--mode", "-m", help="max (MIP), min (MinIP) or mean intensity.")] = Mode.max,
    out: Annotated[str | None, typer.Option("--output", "-o", metavar="PATH", help=f"A file: {help_list('mip')}; or a folder. Default: <series>_mip_<plane>.png here.")] = None,
    slab: Annotated[float | None, typer.Option("--slab", help="Thick slabs of this many mm (one projection per slab).")] = None,
    step: Annotated[float | None, typer.Option("--step", help="Distance in mm between slab starts (default: --slab; smaller overlaps).")] = None,
    window: Annotated[str | None, typer.Option("--window", "-w", help="Display window CENTER,WIDTH (e.g. 40,400), a preset name, 'dicom' (the series' own window) or 'auto' (percentiles). Default: dicom for CT, auto otherwise.")] = None,
    preset: Annotated[str | None, typer.Option("--preset", metavar="NAME", help=PRESET_HELP)] = None,
    cmap: Annotated[str | None, typer.Option("--cmap", help="Colour map: gray, hot, bone, viridis, inferno, jet.")] = None,
    series: Annotated[str | None, typer.Option("--series", "-s", help=SERIES_HELP)] = None,
    resample: Annotated[bool, typer.Option("--resample", help="Reslice onto the patient-aligned grid first (exact planes for oblique series).")] = False,
    labels: Annotated[bool, typer.Option("--labels/--no-labels", help="Orientation letters and a scale bar on pictures.")] = True,
    allow_gaps: Annotated[bool, typer.Option("--allow-gaps", help="Resample series with missing slices instead of refusing them.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing outputs.")] = False,
    keep_phi: Annotated[bool, typer.Option("--keep-phi", help="A .dcm output keeps the source's patient and study identity (joins its study); default: none, and the file says it was de-identified.")] = False,
    max_memory: Annotated[str | None, typer.Option("--max-memory", help="Refuse a series whose pixels need more memory than this (e.g. 8G, 500M; default 16G); a streamed projection needs one chunk of 32 slices.")] = None,
    turntable: Annotated[int | None, typer.Option("--turntable", help="A rotating projection: N views turning once around the patient, as .mp4/.webm (the movie extra) or .gif.")] = None,
    axis: Annotated[str, typer.Option("--axis", help="Turntable axis: S (default: the long axis, anterior -> left -> posterior), I, L, R, A or P.")] = "S",
    size: Annotated[str, typer.Option("--size", help="Turntable picture size WIDTHxHEIGHT in pixels.")] = "600x600",
) -> None:
    """Project every volume under PATH along an anatomical plane (MIP, MinIP, mean; whole or slabs).

    Pictures follow radiology conventions (axial: anterior up, patient's left on the right; coronal: superior up, left on the right; sagittal: superior up, anterior on the left) with square pixels in mm, orientation letters and a scale bar.

    Windowing: --window/--preset; else the series' DICOM window for CT; else a robust percentile window of the projection (MR windows are set for single slices and saturate a MIP; --window dicom uses them anyway). MONOCHROME1 is inverted.

    NIfTI output has one voxel along the projected axis at the slab centre, so it overlays the source. Each written file is printed.
    """
    from .work import mip as work  # the work imports numpy and the library: only when the command runs
    work.mip(**given(locals()))

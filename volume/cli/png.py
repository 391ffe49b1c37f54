"""``volume png``: every DICOM image under a path to PNG/JPEG (or GIF), in parallel.

The declaration of the command; its work is :mod:`volume.cli.work.png`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..choices import PICTURE_FORMATS
from ..io.formats import help_list
from ..ops.presets import PRESET_HELP
from .app import app, choice_enum, given

PictureFormat = choice_enum("PictureFormat", PICTURE_FORMATS, "Output picture formats.")


@app.command("png")
def png_command(
    path: Annotated[Path, typer.Argument(help="A DICOM file or a folder (searched recursively).")],
    out: Annotated[str | None, typer.Option("--output", "-o", "--out", metavar="PATH", help=f"Output folder (mirrors the input's relative paths); for one input file also a file: {help_list('png')}. Default: here (the current folder).")] = None,
    fmt: Annotated[PictureFormat, typer.Option("--format", "-f", help="Picture format.")] = PictureFormat.png,
    quality: Annotated[int, typer.Option(min=1, max=100, help="JPEG quality.")] = 95,
    size: Annotated[int | None, typer.Option(min=1, max=8192, help="Resize (Lanczos) to SIZE x SIZE pixels (at most 8192).")] = None,
    keep_ratio: Annotated[bool, typer.Option("--keep-ratio", help="With --size: longest side SIZE, aspect kept.")] = False,
    square_pixels: Annotated[bool, typer.Option("--square-pixels", help="Resample (Lanczos) so pixels are square in mm (from PixelSpacing); default keeps the stored grid.")] = False,
    window: Annotated[str | None, typer.Option("--window", "-w", help="Window CENTER,WIDTH in modality units (e.g. 40,400), a preset name, 'auto' (the percentile window) or 'dicom' (the header's, the default); overrides the header.")] = None,
    preset: Annotated[str | None, typer.Option("--preset", metavar="NAME", help=PRESET_HELP)] = None,
    raw16: Annotated[bool, typer.Option("--raw16", help="16-bit PNG of modality values, no windowing (modality = png*slope+intercept, stored as PNG text).")] = False,
    gif: Annotated[bool, typer.Option("--gif", help="Multi-frame files become one animated GIF at the header's frame time.")] = False,
    workers: Annotated[int | None, typer.Option("--workers", "-j", min=1, help="Worker processes (default: all cores).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing pictures.")] = False,
) -> int:
    """Write every image under PATH as a picture through the DICOM display pipeline.

    Modality LUT / rescale, then the header's VOI LUT or window (or --window/--preset, or a
    percentile window when the header has none), then MONOCHROME1 inversion. Palette and YBR
    colour become RGB. Multi-frame files give NAME_f0001.png, NAME_f0002.png... Files without
    pixel data (SR, RT plans) are skipped and counted. Existing pictures are kept unless --force.
    Exit code 1 when some files failed (listed at the end).
    """
    from .work import png as work  # the work imports numpy and the library: only when the command runs
    return work.png(**given(locals()))

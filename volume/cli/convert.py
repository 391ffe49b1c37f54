"""``volume convert``: every stack under a path to NIfTI (+ JSON sidecar).

The declaration of the command; its work is :mod:`volume.cli.work.convert`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..choices import NIFTI_FORMATS, SCALINGS
from .app import SERIES_HELP, app, choice_enum, given

NiftiFormat = choice_enum("NiftiFormat", NIFTI_FORMATS, "Output file format.")


Scaling = choice_enum("Scaling", SCALINGS, "Which values Philips images are written with.")


@app.command("convert")
def convert_command(
    path: Annotated[Path, typer.Argument(help="A DICOM folder (searched recursively) or file.")],
    output: Annotated[str | None, typer.Option("--output", "-o", metavar="FOLDER", help="Output folder (created if missing). Default: here (the current folder).")] = None,
    fmt: Annotated[NiftiFormat, typer.Option("--format", "-f", help="nii.gz (compressed, default) or nii.")] = NiftiFormat.nii_gz,
    series: Annotated[
        str | None,
        typer.Option("--series", "-s", help=SERIES_HELP),
    ] = None,
    allow_gaps: Annotated[
        bool, typer.Option("--allow-gaps", help="Resample series with missing slices onto a uniform grid instead of refusing them.")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing outputs (default: keep them and skip).")] = False,
    keep_phi: Annotated[
        bool, typer.Option("--keep-phi", help="Write identity (patient name, ID, birth date, study dates, UIDs, institution: docs/privacy.md) into the sidecars; the --report never holds any.")
    ] = False,
    sidecar: Annotated[bool, typer.Option("--sidecar/--no-sidecar", help="Write a JSON sidecar beside each image.")] = True,
    threads: Annotated[
        int, typer.Option("--threads", min=0, help="gzip compression threads per file (0: one per core, at most 4, in this process; 1 in a pool or cluster).")
    ] = 0,
    max_memory: Annotated[
        str | None,
        typer.Option("--max-memory", help="Memory budget per series (e.g. 8G, 500M; default: half the memory available). Series are streamed slab by slab whatever their size; one whose tilt or gaps are resampled is loaded whole and refused above it."),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers", "-j", min=1,
            help="Worker processes, one series each (default: all cores when there are several series and 8 MiB or "
            "more of images to compress or decode; 1: this process).",
        ),
    ] = None,
    skip_existing: Annotated[
        bool,
        typer.Option(
            "--skip-existing",
            help="Resume an interrupted run: series whose outputs all exist count as done (exit 0); missing outputs are written.",
        ),
    ] = False,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            help="Run the series on a dask.distributed cluster (tcp://host:8786); workers must see the same paths. "
            "Needs dask.distributed (the dask extra of volume).",
        ),
    ] = None,
    report_path: Annotated[
        Path | None,
        typer.Option("--report", help="Write a JSON report: per series status, files, warnings, errors, seconds; totals."),
    ] = None,
    philips_scaling: Annotated[
        Scaling,
        typer.Option(
            "--philips-scaling",
            help="precise: Philips' measured floating-point values (ScaleSlope 2005,100E, or the RealWorldValueMapping), "
            "as dcm2niix writes them; display: DICOM's display values (Rescale Slope/Intercept). Other vendors: no difference.",
        ),
    ] = Scaling.precise,
    single_file: Annotated[
        bool,
        typer.Option("--single-file", help="PATH is one file: convert that image alone. Default: a file stands for its series (the images of that series in its folder), as with dcm2niix."),
    ] = False,
) -> None:
    """Convert every stack under PATH to <SeriesNumber>_<SeriesDescription>[_label].nii.gz + .json.

    Stacks split from one series get a label (echoes _e1/_e2, _ph for phase, localizer planes).
    Prints each written file on stdout, problems and a summary (converted, skipped, failed) on
    stderr. Exit code 1 when a series failed (the others are converted), 5 when every output
    existed already (not with --skip-existing), 2 for bad options or an unreachable scheduler,
    130 after Ctrl-C (finished series stay; --skip-existing resumes).
    """
    from .work import convert as work  # the work imports numpy and the library: only when the command runs
    work.convert(**given(locals()))

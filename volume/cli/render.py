"""``volume render`` (offscreen pictures, turntable GIFs), ``volume view`` (a 3D window), ``volume mesh``.

The declarations of the commands (and ``volume serve``); their work is :mod:`volume.cli.work.render`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..choices import MAPPERS, MESH_COORDS, RENDER_MODES, RENDER_PRESETS, TURN_AXES, VIEWS
from ..io.formats import help_list
from ..ops.presets import preset_list
from .app import SERIES_HELP, app, choice_enum, given

PathArg = Annotated[Path, typer.Argument(help="A DICOM folder or file (searched recursively).")]
SeriesOpt = Annotated[
    str | None, typer.Option("--series", "-s", help=SERIES_HELP)
]
FrameOpt = Annotated[int, typer.Option("--frame", min=1, help="Frame of a 4D series to use (1-based, as viewers count).")]
GapsOpt = Annotated[bool, typer.Option("--allow-gaps", help="Resample a series with a missing slice instead of refusing.")]
LevelOpt = Annotated[
    float | None, typer.Option("--level", help="Isosurface value in the series' units (HU for CT). Default: 300 for CT, else mid-range.")
]
MaxMemoryOpt = Annotated[
    str | None,
    typer.Option("--max-memory", help="Refuse a series whose headers claim more memory than this (e.g. 8G, 500M; default 16G)."),
]
WindowOpt = Annotated[
    str | None,
    typer.Option("--window", "-w", help="Grey ramp CENTER,WIDTH, a preset name (as --preset), 'dicom' (the series' window) or 'auto', for mip/minip; and the range the mr preset spans."),
]


Mode = choice_enum("Mode", RENDER_MODES, "Rendering modes.")


View = choice_enum("View", VIEWS, "Where the camera stands, relative to the patient.")


Axis = choice_enum("Axis", TURN_AXES, "Patient axis a turntable turns about (counter-clockwise seen from its head).")


AxisOpt = Annotated[
    Axis,
    typer.Option("--axis", help="Turntable axis: S (default: the long axis, anterior -> left -> posterior), I, L, R, A or P.", case_sensitive=False),
]
TurntableOpt = Annotated[
    int | None,
    typer.Option("--turntable", help="N views turning once around the patient, written as an .mp4/.webm movie (the movie extra) or .gif."),
]


MapperName = choice_enum("MapperName", MAPPERS, "Volume mapper.")


MapperOpt = Annotated[
    MapperName,
    typer.Option("--mapper", help="auto: the CPU ray caster on software OpenGL (llvmpipe), the GPU ray caster otherwise."),
]


Coords = choice_enum("Coords", MESH_COORDS, "Patient coordinate frame of a written mesh.")


PresetOpt = Annotated[
    str | None,
    typer.Option("--preset", metavar="NAME", help=(
        f"Named preset: {preset_list()}. --mode vr draws the transfer function of bone, soft-tissue, lung "
        f"or mr ({', '.join(RENDER_PRESETS)}); mip/minip take the preset's window as their grey ramp. "
        "Default: bone for CT, mr otherwise.")),
]
ModeOpt = Annotated[Mode, typer.Option("--mode", "-m", help="vr (composite volume rendering), mip, minip, or iso (isosurface at --level).")]


@app.command("render")
def render_command(
    path: PathArg,
    output: Annotated[Path | None, typer.Option("--output", "-o", help=f"File to write: {help_list('render')}. Default: <series>_render_<mode>_<view>.png (.gif with --turntable) here.")] = None,
    mode: ModeOpt = Mode.vr,
    preset: PresetOpt = None,
    level: LevelOpt = None,
    window: WindowOpt = None,
    view: Annotated[View, typer.Option("--view", help="Camera position: anterior looks at the face (patient's left on the right).")] = View.anterior,
    size: Annotated[str, typer.Option("--size", help="Picture size WIDTHxHEIGHT in pixels.")] = "600x600",
    azimuth: Annotated[float, typer.Option("--azimuth", help="Turn the camera about the patient's long axis (degrees).")] = 0.0,
    elevation: Annotated[float, typer.Option("--elevation", help="Raise the camera (degrees).")] = 0.0,
    perspective: Annotated[bool, typer.Option("--perspective", help="Perspective projection (default: parallel, distances true to scale).")] = False,
    turntable: TurntableOpt = None,
    axis: AxisOpt = Axis.S,
    marker: Annotated[bool, typer.Option("--marker/--no-marker", help="Orientation cube (L/R, A/P, S/I) in the lower-left corner.")] = True,
    mapper: MapperOpt = MapperName.auto,
    series: SeriesOpt = None,
    frame: FrameOpt = 1,
    allow_gaps: GapsOpt = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing output.")] = False,
    max_memory: MaxMemoryOpt = None,
) -> None:
    """Render a series offscreen (no display needed): volume rendering, MIP, MinIP or isosurface.

    The camera is placed in the patient's frame from the DICOM geometry, so `--view anterior` shows
    the face with the patient's left on the picture's right and superior up, whatever the
    acquisition orientation. Slice spacing is physical.
    """
    from .work import render as work  # the work imports numpy and the library: only when the command runs
    work.render(**given(locals()))


WebOpt = Annotated[bool, typer.Option("--web", help="Serve the view as a web page (for a server without a screen; reach it over SSH).")]
HostOpt = Annotated[
    str, typer.Option("--host", help="Web view: interface to listen on. 127.0.0.1 (default) is this machine only; 0.0.0.0 is every network.")
]
PortOpt = Annotated[int, typer.Option("--port", help="Web view: port to listen on (0: a free one).", min=0, max=65535)]
KeepPhiOpt = Annotated[bool, typer.Option("--keep-phi", help="Web view: show the patient's name and ID in the page title.")]
LocalOpt = Annotated[bool, typer.Option("--local", help="Web view: the browser draws the view itself (WebGL, vtk.js; dragging needs no round trip, a reduced copy of the volume is sent to it) instead of receiving pictures from this machine.")]


@app.command("view")
def view_command(
    path: PathArg,
    mode: ModeOpt = Mode.vr,
    preset: PresetOpt = None,
    level: LevelOpt = None,
    window: WindowOpt = None,
    size: Annotated[str, typer.Option("--size", help="Window size WIDTHxHEIGHT in pixels.")] = "1000x800",
    screenshots: Annotated[Path, typer.Option("--screenshots", help="Folder where the s key saves screenshots.")] = Path("."),
    mapper: MapperOpt = MapperName.auto,
    web: WebOpt = False,
    local: LocalOpt = False,
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 8080,
    keep_phi: KeepPhiOpt = False,
    series: SeriesOpt = None,
    frame: FrameOpt = 1,
    allow_gaps: GapsOpt = False,
    max_memory: MaxMemoryOpt = None,
) -> None:
    """Open an interactive 3D window: volume rendering, three slice planes, orientation cube.

    Keys: v volume rendering, m MIP, n MinIP, i isosurface; 1/2/3 show/hide the axial/coronal/
    sagittal plane (a plane shown becomes the active one); Page Up/Down move the active plane;
    [ ] step through a 4D series' frames; right-drag window/level; r reset camera; s screenshot;
    q quit. Left-drag rotates, wheel zooms, middle-drag pans. With --web the same view is served
    as a web page instead (see `volume serve`).
    """
    from .work import render as work  # the work imports numpy and the library: only when the command runs
    work.view(**given(locals()))


@app.command("serve")
def serve_command(
    path: PathArg,
    mode: ModeOpt = Mode.vr,
    preset: PresetOpt = None,
    level: LevelOpt = None,
    window: WindowOpt = None,
    mapper: MapperOpt = MapperName.auto,
    local: LocalOpt = False,
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 8080,
    keep_phi: KeepPhiOpt = False,
    series: SeriesOpt = None,
    frame: FrameOpt = 1,
    allow_gaps: GapsOpt = False,
    max_memory: MaxMemoryOpt = None,
) -> None:
    """Serve the 3D view as a web page (`volume view --web`): for series on a machine without a screen.

    Prints the page's URL (with its access token) on stdout. The picture is rendered on this
    machine (offscreen VTK, the same scene as `volume view`); the browser shows it and sends the
    mouse back. Listens on 127.0.0.1 only unless --host says otherwise: from your desktop, tunnel
    with `ssh -L 8080:localhost:8080 server` and open the printed URL. Ctrl-C stops it.
    """
    from .work import render as work  # the work imports numpy and the library: only when the command runs
    work.serve(**given(locals()))


@app.command("mesh")
def mesh_command(
    path: PathArg,
    output: Annotated[Path | None, typer.Option("--output", "-o", help=f"Mesh to write: {help_list('mesh')}. Default: <series>_mesh_<level>.stl here.")] = None,
    level: LevelOpt = None,
    coords: Annotated[Coords, typer.Option("--coords", help="Patient frame of the points: lps (DICOM, 3D Slicer) or ras (NIfTI).")] = Coords.lps,
    smooth: Annotated[int, typer.Option("--smooth", help="Windowed-sinc smoothing iterations (0: none; 20 is gentle).", min=0, max=500)] = 0,
    largest: Annotated[bool, typer.Option("--largest", help="Keep only the largest connected piece.")] = False,
    series: SeriesOpt = None,
    frame: FrameOpt = 1,
    allow_gaps: GapsOpt = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing output.")] = False,
    max_memory: MaxMemoryOpt = None,
) -> None:
    """Extract the isosurface at --level as a triangle mesh in patient millimetres (for printing, CAD).

    Points are in the patient's LPS frame by default (x to the left, y posterior, z superior, as
    DICOM and 3D Slicer), or RAS with --coords ras.
    """
    from .work import render as work  # the work imports numpy and the library: only when the command runs
    work.mesh(**given(locals()))

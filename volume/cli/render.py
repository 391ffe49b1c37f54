"""``volume render`` (offscreen pictures, turntable GIFs), ``volume view`` (a 3D window), ``volume mesh``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..choices import MAPPERS, MESH_COORDS, RENDER_MODES, RENDER_PRESETS, TURN_AXES, VIEWS
from ..errors import UsageError
from ..io.atomic import check_writable
from ..io.names import series_stem
from .app import SERIES_HELP, app, choice_enum, progress_bar, warn
from .app import parse_size as parse_bytes

PathArg = Annotated[Path, typer.Argument(help="A DICOM folder or file (searched recursively).")]
SeriesOpt = Annotated[
    str | None, typer.Option("--series", "-s", help=SERIES_HELP)
]
FrameOpt = Annotated[int, typer.Option("--frame", help="Frame of a 4D series to use (0-based).")]
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
    typer.Option("--window", "-w", help="Grey ramp CENTER,WIDTH (or a CT preset: bone, lung...) for mip/minip, and the range the mr preset spans."),
]


Mode = choice_enum("Mode", RENDER_MODES, "Rendering modes.")


View = choice_enum("View", VIEWS, "Where the camera stands, relative to the patient.")


PresetName = choice_enum("PresetName", RENDER_PRESETS, "Volume rendering transfer functions.")


Axis = choice_enum("Axis", TURN_AXES, "Patient axis a turntable turns about (counter-clockwise seen from its head).")


AxisOpt = Annotated[
    Axis,
    typer.Option("--axis", help="Turntable axis: S (default: the long axis, anterior -> left -> posterior), I, L, R, A or P.", case_sensitive=False),
]
TurntableOpt = Annotated[
    int | None,
    typer.Option("--turntable", help="N views turning once around the patient, written as an .mp4/.webm movie (the movie extra) or .gif."),
]
ANIMATION_SUFFIXES = (".gif", ".mp4", ".webm")
"""Outputs that hold a turntable: an animated GIF (Pillow) or a movie (imageio-ffmpeg)."""
MAX_TURNTABLE = 720
"""Most frames a turntable may have."""


def check_turntable(output: Path, turntable: int | None) -> None:
    """The output suffix fits --turntable (and the movie extra is there for a movie)."""
    suffix = output.suffix.lower()
    if turntable is None:
        return
    if suffix not in ANIMATION_SUFFIXES:
        raise UsageError(f"{output}: --turntable writes an .mp4 or .webm movie, or an animated .gif")
    if not 1 <= turntable <= MAX_TURNTABLE:
        raise UsageError(f"--turntable must be 1..{MAX_TURNTABLE} frames, got {turntable}")
    if suffix != ".gif":
        from ..io.movie import check_movie_support

        check_movie_support(output)


def write_animation(frames, output: Path, force: bool) -> Path:
    """Write turntable frames as a GIF or a movie, by the output's suffix."""
    if output.suffix.lower() == ".gif":
        from ..render.offscreen import write_gif

        return write_gif(frames, output, force=force)
    from ..io.movie import write_movie

    return write_movie(frames, output, force=force)


MapperName = choice_enum("MapperName", MAPPERS, "Volume mapper.")


MapperOpt = Annotated[
    MapperName,
    typer.Option("--mapper", help="auto: the CPU ray caster on software OpenGL (llvmpipe), the GPU ray caster otherwise."),
]


Coords = choice_enum("Coords", MESH_COORDS, "Patient coordinate frame of a written mesh.")


PresetOpt = Annotated[
    PresetName | None, typer.Option("--preset", help="Transfer function for --mode vr. Default: ct-bone for CT, mr otherwise.")
]
ModeOpt = Annotated[Mode, typer.Option("--mode", "-m", help="vr (composite volume rendering), mip, minip, or iso (isosurface at --level).")]


def _load(path: Path, series: str | None, frame: int, allow_gaps: bool, max_memory: str | None = None,
          verb: str = "rendering"):
    """The series to show; ``max_memory`` (``--max-memory``) bounds the pixel memory it may claim.
    A file stands for its series (see :func:`volume.cli.inputs.scan_input`)."""
    from ..dicom import load
    from .inputs import scan_input

    limit = {} if max_memory is None else {"max_bytes": parse_bytes(max_memory)}
    found, series = scan_input(path, series, verb=verb)
    vol = load(found, series, allow_gaps=allow_gaps, **limit)
    if vol.is_4d:
        if not 0 <= frame < vol.n_frames:
            raise UsageError(f"--frame {frame} is out of range: this series has {vol.n_frames} frames (0..{vol.n_frames - 1})")
        warn(f"series {vol.meta.get('stack_id', '')}: 4D, {vol.n_frames} frames: using frame {frame} "
             "(--frame picks another)")
    elif frame != 0:
        raise UsageError(f"--frame {frame}: this series is 3D (only frame 0)")
    return vol


def _warn_presets(vol, preset: PresetName | None, window: str | None) -> None:
    """Warn when a preset (``--preset``, or a window preset named by ``--window``) was made for
    another modality than the series': CT presets are in Hounsfield units, ``mr`` is for the rest."""
    from ..ops.presets import preset_name, preset_warning

    series = f"series {vol.meta.get('stack_id') or ''}".strip()
    modality = vol.meta.get("modality")
    notes = []
    if preset is not None:
        notes.append(preset_warning("--preset", preset.value, hounsfield=preset.value.startswith("ct-"),
                                    modality=modality))
    named = preset_name(window)
    if named is not None:
        notes.append(preset_warning("--window", named, hounsfield=True, modality=modality))
    for note in notes:
        if note:
            warn(f"{series}: {note}")


def _window(text: str | None) -> tuple[float, float] | None:
    if text is None:
        return None
    from ..ops.window import parse_window

    try:
        w = parse_window(text)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return (w.low, w.high)


@app.command("render")
def render_command(
    path: PathArg,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Picture to write: .png/.jpg/.tif; with --turntable .mp4, .webm or .gif. Default: <series>_render_<mode>_<view>.png (.gif with --turntable) here.")] = None,
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
    frame: FrameOpt = 0,
    allow_gaps: GapsOpt = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing output.")] = False,
    max_memory: MaxMemoryOpt = None,
) -> None:
    """Render a series offscreen (no display needed): volume rendering, MIP, MinIP or isosurface.

    The camera is placed in the patient's frame from the DICOM geometry, so `--view anterior` shows
    the face with the patient's left on the picture's right and superior up, whatever the
    acquisition orientation. Slice spacing is physical.
    """
    from ..render.offscreen import IMAGE_FORMATS, check_turn, parse_size, render, write_picture
    from ..render.offscreen import turntable as spin

    wh = parse_size(size)
    default_suffix = ".gif" if turntable is not None else ".png"
    suffix = output.suffix.lower() if output is not None else default_suffix
    if turntable is None and suffix not in IMAGE_FORMATS:
        hint = " (add --turntable N for an animation)" if suffix in ANIMATION_SUFFIXES else ""
        raise UsageError(f"{output}: use a .png, .jpg or .tif picture{hint}")
    check_turntable(output if output is not None else Path("render" + default_suffix), turntable)
    if turntable is not None:
        check_turn(view.value, axis.value)
    if output is not None:
        check_writable(output, force=force)
    vol = _load(path, series, frame, allow_gaps, max_memory)
    if output is None:
        output = check_writable(f"{series_stem(vol.meta)}_render_{mode.value}_{view.value}{default_suffix}", force=force)
    _warn_presets(vol, preset, window)
    options = dict(
        mode=mode.value, preset=preset.value if preset else None, level=level, window=_window(window),
        view=view.value, size=wh, elevation=elevation, parallel=not perspective, frame=frame, marker=marker,
        mapper=mapper.value,
    )
    if turntable is None:
        pixels = render(vol, azimuth=azimuth, **options)
        written = write_picture(pixels, output, force=force)
    else:
        with progress_bar("rendering", turntable) as advance:
            frames = spin(vol, turntable, axis=axis.value, progress=advance, **options)
        written = write_animation(frames, output, force)
    typer.echo(str(written))


WebOpt = Annotated[bool, typer.Option("--web", help="Serve the view as a web page (for a server without a screen; reach it over SSH).")]
HostOpt = Annotated[
    str, typer.Option("--host", help="Web view: interface to listen on. 127.0.0.1 (default) is this machine only; 0.0.0.0 is every network.")
]
PortOpt = Annotated[int, typer.Option("--port", help="Web view: port to listen on (0: a free one).", min=0, max=65535)]
KeepPhiOpt = Annotated[bool, typer.Option("--keep-phi", help="Web view: show the patient's name and ID in the page title.")]


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
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 8080,
    keep_phi: KeepPhiOpt = False,
    series: SeriesOpt = None,
    frame: FrameOpt = 0,
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
    from ..render.offscreen import parse_size

    wh = parse_size(size)
    if web:
        _serve(path, mode, preset, level, window, mapper, host, port, keep_phi, series, frame, allow_gaps, max_memory)
        return
    from ..render.interactive import build_viewer

    if not screenshots.is_dir():
        raise UsageError(f"{screenshots}: not a folder (for --screenshots)")
    vol = _load(path, series, frame, allow_gaps, max_memory, verb="showing")
    _warn_presets(vol, preset, window)
    viewer = build_viewer(
        vol, mode=mode.value, preset=preset.value if preset else None, level=level, window=_window(window),
        size=wh, frame=frame, screenshot_dir=screenshots, on_screenshot=lambda p: typer.echo(str(p)),
        mapper=mapper.value,
    )
    typer.echo("volume: window open (q closes it; keys: v m n i, 1 2 3, PgUp/PgDn, [ ], r, s)", err=True)
    try:
        viewer.start()
    finally:
        viewer.close()


@app.command("serve")
def serve_command(
    path: PathArg,
    mode: ModeOpt = Mode.vr,
    preset: PresetOpt = None,
    level: LevelOpt = None,
    window: WindowOpt = None,
    mapper: MapperOpt = MapperName.auto,
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 8080,
    keep_phi: KeepPhiOpt = False,
    series: SeriesOpt = None,
    frame: FrameOpt = 0,
    allow_gaps: GapsOpt = False,
    max_memory: MaxMemoryOpt = None,
) -> None:
    """Serve the 3D view as a web page (`volume view --web`): for series on a machine without a screen.

    Prints the page's URL (with its access token) on stdout. The picture is rendered on this
    machine (offscreen VTK, the same scene as `volume view`); the browser shows it and sends the
    mouse back. Listens on 127.0.0.1 only unless --host says otherwise: from your desktop, tunnel
    with `ssh -L 8080:localhost:8080 server` and open the printed URL. Ctrl-C stops it.
    """
    _serve(path, mode, preset, level, window, mapper, host, port, keep_phi, series, frame, allow_gaps, max_memory)


def _serve(path, mode, preset, level, window, mapper, host, port, keep_phi, series, frame, allow_gaps, max_memory) -> None:
    from ..render.web import build_web_view, make_token

    try:
        import trame  # noqa: F401
    except ImportError:
        from ..render.web import WEB_EXTRA_HINT

        raise UsageError(WEB_EXTRA_HINT) from None
    if host not in ("127.0.0.1", "localhost", "::1"):
        warn(
            f"--host {host}: the view is reachable from other machines on that network (anyone with the "
            "URL's token can see the series); prefer the default and an SSH tunnel"
        )
    vol = _load(path, series, frame, allow_gaps, max_memory)
    view = build_web_view(
        vol, mode=mode.value, preset=preset.value if preset else None, level=level, window=_window(window),
        frame=frame, mapper=mapper.value, keep_phi=keep_phi,
    )
    token = make_token()

    def ready(bound: int) -> None:
        shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        typer.echo(f"http://{shown}:{bound}/index.html?token={token}")
        typer.echo(
            f"volume: serving on {host}:{bound} (Ctrl-C stops it); over SSH: ssh -L {bound}:localhost:{bound} "
            "this-machine, then open the URL above",
            err=True,
        )

    try:
        view.serve(host=host, port=port, token=token, on_ready=ready)
    finally:
        view.close()


@app.command("mesh")
def mesh_command(
    path: PathArg,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Mesh to write: .stl (binary), .ply (binary) or .obj. Default: <series>_mesh_<level>.stl here.")] = None,
    level: LevelOpt = None,
    coords: Annotated[Coords, typer.Option("--coords", help="Patient frame of the points: lps (DICOM, 3D Slicer) or ras (NIfTI).")] = Coords.lps,
    smooth: Annotated[int, typer.Option("--smooth", help="Windowed-sinc smoothing iterations (0: none; 20 is gentle).", min=0, max=500)] = 0,
    largest: Annotated[bool, typer.Option("--largest", help="Keep only the largest connected piece.")] = False,
    series: SeriesOpt = None,
    frame: FrameOpt = 0,
    allow_gaps: GapsOpt = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing output.")] = False,
    max_memory: MaxMemoryOpt = None,
) -> None:
    """Extract the isosurface at --level as a triangle mesh in patient millimetres (for printing, CAD).

    Points are in the patient's LPS frame by default (x to the left, y posterior, z superior, as
    DICOM and 3D Slicer), or RAS with --coords ras.
    """
    from ..render.mesh import MESH_FORMATS, isosurface, write_mesh
    from ..render.presets import default_level

    if output is not None:
        if output.suffix.lower() not in MESH_FORMATS:
            raise UsageError(f"{output}: unknown mesh format; use {', '.join(MESH_FORMATS)}")
        check_writable(output, force=force)
    vol = _load(path, series, frame, allow_gaps, max_memory, verb="meshing")
    if level is None:
        level = default_level(vol.frame(frame).array, vol.meta.get("modality"))
        warn(f"series {vol.meta.get('stack_id', '')}: no --level given: using {level:g}")
    if output is None:
        output = check_writable(f"{series_stem(vol.meta)}_mesh_{level:g}.stl", force=force)
    poly = isosurface(vol, level, coords=coords.value, frame=frame, smooth=smooth, largest=largest)
    typer.echo(str(write_mesh(poly, output, force=force, coords=coords.value)))

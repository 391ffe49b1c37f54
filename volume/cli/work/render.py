"""The work of ``volume render``, ``view``, ``serve`` and ``mesh`` (declared in :mod:`volume.cli.render`)."""

from __future__ import annotations

from pathlib import Path

import typer

from ...errors import UsageError
from ...io.atomic import check_writable
from ...io.names import series_stem
from ...ops.presets import preset_name, preset_warning
from ...ops.window import parse_window
from ...render.interactive import build_viewer
from ...render.mesh import MESH_FORMATS, isosurface, write_mesh
from ...render.offscreen import IMAGE_FORMATS, check_turn, parse_size, write_picture
from ...render.offscreen import render as render_volume
from ...render.offscreen import turntable as spin
from ...render.presets import default_level
from ...render.web import WEB_EXTRA_HINT, build_web_view, make_token
from ..app import progress_bar, warn
from ..render import Axis, Coords, MapperName, Mode, PresetName, View
from .common import ANIMATION_SUFFIXES, check_turntable, load_series, write_animation


def _warn_presets(vol, preset: PresetName | None, window: str | None) -> None:
    """Warn when a preset (``--preset``, or a window preset named by ``--window``) was made for
    another modality than the series': CT presets are in Hounsfield units, ``mr`` is for the rest."""
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
    try:
        w = parse_window(text)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return (w.low, w.high)


def render(path: Path, *, output: Path | None, mode: Mode, preset: PresetName | None, level: float | None,
           window: str | None, view: View, size: str, azimuth: float, elevation: float, perspective: bool,
           turntable: int | None, axis: Axis, marker: bool, mapper: MapperName, series: str | None, frame: int,
           allow_gaps: bool, force: bool, max_memory: str | None) -> None:
    """``volume render``: a picture or a turntable rendered offscreen."""
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
    vol = load_series(path, series, frame, allow_gaps, max_memory)
    if output is None:
        output = check_writable(f"{series_stem(vol.meta)}_render_{mode.value}_{view.value}{default_suffix}", force=force)
    _warn_presets(vol, preset, window)
    options = dict(
        mode=mode.value, preset=preset.value if preset else None, level=level, window=_window(window),
        view=view.value, size=wh, elevation=elevation, parallel=not perspective, frame=frame, marker=marker,
        mapper=mapper.value,
    )
    if turntable is None:
        pixels = render_volume(vol, azimuth=azimuth, **options)
        written = write_picture(pixels, output, force=force)
    else:
        with progress_bar("rendering", turntable) as advance:
            frames = spin(vol, turntable, axis=axis.value, progress=advance, **options)
        written = write_animation(frames, output, force)
    typer.echo(str(written))


def view(path: Path, *, mode: Mode, preset: PresetName | None, level: float | None, window: str | None, size: str,
         screenshots: Path, mapper: MapperName, web: bool, local: bool, host: str, port: int, keep_phi: bool, series: str | None,
         frame: int, allow_gaps: bool, max_memory: str | None) -> None:
    """``volume view``: the interactive window (or with ``--web``, :func:`serve`)."""
    wh = parse_size(size)
    if local and not web:
        raise UsageError("--local is an option of the web view: add --web (or use `volume serve --local`)")
    if web:
        serve(path, mode=mode, preset=preset, level=level, window=window, mapper=mapper, local=local, host=host, port=port,
              keep_phi=keep_phi, series=series, frame=frame, allow_gaps=allow_gaps, max_memory=max_memory)
        return
    if not screenshots.is_dir():
        raise UsageError(f"{screenshots}: not a folder (for --screenshots)")
    vol = load_series(path, series, frame, allow_gaps, max_memory, verb="showing")
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


def serve(path: Path, *, mode: Mode, preset: PresetName | None, level: float | None, window: str | None,
          mapper: MapperName, local: bool, host: str, port: int, keep_phi: bool, series: str | None, frame: int,
          allow_gaps: bool, max_memory: str | None) -> None:
    """``volume serve`` (and ``volume view --web``): the view as a web page until Ctrl-C."""
    try:
        import trame  # noqa: F401
    except ImportError:
        raise UsageError(WEB_EXTRA_HINT) from None
    if host not in ("127.0.0.1", "localhost", "::1"):
        warn(
            f"--host {host}: the view is reachable from other machines on that network (anyone with the "
            "URL's token can see the series); prefer the default and an SSH tunnel"
        )
    vol = load_series(path, series, frame, allow_gaps, max_memory)
    web_view = build_web_view(
        vol, mode=mode.value, preset=preset.value if preset else None, level=level, window=_window(window),
        frame=frame, mapper=mapper.value, keep_phi=keep_phi, local=local,
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
        web_view.serve(host=host, port=port, token=token, on_ready=ready)
    finally:
        web_view.close()


def mesh(path: Path, *, output: Path | None, level: float | None, coords: Coords, smooth: int, largest: bool,
         series: str | None, frame: int, allow_gaps: bool, force: bool, max_memory: str | None) -> None:
    """``volume mesh``: the isosurface at ``level`` written as a mesh."""
    if output is not None:
        if output.suffix.lower() not in MESH_FORMATS:
            raise UsageError(f"{output}: unknown mesh format; use {', '.join(MESH_FORMATS)}")
        check_writable(output, force=force)
    vol = load_series(path, series, frame, allow_gaps, max_memory, verb="meshing")
    if level is None:
        level = default_level(vol.frame(frame).array, vol.meta.get("modality"))
        warn(f"series {vol.meta.get('stack_id', '')}: no --level given: using {level:g}")
    if output is None:
        output = check_writable(f"{series_stem(vol.meta)}_mesh_{level:g}.stl", force=force)
    poly = isosurface(vol, level, coords=coords.value, frame=frame, smooth=smooth, largest=largest)
    typer.echo(str(write_mesh(poly, output, force=force, coords=coords.value)))

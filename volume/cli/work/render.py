"""The work of ``volume render``, ``view``, ``serve`` and ``mesh`` (declared in :mod:`volume.cli.render`)."""

from __future__ import annotations

from pathlib import Path

import typer

from ...errors import UsageError
from ...io import formats
from ...io.atomic import check_output_path, check_writable
from ...io.names import series_stem
from ...jobs.existing import Tally
from ...ops.presets import find_preset, transfer_function
from ...ops.window import resolve_window
from ...render.interactive import build_viewer
from ...render.mesh import isosurface
from ...render.offscreen import check_turn, parse_size
from ...render.offscreen import render as render_volume
from ...render.offscreen import turntable as spin
from ...render.presets import default_level
from ...render.web import WEB_EXTRA_HINT, build_web_view, make_token
from ..app import err, progress_bar, warn
from .common import (
    ANIMATION_SUFFIXES,
    check_turntable,
    frame_index,
    load_series,
    skip_if_exists,
    write_animation,
)


def _check_presets(mode: str, preset: str | None, window: str | None) -> None:
    """Refuse, before the series is read, a preset or window that names nothing, and a 2D-only
    preset where volume rendering needs a transfer function."""
    if preset is not None and mode == "vr":
        transfer_function(preset)
    elif preset is not None:
        find_preset(preset)
    if window is not None:
        resolve_window(window, None)


def _looks(vol, mode: str, preset: str | None, window: str | None) -> dict:
    """The renderer's ``preset`` (a transfer function's name) and ``window`` (grey ramp) from
    ``--preset``/``--window``, read as every command reads them (:mod:`volume.ops.presets`), with a
    warning, naming the series, for a preset made for another modality than the series'."""
    series = f"series {vol.meta.get('stack_id') or ''}".strip()
    modality, acquisition = vol.meta.get("modality"), vol.meta.get("acquisition")
    transfer, ramp, notes = None, None, []
    if preset is not None:
        request = resolve_window(None, preset, modality)
        notes.append(request.warning)
        # vr needs the preset's transfer function; the other modes keep it for a switch to vr (view)
        transfer = transfer_function(preset) if mode == "vr" else find_preset(preset).transfer
        ramp = request.ramp(acquisition)  # the grey ramp of mip/minip (a ct-* transfer function ignores it)
    if window is not None:  # the ramp of mip/minip and the range the mr transfer function spans
        request = resolve_window(window, None, modality)
        notes.append(request.warning)
        ramp = request.ramp(acquisition)
    for note in dict.fromkeys(n for n in notes if n):
        warn(f"{series}: {note}")
    return {"preset": transfer, "window": ramp}


def render(path: Path, *, output: Path | None, mode: str, preset: str | None, level: float | None,
           window: str | None, view: str, size: str, azimuth: float, elevation: float, perspective: bool,
           turntable: int | None, axis: str, marker: bool, mapper: str, series: str | None, frame: int,
           allow_gaps: bool, force: bool, max_memory: str | None) -> None:
    """``volume render``: a picture or a turntable rendered offscreen."""
    wh = parse_size(size)
    _check_presets(mode, preset, window)
    default_suffix = ".gif" if turntable is not None else ".png"
    suffix = output.suffix.lower() if output is not None else default_suffix
    if turntable is None and suffix not in formats.suffixes("render", "picture"):
        hint = " (add --turntable N for an animation)" if suffix in ANIMATION_SUFFIXES else ""
        raise UsageError(f"{output}: use a {', '.join(formats.suffixes('render', 'picture'))} picture{hint}")
    check_turntable(output if output is not None else Path("render" + default_suffix), turntable)
    if turntable is not None:
        check_turn(view, axis)
    if output is not None:
        skip_if_exists(output, force=force, verb="rendered")
    vol = load_series(path, series, frame, allow_gaps, max_memory)
    if output is None:
        output = Path(f"{series_stem(vol.meta)}_render_{mode}_{view}{default_suffix}")
        skip_if_exists(output, force=force, verb="rendered", series=vol.meta.get("stack_id"))
    options = dict(
        mode=mode, level=level, view=view, size=wh, elevation=elevation, parallel=not perspective,
        frame=frame_index(frame), marker=marker, mapper=mapper, **_looks(vol, mode, preset, window),
    )
    if turntable is None:
        pixels = render_volume(vol, azimuth=azimuth, **options)
        written = formats.writer("render", output)(output, pixels, force=force)  # write_picture
    else:
        with progress_bar("rendering", turntable) as advance:
            frames = spin(vol, turntable, axis=axis, progress=advance, **options)
        written = write_animation(frames, output, force)
    typer.echo(str(written))
    err(Tally("rendered", done=1).line())


def view(path: Path, *, mode: str, preset: str | None, level: float | None, window: str | None, size: str,
         screenshots: Path, mapper: str, web: bool, local: bool, host: str, port: int, keep_phi: bool,
         series: str | None, frame: int, allow_gaps: bool, max_memory: str | None) -> None:
    """``volume view``: the interactive window (or with ``--web``, :func:`serve`)."""
    wh = parse_size(size)
    if local and not web:
        raise UsageError("--local is an option of the web view: add --web (or use `volume serve --local`)")
    _check_presets(mode, preset, window)
    if web:
        serve(path, mode=mode, preset=preset, level=level, window=window, mapper=mapper, local=local, host=host, port=port,
              keep_phi=keep_phi, series=series, frame=frame, allow_gaps=allow_gaps, max_memory=max_memory)
        return
    if not check_output_path(screenshots, folder=True).is_dir():
        raise UsageError(f"{screenshots}: not a folder (for --screenshots)")
    vol = load_series(path, series, frame, allow_gaps, max_memory, verb="showing")
    viewer = build_viewer(
        vol, mode=mode, level=level, size=wh, frame=frame_index(frame), screenshot_dir=screenshots, on_screenshot=lambda p: typer.echo(str(p)),
        mapper=mapper, **_looks(vol, mode, preset, window),
    )
    typer.echo("volume: window open (q closes it; keys: v m n i, 1 2 3, PgUp/PgDn, [ ], r, s)", err=True)
    try:
        viewer.start()
    finally:
        viewer.close()


def serve(path: Path, *, mode: str, preset: str | None, level: float | None, window: str | None,
          mapper: str, local: bool, host: str, port: int, keep_phi: bool, series: str | None, frame: int,
          allow_gaps: bool, max_memory: str | None) -> None:
    """``volume serve`` (and ``volume view --web``): the view as a web page until Ctrl-C."""
    try:
        import trame  # noqa: F401
    except ImportError:
        raise UsageError(WEB_EXTRA_HINT) from None
    _check_presets(mode, preset, window)
    if host not in ("127.0.0.1", "localhost", "::1"):
        warn(
            f"--host {host}: the view is reachable from other machines on that network (anyone with the "
            "URL's token can see the series); prefer the default and an SSH tunnel"
        )
    vol = load_series(path, series, frame, allow_gaps, max_memory)
    web_view = build_web_view(
        vol, mode=mode, level=level, frame=frame_index(frame), mapper=mapper, keep_phi=keep_phi,
        local=local, **_looks(vol, mode, preset, window),
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


def mesh(path: Path, *, output: Path | None, level: float | None, coords: str, smooth: int, largest: bool,
         series: str | None, frame: int, allow_gaps: bool, force: bool, max_memory: str | None) -> None:
    """``volume mesh``: the isosurface at ``level`` written as a mesh."""
    if output is not None:
        if formats.find("mesh", output) is None:
            raise UsageError(f"{output}: unknown mesh format; use {', '.join(formats.suffixes('mesh'))}")
        check_writable(output, force=force)
    vol = load_series(path, series, frame, allow_gaps, max_memory, verb="meshing")
    if level is None:
        level = default_level(vol.frame(frame_index(frame)).array, vol.meta.get("modality"))
        warn(f"series {vol.meta.get('stack_id', '')}: no --level given: using {level:g}")
    if output is None:
        output = check_writable(f"{series_stem(vol.meta)}_mesh_{level:g}.stl", force=force)
    poly = isosurface(vol, level, coords=coords, frame=frame_index(frame), smooth=smooth, largest=largest)
    typer.echo(str(formats.writer("mesh", output)(poly, output, force=force, coords=coords)))

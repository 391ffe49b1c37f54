"""The 3D view in a web browser: ``volume view SERIES --web`` (or ``volume serve SERIES``).

The page is a trame application (trame is the web framework Kitware, VTK's makers, maintain). Its
picture is rendered **on the server** by the very :class:`~volume.render.interactive.Viewer` that
``volume view`` opens as a window, here with an offscreen render window (EGL, OSMesa or an unmapped
X window, as ``volume render``): same scene, planes, orientation cube, status line, keys' actions.
The browser receives JPEG pictures and sends mouse events back (trame-vtk's remote view), so the
data never leave the server and the desktop and the browser cannot disagree.

Security, as Jupyter does it:

* the server binds to 127.0.0.1 unless another host is asked for (the CLI warns);
* the URL carries a random token (:func:`make_token`); a request without it (or without the
  cookie the first request with it set) gets 403 Forbidden, the websocket included;
* the page and its title carry no patient identity unless ``keep_phi``.

trame, trame-vtk and trame-vuetify (the ``web`` extra) are imported inside functions only.
"""

from __future__ import annotations

import hmac
import secrets
import signal
import sys
from collections.abc import Callable, Mapping
from typing import Any

from .. import lifecycle
from ..errors import UsageError
from ..volume import Volume
from .interactive import PLANE_KEYS, Viewer, build_viewer
from .presets import PRESETS
from .scene import MODES

DEFAULT_HOST = "127.0.0.1"
"""The web view listens on the loopback interface unless ``--host`` says otherwise."""

DEFAULT_PORT = 8080
"""Port of the web view (``--port 0`` picks a free one)."""

TOKEN_COOKIE = "volume_token"
"""Cookie that carries the token after the first request with ``?token=`` (so the page's own
scripts, pictures and websocket need no token in their URLs)."""

TOKEN_BYTES = 24
"""Random bytes in a token (32 URL-safe characters)."""

DEFAULT_SIZE = (900, 700)
"""Render window size before the browser tells the page's size."""

STILL_QUALITY = 95
"""JPEG quality of the picture when the view is still."""

INTERACTIVE_QUALITY = 80
"""JPEG quality while the mouse drags."""

INTERACTIVE_SECONDS = 0.2
"""Time a picture may take while the mouse drags a MIP/MinIP (5 a second, as the window asks)."""

MIN_INTERACTIVE_RATIO = 0.35
"""Smallest picture scale while dragging a MIP/MinIP (the browser scales it up smoothly)."""


def interactive_ratio(mode: str, still_seconds: float) -> float:
    """Scale of the pictures rendered while the mouse drags, from the time of a still picture.

    Composite rendering and surfaces: 1 (VTK itself lowers their sampling while moving). MIP and
    MinIP keep VTK's full sampling (no blocks, see the scene); when a still picture takes longer
    than :data:`INTERACTIVE_SECONDS`, the picture is rendered smaller while dragging, so that it
    takes about that long, and the browser scales it up smoothly: softer, never blocky, and sharp
    again when the mouse stops.
    """
    if mode not in ("mip", "minip") or still_seconds <= INTERACTIVE_SECONDS:
        return 1.0
    return max(MIN_INTERACTIVE_RATIO, round((INTERACTIVE_SECONDS / still_seconds) ** 0.5, 2))

MODE_LABELS: Mapping[str, str] = {"vr": "Volume", "mip": "MIP", "minip": "MinIP", "iso": "Surface"}
"""Button labels of the modes (same order as :data:`~volume.render.scene.MODES`)."""

WEB_EXTRA_HINT = "the web view needs the 'web' extra: pip install 'volume[web]' (trame, trame-vtk, trame-vuetify)"
"""The one line printed when trame is missing."""


def make_token() -> str:
    """A fresh random token for the URL (``secrets.token_urlsafe``)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_middleware(token: str) -> Any:
    """An aiohttp middleware refusing every request that carries neither ``?token=`` nor its cookie.

    The first request with the right token gets the cookie :data:`TOKEN_COOKIE` (HttpOnly,
    SameSite=Strict), so the page's further requests (scripts, websocket) need no token in the URL.
    """
    from aiohttp import web

    def matches(value: str | None) -> bool:
        return value is not None and hmac.compare_digest(value.encode(), token.encode())

    @web.middleware
    async def check_token(request: Any, handler: Any) -> Any:
        if matches(request.query.get("token")):
            response = await handler(request)
            if not response.prepared:
                response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="Strict")
            return response
        if matches(request.cookies.get(TOKEN_COOKIE)):
            return await handler(request)
        raise web.HTTPForbidden(
            text="volume: this address needs the token: open the full URL that `volume view --web` printed\n"
        )

    return check_token


def page_title(vol: Volume, *, keep_phi: bool = False) -> str:
    """``volume: <series description>``; the patient's name and ID only with ``keep_phi``."""
    desc = str(vol.meta.get("series_description") or "").strip()
    title = f"volume: {desc}" if desc else "volume"
    if keep_phi:
        identity = vol.meta.get("identity") or {}
        who = " ".join(str(identity.get(k) or "").strip() for k in ("PatientName", "PatientID")).strip()
        if who:
            title = f"{title} ({who})"
    return title


class WebView:
    """The trame application around a :class:`Viewer` rendering offscreen.

    Parameters
    ----------
    viewer
        Built with ``offscreen=True`` (see :func:`build_web_view`).
    title
        Page title (no patient identity unless asked for: :func:`page_title`).
    name
        trame server name (one per WebView in a process).
    """

    def __init__(self, viewer: Viewer, *, title: str = "volume", name: str = "volume") -> None:
        from trame.app import get_server

        self.viewer = viewer
        self.server = get_server(name, client_type="vue3")
        self.title = title
        self._build_state()
        self._build_ui()

    # --- state: every control calls the Viewer, as a key does in the window -------------------
    def _build_state(self) -> None:
        v, state = self.viewer, self.server.state
        sc = v.scene
        low, high = sc.data_range
        state.trame__title = self.title
        state.mode = sc.mode
        state.preset = sc.preset
        state.iso_level = float(sc.level)
        state.value_min, state.value_max = float(low), float(high)
        state.win_width, state.win_level = float(v.wl[0]), float(v.wl[1])
        for name, plane in v.planes.items():
            state[f"show_{name}"] = plane.visible
            state[f"slice_{name}"] = plane.index
            state[f"size_{name}"] = plane.size
        state.frame = sc.frame
        state.n_frames = sc.source.n_frames
        state.status = v.status.GetInput()
        state.interactive_ratio = interactive_ratio(sc.mode, sc.renderer.GetLastRenderTimeInSeconds())

        def after(action: Callable[[], None]) -> None:
            action()
            state.status = v.status.GetInput()
            state.win_width, state.win_level = float(v.wl[0]), float(v.wl[1])  # a right-drag moved them
            self.update()
            state.interactive_ratio = interactive_ratio(sc.mode, sc.renderer.GetLastRenderTimeInSeconds())

        @state.change("mode", "preset", "iso_level")
        def _mode(mode: str, preset: str, iso_level: float, **_: Any) -> None:
            if mode not in MODES or preset not in PRESETS:
                return
            if mode == sc.mode and preset == sc.preset and float(iso_level) == sc.level:
                return
            after(lambda: v.set_mode(mode, preset=preset, level=float(iso_level)))

        for name in v.planes:
            self._watch_plane(name, after)

        @state.change("win_width", "win_level")
        def _wl(win_width: float, win_level: float, **_: Any) -> None:
            if [float(win_width), float(win_level)] != v.wl:
                after(lambda: v.set_window_level(float(win_width), float(win_level)))

        @state.change("frame")
        def _frame(frame: int, **_: Any) -> None:
            if int(frame) != sc.frame:
                after(lambda: v.set_frame(int(frame)))

        self.server.controller.reset_camera = lambda: after(v.reset_camera)

    def _watch_plane(self, name: str, after: Callable[[Callable[[], None]], None]) -> None:
        v, state = self.viewer, self.server.state

        @state.change(f"show_{name}")
        def _show(**values: Any) -> None:
            on = bool(values[f"show_{name}"])
            if on != v.planes[name].visible:
                after(lambda: v.show_plane(name, on))

        @state.change(f"slice_{name}")
        def _slice(**values: Any) -> None:
            index = int(values[f"slice_{name}"])
            if index == v.planes[name].index:
                return
            if not v.planes[name].visible:  # moving a hidden plane's slider shows it
                v.show_plane(name, True)
                state[f"show_{name}"] = True
            after(lambda: v.set_slice(name, index))

    # --- layout ------------------------------------------------------------------------------
    def _build_ui(self) -> None:
        from trame.ui.vuetify3 import SinglePageWithDrawerLayout
        from trame.widgets import html
        from trame.widgets import vtk as vtk_widgets
        from trame.widgets import vuetify3 as v3

        with SinglePageWithDrawerLayout(self.server, full_height=True) as layout:
            layout.title.set_text(self.title)
            layout.title.style = "font-size: 1rem"
            with layout.toolbar:
                v3.VSpacer()
                v3.VBtn("Reset view", id="reset", click=self.server.controller.reset_camera, variant="outlined", size="small")
            with layout.drawer as drawer:
                drawer.width = 340
                with v3.VContainer(classes="pa-3"):
                    with v3.VBtnToggle(v_model=("mode",), mandatory=True, density="compact", divided=True, id="modes"):
                        for mode in MODES:
                            v3.VBtn(MODE_LABELS[mode], value=mode, id=f"mode-{mode}", size="small")
                    v3.VSelect(
                        label="Preset", v_model=("preset",), items=("presets", list(PRESETS)), density="compact",
                        v_show="mode == 'vr'", classes="mt-3", hide_details=True,
                    )
                    v3.VSlider(
                        label="Surface", v_model=("iso_level",), min=("value_min",), max=("value_max",),
                        v_show="mode == 'iso'", density="compact", hide_details=True, thumb_label=True, classes="mt-3",
                    )
                    html.Div("Slice planes", classes="text-subtitle-2 mt-4")
                    for name in PLANE_KEYS.values():
                        with v3.VRow(no_gutters=True, align="center"):
                            v3.VCheckbox(
                                v_model=(f"show_{name}",), label=name, density="compact", hide_details=True,
                                id=f"show-{name}",
                            )
                        with html.Div(id=f"slider-{name}"):
                            v3.VSlider(
                                v_model=(f"slice_{name}",), min=0, max=(f"size_{name} - 1",), step=1,
                                density="compact", hide_details=True, thumb_label=True,
                            )
                    html.Div("Window / level (planes, MIP, MinIP)", classes="text-subtitle-2 mt-4")
                    span = ("value_max - value_min",)
                    with html.Div(id="window-width"):
                        v3.VSlider(label="W", v_model=("win_width",), min=1, max=span, density="compact",
                                   hide_details=True)
                    with html.Div(id="window-level"):
                        v3.VSlider(label="L", v_model=("win_level",), min=("value_min",), max=("value_max",),
                                   density="compact", hide_details=True)
                    with html.Div(v_show="n_frames > 1"):
                        html.Div("Frame {{ frame + 1 }} / {{ n_frames }}", classes="text-subtitle-2 mt-4")
                        with html.Div(id="slider-frame"):
                            v3.VSlider(v_model=("frame",), min=0, max=("n_frames - 1",), step=1, density="compact",
                                       hide_details=True)
                    html.Div("{{ status }}", id="status", classes="text-caption mt-4")
                    html.Div(
                        "Left-drag turns, wheel zooms, right-drag window/level, shift-drag pans.",
                        classes="text-caption mt-2 text-medium-emphasis",
                    )
            with layout.content:
                with v3.VContainer(fluid=True, classes="pa-0 fill-height"):
                    with html.Div(id="view", style="width: 100%; height: 100%; position: relative;"):
                        self.view = vtk_widgets.VtkRemoteView(
                            self.viewer.window, ref="view", interactive_ratio=("interactive_ratio", 1.0),
                            interactive_quality=INTERACTIVE_QUALITY, still_quality=STILL_QUALITY,
                        )
        self.layout = layout

    def update(self) -> None:
        """Push a new picture to every browser."""
        self.view.update()

    # --- serving -----------------------------------------------------------------------------
    def serve(self, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, token: str,
              on_ready: Callable[[int], None] | None = None) -> None:
        """Run the web server until Ctrl-C (SIGINT), SIGTERM or SIGHUP; raises
        :class:`volume.lifecycle.Interrupted` (a KeyboardInterrupt) then.

        Closing a browser leaves the server running (no idle timeout). ``on_ready(port)`` is called
        once the socket listens (the port actually bound, with ``port=0``).
        """
        import asyncio

        server, ctrl = self.server, self.server.controller

        @ctrl.add("on_server_bind")
        def _bind(wslink_server: Any) -> None:
            wslink_server.app.middlewares.append(token_middleware(token))

        @ctrl.add("on_server_ready")
        def _ready(**_: Any) -> None:
            if on_ready is not None:
                on_ready(int(server.port))

        interrupted: list[int] = []

        async def main() -> None:
            loop = asyncio.get_running_loop()
            for sig in lifecycle.STOP_SIGNALS:
                if signal.getsignal(sig) == signal.SIG_IGN:  # nohup: stays ignored
                    continue
                loop.add_signal_handler(sig, lambda s=sig: (interrupted.append(s), asyncio.ensure_future(server.stop())))
            await server.start(
                port=port, host=host, open_browser=False, show_connection_info=False, timeout=0,
                disable_logging=True, exec_mode="coroutine", thread=True,
            )

        argv = sys.argv
        sys.argv = argv[:1]  # trame parses the command line too: give it nothing of ours
        try:
            asyncio.run(main())
        except OSError as exc:
            raise UsageError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); pick another --port") from None
        finally:
            sys.argv = argv
        if interrupted:
            raise lifecycle.Interrupted(interrupted[0])

    def close(self) -> None:
        self.viewer.close()


def build_web_view(
    vol: Volume,
    *,
    mode: str = "vr",
    preset: str | None = None,
    level: float | None = None,
    window: tuple[float, float] | None = None,
    frame: int = 0,
    size: tuple[int, int] = DEFAULT_SIZE,
    mapper: str = "auto",
    keep_phi: bool = False,
    name: str = "volume",
) -> WebView:
    """The web view of ``vol``: an offscreen :class:`Viewer` and its trame page (not yet serving).

    Raises
    ------
    UsageError
        trame (the ``web`` extra) is not installed.
    """
    try:
        import trame  # noqa: F401
        import trame.widgets.vtk  # noqa: F401
        import trame.widgets.vuetify3  # noqa: F401
    except ImportError:
        raise UsageError(WEB_EXTRA_HINT) from None
    viewer = build_viewer(
        vol, mode=mode, preset=preset, level=level, window=window, size=size, frame=frame, offscreen=True,
        mapper=mapper, help_text=False,
    )
    viewer.auto_render = False  # the page pulls pictures (trame renders once per update)
    # Mouse events only move the camera: the picture streamer renders (and sends) at its own pace.
    # With the interactor rendering each event too, the server spent its time on pictures no
    # browser saw (measured: 15 renders/s, 2 pictures/s shown).
    viewer.interactor.EnableRenderOff()
    return WebView(viewer, title=page_title(vol, keep_phi=keep_phi), name=name)


__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "WebView", "build_web_view", "make_token", "page_title", "token_middleware"]

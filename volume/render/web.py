"""The 3D view in a web browser: ``volume view SERIES --web`` (or ``volume serve SERIES``).

The page is a trame application (trame is the web framework Kitware, VTK's makers, maintain). Its
picture is rendered **on the server** by the very :class:`~volume.render.interactive.Viewer` that
``volume view`` opens as a window, here with an offscreen render window (EGL, OSMesa or an unmapped
X window, as ``volume render``): same scene, planes, orientation cube, status line, keys' actions.
The browser receives JPEG pictures and sends mouse events back (trame-vtk's remote view), so the
data never leave the server and the desktop and the browser cannot disagree. The page shows a
quick picture first and the full one when requests settle (:func:`progressive_delivery`); it is
plain HTML (:mod:`volume.render.webpage`). With ``local`` the browser draws the view itself
(vtk.js, WebGL) from a reduced copy of the scene (:mod:`volume.render.local`).

Security, as Jupyter does it:

* the server binds to 127.0.0.1 unless another host is asked for (the CLI warns);
* the URL carries a random token (:func:`make_token`); a request without it (or without the
  cookie the first request with it set) gets 403 Forbidden, the websocket included;
* the page and its title carry no patient identity unless ``keep_phi``.

trame and trame-vtk (the ``web`` extra) are imported inside functions only.
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
from .local import LocalScene, register_serializer
from .presets import PRESETS
from .scene import MODES
from .webpage import build_page

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

COALESCE_SECONDS = 0.03
"""Picture requests closer together than this are served by one picture (the page asks for one at
every size its layout passes through while it loads: 30x30, 119x66, then the view's size three times)."""

SETTLE_SECONDS = 0.3
"""A quick picture is followed by the full one when no other request came for this long."""

SESSION_PATH = "/paraview/"
"""Where the page's script asks for the websocket's address before it connects (wslink's launcher
protocol); answered here instead of refused (a 405 in the browser's console)."""


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

PAGE_CAMERA = "$event.pokedRenderer.getActiveCamera().get('position', 'focalPoint', 'viewUp', 'parallelScale')"
"""What the local view's page sends back when a drag ends: its camera (JavaScript, vtk.js)."""

HELP = "Left-drag turns, wheel zooms, right-drag window/level, shift-drag pans."
"""How the mouse moves the server-rendered view (the window's keys and buttons)."""

LOCAL_HELP = ("Left-drag turns, wheel or right-drag zooms, middle-drag pans. The browser draws this view "
              "(--local): slice planes show as outlines, the MIP as vtk.js draws it.")
"""How the mouse moves the local view (vtk.js), and what it draws differently."""
"""The local view's line under the controls."""

MODE_LABELS: Mapping[str, str] = {"vr": "Volume", "mip": "MIP", "minip": "MinIP", "iso": "Surface"}
"""Button labels of the modes (same order as :data:`~volume.render.scene.MODES`)."""

WEB_EXTRA_HINT = "the web view needs the 'web' extra: pip install 'volume[web]' (trame, trame-vtk)"
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


async def session_handler(request: Any) -> Any:
    """The answer to the page's launcher request: the websocket of this server (no new process)."""
    from aiohttp import web

    return web.json_response({"sessionURL": f"ws://{request.host}/ws"})


def progressive_delivery(viewer: Viewer) -> Any:
    """trame-vtk's picture delivery, changed in two ways (an instance for the page's websocket).

    * Requests that come in a burst (the page loading, a slider moving) are served by one picture,
      rendered :data:`COALESCE_SECONDS` after the last of them, at the size asked last.
    * That picture is a quick one (:meth:`~volume.render.interactive.Viewer.set_preview`: the
      sampling used while dragging; a MIP drawn smaller and stretched) and the full picture follows
      once no request came for :data:`SETTLE_SECONDS`. The server renders in the thread that serves
      the page's files and websocket: a full picture of the 300-slice CT (1-3 s here) sent first
      held the page's fonts, and its first picture, behind it.

    Pictures while the mouse drags (trame's animation) are rendered as they come.
    """
    from trame_vtk.modules.vtk.protocols import vtkWebPublishImageDelivery
    from wslink import schedule_callback

    class ProgressiveImageDelivery(vtkWebPublishImageDelivery):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__(decode=False)
            self._timers: dict[tuple[str, str], Any] = {}
            self._direct = False

        def push_render(self, v_id: str, ignore_animation: bool = False, stale_count: int = 0) -> None:
            if ignore_animation:  # a drag: trame's interactive ratio makes the pictures smaller already
                viewer.layer.preview = False
            if self._direct or ignore_animation or stale_count:
                super().push_render(v_id, ignore_animation, stale_count)
            else:
                self._later("quick", v_id, COALESCE_SECONDS, self._quick)

        def _later(self, kind: str, v_id: str, delay: float, action: Callable[[str], None]) -> None:
            timer = self._timers.pop((kind, v_id), None)
            if timer is not None:
                timer.cancel()
            self._timers[(kind, v_id)] = schedule_callback(delay, lambda: action(v_id))

        def _render(self, v_id: str, quick: bool) -> None:
            viewer.set_preview(quick)
            self._direct = True
            try:
                if not quick:
                    self.app.InvalidateCache(self.get_view(v_id))
                super().push_render(v_id)
            finally:
                self._direct = False

        def _quick(self, v_id: str) -> None:
            self._timers.pop(("quick", v_id), None)
            if self.views_in_animations:  # dragging: trame's animation renders
                return
            self._render(v_id, quick=True)
            self._later("full", v_id, SETTLE_SECONDS, self._full)

        def _full(self, v_id: str) -> None:
            self._timers.pop(("full", v_id), None)
            if self.views_in_animations or ("quick", v_id) in self._timers:
                return
            self._render(v_id, quick=False)

    return ProgressiveImageDelivery()


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

    def __init__(self, viewer: Viewer, *, title: str = "volume", name: str = "volume", local: bool = False) -> None:
        from trame.app import get_server

        self.viewer = viewer
        self.local = LocalScene(viewer.scene, [p.outline for p in viewer.planes.values()]) if local else None
        self.server = get_server(name, client_type="vue3")
        self.title = title
        self._build_state()
        self._build_ui()
        if self.local is None:
            self._install_delivery()
        else:
            self.server.add_protocol_to_configure(register_serializer)

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
        state.interactive_ratio = interactive_ratio(sc.mode, sc.last_render_seconds)

        def after(action: Callable[[], None]) -> None:
            action()
            state.status = v.status.GetInput()
            state.win_width, state.win_level = float(v.wl[0]), float(v.wl[1])  # a right-drag moved them
            self.update()
            state.interactive_ratio = interactive_ratio(sc.mode, sc.last_render_seconds)

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

        self.server.controller.reset_camera = lambda: after(self.reset_camera)

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
        from trame.widgets import vtk as vtk_widgets

        def remote() -> Any:
            return vtk_widgets.VtkRemoteView(
                self.viewer.window, ref="view", interactive_ratio=("interactive_ratio", 1.0),
                interactive_quality=INTERACTIVE_QUALITY, still_quality=STILL_QUALITY,
            )

        def local() -> Any:
            assert self.local is not None
            return vtk_widgets.VtkLocalView(
                self.local.window, ref="view", interactor_events=("local_events", ["EndAnimation"]),
                EndAnimation=(self._camera_from_page, f"[{PAGE_CAMERA}]"),
            )

        self.layout, self.view = build_page(
            self.server, title=self.title, modes=MODE_LABELS, presets=list(PRESETS), planes=list(PLANE_KEYS.values()),
            reset=self.server.controller.reset_camera, view=remote if self.local is None else local,
            help_text=HELP if self.local is None else LOCAL_HELP,
        )

    def _camera_from_page(self, camera: dict[str, Any]) -> None:
        if self.local is not None and isinstance(camera, dict):
            self.local.set_camera(camera)

    def update(self) -> None:
        """Push a new picture (or, with the local view, the changed scene) to every browser."""
        if self.local is not None:
            self.local.sync()
        self.view.update()

    def reset_camera(self) -> None:
        """Back to the anterior view (the local view's camera too)."""
        self.viewer.reset_camera()
        if self.local is not None:
            self.local.reset_camera()

    def _install_delivery(self) -> None:
        """Serve pictures through :func:`progressive_delivery` (registered after trame-vtk's own, so
        its remote procedures are the ones the page calls)."""
        delivery = progressive_delivery(self.viewer)
        self.server.add_protocol_to_configure(lambda protocol: protocol.registerLinkProtocol(delivery))

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
            wslink_server.app.router.add_post(SESSION_PATH, session_handler)

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
    local: bool = False,
) -> WebView:
    """The web view of ``vol``: an offscreen :class:`Viewer` and its trame page (not yet serving).

    ``local``: the browser draws the view (vtk.js, WebGL; :class:`~volume.render.local.LocalScene`)
    instead of receiving pictures rendered here.

    Raises
    ------
    UsageError
        trame (the ``web`` extra) is not installed.
    """
    try:
        import trame  # noqa: F401
        import trame.widgets.vtk  # noqa: F401
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
    return WebView(viewer, title=page_title(vol, keep_phi=keep_phi), name=name, local=local)


__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "WebView", "build_web_view", "make_token", "page_title", "token_middleware"]

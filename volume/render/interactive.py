"""The interactive 3D window of ``volume view``.

:func:`build_viewer` assembles everything and returns a :class:`Viewer` *without* starting the
event loop, so tests (under Xvfb) can press keys through the interactor, read screenshots and close
it; :meth:`Viewer.start` runs the loop for people.

The window holds the :class:`~volume.render.scene.Scene` (volume in patient LPS space), three
orthogonal slice planes (``vtkImageActor`` showing one slice of the image data each, carrying the
same patient matrix as the volume, so they sit exactly inside it), an orientation cube labelled
with patient directions (``vtkOrientationMarkerWidget``), a help line and a status line.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .. import lifecycle
from ..conventions import plane_name
from ..errors import UsageError
from ..io.image import write_picture
from ..volume import axis_codes
from .offscreen import offscreen_window, orientation_cube, resolve_mapper, snapshot
from .projection import ProjectionLayer
from .scene import MODES, PROJECTION_MODES, VIEWS, Scene, vtk_matrix

HELP_TEXT = (
    "v volume   m MIP   n MinIP   i isosurface   1/2/3 show/hide axial/coronal/sagittal plane   "
    "PgUp/PgDn move it\nright-drag window/level   [ ] frame   r reset camera   s screenshot   q quit"
)
"""The on-screen help (bottom of the window)."""

KEY_MODES = {"v": "vr", "m": "mip", "n": "minip", "i": "iso"}
"""Keys that switch the rendering mode."""

PLANE_KEYS = {"1": "axial", "2": "coronal", "3": "sagittal"}
"""Keys that show or hide a slice plane (by the anatomical plane it is closest to). A plane shown
becomes the active one (PgUp/PgDn move it); hiding the active plane hands that role to another
visible plane. All planes start hidden: a plane in the middle of the volume would cut the line of
sight of the first view (the axial plane edge-on drew a dark band across the eyes)."""

FRAME_KEYS = {"bracketleft": -1, "bracketright": +1}
"""Keys that step through the frames of a 4D series."""

WL_SENSITIVITY = 1.0
"""Window/level change per pixel of right-drag, as a fraction of the data range per window height."""

PLANE_OF_LETTER = {"L": "sagittal", "R": "sagittal", "A": "coronal", "P": "coronal", "S": "axial", "I": "axial"}
"""The anatomical plane perpendicular to an image axis, by the patient direction the axis runs to."""

SIGNAL_POLL_MS = 200
"""How often the event loop lets Python run (so Ctrl-C closes the window)."""

SCREENSHOT_STEM = "volume-screenshot"
"""File name stem of ``s`` screenshots: ``volume-screenshot-001.png``, ..."""

TEXT_SIZE = 13
"""Font size (points) of the help and status lines."""


PLANE_COLORS = {"axial": (1.0, 0.35, 0.35), "coronal": (0.4, 0.9, 0.4), "sagittal": (1.0, 0.85, 0.3)}
"""Outline colour of each slice plane (3D Slicer's red, green, yellow)."""

OUTLINE_WIDTH = 2.0
"""Line width (pixels) of a plane's outline: an edge-on plane still shows as a line."""


class SlicePlane:
    """One slice of the image, drawn as an opaque plane in patient space, with a coloured outline.

    ``axis`` is the VTK image axis (0 = column, 1 = row, 2 = slice) the plane is perpendicular to.
    A plane seen edge-on (the sagittal plane from the front) has no area on screen; its outline
    still draws it as a line. Over a MIP or MinIP only the outline is drawn (:meth:`set_outline_only`):
    a projection has no depth, and an opaque plane would cut it in two.
    """

    def __init__(self, scene: Scene, axis: int, window: float, level: float, *, visible: bool = False) -> None:
        from vtkmodules.vtkCommonCore import vtkPoints
        from vtkmodules.vtkCommonDataModel import vtkCellArray, vtkPolyData
        from vtkmodules.vtkRenderingCore import vtkActor, vtkImageActor, vtkPolyDataMapper

        self.scene, self.axis = scene, axis
        self.on = bool(visible)
        self.outline_only = False
        s, r, c = scene.vol.shape
        self.size = (c, r, s)[axis]
        letter = axis_codes(scene.matrix)[axis]
        self.name = PLANE_OF_LETTER[letter]
        self.index = self.size // 2
        self.actor = vtkImageActor()
        self.actor.GetMapper().SetInputData(scene.image)
        self.actor.SetUserMatrix(vtk_matrix(scene.matrix))
        self.actor.GetProperty().SetColorWindow(window)
        self.actor.GetProperty().SetColorLevel(level)
        self.actor.GetProperty().SetInterpolationTypeToLinear()
        self.actor.InterpolateOn()
        self.actor.SetVisibility(bool(visible))
        scene.renderer.AddActor(self.actor)
        self._outline_points = vtkPoints()
        self._outline_points.SetNumberOfPoints(4)
        loop = vtkCellArray()
        loop.InsertNextCell(5)
        for i in (0, 1, 2, 3, 0):
            loop.InsertCellPoint(i)
        poly = vtkPolyData()
        poly.SetPoints(self._outline_points)
        poly.SetLines(loop)
        self._outline_poly = poly
        mapper = vtkPolyDataMapper()
        mapper.SetInputData(poly)
        self.outline = vtkActor()
        self.outline.SetMapper(mapper)
        self.outline.SetUserMatrix(vtk_matrix(scene.matrix))
        self.outline.GetProperty().SetColor(*PLANE_COLORS[self.name])
        self.outline.GetProperty().SetLineWidth(OUTLINE_WIDTH)
        self.outline.GetProperty().LightingOff()
        self.outline.SetVisibility(bool(visible))
        scene.renderer.AddActor(self.outline)
        self.set_index(self.index)

    def set_index(self, index: int) -> None:
        """Show slice ``index`` (clamped to the volume)."""
        self.index = int(min(max(index, 0), self.size - 1))
        s, r, c = self.scene.vol.shape
        extent = [0, c - 1, 0, r - 1, 0, s - 1]
        extent[2 * self.axis] = extent[2 * self.axis + 1] = self.index
        self.actor.SetDisplayExtent(*extent)
        spacing = (self.scene.vol.spacing[2], self.scene.vol.spacing[1], self.scene.vol.spacing[0])
        lo = [extent[2 * a] * spacing[a] for a in range(3)]
        hi = [extent[2 * a + 1] * spacing[a] for a in range(3)]
        u, v = [a for a in range(3) if a != self.axis]
        for i, (fu, fv) in enumerate(((0, 0), (1, 0), (1, 1), (0, 1))):
            p = list(lo)
            p[u] = hi[u] if fu else lo[u]
            p[v] = hi[v] if fv else lo[v]
            self._outline_points.SetPoint(i, *p)
        self._outline_points.Modified()
        self._outline_poly.Modified()

    @property
    def visible(self) -> bool:
        """Whether the plane is shown (its outline at least)."""
        return self.on

    def set_visible(self, on: bool) -> None:
        """Show or hide the plane (the slice too, unless :meth:`set_outline_only`)."""
        self.on = bool(on)
        self.actor.SetVisibility(self.on and not self.outline_only)
        self.outline.SetVisibility(self.on)

    def set_outline_only(self, flag: bool) -> None:
        """Draw the outline alone (over a projection) or the slice with it."""
        self.outline_only = bool(flag)
        self.set_visible(self.on)

    def set_window(self, window: float, level: float) -> None:
        self.actor.GetProperty().SetColorWindow(window)
        self.actor.GetProperty().SetColorLevel(level)

    def set_image(self, image: Any) -> None:
        """Show slices of another image of the same grid (a 4D frame)."""
        self.actor.GetMapper().SetInputData(image)



def _text_actors(renderer: Any, help_text: bool) -> tuple[Any, Any]:
    """The key help (bottom left; hidden unless ``help_text``) and the status line (top left),
    added to ``renderer``."""
    from vtkmodules.vtkRenderingCore import vtkTextActor

    help_actor = vtkTextActor()
    help_actor.SetInput(HELP_TEXT)
    help_actor.GetTextProperty().SetFontSize(TEXT_SIZE)
    help_actor.GetTextProperty().SetColor(0.85, 0.85, 0.85)
    help_actor.SetDisplayPosition(8, 6)
    help_actor.SetVisibility(bool(help_text))
    renderer.AddViewProp(help_actor)
    status = vtkTextActor()
    status.GetTextProperty().SetFontSize(TEXT_SIZE)
    status.GetTextProperty().SetColor(1.0, 0.9, 0.5)
    status.GetTextProperty().SetVerticalJustificationToTop()
    status.GetPositionCoordinate().SetCoordinateSystemToNormalizedDisplay()
    status.GetPositionCoordinate().SetValue(0.01, 0.99)
    renderer.AddViewProp(status)
    return help_actor, status


class Viewer:
    """The interactive window; build it with :func:`build_viewer`.

    Attributes
    ----------
    scene, window, interactor, style, planes, active
        The scene, ``vtkRenderWindow``, ``vtkRenderWindowInteractor``, interactor style, the
        :class:`SlicePlane` objects by name (axial, coronal, sagittal), and the active plane's name.
    """

    def __init__(
        self,
        scene: Scene,
        *,
        size: tuple[int, int],
        title: str = "volume",
        offscreen: bool = False,
        screenshot_dir: str | os.PathLike[str] = ".",
        on_screenshot: Callable[[Path], None] | None = None,
        mapper: str = "auto",
        help_text: bool = True,
    ) -> None:
        import vtkmodules.vtkRenderingFreeType  # noqa: F401 - text rendering
        import vtkmodules.vtkRenderingOpenGL2  # noqa: F401
        from vtkmodules.vtkInteractionStyle import vtkInteractorStyleTrackballCamera
        from vtkmodules.vtkInteractionWidgets import vtkOrientationMarkerWidget
        from vtkmodules.vtkRenderingCore import vtkRenderWindow, vtkRenderWindowInteractor

        self.scene = scene
        self.view = "anterior"
        self.screenshot_dir = Path(screenshot_dir)
        self.on_screenshot = on_screenshot
        if offscreen:
            self.window = offscreen_window(scene.renderer, size)
        else:
            self.window = vtkRenderWindow()
            self.window.SetSize(int(size[0]), int(size[1]))
            self.window.AddRenderer(scene.renderer)
        self.window.SetWindowName(title)
        scene.use_mapper(resolve_mapper(self.window, mapper))
        self.layer = ProjectionLayer(scene, self.window)
        if offscreen:  # no event loop of its own: events come from the caller (tests, the web page)
            from vtkmodules.vtkRenderingUI import vtkGenericRenderWindowInteractor

            self.interactor = vtkGenericRenderWindowInteractor()
        else:
            self.interactor = vtkRenderWindowInteractor()
        self.interactor.SetRenderWindow(self.window)
        self.style = vtkInteractorStyleTrackballCamera()
        self.interactor.SetInteractorStyle(self.style)

        low, high = scene.data_range
        self.wl = [high - low, (high + low) / 2]  # window, level of the slice planes
        self.planes: dict[str, SlicePlane] = {}
        for axis in (2, 1, 0):
            plane = SlicePlane(scene, axis, *self.wl)
            self.planes[plane.name] = plane
        self._sync_planes()
        self.active: str | None = None

        self.help, self.status = _text_actors(scene.renderer, help_text)

        self.marker = vtkOrientationMarkerWidget()
        self.marker.SetOrientationMarker(orientation_cube())
        self.marker.SetInteractor(self.interactor)
        self.marker.SetViewport(0.8, 0.72, 1.0, 0.92)
        self.marker.KeyPressActivationOff()  # its default 'i' toggle would clash with our 'i' key

        self._drag: tuple[int, int, float, float] | None = None
        self.style.AddObserver("KeyPressEvent", self._on_key)
        self.style.AddObserver("CharEvent", self._on_char)
        self.style.AddObserver("RightButtonPressEvent", self._on_right_press)
        self.style.AddObserver("RightButtonReleaseEvent", self._on_right_release)
        self.style.AddObserver("MouseMoveEvent", self._on_move)
        self.interactor.SetDesiredUpdateRate(scene.mapper.GetInteractiveUpdateRate())
        self.interactor.SetStillUpdateRate(0.0001)
        self.interactor.Initialize()
        self.marker.SetEnabled(1)
        self.marker.InteractiveOff()
        scene.set_view(self.view, aspect=size[0] / size[1])
        scene.fit_projection_window()
        self._update_status()

    # --- state --------------------------------------------------------------------------------
    def _update_status(self) -> None:
        sc = self.scene
        what = {"vr": f"volume rendering ({sc.preset})", "mip": "MIP", "minip": "MinIP", "iso": f"isosurface {sc.level:g}"}
        self.status.SetInput(f"{what[sc.mode]}   {self.plane_status}   W/L {self.wl[0]:.4g}/{self.wl[1]:.4g}{self.frame_status}")

    @property
    def plane_status(self) -> str:
        """``active plane: coronal 17/32`` or ``planes hidden (1/2/3 show them)``."""
        if self.active is None:
            return "planes hidden (1/2/3 show them)" if self.help.GetVisibility() else "planes hidden"
        plane = self.planes[self.active]
        return f"active plane: {self.active} {plane.index + 1}/{plane.size}"

    @property
    def frame_status(self) -> str:
        n = self.scene.source.n_frames
        return f"   frame {self.scene.frame + 1}/{n}" if n > 1 else ""

    auto_render = True
    """Redraw after every change (the web view renders when the page asks for a picture instead)."""

    def render(self) -> None:
        """Update the status line and redraw the window."""
        self._update_status()
        if self.auto_render:
            self.window.Render()

    def set_mode(self, mode: str, *, preset: str | None = None, level: float | None = None) -> None:
        """Switch the volume to ``mode`` (one of :data:`~volume.render.scene.MODES`), optionally
        with another volume-rendering preset or isosurface level."""
        if mode not in MODES:
            raise UsageError(f"unknown mode {mode!r}")
        self.scene.set_mode(mode, preset=preset, level=level)
        self._sync_planes()
        self.scene.fit_projection_window()
        self.render()

    def _sync_planes(self) -> None:
        """Over a MIP/MinIP the planes are outlines only (a projection has no depth to cut)."""
        for plane in self.planes.values():
            plane.set_outline_only(self.scene.mode in PROJECTION_MODES)

    def show_plane(self, name: str, on: bool) -> None:
        """Show (and make active) or hide a slice plane; hiding the active one passes the role on."""
        name = plane_name(name)
        if name not in self.planes:
            raise UsageError(f"unknown plane {name!r}; choose one of {', '.join(self.planes)}")
        self.planes[name].set_visible(on)
        if on:
            self.active = name
        elif self.active == name:
            self.active = next((n for n, p in self.planes.items() if p.visible), None)
        self.render()

    def toggle_plane(self, name: str) -> None:
        """Show or hide a slice plane (keys 1, 2, 3); a plane switched on becomes the active one."""
        if name in self.planes:
            self.show_plane(name, not self.planes[name].visible)

    def set_slice(self, name: str, index: int) -> None:
        """Put plane ``name`` at slice ``index`` (clamped), without changing what is shown."""
        self.planes[name].set_index(index)
        self.render()

    def move_slice(self, step: int) -> None:
        """Move the active plane by ``step`` voxels (nothing when every plane is hidden)."""
        if self.active is None:
            self.render()
            return
        plane = self.planes[self.active]
        plane.set_index(plane.index + step)
        self.render()

    def set_frame(self, frame: int) -> None:
        """Show frame ``frame`` (clamped) of a 4D series: volume, planes and surface."""
        frame = int(min(max(frame, 0), self.scene.source.n_frames - 1))
        self.scene.set_frame(frame)
        for plane in self.planes.values():
            plane.set_image(self.scene.image)
        self.render()

    def set_window_level(self, window: float, level: float) -> None:
        """Grey window of the slice planes (and of the MIP/MinIP ramp)."""
        span = self.scene.data_range[1] - self.scene.data_range[0]
        self.wl = [max(float(window), span * 1e-3), float(level)]
        for plane in self.planes.values():
            plane.set_window(*self.wl)
        if self.scene.mode in ("mip", "minip"):  # the grey ramp of the projections follows
            w, lv = self.wl
            self.scene.window = (lv - w / 2, lv + w / 2)
            self.scene.set_mode(self.scene.mode)
        self.render()

    def reset_camera(self) -> None:
        """Back to the anterior view of the whole volume."""
        w, h = self.window.GetSize()
        self.scene.set_view(self.view, aspect=w / max(h, 1))
        self.scene.fit_projection_window()
        self.render()

    def set_preview(self, on: bool) -> None:
        """Quick pictures (the sampling used while dragging; a MIP/MinIP drawn smaller and
        stretched) or full ones. The web view shows a quick picture first, then the full one."""
        rate = self.interactor.GetDesiredUpdateRate() if on else self.interactor.GetStillUpdateRate()
        self.window.SetDesiredUpdateRate(rate)
        self.layer.preview = bool(on)

    def screenshot(self) -> np.ndarray:
        """The window's current picture, ``(height, width, 3)`` uint8."""
        self._update_status()
        self.window.Render()
        return snapshot(self.window)

    def save_screenshot(self) -> Path:
        """Write the picture to the next free ``volume-screenshot-NNN.png`` in ``screenshot_dir``."""
        pixels = self.screenshot()
        k = 1
        while (self.screenshot_dir / f"{SCREENSHOT_STEM}-{k:03d}.png").exists():
            k += 1
        path = write_picture(self.screenshot_dir / f"{SCREENSHOT_STEM}-{k:03d}.png", pixels)
        if self.on_screenshot:
            self.on_screenshot(path)
        return path

    # --- events ---------------------------------------------------------------------------------
    def press(self, keysym: str) -> None:
        """Simulate a key press as X would deliver it (KeyPressEvent, CharEvent, KeyReleaseEvent)."""
        code = keysym if len(keysym) == 1 else "\0"
        self.interactor.SetKeyEventInformation(0, 0, code, 1, keysym)
        self.interactor.InvokeEvent("KeyPressEvent")
        self.interactor.InvokeEvent("CharEvent")
        self.interactor.InvokeEvent("KeyReleaseEvent")

    def _on_key(self, _obj: Any, _event: str) -> None:
        key = self.interactor.GetKeySym() or ""
        if key in KEY_MODES:
            self.set_mode(KEY_MODES[key])
        elif key in PLANE_KEYS:
            self.toggle_plane(PLANE_KEYS[key])
        elif key in FRAME_KEYS:
            self.set_frame(self.scene.frame + FRAME_KEYS[key])
        elif key in ("Prior", "Page_Up", "KP_Prior"):
            self.move_slice(+1)
        elif key in ("Next", "Page_Down", "KP_Next"):
            self.move_slice(-1)
        elif key == "r":
            self.reset_camera()
        elif key == "s":
            self.save_screenshot()
        elif key in ("q", "Escape"):
            self.close_loop()

    def _on_char(self, _obj: Any, _event: str) -> None:
        # Replaces the style's default key bindings (s surface, 3 stereo, w wireframe...): all keys
        # are handled in _on_key; only 'f' (fly to the picked point) is passed on.
        if self.interactor.GetKeySym() == "f":
            self.style.OnChar()

    def _on_right_press(self, _obj: Any, _event: str) -> None:
        x, y = self.interactor.GetEventPosition()
        self._drag = (x, y, *self.wl)

    def _on_right_release(self, _obj: Any, _event: str) -> None:
        self._drag = None

    def _on_move(self, _obj: Any, _event: str) -> None:
        if self._drag is None:
            self.style.OnMouseMove()
            return
        x0, y0, w0, l0 = self._drag
        x, y = self.interactor.GetEventPosition()
        height = max(self.window.GetSize()[1], 1)
        span = self.scene.data_range[1] - self.scene.data_range[0]
        per_pixel = WL_SENSITIVITY * span / height
        self.set_window_level(w0 + (x - x0) * per_pixel, l0 - (y - y0) * per_pixel)

    # --- loop ----------------------------------------------------------------------------------
    def start(self) -> None:
        """Show the window and run the event loop until it is closed (q, Escape, Ctrl-C)."""
        self.render()
        stopped: list[int] = []

        def stop(signum: int, _frame: Any) -> None:
            stopped.append(signum)
            self.close_loop()

        previous = {sig: signal.getsignal(sig) for sig in lifecycle.STOP_SIGNALS}
        for sig, handler in previous.items():
            if handler != signal.SIG_IGN:  # nohup: stays ignored
                signal.signal(sig, stop)
        # A repeating timer returns control to Python regularly, so the signal handler can run.
        self.interactor.AddObserver("TimerEvent", lambda *_: None)
        self.interactor.CreateRepeatingTimer(SIGNAL_POLL_MS)
        try:
            self.interactor.Start()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        if stopped:
            raise lifecycle.Interrupted(stopped[0])

    def close_loop(self) -> None:
        """Leave the event loop (the window closes in :meth:`close`)."""
        self.interactor.TerminateApp()

    def close(self) -> None:
        """Close the window, release the OpenGL context and the X connection.

        The observers (Python callables held by VTK objects) are removed, so that Python can free
        the viewer: a reference cycle through C++ is invisible to the garbage collector.
        """
        self.marker.SetEnabled(0)
        self.marker.SetInteractor(None)
        self.style.RemoveAllObservers()
        self.interactor.RemoveAllObservers()
        self.interactor.TerminateApp()
        self.layer.close()
        self.window.Finalize()


def build_viewer(
    vol: Any,
    *,
    mode: str = "vr",
    preset: str | None = None,
    level: float | None = None,
    window: tuple[float, float] | None = None,
    size: tuple[int, int] = (900, 800),
    frame: int = 0,
    offscreen: bool = False,
    screenshot_dir: str | os.PathLike[str] = ".",
    on_screenshot: Callable[[Path], None] | None = None,
    mapper: str = "auto",
    help_text: bool = True,
) -> Viewer:
    """Build the interactive viewer for ``vol`` and return it, without starting the event loop.

    Needs a display (X11, or Xvfb) unless ``offscreen``; call :meth:`Viewer.start` to interact
    and :meth:`Viewer.close` when done.
    """
    if not offscreen and sys.platform.startswith("linux") and not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        raise UsageError(
            "no display: `volume view` needs a screen (set DISPLAY, or run it under xvfb-run); "
            "use `volume render` for pictures without one"
        )
    scene = Scene(vol, mode=mode, preset=preset, level=level, window=window, frame=frame)
    desc = str(vol.meta.get("series_description") or "")
    title = f"volume: {desc}" if desc else "volume"
    return Viewer(
        scene, size=size, title=title, offscreen=offscreen, screenshot_dir=screenshot_dir,
        on_screenshot=on_screenshot, mapper=mapper, help_text=help_text,
    )


__all__ = ["HELP_TEXT", "VIEWS", "SlicePlane", "Viewer", "build_viewer"]

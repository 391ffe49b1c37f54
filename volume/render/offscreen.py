"""Offscreen rendering: pictures and turntable animations without a display.

VTK picks the offscreen OpenGL context itself: with no ``DISPLAY``, the PyPI wheel of vtk 9.4+
creates a ``vtkEGLRenderWindow`` (EGL: a GPU driver or Mesa's llvmpipe software rasteriser);
an OSMesa build of VTK gives a ``vtkOSOpenGLRenderWindow``; with a ``DISPLAY`` the X window is
simply never mapped. Pixels are read back with ``vtkWindowToImageFilter``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..errors import UsageError
from ..volume import Volume
from .projection import ProjectionLayer
from .scene import VIEWS, Scene

DEFAULT_SIZE = (600, 600)
"""Default picture size (width, height) in pixels."""

MAX_SIZE = 8192
"""Largest picture side accepted (OpenGL framebuffers are limited)."""

MARKER_FRACTION = 0.16
"""Side of the orientation cube's corner viewport, as a fraction of the picture's smaller side."""

LABELS_LPS = {"x+": "L", "x-": "R", "y+": "P", "y-": "A", "z+": "S", "z-": "I"}
"""Face labels of the orientation cube: the scene's world frame is patient LPS."""


def parse_size(text: str) -> tuple[int, int]:
    """``"800x600"`` (width x height) or ``"512"`` (square) to ``(width, height)``."""
    parts = text.lower().replace("*", "x").split("x")
    try:
        w, h = (int(parts[0]), int(parts[0])) if len(parts) == 1 else (int(parts[0]), int(parts[1]))
    except (ValueError, IndexError):
        raise UsageError(f"--size must be WIDTHxHEIGHT in pixels (e.g. 800x600), got {text!r}") from None
    if len(parts) > 2 or not (1 <= w <= MAX_SIZE and 1 <= h <= MAX_SIZE):
        raise UsageError(f"--size must be WIDTHxHEIGHT with sides 1..{MAX_SIZE}, got {text!r}")
    return w, h


def orientation_cube() -> Any:
    """A ``vtkAnnotatedCubeActor`` labelled with patient directions (L/R, A/P, S/I) in LPS."""
    from vtkmodules.vtkRenderingAnnotation import vtkAnnotatedCubeActor

    cube = vtkAnnotatedCubeActor()
    cube.SetXPlusFaceText(LABELS_LPS["x+"])
    cube.SetXMinusFaceText(LABELS_LPS["x-"])
    cube.SetYPlusFaceText(LABELS_LPS["y+"])
    cube.SetYMinusFaceText(LABELS_LPS["y-"])
    cube.SetZPlusFaceText(LABELS_LPS["z+"])
    cube.SetZMinusFaceText(LABELS_LPS["z-"])
    cube.SetFaceTextScale(0.65)
    cube.GetCubeProperty().SetColor(0.25, 0.3, 0.4)
    cube.GetTextEdgesProperty().SetColor(0.8, 0.8, 0.8)
    for getter in (cube.GetXPlusFaceProperty, cube.GetXMinusFaceProperty):
        getter().SetColor(1.0, 0.45, 0.45)
    for getter in (cube.GetYPlusFaceProperty, cube.GetYMinusFaceProperty):
        getter().SetColor(0.5, 1.0, 0.5)
    for getter in (cube.GetZPlusFaceProperty, cube.GetZMinusFaceProperty):
        getter().SetColor(0.5, 0.7, 1.0)
    return cube


class CornerCube:
    """An orientation cube in a corner viewport following the main camera (for offscreen pictures)."""

    def __init__(self, window: Any, main: Any, size: tuple[int, int]) -> None:
        from vtkmodules.vtkRenderingCore import vtkRenderer

        side = MARKER_FRACTION * min(size)
        self.main = main
        self.renderer = vtkRenderer()
        self.renderer.SetViewport(0.0, 0.0, side / size[0], side / size[1])
        self.renderer.SetLayer(1)
        self.renderer.InteractiveOff()
        self.renderer.AddActor(orientation_cube())
        window.SetNumberOfLayers(2)
        window.AddRenderer(self.renderer)

    def sync(self) -> None:
        """Look at the cube from the main camera's direction, with its view-up."""
        cam = self.main.GetActiveCamera()
        d = np.array(cam.GetPosition()) - np.array(cam.GetFocalPoint())
        d /= np.linalg.norm(d)
        mine = self.renderer.GetActiveCamera()
        mine.SetFocalPoint(0.0, 0.0, 0.0)
        mine.SetPosition(*(d * 5.0))
        mine.SetViewUp(*cam.GetViewUp())
        self.renderer.ResetCamera()


def new_offscreen_window() -> Any:
    """EGL directly when there is no X display (the generic factory would try X first and warn)."""
    import vtkmodules.vtkRenderingOpenGL2 as gl
    from vtkmodules.vtkRenderingCore import vtkRenderWindow

    if sys.platform.startswith("linux") and not os.environ.get("DISPLAY") and hasattr(gl, "vtkEGLRenderWindow"):
        window = gl.vtkEGLRenderWindow()
        if window.SupportsOpenGL():
            return window
    return vtkRenderWindow()


def offscreen_window(renderer: Any, size: tuple[int, int]) -> Any:
    """A ``vtkRenderWindow`` rendering offscreen (EGL/OSMesa, or an unmapped X window) at ``size``."""
    window = new_offscreen_window()
    window.SetOffScreenRendering(1)
    window.SetMultiSamples(0)
    window.SetSize(int(size[0]), int(size[1]))
    window.AddRenderer(renderer)
    return window


SOFTWARE_RENDERERS = ("llvmpipe", "softpipe", "swrast", "software", "swr")
"""Substrings of GL_RENDERER naming a software rasteriser (Mesa): the CPU ray caster is faster there."""


def opengl_renderer(window: Any) -> str:
    """The OpenGL renderer string of ``window`` (creates its context if needed), e.g. ``llvmpipe (LLVM 15...)``."""
    window.Initialize()
    for line in str(window.ReportCapabilities()).splitlines():
        if "renderer string" in line.lower():
            return line.split(":", 1)[1].strip()
    return ""


def resolve_mapper(window: Any, requested: str = "auto") -> str:
    """``gpu`` or ``cpu``: ``auto`` is ``cpu`` on a software OpenGL renderer, else ``gpu``."""
    if requested != "auto":
        return requested
    name = opengl_renderer(window).lower()
    return "cpu" if any(s in name for s in SOFTWARE_RENDERERS) else "gpu"


def snapshot(window: Any) -> np.ndarray:
    """The window's pixels, ``(height, width, 3)`` uint8, first row at the top of the picture."""
    from vtkmodules.util.numpy_support import vtk_to_numpy
    from vtkmodules.vtkRenderingCore import vtkWindowToImageFilter

    grab = vtkWindowToImageFilter()
    grab.SetInput(window)
    grab.SetInputBufferTypeToRGB()
    grab.ReadFrontBufferOff()
    grab.ShouldRerenderOn()
    grab.Update()
    image = grab.GetOutput()
    w, h, _ = image.GetDimensions()
    pixels = vtk_to_numpy(image.GetPointData().GetScalars()).reshape(h, w, -1)[:, :, :3]
    return np.ascontiguousarray(pixels[::-1])


def world_at_pixel(renderer: Any, window: Any, column: int, row: int) -> np.ndarray | None:
    """The LPS point (mm) of the opaque surface drawn at pixel (column, row from the top).

    Reads the depth buffer of the last render; ``None`` where nothing was drawn (background).
    """
    height = window.GetSize()[1]
    y = height - 1 - int(row)
    z = renderer.GetZ(int(column), y)
    if z >= 1.0:
        return None
    renderer.SetDisplayPoint(float(column), float(y), z)
    renderer.DisplayToWorld()
    p = np.array(renderer.GetWorldPoint(), dtype=float)
    return p[:3] / p[3]


class OffscreenRenderer:
    """A :class:`~volume.render.scene.Scene` in an offscreen window: render, read pixels, pick depth.

    Parameters match :func:`render`; ``marker`` adds the orientation cube in the lower-left corner.
    """

    def __init__(
        self,
        vol: Volume,
        *,
        size: tuple[int, int] = DEFAULT_SIZE,
        marker: bool = False,
        mapper: str = "auto",
        **scene_options: Any,
    ) -> None:
        self.size = (int(size[0]), int(size[1]))
        self.scene = Scene(vol, **scene_options)
        self.window = offscreen_window(self.scene.renderer, self.size)
        self.scene.use_mapper(resolve_mapper(self.window, mapper))
        self.layer = ProjectionLayer(self.scene, self.window)
        self.cube = CornerCube(self.window, self.scene.renderer, self.size) if marker else None

    def render(self) -> np.ndarray:
        """Render and return the picture, ``(height, width, 3)`` uint8."""
        if self.cube is not None:
            self.cube.sync()
        self.window.Render()
        return snapshot(self.window)

    def world_at_pixel(self, column: int, row: int) -> np.ndarray | None:
        """LPS mm of the opaque surface (``iso`` mode) at a pixel of the last picture."""
        return world_at_pixel(self.scene.renderer, self.window, column, row)

    def close(self) -> None:
        """Release the OpenGL contexts."""
        self.layer.close()
        self.window.Finalize()


def render(
    vol: Volume,
    *,
    mode: str = "vr",
    preset: str | None = None,
    level: float | None = None,
    window: tuple[float, float] | None = None,
    view: str = "anterior",
    size: tuple[int, int] = DEFAULT_SIZE,
    azimuth: float = 0.0,
    elevation: float = 0.0,
    parallel: bool = True,
    frame: int = 0,
    marker: bool = False,
    mapper: str = "auto",
) -> np.ndarray:
    """Render ``vol`` offscreen: ``(height, width, 3)`` uint8 picture.

    ``mip`` and ``minip`` are drawn by the :class:`~volume.render.projection.ProjectionLayer`: the
    2D projection's picture seen from the front (the maximum first, the interpolation after).

    See :class:`~volume.render.scene.Scene` for ``mode``, ``preset``, ``level``, ``window`` and
    :meth:`~volume.render.scene.Scene.set_view` for ``view``, ``azimuth``, ``elevation``.
    ``mapper`` is ``auto`` (see :func:`resolve_mapper`), ``gpu`` or ``cpu``.

    Parameters
    ----------
    vol
        The volume (a 4D one is drawn at ``frame``).
    mode
        ``vr`` (volume rendering), ``mip``, ``minip`` or ``iso`` (the isosurface at ``level``).
    preset
        A transfer function's name for ``vr`` (default: bone for CT, mr otherwise).
    level
        The isosurface's value in the volume's units.
    window
        ``(center, width)`` of the grey ramp of ``mip``/``minip``.
    view
        Where the camera stands: ``anterior``, ``posterior``, ``left``, ``right``, ``superior``,
        ``inferior``.
    size
        ``(width, height)`` of the picture in pixels.
    azimuth, elevation
        Turns of the camera (degrees) about the patient's long axis and up from it.
    parallel
        Parallel projection (distances true to scale) instead of perspective.
    frame
        0-based frame of a 4D volume.
    marker
        Draw the orientation cube in the lower-left corner.
    mapper
        ``auto``, ``gpu`` or ``cpu``.

    Returns
    -------
    numpy.ndarray
        ``(height, width, 3)`` uint8, the picture as shown (row 0 at the top).

    Raises
    ------
    UsageError
        An unknown mode, view, preset or mapper.

    Examples
    --------
    >>> pixels = volume.render_volume(volume.load("ct"), mode="mip", view="left", size=(64, 48))
    >>> pixels.shape, pixels.dtype
    ((48, 64, 3), dtype('uint8'))
    """
    r = OffscreenRenderer(
        vol, size=size, marker=marker, mapper=mapper, mode=mode, preset=preset, level=level, window=window, frame=frame
    )
    try:
        r.scene.set_view(view, azimuth=azimuth, elevation=elevation, parallel=parallel, aspect=size[0] / size[1])
        r.scene.fit_projection_window()
        return r.render()
    finally:
        r.close()


TURN_AXES = {"S": (0.0, 0.0, 1.0), "I": (0.0, 0.0, -1.0), "L": (1.0, 0.0, 0.0), "R": (-1.0, 0.0, 0.0),
             "A": (0.0, -1.0, 0.0), "P": (0.0, 1.0, 0.0)}
"""Turntable axes (LPS unit vectors): the camera turns counter-clockwise seen from the axis' head
(``S``: seen from above the head, anterior -> left -> posterior -> right)."""


def rotation(axis: Sequence[float], degrees: float) -> np.ndarray:
    """(3, 3) right-handed rotation by ``degrees`` about the unit vector ``axis`` (Rodrigues)."""
    a = np.asarray(axis, dtype=float)
    a = a / np.linalg.norm(a)
    t = np.radians(degrees)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + np.sin(t) * k + (1 - np.cos(t)) * (k @ k)


def turn_camera(scene: Any, axis: str, degrees: float) -> None:
    """Turn the scene's camera (position and view-up) by ``degrees`` about patient ``axis``
    through the focal point: the patient appears to turn the other way.

    The axis is the volume's own axis nearest it when within :data:`~.scene.SNAP_DEG` (as the
    views are), so a turn about ``S`` of a slightly tilted axial series keeps every ray within
    the slices' planes."""
    cam = scene.renderer.GetActiveCamera()
    rot = rotation(scene.own_axis(TURN_AXES[axis]), degrees)
    focal = np.array(cam.GetFocalPoint())
    cam.SetPosition(*(focal + rot @ (np.array(cam.GetPosition()) - focal)))
    cam.SetViewUp(*(rot @ np.array(cam.GetViewUp())))
    cam.OrthogonalizeViewUp()
    scene.reset_camera()


def check_turn(view: str, axis: str) -> None:
    """Refuse a turntable whose axis is the line of sight (the picture would only spin)."""
    if axis not in TURN_AXES:
        raise UsageError(f"unknown --axis {axis!r}; choose one of {', '.join(TURN_AXES)}")
    if abs(float(np.dot(VIEWS[view][0], TURN_AXES[axis]))) > 0.99:
        raise UsageError(
            f"--axis {axis} is the line of sight of --view {view}: the picture would only spin; "
            "pick a view across the axis (e.g. --view anterior with --axis S or L)"
        )


def turntable(
    vol: Volume,
    n_frames: int,
    *,
    view: str = "anterior",
    axis: str = "S",
    size: tuple[int, int] = DEFAULT_SIZE,
    elevation: float = 0.0,
    parallel: bool = True,
    marker: bool = False,
    progress: Callable[[int], None] | None = None,
    **scene_options: Any,
) -> list[np.ndarray]:
    """``n_frames`` pictures with the camera turning 360° about a patient axis.

    Frame ``k`` is ``view`` (tilted by ``elevation``) turned by ``k * 360 / n_frames`` degrees
    about ``axis`` (one of :data:`TURN_AXES`; ``S``: anterior, then the patient's left, posterior,
    right). The MIP/MinIP grey ramp is chosen once, from the first picture. Each picture is
    ``(height, width, 3)`` uint8.
    """
    if n_frames < 1:
        raise UsageError(f"--turntable needs at least 1 frame, got {n_frames}")
    check_turn(view, axis)
    r = OffscreenRenderer(vol, size=size, marker=marker, **scene_options)
    aspect = size[0] / size[1]

    def aim(k: int) -> None:
        r.scene.set_view(view, elevation=elevation, parallel=parallel, aspect=aspect)
        if k:
            turn_camera(r.scene, axis, 360.0 * k / n_frames)

    frames = []
    try:
        # One zoom for the whole turn (the largest any frame needs): the patient must not breathe.
        scales = []
        for k in range(n_frames):
            aim(k)
            scales.append(r.scene.renderer.GetActiveCamera().GetParallelScale())
        for k in range(n_frames):
            aim(k)
            if parallel:
                r.scene.renderer.GetActiveCamera().SetParallelScale(max(scales))
            if k == 0:
                r.scene.fit_projection_window()
            frames.append(r.render())
            if progress:
                progress(1)
    finally:
        r.close()
    return frames

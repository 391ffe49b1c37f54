"""MIP and MinIP in 3D drawn as the 2D projections are: the maximum first, the interpolation after.

Why a layer of its own
----------------------
A ray caster interpolates the voxels *before* it keeps a ray's maximum. Across thick slices
(BRAINIX: 6 mm apart under 0.45 mm pixels) that is not the 2D MIP a radiologist knows, whose rows
are each slice's maximum, interpolated *afterwards* for display:

* between two slices every sample is a mixture of both, and the maximum of mixtures is lower than
  the mixture of the maxima wherever the two slices' brightest voxels are in different places
  (noise, small vessels): dark stripes between the slices ("venetian blinds"), while structures
  present in both slices at the same place (the ventricles) keep their value and stand out as
  flat rectangles;
* a ray that is not parallel to the slices (BRAINIX is tilted 4.1°: from the front a ray crosses
  three slices) picks each slice's content wherever it crosses that slice's plane, which spreads a
  structure over the height of all the slices the ray crosses.

Measured on BRAINIX T2 seen from the front (parallel camera, values drawn on a linear ramp, both
pictures compared inside the head): VTK's ray cast equals a trilinear ray cast written in numpy
(Pearson 0.996), so no mapper setting is at fault; it correlates 0.868 with the 2D coronal MIP.

So a MIP/MinIP is drawn here in three steps:

1. the camera looks along the volume's own axes for the named views (:data:`~.scene.SNAP_DEG`),
   as the 2D projections do;
2. the volume is ray cast with the thick axis held constant over each slice's slab (each slice
   repeated :data:`SLAB_COPIES` times, :func:`slab_volume`), in-plane trilinear sampling, samples
   half the smallest voxel side apart, no shading, opacity 1 (every pixel is one voxel's value);
3. the picture is averaged over one slab's length along the slab axis as it appears on the screen
   (:func:`box_along`): a staircase of slab maxima becomes their linear interpolation, exactly the
   2D MIP's rows interpolated, and a ray that crosses several slabs is smoothed the same way.

The result (Pearson 0.985 with the 2D coronal MIP on the same measurement) is drawn as the
background of the main renderer, so slice-plane outlines, the orientation cube and the text lie
on top of it, and nothing cuts the projection. The layer renders in an offscreen window of its
own that shares the main camera, so the window, the web view, ``volume render`` and the
turntables all draw the same picture.

vtk is imported inside functions only.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..volume import Volume
from .scene import (
    PROJECTION_MODES,
    PROJECTION_SAMPLES_PER_VOXEL,
    Scene,
    index_matrix,
    to_vtk_image,
    vtk_matrix,
)

SLAB_RATIO = 2.0
"""An axis whose spacing is at least this many times the finest other one is drawn as slabs."""

SLAB_COPIES = 4
"""Each thick slice is repeated this many times along its axis (at most; fewer when its spacing is
less than this many times the finest): the ray caster then interpolates within a quarter of a slab
only. Measured on BRAINIX T2 (6 / 0.45 mm) against the 2D coronal MIP (tests/test_render_mip.py's
measurement): Pearson 0.947, 0.966, 0.984, 0.985 and 0.989 for 1, 2, 3, 4 and 13 copies; render time
grows with the copies (1.2-1.6x for 4 in two runs on the loaded machine)."""

SLAB_MAX_BYTES = 1 << 30
"""The repeated copy of a volume is kept under this size (fewer copies if needed)."""

MIN_BOX_PIXELS = 1.5
"""A slab thinner than this on the screen (seen end-on, or far away) is not averaged."""

PREVIEW_SECONDS = 0.15
"""Time a preview picture may take (see :attr:`ProjectionLayer.preview`)."""

MIN_PREVIEW_SCALE = 0.35
"""Smallest side scale of a preview picture."""

AXIS_PIXELS = 0.25
"""A slab whose screen direction strays less than this (pixels, over its length) from a row or a
column is averaged along that row or column (exactly, by cumulative sums: the views and turntables
of an axial series)."""


def slab_axis(spacing: Sequence[float]) -> int | None:
    """The (slice, row, column) axis drawn as slabs: spacing >= :data:`SLAB_RATIO` x the finest other, or None."""
    sp = np.asarray(spacing, dtype=float)
    axis = int(np.argmax(sp))
    finest = float(np.delete(sp, axis).min())
    return axis if sp[axis] >= SLAB_RATIO * finest else None


def slab_copies(vol: Volume, axis: int | None) -> int:
    """How many times each slice along ``axis`` is repeated (1: not repeated)."""
    if axis is None:
        return 1
    sp = np.asarray(vol.spacing, dtype=float)
    wanted = min(SLAB_COPIES, int(round(sp[axis] / np.delete(sp, axis).min())))
    nbytes = np.asarray(vol.array).nbytes
    return int(max(1, min(wanted, SLAB_MAX_BYTES // max(nbytes, 1))))


def slab_volume(vol: Volume, axis: int | None, copies: int) -> Volume:
    """``vol`` with each slice along ``axis`` held over its slab: ``copies`` samples per spacing.

    The new grid runs from the first slice's centre to the last one's (the extent VTK draws for the
    original), ``spacing / copies`` apart; each new sample takes the value of the nearest original
    slice. Voxel world positions of the original slices are unchanged.
    """
    if axis is None or copies <= 1:
        return vol
    arr = np.asarray(vol.array)
    n = arr.shape[axis]
    source = np.floor(np.arange((n - 1) * copies + 1) / copies + 0.5).astype(np.intp)
    affine = np.array(vol.affine, dtype=np.float64)
    affine[:3, axis] /= copies
    return vol.with_array(np.ascontiguousarray(np.take(arr, source, axis=axis)), affine=affine)


def shifted(image: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """``image`` sampled at ``(x + dx, y + dy)`` (bilinear; edges repeated), same shape."""
    h, w = image.shape
    ix, iy = int(np.floor(dx)), int(np.floor(dy))
    fx, fy = dx - ix, dy - iy
    pad = max(abs(ix), abs(iy)) + 2
    p = np.pad(image, pad, mode="edge")

    def window(ox: int, oy: int) -> np.ndarray:
        return p[pad + iy + oy : pad + iy + oy + h, pad + ix + ox : pad + ix + ox + w]

    return ((1 - fx) * (1 - fy) * window(0, 0) + fx * (1 - fy) * window(1, 0)
            + (1 - fx) * fy * window(0, 1) + fx * fy * window(1, 1))


def box_along(image: np.ndarray, step: Sequence[float]) -> np.ndarray:
    """The mean of ``image`` over a segment ``step = (dx, dy)`` pixels long, centred on each pixel.

    Along a row or a column (within :data:`AXIS_PIXELS`) the exact mean of the pixels as constant
    squares (:func:`box_along_axis`); otherwise samples at most one pixel apart (bilinear). A
    segment shorter than :data:`MIN_BOX_PIXELS` returns ``image`` unchanged. ``image`` is 2D float.
    """
    dx, dy = float(step[0]), float(step[1])
    length = float(np.hypot(dx, dy))
    if length < MIN_BOX_PIXELS:
        return image
    if abs(dx) <= AXIS_PIXELS:
        return box_along_axis(image, length, axis=0)
    if abs(dy) <= AXIS_PIXELS:
        return box_along_axis(image, length, axis=1)
    taps = int(np.ceil(length)) + 1
    out = np.zeros_like(image)
    for t in (np.arange(taps) + 0.5) / taps - 0.5:
        out += shifted(image, t * dx, t * dy)
    return out / taps


def box_along_axis(image: np.ndarray, length: float, axis: int) -> np.ndarray:
    """The exact mean of ``image`` (pixels as constant unit squares, edges repeated) over
    ``length`` pixels centred on each pixel, along ``axis`` (0: columns, 1: rows); cumulative sums."""
    a = np.moveaxis(np.asarray(image, dtype=np.float64), axis, 0)
    pad = int(np.ceil(length / 2)) + 1
    p = np.concatenate([np.repeat(a[:1], pad, axis=0), a, np.repeat(a[-1:], pad, axis=0)])
    total = np.concatenate([np.zeros((1, *a.shape[1:])), np.cumsum(p, axis=0)])  # integral up to each edge

    def integral(t: np.ndarray) -> np.ndarray:
        i = np.floor(t).astype(np.intp)
        return total[i] + (t - i)[:, None] * p[np.minimum(i, len(p) - 1)]

    centres = np.arange(a.shape[0]) + pad + 0.5
    out = (integral(centres + length / 2) - integral(centres - length / 2)) / length
    return np.moveaxis(out, 0, axis).astype(image.dtype)


def convex_mask(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Boolean ``shape`` (rows, columns) mask of the pixels whose centres lie in the convex hull of ``points`` (x, y)."""
    pts = sorted({(float(x), float(y)) for x, y in np.asarray(points, dtype=float)})
    if len(pts) < 3:
        return np.zeros(shape, dtype=bool)

    def half(seq: list[tuple[float, float]]) -> list[tuple[float, float]]:
        out: list[tuple[float, float]] = []
        for p in seq:
            while len(out) >= 2 and ((out[-1][0] - out[-2][0]) * (p[1] - out[-2][1])
                                     - (out[-1][1] - out[-2][1]) * (p[0] - out[-2][0])) <= 0:
                out.pop()
            out.append(p)
        return out

    lower, upper = half(pts), half(pts[::-1])
    hull = np.array(lower[:-1] + upper[:-1])  # counter-clockwise
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]].astype(float)
    inside = np.ones(shape, dtype=bool)
    for (x0, y0), (x1, y1) in zip(hull, np.roll(hull, -1, axis=0), strict=True):
        inside &= (x1 - x0) * (ys - y0) - (y1 - y0) * (xs - x0) >= -1e-9
    return inside


class ProjectionLayer:
    """The MIP/MinIP of a :class:`~.scene.Scene`, drawn offscreen and shown as its background.

    Attaching it hides the scene's own volume in ``mip``/``minip`` and draws this picture behind
    everything else of ``window`` (the render window holding ``scene.renderer``), recomputed at
    the start of each of that window's renders when the camera, size or grey ramp changed.
    """

    def __init__(self, scene: Scene, window: Any) -> None:
        from vtkmodules.vtkRenderingCore import vtkRenderer, vtkTexture, vtkVolume
        from vtkmodules.vtkRenderingVolumeOpenGL2 import vtkSmartVolumeMapper

        self.scene = scene
        self.main_window = window
        self.window = window.NewInstance()  # same kind of window (EGL, X, OSMesa), never shown
        self.window.SetOffScreenRendering(1)
        self.window.SetMultiSamples(0)
        self.renderer = vtkRenderer()
        self.renderer.SetBackground(0.0, 0.0, 0.0)
        self.renderer.SetActiveCamera(scene.renderer.GetActiveCamera())
        self.window.AddRenderer(self.renderer)
        self.mapper = vtkSmartVolumeMapper()
        self.volume = vtkVolume()
        self.volume.SetMapper(self.mapper)
        self.volume.SetProperty(scene.property)  # the scene's grey ramp, interpolation and shading
        self.renderer.AddVolume(self.volume)
        self.texture = vtkTexture()  # the renderer draws a background texture interpolated: a preview is stretched smoothly
        self.seconds = 0.0
        self.full_seconds = 0.0
        self.preview = False  # True: draw smaller pictures, stretched (the web view's first pictures)
        self._key: tuple[Any, ...] | None = None
        self._image: Any = None
        self.image: Any = None
        self.axis: int | None = None
        scene.layer = self
        self._observer = window.AddObserver("StartEvent", lambda *_: self.update())
        self.configure()

    # --- data ------------------------------------------------------------------------------------
    def rebuild(self) -> None:
        """Forget the slab copy (a new frame): it is built again when a projection is drawn."""
        self.image = None
        self._key = None

    def _build(self) -> None:
        """Build the slab copy of the scene's current volume (see :func:`slab_volume`)."""
        vol = self.scene.vol
        self.axis = slab_axis(vol.spacing)
        self.copies = slab_copies(vol, self.axis)
        self.slabs = slab_volume(vol, self.axis, self.copies)
        self.image = to_vtk_image(self.slabs)
        self.mapper.SetInputData(self.image)
        self.volume.SetUserMatrix(vtk_matrix(index_matrix(self.slabs)))

    def configure(self) -> None:
        """Follow the scene's mode: blend mode, sampling and which of the two pictures is shown."""
        sc = self.scene
        on = sc.mode in PROJECTION_MODES
        if on:
            if sc.mode == "mip":
                self.mapper.SetBlendModeToMaximumIntensity()
            else:
                self.mapper.SetBlendModeToMinimumIntensity()
            self.mapper.AutoAdjustSampleDistancesOff()
            self.mapper.InteractiveAdjustSampleDistancesOff()
            self.mapper.SetSampleDistance(min(sc.vol.spacing) / PROJECTION_SAMPLES_PER_VOXEL)
            self.mapper.SetRequestedRenderMode(sc.mapper.GetRequestedRenderMode())
            sc.volume.VisibilityOff()
        sc.renderer.SetTexturedBackground(on)
        self._key = None

    # --- pictures --------------------------------------------------------------------------------
    def _state(self, size: tuple[int, int]) -> tuple[Any, ...]:
        """What the picture depends on (rounded: a picture grab nudges the camera's view angle)."""
        cam = self.scene.renderer.GetActiveCamera()
        numbers = (*cam.GetPosition(), *cam.GetFocalPoint(), *cam.GetViewUp(), cam.GetParallelScale(),
                   cam.GetViewAngle(), *self.scene.ramp)
        return (size, tuple(float(f"{v:.6g}") for v in numbers), cam.GetParallelProjection(), self.scene.mode,
                self.mapper.GetBlendMode(), self.mapper.GetRequestedRenderMode(), id(self.image))

    def update(self) -> None:
        """Redraw the projection if anything it depends on changed (called as the main window starts a render)."""
        if self.scene.mode not in PROJECTION_MODES:
            return
        w, h = self.main_window.GetSize()
        if w < 1 or h < 1:
            return
        if self.image is None:
            self._build()
        key = (*self._state((w, h)), self.preview)
        if key == self._key:
            return
        if self.preview:
            scale = self.preview_scale()
            grey = self.picture((max(1, round(w * scale)), max(1, round(h * scale))))
        else:
            grey = self.picture((w, h))
            self.full_seconds = self.seconds
        self._show(grey)
        self._key = key

    def preview_scale(self) -> float:
        """Side scale of a preview: its rays take about :data:`PREVIEW_SECONDS` (at least
        :data:`MIN_PREVIEW_SCALE`; that before any full picture was timed)."""
        if self.full_seconds <= 0:
            return MIN_PREVIEW_SCALE
        return float(min(1.0, max(MIN_PREVIEW_SCALE, (PREVIEW_SECONDS / self.full_seconds) ** 0.5)))

    def picture(self, size: tuple[int, int]) -> np.ndarray:
        """The projection as the camera sees it: ``(height, width)`` float grey levels 0..255, first row at the bottom."""
        from vtkmodules.util.numpy_support import vtk_to_numpy
        from vtkmodules.vtkCommonCore import vtkUnsignedCharArray

        start = time.perf_counter()
        if self.image is None:
            self._build()
        w, h = int(size[0]), int(size[1])
        self.window.SetSize(w, h)
        corners = self.scene.world_corners
        lo, hi = corners.min(axis=0), corners.max(axis=0)
        self.renderer.ResetCameraClippingRange(lo[0], hi[0], lo[1], hi[1], lo[2], hi[2])
        self.window.Render()
        buf = vtkUnsignedCharArray()
        self.window.GetPixelData(0, 0, w - 1, h - 1, 0, buf, 0)
        grey = vtk_to_numpy(buf).reshape(h, w, 3)[:, :, 0].astype(np.float32)
        grey = self.smooth(grey)
        self.seconds = time.perf_counter() - start
        return grey

    def smooth(self, grey: np.ndarray) -> np.ndarray:
        """Average ``grey`` (first row at the bottom) over one slab along the slab axis on the screen.

        Inside the volume's outline only (the background is not averaged in): a staircase of slab
        maxima becomes their linear interpolation.
        """
        if self.axis is None:
            return grey
        step = self.slab_step(grey.shape)
        if float(np.hypot(*step)) < MIN_BOX_PIXELS:
            return grey
        inside = convex_mask(self.screen_points(self.centre_corners(), grey.shape), grey.shape).astype(np.float32)
        weight = box_along(inside, step)
        total = box_along(grey * inside, step)
        return np.where(inside > 0, total / np.maximum(weight, 1e-6), grey).astype(np.float32)

    def centre_corners(self) -> np.ndarray:
        """(8, 3) LPS mm of the corner voxels' centres (the box VTK draws)."""
        s, r, c = self.scene.vol.shape
        idx = np.array([[k, j, i] for k in (0, s - 1) for j in (0, r - 1) for i in (0, c - 1)], dtype=float)
        return self.scene.vol.world(idx)

    def screen_points(self, points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        """(N, 2) display (x right, y up) pixel positions of LPS ``points`` for the current camera."""
        ren = self.scene.renderer
        h, w = shape
        cam = ren.GetActiveCamera()
        m = np.array([[cam.GetCompositeProjectionTransformMatrix(w / h, -1, 1).GetElement(i, j)
                       for j in range(4)] for i in range(4)])
        p = np.c_[np.asarray(points, dtype=float), np.ones(len(points))] @ m.T
        ndc = p[:, :2] / p[:, 3:4]
        return np.c_[(ndc[:, 0] + 1) * w / 2 - 0.5, (ndc[:, 1] + 1) * h / 2 - 0.5]

    def slab_step(self, shape: tuple[int, int]) -> np.ndarray:
        """(dx, dy) pixels (y up) that one slab along the slab axis spans on the screen, at the focal point."""
        assert self.axis is not None
        cam = self.scene.renderer.GetActiveCamera()
        focal = np.array(cam.GetFocalPoint())
        direction = np.asarray(self.scene.vol.affine, dtype=float)[:3, self.axis]
        a, b = self.screen_points(np.array([focal, focal + direction]), shape)
        return b - a

    def _show(self, grey: np.ndarray) -> None:
        from vtkmodules.util.numpy_support import numpy_to_vtk
        from vtkmodules.vtkCommonDataModel import vtkImageData

        h, w = grey.shape
        rgb = np.repeat(np.clip(np.rint(grey), 0, 255).astype(np.uint8)[:, :, None], 3, axis=2)
        if self._image is None or self._image.GetDimensions()[:2] != (w, h):
            self._image = vtkImageData()
            self._image.SetDimensions(w, h, 1)
            self.texture.SetInputData(self._image)
            self.scene.renderer.SetBackgroundTexture(self.texture)
        scalars = numpy_to_vtk(rgb.reshape(-1, 3), deep=True)
        self._image.GetPointData().SetScalars(scalars)
        self._image.Modified()

    def close(self) -> None:
        """Stop following the main window and release the offscreen window."""
        self.main_window.RemoveObserver(self._observer)
        self.scene.layer = None
        self.window.Finalize()

"""What the browser renders itself (``volume serve --local``): the scene of a Viewer for vtk.js.

trame-vtk's local view sends a VTK render window's props to the page, where vtk.js draws them with
WebGL: dragging costs no round trip to the server. The window sent here is never rendered on the
server; it holds

* a copy of the volume reduced to at most :data:`LOCAL_MAX_VOXELS` voxels (block means: the page
  receives it once, and a WebGL texture of 157 MB, the 300-slice CT, is more than a browser
  without a GPU can draw while dragging), in the same patient matrix, with the Viewer's volume
  property (grey ramp or preset, shading) and blend mode;
* the Viewer's isosurface and slice-plane outlines (the same actors). The slices themselves
  (``vtkImageActor``) have no vtk.js counterpart in trame-vtk and are not sent.

vtk.js draws every mode itself, MIP and MinIP as its own ray cast of the reduced volume: it
interpolates before it takes the maximum (see :mod:`volume.render.projection`), so thick slices
show their stripes there; the server-rendered view draws the projection exactly.

vtk is imported inside functions only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..volume import Volume
from .offscreen import new_offscreen_window
from .scene import Scene, index_matrix, to_vtk_image, vtk_matrix

LOCAL_MAX_VOXELS = 10_000_000
"""The volume sent to the browser has at most this many voxels (the 300-slice CT: 300x512x512
becomes 150x256x256; BRAINIX T1, 22x512x512, is sent whole)."""

def local_sample_distance(spacing: tuple[float, ...]) -> float:
    """Distance (mm) between vtk.js's samples along a ray, still: one finest voxel side, or VTK's
    own default if coarser (a sixth of the sum of the spacings: 1.2 mm for BRAINIX T1's
    6 x 0.47 x 0.47 mm, where one voxel side drew its first shaded picture in 12-15 s without a GPU)."""
    return max(float(min(spacing)), float(sum(spacing)) / 6.0)


DRAG_SAMPLE_FACTOR = 4.0
"""While the mouse drags, vtk.js samples each ray this many times less often (vtk.js's
``interactionSampleDistanceFactor``)."""

DRAG_SCALE = 64.0
"""vtk.js's first drag draws the volume with this many times fewer rays (an eighth of each side;
``initialInteractionScale``); from there it adapts the number to keep 30 pictures a second
(``autoAdjustSampleDistances``), finer when it can. It adapts only after its first measurements
of the frame rate. Headless Chromium without a GPU (software WebGL, loaded machine), dragging the
MIP of BRAINIX T1 for 4 s: 15-17 pictures a second starting from 16 times fewer rays, 27 from 64,
24 from 256; volume rendering stayed near 10 a second whatever the start."""

DRAG_PROPERTIES = {"interactionSampleDistanceFactor": DRAG_SAMPLE_FACTOR, "initialInteractionScale": DRAG_SCALE}
"""vtk.js volume mapper properties trame-vtk does not send; added by :func:`volume_mapper_serializer`."""


def block_factors(shape: tuple[int, ...], spacing: tuple[float, ...], max_voxels: int) -> tuple[int, int, int]:
    """Integer (slice, row, column) reduction factors: the finest axis (in mm after reduction) is
    halved first, until the reduced grid holds at most ``max_voxels``."""
    factors = [1, 1, 1]

    def voxels() -> int:
        return int(np.prod([-(-n // f) for n, f in zip(shape, factors, strict=True)]))

    while voxels() > max_voxels:
        sizes = [s * f if n // f > 1 else np.inf for s, f, n in zip(spacing, factors, shape, strict=True)]
        axis = int(np.argmin(sizes))
        if not np.isfinite(sizes[axis]):
            break
        factors[axis] += 1
    return factors[0], factors[1], factors[2]


def reduced_volume(vol: Volume, max_voxels: int = LOCAL_MAX_VOXELS) -> Volume:
    """``vol`` (3D) with blocks of voxels averaged (:func:`block_factors`); the same box in patient space.

    A block's mean sits at the block's centre: the affine's columns are multiplied by the factors
    and its origin moved to the first block's centre. Trailing voxels that fill no whole block are
    dropped. The dtype is kept (means rounded for integers).
    """
    fs, fr, fc = block_factors(vol.shape, vol.spacing, max_voxels)
    if (fs, fr, fc) == (1, 1, 1):
        return vol
    arr = np.asarray(vol.array)
    s, r, c = (n // f * f for n, f in zip(arr.shape, (fs, fr, fc), strict=True))
    blocks = arr[:s, :r, :c].reshape(s // fs, fs, r // fr, fr, c // fc, fc).astype(np.float32)
    mean = blocks.mean(axis=(1, 3, 5))
    if np.issubdtype(arr.dtype, np.integer):
        mean = np.rint(mean)
    affine = np.array(vol.affine, dtype=np.float64)
    affine[:3, 3] = affine[:3, :3] @ (np.array([fs, fr, fc]) - 1) / 2 + affine[:3, 3]
    affine[:3, :3] = affine[:3, :3] * np.array([fs, fr, fc])
    return vol.with_array(np.ascontiguousarray(mean.astype(arr.dtype)), affine=affine)


def volume_mapper_serializer(parent: Any, mapper: Any, mapper_id: str, context: Any, depth: int) -> Any:
    """trame-vtk's volume mapper serializer, with :data:`DRAG_PROPERTIES` added."""
    from trame_vtk.modules.vtk.serializers.mappers import generic_volume_mapper_serializer

    out = generic_volume_mapper_serializer(parent, mapper, mapper_id, context, depth)
    if out is not None:
        out.setdefault("properties", {}).update(DRAG_PROPERTIES)
    return out


def register_serializer(_protocol: Any = None) -> None:
    """Send volume mappers with :func:`volume_mapper_serializer` (call it after trame-vtk set its
    own serializers up: they are set when its protocols are). trame-vtk looks serializers up by
    the vtk.js class, ``vtkVolumeMapper`` for every VTK volume mapper; in this process only the
    local scene's mapper is ever sent."""
    from trame_vtk.modules.vtk.serializers.registry import register_instance_serializer

    register_instance_serializer("vtkVolumeMapper", volume_mapper_serializer)


class LocalScene:
    """The render window trame-vtk's local view sends to the page (see the module's doc).

    Call :meth:`sync` after the Viewer changed (mode, ramp, surface, planes, frame).
    """

    def __init__(self, scene: Scene, outlines: list[Any]) -> None:
        import vtkmodules.vtkRenderingVolumeOpenGL2  # noqa: F401 - registers the OpenGL implementations
        from vtkmodules.vtkRenderingCore import vtkRenderer, vtkVolume
        from vtkmodules.vtkRenderingVolumeOpenGL2 import vtkOpenGLGPUVolumeRayCastMapper

        self.scene = scene
        self.window = new_offscreen_window()  # never rendered here: vtk.js draws it
        self.window.SetOffScreenRendering(1)
        self.renderer = vtkRenderer()
        self.renderer.SetBackground(*scene.renderer.GetBackground())
        self.window.AddRenderer(self.renderer)
        self.mapper = vtkOpenGLGPUVolumeRayCastMapper()
        self.mapper.AutoAdjustSampleDistancesOn()  # vtk.js: coarser while dragging, to its frame rate
        self.volume = vtkVolume()
        self.volume.SetMapper(self.mapper)
        self.volume.SetProperty(scene.property)
        self.renderer.AddVolume(self.volume)
        for actor in outlines:
            self.renderer.AddActor(actor)
        self._frame = -1
        self.sync()
        self.reset_camera()

    def _load(self) -> None:
        self.grid = reduced_volume(self.scene.vol)
        self.mapper.SetInputData(to_vtk_image(self.grid))
        self.mapper.SetSampleDistance(local_sample_distance(self.grid.spacing))
        self.volume.SetUserMatrix(vtk_matrix(index_matrix(self.grid)))
        self._frame = self.scene.frame

    def sync(self) -> None:
        """Follow the scene: its frame, mode (blend mode; the surface instead of the volume)."""
        sc = self.scene
        if self._frame != sc.frame:
            self._load()
        if sc.mode == "mip":
            self.mapper.SetBlendModeToMaximumIntensity()
        elif sc.mode == "minip":
            self.mapper.SetBlendModeToMinimumIntensity()
        else:
            self.mapper.SetBlendModeToComposite()
        self.volume.SetVisibility(sc.mode != "iso")
        if sc.surface is not None and not self.renderer.HasViewProp(sc.surface):
            self.renderer.AddActor(sc.surface)  # the scene shows and hides it with its mode

    def set_camera(self, camera: dict[str, Any]) -> None:
        """Take the page's camera (vtk.js ``position``, ``focalPoint``, ``viewUp``, ``parallelScale``),
        so that a scene sent again (a slider moved) keeps the view the user turned to."""
        cam = self.renderer.GetActiveCamera()
        for key, setter in (("position", cam.SetPosition), ("focalPoint", cam.SetFocalPoint),
                            ("viewUp", cam.SetViewUp)):
            if key in camera:
                setter(*(float(v) for v in camera[key]))
        if "parallelScale" in camera:
            cam.SetParallelScale(float(camera["parallelScale"]))

    def reset_camera(self) -> None:
        """The scene's camera (the anterior view after its reset), copied."""
        src = self.scene.renderer.GetActiveCamera()
        cam = self.renderer.GetActiveCamera()
        cam.SetParallelProjection(src.GetParallelProjection())
        cam.SetPosition(*src.GetPosition())
        cam.SetFocalPoint(*src.GetFocalPoint())
        cam.SetViewUp(*src.GetViewUp())
        cam.SetParallelScale(src.GetParallelScale())
        cam.SetViewAngle(src.GetViewAngle())
        corners = self.scene.world_corners
        lo, hi = corners.min(axis=0), corners.max(axis=0)
        self.renderer.ResetCameraClippingRange(lo[0], hi[0], lo[1], hi[1], lo[2], hi[2])

"""The VTK scene built from a :class:`~volume.Volume`: image data, the patient matrix, props, camera.

How the patient ends up where the DICOM says
-------------------------------------------
``Volume.affine`` maps ``(slice, row, column)`` to patient LPS mm. ``vtkImageData`` is indexed
``(x, y, z) = (column, row, slice)`` and places voxel ``(i, j, k)`` at ``(i*sx, j*sy, k*sz)``
(origin 0): that is the *image frame*, spacing included, orientation not. The orientation and
position go into every prop's **user matrix** (:func:`index_matrix`): the affine with its columns
reordered to ``(column, row, slice)`` and the spacing divided out, so it is a rigid rotation plus
translation. VTK's volume mappers (GPU ray cast, fixed-point CPU ray cast) all honour a prop's
matrix, whereas not all of them honour ``vtkImageData``'s direction matrix. The world frame of
the scene is therefore patient **LPS** in mm (+x left, +y posterior, +z superior), the same as the
affine; cameras are placed in that frame (:data:`VIEWS`).

A rotation matrix must not mirror (some mappers cull faces by winding), so a volume whose
``(column, row, slice)`` axes form a left-handed frame is given to VTK with its slice axis
reversed (:func:`render_grid`): same voxels, same world positions, right-handed index frame.

vtk is imported inside functions only.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import numpy as np

from .. import choices
from ..choices import RENDER_MODES
from ..errors import UnsupportedDicomError, UsageError
from ..ops.window import projection_window
from ..volume import Volume
from .presets import PRESETS, default_level, default_preset, display_range, transfer_name

MODES = RENDER_MODES
"""Rendering modes: composite volume rendering, maximum / minimum intensity projection, isosurface."""

VIEWS: Mapping[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = MappingProxyType(
    {
        "anterior": ((0.0, -1.0, 0.0), (0.0, 0.0, 1.0)),
        "posterior": ((0.0, 1.0, 0.0), (0.0, 0.0, 1.0)),
        "left": ((1.0, 0.0, 0.0), (0.0, 0.0, 1.0)),
        "right": ((-1.0, 0.0, 0.0), (0.0, 0.0, 1.0)),
        "superior": ((0.0, 0.0, 1.0), (0.0, -1.0, 0.0)),
        "inferior": ((0.0, 0.0, -1.0), (0.0, -1.0, 0.0)),
    }
)
"""Camera per view, in LPS: (direction from the patient to the camera, view-up).

``anterior`` stands in front of the face looking posterior with superior up, so the patient's
left is on the viewer's right; ``inferior`` looks from the feet with anterior up (the radiological
axial display), ``superior`` from above the head with anterior up.
"""

SURFACE_COLOR = (0.93, 0.89, 0.80)
"""Isosurface colour (ivory)."""

BACKGROUND = (0.0, 0.0, 0.0)
"""Background colour of renderings (black: empty rays in a MIP stay black)."""

VR_SHADING = {"ambient": 0.25, "diffuse": 0.8, "specular": 0.2, "specular_power": 10.0}
"""Lighting coefficients of the composite (VR) volume property."""

SNAP_DEG = 10.0
"""A view's direction and up, and a turntable's axis, within this angle of one of the volume's own
axes follow that axis (:meth:`Scene.own_axis`): a head tilted a few degrees in the scanner is seen
"from the front" along its own rows, as ``volume mip --plane coronal`` projects it (and warns
beyond this angle). Further off, the exact patient direction is kept."""

FRAME_MARGIN = 1.06
"""Parallel projections leave this factor of room around the volume's projected extent."""

PROJECTION_MODES = ("mip", "minip")
"""Modes drawn as a grey ramp; without ``window`` it is chosen from the picture they draw
(:meth:`Scene.fit_projection_window`): a projection's histogram is not a slice's (a MIP collects
the brightest voxel of every ray, so a ramp taken from the voxels leaves it washed out)."""

PROJECTION_SAMPLES_PER_VOXEL = 2.0
"""MIP/MinIP on the GPU ray caster take this many samples per smallest voxel side along each ray
(a thin bright vessel must not fall between two samples). The smart mapper does not hand a sample
distance to the CPU fixed-point caster (measured: its time does not change with it); that one
keeps its own."""

MAPPERS = choices.MAPPERS
"""Volume mapper choices: auto picks cpu on software OpenGL (llvmpipe), gpu on real hardware."""

INTERACTIVE_UPDATE_RATE = 5.0
"""Frames per second the viewer asks for while the mouse moves (the mapper lowers its sampling)."""

VTK_NATIVE_DTYPES = (np.uint8, np.int8, np.uint16, np.int16, np.float32)
"""Voxel types handed to VTK unchanged; anything else becomes float32."""


def scalar_volume(vol: Volume, frame: int = 0) -> Volume:
    """The 3D grey-level volume to render: one frame of a 4D volume; colour refused.

    Raises
    ------
    UnsupportedDicomError
        An RGB volume (volume rendering needs one value per voxel).
    UsageError
        ``frame`` out of range.
    """
    if vol.rgb:
        raise UnsupportedDicomError(
            "this is a colour (RGB) series; volume rendering needs grey levels: "
            "render a grey-level series, or view the colour images with `volume png`"
        )
    if not 0 <= frame < vol.n_frames:
        raise UsageError(f"frame {frame} is out of range: this series has {vol.n_frames} frame(s) "
                         f"(0..{vol.n_frames - 1}: the API counts from 0, the command line's --frame from 1)")
    return vol.frame(frame)


def index_matrix(vol: Volume) -> np.ndarray:
    """(4, 4) float64: VTK image frame ``(x, y, z)`` mm (x = column * spacing) -> patient LPS mm.

    The columns of ``vol.affine`` reordered to (column, row, slice) and divided by the spacing:
    a rotation (for orthogonal grids) plus the translation of voxel (0, 0, 0).
    """
    a = np.asarray(vol.affine, dtype=np.float64)
    sp = np.array(vol.spacing)  # (slice, row, column)
    m = np.eye(4)
    m[:3, 0] = a[:3, 2] / sp[2]
    m[:3, 1] = a[:3, 1] / sp[1]
    m[:3, 2] = a[:3, 0] / sp[0]
    m[:3, 3] = a[:3, 3]
    return m


def render_grid(vol: Volume, frame: int = 0) -> Volume:
    """A 3D scalar volume whose (column, row, slice) axes form a right-handed frame.

    Reverses the slice axis (and moves the affine's origin to the old last slice) when the frame
    is left-handed; voxel world positions are unchanged. Values are kept in a VTK-native dtype.
    """
    vol = scalar_volume(vol, frame)
    arr = np.asarray(vol.array)
    if arr.dtype not in VTK_NATIVE_DTYPES:
        arr = arr.astype(np.float32)
    affine = np.array(vol.affine, dtype=np.float64)
    if np.linalg.det(index_matrix(vol)[:3, :3]) < 0:
        n = arr.shape[0]
        affine[:3, 3] = affine[:3, :3] @ np.array([n - 1.0, 0.0, 0.0]) + affine[:3, 3]
        affine[:3, 0] = -affine[:3, 0]
        arr = arr[::-1]
    return vol.with_array(np.ascontiguousarray(arr), affine=affine)


def vtk_matrix(m: np.ndarray) -> Any:
    """A ``vtkMatrix4x4`` holding the (4, 4) array ``m``."""
    from vtkmodules.vtkCommonMath import vtkMatrix4x4

    out = vtkMatrix4x4()
    for i in range(4):
        for j in range(4):
            out.SetElement(i, j, float(m[i, j]))
    return out


def to_vtk_image(vol: Volume) -> Any:
    """``vtkImageData`` of a 3D scalar volume in the image frame (spacing set, origin 0).

    ``vol.array[k, j, i]`` becomes point ``(x=i, y=j, z=k)``; the array is copied.
    """
    from vtkmodules.util.numpy_support import numpy_to_vtk
    from vtkmodules.vtkCommonDataModel import vtkImageData

    arr = np.ascontiguousarray(vol.array)
    s, r, c = arr.shape
    ss, sr, sc = vol.spacing
    image = vtkImageData()
    image.SetDimensions(c, r, s)
    image.SetSpacing(sc, sr, ss)
    image.SetOrigin(0.0, 0.0, 0.0)
    scalars = numpy_to_vtk(arr.ravel(), deep=True)
    scalars.SetName("values")
    image.GetPointData().SetScalars(scalars)
    return image


def _transfer_functions(points: np.ndarray) -> tuple[Any, Any]:
    from vtkmodules.vtkCommonDataModel import vtkPiecewiseFunction
    from vtkmodules.vtkRenderingCore import vtkColorTransferFunction

    color, opacity = vtkColorTransferFunction(), vtkPiecewiseFunction()
    for value, r, g, b, a in points:
        color.AddRGBPoint(float(value), float(r), float(g), float(b))
        opacity.AddPoint(float(value), float(a))
    return color, opacity


class Scene:
    """A renderer holding one volume in patient LPS space, switchable between modes.

    Parameters
    ----------
    vol
        The volume (a 4D volume renders ``frame``).
    mode
        One of :data:`MODES`.
    preset
        A transfer function of :data:`~volume.render.presets.PRESETS` (``vr`` mode), by its name or
        that of any preset that has one (``bone``, ``ct-bone``); default by modality.
    level
        Isosurface value (``iso`` mode) in the volume's units; default by modality.
    window
        ``(low, high)`` grey ramp for ``mip``/``minip`` and the range a relative preset spans;
        default :func:`~volume.render.presets.display_range` of the data.
    """

    def __init__(
        self,
        vol: Volume,
        *,
        mode: str = "vr",
        preset: str | None = None,
        level: float | None = None,
        window: tuple[float, float] | None = None,
        frame: int = 0,
    ) -> None:
        import vtkmodules.vtkRenderingOpenGL2  # noqa: F401 - registers the OpenGL implementations
        import vtkmodules.vtkRenderingVolumeOpenGL2  # noqa: F401
        from vtkmodules.vtkRenderingCore import vtkRenderer, vtkVolume, vtkVolumeProperty
        from vtkmodules.vtkRenderingVolumeOpenGL2 import vtkSmartVolumeMapper

        self.source = vol
        self.frame = int(frame)
        self.vol = render_grid(vol, frame)
        self.modality = str(self.vol.meta.get("modality") or "")
        self.matrix = index_matrix(self.vol)
        self.image = to_vtk_image(self.vol)
        self.data_range = display_range(self.vol.array)
        self.window = tuple(float(v) for v in window) if window is not None else None
        self.fitted: dict[str, tuple[float, float]] = {}  # mode -> ramp chosen from its picture
        self.preset = transfer_name(preset or default_preset(self.modality))
        self.level = float(level) if level is not None else default_level(self.vol.array, self.modality)

        self.renderer = vtkRenderer()
        self.renderer.SetBackground(*BACKGROUND)
        self.mapper = vtkSmartVolumeMapper()
        self.mapper.SetInputData(self.image)
        self.mapper.SetInteractiveUpdateRate(INTERACTIVE_UPDATE_RATE)
        self.property = vtkVolumeProperty()
        self.property.SetInterpolationTypeToLinear()
        self.volume = vtkVolume()
        self.volume.SetMapper(self.mapper)
        self.volume.SetProperty(self.property)
        self.volume.SetUserMatrix(vtk_matrix(self.matrix))
        self.renderer.AddVolume(self.volume)
        self.aspect = 1.0
        self.mapper_kind = "gpu"
        self.surface: Any = None
        self._surface_level: float | None = None
        self.mode = ""
        self.layer: Any = None  # a ProjectionLayer draws MIP/MinIP once attached to a window
        self.ramp = (0.0, 1.0)  # (low, high) of the grey ramp or of the preset, set by set_mode
        self.set_mode(mode)

    # --- modes ---------------------------------------------------------------------------------
    def set_mode(self, mode: str, *, preset: str | None = None, level: float | None = None) -> None:
        """Switch to ``mode`` (one of :data:`MODES`), optionally with a new preset or level."""
        if mode not in MODES:
            raise UsageError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
        if preset is not None:
            self.preset = transfer_name(preset)
        if level is not None:
            self.level = float(level)
        self.mode = mode
        if mode == "iso":
            self._show_surface()
            self.volume.VisibilityOff()
            if self.layer is not None:
                self.layer.configure()
            return
        if self.surface is not None:
            self.surface.VisibilityOff()
        self.volume.VisibilityOn()
        if self.window is not None:
            low, high = self.window
        else:
            low, high = self.fitted.get(mode, self.data_range)
        self.ramp = (float(low), float(high))
        if mode == "vr":
            points = PRESETS[self.preset].absolute_points(low, high)
            color, opacity = _transfer_functions(points)
            self.mapper.SetBlendModeToComposite()
            self.property.ShadeOn()
            self.property.SetAmbient(VR_SHADING["ambient"])
            self.property.SetDiffuse(VR_SHADING["diffuse"])
            self.property.SetSpecular(VR_SHADING["specular"])
            self.property.SetSpecularPower(VR_SHADING["specular_power"])
        else:
            # A grey ramp over the window; opacity 1: the pixel is the colour of the max/min value.
            points = np.array([[low, 0, 0, 0, 1.0], [high, 1, 1, 1, 1.0]], dtype=float)
            color, opacity = _transfer_functions(points)
            if mode == "mip":
                self.mapper.SetBlendModeToMaximumIntensity()
            else:
                self.mapper.SetBlendModeToMinimumIntensity()
            self.property.ShadeOff()
        self._set_sampling(mode)
        self.property.SetColor(color)
        self.property.SetScalarOpacity(opacity)
        self._color, self._opacity = color, opacity  # keep references alive
        if self.layer is not None:
            self.layer.configure()

    def _set_sampling(self, mode: str) -> None:
        """MIP/MinIP: a fixed fine sample distance and no coarser sampling while the mouse moves.

        A projection shows single voxels (a vessel, a calcification): samples a millimetre apart
        skip them, and the lowered image resolution while dragging turned the window's MIP into
        blocks. Composite rendering keeps VTK's automatic sampling (smooth by nature, slower),
        always on: it draws coarser while the window asks for :data:`INTERACTIVE_UPDATE_RATE`
        pictures a second and at full resolution when still. (The smart mapper's own switch,
        "interactive adjust", turned it off when still and left the CPU ray caster at the last
        coarse image sample distance: after a drag the still picture stayed coarse, 0.07 s
        instead of 0.6 s for BRAINIX T1 and 1.8 grey levels off the first still picture.)
        """
        self.mapper.InteractiveAdjustSampleDistancesOff()
        if mode in PROJECTION_MODES:
            self.mapper.AutoAdjustSampleDistancesOff()
            self.mapper.SetSampleDistance(min(self.vol.spacing) / PROJECTION_SAMPLES_PER_VOXEL)
        else:
            self.mapper.AutoAdjustSampleDistancesOn()

    def fit_projection_window(self) -> tuple[float, float] | None:
        """Choose the MIP/MinIP grey ramp from the picture the current camera draws.

        Renders the projection once with a linear ramp over the full value range (through the
        projection layer when one is attached, else with the window's other renderers and props
        hidden), reads the grey levels back as values and takes
        :func:`~volume.ops.window.projection_window` of them (the background, black, split off;
        1st..99.5th percentile of the object). Does nothing without a render window, with a user
        ``window``, or in other modes. Returns the ``(low, high)`` ramp chosen.
        """
        rw = self.renderer.GetRenderWindow()
        if self.mode not in PROJECTION_MODES or self.window is not None or rw is None:
            return None
        arr = np.asarray(self.vol.array)
        lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
        if hi <= lo:
            return None
        self.fitted[self.mode] = (lo, hi)
        self.set_mode(self.mode)
        if self.layer is not None:
            grey = self.layer.picture(rw.GetSize()).astype(np.float64).ravel()
        else:
            grey = self._plain_picture(rw)
        if not (grey > 0).any():  # nothing drawn
            del self.fitted[self.mode]
            self.set_mode(self.mode)
            return None
        # Every pixel counts: black ones (rays through air only, or outside the volume) are the
        # background that projection_window splits off before taking the object's percentiles.
        win = projection_window(lo + grey / 255.0 * (hi - lo))
        low, high = win.low, max(win.high, win.low + (hi - lo) / 255.0)
        self.fitted[self.mode] = (low, high)
        self.set_mode(self.mode)
        return low, high

    def _plain_picture(self, rw: Any) -> np.ndarray:
        """Grey levels (flat float64) of the volume alone, rendered in ``rw`` with everything else hidden."""
        from vtkmodules.util.numpy_support import vtk_to_numpy
        from vtkmodules.vtkCommonCore import vtkUnsignedCharArray

        hidden = []
        props = self.renderer.GetViewProps()
        props.InitTraversal()
        for _ in range(props.GetNumberOfItems()):
            prop = props.GetNextProp()
            if prop is not self.volume and prop.GetVisibility():
                prop.VisibilityOff()
                hidden.append(prop)
        others = []
        renderers = rw.GetRenderers()
        renderers.InitTraversal()
        for _ in range(renderers.GetNumberOfItems()):
            r = renderers.GetNextItem()
            if r is not self.renderer and r.GetDraw():
                r.DrawOff()
                others.append(r)
        try:
            rw.Render()
            w, h = rw.GetSize()
            buf = vtkUnsignedCharArray()
            rw.GetPixelData(0, 0, w - 1, h - 1, 0, buf, 0)
            return vtk_to_numpy(buf).reshape(-1, 3)[:, 0].astype(np.float64)
        finally:
            for prop in hidden:
                prop.VisibilityOn()
            for r in others:
                r.DrawOn()

    def set_frame(self, frame: int) -> None:
        """Show frame ``frame`` of a 4D series (same grid, same camera, same mode)."""
        if frame == self.frame:
            return
        vol = render_grid(self.source, frame)
        self.frame = int(frame)
        self.vol = vol
        self.image = to_vtk_image(vol)
        self.mapper.SetInputData(self.image)
        self._surface_level = None
        if self.layer is not None:
            self.layer.rebuild()
        if self.mode == "iso":
            self._show_surface()
        self.set_mode(self.mode)

    def _show_surface(self) -> None:
        from vtkmodules.vtkRenderingCore import vtkActor, vtkPolyDataMapper

        if self.surface is None:
            self.surface = vtkActor()
            self.surface.SetUserMatrix(vtk_matrix(self.matrix))
            prop = self.surface.GetProperty()
            prop.SetColor(*SURFACE_COLOR)
            prop.SetSpecular(0.3)
            prop.SetSpecularPower(20.0)
            self._surface_mapper = vtkPolyDataMapper()
            self._surface_mapper.ScalarVisibilityOff()
            self.surface.SetMapper(self._surface_mapper)
            self.renderer.AddActor(self.surface)
        if self._surface_level != self.level:
            self._surface_mapper.SetInputData(image_isosurface(self.image, self.level))
            self._surface_level = self.level
        self.surface.VisibilityOn()

    # --- mapper ------------------------------------------------------------------------------------
    def use_mapper(self, kind: str) -> None:
        """``gpu`` (vtkGPUVolumeRayCastMapper via the smart mapper) or ``cpu`` (fixed-point ray cast).

        Both honour the prop's matrix; both lower their sampling while the user drags (interactive
        update rate) and render at full resolution when still.
        """
        if kind == "gpu":
            self.mapper.SetRequestedRenderModeToGPU()
        elif kind == "cpu":
            self.mapper.SetRequestedRenderModeToRayCast()
        else:
            raise UsageError(f"unknown mapper {kind!r}; choose one of {', '.join(MAPPERS)}")
        self.mapper_kind = kind
        if self.layer is not None:
            self.layer.configure()

    # --- camera ----------------------------------------------------------------------------------
    @property
    def world_corners(self) -> np.ndarray:
        """(8, 3) LPS mm of the outer corners of the volume (voxel edges, half a voxel beyond the centres)."""
        s, r, c = self.vol.shape
        corners = np.array(
            [[k, j, i] for k in (-0.5, s - 0.5) for j in (-0.5, r - 0.5) for i in (-0.5, c - 0.5)], dtype=float
        )
        return self.vol.world(corners)

    def set_view(
        self,
        view: str = "anterior",
        *,
        azimuth: float = 0.0,
        elevation: float = 0.0,
        parallel: bool = True,
        aspect: float | None = None,
    ) -> None:
        """Point the camera at the volume's centre from ``view`` (see :data:`VIEWS`; the direction and
        view-up follow the volume's own axes when within :data:`SNAP_DEG`, :meth:`own_axis`).

        ``azimuth`` turns the camera about the view-up axis (degrees, counter-clockwise seen from
        above the up direction), ``elevation`` tilts it up. ``parallel`` uses an orthographic
        projection (distances measurable in the picture); otherwise perspective. ``aspect`` is
        the picture's width / height (to fit the volume snugly in parallel projection).
        """
        if view not in VIEWS:
            raise UsageError(f"unknown view {view!r}; choose one of {', '.join(VIEWS)}")
        if aspect is not None:
            self.aspect = float(aspect)
        direction, up = (self.own_axis(v) for v in VIEWS[view])
        corners = self.world_corners
        centre = (corners.min(axis=0) + corners.max(axis=0)) / 2
        radius = float(np.linalg.norm(corners.max(axis=0) - corners.min(axis=0))) / 2 or 1.0
        cam = self.renderer.GetActiveCamera()
        cam.SetParallelProjection(bool(parallel))
        cam.SetFocalPoint(*centre)
        cam.SetPosition(*(centre + direction * radius * 4))
        cam.SetViewUp(*up)
        if azimuth:
            cam.Azimuth(float(azimuth))
        if elevation:
            cam.Elevation(float(elevation))
        cam.OrthogonalizeViewUp()
        self.reset_camera()

    def own_axis(self, direction: Any) -> np.ndarray:
        """The volume's own axis (either way) nearest the LPS unit vector ``direction`` when within
        :data:`SNAP_DEG` of it, else ``direction`` itself."""
        v = np.asarray(direction, dtype=float)
        axes = self.matrix[:3, :3] / np.linalg.norm(self.matrix[:3, :3], axis=0)
        cos = axes.T @ v
        i = int(np.argmax(np.abs(cos)))
        if np.degrees(np.arccos(min(1.0, abs(float(cos[i]))))) <= SNAP_DEG:
            return axes[:, i] * np.sign(cos[i])
        return v

    @property
    def last_render_seconds(self) -> float:
        """Time of the last picture: the projection layer's and the renderer's own."""
        own = float(self.renderer.GetLastRenderTimeInSeconds())
        if self.layer is not None and self.mode in PROJECTION_MODES:
            return own + float(self.layer.seconds)
        return own

    def reset_camera(self) -> None:
        """Fit the whole volume in the picture, keeping the view direction.

        In parallel projection the volume's projected extent fills the picture up to
        :data:`FRAME_MARGIN`; in perspective VTK's bounding-sphere fit is used.
        """
        corners = self.world_corners
        lo, hi = corners.min(axis=0), corners.max(axis=0)
        self.renderer.ResetCamera(lo[0], hi[0], lo[1], hi[1], lo[2], hi[2])
        cam = self.renderer.GetActiveCamera()
        if cam.GetParallelProjection():
            focal = np.array(cam.GetFocalPoint())
            dop = focal - np.array(cam.GetPosition())
            dop /= np.linalg.norm(dop)
            up = np.array(cam.GetViewUp())
            right = np.cross(dop, up)
            rel = corners - focal
            half_w = float(np.abs(rel @ right).max())
            half_h = float(np.abs(rel @ up).max())
            cam.SetParallelScale(max(half_h, half_w / self.aspect, 1e-6) * FRAME_MARGIN)
        self.renderer.ResetCameraClippingRange(lo[0], hi[0], lo[1], hi[1], lo[2], hi[2])


def image_isosurface(image: Any, level: float) -> Any:
    """The isosurface of a ``vtkImageData`` at ``level`` (vtkFlyingEdges3D), in its image frame."""
    from vtkmodules.vtkFiltersCore import vtkFlyingEdges3D

    fe = vtkFlyingEdges3D()
    fe.SetInputData(image)
    fe.SetValue(0, float(level))
    fe.ComputeNormalsOn()
    fe.ComputeScalarsOff()
    fe.Update()
    out = fe.GetOutput()
    return out

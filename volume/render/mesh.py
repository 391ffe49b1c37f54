"""Isosurfaces as triangle meshes in patient coordinates: STL, PLY, OBJ.

The surface is extracted by ``vtkFlyingEdges3D`` (a faster, multi-threaded marching cubes) on the
image frame and then moved into patient space by the same matrix the renderer uses
(:func:`volume.render.scene.index_matrix`), so a point of the mesh is in millimetres in the
patient's frame. STL, PLY and OBJ carry no coordinate convention; volume writes **LPS** by default
(DICOM's frame, the one 3D Slicer also writes model files in) and **RAS** on request
(``coords="ras"``: x and y negated, NIfTI's and FreeSurfer's frame). The LPS <-> RAS change is a
rotation by 180° about the superior axis, so neither choice mirrors the model: a printed skull is
the right way round either way.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ..choices import MESH_COORDS
from ..errors import NotAVolumeError, UsageError
from ..io.atomic import atomic_output
from ..volume import LPS_TO_RAS, Volume
from .scene import image_isosurface, index_matrix, render_grid, to_vtk_image, vtk_matrix

MESH_FORMATS = (".stl", ".ply", ".obj")
"""Mesh file extensions volume writes."""

COORDS = MESH_COORDS
"""Patient coordinate frames a mesh can be written in."""


def isosurface(
    vol: Volume, level: float, *, coords: str = "lps", frame: int = 0, smooth: int = 0, largest: bool = False
) -> Any:
    """The surface where ``vol`` crosses ``level``, as ``vtkPolyData`` in patient mm.

    Parameters
    ----------
    vol
        A grey-level volume (a 4D volume uses ``frame``).
    level
        Threshold in the volume's units (HU for CT).
    coords
        ``"lps"`` (DICOM, default) or ``"ras"``.
    frame
        0-based frame of a 4D volume.
    smooth
        Windowed-sinc smoothing iterations (0: none); smoothing keeps the volume enclosed.
    largest
        Keep only the largest connected piece (drops specks of noise).

    Returns
    -------
    vtkPolyData
        Triangles with outward normals, points in mm.

    Raises
    ------
    UsageError
        An unknown ``coords``, or a level that gives an empty surface.

    Examples
    --------
    >>> surface = volume.isosurface(volume.load("ct"), 300)
    >>> surface.GetNumberOfCells() > 0
    True
    """
    if coords not in COORDS:
        raise UsageError(f"unknown coordinate frame {coords!r}; choose one of {', '.join(COORDS)}")
    grid = render_grid(vol, frame)
    if min(grid.array.shape[-3:]) < 2:
        raise NotAVolumeError(
            f"series {vol.meta.get('stack_id', '')}: {grid.array.shape[-3:]} voxels (slices, rows, columns): "
            "a surface needs at least 2 along each axis; choose a series with more slices"
        )
    lo, hi = float(np.nanmin(grid.array)), float(np.nanmax(grid.array))
    if not lo < level < hi:
        raise UsageError(
            f"--level {level:g} gives no surface: the values of this series lie between {lo:g} and {hi:g}"
        )
    poly = _cleaned(image_isosurface(to_vtk_image(grid), level), smooth=smooth, largest=largest)
    matrix = index_matrix(grid)
    out = _in_patient_mm(poly, LPS_TO_RAS @ matrix if coords == "ras" else matrix)
    if out.GetNumberOfCells() == 0:
        raise UsageError(f"--level {level:g} gives an empty surface")
    return out


def _cleaned(poly: Any, *, smooth: int, largest: bool) -> Any:
    """``poly`` with only its largest connected piece (``largest``) and windowed-sinc smoothed
    (``smooth`` iterations; 0: none)."""
    from vtkmodules.vtkFiltersCore import vtkPolyDataConnectivityFilter, vtkWindowedSincPolyDataFilter

    if largest:
        conn = vtkPolyDataConnectivityFilter()
        conn.SetInputData(poly)
        conn.SetExtractionModeToLargestRegion()
        conn.Update()
        poly = conn.GetOutput()
    if smooth > 0:
        sinc = vtkWindowedSincPolyDataFilter()
        sinc.SetInputData(poly)
        sinc.SetNumberOfIterations(int(smooth))
        sinc.SetPassBand(0.1)
        sinc.NormalizeCoordinatesOn()
        sinc.BoundarySmoothingOff()
        sinc.FeatureEdgeSmoothingOff()
        sinc.Update()
        poly = sinc.GetOutput()
    return poly


def _in_patient_mm(poly: Any, matrix: np.ndarray) -> Any:
    """``poly``'s index-space points moved by ``matrix`` (index -> patient mm), with outward normals."""
    from vtkmodules.vtkCommonTransforms import vtkTransform
    from vtkmodules.vtkFiltersCore import vtkPolyDataNormals
    from vtkmodules.vtkFiltersGeneral import vtkTransformFilter

    transform = vtkTransform()
    transform.SetMatrix(vtk_matrix(matrix))
    move = vtkTransformFilter()
    move.SetInputData(poly)
    move.SetTransform(transform)
    normals = vtkPolyDataNormals()
    normals.SetInputConnection(move.GetOutputPort())
    normals.SplittingOff()
    normals.ConsistencyOn()
    normals.AutoOrientNormalsOff()
    normals.Update()
    return normals.GetOutput()


def write_mesh(poly: Any, path: str | os.PathLike[str], *, force: bool = False, coords: str = "lps") -> Path:
    """Write ``vtkPolyData`` as STL (binary), PLY (binary) or OBJ by extension, atomically.

    STL and PLY headers say ``SPACE=LPS`` (or RAS) as 3D Slicer's model files do. The write is
    checked before the file is published: errors VTK reports (through observers: none of VTK's own
    lines reach stderr) and a file shorter than the mesh (VTK's PLY and OBJ writers do not notice a
    full disk) raise ``OSError`` naming ``path``; the partial file is removed.

    Parameters
    ----------
    poly
        The surface (:func:`isosurface`).
    path
        A ``.stl``, ``.ply`` or ``.obj`` file.
    force
        Replace an existing file.
    coords
        The frame ``poly``'s points are in (``"lps"`` or ``"ras"``), named in STL and PLY headers.

    Returns
    -------
    pathlib.Path
        ``path``, in place only once VTK wrote the whole mesh.

    Raises
    ------
    OSError
        The file could not be written whole (``ENOSPC`` when the disk is full, ``EIO`` otherwise).
    UsageError
        Another extension.
    OutputExistsError
        ``path`` exists and ``force`` is false.

    Examples
    --------
    >>> volume.write_mesh(volume.isosurface(volume.load("ct"), 300), "head.stl")
    PosixPath('head.stl')
    """
    from vtkmodules.vtkIOGeometry import vtkOBJWriter, vtkSTLWriter
    from vtkmodules.vtkIOPLY import vtkPLYWriter

    suffix = Path(path).suffix.lower()
    if suffix not in MESH_FORMATS:
        raise UsageError(f"{path}: unknown mesh format; use {', '.join(MESH_FORMATS)}")
    with atomic_output(path, force=force, suffix=suffix) as tmp:
        if suffix == ".stl":
            writer: Any = vtkSTLWriter()
            writer.SetFileTypeToBinary()
            writer.SetHeader(f"volume isosurface SPACE={coords.upper()} units=mm")
        elif suffix == ".ply":
            writer = vtkPLYWriter()
            writer.SetFileTypeToBinary()
            writer.AddComment(f"volume isosurface SPACE={coords.upper()} units=mm")
        else:
            writer = vtkOBJWriter()
        writer.SetFileName(os.fspath(tmp))
        writer.SetInputData(poly)
        with vtk_errors(writer) as errors:
            ok = writer.Write()
        problem = errors[0] if errors else "" if ok and not writer.GetErrorCode() else "the writer failed"
        problem = problem or _incomplete(tmp, suffix, poly)
        if problem:
            raise _write_failed(tmp, Path(path), problem, out_of_space=_out_of_space(writer))
    return Path(path)


@contextmanager
def vtk_errors(*objects: Any) -> Iterator[list[str]]:
    """Collect the errors and warnings VTK reports for ``objects`` (and their executives) instead of
    printing them: yields the list of their first lines, filled as VTK reports."""
    from vtkmodules.util.misc import calldata_type
    from vtkmodules.util.vtkConstants import VTK_STRING

    messages: list[str] = []

    @calldata_type(VTK_STRING)  # VTK passes the message text
    def collect(_obj: Any, _event: str, text: Any = None) -> None:
        line = str(text or "").strip().splitlines()
        messages.append(line[0] if line else "VTK reported an error")

    watched = []
    for obj in objects:
        for target in (obj, obj.GetExecutive() if hasattr(obj, "GetExecutive") else None):
            if target is None:
                continue
            watched += [(target, target.AddObserver(event, collect)) for event in ("ErrorEvent", "WarningEvent")]
    try:
        yield messages
    finally:
        for target, tag in watched:
            target.RemoveObserver(tag)


def _out_of_space(writer: Any) -> bool:
    from vtkmodules.vtkCommonMisc import vtkErrorCode

    return int(writer.GetErrorCode()) == int(vtkErrorCode.OutOfDiskSpaceError)


def _write_failed(tmp: Path, path: Path, problem: str, *, out_of_space: bool) -> OSError:
    """The error of a mesh not written whole: ``ENOSPC`` when VTK says so or the disk has no room."""
    if not out_of_space:
        try:
            st = os.statvfs(tmp.parent)
            out_of_space = st.f_bavail == 0 or st.f_favail == 0
        except OSError:
            pass
    if out_of_space:
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), os.fspath(path))
    return OSError(errno.EIO, f"the mesh was not written whole ({problem})", os.fspath(path))


PLY_TYPE_BYTES = {"char": 1, "uchar": 1, "int8": 1, "uint8": 1, "short": 2, "ushort": 2, "int16": 2, "uint16": 2,
                  "int": 4, "uint": 4, "int32": 4, "uint32": 4, "float": 4, "float32": 4, "double": 8, "float64": 8}
"""Bytes of each binary PLY property type."""

STL_HEADER_BYTES, STL_TRIANGLE_BYTES = 84, 50
"""A binary STL file: an 80-byte header and a 4-byte count, then 50 bytes per triangle."""


def _incomplete(tmp: Path, suffix: str, poly: Any) -> str:
    """Why the mesh file ``tmp`` does not hold all of ``poly`` ('' when it does): its size (STL,
    PLY) or its lines (OBJ) against the mesh's points and cells."""
    n_points, n_cells = int(poly.GetNumberOfPoints()), int(poly.GetNumberOfCells())
    try:
        size = tmp.stat().st_size
    except OSError as exc:
        return f"the file is gone ({exc.strerror})"
    if suffix == ".stl":
        want = STL_HEADER_BYTES + STL_TRIANGLE_BYTES * n_cells
        return "" if size == want else f"{size} of {want} bytes"
    data = tmp.read_bytes()
    if suffix == ".ply":
        return _ply_incomplete(data, n_points, n_cells, poly)
    counts = (data.count(b"\nv "), data.count(b"\nf "))
    if counts != (n_points, n_cells) or not data.endswith(b"\n"):
        return f"{counts[0]} of {n_points} points and {counts[1]} of {n_cells} faces"
    return ""


def _ply_incomplete(data: bytes, n_points: int, n_cells: int, poly: Any) -> str:
    end = data.find(b"end_header\n")
    if end < 0:
        return "no complete header"
    header = data[: end].decode("ascii", "replace").splitlines()
    vertex_bytes = 0
    element = None
    counts: dict[str, int] = {}
    for line in header:
        words = line.split()
        if words[:1] == ["element"] and len(words) == 3:
            element = words[1]
            counts[element] = int(words[2])
        elif words[:1] == ["property"] and element == "vertex" and len(words) == 3:
            vertex_bytes += PLY_TYPE_BYTES.get(words[1], 0)
    if counts.get("vertex") != n_points or counts.get("face", 0) != n_cells:
        return "the header does not count the mesh"
    cells = poly.GetPolys()
    face_bytes = n_cells + 4 * (int(cells.GetNumberOfConnectivityIds()) if cells is not None else 0)
    want = end + len(b"end_header\n") + n_points * vertex_bytes + face_bytes
    return "" if len(data) == want else f"{len(data)} of {want} bytes"


def mesh_stats(poly: Any) -> dict[str, float]:
    """Triangles, points, surface area (mm²) and enclosed volume (mm³) of a mesh."""
    from vtkmodules.vtkFiltersCore import vtkMassProperties, vtkTriangleFilter

    tri = vtkTriangleFilter()
    tri.SetInputData(poly)
    mass = vtkMassProperties()
    mass.SetInputConnection(tri.GetOutputPort())
    mass.Update()
    return {
        "triangles": float(poly.GetNumberOfCells()),
        "points": float(poly.GetNumberOfPoints()),
        "area_mm2": float(mass.GetSurfaceArea()),
        "volume_mm3": float(mass.GetVolume()),
    }

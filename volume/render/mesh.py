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

import os
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
    smooth
        Windowed-sinc smoothing iterations (0: none); smoothing keeps the volume enclosed.
    largest
        Keep only the largest connected piece (drops specks of noise).

    Returns
    -------
    vtkPolyData
        Triangles with outward normals, points in mm.
    """
    from vtkmodules.vtkCommonTransforms import vtkTransform
    from vtkmodules.vtkFiltersCore import (
        vtkPolyDataConnectivityFilter,
        vtkPolyDataNormals,
        vtkWindowedSincPolyDataFilter,
    )
    from vtkmodules.vtkFiltersGeneral import vtkTransformFilter

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
    poly = image_isosurface(to_vtk_image(grid), level)
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
    matrix = index_matrix(grid)
    if coords == "ras":
        matrix = LPS_TO_RAS @ matrix
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
    out = normals.GetOutput()
    if out.GetNumberOfCells() == 0:
        raise UsageError(f"--level {level:g} gives an empty surface")
    return out


def write_mesh(poly: Any, path: str | os.PathLike[str], *, force: bool = False, coords: str = "lps") -> Path:
    """Write ``vtkPolyData`` as STL (binary), PLY (binary) or OBJ by extension, atomically.

    STL and PLY headers say ``SPACE=LPS`` (or RAS) as 3D Slicer's model files do.
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
        if not writer.Write():
            raise OSError(f"{path}: VTK could not write the mesh")
    return Path(path)


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

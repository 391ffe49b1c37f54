"""``volume mesh``: isosurfaces in patient millimetres, right size, right place, written atomically."""

from __future__ import annotations

import numpy as np
import pytest
from synth import AXIAL, SAGITTAL, oblique_iop, synthetic_volume, write_series

import volume
from volume.cli import main
from volume.render.mesh import isosurface, mesh_stats, write_mesh

CENTRE = np.array([12.0, -7.0, 31.0])
"""Sphere centre (LPS mm)."""
RADIUS = 15.0
"""Sphere radius (mm)."""
TOP = 100.0
"""Field value at the centre; it falls by 1 per mm (a distance field), so the level sets are spheres."""
LEVEL = TOP - RADIUS


def sphere_field(x, y, z):
    return TOP - np.sqrt((x - CENTRE[0]) ** 2 + (y - CENTRE[1]) ** 2 + (z - CENTRE[2]) ** 2)


def sphere_volume(iop, spacing, shape):
    row, col = np.asarray(iop[:3]), np.asarray(iop[3:])
    normal = np.cross(row, col)
    # Off-centre grid (by 2.3 mm) so that the sphere's centre is not a grid symmetry.
    origin = CENTRE + 2.3 - sum((n - 1) / 2 * s * d for n, s, d in zip(shape, spacing, (normal, col, row), strict=True))
    return synthetic_volume(shape=shape, iop=iop, origin=origin, spacing=spacing, field_fn=sphere_field)


def points_of(poly) -> np.ndarray:
    from vtkmodules.util.numpy_support import vtk_to_numpy

    return vtk_to_numpy(poly.GetPoints().GetData()).astype(float)


def read_mesh(path):
    from vtkmodules.vtkIOGeometry import vtkOBJReader, vtkSTLReader
    from vtkmodules.vtkIOPLY import vtkPLYReader

    reader = {".stl": vtkSTLReader, ".ply": vtkPLYReader, ".obj": vtkOBJReader}[path.suffix]()
    reader.SetFileName(str(path))
    reader.Update()
    return reader.GetOutput()


GEOMETRIES = {
    "axial-anisotropic": (AXIAL, (3.0, 1.0, 1.25), (16, 44, 36)),
    "sagittal": (SAGITTAL, (2.0, 1.5, 1.5), (24, 30, 30)),
    "oblique": (oblique_iop(AXIAL, axis=(1.0, 0.3, 0.2), degrees=25.0), (2.5, 1.2, 1.0), (20, 40, 44)),
}


@pytest.mark.parametrize("name", list(GEOMETRIES))
def test_sphere_area_volume_and_centre_in_lps(name):
    iop, spacing, shape = GEOMETRIES[name]
    vol = sphere_volume(iop, spacing, shape)
    poly = isosurface(vol, LEVEL)
    stats = mesh_stats(poly)
    assert stats["area_mm2"] == pytest.approx(4 * np.pi * RADIUS**2, rel=0.02)
    assert abs(stats["volume_mm3"]) == pytest.approx(4 / 3 * np.pi * RADIUS**3, rel=0.03)
    pts = points_of(poly)
    # Every vertex on the sphere (within a voxel), the centre within a fraction of a voxel.
    r = np.linalg.norm(pts - CENTRE, axis=1)
    assert np.abs(r - RADIUS).max() < min(spacing)
    assert np.linalg.norm(pts.mean(axis=0) - CENTRE) < 0.25 * min(spacing)


def test_ras_coordinates_negate_x_and_y():
    iop, spacing, shape = GEOMETRIES["oblique"]
    vol = sphere_volume(iop, spacing, shape)
    lps = points_of(isosurface(vol, LEVEL))
    ras = points_of(isosurface(vol, LEVEL, coords="ras"))
    np.testing.assert_allclose(ras, lps * [-1, -1, 1], atol=1e-4)


def test_normals_point_outwards():
    vol = sphere_volume(*GEOMETRIES["oblique"][:1], (2.5, 1.2, 1.0), (20, 40, 44))
    poly = isosurface(vol, LEVEL)
    from vtkmodules.util.numpy_support import vtk_to_numpy

    normals = vtk_to_numpy(poly.GetPointData().GetNormals())
    radial = points_of(poly) - CENTRE
    cosines = np.sum(normals * radial, axis=1) / np.linalg.norm(radial, axis=1)
    # Outward: the surface bounds the region above the level (the inside of the sphere).
    assert np.median(np.abs(cosines)) > 0.95
    assert (np.sign(cosines) == np.sign(np.median(cosines))).mean() > 0.99


@pytest.fixture(scope="module")
def sphere_series(tmp_path_factory):
    """The sphere field as a DICOM series (6 mm slices, oblique), CT-like values."""
    folder = tmp_path_factory.mktemp("sphere")
    iop = oblique_iop(SAGITTAL, axis=(0.2, 1.0, 0.4), degrees=20.0)
    row, col = np.asarray(iop[:3]), np.asarray(iop[3:])
    normal = np.cross(row, col)
    shape, spacing = (10, 48, 48), (6.0, 1.0, 1.0)
    origin = CENTRE - sum((n - 1) / 2 * s * d for n, s, d in zip(shape, spacing, (normal, col, row), strict=True))
    write_series(folder, shape=shape, iop=iop, origin=origin, pixel_spacing=spacing[1:], slice_spacing=spacing[0],
                 field_fn=lambda x, y, z: np.maximum(sphere_field(x, y, z), 0.0) * 10, modality="CT")
    return folder


@pytest.mark.parametrize("ext", [".stl", ".ply", ".obj"])
def test_cli_mesh_formats_hold_the_sphere(sphere_series, tmp_path, ext, capsys):
    out = tmp_path / f"ball{ext}"
    rc = main(["mesh", str(sphere_series), "--level", str(LEVEL * 10), "-o", str(out)])
    assert rc == 0
    assert capsys.readouterr().out.strip() == str(out)
    poly = read_mesh(out)
    stats = mesh_stats(poly)
    # 6 mm slices: the surface is coarser along the slice axis; area within 4 %.
    assert stats["area_mm2"] == pytest.approx(4 * np.pi * RADIUS**2, rel=0.04)
    pts = points_of(poly)
    assert np.linalg.norm(pts.mean(axis=0) - CENTRE) < 1.0  # within a voxel (1 x 1 x 6 mm)


def test_cli_mesh_ras_header_and_position(sphere_series, tmp_path):
    out = tmp_path / "ball.stl"
    assert main(["mesh", str(sphere_series), "--level", str(LEVEL * 10), "--coords", "ras", "-o", str(out)]) == 0
    assert b"SPACE=RAS" in out.read_bytes()[:80]
    pts = points_of(read_mesh(out))
    assert np.linalg.norm(pts.mean(axis=0) - CENTRE * [-1, -1, 1]) < 1.0


def test_cli_mesh_never_overwrites_without_force(sphere_series, tmp_path, capsys):
    out = tmp_path / "ball.stl"
    out.write_bytes(b"precious")
    assert main(["mesh", str(sphere_series), "--level", "850", "-o", str(out)]) == 5
    assert out.read_bytes() == b"precious"
    assert main(["mesh", str(sphere_series), "--level", "850", "-o", str(out), "--force"]) == 0
    assert out.read_bytes()[:80] != b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ball.stl"]


@pytest.mark.parametrize("args,needle", [
    (["--level", "99999"], "no surface"),
    (["--level", "500", "-o", "x.vtk"], "mesh format"),
])
def test_cli_mesh_bad_input_is_a_usage_error(sphere_series, tmp_path, args, needle, capsys):
    if "-o" not in args:
        args = [*args, "-o", "ball.stl"]
    args = [a if a not in ("ball.stl", "x.vtk") else str(tmp_path / a) for a in args]
    assert main(["mesh", str(sphere_series), *args]) == 2
    assert needle in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_write_mesh_is_atomic_on_failure(tmp_path, monkeypatch):
    """A writer that fails leaves nothing behind."""
    vol = sphere_volume(*GEOMETRIES["sagittal"])
    poly = isosurface(vol, LEVEL)
    import vtkmodules.vtkIOGeometry as geo

    class Broken(geo.vtkSTLWriter):
        def Write(self):  # noqa: N802 - VTK's name
            super().Write()
            raise OSError("disk full")

    monkeypatch.setattr(geo, "vtkSTLWriter", Broken)
    with pytest.raises(OSError, match="disk full"):
        write_mesh(poly, tmp_path / "x.stl")
    assert list(tmp_path.iterdir()) == []


def test_largest_piece_drops_specks():
    def two_balls(x, y, z):
        big = sphere_field(x, y, z)
        speck = 100.0 - np.sqrt((x - CENTRE[0] - 22) ** 2 + (y - CENTRE[1]) ** 2 + (z - CENTRE[2]) ** 2) - 11
        return np.maximum(big, speck)

    iop, spacing = AXIAL, (1.5, 1.5, 1.5)
    shape = (40, 40, 56)
    origin = CENTRE + np.array([11.0, 0, 0]) - np.array([(shape[2] - 1) / 2 * 1.5, (shape[1] - 1) / 2 * 1.5, (shape[0] - 1) / 2 * 1.5])
    vol = synthetic_volume(shape=shape, iop=iop, origin=origin, spacing=spacing, field_fn=two_balls)
    both = mesh_stats(isosurface(vol, LEVEL))["area_mm2"]
    one = mesh_stats(isosurface(vol, LEVEL, largest=True))["area_mm2"]
    assert one == pytest.approx(4 * np.pi * RADIUS**2, rel=0.02)
    assert both == pytest.approx(4 * np.pi * (RADIUS**2 + 4**2), rel=0.03)


def test_real_knee_mesh(data_dir, tmp_path):
    from conftest import real

    series = real("dicom", "knee_t1_j2k")
    vol = volume.load(series)
    out = tmp_path / "knee.ply"
    level = float(np.percentile(vol.array, 80))
    assert main(["mesh", str(series), "--level", f"{level:g}", "--largest", "-o", str(out)]) == 0
    pts = points_of(read_mesh(out))
    # The mesh lies inside the series' field of view (patient LPS mm).
    corners = vol.world(np.array([[k, j, i] for k in (0, vol.shape[0] - 1) for j in (0, vol.shape[1] - 1)
                                  for i in (0, vol.shape[2] - 1)], float))
    lo, hi = corners.min(0) - 1, corners.max(0) + 1
    assert np.all(pts >= lo) and np.all(pts <= hi)

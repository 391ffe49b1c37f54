"""A projection's slab is a whole number of slices, the number nearest the request, and says so
(``meta["projection"]``, the command's warning); a projection's repr names its plane."""

from __future__ import annotations

import math

import numpy as np
import pytest
from synth import oblique_iop, synthetic_volume, write_series

from volume.cli import main
from volume.ops.projection import project, slab_layout

ROW_MM = 0.469
"""BRAINIX T1's pixel spacing: a 20 mm slab cannot be whole slices of it."""


@pytest.fixture(scope="module")
def vol():
    return synthetic_volume(shape=(12, 60, 50), spacing=(6.0, ROW_MM, ROW_MM), iop=oblique_iop(degrees=4.4))


def test_the_slab_made_is_whole_slices_nearest_the_request_and_says_so(vol):
    proj = project(vol, "coronal", "max", slab_mm=20)
    info = proj.meta["projection"]
    n = round(20 / ROW_MM)  # 43 slices: 20.17 mm (42 would be 19.70 mm, farther)
    assert info["slices_per_slab"] == n and math.isclose(info["slab_mm"], n * ROW_MM, rel_tol=1e-9)
    assert info["slab_requested_mm"] == 20 and info["step_requested_mm"] is None
    assert info["rounding"].startswith(f"a 20 mm slab is {n} slices of 0.469 mm: 20.2 mm")
    assert "nearest the request" in info["rounding"]
    assert math.isclose(proj.spacing[info["axis"]], info["step_mm"])  # the grid is what is stated
    exact = project(vol, "axial", "max", slab_mm=12)  # two 6 mm slices: nothing to round
    assert exact.meta["projection"]["rounding"] is None and exact.meta["projection"]["slab_mm"] == 12
    stepped = project(vol, "coronal", "mean", slab_mm=20, step_mm=10).meta["projection"]
    assert "10 mm step is 21 slices" in stepped["rounding"] and stepped["step_requested_mm"] == 10
    assert project(vol, "coronal").meta["projection"]["rounding"] is None  # the whole volume: no request


def test_rounding_is_half_up_to_the_nearest_whole_slice():
    for slab, spacing, slices in ((20, ROW_MM, 43), (1.5, 1.0, 2), (1.49, 1.0, 1), (0.1, 3.0, 1)):
        assert slab_layout(1000, spacing, slab).size == slices, (slab, spacing)


@pytest.mark.parametrize(("plane", "mode", "name"), [("coronal", "max", "coronal MIP"),
                                                      ("sagittal", "min", "sagittal MinIP"),
                                                      ("axial", "mean", "axial mean projection")])
def test_a_projection_repr_names_its_plane(vol, plane, mode, name):
    proj = project(vol, plane, mode)
    angle = proj.meta["projection"]["angle_deg"]
    assert angle > 1  # projected along a volume axis that is oblique to the plane's normal
    assert f", {name} (oblique {angle:.1f}°), " in repr(proj)
    assert f", {name}, " in repr(project(vol, plane, mode, resample=True))  # exact: nothing oblique
    assert ", axial (oblique" in repr(vol)  # a volume that is no projection: its orientation


def test_mip_warns_what_the_slab_is_made_of(tmp_path, capsys):
    folder = tmp_path / "t1"
    write_series(folder, shape=(8, 40, 30), pixel_spacing=(ROW_MM, ROW_MM), slice_spacing=6.0,
                 field_fn=lambda x, y, z: 300.0 + 2.0 * x + np.abs(y), series_number=601, description="t1")
    assert main(["mip", str(folder), "--plane", "coronal", "--slab", "5", "-o", str(tmp_path / "slabs/")]) == 0
    err = capsys.readouterr().err
    assert "series 601: a 5 mm slab is 11 slices of 0.469 mm: 5.16 mm" in err
    assert main(["mip", str(folder), "--plane", "axial", "--slab", "12", "-o", str(tmp_path / "ax/")]) == 0
    assert "slab is" not in capsys.readouterr().err  # exactly two 6 mm slices: nothing to say

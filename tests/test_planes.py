"""One plane name check (``conventions.plane_name``, one exception type) and one "nearest axis"
(``volume.volume.nearest_axis``), used by projections, reslices and display pictures alike."""

from __future__ import annotations

import math

import numpy as np
import pytest
from synth import rotation, synthetic_volume

from volume.conventions import PLANES, plane_name
from volume.display import display_volume, volume_picture
from volume.errors import UsageError
from volume.ops.projection import aligned_grid, project, projection_axis
from volume.ops.reslice import reslice
from volume.volume import PLANE_NORMALS, nearest_axis


@pytest.fixture(scope="module")
def vol():
    return synthetic_volume(shape=(6, 7, 8))


def test_plane_names_ignore_case_and_blanks():
    assert [plane_name(p) for p in (" Axial", "CORONAL", "sagittal ")] == list(PLANES)


@pytest.mark.parametrize("call", [
    lambda v: plane_name("oblique"),
    lambda v: project(v, "oblique"),
    lambda v: projection_axis(v.affine, "oblique"),
    lambda v: aligned_grid(v, "oblique"),
    lambda v: reslice(v, plane="oblique"),
    lambda v: volume_picture(v, "oblique"),
    lambda v: display_volume(v, "oblique"),
], ids=["plane_name", "project", "projection_axis", "aligned_grid", "reslice", "volume_picture", "display_volume"])
def test_every_plane_check_raises_the_same_error_with_the_same_words(vol, call):
    with pytest.raises(UsageError) as caught:
        call(vol)
    assert str(caught.value) == "plane must be one of axial, coronal, sagittal, got 'oblique'"
    assert isinstance(caught.value, ValueError)  # what callers caught before still catches it


def test_nearest_axis_finds_the_axis_and_the_angle():
    axes = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]).T  # slice z, row y, column x
    for degrees in (0.0, 4.4, 30.0, 44.0):
        affine = np.eye(4)
        affine[:3, :3] = rotation((1.0, 0.0, 0.0), degrees) @ axes @ np.diag([3.0, 0.5, 0.7])  # turned about x
        axis, angle = nearest_axis(affine, np.array([0.0, 0.0, 2.0]))  # any length
        assert axis == 0 and math.isclose(angle, degrees, abs_tol=1e-9)
        axis, angle = nearest_axis(affine, np.array([-1.0, 0.0, 0.0]))  # antiparallel counts
        assert axis == 2 and math.isclose(angle, 0.0, abs_tol=1e-6)


def test_projections_and_pictures_ask_the_one_nearest_axis(vol):
    rng = np.random.default_rng(3)
    for _ in range(20):
        turn = rotation(rng.normal(size=3), float(rng.uniform(0, 40)))
        affine = np.array(vol.affine)
        affine[:3, :3] = turn @ affine[:3, :3]
        tilted = vol.with_array(np.asarray(vol.array), affine=affine)
        for plane in PLANES:
            axis, angle = nearest_axis(affine, PLANE_NORMALS[plane])
            assert projection_axis(affine, plane) == (axis, angle)
            assert project(tilted, plane).shape[axis] == 1  # projected along that axis
            picture, _ = volume_picture(tilted, plane, square=False)
            kept = [tilted.shape[a] for a in range(3) if a != axis]
            assert sorted(picture.shape) == sorted(kept)

"""Pure-numpy slice geometry: order, spacing, gaps, tilt and the affine, from numbers alone."""

from __future__ import annotations

import numpy as np
import pytest
from synth import AXIAL, CORONAL, SAGITTAL, oblique_iop, rotation

from volume.dicom.geometry import (
    GeometryError,
    affine_lps,
    check_iop,
    fits_uniform,
    interpolation_weights,
    output_grid,
    same_orientation,
    slice_normal,
    stack_geometry,
    uneven_steps,
    uniform_grid,
)


def _positions(iop, n, spacing, origin=(1.0, 2.0, 3.0)):
    normal = np.cross(iop[:3], iop[3:])
    return np.array([np.asarray(origin) + k * spacing * normal for k in range(n)])


@pytest.mark.parametrize("iop,normal", [(AXIAL, (0, 0, 1)), (CORONAL, (0, 1, 0)), (SAGITTAL, (-1, 0, 0))])
def test_normals_of_the_standard_planes(iop, normal) -> None:
    np.testing.assert_allclose(slice_normal(iop), normal, atol=1e-12)


def test_check_iop_rejects_nonsense() -> None:
    with pytest.raises(GeometryError, match="unit length"):
        check_iop([2, 0, 0, 0, 1, 0])
    with pytest.raises(GeometryError, match="orthogonal"):
        check_iop([1, 0, 0, 0.5, np.sqrt(0.75), 0])
    with pytest.raises(GeometryError, match="6 finite"):
        check_iop([1, 0, 0, 0, np.nan, 0])
    # DICOM rounding (a few decimals) is tolerated and orthonormalised
    row, col = check_iop([0.99999, 0.0045, 0, -0.0045, 0.99999, 0.0001])
    assert abs(row @ col) < 1e-12 and abs(np.linalg.norm(col) - 1) < 1e-12


def test_sorting_is_along_the_normal_not_by_z() -> None:
    # a sagittal stack: z is constant, the order comes from x (normal points right, -x)
    p = _positions(SAGITTAL, 5, 2.0)
    shuffled = p[[3, 0, 4, 2, 1]]
    g = stack_geometry(shuffled, SAGITTAL, (1.0, 1.0))
    np.testing.assert_array_equal(g.order, [1, 4, 3, 0, 2])
    np.testing.assert_allclose(np.diff(g.distances), 2.0)
    assert g.spacing == pytest.approx(2.0)
    assert not g.gaps and not g.tilted
    np.testing.assert_allclose(g.affine[:3, 3], p[0])


def test_affine_maps_indices_to_dicom_pixel_positions() -> None:
    iop = oblique_iop(degrees=33.0)
    dr, dc = 0.8, 1.3
    p = _positions(iop, 4, 2.5, origin=(-7, 11, 13))
    g = stack_geometry(p, iop, (dr, dc))
    row_dir, col_dir = np.asarray(iop[:3]), np.asarray(iop[3:])
    for s, r, c in [(0, 0, 0), (3, 5, 7), (2, 1, 9)]:
        dicom = p[s] + c * dc * row_dir + r * dr * col_dir
        np.testing.assert_allclose((g.affine @ [s, r, c, 1])[:3], dicom, atol=1e-9)
    assert affine_lps(iop, p[0], (dr, dc), g.normal * 2.5) == pytest.approx(g.affine)


def test_gap_detection() -> None:
    d = np.array([0, 2, 4, 8, 10, 12.0])
    p = np.c_[np.zeros(6), np.zeros(6), d]
    g = stack_geometry(p, AXIAL, (1, 1))
    assert g.gaps == [2]
    assert g.spacing == pytest.approx(2.0)
    assert uneven_steps(np.array([2.0, 2.004, 1.998])) == []  # rounding in the headers
    assert uneven_steps(np.array([5.0, 5.0, 5.6])) == [2]


def test_same_position_twice_is_an_error() -> None:
    p = np.array([[0, 0, 0], [0, 0, 2.0], [0, 0, 2.0]])
    with pytest.raises(GeometryError, match="same position"):
        stack_geometry(p, AXIAL, (1, 1))


def test_tilt_is_measured_from_positions() -> None:
    # IOP tilted by 12 degrees about x (as CT writes it); origins step along z
    iop = tuple(np.r_[rotation((1, 0, 0), 12.0) @ [1, 0, 0], rotation((1, 0, 0), 12.0) @ [0, 1, 0]])
    p = np.array([[0, 0, 3.0 * k] for k in range(6)])
    g = stack_geometry(p, iop, (0.5, 0.5))
    assert g.tilted
    assert g.tilt_deg == pytest.approx(12.0, abs=1e-6)
    # offsets: the in-plane drift of each origin in pixels, growing linearly
    step = 3.0 * np.sin(np.radians(12.0)) / 0.5
    np.testing.assert_allclose(np.abs(g.offsets[:, 0]), step * np.arange(6), atol=1e-9)
    np.testing.assert_allclose(g.offsets[:, 1], 0.0, atol=1e-9)
    assert g.spacing == pytest.approx(3.0 * np.cos(np.radians(12.0)))


def test_single_slice_uses_given_thickness() -> None:
    g = stack_geometry(np.array([[1.0, 2.0, 3.0]]), CORONAL, (1, 1), single_slice_spacing=4.0)
    assert g.spacing == 4.0
    np.testing.assert_allclose(np.linalg.norm(g.affine[:3, 0]), 4.0)


def test_uniform_grid_and_weights() -> None:
    d = np.array([0.0, 2.0, 4.0, 8.0, 10.0])
    t = uniform_grid(d, 2.0)
    np.testing.assert_allclose(t, [0, 2, 4, 6, 8, 10])
    i, w = interpolation_weights(d, t)
    np.testing.assert_array_equal(i, [0, 1, 2, 2, 3, 3])
    np.testing.assert_allclose(w, [0, 0, 0, 0.5, 0, 1])
    # a span that is not a multiple of the spacing: steps adjusted, ends kept
    t = uniform_grid(np.array([0.0, 3.0, 10.1]), 3.0)
    assert t[0] == 0.0 and t[-1] == pytest.approx(10.1)
    assert np.allclose(np.diff(t), np.diff(t)[0])


def test_same_orientation_tolerance() -> None:
    a = np.array(AXIAL)
    assert same_orientation(a, a + 5e-4)
    assert not same_orientation(a, oblique_iop(degrees=1.0))


def test_output_grid_grows_for_tilt_and_regrids_gaps() -> None:
    p = np.array([[0.0, 0.7 * k, 2.0 * k] for k in (0, 1, 2, 4, 5)])  # drift +y, one slice missing
    g = stack_geometry(p, AXIAL, (0.5, 1.0))
    assert g.tilted and g.gaps == [2]
    affine, shape = output_grid(g, 10, 8, resample_gaps=False)
    assert shape == (5, 10 + 7, 8)  # 3.5 mm of drift at 0.5 mm rows: 7 more rows, after
    np.testing.assert_allclose(affine[:3, 3], p[0])
    affine, shape = output_grid(g, 10, 8)
    assert shape == (6, 17, 8)
    np.testing.assert_allclose(affine[:3, 0], [0, 0, 2.0])
    # drift the other way: rows are added before, the origin moves back
    g = stack_geometry(p * [1, -1, 1], AXIAL, (0.5, 1.0))
    affine, shape = output_grid(g, 10, 8, resample_gaps=False)
    assert shape == (5, 17, 8)
    np.testing.assert_allclose(affine[:3, 3], [0, -3.5, 0])


def test_random_orientations_and_orders_property() -> None:
    """Any rotation, spacing and file order: sorting recovers the stack and the affine maps every
    (slice, row, column) to the position DICOM defines."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    @settings(max_examples=60, deadline=None)
    @given(
        axis=st.tuples(*[st.floats(-1, 1)] * 3).filter(lambda a: np.linalg.norm(a) > 0.1),
        degrees=st.floats(-180, 180),
        spacing=st.floats(0.3, 12.0),
        dr=st.floats(0.2, 3.0),
        dc=st.floats(0.2, 3.0),
        n=st.integers(2, 12),
        seed=st.integers(0, 2**16),
    )
    def check(axis, degrees, spacing, dr, dc, n, seed) -> None:
        iop = oblique_iop(AXIAL, axis=axis, degrees=degrees)
        p = _positions(iop, n, spacing, origin=(-50.0, 20.0, 7.5))
        perm = np.random.default_rng(seed).permutation(n)
        g = stack_geometry(p[perm], iop, (dr, dc))
        np.testing.assert_array_equal(perm[g.order], np.arange(n))
        assert not g.gaps and not g.tilted
        assert g.spacing == pytest.approx(spacing)
        row, col = np.asarray(iop[:3]), np.asarray(iop[3:])
        idx = np.array([[0, 0, 0], [n - 1, 4, 7], [n // 2, 9, 2]])
        world = idx @ g.affine[:3, :3].T + g.affine[:3, 3]
        dicom = p[idx[:, 0]] + idx[:, 2, None] * dc * row + idx[:, 1, None] * dr * col
        np.testing.assert_allclose(world, dicom, atol=1e-6)

    check()


def test_rounded_positions_are_not_gaps() -> None:
    # 0.625 mm CT whose IPPs are written with one decimal: steps 0.6 / 0.7, no slice missing
    true = 12.0 + 0.625 * np.arange(200)
    p = np.c_[np.zeros(200), np.zeros(200), np.round(true, 1)]
    g = stack_geometry(p, AXIAL, (0.7, 0.7))
    assert not g.gaps
    assert g.spacing == pytest.approx(0.625, abs=1e-3)  # the median step (0.6) would drift 5 mm
    # ... but a slice missing from the same stack is still a gap
    q = np.delete(p, 120, axis=0)
    assert stack_geometry(q, AXIAL, (0.7, 0.7)).gaps == [119]
    # and so is one step 20% longer in a 5 mm stack
    r = np.c_[np.zeros(6), np.zeros(6), [0, 5, 10, 15, 21, 26.0]]
    assert stack_geometry(r, AXIAL, (1, 1)).gaps == [3]
    assert fits_uniform(np.array([0, 5.05, 9.95, 15.0]), 5.0)
    assert not fits_uniform(np.array([0, 5, 10, 16, 21.0]), 5.25)


def test_rounded_in_plane_positions_are_not_a_tilt() -> None:
    # an oblique stack whose IPPs were rounded to 0.1 mm: in-plane jitter, no steady drift
    iop = oblique_iop(degrees=23.0)
    p = np.round(_positions(iop, 30, 1.0, origin=(-41.234, 17.891, 3.456)), 1)
    g = stack_geometry(p, iop, (0.4, 0.4))
    assert np.max(np.abs(g.offsets)) > 0.05  # jitter above the pixel tolerance
    assert not g.tilted and not g.gaps
    # while a real 2 degree tilt on the same stack is corrected
    shift = np.tan(np.radians(2.0)) * np.asarray(iop[3:])
    t = p + np.arange(30)[:, None] * 1.0 * shift
    assert stack_geometry(t, iop, (0.4, 0.4)).tilted

"""Projections: values equal numpy's over the canonical volume, geometry overlays the source."""

from __future__ import annotations

import numpy as np
import pytest
from synth import AXIAL, CORONAL, SAGITTAL, oblique_iop, phantom_field, synthetic_volume, write_series

from volume import Volume, load, scan
from volume.api import project_stack, source
from volume.display import volume_picture
from volume.errors import NotAVolumeError, UsageError
from volume.io.nifti import to_nifti
from volume.ops.projection import (
    aligned_grid,
    can_stream,
    project,
    projection_axis,
    slab_layout,
)

MARKER = (30.0, -30.0, 25.0)
"""Patient left-anterior-superior (LPS mm)."""

RAS_AXIS = {"sagittal": 0, "coronal": 1, "axial": 2}
"""Axis of a canonical (RAS) NIfTI array each plane projects along."""

REDUCE = {"max": np.max, "min": np.min, "mean": np.mean}


def _centred(iop, shape=(24, 26, 28), spacing=(2.5, 2.0, 1.75), field_fn=None, descending=False):
    row, col = np.asarray(iop[:3]), np.asarray(iop[3:])
    normal = np.cross(row, col)
    origin = -((np.array(shape) - 1) / 2 * np.array(spacing)) @ np.stack([normal, col, row])
    vol = synthetic_volume(shape, iop, origin, spacing, field_fn or phantom_field(MARKER, radius=9.0))
    if descending:
        aff = np.array(vol.affine)
        aff[:3, 3] = vol.world([shape[0] - 1, 0, 0])
        aff[:3, 0] *= -1
        vol = vol.with_array(np.asarray(vol.array)[::-1], affine=aff)
    return vol


def _canonical(vol: Volume):
    import nibabel as nib

    return nib.as_closest_canonical(to_nifti(vol))


@pytest.mark.parametrize("iop, descending", [(AXIAL, False), (SAGITTAL, True), (CORONAL, False), (AXIAL, True)])
@pytest.mark.parametrize("plane", ["axial", "coronal", "sagittal"])
@pytest.mark.parametrize("mode", ["max", "min", "mean"])
def test_projection_equals_numpy_on_canonical_volume(iop, descending, plane, mode):
    rng = np.random.default_rng(3)
    vol = _centred(iop, descending=descending)
    vol = vol.with_array(np.asarray(vol.array) + rng.integers(0, 50, vol.shape).astype(np.float32))
    proj = project(vol, plane, mode)
    src = _canonical(vol)
    out = _canonical(proj)
    axis = RAS_AXIS[plane]
    expected = REDUCE[mode](np.asarray(src.dataobj, dtype=np.float64), axis=axis, keepdims=True)
    got = np.asarray(out.dataobj, dtype=np.float64)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-3)
    # in-plane geometry equals the source's; the projected voxel sits at the volume's centre
    keep = [a for a in range(3) if a != axis]
    np.testing.assert_allclose(out.affine[:3, keep], src.affine[:3, keep], atol=1e-9)
    centre = src.affine @ np.r_[(np.array(src.shape) - 1) / 2, 1]
    np.testing.assert_allclose(out.affine[axis, 3], centre[axis], atol=1e-9)
    # the projected voxel is as thick as the volume
    assert abs(out.affine[axis, axis]) == pytest.approx(src.shape[axis] * abs(src.affine[axis, axis]))
    assert proj.meta["projection"]["plane"] == plane and proj.meta["projection"]["angle_deg"] == 0
    if mode != "mean":
        assert proj.array.dtype == vol.array.dtype


def test_slabs_count_positions_and_values():
    vol = _centred(AXIAL, shape=(30, 10, 12), spacing=(2.0, 1.0, 1.0))
    rng = np.random.default_rng(0)
    arr = rng.normal(size=vol.shape).astype(np.float32)
    vol = vol.with_array(arr)
    proj = project(vol, "axial", "max", slab_mm=10.0, step_mm=4.0)
    # 10 mm = 5 slices, 4 mm = 2 slices: starts 0, 2, ... 24
    assert proj.shape == (13, 10, 12)
    for j in range(13):
        np.testing.assert_array_equal(proj.array[j], arr[2 * j : 2 * j + 5].max(axis=0))
        # slab centre: the world position of source slice 2j + 2
        np.testing.assert_allclose(proj.world([j, 3, 4]), vol.world([2 * j + 2, 3, 4]), atol=1e-9)
    meta = proj.meta["projection"]
    assert (meta["slab_mm"], meta["step_mm"], meta["slabs"]) == (10.0, 4.0, 13)
    # non-overlapping slabs along the row axis (coronal on an axial series)
    cor = project(vol, "coronal", "mean", slab_mm=3.0)
    assert cor.shape == (30, 3, 12)
    np.testing.assert_allclose(cor.array[:, 1], arr[:, 3:6].mean(axis=1, dtype=np.float64), rtol=1e-6)
    np.testing.assert_allclose(cor.world([4, 1, 5]), vol.world([4, 4, 5]), atol=1e-9)
    # many overlapping slabs across columns (the vectorised path): 4 mm every 1 mm
    for mode, reduce in (("max", np.max), ("min", np.min)):
        sag = project(vol, "sagittal", mode, slab_mm=4.0, step_mm=1.0)
        assert sag.shape == (30, 10, 9)
        for j in range(9):
            np.testing.assert_array_equal(sag.array[:, :, j], reduce(arr[:, :, j : j + 4], axis=2))


def test_slab_layout_edges():
    assert slab_layout(10, 1.0, 50.0).count == 1  # thicker than the volume: one slab
    assert slab_layout(10, 2.0, 5.0).size == 3  # 2.5 voxels rounds half up
    assert slab_layout(10, 1.0).whole
    centred = slab_layout(11, 1.0, 3.0)  # 3 slabs of 3 cover 9 of 11 voxels: one spare at each end
    assert (centred.count, centred.starts) == (3, [1, 4, 7])
    assert [list(centred.open_slabs(k)) for k in (0, 1, 3, 4, 9, 10)] == [[], [0], [0], [1], [2], []]
    overlapping = slab_layout(10, 1.0, 4.0, 2.0)
    assert overlapping.starts == [0, 2, 4, 6] and list(overlapping.open_slabs(5)) == [1, 2]
    with pytest.raises(UsageError, match="--step needs --slab"):
        slab_layout(10, 1.0, None, 5.0)
    with pytest.raises(UsageError, match="positive"):
        slab_layout(10, 1.0, -1.0)


@pytest.mark.parametrize("iop, descending", [(AXIAL, False), (SAGITTAL, True), (oblique_iop(AXIAL, degrees=15.0), False)])
@pytest.mark.parametrize("resample", [False, True])
def test_marker_projects_to_its_patient_position(iop, descending, resample):
    """The bright ball's projection lands where the ball is, in every plane, and in the right quadrant."""
    vol = _centred(iop, shape=(50, 52, 56), spacing=(2.0, 2.0, 1.8), descending=descending)
    quadrant = {"axial": ("top", "right"), "coronal": ("top", "right"), "sagittal": ("top", "left")}
    for plane in ("axial", "coronal", "sagittal"):
        proj = project(vol, plane, "max", resample=resample)
        hot = np.argwhere(np.asarray(proj.array) > 500)
        # where the marker's ray along the projected axis meets the projection's plane
        index = proj.index(MARKER)
        index[proj.meta["projection"]["axis"]] = 0
        np.testing.assert_allclose(proj.world(hot).mean(axis=0), proj.world(index), atol=1.0)
        pic, _ = volume_picture(proj, plane)
        r, c = np.argwhere(pic > 500).mean(axis=0)
        vertical, horizontal = quadrant[plane]
        assert (r < pic.shape[0] / 2) == (vertical == "top")
        assert (c > pic.shape[1] / 2) == (horizontal == "right")


def test_resample_on_aligned_series_matches_direct_projection():
    vol = _centred(SAGITTAL, shape=(20, 22, 24), spacing=(2.0, 1.5, 1.25), descending=True)
    for plane in ("axial", "coronal", "sagittal"):
        direct, p1 = volume_picture(project(vol, plane, "max"), plane)
        resampled, p2 = volume_picture(project(vol, plane, "max", resample=True), plane)
        assert direct.shape == resampled.shape and p1 == pytest.approx(p2)
        np.testing.assert_allclose(resampled, direct, atol=1e-3)


def test_aligned_grid_covers_an_oblique_volume():
    vol = _centred(oblique_iop(AXIAL, degrees=20.0), shape=(10, 12, 14))
    affine, shape = aligned_grid(vol, "coronal")
    assert affine[:3, 0] @ [0, 1, 0] > 0  # slice axis along the coronal normal (posterior)
    assert affine[:3, 1] @ [0, 0, -1] > 0 and affine[:3, 2] @ [1, 0, 0] > 0  # rows down, columns to the left
    corners = vol.world(np.array(list(np.ndindex(2, 2, 2))) * (np.array(vol.shape) - 1))
    idx = (corners - affine[:3, 3]) @ np.linalg.inv(affine[:3, :3]).T
    assert np.all(idx > -1) and np.all(idx < np.array(shape))
    assert projection_axis(vol.affine, "axial")[1] == pytest.approx(20.0, abs=0.5)


def test_4d_projects_each_frame_and_rgb_is_refused():
    vol = _centred(AXIAL, shape=(8, 9, 10))
    four = Volume(np.stack([np.asarray(vol.array), np.asarray(vol.array) * 2]), vol.affine, vol.meta)
    proj = project(four, "coronal", "max")
    assert proj.is_4d and proj.array.shape == (2, 8, 1, 10)
    np.testing.assert_allclose(proj.array[1], 2 * proj.array[0])
    rgb = Volume(np.zeros((4, 5, 6, 3), np.uint8), vol.affine, {}, rgb=True)
    with pytest.raises(NotAVolumeError, match="colour"):
        project(rgb, "axial")
    with pytest.raises(UsageError, match="plane"):
        project(vol, "oblique")
    with pytest.raises(UsageError, match="mode"):
        project(vol, "axial", "median")


@pytest.mark.parametrize("iop, slope", [(AXIAL, 2.0), (SAGITTAL, 2.0), (AXIAL, 0.25)])
def test_streaming_from_files_equals_projecting_the_loaded_volume(tmp_path, iop, slope):
    write_series(tmp_path / "s", shape=(9, 16, 14), iop=iop, slopes=slope, intercepts=-100.0, stored_dtype=np.uint16)
    stack = scan(tmp_path / "s").stacks[0]
    assert can_stream(source(stack))
    vol = load(stack)
    for plane, mode, slab in (("axial", "max", None), ("coronal", "min", 4.0), ("sagittal", "mean", None)):
        a = project(vol, plane, mode, slab)
        b = project_stack(stack, plane, mode, slab)
        np.testing.assert_allclose(np.asarray(b.array, float), np.asarray(a.array, float), rtol=1e-6)
        np.testing.assert_allclose(b.affine, a.affine)
        assert b.meta["projection"] == a.meta["projection"]
        assert b.meta["series_description"] == vol.meta["series_description"]


def test_streaming_several_planes_in_one_pass_with_bounded_memory(tmp_path):
    import tracemalloc

    from volume.ops.projection import STREAM_CHUNK, project_stack_planes

    shape = (4 * STREAM_CHUNK, 96, 80)
    write_series(tmp_path / "long", shape=shape, iop=AXIAL, stored_dtype=np.uint16, names="ordered")
    stack = scan(tmp_path / "long").stacks[0]
    tracemalloc.start()
    try:
        projs = project_stack_planes(source(stack), ["axial", "coronal", "sagittal"], "max")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    volume_bytes = int(np.prod(shape)) * 2
    assert peak < volume_bytes / 2, f"streaming peaked at {peak} bytes for a {volume_bytes}-byte series"
    vol = load(stack)
    for plane, proj in projs.items():
        ref = project(vol, plane, "max")
        np.testing.assert_array_equal(np.asarray(proj.array), np.asarray(ref.array))
        np.testing.assert_allclose(proj.affine, ref.affine)


def test_reducer_widens_when_a_later_chunk_needs_a_wider_type():
    from volume.ops.projection import SliceReducer

    layout = slab_layout(4, 1.0)
    slices = [np.full((2, 3), 7, np.int16), np.full((2, 3), -5, np.int16),
              np.full((2, 3), 70000, np.int32), np.full((2, 3), 1, np.int16)]
    for axis, mode, expected in ((0, "max", 70000), (0, "min", -5), (1, "max", None)):
        lay = layout if axis == 0 else slab_layout(2, 1.0)
        reducer = SliceReducer(axis, mode, lay, len(slices))
        for k, sl in enumerate(slices):
            reducer.add(k, sl)
        out = reducer.result()
        assert out.dtype == np.int32
        if expected is not None:
            assert (out == expected).all()
        else:
            np.testing.assert_array_equal(out[:, 0, 0], [7, -5, 70000, 1])


@pytest.mark.parametrize("dtype", [np.int16, np.uint8, np.float32])
@pytest.mark.parametrize("mode", ["max", "min", "mean"])
def test_slab_reduce_equals_a_loop_over_slabs(dtype, mode):
    from volume.ops.projection import slab_reduce

    rng = np.random.default_rng(5)
    a = rng.integers(0, 120, size=(37, 11)).astype(dtype)
    reduce = {"max": np.max, "min": np.min, "mean": lambda v, axis: np.mean(v, axis=axis, dtype=np.float64)}[mode]
    for size, step in ((1, 1), (4, 1), (5, 2), (7, 3), (3, 3), (4, 6), (37, 1), (10, 10)):
        layout = slab_layout(37, 1.0, float(size), float(step))
        for axis in (0, 1):
            if axis == 1:
                layout = slab_layout(11, 1.0, float(min(size, 11)), float(step))
            got = slab_reduce(a, axis, mode, layout)
            parts = [reduce(np.take(a, range(s0, s0 + layout.size), axis=axis), axis=axis) for s0 in layout.starts]
            np.testing.assert_allclose(got, np.stack(parts, axis=axis), rtol=1e-12, err_msg=f"{size=} {step=} {axis=}")


def test_slab_layout_properties():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    @settings(max_examples=300, deadline=None)
    @given(n=st.integers(1, 120), size=st.integers(1, 40), step=st.integers(1, 40))
    def check(n, size, step):
        layout = slab_layout(n, 1.0, float(size), float(step))
        size_used = min(size, n)
        assert layout.size == size_used and layout.count == (n - size_used) // step + 1
        starts = layout.starts
        assert starts[0] >= 0 and starts[-1] + size_used <= n
        spare_before = starts[0]
        spare_after = n - (starts[-1] + size_used)
        assert 0 <= spare_after - spare_before <= 1  # centred
        assert starts[-1] + step + size_used > n and spare_before + spare_after < step  # no room for another
        for k in range(n):
            expected = [j for j, s0 in enumerate(starts) if s0 <= k < s0 + size_used]
            assert list(layout.open_slabs(k)) == expected

    check()


def test_streaming_an_enhanced_multiframe_file(tmp_path):
    from synth import write_enhanced

    from volume.ops.projection import STREAM_CHUNK

    write_enhanced(tmp_path / "e.dcm", shape=(STREAM_CHUNK + 7, 8, 9))  # frames stored in descending order
    stack = scan(tmp_path).stacks[0]
    assert can_stream(source(stack))
    vol = load(stack)
    for plane in ("axial", "coronal", "sagittal"):
        a, b = project_stack(stack, plane, "max"), project(vol, plane, "max")
        np.testing.assert_array_equal(np.asarray(a.array), np.asarray(b.array))
        np.testing.assert_allclose(a.affine, b.affine)

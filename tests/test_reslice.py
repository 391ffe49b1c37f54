"""Reslicing: every output voxel holds the source's function at its own patient position."""

from __future__ import annotations

import numpy as np
import pytest
from synth import AXIAL, CORONAL, SAGITTAL, linear_field, oblique_iop, synthetic_volume, write_series

import volume
from volume.api import like_grid
from volume.errors import UsageError
from volume.io.nifti import write_nifti
from volume.ops.reslice import (
    CT_BACKGROUND,
    PLANE_AXES,
    oblique_axes,
    plane_grid,
    resample,
    reslice,
)
from volume.volume import Volume

OBLIQUE = oblique_iop(AXIAL, axis=(1.0, 0.3, 0.2), degrees=17.0)


def source(iop=OBLIQUE, **kw) -> Volume:
    kw.setdefault("shape", (14, 18, 20))
    kw.setdefault("spacing", (3.0, 1.5, 1.25))
    return synthetic_volume(iop=iop, **kw)


def grid_world(vol: Volume) -> np.ndarray:
    """(S, R, C, 3) LPS position of every voxel centre, through the volume's own affine."""
    k, j, i = np.meshgrid(*(np.arange(n) for n in vol.shape), indexing="ij")
    return vol.world(np.stack([k, j, i], axis=-1))


def check_field(out: Volume, src: Volume, *, atol: float, margin: float = 0.0, fn=linear_field) -> int:
    """Assert out == fn(position) wherever the position is inside ``src`` by ``margin`` voxels.

    Returns the number of voxels checked (so a test can insist there are plenty).
    """
    world = grid_world(out)
    idx = src.index(world)
    inside = np.all((idx >= margin - 1e-6) & (idx <= np.array(src.shape) - 1 - margin + 1e-6), axis=-1)
    expected = fn(world[..., 0], world[..., 1], world[..., 2])
    got = np.asarray(out.array, dtype=float)
    np.testing.assert_allclose(got[inside], expected[inside], atol=atol)
    return int(inside.sum())


def test_isotropic_same_orientation_exact_values():
    src = source()
    out = reslice(src, spacing=1.0)
    np.testing.assert_allclose(out.spacing, (1.0, 1.0, 1.0), atol=1e-9)
    np.testing.assert_allclose(out.direction, src.direction, atol=1e-9)  # same orientation
    np.testing.assert_allclose(out.affine[:3, 3], src.affine[:3, 3])  # first voxel centre kept
    assert out.axcodes == src.axcodes
    # every output voxel lies inside the source: all of them are checked
    assert check_field(out, src, atol=2e-3) == np.prod(out.shape)
    assert out.array.dtype == np.float32


def test_anisotropic_spacing_three_values():
    src = source(iop=AXIAL)
    out = reslice(src, spacing=(2.0, 0.5, 0.75))
    np.testing.assert_allclose(out.spacing, (2.0, 0.5, 0.75), atol=1e-9)
    check_field(out, src, atol=2e-3)


@pytest.mark.parametrize("plane,codes", [("axial", "SPL"), ("coronal", "PIL"), ("sagittal", "RIP")])
def test_planes_from_oblique_are_truly_aligned(plane, codes):
    src = source()
    out = reslice(src, plane=plane, spacing=1.5)
    assert out.axcodes == codes
    # direction is exactly the patient axes: entries 0 or +-1 (an oblique source made truly axial...)
    np.testing.assert_array_equal(out.direction, PLANE_AXES[plane])
    assert out.orientation == plane
    np.testing.assert_allclose(out.spacing, (1.5, 1.5, 1.5))
    assert check_field(out, src, atol=2e-3) > 500
    # the field of view covers the whole source: every source voxel centre is inside the grid
    corners = src.world(np.array([[a, b, c] for a in (0, src.shape[0] - 1) for b in (0, src.shape[1] - 1)
                                  for c in (0, src.shape[2] - 1)], dtype=float))
    idx = out.index(corners)
    assert np.all(idx >= -0.5 - 1e-6) and np.all(idx <= np.array(out.shape) - 0.5 + 1e-6)


def test_coronal_slices_run_anterior_to_posterior_and_display_conventions():
    src = source(iop=AXIAL)
    out = reslice(src, plane="coronal")
    d = out.direction
    assert d[1, 0] > 0  # slices: +y, anterior -> posterior
    assert d[2, 1] < 0  # rows: superior at the top
    assert d[0, 2] > 0  # columns: patient's left on the image's right
    # native resolution kept along each new axis: 1.25 mm across (x), 3 mm down (z), 1.5 mm deep (y)
    np.testing.assert_allclose(out.spacing, (1.5, 3.0, 1.25))
    # an axial source resliced on its own grid spacing: every voxel coincides with a source voxel
    check_field(out, src, atol=1e-3)


def test_axial_plane_of_axial_source_is_identity():
    src = source(iop=AXIAL)
    out = reslice(src, plane="axial")
    assert out.shape == src.shape
    np.testing.assert_allclose(out.affine, src.affine, atol=1e-9)
    np.testing.assert_allclose(out.array, src.array, atol=1e-3)


def test_oblique_normal_grid_and_values():
    src = source(iop=CORONAL, shape=(12, 16, 18))
    normal = np.array([0.2, 0.97, 0.1])
    out = reslice(src, normal=normal, spacing=1.0)
    np.testing.assert_allclose(out.direction[:, 0], normal / np.linalg.norm(normal), atol=1e-12)
    np.testing.assert_allclose(out.direction.T @ out.direction, np.eye(3), atol=1e-12)
    assert out.orientation.startswith("coronal (oblique")
    # in-plane axes keep the coronal display conventions: superior at the top, left on the right
    assert out.direction[2, 1] < 0 and out.direction[0, 2] > 0
    assert check_field(out, src, atol=2e-3) > 500


def test_oblique_axes_follow_the_nearest_plane():
    axes = oblique_axes([0.0, 0.0, 1.0])
    np.testing.assert_allclose(axes, PLANE_AXES["axial"], atol=1e-12)
    axes = oblique_axes([-1.0, 0.0, 0.0])
    np.testing.assert_allclose(axes, PLANE_AXES["sagittal"], atol=1e-12)
    with pytest.raises(UsageError):
        oblique_axes([0.0, 0.0, 0.0])


def test_thick_mean_is_centre_value_and_max_is_the_far_edge():
    src = source(iop=AXIAL, shape=(30, 16, 16), spacing=(1.0, 2.0, 2.0))
    normal = np.array([0.0, 0.3, 1.0])
    thick = 6.0
    mean = reslice(src, normal=normal, spacing=(3.0, 2.0, 2.0), thickness=thick)
    peak = reslice(src, normal=normal, spacing=(3.0, 2.0, 2.0), thickness=thick, mode="max")
    assert mean.meta["slab"]["thickness_mm"] == thick
    n = mean.direction[:, 0]
    # voxels whose whole slab lies inside the source
    world = grid_world(mean)
    lo = src.index(world - n * thick / 2)
    hi = src.index(world + n * thick / 2)
    full = np.all((lo >= 0) & (lo <= np.array(src.shape) - 1) & (hi >= 0) & (hi <= np.array(src.shape) - 1), -1)
    assert full.sum() > 100
    expected = linear_field(world[..., 0], world[..., 1], world[..., 2])
    # a linear function averages to its value at the slab centre
    np.testing.assert_allclose(np.asarray(mean.array)[full], expected[full], atol=2e-3)
    # ... and its maximum is at the slab's last sample along the gradient
    samples = mean.meta["slab"]["slab_samples"]
    grad = np.array([2.0, 3.0, 5.0])
    reach = thick / 2 - thick / (2 * samples)
    np.testing.assert_allclose(np.asarray(peak.array)[full], expected[full] + abs(grad @ n) * reach, atol=2e-3)
    # default slice spacing of a thick reslice is the thickness (contiguous slabs)
    contiguous = reslice(src, plane="axial", thickness=4.0)
    assert contiguous.spacing[0] == pytest.approx(4.0)


def test_thick_slab_is_not_just_a_sample():
    """A thin bright sheet between sample planes: sampling misses it, a thick mean sees it."""
    src = source(iop=AXIAL, shape=(40, 8, 8), spacing=(0.5, 2.0, 2.0), field_fn=lambda x, y, z: np.zeros_like(z))
    arr = np.array(src.array)
    arr[21] = 100.0  # one 0.5 mm sheet
    src = src.with_array(arr)
    thin = reslice(src, plane="axial", spacing=(5.0, 2.0, 2.0))
    thick = reslice(src, plane="axial", spacing=(5.0, 2.0, 2.0), thickness=5.0)
    peak = reslice(src, plane="axial", spacing=(5.0, 2.0, 2.0), thickness=5.0, mode="max")
    assert np.asarray(thin.array).max() == 0.0
    assert 5.0 < np.asarray(thick.array).max() < 20.0  # 100 averaged over 10 samples
    assert np.asarray(peak.array).max() == pytest.approx(100.0)


def test_like_nifti_grid(tmp_path):
    src = source()
    other = synthetic_volume(shape=(9, 11, 13), iop=SAGITTAL, origin=(-20.0, -45.0, 5.0), spacing=(2.0, 1.7, 1.1))
    path = write_nifti(other, tmp_path / "other.nii.gz")
    affine, shape = like_grid(path)
    np.testing.assert_allclose(affine, other.affine, atol=1e-5)
    assert shape == other.shape
    out = volume.reslice(src, like=path)
    assert out.shape == other.shape and out.axcodes == other.axcodes
    assert check_field(out, src, atol=2e-3) > 100


def test_like_dicom_series(tmp_path):
    info = write_series(tmp_path / "ref", shape=(5, 10, 12), iop=CORONAL, origin=(-20.0, -5.0, 30.0))
    ref = volume.load(info.folder)
    affine, shape = like_grid(info.folder)
    np.testing.assert_allclose(affine, ref.affine, atol=1e-6)
    assert shape == ref.shape
    out = volume.reslice(source(), like=info.folder)
    check_field(out, source(), atol=2e-3)


def test_outside_is_modality_background():
    ct = source(iop=AXIAL, meta={"modality": "CT"}, dtype=np.int16,
                field_fn=lambda x, y, z: np.rint(linear_field(x, y, z)))
    out = reslice(ct, plane="coronal", fov=(None, 200.0, 200.0))
    world = grid_world(out)
    idx = ct.index(world)
    outside = np.any((idx < -0.5) | (idx > np.array(ct.shape) - 0.5), axis=-1)
    assert outside.sum() > 100
    assert np.all(np.asarray(out.array)[outside] == CT_BACKGROUND)
    mr = source(iop=OBLIQUE)
    out = reslice(mr, plane="axial")
    world = grid_world(out)
    idx = mr.index(world)
    outside = np.any((idx < -0.5) | (idx > np.array(mr.shape) - 0.5), axis=-1)
    assert outside.sum() > 100 and np.all(np.asarray(out.array)[outside] == 0.0)


def test_fov_crops_around_the_centre():
    src = source(iop=AXIAL)
    out = reslice(src, plane="axial", spacing=1.0, fov=(None, 10.0, 20.0))
    assert out.shape[1:] == (10, 20)
    np.testing.assert_allclose(out.world((np.array(out.shape) - 1) / 2)[:2], src.center[:2], atol=1e-9)


def test_nearest_keeps_labels():
    labels = source(iop=OBLIQUE, dtype=np.uint8, field_fn=lambda x, y, z: (np.floor(x / 10) % 4) + 1)
    out = reslice(labels, plane="coronal", interp="nearest", spacing=0.7)
    assert out.array.dtype == np.uint8
    assert set(np.unique(out.array)) <= {0, 1, 2, 3, 4}
    # nearest: each voxel equals the source voxel nearest to its position (away from ties)
    world = grid_world(out)
    idx = labels.index(world)
    inside = np.all((idx >= 0) & (idx <= np.array(labels.shape) - 1), -1)
    frac = np.abs(idx - np.floor(idx) - 0.5)
    clear = inside & np.all(frac > 0.01, -1)
    near = np.rint(idx[clear]).astype(int)
    np.testing.assert_array_equal(np.asarray(out.array)[clear], np.asarray(labels.array)[near[:, 0], near[:, 1], near[:, 2]])


def test_cubic_reproduces_linear_field_inside():
    src = source()
    out = reslice(src, plane="sagittal", interp="cubic", spacing=1.2)
    assert check_field(out, src, atol=0.02, margin=4) > 50


def test_engines_agree():
    src = source()
    affine, shape = plane_grid(src, "coronal", spacing=1.3)
    idx = src.index(grid_world(Volume(np.zeros(shape, np.float32), affine)))
    for interp, margin, tol in (("nearest", -0.5, 1e-3), ("linear", -0.5, 1e-3), ("cubic", 3, 0.05)):
        # B-spline boundaries differ (ITK mirrors, scipy repeats): compare cubic away from them
        inner = np.all((idx >= margin + 0.01) & (idx <= np.array(src.shape) - 1 - margin - 0.01), -1)
        a = np.asarray(resample(src, affine, shape, interp=interp, engine="sitk").array)
        b = np.asarray(resample(src, affine, shape, interp=interp, engine="scipy").array)
        assert inner.sum() > 50
        np.testing.assert_allclose(a[inner], b[inner], atol=tol)


def test_non_orthogonal_target_uses_scipy():
    src = source(iop=AXIAL)
    affine = np.array(src.affine)
    affine[:3, 0] += 0.3 * affine[:3, 1]  # sheared slice axis: ITK cannot hold it
    out = resample(src, affine, (5, 6, 7))
    check_field(out, src, atol=2e-3)


def test_4d_each_frame():
    base = source(iop=AXIAL, shape=(6, 8, 9))
    arr = np.stack([np.asarray(base.array) * (t + 1) for t in range(3)])
    vol = Volume(arr, base.affine, {"modality": "MR"})
    out = reslice(vol, plane="coronal", spacing=1.0)
    assert out.is_4d and out.n_frames == 3
    for t in range(3):
        check_field(out.frame(t), base, atol=5e-3, fn=lambda x, y, z, t=t: linear_field(x, y, z) * (t + 1))


def test_bad_requests():
    src = source()
    with pytest.raises(UsageError):
        reslice(src, plane="diagonal")
    with pytest.raises(UsageError):
        reslice(src, plane="axial", interp="sinc")
    with pytest.raises(UsageError):
        reslice(src, plane="axial", normal=(0, 0, 1))
    with pytest.raises(UsageError):
        reslice(src, spacing=(1.0, 2.0))
    with pytest.raises(UsageError):
        reslice(src, spacing=-1.0)
    with pytest.raises(UsageError):
        reslice(src, plane="axial", thickness=5.0, mode="median")
    with pytest.raises(UsageError):
        like_grid("/nonexistent/x.nii.gz")


def test_shared_slab_grid_equals_one_resampling_per_offset(monkeypatch):
    """Overlapping slabs share one fine grid; the result is what sampling each offset separately gives."""
    import volume.ops.reslice as mod

    src = source(iop=OBLIQUE, field_fn=lambda x, y, z: np.sin(x / 7.0) * np.cos(z / 5.0) * 100 + y)
    affine, shape = plane_grid(src, "coronal", spacing=1.0)
    n, m = mod._slab_sampling(1.0, 6.0, min(src.spacing))
    assert m is not None and n * 1.0 / 6.0 == m
    for mode in ("mean", "max"):
        shared = np.asarray(mod.resample_slab(src, affine, shape, 6.0, mode=mode).array)
        monkeypatch.setattr(mod, "_slab_sampling", lambda step, t, finest, n=n: (n, None))
        separate = np.asarray(mod.resample_slab(src, affine, shape, 6.0, mode=mode).array)
        monkeypatch.undo()
        np.testing.assert_allclose(shared, separate, atol=1e-4)
        # processed in small chunks of output slices: the same again
        monkeypatch.setattr(mod, "SLAB_CHUNK_VOXELS", shape[1] * shape[2] * (n + 2))
        chunked = np.asarray(mod.resample_slab(src, affine, shape, 6.0, mode=mode).array)
        monkeypatch.undo()
        np.testing.assert_allclose(chunked, shared, atol=1e-4)


def test_nearest_widens_type_only_when_fill_does_not_fit():
    ct = source(iop=OBLIQUE, dtype=np.uint16, meta={"modality": "CT"},
                field_fn=lambda x, y, z: np.rint(linear_field(x, y, z)))
    out = reslice(ct, plane="axial", interp="nearest")
    assert out.array.dtype == np.int32 and np.asarray(out.array).min() == CT_BACKGROUND
    mr = source(iop=OBLIQUE, dtype=np.uint16, field_fn=lambda x, y, z: np.rint(linear_field(x, y, z)))
    assert reslice(mr, plane="axial", interp="nearest").array.dtype == np.uint16
    assert reslice(mr, plane="axial", interp="nearest", fill=np.nan).array.dtype == np.float32


def test_any_orientation_any_grid_property():
    """Random acquisitions resliced onto random planes/normals/spacings: every inside voxel is exact."""
    from hypothesis import given, settings
    from hypothesis import strategies as st
    from synth import rotation

    unit = st.floats(-1.0, 1.0)

    @settings(max_examples=25, deadline=None, derandomize=True)
    @given(
        axis=st.tuples(unit, unit, unit).filter(lambda v: np.linalg.norm(v) > 0.1),
        degrees=st.floats(0.0, 90.0),
        spacing=st.tuples(st.floats(0.5, 4.0), st.floats(0.5, 3.0), st.floats(0.5, 3.0)),
        target=st.one_of(st.sampled_from(["axial", "coronal", "sagittal"]),
                         st.tuples(unit, unit, unit).filter(lambda v: np.linalg.norm(v) > 0.1)),
        out_spacing=st.floats(0.7, 3.0),
    )
    def check(axis, degrees, spacing, target, out_spacing):
        r = rotation(axis, degrees)
        iop = tuple(np.concatenate([r @ np.array(AXIAL[:3]), r @ np.array(AXIAL[3:])]))
        src = synthetic_volume(shape=(8, 9, 10), iop=iop, spacing=spacing)
        kw = {"plane": target} if isinstance(target, str) else {"normal": target}
        out = reslice(src, spacing=out_spacing, **kw)
        np.testing.assert_allclose(out.spacing, (out_spacing,) * 3, rtol=1e-9)
        check_field(out, src, atol=2e-3)
        if not isinstance(target, str):
            n = np.asarray(target) / np.linalg.norm(target)
            np.testing.assert_allclose(out.direction[:, 0], n, atol=1e-9)

    check()

"""Offscreen rendering: the patient is where the DICOM says, spacing is physical, outputs are right.

The phantom: an ellipsoid body (100) in air (0) with a bright ball (1000) at the patient's
left-anterior-superior. Series are written as DICOM in several acquisition orientations and loaded
with the real loader, then rendered through EGL (no display).
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
from PIL import Image
from synth import AXIAL, CORONAL, SAGITTAL, oblique_iop, synthetic_volume, write_series

import volume
from volume.cli import main
from volume.render.offscreen import OffscreenRenderer, render
from volume.render.scene import VIEWS, index_matrix, render_grid

MARKER = np.array([20.0, -20.0, 20.0])
"""Centre of the bright ball (LPS mm): patient left (+x), anterior (-y), superior (+z)."""
MARKER_RADIUS = 8.0
BODY = np.array([40.0, 34.0, 44.0])
"""Semi-axes (mm) of the ellipsoid body centred at the origin."""
FOV = 96.0
"""Side (mm) of the cube every acquisition covers, centred at the origin."""
SMALL = (160, 120)
"""Picture size (width, height) of the orientation tests."""


def phantom(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    ball = (x - MARKER[0]) ** 2 + (y - MARKER[1]) ** 2 + (z - MARKER[2]) ** 2 <= MARKER_RADIUS**2
    body = (x / BODY[0]) ** 2 + (y / BODY[1]) ** 2 + (z / BODY[2]) ** 2 <= 1.0
    return np.where(ball, 1000.0, np.where(body, 100.0, 0.0))


ACQUISITIONS = {
    "axial": (AXIAL, (4.0, 3.0, 3.0)),
    "coronal": (CORONAL, (3.0, 3.0, 4.0)),
    "sagittal-descending": (SAGITTAL, (4.0, 3.0, 3.0)),
    "oblique": (oblique_iop(AXIAL, axis=(1.0, 0.3, 0.2), degrees=25.0), (4.0, 3.0, 3.0)),
}
"""IOP and (slice, row, column) spacing of each acquisition. SAGITTAL's normal points to the
patient's right, so its slice positions descend along x (left to right)."""


def write_phantom(folder, iop, spacing) -> None:
    row, col = np.asarray(iop[:3]), np.asarray(iop[3:])
    normal = np.cross(row, col)
    shape = tuple(int(round(FOV / s)) for s in spacing)
    origin = -sum((n - 1) / 2 * s * d for n, s, d in zip(shape, spacing, (normal, col, row), strict=True))
    write_series(folder, shape=shape, iop=iop, origin=origin, pixel_spacing=spacing[1:],
                 slice_spacing=spacing[0], field_fn=phantom)


@pytest.fixture(scope="module")
def acquired(tmp_path_factory) -> dict[str, volume.Volume]:
    """The phantom acquired in each orientation, loaded back from DICOM."""
    out = {}
    for name, (iop, spacing) in ACQUISITIONS.items():
        folder = tmp_path_factory.mktemp(name)
        write_phantom(folder, iop, spacing)
        out[name] = volume.load(folder)
    return out


def bright_centroid(img: np.ndarray, fraction: float = 0.6) -> tuple[float, float]:
    """(x, y) picture position (x right, y down) of the brightest pixels."""
    g = img.astype(float).sum(axis=-1)
    ys, xs = np.nonzero(g >= fraction * g.max())
    return float(xs.mean()), float(ys.mean())


# --- orientation --------------------------------------------------------------------------------


@pytest.mark.parametrize("mode,mapper", [("mip", "gpu"), ("mip", "cpu"), ("vr", "gpu"), ("vr", "cpu"), ("iso", "auto")])
@pytest.mark.parametrize("name", list(ACQUISITIONS))
def test_anterior_view_puts_left_anterior_superior_marker_upper_right(acquired, name, mode, mapper):
    """Both volume mappers (GPU and CPU ray casting) and the surface place the marker right."""
    vol = acquired[name]
    img = render(vol, mode=mode, view="anterior", size=SMALL, level=500, preset="mr", window=(0, 1000), mapper=mapper)
    assert img.shape == (SMALL[1], SMALL[0], 3) and img.dtype == np.uint8
    assert img.max() > 100, "picture is blank"
    x, y = bright_centroid(img)
    # Patient's left on the viewer's right, superior up.
    assert x > SMALL[0] / 2 + 5 and y < SMALL[1] / 2 - 5, (name, mode, x, y)


def test_views_see_the_marker_surface_facing_the_camera(acquired):
    """For every acquisition and view, the isosurface the camera sees is the marker's near side.

    The depth buffer turns the marker's pixels back into LPS points: they must lie on the ball's
    surface, on the hemisphere facing the camera (e.g. at larger x for ``left``).
    """
    for name, vol in acquired.items():
        r = OffscreenRenderer(vol, size=SMALL, mode="iso", level=500)
        try:
            for view, (towards_camera, _up) in VIEWS.items():
                r.scene.set_view(view, aspect=SMALL[0] / SMALL[1])
                img = r.render()
                x, y = bright_centroid(img, 0.05)
                p = r.world_at_pixel(int(round(x)), int(round(y)))
                assert p is not None, (name, view)
                d = p - MARKER
                voxel = max(vol.spacing)
                assert abs(np.linalg.norm(d) - MARKER_RADIUS) < voxel, (name, view, p)
                assert d @ np.asarray(towards_camera) > MARKER_RADIUS - voxel, (name, view, p)
        finally:
            r.close()


def test_left_view_marker_upper_left_right_view_upper_right(acquired):
    """From the patient's left, anterior is on the viewer's left; from the right, on the right."""
    vol = acquired["oblique"]
    left = render(vol, mode="mip", view="left", size=SMALL)
    right = render(vol, mode="mip", view="right", size=SMALL)
    xl, yl = bright_centroid(left)
    xr, yr = bright_centroid(right)
    assert xl < SMALL[0] / 2 - 5 and yl < SMALL[1] / 2 - 5
    assert xr > SMALL[0] / 2 + 5 and yr < SMALL[1] / 2 - 5


def test_marker_in_front_is_brighter_in_volume_rendering(acquired):
    """Composite rendering with an opaque body: the marker shows from the left, is hidden from the right."""
    vol = acquired["axial"]
    kwargs = dict(mode="vr", preset="mr", window=(0, 300), size=SMALL)
    near = render(vol, view="left", **kwargs)
    far = render(vol, view="right", **kwargs)
    top_near = np.sort(near.astype(float).sum(-1).ravel())[-30:].mean()
    top_far = np.sort(far.astype(float).sum(-1).ravel())[-30:].mean()
    assert top_near > 1.5 * top_far
    x, y = bright_centroid(near)
    assert x < SMALL[0] / 2 - 5 and y < SMALL[1] / 2 - 5  # anterior-superior, seen from the left


def test_left_handed_volume_renders_like_the_original(acquired):
    """The same voxels stored with the slice axis reversed (a left-handed index frame)."""
    vol = acquired["axial"]
    a = np.array(vol.affine)
    n = vol.shape[0]
    flipped_affine = a.copy()
    flipped_affine[:3, 3] = a[:3, :3] @ [n - 1, 0, 0] + a[:3, 3]
    flipped_affine[:3, 0] = -a[:3, 0]
    mirrored = vol.with_array(np.asarray(vol.array)[::-1], affine=flipped_affine)
    assert np.linalg.det(index_matrix(mirrored)[:3, :3]) < 0
    grid = render_grid(mirrored)
    assert np.linalg.det(index_matrix(grid)[:3, :3]) > 0
    np.testing.assert_allclose(grid.world([0, 0, 0]), vol.world([0, 0, 0]), atol=1e-6)
    for mode in ("mip", "iso"):
        one = render(vol, mode=mode, level=500, size=SMALL).astype(int)
        two = render(mirrored, mode=mode, level=500, size=SMALL).astype(int)
        assert np.abs(one - two).mean() < 1.0


def test_user_matrix_maps_vtk_points_to_patient_positions(acquired):
    """index_matrix @ (column*sx, row*sy, slice*sz) equals the affine's world position."""
    vol = acquired["oblique"]
    m = index_matrix(vol)
    ss, sr, sc = vol.spacing
    rng = np.random.default_rng(1)
    for k, j, i in rng.integers(0, 20, size=(5, 3)):
        p = m @ [i * sc, j * sr, k * ss, 1.0]
        np.testing.assert_allclose(p[:3], vol.world([k, j, i]), atol=1e-6)
    np.testing.assert_allclose(m[:3, :3].T @ m[:3, :3], np.eye(3), atol=1e-6)


# --- spacing ------------------------------------------------------------------------------------


@pytest.mark.parametrize("view", ["anterior", "left"])
def test_slice_spacing_is_physical(view):
    """10 axial slices 6 mm apart under 40x40 1 mm pixels: seen from the front, 54 mm tall, 39 wide.

    VTK draws image data between the voxel centres (9 steps of 6 mm, 39 steps of 1 mm); with the
    slice spacing ignored the box would be 9/39 as tall as wide instead of 54/39.
    """
    vol = synthetic_volume(shape=(10, 40, 40), iop=AXIAL, spacing=(6.0, 1.0, 1.0),
                           field_fn=lambda x, y, z: np.full_like(x, 100.0))
    img = render(vol, mode="mip", view=view, size=(200, 200), window=(0, 200))
    ys, xs = np.nonzero(img.sum(-1) > 30)
    height, width = np.ptp(ys) + 1, np.ptp(xs) + 1
    assert height / width == pytest.approx(54 / 39, rel=0.03)


# --- modes and outputs --------------------------------------------------------------------------


@pytest.mark.parametrize("mapper", ["cpu", "gpu"])
def test_still_picture_after_a_drag_is_the_full_one(acquired, mapper):
    """Volume rendering draws coarser while the window asks for many pictures a second (a drag) and
    comes back to full resolution when still. The smart mapper's interactive switch left the CPU
    ray caster at the drag's coarse image sample distance: the still picture after a drag differed
    from the first still picture by 1.8 grey levels on BRAINIX T1."""
    from volume.render.offscreen import snapshot
    from volume.render.scene import INTERACTIVE_UPDATE_RATE

    vol = acquired["axial"]
    r = OffscreenRenderer(vol, size=(240, 200), mode="vr", preset="mr", window=(0, 300), mapper=mapper)
    try:
        r.scene.set_view("left", aspect=1.2)
        r.window.SetDesiredUpdateRate(1e-4)
        first = snapshot(r.window).astype(int)
        r.window.SetDesiredUpdateRate(1000.0)  # no render meets that: the coarsest the mapper draws
        for _ in range(3):
            snapshot(r.window)
        r.window.SetDesiredUpdateRate(1e-4)
        again = snapshot(r.window).astype(int)
    finally:
        r.close()
    assert INTERACTIVE_UPDATE_RATE < 1000.0
    assert np.abs(first - again).mean() < 0.05


def test_modes_give_different_pictures(acquired):
    vol = acquired["axial"]
    pics = {m: render(vol, mode=m, size=SMALL, level=500, window=(0, 300) if m == "vr" else None).astype(int)
            for m in ("vr", "mip", "minip", "iso")}
    names = list(pics)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert np.abs(pics[a] - pics[b]).mean() > 1.0, (a, b)
    # MIP shows the body where the marker is not; MinIP shows the body's minimum (air at the rim).
    assert pics["mip"].max() > pics["minip"].max()


@pytest.fixture(scope="module")
def axial_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("axial-cli")
    write_phantom(folder, AXIAL, (4.0, 3.0, 3.0))
    return folder


def test_cli_render_png_size_and_marker(axial_folder, tmp_path, capsys):
    out = tmp_path / "shot.png"
    rc = main(["render", str(axial_folder), "--mode", "mip", "--size", "123x77", "--no-marker", "-o", str(out)])
    assert rc == 0
    assert capsys.readouterr().out.strip() == str(out)
    img = np.array(Image.open(out).convert("RGB"))
    assert img.shape == (77, 123, 3)
    x, y = bright_centroid(img)
    assert x > 123 / 2 and y < 77 / 2


def test_cli_render_refuses_overwrite_and_forces(axial_folder, tmp_path, capsys):
    out = tmp_path / "shot.png"
    out.write_bytes(b"keep me")
    assert main(["render", str(axial_folder), "--size", "40x30", "-o", str(out)]) == 5
    assert out.read_bytes() == b"keep me"
    assert "--force" in capsys.readouterr().err
    assert main(["render", str(axial_folder), "--size", "40x30", "-o", str(out), "--force"]) == 0
    assert Image.open(out).size == (40, 30)
    assert [p.name for p in tmp_path.iterdir()] == ["shot.png"]  # no temporary file left


@pytest.mark.parametrize("args", [
    ["--size", "12xAB"],
    ["--turntable", "4"],  # a .png cannot hold an animation
    ["--window", "wide"],
])
def test_cli_render_bad_options_are_usage_errors(axial_folder, tmp_path, args, capsys):
    rc = main(["render", str(axial_folder), "-o", str(tmp_path / "x.png"), *args])
    assert rc == 2
    assert "Traceback" not in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_cli_render_unknown_mode_fails_without_traceback(axial_folder, tmp_path, capsys):
    rc = main(["render", str(axial_folder), "-o", str(tmp_path / "x.png"), "--mode", "nope"])
    assert rc != 0
    err = capsys.readouterr().err
    assert "nope" in err and "Traceback" not in err
    assert not (tmp_path / "x.png").exists()


def test_cli_turntable_gif_turns_to_the_left_view(axial_folder, tmp_path):
    out = tmp_path / "spin.gif"
    rc = main(["render", str(axial_folder), "--mode", "mip", "--turntable", "4", "--size", "80x60",
               "--no-marker", "-o", str(out)])
    assert rc == 0
    gif = Image.open(out)
    assert gif.n_frames == 4 and gif.size == (80, 60)
    frames = []
    for k in range(4):
        gif.seek(k)
        frames.append(np.array(gif.convert("RGB")))
    # Frame 0 anterior (marker upper right), frame 1 turned 90° to the patient's left
    # (marker upper left), frame 2 posterior (upper left... patient's left on the viewer's left).
    x0, y0 = bright_centroid(frames[0])
    x1, y1 = bright_centroid(frames[1])
    x2, _ = bright_centroid(frames[2])
    assert x0 > 40 and y0 < 30
    assert x1 < 40 and y1 < 30
    assert x2 < 40


def test_rgb_volume_is_refused_clearly():
    from volume.errors import UnsupportedDicomError

    vol = volume.Volume(np.zeros((4, 5, 6, 3), np.uint8), np.eye(4), rgb=True)
    with pytest.raises(UnsupportedDicomError, match="colour"):
        render(vol, size=(20, 20))


def test_4d_volume_renders_the_chosen_frame():
    base = synthetic_volume(shape=(12, 16, 16), spacing=(3.0, 3.0, 3.0), origin=(-24, -24, -18),
                            field_fn=lambda x, y, z: np.where(x > 0, 1000.0, 10.0))
    arr = np.stack([np.asarray(base.array), np.asarray(base.array)[:, :, ::-1]])
    vol = volume.Volume(arr, base.affine, dict(base.meta))
    a = render(vol, mode="mip", size=(60, 40), frame=0)
    b = render(vol, mode="mip", size=(60, 40), frame=1)
    assert bright_centroid(a)[0] > 30 > bright_centroid(b)[0]


def test_real_brainix_t1_renders(data_dir, tmp_path):
    from conftest import real

    series = real("dicom", "brainix", "T1")
    out = tmp_path / "t1.png"
    assert main(["render", str(series), "--size", "96x80", "--view", "left", "-o", str(out)]) == 0
    img = np.array(Image.open(out).convert("RGB"))
    assert img.shape == (80, 96, 3)
    assert (img.sum(-1) > 60).mean() > 0.2  # the head fills a good part of the picture


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))


def speckled(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """The ellipsoid body filled with values spread evenly over 0..1000 (a fixed hash of the position)."""
    noise = np.modf(np.abs(np.sin(x * 12.9898 + y * 78.233 + z * 37.719)) * 43758.5453)[0]
    body = (x / BODY[0]) ** 2 + (y / BODY[1]) ** 2 + (z / BODY[2]) ** 2 <= 1.0
    return np.where(body, 1000.0 * noise, 0.0)


def test_auto_mip_window_comes_from_the_projection_not_the_voxels(tmp_path):
    """A MIP keeps every ray's brightest voxel, so its values crowd the top of the voxels' range.

    A ramp taken from the voxels (min..99.9th percentile) drew the body almost white (issue 15:
    washed out); the ramp taken from the picture spreads the body over the grey levels.
    """
    vol = synthetic_volume(shape=(32, 32, 32), spacing=(3.0, 3.0, 3.0), origin=(-46.5, -46.5, -46.5), field_fn=speckled)
    img = render(vol, mode="mip", size=(200, 200)).astype(float)[..., 0]
    body = img[img > 0]
    q25, q50, q75 = np.percentile(body, [25, 50, 75])
    assert 60 < q50 < 200, q50  # neither washed out nor black
    assert q75 - q25 > 40, (q25, q75)  # contrast within the body
    # A window given by the user is kept as given: everything at or above 500 is white.
    fixed = render(vol, mode="mip", size=(200, 200), window=(0.0, 500.0)).astype(float)[..., 0]
    assert np.percentile(fixed[fixed > 0], 50) == 255

"""The shared 2D display layer: orientation conventions, square pixels, picture files."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from PIL import Image
from synth import AXIAL, CORONAL, SAGITTAL, oblique_iop, phantom_field, synthetic_volume

from volume.display import (
    display_grid,
    edge_labels,
    orient_for_display,
    slice_axes,
    square_pixels,
    volume_picture,
)
from volume.errors import OutputExistsError
from volume.io.image import Picture, colormap_lut, read_picture, write_picture, write_sheet

MARKER = (40.0, -40.0, 40.0)
"""Patient left (+x), anterior (-y), superior (+z) in LPS mm."""

EXPECTED_QUADRANT = {"axial": ("top", "right"), "coronal": ("top", "right"), "sagittal": ("top", "left")}
"""Where a left-anterior-superior marker must appear in each plane's picture."""


def test_display_grid_follows_radiology_conventions():
    up, right = display_grid("axial")
    assert up @ [0, -1, 0] == 1 and right @ [1, 0, 0] == 1  # anterior up, patient left on the right
    up, right = display_grid("coronal")
    assert up @ [0, 0, 1] == 1 and right @ [1, 0, 0] == 1
    up, right = display_grid("sagittal")
    assert up @ [0, 0, 1] == 1 and right @ [0, 1, 0] == 1  # anterior on the left
    assert edge_labels("axial") == {"top": "A", "bottom": "P", "left": "R", "right": "L"}
    assert edge_labels("coronal") == {"top": "S", "bottom": "I", "left": "R", "right": "L"}
    assert edge_labels("sagittal") == {"top": "S", "bottom": "I", "left": "A", "right": "P"}
    with pytest.raises(ValueError, match="plane"):
        display_grid("transverse-ish")


def _signed_permutations():
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1.0, -1.0), repeat=3):
            m = np.zeros((3, 3))
            for i, (p, s) in enumerate(zip(perm, signs, strict=True)):
                m[p, i] = s
            yield m


@pytest.mark.parametrize("plane", ["axial", "coronal", "sagittal"])
def test_orient_for_display_any_axis_order(plane):
    """Whatever the array's axes, rows of the result step 'down' and columns 'right' in the patient."""
    up, right = display_grid(plane)
    normal = np.cross(right, -up)
    for m in _signed_permutations():
        axes = m * np.array([2.0, 0.7, 1.3])  # columns: step vectors of the 3 index axes
        # the index axis along the plane normal is dropped
        drop = int(np.argmax(np.abs(normal @ axes)))
        keep = [a for a in range(3) if a != drop]
        steps = axes[:, keep].T  # (2, 3)
        a, b = 5, 7
        ii, jj = np.meshgrid(np.arange(a), np.arange(b), indexing="ij")
        world = ii[..., None] * steps[0] + jj[..., None] * steps[1]
        oriented = [orient_for_display(world[..., k], steps, plane) for k in range(3)]
        w = np.stack([o[0] for o in oriented], axis=-1)
        row_mm, col_mm = oriented[0][1]
        down_step = w[1, 0] - w[0, 0]
        right_step = w[0, 1] - w[0, 0]
        np.testing.assert_allclose(down_step, -up * row_mm, atol=1e-9)
        np.testing.assert_allclose(right_step, right * col_mm, atol=1e-9)


@pytest.mark.parametrize(
    "iop, descending",
    [(AXIAL, False), (SAGITTAL, True), (CORONAL, False), (oblique_iop(AXIAL, degrees=12.0), False)],
)
@pytest.mark.parametrize("plane", ["axial", "coronal", "sagittal"])
def test_marker_lands_in_expected_quadrant(iop, descending, plane):
    row, col = np.asarray(iop[:3]), np.asarray(iop[3:])
    normal = np.cross(row, col)
    shape = (40, 44, 48)
    spacing = (2.5, 2.0, 1.8)
    centre = np.zeros(3)
    origin = centre - (np.array(shape) - 1) / 2 @ np.diag(spacing) @ np.stack([normal, col, row])
    vol = synthetic_volume(shape, iop, origin, spacing, phantom_field(MARKER, radius=10.0))
    if descending:  # flip the slice order: slices now run the other way
        aff = vol.affine.copy()
        aff[:3, 3] = vol.world([shape[0] - 1, 0, 0])
        aff[:3, 0] *= -1
        vol = vol.with_array(np.asarray(vol.array)[::-1], affine=aff)
    # the slice through the marker along the axis closest to the plane's normal
    from volume.volume import PLANE_NORMALS

    axis = int(np.argmax(np.abs(PLANE_NORMALS[plane] @ vol.direction)))
    index = int(round(vol.index(MARKER)[axis]))
    pic, pixel_mm = volume_picture(vol, plane, axis=axis, index=index)
    hot = np.argwhere(pic > 500)
    assert hot.size, "marker not in the slice"
    r, c = hot.mean(axis=0)
    h, w = pic.shape
    vertical, horizontal = EXPECTED_QUADRANT[plane]
    assert (r < h / 2) == (vertical == "top")
    assert (c > w / 2) == (horizontal == "right")
    # picture aspect equals the physical extent of the slice
    keep = [a for a in range(3) if a != axis]
    extents = sorted(vol.shape[a] * vol.spacing[a] for a in keep)
    assert sorted([h * pixel_mm, w * pixel_mm]) == pytest.approx(extents, rel=0.02)


def test_square_pixels_keeps_physical_extent():
    """BRAINIX-like coronal: 22 rows x 6 mm, 512 columns x 0.45 mm -> 293 rows of 0.45 mm."""
    rows, cols = 22, 512
    ramp = np.add.outer(np.arange(rows) * 6.0, np.arange(cols) * 0.0).astype(np.float32)
    out, p = square_pixels(ramp, 6.0, 0.45)
    assert out.shape == (round(22 * 6 / 0.45), 512)
    assert p == pytest.approx(0.45, rel=0.01)
    # a linear ramp in mm stays linear: value = mm position of the pixel centre (away from edges)
    centres_mm = (np.arange(out.shape[0]) + 0.5) * p
    inner = (centres_mm > 3) & (centres_mm < 132 - 3)
    np.testing.assert_allclose(out[inner, 0], centres_mm[inner] - 3.0, atol=1e-3)
    u8, _ = square_pixels((ramp * 2).astype(np.uint8), 6.0, 0.45)
    assert u8.dtype == np.uint8
    same, p2 = square_pixels(np.zeros((4, 5), np.uint8), 0.8, 0.8)
    assert same.shape == (4, 5) and p2 == 0.8
    rgb, _ = square_pixels(np.zeros((4, 5, 3), np.uint8), 2.0, 1.0)
    assert rgb.shape == (8, 5, 3)


def test_slice_axes_and_projection_picture_axis():
    vol = synthetic_volume((1, 24, 28), AXIAL, spacing=(3.0, 1.5, 1.25))
    np.testing.assert_allclose(slice_axes(vol.affine, 0), [[0, 1.5, 0], [1.25, 0, 0]])
    pic, p = volume_picture(vol, "axial")  # the single-voxel axis is taken
    assert p == pytest.approx(1.25, rel=0.01)
    assert pic.shape == (round(24 * 1.5 / p), 28)


def test_write_picture_round_trip_and_no_metadata(tmp_path):
    img = (np.arange(90 * 120).reshape(90, 120) % 251).astype(np.uint8)
    out = write_picture(tmp_path / "a.png", img)
    np.testing.assert_array_equal(read_picture(out), img)
    with Image.open(out) as im:
        assert not im.info.get("exif") and not getattr(im, "text", {})
    with pytest.raises(OutputExistsError):
        write_picture(out, img)
    labelled = write_picture(tmp_path / "a.png", img, force=True, labels=edge_labels("axial"), scale_bar_mm_per_px=0.5)
    back = read_picture(labelled)
    assert not np.array_equal(back[:12], img[:12])  # the "A" at the top
    np.testing.assert_array_equal(back[30:60, 30:90], img[30:60, 30:90])  # the middle is untouched
    jpg = write_picture(tmp_path / "b.jpg", img, cmap="hot")
    assert read_picture(jpg).shape == (90, 120, 3)
    with pytest.raises(ValueError, match="picture file name"):
        write_picture(tmp_path / "c.bmp", img)
    with pytest.raises(ValueError, match="window it first"):
        write_picture(tmp_path / "d.png", img.astype(np.float32))
    assert list(tmp_path.iterdir()) and not any(p.name.startswith(".volume-tmp") for p in tmp_path.iterdir())


def test_colormap_and_sheet(tmp_path):
    lut = colormap_lut("hot")
    assert tuple(lut[0]) == (0, 0, 0) and tuple(lut[255]) == (255, 255, 255)
    with pytest.raises(ValueError, match="colour map"):
        colormap_lut("no-such-map")
    a = np.full((80, 100), 50, np.uint8)
    b = np.full((40, 30), 200, np.uint8)
    out = write_sheet(tmp_path / "s.png", [a, b], gap_px=5)
    sheet = read_picture(out)
    assert sheet.shape == (80, 135)
    assert sheet[20, 120] == 200 and sheet[60, 120] == 0 and sheet[40, 102] == 0  # b at x=105, tops aligned
    titled = read_picture(write_sheet(tmp_path / "t.png", [Picture(a, edge_labels("axial"), 1.0, "axial"), b]))
    band = titled.shape[0] - 80  # titles sit in a band above the pictures
    assert band > 0 and titled[:band, :100].max() > 0 and titled[:band, 108:].max() == 0
    np.testing.assert_array_equal(titled[band + 20 : band + 50, 30:70], a[20:50, 30:70])


@pytest.mark.parametrize("iop", [AXIAL, SAGITTAL, CORONAL, oblique_iop(SAGITTAL, degrees=10.0)])
@pytest.mark.parametrize("plane", ["axial", "coronal", "sagittal"])
def test_display_volume_keeps_every_voxel_in_place(iop, plane):
    from volume.display import display_volume

    vol = synthetic_volume((5, 6, 7), iop, spacing=(2.0, 1.5, 1.25))
    out = display_volume(vol, plane)
    up, right = display_grid(plane)
    assert out.direction[:, 1] @ -up > 0.7 and out.direction[:, 2] @ right > 0.7
    k, j, i = np.meshgrid(*(np.arange(n) for n in out.shape), indexing="ij")
    idx = np.stack([k, j, i], -1)
    src_idx = np.rint(vol.index(out.world(idx))).astype(int)
    np.testing.assert_array_equal(np.asarray(vol.array)[tuple(np.moveaxis(src_idx, -1, 0))], out.array)
    pic, (rmm, cmm) = orient_for_display(out.array[0], slice_axes(out.affine, 0), plane)
    np.testing.assert_array_equal(pic, out.array[0])


def test_window_precedence_explicit_dicom_auto():
    from volume.ops.window import Window, choose_window, header_window

    values = np.linspace(0, 1000, 10001)
    acq = {"WindowCenter": [40, 80], "WindowWidth": ["400", "800"]}
    assert header_window(acq) == Window(40.0, 400.0)
    assert header_window({"WindowCenter": 1, "WindowWidth": 0}) is None
    assert header_window(None) is None
    assert choose_window(values, window="lung", acquisition=acq) == (Window(-600.0, 1500.0), "explicit")
    assert choose_window(values, window="10,20", acquisition=acq) == (Window(10.0, 20.0), "explicit")
    assert choose_window(values, acquisition=acq) == (Window(40.0, 400.0), "dicom")
    win, source = choose_window(values, window="auto", acquisition=acq)
    assert source == "auto" and win.low == pytest.approx(5, abs=1) and win.high == pytest.approx(995, abs=1)
    with pytest.raises(ValueError, match="CENTER,WIDTH"):
        choose_window(values, window="wide")


def test_sixteen_bit_pictures(tmp_path):
    img = (np.arange(70 * 90).reshape(70, 90) * 9).astype(np.uint16)
    back = read_picture(write_picture(tmp_path / "a.png", img))
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back, img)
    labelled = read_picture(write_picture(tmp_path / "b.png", img, labels=edge_labels("coronal"), scale_bar_mm_per_px=1.0))
    assert labelled.dtype == np.uint16 and labelled.max() == 65535  # letters at full 16-bit white
    grey8 = read_picture(write_picture(tmp_path / "c.jpg", img))
    assert grey8.dtype == np.uint8 and grey8.shape == img.shape

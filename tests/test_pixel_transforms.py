"""The picture pipeline in its layers: the numpy transforms (``volume.ops.pixel_transforms``), what
the header says (``volume.dicom.presentation``), the one header-window reading, and the one writer
of pictures and GIFs (``volume.io.image``). Values are checked against PS3.3 C.11's rules written
out here, not against our own output."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from volume.dicom import presentation
from volume.errors import ResourceLimitError
from volume.io.image import read_picture, resize_picture, write_gif, write_picture
from volume.ops import pixel_transforms as px
from volume.ops.window import Window, header_window


def test_a_lut_maps_below_its_first_value_to_its_first_entry_and_past_its_end_to_its_last():
    table = np.array([10, 20, 30, 40], dtype=np.uint16)
    values = np.array([[-100, 4, 5], [6, 7, 1000]])
    out = px.apply_lut(values, table, first_mapped=5)
    np.testing.assert_array_equal(out, [[10, 10, 10], [20, 30, 40]])
    assert out.dtype == np.uint16
    # fractional modality values take the nearest entry
    np.testing.assert_array_equal(px.apply_lut(np.array([5.4, 5.6]), table, 5), [10, 20])


def test_a_voi_lut_is_scaled_from_its_bit_depth_to_grey_levels_and_inverted_for_monochrome1():
    table = np.array([0, 1023, 4095], dtype=np.uint16)  # 12-bit entries
    grey = px.apply_voi_lut(np.array([0, 1, 2]), table, 0, 12)
    np.testing.assert_array_equal(grey, np.rint(np.array([0, 1023, 4095]) / 4095 * 255))
    np.testing.assert_array_equal(px.apply_voi_lut(np.array([0, 1, 2]), table, 0, 12, invert=True), 255 - grey)


def test_a_palette_gives_rgb_scaled_from_16_bits():
    table = np.array([[0, 0, 0], [65535, 0, 32768], [0, 65535, 0]], dtype=np.uint16)
    rgb = px.apply_palette(np.array([[0, 1], [2, 9]]), table, 0, 16)
    assert rgb.shape == (2, 2, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb[0, 1], [255, 0, 128])
    np.testing.assert_array_equal(rgb[1, 1], [0, 255, 0])  # past the end: the last entry


def test_the_table_shortcut_equals_the_direct_evaluation():
    rng = np.random.default_rng(5)
    stored = rng.integers(-500, 1500, (64, 64)).astype(np.int16)

    def pipeline(v):
        return np.rint(np.clip((v * 0.5 + 7 + 1000) / 3000, 0, 1) * 255).astype(np.uint8)

    np.testing.assert_array_equal(px.through_table(stored, pipeline), pipeline(stored))
    assert px.through_table(stored.astype(np.float32), pipeline) is None  # float data: no table
    assert px.through_table(np.array([[0, 2**30]], np.int32), pipeline) is None  # wider than the image


@pytest.mark.parametrize(
    ("values", "rescale", "stored_range", "mapping"),
    [
        (np.array([0.0, 4095.0]), (1.0, 0.0), (0, 4095), (1.0, 0.0)),  # MR: sample = value
        (np.array([-1024.0, 3071.0]), (1.0, -1024.0), (0, 4095), (1.0, -32768.0)),  # CT: HU + 32768
        (np.array([0.0, 10.0]), (0.25, 3.0), (-32768, 32767), (0.25, 3.0 - 32768 * 0.25)),  # fractional slope
        (np.array([0.5, 1e6]), (1.0, 0.0), None, ((1e6 - 0.5) / 65535, 0.5)),  # float data: its own range
    ],
)
def test_raw16_mappings(values, rescale, stored_range, mapping):
    got = px.raw16_mapping(values, slope=rescale[0], intercept=rescale[1], stored_range=stored_range)
    assert got == pytest.approx(mapping)
    samples, clipped = px.encode_raw16(values, *got)
    assert clipped == 0
    np.testing.assert_allclose(samples * got[0] + got[1], values, atol=got[0] / 2)


def test_one_header_window_reading_for_datasets_meta_and_functional_groups():
    ds = Dataset()
    ds.WindowCenter = MultiValue(float, [40, 400])
    ds.WindowWidth = MultiValue(float, [350, 2000])
    ds.VOILUTFunction = "SIGMOID "
    assert header_window(ds) == Window(40, 350, "SIGMOID")
    assert header_window({"WindowCenter": "40", "WindowWidth": [400]}) == Window(40, 400)
    assert header_window({"WindowCenter": 40, "WindowWidth": 0}) is None  # unusable
    assert header_window({"WindowCenter": float("nan"), "WindowWidth": 10}) is None
    assert header_window({"WindowCenter": 1, "WindowWidth": 2, "VOILUTFunction": "BOGUS"}).function == "LINEAR"
    assert header_window(presentation.frame_window_values(ds, 0)) is None  # no functional groups


def test_the_headers_palette_table_is_the_one_pydicom_applies():
    from pydicom import dcmread
    from pydicom.pixels import apply_color_lut

    ds = dcmread(get_testdata_file("examples_palette.dcm"))
    lut = presentation.palette(ds)
    indices = ds.pixel_array[:8]
    np.testing.assert_array_equal(px.apply_lut(indices, lut.data, lut.first_mapped), apply_color_lut(indices, ds)[..., :3])
    assert lut.bits == int(ds.RedPaletteColorLookupTableDescriptor[2])


def test_rescale_frame_groups_first_and_a_zero_slope_is_one():
    ds = Dataset()
    ds.RescaleSlope, ds.RescaleIntercept = 0, 5
    assert presentation.rescale(ds) == (1.0, 5.0)
    assert presentation.stored_range(ds) is None  # no pixel data


def test_resize_makes_pixels_square_and_refuses_absurd_sizes():
    img = np.zeros((10, 20), np.uint8)
    assert resize_picture(img) is img
    assert resize_picture(img, aspect=2.0, square=True).shape == (20, 20)
    assert resize_picture(img, size=8, keep_ratio=True).shape == (4, 8)
    sixteen = np.full((10, 10), 40000, np.uint16)
    assert resize_picture(sixteen, size=5).dtype == np.uint16
    with pytest.raises(ResourceLimitError, match="--square-pixels"):
        resize_picture(img, aspect=1e6, square=True)


def test_one_writer_for_png_with_text_jpeg_and_tiff(tmp_path):
    grey = (np.arange(80 * 70).reshape(80, 70) % 256).astype(np.uint8)
    png = write_picture(tmp_path / "a.png", grey, text={"modality_slope": "2"})
    with Image.open(png) as im:
        assert im.text == {"modality_slope": "2"}
    tif = write_picture(tmp_path / "a.tif", np.stack([grey] * 3, axis=-1))
    np.testing.assert_array_equal(read_picture(tif)[..., 0], grey)
    sixteen = write_picture(tmp_path / "b.tiff", grey.astype(np.uint16) * 257)
    np.testing.assert_array_equal(read_picture(sixteen), grey.astype(np.uint16) * 257)
    with Image.open(write_picture(tmp_path / "c.jpg", grey, quality=50)) as im:
        assert im.format == "JPEG"


def test_gif_of_rgb_frames_shares_one_palette_and_keeps_each_duration(tmp_path):
    frames = []
    for k in range(3):
        f = np.zeros((32, 32, 3), np.uint8)
        f[:, :, k] = 255  # red, green, blue: a palette made from the first frame alone would lose two
        frames.append(f)
    out = write_gif(frames, tmp_path / "a.gif", durations_ms=[40, 60, 100])
    with Image.open(out) as im:
        seen, durations = [], []
        for i in range(im.n_frames):
            im.seek(i)
            durations.append(im.info["duration"])
            seen.append(np.asarray(im.convert("RGB"))[16, 16])
    np.testing.assert_array_equal(seen, [[255, 0, 0], [0, 255, 0], [0, 0, 255]])
    assert durations == [40, 60, 100]
    grey = write_gif([np.full((8, 8), v, np.uint8) for v in (7, 9)], tmp_path / "g.gif", durations_ms=5)
    with Image.open(grey) as im:
        assert im.info["duration"] == 20  # the shortest browsers show
    with pytest.raises(ValueError, match=r"\.gif"):
        write_gif(frames, tmp_path / "a.png")

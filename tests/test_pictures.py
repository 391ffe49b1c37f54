"""The 2D display pipeline of `volume png`: values of written pictures against DICOM's formulas."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from synth import base_dataset, write_enhanced

from volume.dicom.presentation import frame_durations_ms
from volume.io.image import output_size
from volume.jobs.pictures import (
    TEXT_INTERCEPT,
    TEXT_SLOPE,
    DisplayedFrame,
    DisplayOptions,
    iter_pictures,
    read_dataset,
)
from volume.jobs.png import PngSettings, convert_file
from volume.ops.window import Window

# --- independent reference formulas (PS3.3 C.11.2.1.2), written out here, not imported -------


def linear(x: np.ndarray, c: float, w: float) -> np.ndarray:
    x = np.asarray(x, float)
    y = np.where(
        x <= c - 0.5 - (w - 1) / 2, 0.0,
        np.where(x > c - 0.5 + (w - 1) / 2, 255.0, ((x - (c - 0.5)) / (w - 1) + 0.5) * 255.0),
    )
    return np.rint(y).astype(np.uint8)


def linear_exact(x: np.ndarray, c: float, w: float) -> np.ndarray:
    x = np.asarray(x, float)
    y = np.where(x <= c - w / 2, 0.0, np.where(x > c + w / 2, 255.0, ((x - c) / w + 0.5) * 255.0))
    return np.rint(y).astype(np.uint8)


def sigmoid(x: np.ndarray, c: float, w: float) -> np.ndarray:
    return np.rint(255.0 / (1 + np.exp(-4 * (np.asarray(x, float) - c) / w))).astype(np.uint8)


def grey_file(path: Path, stored: np.ndarray, *, modality: str = "CT", **attrs) -> Path:
    """One single-frame greyscale file with the given stored values and header attributes."""
    ds = base_dataset(modality=modality, series_uid=generate_uid(), study_uid=generate_uid(),
                      frame_uid=generate_uid(), rows=stored.shape[0], cols=stored.shape[1])
    stored = np.ascontiguousarray(stored)
    ds.PixelRepresentation = 1 if stored.dtype.kind == "i" else 0
    ds.BitsAllocated = stored.dtype.itemsize * 8
    ds.BitsStored = attrs.pop("BitsStored", ds.BitsAllocated)
    ds.HighBit = ds.BitsStored - 1
    for k, v in attrs.items():
        setattr(ds, k, v)
    ds.PixelData = stored.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def pictures(path: Path, **options) -> list[DisplayedFrame]:
    return list(iter_pictures(read_dataset(path), DisplayOptions(**options)))


def png_of(tmp_path: Path, src: Path, **settings) -> list[np.ndarray]:
    """Run the batch converter on one file; the written pictures' pixels, in frame order."""
    res = convert_file((str(src), str(tmp_path / "out" / src.stem)), PngSettings(**settings))
    assert not res.error, res.error
    return [np.asarray(Image.open(p)) for p in res.written]


RAMP = (np.arange(64 * 40, dtype=np.int32).reshape(64, 40) - 1500).astype(np.int16)
"""Stored values -1500..1059: covers both ends of the windows used below."""


# --- windowing --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("function", "reference"),
    [("LINEAR", linear), ("LINEAR_EXACT", linear_exact), ("SIGMOID", sigmoid)],
)
def test_header_window_and_voi_function(tmp_path, function, reference):
    src = grey_file(tmp_path / "a.dcm", RAMP, RescaleSlope=2, RescaleIntercept=-100,
                    WindowCenter=300, WindowWidth=900, VOILUTFunction=function)
    (png,) = png_of(tmp_path, src)
    hu = RAMP.astype(float) * 2 - 100
    assert png.dtype == np.uint8 and png.shape == RAMP.shape
    np.testing.assert_array_equal(png, reference(hu, 300, 900))
    assert png.min() == 0 and png.max() == 255  # the ramp crosses both ends


def test_monochrome1_is_inverted_after_windowing(tmp_path):
    m2 = grey_file(tmp_path / "m2.dcm", RAMP, WindowCenter=0, WindowWidth=1000)
    m1 = grey_file(tmp_path / "m1.dcm", RAMP, WindowCenter=0, WindowWidth=1000,
                   PhotometricInterpretation="MONOCHROME1")
    (a,) = png_of(tmp_path, m2)
    (b,) = png_of(tmp_path, m1)
    np.testing.assert_array_equal(b, 255 - a)
    hottest = np.unravel_index(np.argmax(RAMP), RAMP.shape)
    assert a[hottest] == 255 and b[hottest] == 0  # bright becomes dark


def test_explicit_window_overrides_header(tmp_path):
    src = grey_file(tmp_path / "a.dcm", RAMP, RescaleIntercept=-1024,
                    WindowCenter=40, WindowWidth=80, VOILUTFunction="SIGMOID")
    (pic,) = pictures(src, window=Window(-600, 1500))
    np.testing.assert_array_equal(pic.array, linear(RAMP.astype(float) - 1024, -600, 1500))


def test_first_of_several_header_windows_is_used(tmp_path):
    src = grey_file(tmp_path / "a.dcm", RAMP, WindowCenter=[100, 0], WindowWidth=[400, 2000])
    (pic,) = pictures(src)
    np.testing.assert_array_equal(pic.array, linear(RAMP, 100, 400))


def test_no_window_uses_a_percentile_window(tmp_path):
    rng = np.random.default_rng(1)
    body = rng.normal(500, 100, (64, 64)).astype(np.int16)
    body[:8] = -2000  # background: ignored by the robust window
    src = grey_file(tmp_path / "a.dcm", body)
    (pic,) = pictures(src)
    inside = body[8:]
    lo, hi = np.percentile(inside, [0.5, 99.5])
    assert pic.array[body == -2000].max() == 0
    # 10th percentile of the body is mid-dark, 90th mid-bright: the window spans the body
    p10 = pic.array[8:][inside <= np.percentile(inside, 10)].max()
    p90 = pic.array[8:][inside >= np.percentile(inside, 90)].min()
    assert 40 < p10 < 128 < p90 < 215
    assert pic.array[8:][inside >= hi].min() >= 250 and pic.array[8:][inside <= lo].max() <= 5


def test_zero_width_header_window_falls_back_to_auto(tmp_path):
    src = grey_file(tmp_path / "a.dcm", RAMP, WindowCenter=0, WindowWidth=0)
    (pic,) = pictures(src)
    assert pic.array.min() == 0 and pic.array.max() == 255


def test_voi_lut_sequence(tmp_path):
    stored = (np.arange(32 * 32).reshape(32, 32) % 300).astype(np.uint16)
    lut = Dataset()
    lut.add_new(0x00283002, "US", [256, 20, 8])  # 256 entries, first input 20, 8-bit entries
    table = (255 - np.arange(256)).astype(np.uint16)  # an inverting LUT: unmistakable
    lut.add_new(0x00283006, "US", table.tolist())
    src = grey_file(tmp_path / "a.dcm", stored, VOILUTSequence=[lut],
                    WindowCenter=1000, WindowWidth=10)  # the LUT wins over the window
    (pic,) = pictures(src)
    expected = table[np.clip(stored.astype(int) - 20, 0, 255)]
    np.testing.assert_array_equal(pic.array, expected)


def test_modality_lut_sequence(tmp_path):
    stored = (np.arange(16 * 16).reshape(16, 16) % 64).astype(np.uint16)
    mlut = Dataset()
    mlut.add_new(0x00283002, "US", [64, 0, 16])
    table = (np.arange(64) ** 2).astype(np.uint16)  # non-linear: a rescale cannot fake it
    mlut.add_new(0x00283006, "US", table.tolist())
    mlut.ModalityLUTType = "US"
    src = grey_file(tmp_path / "a.dcm", stored, ModalityLUTSequence=[mlut])
    (pic,) = pictures(src, window=Window(1000, 2000))
    np.testing.assert_array_equal(pic.array, linear(table[stored], 1000, 2000))
    (raw,) = pictures(src, raw16=True)
    np.testing.assert_array_equal(raw.array, table[stored])


def test_enhanced_multiframe_per_frame_rescale_and_window(tmp_path):
    path = tmp_path / "enh.dcm"
    write_enhanced(path, shape=(3, 8, 9))
    ds = pydicom.dcmread(path)
    for i, fg in enumerate(ds.PerFrameFunctionalGroupsSequence):
        pvt = Dataset()
        pvt.RescaleSlope = 1 + i
        pvt.RescaleIntercept = -10 * i
        fg.PixelValueTransformationSequence = [pvt]
        voi = Dataset()
        voi.WindowCenter = 1000 + 100 * i
        voi.WindowWidth = 200 + 50 * i
        fg.FrameVOILUTSequence = [voi]
    ds.save_as(path)
    stored = pydicom.dcmread(path).pixel_array
    pics = pictures(path)
    assert [p.frame for p in pics] == [0, 1, 2]
    for i, pic in enumerate(pics):
        values = stored[i].astype(float) * (1 + i) - 10 * i
        np.testing.assert_array_equal(pic.array, linear(values, 1000 + 100 * i, 200 + 50 * i))


# --- raw16 ------------------------------------------------------------------------------------


def _raw16_png(tmp_path: Path, src: Path) -> tuple[np.ndarray, float, float]:
    res = convert_file((str(src), str(tmp_path / "raw" / src.stem)), PngSettings(DisplayOptions(raw16=True)))
    assert not res.error, res.error
    img = Image.open(res.written[0])
    arr = np.asarray(img)
    return arr, float(img.text[TEXT_SLOPE]), float(img.text[TEXT_INTERCEPT])


def test_raw16_ct_stores_hu_plus_32768_exactly(tmp_path):
    stored = (np.arange(40 * 30).reshape(40, 30) * 3 % 4096).astype(np.uint16)
    src = grey_file(tmp_path / "ct.dcm", stored, BitsStored=12, RescaleSlope=1, RescaleIntercept=-1024)
    arr, slope, inter = _raw16_png(tmp_path, src)
    assert arr.dtype == np.uint16
    assert (slope, inter) == (1.0, -32768.0)  # PNG = HU + 32768
    np.testing.assert_array_equal(arr.astype(int) - 32768, stored.astype(int) - 1024)
    # the same HU stored signed (another scanner's layout) gives the same PNG values
    signed = grey_file(tmp_path / "ct2.dcm", (stored.astype(np.int32) - 1024).astype(np.int16))
    arr2, slope2, inter2 = _raw16_png(tmp_path, signed)
    assert (slope2, inter2) == (1.0, -32768.0)
    np.testing.assert_array_equal(arr2, arr)


def test_raw16_signed_and_unsigned_data(tmp_path):
    signed = grey_file(tmp_path / "s.dcm", RAMP)  # int16, no rescale: offset is -32768
    arr, slope, inter = _raw16_png(tmp_path, signed)
    assert (slope, inter) == (1.0, -32768.0)
    np.testing.assert_array_equal(arr * slope + inter, RAMP)
    mr = (np.arange(20 * 20).reshape(20, 20) * 97).astype(np.uint16)
    arr, slope, inter = _raw16_png(tmp_path, grey_file(tmp_path / "u.dcm", mr, modality="MR"))
    assert (slope, inter) == (1.0, 0.0)  # non-negative: PNG = value
    np.testing.assert_array_equal(arr, mr)


def test_raw16_fractional_slope_is_exact(tmp_path):
    stored = (np.arange(25 * 25).reshape(25, 25) * 41 % 30000).astype(np.uint16)
    src = grey_file(tmp_path / "pt.dcm", stored, modality="PT", RescaleSlope=0.037, RescaleIntercept=2.5)
    arr, slope, inter = _raw16_png(tmp_path, src)
    np.testing.assert_allclose(arr * slope + inter, stored * 0.037 + 2.5, rtol=0, atol=1e-9)
    signed = (stored.astype(np.int32) - 15000).astype(np.int16)
    arr, slope, inter = _raw16_png(tmp_path, grey_file(tmp_path / "pt2.dcm", signed, RescaleSlope=0.5))
    np.testing.assert_allclose(arr * slope + inter, signed * 0.5, rtol=0, atol=1e-9)


def test_raw16_real_ct(tmp_path):
    src = Path(get_testdata_file("CT_small.dcm"))
    ds = pydicom.dcmread(src)
    from pydicom.pixels import apply_modality_lut

    arr, slope, inter = _raw16_png(tmp_path, src)
    np.testing.assert_array_equal(arr * slope + inter, apply_modality_lut(ds.pixel_array, ds))


# --- colour -----------------------------------------------------------------------------------


def test_palette_colour_matches_the_palette(tmp_path):
    src = Path(get_testdata_file("examples_palette.dcm"))
    ds = pydicom.dcmread(src)
    (png,) = png_of(tmp_path, src)
    assert png.shape == (ds.Rows, ds.Columns, 3)
    idx = ds.pixel_array.astype(int)
    n, first, bits = (int(v) for v in ds.RedPaletteColorLookupTableDescriptor)
    for channel, kw in enumerate(("Red", "Green", "Blue")):
        table = np.frombuffer(getattr(ds, f"{kw}PaletteColorLookupTableData"), dtype="<u2").astype(float)
        expected = np.rint(table[np.clip(idx - first, 0, (n or 65536) - 1)] * 255 / (2**bits - 1))
        np.testing.assert_array_equal(png[..., channel], expected.astype(np.uint8))
    assert len({tuple(px) for px in png.reshape(-1, 3)[::97]}) > 10  # really coloured


def test_ybr_becomes_rgb(tmp_path):
    ybr = Path(get_testdata_file("SC_ybr_full_422_uncompressed.dcm"))
    rgb = Path(get_testdata_file("SC_rgb_rle.dcm"))  # the same test card stored as RGB
    (a,) = png_of(tmp_path, ybr)
    (b,) = png_of(tmp_path, rgb)
    assert a.shape == b.shape == (100, 100, 3)
    diff = np.abs(a.astype(int) - b.astype(int))
    assert diff.max() <= 8 and diff.mean() < 1  # YCbCr 4:2:2 rounding only
    assert tuple(b[5, 50]) == (255, 0, 0)  # top stripe: red, not YCbCr garbage
    assert np.abs(a[5, 50].astype(int) - [255, 0, 0]).max() <= 3


def test_rgb_stays_rgb_and_16_bit_rgb_is_scaled(tmp_path):
    src = Path(get_testdata_file("examples_rgb_color.dcm"))
    (png,) = png_of(tmp_path, src)
    np.testing.assert_array_equal(png, pydicom.dcmread(src).pixel_array)
    (p16,) = png_of(tmp_path, Path(get_testdata_file("SC_rgb_rle_16bit.dcm")))
    (p8,) = png_of(tmp_path, Path(get_testdata_file("SC_rgb_rle.dcm")))
    np.testing.assert_array_equal(p16, p8)  # same card, 16 bits per sample scaled to 8


def test_monochrome1_real_file(tmp_path):
    # get_testdata_files() may try the network for missing files: look in the package instead
    src = Path(pydicom.data.__file__).parent / "test_files" / "dicomdirtests" / "77654033" / "CR1" / "6154"
    if not src.exists():
        pytest.skip("pydicom's MONOCHROME1 test file not available")
    ds = pydicom.dcmread(src)
    assert ds.PhotometricInterpretation == "MONOCHROME1"
    (png,) = png_of(tmp_path, src)
    values = ds.pixel_array.astype(float) * float(ds.get("RescaleSlope", 1)) + float(ds.get("RescaleIntercept", 0))
    c, w = float(ds.WindowCenter), float(ds.WindowWidth)
    np.testing.assert_array_equal(png, 255 - linear(values, c, w))


# --- multi-frame, timing, sizes, formats ----------------------------------------------------


def test_multiframe_cine_gives_one_numbered_picture_per_frame(tmp_path):
    src = Path(get_testdata_file("examples_ybr_color.dcm"))
    n = int(pydicom.dcmread(src, stop_before_pixels=True).NumberOfFrames)
    res = convert_file((str(src), str(tmp_path / "cine")), PngSettings())
    assert not res.error
    assert [Path(p).name for p in res.written] == [f"cine_f{i:04d}.png" for i in range(1, n + 1)]
    first = np.asarray(Image.open(res.written[0]))
    assert first.shape == (240, 320, 3)
    frames = [np.asarray(Image.open(p)) for p in res.written[:5]]
    assert any(np.abs(frames[0].astype(int) - f).mean() > 0.5 for f in frames[1:])  # frames differ


def test_rtdose_frames(tmp_path):
    src = Path(get_testdata_file("rtdose.dcm"))
    pngs = png_of(tmp_path, src)
    assert len(pngs) == int(pydicom.dcmread(src).NumberOfFrames) == 15


def test_gif_at_the_header_frame_time(tmp_path):
    src = Path(get_testdata_file("examples_ybr_color.dcm"))
    ds = pydicom.dcmread(src, stop_before_pixels=True)
    res = convert_file((str(src), str(tmp_path / "cine")), PngSettings(gif=True, size=64, keep_ratio=True))
    assert not res.error and [Path(p).name for p in res.written] == ["cine.gif"]
    gif = Image.open(res.written[0])
    assert gif.size == (64, 48)
    # Pillow merges identical consecutive frames (adding their durations): the total is kept.
    # GIF stores centiseconds: 33.333 ms -> 30 ms.
    durations = []
    for i in range(gif.n_frames):
        gif.seek(i)
        durations.append(gif.info["duration"])
    n = int(ds.NumberOfFrames)
    assert 1 < gif.n_frames <= n
    assert sum(durations) == n * 10 * (round(float(ds.FrameTime)) // 10)


def test_frame_durations_sources():
    ds = Dataset()
    ds.FrameTimeVector = [0, 40, 60, 50]
    assert frame_durations_ms(ds, 4) == ([40.0, 60.0, 50.0, 50.0], "FrameTimeVector")
    ds = Dataset()
    ds.CineRate = 25
    assert frame_durations_ms(ds, 3) == ([40.0] * 3, "CineRate")
    ds.FrameTime = 20
    ds.FrameTimeVector = [0, 10, 10]
    ds.FrameIncrementPointer = 0x00181065  # the header says: the vector is the timing
    assert frame_durations_ms(ds, 3)[1] == "FrameTimeVector"
    assert frame_durations_ms(Dataset(), 2)[1] == "default"


def test_resize_lanczos_with_and_without_ratio(tmp_path):
    stored = np.tile(np.arange(40, dtype=np.uint16) * 50, (64, 1))
    src = grey_file(tmp_path / "a.dcm", stored, WindowCenter=1000, WindowWidth=2000)
    (kept,) = png_of(tmp_path, src, size=32, keep_ratio=True)
    assert kept.shape == (32, 20)
    (square,) = png_of(tmp_path / "b", src, size=32)
    assert square.shape == (32, 32)
    assert output_size(512, 256, 128, True) == (128, 64)
    # a horizontal ramp stays a ramp (the resize is a filter, not a shuffle)
    assert np.all(np.diff(square[16].astype(int)) >= -1)


def test_jpeg_output(tmp_path):
    src = grey_file(tmp_path / "a.dcm", RAMP, WindowCenter=0, WindowWidth=1000)
    res = convert_file((str(src), str(tmp_path / "j" / "a")), PngSettings(fmt="jpg", quality=95))
    assert [Path(p).suffix for p in res.written] == [".jpg"]
    img = Image.open(res.written[0])
    assert img.format == "JPEG" and img.mode == "L"
    assert np.abs(np.asarray(img).astype(int) - linear(RAMP, 0, 1000)).mean() < 2


def test_no_patient_data_in_picture_files(tmp_path):
    src = grey_file(tmp_path / "a.dcm", RAMP, WindowCenter=0, WindowWidth=1000)
    for settings in (PngSettings(), PngSettings(DisplayOptions(raw16=True)), PngSettings(fmt="jpg")):
        res = convert_file((str(src), str(tmp_path / "o" / settings.fmt / "a")), settings)
        for p in res.written:
            data = Path(p).read_bytes()
            for secret in (b"Doe", b"PID-0042", b"19700101", b"20240101"):
                assert secret not in data
            img = Image.open(p)
            assert set(getattr(img, "text", {}) or {}) <= {TEXT_SLOPE, TEXT_INTERCEPT}


def test_non_image_dicom_is_skipped_not_failed(tmp_path):
    for name in ("rtplan.dcm", "reportsi.dcm"):
        res = convert_file((get_testdata_file(name), str(tmp_path / name)), PngSettings())
        assert res.skipped == "no pixel data" and not res.error and not res.written
    junk = tmp_path / "notes.txt"
    junk.write_text("not dicom")
    assert convert_file((str(junk), str(tmp_path / "n")), PngSettings()).skipped == "not DICOM"


def test_corrupt_file_is_an_error_result(tmp_path):
    res = convert_file((get_testdata_file("MR_truncated.dcm"), str(tmp_path / "t")), PngSettings())
    assert res.error and "pixel data" in res.error and not res.written


def test_lookup_table_path_equals_direct_evaluation(tmp_path):
    from volume.jobs.pictures import display_grey, grey_through_lut, modality_values

    rng = np.random.default_rng(3)
    cases = [
        (rng.integers(-1500, 3000, (128, 128)).astype(np.int16), dict(RescaleSlope=1, RescaleIntercept=-1024, WindowCenter=40, WindowWidth=400)),
        (rng.integers(0, 4096, (128, 128)).astype(np.uint16), dict(RescaleSlope=0.5, RescaleIntercept=3.25, WindowCenter=700, WindowWidth=900, VOILUTFunction="SIGMOID")),
        (rng.integers(0, 255, (128, 128)).astype(np.uint8), dict(WindowCenter=100, WindowWidth=50, PhotometricInterpretation="MONOCHROME1", VOILUTFunction="LINEAR_EXACT")),
    ]
    for i, (stored, attrs) in enumerate(cases):
        ds = read_dataset(grey_file(tmp_path / f"{i}.dcm", stored, **attrs))
        for options in (DisplayOptions(), DisplayOptions(window=Window(-100, 333))):
            fast = grey_through_lut(stored, ds, None, options)
            assert fast is not None
            np.testing.assert_array_equal(fast, display_grey(modality_values(stored, ds), ds, None, options))
    wide = np.array([[0, 2**31 - 1]], dtype=np.int32)
    assert grey_through_lut(wide, ds, None, DisplayOptions()) is None  # would need a huge table


def test_square_pixels_from_pixel_spacing(tmp_path):
    stored = np.zeros((40, 30), dtype=np.uint16)
    stored[10:20, 5:10] = 1000  # a 10x5-pixel block, 20 mm x 5 mm with 2 mm rows, 1 mm columns
    src = grey_file(tmp_path / "a.dcm", stored, PixelSpacing=[2.0, 1.0], WindowCenter=500, WindowWidth=1000)
    (native,) = png_of(tmp_path, src)
    assert native.shape == (40, 30)  # default: the stored grid
    (square,) = png_of(tmp_path / "sq", src, square=True)
    assert square.shape == (80, 30)  # taller, never squashed
    rows = np.flatnonzero(square[:, 7] > 128)
    cols = np.flatnonzero(square[30] > 128)
    assert abs(len(rows) - 20) <= 1 and abs(len(cols) - 5) <= 1  # the block is 20 mm x 5 mm
    (both,) = png_of(tmp_path / "both", src, square=True, size=40, keep_ratio=True)
    assert both.shape == (40, 15)


def test_header_window_that_blanks_the_picture_falls_back(tmp_path):
    mask = np.zeros((16, 16), dtype=np.uint16)
    mask[4:8, 4:8] = 1
    # DICOM's LINEAR formula with center 0, width 1 maps both 0 and 1 to white (seen in BRAINIX ROI)
    src = grey_file(tmp_path / "m.dcm", mask, WindowCenter=0, WindowWidth=1)
    (pic,) = pictures(src)
    assert pic.array[mask == 1].min() == 255 and pic.array[mask == 0].max() == 0
    assert pic.notes and "percentile" in pic.notes[0]
    (forced,) = pictures(src, window=Window(0, 1))  # an explicit window is obeyed, blank or not
    assert forced.array.min() == forced.array.max() == 255


def test_a_saturating_real_window_is_kept(tmp_path):
    air = (np.random.default_rng(0).normal(-1000, 5, (16, 16)) + 1024).astype(np.uint16)
    src = grey_file(tmp_path / "air.dcm", air, RescaleIntercept=-1024, WindowCenter=40, WindowWidth=400)
    (pic,) = pictures(src)
    assert pic.array.max() == 0 and not pic.notes  # air in a soft-tissue window is black, not noise


def test_constant_images_are_black(tmp_path):
    empty = np.zeros((8, 8), dtype=np.uint16)
    (pic,) = pictures(grey_file(tmp_path / "e.dcm", empty, WindowCenter=0, WindowWidth=1))
    assert pic.array.max() == 0
    (pic,) = pictures(grey_file(tmp_path / "f.dcm", empty + 7))
    assert pic.array.max() == 0
    (pic,) = pictures(grey_file(tmp_path / "g.dcm", empty, PhotometricInterpretation="MONOCHROME1"))
    assert pic.array.min() == 255


@pytest.mark.parametrize(
    "variant",
    ["MR_small_RLE.dcm", "MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm",
     "MR_small_bigendian.dcm", "MR_small_implicit.dcm"],
)
def test_lossless_encodings_give_identical_pictures(tmp_path, variant):
    (ref,) = png_of(tmp_path / "ref", Path(get_testdata_file("MR_small.dcm")))
    (got,) = png_of(tmp_path / "var", Path(get_testdata_file(variant)))
    np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize(
    "variant",
    ["SC_rgb_jpeg_dcmtk.dcm", "SC_rgb_dcmtk_+eb+cy+np.dcm", "SC_rgb_dcmtk_+eb+cy+s2.dcm",
     "SC_rgb_dcmtk_+eb+cr.dcm", "SC_rgb_gdcm_KY.dcm", "SC_rgb_jpeg_gdcm.dcm"],
)
def test_colour_jpeg_variants_match_the_rgb_card(tmp_path, variant):
    (ref,) = png_of(tmp_path / "ref", Path(get_testdata_file("SC_rgb_rle.dcm")))
    (got,) = png_of(tmp_path / "var", Path(get_testdata_file(variant)))
    assert got.shape == ref.shape
    assert np.abs(got.astype(int) - ref.astype(int)).mean() < 4  # lossy JPEG, but RGB, not YCbCr


@pytest.mark.parametrize("name", ["examples_ybr_color.dcm", "rtdose.dcm", "examples_palette.dcm", "CT_small.dcm"])
def test_big_files_decode_frame_by_frame_from_disk_with_the_same_result(tmp_path, monkeypatch, name):
    import volume.jobs.pictures as pictures_mod

    src = Path(get_testdata_file(name))
    whole = png_of(tmp_path / "whole", src)
    monkeypatch.setattr(pictures_mod, "LARGE_FILE_BYTES", 0)  # every file counts as big
    monkeypatch.setattr(pictures_mod, "DEFER_BYTES", 1024)
    ds = read_dataset(src)
    assert ds.get_item(0x7FE00010, keep_deferred=True).value is None  # pixels left on disk
    lazy = png_of(tmp_path / "lazy", src)
    assert len(lazy) == len(whole)
    for a, b in zip(lazy, whole, strict=True):
        np.testing.assert_array_equal(a, b)


def test_nonsense_pixel_spacing_cannot_blow_up_square_pixels(tmp_path):
    src = grey_file(tmp_path / "a.dcm", RAMP, PixelSpacing=[1000.0, 0.001], WindowCenter=0, WindowWidth=100)
    res = convert_file((str(src), str(tmp_path / "o" / "a")), PngSettings(square=True))
    assert res.error and "--square-pixels" in res.error and not res.written
    (fine,) = png_of(tmp_path / "n", src)  # without --square-pixels the stored grid is written
    assert fine.shape == RAMP.shape

"""2D pictures from single DICOM files: the display pipeline in DICOM's order, frame by frame.

Greyscale (PS3.3 C.11 and PS3.4 N.2):

1. modality LUT: the Modality LUT Sequence when present, else Rescale Slope/Intercept (from the
   frame's functional groups for enhanced multi-frame images, else the top-level attributes);
2. VOI: an explicit window (``--window``/``--preset``) wins; else the frame's VOI (functional
   groups), the VOI LUT Sequence, or Window Center/Width with its VOI LUT Function (LINEAR,
   LINEAR_EXACT, SIGMOID); else a robust percentile window (:func:`volume.ops.window.auto_window`);
3. presentation: MONOCHROME1 is inverted after windowing (high values display dark).

Colour: PALETTE COLOR goes through its palette to RGB, YBR_* converts to RGB, RGB stays RGB;
more than 8 bits per sample are scaled to 8 bits. Windows do not apply to colour images.

``raw16`` skips VOI and presentation: a 16-bit PNG of the modality values, shifted to be
non-negative. ``modality = png * slope + intercept``; slope and intercept are written into the PNG
as text chunks (see :func:`raw16_mapping`). Nothing else goes into the files' metadata.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from ..dicom.pixels import disable_unsafe_decoders
from ..dicom.values import file_head, functional, looks_like_headerless_dicom, to_float
from ..errors import InputReadError, UnsupportedDicomError
from ..io.atomic import atomic_output
from ..io.names import safe_name
from ..ops.window import Window, apply_window, auto_window

UINT16_MAX = 65535
"""Largest value of a 16-bit PNG sample."""

SIGNED_OFFSET = -32768
"""``raw16`` intercept of data that can be negative: PNG = value + 32768 (so HU -1000 -> 31768)."""

DEFAULT_FRAME_MS = 100
"""Frame duration of an animation (ms) when the header gives no frame time."""

MIN_GIF_FRAME_MS = 20
"""Shortest GIF frame duration (ms); browsers slow down anything shorter to 100 ms."""

PNG_COMPRESS_LEVEL = 4
"""zlib level of PNG files: on CT slices ~20 % faster to write than Pillow's default 6, same size."""

DICOM_SUFFIXES = (".dcm", ".dicom", ".dic", ".ima")
"""File name suffixes dropped from output names (others, like the tail of a UID, are kept)."""

PIXEL_TAGS = (0x7FE00010, 0x7FE00008, 0x7FE00009)
"""Pixel Data, Float Pixel Data, Double Float Pixel Data."""

MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"
"""SOP Class of a DICOMDIR (an index of other files, never an image)."""

LARGE_FILE_BYTES = 256 * 2**20
"""Files bigger than this keep their pixel data on disk and are decoded one frame at a time."""

DEFER_BYTES = 64 * 1024
"""With big files, element values longer than this are read only when used."""

MAX_PICTURE_SIDE = 32768
"""Longest side of a resampled picture (a nonsense Pixel Spacing must not allocate gigabytes)."""

ASPECT_TOLERANCE = 1e-3
"""Pixel height/width ratios closer to 1 than this count as square."""

MAX_LUT_ENTRIES = 1 << 17
"""Widest stored-value range (max - min) evaluated through a lookup table instead of per pixel."""

TEXT_SLOPE = "modality_slope"
"""PNG text chunk of a ``raw16`` picture: modality = png * slope + intercept."""

TEXT_INTERCEPT = "modality_intercept"
"""PNG text chunk of a ``raw16`` picture: modality = png * slope + intercept."""


@dataclass(frozen=True)
class DisplayOptions:
    """How greyscale values become grey levels.

    ``window`` overrides every window of the header; ``auto`` forces the percentile window;
    ``raw16`` writes modality values (no VOI, no inversion) as 16-bit samples.
    """

    window: Window | None = None
    auto: bool = False
    raw16: bool = False


@dataclass
class Picture:
    """One displayable frame.

    ``array`` is (R, C) uint8 greyscale, (R, C, 3) uint8 RGB, or (R, C) uint16 for ``raw16``.
    ``frame`` is the 0-based frame index (``None`` for a single-frame file). ``text`` holds the
    PNG text chunks to write (only the raw16 mapping; never header text). ``aspect`` is the
    height / width of one pixel in mm (see :func:`pixel_aspect`).
    """

    array: np.ndarray
    frame: int | None
    text: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    aspect: float = 1.0

    @property
    def mode(self) -> str:
        """Pillow mode: ``L``, ``RGB`` or ``I;16``."""
        if self.array.ndim == 3:
            return "RGB"
        return "I;16" if self.array.dtype == np.uint16 else "L"


class NotAnImage(Exception):
    """A DICOM file without pixel data (SR, RT plan, DICOMDIR...): skipped, not an error."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- reading ---------------------------------------------------------------------------------


def read_dataset(path: str | os.PathLike[str]) -> Any:
    """The whole dataset of one file (pixels included); :class:`NotAnImage` for non-DICOM files."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        size = os.path.getsize(path)
    except FileNotFoundError:
        if os.path.lexists(path):  # a broken link: skipped, as any file that is no image
            raise NotAnImage("unreadable") from None
        # listed, then deleted or moved: an error naming it, not a skip
        raise InputReadError(f"cannot read {os.fspath(path)}: deleted or moved during the run") from None
    except OSError:
        raise NotAnImage("unreadable") from None
    if size == 0:
        raise NotAnImage("empty")
    # Big files: leave the pixel data on disk; _frames then decodes frame by frame from the file.
    options: dict[str, Any] = {"defer_size": DEFER_BYTES} if size > LARGE_FILE_BYTES else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return pydicom.dcmread(path, **options)
        except InvalidDicomError:
            if looks_like_headerless_dicom(file_head(path)):
                return pydicom.dcmread(path, force=True, **options)
            raise NotAnImage("not DICOM") from None


def image_check(ds: Any) -> None:
    """Raise :class:`NotAnImage` unless ``ds`` holds pixel data."""
    meta = getattr(ds, "file_meta", None)
    sop = str(meta.get("MediaStorageSOPClassUID", "") if meta is not None else "") or str(ds.get("SOPClassUID", ""))
    if sop == MEDIA_STORAGE_DIRECTORY or "DirectoryRecordSequence" in ds:
        raise NotAnImage("DICOMDIR index")
    if not any(tag in ds for tag in PIXEL_TAGS):
        raise NotAnImage("no pixel data")
    n = n_frames(ds)
    if n > 1:
        _check_frame_count(ds, n)


#: Bytes of an encapsulated fragment's item header: no compressed frame takes fewer.
ITEM_HEADER_BYTES = 8


def _check_frame_count(ds: Any, n: int) -> None:
    """Refuse a NumberOfFrames the pixel data cannot hold before a decoder loops over it."""
    elem = ds.get_item(0x7FE00010, keep_deferred=True)
    if elem is None:
        return
    value = getattr(elem, "value", None)
    length = len(value) if isinstance(value, (bytes, bytearray)) else getattr(elem, "length", None)
    if length in (None, 0xFFFFFFFF):
        length = os.path.getsize(ds.filename) if isinstance(getattr(ds, "filename", None), str) else None
    if length is None:
        return
    meta = getattr(ds, "file_meta", None)
    syntax = meta.get("TransferSyntaxUID") if meta is not None else None
    if syntax is not None and getattr(syntax, "is_compressed", False):
        need = n * ITEM_HEADER_BYTES
    else:
        try:
            per_frame = int(ds.Rows) * int(ds.Columns) * int(ds.get("SamplesPerPixel") or 1)
            need = -(-n * per_frame * max(int(ds.get("BitsAllocated") or 1), 1) // 8)
        except (AttributeError, TypeError, ValueError):
            return
    if need > length:
        raise UnsupportedDicomError(
            f"NumberOfFrames is {n} but the pixel data holds {length} bytes, too few for that many frames: "
            "the header is wrong or the file is truncated"
        )


def n_frames(ds: Any) -> int:
    """Number of frames the header declares (1 without NumberOfFrames)."""
    try:
        n = int(ds.get("NumberOfFrames") or 1)
    except (TypeError, ValueError):
        n = 1
    return max(1, n)


def is_multiframe(ds: Any) -> bool:
    """True when the file holds several frames (or is an enhanced image with functional groups)."""
    return n_frames(ds) > 1


# --- header values per frame -------------------------------------------------------------------


def rescale_of(ds: Any, frame: int | None = None) -> tuple[float, float]:
    """Rescale ``(slope, intercept)`` of a frame: functional groups first, then top level.

    A missing or zero slope is 1; a missing intercept is 0.
    """
    slope = to_float(functional(ds, "PixelValueTransformationSequence", "RescaleSlope", frame))
    inter = to_float(functional(ds, "PixelValueTransformationSequence", "RescaleIntercept", frame))
    if slope is None:
        slope = to_float(ds.get("RescaleSlope"))
    if inter is None:
        inter = to_float(ds.get("RescaleIntercept"))
    return (slope if slope not in (None, 0.0) else 1.0), (inter if inter is not None else 0.0)


def _has_modality_lut(ds: Any) -> bool:
    seq = ds.get("ModalityLUTSequence")
    return bool(seq) and "LUTData" in seq[0] and "LUTDescriptor" in seq[0]


def modality_values(stored: np.ndarray, ds: Any, frame: int | None = None) -> np.ndarray:
    """Modality values of one greyscale frame (step 1 of the pipeline).

    Parameters
    ----------
    stored
        Stored pixel values (R, C), any numeric dtype.
    ds
        The dataset (for the Modality LUT Sequence or the rescale).
    frame
        0-based frame index, for per-frame rescale of enhanced images.

    Returns
    -------
    numpy.ndarray
        (R, C): the LUT's output (uint8/uint16) with a Modality LUT Sequence, the stored
        array itself for an identity rescale, else float64 ``stored * slope + intercept``.
    """
    if _has_modality_lut(ds) and np.issubdtype(stored.dtype, np.integer):
        from pydicom.pixels import apply_modality_lut

        return apply_modality_lut(stored, ds)
    slope, inter = rescale_of(ds, frame)
    if slope == 1.0 and inter == 0.0:
        return stored
    return stored.astype(np.float64) * slope + inter


def _window_from(center: Any, width: Any, function: Any) -> Window | None:
    c, w = to_float(center), to_float(width)
    if c is None or w is None:
        return None
    fn = str(function or "LINEAR").strip().upper() or "LINEAR"
    if fn not in ("LINEAR", "LINEAR_EXACT", "SIGMOID"):
        fn = "LINEAR"
    try:
        return Window(c, w, fn)
    except ValueError:  # width 0 or negative: unusable, fall through to the next source
        return None


def frame_group_window(ds: Any, frame: int | None = None) -> Window | None:
    """The window of a frame's Frame VOI LUT functional group (enhanced images), or ``None``."""
    seq = "FrameVOILUTSequence"
    return _window_from(
        functional(ds, seq, "WindowCenter", frame),
        functional(ds, seq, "WindowWidth", frame),
        functional(ds, seq, "VOILUTFunction", frame),
    )


def header_window(ds: Any, frame: int | None = None) -> Window | None:
    """The window the header recommends for a frame (the first of several), or ``None``.

    The frame's Frame VOI LUT functional group first, then the top-level Window Center/Width
    with the VOI LUT Function. An unusable window (width 0) counts as none.
    """
    win = frame_group_window(ds, frame)
    if win is not None:
        return win
    return _window_from(ds.get("WindowCenter"), ds.get("WindowWidth"), ds.get("VOILUTFunction"))


def _has_voi_lut(ds: Any) -> bool:
    seq = ds.get("VOILUTSequence")
    return bool(seq) and "LUTData" in seq[0] and "LUTDescriptor" in seq[0]


def _apply_voi_lut_sequence(values: np.ndarray, ds: Any, invert: bool) -> np.ndarray:
    """The first VOI LUT of the VOI LUT Sequence, scaled from its entry bit depth to 0..255."""
    from pydicom.pixels import apply_voi

    desc = ds.VOILUTSequence[0].LUTDescriptor
    entries, first, bits = int(desc[0]) or 2**16, int(desc[1]), int(desc[2])
    # Clip to the table's input range first: pydicom indexes with the LUT's own dtype, so an
    # input past the end of an 8-bit table would wrap around instead of taking the last entry.
    x = np.clip(np.rint(np.asarray(values, dtype=np.float64)), first, first + entries - 1).astype(np.int64)
    out = apply_voi(x, ds, index=0).astype(np.float64)
    out /= float(2**bits - 1)
    np.clip(out, 0.0, 1.0, out=out)
    if invert:
        out = 1.0 - out
    return np.rint(out * 255).astype(np.uint8)


def voi_mapper(ds: Any, frame: int | None, options: DisplayOptions) -> Callable[[np.ndarray], np.ndarray] | None:
    """Steps 2 and 3 as an elementwise function of modality values to uint8, or ``None``.

    Order: explicit window; the frame's functional-group window; the VOI LUT Sequence; the
    top-level window. ``None`` means the percentile window, which depends on the image itself.
    MONOCHROME1 is inverted after the VOI step.
    """
    invert = str(ds.get("PhotometricInterpretation", "")).strip().upper() == "MONOCHROME1"
    if options.window is not None:
        return partial(apply_window, window=options.window, invert=invert)
    if options.auto:
        return None
    win = frame_group_window(ds, frame)
    if win is None and _has_voi_lut(ds):
        return partial(_apply_voi_lut_sequence, ds=ds, invert=invert)
    if win is None:
        win = header_window(ds, frame)
    if win is not None:
        return partial(apply_window, window=win, invert=invert)
    return None


def display_grey(values: np.ndarray, ds: Any, frame: int | None, options: DisplayOptions) -> np.ndarray:
    """Steps 2 and 3 of the pipeline: modality values (R, C) to uint8 grey levels (R, C)."""
    mapper = voi_mapper(ds, frame, options)
    if mapper is not None:
        return mapper(values)
    invert = str(ds.get("PhotometricInterpretation", "")).strip().upper() == "MONOCHROME1"
    if _blank(values):  # nothing to window: a constant image is black (white for MONOCHROME1)
        return np.full(values.shape, 255 if invert else 0, dtype=np.uint8)
    return apply_window(values, auto_window(values), invert=invert)


def grey_through_lut(stored: np.ndarray, ds: Any, frame: int | None, options: DisplayOptions) -> np.ndarray | None:
    """:func:`display_grey` of :func:`modality_values` via a table over the stored values present.

    The whole pipeline is elementwise once the window is known, so it is evaluated once per
    distinct stored value in ``min..max`` and looked up: identical output, a fraction of the
    work on 512x512 images. ``None`` when it does not apply (float data, the percentile
    window, or a range wider than :data:`MAX_LUT_ENTRIES` or than the image has pixels).
    """
    if not np.issubdtype(stored.dtype, np.integer) or stored.ndim != 2:
        return None
    mapper = voi_mapper(ds, frame, options)
    if mapper is None:
        return None
    lo, hi = int(stored.min()), int(stored.max())
    if hi - lo >= min(MAX_LUT_ENTRIES, stored.size):  # a table bigger than the image saves nothing
        return None
    levels = np.arange(lo, hi + 1, dtype=np.int64).astype(stored.dtype)
    table = mapper(modality_values(levels, ds, frame))
    if lo == 0:
        return table[stored]
    return table[stored.astype(np.intp) - lo]


def _stored_range(ds: Any) -> tuple[int, int] | None:
    """Smallest and largest stored value the header allows (integer data only)."""
    try:
        bits = int(ds.get("BitsStored") or ds.get("BitsAllocated") or 0)
        signed = int(ds.get("PixelRepresentation") or 0) == 1
    except (TypeError, ValueError):
        return None
    if bits <= 0 or bits > 32 or "PixelData" not in ds:
        return None
    if signed:
        return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return 0, 2**bits - 1


def raw16_mapping(ds: Any, frame: int | None, values: np.ndarray) -> tuple[float, float]:
    """``(slope, intercept)`` so that ``modality = png * slope + intercept`` for ``raw16``.

    - Modality LUT Sequence: its output is unsigned: slope 1, intercept 0 (PNG = value).
    - Integer rescale whose possible values (from BitsStored, PixelRepresentation and the
      rescale) are all in 0..65535, e.g. MR: slope 1, intercept 0 (PNG = modality value).
    - Integer rescale that can give negative values, e.g. CT: slope 1, intercept -32768
      (PNG = HU + 32768, the DeepLesion convention), the same for every CT file whatever its
      storage layout, as long as the image's values lie in -32768..32767 (real CT always does).
    - Fractional slope (PET, some MR): PNG = the stored value (shifted by 32768 when signed),
      with the file's slope: exact.
    - Anything else (32-bit data, float pixel data): the image's own min..max over 0..65535
      (lossy when that range is wider than 65535 steps); the text chunks say how.
    """
    if _has_modality_lut(ds):
        return 1.0, 0.0
    slope, inter = rescale_of(ds, frame)
    rng = _stored_range(ds)
    if rng is not None and slope > 0 and rng[1] - rng[0] <= UINT16_MAX:
        s_lo, s_hi = rng
        if float(slope).is_integer() and float(inter).is_integer():
            lo, hi = s_lo * slope + inter, s_hi * slope + inter
            if lo >= 0 and hi <= UINT16_MAX:
                return 1.0, 0.0
            v_lo, v_hi = float(np.min(values)), float(np.max(values))
            if SIGNED_OFFSET <= v_lo and v_hi <= UINT16_MAX + SIGNED_OFFSET:
                return 1.0, float(SIGNED_OFFSET)
        else:
            offset = 0 if s_lo >= 0 else SIGNED_OFFSET
            return float(slope), float(inter + offset * slope)
    finite = np.asarray(values, dtype=np.float64)
    lo, hi = float(np.nanmin(finite)), float(np.nanmax(finite))
    if hi - lo <= UINT16_MAX and float(lo).is_integer() and float(hi).is_integer():
        return 1.0, (0.0 if lo >= 0 and hi <= UINT16_MAX else lo)
    return max((hi - lo) / UINT16_MAX, 1e-12), lo


def encode_raw16(values: np.ndarray, slope: float, intercept: float) -> tuple[np.ndarray, int]:
    """``rint((values - intercept) / slope)`` as uint16 (R, C), and how many values were clipped."""
    x = (np.asarray(values, dtype=np.float64) - intercept) / slope
    x = np.rint(x)
    clipped = int(np.count_nonzero((x < 0) | (x > UINT16_MAX)))
    np.clip(x, 0, UINT16_MAX, out=x)
    return x.astype(np.uint16), clipped


def _to_uint8_rgb(rgb: np.ndarray, ds: Any, lut_bits: int | None = None) -> np.ndarray:
    """RGB samples of any integer depth to uint8 (R, C, 3)."""
    if rgb.dtype == np.uint8:
        return rgb
    if lut_bits is not None:
        bits = lut_bits
    else:
        try:
            bits = int(ds.get("BitsStored") or rgb.dtype.itemsize * 8)
        except (TypeError, ValueError):
            bits = rgb.dtype.itemsize * 8
    full = float(2**bits - 1)
    out = np.rint(rgb.astype(np.float64) * (255.0 / full))
    return np.clip(out, 0, 255).astype(np.uint8)


def _palette_bits(ds: Any) -> int:
    """Bit depth of the palette entries (the third value of the red LUT descriptor)."""
    desc = ds.get("RedPaletteColorLookupTableDescriptor")
    try:
        bits = int(desc[2])
    except (TypeError, ValueError, IndexError):
        return 16
    return bits if bits in (8, 16) else 16


def display_frame(
    pixels: np.ndarray, ds: Any, frame: int | None, options: DisplayOptions = DisplayOptions()
) -> Picture:
    """One decoded frame to a :class:`Picture` through the full pipeline.

    Parameters
    ----------
    pixels
        The frame as pydicom decodes it with ``as_rgb=True``: (R, C) stored values, or
        (R, C, 3) RGB (YBR already converted).
    ds
        Its dataset.
    frame
        0-based frame index (``None`` for single-frame files).
    options
        Window override, percentile window, raw16.
    """
    photometric = str(ds.get("PhotometricInterpretation", "")).strip().upper()
    if photometric == "PALETTE COLOR" and pixels.ndim == 2:
        from pydicom.pixels import apply_color_lut

        rgb = apply_color_lut(pixels, ds)
        return Picture(_to_uint8_rgb(rgb, ds, _palette_bits(ds)), frame)
    if pixels.ndim == 3:
        notes = ["colour image written as 8-bit RGB (--raw16 applies to greyscale)"] if options.raw16 else []
        return Picture(_to_uint8_rgb(np.ascontiguousarray(pixels[..., :3]), ds), frame, notes=notes)
    if options.raw16:
        values = modality_values(pixels, ds, frame)
        slope, inter = raw16_mapping(ds, frame, values)
        arr, clipped = encode_raw16(values, slope, inter)
        notes = [f"{clipped} values outside the 16-bit range were clipped"] if clipped else []
        text = {TEXT_SLOPE: f"{slope:.17g}", TEXT_INTERCEPT: f"{inter:.17g}"}
        return Picture(arr, frame, text=text, notes=notes)
    grey = grey_through_lut(pixels, ds, frame, options)
    values = None
    if grey is None:
        values = modality_values(pixels, ds, frame)
        grey = display_grey(values, ds, frame, options)
    if _threshold_hides_everything(ds, frame, options, grey, pixels):
        # The header's window is a threshold (width <= 1) below or above every value: e.g. a 0/1
        # mask with center 0, width 1 is all white by DICOM's formula (BRAINIX's ROI series).
        # A real window saturating a picture (an air slice in a CT window) is left alone.
        if values is None:
            values = modality_values(pixels, ds, frame)
        grey = display_grey(values, ds, frame, DisplayOptions(auto=True))
        note = "the header's window is a threshold that flattens the picture; used the percentile window"
        return Picture(grey, frame, notes=[note])
    return Picture(grey, frame)


def _threshold_hides_everything(ds: Any, frame: int | None, options: DisplayOptions,
                                 grey: np.ndarray, pixels: np.ndarray) -> bool:
    if options.window is not None or options.auto or not _blank(grey):
        return False
    mapper = voi_mapper(ds, frame, options)
    window = getattr(mapper, "keywords", {}).get("window")
    return window is not None and window.width <= 1


def _blank(arr: np.ndarray) -> bool:
    """True when every element is equal."""
    flat = arr.reshape(-1)
    return flat.size == 0 or bool(flat.min() == flat.max())


def iter_pictures(ds: Any, options: DisplayOptions = DisplayOptions()) -> Iterator[Picture]:
    """Every frame of a dataset as a :class:`Picture`, decoded one frame at a time.

    Raises :class:`NotAnImage` for datasets without pixel data and
    :class:`~volume.errors.UnsupportedDicomError` when the pixels cannot be decoded.
    """
    image_check(ds)
    disable_unsafe_decoders()  # GDCM aborts the process on some corrupt data
    multi = is_multiframe(ds)
    done = 0
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for arr in _frames(ds):
                pic = display_frame(np.asarray(arr), ds, done if multi else None, options)
                pic.aspect = pixel_aspect(ds, pic.frame)
                yield pic
                done += 1
    except (NotAnImage, UnsupportedDicomError):
        raise
    except MemoryError:
        raise UnsupportedDicomError("not enough memory to decode the pixel data") from None
    except BaseException as exc:  # noqa: BLE001 - decoders raise anything on corrupt data
        if not isinstance(exc, Exception) and type(exc).__name__ != "PanicException":
            raise  # Ctrl-C, exit; but a Rust decoder's panic (a BaseException) is corrupt data too
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        reason = "; ".join(lines)[:300] if lines else type(exc).__name__
        syntax = ""
        meta = getattr(ds, "file_meta", None)
        if meta is not None and "TransferSyntaxUID" in meta:
            syntax = f" ({meta.TransferSyntaxUID.name})"
        raise UnsupportedDicomError(f"cannot decode pixel data{syntax}: {reason}") from None


def _frames(ds: Any) -> Iterator[np.ndarray]:
    """Decoded frames (RGB for colour), one at a time; the whole array when frame-wise fails.

    pydicom's frame iterator fails on a few files its whole-array path reads (e.g. JPEG 2000
    whose pixel representation disagrees with the header), so that path is the fallback.
    """
    from pydicom.pixels import iter_pixels

    pixel = ds.get_item(0x7FE00010, keep_deferred=True)
    deferred = pixel is not None and getattr(pixel, "value", b"") is None and getattr(ds, "filename", None)
    # A deferred value (big file, see read_dataset) is decoded from the file one frame at a time.
    it = iter_pixels(ds.filename if deferred else ds, as_rgb=True)
    try:
        first = next(it)
    except StopIteration:
        return
    except Exception:  # noqa: BLE001 - retry the whole-array decoder below
        arr = ds.pixel_array
        if is_multiframe(ds):
            yield from arr
        else:
            yield arr
        return
    yield first
    yield from it


# --- timing -------------------------------------------------------------------------------------


def frame_durations_ms(ds: Any, count: int) -> tuple[list[float], str]:
    """Display duration of each frame (ms) and where it came from.

    Follows Frame Increment Pointer when it names Frame Time or Frame Time Vector; else Frame Time
    (ms), Frame Time Vector (ms since the previous frame: frame i lasts until frame i+1 starts),
    Cine Rate or Recommended Display Frame Rate (frames per second). Without any of them
    :data:`DEFAULT_FRAME_MS`.
    """
    def frame_time() -> list[float] | None:
        t = to_float(ds.get("FrameTime"))
        return [t] * count if t and t > 0 else None

    def vector() -> list[float] | None:
        v = ds.get("FrameTimeVector")
        try:
            steps = [float(x) for x in v] if v is not None else []
        except (TypeError, ValueError):
            return None
        if len(steps) < 2 or not all(math.isfinite(s) and s >= 0 for s in steps):
            return None
        mean = float(np.mean(steps[1:]))
        # frame i lasts until frame i+1 starts; the last frame (and any zero step) gets the mean
        durations = [s if s > 0 else mean for s in steps[1:]] + [mean]
        return (durations + [mean] * count)[:count]

    def rate(keyword: str) -> list[float] | None:
        r = to_float(ds.get(keyword))
        return [1000.0 / r] * count if r and r > 0 else None

    pointers = _tags(ds.get("FrameIncrementPointer"))
    candidates: list[tuple[str, Any]] = []
    if 0x00181065 in pointers:
        candidates.append(("FrameTimeVector", vector))
    if 0x00181063 in pointers:
        candidates.append(("FrameTime", frame_time))
    candidates += [
        ("FrameTime", frame_time),
        ("FrameTimeVector", vector),
        ("CineRate", lambda: rate("CineRate")),
        ("RecommendedDisplayFrameRate", lambda: rate("RecommendedDisplayFrameRate")),
    ]
    for name, fn in candidates:
        got = fn()
        if got:
            return got, name
    return [float(DEFAULT_FRAME_MS)] * count, "default"


def _tags(value: Any) -> set[int]:
    """Tags of an AT element (one or several), as ints; empty when absent or malformed."""
    if value is None:
        return set()
    items = value if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue" else [value]
    try:
        return {int(v) for v in items}
    except (TypeError, ValueError):
        return set()


# --- writing ----------------------------------------------------------------------------------


def output_size(width: int, height: int, size: int, keep_ratio: bool) -> tuple[int, int]:
    """Target (width, height): ``size`` x ``size``, or the longest side ``size`` with the aspect kept."""
    if not keep_ratio:
        return size, size
    scale = size / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def square_size(width: int, height: int, aspect: float) -> tuple[int, int]:
    """(width, height) that makes pixels of height/width ``aspect`` square, never shrinking an axis."""
    if abs(aspect - 1.0) <= ASPECT_TOLERANCE:
        return width, height
    if aspect > 1:
        return width, max(1, round(height * aspect))
    return max(1, round(width / aspect)), height


def to_image(picture: Picture, size: int | None = None, keep_ratio: bool = False, square: bool = False) -> Any:
    """A Pillow image of a picture, resampled (Lanczos) once for ``square`` pixels and ``size``.

    ``square`` stretches the axis with the larger pixel spacing so pixels are square in mm;
    ``size`` then gives SIZE x SIZE, or with ``keep_ratio`` the longest side SIZE.
    """
    from PIL import Image

    arr = picture.array
    h, w = arr.shape[:2]
    target = square_size(w, h, picture.aspect) if square else (w, h)
    if size:
        target = output_size(target[0], target[1], size, keep_ratio)
    if max(target) > MAX_PICTURE_SIDE:
        raise UnsupportedDicomError(
            f"the picture would be {target[0]}x{target[1]} pixels (pixel aspect {picture.aspect:.3g} from "
            f"the header); more than {MAX_PICTURE_SIDE} a side: drop --square-pixels or use --size"
        )
    if target == (w, h):
        return Image.fromarray(arr)
    if picture.mode == "I;16":  # Pillow resamples 16-bit data as 32-bit float
        img = Image.fromarray(arr.astype(np.float32), mode="F").resize(target, Image.Resampling.LANCZOS)
        back = np.clip(np.rint(np.asarray(img, dtype=np.float32)), 0, UINT16_MAX).astype(np.uint16)
        return Image.fromarray(back)
    return Image.fromarray(arr).resize(target, Image.Resampling.LANCZOS)


def pixel_aspect(ds: Any, frame: int | None = None) -> float:
    """Height / width of one pixel: Pixel Spacing (frame's functional groups first), Imager
    Pixel Spacing, or Pixel Aspect Ratio; 1 when the header says nothing usable."""
    for value in (
        functional(ds, "PixelMeasuresSequence", "PixelSpacing", frame),
        ds.get("PixelSpacing"),
        ds.get("ImagerPixelSpacing"),
        ds.get("PixelAspectRatio"),
    ):
        try:
            v, h = float(value[0]), float(value[1])
        except (TypeError, ValueError, IndexError, KeyError):
            continue
        if v > 0 and h > 0 and math.isfinite(v / h):
            return v / h
    return 1.0


def save_image(img: Any, path: str | os.PathLike[str], *, fmt: str = "png", quality: int = 95,
               text: dict[str, str] | None = None, force: bool = False) -> Path:
    """Write one picture atomically as PNG or JPEG (no metadata except ``text`` in PNGs)."""
    with atomic_output(path, force=force) as tmp:
        if fmt == "png":
            info = None
            if text:
                from PIL.PngImagePlugin import PngInfo

                info = PngInfo()
                for k, v in text.items():
                    info.add_text(k, v)
            img.save(tmp, format="PNG", compress_level=PNG_COMPRESS_LEVEL, pnginfo=info)
        elif fmt in ("jpg", "jpeg"):
            img.save(tmp, format="JPEG", quality=int(quality), optimize=False)
        else:
            raise ValueError(f"unknown picture format {fmt!r}")
    return Path(path)


def save_gif(images: Sequence[Any], durations_ms: Sequence[float], path: str | os.PathLike[str],
             *, force: bool = False) -> Path:
    """An animated GIF (looping) of ``images`` with one duration per frame, written atomically."""
    frames = [im if im.mode in ("L", "RGB") else im.convert("L") for im in images]
    durations = [max(MIN_GIF_FRAME_MS, int(round(d))) for d in durations_ms]
    with atomic_output(path, force=force) as tmp:
        frames[0].save(tmp, format="GIF", save_all=True, append_images=list(frames[1:]),
                       duration=durations if len(durations) > 1 else durations[0], loop=0,
                       optimize=False, disposal=1)
    return Path(path)


def output_stem(name: str) -> str:
    """A file name without its DICOM suffix (``.dcm``, ``.dicom``, ``.dic``, ``.ima``), made safe."""
    base = name
    if base.lower().endswith(DICOM_SUFFIXES):
        base = base[: base.rfind(".")]
    return safe_name(base, fallback="image")


def frame_suffix(index: int, count: int) -> str:
    """``_f0001`` style suffix (1-based, at least 4 digits, wider when there are more frames)."""
    return f"_f{index + 1:0{max(4, len(str(count)))}d}"

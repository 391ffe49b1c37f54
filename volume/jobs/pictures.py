"""2D pictures from single DICOM files: the display pipeline in DICOM's order, frame by frame.

Greyscale (PS3.3 C.11 and PS3.4 N.2):

1. modality LUT: the Modality LUT Sequence when present, else Rescale Slope/Intercept (from the
   frame's functional groups for enhanced multi-frame images, else the top-level attributes);
2. VOI: an explicit window (``--window``/``--preset``) wins; else the frame's VOI (functional
   groups), the VOI LUT Sequence, or Window Center/Width with its VOI LUT Function (LINEAR,
   LINEAR_EXACT, SIGMOID); else a robust percentile window (:func:`volume.ops.window.auto_window`);
3. presentation: MONOCHROME1 is inverted after windowing (high values display dark).

Colour: PALETTE COLOR goes through its palette to RGB, YBR_* converts to RGB (as decoded), RGB
stays RGB; more than 8 bits per sample are scaled to 8 bits. Windows do not apply to colour images.

``raw16`` skips VOI and presentation: a 16-bit PNG of the modality values, shifted to be
non-negative. ``modality = png * slope + intercept``; slope and intercept are written into the PNG
as text chunks (:func:`volume.ops.pixel_transforms.raw16_mapping`). Nothing else goes into the
files' metadata.

This module reads the file and decides which step applies when; the header's values come from
:mod:`volume.dicom.presentation`, the steps themselves are the numpy functions of
:mod:`volume.ops.pixel_transforms` and :mod:`volume.ops.window`, and the pictures are written by
:mod:`volume.io.image`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import numpy as np

from ..dicom import lut, presentation, read
from ..dicom.pixels import disable_unsafe_decoders
from ..errors import InputReadError, UnsupportedDicomError
from ..io.image import Picture
from ..io.names import safe_name
from ..ops import pixel_transforms as px
from ..ops.window import Window, apply_window, auto_window, header_window

DICOM_SUFFIXES = (".dcm", ".dicom", ".dic", ".ima")
"""File name suffixes dropped from output names (others, like the tail of a UID, are kept)."""


LARGE_FILE_BYTES = 256 * 2**20
"""Files bigger than this keep their pixel data on disk and are decoded one frame at a time."""

DEFER_BYTES = 64 * 1024
"""With big files, element values longer than this are read only when used."""

TEXT_SLOPE = "modality_slope"
"""PNG text chunk of a ``raw16`` picture: modality = png * slope + intercept."""

TEXT_INTERCEPT = "modality_intercept"
"""PNG text chunk of a ``raw16`` picture: modality = png * slope + intercept."""

THRESHOLD_WIDTH = 1
"""A header window this wide or narrower is a threshold (DICOM: width 1 thresholds at the center)."""


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
class DisplayedFrame:
    """One frame of a file through the pipeline: its picture, its index, what the pipeline noted.

    ``picture.image`` is (R, C) uint8 greyscale, (R, C, 3) uint8 RGB, or (R, C) uint16 for
    ``raw16`` (whose ``picture.text`` holds the value mapping); ``picture.aspect`` is the height /
    width of one pixel in mm. ``frame`` is the 0-based frame index (``None`` for a single-frame
    file).
    """

    picture: Picture
    frame: int | None
    notes: list[str] = field(default_factory=list)

    @property
    def array(self) -> np.ndarray:
        """The picture's pixels (``picture.image``)."""
        return self.picture.image


class NotAnImage(Exception):
    """A DICOM file without pixel data (SR, RT plan, DICOMDIR...): skipped, not an error."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- reading ---------------------------------------------------------------------------------


def read_dataset(path: str | os.PathLike[str]) -> Any:
    """The whole dataset of one file (pixels included); :class:`NotAnImage` for non-DICOM files.

    A broken header raises pydicom's exception (the caller reports it as the file's error).
    """
    try:
        size = os.path.getsize(path)
    except FileNotFoundError:
        if os.path.lexists(path):  # a broken link: skipped, as any file that is no image
            raise NotAnImage("unreadable") from None
        # listed, then deleted or moved: an error naming it, not a skip
        raise InputReadError(f"cannot read {os.fspath(path)}: deleted or moved during the run") from None
    except OSError:
        size = 0
    # Big files: leave the pixel data on disk; _frames then decodes frame by frame from the file.
    ds = read.read_dataset(path, defer_size=DEFER_BYTES if size > LARGE_FILE_BYTES else None, corrupt="raise")
    if isinstance(ds, read.Skip):
        raise NotAnImage(str(ds))
    return ds


def image_check(ds: Any) -> None:
    """Raise :class:`NotAnImage` unless ``ds`` holds pixel data."""
    skip = read.image_skip(ds)
    if skip is not None:
        raise NotAnImage(str(skip))
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


# --- the pipeline -------------------------------------------------------------------------------


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
    lut = presentation.modality_lut(ds) if np.issubdtype(stored.dtype, np.integer) else None
    if lut is not None:
        return px.apply_lut(stored, lut.data, lut.first_mapped)
    return px.apply_rescale(stored, *presentation.rescale(ds, frame))


def voi_source(ds: Any, frame: int | None, options: DisplayOptions) -> Window | presentation.Lut | None:
    """Step 2's source: the explicit window; the frame's functional-group window; the VOI LUT
    Sequence; the top-level window; else None (the percentile window of the image itself)."""
    if options.window is not None:
        return options.window
    if options.auto:
        return None
    found = header_window(presentation.frame_window_values(ds, frame))
    if found is None:
        found = presentation.voi_lut(ds)
    if found is None:
        found = header_window(presentation.file_window_values(ds))
    return found


def voi_mapper(ds: Any, frame: int | None, options: DisplayOptions) -> Callable[[np.ndarray], np.ndarray] | None:
    """Steps 2 and 3 as an elementwise function of modality values to uint8, or ``None``.

    ``None`` means the percentile window, which depends on the image itself. MONOCHROME1 is
    inverted after the VOI step.
    """
    source = voi_source(ds, frame, options)
    invert = presentation.inverted(ds)
    if isinstance(source, Window):
        return partial(apply_window, window=source, invert=invert)
    if source is not None:
        return partial(px.apply_voi_lut, lut_data=source.data, first_mapped=source.first_mapped, bits=source.bits,
                       invert=invert)
    return None


def display_grey(values: np.ndarray, ds: Any, frame: int | None, options: DisplayOptions) -> np.ndarray:
    """Steps 2 and 3 of the pipeline: modality values (R, C) to uint8 grey levels (R, C)."""
    mapper = voi_mapper(ds, frame, options)
    if mapper is not None:
        return mapper(values)
    invert = presentation.inverted(ds)
    if px.is_blank(values):  # nothing to window: a constant image is black (white for MONOCHROME1)
        return px.blank_grey(values.shape, invert=invert)
    return apply_window(values, auto_window(values), invert=invert)


def grey_through_lut(stored: np.ndarray, ds: Any, frame: int | None, options: DisplayOptions) -> np.ndarray | None:
    """:func:`display_grey` of :func:`modality_values`, evaluated once per stored value present
    (:func:`volume.ops.pixel_transforms.through_table`); ``None`` when it does not apply (float
    data, the percentile window, a range wider than the image has pixels)."""
    mapper = voi_mapper(ds, frame, options)
    if mapper is None:
        return None
    return px.through_table(stored, lambda levels: mapper(modality_values(levels, ds, frame)))


def _colour(pixels: np.ndarray, ds: Any, frame: int | None, options: DisplayOptions) -> DisplayedFrame:
    """A colour frame as 8-bit RGB: a palette's, or the decoded samples (YBR already RGB)."""
    if pixels.ndim == 2:  # PALETTE COLOR
        lut = presentation.palette(ds)
        return DisplayedFrame(Picture(px.apply_palette(pixels, lut.data, lut.first_mapped, lut.bits)), frame)
    rgb = np.ascontiguousarray(pixels[..., :3])
    notes = ["colour image written as 8-bit RGB (--raw16 applies to greyscale)"] if options.raw16 else []
    return DisplayedFrame(Picture(px.to_uint8(rgb, presentation.sample_bits(ds, rgb))), frame, notes)


def _raw16(pixels: np.ndarray, ds: Any, frame: int | None) -> DisplayedFrame:
    """A greyscale frame's modality values as 16-bit samples, the mapping in the PNG's text."""
    values = modality_values(pixels, ds, frame)
    rescale_slope, rescale_intercept = presentation.rescale(ds, frame)
    slope, inter = px.raw16_mapping(
        values, slope=rescale_slope, intercept=rescale_intercept, stored_range=presentation.stored_range(ds),
        from_lut=presentation.modality_lut(ds) is not None,
    )
    arr, clipped = px.encode_raw16(values, slope, inter)
    notes = [f"{clipped} values outside the 16-bit range were clipped"] if clipped else []
    text = {TEXT_SLOPE: f"{slope:.17g}", TEXT_INTERCEPT: f"{inter:.17g}"}
    return DisplayedFrame(Picture(arr, text=text), frame, notes)


def display_frame(
    pixels: np.ndarray, ds: Any, frame: int | None, options: DisplayOptions = DisplayOptions()
) -> DisplayedFrame:
    """One decoded frame through the full pipeline.

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

    Returns
    -------
    DisplayedFrame
        The picture (its aspect not set: :func:`iter_pictures` sets it), the frame, the notes.
    """
    if pixels.ndim == 3 or presentation.photometric(ds) == "PALETTE COLOR":
        return _colour(pixels, ds, frame, options)
    if options.raw16:
        return _raw16(pixels, ds, frame)
    grey = grey_through_lut(pixels, ds, frame, options)
    values = None
    if grey is None:
        values = modality_values(pixels, ds, frame)
        grey = display_grey(values, ds, frame, options)
    if _threshold_hides_everything(ds, frame, options, grey):
        # The header's window is a threshold (width <= 1) below or above every value: e.g. a 0/1
        # mask with center 0, width 1 is all white by DICOM's formula (BRAINIX's ROI series).
        # A real window saturating a picture (an air slice in a CT window) is left alone.
        if values is None:
            values = modality_values(pixels, ds, frame)
        grey = display_grey(values, ds, frame, DisplayOptions(auto=True))
        note = "the header's window is a threshold that flattens the picture; used the percentile window"
        return DisplayedFrame(Picture(grey), frame, [note])
    return DisplayedFrame(Picture(grey), frame)


def _threshold_hides_everything(ds: Any, frame: int | None, options: DisplayOptions, grey: np.ndarray) -> bool:
    """True when the header's window is a threshold and the picture it gives is one flat grey."""
    if options.window is not None or options.auto or not px.is_blank(grey):
        return False
    window = voi_source(ds, frame, options)
    return isinstance(window, Window) and window.width <= THRESHOLD_WIDTH


def iter_pictures(ds: Any, options: DisplayOptions = DisplayOptions()) -> Iterator[DisplayedFrame]:
    """Every frame of a dataset through the pipeline (:class:`DisplayedFrame`), decoded one frame
    at a time, each picture's pixel aspect from the header.

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
                shown = display_frame(np.asarray(arr), ds, done if multi else None, options)
                shown.picture = replace(shown.picture, aspect=presentation.pixel_aspect(ds, shown.frame))
                yield shown
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
    pixel = ds.get_item(0x7FE00010, keep_deferred=True)
    deferred = pixel is not None and getattr(pixel, "value", b"") is None and getattr(ds, "filename", None)
    # A deferred value (big file, see read_dataset) is decoded from the file one frame at a time.
    it = lut.iter_pixels(ds.filename if deferred else ds, as_rgb=True)
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


# --- naming -------------------------------------------------------------------------------------


def output_stem(name: str) -> str:
    """A file name without its DICOM suffix (``.dcm``, ``.dicom``, ``.dic``, ``.ima``), made safe."""
    base = name
    if base.lower().endswith(DICOM_SUFFIXES):
        base = base[: base.rfind(".")]
    return safe_name(base, fallback="image")


def frame_suffix(index: int, count: int) -> str:
    """``_f0001`` style suffix (1-based, at least 4 digits, wider when there are more frames)."""
    return f"_f{index + 1:0{max(4, len(str(count)))}d}"

"""Decode a stack's pixels into one preallocated array, with the modality rescale applied.

Uncompressed pixel data is read straight from disk into the output array (no intermediate
copies); compressed transfer syntaxes go through pydicom and the pylibjpeg plugins (JPEG
baseline/lossless, JPEG-LS, JPEG 2000, RLE). The output dtype keeps values exact: the stored
integer type when there is no rescale, the smallest signed integer type holding the rescaled
values when slope and intercept are integers, float32 when the slope is fractional or varies.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import sys
import threading
import warnings
from collections import defaultdict
from collections.abc import Callable
from typing import BinaryIO

import numpy as np

from ..errors import InputReadError, ResourceLimitError, UnsupportedDicomError
from ..sources import FLOAT, RAW, RESCALED, RGB, ValueRule, human_bytes, rescaled_integer_dtype
from .files import gunzip_cached, open_source
from .headers import NATIVE_SYNTAXES, FrameHeader
from .series import Stack

DEFAULT_MAX_BYTES = 16 * 2**30
"""Largest volume (bytes of the output array) a header may ask for before loading is refused."""

_NATIVE_ORDER = "<" if sys.byteorder == "little" else ">"


def _raw_dtype(f: FrameHeader) -> np.dtype:
    """The numpy dtype of one stored sample (before rescale)."""
    if f.bits_allocated == 8:
        return np.dtype(np.int8 if f.pixel_representation else np.uint8)
    if f.bits_allocated == 16:
        return np.dtype(np.int16 if f.pixel_representation else np.uint16)
    if f.bits_allocated == 32:
        return np.dtype(np.int32 if f.pixel_representation else np.uint32)
    if f.bits_allocated == 64:
        return np.dtype(np.float64)
    raise UnsupportedDicomError(
        f"{f.name}: BitsAllocated {f.bits_allocated} is not supported (8, 16, 32 or 64 expected)"
    )


def _frame_shape(f: FrameHeader) -> tuple[int, ...]:
    return (f.rows, f.cols, 3) if f.samples == 3 else (f.rows, f.cols)


def output_dtype(stack: Stack) -> np.dtype:
    """The dtype :func:`read_stack` returns, decided from headers before any pixel is read.

    Integer rescales return the stored type here; :func:`read_stack` narrows or widens it to a
    signed type holding the actual values.
    """
    f0 = stack.first
    if stack.rgb:
        return np.dtype(np.uint16 if f0.bits_allocated == 16 and f0.photometric != "PALETTE COLOR" else np.uint8)
    slopes = {f.slope for f in stack.frames}
    inters = {f.intercept for f in stack.frames}
    if slopes == {1.0} and inters == {0.0}:
        return _raw_dtype(f0)
    if len(slopes) == 1 and all(float(s).is_integer() for s in slopes) and all(
        float(i).is_integer() for i in inters
    ):
        return _raw_dtype(f0)
    return np.dtype(np.float32)


def value_rule(stack: Stack) -> ValueRule:
    """How ``stack``'s stored values become voxel values (:class:`volume.sources.ValueRule`), from headers."""
    f0 = stack.first
    pairs = {(f.slope, f.intercept) for f in stack.frames}
    rescale = next(iter(pairs)) if len(pairs) == 1 else None
    if stack.rgb:
        return ValueRule(RGB, output_dtype(stack), rescale=rescale)
    dtype = output_dtype(stack)
    if dtype == np.float32:
        return ValueRule(FLOAT, _raw_dtype(f0), rescale=rescale)
    if pairs == {(1.0, 0.0)}:
        return ValueRule(RAW, _raw_dtype(f0), rescale=rescale)
    return ValueRule(RESCALED, _raw_dtype(f0), slope=float(f0.slope),
                     intercepts=np.array([f.intercept for f in stack.frames], dtype=np.float64), rescale=rescale)


def check_size(stack: Stack, max_bytes: int = DEFAULT_MAX_BYTES) -> int:
    """Bytes the stack needs in memory; raise :class:`ResourceLimitError` above ``max_bytes``."""
    f0 = stack.first
    n = len(stack.frames) * f0.rows * f0.cols * (3 if stack.rgb else 1)
    itemsize = max(1, (f0.bits_allocated + 7) // 8)
    if not stack.rgb and output_dtype(stack) == np.float32:
        itemsize = 4
    need = n * itemsize
    if need > max_bytes:
        raise ResourceLimitError(
            f"series {stack.id}: the headers describe {len(stack.frames)} images of "
            f"{f0.rows}x{f0.cols}, {human_bytes(need)}, over the {human_bytes(max_bytes)} "
            "limit; raise it with --max-memory (max_bytes=) if this is real"
        )
    return need


def check_grid(stack: Stack, shape: tuple[int, int, int], what: str, max_bytes: int = DEFAULT_MAX_BYTES) -> int:
    """Bytes of a stack's stored images plus the grid ``shape`` (S, R, C) they are resampled onto
    (tilt correction, gap filling: both are in memory at once); raise
    :class:`ResourceLimitError` above ``max_bytes``, before anything is allocated.

    The grid comes from the slice positions, so a broken ImagePositionPatient can ask for
    terabytes from a few small files; the message says so.
    """
    stored = check_size(stack, max_bytes=2**62)
    f0 = stack.first
    per_voxel = stored // max(1, len(stack.frames) * f0.rows * f0.cols)
    s, r, c = (int(v) for v in shape)
    need = stored + stack.n_frames * s * r * c * max(1, per_voxel)
    if need > max_bytes:
        raise ResourceLimitError(
            f"series {stack.id}: {what} needs a grid of {s}x{r}x{c} voxels, {human_bytes(need)} with "
            f"the images, over the {human_bytes(max_bytes)} limit; check the slice positions "
            "(ImagePositionPatient), or raise the limit with --max-memory (max_bytes=) if this is real"
        )
    return need


def _read_array(fh: BinaryIO, dtype: np.dtype, count: int) -> np.ndarray:
    """Up to ``count`` values of ``dtype`` from a file or an in-memory file (gzip)."""
    return np.frombuffer(fh.read(count * dtype.itemsize), dtype=dtype).copy()


def unreadable(path: str, exc: OSError) -> InputReadError:
    """The error of an input that could be read when the folder was scanned and cannot now."""
    return InputReadError(f"cannot read {path}: {exc.strerror or exc} (was it moved or deleted during the run?)")


def _read_native(f: FrameHeader, out: np.ndarray) -> None:
    """Read one uncompressed frame from disk into ``out`` (shape rows x cols [x 3])."""
    try:
        _read_native_frame(f, out)
    except OSError as exc:
        raise unreadable(f.path, exc) from None


def _read_native_frame(f: FrameHeader, out: np.ndarray) -> None:
    dtype = _raw_dtype(f).newbyteorder(NATIVE_SYNTAXES[f.transfer_syntax])
    frame_bytes = f.rows * f.cols * f.samples * dtype.itemsize
    n_in_file = max(1, f.n_frames_in_file)
    assert f.pixel_offset is not None and f.pixel_length is not None
    if f.pixel_length < frame_bytes * n_in_file:
        raise UnsupportedDicomError(
            f"{f.name}: pixel data is {f.pixel_length} bytes but Rows x Columns x frames needs "
            f"{frame_bytes * n_in_file}: the file is truncated or its header is wrong"
        )
    offset = f.pixel_offset + (f.frame or 0) * frame_bytes
    direct = _PREADV and not f.file_compression and out.dtype == dtype and out.flags.c_contiguous
    if direct and not (f.samples == 3 and f.planar_configuration == 1):
        got = _pread_into(f.path, offset, memoryview(out).cast("B"))
        if got != frame_bytes:
            raise UnsupportedDicomError(f"{f.name}: pixel data ends early ({got} of {frame_bytes} bytes)")
        _clear_unstored_bits(f, dtype, out)
        return
    with (io.BytesIO(gunzip_cached(f.path)) if f.file_compression else open(f.path, "rb")) as fh:
        fh.seek(offset)
        if f.samples == 3 and f.planar_configuration == 1:
            data = _read_array(fh, dtype, f.rows * f.cols * 3)
            planes = data.reshape(3, f.rows, f.cols)
            out[...] = np.moveaxis(planes, 0, -1)
            return
        if out.dtype == dtype and out.flags.c_contiguous:
            view = memoryview(out).cast("B")
            got = fh.readinto(view)
            if got != frame_bytes:
                raise UnsupportedDicomError(f"{f.name}: pixel data ends early ({got} of {frame_bytes} bytes)")
        else:
            data = _read_array(fh, dtype, f.rows * f.cols * f.samples)
            if data.size != f.rows * f.cols * f.samples:
                raise UnsupportedDicomError(f"{f.name}: pixel data ends early")
            out[...] = data.reshape(out.shape)
    _clear_unstored_bits(f, dtype, out)


_PREADV = hasattr(os, "preadv")
"""Uncompressed images are read by one ``preadv`` into their place in the output where the platform
has it (Linux, the BSDs): no file object per image (4-5 µs of 15 per small file,
docs/benchmarks.md); elsewhere through a file object, as before."""


def _pread_into(path: str, offset: int, view: memoryview) -> int:
    """Read ``path`` from ``offset`` into ``view`` until it is full or the file ends: the bytes read."""
    fd = os.open(path, os.O_RDONLY)
    try:
        got = 0
        while got < len(view):
            n = os.preadv(fd, [view[got:]], offset + got)
            if n == 0:
                break
            got += n
        return got
    finally:
        os.close(fd)


def _clear_unstored_bits(f: FrameHeader, dtype: np.dtype, out: np.ndarray) -> None:
    """Sign-extend from BitsStored (signed), or clear the bits above it (overlays, garbage)."""
    if 0 < f.bits_stored < f.bits_allocated and out.dtype.kind in "iu":
        if f.pixel_representation == 1 and dtype.kind == "i":  # sign-extend from BitsStored
            shift = f.bits_allocated - f.bits_stored
            np.left_shift(out, shift, out=out)
            np.right_shift(out, shift, out=out)
        elif f.pixel_representation == 0:  # clear bits above BitsStored (overlays, garbage)
            np.bitwise_and(out, (1 << f.bits_stored) - 1, out=out)


def _can_read_native(f: FrameHeader) -> bool:
    return (
        not f.mosaic
        and f.transfer_syntax in NATIVE_SYNTAXES
        and f.pixel_offset is not None
        and f.pixel_length is not None
        and f.bits_allocated in (8, 16, 32)
        and f.photometric in ("MONOCHROME1", "MONOCHROME2", "RGB")
    )


def _mosaic_tiles(frames: list[FrameHeader]) -> list[np.ndarray] | None:
    """The tiles of one Siemens mosaic read straight from its file (uncompressed, greyscale: the
    whole mosaic image read as :func:`_read_native` reads any image, then cut into its tiles, row
    by row, as :func:`_decode` cuts pydicom's); None when pydicom must decode it."""
    f0 = frames[0]
    per_row = f0.mosaic
    if not (per_row and "MOSAIC" in f0.image_type and f0.transfer_syntax in NATIVE_SYNTAXES
            and f0.pixel_offset is not None and f0.pixel_length is not None and f0.samples == 1
            and f0.bits_allocated in (8, 16, 32) and f0.photometric in ("MONOCHROME1", "MONOCHROME2")):
        return None
    tr, tc = f0.rows, f0.cols
    whole_frame = f0.replace(rows=tr * per_row, cols=tc * per_row, frame=None, mosaic=0, n_frames_in_file=1)
    whole = np.empty((whole_frame.rows, whole_frame.cols), dtype=_raw_dtype(f0))
    _read_native(whole_frame, whole)
    return [whole[(f.frame // per_row) * tr : (f.frame // per_row + 1) * tr,  # type: ignore[operator]
                  (f.frame % per_row) * tc : (f.frame % per_row + 1) * tc] for f in frames]  # type: ignore[operator]


def _decode_with_pydicom(path: str, frames: list[FrameHeader]) -> list[np.ndarray]:
    """Decode the listed frames of one file with pydicom (compressed, odd layouts, palettes)."""
    f0 = frames[0]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _decode(path, frames)
    except UnsupportedDicomError:
        raise
    except OSError as exc:
        if exc.errno is not None:  # the file went away (or the disk failed): not a decoding problem
            raise unreadable(path, exc) from None
        raise _undecodable(f0, exc) from None  # a decoder's own OSError (Pillow: "broken data stream")
    except MemoryError as exc:
        raise ResourceLimitError(f"{f0.name}: not enough memory to decode ({exc})") from None
    except BaseException as exc:  # noqa: BLE001 - decoders raise anything on corrupt data
        if not isinstance(exc, Exception) and type(exc).__name__ != "PanicException":
            raise  # Ctrl-C, exit; but a Rust decoder's panic (a BaseException) is corrupt data too
        raise _undecodable(f0, exc) from None


def _undecodable(f0: FrameHeader, exc: BaseException) -> UnsupportedDicomError:
    from pydicom.uid import UID

    syntax = UID(f0.transfer_syntax).name
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return UnsupportedDicomError(
        f"{f0.name}: cannot decode pixel data ({syntax}): {reason[:200]}; "
        "the file is corrupt or uses an encoding volume cannot read"
    )


#: pydicom decoder plugins volume never uses: GDCM aborts the whole process (a C++ exception that
#: Python cannot catch) on some corrupt JPEG 2000 data; pylibjpeg and Pillow decode the same syntaxes.
UNSAFE_DECODER_PLUGINS = ("gdcm",)

_decoders_lock = threading.Lock()
_decoders_checked = False


def disable_unsafe_decoders() -> None:
    """Remove :data:`UNSAFE_DECODER_PLUGINS` from pydicom's decoders (once per process)."""
    global _decoders_checked
    with _decoders_lock:
        if _decoders_checked:
            return
        from pydicom.pixels import decoders
        from pydicom.pixels.decoders.base import Decoder

        for name in dir(decoders):
            decoder = getattr(decoders, name)
            if isinstance(decoder, Decoder):
                for label in UNSAFE_DECODER_PLUGINS:
                    with contextlib.suppress(ValueError, KeyError):
                        decoder.remove_plugin(label)
        _decoders_checked = True


def _decode(path: str, frames: list[FrameHeader]) -> list[np.ndarray]:
    import pydicom
    from pydicom.pixels import apply_color_lut, iter_pixels

    disable_unsafe_decoders()
    f0 = frames[0]
    compression = f0.file_compression
    if f0.frame is not None and not f0.mosaic:
        # Frames of a multi-frame file, read from the path: pydicom then reads only the wanted
        # frames' bytes, not the whole pixel data (a slab of a big compressed file stays a slab).
        wanted = [f.frame for f in frames]
        order = sorted(set(wanted))
        got = dict(zip(order, iter_pixels(open_source(path, compression), indices=order), strict=True))
        arrays = [got[i] for i in wanted]
        if f0.photometric == "PALETTE COLOR":
            header = pydicom.dcmread(open_source(path, compression), stop_before_pixels=True)
            arrays = [apply_color_lut(a, header) for a in arrays]
        return [np.asarray(a) for a in arrays]
    ds = pydicom.dcmread(open_source(path, compression))
    if f0.mosaic:  # tiles of a Siemens mosaic, row by row
        whole = ds.pixel_array
        tr, tc = f0.rows, f0.cols
        return [whole[(f.frame // f0.mosaic) * tr : (f.frame // f0.mosaic + 1) * tr,
                      (f.frame % f0.mosaic) * tc : (f.frame % f0.mosaic + 1) * tc] for f in frames]
    arrays = [ds.pixel_array]
    if f0.photometric == "PALETTE COLOR":
        arrays = [apply_color_lut(a, ds) for a in arrays]
    return [np.asarray(a) for a in arrays]


def read_stack(
    stack: Stack,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Pixel values of a stack in modality units, shape ``(T, S, R, C[, 3])``.

    Parameters
    ----------
    stack
        A stack from :func:`volume.scan`, frames in load order.
    max_bytes
        Refuse (before allocating) when the output would be larger.
    progress
        Called with 1 after each image is decoded.

    Returns
    -------
    numpy.ndarray
        Always 4D (+ RGB axis); the loader drops the frame axis of 3D stacks. Rescale slope and
        intercept are applied (see the module docstring for the dtype).
    """
    check_size(stack, max_bytes)
    return _read(stack, progress=progress)[0]


def read_slab(
    stack: Stack, start: int, stop: int, *, progress: Callable[[int], None] | None = None,
    as_float: bool | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frames ``start:stop`` of ``stack`` decoded as :func:`read_stack` decodes them in the whole stack.

    For streaming writers: the float32 decision is the whole stack's (so every value is computed
    by the same float32 arithmetic); an integer rescale is exact, in the smallest signed type
    holding this slab's values (the caller casts to the whole stack's type). ``as_float``: that
    decision when the caller has made it (it reads every frame's rescale: once per stack, not
    once per slab).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray, numpy.ndarray)
        Values ``(n, R, C[, 3])`` in modality units, and the stored (raw, before rescale) minimum
        and maximum of each frame, float64 ``(n,)`` (zeros for float32 and RGB outputs).
    """
    part = stack.frames[start:stop]
    sub = dataclasses.replace(stack, frames=part, n_slices=len(part), n_frames=1)
    if as_float is None:
        as_float = output_dtype(stack) == np.float32 and not stack.rgb
    values, lo, hi = _read(sub, as_float=as_float, progress=progress)
    return values[0], lo, hi


def check_frames(stack: Stack) -> None:
    """Refuse frames whose size differs or whose pixel data is shorter than the header says (headers only)."""
    f0 = stack.first
    frame_shape = _frame_shape(f0)
    for f in stack.frames:
        if _frame_shape(f) != frame_shape and not stack.rgb:
            raise UnsupportedDicomError(f"{f.name}: image size differs from {f0.name}")
        if _can_read_native(f):  # pixel data as long as the header says, checked before allocating
            need = f.rows * f.cols * f.samples * (f.bits_allocated // 8) * max(1, f.n_frames_in_file)
            if f.pixel_length < need:  # type: ignore[operator]
                raise UnsupportedDicomError(
                    f"{f.name}: pixel data is {f.pixel_length} bytes but Rows x Columns x frames needs "
                    f"{need}: the file is truncated or its header is wrong"
                )


def read_stored_slab(
    stack: Stack, start: int, stop: int, *, progress: Callable[[int], None] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Frames ``start:stop`` of ``stack`` as stored, before any rescale (the stored integer type),
    with each frame's minimum and maximum (float64 ``(n,)``); None when a frame is not read
    straight from its file (compressed, a mosaic, colour): their decoders' types vary.

    For the NIfTI writer: a uniform fractional rescale is stored as these integers with
    ``scl_slope``/``scl_inter`` when that is exact (:mod:`volume.io.nifti_stream`).
    """
    part = stack.frames[start:stop]
    if stack.rgb or not all(_can_read_native(f) and f.samples == 1 for f in part):
        return None
    sub = dataclasses.replace(stack, frames=part, n_slices=len(part), n_frames=1)
    values, lo, hi = _read(sub, stored=True, progress=progress)
    return values[0], lo, hi


def _read(
    stack: Stack, *, as_float: bool | None = None, stored: bool = False,
    progress: Callable[[int], None] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode ``stack``: ``(values (T, S, R, C[, 3]), raw minimum (n,), raw maximum (n,))``.

    ``as_float`` overrides the float32 decision (a slab of a stack whose rescale varies);
    ``stored`` gives the stored values, no rescale applied (:func:`read_stored_slab`).
    """
    check_frames(stack)
    f0 = stack.first
    frame_shape = _frame_shape(f0)
    rescale_float = not stored and (output_dtype(stack) == np.float32 and not stack.rgb if as_float is None
                                    else as_float)
    raw_dtype = _raw_dtype(f0)
    n = len(stack.frames)
    out_dtype = raw_dtype if stored else np.dtype(np.float32) if rescale_float else output_dtype(stack)
    shape = (stack.n_frames, stack.n_slices, f0.rows, f0.cols) + ((3,) if stack.rgb else ())
    try:
        out = np.empty(shape, dtype=out_dtype)
    except MemoryError:
        raise ResourceLimitError(
            f"series {stack.id}: not enough memory for {np.prod(shape) * np.dtype(out_dtype).itemsize / 2**30:.1f} GiB"
        ) from None
    flat = out.reshape((n,) + out.shape[2:])
    lo = np.zeros(n)
    hi = np.zeros(n)
    track_range = not rescale_float and not stack.rgb
    # Integer rescale: done per image right after reading it (while it is in cache) whenever the
    # image's values fit the signed type of the stored size; _rescale_integers does the rest.
    slope0 = stack.first.slope
    eager = (not stored and track_range and raw_dtype.kind in "iu" and float(slope0).is_integer()
             and not (slope0 == 1.0 and all(f.intercept == 0.0 for f in stack.frames)))
    signed = np.dtype(f"i{raw_dtype.itemsize}")
    signed_info = np.iinfo(signed)
    done = np.zeros(n, dtype=bool)
    # Small images' ranges in two calls for the whole stack after reading (not two per image) when
    # no eager rescale needs each image's range as it is read.
    late_range = track_range and not eager and flat.size > 0 and flat[0].nbytes <= LATE_RANGE_BYTES

    def store(i: int, f: FrameHeader, arr: np.ndarray | None, scratch: np.ndarray | None) -> None:
        target = flat[i]
        if arr is None:  # native read
            if rescale_float:
                assert scratch is not None
                _read_native(f, scratch)
                np.multiply(scratch, f.slope, out=target, dtype=np.float32, casting="unsafe")
                target += np.float32(f.intercept)
            else:
                _read_native(f, target)
        else:
            if arr.shape != target.shape:
                raise UnsupportedDicomError(
                    f"{f.name}: decoded image is {arr.shape}, the header says {target.shape}"
                )
            if rescale_float:
                np.multiply(arr, f.slope, out=target, dtype=np.float32, casting="unsafe")
                target += np.float32(f.intercept)
            elif stack.rgb and arr.dtype.itemsize > target.dtype.itemsize:
                target[...] = arr >> (8 * (arr.dtype.itemsize - target.dtype.itemsize))
            else:
                target[...] = arr
        finish(i, f, target)

    def finish(i: int, f: FrameHeader, target: np.ndarray) -> None:
        """An image read into ``target``: its rows flipped where GE says so, its range, its eager rescale."""
        if f.mr is not None and f.mr.pepolar is not None and f.mr.pepolar.flip_rows:
            target[...] = target[::-1].copy()  # GE epi_pepolar: reversed volumes' rows stored in reverse order
        if track_range and not late_range:
            lo[i] = a = float(target.min())
            hi[i] = b = float(target.max())
            if eager:
                k, c = int(slope0), int(f.intercept)
                ends = (a, b, a * k, b * k, a * k + c, b * k + c)
                if signed_info.min <= min(ends) and max(ends) <= signed_info.max:
                    view = target.view(signed)
                    if k != 1:
                        np.multiply(view, k, out=view)
                    if c:
                        np.add(view, c, out=view)
                    done[i] = True

    native: list[int] = []
    slow: dict[str, list[tuple[int, FrameHeader]]] = defaultdict(list)
    for i, f in enumerate(stack.frames):
        if _can_read_native(f) and not (stack.rgb and f.photometric != "RGB"):
            native.append(i)
        else:
            slow[f.path].append((i, f))

    direct = _direct_frames(stack, native, flat) if _PREADV and not rescale_float and not stack.rgb else None

    def read_native(indices: list[int]) -> int:
        scratch = np.empty(frame_shape, dtype=raw_dtype) if rescale_float else None
        for i in indices:
            f = stack.frames[i]
            if direct is not None and direct[i] is not None:  # one preadv into place (_read_native_frame's)
                target = flat[i]
                got = _pread_frame(f, direct[i])
                if got != len(direct[i]):
                    raise UnsupportedDicomError(f"{f.name}: pixel data ends early ({got} of {len(direct[i])} bytes)")
                _clear_unstored_bits(f, target.dtype, target)
                finish(i, f, target)
            else:
                store(i, f, None, scratch)
        return len(indices)

    _run_chunks(read_native, native, progress)
    for path, items in slow.items():
        frames = [f for _, f in items]
        arrays = _mosaic_tiles(frames)
        if arrays is None:
            arrays = _decode_with_pydicom(path, frames)
        for (i, f), arr in zip(items, arrays, strict=True):
            store(i, f, arr, None)
            if progress is not None:
                progress(1)
    if late_range:
        per_image = flat.reshape(n, -1)
        lo[:] = per_image.min(axis=1)
        hi[:] = per_image.max(axis=1)
    if not track_range or stored:
        return out, lo, hi
    return _rescale_integers(stack, out, flat, lo, hi, done), lo, hi


LATE_RANGE_BYTES = 2**16
"""Images up to this size (128x128 of 16 bits) have their value ranges found for the whole stack at
once after reading: numpy's cost per call, not the values, is most of a small image's min and max."""

def _direct_frames(stack: Stack, native: list[int], flat: np.ndarray) -> list[memoryview | None]:
    """For each image of ``stack``, the bytes of ``flat`` (its images, in order) its stored samples
    are read into as they are (:func:`_pread_frame`): uncompressed greyscale files whose stored
    type and byte order are the output's; None for the others (read by :func:`_read_native`)."""
    out: list[memoryview | None] = [None] * len(stack.frames)
    if not flat.flags.c_contiguous or not flat.size:
        return out
    whole = memoryview(flat).cast("B")
    size = flat[0].nbytes
    same: dict[tuple[int, int, str], bool] = {}
    for i in native:
        f = stack.frames[i]
        if f.file_compression or f.samples != 1:
            continue
        kind = (f.bits_allocated, f.pixel_representation, f.transfer_syntax)
        if kind not in same:
            same[kind] = _raw_dtype(f).newbyteorder(NATIVE_SYNTAXES[f.transfer_syntax]) == flat.dtype
        if same[kind]:
            out[i] = whole[i * size : (i + 1) * size]
    return out


def _pread_frame(f: FrameHeader, view: memoryview) -> int:
    """Image ``f``'s stored bytes read into ``view`` (as long as one image): the bytes read."""
    try:
        return _pread_into(f.path, f.pixel_offset + (f.frame or 0) * len(view), view)  # type: ignore[operator]
    except OSError as exc:
        raise unreadable(f.path, exc) from None


#: Images per progress report when reading uncompressed pixels.
READ_CHUNK = 8


def _run_chunks(fn: Callable[[list[int]], int], indices: list[int], progress: Callable[[int], None] | None) -> None:
    """Run ``fn`` over chunks of ``indices`` in this thread, ``progress`` getting 1 per image done.

    No reading threads: measured on 2 cores (docs/benchmarks.md, issue 24), four threads took
    1.1-3.9x the CPU of one for 64x64 to 2048x2048 images, from the page cache or not (files
    evicted), and no less wall time but for small files out of the cache (1,564 files: 0.14 s
    against 0.17 s): a read from the page cache is a copy, and the threads fought for the
    interpreter lock in between. A pool's workers convert stacks side by side instead.
    """
    for k in range(0, len(indices), READ_CHUNK):
        done = fn(indices[k : k + READ_CHUNK])
        if progress is not None:
            for _ in range(done):
                progress(1)


def _rescale_integers(
    stack: Stack, out: np.ndarray, flat: np.ndarray, lo: np.ndarray, hi: np.ndarray, done: np.ndarray
) -> np.ndarray:
    """Apply an integer slope and per-image integer intercepts, into the smallest signed type.

    The type holds the stored values (``lo``, ``hi`` per image), their products with the slope and
    the rescaled values, so the arithmetic is exact in that type; it runs in place when the type
    has the stored size. Images flagged in ``done`` were rescaled already, in place, as the
    signed type of the stored size: they are only copied (widened) when the result is wider.
    """
    slope = stack.first.slope
    inters = np.array([f.intercept for f in stack.frames])
    if slope == 1.0 and not inters.any():
        return out
    islope = int(slope)
    target = rescaled_integer_dtype(lo, hi, slope, inters, where=f"series {stack.id}")
    in_place = target.itemsize == out.dtype.itemsize
    result = out.view(target) if in_place else np.empty(out.shape, dtype=target)
    res_flat = result.reshape(flat.shape)

    signed = np.dtype(f"i{out.dtype.itemsize}")
    if in_place and done.all():
        return result

    def apply(indices: list[int]) -> int:
        for i in indices:
            src, dst = flat[i], res_flat[i]
            if done[i]:
                if not in_place:
                    np.copyto(dst, src.view(signed), casting="unsafe")
                continue
            if islope != 1:
                np.multiply(src, islope, out=dst, dtype=target, casting="unsafe")
            elif not (in_place and target == out.dtype):
                np.copyto(dst, src, casting="unsafe")
            inter = int(inters[i])
            if inter:
                np.add(dst, inter, out=dst, dtype=target, casting="unsafe")
        return len(indices)

    _run_chunks(apply, list(range(len(flat))), None)
    return result

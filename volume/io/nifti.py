"""NIfTI-1 output: the only place that knows RAS and NIfTI's (column, row, slice) voxel order.

A Volume's array is ``(slice, row, column)`` with an LPS affine; NIfTI wants ``(i, j, k)`` =
``(column, row, slice)`` (plus time last) with a RAS affine. The affine's columns are permuted
and flipped to RAS: ``LPS_TO_RAS @ A @ P``.

The voxel order costs nothing: NIfTI stores ``(i, j, k, t)`` with ``i`` varying fastest, which is
exactly the memory layout of a C-ordered ``(T, S, R, C)`` array. :func:`write_nifti` therefore
writes ``vol.array``'s bytes as they are, in chunks (no full copy), after a 348-byte header it
packs itself (importing nibabel costs ~0.3 s, longer than writing a 150 MB volume). ``.nii.gz`` is
compressed with ISA-L (``isal``): 4-6x faster than zlib at the same ratio as zlib level 1-2.
:func:`to_nifti` still gives a ``nibabel.Nifti1Image`` for in-memory use.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import queue
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._version import __version__
from ..errors import UnsupportedDicomError, UsageError
from ..volume import LPS_TO_RAS, Volume
from .atomic import atomic_output

#: Permutation taking NIfTI (column, row, slice) indices to Volume (slice, row, column) indices.
IJK_TO_SRC = np.array(
    [[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]], dtype=float
)
"""``volume_index = IJK_TO_SRC @ nifti_index`` (homogeneous)."""

NIFTI_HEADER_SIZE = 348
"""Bytes of a NIfTI-1 header (``sizeof_hdr``)."""

NIFTI1_MAX_DIM = 32767
"""NIfTI-1 stores dimensions as int16."""

VOX_OFFSET = 352
"""Where voxel data starts in a single-file ``.nii``: the header plus 4 bytes of extension flags."""

XFORM_SCANNER = 1
"""qform/sform code 1 (NIFTI_XFORM_SCANNER_ANAT): coordinates are the scanner's, in RAS mm."""

UNITS_MM_SEC = 2 | 8
"""xyzt_units: spatial unit millimetres (2), time unit seconds (8)."""

DEFAULT_GZIP_LEVEL = 1
"""ISA-L compression level for ``.nii.gz`` (0-3); 1 is as small as zlib's 1-2 at ~1 GB/s."""

DESCRIPTION = f"volume {__version__}"
"""The ``descrip`` of every NIfTI header volume writes (docs/privacy.md): who wrote it, nothing
from the source's header."""

WRITE_CHUNK_BYTES = 8 * 2**20
"""Voxel bytes handed to the file (or compressor) at a time: bounds the extra memory per write."""

SCALE_CHUNK_VALUES = 2**18
"""Values checked at a time by :func:`scale_to_integers` when a slab is stored as scaled integers
(one 512x512 image; several small ones): its float64 temporaries are 2 MiB, and small images do not
pay numpy's per-call cost one by one."""

#: NIfTI-1 datatype code and bits per voxel of each numpy dtype it can store.
NIFTI_DTYPES: dict[str, tuple[int, int]] = {
    "u1": (2, 8),
    "i2": (4, 16),
    "i4": (8, 32),
    "f4": (16, 32),
    "f8": (64, 64),
    "i1": (256, 8),
    "u2": (512, 16),
    "u4": (768, 32),
    "i8": (1024, 64),
    "u8": (1280, 64),
}

RGB24 = (128, 24)
"""NIfTI datatype code and bits of DT_RGB24: three uint8 per voxel, interleaved."""

#: Layout of the NIfTI-1 header (little-endian, 348 bytes), field by field.
HEADER_DTYPE = np.dtype(
    [
        ("sizeof_hdr", "<i4"),
        ("data_type", "S10"),
        ("db_name", "S18"),
        ("extents", "<i4"),
        ("session_error", "<i2"),
        ("regular", "S1"),
        ("dim_info", "u1"),
        ("dim", "<i2", (8,)),
        ("intent_p1", "<f4"),
        ("intent_p2", "<f4"),
        ("intent_p3", "<f4"),
        ("intent_code", "<i2"),
        ("datatype", "<i2"),
        ("bitpix", "<i2"),
        ("slice_start", "<i2"),
        ("pixdim", "<f4", (8,)),
        ("vox_offset", "<f4"),
        ("scl_slope", "<f4"),
        ("scl_inter", "<f4"),
        ("slice_end", "<i2"),
        ("slice_code", "u1"),
        ("xyzt_units", "u1"),
        ("cal_max", "<f4"),
        ("cal_min", "<f4"),
        ("slice_duration", "<f4"),
        ("toffset", "<f4"),
        ("glmax", "<i4"),
        ("glmin", "<i4"),
        ("descrip", "S80"),
        ("aux_file", "S24"),
        ("qform_code", "<i2"),
        ("sform_code", "<i2"),
        ("quatern_b", "<f4"),
        ("quatern_c", "<f4"),
        ("quatern_d", "<f4"),
        ("qoffset_x", "<f4"),
        ("qoffset_y", "<f4"),
        ("qoffset_z", "<f4"),
        ("srow_x", "<f4", (4,)),
        ("srow_y", "<f4", (4,)),
        ("srow_z", "<f4", (4,)),
        ("intent_name", "S16"),
        ("magic", "S4"),
    ]
)
assert HEADER_DTYPE.itemsize == NIFTI_HEADER_SIZE


def nifti_affine(vol: Volume) -> np.ndarray:
    """The RAS affine of the NIfTI voxel grid ``(column, row, slice)`` of ``vol``."""
    return ras_affine(vol.affine)


def ras_affine(affine: np.ndarray) -> np.ndarray:
    """The RAS affine of NIfTI's ``(column, row, slice)`` grid from a Volume's LPS ``(slice, row, column)`` affine."""
    return LPS_TO_RAS @ np.asarray(affine, dtype=np.float64) @ IJK_TO_SRC


def nifti_data(vol: Volume) -> np.ndarray:
    """``vol.array`` in NIfTI order: ``(C, R, S)``, ``(C, R, S, T)``; RGB volumes keep a trailing 3."""
    a = np.asarray(vol.array)
    if vol.rgb:
        spatial = a.ndim - 1
        if spatial == 4:  # (T, S, R, C, 3) -> (C, R, S, T, 3)
            return a.transpose(3, 2, 1, 0, 4)
        return a.transpose(2, 1, 0, 3)
    if a.ndim == 4:
        return a.transpose(3, 2, 1, 0)
    return a.transpose(2, 1, 0)


def to_nifti(vol: Volume) -> Any:
    """A ``nibabel.Nifti1Image`` of ``vol``: sform and qform code 1 (scanner), xyz in mm, t in s.

    Parameters
    ----------
    vol
        The volume; its values are stored exactly (:func:`stored_data`).

    Returns
    -------
    nibabel.Nifti1Image
        In memory, with the RAS affine of :func:`nifti_affine` (``(C, R, S)`` axes, as NIfTI orders
        them).

    Examples
    --------
    >>> img = volume.to_nifti(volume.load("ct"))
    >>> img.shape, img.header.get_xyzt_units()
    ((128, 128, 48), ('mm', 'sec'))
    """
    import nibabel as nib

    data = nifti_data(vol)
    affine = nifti_affine(vol)
    if vol.rgb:
        rgb_dtype = np.dtype([("R", "u1"), ("G", "u1"), ("B", "u1")])
        src = data if data.dtype == np.uint8 else (data >> 8).astype(np.uint8)
        data = np.ascontiguousarray(src).view(rgb_dtype)[..., 0]
    img = nib.Nifti1Image(data, affine)
    img.header.set_sform(affine, code=1)
    img.header.set_qform(affine, code=1)
    img.header.set_xyzt_units("mm", "sec")
    img.header["descrip"] = DESCRIPTION.encode("ascii")
    if vol.is_4d:
        interval = vol.meta.get("frame_interval_s")
        zooms = list(img.header.get_zooms())
        zooms[3] = float(interval) if interval else 1.0
        img.header.set_zooms(zooms)
    return img


# --- what an MR acquisition puts in the header -----------------------------------------------

#: NIfTI-1 slice_code values (nifti1.h NIFTI_SLICE_*) and the order each acquires slices
#: ``0..n-1`` in (the slice indices of the file, in acquisition order).
SLICE_CODES: tuple[tuple[int, str], ...] = (
    (1, "SEQ_INC"), (2, "SEQ_DEC"), (3, "ALT_INC"), (4, "ALT_DEC"), (5, "ALT_INC2"), (6, "ALT_DEC2"),
)

SLICE_TIME_TOLERANCE_S = 1e-4
"""Slice times (rounded to microseconds in the sidecar) that differ by less than this are equal."""

#: dim_info axes of NIfTI's (i, j, k) = (column, row, slice) grid: frequency, phase, slice axis
#: (1-based) by InPlanePhaseEncodingDirection, as dcm2niix sets them.
DIM_INFO_AXES = {"COL": (1, 2, 3), "ROW": (2, 1, 3)}


def slice_order(code: str, n: int) -> list[int]:
    """The slice indices ``0..n-1`` in the order NIfTI's slice_code ``code`` acquires them."""
    evens, odds = list(range(0, n, 2)), list(range(1, n, 2))
    orders = {
        "SEQ_INC": list(range(n)),
        "SEQ_DEC": list(range(n - 1, -1, -1)),
        "ALT_INC": evens + odds,
        "ALT_DEC": evens[::-1] + odds[::-1] if (n - 1) % 2 == 0 else odds[::-1] + evens[::-1],
        "ALT_INC2": odds + evens,
        "ALT_DEC2": odds[::-1] + evens[::-1] if (n - 1) % 2 == 0 else evens[::-1] + odds[::-1],
    }
    return orders[code]


@dataclass(frozen=True)
class AcquisitionHeader:
    """The NIfTI-1 header fields that describe an MR acquisition.

    ``time_step`` is pixdim[4] of a 4D file (the repetition time, seconds); ``freq_dim``,
    ``phase_dim``, ``slice_dim`` make dim_info (1-based axes of the file, 0 unknown); ``slice_code``,
    ``slice_start``, ``slice_end`` and ``slice_duration`` (seconds) say when each slice of a volume
    was acquired, when that is one of NIfTI's orders.
    """

    time_step: float | None = None
    freq_dim: int = 0
    phase_dim: int = 0
    slice_dim: int = 0
    slice_code: int = 0
    slice_start: int = 0
    slice_end: int = 0
    slice_duration: float = 0.0

    @property
    def dim_info(self) -> int:
        """NIfTI's packed dim_info byte: frequency axis, phase axis << 2, slice axis << 4."""
        return self.freq_dim | (self.phase_dim << 2) | (self.slice_dim << 4)


def slice_code_of(times: Sequence[float], n_slices: int) -> tuple[int, float] | None:
    """``(slice_code, slice_duration)`` when ``times`` (seconds, one per slice along the file's k
    axis) acquire the slices one at a time in one of NIfTI's orders, else None (multiband slices
    share a time; other orders have no code: SliceTiming alone says when each slice was acquired).
    ``slice_duration`` is the time between consecutive slices when they are evenly spaced, else 0
    (unknown: the order holds, the spacing does not)."""
    if len(times) != n_slices or n_slices < 2 or not all(math.isfinite(t) for t in times):
        return None
    order = sorted(range(n_slices), key=lambda k: times[k])
    steps = [times[order[i + 1]] - times[order[i]] for i in range(n_slices - 1)]
    if min(steps) <= SLICE_TIME_TOLERANCE_S:
        return None
    even = max(steps) - min(steps) <= SLICE_TIME_TOLERANCE_S
    for code, name in SLICE_CODES:
        if slice_order(name, n_slices) == order:
            return code, (sum(steps) / len(steps) if even else 0.0)
    return None


def acquisition_header(fields: Mapping[str, Any], n_slices: int) -> AcquisitionHeader:
    """The :class:`AcquisitionHeader` of a series from its sidecar fields (BIDS names:
    RepetitionTime, InPlanePhaseEncodingDirectionDICOM, SliceTiming in the file's slice order)."""
    tr = fields.get("RepetitionTime")
    time_step = float(tr) if isinstance(tr, (int, float)) and math.isfinite(tr) and tr > 0 else None
    freq, phase, slice_axis = DIM_INFO_AXES.get(str(fields.get("InPlanePhaseEncodingDirectionDICOM", "")), (0, 0, 0))
    code = slice_code_of([float(t) for t in fields.get("SliceTiming") or []], n_slices)
    if code is None:
        return AcquisitionHeader(time_step, freq, phase, slice_axis)
    return AcquisitionHeader(time_step, freq, phase, slice_axis, slice_code=code[0], slice_start=0,
                             slice_end=n_slices - 1, slice_duration=code[1])


# --- the header, packed by hand --------------------------------------------------------------


def quaternion(rotation: np.ndarray) -> tuple[np.ndarray, float]:
    """NIfTI qform parameters of a 3x3 direction matrix (unit columns).

    Returns ``((b, c, d), qfac)``: the quaternion's vector part (``a >= 0`` implied) and
    ``qfac = -1`` for a left-handed matrix (its third column is then negated first, as NIfTI
    specifies). A matrix that is not exactly orthogonal is replaced by the nearest rotation
    (polar decomposition), as nibabel does; the sform keeps the exact matrix.
    """
    r = np.asarray(rotation, dtype=np.float64).copy()
    qfac = 1.0
    if np.linalg.det(r) < 0:
        qfac = -1.0
        r[:, 2] = -r[:, 2]
    u, _, vt = np.linalg.svd(r)
    r = u @ vt
    # Bar-Itzhack: the quaternion is the eigenvector of the largest eigenvalue of K.
    (xx, yx, zx), (xy, yy, zy), (xz, yz, zz) = r.tolist()
    k = np.array(
        [
            [xx - yy - zz, 0, 0, 0],
            [yx + xy, yy - xx - zz, 0, 0],
            [zx + xz, zy + yz, zz - xx - yy, 0],
            [yz - zy, zx - xz, xy - yx, xx + yy + zz],
        ]
    ) / 3.0
    values, vectors = np.linalg.eigh(k)
    q = vectors[[3, 0, 1, 2], int(np.argmax(values))]  # (w, x, y, z)
    if q[0] < 0:
        q = -q
    return q[1:], qfac


ACQUISITION_FIELDS = ("dim_info", "slice_code", "slice_start", "slice_end", "slice_duration")
"""Header fields an :class:`AcquisitionHeader` gives as they are written."""


def _datatype(shape: tuple[int, ...], dtype: np.dtype | str, rgb: bool) -> tuple[int, int]:
    """``(datatype code, bitpix)`` of the voxels; a dtype or shape NIfTI-1 cannot hold is refused."""
    if rgb:
        code, bitpix = RGB24
    else:
        key = np.dtype(dtype).newbyteorder("<").str[1:]
        if key not in NIFTI_DTYPES:
            raise ValueError(f"NIfTI-1 cannot store {np.dtype(dtype)} voxels")
        code, bitpix = NIFTI_DTYPES[key]
    if not 3 <= len(shape) <= 7:
        raise ValueError(f"NIfTI data must have 3 to 7 dimensions, got shape {shape}")
    if max(shape) > NIFTI1_MAX_DIM:
        raise UnsupportedDicomError(
            f"NIfTI-1 dimensions are at most {NIFTI1_MAX_DIM}, this volume is {'x'.join(map(str, shape))}; "
            "split it (--series) or use another output format"
        )
    return code, bitpix


def nifti_header(
    shape: tuple[int, ...],
    dtype: np.dtype | str,
    affine: np.ndarray,
    *,
    rgb: bool = False,
    time_step: float | None = None,
    slope: float = 1.0,
    inter: float = 0.0,
    description: str | None = None,
    acquisition: AcquisitionHeader | None = None,
) -> bytes:
    """The 348-byte NIfTI-1 header plus the 4 extension bytes of a ``.nii`` (352 bytes).

    Parameters
    ----------
    shape
        NIfTI data shape ``(I, J, K)`` or ``(I, J, K, T)`` (without the RGB axis).
    dtype
        numpy dtype of the stored voxels (uint8 for RGB).
    affine
        float (4, 4) RAS affine of ``(i, j, k)``; written as sform and qform, both code 1.
    time_step
        Seconds between frames (pixdim[4]) for 4D data.
    description
        ``descrip`` (80 bytes): :data:`DESCRIPTION` by default.
    slope, inter
        ``scl_slope``/``scl_inter``: readers return ``stored * slope + inter``.
    acquisition
        The MR acquisition's fields (:func:`acquisition_header`): its repetition time is pixdim[4]
        (instead of ``time_step``; 3D files get it too, as dcm2niix writes them), its dim_info and
        slice timing fields are written as they are.
    """
    code, bitpix = _datatype(shape, dtype, rgb)
    a = np.asarray(affine, dtype=np.float64)
    zooms = np.linalg.norm(a[:3, :3], axis=0)
    (b, c, d), qfac = quaternion(a[:3, :3] / zooms)
    h = np.zeros((), dtype=HEADER_DTYPE)
    h["sizeof_hdr"] = NIFTI_HEADER_SIZE
    h["regular"] = b"r"
    h["dim"][0] = len(shape)
    h["dim"][1 : len(shape) + 1] = shape
    h["dim"][len(shape) + 1 :] = 1
    h["datatype"] = code
    h["bitpix"] = bitpix
    pixdim = np.ones(8)
    pixdim[0] = qfac
    pixdim[1:4] = zooms
    if acquisition is not None and acquisition.time_step:
        pixdim[4] = acquisition.time_step  # the repetition time, in 3D files too (as dcm2niix writes it)
    elif len(shape) > 3:
        pixdim[4] = time_step if time_step and math.isfinite(time_step) and time_step > 0 else 1.0
    h["pixdim"] = pixdim
    h["vox_offset"] = VOX_OFFSET
    h["scl_slope"] = slope
    h["scl_inter"] = inter
    h["xyzt_units"] = UNITS_MM_SEC
    if acquisition is not None:
        for field in ACQUISITION_FIELDS:
            h[field] = getattr(acquisition, field)
    text = DESCRIPTION if description is None else description
    h["descrip"] = text.encode("ascii", "replace")[:79]
    h["qform_code"] = XFORM_SCANNER
    h["sform_code"] = XFORM_SCANNER
    h["quatern_b"], h["quatern_c"], h["quatern_d"] = b, c, d
    h["qoffset_x"], h["qoffset_y"], h["qoffset_z"] = a[:3, 3]
    h["srow_x"], h["srow_y"], h["srow_z"] = a[0], a[1], a[2]
    h["magic"] = b"n+1"
    return h.tobytes() + b"\x00\x00\x00\x00"


# --- voxel bytes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredData:
    """How a Volume's values go to disk: the array to write (C order, NIfTI's layout) and scaling.

    ``array`` has the Volume's index order ``(T, S, R, C[, 3])`` whose C-order bytes are NIfTI's
    ``(C, R, S, T)`` Fortran order. ``slope``/``inter`` are NIfTI's ``scl_slope``/``scl_inter``.
    ``convert`` (optional) maps a chunk of ``array`` to the stored dtype on the fly.
    """

    array: np.ndarray
    dtype: np.dtype
    slope: float = 1.0
    inter: float = 0.0
    rgb: bool = False


def stored_data(vol: Volume, *, rescale: tuple[float, float] | None = None) -> StoredData:
    """Decide the stored dtype so that readers get the modality values back exactly.

    * integers stay integers; uint16 whose values fit int16 becomes int16 (a free view; FSL and
      SPM prefer signed types), as dcm2niix does;
    * RGB stays RGB (uint16 colour is reduced to 8 bits: NIfTI's RGB24);
    * float32 volumes from a uniform rescale (``rescale = (slope, intercept)`` of the series) are
      stored as the original integers with ``scl_slope``/``scl_inter`` when that is exact, which
      halves the file; otherwise float32 as is.
    """
    a = np.asarray(vol.array)
    if not a.dtype.isnative:
        a = a.astype(a.dtype.newbyteorder("="))
    if vol.rgb:
        return StoredData(a, np.dtype(np.uint8), rgb=True)
    if a.dtype == np.uint16 and a.size and narrow_unsigned(a.dtype, int(a.max())) == np.int16:
        return StoredData(a.view(np.int16), np.dtype(np.int16))
    if a.dtype == np.float32 and rescale is not None:
        scaled = _as_scaled_integers(a, *rescale)
        if scaled is not None:
            return scaled
    if a.dtype == np.bool_:
        return StoredData(a, np.dtype(np.uint8))
    return StoredData(a, a.dtype)


def narrow_unsigned(dtype: np.dtype, vmax: int) -> np.dtype:
    """uint16 whose largest value ``vmax`` fits int16 is stored as int16 (FSL and SPM prefer signed
    types, dcm2niix does the same); every other type as it is."""
    if np.dtype(dtype) == np.uint16 and vmax <= np.iinfo(np.int16).max:
        return np.dtype(np.int16)
    return np.dtype(dtype)


def scaled_integer_dtype(vmin: float, vmax: float, slope: float, inter: float) -> np.dtype | None:
    """int16 (else uint16) when ``(v - inter) / slope`` of values in ``[vmin, vmax]`` fits it, else None."""
    if not (math.isfinite(slope) and math.isfinite(inter)) or slope == 0:
        return None
    lo = (float(vmin) - inter) / slope
    hi = (float(vmax) - inter) / slope
    lo, hi = min(lo, hi), max(lo, hi)
    for dtype in (np.int16, np.uint16):
        info = np.iinfo(dtype)
        if info.min <= round(lo) and round(hi) <= info.max:
            return np.dtype(dtype)
    return None


def scale_to_integers(values: np.ndarray, slope: float, inter: float) -> np.ndarray | None:
    """float64 integers ``r`` with ``float32(r) * slope + inter == values`` exactly (float32), or None.

    ``values`` is float32 (any shape); the result has its shape.
    """
    r = values.astype(np.float64)  # the same IEEE operations as ``rint((v - inter) / slope)``, in place
    r -= inter
    r /= slope
    np.rint(r, out=r)
    back = r.astype(np.float32)
    back *= np.float32(slope)
    back += np.float32(inter)
    return r if np.array_equal(back, values) else None


def _as_scaled_integers(a: np.ndarray, slope: float, inter: float) -> StoredData | None:
    """``a`` as int16 (or uint16) with ``a == stored * slope + inter`` exactly in float32, or None."""
    if not a.size:
        return None
    dtype = scaled_integer_dtype(float(a.min()), float(a.max()), slope, inter)
    if dtype is None:
        return None
    raw = np.empty(a.shape, dtype=dtype)
    flat_a, flat_raw = a.reshape(-1), raw.reshape(-1)
    step = WRITE_CHUNK_BYTES // 4
    for start in range(0, flat_a.size, step):
        r = scale_to_integers(flat_a[start : start + step], slope, inter)
        if r is None:
            return None
        flat_raw[start : start + step] = r
    return StoredData(raw, np.dtype(dtype), slope=float(slope), inter=float(inter))


def iter_chunks(data: StoredData, chunk_bytes: int = WRITE_CHUNK_BYTES) -> Iterator[memoryview]:
    """The stored voxel bytes of ``data`` in order, ``chunk_bytes`` at a time (no full copy)."""
    a = data.array
    if a.ndim < 3:
        a = a.reshape((1,) * (3 - a.ndim) + a.shape)
    shift = 8 * (a.dtype.itemsize - 1) if data.rgb and a.dtype != np.uint8 else 0
    if a.flags.c_contiguous:  # a view: blocks of consecutive 2D planes
        planes: Any = a.reshape(-1, *a.shape[-2:])
        per_item = max(1, planes[0].size * data.dtype.itemsize)
        step = max(1, chunk_bytes // per_item)
        blocks: Iterator[np.ndarray] = (planes[i : i + step] for i in range(0, planes.shape[0], step))
    else:  # a strided view: one 2D plane at a time, made contiguous
        blocks = (a[idx] for idx in np.ndindex(*a.shape[:-2]))
    for block in blocks:
        if shift:
            block = (block >> shift).astype(np.uint8)
        elif block.dtype != data.dtype:
            block = block.astype(data.dtype)
        elif not block.flags.c_contiguous:
            block = np.ascontiguousarray(block)
        if block.dtype.byteorder == ">":
            block = block.astype(block.dtype.newbyteorder("<"))
        yield memoryview(block).cast("B")


PIECE_BYTES = 2**20
"""Bytes handed to the gzip compressor at a time. Fixed, whatever the producer's chunks, so the
in-memory and the streaming writers produce the same compressed bytes (ISA-L's output depends on
how its input is split)."""


class NiftiSink:
    """Where NIfTI bytes go: a plain file, or one ISA-L gzip stream (``threads > 1``: compressed in
    parallel blocks, still one standard gzip member). A context manager; :meth:`write` takes any
    buffer. Compressed input is re-cut into :data:`PIECE_BYTES` pieces, so the output depends only
    on the bytes written, not on how they were split.
    """

    def __init__(self, path: Path, *, compress: bool, level: int = DEFAULT_GZIP_LEVEL, threads: int = 1) -> None:
        self.path, self.compress, self.level, self.threads = Path(path), compress, level, threads
        self._fh: Any = None
        self._comp: Any = None
        self._blocks: Any = None
        self._buf = bytearray(PIECE_BYTES) if compress else bytearray()
        self._fill = 0

    def __enter__(self) -> NiftiSink:
        if self.compress and self.threads > 1:
            from isal import igzip_threaded

            self._fh = igzip_threaded.open(self.path, "wb", compresslevel=self.level, threads=self.threads,
                                           block_size=PIECE_BYTES)
            # pieces go to the threaded writer itself, whose copy of each is then the only one (its
            # BufferedWriter would copy each once more; it writes the same blocks)
            self._blocks = self._fh.raw
        else:
            self._fh = open(self.path, "wb")  # noqa: SIM115 - closed in __exit__
            if self.compress:
                from isal import isal_zlib

                gzip_wbits = 16 + 15
                self._comp = isal_zlib.compressobj(self.level, isal_zlib.DEFLATED, gzip_wbits)
        return self

    def _emit(self, piece: memoryview | bytes) -> None:
        if self._blocks is not None:
            self._blocks.write(piece)
            return
        if self._comp is None:
            self._fh.write(piece)
            return
        out = self._comp.compress(piece)
        if out:
            self._fh.write(out)

    def write(self, data: Any) -> None:
        """Append ``data`` (bytes, memoryview, or a C-contiguous array's buffer)."""
        mv = memoryview(data).cast("B")
        if not self.compress:
            self._fh.write(mv)
            return
        buf = memoryview(self._buf)
        if self._fill and self._blocks is not None and self._fill + len(mv) >= PIECE_BYTES:
            take = PIECE_BYTES - self._fill  # the piece made by one copy, which the writer keeps as it is
            self._emit(b"".join((buf[: self._fill], mv[:take])))
            self._fill = 0
            mv = mv[take:]
        if self._fill:
            take = min(len(mv), PIECE_BYTES - self._fill)
            buf[self._fill : self._fill + take] = mv[:take]
            self._fill += take
            mv = mv[take:]
            if self._fill < PIECE_BYTES:
                return
            self._emit(buf)
            self._fill = 0
        whole = len(mv) - len(mv) % PIECE_BYTES
        for start in range(0, whole, PIECE_BYTES):
            self._emit(mv[start : start + PIECE_BYTES])
        rest = len(mv) - whole
        if rest:
            buf[:rest] = mv[whole:]
            self._fill = rest

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:  # the file is discarded: stop, never wait for its last blocks
            self.abort()
            return
        try:
            if self._fill:
                self._emit(memoryview(self._buf)[: self._fill])
                self._fill = 0
            if self._comp is not None:
                self._fh.write(self._comp.flush())
            self._fh.flush()  # a threaded writer waits here for its blocks: an interrupt aborts it
            self._fh.close()
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Close without finishing the file (it is discarded): a threaded gzip writer's threads are
        told to stop and their queues emptied, never joined (:func:`abort_threaded_gzip`)."""
        if self._fh is None:
            return
        if self.compress and self.threads > 1:
            abort_threaded_gzip(self._fh)
        else:
            with contextlib.suppress(OSError, ValueError):
                self._fh.close()


ABORT_TIMEOUT_S = 0.5
"""Seconds an aborted threaded gzip writer is given for its threads to notice and return."""


def abort_threaded_gzip(fh: Any, timeout: float = ABORT_TIMEOUT_S) -> None:
    """Stop an ``isal.igzip_threaded`` writer without waiting for what it still holds.

    Its ``close()`` waits until every queued block is compressed and written, and joins its
    threads; after Ctrl-C that can take long, or forever when a compressing thread waits on a
    queue its writing thread left. Here its threads are told to stop (``running`` off, an error set
    so no further block is written), and their queues are emptied and given sentinels until the
    threads have returned or ``timeout`` has passed; then the file is closed. The bytes written
    are a truncated stream: the caller removes the file.
    """
    writer = getattr(fh, "raw", None)
    inputs = list(getattr(writer, "input_queues", ()))
    outputs = list(getattr(writer, "output_queues", ()))
    if writer is None or not inputs:
        with contextlib.suppress(OSError, ValueError):
            fh.close()
        return
    writer.running = False
    with writer.lock:
        if writer.exception is None:
            writer.exception = OSError(errno.ECANCELED, "write aborted")
    threads = [t for t in (*writer.compression_workers, writer.output_worker) if t is not None]
    end = time.monotonic() + timeout
    while any(t.is_alive() for t in threads) and time.monotonic() < end:
        for q in inputs + outputs:  # a thread blocked on a full queue gets room
            with contextlib.suppress(queue.Empty, ValueError):
                while True:
                    q.get_nowait()
                    q.task_done()
        for q in inputs:  # a compressing thread waiting for a block gets the sentinel that ends it
            with contextlib.suppress(queue.Full):
                q.put_nowait(None)
        time.sleep(0.002)  # (the writing thread ends by itself: not running, its queue empty)
    writer._closed = True  # its close() must not wait for blocks now
    with contextlib.suppress(OSError, ValueError):
        fh.close()
    with contextlib.suppress(OSError, ValueError):
        writer.raw.close()


def write_nifti_file(
    path: Path,
    header: bytes,
    data: StoredData,
    *,
    compress: bool,
    level: int = DEFAULT_GZIP_LEVEL,
    threads: int = 1,
) -> None:
    """Write header and voxels to ``path`` (not atomic: :func:`write_nifti` wraps this).

    With ``compress`` a single gzip member is written by ISA-L; ``threads > 1`` compresses blocks
    in parallel (the output is still one standard gzip stream).
    """
    with NiftiSink(path, compress=compress, level=level, threads=threads) as sink:
        sink.write(header)
        for chunk in iter_chunks(data):
            sink.write(chunk)


def nifti_suffix(path: str | os.PathLike[str]) -> str:
    """``.nii`` or ``.nii.gz`` from ``path``'s name; ValueError for anything else."""
    name = Path(path).name.lower()
    if name.endswith(".nii.gz"):
        return ".nii.gz"
    if name.endswith(".nii"):
        return ".nii"
    raise ValueError(f"{path}: a NIfTI file name ends in .nii or .nii.gz")


def write_nifti(
    vol: Volume,
    path: str | os.PathLike[str],
    *,
    force: bool = False,
    level: int = DEFAULT_GZIP_LEVEL,
    threads: int = 1,
    rescale: tuple[float, float] | None = None,
    description: str | None = None,
    acquisition: AcquisitionHeader | None = None,
) -> Path:
    """Write ``vol`` as ``.nii`` or ``.nii.gz`` (by extension), atomically; returns the path.

    The RAS affine (:func:`nifti_affine`) is written as sform and qform with code 1; 4D volumes
    get the repetition time of ``acquisition`` (:func:`acquisition_header`), else
    ``meta["frame_interval_s"]``, in pixdim[4], and ``acquisition``'s dim_info and slice timing
    fields. Values are stored exactly (see
    :func:`stored_data`): ``nibabel.load(path).get_fdata()`` returns the Volume's values.

    Parameters
    ----------
    vol
        The volume.
    path
        A ``.nii`` or ``.nii.gz`` file.
    force
        Replace an existing file.
    level
        ISA-L gzip level (0-3) of a ``.nii.gz``.
    threads
        Compression threads (the output is one standard gzip stream either way).
    rescale
        The series' uniform ``(slope, intercept)``: float32 values that are exactly that rescale of
        integers are stored as those integers with ``scl_slope``/``scl_inter`` (:func:`stored_data`).
    description
        The header's ``descrip`` (80 bytes).
    acquisition
        The MR acquisition's header fields (:func:`acquisition_header`).

    Returns
    -------
    pathlib.Path
        ``path``, in place only once the file is whole (written beside it, then renamed).

    Raises
    ------
    OutputExistsError
        ``path`` exists and ``force`` is false.

    Examples
    --------
    >>> volume.write_nifti(volume.load("ct"), "ct.nii.gz")
    PosixPath('ct.nii.gz')
    >>> import nibabel
    >>> float(nibabel.load("ct.nii.gz").get_fdata().max())  # the marker's 2000 HU, exactly
    2000.0
    """
    path = Path(path)
    suffix = nifti_suffix(path)
    data = stored_data(vol, rescale=rescale)
    shape = tuple(reversed(vol.array.shape[: vol.array.ndim - (1 if vol.rgb else 0)]))
    header = nifti_header(
        shape,
        data.dtype,
        nifti_affine(vol),
        rgb=data.rgb,
        time_step=vol.meta.get("frame_interval_s") if vol.is_4d else None,
        slope=data.slope,
        inter=data.inter,
        description=description,
        acquisition=acquisition,
    )
    with atomic_output(path, force=force, suffix=suffix) as tmp:
        write_nifti_file(tmp, header, data, compress=suffix == ".nii.gz", level=level, threads=threads)
    return path


def nifti_grid(path: str | os.PathLike[str]) -> tuple[np.ndarray, tuple[int, int, int]]:
    """The voxel grid of a NIfTI file as a Volume's: LPS ``(slice, row, column)`` affine and
    ``(S, R, C)`` shape (NIfTI's ``(i, j, k)`` grid with RAS affine ``N`` is
    ``LPS_TO_RAS @ N @ IJK_TO_SRC^-1``).

    Raises
    ------
    UsageError
        Not a readable NIfTI image.
    """
    import nibabel as nib

    try:
        img = nib.load(str(path))
    except Exception as exc:  # noqa: BLE001 - nibabel raises many types for bad files
        raise UsageError(f"{path}: not a readable NIfTI image ({type(exc).__name__}: {exc})") from None
    shape = tuple(int(v) for v in img.shape[:3]) + (1,) * max(0, 3 - len(img.shape))
    affine = LPS_TO_RAS @ np.asarray(img.affine, float) @ np.linalg.inv(IJK_TO_SRC)
    return affine, (shape[2], shape[1], shape[0])

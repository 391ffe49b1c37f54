"""Write a stack source to NIfTI slab by slab: memory for a few slabs of slices, not the series.

NIfTI stores ``(i, j, k, t)`` with ``i`` fastest, which is the order of a source's images
(frame-major, slice, row, column): the voxel bytes are the images' decoded values one after the
other. :func:`write_nifti_stack` writes the header, then decodes the images in slabs of
:data:`SLAB_BYTES` (the next slab is decoded on a thread while the current one is compressed) and
appends each slab's stored bytes through the same :class:`~volume.io.nifti.NiftiSink` as the
in-memory writer, inside :func:`~volume.io.atomic.atomic_output`.

The output is byte for byte the file :func:`~volume.io.nifti.write_nifti` writes for the loaded
Volume. Some of its decisions depend on values, not headers: an integer rescale is stored in the
smallest of int16/int32/int64 holding the values, uint16 becomes int16 when the values fit, a
uniform fractional rescale keeps the stored integers with ``scl_slope``/``scl_inter`` when that is
exact. The streaming writer starts with the narrowest choice (by far the most common one: CT in
HU is int16) and checks every slab against it; a slab that does not fit it ends the writing, the
remaining slabs are only scanned for their value range, and the file is written again with the
choice the whole series' values make (two decodes instead of one, only for such series).

Sources whose gantry tilt or slice gaps are resampled need the whole series in memory: see
:meth:`volume.sources.StackSource.stream_problem`. Everything here takes a
:class:`~volume.sources.StackSource`: this module knows NIfTI, not DICOM.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import NotAVolumeError, ResourceLimitError
from ..sources import FLOAT, RAW, RGB, StackSource, human_bytes, rescaled_integer_dtype, shell
from ..volume import Volume
from .atomic import atomic_output
from .nifti import (
    DEFAULT_GZIP_LEVEL,
    SCALE_CHUNK_VALUES,
    AcquisitionHeader,
    NiftiSink,
    narrow_unsigned,
    nifti_header,
    nifti_suffix,
    ras_affine,
    scale_to_integers,
    scaled_integer_dtype,
    write_nifti,
)

SLAB_BYTES = 2 * 2**20
"""Decoded bytes per slab (4 slices of 512x512 int16) by default; see :data:`SLABS_IN_MEMORY`.
Measured (docs/benchmarks.md, issue 24): 16 MiB slabs peaked 23-29 MiB higher on the 300-slice CT
and the 544-image Philips DWI, and took more system time (fresh pages for every slab), for no
less CPU."""

SLABS_IN_MEMORY = 3
"""Slabs alive at a time while streaming: the one being stored, its stored copy, the next one decoding."""

RESAMPLE_COPIES = 2
"""A stack whose tilt or gaps are resampled is in memory twice: decoded, and resampled."""

MEMORY_BUDGET_FRACTION = 0.5
"""The default memory budget of a conversion: this fraction of the memory available now."""


# --- when to stream ------------------------------------------------------------------------------


def available_memory() -> int:
    """Bytes of memory available for new allocations (Linux ``MemAvailable``; else free physical pages)."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return 8 * 2**30


def memory_budget(max_bytes: int | None = None) -> int:
    """``max_bytes``, or by default :data:`MEMORY_BUDGET_FRACTION` of :func:`available_memory`."""
    return int(max_bytes) if max_bytes is not None else int(available_memory() * MEMORY_BUDGET_FRACTION)


def stream_problem(source: StackSource) -> str:
    """Why ``source`` cannot be written slab by slab ('' when it can): gantry tilt correction and gap
    filling resample across slices, they need the whole series."""
    return source.stream_problem()


def in_memory_bytes(source: StackSource) -> int:
    """Bytes of the decoded series (what :func:`volume.load` allocates for its pixels)."""
    return source.nbytes()


def should_stream(source: StackSource, max_bytes: int | None = None, *, allow_gaps: bool = False) -> bool:
    """How ``volume convert`` writes ``source``: True to stream it, False to load it whole.

    Every source that can be streamed is (it needs less memory and is faster); the others are
    loaded whole when :data:`RESAMPLE_COPIES` times their decoded size fits ``max_bytes`` (default:
    :func:`memory_budget`). A source with gaps and no ``allow_gaps``, or one that cannot be loaded at
    all, goes to the loader, which refuses it with its message.

    Raises
    ------
    ResourceLimitError
        The source cannot be streamed and does not fit the budget (one line: why, what to do), or
        even one image per slab does not fit it.
    """
    if source.problem:
        return False
    problem = source.stream_problem()
    if not problem:
        stream_slab_bytes(source, max_bytes)  # refuses absurd image sizes
        return True
    if source.needs_allow_gaps() and not allow_gaps:
        return False
    need = RESAMPLE_COPIES * in_memory_bytes(source)
    budget = memory_budget(max_bytes)
    if need > budget:
        raise ResourceLimitError(
            f"series {source.id}: {problem}, which needs the whole series in memory ({human_bytes(need)} with its "
            f"resampled copy), over the {human_bytes(budget)} budget; raise it with --max-memory "
            f"(e.g. --max-memory {_size_option(need)}) if the machine has that much free, or convert this "
            "series on a machine with more memory"
        )
    return False


def _size_option(n: int) -> str:
    """A ``--max-memory`` value of at least ``n`` bytes: ``8K``, ``300M``, ``6G``."""
    for unit, size in (("G", 2**30), ("M", 2**20)):
        if n >= size:
            return f"{-(-n // size)}{unit}"
    return f"{-(-n // 2**10)}K"


def stream_slab_bytes(source: StackSource, max_bytes: int | None = None) -> int:
    """Decoded bytes per slab when streaming ``source`` within ``max_bytes`` (default :func:`memory_budget`).

    :data:`SLABS_IN_MEMORY` slabs are alive at a time, so a slab is at most that fraction of the
    budget and at least one image.

    Raises
    ------
    ResourceLimitError
        Even one image per slab does not fit (an absurd Rows x Columns in a header, or a tiny budget).
    """
    per_frame = max(1, in_memory_bytes(source) // max(1, source.n_images))
    budget = memory_budget(max_bytes)
    if SLABS_IN_MEMORY * per_frame > budget:
        rows, cols = source.shape[-2:]
        raise ResourceLimitError(
            f"series {source.id}: images of {rows}x{cols} take {human_bytes(per_frame)} each, streaming holds "
            f"{SLABS_IN_MEMORY} ({human_bytes(SLABS_IN_MEMORY * per_frame)}), over the {human_bytes(budget)} limit; "
            "raise it with --max-memory (max_bytes=) if this is real"
        )
    return max(per_frame, min(SLAB_BYTES, budget // SLABS_IN_MEMORY))


# --- how values are stored -------------------------------------------------------------------------


@dataclass(frozen=True)
class Storage:
    """How decoded values become stored voxels: the NIfTI dtype and ``scl_slope``/``scl_inter``.

    ``kind``: ``cast`` (values as they are, in ``dtype``), ``scaled`` (the stored integers ``r`` of
    ``value = r * slope + inter``), ``rgb`` (uint8 triplets; 16-bit colour keeps its high byte).
    """

    kind: str
    dtype: np.dtype
    slope: float = 1.0
    inter: float = 0.0


@dataclass
class _Stats:
    """Value ranges seen so far: raw (stored) range and intercept per frame, decoded range, exactness."""

    lo: list[np.ndarray] = field(default_factory=list)
    hi: list[np.ndarray] = field(default_factory=list)
    inters: list[np.ndarray] = field(default_factory=list)
    vmin: float = np.inf
    vmax: float = -np.inf
    exact: bool = True


def _family(source: StackSource, rescale: tuple[float, float] | None) -> str:
    """``rgb``, ``float`` (varying or fractional rescale, no uniform pair), ``scaled`` (a uniform
    fractional pair), ``rescaled`` (integer slope and intercepts), ``raw`` (no rescale)."""
    kind = source.values.kind
    if kind == FLOAT:
        return "scaled" if rescale is not None else "float"
    return kind


def decide(source: StackSource, rescale: tuple[float, float] | None, stats: _Stats | None = None) -> Storage:
    """The storage :func:`~volume.io.nifti.write_nifti` chooses for the loaded source.

    With ``stats`` None: the narrowest choice the headers allow (checked slab by slab while
    writing); with the whole series' ``stats``: the exact choice.
    """
    family = _family(source, rescale)
    if family == RGB:
        return Storage("rgb", np.dtype(np.uint8))
    if family == "float":
        return Storage("cast", np.dtype(np.float32))
    if family == "scaled":
        assert rescale is not None
        slope, inter = float(rescale[0]), float(rescale[1])
        if stats is None:
            return Storage("scaled", np.dtype(np.int16), slope, inter)
        dtype = scaled_integer_dtype(stats.vmin, stats.vmax, slope, inter) if stats.exact else None
        return Storage("cast", np.dtype(np.float32)) if dtype is None else Storage("scaled", dtype, slope, inter)
    raw = source.values.stored
    if family == RAW:
        if raw != np.uint16:
            return Storage("cast", raw)
        if stats is None:
            return Storage("cast", np.dtype(np.int16))
        return Storage("cast", narrow_unsigned(raw, int(max((h.max() for h in stats.hi), default=0))))
    if stats is None:
        return Storage("cast", np.dtype(np.int16))
    lo, hi, inters = (np.concatenate(x) for x in (stats.lo, stats.hi, stats.inters))
    return Storage("cast", rescaled_integer_dtype(lo, hi, source.values.slope, inters, where=f"series {source.id}"))


def _collect(lo: np.ndarray, hi: np.ndarray, inters: np.ndarray, values: np.ndarray, storage: Storage,
             stats: _Stats) -> None:
    """Add a slab's raw range per frame (and its decoded range under a fractional rescale) to ``stats``."""
    stats.lo.append(lo)
    stats.hi.append(hi)
    stats.inters.append(inters)
    if storage.kind == "scaled":
        stats.vmin = min(stats.vmin, float(values.min()))
        stats.vmax = max(stats.vmax, float(values.max()))


def _store(values: np.ndarray, lo: np.ndarray, hi: np.ndarray, inters: np.ndarray, storage: Storage,
           family: str, source: StackSource, stats: _Stats) -> np.ndarray | None:
    """A slab's stored voxels (C order, little-endian), or None when they do not fit ``storage``
    (the series needs another choice). Records exactness of a fractional rescale in ``stats``."""
    little = storage.dtype.newbyteorder("<")
    if storage.kind == "rgb":
        if values.dtype != np.uint8:
            values = values >> (8 * (values.dtype.itemsize - 1))
        return np.ascontiguousarray(values, dtype=np.uint8)
    if storage.kind == "scaled":
        out = np.empty(values.shape, dtype=little)
        flat_out = out.reshape(-1)
        info = np.iinfo(storage.dtype)
        fits = True
        for start, chunk in _value_chunks(values):  # float64 temporaries of SCALE_CHUNK_VALUES values
            r = scale_to_integers(chunk, storage.slope, storage.inter)
            if r is None:
                stats.exact = False
                return None
            if fits and (r.min() < info.min or r.max() > info.max):
                fits = False  # go on checking exactness: the final choice needs it
            if fits:
                flat_out[start : start + r.size] = r
        return out if fits else None
    if family == "raw" and values.dtype == np.uint16 and storage.dtype == np.int16 and hi.size:
        if int(hi.max()) > np.iinfo(np.int16).max:
            return None
    elif family == "rescaled" and lo.size:
        need = rescaled_integer_dtype(lo, hi, source.values.slope, inters, where=f"series {source.id}")
        if need.itemsize > storage.dtype.itemsize:
            return None
    return np.ascontiguousarray(values, dtype=little)


def _check_exact(values: np.ndarray, storage: Storage, stats: _Stats) -> None:
    """Exactness of a fractional rescale over a slab that is not written."""
    if storage.kind == "scaled" and stats.exact:
        for _, chunk in _value_chunks(values):
            if scale_to_integers(chunk, storage.slope, storage.inter) is None:
                stats.exact = False
                return


def _value_chunks(values: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """``(offset, flat values)`` of consecutive pieces of :data:`~volume.io.nifti.SCALE_CHUNK_VALUES`
    values of a slab (C order)."""
    flat = values.reshape(-1)
    for start in range(0, flat.size, SCALE_CHUNK_VALUES):
        yield start, flat[start : start + SCALE_CHUNK_VALUES]


# --- the writer --------------------------------------------------------------------------------


#: ``(values or stored integers, raw lo, raw hi, True when they are the stored integers)`` of images
#: ``start:stop``: what a slab reader returns.
Slab = tuple[np.ndarray, np.ndarray, np.ndarray, bool]


def _slabs(source: StackSource, per_slab: int, progress: Callable[[int], None] | None,
           read: Callable[..., Slab] | None = None) -> Iterator[tuple[int, Slab]]:
    """``(start, slab)`` of consecutive slabs read by ``read`` (default: ``source.read_slab``, values);
    the next slab decodes on a thread (one slab, the whole stack: read here, no thread to start)."""
    from concurrent.futures import ThreadPoolExecutor

    read = read or _reader(source, None)
    n = source.n_images
    starts = list(range(0, n, per_slab))
    if len(starts) == 1:
        yield 0, read(0, n, progress=progress)
        return
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="volume-slab")
    try:
        future = pool.submit(read, 0, min(per_slab, n), progress=progress)
        for k, start in enumerate(starts):
            slab = future.result()
            if k + 1 < len(starts):
                nxt = starts[k + 1]
                future = pool.submit(read, nxt, min(nxt + per_slab, n), progress=progress)
            yield start, slab
            del slab
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _reader(source: StackSource, storage: Storage | None) -> Callable[..., Slab]:
    """How slabs are read for ``storage``: the stored integers when it keeps a uniform fractional
    rescale's integers (``scaled``), the source's rescale is that one and the source can give them
    (an optional ``read_stored_slab``, as the DICOM source's); else values."""
    stored = getattr(source, "read_stored_slab", None)
    rule = source.values
    usable = (storage is not None and storage.kind == "scaled" and stored is not None and rule.kind == FLOAT
              and rule.rescale is not None
              and (float(rule.rescale[0]), float(rule.rescale[1])) == (storage.slope, storage.inter))

    def read(start: int, stop: int, *, progress: Callable[[int], None] | None = None) -> Slab:
        if usable:
            got = stored(start, stop, progress=progress)  # type: ignore[misc]
            if got is not None:
                return got[0], got[1], got[2], True
        values, lo, hi = source.read_slab(start, stop, progress=progress)
        return values, lo, hi, False

    return read


def _rescaled(stored: np.ndarray, slope: float, inter: float) -> np.ndarray:
    """The float32 values of stored integers under ``value = stored * slope + inter``, computed as
    the DICOM source's ``read_slab`` computes them (float32 product, then float32 sum)."""
    values = np.multiply(stored, slope, dtype=np.float32, casting="unsafe")
    values += np.float32(inter)
    return values


def _every_integer_exact(lo: float, hi: float, storage: Storage, most: int) -> tuple[float, float] | None:
    """When every integer ``r`` from ``lo`` to ``hi`` (at most ``most`` of them) is the integer
    :func:`~volume.io.nifti.scale_to_integers` finds for its value ``r * slope + inter``: the values of
    ``lo`` and ``hi`` (the least and greatest value: the rescale is monotonic); else None.

    Then a slab of stored integers in that range is stored as they are, exactly as the integers
    recovered from its values one by one would be."""
    if not (np.isfinite(lo) and np.isfinite(hi)) or hi - lo + 1 > most:
        return None
    stored = np.arange(int(lo), int(hi) + 1, dtype=np.int64)
    values = _rescaled(stored, storage.slope, storage.inter)
    back = scale_to_integers(values, storage.slope, storage.inter)
    if back is None or not np.array_equal(back, stored):
        return None
    ends = float(values[0]), float(values[-1])
    return min(ends), max(ends)


def _write_pass(tmp: Path, source: StackSource, header: Callable[[Storage], bytes], storage: Storage, family: str,
                per_slab: int, *, compress: bool, level: int, threads: int,
                progress: Callable[[int], None] | None) -> _Stats | None:
    """Write the file with ``storage``; None when every slab fitted, else the whole series' stats."""
    stats = _Stats()
    writing = True
    intercepts = source.values.intercepts
    inters_all = intercepts if intercepts is not None else np.zeros(source.n_images)
    with NiftiSink(tmp, compress=compress, level=level, threads=threads) as sink:
        sink.write(header(storage))
        for start, (values, lo, hi, as_stored) in _slabs(source, per_slab, progress, _reader(source, storage)):
            inters = inters_all[start : start + values.shape[0]]
            if as_stored:
                kept = _store_integers(values, lo, hi, inters, storage, stats, writing=writing)
                if kept is not None:  # every value exact: the stored integers are the ones to write
                    writing = writing and kept is not False
                    if writing:
                        sink.write(kept)
                    continue
                values = _rescaled(values, storage.slope, storage.inter)  # the values read_slab gives
                lo = hi = np.zeros(len(values))
            _collect(lo, hi, inters, values, storage, stats)
            if not writing:  # only the range matters now: the file is written again
                _check_exact(values, storage, stats)
                continue
            stored = _store(values, lo, hi, inters, storage, family, source, stats)
            if stored is None:
                writing = False
            else:
                sink.write(stored)
    return None if writing else stats


def _store_integers(stored: np.ndarray, lo: np.ndarray, hi: np.ndarray, inters: np.ndarray, storage: Storage,
                    stats: _Stats, *, writing: bool) -> np.ndarray | bool | None:
    """A ``scaled`` slab given as its stored integers, when every integer of its range is exact
    (:func:`_every_integer_exact`): its range is added to ``stats`` and the result is its stored
    voxels (``False`` when they do not fit ``storage``'s type, or when not ``writing``: the range is
    all that matters then). None when the values must be checked one by one (:func:`_store`)."""
    if not stored.size:
        return None
    ends = _every_integer_exact(float(lo.min()), float(hi.max()), storage, most=stored.size)
    if ends is None:
        return None
    zeros = np.zeros(len(stored))
    stats.lo.append(zeros)  # as for values (raw ranges are not kept for a fractional rescale)
    stats.hi.append(zeros)
    stats.inters.append(inters)
    stats.vmin = min(stats.vmin, ends[0])
    stats.vmax = max(stats.vmax, ends[1])
    info = np.iinfo(storage.dtype)
    if not writing or lo.min() < info.min or hi.max() > info.max:
        return False
    return np.ascontiguousarray(stored, dtype=storage.dtype.newbyteorder("<"))


def write_nifti_stack(
    source: StackSource,
    path: str | os.PathLike[str],
    *,
    force: bool = False,
    level: int = DEFAULT_GZIP_LEVEL,
    threads: int = 1,
    rescale: tuple[float, float] | None = None,
    description: str | None = None,
    slab_bytes: int = SLAB_BYTES,
    progress: Callable[[int], None] | None = None,
    acquisition: AcquisitionHeader | None = None,
) -> Volume:
    """Write ``source`` to ``path`` (``.nii`` or ``.nii.gz``) slab by slab, atomically.

    The file is byte for byte what ``write_nifti(source.load(), path, level=level,
    threads=threads, rescale=rescale, description=description, acquisition=acquisition)`` writes;
    memory is about two slabs of ``slab_bytes`` decoded bytes.

    Parameters
    ----------
    source
        A 3D or 4D source (grey or RGB) with an empty ``stream_problem()``.
    rescale
        The series' uniform ``(slope, intercept)`` or None (as for ``write_nifti``;
        ``source.values.rescale`` is the one the headers give).
    progress
        Called with the number of images decoded (once per image, from a decoding thread).

    Returns
    -------
    Volume
        A shell for the sidecar (:func:`volume.sources.shell`): the affine and metadata of the loaded
        Volume, and an array that is a read-only broadcast of 0 (no voxel memory).

    Raises
    ------
    NotAVolumeError
        The source cannot be streamed (tilt, gaps, no geometry).
    OutputExistsError
        ``path`` exists and ``force`` is false.
    """
    problem = source.stream_problem()
    if problem:
        raise NotAVolumeError(f"series {source.id}: cannot be written slab by slab: {problem}")
    path = Path(path)
    suffix = nifti_suffix(path)
    source.check()
    meta = source.meta
    is_4d = source.n_frames > 1
    n_s, n_r, n_c = source.shape[-3:]
    shape = (n_c, n_r, n_s) + ((source.n_frames,) if is_4d else ())
    ras = ras_affine(source.affine)
    time_step = meta.get("frame_interval_s") if is_4d else None

    def header(storage: Storage) -> bytes:
        return nifti_header(shape, storage.dtype, ras, rgb=storage.kind == "rgb", time_step=time_step,
                            slope=storage.slope, inter=storage.inter, description=description,
                            acquisition=acquisition)

    per_frame = max(1, in_memory_bytes(source) // max(1, source.n_images))
    per_slab = max(1, int(slab_bytes) // per_frame)
    storage = decide(source, rescale)
    family = _family(source, rescale)
    io = dict(compress=suffix == ".nii.gz", level=level, threads=threads)
    with atomic_output(path, force=force, suffix=suffix) as tmp:
        stats = _write_pass(tmp, source, header, storage, family, per_slab, progress=progress, **io)
        if stats is not None:
            storage = decide(source, rescale, stats)
            again = _write_pass(tmp, source, header, storage, family, per_slab, progress=None, **io)
            if again is not None:  # pragma: no cover - the choice was made from every value
                raise AssertionError(f"series {source.id}: values do not fit {storage}")
    return shell(source, storage.dtype)


def convert_image(
    source: StackSource,
    path: str | os.PathLike[str] | None,
    *,
    allow_gaps: bool = False,
    max_bytes: int | None = None,
    force: bool = False,
    level: int = DEFAULT_GZIP_LEVEL,
    threads: int = 1,
    rescale: tuple[float, float] | None = None,
    description: str | None = None,
    progress: Callable[[int], None] | None = None,
    acquisition: AcquisitionHeader | None = None,
) -> Volume:
    """``volume convert``'s image of one source: streamed when it can be (:func:`should_stream`), else
    loaded whole within ``max_bytes`` (default :func:`memory_budget`) and written by ``write_nifti``.

    ``path`` None writes nothing (the image exists; the caller only needs the sidecar's Volume).
    ``acquisition`` (:func:`volume.io.nifti.acquisition_header`) gives pixdim[4], dim_info and the
    slice timing fields of an MR series.
    Returns the Volume for the sidecar: the loaded one, or a :func:`volume.sources.shell` when streamed.
    """
    if should_stream(source, max_bytes, allow_gaps=allow_gaps):
        if path is None:
            return shell(source)
        return write_nifti_stack(source, path, force=force, level=level, threads=threads, rescale=rescale,
                                 description=description, slab_bytes=stream_slab_bytes(source, max_bytes),
                                 progress=progress, acquisition=acquisition)
    vol = source.load(allow_gaps=allow_gaps, max_bytes=memory_budget(max_bytes), progress=progress)
    if path is not None:
        write_nifti(vol, path, force=force, level=level, threads=threads, rescale=rescale, description=description,
                    acquisition=acquisition)
    return vol


__all__ = [
    "SLAB_BYTES",
    "Storage",
    "available_memory",
    "convert_image",
    "decide",
    "in_memory_bytes",
    "memory_budget",
    "should_stream",
    "stream_problem",
    "write_nifti_stack",
]

"""A 3D/4D image read lazily: what operations and writers stream from, whatever the file format.

A :class:`StackSource` knows, before any pixel is read, an image's voxel grid (the LPS
``(slice, row, column)`` affine and shape a loaded :class:`~volume.Volume` would have), its
metadata, how its stored values become voxel values (:class:`ValueRule`) and how many bytes they
take; it says whether it can be read in slabs of images (:meth:`StackSource.stream_problem`: ''
when it can), reads them (:meth:`StackSource.read_slab`) and loads the whole Volume
(:meth:`StackSource.load`). DICOM stacks are sources (:class:`volume.dicom.source.DicomSource`);
``ops/`` and ``io/`` stream from any source and never import ``volume.dicom``.

Images are numbered as a loaded Volume orders them: frame-major, ``image = t * S + s`` for slice
``s`` of frame ``t``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .errors import UnsupportedDicomError
from .volume import Volume

RGB, FLOAT, RAW, RESCALED = "rgb", "float", "raw", "rescaled"
"""The kinds of :class:`ValueRule`."""


@dataclass(frozen=True)
class ValueRule:
    """How a source's stored values become its voxel values, decided from its headers.

    ``kind`` is ``rgb`` (colour: uint8, or uint16 narrowed to its high byte when stored), ``float``
    (float32: a fractional or varying rescale), ``raw`` (the stored integers as they are) or
    ``rescaled`` (an integer ``slope`` and an integer intercept per image, ``intercepts``: exact in a
    signed integer type, :func:`rescaled_integer_dtype`). ``stored`` is the dtype of one stored
    sample; ``rescale`` the ``(slope, intercept)`` every image shares, or None.
    """

    kind: str
    stored: np.dtype
    slope: float = 1.0
    intercepts: np.ndarray | None = None
    rescale: tuple[float, float] | None = None

    @property
    def dtype(self) -> np.dtype:
        """The dtype the values are decoded in before any value-dependent choice (float32, or the
        stored type: an integer rescale then narrows or widens it, :func:`rescaled_integer_dtype`)."""
        return np.dtype(np.float32) if self.kind == FLOAT else self.stored


def rescaled_integer_dtype(
    lo: np.ndarray, hi: np.ndarray, slope: float, inters: np.ndarray, *, where: str = "series"
) -> np.dtype:
    """The signed type an integer rescale is computed in: the smallest of int16/32/64 holding every
    image's stored range (``lo``, ``hi``), its product with ``slope`` and the rescaled values.

    Raises
    ------
    UnsupportedDicomError
        The values overflow 64-bit integers (``where`` names the series).
    """
    lo, hi, inters = (np.asarray(v, dtype=np.float64) for v in (lo, hi, inters))
    ends = np.concatenate([lo, hi, lo * slope, hi * slope, lo * slope + inters, hi * slope + inters])
    vmin, vmax = float(ends.min()), float(ends.max())
    for dtype in (np.int16, np.int32, np.int64):
        info = np.iinfo(dtype)
        if info.min <= vmin and vmax <= info.max:
            return np.dtype(dtype)
    raise UnsupportedDicomError(f"{where}: rescaled values overflow 64-bit integers")


@runtime_checkable
class StackSource(Protocol):
    """A 3D/4D image that can be described without reading pixels and read in slabs of images.

    Implemented by the DICOM stacks (:func:`volume.source`); :func:`volume.project_stack` and the
    NIfTI writer stream from any of them. A source may also offer ``read_stored_slab(start, stop,
    progress=None)`` (not required: the stored integers of a uniform fractional rescale, or None),
    which the NIfTI writer stores as read when that is exact
    (:meth:`volume.dicom.source.DicomSource.read_stored_slab`).

    Attributes
    ----------
    id, affine, shape, n_frames, n_images, rgb, meta, values, problem
        What the loaded Volume will be, from the headers alone (each property says more).

    Examples
    --------
    >>> src = volume.source("ct")
    >>> isinstance(src, volume.StackSource), src.shape, src.n_images
    (True, (48, 128, 128), 48)
    >>> values, low, high = src.read_slab(0, 2)
    >>> values.shape, values.dtype
    ((2, 128, 128), dtype('int16'))
    """

    @property
    def id(self) -> str:
        """A short name for messages (``series 7``)."""

    @property
    def affine(self) -> np.ndarray:
        """float64 (4, 4) LPS ``(slice, row, column)`` affine of the loaded Volume's grid."""

    @property
    def shape(self) -> tuple[int, ...]:
        """``(S, R, C)``, or ``(T, S, R, C)`` for 4D: the loaded Volume's shape (no colour axis)."""

    @property
    def n_frames(self) -> int:
        """Frames (volumes) of a 4D image; 1 for 3D."""

    @property
    def n_images(self) -> int:
        """Images (2D slices) read in all: ``n_frames`` times the stored slices."""

    @property
    def rgb(self) -> bool:
        """True for colour images (a trailing axis of 3)."""

    @property
    def meta(self) -> Mapping[str, Any]:
        """The metadata the loaded Volume carries (``kind``, ``modality``, ``series_description``...)."""

    @property
    def values(self) -> ValueRule:
        """How stored values become voxel values."""

    @property
    def problem(self) -> str:
        """Why the image cannot be loaded at all ('' when it can): one line, naming files."""

    def stream_problem(self) -> str:
        """Why the image cannot be read slab by slab as it will be loaded ('' when it can): a
        resampling across slices (gantry tilt, gaps), or :attr:`problem`."""

    def needs_allow_gaps(self) -> bool:
        """True when loading refuses the image unless uneven slice gaps may be resampled."""

    def nbytes(self) -> int:
        """Bytes the decoded images take in memory."""

    def check(self) -> None:
        """Refuse, from headers alone, images that cannot be decoded as described (raises VolumeError)."""

    def read_slab(
        self, start: int, stop: int, *, progress: Callable[[int], None] | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Images ``start:stop`` decoded as the whole image would be: values ``(n, R, C[, 3])`` (float32
        when :attr:`values` says so; an integer rescale exact in the smallest signed type holding
        this slab), and the stored minimum and maximum of each image (float64 ``(n,)``; zeros for
        float and colour values)."""

    def load(self, *, allow_gaps: bool = False, max_bytes: int | None = None,
             progress: Callable[[int], None] | None = None) -> Volume:
        """The whole image as a :class:`~volume.Volume` (resampled across slices when needed)."""


def shell(source: StackSource, dtype: Any = np.int16) -> Volume:
    """A Volume with ``source``'s affine, shape and metadata whose array is a read-only broadcast of
    0 (no voxel memory): for sidecars and geometry, when the voxels were streamed to a file."""
    shape = tuple(source.shape) + ((3,) if source.rgb else ())
    return Volume(np.broadcast_to(np.zeros((), dtype=dtype), shape), source.affine, source.meta, rgb=source.rgb)


def human_bytes(n: int) -> str:
    """A byte count for messages: ``16.0 GiB``, ``3.2 MiB``, ``900 bytes``."""
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"

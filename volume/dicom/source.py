"""A DICOM stack as a :class:`~volume.sources.StackSource`: read lazily, streamed in slabs.

Its grid, metadata and value rule come from the headers the scan read; pixels are decoded only by
:meth:`DicomSource.read_slab` and :meth:`DicomSource.load`. The vendor scaling (Philips' precise
values, :mod:`volume.dicom.scaling`) is applied once, when the source is made, so streamed and
loaded values are the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from functools import cached_property
from typing import Any

import numpy as np

from ..sources import FLOAT, ValueRule
from ..volume import Volume
from .geometry import output_grid
from .loader import load_stack, stack_meta
from .pixels import DEFAULT_MAX_BYTES, check_frames, check_size, read_slab, read_stored_slab, value_rule
from .scaling import DEFAULT_SCALING, vendor_scaling
from .series import Stack


class DicomSource:
    """A stack of a DICOM scan (:class:`~volume.dicom.series.Stack`) as a stack source.

    Parameters
    ----------
    stack
        A stack from :func:`volume.scan`.
    scaling
        ``"precise"`` or ``"display"`` values for Philips images (:mod:`volume.dicom.scaling`).
    frame_interval
        Seconds between the volumes of a 4D stack, where the caller knows better than the header's
        RepetitionTime (``volume convert`` passes the sidecar's, so a NIfTI's time step and its
        sidecar's RepetitionTime agree, as BIDS checks); None: the header's.
    """

    def __init__(self, stack: Stack, scaling: str = DEFAULT_SCALING, frame_interval: float | None = None) -> None:
        self.stack = vendor_scaling(stack, scaling)
        self.frame_interval = frame_interval

    def __repr__(self) -> str:
        return f"DicomSource({self.stack!r})"

    @property
    def id(self) -> str:
        return self.stack.id

    @cached_property
    def _grid(self) -> tuple[np.ndarray, tuple[int, int, int]]:
        if self.stack.geometry is None:
            raise ValueError(f"series {self.stack.id} has no slice geometry: {self.stack.problem}")
        return output_grid(self.stack.geometry, self.stack.rows, self.stack.cols, resample_gaps=True)

    @property
    def affine(self) -> np.ndarray:
        return self._grid[0]

    @property
    def shape(self) -> tuple[int, ...]:
        spatial = self._grid[1]
        return (self.stack.n_frames, *spatial) if self.stack.n_frames > 1 else spatial

    @property
    def n_frames(self) -> int:
        return self.stack.n_frames

    @property
    def n_images(self) -> int:
        return len(self.stack.frames)

    @property
    def rgb(self) -> bool:
        return self.stack.rgb

    @cached_property
    def meta(self) -> Mapping[str, Any]:
        meta = stack_meta(self.stack)
        if self.frame_interval and self.stack.n_frames > 1:
            meta = {**meta, "frame_interval_s": float(self.frame_interval)}
        return meta

    @cached_property
    def values(self) -> ValueRule:
        return value_rule(self.stack)

    @property
    def problem(self) -> str:
        if self.stack.problem:
            return self.stack.problem
        return "" if self.stack.geometry is not None else "it has no slice geometry"

    def stream_problem(self) -> str:
        if self.problem:
            return self.problem
        g = self.stack.geometry
        if g.tilted:
            return "correcting its gantry tilt resamples every slice"
        if g.gaps:
            return "filling its slice gaps resamples across slices"
        return ""

    def needs_allow_gaps(self) -> bool:
        return bool(self.stack.geometry is not None and self.stack.geometry.gaps)

    def nbytes(self) -> int:
        return check_size(self.stack, max_bytes=2**62)

    def check(self) -> None:
        check_frames(self.stack)

    def read_slab(
        self, start: int, stop: int, *, progress: Callable[[int], None] | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return read_slab(self.stack, start, stop, progress=progress, as_float=self.values.kind == FLOAT)

    def read_stored_slab(
        self, start: int, stop: int, *, progress: Callable[[int], None] | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Images ``start:stop`` as stored, before the rescale (:func:`volume.dicom.pixels.read_stored_slab`);
        None when they cannot be read so. Optional for a :class:`~volume.sources.StackSource`: the
        NIfTI writer stores a uniform fractional rescale's integers from them."""
        return read_stored_slab(self.stack, start, stop, progress=progress)

    def load(self, *, allow_gaps: bool = False, max_bytes: int | None = None,
             progress: Callable[[int], None] | None = None) -> Volume:
        vol = load_stack(self.stack, allow_gaps=allow_gaps,
                         max_bytes=DEFAULT_MAX_BYTES if max_bytes is None else max_bytes, progress=progress)
        if self.frame_interval and vol.is_4d:
            vol = replace(vol, meta={**vol.meta, "frame_interval_s": float(self.frame_interval)})
        return vol


def as_source(item: Stack | DicomSource | Any, scaling: str = DEFAULT_SCALING) -> Any:
    """``item`` as a stack source: a DICOM stack is wrapped, a source is returned as it is."""
    return DicomSource(item, scaling) if isinstance(item, Stack) else item

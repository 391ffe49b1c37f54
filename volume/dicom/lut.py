"""pydicom's pixel transforms and frame decoding, for the picture pipeline (``volume png``).

Thin wrappers, so that pydicom is imported in :mod:`volume.dicom` only (and when a picture needs
it): the Modality LUT, the VOI LUT and the palette of PS3.3 C.11 as pydicom applies them, and its
frame-by-frame decoder.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np


def apply_modality_lut(stored: np.ndarray, ds: Any) -> np.ndarray:
    """The Modality LUT (or rescale) of ``ds`` applied to stored values (``pydicom.pixels``)."""
    from pydicom.pixels import apply_modality_lut as apply

    return apply(stored, ds)


def apply_voi(values: np.ndarray, ds: Any, index: int = 0) -> np.ndarray:
    """The ``index``-th VOI LUT of ``ds``'s VOI LUT Sequence applied to ``values`` (``pydicom.pixels``)."""
    from pydicom.pixels import apply_voi as apply

    return apply(values, ds, index=index)


def apply_color_lut(indices: np.ndarray, ds: Any) -> np.ndarray:
    """``ds``'s palette (PALETTE COLOR) applied to stored indices: RGB (``pydicom.pixels``)."""
    from pydicom.pixels import apply_color_lut as apply

    return apply(indices, ds)


def iter_pixels(source: Any, **options: Any) -> Iterator[np.ndarray]:
    """The decoded frames of a dataset or a file, one at a time (``pydicom.pixels.iter_pixels``)."""
    from pydicom.pixels import iter_pixels as frames

    return frames(source, **options)

"""Canon (formerly Toshiba) conventions: b=0 images without a b-value, directions in ImageComments.

Canon and Toshiba write the standard DiffusionBValue (0018,9087) and DiffusionGradientOrientation
(0018,9089) *only on the images a diffusion gradient was applied to* (dcm2niix's
``Canon/README.md``): the b=0 images of a diffusion series carry neither. In a series whose other
images are diffusion-weighted, such an image is a b=0 image (:func:`fill_b0`), as dcm2niix reads it.

Since the acquisition by Canon the standard direction is often left out, and the direction is text
in ImageComments (0020,4000): ``b=1500(0.445,0.000,0.895)``. Those components are tied to the
image, like GE's: taken in the order (second, first, third) they are GE's (phase, frequency,
slice) components, turned into patient directions by GE's rule (as dcm2niix does, checked against
it in ``tests/test_vendors.py``; :func:`comment_components`). The standard element wins when both
are present.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from typing import Any

VENDORS = ("CANON", "TOSHIBA")
"""Manufacturer (0008,0070) prefixes of the vendor (``CANON_MEC``, ``TOSHIBA_MEC``...)."""

_COMMENT = re.compile(r"b\s*=\s*(\d+(?:\.\d*)?)\s*\(\s*([-+\d.eE]+)\s*,\s*([-+\d.eE]+)\s*,\s*([-+\d.eE]+)\s*\)")

HEAD_FIRST_SUPINE = "HFS"
"""The patient position GE's image-frame rule (and so Canon's) was validated for."""

DERIVED_WORDS = frozenset({"DERIVED", "ADC", "EADC", "TRACE", "TRACEW", "FA", "ISOTROPIC"})
"""ImageType words of maps a scanner derived: never b=0 images, whatever they lack."""


def is_canon(manufacturer: Any) -> bool:
    """True for Canon's or Toshiba's Manufacturer value."""
    return str(manufacturer or "").strip().upper().startswith(VENDORS)


def comment_components(comments: Any, bvalue: float | None) -> tuple[float, float, float] | None:
    """GE-ordered image-frame components of the direction in Canon's ImageComments, or None.

    The text must name the image's own b-value (``b=1000(...)`` for b=1000, rounded as dcm2niix
    compares them); the components ``(x, y, z)`` come back as ``(y, x, z)``.
    """
    if bvalue is None or not comments:
        return None
    m = _COMMENT.search(str(comments))
    if m is None or round(float(m.group(1))) != round(bvalue):
        return None
    try:
        x, y, z = (float(m.group(i)) for i in (2, 3, 4))
    except ValueError:
        return None
    return (y, x, z)


def _is_original(f: Any) -> bool:
    """An acquired image (not a map a scanner derived: ADC, trace, FA...)."""
    return not {w for v in f.image_type for w in v.replace("_", " ").split()} & DERIVED_WORDS


def fill_b0(frames: Sequence[Any]) -> list[Any]:
    """Canon/Toshiba images (:class:`volume.dicom.headers.FrameHeader`) without a b-value, in a series
    whose other images are diffusion-weighted (b > 0), as the b=0 images they are: b-value 0, a zero
    direction. Other series come back as they are."""
    frames = list(frames)
    if not frames or not is_canon(frames[0].acquisition.get("Manufacturer")):
        return frames
    weighted = next((f.mr for f in frames if f.mr is not None and f.mr.bvalue is not None and f.mr.bvalue > 0), None)
    if weighted is None:
        return frames
    unweighted = {"bvalue": 0.0, "gradient": (0.0, 0.0, 0.0)}
    out = []
    for f in frames:
        if (f.mr is None or f.mr.bvalue is None) and _is_original(f):
            mr = type(weighted)(**unweighted) if f.mr is None else dataclasses.replace(f.mr, **unweighted)
            f = f.replace(mr=mr)
        out.append(f)
    return out


__all__ = ["HEAD_FIRST_SUPINE", "VENDORS", "comment_components", "fill_b0", "is_canon"]

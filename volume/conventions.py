"""The anatomical planes and how pictures of them are drawn: one table for every module.

Written down once (``GUIDE.md``'s display conventions), in DICOM's patient frame LPS (+x towards
the patient's left, +y posterior, +z superior), as plain tuples so that the command line can
offer the planes without importing numpy:

============  ==============================  ==========================  =========================
plane         up (top of the picture)         right (right edge)          into the picture
============  ==============================  ==========================  =========================
axial         anterior ``(0, -1, 0)``         patient's left ``(1,0,0)``  superior ``(0, 0, 1)``
coronal       superior ``(0, 0, 1)``          patient's left ``(1,0,0)``  posterior ``(0, 1, 0)``
sagittal      superior ``(0, 0, 1)``          posterior ``(0, 1, 0)``     right ``(-1, 0, 0)``
============  ==============================  ==========================  =========================

Axial pictures are seen from the feet, coronal ones face the patient, sagittal ones have anterior
on the left (seen from the patient's left). "Into the picture" is ``up x right``: the direction
the viewer looks, the normal a projection looks along, and the slice axis of a reslice onto the
plane (slice 0 nearest the viewer). Grids of a plane are ``(slice, row, column)`` =
``(into, -up, right)``: rows run down the picture, columns to its right.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from .errors import UsageError

Vector = tuple[float, float, float]

PLANES: tuple[str, ...] = ("axial", "coronal", "sagittal")
"""The anatomical plane names, in the order pictures put them side by side."""

DISPLAY: Mapping[str, tuple[Vector, Vector]] = MappingProxyType({
    "axial": ((0.0, -1.0, 0.0), (1.0, 0.0, 0.0)),
    "coronal": ((0.0, 0.0, 1.0), (1.0, 0.0, 0.0)),
    "sagittal": ((0.0, 0.0, 1.0), (0.0, 1.0, 0.0)),
})
"""``plane -> (up, right)``: LPS unit vectors of the top and the right edge of a picture."""


def _cross(a: Vector, b: Vector) -> Vector:
    return (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])


INTO: Mapping[str, Vector] = MappingProxyType({p: _cross(*DISPLAY[p]) for p in PLANES})
"""``plane -> up x right``: the LPS direction into a picture of the plane (the viewer's look)."""

GRID_AXES: Mapping[str, tuple[Vector, Vector, Vector]] = MappingProxyType({
    p: (INTO[p], tuple(-v for v in DISPLAY[p][0]), DISPLAY[p][1]) for p in PLANES  # type: ignore[misc]
})
"""``plane -> (slice, row, column)`` LPS unit directions of a grid whose slices are pictures of the plane."""


def plane_name(plane: str) -> str:
    """``plane`` as one of :data:`PLANES` (case and blanks ignored): the one check of a plane's name.

    Raises
    ------
    UsageError
        For anything else (a ``ValueError``, as before: ``except ValueError`` still catches it).
    """
    key = str(plane).strip().lower()
    if key not in DISPLAY:
        raise UsageError(f"plane must be one of {', '.join(PLANES)}, got {plane!r}")
    return key

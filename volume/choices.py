"""The choices operations offer, as plain tuples: the command line builds its options from them.

Each operation checks its arguments against these tuples and each command offers exactly them
(:func:`volume.cli.app.choice_enum`), so a new mode is added in one place. The module imports
nothing heavy: ``volume --help`` lists the choices without loading numpy.
"""

from __future__ import annotations

from .conventions import PLANES

PROJECTION_MODES = ("max", "min", "mean")
"""Intensity projections: maximum (MIP), minimum (MinIP), mean."""

INTERPOLATIONS = ("nearest", "linear", "cubic")
"""Interpolation orders of a reslice."""

SLAB_MODES = ("mean", "max", "min")
"""How a thick reslice combines the samples across its slab."""

RESLICE_FORMATS = ("auto", "nifti", "png", "dcm")
"""What ``volume reslice`` writes (``auto``: by the output's extension)."""

RENDER_MODES = ("vr", "mip", "minip", "iso")
"""Renderings: composite volume rendering, maximum / minimum intensity projection, isosurface."""

RENDER_PRESETS = ("ct-bone", "ct-soft-tissue", "ct-lung", "mr")
"""Volume-rendering transfer functions (:data:`volume.render.presets.PRESETS`)."""

VIEWS = ("anterior", "posterior", "left", "right", "superior", "inferior")
"""Where a rendering's camera stands, relative to the patient."""

TURN_AXES = ("S", "I", "L", "R", "A", "P")
"""Patient axes a turntable turns about."""

MAPPERS = ("auto", "gpu", "cpu")
"""VTK volume mappers (``auto``: CPU on software OpenGL, GPU otherwise)."""

MESH_COORDS = ("lps", "ras")
"""Patient frames a mesh can be written in."""

NIFTI_FORMATS = ("nii.gz", "nii")
"""NIfTI outputs: gzip-compressed or plain."""

SCALINGS = ("precise", "display")
"""Values of Philips images: the vendor's measured ones, or DICOM's display values."""

PICTURE_FORMATS = ("png", "jpg")
"""Picture formats of ``volume png``."""

__all__ = [
    "INTERPOLATIONS", "MAPPERS", "MESH_COORDS", "NIFTI_FORMATS", "PICTURE_FORMATS", "PLANES",
    "PROJECTION_MODES", "RENDER_MODES", "RENDER_PRESETS", "RESLICE_FORMATS", "SCALINGS", "SLAB_MODES",
    "TURN_AXES", "VIEWS",
]

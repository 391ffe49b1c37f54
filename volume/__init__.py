"""volume: folders of DICOM slices to exact 3D/4D volumes, projections, reslices, NIfTI and renderings.

>>> import volume
>>> found = volume.scan("STUDY/")          # series and their stacks, headers only
>>> vol = volume.load("STUDY/T1/")         # one Volume: array + affine (slice,row,col -> LPS mm)
"""

from __future__ import annotations

from .dicom import Scan, Series, Stack, load, scan
from .errors import (
    AmbiguousSeriesError,
    NoDicomError,
    NotAVolumeError,
    OutputExistsError,
    ResourceLimitError,
    SliceGapError,
    UnsupportedDicomError,
    UsageError,
    VolumeError,
)
from .volume import AFFINE_CONVENTION, LPS_TO_RAS, PLANES, Volume, axis_codes

__version__ = "0.1.0"

__all__ = [
    "AFFINE_CONVENTION",
    "LPS_TO_RAS",
    "PLANES",
    "AmbiguousSeriesError",
    "NoDicomError",
    "NotAVolumeError",
    "OutputExistsError",
    "ResourceLimitError",
    "Scan",
    "Series",
    "SliceGapError",
    "Stack",
    "UnsupportedDicomError",
    "UsageError",
    "Volume",
    "VolumeError",
    "__version__",
    "axis_codes",
    "load",
    "scan",
]

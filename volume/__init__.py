"""volume: folders of DICOM slices to exact 3D/4D volumes, projections, reslices, NIfTI and renderings.

>>> import volume
>>> found = volume.scan("STUDY/")          # series and their stacks, headers only
>>> vol = volume.load("STUDY/T1/")         # one Volume: array + affine (slice,row,col -> LPS mm)
>>> mip = volume.project(vol, "coronal")    # a projection, itself a Volume with world geometry
>>> volume.write_nifti(mip, "mip.nii.gz")
>>> iso = volume.reslice(vol, spacing=1.0)  # resampled onto a 1 mm grid

Everything but the errors is imported on first use (PEP 562), so ``import volume`` is instant and
``volume --version`` needs no numpy; scipy, SimpleITK, nibabel and VTK load only when an operation
needs them.
"""

from __future__ import annotations

import importlib

from ._version import __version__
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

#: Public functions imported on first use: name -> (module, attribute).
_LAZY = {
    "Scan": ("volume.dicom", "Scan"),
    "Series": ("volume.dicom", "Series"),
    "Stack": ("volume.dicom", "Stack"),
    "load": ("volume.dicom", "load"),
    "scan": ("volume.dicom", "scan"),
    "Volume": ("volume.volume", "Volume"),
    "AFFINE_CONVENTION": ("volume.volume", "AFFINE_CONVENTION"),
    "LPS_TO_RAS": ("volume.volume", "LPS_TO_RAS"),
    "PLANES": ("volume.volume", "PLANES"),
    "axis_codes": ("volume.volume", "axis_codes"),
    "project": ("volume.ops.projection", "project"),
    "project_stack": ("volume.api", "project_stack"),
    "reslice": ("volume.api", "reslice"),
    "source": ("volume.api", "source"),
    "like_grid": ("volume.api", "like_grid"),
    "StackSource": ("volume.sources", "StackSource"),
    "to_nifti": ("volume.io.nifti", "to_nifti"),
    "write_nifti": ("volume.io.nifti", "write_nifti"),
    "write_dicom_series": ("volume.io.dicom_out", "write_dicom_series"),
    # ``render`` is also a subpackage name: importing it sets the package attribute of that name to
    # the package, so the functions are exported under other names (``convert`` for symmetry).
    "convert_folder": ("volume.jobs.convert", "convert"),
    "convert_stack": ("volume.jobs.convert", "convert_stack"),
    "ConvertOptions": ("volume.jobs.convert", "ConvertOptions"),
    "mip_folder": ("volume.jobs.mip", "mip_folder"),
    "MipOptions": ("volume.jobs.mip", "MipOptions"),
    "reslice_folder": ("volume.jobs.reslice", "reslice_folder"),
    "ResliceOptions": ("volume.jobs.reslice", "ResliceOptions"),
    "plan_bids": ("volume.jobs.bids", "plan_bids"),
    "BidsPlan": ("volume.jobs.bids", "BidsPlan"),
    "render_volume": ("volume.render.offscreen", "render"),
    "isosurface": ("volume.render.mesh", "isosurface"),
    "write_mesh": ("volume.render.mesh", "write_mesh"),
    "Window": ("volume.ops.window", "Window"),
    "apply_window": ("volume.ops.window", "apply_window"),
    "WINDOW_PRESETS": ("volume.ops.window", "PRESETS"),
}


def __getattr__(name: str) -> object:
    """Import the public operations lazily (PEP 562)."""
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'volume' has no attribute {name!r}") from None

    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "AFFINE_CONVENTION",
    "LPS_TO_RAS",
    "PLANES",
    "MipOptions",
    "AmbiguousSeriesError",
    "BidsPlan",
    "ConvertOptions",
    "NoDicomError",
    "NotAVolumeError",
    "OutputExistsError",
    "ResliceOptions",
    "ResourceLimitError",
    "Scan",
    "Series",
    "SliceGapError",
    "Stack",
    "StackSource",
    "UnsupportedDicomError",
    "UsageError",
    "Volume",
    "VolumeError",
    "WINDOW_PRESETS",
    "Window",
    "__version__",
    "apply_window",
    "axis_codes",
    "convert_folder",
    "convert_stack",
    "isosurface",
    "like_grid",
    "load",
    "mip_folder",
    "plan_bids",
    "project",
    "project_stack",
    "render_volume",
    "reslice",
    "reslice_folder",
    "scan",
    "source",
    "to_nifti",
    "write_dicom_series",
    "write_mesh",
    "write_nifti",
]

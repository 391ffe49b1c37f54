"""Named display windows, kept free of numpy so the command line can list them without importing it."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

PRESETS: Mapping[str, tuple[float, float]] = MappingProxyType(
    {
        "brain": (40.0, 80.0),
        "subdural": (75.0, 215.0),
        "stroke": (40.0, 40.0),
        "soft-tissue": (40.0, 400.0),
        "mediastinum": (50.0, 350.0),
        "abdomen": (60.0, 400.0),
        "liver": (60.0, 160.0),
        "lung": (-600.0, 1500.0),
        "bone": (480.0, 2500.0),
    }
)
"""Named windows ``(center, width)`` in Hounsfield units, as radiology workstations ship them."""

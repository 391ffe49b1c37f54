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

HU_MODALITIES = ("CT",)
"""Modalities whose values are Hounsfield units, the unit of every window in :data:`PRESETS`."""


def preset_name(text: str | None) -> str | None:
    """The preset ``text`` names (``Lung``, ``soft_tissue``...), or None when it names none."""
    if text is None:
        return None
    key = text.strip().lower().replace("_", "-").replace(" ", "-")
    return key if key in PRESETS else None


def preset_warning(option: str, name: str, *, hounsfield: bool, modality: object) -> str | None:
    """The warning for a preset made for another modality than the images', or None when it fits.

    Parameters
    ----------
    option
        How the user gave it (``--preset``, ``--window``), for the message.
    name
        The preset's name.
    hounsfield
        True when the preset's values are Hounsfield units (made for CT); False for a preset made
        for everything else (MR-style, relative to the series' own range).
    modality
        The images' Modality; an unknown one never warns.

    The message does not say which series: callers put that first (``series 601: ...``).
    """
    mod = str(modality or "").strip().upper()
    if not mod:
        return None
    is_hu = mod in HU_MODALITIES
    if hounsfield and not is_hu:
        return (f"{option} {name} is a CT preset in Hounsfield units, but the images are {mod}, whose values "
                f"are not HU, so the picture may be all black or all white; leave it out: the default suits {mod}")
    if not hounsfield and is_hu:
        return (f"{option} {name} is made for MR (relative to the series' value range), but the images are CT; "
                "leave it out (the default suits CT) or choose a ct-* preset, in Hounsfield units")
    return None

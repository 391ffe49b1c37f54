"""The one table of presets: every name ``--preset`` (and ``--window``) accepts, in every command.

A preset names what a picture of a modality should look like. In a 2D picture (``mip``, ``png``,
``reslice``, the grey ramp of a 3D MIP/MinIP) that is a display window; in a 3D volume rendering
(``render``/``view``/``serve --mode vr``) it is a transfer function (colour and opacity as
functions of the value: :mod:`volume.render.presets`). The two are related but not the same, so
each :class:`Preset` says both:

==============  ===================  ===============================  =====================
preset          aliases              2D window (center, width)        3D transfer function
==============  ===================  ===============================  =====================
brain           ct-brain             40, 80 HU                        none (a 2D window)
subdural        ct-subdural          75, 215 HU                       none
stroke          ct-stroke            40, 40 HU                        none
soft-tissue     ct-soft-tissue       40, 400 HU                       ``ct-soft-tissue``
mediastinum     ct-mediastinum       50, 350 HU                       none
abdomen         ct-abdomen           60, 400 HU                       none
liver           ct-liver             60, 160 HU                       none
lung            ct-lung              -600, 1500 HU                    ``ct-lung``
bone            ct-bone              480, 2500 HU                     ``ct-bone``
mr              mri                  automatic (MR has no unit)       ``mr`` (relative)
==============  ===================  ===============================  =====================

Names are matched with case, ``_`` and blanks ignored (``Soft_Tissue`` is ``soft-tissue``). The
module imports nothing but the standard library: ``--help`` lists the presets without numpy.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple

from ..errors import UsageError


class Preset(NamedTuple):
    """One named preset: what it means for a 2D window and for a 3D transfer function.

    A named tuple, not a dataclass: ``volume --help`` reads this table, and importing
    :mod:`dataclasses` would cost its start-up a few milliseconds.

    Attributes
    ----------
    name
        The canonical name (``bone``).
    window
        ``(center, width)`` of the 2D display window, in Hounsfield units when ``hounsfield``;
        None for a preset whose window is the automatic one (MR values have no absolute unit).
    transfer
        Name of the volume-rendering transfer function (``volume.render.presets.PRESETS``) that
        ``--mode vr`` draws with, or None for a window-only preset.
    hounsfield
        True when the preset's values are Hounsfield units (made for CT).
    aliases
        Other names that mean this preset (``ct-bone``).
    description
        One line for help and the docs.
    """

    name: str
    window: tuple[float, float] | None
    transfer: str | None
    hounsfield: bool
    aliases: tuple[str, ...] = ()
    description: str = ""

    @property
    def names(self) -> tuple[str, ...]:
        """The canonical name, then the aliases."""
        return (self.name, *self.aliases)


TABLE: tuple[Preset, ...] = (
    Preset("brain", (40.0, 80.0), None, True, ("ct-brain",), "CT brain window"),
    Preset("subdural", (75.0, 215.0), None, True, ("ct-subdural",), "CT subdural window"),
    Preset("stroke", (40.0, 40.0), None, True, ("ct-stroke",), "CT stroke window"),
    Preset("soft-tissue", (40.0, 400.0), "ct-soft-tissue", True, ("ct-soft-tissue",),
           "CT soft tissue window; 3D: soft tissue and muscle, bone brighter"),
    Preset("mediastinum", (50.0, 350.0), None, True, ("ct-mediastinum",), "CT mediastinum window"),
    Preset("abdomen", (60.0, 400.0), None, True, ("ct-abdomen",), "CT abdomen window"),
    Preset("liver", (60.0, 160.0), None, True, ("ct-liver",), "CT liver window"),
    Preset("lung", (-600.0, 1500.0), "ct-lung", True, ("ct-lung",),
           "CT lung window; 3D: the boundaries of aerated lung, vessels and airways"),
    Preset("bone", (480.0, 2500.0), "ct-bone", True, ("ct-bone",),
           "CT bone window; 3D: soft tissue transparent, bone ivory"),
    Preset("mr", None, "mr", False, ("mri",),
           "MR and everything not in HU: the automatic window; 3D: relative to the data's range"),
)
"""Every preset, in the order help lists them."""

BY_NAME: Mapping[str, Preset] = MappingProxyType({n: p for p in TABLE for n in p.names})
"""Every accepted name (canonical and aliases) -> its :class:`Preset`."""

PRESETS: Mapping[str, tuple[float, float]] = MappingProxyType(
    {p.name: p.window for p in TABLE if p.window is not None and p.hounsfield}
)
"""Named CT windows ``(center, width)`` in Hounsfield units, as radiology workstations ship them
(the presets of :data:`TABLE` that have one; ``volume.WINDOW_PRESETS``)."""

HU_MODALITIES = ("CT",)
"""Modalities whose values are Hounsfield units, the unit of every window in :data:`PRESETS`."""


def _key(text: str) -> str:
    return text.strip().lower().replace("_", "-").replace(" ", "-")


def preset_name(text: str | None) -> str | None:
    """The canonical name of the preset ``text`` names (``Lung``, ``soft_tissue``, ``ct-bone``...),
    or None when it names none."""
    if text is None:
        return None
    found = BY_NAME.get(_key(text))
    return found.name if found is not None else None


def preset_list() -> str:
    """The presets as help shows them: ``brain (ct-brain), ..., mr (mri)``."""
    return ", ".join(f"{p.name} ({', '.join(p.aliases)})" if p.aliases else p.name for p in TABLE)


PRESET_HELP = (
    f"Named preset: {preset_list()}. CT presets are windows in Hounsfield units; mr is the automatic "
    "window (relative to the series' values). The same names in every command (docs/conventions.md)."
)
"""The help of ``--preset``, the same in every command that draws pictures."""


def find_preset(text: str, option: str = "--preset") -> Preset:
    """The :class:`Preset` ``text`` names (canonical name or alias).

    Raises
    ------
    UsageError
        When ``text`` names no preset; the message lists every name.
    """
    found = BY_NAME.get(_key(text))
    if found is None:
        raise UsageError(f"unknown {option} {text!r}; choose one of {preset_list()}")
    return found


def transfer_function(text: str, option: str = "--preset") -> str:
    """The volume-rendering transfer function a preset name (or a transfer function's own name)
    stands for: ``bone`` and ``ct-bone`` give ``ct-bone``.

    Raises
    ------
    UsageError
        For an unknown name, or a window-only preset (``brain``): volume rendering needs colours
        and opacities, which a window does not give.
    """
    preset = find_preset(text, option)
    if preset.transfer is None:
        drawn = ", ".join(p.name for p in TABLE if p.transfer is not None)
        raise UsageError(f"{option} {preset.name} is a 2D window, not a volume-rendering transfer function; "
                         f"--mode vr draws {drawn}; --mode mip or minip uses {preset.name}'s window as its grey ramp")
    return preset.transfer


def markdown_table() -> str:
    """The table of presets in ``docs/conventions.md`` (``python -m volume.ops.presets`` prints it)."""
    rows = ["| preset | also | 2D window (center, width) | 3D volume rendering (`--mode vr`) | 3D MIP/MinIP grey ramp |",
            "|---|---|---|---|---|"]
    for p in TABLE:
        window = f"{p.window[0]:g}, {p.window[1]:g} HU" if p.window else "automatic (percentiles of the picture)"
        transfer = f"`{p.transfer}`" if p.transfer else "refused (a 2D window only)"
        ramp = "the window" if p.window else "automatic (the data's range)"
        rows.append(f"| `{p.name}` | {', '.join(f'`{a}`' for a in p.aliases)} | {window} | {transfer} | {ramp} |")
    return "\n".join(rows)


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

    Returns
    -------
    str or None
        The message, without the series (callers put that first: ``series 601: ...``).
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
                "leave it out (the default suits CT) or choose a CT preset, in Hounsfield units")
    return None


def modality_warning(option: str, text: str | None, modality: object) -> str | None:
    """:func:`preset_warning` for whatever ``text`` names (None when it names no preset)."""
    name = preset_name(text)
    if name is None:
        return None
    return preset_warning(option, name, hounsfield=BY_NAME[name].hounsfield, modality=modality)


if __name__ == "__main__":  # pragma: no cover - prints the docs' table
    print(markdown_table())

"""The web view's page: plain HTML controls beside the 3D view (no component library).

The page was built with Vuetify (trame-vuetify): 1.4 MB of scripts, styles and icon fonts that the
browser loaded, parsed and laid out before the 3D view existed. Measured in headless Chromium on
the development machine (loaded): the view's element appeared 2.7 s after the page was requested
with Vuetify, 1.0 s with plain elements. The controls are the same, with the same element ids.

trame's html widgets are imported inside functions only (the ``web`` extra).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

PAGE_STYLE = ("display: flex; position: fixed; inset: 0; overflow: hidden; background: #1b1b1b; color: #ddd; "
              "font: 13px system-ui, sans-serif;")
"""The whole page: controls on the left, the view filling the rest."""

PANEL_STYLE = "width: 290px; flex: none; padding: 10px 12px; overflow-y: auto; background: #262626; box-sizing: border-box;"
"""The control panel."""

VIEW_STYLE = "flex: 1; position: relative; min-width: 0; background: #000;"
"""The 3D view's box (the remote or local view fills it)."""

HEADING_STYLE = "margin: 14px 0 4px; font-weight: 600; color: #bbb;"
"""Section headings of the panel."""

BUTTON_STYLE = "padding: 4px 9px; border: 1px solid #555; color: #eee; cursor: pointer; font: inherit;"
"""Buttons (the active mode is highlighted through a bound background)."""

RANGE_STYLE = "width: 100%; margin: 2px 0;"
"""Sliders (``input type=range``)."""

ACTIVE = "#3d6fb6"
"""Background of the active mode's button."""

IDLE = "#333"
"""Background of the other buttons."""


def range_input(name: str, *, minimum: Any, maximum: Any, step: Any = 1, **attrs: Any) -> Any:
    """An ``input type=range`` bound to the number in state ``name`` (``v-model.number``)."""
    from trame.widgets import html

    return html.Input(type="range", min=minimum, max=maximum, step=step, style=RANGE_STYLE,
                      raw_attrs=[f'v-model.number="{name}"'], **attrs)


def mode_buttons(labels: Mapping[str, str]) -> None:
    """One button per mode (ids ``mode-<mode>``); the active one highlighted."""
    from trame.widgets import html

    with html.Div(id="modes", style="display: flex; gap: 0;"):
        for mode, label in labels.items():
            html.Button(label, id=f"mode-{mode}", click=f"mode = '{mode}'", style=BUTTON_STYLE,
                        raw_attrs=[f":style=\"{{background: mode === '{mode}' ? '{ACTIVE}' : '{IDLE}'}}\""])


def plane_controls(planes: Sequence[str]) -> None:
    """A check box (``show-<plane>``) and a slider (in ``slider-<plane>``) per slice plane."""
    from trame.widgets import html

    html.Div("Slice planes", style=HEADING_STYLE)
    for name in planes:
        with html.Label(style="display: block; margin-top: 4px;"):
            html.Input(type="checkbox", id=f"show-{name}", v_model=(f"show_{name}",))
            html.Span(f" {name} {{{{ slice_{name} + 1 }}}} / {{{{ size_{name} }}}}")
        with html.Div(id=f"slider-{name}"):
            range_input(f"slice_{name}", minimum=0, maximum=(f"size_{name} - 1",))


def build_page(server: Any, *, title: str, modes: Mapping[str, str], presets: Sequence[str], planes: Sequence[str],
               reset: Callable[[], None], view: Callable[[], Any], help_text: str = "") -> tuple[Any, Any]:
    """Lay the page out; ``view()`` builds the 3D view widget inside its box. Returns (layout, view)."""
    from trame.ui.html import DivLayout
    from trame.widgets import html

    with DivLayout(server) as layout:
        with html.Div(style=PAGE_STYLE):
            with html.Div(id="controls", style=PANEL_STYLE):
                html.Div(title, style="font-weight: 600; font-size: 14px; margin-bottom: 8px;")
                mode_buttons(modes)
                with html.Div(v_show="mode == 'vr'", style="margin-top: 8px;"):
                    html.Span("Preset ")
                    with html.Select(id="preset", v_model=("preset",), style="font: inherit;"):
                        for name in presets:
                            html.Option(name, value=name)
                with html.Div(v_show="mode == 'iso'", id="surface-level", style="margin-top: 8px;"):
                    html.Span("Surface {{ iso_level.toPrecision(4) }}")
                    range_input("iso_level", minimum=("value_min",), maximum=("value_max",), step="any")
                plane_controls(planes)
                html.Div("Window / level (planes, MIP, MinIP)", style=HEADING_STYLE)
                with html.Div(id="window-width"):
                    html.Span("W {{ win_width.toPrecision(4) }}")
                    range_input("win_width", minimum=1, maximum=("value_max - value_min",), step="any")
                with html.Div(id="window-level"):
                    html.Span("L {{ win_level.toPrecision(4) }}")
                    range_input("win_level", minimum=("value_min",), maximum=("value_max",), step="any")
                with html.Div(v_show="n_frames > 1"):
                    html.Div("Frame {{ frame + 1 }} / {{ n_frames }}", style=HEADING_STYLE)
                    with html.Div(id="slider-frame"):
                        range_input("frame", minimum=0, maximum=("n_frames - 1",))
                html.Div("{{ status }}", id="status", style="margin-top: 14px; color: #f0d890;")
                html.Div(help_text, style="margin-top: 8px; color: #999;")
                html.Button("Reset view", id="reset", click=reset, style=f"{BUTTON_STYLE} background: {IDLE}; margin-top: 10px;")
            with html.Div(id="view", style=VIEW_STYLE):
                widget = view()
    return layout, widget

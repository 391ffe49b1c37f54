"""Pictures (PNG, JPEG) with orientation letters and a scale bar; the only module that knows them.

Input is an already display-oriented, windowed picture (see :mod:`volume.display` and
:func:`volume.ops.window.apply_window`): ``uint8`` (H, W) grey or (H, W, 3) RGB (``uint16`` grey
is kept 16-bit in PNG). Nothing from the DICOM header is written into the file: no text chunks,
no EXIF, so a picture carries no patient data beyond its pixels.

>>> write_picture("cor.png", grey, labels=edge_labels("coronal"), scale_bar_mm_per_px=0.45)
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from .atomic import atomic_output

PICTURE_FORMATS: Mapping[str, str] = MappingProxyType({".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"})
"""File extensions :func:`write_picture` understands, and the Pillow format each one means."""

JPEG_QUALITY = 92
"""JPEG quality: high enough that windowed grey levels show no visible blocking."""

MIN_LABEL_SIDE = 64
"""Pictures with a side shorter than this (pixels) get no letters or scale bar: they would hide it."""

LABEL_FONT_FRACTION = 1 / 22
"""Letter height as a fraction of the picture's shorter side (at least :data:`MIN_FONT_PX`)."""

MIN_FONT_PX = 11
"""Smallest letter size in pixels."""

LABEL_MARGIN_FRACTION = 0.5
"""Distance of letters and scale bar from the edge, as a fraction of the letter size."""

SCALE_BAR_FRACTION = 0.2
"""The scale bar is the longest 'round' length no longer than this fraction of the width."""

SCALE_BAR_STEPS_MM = (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000)
"""Round lengths (mm) a scale bar may take."""

SHEET_GAP_PX = 8
"""Gap (pixels) between pictures on a sheet."""

TITLE_BAND_FACTOR = 1.8
"""Height of the band above a sheet's pictures that holds their titles, in letter heights."""

LABEL_COLOUR = (255, 255, 0)
"""Colour of letters and scale bar on colour output (yellow, as viewers draw overlays)."""

# Colour maps as control points (position 0..1, R, G, B 0..255), linearly interpolated.
COLORMAPS: Mapping[str, tuple[tuple[float, int, int, int], ...]] = MappingProxyType(
    {
        "gray": ((0.0, 0, 0, 0), (1.0, 255, 255, 255)),
        "hot": ((0.0, 0, 0, 0), (0.375, 255, 0, 0), (0.75, 255, 255, 0), (1.0, 255, 255, 255)),
        "bone": ((0.0, 0, 0, 0), (0.375, 81, 81, 113), (0.75, 166, 198, 198), (1.0, 255, 255, 255)),
        "viridis": (
            (0.0, 68, 1, 84), (0.125, 71, 45, 123), (0.25, 59, 82, 139), (0.375, 44, 114, 142),
            (0.5, 33, 145, 140), (0.625, 40, 174, 128), (0.75, 94, 201, 98), (0.875, 170, 220, 50),
            (1.0, 253, 231, 37),
        ),
        "inferno": (
            (0.0, 0, 0, 4), (0.125, 31, 12, 72), (0.25, 85, 15, 109), (0.375, 136, 34, 106),
            (0.5, 186, 54, 85), (0.625, 227, 89, 51), (0.75, 249, 140, 10), (0.875, 249, 201, 50),
            (1.0, 252, 255, 164),
        ),
        "jet": ((0.0, 0, 0, 128), (0.125, 0, 0, 255), (0.375, 0, 255, 255), (0.625, 255, 255, 0),
                (0.875, 255, 0, 0), (1.0, 128, 0, 0)),
    }
)
"""Built-in colour maps (matplotlib's, sampled); other matplotlib names work when it is installed."""


@dataclass(frozen=True)
class Picture:
    """One panel of a sheet: a display-oriented picture and what to draw on it.

    ``image`` is uint8 (H, W) or (H, W, 3); ``labels`` maps top/bottom/left/right to letters;
    ``mm_per_px`` enables the scale bar; ``title`` is written at the top left.
    """

    image: np.ndarray
    labels: Mapping[str, str] | None = None
    mm_per_px: float | None = None
    title: str | None = None


def colormap_lut(name: str) -> np.ndarray:
    """A (256, 3) uint8 lookup table for colour map ``name`` (built-in, else matplotlib's)."""
    key = name.strip().lower()
    if key in ("grey", "greys_r"):
        key = "gray"
    if key in COLORMAPS:
        pts = np.array(COLORMAPS[key], dtype=float)
        x = np.linspace(0.0, 1.0, 256)
        lut = np.stack([np.interp(x, pts[:, 0], pts[:, c]) for c in (1, 2, 3)], axis=-1)
        return np.clip(np.rint(lut), 0, 255).astype(np.uint8)
    try:
        import matplotlib

        cmap = matplotlib.colormaps[name]
    except (ImportError, KeyError):
        raise ValueError(f"unknown colour map {name!r}; built-in: {', '.join(COLORMAPS)}") from None
    return np.clip(np.rint(cmap(np.linspace(0, 1, 256))[:, :3] * 255), 0, 255).astype(np.uint8)


def apply_colormap(grey: np.ndarray, name: str) -> np.ndarray:
    """Map a uint8 (H, W) picture through colour map ``name``; returns uint8 (H, W, 3)."""
    g = np.asarray(grey)
    if g.dtype != np.uint8 or g.ndim != 2:
        raise ValueError(f"a colour map applies to a uint8 grey picture, got {g.dtype} {g.shape}")
    return colormap_lut(name)[g]


def _check_image(image: np.ndarray) -> np.ndarray:
    img = np.asarray(image)
    if img.dtype == bool:
        img = img.astype(np.uint8) * 255
    if img.ndim == 2 and img.dtype in (np.uint8, np.uint16):
        return img
    if img.ndim == 3 and img.shape[2] == 3 and img.dtype == np.uint8:
        return img
    raise ValueError(
        f"a picture is uint8 (H, W) or (H, W, 3), or uint16 (H, W); got {img.dtype} {img.shape} "
        "(window it first: volume.ops.window.apply_window)"
    )


def scale_bar_length_mm(width_px: int, mm_per_px: float) -> float | None:
    """The round scale-bar length (mm) for a picture ``width_px`` wide, or None if none fits."""
    limit = width_px * mm_per_px * SCALE_BAR_FRACTION
    fitting = [s for s in SCALE_BAR_STEPS_MM if s <= limit]
    return float(fitting[-1]) if fitting else None


def _font_px(h: int, w: int) -> int:
    return max(MIN_FONT_PX, int(round(min(h, w) * LABEL_FONT_FRACTION)))


def _font(size: int) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType: a fixed bitmap font
        return ImageFont.load_default()


def annotate(
    image: np.ndarray,
    *,
    labels: Mapping[str, str] | None = None,
    scale_bar_mm_per_px: float | None = None,
    cmap: str | None = None,
    title: str | None = None,
    font_px: int | None = None,
) -> Any:
    """Return a ``PIL.Image`` of ``image`` with colour map, letters, scale bar and title drawn.

    Parameters
    ----------
    image
        uint8 (H, W) or (H, W, 3), or uint16 (H, W), display-oriented.
    labels
        ``{"top": "A", "bottom": "P", "left": "R", "right": "L"}`` (any subset); None draws none.
    scale_bar_mm_per_px
        Pixel size in mm (square pixels); draws a bar of a round length at the bottom right.
    cmap
        Colour map name for a grey picture (see :data:`COLORMAPS`).
    title
        Short text at the top left (e.g. the plane on a sheet).
    font_px
        Letter height; default from the picture's size (:data:`LABEL_FONT_FRACTION`).
    """
    from PIL import Image, ImageDraw

    img = _check_image(image)
    if cmap and img.ndim == 2:
        if img.dtype != np.uint8:
            img = (img >> 8).astype(np.uint8)
        img = apply_colormap(img, cmap)
    h, w = img.shape[:2]
    if img.ndim == 3:
        pil = Image.fromarray(np.ascontiguousarray(img), mode="RGB")
        ink: Any = LABEL_COLOUR
        outline: Any = (0, 0, 0)
    elif img.dtype == np.uint16:
        pil = Image.fromarray(np.ascontiguousarray(img).astype(np.int32), mode="I")
        ink, outline = 65535, 0
    else:
        pil = Image.fromarray(np.ascontiguousarray(img), mode="L")
        ink, outline = 255, 0
    if min(h, w) < MIN_LABEL_SIDE or not (labels or scale_bar_mm_per_px or title):
        return pil
    size = font_px or _font_px(h, w)
    font = _font(size)
    margin = max(2, int(round(size * LABEL_MARGIN_FRACTION)))
    stroke = max(1, size // 10)
    draw = ImageDraw.Draw(pil)

    def text(xy: tuple[float, float], s: str, anchor: str) -> None:
        draw.text(xy, s, fill=ink, font=font, anchor=anchor, stroke_width=stroke, stroke_fill=outline)

    if labels:
        spots = {
            "top": ((w / 2, margin), "mt"),
            "bottom": ((w / 2, h - margin), "mb"),
            "left": ((margin, h / 2), "lm"),
            "right": ((w - margin, h / 2), "rm"),
        }
        for edge, letter in labels.items():
            if edge not in spots:
                raise ValueError(f"label edges are top, bottom, left, right; got {edge!r}")
            if letter:
                xy, anchor = spots[edge]
                text(xy, str(letter), anchor)
    if scale_bar_mm_per_px:
        length_mm = scale_bar_length_mm(w, float(scale_bar_mm_per_px))
        if length_mm:
            px = int(round(length_mm / float(scale_bar_mm_per_px)))
            x1 = w - margin
            x0 = x1 - px
            y = h - margin - stroke
            thick = max(2, size // 6)
            draw.rectangle((x0 - stroke, y - thick - stroke, x1 + stroke, y + stroke), fill=outline)
            draw.rectangle((x0, y - thick, x1, y), fill=ink)
            caption = f"{length_mm:g} mm"
            half = (font.getlength(caption) if hasattr(font, "getlength") else len(caption) * size * 0.6) / 2 + stroke
            cx = min(max((x0 + x1) / 2, half + 1), w - half - 1)  # keep the caption inside the picture
            text((cx, y - thick - 2 * stroke - max(2, size // 5)), caption, "ms")
    if title:
        text((margin, margin), title, "lt")
    return pil


def _format(path: Path) -> str:
    fmt = PICTURE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: a picture file name ends in {', '.join(PICTURE_FORMATS)}")
    return fmt


def _save(pil: Any, path: Path, *, force: bool) -> Path:
    fmt = _format(path)
    if pil.mode == "I":  # 16-bit grey: drawn on as 32-bit, stored as 16-bit PNG (8-bit JPEG)
        a = np.clip(np.asarray(pil), 0, 65535).astype(np.uint16)
        from PIL import Image

        pil = Image.fromarray((a >> 8).astype(np.uint8)) if fmt == "JPEG" else Image.fromarray(a)
    with atomic_output(path, force=force, suffix=path.suffix.lower()) as tmp:
        if fmt == "JPEG":
            pil.save(tmp, format="JPEG", quality=JPEG_QUALITY, optimize=True)
        else:
            pil.save(tmp, format="PNG", optimize=False, compress_level=6)
    return path


def write_picture(
    path: str | os.PathLike[str],
    image: np.ndarray,
    *,
    force: bool = False,
    labels: Mapping[str, str] | None = None,
    scale_bar_mm_per_px: float | None = None,
    cmap: str | None = None,
    title: str | None = None,
) -> Path:
    """Write a display picture as PNG or JPEG (by extension), atomically; returns the path.

    Parameters
    ----------
    path
        ``.png``, ``.jpg`` or ``.jpeg``. An existing file raises OutputExistsError unless ``force``.
    image
        uint8 (H, W) grey or (H, W, 3) RGB, or uint16 (H, W) (16-bit PNG), already oriented for
        display (:mod:`volume.display`) and windowed.
    labels
        Orientation letters per edge, e.g. :func:`volume.display.edge_labels`; None for none.
    scale_bar_mm_per_px
        Square pixel size in mm; draws a scale bar. None for none.
    cmap
        Colour map for a grey picture (the file becomes RGB).
    title
        Optional text at the top left.

    Pictures smaller than :data:`MIN_LABEL_SIDE` pixels get no letters or scale bar. No metadata
    (text chunks, EXIF) is written.
    """
    path = Path(path)
    _format(path)
    pil = annotate(image, labels=labels, scale_bar_mm_per_px=scale_bar_mm_per_px, cmap=cmap, title=title)
    return _save(pil, path, force=force)


def write_sheet(
    path: str | os.PathLike[str],
    pictures: Sequence[Picture | np.ndarray],
    *,
    force: bool = False,
    cmap: str | None = None,
    gap_px: int = SHEET_GAP_PX,
) -> Path:
    """Write several pictures side by side on one sheet (PNG/JPEG), tops aligned, black between.

    Parameters
    ----------
    pictures
        :class:`Picture` records (or bare uint8 arrays): each is annotated on its own (letters,
        scale bar) with one letter size for the sheet; titles go in a band above the pictures,
        centred on each. Grey and RGB pictures may be mixed (the sheet becomes RGB).
    cmap
        Colour map applied to grey pictures.
    gap_px
        Black gap between pictures.
    """
    from PIL import Image, ImageDraw

    path = Path(path)
    _format(path)
    if not pictures:
        raise ValueError("a sheet needs at least one picture")
    pics = [p if isinstance(p, Picture) else Picture(np.asarray(p)) for p in pictures]
    # one letter size for the whole sheet, from its smallest picture
    font_px = min(_font_px(*np.asarray(p.image).shape[:2]) for p in pics)
    panels = []
    for pic in pics:
        img = _check_image(pic.image)
        if img.dtype == np.uint16:
            img = (img >> 8).astype(np.uint8)
        panels.append(annotate(img, labels=pic.labels, scale_bar_mm_per_px=pic.mm_per_px, cmap=cmap, font_px=font_px))
    mode = "RGB" if any(pn.mode == "RGB" for pn in panels) else "L"
    width = sum(pn.width for pn in panels) + gap_px * (len(panels) - 1)
    band = int(round(font_px * TITLE_BAND_FACTOR)) if any(p.title for p in pics) else 0
    height = max(pn.height for pn in panels) + band
    sheet = Image.new(mode, (width, height), 0)
    draw = ImageDraw.Draw(sheet) if band else None
    ink = LABEL_COLOUR if mode == "RGB" else 255
    x = 0
    for pic, pn in zip(pics, panels, strict=True):
        sheet.paste(pn.convert(mode), (x, band))
        if draw is not None and pic.title:  # titles in a band above, never over the picture
            draw.text((x + pn.width / 2, band / 2), pic.title, fill=ink, font=_font(font_px), anchor="mm")
        x += pn.width + gap_px
    return _save(sheet, path, force=force)


def read_picture(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a PNG/JPEG back as a numpy array ((H, W) grey or (H, W, 3) RGB); for tests and tools."""
    from PIL import Image

    with Image.open(path) as im:
        if im.mode not in ("L", "RGB", "I", "I;16"):
            im = im.convert("RGB")
        return np.asarray(im).copy()


__all__ = [
    "COLORMAPS",
    "PICTURE_FORMATS",
    "Picture",
    "annotate",
    "apply_colormap",
    "colormap_lut",
    "read_picture",
    "scale_bar_length_mm",
    "write_picture",
    "write_sheet",
]

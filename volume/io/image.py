"""Pictures (PNG, JPEG, TIFF) and animated GIFs, with orientation letters and a scale bar: the
only module of volume that writes pictures (the only one that imports Pillow to write).

Input is an already display-oriented, windowed picture (see :mod:`volume.display`,
:func:`volume.ops.window.apply_window` and :mod:`volume.ops.pixel_transforms`): ``uint8`` (H, W)
grey or (H, W, 3) RGB (``uint16`` grey is kept 16-bit in PNG). Nothing from the DICOM header is
written into the file: no EXIF, and no text chunk but those a caller names (``volume png
--raw16``'s value mapping), so a picture carries no patient data beyond its pixels.

>>> write_picture("cor.png", grey, labels=edge_labels("coronal"), scale_bar_mm_per_px=0.45)
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from ..errors import ResourceLimitError
from .atomic import atomic_output

PICTURE_FORMATS: Mapping[str, str] = MappingProxyType(
    {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF"}
)
"""File extensions :func:`write_picture` understands, and the Pillow format each one means."""

JPEG_QUALITY = 92
"""JPEG quality: high enough that windowed grey levels show no visible blocking."""

PNG_COMPRESS_LEVEL = 4
"""zlib level of PNG files: on CT slices ~20 % faster to write than Pillow's default 6, same size."""

GIF_FRAME_MS = 80
"""Frame duration (ms) of an animated GIF when none is given (a turntable's)."""

MIN_GIF_FRAME_MS = 20
"""Shortest GIF frame duration (ms); browsers slow down anything shorter to 100 ms."""

GIF_COLOURS = 255
"""Colours of the one palette an animated GIF of RGB frames shares (one is left for Pillow)."""

GIF_PALETTE_FRAMES = 16
"""Frames (evenly spaced) whose colours choose that palette."""

MAX_PICTURE_SIDE = 32768
"""Longest side of a resampled picture (a nonsense pixel spacing must not allocate gigabytes)."""

ASPECT_TOLERANCE = 1e-3
"""Pixel height/width ratios closer to 1 than this count as square."""

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

UINT16_MAX = 65535
"""Largest sample of a 16-bit picture."""

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
    """A display-oriented picture and what goes with it into a file or onto a sheet.

    Attributes
    ----------
    image
        uint8 (H, W) grey or (H, W, 3) RGB, or uint16 (H, W).
    labels
        Orientation letters by edge (top, bottom, left, right), or None.
    mm_per_px
        Square pixel size in mm (draws a scale bar), or None.
    title
        Text at the top left (on a sheet: in a band above the picture), or None.
    aspect
        Height / width of one pixel in mm (:func:`resize_picture` makes pixels square).
    text
        PNG text chunks to write (``volume png --raw16``'s value mapping); never header text.
    """

    image: np.ndarray
    labels: Mapping[str, str] | None = None
    mm_per_px: float | None = None
    title: str | None = None
    aspect: float = 1.0
    text: Mapping[str, str] = field(default_factory=dict)


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


def _pil_image(img: np.ndarray, *, drawn: bool) -> tuple[Any, Any, Any]:
    """A Pillow image of a checked picture, with the ink and outline colours drawn on it.

    A uint16 picture to draw on is a 32-bit ``I`` image (Pillow draws on no 16-bit mode); one
    without drawing stays ``I;16``.
    """
    from PIL import Image

    if img.ndim == 3:
        return Image.fromarray(np.ascontiguousarray(img), mode="RGB"), LABEL_COLOUR, (0, 0, 0)
    if img.dtype == np.uint16:
        if drawn:
            return Image.fromarray(np.ascontiguousarray(img).astype(np.int32), mode="I"), UINT16_MAX, 0
        return Image.fromarray(np.ascontiguousarray(img)), UINT16_MAX, 0
    return Image.fromarray(np.ascontiguousarray(img), mode="L"), 255, 0


class _Pen:
    """Letters of one size, stroked with an outline, on one Pillow image."""

    def __init__(self, pil: Any, size: int, ink: Any, outline: Any) -> None:
        from PIL import ImageDraw

        self.draw = ImageDraw.Draw(pil)
        self.size, self.ink, self.outline = size, ink, outline
        self.font = _font(size)
        self.margin = max(2, int(round(size * LABEL_MARGIN_FRACTION)))
        self.stroke = max(1, size // 10)

    def text(self, xy: tuple[float, float], s: str, anchor: str) -> None:
        self.draw.text(xy, s, fill=self.ink, font=self.font, anchor=anchor, stroke_width=self.stroke,
                       stroke_fill=self.outline)

    def width(self, s: str) -> float:
        """Drawn width of ``s`` in pixels (an estimate for a bitmap font)."""
        font = self.font
        return font.getlength(s) if hasattr(font, "getlength") else len(s) * self.size * 0.6


def _draw_labels(pen: _Pen, labels: Mapping[str, str], w: int, h: int) -> None:
    m = pen.margin
    spots = {"top": ((w / 2, m), "mt"), "bottom": ((w / 2, h - m), "mb"),
             "left": ((m, h / 2), "lm"), "right": ((w - m, h / 2), "rm")}
    for edge, letter in labels.items():
        if edge not in spots:
            raise ValueError(f"label edges are top, bottom, left, right; got {edge!r}")
        if letter:
            xy, anchor = spots[edge]
            pen.text(xy, str(letter), anchor)


def _draw_scale_bar(pen: _Pen, mm_per_px: float, w: int, h: int) -> None:
    length_mm = scale_bar_length_mm(w, mm_per_px)
    if not length_mm:
        return
    stroke, size = pen.stroke, pen.size
    px = int(round(length_mm / mm_per_px))
    x1 = w - pen.margin
    x0 = x1 - px
    y = h - pen.margin - stroke
    thick = max(2, size // 6)
    pen.draw.rectangle((x0 - stroke, y - thick - stroke, x1 + stroke, y + stroke), fill=pen.outline)
    pen.draw.rectangle((x0, y - thick, x1, y), fill=pen.ink)
    caption = f"{length_mm:g} mm"
    half = pen.width(caption) / 2 + stroke
    cx = min(max((x0 + x1) / 2, half + 1), w - half - 1)  # keep the caption inside the picture
    pen.text((cx, y - thick - 2 * stroke - max(2, size // 5)), caption, "ms")


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

    Returns
    -------
    PIL.Image.Image
        ``L``, ``RGB``, or for uint16 ``I`` (drawn on) or ``I;16``. Pictures with a side shorter
        than :data:`MIN_LABEL_SIDE` get nothing drawn.
    """
    img = _check_image(image)
    if cmap and img.ndim == 2:
        if img.dtype != np.uint8:
            img = (img >> 8).astype(np.uint8)
        img = apply_colormap(img, cmap)
    h, w = img.shape[:2]
    drawn = min(h, w) >= MIN_LABEL_SIDE and bool(labels or scale_bar_mm_per_px or title)
    pil, ink, outline = _pil_image(img, drawn=drawn)
    if not drawn:
        return pil
    pen = _Pen(pil, font_px or _font_px(h, w), ink, outline)
    if labels:
        _draw_labels(pen, labels, w, h)
    if scale_bar_mm_per_px:
        _draw_scale_bar(pen, float(scale_bar_mm_per_px), w, h)
    if title:
        pen.text((pen.margin, pen.margin), title, "lt")
    return pil


def _format(path: Path) -> str:
    fmt = PICTURE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: a picture file name ends in {', '.join(PICTURE_FORMATS)}")
    return fmt


def _save(pil: Any, path: Path, *, force: bool, text: Mapping[str, str] | None = None,
          quality: int = JPEG_QUALITY) -> Path:
    """Encode ``pil`` by ``path``'s extension, atomically: PNG (with ``text`` chunks), JPEG, TIFF.

    A 16-bit grey picture is written 16-bit in PNG and TIFF, its high byte in JPEG.
    """
    from PIL import Image

    fmt = _format(path)
    if pil.mode in ("I", "I;16"):
        a = np.clip(np.asarray(pil), 0, UINT16_MAX).astype(np.uint16)
        pil = Image.fromarray((a >> 8).astype(np.uint8)) if fmt == "JPEG" else Image.fromarray(a)
    with atomic_output(path, force=force, suffix=path.suffix.lower()) as tmp:
        if fmt == "JPEG":
            pil.save(tmp, format="JPEG", quality=int(quality), optimize=False)
        elif fmt == "PNG":
            pil.save(tmp, format="PNG", compress_level=PNG_COMPRESS_LEVEL, pnginfo=_png_text(text))
        else:
            pil.save(tmp, format=fmt)
    return path


def _png_text(text: Mapping[str, str] | None) -> Any:
    """Pillow's PNG text chunks of ``text``, or None."""
    if not text:
        return None
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    for key, value in text.items():
        info.add_text(key, value)
    return info


def write_picture(
    path: str | os.PathLike[str],
    image: np.ndarray,
    *,
    force: bool = False,
    labels: Mapping[str, str] | None = None,
    scale_bar_mm_per_px: float | None = None,
    cmap: str | None = None,
    title: str | None = None,
    text: Mapping[str, str] | None = None,
    quality: int = JPEG_QUALITY,
) -> Path:
    """Write a display picture as PNG, JPEG or TIFF (by extension), atomically; returns the path.

    Parameters
    ----------
    path
        ``.png``, ``.jpg``/``.jpeg`` or ``.tif``/``.tiff``. An existing file raises
        OutputExistsError unless ``force``.
    image
        uint8 (H, W) grey or (H, W, 3) RGB, or uint16 (H, W) (16-bit PNG/TIFF), already oriented
        for display (:mod:`volume.display`) and windowed.
    force
        Overwrite an existing file.
    labels
        Orientation letters per edge, e.g. :func:`volume.display.edge_labels`; None for none.
    scale_bar_mm_per_px
        Square pixel size in mm; draws a scale bar. None for none.
    cmap
        Colour map for a grey picture (the file becomes RGB).
    title
        Optional text at the top left.
    text
        PNG text chunks (``volume png --raw16``'s value mapping); ignored by JPEG and TIFF.
    quality
        JPEG quality (1-100).

    Returns
    -------
    pathlib.Path
        ``path``, in place only once the picture is encoded whole.

    Raises
    ------
    ValueError
        Another extension, or an image that is not a picture (float, 4 channels).
    OutputExistsError
        ``path`` exists and not ``force``.

    Pictures smaller than :data:`MIN_LABEL_SIDE` pixels get no letters or scale bar. No other
    metadata (EXIF) is written.
    """
    path = Path(path)
    _format(path)
    pil = annotate(image, labels=labels, scale_bar_mm_per_px=scale_bar_mm_per_px, cmap=cmap, title=title)
    return _save(pil, path, force=force, text=text, quality=quality)


def square_size(width: int, height: int, aspect: float) -> tuple[int, int]:
    """(width, height) that makes pixels of height/width ``aspect`` square, never shrinking an axis."""
    if abs(aspect - 1.0) <= ASPECT_TOLERANCE:
        return width, height
    if aspect > 1:
        return width, max(1, round(height * aspect))
    return max(1, round(width / aspect)), height


def output_size(width: int, height: int, size: int, keep_ratio: bool) -> tuple[int, int]:
    """Target (width, height): ``size`` x ``size``, or the longest side ``size`` with the aspect kept."""
    if not keep_ratio:
        return size, size
    scale = size / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def resize_picture(image: np.ndarray, *, aspect: float = 1.0, size: int | None = None,
                   keep_ratio: bool = False, square: bool = False) -> np.ndarray:
    """A picture resampled (Lanczos) once: for square pixels, then to ``size``.

    Parameters
    ----------
    image
        uint8 (H, W) or (H, W, 3), or uint16 (H, W).
    aspect
        Height / width of one pixel in mm.
    size
        SIZE x SIZE pixels, or with ``keep_ratio`` the longest side SIZE; None keeps the size.
    keep_ratio
        Keep the aspect ratio when resizing to ``size``.
    square
        Stretch the axis with the larger pixel spacing so that pixels are square in mm.

    Returns
    -------
    numpy.ndarray
        The same dtype; ``image`` itself when nothing changes.

    Raises
    ------
    ResourceLimitError
        A side longer than :data:`MAX_PICTURE_SIDE` (a nonsense pixel spacing).
    """
    from PIL import Image

    h, w = image.shape[:2]
    target = square_size(w, h, aspect) if square else (w, h)
    if size:
        target = output_size(target[0], target[1], size, keep_ratio)
    if max(target) > MAX_PICTURE_SIDE:
        raise ResourceLimitError(
            f"the picture would be {target[0]}x{target[1]} pixels (pixel aspect {aspect:.3g} from "
            f"the header); more than {MAX_PICTURE_SIDE} a side: drop --square-pixels or use --size"
        )
    if target == (w, h):
        return image
    if image.dtype == np.uint16:  # Pillow resamples 16-bit data as 32-bit float
        img = Image.fromarray(image.astype(np.float32), mode="F").resize(target, Image.Resampling.LANCZOS)
        return np.clip(np.rint(np.asarray(img, dtype=np.float32)), 0, UINT16_MAX).astype(np.uint16)
    return np.asarray(Image.fromarray(image).resize(target, Image.Resampling.LANCZOS))


def _gif_frames(frames: Sequence[np.ndarray]) -> list[Any]:
    """Pillow frames of an animated GIF: grey as ``L``; RGB quantized to one palette made from
    evenly spaced frames (one palette for all, so colours do not flicker from frame to frame)."""
    from PIL import Image

    arrays = [_check_image(f) for f in frames]
    arrays = [(a >> 8).astype(np.uint8) if a.dtype == np.uint16 else a for a in arrays]
    if all(a.ndim == 2 for a in arrays):
        return [Image.fromarray(np.ascontiguousarray(a), mode="L") for a in arrays]
    rgb = [np.repeat(a[..., None], 3, axis=2) if a.ndim == 2 else a for a in arrays]
    step = max(1, len(rgb) // GIF_PALETTE_FRAMES)
    sample = Image.fromarray(np.ascontiguousarray(np.concatenate(rgb[::step], axis=0)), mode="RGB")
    palette = sample.quantize(colors=GIF_COLOURS, method=Image.Quantize.MEDIANCUT)
    return [Image.fromarray(np.ascontiguousarray(a), mode="RGB").quantize(palette=palette, dither=Image.Dither.NONE)
            for a in rgb]


def write_gif(
    frames: Sequence[np.ndarray],
    path: str | os.PathLike[str],
    *,
    force: bool = False,
    durations_ms: float | Sequence[float] = GIF_FRAME_MS,
) -> Path:
    """Write pictures as a looping animated GIF, atomically; returns the path.

    Parameters
    ----------
    frames
        Pictures of one size: uint8 (H, W) grey or (H, W, 3) RGB (uint16 grey keeps its high byte).
    path
        A ``.gif`` file.
    force
        Overwrite an existing file.
    durations_ms
        How long each frame shows: one duration for all, or one per frame (at least
        :data:`MIN_GIF_FRAME_MS`; GIF stores hundredths of a second).

    Returns
    -------
    pathlib.Path
        ``path``, in place only once every frame is encoded.

    Raises
    ------
    ValueError
        Another extension, or no frames.
    OutputExistsError
        ``path`` exists and not ``force``.
    """
    path = Path(path)
    if path.suffix.lower() != ".gif":
        raise ValueError(f"{path}: an animation is written as .gif")
    images = _gif_frames(list(frames))
    if not images:
        raise ValueError(f"{path}: no frames to write")
    if isinstance(durations_ms, (int, float)):
        durations_ms = [durations_ms] * len(images)
    durations = [max(MIN_GIF_FRAME_MS, int(round(d))) for d in durations_ms][: len(images)]
    with atomic_output(path, force=force) as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:],
                       duration=durations if len(durations) > 1 else durations[0], loop=0, optimize=False,
                       disposal=1)
    return path


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
    "resize_picture",
    "scale_bar_length_mm",
    "write_gif",
    "write_picture",
    "write_sheet",
]

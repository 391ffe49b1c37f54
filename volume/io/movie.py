"""Turntable movies: MP4 (H.264) and WebM (VP9) through imageio and its imageio-ffmpeg plugin.

imageio-ffmpeg ships an ffmpeg binary on PyPI (the ``movie`` extra), so nothing comes from the
system. Both codecs store 4:2:0 colour, which needs even picture sides: an odd side gets one black
row or column (the picture is not scaled). Written atomically (a temporary file beside the target,
then renamed); an existing file is kept unless ``force``.

imageio is imported inside functions only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType

import numpy as np

from ..errors import UsageError
from .atomic import atomic_output

MOVIE_FPS = 12.5
"""Frames per second of a turntable movie (80 ms a frame, as the GIF)."""

MOVIE_CODECS: Mapping[str, tuple[str, tuple[str, ...]]] = MappingProxyType(
    {
        # H.264 at constant quality (CRF 18: visually lossless for renderings), playable everywhere.
        ".mp4": ("libx264", ("-crf", "18", "-preset", "medium", "-movflags", "+faststart")),
        # VP9 at constant quality (CRF 24 with -b:v 0), for web pages.
        ".webm": ("libvpx-vp9", ("-crf", "24", "-b:v", "0", "-row-mt", "1")),
    }
)
"""ffmpeg encoder and its output options, by file extension."""

MOVIE_EXTRA_HINT = "writing {suffix} needs the 'movie' extra: pip install 'volume[movie]' (imageio, imageio-ffmpeg)"
"""The one line printed when imageio or imageio-ffmpeg is missing."""


def check_movie_support(path: str | os.PathLike[str]) -> None:
    """Raise :class:`UsageError` (one line naming the extra) when imageio-ffmpeg is missing."""
    suffix = Path(path).suffix.lower()
    try:
        import imageio.v2  # noqa: F401
        import imageio_ffmpeg

        imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        raise UsageError(MOVIE_EXTRA_HINT.format(suffix=suffix)) from None


def even_frame(frame: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` uint8 padded with black to even sides (4:2:0 chroma needs them)."""
    h, w = frame.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return np.ascontiguousarray(frame, dtype=np.uint8)
    out = np.zeros((h + h % 2, w + w % 2, 3), dtype=np.uint8)
    out[:h, :w] = frame
    return out


def write_movie(
    frames: Sequence[np.ndarray], path: str | os.PathLike[str], *, force: bool = False, fps: float = MOVIE_FPS
) -> Path:
    """Write ``(H, W, 3)`` uint8 pictures as an MP4 (H.264) or WebM (VP9) movie, atomically.

    Raises
    ------
    UsageError
        Another extension, no frames, or the ``movie`` extra missing.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in MOVIE_CODECS:
        raise UsageError(f"{path}: a movie is written as {' or '.join(MOVIE_CODECS)}")
    if not frames:
        raise UsageError(f"{path}: no frames to write")
    check_movie_support(path)
    import imageio.v2 as imageio

    codec, options = MOVIE_CODECS[suffix]
    with atomic_output(path, force=force) as tmp:
        writer = imageio.get_writer(
            str(tmp), format="FFMPEG", mode="I", fps=fps, codec=codec, pixelformat="yuv420p",
            macro_block_size=1, output_params=list(options), ffmpeg_log_level="error",
        )
        try:
            for frame in frames:
                writer.append_data(even_frame(frame))
        finally:
            writer.close()
    return Path(path)


def read_movie(path: str | os.PathLike[str]) -> list[np.ndarray]:
    """Decode every frame of a movie: ``(H, W, 3)`` uint8 pictures (for tests and checks)."""
    check_movie_support(path)
    import imageio.v2 as imageio

    reader = imageio.get_reader(str(path), format="FFMPEG")
    try:
        return [np.asarray(f)[..., :3] for f in reader]
    finally:
        reader.close()


__all__ = ["MOVIE_CODECS", "MOVIE_FPS", "check_movie_support", "even_frame", "read_movie", "write_movie"]

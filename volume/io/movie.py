"""Turntable movies: MP4 (H.264) and WebM (VP9) encoded by the ffmpeg binary of imageio-ffmpeg.

imageio-ffmpeg ships an ffmpeg binary on PyPI (the ``movie`` extra), so nothing comes from the
system. Both codecs store 4:2:0 colour, which needs even picture sides: an odd side gets one black
row or column (the picture is not scaled). Written atomically (a temporary file beside the target,
then renamed); an existing file is kept unless ``force``.

imageio is imported inside functions only.
"""

from __future__ import annotations

import errno
import os
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType

import numpy as np

from .. import lifecycle
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

    ffmpeg (imageio-ffmpeg's binary) encodes the pictures piped to it. Its exit status is checked
    and its messages are kept off the terminal: a movie it could not finish (a full disk) raises
    ``OSError`` naming ``path`` and its partial file is removed. On Ctrl-C (any stop signal) ffmpeg
    is killed, not waited for.

    Raises
    ------
    UsageError
        Another extension, no frames, or the ``movie`` extra missing.
    OSError
        ffmpeg could not write the movie (``ENOSPC`` for a full disk).
    """
    suffix = Path(path).suffix.lower()
    if suffix not in MOVIE_CODECS:
        raise UsageError(f"{path}: a movie is written as {' or '.join(MOVIE_CODECS)}")
    if not frames:
        raise UsageError(f"{path}: no frames to write")
    check_movie_support(path)
    import imageio_ffmpeg

    codec, options = MOVIE_CODECS[suffix]
    pictures = [even_frame(f) for f in frames]
    h, w = pictures[0].shape[:2]
    cmd = [
        imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-hide_banner", "-loglevel", "error",
        "-f", "rawvideo", "-vcodec", "rawvideo", "-s", f"{w}x{h}", "-pix_fmt", "rgb24",
        "-r", f"{fps:g}", "-i", "-", "-an",
        "-vcodec", codec, "-pix_fmt", "yuv420p", *options,
    ]
    with atomic_output(path, force=force) as tmp:
        _encode(cmd + ["-f", MOVIE_MUXERS[suffix], os.fspath(tmp)], pictures, Path(path))
    return Path(path)


MOVIE_MUXERS = MappingProxyType({".mp4": "mp4", ".webm": "webm"})
"""ffmpeg's container format of each extension (the temporary file's name does not say it)."""

FFMPEG_MESSAGE_CHARS = 300
"""Characters of ffmpeg's last message line quoted in an error."""


def _encode(cmd: list[str], pictures: Sequence[np.ndarray], path: Path) -> None:
    """Run ffmpeg on ``pictures`` (equal sizes) piped as raw RGB; raise ``OSError`` naming ``path``
    when it fails. ffmpeg runs in a process group of its own (Ctrl-C in a terminal reaches volume,
    which kills it) and its messages go to a temporary file, quoted in the error."""
    with tempfile.TemporaryFile() as log:
        proc: subprocess.Popen[bytes] | None = None
        try:
            with lifecycle.deferred():  # a stop signal now comes once ``proc`` is known (and killed)
                proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=log,
                                        start_new_session=True)
            assert proc.stdin is not None
            try:
                for picture in pictures:
                    proc.stdin.write(np.ascontiguousarray(picture).tobytes())
                proc.stdin.close()
            except BrokenPipeError:  # ffmpeg stopped reading: its exit status and message say why
                pass
            code = proc.wait()
        except BaseException:  # Ctrl-C, SIGTERM: the movie is discarded, ffmpeg is not waited for
            if proc is not None:
                proc.kill()
                proc.wait()
            raise
        if code != 0:
            log.seek(0)
            text = log.read().decode("utf-8", "replace")
            raise _ffmpeg_error(text, code, path)


def _ffmpeg_error(text: str, code: int, path: Path) -> OSError:
    """``OSError`` for a failed ffmpeg run: the errno its message names (no space, quota, I/O), else EIO."""
    for number in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO):
        if os.strerror(number).lower() in text.lower():
            return OSError(number, os.strerror(number), os.fspath(path))
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    last = lines[-1][:FFMPEG_MESSAGE_CHARS] if lines else f"exit status {code}"
    return OSError(errno.EIO, f"ffmpeg could not write the movie ({last})", os.fspath(path))


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

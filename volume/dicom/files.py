"""Open DICOM files as archives store them: plain, or each file gzip-compressed.

Some archives and test suites keep every DICOM file gzip-compressed (``IM_0001.gz``); dcm2niix
and most viewers cannot read them. volume reads them like any other file: the scanner parses the
decompressed bytes, and pixel data is read from them again when a stack loads (decompressing a
slice takes well under a millisecond). File names still mean nothing: a file is gzip when its
first two bytes say so.
"""

from __future__ import annotations

import functools
import io
import zlib
from typing import BinaryIO

GZIP_MAGIC = b"\x1f\x8b"
"""The first two bytes of every gzip stream (RFC 1952)."""

GZIP = "gzip"
"""The ``file_compression`` of a record whose file is gzip-compressed (``""`` for a plain file)."""

MAX_GUNZIP_BYTES = 2**31
"""A gzip file that inflates beyond this is refused (a decompression bomb, not one DICOM file)."""


class GunzipError(ValueError):
    """A gzip file that is corrupt, truncated, or inflates beyond :data:`MAX_GUNZIP_BYTES`."""


def compression_of(head: bytes) -> str:
    """``"gzip"`` when a file's first bytes are a gzip header, else ``""``."""
    return GZIP if head[:2] == GZIP_MAGIC else ""


def file_compression(path: str) -> str:
    """``"gzip"`` for a gzip-compressed file, ``""`` otherwise (also when it cannot be read)."""
    try:
        with open(path, "rb") as fh:
            return compression_of(fh.read(2))
    except OSError:
        return ""


def gunzip(path: str) -> bytes:
    """The decompressed bytes of a gzip file (every member, as ``gzip.decompress`` reads them).

    Raises
    ------
    GunzipError
        Corrupt or truncated data, or more than :data:`MAX_GUNZIP_BYTES` once inflated.
    OSError
        The file cannot be read.
    """
    with open(path, "rb") as fh:
        raw = fh.read()
    out = []
    size = 0
    while raw:
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            part = inflater.decompress(raw, MAX_GUNZIP_BYTES + 1 - size)
        except zlib.error as exc:
            raise GunzipError(f"corrupt gzip data ({exc})") from None
        size += len(part)
        if size > MAX_GUNZIP_BYTES or inflater.unconsumed_tail:
            raise GunzipError(f"inflates beyond {MAX_GUNZIP_BYTES} bytes")
        if not inflater.eof:
            raise GunzipError("truncated gzip data")
        out.append(part)
        raw = inflater.unused_data.lstrip(b"\0")  # another member may follow (padding is allowed)
    return b"".join(out)


@functools.lru_cache(maxsize=2)
def gunzip_cached(path: str) -> bytes:
    """:func:`gunzip` of the last files asked for: the frames of one multi-frame file are read one
    by one (possibly from several threads), each from the same decompressed bytes."""
    return gunzip(path)


def open_source(path: str, compression: str) -> str | BinaryIO:
    """What pydicom should read: the path of a plain file, the decompressed bytes of a gzip one."""
    if compression == GZIP:
        return io.BytesIO(gunzip_cached(path))
    return path

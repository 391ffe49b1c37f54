"""The one way into a DICOM file: its dataset, or why it is skipped (a :class:`Skip`).

Every reader of DICOM files in volume opens them here: the scanner (for the files its fast reader
leaves to pydicom), the picture pipeline (``png``), the index and ``volume info``. Here and only
here (with the DICOM writers of :mod:`volume.io`) pydicom is imported, inside the functions that
need it (its import costs 0.2 s: a native series is scanned and converted without it). The same
rules hold for every reader:

- an empty file, one that cannot be read, one that is not DICOM: skipped, with the reason;
- a file without the 128-byte preamble that starts like a dataset (a group 0002 or 0008 element)
  is read anyway (what pydicom's ``force`` does); anything else pydicom refuses is not DICOM;
- a DICOMDIR, or a dataset without pixel data, is no image (:func:`image_skip`);
- pydicom's warnings (which can quote header values) never reach stderr.
"""

from __future__ import annotations

import enum
import os
import warnings
from collections.abc import Callable
from typing import Any, BinaryIO

from .files import GunzipError, open_source
from .values import looks_like_headerless_dicom, to_str, value_of


class Skip(str, enum.Enum):
    """Why a file is no image volume reads: the reasons the scanner, ``png`` and ``index`` count.

    A ``str``: ``Skip.EMPTY == "empty"``, and it prints as its reason.
    """

    EMPTY = "empty"
    UNREADABLE = "unreadable"
    NOT_DICOM = "not DICOM"
    TRUNCATED = "truncated or corrupt"
    DICOMDIR = "DICOMDIR index"
    NO_PIXELS = "no pixel data"

    def __str__(self) -> str:
        return self.value


#: Pixel Data, Float Pixel Data, Double Float Pixel Data: where a header ends and an image begins.
PIXEL_TAGS = (0x7FE00010, 0x7FE00008, 0x7FE00009)

#: SOP Class of a DICOMDIR (an index of other files, never an image).
MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"


def size_skip(path: str | os.PathLike[str]) -> Skip | None:
    """:attr:`Skip.EMPTY` or :attr:`Skip.UNREADABLE` from the file's size alone, else None."""
    try:
        return Skip.EMPTY if os.path.getsize(path) == 0 else None
    except OSError:
        return Skip.UNREADABLE


def _head(source: str | BinaryIO) -> bytes:
    if isinstance(source, str):
        with open(source, "rb") as f:
            return f.read(8)
    source.seek(0)
    head = source.read(8)
    source.seek(0)
    return head


def _with_force(source: str | BinaryIO, read: Callable[[str | BinaryIO, bool], Any]) -> Any:
    """``read(source, force)``: without ``force``, then with it when pydicom refused a file whose
    first bytes are a dataset's (no preamble); :attr:`Skip.NOT_DICOM` otherwise."""
    from pydicom.errors import InvalidDicomError

    try:
        return read(source, False)
    except InvalidDicomError:
        if looks_like_headerless_dicom(_head(source)):
            if not isinstance(source, str):
                source.seek(0)
            return read(source, True)
        return Skip.NOT_DICOM


def read_dataset(
    path: str | os.PathLike[str],
    *,
    compression: str = "",
    defer_size: int | str | None = None,
    stop_before_pixels: bool = False,
    corrupt: str = "skip",
) -> Any:
    """The dataset of one file (pydicom's), or the :class:`Skip` that says why there is none.

    Parameters
    ----------
    path
        The file.
    compression
        ``"gzip"`` for a gzip-compressed file (:mod:`volume.dicom.files`): its bytes are read.
    defer_size
        Values larger than this stay on disk until asked for (pydicom's ``defer_size``).
    stop_before_pixels
        Read the header only.
    corrupt
        What a file pydicom fails on (a broken header, a truncated file) gives: ``"skip"``,
        :attr:`Skip.TRUNCATED`; ``"raise"``, pydicom's exception (the caller reports it).

    Returns
    -------
    pydicom.Dataset or Skip
    """
    import pydicom

    path = os.fspath(path)
    skip = size_skip(path)
    if skip is not None:
        return skip

    def read(source: str | BinaryIO, force: bool) -> Any:
        return pydicom.dcmread(source, defer_size=defer_size, stop_before_pixels=stop_before_pixels, force=force)

    from pydicom.errors import InvalidDicomError

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return _with_force(open_source(path, compression), read)
        except OSError:
            return Skip.UNREADABLE
        except GunzipError:
            return Skip.TRUNCATED
        except InvalidDicomError:  # refused even with force
            return Skip.NOT_DICOM
        except Exception:  # noqa: BLE001 - pydicom raises many kinds on garbage
            if corrupt == "raise":
                raise
            return Skip.TRUNCATED


def read_until_pixels(path: str | os.PathLike[str]) -> tuple[Any, int | None] | Skip:
    """The dataset up to (not including) its pixel data, and the pixel data's tag if there is one.

    The parser stops when it meets a pixel data tag (:data:`PIXEL_TAGS`): the value is neither
    read nor scanned (encapsulated data included), and the other values stay raw bytes in memory
    until asked for. Returns the :class:`Skip` of a file that gives no dataset.
    """
    from pydicom.errors import InvalidDicomError
    from pydicom.filereader import read_partial

    path = os.fspath(path)
    skip = size_skip(path)
    if skip is not None:
        return skip
    found: list[int] = []

    def stop(tag: Any, vr: Any, length: int) -> bool:
        if int(tag) in PIXEL_TAGS:
            found.append(int(tag))
            return True
        return False

    def read(source: str | BinaryIO, force: bool) -> Any:
        found.clear()
        return read_partial(source, stop_when=stop, force=force)  # type: ignore[arg-type]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with open(path, "rb") as fp:
                ds = _with_force(fp, read)
        except OSError:
            return Skip.UNREADABLE
        except InvalidDicomError:  # refused even with force
            return Skip.NOT_DICOM
        except Exception:  # noqa: BLE001 - pydicom raises many kinds on garbage
            return Skip.TRUNCATED
    return ds if isinstance(ds, Skip) else (ds, found[0] if found else None)


def image_skip(ds: Any, *, has_pixels: bool | None = None) -> Skip | None:
    """:attr:`Skip.DICOMDIR` or :attr:`Skip.NO_PIXELS` for a dataset that is no image, else None.

    ``has_pixels`` says whether the file holds pixel data when the dataset was read without it
    (:func:`read_until_pixels`); by default the dataset itself is asked.
    """
    meta = getattr(ds, "file_meta", None)
    sop_class = to_str(value_of(meta, "MediaStorageSOPClassUID") if meta else None) or to_str(
        value_of(ds, "SOPClassUID")
    )
    if sop_class == MEDIA_STORAGE_DIRECTORY or "DirectoryRecordSequence" in ds:
        return Skip.DICOMDIR
    if has_pixels is None:
        has_pixels = any(tag in ds for tag in PIXEL_TAGS)
    return None if has_pixels else Skip.NO_PIXELS


def pixel_element(ds: Any) -> Any:
    """The pixel data element of a dataset read with its pixels deferred (or the fast reader's), None without one."""
    for tag in PIXEL_TAGS:
        element = ds.get_item(tag, keep_deferred=True)
        if element is not None:
            return element
    return None


__all__ = [
    "MEDIA_STORAGE_DIRECTORY",
    "PIXEL_TAGS",
    "Skip",
    "image_skip",
    "pixel_element",
    "read_dataset",
    "read_until_pixels",
    "size_skip",
]

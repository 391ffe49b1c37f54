"""The path a folder job reads: a folder, or one file that stands for its whole series.

``volume convert IM-0001-0012.dcm`` with 21 more images of that series beside it means "this
series", as it does for dcm2niix (which converts every image of the file's folder unless ``-s y``).
The jobs that make volumes (convert, mip, reslice; and the commands render, view, mesh) therefore
read the file's folder (not its sub-folders), take the stack the file belongs to, and say so.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..dicom import scan
from .events import QUIET, Events


def scan_input(path: Path, series: str | None, *, verb: str, single_file: bool = False,
               progress: Callable[[int], None] | None = None, alone: str = "",
               events: Events = QUIET) -> tuple[Any, str | None]:
    """Scan ``path``; when it is one file of a series with more images in its folder, the series.

    Parameters
    ----------
    path
        The command's PATH argument.
    series
        ``--series``; when given, ``path`` is taken literally.
    verb
        What the command does to the series, for the message (``converting``).
    single_file
        Take the file literally (``convert --single-file``).
    alone
        How to use the file alone instead, added to the message (``--single-file converts ...``).
    events
        Told (a warning) when the file stands for its series.

    Returns
    -------
    (Scan, str | None)
        The scan (of the folder when the file stands for its series) and the series selector to
        use (that stack's id, or ``series`` unchanged).
    """
    found = scan(path, progress=progress)
    if series is not None or single_file or not path.is_file() or len(found.stacks) != 1:
        return found, series
    folder = os.path.dirname(os.fspath(path)) or "."
    try:
        with os.scandir(folder) as entries:
            siblings = sorted(e.path for e in entries if e.is_file())
    except OSError:
        return found, series
    if len(siblings) < 2:
        return found, series
    whole = scan(siblings, progress=progress)
    own = found.stacks[0]
    name = os.path.basename(path)
    mine = [st for st in whole.stacks
            if st.series_uid == own.series_uid and any(os.path.basename(f) == name for f in st.files)]
    if len(mine) != 1 or len(mine[0].files) < 2:
        return found, series
    stack = mine[0]
    what = f"series {stack.id}" + (f" {stack.series_description}" if stack.series_description else "")
    events.warn(f"{path}: one image of {what} ({len(stack.files)} files in {folder}): {verb} the whole series"
         + (f"; {alone}" if alone else ""))
    return dataclasses.replace(whole, paths=(folder,)), stack.id


def read_input(path: Path, series: str | None, *, verb: str, events: Events = QUIET,
               **options: Any) -> tuple[Any, str | None]:
    """:func:`scan_input` behind a "reading headers" progress bar, the skipped files warned about."""
    with events.progress("reading headers", None) as advance:
        found, series = scan_input(path, series, verb=verb, progress=advance, events=events, **options)
    if found.skipped:
        events.warn(found.skipped)
    return found, series

"""What a folder job says as it works, and to whom: the command line prints it, the API stays quiet.

A job (``mip``, ``reslice``, ``convert``) takes an :class:`Events`: the command line passes one
that prints warnings and status lines on stderr, each written file on stdout, and progress bars
on a terminal; the Python API's default says nothing (what matters is in the job's results). A
file is announced the moment it is whole, so a job stopped halfway (Ctrl-C) has listed exactly
what it left.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

Advance = Callable[[int], None]
"""Called with how many more units of a task are done."""


def _nothing(_: object) -> None:
    """Ignore a message."""


@contextlib.contextmanager
def no_progress(label: str, total: int | None) -> Iterator[Advance]:
    """A progress bar that draws nothing."""
    yield lambda n=1: None


@dataclass(frozen=True)
class Events:
    """Where a job reports, as it works.

    Attributes
    ----------
    warn
        A warning naming its series (``series 5: oblique by 12°...``).
    status
        A line about an item that is not a warning (``series 5: skipped, out/x.png exists...``).
    written
        A file, once it is whole.
    progress
        ``progress(label, total)``: a context manager yielding ``advance(n)`` (``total`` None:
        unknown).
    """

    warn: Callable[[str], None] = _nothing
    status: Callable[[str], None] = _nothing
    written: Callable[[Path], None] = _nothing
    progress: Callable[[str, int | None], AbstractContextManager[Advance]] = no_progress


QUIET = Events()
"""The events of a job nobody watches (the Python API's default)."""

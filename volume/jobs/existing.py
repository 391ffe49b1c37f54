"""Skipping what exists: the one place that decides it for every job that writes files.

An existing output is never overwritten without ``--force``. Every job (``convert``, ``mip``,
``png``, ``reslice``, ``render``) plans the outputs of each item (a series, or an input file for
``png``) and asks :func:`check_outputs` before doing the work:

* every output exists: the item is **skipped** (said once, :meth:`Existing.message`), counted
  among the skipped, and costs nothing more (no pixel is read);
* some exist: a job whose outputs are independent pictures (slabs, slices, frames) writes the
  missing ones, so a re-run finishes an interrupted batch; ``convert``, whose image and sidecar
  are one result, skips the series unless ``--skip-existing``;
* none: the work is done.

:class:`Tally` counts a batch the same way everywhere (``projected 3, skipped 1, failed 0``) and
gives its exit code: 1 when an item failed, 5 when nothing was written because outputs existed
(``--force`` overwrites), 0 otherwise (a re-run that finished what was missing included).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..errors import EXIT_OUTPUT_EXISTS, EXIT_PARTIAL

FORCE_HINT = "use --force to overwrite"
"""What every "exists" message tells the user to do."""

EXISTS_REASON = "with existing outputs"
"""The reason a skipped item is counted under (``png``'s summary lists reasons)."""


@dataclass(frozen=True)
class Existing:
    """Which of an item's planned outputs exist already (none when ``--force``)."""

    wanted: tuple[Path, ...]
    present: tuple[Path, ...]

    @property
    def all(self) -> bool:
        """Every output exists: skip the item."""
        return bool(self.wanted) and len(self.present) == len(self.wanted)

    @property
    def any(self) -> bool:
        return bool(self.present)

    @property
    def missing(self) -> tuple[Path, ...]:
        """The planned outputs still to write, in plan order."""
        there = set(self.present)
        return tuple(p for p in self.wanted if p not in there)

    def message(self) -> str:
        """``out/x.png exists; use --force to overwrite`` (``... and 21 more exist; ...`` for several)."""
        if not self.present:
            return ""
        more = len(self.present) - 1
        return f"{self.present[0]} {f'and {more} more exist' if more else 'exists'}; {FORCE_HINT}"


def check_outputs(wanted: Iterable[str | os.PathLike[str]], *, force: bool) -> Existing:
    """The outputs of ``wanted`` that exist (a file, or anything else at that path), unless ``force``.

    Parameters
    ----------
    wanted
        The item's planned output paths.
    force
        ``--force``: nothing counts as existing (everything is rewritten).

    Returns
    -------
    Existing
        ``wanted`` and the paths among them that exist, in order.
    """
    paths = tuple(Path(p) for p in wanted)
    present = () if force else tuple(p for p in paths if os.path.lexists(p))
    return Existing(paths, present)


@dataclass
class Tally:
    """The counts of a batch and its closing line, the same for every job.

    ``skipped`` counts every item not done on purpose (outputs that exist, localizers that are not
    volumes, files without pixel data); ``existing`` those of them skipped because their outputs exist.
    """

    verb: str
    done: int = 0
    skipped: int = 0
    existing: int = 0
    failed: int = 0

    def skip_existing(self) -> None:
        """Count an item skipped because its outputs exist."""
        self.skipped += 1
        self.existing += 1

    def line(self) -> str:
        """``projected 3, skipped 1, failed 0``."""
        return f"{self.verb} {self.done}, skipped {self.skipped}, failed {self.failed}"

    def exit_code(self) -> int:
        """1 when an item failed; 5 when nothing was done because outputs existed; else 0."""
        if self.failed:
            return EXIT_PARTIAL
        if self.done == 0 and self.existing:
            return EXIT_OUTPUT_EXISTS
        return 0

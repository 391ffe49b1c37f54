"""The files a BIDS dataset shares between its subjects: written so that two conversions into one
dataset at once both land whole.

``dataset_description.json`` and the README are created when absent and never touched after;
``participants.tsv`` and each ``*_scans.tsv`` gain rows under a lock (``.volume-bids.lock`` in the
dataset's root, an advisory ``flock``), read, merged and replaced atomically, so no row of another
process is lost and no reader sees half a table.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import OutputExistsError
from .atomic import atomic_output

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks, one writer at a time
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".volume-bids.lock"
"""The lock file in a dataset's root (hidden: validators and pybids skip dot files)."""

NA = "n/a"
"""BIDS's missing value in TSV files."""


@contextlib.contextmanager
def dataset_lock(root: str | os.PathLike[str]) -> Iterator[None]:
    """Hold the dataset's lock (exclusive, blocking) while the shared tables are merged."""
    path = Path(root) / LOCK_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        if fcntl is not None:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def create_text(path: str | os.PathLike[str], text: str) -> bool:
    """Write ``text`` to ``path`` unless it exists (atomically; a file another process created
    meanwhile is kept). Returns True when this call wrote it."""
    try:
        with atomic_output(path) as tmp:
            tmp.write_text(text, encoding="utf-8")
    except OutputExistsError:
        return False
    return True


def create_json(path: str | os.PathLike[str], payload: Mapping[str, Any]) -> bool:
    """:func:`create_text` of ``payload`` as indented JSON."""
    return create_text(path, json.dumps(payload, indent=2, ensure_ascii=False) + "\n")


def read_tsv(path: str | os.PathLike[str]) -> tuple[list[str], list[dict[str, str]]]:
    """Columns and rows of a TSV file (empty when absent)."""
    p = Path(path)
    if not p.exists():
        return [], []
    lines = [line for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not lines:
        return [], []
    columns = lines[0].split("\t")
    rows = [dict(zip(columns, line.split("\t") + [NA] * (len(columns) - len(line.split("\t"))), strict=False))
            for line in lines[1:]]
    return columns, rows


def _cell(value: Any) -> str:
    text = NA if value is None or value == "" else str(value)
    return " ".join(text.replace("\t", " ").splitlines())


def merge_tsv(path: str | os.PathLike[str], key: str, columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> int:
    """Add ``rows`` to the TSV at ``path`` (created with ``columns`` when absent): rows whose
    ``key`` is there already are kept as they are, columns the file lacks are added (``n/a`` in the
    old rows), columns it has that ``rows`` lack get ``n/a``. Call it under :func:`dataset_lock`.
    Returns the number of rows added."""
    old_columns, old_rows = read_tsv(path)
    all_columns = list(old_columns) or [key]
    for c in columns:
        if c not in all_columns:
            all_columns.append(c)
    present = {r.get(key) for r in old_rows}
    added = [dict(r) for r in rows if str(r.get(key)) not in present]
    if not added and old_columns == all_columns:
        return 0
    body = ["\t".join(all_columns)]
    for row in [*old_rows, *added]:
        body.append("\t".join(_cell(row.get(c)) for c in all_columns))
    with atomic_output(path, force=True, suffix=".tsv") as tmp:
        tmp.write_text("\n".join(body) + "\n", encoding="utf-8")
    return len(added)


__all__ = ["LOCK_NAME", "NA", "create_json", "create_text", "dataset_lock", "merge_tsv", "read_tsv"]

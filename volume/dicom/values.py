"""One vocabulary for DICOM values, shared by the scanner, the picture pipeline and the index.

Header values in the wild hold every kind of nonsense. Each helper turns what pydicom (or
:mod:`volume.dicom.fastheader`) gives into a plain Python value, or ``None`` when the value is
missing or malformed, never raising: a broken element is as good as a missing one, and the caller
says what is missing. Also here: where an enhanced (multi-frame) file keeps a value (its
functional groups), and what the first bytes of a file say about it being DICOM.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from typing import Any


def value_of(ds: Any, keyword: str) -> Any:
    """``ds.get(keyword)``, or ``None`` when reading it raises."""
    try:
        return ds.get(keyword)
    except Exception:  # noqa: BLE001 - a malformed value is as good as a missing one here
        return None


def to_float(value: Any, i: int = 0) -> float | None:
    """Value ``i`` of a number (or of a multi-valued one) as a finite float."""
    if value is None or value == "":
        return None
    try:
        if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
            value = value[i]
        elif i:
            return None
        f = float(value)
    except (TypeError, ValueError, IndexError):
        return None
    return f if math.isfinite(f) else None


def to_floats(value: Any, n: int) -> tuple[float, ...] | None:
    """Exactly ``n`` finite floats (a position, an orientation), else ``None``."""
    if value is None:
        return None
    try:
        seq = [float(v) for v in value]
    except (TypeError, ValueError):
        return None
    if len(seq) != n or not all(map(math.isfinite, seq)):
        return None
    return tuple(seq)


def to_int(value: Any) -> int | None:
    """A whole number (``"3"``, ``3.0``), else ``None``."""
    f = to_float(value)
    return int(f) if f is not None and float(f).is_integer() else None


def first_value(datasets: Iterable[Any], keyword: str) -> Any:
    """The first value of ``keyword`` among ``datasets`` that is neither absent nor empty, or None
    (a value the dataset cannot convert counts as absent)."""
    for ds in datasets:
        try:
            value = ds.get(keyword)
        except Exception:  # noqa: BLE001 - a malformed value is a missing one
            value = None
        if value is not None and value != "":
            return value
    return None


def to_str(value: Any) -> str:
    """Stripped text; ``""`` when missing."""
    if value is None:
        return ""
    try:
        return str(value).strip()
    except Exception:  # noqa: BLE001
        return ""


def dicom_seconds(value: Any) -> float | None:
    """Seconds since midnight of a DICOM TM (``HHMMSS.ffffff``) or the time part of a DT."""
    s = to_str(value)
    if len(s) >= 14 and s[:8].isdigit():  # DT: YYYYMMDDHHMMSS...
        s = s[8:]
    s = s.replace(":", "")
    try:
        hh = int(s[0:2])
        mm = int(s[2:4]) if len(s) >= 4 else 0
        ss = float(s[4:]) if len(s) > 4 else 0.0
    except ValueError:
        return None
    return hh * 3600 + mm * 60 + ss


SECONDS_PER_DAY = 86400.0
"""One day: times of day that pass midnight are moved by this much."""

HALF_DAY_S = 43200.0
"""Times of day spread wider than this within one volume passed midnight (no volume lasts half a day)."""


def seconds_from_first(times: Sequence[float | None]) -> list[float] | None:
    """Seconds from the earliest of ``times`` (seconds since midnight, as :func:`dicom_seconds`
    gives them), the day's end allowed in between: a time more than half a day before the latest
    is of the next day. None when a time is missing or there are none."""
    if not times or any(t is None for t in times):
        return None
    values = [float(t) for t in times]  # type: ignore[arg-type]
    if max(values) - min(values) > HALF_DAY_S:
        values = [v + SECONDS_PER_DAY if v < HALF_DAY_S else v for v in values]
    lo = min(values)
    return [v - lo for v in values]


def plain_value(value: Any) -> Any:
    """A JSON-friendly copy of a header value (numbers stay numbers, names become strings)."""
    if value is None or type(value) in (str, float, int):
        return value
    if type(value).__name__ == "MultiValue" or isinstance(value, (list, tuple)):
        return [plain_value(v) for v in value]
    if isinstance(value, (int, float, str)):
        return value
    name = type(value).__name__
    if name in ("DSfloat", "DSdecimal", "IS"):
        f = float(value)
        return int(f) if name == "IS" else f
    if name == "PersonName":
        return str(value)
    if isinstance(value, bytes):
        return None
    try:
        return str(value)
    except Exception:  # noqa: BLE001
        return None


def in_groups(per: Any, shared: Any, sequence: str, keyword: str) -> Any:
    """``keyword`` in the first item of ``sequence`` of a frame's functional group ``per``, else of
    the shared group ``shared`` (either may be ``None``); empty values count as missing."""
    for group in (per, shared):
        if group is None:
            continue
        seq = value_of(group, sequence)
        if seq:
            try:
                value = value_of(seq[0], keyword)
            except Exception:  # noqa: BLE001
                value = None
            if value is not None and value != "":
                return value
    return None


def functional(ds: Any, sequence: str, keyword: str, frame: int | None = 0) -> Any:
    """``keyword`` of an enhanced file's frame ``frame`` (0-based; ``None``: the shared group only)
    from its functional groups (PS3.3 C.7.6.16): the frame's own group first, then the shared one."""
    per = value_of(ds, "PerFrameFunctionalGroupsSequence")
    shared = value_of(ds, "SharedFunctionalGroupsSequence")
    try:
        item = per[frame] if per and frame is not None and 0 <= frame < len(per) else None
    except Exception:  # noqa: BLE001 - a malformed sequence is a missing one
        item = None
    try:
        common = shared[0] if shared else None
    except Exception:  # noqa: BLE001
        common = None
    return in_groups(item, common, sequence, keyword)


def present(ds: Any, keyword: str) -> Any:
    """:func:`value_of`, with an empty value counted as missing (``None``)."""
    value = value_of(ds, keyword)
    return None if value is None or value == "" else value


def to_text(value: Any) -> str | None:
    """A value as one line of text: multiple values joined by ``\\`` as DICOM writes them;
    ``None`` when missing or empty."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)
    try:
        text = str(value).strip()
    except Exception:  # noqa: BLE001
        return None
    return text or None


def to_strings(value: Any) -> list[str]:
    """A multi-valued string element as a list (pydicom gives a bare str for one value)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    try:
        return [str(v) for v in value]
    except TypeError:
        return [str(value)]


# --- what a file's first bytes say ----------------------------------------------------------------

HEAD_BYTES = 144
"""Bytes :func:`not_dicom` looks at: the 128-byte preamble, ``DICM``, and one element header."""


def looks_like_headerless_dicom(head: bytes) -> bool:
    """True for old files without the 128-byte preamble that start with a group-8 (or 2) element."""
    return len(head) >= 8 and head[:2] in (b"\x08\x00", b"\x02\x00") and head[2:4] < b"\x20\x00"


def not_dicom(head: bytes) -> bool:
    """True when a file's first :data:`HEAD_BYTES` bytes say it is not DICOM: no ``DICM`` after the
    preamble, and not a preamble-less dataset either (what pydicom refuses without ``force``)."""
    return head[128:132] != b"DICM" and not looks_like_headerless_dicom(head)


def file_head(path: str | os.PathLike[str], n: int = 8) -> bytes:
    """The first ``n`` bytes of a file (``b""`` when it cannot be read)."""
    try:
        with open(path, "rb") as f:
            return f.read(n)
    except OSError:
        return b""

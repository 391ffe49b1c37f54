"""One vocabulary for DICOM values: header values in the wild hold every kind of nonsense.

Each helper turns what pydicom (or :mod:`volume.dicom.fastheader`) gives into a plain Python value,
or ``None`` when the value is missing or malformed, never raising: a broken element is as good as
a missing one for the scanner, and the caller says what is missing.
"""

from __future__ import annotations

import math
from typing import Any

from .fastheader import convert_raw


def _get(ds: Any, keyword: str) -> Any:
    try:
        return ds.get(keyword)
    except Exception:  # noqa: BLE001 - a malformed value is as good as a missing one here
        return None


def _float(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
            value = value[0]
        f = float(value)
    except (TypeError, ValueError, IndexError):
        return None
    return f if math.isfinite(f) else None


def _floats(value: Any, n: int) -> tuple[float, ...] | None:
    if value is None:
        return None
    try:
        seq = [float(v) for v in value]
    except (TypeError, ValueError):
        return None
    if len(seq) != n or not all(map(math.isfinite, seq)):
        return None
    return tuple(seq)


def _int(value: Any) -> int | None:
    f = _float(value)
    return int(f) if f is not None and float(f).is_integer() else None


def _str(value: Any) -> str:
    if value is None:
        return ""
    try:
        return str(value).strip()
    except Exception:  # noqa: BLE001
        return ""


def _dicom_time(value: Any) -> float | None:
    """Seconds since midnight of a DICOM TM (``HHMMSS.ffffff``) or the time part of a DT."""
    s = _str(value)
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


def _plain(value: Any) -> Any:
    """A JSON-friendly copy of a header value (numbers stay numbers, names become strings)."""
    if value is None or type(value) in (str, float, int):
        return value
    if type(value).__name__ == "MultiValue" or isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
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


def _find_in_groups(per: Any, shared: Any, sequence: str, keyword: str) -> Any:
    for group in (per, shared):
        if group is None:
            continue
        seq = _get(group, sequence)
        if seq:
            try:
                value = _get(seq[0], keyword)
            except Exception:  # noqa: BLE001
                value = None
            if value is not None:
                return value
    return None


def _strings(value: Any) -> list[str]:
    """A multi-valued string element as a list (pydicom gives a bare str for one value)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    try:
        return [str(v) for v in value]
    except TypeError:
        return [str(value)]


def element_value(ds: Any, tag: int, vr: str) -> Any:
    """The value of element ``tag`` of a pydicom dataset, as the fast reader would give it.

    Private elements often arrive as raw bytes (VR UN in explicit files, or unknown to pydicom's
    private dictionary in implicit ones): they are converted with ``vr``, the VR volume knows
    them by (little endian, the byte order of every syntax but the retired big endian one).
    """
    try:
        elem = ds.get(tag)
    except Exception:  # noqa: BLE001 - a malformed element is a missing one
        return None
    if elem is None:
        return None
    value = elem.value
    if isinstance(value, bytes) and vr not in ("OB", "OW", "UN"):
        if not getattr(ds, "is_little_endian", True):
            return None

        return convert_raw(value, vr)
    if type(value).__name__ == "MultiValue":
        return tuple(value)
    return value

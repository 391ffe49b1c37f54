"""Safe output names from header text: nothing in a DICOM header can place a file outside ``-o``."""

from __future__ import annotations

import re
import unicodedata

#: Longest name stem we produce (file systems allow 255 bytes; leave room for suffixes).
MAX_STEM = 120

_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")


def safe_name(text: str, *, fallback: str = "series") -> str:
    """A file-name stem made of ``[A-Za-z0-9._+-]``: no separators, no ``..``, no control characters.

    Runs of anything else become ``_``; accents are folded to ASCII; leading dots and
    underscores are dropped (no hidden files); empty results become ``fallback``.

    >>> safe_name("601_T1/SE/extrp")
    '601_T1_SE_extrp'
    >>> safe_name("../../etc/x")
    'etc_x'
    """
    folded = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode("ascii")
    stem = _UNSAFE.sub("_", folded)
    stem = re.sub(r"\.{2,}", "_", stem)
    stem = re.sub(r"_+", "_", stem).strip("._-")
    stem = stem[:MAX_STEM].rstrip("._-")
    return stem or fallback


def series_stem(meta: dict) -> str:
    """The default output name of a loaded series (``Volume.meta``): ``<number>_<description>[_<label>]``
    made safe, as every command names what it writes without ``-o`` (``601_T1_SE_extrp``)."""
    number = meta.get("series_number")
    parts = [str(number) if number is not None else "x"]
    parts += [str(meta[k]) for k in ("series_description", "label") if meta.get(k)]
    return safe_name("_".join(parts))


def unique_names(stems: list[str]) -> list[str]:
    """Make stems unique deterministically: the second ``x`` becomes ``x_2``, the third ``x_3``."""
    seen: dict[str, int] = {}
    taken = set()
    out = []
    for stem in stems:
        key = stem.casefold()
        n = seen.get(key, 0) + 1
        seen[key] = n
        candidate = stem if n == 1 else f"{stem}_{n}"
        while candidate.casefold() in taken:
            n += 1
            candidate = f"{stem}_{n}"
        taken.add(candidate.casefold())
        out.append(candidate)
    return out

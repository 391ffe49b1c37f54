"""Siemens' private headers: the CSA image and series headers, and the protocol (ASCCONV) text.

The CSA *image* header (0029,1010) holds per-image facts (NumberOfImagesInMosaic,
SliceNormalVector, MosaicRefAcqTimes, B_value...) in a small binary format (:func:`parse_csa`). The CSA
*series* header (0029,1020) holds the protocol as ``key = value`` lines between ``### ASCCONV
BEGIN`` and ``### ASCCONV END ###``: the slice array (``sSliceArray.lSize``, each slice's centre
``asSlice[i].sPosition`` and normal ``sNormal`` in patient coordinates: dSag = x, dCor = y,
dTra = z of LPS), and the acquisition parameters BIDS fields come from. Siemens leaves out entries
whose value is zero, so a missing coordinate is 0.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Mapping
from typing import Any

import numpy as np

from .private import private_value

CSA_IMAGE_HEADER = 0x00291010
"""(0029,1010) CSA Image Header Info."""

CSA_SERIES_HEADER = 0x00291020
"""(0029,1020) CSA Series Header Info (holds the ASCCONV protocol text)."""

CSA_CREATOR = "SIEMENS CSA HEADER"
"""The private creator of the CSA headers' block (found wherever a PACS moved it, e.g. 0029,11xx)."""

ASCCONV_BEGIN, ASCCONV_END = b"### ASCCONV BEGIN", b"### ASCCONV END ###"
"""The protocol text lies between the line after its begin mark and its end mark."""

_LINES = re.compile(r"^[^\S\n]*([A-Za-z_][\w.\[\]]*)[^\S\n]*=[^\S\n]*([^#\n]*)", re.M)
"""One ``key = value`` line of an ASCCONV text whose line breaks are all ``\\n``: the value runs to a ``#``
(a comment) or the line's end (its trailing blanks are stripped after)."""

_LINES_ASCII = re.compile(r"^[ \t\x1f]*([A-Za-z_][A-Za-z0-9_.\[\]]*)[ \t\x1f]*=[ \t\x1f]*([^#\n]*)", re.M)
""":data:`_LINES` for an ASCII text (every ASCCONV seen), twice as fast: ``\\w`` and the blanks (``\\s`` but
line breaks) spelled out in ASCII."""


#: Value converters of the CSA header's VRs (others stay text).
_CSA_NUMBERS = {"FL": float, "FD": float, "DS": float, "IS": int, "SL": int, "SS": int, "UL": int, "US": int}

CSA_MAX_TAGS = 1000
"""More tags (or items) than this in a CSA header means it is corrupt."""


def parse_csa(raw: bytes) -> dict[str, list[Any]]:
    """The tags of a CSA header (Siemens' "SV10" format, or the older one) as ``{name: [values]}``.

    Each tag: a 64-byte name, VM, VR, syngo data type, item count and a check word; each item: four
    int32 (its length in the second, or for the old format the first less the first tag's item count)
    and its text, padded to 4 bytes. Numeric VRs become numbers; empty or corrupt headers give {}.
    """
    try:
        new_format = raw[:4] == b"SV10"
        pos = 8 if new_format else 0
        n_tags = struct.unpack_from("<I", raw, pos)[0]
        pos += 8
        if not 0 < n_tags <= CSA_MAX_TAGS:
            return {}
        out: dict[str, list[Any]] = {}
        first_count = 0
        for tag_no in range(n_tags):
            name_bytes, vm, vr_bytes, _syngodt, n_items, _check = struct.unpack_from("<64si4s3i", raw, pos)
            pos += 84
            name = name_bytes.split(b"\0", 1)[0].decode("latin-1")
            vr = vr_bytes.split(b"\0", 1)[0].decode("latin-1")
            if tag_no == 1:
                first_count = n_items
            if not 0 <= n_items <= CSA_MAX_TAGS:
                return {}
            wanted = vm if vm > 0 else n_items
            convert = _CSA_NUMBERS.get(vr)
            items: list[Any] = []
            for item_no in range(n_items):
                x0, x1, _x2, _x3 = struct.unpack_from("<4i", raw, pos)
                pos += 16
                length = x1 if new_format else x0 - first_count
                if length < 0 or pos + length > len(raw):
                    if new_format:
                        return {}
                    break
                text = raw[pos : pos + length].split(b"\0", 1)[0].decode("latin-1").strip()
                pos += length + (-length % 4)
                if item_no >= wanted:
                    continue
                if convert is not None:
                    if not text:
                        wanted = item_no
                        continue
                    try:
                        items.append(convert(float(text)) if convert is int else convert(text))
                    except ValueError:
                        items.append(text)
                else:
                    items.append(text)
            out[name] = items
        return out
    except (struct.error, UnicodeDecodeError):
        return {}


def csa_image(ds: Any) -> dict[str, list[Any]]:
    """The CSA image header's tags as ``{name: [values]}`` (empty when absent or unreadable), found by
    its private creator wherever the block lies (:func:`volume.dicom.private.private_value`)."""
    raw = private_value(ds, CSA_IMAGE_HEADER, "OB", CSA_CREATOR)
    return parse_csa(bytes(raw)) if isinstance(raw, (bytes, bytearray)) else {}


def ascconv(ds: Any) -> dict[str, str]:
    """The protocol (ASCCONV) of a Siemens file's CSA series header as ``{key: raw value text}``."""
    raw = private_value(ds, CSA_SERIES_HEADER, "OB", CSA_CREATOR)
    return parse_ascconv(bytes(raw)) if isinstance(raw, (bytes, bytearray)) else {}


def parse_ascconv(raw: bytes) -> dict[str, str]:
    """``{key: raw value text}`` of the ASCCONV section in ``raw`` (a CSA series header, or XA's
    protocol element 0021,1019); empty when there is none."""
    begin = raw.find(ASCCONV_BEGIN)
    start = raw.find(b"\n", begin + len(ASCCONV_BEGIN)) if begin >= 0 else -1
    end = raw.find(ASCCONV_END, start + 1) if start >= 0 else -1
    if end < 0:
        return {}
    text = "\n".join(raw[start + 1 : end].decode("latin-1").splitlines())  # every line break (\r, \x85...) as \n
    lines = _LINES_ASCII if text.isascii() else _LINES
    return {key: value.rstrip().strip('"') for key, value in lines.findall(text)}


def protocol_number(protocol: Mapping[str, str], key: str, default: float | None = None) -> float | None:
    """A number of the protocol (decimal or ``0x`` hex); ``default`` when absent or not a number."""
    text = protocol.get(key)
    if text is None:
        return default
    try:
        return float(int(text, 16)) if text.lower().startswith("0x") else float(text)
    except ValueError:
        return default


def protocol_slices(protocol: Mapping[str, str]) -> tuple[np.ndarray, np.ndarray] | None:
    """Centres ``(N, 3)`` (LPS mm) of the protocol's slices in slice-array order and their unit
    normal, or None when the protocol has no slice array."""
    n = protocol_number(protocol, "sSliceArray.lSize")
    if not n or n < 1 or n > 4096:
        return None
    count = int(n)
    centres = np.array([
        [protocol_number(protocol, f"sSliceArray.asSlice[{i}].sPosition.{axis}", 0.0) for axis in ("dSag", "dCor", "dTra")]
        for i in range(count)
    ], dtype=float)
    normal = np.array([protocol_number(protocol, f"sSliceArray.asSlice[0].sNormal.{axis}", 0.0)
                       for axis in ("dSag", "dCor", "dTra")], dtype=float)
    length = float(np.linalg.norm(normal))
    if not length:
        return None
    return centres, normal / length


#: ``sSliceArray.ucMode`` values: the order Siemens acquires the protocol's slices in.
SLICE_ORDER_ASCENDING, SLICE_ORDER_DESCENDING, SLICE_ORDER_INTERLEAVED = 1, 2, 4


def protocol_slice_times(protocol: Mapping[str, str], tr_ms: float | None) -> list[float] | None:
    """Seconds at which each slice of the protocol's slice array (array order) is acquired, from
    its order (``sSliceArray.ucMode``) and the time available in a TR, for mosaics whose images lack
    the measured times (CSA MosaicRefAcqTimes): slices are spread evenly over TR less
    ``lDelayTimeInTR``; interleaved acquisitions take 0, 2, 4... then 1, 3... with an odd count and
    1, 3, 5... then 0, 2... with an even one (Siemens' rule, as dcm2niix applies it). None for
    multiband acquisitions (slices share times the protocol does not give) or unknown orders."""
    slices = protocol_slices(protocol)
    mode = protocol_number(protocol, "sSliceArray.ucMode")
    multiband = protocol_number(protocol, "sSliceAcceleration.lMultiBandFactor", 1.0) or 1.0
    if slices is None or mode is None or not tr_ms or tr_ms <= 0 or multiband > 1:
        return None
    n = len(slices[0])
    delay_ms = (protocol_number(protocol, "lDelayTimeInTR", 0.0) or 0.0) / 1000.0
    step = (tr_ms - delay_ms) / n / 1000.0
    if step <= 0:
        return None
    if int(mode) == SLICE_ORDER_ASCENDING:
        acquisition = list(range(n))
    elif int(mode) == SLICE_ORDER_DESCENDING:
        acquisition = list(range(n - 1, -1, -1))
    elif int(mode) == SLICE_ORDER_INTERLEAVED:
        evens, odds = list(range(0, n, 2)), list(range(1, n, 2))
        acquisition = evens + odds if n % 2 else odds + evens
    else:
        return None
    times = [0.0] * n
    for rank, index in enumerate(acquisition):
        times[index] = rank * step
    return times


MOSAIC_REF_ACQ_TIMES = (0x00191029, "FD")
"""(0019,1029) MosaicRefAcqTimes, the private element copy of the CSA image header's list (ms): files
de-identified without their CSA header may keep it."""

SIMULTANEOUS_S = 1e-3
"""Slice times closer than this (s) are one excitation (the slices of one multiband shot)."""


def listed_slice_times(csa: Mapping[str, Any], private_ms: Any) -> list[float] | None:
    """The slice times (ms) a Siemens image lists for its whole volume: the CSA image header's
    MosaicRefAcqTimes, else the private (0019,1029); None when neither holds any."""
    values = csa.get("MosaicRefAcqTimes") or []
    if not values and private_ms is not None:
        values = list(private_ms) if isinstance(private_ms, (list, tuple)) else [private_ms]
    try:
        times = [float(v) for v in values]
    except (TypeError, ValueError):
        return None
    return times or None


def times_by_instance(listed_ms: list[float], instance_numbers: list[int | None]) -> list[float] | None:
    """Seconds for each written slice of a volume of single-slice files, from the list every image
    holds (:func:`listed_slice_times`): its ``i``-th value is the slice of the ``i``-th InstanceNumber
    of the volume (Siemens numbers a volume's images in the order of its slice array, the list's
    order; dcm2niix reads them so). None when the counts differ or the numbers do not order the slices."""
    n = len(instance_numbers)
    if len(listed_ms) != n or any(v is None for v in instance_numbers) or len(set(instance_numbers)) != n:
        return None
    out = [0.0] * n
    for i, s in enumerate(sorted(range(n), key=lambda s: instance_numbers[s])):  # type: ignore[arg-type, return-value]
        out[s] = listed_ms[i] / 1000.0
    return out


def multiband_problem(times: list[float], factor: float | None, source: str) -> str:
    """Why slice times cannot be those of a multiband acquisition ("" when they can): with a
    multiband factor ``m`` above 1, ``m`` slices share each excitation, so at most ``ceil(n / m)``
    distinct times. Siemens XA11 writes single-band TimeAfterStart values for multiband series
    (dcm2niix issue 303)."""
    if not factor or factor <= 1 or not times:
        return ""
    distinct: list[float] = []
    for t in sorted(times):
        if not distinct or t - distinct[-1] > SIMULTANEOUS_S:
            distinct.append(t)
    most = -(-len(times) // int(factor))
    if len(distinct) <= most:
        return ""
    return (f"SliceTiming left out: {source} gives {len(distinct)} different slice times for {len(times)} slices, "
            f"but a multiband factor of {int(factor)} allows {most} (Siemens XA11 writes single-band times for "
            "multiband series)")

"""Values that fit their DICOM value representation (VR), for the DICOM files volume writes.

A DICOM output copies values from its source (ProtocolName, SequenceName, with ``--keep-phi``
the patient's name...), and a source may hold values that its VR does not allow: a 300-character
ProtocolName where LO allows 64, a lower-case or over-long code string, control characters, a
number that is not one. :func:`fit_value` makes each value fit (PS3.5 Table 6.2-1), by one rule
per kind of VR:

* text (AE, LO, SH, PN, UC, ST, LT, UT): characters the VR forbids (control characters, and the
  backslash where it would split the value) become spaces, then the value is cut to the VR's
  length in bytes of UTF-8, never inside a character (for PN, each component group to 64);
* codes, numbers, dates and UIDs (CS, AS, DA, DT, TM, DS, IS, UI, binary numbers): a value that
  does not fit is never guessed at; the attribute is left out (a number is only re-written in
  DICOM's own form, e.g. a DS with at most 16 characters);
* several values where the data dictionary allows one, or a value outside the standard's
  enumerated values (:data:`ENUMERATED`, e.g. PatientSex ``M``/``F``/``O``): left out.

Each change comes with a note naming the attribute, its VR and what was done, never the value (a
value may identify a patient); the writer logs the notes and records them in the file. The last
check is pydicom's own validation, in its raising mode, so an unfit value never reaches pydicom's
warnings (and the user's stderr).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

TEXT_MAX_BYTES = {"AE": 16, "SH": 16, "LO": 64, "PN": 64, "ST": 1024, "LT": 10240, "UC": None, "UT": None}
"""Longest value of each text VR (PN: per component group); None: no limit that matters. PS3.5 counts
characters; validators (dciodvfy) count bytes: volume cuts to this many bytes of UTF-8, which fits both."""

MULTI_LINE_VRS = frozenset({"ST", "LT", "UT"})
"""Text VRs that hold one value that may span lines: CR, LF, FF and TAB are allowed, a backslash is text."""

LINE_CONTROLS = "\r\n\f\t"
"""The control characters :data:`MULTI_LINE_VRS` allow."""

PN_GROUPS_MAX = 3
"""Component groups of a PN value (alphabetic, ideographic, phonetic), separated by ``=``."""

PN_COMPONENTS_MAX = 5
"""Components of a PN component group (family, given, middle, prefix, suffix), separated by ``^``."""

CS_PATTERN = re.compile(r"[A-Z0-9 _]{0,16}")
"""A CS value: upper-case letters, digits, space and underscore, at most 16 characters."""

UI_PATTERN = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*")
"""A UID: numeric components without leading zeros, separated by dots (at most :data:`UI_MAX` long)."""

UI_MAX = 64
"""Longest UID."""

AS_PATTERN = re.compile(r"[0-9]{3}[DWMY]")
"""An age string: three digits and a unit."""

DA_PATTERN = re.compile(r"[0-9]{4}(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])")
"""A date YYYYMMDD (a stored value: no query ranges)."""

TM_PATTERN = re.compile(r"([01][0-9]|2[0-3])([0-5][0-9]([0-5][0-9]|60)?)?(\.[0-9]{1,6})?")
"""A time HH[MM[SS[.FFFFFF]]]."""

DT_PATTERN = re.compile(
    r"[0-9]{4}((0[1-9]|1[0-2])((0[1-9]|[12][0-9]|3[01])(([01][0-9]|2[0-3])([0-5][0-9]([0-5][0-9]|60)?)?)?)?)?"
    r"(\.[0-9]{1,6})?([+-][01][0-9][0-5][0-9])?"
)
"""A date-time YYYY[MM[DD[HH[MM[SS]]]]][.FFFFFF][&ZZXX]."""

PATTERNS = {"CS": CS_PATTERN, "AS": AS_PATTERN, "DA": DA_PATTERN, "TM": TM_PATTERN, "DT": DT_PATTERN}
"""Code and date VRs checked against a pattern (whole value, surrounding spaces ignored)."""

ENUMERATED = {
    "PatientSex": frozenset({"M", "F", "O"}),
    "Laterality": frozenset({"R", "L"}),
    "ImageLaterality": frozenset({"R", "L", "U", "B"}),
    "MRAcquisitionType": frozenset({"2D", "3D"}),
    "PatientIdentityRemoved": frozenset({"YES", "NO"}),
}
"""Attributes whose values the standard enumerates (PS3.3), among those copied from a source: any
other value is left out."""

IS_RANGE = (-(2**31), 2**31 - 1)
"""Values an IS (Integer String) may hold."""

BINARY_RANGES = {
    "US": (0, 2**16 - 1), "SS": (-(2**15), 2**15 - 1),
    "UL": (0, 2**32 - 1), "SL": (-(2**31), 2**31 - 1),
    "UV": (0, 2**64 - 1), "SV": (-(2**63), 2**63 - 1),
}
"""Values each binary integer VR may hold."""

_FORBIDDEN_SINGLE_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f\\]")
_FORBIDDEN_MULTI_LINE = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")


class Unfit(ValueError):
    """A value its VR cannot hold and that volume does not alter (a code, number, date or UID)."""


def dictionary_entry(keyword: str) -> tuple[int, str, str]:
    """``(tag, VR, VM)`` of a keyword in pydicom's data dictionary (KeyError for an unknown one)."""
    from pydicom.datadict import dictionary_VM, dictionary_VR, tag_for_keyword

    tag = tag_for_keyword(keyword)
    if tag is None:
        raise KeyError(keyword)
    return tag, dictionary_VR(tag), dictionary_VM(tag)


def fit_value(keyword: str, value: Any) -> tuple[Any, str]:
    """A value of ``keyword`` that fits its VR, and a note saying what was changed.

    Parameters
    ----------
    keyword
        A DICOM keyword of the data dictionary (e.g. ``"ProtocolName"``).
    value
        A value as read from a source: str, number, or a list of them (several values).

    Returns
    -------
    tuple
        ``(value, note)``. ``value`` is what to write: the value unchanged, or changed to fit
        (text cut, forbidden characters replaced, a number in DICOM's form), ``""`` for an empty value, or
        None when the attribute must be left out. ``note`` is ``""`` when nothing of substance
        changed, else one phrase naming the attribute and its VR (never the value), e.g.
        ``"ProtocolName (LO): 300 characters, cut to 64"``.
    """
    try:
        _, vr, vm = dictionary_entry(keyword)
    except KeyError:
        return None, f"{keyword}: not in the DICOM data dictionary, left out"
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    values = [v for v in values if v is not None]
    if not values or all(isinstance(v, str) and not v.strip() for v in values):
        return "", ""
    if vm == "1" and len(values) > 1:
        return None, f"{keyword} ({vr}): {len(values)} values where DICOM allows one, left out"
    try:
        fitted, changes = _fit_values(vr, values)
        _validate(vr, fitted)
        allowed = ENUMERATED.get(keyword)
        if allowed is not None and any(v not in allowed for v in fitted):
            raise Unfit("not one of its enumerated values")
    except Unfit as exc:
        return None, f"{keyword} ({vr}): {exc}, left out"
    note = f"{keyword} ({vr}): {'; '.join(dict.fromkeys(changes))}" if changes else ""
    if isinstance(value, (list, tuple)) and vm != "1":
        return fitted, note
    return fitted[0], note


def _fit_values(vr: str, values: Sequence[Any]) -> tuple[list[Any], list[str]]:
    """Each value fitted to ``vr``, and the phrases saying what changed (raises :class:`Unfit`)."""
    changes: list[str] = []
    out = []
    for v in values:
        fitted, change = _fit_one(vr, v)
        out.append(fitted)
        if change:
            changes.append(change)
    return out, changes


def _fit_one(vr: str, value: Any) -> tuple[Any, str]:
    if vr in TEXT_MAX_BYTES:
        return _fit_text(vr, value)
    if vr in PATTERNS:
        return _fit_pattern(vr, value), ""
    if vr == "DS":
        return _fit_ds(value), ""
    if vr == "IS":
        return _fit_int(value, IS_RANGE), ""
    if vr in BINARY_RANGES:
        return _fit_int(value, BINARY_RANGES[vr]), ""
    if vr in ("FL", "FD"):
        return _fit_float(value), ""
    if vr == "UI":
        text = str(value).strip().rstrip("\x00")
        if len(text) > UI_MAX or not UI_PATTERN.fullmatch(text):
            raise Unfit("not a valid UID")
        return text, ""
    return value, ""


def _fit_text(vr: str, value: Any) -> tuple[str, str]:
    """Text with the characters ``vr`` forbids replaced by spaces, cut to its length."""
    if isinstance(value, bytes):
        raise Unfit("undecoded bytes")
    text = str(value).replace("\x00", "")
    forbidden = _FORBIDDEN_MULTI_LINE if vr in MULTI_LINE_VRS else _FORBIDDEN_SINGLE_LINE
    cleaned = forbidden.sub(" ", text)
    changes = ["characters its VR forbids replaced by spaces"] if cleaned != text else []
    cleaned = cleaned.rstrip(" ")
    limit = TEXT_MAX_BYTES[vr]
    if vr == "PN":
        cleaned, cut = _fit_pn(cleaned)
        if cut:
            changes.append(cut)
    elif limit is not None and utf8_length(cleaned) > limit:
        changes.append(_cut_phrase(cleaned, limit))
        cleaned = cut_text(cleaned, limit)
    return cleaned, "; ".join(changes)


def utf8_length(text: str) -> int:
    """Bytes of ``text`` in UTF-8, the character set of every file volume writes (ISO_IR 192)."""
    return len(text.encode("utf-8", "surrogatepass"))


def cut_text(text: str, max_bytes: int) -> str:
    """``text`` cut to at most ``max_bytes`` bytes of UTF-8, never inside a character (trailing spaces dropped)."""
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= max_bytes:
        return text
    return data[:max_bytes].decode("utf-8", "ignore").rstrip(" ")


def _cut_phrase(text: str, limit: int) -> str:
    n_chars, n_bytes = len(text), utf8_length(text)
    if n_bytes == n_chars:
        return f"{n_chars} characters, cut to {limit}"
    return f"{n_chars} characters ({n_bytes} bytes in UTF-8), cut to {limit} bytes"


def _fit_pn(text: str) -> tuple[str, str]:
    """A person name with at most 3 groups of at most 5 components and 64 characters each."""
    limit = TEXT_MAX_BYTES["PN"]
    groups = text.split("=")
    changes = []
    if len(groups) > PN_GROUPS_MAX:
        changes.append(f"{len(groups)} component groups, cut to {PN_GROUPS_MAX}")
        groups = groups[:PN_GROUPS_MAX]
    out = []
    for group in groups:
        components = group.split("^")
        if len(components) > PN_COMPONENTS_MAX:
            changes.append(f"{len(components)} components, cut to {PN_COMPONENTS_MAX}")
            group = "^".join(components[:PN_COMPONENTS_MAX])
        if utf8_length(group) > limit:
            changes.append(f"a component group of {_cut_phrase(group, limit)}")
            group = cut_text(group, limit)
        out.append(group)
    return "=".join(out).rstrip(" "), "; ".join(changes)


def _fit_pattern(vr: str, value: Any) -> str:
    text = str(value).strip()
    if not PATTERNS[vr].fullmatch(text):
        raise Unfit(f"not a valid {vr} value")
    return text


def _number(value: Any) -> float:
    try:
        number = float(str(value).strip()) if isinstance(value, (str, bytes)) else float(value)
    except (TypeError, ValueError):
        raise Unfit("not a number") from None
    if not math.isfinite(number):
        raise Unfit("not a finite number")
    return number


def _fit_ds(value: Any) -> str:
    """A decimal string of at most 16 characters (the value rounded to what DS holds)."""
    from pydicom.valuerep import format_number_as_ds

    number = _number(value)
    return format_number_as_ds(0.0 if number == 0 else number)


def _fit_int(value: Any, bounds: tuple[int, int]) -> int:
    number = _number(value)
    if number != round(number):
        raise Unfit("not an integer")
    if not bounds[0] <= number <= bounds[1]:
        raise Unfit("out of the VR's range")
    return int(round(number))


def _fit_float(value: Any) -> float:
    return _number(value)


def _validate(vr: str, values: Sequence[Any]) -> None:
    """pydicom's own check of each value, raising (its warnings would reach the user's stderr)."""
    from pydicom import config
    from pydicom.valuerep import validate_value

    for v in values:
        try:
            validate_value(vr, str(v) if vr in ("IS", "DS") else v, config.RAISE)
        except (ValueError, TypeError) as exc:
            raise Unfit("not valid for its VR") from exc

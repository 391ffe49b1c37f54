"""The DICOM data dictionary (pydicom's), for what the index looks up by name or tag.

So that pydicom is imported in :mod:`volume.dicom` only, and only by the commands that look
names up (``volume index --fields``, its SOP class and transfer syntax columns).
"""

from __future__ import annotations

import difflib


def tag_for_keyword(keyword: str) -> int | None:
    """The tag (``group << 16 | element``) of a standard keyword, None when there is none."""
    from pydicom.datadict import tag_for_keyword as tag_for

    tag = tag_for(keyword)
    return None if tag is None else int(tag)


def keyword_for_tag(tag: int) -> str:
    """The keyword of a standard tag, ``""`` when it has none (private, retired without one)."""
    from pydicom.datadict import keyword_for_tag as keyword_for

    return keyword_for(tag) or ""


def vr_of(tag: int) -> str:
    """The dictionary VR of ``tag``, ``"UN"`` when the dictionary does not know it."""
    from pydicom.datadict import dictionary_VR

    try:
        return dictionary_VR(tag)
    except KeyError:
        return "UN"


def vm_of(tag: int) -> str:
    """The dictionary VM of ``tag`` (``"1"``, ``"1-n"``...), ``""`` when the dictionary does not know it."""
    from pydicom.datadict import dictionary_VM

    try:
        return dictionary_VM(tag)
    except KeyError:
        return ""


def close_keywords(text: str, n: int = 3) -> list[str]:
    """Up to ``n`` standard keywords that look like ``text`` (for "did you mean" hints)."""
    from pydicom.datadict import DicomDictionary

    return difflib.get_close_matches(text, [entry[4] for entry in DicomDictionary.values()], n=n)


def uid_name(uid: str) -> str:
    """The registered name of a UID (a SOP class, a transfer syntax), the UID itself when unknown."""
    from pydicom.uid import UID

    return UID(uid).name

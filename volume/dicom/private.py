"""Private elements found by their private creator, wherever a PACS or an anonymizer moved the block.

A private element (gggg,bbee) belongs to block ``bb`` of group ``gggg``, whose owner is the
private creator element (gggg,00bb). Vendors write their blocks at fixed places (Siemens' CSA
headers at 0029,10xx, GE's parameters at 0043,10xx), but DICOM lets any tool renumber a block,
and PACS do (Agfa's moves 0029,10xx to 0029,11xx; dcm2niix issue 435 and its "salvageAgfa"
remapping). :func:`private_value` reads an element at its usual place when the creator there is
the vendor's (or there is none, as in files stripped of creators), else in whichever block the
vendor's creator owns; another vendor's element with the same number is never read.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .fastheader import element_value
from .values import to_str

PRIVATE_BLOCKS = range(0x10, 0x100)
"""Block numbers a private creator (gggg,0010-00FF) may own."""


def creator_of(ds: Any, group: int, block: int) -> str:
    """The private creator owning block ``block`` of ``group`` in ``ds`` (upper case), "" when none."""
    return to_str(element_value(ds, (group << 16) | block, "LO")).upper()


def find_block(ds: Any, group: int, creator: str) -> int | None:
    """The block of ``group`` that ``creator`` owns in ``ds``, None when it owns none."""
    want = creator.upper()
    blocks = PRIVATE_BLOCKS if not want else creator_blocks(ds, group)  # an absent creator is ""
    for block in blocks:
        if creator_of(ds, group, block) == want:
            return block
    return None


def creator_blocks(ds: Any, group: int) -> Sequence[int]:
    """The blocks of ``group`` whose creator element (gggg,0010-00FF) ``ds`` holds, in order: the
    only ones a creator can own (one pass over the tags, not one look-up per possible block).
    Every block for a dataset that cannot list its tags (the fast reader's answers only those it
    was asked for)."""
    if hasattr(ds, "keys"):  # pydicom's Dataset
        keys: Iterable[Any] = ds.keys()
    elif hasattr(ds, "__iter__"):  # the whole header read by fastheader.read_raw: its elements
        keys = (e.tag for e in ds)
    else:
        return PRIVATE_BLOCKS
    first, last = (group << 16) | PRIVATE_BLOCKS[0], (group << 16) | PRIVATE_BLOCKS[-1]
    return sorted(int(tag) & 0xFF for tag in keys if first <= int(tag) <= last)


def private_value(ds: Any, tag: int, vr: str, creator: str) -> Any:
    """Element ``tag`` (its usual place, e.g. 0x00291010) of ``creator``'s block in ``ds``, converted
    with ``vr``; None when absent.

    At its usual place when the creator there is ``creator`` or absent (files stripped of their
    creators keep the usual places); else in the block ``creator`` owns, wherever it is.
    """
    group, block, element = tag >> 16, (tag >> 8) & 0xFF, tag & 0xFF
    owner = creator_of(ds, group, block)
    if owner == creator.upper():
        return element_value(ds, tag, vr)
    if not owner:
        value = element_value(ds, tag, vr)
        if value is not None:
            return value
    moved = find_block(ds, group, creator)
    if moved is None or moved == block:
        return None
    return element_value(ds, (group << 16) | (moved << 8) | element, vr)


__all__ = ["PRIVATE_BLOCKS", "creator_blocks", "creator_of", "find_block", "private_value"]

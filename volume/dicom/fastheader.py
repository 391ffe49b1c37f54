"""A small, fast reader of the header elements volume needs, for the common DICOM files.

``pydicom.dcmread`` costs about a millisecond per file, mostly building Python objects for every
element; a 300-slice CT spends most of its loading time there. This reader walks the raw bytes of
Explicit or Implicit VR Little Endian datasets (the native syntaxes and every compressed syntax
except deflate), converts only the wanted elements, and stops at the pixel data. Anything
unusual (no preamble, big endian, deflate, non-ASCII text, enhanced multi-frame, DICOMDIR,
odd lengths) returns ``None`` and the caller falls back to pydicom, so the result is always what
pydicom would have given: ``tests/test_fastheader.py`` checks that on real and synthetic files.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from struct import Struct
from struct import error as StructError
from types import MappingProxyType
from typing import Any

from ._tags import PRIVATE_TAGS, TAGS
from .files import GZIP, GunzipError, compression_of, gunzip
from .values import HEAD_BYTES, not_dicom

#: The interface of ``volume/dicom/_walk.c`` this module calls (its ``API``): an extension built
#: from an older source (an editable install not rebuilt since) is left unused, as if not built.
WALK_API = 2

try:  # the element walk, compiled (volume/dicom/_walk.c); without it, the same walk in Python
    from . import _walk
except ImportError:  # pragma: no cover - an install without a C compiler
    _walk = None
if _walk is not None and getattr(_walk, "API", 1) != WALK_API:  # pragma: no cover - rebuild: pip install -e .
    _walk = None

#: Bytes read first; most headers (CT, MR) end well before this. Grows x16, then whole file.
FIRST_READ_BYTES = 32 * 1024

#: Explicit VRs with a 2-byte reserved field and a 4-byte length.
_LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT", b"SV", b"UV"})

#: Implicit VR Little Endian: VRs come from the dictionary.
IMPLICIT_LE = "1.2.840.10008.1.2"

#: Transfer syntax of deflated datasets (the dataset bytes are zlib-compressed: pydicom).
DEFLATED = "1.2.840.10008.1.2.1.99"

#: Big endian (retired; pydicom).
BIG_ENDIAN = "1.2.840.10008.1.2.2"

_PIXEL_DATA = 0x7FE00010
_CHARACTER_SET = 0x00080005
_ITEM, _ITEM_END, _SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_UNDEFINED = 0xFFFFFFFF

#: Elements whose presence sends the file to pydicom (enhanced multi-frame, DICOMDIR, float
#: pixel data, stray item tags).
_FALLBACK_TAGS = frozenset({0x52009230, 0x52009229, 0x00041220, 0x7FE00008, 0x7FE00009,
                            _ITEM, _ITEM_END, _SEQ_END})

#: ImageType values of files tiling many slices whose private headers the scanner reads by pydicom
#: (a UIH grid's MRVFrameSequence; a MOSAIC too, unless Siemens made it: a Siemens mosaic's CSA
#: headers are wanted elements, their bytes).
_TILED = frozenset({"VFRAME"})

#: Every VR explicit datasets may hold.
_ALL_VRS = frozenset(
    v.encode() for v in (
        "AE AS AT CS DA DS DT FL FD IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL UN "
        "UR US UT UV"
    ).split()
)

_EXPLICIT_HEADER = Struct("<HH2sH")
_IMPLICIT_HEADER = Struct("<HHI")

_TAG = Struct("<HH")
_U16 = Struct("<H")
_U32 = Struct("<I")
_I16 = Struct("<h")
_I32 = Struct("<i")
_F32 = Struct("<f")
_F64 = Struct("<d")


class _NeedMore(Exception):
    """The buffer ended inside the header: read more of the file."""


class _Unsupported(Exception):
    """Something this reader does not handle: use pydicom."""


class _NonAscii(_Unsupported):
    """Text with bytes outside ASCII: decoded by the dataset's character set when volume knows it."""


class _Truncated(Exception):
    """The file ends inside its header or pixel data."""


class _Element:
    """Just enough of pydicom's DataElement for the scanner: where the pixel bytes are."""

    __slots__ = ("length", "value_tell")

    def __init__(self, value_tell: int, length: int) -> None:
        self.value_tell = value_tell
        self.length = length


class _Value:
    """Just enough of pydicom's DataElement for :func:`element_value`: its value."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


class FastDataset:
    """The wanted elements of one file, by keyword, as pydicom would return them.

    ``compression`` is ``"gzip"`` when the file itself is gzip-compressed: pixel offsets then
    count bytes of the decompressed data (:mod:`volume.dicom.files`). ``elements`` (the
    :class:`Wanted` tags) lets :meth:`get` answer a tag too, as a pydicom dataset does.
    """

    __slots__ = ("_values", "_pixel", "file_meta", "compression", "_elements")

    def __init__(self, values: dict[str, Any], pixel: _Element | None, file_meta: dict[str, Any],
                 compression: str = "", elements: Mapping[int, tuple[str, str]] | None = None) -> None:
        self._values = values
        self._pixel = pixel
        self.file_meta = file_meta
        self.compression = compression
        self._elements = elements

    @property
    def values(self) -> dict[str, Any]:
        """The converted elements by keyword (read-only by convention)."""
        return self._values

    def get(self, key: str | int, default: Any = None) -> Any:
        """A value by keyword; by tag (an int), an element whose ``value`` it is (as pydicom's)."""
        if isinstance(key, int):
            item = self._elements.get(key) if self._elements is not None else None
            if item is None or item[0] not in self._values:
                return default
            return _Value(self._values[item[0]])
        return self._values.get(key, default)

    def get_item(self, tag: int, keep_deferred: bool = True) -> _Element | None:  # noqa: ARG002
        return self._pixel if tag == _PIXEL_DATA else None

    def __contains__(self, keyword: str) -> bool:
        return keyword in self._values


#: Keywords whose value differs in every file, or is big (Siemens' CSA headers, 5-20 KB):
#: converted without :data:`_CACHE` (caching them would keep a copy of every file's UID, position
#: or header until the cache fills, and never hit).
PER_FILE_KEYWORDS = frozenset({
    "SOPInstanceUID", "ImagePositionPatient", "InstanceNumber", "SliceLocation", "AcquisitionTime",
    "ContentTime", "TriggerTime", "SiemensCSAImageHeader", "SiemensCSASeriesHeader",
})

#: What the compiled walk's table says of a wanted tag (``volume/dicom/_walk.c``): its value; the
#: first item of a sequence (in an explicit file when the file says SQ; in an implicit file when
#: the dictionary does, :data:`WANT_FIRST_ITEM_IMPLICIT`); its value, never remembered
#: (:data:`PER_FILE_KEYWORDS`).
WANT_VALUE, WANT_FIRST_ITEM, WANT_FIRST_ITEM_IMPLICIT, WANT_VALUE_UNCACHED = 1, 2, 3, 4


@dataclass(frozen=True, eq=False)
class Wanted:
    """What the fast reader extracts from a file: made once by :func:`wanted`, never changed.

    Attributes
    ----------
    elements
        Tag -> ``(keyword, dictionary VR)`` of every wanted top-level element.
    nested
        Sequence keyword -> ``{tag: (keyword, VR)}`` wanted in its first item.
    uncached
        Tags whose values differ in every file (:data:`PER_FILE_KEYWORDS`): never cached.
    table
        The same, for the compiled walk (None when it is not built).
    """

    elements: Mapping[int, tuple[str, str]]
    nested: Mapping[str, Mapping[int, tuple[str, str]]]
    uncached: frozenset[int]
    table: Any = None


@functools.lru_cache(maxsize=1024)
def _lookup(kw: str) -> tuple[int, str]:
    """``(tag, VR)`` of a keyword: the embedded tables first, then pydicom's dictionary."""
    known = TAGS.get(kw) or PRIVATE_TAGS.get(kw)
    if known is None:
        from pydicom.datadict import dictionary_VR, tag_for_keyword

        tag = tag_for_keyword(kw)
        if tag is None:
            raise ValueError(f"unknown DICOM keyword {kw}")
        known = (int(tag), dictionary_VR(tag))
    return known[0], known[1]


def wanted(keywords: Iterable[str], sequences: Mapping[str, Iterable[str]] | None = None) -> Wanted:
    """The keywords to extract, as :func:`read_fast` takes them.

    Tags and VRs come from the embedded tables of :mod:`volume.dicom._tags` (no pydicom import,
    which costs 0.13-0.2 s): standard keywords, and the names of the private elements volume reads
    (their private creators are read too, so the caller can check them). Keywords missing from
    both are looked up in pydicom's dictionary.

    Parameters
    ----------
    keywords
        Top-level keywords.
    sequences
        A wanted sequence keyword -> the keywords wanted inside its *first* item (nested
        sequences may be listed too): its value is a tuple of one dict, as a pydicom sequence of
        one dataset would answer ``seq[0].get(keyword)``.

    Raises
    ------
    ValueError
        A keyword that neither table nor pydicom knows.
    """
    elements = {}
    for kw in keywords:
        tag, vr = _lookup(kw)
        elements[tag] = (kw, vr)
    nested = {seq: MappingProxyType({tag: (kw, vr) for kw in inner for tag, vr in [_lookup(kw)]})
              for seq, inner in (sequences or {}).items()}
    table = None
    if _walk is not None:
        table = _walk.table({
            tag: ((WANT_FIRST_ITEM_IMPLICIT if vr == "SQ" else WANT_FIRST_ITEM) if kw in nested
                  else WANT_VALUE_UNCACHED if kw in PER_FILE_KEYWORDS else WANT_VALUE, kw, vr)
            for tag, (kw, vr) in elements.items()
        })
    return Wanted(
        elements=MappingProxyType(elements),
        nested=MappingProxyType(nested),
        uncached=frozenset(tag for tag, (kw, _vr) in elements.items() if kw in PER_FILE_KEYWORDS),
        table=table,
    )


#: Character sets (a single value of SpecificCharacterSet, no code extensions) whose text the fast
#: reader decodes, and their Python codecs (PS3.3 C.12.1.1.2). A file in any other (ISO 2022 code
#: extensions, whose escape sequences are ASCII bytes; GB18030, whose second bytes may be a
#: backslash) is left to pydicom; so is text beyond ASCII in a file that names no character set.
CHARACTER_SETS = {
    "ISO_IR 100": "latin_1", "ISO_IR 101": "iso8859_2", "ISO_IR 109": "iso8859_3", "ISO_IR 110": "iso8859_4",
    "ISO_IR 144": "iso8859_5", "ISO_IR 127": "iso8859_6", "ISO_IR 126": "iso8859_7", "ISO_IR 138": "iso8859_8",
    "ISO_IR 148": "iso8859_9", "ISO_IR 203": "iso8859_15", "ISO_IR 192": "utf_8",
}

#: VRs whose text may hold characters beyond ASCII (the others are ASCII by definition).
_EXTENDED_TEXT_VRS = frozenset({"LO", "LT", "PN", "SH", "ST", "UC", "UT"})


def _codec(raw: bytes) -> str | None:
    """The Python codec of a SpecificCharacterSet value, or None when the fast reader does not decode it."""
    try:
        text = raw.decode("ascii").strip(" \x00")
    except UnicodeDecodeError:
        return None
    return CHARACTER_SETS.get(text)


def _value(raw: bytes, file_vr: bytes | None, kw: str, dict_vr: str, cached: bool, codec: str | None = None) -> Any:
    """One element's value: by the file's VR, or the dictionary's for implicit VR and for private
    elements an explicit file calls UN (their VR is known to volume, not to the file). Text beyond
    ASCII is decoded with ``codec`` (the dataset's character set), when there is one."""
    use_vr = file_vr.decode("ascii") if file_vr is not None else dict_vr
    if use_vr == "UN" and dict_vr != "UN":
        use_vr = dict_vr
    if use_vr == "SQ" or use_vr == "UN":
        raise _Unsupported("wanted element is a sequence or UN")
    if not raw:
        return None if use_vr in ("DS", "IS") else ""
    try:
        return _convert_cached(raw, use_vr) if cached else _convert(raw, use_vr)
    except _NonAscii:
        if codec is None or use_vr not in _EXTENDED_TEXT_VRS:
            raise
        text = raw.decode(codec).rstrip(" \x00")
        if use_vr in _SINGLE_TEXT_VRS:
            return text
        parts = text.split("\\")
        return parts[0] if len(parts) == 1 else tuple(parts)


def _first_item(buf: bytes, pos: int, length: int, explicit: bool, keyword: str,
                nested: Mapping[str, Mapping[int, tuple[str, str]]], codec: str | None = None) -> dict[str, Any]:
    """The wanted elements (``nested[keyword]``) of the first item of the sequence whose value starts at ``pos``."""
    n = len(buf)
    if length == 0:
        return {}
    if pos + 8 > n:
        raise _NeedMore
    group, elem = _TAG.unpack_from(buf, pos)
    if (group << 16 | elem) == _SEQ_END:
        return {}
    if (group << 16 | elem) != _ITEM:
        raise _Unsupported("bad sequence item")
    item_length = _U32.unpack_from(buf, pos + 4)[0]
    pos += 8
    end = None if item_length == _UNDEFINED else pos + item_length
    wanted = nested[keyword]
    values: dict[str, Any] = {}
    while end is None or pos < end:
        if pos + 8 > n:
            raise _NeedMore
        group, elem = _TAG.unpack_from(buf, pos)
        tag = group << 16 | elem
        if tag == _ITEM_END:
            break
        value_pos, vr, length, undefined = _element_header(buf, pos, explicit, group)
        item = wanted.get(tag)
        if item is not None:
            kw, dict_vr = item
            if (vr == b"SQ" or (vr is None and dict_vr == "SQ")) and kw in nested:
                values[kw] = (_first_item(buf, value_pos, length, explicit, kw, nested, codec),)
            elif undefined:
                raise _Unsupported("undefined length value")
            else:
                if value_pos + length > n:
                    raise _NeedMore
                values[kw] = _value(buf[value_pos : value_pos + length], vr, kw, dict_vr, True, codec)
        pos = _skip_undefined(buf, value_pos, explicit) if undefined else value_pos + length
    return values


_TEXT_VRS = frozenset({"AE", "AS", "CS", "DA", "DT", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR", "UT"})
#: VRs whose value is a single string even with backslashes in it.
_SINGLE_TEXT_VRS = frozenset({"LT", "ST", "UT", "UR"})


#: VRs whose value is its bytes (a wanted private blob: Siemens' CSA headers).
_BYTES_VRS = frozenset({"OB", "OW"})

_BINARY_UNITS = {"US": _U16, "SS": _I16, "UL": _U32, "SL": _I32, "FL": _F32, "FD": _F64}

#: Converted values by (raw bytes, VR): most header values repeat from file to file of a series.
_CACHE: dict[tuple[bytes, str], Any] = {}

#: Entries kept in :data:`_CACHE` before it is emptied (bounds memory on huge trees).
CACHE_LIMIT = 65536


def _convert_cached(raw: bytes, vr: str) -> Any:
    key = (raw, vr)
    try:
        return _CACHE[key]
    except KeyError:
        pass
    value = _convert(raw, vr)
    if len(_CACHE) >= CACHE_LIMIT:
        _CACHE.clear()
    _CACHE[key] = value
    return value


def _convert(raw: bytes, vr: str) -> Any:
    """A raw value as pydicom returns it (str / float / int; a tuple when multi-valued)."""
    if vr in _TEXT_VRS or vr == "DS" or vr == "IS":
        if not raw.isascii():
            raise _NonAscii("non-ASCII text")
        text = raw.decode("ascii").rstrip(" \x00")
        if vr in _SINGLE_TEXT_VRS:
            return text
        parts = text.split("\\")
        if vr == "DS":
            values: list[Any] = [float(p) if p.strip() else None for p in parts]
        elif vr == "IS":
            floats = [float(p) if p.strip() else None for p in parts]
            if any(f is not None and not f.is_integer() for f in floats):
                raise _Unsupported("IS with a fraction")
            values = [None if f is None else int(f) for f in floats]
        else:
            return parts[0] if len(parts) == 1 else tuple(parts)
        if len(values) == 1:
            return values[0]
        if any(v is None for v in values):
            raise _Unsupported("empty number in a list")
        return tuple(values)
    if vr in _BYTES_VRS:
        return raw
    unit = _BINARY_UNITS.get(vr)
    if unit is None:
        raise _Unsupported(f"VR {vr}")
    n, rem = divmod(len(raw), unit.size)
    if rem or n == 0:
        raise _Unsupported("binary length")
    values = [unit.unpack_from(raw, i * unit.size)[0] for i in range(n)]
    return values[0] if n == 1 else tuple(values)


def convert_raw(raw: bytes, vr: str) -> Any:
    """Raw little-endian bytes of VR ``vr`` as :func:`_convert` gives them; None when they do not parse."""
    if not raw:
        return None
    try:
        return _convert(raw, vr)
    except (_Unsupported, ValueError, UnicodeDecodeError, StructError):
        return None


def _skip_undefined(buf: bytes, pos: int, explicit: bool) -> int:
    """Position after an undefined-length sequence (or encapsulated data) whose value starts at ``pos``.

    One loop over the 8-byte headers inside, with a stack of what is open (a sequence expects items
    and its delimiter, an undefined-length item expects elements and its delimiter): big private
    sequences (Philips writes hundreds of elements in them) cost no function call per element.
    """
    n = len(buf)
    tag_of = _TAG.unpack_from
    u32 = _U32.unpack_from
    u16 = _U16.unpack_from
    long_vrs = _LONG_VRS
    in_sequence = [True]  # innermost container: True = a sequence, False = an undefined-length item
    while in_sequence:
        if pos + 8 > n:
            raise _NeedMore
        group, elem = tag_of(buf, pos)
        if in_sequence[-1]:
            length = u32(buf, pos + 4)[0]
            pos += 8
            if group != 0xFFFE:
                raise _Unsupported("bad sequence item")
            if elem == 0xE0DD:
                in_sequence.pop()
            elif elem != 0xE000:
                raise _Unsupported("bad sequence item")
            elif length == _UNDEFINED:
                in_sequence.append(False)
            else:
                pos += length
            continue
        if group == 0xFFFE:
            if elem != 0xE00D:
                raise _Unsupported("bad item element")
            pos += 8
            in_sequence.pop()
            continue
        if explicit:
            vr = buf[pos + 4 : pos + 6]
            if vr in long_vrs:
                if pos + 12 > n:
                    raise _NeedMore
                length = u32(buf, pos + 8)[0]
                pos += 12
            elif 65 <= vr[0] <= 90 and 65 <= vr[1] <= 90:
                length = u16(buf, pos + 6)[0]
                pos += 8
            else:
                raise _Unsupported("implicit VR inside an explicit dataset")
        else:
            length = u32(buf, pos + 4)[0]
            pos += 8
        if length == _UNDEFINED:
            in_sequence.append(True)
        else:
            pos += length
    return pos


def _element_header(buf: bytes, pos: int, explicit: bool, group: int) -> tuple[int, bytes | None, int, bool]:
    """``(value_pos, vr, length, undefined)`` of the element at ``pos``."""
    if explicit and group != 0xFFFE:
        if pos + 8 > len(buf):
            raise _NeedMore
        vr = buf[pos + 4 : pos + 6]
        if vr in _LONG_VRS:
            if pos + 12 > len(buf):
                raise _NeedMore
            length = _U32.unpack_from(buf, pos + 8)[0]
            return pos + 12, vr, length, length == _UNDEFINED
        if not (65 <= vr[0] <= 90 and 65 <= vr[1] <= 90):
            raise _Unsupported("implicit VR inside an explicit dataset")
        return pos + 8, vr, _U16.unpack_from(buf, pos + 6)[0], False
    if pos + 8 > len(buf):
        raise _NeedMore
    length = _U32.unpack_from(buf, pos + 4)[0]
    return pos + 8, None, length, length == _UNDEFINED


def _parse(buf: bytes, file_size: int, wanted: Wanted) -> FastDataset:
    """The wanted elements of a whole file's bytes (or its first ``len(buf)`` of ``file_size``)."""
    if len(buf) < 144 or buf[128:132] != b"DICM":
        raise _Unsupported("no preamble")
    # File meta group: always explicit VR little endian.
    meta: dict[str, Any] = {}
    pos = 132
    end_meta = None
    while True:
        if pos + 8 > len(buf):
            raise _NeedMore
        group, elem = _TAG.unpack_from(buf, pos)
        if group != 0x0002 or (end_meta is not None and pos >= end_meta):
            break
        value_pos, _vr, length, undefined = _element_header(buf, pos, True, group)
        if undefined:
            raise _Unsupported("undefined length in file meta")
        if value_pos + length > len(buf):
            raise _NeedMore
        raw = buf[value_pos : value_pos + length]
        if elem == 0x0000:
            end_meta = value_pos + _U32.unpack_from(raw)[0]
        elif elem == 0x0010:
            meta["TransferSyntaxUID"] = raw.decode("ascii").rstrip("\x00 ")
        elif elem == 0x0002:
            meta["MediaStorageSOPClassUID"] = raw.decode("ascii").rstrip("\x00 ")
        pos = value_pos + length
    syntax = meta.get("TransferSyntaxUID")
    if not syntax or syntax in (DEFLATED, BIG_ENDIAN) or "MediaStorageSOPClassUID" not in meta:
        raise _Unsupported("transfer syntax")
    explicit = syntax != IMPLICIT_LE
    if not syntax.startswith("1.2.840.10008.1.2"):
        raise _Unsupported("private transfer syntax")
    if meta["MediaStorageSOPClassUID"] == "1.2.840.10008.1.3.10":
        raise _Unsupported("DICOMDIR")
    if wanted.table is not None:
        return _dataset_compiled(buf, pos, explicit, file_size, meta, wanted)
    return _dataset(buf, pos, explicit, file_size, meta, wanted)


def _dataset(buf: bytes, pos: int, explicit: bool, file_size: int, meta: dict[str, Any],
             wanted: Wanted) -> FastDataset:
    """The walk over the dataset from ``pos``, in Python (the reference the compiled walk copies)."""
    values: dict[str, Any] = {}
    elements = wanted.elements
    nested = wanted.nested
    uncached = wanted.uncached
    n = len(buf)
    last_tag = 0
    explicit_header = _EXPLICIT_HEADER.unpack_from
    implicit_header = _IMPLICIT_HEADER.unpack_from
    u32 = _U32.unpack_from
    codec = None  # the dataset's character set, once (0008,0005) is read
    while True:
        if pos + 8 > n:
            if pos >= file_size:
                return FastDataset(values, None, meta, elements=elements)  # no pixel data: pydicom says why
            raise _NeedMore
        if explicit:
            group, elem, vr, length = explicit_header(buf, pos)
            if vr in _LONG_VRS:
                if pos + 12 > n:
                    raise _NeedMore
                length = u32(buf, pos + 8)[0]
                value_pos = pos + 12
            elif vr in _ALL_VRS:
                value_pos = pos + 8
            else:
                raise _Unsupported("unknown VR (implicit VR inside an explicit dataset?)")
        else:
            group, elem, length = implicit_header(buf, pos)
            vr = None
            value_pos = pos + 8
        tag = group << 16 | elem
        if tag <= last_tag:
            raise _Unsupported("elements out of order or repeated")
        last_tag = tag
        if tag in _FALLBACK_TAGS:
            raise _Unsupported("enhanced multi-frame, DICOMDIR, float pixels or items")
        if tag == _PIXEL_DATA:
            if length != _UNDEFINED and value_pos + length > file_size:
                raise _Truncated
            return _with_pixels(values, value_pos, length, meta, elements)
        if tag == _CHARACTER_SET and value_pos + length <= n:
            codec = _codec(buf[value_pos : value_pos + length])
            if codec is None and buf[value_pos : value_pos + length].strip(b" \x00") not in (b"", b"ISO_IR 6"):
                raise _Unsupported("character set")  # ISO 2022 escapes are ASCII bytes: pydicom decodes them
        item = elements.get(tag)
        if item is not None and item[0] in nested and (vr == b"SQ" or (vr is None and item[1] == "SQ")):
            values[item[0]] = (_first_item(buf, value_pos, length, explicit, item[0], nested, codec),)
            item = None
        if length == _UNDEFINED:
            pos = _skip_undefined(buf, value_pos, explicit)
            continue
        if item is not None:
            if value_pos + length > n:
                raise _NeedMore
            keyword, dict_vr = item
            values[keyword] = _value(buf[value_pos : value_pos + length], vr, keyword, dict_vr,
                                     tag not in uncached, codec)
        pos = value_pos + length
        if pos > file_size:
            raise _Truncated


def _with_pixels(values: dict[str, Any], value_pos: int, length: int, meta: dict[str, Any],
                 elements: Mapping[int, tuple[str, str]]) -> FastDataset:
    """The dataset whose pixel data starts at ``value_pos``, unless it needs pydicom after all."""
    if values.get("NumberOfFrames") not in (None, 1):
        raise _Unsupported("multi-frame")
    image_type = values.get("ImageType")
    types = set(image_type if isinstance(image_type, tuple) else (image_type,)) if image_type else set()
    if _TILED & types or ("MOSAIC" in types and not str(values.get("Manufacturer", "")).upper().startswith("SIEMENS")):
        raise _Unsupported("a UIH grid: its private headers are needed")
    return FastDataset(values, _Element(value_pos, length), meta, elements=elements)


#: The compiled walk's status (``volume/dicom/_walk.c``): pixel data found, none, or why it stopped.
WALK_PIXEL, WALK_NO_PIXEL, WALK_NEED_MORE, WALK_UNSUPPORTED, WALK_TRUNCATED = range(5)

#: Converted values by (tag, the file's VR, the character set's bytes, the value's bytes): the
#: keyword and what :func:`_value` (or :func:`_first_item`) gave for them. Most elements repeat from
#: file to file of a series; the compiled walk looks them up itself. Emptied at :data:`CACHE_LIMIT`.
_BY_ELEMENT: dict[tuple[int, bytes | None, bytes | None, bytes], tuple[str, Any]] = {}

def _remember_element(key: tuple[int, bytes | None, bytes | None, bytes], keyword: str, value: Any) -> None:
    """Keep ``value`` in :data:`_BY_ELEMENT` (emptied at :data:`CACHE_LIMIT`)."""
    if len(_BY_ELEMENT) >= CACHE_LIMIT:
        _BY_ELEMENT.clear()
    _BY_ELEMENT[key] = (keyword, value)


_WALK_STOPS = {WALK_NEED_MORE: _NeedMore, WALK_UNSUPPORTED: _Unsupported, WALK_TRUNCATED: _Truncated}


def _dataset_compiled(buf: bytes, pos: int, explicit: bool, file_size: int, meta: dict[str, Any],
                      wanted: Wanted) -> FastDataset:
    """:func:`_dataset` by the compiled walk: it finds the wanted elements (and the character set,
    and the pixel data) in C, and puts the values it finds in :data:`_BY_ELEMENT` into ``values``;
    the others are converted here in the order the file holds them, so a value that sends the file
    to pydicom does so before anything the walk met after it, as in Python."""
    values: dict[str, Any] = {}
    status, _end, hits, pixel_pos, pixel_length = _walk.walk(buf, pos, explicit, wanted.table, file_size,
                                                             _BY_ELEMENT, values)
    n = len(buf)
    elements = wanted.elements
    nested = wanted.nested
    uncached = wanted.uncached
    codec = None
    charset = None  # the bytes of the character set: part of a remembered value's key
    for tag, vr, value_pos, length in hits:
        if tag == _CHARACTER_SET:
            if value_pos + length <= n:
                charset = buf[value_pos : value_pos + length]
                codec = _codec(charset)
                if codec is None and charset.strip(b" \x00") not in (b"", b"ISO_IR 6"):
                    raise _Unsupported("character set")
            if tag not in elements:
                continue
        keyword, dict_vr = elements[tag]
        if keyword in nested and (vr == b"SQ" or (vr is None and dict_vr == "SQ")):
            if length == _UNDEFINED:
                value = values[keyword] = (_first_item(buf, value_pos, length, explicit, keyword, nested, codec),)
                try:  # remembered by its bytes, delimiters included, as the compiled walk looks it up
                    end = _skip_undefined(buf, value_pos, explicit)
                except (_NeedMore, _Unsupported):
                    continue  # the walk stopped there too: its status says why
                _remember_element((tag, vr, charset, buf[value_pos:end]), keyword, value)
                continue
            if value_pos + length > n:
                values[keyword] = (_first_item(buf, value_pos, length, explicit, keyword, nested, codec),)
                continue
            key = (tag, vr, charset, buf[value_pos : value_pos + length])  # the whole sequence's bytes
            try:
                values[keyword] = _BY_ELEMENT[key][1]
            except KeyError:
                value = values[keyword] = (_first_item(buf, value_pos, length, explicit, keyword, nested, codec),)
                _remember_element(key, keyword, value)
            continue
        if length == _UNDEFINED:
            continue
        if value_pos + length > n:
            raise _NeedMore
        raw = buf[value_pos : value_pos + length]
        if tag in uncached:
            values[keyword] = _value(raw, vr, keyword, dict_vr, False, codec)
            continue
        value = values[keyword] = _value(raw, vr, keyword, dict_vr, True, codec)
        _remember_element((tag, vr, charset, raw), keyword, value)
    if status == WALK_PIXEL:
        return _with_pixels(values, pixel_pos, pixel_length, meta, elements)
    if status == WALK_NO_PIXEL:
        return FastDataset(values, None, meta, elements=elements)
    raise _WALK_STOPS[status]


#: What :func:`read_fast` returns for a truncated file.
TRUNCATED = "truncated or corrupt"

#: What :func:`read_fast` returns for a file that is no DICOM at all.
NOT_DICOM = "not DICOM"


#: The SpecificCharacterSet values (their bytes without leading and trailing spaces and NULs) whose
#: files the fast reader reads (:data:`CHARACTER_SETS`, none, and ISO_IR 6, ASCII): the compiled
#: reader leaves a file naming any other to the Python one, which refuses it as before.
_READ_CHARSETS = frozenset({b"", b"ISO_IR 6", *(name.encode("ascii") for name in CHARACTER_SETS)})


def read_compiled(path: str, wanted: Wanted) -> FastDataset | None:
    """What :func:`read_fast` gives for ``path``, read by one call of the compiled module
    (``volume/dicom/_walk.c``: open, read, walk the meta group and the elements, convert the values),
    when the file is the common case: a regular, non-empty, uncompressed file with a preamble, a
    header within its first :data:`FIRST_READ_BYTES`, a character set the reader decodes, and values
    the compiled converter reads as :func:`_convert` does (ASCII text, plain decimal numbers,
    binary numbers, the wanted sequences' items seen before). None otherwise, and without the
    compiled module: the caller then asks :func:`read_fast` (or pydicom), whose answer is the reference.
    """
    return read_compiled_many([path], wanted)[0]


def read_compiled_many(paths: list[str], wanted: Wanted) -> list[FastDataset | None]:
    """:func:`read_compiled` of each of ``paths``: the files are opened, read and walked in one
    call without the GIL (other threads run meanwhile), then their values converted."""
    if wanted.table is None:
        return [None] * len(paths)
    elements = wanted.elements
    out: list[FastDataset | None] = []
    for got in _walk.read(paths, wanted.table, _BY_ELEMENT, _READ_CHARSETS, FIRST_READ_BYTES, CACHE_LIMIT):
        if got is None:
            out.append(None)
            continue
        status, pixel_pos, pixel_length, sop_class, syntax, values = got
        meta = {"MediaStorageSOPClassUID": sop_class, "TransferSyntaxUID": syntax}
        if status == WALK_NO_PIXEL:
            out.append(FastDataset(values, None, meta, elements=elements))
            continue
        try:
            out.append(_with_pixels(values, pixel_pos, pixel_length, meta, elements))
        except _Unsupported:
            out.append(None)
    return out


def read_fast(path: str, wanted: Wanted, *, compiled: bool = True) -> FastDataset | str | None:
    """The ``wanted`` elements of ``path``, ``TRUNCATED``, ``NOT_DICOM``, or ``None`` when pydicom must read it.

    A gzip-compressed file is decompressed first (:mod:`volume.dicom.files`) and parsed the same way.
    ``compiled=False`` skips :func:`read_compiled` (a caller that asked it already).
    """
    if compiled:
        ds = read_compiled(path, wanted)
        if ds is not None:
            return ds
    try:
        with open(path, "rb", buffering=0) as fh:  # one read() call, no buffer copy
            size = os.fstat(fh.fileno()).st_size
            buf = fh.read(FIRST_READ_BYTES)
            if compression_of(buf) == GZIP:
                try:
                    whole = gunzip(path)
                except GunzipError:
                    return TRUNCATED
                if not_dicom(whole[:HEAD_BYTES]):
                    return NOT_DICOM
                ds = _parse(whole, len(whole), wanted)
                ds.compression = GZIP
                return ds
            if not_dicom(buf[:HEAD_BYTES]):
                return NOT_DICOM  # a text file, a picture: pydicom would say so, 0.15 s and 40 MB later
            while True:
                try:
                    ds = _parse(buf, size, wanted)
                except _NeedMore:
                    if len(buf) >= size:
                        return TRUNCATED
                    more = fh.read(len(buf) * 15 if len(buf) < 2**20 else -1)
                    if not more:
                        return TRUNCATED
                    buf += more
                    continue
                return ds
    except (_Truncated, _NeedMore):  # _NeedMore: a decompressed file ends inside its header
        return TRUNCATED
    except (_Unsupported, ValueError, UnicodeDecodeError, OSError, IndexError, StructError):
        return None



# --- every element, for the few headers read whole (the sidecar's MR fields) -----------------------


class RawElement:
    """One element as the file holds it: its VR and raw value bytes (a sequence: its datasets)."""

    __slots__ = ("VR", "tag", "value")

    def __init__(self, tag: int, vr: str, value: Any) -> None:
        self.tag = tag
        self.VR = vr
        self.value = value


class RawDataset:
    """Every element of a dataset by tag, values converted on demand (a little-endian file, read by
    :func:`read_raw`). Answers ``get(keyword)`` with a value, ``get(tag)`` with a :class:`RawElement`
    (as pydicom's ``Dataset.get`` does), and iterates over its elements."""

    __slots__ = ("_elements",)

    def __init__(self, elements: dict[int, RawElement]) -> None:
        self._elements = elements

    def __iter__(self) -> Any:
        return iter(self._elements.values())

    def __contains__(self, key: Any) -> bool:
        return self.get(key) is not None

    def get(self, key: int | str, default: Any = None) -> Any:
        if isinstance(key, int):
            return self._elements.get(key, default)
        try:
            tag, dict_vr = _lookup(key)
        except ValueError:
            return default
        elem = self._elements.get(tag)
        if elem is None:
            return default
        if elem.VR == "SQ":
            return elem.value
        vr = dict_vr if elem.VR in ("UN", "") else elem.VR
        if vr in ("OB", "OW", "UN"):
            return elem.value
        value = convert_raw(elem.value, vr)
        return default if value is None else value


def _read_elements(buf: bytes, pos: int, end: int, explicit: bool) -> tuple[dict[int, RawElement], int]:
    """Elements from ``pos`` until ``end`` (an offset) or an item delimiter; returns them and the
    position after the last (and after the delimiter). Stops before pixel data."""
    out: dict[int, RawElement] = {}
    n = len(buf)
    while pos < end:
        if pos + 8 > n:
            raise _Truncated
        group, elem = _TAG.unpack_from(buf, pos)
        tag = group << 16 | elem
        if tag == _ITEM_END:
            return out, pos + 8
        if tag == _PIXEL_DATA:
            return out, end
        value_pos, vr_bytes, length, undefined = _element_header(buf, pos, explicit, group)
        vr = vr_bytes.decode("ascii") if vr_bytes is not None else ""
        if vr == "SQ" or (not explicit and undefined):
            items, pos = _read_items(buf, value_pos, length, explicit)
            out[tag] = RawElement(tag, "SQ", items)
            continue
        if undefined:
            pos = _skip_undefined(buf, value_pos, explicit)
            continue
        if value_pos + length > n:
            raise _Truncated
        out[tag] = RawElement(tag, vr, buf[value_pos : value_pos + length])
        pos = value_pos + length
    return out, pos


def _read_items(buf: bytes, pos: int, length: int, explicit: bool) -> tuple[tuple[RawDataset, ...], int]:
    """The items of a sequence whose value starts at ``pos`` and the position after it."""
    end = len(buf) if length == _UNDEFINED else pos + length
    items = []
    while pos < end:
        if pos + 8 > len(buf):
            raise _Truncated
        group, elem = _TAG.unpack_from(buf, pos)
        item_length = _U32.unpack_from(buf, pos + 4)[0]
        pos += 8
        if (group << 16 | elem) == _SEQ_END:
            return tuple(items), pos
        if (group << 16 | elem) != _ITEM:
            raise _Unsupported("bad sequence item")
        item_end = len(buf) if item_length == _UNDEFINED else pos + item_length
        elements, after = _read_elements(buf, pos, item_end, explicit)
        items.append(RawDataset(elements))
        pos = after if item_length == _UNDEFINED else item_end
    return tuple(items), end


def read_raw(path: str) -> RawDataset | None:
    """Every element of a little-endian file's dataset before its pixel data (plain or gzip file),
    or None when pydicom must read it (no preamble, big endian, deflate, a malformed header)."""
    try:
        with open(path, "rb") as fh:
            buf = fh.read()
        if compression_of(buf) == GZIP:
            buf = gunzip(path)
        if len(buf) < 144 or buf[128:132] != b"DICM":
            return None
        pos = 132
        syntax = None
        while pos + 8 <= len(buf):
            group, elem = _TAG.unpack_from(buf, pos)
            if group != 0x0002:
                break
            value_pos, _vr, length, undefined = _element_header(buf, pos, True, group)
            if undefined:
                return None
            if elem == 0x0010:
                syntax = buf[value_pos : value_pos + length].decode("ascii").rstrip("\x00 ")
            pos = value_pos + length
        if not syntax or syntax in (DEFLATED, BIG_ENDIAN) or not syntax.startswith("1.2.840.10008.1.2"):
            return None
        elements, _ = _read_elements(buf, pos, len(buf), syntax != IMPLICIT_LE)
    except (_Truncated, _NeedMore, _Unsupported, GunzipError, OSError, ValueError, UnicodeDecodeError,
            IndexError, StructError):
        return None
    return RawDataset(elements)


def parse_items(raw: bytes, *, explicit: bool) -> tuple[RawDataset, ...] | None:
    """The items of a sequence from its value's raw bytes (a private sequence pydicom read as
    bytes: its VR is not in pydicom's dictionary), little endian; None when they do not parse."""
    try:
        items, _ = _read_items(raw, 0, len(raw), explicit)
    except (_Truncated, _NeedMore, _Unsupported, ValueError, UnicodeDecodeError, IndexError, StructError):
        return None
    return items


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

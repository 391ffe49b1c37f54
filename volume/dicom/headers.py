"""Find DICOM files and read their headers (never their pixels) into small records.

One :class:`FrameHeader` describes one 2D image: a classic single-frame file, or one frame of a
multi-frame file (enhanced CT/MR with per-frame positions, or a cine). Records keep the numbers
grouping, geometry and pixel decoding need, a few hundred bytes each, so big trees scan in
memory proportional to their file count, not their pixels.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import operator
import os
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..parallel.pool import WorkerPool, default_workers, in_daemon_process
from ..phi import CARRIED
from . import fastheader, uih
from ._tags import PRIVATE, PRIVATE_TAGS
from .fastheader import NOT_DICOM, TRUNCATED, FastDataset, element_value, read_compiled, read_fast
from .files import GunzipError, file_compression, gunzip_cached
from .geometry import GeometryError, slice_normal
from .mr import MRFrame, classic_mr_frame, enhanced_mr_frame, with_csa_diffusion
from .read import Skip, image_skip, pixel_element, read_dataset, size_skip
from .siemens import ascconv, csa_image, protocol_slice_times, protocol_slices
from .values import (
    dicom_seconds,
    in_groups,
    plain_value,
    seconds_from_first,
    to_float,
    to_floats,
    to_int,
    to_str,
    to_strings,
    value_of,
)

#: Transfer syntaxes whose pixel bytes lie in the file uncompressed (read straight from disk).
NATIVE_SYNTAXES = {
    "1.2.840.10008.1.2": "<",  # Implicit VR Little Endian
    "1.2.840.10008.1.2.1": "<",  # Explicit VR Little Endian
    "1.2.840.10008.1.2.2": ">",  # Explicit VR Big Endian (retired)
}

#: Header fields kept for the JSON sidecar and ``ls`` (acquisition parameters, no identity: see
#: :mod:`volume.phi`), and whether the source was de-identified already (PatientIdentityRemoved,
#: DeidentificationMethod: DICOM outputs written with ``--keep-phi`` say what the source said).
ACQUISITION_KEYWORDS = (
    "Manufacturer",
    "ManufacturerModelName",
    "ProtocolName",
    "ImageType",
    "EchoTime",
    "RepetitionTime",
    "InversionTime",
    "FlipAngle",
    "MagneticFieldStrength",
    "SliceThickness",
    "SpacingBetweenSlices",
    "PatientPosition",
    "AcquisitionTime",
    "BodyPartExamined",
    "Laterality",
    "ImageLaterality",
    "ScanningSequence",
    "SequenceVariant",
    "ScanOptions",
    "SequenceName",
    "MRAcquisitionType",
    "ImagingFrequency",
    "PixelBandwidth",
    "EchoTrainLength",
    "KVP",
    "XRayTubeCurrent",
    "ConvolutionKernel",
    "GantryDetectorTilt",
    "SoftwareVersions",
    "WindowCenter",
    "WindowWidth",
    "ReceiveCoilName",
    "PatientIdentityRemoved",
    "DeidentificationMethod",
)

#: Patient identity, kept apart and written only when asked for (``--keep-phi``): the policy's list.
IDENTITY_KEYWORDS = CARRIED


#: :class:`FrameHeader` fields that vary from file to file: each record keeps its own.
PER_FILE_FIELDS = (
    "path", "frame", "sop_uid", "ipp", "pixel_offset", "pixel_length", "slope", "intercept",
    "instance_number", "temporal_position", "trigger_time", "acquisition_time", "mr", "acquisition",
)


@dataclass(frozen=True, slots=True)
class _Common:
    """The :class:`FrameHeader` fields the files of one stack share: one object for all of them."""

    series_uid: str
    study_uid: str
    series_number: int | None
    series_description: str
    modality: str
    rows: int
    cols: int
    samples: int
    photometric: str
    bits_allocated: int
    bits_stored: int
    pixel_representation: int
    planar_configuration: int
    transfer_syntax: str
    n_frames_in_file: int
    file_compression: str = ""
    pixel_spacing: tuple[float, float] | None = None
    iop: tuple[float, ...] | None = None
    echo_number: int | None = None
    echo_time: float | None = None
    acquisition_number: float | None = None
    stack_key: str = ""
    image_type: tuple[str, ...] = ()
    slice_thickness: float | None = None
    problem: str = ""
    mosaic: int = 0
    identity: dict[str, Any] = field(default_factory=dict)


#: :class:`FrameHeader` fields held by the shared part.
COMMON_FIELDS = tuple(f.name for f in dataclasses.fields(_Common))

#: Every field of a :class:`FrameHeader`, per-file ones first.
FRAME_FIELDS = PER_FILE_FIELDS + COMMON_FIELDS


#: The shared fields other than the identity dict, in key order (see :func:`_common_of`).
_KEY_FIELDS = tuple(name for name in COMMON_FIELDS if name != "identity")


def _common_of(values: dict[str, Any]) -> _Common:
    """A :class:`_Common` equal to one made earlier (shared), else a new one.

    The key holds each field's value as given (an omitted field as ``None``) and the identity
    dict by identity: it is already shared by :func:`_shared`, and a stored object keeps its dict
    alive, so an id in a key always means the same dict. Equal contents under different keys
    (a default passed explicitly, equal dicts that are not one object) just make two shared
    parts.
    """
    get = values.get
    key = (_Common, id(get("identity")), *map(get, _KEY_FIELDS))
    try:
        return _SHARED[key]
    except KeyError:
        return _remember(key, _Common(**values))
    except TypeError:  # an unhashable value: keep this one
        return _Common(**values)


@dataclass(init=False, repr=False, eq=False)
class FrameHeader:
    """Everything volume needs to know about one 2D image, read from its file's header.

    ``frame`` is the frame index inside a multi-frame file (or the tile of a Siemens mosaic,
    whose ``mosaic`` is then the number of tiles per mosaic row), ``None`` for a single-frame file.
    Geometry fields are ``None`` when the header lacks them or holds nonsense; ``problem`` then
    says why, for messages.

    A scan keeps one record per file, so a record is small: the fields that vary from file to
    file (:data:`PER_FILE_FIELDS`; the acquisition parameters too, a dict shared by the files that
    have the same: windows and times often differ from file to file) are its own; the rest
    (series, size, orientation...) live in one shared, immutable object per stack and read as
    attributes all the same. Shared fields cannot be assigned: :meth:`replace` (or ``dataclasses.replace``)
    makes a changed copy.
    """

    __slots__ = (*PER_FILE_FIELDS, "_common")

    path: str
    frame: int | None
    sop_uid: str
    ipp: tuple[float, float, float] | None
    pixel_offset: int | None
    pixel_length: int | None
    slope: float
    intercept: float
    instance_number: int | None
    temporal_position: float | None
    trigger_time: float | None
    acquisition_time: float | None
    mr: MRFrame | None
    acquisition: dict[str, Any]
    _common: _Common

    def __init__(
        self,
        *,
        path: str,
        frame: int | None,
        sop_uid: str,
        ipp: tuple[float, float, float] | None = None,
        pixel_offset: int | None = None,
        pixel_length: int | None = None,
        slope: float = 1.0,
        intercept: float = 0.0,
        instance_number: int | None = None,
        temporal_position: float | None = None,
        trigger_time: float | None = None,
        acquisition_time: float | None = None,
        mr: MRFrame | None = None,
        acquisition: dict[str, Any] | None = None,
        _common: _Common | None = None,
        **common: Any,
    ) -> None:
        """Per-file fields, and either every shared field by name or ``_common`` (a record's
        shared part, as ``dataclasses.replace`` passes it) with any shared fields to change."""
        if _common is None:
            shared = _common_of(common)
        elif common:  # dataclasses.replace with shared fields to change
            shared = _common_of({**{name: getattr(_common, name) for name in COMMON_FIELDS}, **common})
        else:
            shared = _common
        self._fill(shared, path, frame, sop_uid, ipp, pixel_offset, pixel_length, slope,
                   intercept, instance_number, temporal_position, trigger_time, acquisition_time, mr,
                   {} if acquisition is None else acquisition)

    @classmethod
    def of(
        cls,
        common: _Common,
        path: str,
        frame: int | None,
        sop_uid: str,
        ipp: tuple[float, float, float] | None,
        pixel_offset: int | None,
        pixel_length: int | None,
        slope: float,
        intercept: float,
        instance_number: int | None,
        temporal_position: float | None,
        trigger_time: float | None,
        acquisition_time: float | None,
        mr: MRFrame | None = None,
        acquisition: dict[str, Any] | None = None,
    ) -> FrameHeader:
        """A record from its per-file fields and a shared part made by :func:`_common_of` (the
        scanner's fast path: one call per file, no keyword dict of every field)."""
        self = object.__new__(cls)
        self._fill(common, path, frame, sop_uid, ipp, pixel_offset, pixel_length, slope, intercept,
                   instance_number, temporal_position, trigger_time, acquisition_time, mr,
                   {} if acquisition is None else acquisition)
        return self

    def _fill(
        self, common: _Common, path: str, frame: int | None, sop_uid: str,
        ipp: tuple[float, float, float] | None, pixel_offset: int | None, pixel_length: int | None,
        slope: float, intercept: float, instance_number: int | None, temporal_position: float | None,
        trigger_time: float | None, acquisition_time: float | None, mr: MRFrame | None,
        acquisition: dict[str, Any],
    ) -> None:
        self.path = path
        self.frame = frame
        self.sop_uid = sop_uid
        self.ipp = ipp
        self.pixel_offset = pixel_offset
        self.pixel_length = pixel_length
        self.slope = slope
        self.intercept = intercept
        self.instance_number = instance_number
        self.temporal_position = temporal_position
        self.trigger_time = trigger_time
        self.acquisition_time = acquisition_time
        self.mr = mr
        self.acquisition = acquisition
        self._common = common

    def __getstate__(self) -> tuple[Any, ...]:
        return tuple([getattr(self, name) for name in self.__slots__])

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        for name, value in zip(self.__slots__, state, strict=True):
            setattr(self, name, value)

    def asdict(self) -> dict[str, Any]:
        """Every field by name (:data:`FRAME_FIELDS`)."""
        return {name: getattr(self, name) for name in FRAME_FIELDS}

    def replace(self, **changes: Any) -> FrameHeader:
        """A copy with ``changes`` (field names as keywords)."""
        return FrameHeader(**{**self.asdict(), **changes})

    def __eq__(self, other: object) -> bool:
        if type(other) is not FrameHeader:
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in PER_FILE_FIELDS) and (
            self._common == other._common
        )

    __hash__ = None  # type: ignore[assignment]  # equal by value, and dict fields are not hashable

    def __repr__(self) -> str:
        return "FrameHeader(" + ", ".join(f"{n}={getattr(self, n)!r}" for n in FRAME_FIELDS) + ")"

    @property
    def name(self) -> str:
        """File name, with ``[frame N]`` for frames of multi-frame files (for messages)."""
        base = os.path.basename(self.path)
        return base if self.frame is None else f"{base} [frame {self.frame + 1}]"

    @property
    def is_localizer(self) -> bool:
        """True when ImageType says LOCALIZER (scouts, survey images)."""
        return "LOCALIZER" in self.image_type

    @property
    def has_geometry(self) -> bool:
        """True when position, orientation and pixel spacing are all usable."""
        return self.ipp is not None and self.iop is not None and self.pixel_spacing is not None


def _common_field(name: str) -> property:
    return property(operator.attrgetter(f"_common.{name}"), doc=f"``{name}``, shared by the files of a stack.")


for _name in COMMON_FIELDS:
    setattr(FrameHeader, _name, _common_field(_name))
del _name


@dataclass
class ScanReport:
    """Headers found under some paths, and what was skipped and why."""

    frames: list[FrameHeader] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    skipped_files: list[tuple[str, str]] = field(default_factory=list)
    n_files: int = 0

    def add_skip(self, path: str, reason: str) -> None:
        self.skipped[reason] += 1
        self.skipped_files.append((path, reason))


# --- reading --------------------------------------------------------------------------------


def iter_files(paths: Iterable[str | os.PathLike[str]]) -> Iterator[str]:
    """Every regular file under ``paths`` (files are yielded as given), recursively, sorted."""
    for p in paths:
        p = os.fspath(p)
        if os.path.isdir(p):
            for root, dirs, files in os.walk(p):
                dirs.sort()
                for name in sorted(files):
                    yield os.path.join(root, name)
        elif os.path.exists(p):
            yield p


#: Top-level keywords :func:`_frames_from_dataset` reads (besides the acquisition and identity ones).
HEADER_KEYWORDS = (
    "SOPClassUID", "SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID", "SeriesNumber",
    "SeriesDescription", "Modality", "Rows", "Columns", "NumberOfFrames", "ImageType",
    "SamplesPerPixel", "PhotometricInterpretation", "BitsAllocated", "BitsStored",
    "PixelRepresentation", "PlanarConfiguration", "InstanceNumber", "EchoNumbers", "EchoTime",
    "SliceThickness", "PixelSpacing", "ImageOrientationPatient", "ImagePositionPatient",
    "RescaleSlope", "RescaleIntercept", "TemporalPositionIdentifier", "AcquisitionNumber",
    "TriggerTime", "AcquisitionTime", "ContentTime", "DiffusionBValue", "DiffusionGradientOrientation",
    "DiffusionDirectionality", "RealWorldValueMappingSequence", "InPlanePhaseEncodingDirection", "ImageComments",
)

#: Wanted sequences -> the keywords wanted in their first item (the fast reader parses only those).
HEADER_SEQUENCES = {
    "RealWorldValueMappingSequence": ("RealWorldValueSlope", "RealWorldValueIntercept", "MeasurementUnitsCodeSequence"),
    "MeasurementUnitsCodeSequence": ("CodeValue",),
}


@functools.cache
def header_wanted() -> fastheader.Wanted:
    """What the fast reader extracts for a record: made once, on the first file."""
    return fastheader.wanted(
        dict.fromkeys(HEADER_KEYWORDS + ACQUISITION_KEYWORDS + IDENTITY_KEYWORDS + tuple(PRIVATE_TAGS)),
        HEADER_SEQUENCES,
    )


def read_header(path: str, *, fast: bool = True) -> tuple[list[FrameHeader], str]:
    """Read one file's header into frame records.

    Returns ``(frames, "")`` for an image, or ``([], reason)`` when the file is skipped:
    ``"not DICOM"``, ``"empty"``, ``"unreadable"``, ``"truncated or corrupt"``,
    ``"DICOMDIR index"``, ``"no pixel data"``.

    With ``fast`` (the default), common little-endian files are parsed by
    :mod:`volume.dicom.fastheader` (several times faster); anything else by pydicom. Both give
    the same records.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _read_header(path, fast)


def _read_header(path: str, fast: bool = True) -> tuple[list[FrameHeader], str]:
    ds: Any = read_compiled(path, header_wanted()) if fast else None  # a regular, non-empty file, read
    if ds is None:
        skip = size_skip(path)
        if skip is not None:
            return [], skip.value
    if ds is None and fast:
        quick = read_fast(path, header_wanted(), compiled=False)
        if quick == TRUNCATED:
            return [], Skip.TRUNCATED.value
        if quick == NOT_DICOM:
            return [], Skip.NOT_DICOM.value
        ds = quick
    if ds is None:
        compression = file_compression(path)
        ds = read_dataset(path, compression=compression, defer_size=PYDICOM_DEFER_BYTES)
        if isinstance(ds, Skip):
            return [], ds.value
    else:
        compression = ds.compression
    try:
        return _frames_from_dataset(path, ds, compression)
    except Exception:  # noqa: BLE001 - any surprise in a header skips that file, never the scan
        return [], Skip.TRUNCATED.value


#: Values longer than this stay in the file when pydicom reads a header (pixel data, big private blobs).
PYDICOM_DEFER_BYTES = 1024


#: Entries of :data:`_SHARED` before it is emptied (bounds memory on huge, varied trees).
SHARED_LIMIT = 4096

#: Equal header parts (acquisition and identity dicts, orientation, spacing, ImageType) already
#: made, by a hashable key: the files of a series share one object each instead of one per file,
#: which cuts the memory a scan keeps by about a third. Records never modify them.
_SHARED: dict[Any, Any] = {}


def _shared(value: Any) -> Any:
    """An equal object made earlier (tuple, or a dict never modified afterwards), else ``value``."""
    if value is None:
        return None
    if type(value) is dict:  # values are numbers, strings or flat lists of them (see plain_value)
        key: Any = (dict, tuple([(k, tuple(v) if type(v) is list else v) for k, v in value.items()]))
    else:
        key = value
    try:
        return _SHARED[key]
    except KeyError:
        return _remember(key, value)
    except TypeError:  # an unhashable value (a nested list): keep this one
        return value


def _remember(key: Any, value: Any) -> Any:
    """Store ``value`` under ``key`` in :data:`_SHARED` (emptied at :data:`SHARED_LIMIT`); return it."""
    if len(_SHARED) >= SHARED_LIMIT:
        _SHARED.clear()
    _SHARED[key] = value
    return value


_MISSING = object()


def _hashable(values: tuple[Any, ...]) -> tuple[Any, ...]:
    """Header values as a dictionary key: a fast reader's values are str, numbers and tuples of
    them, but a wanted sequence's first item is a tuple of one dict (made a tuple of its items)."""
    return tuple(_frozen(v) if type(v) is tuple and v and type(v[0]) is dict else v for v in values)


def _frozen(value: Any) -> Any:
    if type(value) is tuple:
        return tuple(_frozen(v) for v in value)
    if type(value) is dict:
        return (dict, tuple((k, _frozen(v)) for k, v in value.items()))
    return value


class ReadSetMemo:
    """``fn(get, *args)`` remembered by what it read: the values of the keywords it asked ``get``
    for, in order, and ``args``.

    ``fn`` must decide only from what it reads (no other state): then another file whose header
    answers the same keywords with the same values makes it read the same keywords again and
    return the same result, which is what a hit returns. Files of one series mostly agree on
    everything such a function reads; those that differ are computed and remembered too.
    At most :data:`SHARED_LIMIT` results are kept (all are forgotten beyond).
    """

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.by_keywords: dict[tuple[str, ...], dict[Any, Any]] = {}
        self.last: tuple[str, ...] | None = None  # the keywords of the last hit, tried first
        self.size = 0

    def _lookup(self, keywords: tuple[str, ...], get: Callable[[str], Any], args: tuple[Any, ...]) -> Any:
        values = tuple(map(get, keywords))
        results = self.by_keywords[keywords]
        try:
            return results.get((args, values), _MISSING)
        except TypeError:  # a wanted sequence's item (a dict)
            return results.get((args, _hashable(values)), _MISSING)

    def __call__(self, get: Callable[[str], Any], *args: Any) -> Any:
        if self.last is not None:
            hit = self._lookup(self.last, get, args)
            if hit is not _MISSING:
                return hit
        for keywords in self.by_keywords:
            if keywords != self.last:
                hit = self._lookup(keywords, get, args)
                if hit is not _MISSING:
                    self.last = keywords
                    return hit
        read: list[str] = []

        def recording(keyword: str) -> Any:
            read.append(keyword)
            return get(keyword)

        result = self.fn(recording, *args)
        keywords = tuple(dict.fromkeys(read))
        if self.size >= SHARED_LIMIT:
            self.by_keywords.clear()
            self.size = 0
        self.by_keywords.setdefault(keywords, {})[(args, _hashable(tuple(map(get, keywords))))] = result
        self.last = keywords
        self.size += 1
        return result

def _frames_from_dataset(path: str, ds: Any, compression: str = "") -> tuple[list[FrameHeader], str]:
    if isinstance(ds, FastDataset):  # values already converted: plain dictionary look-ups
        get = ds.values.get
    else:
        def get(keyword: str) -> Any:
            private = PRIVATE_TAGS.get(keyword)
            if private is not None:
                return element_value(ds, *private)
            return value_of(ds, keyword)

    meta = getattr(ds, "file_meta", None)
    pixel = pixel_element(ds)
    skip = image_skip(ds, has_pixels=pixel is not None)
    if skip is not None:
        return [], skip.value
    syntax = to_str(value_of(meta, "TransferSyntaxUID") if meta else None) or "1.2.840.10008.1.2"
    rows = to_int(get("Rows")) or 0
    cols = to_int(get("Columns")) or 0
    n_frames = to_int(get("NumberOfFrames")) or 1
    image_type = _shared(tuple(to_str(v).upper() for v in to_strings(get("ImageType")) if to_str(v)))
    problem = ""
    if rows <= 0 or cols <= 0:
        problem = f"Rows x Columns is {rows} x {cols}"
    elif n_frames <= 0:
        problem = f"NumberOfFrames is {n_frames}"
    offset = length = None
    value_tell = getattr(pixel, "value_tell", None)
    plen = getattr(pixel, "length", None)
    if syntax in NATIVE_SYNTAXES and value_tell is not None and plen not in (None, 0xFFFFFFFF):
        offset, length = int(value_tell), int(plen)
    expand = n_frames
    if not problem and n_frames > 1:
        problem = _frames_beyond_data(path, n_frames, rows * cols * (to_int(get("SamplesPerPixel")) or 1),
                                      to_int(get("BitsAllocated")) or 0, length, value_tell, compression)
    if problem:
        expand = 1  # one record carries the problem: never millions of them for a lying header
    sop_uid = to_str(get("SOPInstanceUID"))
    instance_number = to_int(get("InstanceNumber"))
    if isinstance(ds, FastDataset):  # single-frame (the fast reader leaves multi-frame files to pydicom)
        common = _fast_common(get, syntax, compression, n_frames, problem, image_type)
        acquisition = _listed_fast(get, ACQUISITION_KEYWORDS)
        mr = _CLASSIC_MR(get) if common.modality == "MR" else None
    else:
        base = _shared_fields(get, syntax, compression, n_frames, problem, image_type, plain_value)
        per_frame = get("PerFrameFunctionalGroupsSequence")
        shared_seq = get("SharedFunctionalGroupsSequence")
        shared = shared_seq[0] if shared_seq else None
        if n_frames > 1 or per_frame is not None:
            base.update(path=path, sop_uid=sop_uid, pixel_offset=offset, pixel_length=length,
                        instance_number=instance_number)
            return _multiframe(ds, base, expand, per_frame, shared), ""
        acquisition = base.pop("acquisition")  # a per-file field
        common = _single_common(get, base)
        mr = _shared(classic_mr_frame(get)) if base["modality"] == "MR" else None
    single = FrameHeader.of(
        common,
        path=path,
        frame=None,
        sop_uid=sop_uid,
        ipp=to_floats(get("ImagePositionPatient"), 3),
        pixel_offset=offset,
        pixel_length=length,
        slope=to_float(get("RescaleSlope")) or 1.0,
        intercept=to_float(get("RescaleIntercept")) or 0.0,
        instance_number=instance_number,
        temporal_position=to_float(get("TemporalPositionIdentifier")),
        trigger_time=to_float(get("TriggerTime")),
        acquisition_time=dicom_seconds(get("AcquisitionTime") or get("ContentTime")),
        mr=mr,
        acquisition=acquisition,
    )
    if not problem and uih.is_grid(image_type, single.acquisition.get("Manufacturer")):
        return _grid_frames(ds, single), ""
    if "MOSAIC" in image_type and not problem:
        return _mosaic_frames(ds, single), ""
    return [single], ""


def _scalar_fields(get: Callable[[str], Any], syntax: str, compression: str, n_frames: int, problem: str,
                   image_type: tuple[str, ...]) -> dict[str, Any]:
    """The fields of a record that its stack's files share (:class:`_Common`), but the plane and
    the acquisition and identity parts."""
    return dict(
        series_uid=to_str(get("SeriesInstanceUID")),
        study_uid=to_str(get("StudyInstanceUID")),
        series_number=to_int(get("SeriesNumber")),
        series_description=to_str(get("SeriesDescription")),
        modality=to_str(get("Modality")),
        rows=to_int(get("Rows")) or 0,
        cols=to_int(get("Columns")) or 0,
        samples=to_int(get("SamplesPerPixel")) or 1,
        photometric=to_str(get("PhotometricInterpretation")).upper() or "MONOCHROME2",
        bits_allocated=to_int(get("BitsAllocated")) or 0,
        bits_stored=to_int(get("BitsStored")) or 0,
        pixel_representation=to_int(get("PixelRepresentation")) or 0,
        planar_configuration=to_int(get("PlanarConfiguration")) or 0,
        transfer_syntax=syntax,
        file_compression=compression,
        n_frames_in_file=n_frames,
        echo_number=to_int(get("EchoNumbers")),
        echo_time=to_float(get("EchoTime")),
        image_type=image_type,
        slice_thickness=to_float(get("SliceThickness")),
        problem=problem,
    )


def _listed_parts(get: Callable[[str], Any], plain: Callable[[Any], Any]) -> dict[str, Any]:
    """The acquisition and identity parts of a record (shared objects, :func:`_shared`); ``plain``
    makes a header value JSON-friendly."""
    if plain is _as_listed:  # a fast reader's values: the same, without a call per keyword
        acquisition = {kw: list(v) if type(v) is tuple else v for kw in ACQUISITION_KEYWORDS
                       if (v := get(kw)) is not None and v != ""}
        identity = {kw: list(v) if type(v) is tuple else v for kw in IDENTITY_KEYWORDS
                    if (v := get(kw)) is not None and v != ""}
    else:
        acquisition = {}
        for kw in ACQUISITION_KEYWORDS:
            v = plain(get(kw))
            if v not in (None, "", []):
                acquisition[kw] = v
        identity = {}
        for kw in IDENTITY_KEYWORDS:
            v = plain(get(kw))
            if v not in (None, "", []):
                identity[kw] = v
    return {"acquisition": _shared(acquisition), "identity": _shared(identity)}


def _shared_fields(get: Callable[[str], Any], syntax: str, compression: str, n_frames: int, problem: str,
                   image_type: tuple[str, ...], plain: Callable[[Any], Any]) -> dict[str, Any]:
    """The fields of a record that its stack's files share (:class:`_Common`), its plane's aside."""
    return {**_scalar_fields(get, syntax, compression, n_frames, problem, image_type), **_listed_parts(get, plain)}


def _plane(get: Callable[[str], Any]) -> dict[str, Any]:
    """The plane fields of a single-frame record."""
    return {
        "pixel_spacing": _shared(_spacing(get("PixelSpacing"))),
        "iop": _shared(to_floats(get("ImageOrientationPatient"), 6)),
        "acquisition_number": to_float(get("AcquisitionNumber")),
    }


def _single_common(get: Callable[[str], Any], base: dict[str, Any]) -> _Common:
    """The shared part of a single-frame record: ``base`` and its plane."""
    return _common_of({**base, **_plane(get)})


def _as_listed(value: Any) -> Any:
    """A fast reader's value as :func:`plain_value` gives it (a tuple becomes a list, for JSON)."""
    return list(value) if type(value) is tuple else value


def _fast_scalars(get: Callable[[str], Any], *args: Any) -> dict[str, Any]:
    """The scalar and plane fields of a record read by the fast reader (never modified)."""
    return {**_scalar_fields(get, *args), **_plane(get)}


def _listed_fast(get: Callable[[str], Any], keywords: tuple[str, ...]) -> dict[str, Any]:
    """The acquisition or identity part (``keywords``) of a record read by the fast reader, as
    :func:`_listed_parts` makes it, remembered by the values it holds (one look-up when another
    file had the same; a window or a time often differs from file to file)."""
    values = tuple(map(get, keywords))
    key = (_listed_fast, keywords, values)
    try:
        return _SHARED[key]
    except KeyError:
        pass
    except TypeError:  # a wanted sequence's item (a dict) among the values
        return _shared({kw: _as_listed(v) for kw, v in zip(keywords, values, strict=True) if v is not None and v != ""})
    made = {kw: list(v) if type(v) is tuple else v for kw, v in zip(keywords, values, strict=True)
            if v is not None and v != ""}
    return _remember(key, made)


def _fast_common(get: Callable[[str], Any], syntax: str, compression: str, n_frames: int, problem: str,
                 image_type: tuple[str, ...]) -> _Common:
    """The shared part of a record read by the fast reader: its scalar fields made once per
    distinct set of the values they read; the identity part by the values it holds
    (:func:`_listed_fast`); the part itself once per distinct two (a stored part keeps the two
    alive, so their ids in its key always mean the same objects)."""
    scalars = _FAST_SCALARS(get, syntax, compression, n_frames, problem, image_type)
    identity = _listed_fast(get, IDENTITY_KEYWORDS)
    key = (_fast_common, id(scalars), id(identity))
    made = _SHARED.get(key)
    if made is not None:
        return made[0]
    common = _Common(**scalars, identity=identity)
    _remember(key, (common, scalars))
    return common


def _shared_mr(get: Callable[[str], Any]) -> MRFrame | None:
    """The MR part of a single-frame record, shared (:func:`_shared`)."""
    return _shared(classic_mr_frame(get))


#: The parts of a fast-read record made once per distinct set of the values they read: most of a
#: record is the same for every file of a series, so only the per-file values are converted per file.
_FAST_SCALARS = ReadSetMemo(_fast_scalars)
_CLASSIC_MR = ReadSetMemo(_shared_mr)


def _grid_frames(ds: Any, single: FrameHeader) -> list[FrameHeader]:
    """Split a UIH grid (one file tiling every slice of a volume) into one record per slice, each
    placed and timed by :func:`volume.dicom.uih.grid_tiles`; on any doubt the record says why it
    cannot load."""

    def refuse(why: str) -> list[FrameHeader]:
        return [single.replace(problem=f"UIH grid (ImageType {'/'.join(single.image_type)}): {why}")]

    n = uih.number_of_slices(ds)
    if not n:
        return refuse("the number of slices (MRNumberOfSliceInVolume 0065,1050) is missing: export the series "
                      "with its UIH private header, or one file per slice")
    layout = uih.grid_layout(n, single.rows, single.cols)
    if isinstance(layout, str):
        return refuse(layout)
    per_row, grid_rows = layout
    if single.iop is None or single.pixel_spacing is None:
        return refuse("ImageOrientationPatient or PixelSpacing is missing")
    spacing = to_float(value_of(ds, "SpacingBetweenSlices")) or single.slice_thickness
    tiles = uih.grid_tiles(ds, n, single.iop, single.ipp, spacing)
    if isinstance(tiles, str):
        return refuse(tiles)
    times = seconds_from_first([t.time for t in tiles])
    base_mr = single.mr or MRFrame()
    return [
        single.replace(frame=k, rows=single.rows // grid_rows, cols=single.cols // per_row, n_frames_in_file=n,
                       mosaic=per_row, pixel_offset=None, pixel_length=None, ipp=tile.ipp,
                       acquisition_time=single.acquisition_time if single.acquisition_time is not None else tile.time,
                       mr=_shared(dataclasses.replace(base_mr, slice_time=None if times is None else times[k])))
        for k, tile in enumerate(tiles)
    ]


def _mosaic_frames(ds: Any, single: FrameHeader) -> list[FrameHeader]:
    """Split a Siemens mosaic (one image tiling N slices) into N frame records.

    The slice count comes from the CSA image header (``NumberOfImagesInMosaic``), else the private
    element 0019,100A, else the protocol in the CSA series header (``sSliceArray.lSize``: files
    whose per-image CSA header was removed still have it); tiles are ``ceil(sqrt(N))`` per row.
    ImagePositionPatient of a mosaic is that of the whole tiled image, so the first slice's position
    is moved by half the difference between mosaic and tile sizes (as nibabel and dcm2niix do).
    Slice ``k`` then lies ``k * spacing`` along the CSA ``SliceNormalVector``; without it, along
    the protocol's slice array, in the direction that leads from the first tile's centre through
    the protocol's slice centres (Siemens numbers mosaic tiles either way); else ``cross(row, col)``.
    Spacing is SpacingBetweenSlices, else the protocol's, else SliceThickness. Each tile keeps its
    acquisition time (CSA MosaicRefAcqTimes) for SliceTiming. On any doubt the record says why it
    cannot load.
    """

    def refuse(why: str) -> list[FrameHeader]:
        return [single.replace(problem=f"Siemens mosaic (ImageType MOSAIC): {why}")]

    csa = csa_image(ds)
    n = to_int(csa.get("NumberOfImagesInMosaic", [None])[0]) if csa.get("NumberOfImagesInMosaic") else None
    normal = to_floats(csa.get("SliceNormalVector"), 3)
    times = [to_float(t) for t in csa.get("MosaicRefAcqTimes", [])]
    if not times:  # de-identified without the CSA header: its private copy (dcm2niix issue 296)
        private_times = element_value(ds, PRIVATE["SiemensMosaicRefAcqTimes"][0], "FD")
        times = [to_float(t) for t in (private_times if isinstance(private_times, tuple) else [private_times])
                 if t is not None]
    if not n:
        n = to_int(element_value(ds, PRIVATE["SiemensNumberOfImagesInMosaic"][0], "US"))
    protocol = None
    if not n:
        protocol = protocol_slices(ascconv(ds))
        n = len(protocol[0]) if protocol is not None else None
    if not n or n < 1:
        return refuse("the number of slices is missing (no CSA image header NumberOfImagesInMosaic, no "
                      "private 0019,100A, no protocol slice array): export the series with its Siemens "
                      "private headers")
    if not single.has_geometry:
        return refuse("position, orientation or pixel spacing is missing")
    per_row = math.ceil(math.sqrt(n))
    if single.rows % per_row or single.cols % per_row:
        return refuse(f"{single.rows}x{single.cols} pixels do not split into {per_row}x{per_row} tiles")
    tile_rows, tile_cols = single.rows // per_row, single.cols // per_row
    iop = np.asarray(single.iop, dtype=float)
    row_dir, col_dir = iop[:3], iop[3:]
    own_normal = np.cross(row_dir, col_dir)
    dr, dc = single.pixel_spacing  # type: ignore[misc]
    first = (np.asarray(single.ipp, dtype=float)
             + col_dir * dr * (single.rows - tile_rows) / 2
             + row_dir * dc * (single.cols - tile_cols) / 2)
    spacing = to_float(value_of(ds, "SpacingBetweenSlices"))
    if normal is None and protocol is None:
        protocol = protocol_slices(ascconv(ds))
        if protocol is not None and len(protocol[0]) != n:
            protocol = None
    if normal is None and protocol is not None and n > 1:
        centres, _ = protocol
        centre0 = first + row_dir * dc * (tile_cols - 1) / 2 + col_dir * dr * (tile_rows - 1) / 2
        along = (centres - centre0) @ own_normal
        if abs(along[-1]) < abs(along[0]):
            centres = centres[::-1]  # tile 0 is the last slice of the protocol's array
        step = centres[1] - centres[0]
        normal = own_normal if float(step @ own_normal) >= 0 else -own_normal
        spacing = spacing or abs(float(step @ own_normal))
        if abs(float((centres[0] - centre0) @ own_normal)) > max(spacing, 1.0) / 2:
            return refuse("the protocol's slice positions (CSA series header) do not match the mosaic's position")
    if normal is None or not np.all(np.isfinite(normal)) or abs(np.linalg.norm(normal) - 1) > 1e-2:
        normal = own_normal
    normal = np.asarray(normal, dtype=float) / np.linalg.norm(normal)
    if abs(abs(float(normal @ own_normal)) - 1) > 1e-3:
        return refuse("the CSA slice normal is not perpendicular to the image plane")
    spacing = spacing or single.slice_thickness
    if not spacing or spacing <= 0:
        return refuse("SpacingBetweenSlices and SliceThickness are missing")
    positions = [first + k * spacing * normal for k in range(n)]
    if len(times) == n and all(t is not None for t in times):
        times = [t / 1000 for t in times]  # type: ignore[operator]
    else:
        times = _protocol_times(ds, positions, own_normal, n)
    base_mr = with_csa_diffusion(single.mr, csa) or MRFrame()
    return [
        single.replace(frame=k, rows=tile_rows, cols=tile_cols, n_frames_in_file=n, mosaic=per_row,
                       ipp=tuple(float(v) for v in positions[k]),  # the pixel data: the whole mosaic's
                       mr=_shared(dataclasses.replace(base_mr, slice_time=times[k])))
        for k in range(n)
    ]


def _protocol_times(ds: Any, positions: list[np.ndarray], normal: np.ndarray, n: int) -> list[float | None]:
    """Slice times of mosaic tiles from the Siemens protocol (its slice order and TR), each tile
    taking the time of the protocol slice nearest to it along the normal; Nones when unknown."""
    protocol = ascconv(ds)
    slices = protocol_slices(protocol)
    by_slice = protocol_slice_times(protocol, to_float(value_of(ds, "RepetitionTime")))
    if slices is None or by_slice is None or len(by_slice) != n:
        return [None] * n
    along = slices[0] @ normal
    return [by_slice[int(np.argmin(np.abs(along - float(p @ normal))))] for p in positions]


#: Bytes of an encapsulated fragment's item header: no frame can take fewer bytes than this.
ITEM_HEADER_BYTES = 8


def _frames_beyond_data(
    path: str, n_frames: int, samples_per_frame: int, bits: int, length: int | None, value_tell: int | None,
    compression: str = "",
) -> str:
    """Why ``n_frames`` frames cannot be in this file's pixel data ("" when they can).

    Native pixel data must hold ``n_frames`` x Rows x Columns x samples x BitsAllocated bits;
    encapsulated pixel data needs at least one fragment (an 8-byte item header) per frame.
    Checked before frame records are made, so a header claiming 10 million frames in a small
    file costs nothing.
    """
    if length is not None:
        need = -(-n_frames * samples_per_frame * max(bits, 1) // 8)
        if need > length:
            return (f"NumberOfFrames is {n_frames} but the pixel data holds {length} bytes, not the {need} "
                    "those frames need: the header is wrong or the file is truncated")
        return ""
    try:
        room = (len(gunzip_cached(path)) if compression else os.path.getsize(path)) - (value_tell or 0)
    except (OSError, GunzipError):
        return ""
    if n_frames * ITEM_HEADER_BYTES > room:
        return (f"NumberOfFrames is {n_frames} but only {room} bytes of compressed pixel data follow, "
                "too few for that many frames: the header is wrong or the file is truncated")
    return ""


def _spacing(value: Any) -> tuple[float, float] | None:
    sp = to_floats(value, 2)
    if sp is None or sp[0] <= 0 or sp[1] <= 0:
        return None
    return sp  # type: ignore[return-value]


def _multiframe(
    ds: Any, base: dict[str, Any], n_frames: int, per_frame: Any, shared: Any
) -> list[FrameHeader]:
    """Frame records of a multi-frame file: enhanced (functional groups) or classic (cine, dose)."""
    frames = []
    top_ipp = to_floats(value_of(ds, "ImagePositionPatient"), 3)
    top_iop = to_floats(value_of(ds, "ImageOrientationPatient"), 6)
    top_ps = _spacing(value_of(ds, "PixelSpacing"))
    offsets = value_of(ds, "GridFrameOffsetVector")
    offsets = [float(v) for v in offsets] if offsets is not None else None
    top_slope = to_float(value_of(ds, "RescaleSlope")) or 1.0
    top_inter = to_float(value_of(ds, "RescaleIntercept")) or 0.0
    frame_time = to_float(value_of(ds, "FrameTime"))
    if per_frame is not None and len(per_frame) != n_frames:
        base = {**base, "problem": base["problem"] or (
            f"NumberOfFrames is {n_frames} but {len(per_frame)} per-frame groups are present"
        )}
        n_frames = min(n_frames, len(per_frame))
    for i in range(n_frames):
        fg = per_frame[i] if per_frame is not None else None
        ipp = to_floats(in_groups(fg, shared, "PlanePositionSequence", "ImagePositionPatient"), 3)
        iop = to_floats(in_groups(fg, shared, "PlaneOrientationSequence", "ImageOrientationPatient"), 6)
        ps = _spacing(in_groups(fg, shared, "PixelMeasuresSequence", "PixelSpacing"))
        thick = to_float(in_groups(fg, shared, "PixelMeasuresSequence", "SliceThickness"))
        slope = to_float(in_groups(fg, shared, "PixelValueTransformationSequence", "RescaleSlope"))
        inter = to_float(in_groups(fg, shared, "PixelValueTransformationSequence", "RescaleIntercept"))
        temporal = to_float(in_groups(fg, shared, "FrameContentSequence", "TemporalPositionIndex"))
        stack_id = to_str(in_groups(fg, shared, "FrameContentSequence", "StackID"))
        acq_dt = in_groups(fg, shared, "FrameContentSequence", "FrameAcquisitionDateTime")
        echo = to_float(in_groups(fg, shared, "MREchoSequence", "EffectiveEchoTime"))
        trigger = to_float(
            in_groups(fg, shared, "CardiacSynchronizationSequence", "NominalCardiacTriggerDelayTime")
        )
        if ipp is None and top_ipp is not None:
            ipp = top_ipp
            if offsets is not None and len(offsets) == n_frames and top_iop is not None:
                try:
                    ipp = tuple(np.asarray(top_ipp) + offsets[i] * slice_normal(top_iop))
                except GeometryError:
                    pass
        record = dict(base)
        frame_type = _frame_type(fg, shared)
        if frame_type:
            record["image_type"] = frame_type
        if thick is not None:
            record["slice_thickness"] = thick
        if echo is not None:
            record["echo_time"] = echo
        frames.append(
            FrameHeader(
                frame=i,
                pixel_spacing=ps or top_ps,
                iop=iop or top_iop,
                ipp=ipp,
                slope=slope if slope not in (None, 0.0) else top_slope,
                intercept=inter if inter is not None else top_inter,
                temporal_position=temporal if temporal is not None else (
                    float(i) if per_frame is None else None
                ),
                acquisition_number=to_float(value_of(ds, "AcquisitionNumber")),
                trigger_time=trigger if trigger is not None else (
                    i * frame_time if frame_time is not None and per_frame is None else None
                ),
                acquisition_time=dicom_seconds(acq_dt) if acq_dt is not None else None,
                mr=_shared(enhanced_mr_frame(fg, shared)) if per_frame is not None else None,
                stack_key=stack_id,
                **record,
            )
        )
    return frames


#: Functional groups that hold the FrameType of enhanced images, by modality.
FRAME_TYPE_SEQUENCES = ("MRImageFrameTypeSequence", "CTImageFrameTypeSequence", "PETFrameTypeSequence")


def _frame_type(per: Any, shared: Any) -> tuple[str, ...]:
    """An enhanced frame's FrameType (its ImageType: a field map, a phase image...), () when absent."""
    for sequence in FRAME_TYPE_SEQUENCES:
        value = in_groups(per, shared, sequence, "FrameType")
        if value is not None:
            return _shared(tuple(to_str(v).upper() for v in to_strings(value) if to_str(v)))
    return ()


def _read_many(paths: list[str]) -> list[tuple[str, list[FrameHeader], str]]:
    return [(p, *read_header(p)) for p in paths]


#: From this many files, with two or more cores, the headers are read by this process and forked
#: workers at once, each reading whole runs of consecutive files (the caches of records and values
#: stay warm: a series' files are read by one process) and sending its records back in one piece
#: (pickling 0.012 ms per file, read back 0.009 ms). Below it, one process. Measured on 2 cores
#: (docs/benchmarks.md, issue 24): 20,000 files scanned in 0.73 s against 0.89 s in one process;
#: the 4,692-file session converted 5-8% sooner but with 9% more CPU, so not split.
PARALLEL_MIN_FILES = 10_000

#: Files per run handed to one process: large enough that a series is seldom split between two
#: processes, small enough that a big tree's progress moves and its work is shared evenly.
SCAN_RUN_FILES = 2_000


def _runs(files: list[str], n_workers: int) -> list[list[str]]:
    """``files`` cut into consecutive runs of about the same length, as many for each process, at most
    :data:`SCAN_RUN_FILES` long but for rounding."""
    n_runs = n_workers * -(-len(files) // (SCAN_RUN_FILES * n_workers))
    size = -(-len(files) // n_runs)
    return [files[i : i + size] for i in range(0, len(files), size)]


def _read_in_parallel(files: list[str], n_workers: int) -> Iterator[tuple[str, list[FrameHeader], str]]:
    """``read_header`` of every file, in order: run ``k`` read by this process when ``k % n_workers``
    is 0, by a forked worker otherwise (which inherits the runs with its memory). A worker that dies
    (a crash, the out-of-memory killer) leaves its runs to this process. Without ``fork`` (threads
    running, or another platform) everything is read here."""
    from concurrent.futures.process import BrokenProcessPool

    runs = _runs(files, n_workers)
    pool = WorkerPool(n_workers - 1, items=tuple(runs))
    if not pool.forked:
        pool.stop(terminate=False)
        for path in files:
            yield (path, *read_header(path))
        return
    try:
        futures = {k: pool.submit_item(_read_many, k, run) for k, run in enumerate(runs) if k % n_workers}
        for k, run in enumerate(runs):
            if k not in futures:
                yield from _read_many(run)
                continue
            try:
                yield from futures[k].result()
            except BrokenProcessPool:
                yield from _read_many(run)
    finally:
        pool.stop(terminate=True)


def scan_files(
    paths: Iterable[str | os.PathLike[str]],
    *,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> ScanReport:
    """Read the headers of every file under ``paths``.

    Parameters
    ----------
    paths
        Files and folders (searched recursively). File names and extensions mean nothing.
    workers
        Processes for header reading; ``None`` picks all cores when there are many files
        (:data:`PARALLEL_MIN_FILES`), ``1`` reads in this process.
    progress
        Called with the number of files just read, for progress bars.
    """
    files = list(iter_files(paths))
    report = ScanReport(n_files=len(files))
    n_workers = workers if workers is not None else default_workers()
    if n_workers <= 1 or len(files) < PARALLEL_MIN_FILES or in_daemon_process():
        results: Iterator[tuple[str, list[FrameHeader], str]] = ((p, *read_header(p)) for p in files)
    else:
        results = _read_in_parallel(files, n_workers)
    try:
        for path, frames, reason in results:
            if reason:
                report.add_skip(path, reason)
            else:
                report.frames.extend(frames)
            if progress is not None:
                progress(1)
    finally:
        results.close()  # a stop (Ctrl-C) in this loop stops the workers now, not when collected
    return report


def describe_skips(report: ScanReport) -> str:
    """One line summing up skipped files, e.g. ``skipped 3 files: 2 not DICOM, 1 empty``."""
    if not report.skipped:
        return ""
    total = sum(report.skipped.values())
    parts = ", ".join(f"{n} {reason}" for reason, n in report.skipped.most_common())
    return f"skipped {total} file{'s' if total != 1 else ''}: {parts}"


def as_path(p: str | os.PathLike[str]) -> Path:
    """``Path`` of ``p`` (small helper for callers that accept both)."""
    return Path(os.fspath(p))

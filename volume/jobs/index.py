"""Header tables: one row per DICOM file, read from headers only, streamed to CSV or Parquet.

Headers are parsed up to the pixel data element and no further (the parser stops at its tag;
its bytes are never read), in chunks over a process pool, and rows are written as they arrive:
memory stays flat at 100,000 files. Compressed pixel data is not even scanned.

Privacy follows :mod:`volume.phi`: no identity column unless ``keep_phi``. Study, series and
instance UIDs can be looked up in a hospital's archive, so by default they appear only as
``*_key`` columns (:func:`volume.phi.uid_key`: the first 16 hex digits of their SHA-256). Keys group
rows (series, studies) and join tables made from the same files, but do not reveal the UID.
``fields`` that the policy calls identity are refused, and identity inside sequences is hidden,
unless ``keep_phi``; with it the UIDs and identity columns (patient name, ID, birth date, sex, age,
weight, dates, accession number, study ID and description, institution, physician) are added.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from ..dicom import dictionary
from ..dicom.read import PIXEL_TAGS, Skip, image_skip, read_until_pixels
from ..dicom.values import functional, present, to_float, to_int, to_text
from ..errors import NoDicomError, UsageError
from ..io.atomic import atomic_output, check_writable
from ..parallel.pool import ordered_map
from ..phi import HIDDEN, INDEXED, element_is_identity, is_identity, uid_key
from ..volume import OBLIQUE_TOLERANCE_DEG, closest_plane

CHUNK_FILES = 64
"""Files per task sent to a worker process (headers take ~1 ms each; fewer tasks, less IPC)."""

PARALLEL_MIN_FILES = 200
"""Below this many files, headers are read in this process (starting a pool costs more)."""

PARQUET_BATCH_ROWS = 4096
"""Rows buffered before a Parquet record batch is written."""

MAX_TEXT = 4096
"""Longest text value written into a cell (longer sequences are cut and marked)."""

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")
"""First characters that make a spreadsheet read a CSV cell as a formula (OWASP CSV injection)."""

FORMULA_ESCAPE = "'"
"""Prefix that makes spreadsheets show a formula-like text cell as text (the OWASP advice)."""

_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
NUMERIC_TEXT = re.compile(rf"{_NUMBER}(?:\s*[\\,]\s*{_NUMBER})*")
"""A number or a list of numbers (``-12.5``, ``-1\\0\\0``): never a formula, never escaped."""

@dataclass(frozen=True)
class Column:
    """One column: its name, its type (``str``, ``int``, ``float``) and how a header fills it."""

    name: str
    kind: str
    get: Callable[[Any, dict[str, Any]], Any]


# --- value helpers ---------------------------------------------------------------------------


def _top_or_functional(ds: Any, keyword: str, sequence: str) -> Any:
    value = present(ds, keyword)
    return value if value is not None else functional(ds, sequence, keyword)


def plain(value: Any, keep_phi: bool, depth: int = 0) -> Any:
    """A JSON-friendly copy of an element value; sequences become lists of {keyword: value}."""
    if value is None:
        return None
    name = type(value).__name__
    if name == "Sequence" or (isinstance(value, list) and value and type(value[0]).__name__ in ("Dataset", "FileDataset")):
        if depth > 4:
            return "<nested sequence>"
        items = []
        for item in value:
            entry: dict[str, Any] = {}
            for elem in item:
                key = elem.keyword or f"({elem.tag.group:04X},{elem.tag.element:04X})"
                if not keep_phi and element_is_identity(elem):
                    entry[key] = HIDDEN
                elif elem.tag in PIXEL_TAGS:
                    entry[key] = "<pixel data>"
                else:
                    entry[key] = plain(elem.value, keep_phi, depth + 1)
            items.append(entry)
        return items
    if name == "MultiValue" or isinstance(value, (list, tuple)):
        return [plain(v, keep_phi, depth + 1) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    if isinstance(value, bool):
        return value
    if isinstance(value, int) or name == "IS":
        return int(value)
    if isinstance(value, float) or name in ("DSfloat", "DSdecimal"):
        f = float(value)
        return f if math.isfinite(f) else None
    return str(value)


def _cell_text(value: Any, keep_phi: bool) -> str | None:
    v = plain(value, keep_phi)
    if v is None:
        return None
    if isinstance(v, (list, dict)):
        text = json.dumps(v, ensure_ascii=False, separators=(",", ":"))
    else:
        text = str(v)
    if len(text) > MAX_TEXT:
        text = text[: MAX_TEXT - 12] + "...<cut>"
    return text


# --- the columns -----------------------------------------------------------------------------


def _ipp(i: int) -> Callable[[Any, dict[str, Any]], Any]:
    def get(ds: Any, ctx: dict[str, Any]) -> Any:
        return to_float(_top_or_functional(ds, "ImagePositionPatient", "PlanePositionSequence"), i)
    return get


def _iop(ds: Any) -> list[float] | None:
    value = _top_or_functional(ds, "ImageOrientationPatient", "PlaneOrientationSequence")
    try:
        out = [float(v) for v in value] if value is not None else None
    except (TypeError, ValueError):
        return None
    return out if out is not None and len(out) == 6 and all(math.isfinite(v) for v in out) else None


def _plane(ds: Any, ctx: dict[str, Any]) -> str | None:
    iop = _iop(ds)
    if iop is None:
        return None

    normal = np.cross(iop[:3], iop[3:])
    if not np.linalg.norm(normal) > 0:
        return None
    plane, angle = closest_plane(normal)
    return plane if angle <= OBLIQUE_TOLERANCE_DEG else f"{plane} oblique"


def _spacing(i: int) -> Callable[[Any, dict[str, Any]], Any]:
    def get(ds: Any, ctx: dict[str, Any]) -> Any:
        return to_float(_top_or_functional(ds, "PixelSpacing", "PixelMeasuresSequence"), i)
    return get


def _rescale(keyword: str) -> Callable[[Any, dict[str, Any]], Any]:
    def get(ds: Any, ctx: dict[str, Any]) -> Any:
        return to_float(_top_or_functional(ds, keyword, "PixelValueTransformationSequence"))
    return get


def _window(keyword: str) -> Callable[[Any, dict[str, Any]], Any]:
    def get(ds: Any, ctx: dict[str, Any]) -> Any:
        value = functional(ds, "FrameVOILUTSequence", keyword)
        if value is None:
            value = present(ds, keyword)
        return to_float(value) if keyword != "VOILUTFunction" else to_text(value)
    return get


def _kw(keyword: str, kind: str = "str") -> Callable[[Any, dict[str, Any]], Any]:
    def get(ds: Any, ctx: dict[str, Any]) -> Any:
        value = present(ds, keyword)
        if kind == "int":
            return to_int(value)
        if kind == "float":
            return to_float(value)
        return to_text(value)
    return get


def _meta(keyword: str) -> Callable[[Any, dict[str, Any]], Any]:
    def get(ds: Any, ctx: dict[str, Any]) -> Any:
        meta = getattr(ds, "file_meta", None)
        return to_text(meta.get(keyword)) if meta is not None else None
    return get


def _sop_class_uid(ds: Any, ctx: dict[str, Any]) -> str | None:
    return to_text(present(ds, "SOPClassUID")) or _meta("MediaStorageSOPClassUID")(ds, ctx)


def _sop_class_name(ds: Any, ctx: dict[str, Any]) -> str | None:
    uid = _sop_class_uid(ds, ctx)
    if not uid:
        return None
    name = dictionary.uid_name(uid)
    return name if name != uid else None


def _syntax_name(ds: Any, ctx: dict[str, Any]) -> str | None:
    uid = _meta("TransferSyntaxUID")(ds, ctx)
    if not uid:
        return None
    return dictionary.uid_name(uid)


def _thickness(ds: Any, ctx: dict[str, Any]) -> float | None:
    return to_float(_top_or_functional(ds, "SliceThickness", "PixelMeasuresSequence"))


def _key(keyword: str) -> Callable[[Any, dict[str, Any]], Any]:
    def get(ds: Any, ctx: dict[str, Any]) -> Any:
        return uid_key(present(ds, keyword))
    return get


def _frames(ds: Any, ctx: dict[str, Any]) -> int | None:
    if not ctx.get("pixel_tag"):
        return None
    return to_int(present(ds, "NumberOfFrames")) or 1


def _ctx(name: str) -> Callable[[Any, dict[str, Any]], Any]:
    def get(ds: Any, ctx: dict[str, Any]) -> Any:
        return ctx.get(name)
    return get


def default_columns() -> list[Column]:
    """The columns every index has (no identity: UIDs appear as SHA-256 keys)."""
    c = Column
    return [
        c("path", "str", _ctx("path")),
        c("file_size", "int", _ctx("file_size")),
        c("sop_class", "str", _sop_class_name),
        c("sop_class_uid", "str", _sop_class_uid),
        c("modality", "str", _kw("Modality")),
        c("study_key", "str", _key("StudyInstanceUID")),
        c("series_key", "str", _key("SeriesInstanceUID")),
        c("instance_key", "str", _key("SOPInstanceUID")),
        c("frame_of_reference_key", "str", _key("FrameOfReferenceUID")),
        c("series_number", "int", _kw("SeriesNumber", "int")),
        c("series_description", "str", _kw("SeriesDescription")),
        c("protocol_name", "str", _kw("ProtocolName")),
        c("instance_number", "int", _kw("InstanceNumber", "int")),
        c("acquisition_number", "int", _kw("AcquisitionNumber", "int")),
        c("image_type", "str", _kw("ImageType")),
        c("body_part", "str", _kw("BodyPartExamined")),
        c("manufacturer", "str", _kw("Manufacturer")),
        c("model", "str", _kw("ManufacturerModelName")),
        c("has_pixels", "int", lambda ds, ctx: 1 if ctx.get("pixel_tag") else 0),
        c("rows", "int", _kw("Rows", "int")),
        c("columns", "int", _kw("Columns", "int")),
        c("frames", "int", _frames),
        c("samples_per_pixel", "int", _kw("SamplesPerPixel", "int")),
        c("photometric", "str", _kw("PhotometricInterpretation")),
        c("bits_allocated", "int", _kw("BitsAllocated", "int")),
        c("bits_stored", "int", _kw("BitsStored", "int")),
        c("pixel_representation", "int", _kw("PixelRepresentation", "int")),
        c("pixel_spacing_row", "float", _spacing(0)),
        c("pixel_spacing_col", "float", _spacing(1)),
        c("slice_thickness", "float", _thickness),
        c("spacing_between_slices", "float", _kw("SpacingBetweenSlices", "float")),
        c("ipp_x", "float", _ipp(0)),
        c("ipp_y", "float", _ipp(1)),
        c("ipp_z", "float", _ipp(2)),
        c("iop", "str", lambda ds, ctx: json.dumps(_iop(ds)) if _iop(ds) else None),
        c("plane", "str", _plane),
        c("transfer_syntax", "str", _meta("TransferSyntaxUID")),
        c("transfer_syntax_name", "str", _syntax_name),
        c("rescale_slope", "float", _rescale("RescaleSlope")),
        c("rescale_intercept", "float", _rescale("RescaleIntercept")),
        c("rescale_type", "str", _kw("RescaleType")),
        c("window_center", "float", _window("WindowCenter")),
        c("window_width", "float", _window("WindowWidth")),
        c("voi_lut_function", "str", _window("VOILUTFunction")),
    ]


def column_name(keyword: str) -> str:
    """The column of a DICOM keyword: ``PatientName`` -> ``patient_name``, ``SOPInstanceUID`` -> ``sop_instance_uid``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", keyword).lower()


def phi_columns() -> list[Column]:
    """Identity columns, added only with ``keep_phi``: one per keyword of the identity policy's
    :data:`volume.phi.INDEXED` (what every output carries with ``--keep-phi``, and the file's own
    UID), numbers as numbers."""
    columns = []
    for keyword in INDEXED:
        kind = _NUMERIC_VR.get(_parse_field(keyword)[3], "str")
        columns.append(Column(column_name(keyword), kind, _kw(keyword, kind)))
    return columns


_NUMERIC_VR = {"DS": "float", "FL": "float", "FD": "float", "IS": "int", "US": "int", "SS": "int",
               "UL": "int", "SL": "int", "SV": "int", "UV": "int"}


def _parse_field(text: str) -> tuple[str, int, str, str]:
    """``KVP`` or ``0018,0060`` / ``(0018,0060)`` / ``00180060`` to (column name, tag, keyword, VR)."""
    raw = text.strip()
    tag = dictionary.tag_for_keyword(raw)
    if tag is None:
        hexes = raw.strip("()").replace(",", "").replace(" ", "")
        if len(hexes) == 8:
            try:
                tag = int(hexes, 16)
            except ValueError:
                tag = None
        if tag is None:
            close = dictionary.close_keywords(raw, n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise UsageError(f"--fields: {raw!r} is not a DICOM keyword or tag{hint}")
        keyword = dictionary.keyword_for_tag(tag)
        name = keyword or f"{tag >> 16:04X},{tag & 0xFFFF:04X}"
    else:
        keyword, name = raw, raw
    vr = dictionary.vr_of(tag)
    return name, tag, keyword, vr


def _field_getter(tag: int, vm_one_numeric: str | None, keep_phi: bool) -> Callable[[Any, dict[str, Any]], Any]:
    def get(ds: Any, ctx: dict[str, Any]) -> Any:
        elem = _find_element(ds, tag)
        if elem is None:
            return None
        try:
            value = elem.value
        except Exception:  # noqa: BLE001
            return None
        if vm_one_numeric == "int":
            return to_int(value)
        if vm_one_numeric == "float":
            return to_float(value)
        return _cell_text(value, keep_phi)
    return get


def _find_element(ds: Any, tag: int) -> Any:
    """The element at top level, else in the first frame's (or the shared) functional groups."""
    try:
        if tag in ds:
            return ds[tag]
        meta = getattr(ds, "file_meta", None)
        if meta is not None and tag >> 16 == 0x0002 and tag in meta:
            return meta[tag]
        for group_kw in ("PerFrameFunctionalGroupsSequence", "SharedFunctionalGroupsSequence"):
            groups = ds.get(group_kw)
            if not groups:
                continue
            for seq_elem in groups[0]:
                if seq_elem.VR == "SQ" and seq_elem.value and tag in seq_elem.value[0]:
                    return seq_elem.value[0][tag]
    except Exception:  # noqa: BLE001
        return None
    return None


def field_columns(fields: Sequence[str], keep_phi: bool) -> list[Column]:
    """Columns for ``--fields`` (keywords or tags); identity (:func:`volume.phi.is_identity`) needs ``keep_phi``.

    Numeric single-valued elements (DS, IS, FL, US...) give numeric columns; anything else is text:
    multi-valued as a JSON list, sequences as JSON (a list of {keyword: value} items, identity
    values hidden without ``keep_phi``), binary values as ``<N bytes>``.
    """
    columns = []
    refused = []
    for text in fields:
        if not text.strip():
            continue
        name, tag, keyword, vr = _parse_field(text)
        if not keep_phi and is_identity(tag, vr):
            refused.append(name)
            continue
        if tag in PIXEL_TAGS:
            raise UsageError("--fields: pixel data is never read by `volume index`")
        vm = dictionary.vm_of(tag)
        kind = _NUMERIC_VR.get(vr) if vm == "1" else None
        columns.append(Column(name, kind or "str", _field_getter(tag, kind, keep_phi)))
    if refused:
        raise UsageError(
            f"--fields: {', '.join(refused)} {'is' if len(refused) == 1 else 'are'} patient, study or "
            "instance identity (docs/privacy.md); add --keep-phi to include identity columns"
        )
    return columns


def build_columns(fields: Sequence[str] = (), keep_phi: bool = False) -> list[Column]:
    """Default columns, identity columns with ``keep_phi``, then ``fields`` (duplicates dropped)."""
    columns = default_columns() + (phi_columns() if keep_phi else [])
    names = {c.name for c in columns}
    for col in field_columns(fields, keep_phi):
        if col.name not in names:
            columns.append(col)
            names.add(col.name)
    return columns


# --- reading ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class IndexSpec:
    """What a worker needs to rebuild the columns (columns hold closures, specs pickle)."""

    root: str
    fields: tuple[str, ...] = ()
    keep_phi: bool = False


def index_file(path: str, spec: IndexSpec) -> tuple[tuple[Any, ...] | None, str]:
    """One row (values in column order) for a file, or ``(None, reason)`` when it is skipped."""
    columns = _columns_for(spec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            size = os.path.getsize(path)
        except FileNotFoundError:
            if os.path.lexists(path):  # a broken link
                return None, "unreadable"
            rel = os.path.relpath(path, spec.root) if spec.root else path  # listed, then deleted: named
            return None, f"cannot read {rel}: deleted or moved during the run"
        except OSError:
            return None, "unreadable"
        read = read_until_pixels(path)
        if isinstance(read, Skip):
            return None, str(read)
        ds, pixel_tag = read
        if image_skip(ds, has_pixels=True) == Skip.DICOMDIR:  # a file without pixels is indexed too
            return None, str(Skip.DICOMDIR)
        rel = os.path.relpath(path, spec.root) if spec.root else os.path.basename(path)
        ctx = {"path": Path(rel).as_posix(), "file_size": size, "pixel_tag": pixel_tag}
        row = []
        for col in columns:
            try:
                value = col.get(ds, ctx)
            except Exception:  # noqa: BLE001 - a malformed value leaves an empty cell
                value = None
            row.append(_coerce(value, col.kind))
        return tuple(row), ""


def _crashed(path: str) -> tuple[None, str]:
    """The result of a file whose reader process died: skipped, and counted as such."""
    return None, "crashed the header reader"


_COLUMN_CACHE: dict[IndexSpec, list[Column]] = {}


def _columns_for(spec: IndexSpec) -> list[Column]:
    cols = _COLUMN_CACHE.get(spec)
    if cols is None:
        cols = _COLUMN_CACHE[spec] = build_columns(spec.fields, spec.keep_phi)
    return cols


def _coerce(value: Any, kind: str) -> Any:
    if value is None:
        return None
    if kind == "int":
        try:
            return int(value)
        except (TypeError, ValueError):
            return None
    if kind == "float":
        try:
            f = float(value)
        except (TypeError, ValueError):
            return None
        return f if math.isfinite(f) else None
    text = str(value)
    return text[:MAX_TEXT]


# --- writing ---------------------------------------------------------------------------------


def csv_cell(value: Any) -> Any:
    """A value as written into a CSV cell: text that a spreadsheet would run as a formula is escaped.

    Text starting with one of :data:`FORMULA_STARTS` gets a leading :data:`FORMULA_ESCAPE`
    (``=HYPERLINK(...)`` becomes ``'=HYPERLINK(...)``), unless it is a number or a list of
    numbers (``-12.5``, ``-0.5\\1``), which stays as it is. Floats keep their shortest exact
    form (``repr``); ``None`` is an empty cell.
    """
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not NUMERIC_TEXT.fullmatch(value):
        return FORMULA_ESCAPE + value
    return value


class CsvSink:
    """Rows to CSV as they come (UTF-8, a header line, empty cells for missing values).

    Text cells that a spreadsheet would evaluate as a formula are escaped (see :func:`csv_cell`).
    """

    def __init__(self, path: Path, columns: Sequence[Column]) -> None:
        self._fh = open(path, "w", newline="", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self._writer = csv.writer(self._fh)
        self._writer.writerow([c.name for c in columns])

    def write(self, row: Sequence[Any]) -> None:
        self._writer.writerow([csv_cell(v) for v in row])

    def close(self) -> None:
        self._fh.close()


class ParquetSink:
    """Rows to Parquet in record batches of :data:`PARQUET_BATCH_ROWS` (typed columns)."""

    def __init__(self, path: Path, columns: Sequence[Column]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        types = {"str": pa.string(), "int": pa.int64(), "float": pa.float64()}
        self._pa = pa
        self._schema = pa.schema([(c.name, types[c.kind]) for c in columns])
        self._writer = pq.ParquetWriter(str(path), self._schema, compression="zstd")
        self._rows: list[Sequence[Any]] = []

    def write(self, row: Sequence[Any]) -> None:
        self._rows.append(row)
        if len(self._rows) >= PARQUET_BATCH_ROWS:
            self._flush()

    def _flush(self) -> None:
        if not self._rows:
            return
        cols = list(zip(*self._rows, strict=True))
        arrays = [self._pa.array(list(col), type=f.type) for col, f in zip(cols, self._schema, strict=True)]
        self._writer.write_batch(self._pa.RecordBatch.from_arrays(arrays, schema=self._schema))
        self._rows = []

    def close(self) -> None:
        self._flush()
        self._writer.close()


def table_format(path: str | os.PathLike[str]) -> str:
    """``csv`` or ``parquet`` from the output's extension (UsageError for anything else)."""
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".parquet", ".pq"):
        try:
            import pyarrow.parquet  # noqa: F401
        except ImportError:
            raise UsageError("Parquet output needs pyarrow (pip install pyarrow); or write .csv") from None
        return "parquet"
    raise UsageError(f"{path}: the index is written as .csv or .parquet; choose one of those extensions")


@dataclass
class IndexSummary:
    """What an index run did."""

    path: Path
    rows: int = 0
    files: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    columns: list[str] = field(default_factory=list)


def iter_input_files(source: str | os.PathLike[str]) -> Iterator[str]:
    """Every regular file under ``source`` (or ``source`` itself), sorted, walked lazily."""
    src = os.fspath(source)
    if os.path.isfile(src):
        yield src
        return
    for root, dirs, files in os.walk(src):
        dirs.sort()
        for name in sorted(files):
            yield os.path.join(root, name)


def write_index(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    fields: Sequence[str] = (),
    keep_phi: bool = False,
    workers: int | None = None,
    force: bool = False,
    progress: Callable[[int], None] | None = None,
    files: Iterable[str] | None = None,
) -> IndexSummary:
    """Index every file under ``source`` into ``out`` (.csv or .parquet), headers only.

    Parameters
    ----------
    source
        A folder (searched recursively) or one file. ``path`` cells are relative to it.
    out
        The table; written atomically, kept unless ``force``.
    fields
        Extra columns by keyword or tag (see :func:`field_columns`).
    keep_phi
        Add identity columns and allow identity ``fields``.
    workers
        Processes reading headers (default all cores; 1 reads in this process).
    progress
        Called with 1 per file read.
    files
        The files to read (default: every file under ``source``).

    Raises
    ------
    NoDicomError
        When no file is DICOM: nothing is written (no header-only table).
    OutputExistsError
        When ``out`` exists and not ``force`` (checked before any header is read).
    """
    fmt = table_format(out)
    columns = build_columns(fields, keep_phi)  # validates fields before any work
    check_writable(out, force=force)  # an existing table is refused before any work
    src = Path(source)
    root = os.fspath(src) if src.is_dir() else os.fspath(src.parent)
    spec = IndexSpec(root=root, fields=tuple(fields), keep_phi=keep_phi)
    summary = IndexSummary(Path(out), columns=[c.name for c in columns])
    out_abs = os.path.abspath(out)
    todo = [f for f in (files if files is not None else iter_input_files(source)) if os.path.abspath(f) != out_abs]
    if len(todo) < PARALLEL_MIN_FILES:
        workers = 1
    rows = ordered_map(partial(index_file, spec=spec), todo, workers=workers, chunk=CHUNK_FILES, on_crash=_crashed)

    def count(result: tuple[tuple[Any, ...] | None, str]) -> tuple[Any, ...] | None:
        row, reason = result
        summary.files += 1
        if row is None:
            summary.skipped[reason] += 1
        else:
            summary.rows += 1
        if progress is not None:
            progress(1)
        return row

    try:
        first = next((row for row in map(count, rows) if row is not None), None)
        if first is None:  # nothing to tabulate: no table, not even a header line
            raise NoDicomError(f"{os.fspath(source)}: no DICOM files found{_skipped_note(summary)}; nothing written")
        with atomic_output(out, force=force) as tmp:
            sink = CsvSink(tmp, columns) if fmt == "csv" else ParquetSink(tmp, columns)
            try:
                sink.write(first)
                for row in map(count, rows):
                    if row is not None:
                        sink.write(row)
            finally:
                sink.close()
    finally:
        rows.close()
    return summary


def _skipped_note(summary: IndexSummary) -> str:
    """`` (skipped 3 files: 2 not DICOM, 1 empty)``, or nothing when no file was read."""
    if not summary.files:
        return ""
    reasons = ", ".join(f"{n} {r}" for r, n in summary.skipped.most_common())
    return f" (skipped {summary.files} file{'s' if summary.files != 1 else ''}: {reasons})"

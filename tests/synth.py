"""Synthetic DICOM series with geometry the tests know.

Every image is written with pydicom from numbers the test chooses: orientation, positions,
spacing, rescale. Pixel values sample a function of the *patient* position, so a test can check
any voxel of a loaded volume through its affine: ``vol.array[k, j, i] == f(vol.world([k, j, i]))``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    MRImageStorage,
    RLELossless,
    generate_uid,
)

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
"""Rows run left (+x), columns run posterior (+y): normal +z (superior)."""
CORONAL = (1.0, 0.0, 0.0, 0.0, 0.0, -1.0)
"""Rows run left, columns run inferior: normal -y... cross((1,0,0),(0,0,-1)) = (0,1,0): posterior."""
SAGITTAL = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)
"""Rows run posterior, columns run inferior: normal cross((0,1,0),(0,0,-1)) = (-1,0,0): right."""


def rotation(axis: Sequence[float], degrees: float) -> np.ndarray:
    """3x3 rotation matrix about ``axis`` (Rodrigues)."""
    a = np.asarray(axis, dtype=float)
    a /= np.linalg.norm(a)
    t = np.radians(degrees)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + np.sin(t) * k + (1 - np.cos(t)) * k @ k


def oblique_iop(base: Sequence[float] = AXIAL, axis=(1.0, 0.3, 0.2), degrees: float = 17.0) -> tuple[float, ...]:
    """An IOP rotated from ``base`` by ``degrees`` about ``axis``."""
    r = rotation(axis, degrees)
    row = r @ np.asarray(base[:3], float)
    col = r @ np.asarray(base[3:], float)
    return tuple(float(v) for v in np.concatenate([row, col]))


def linear_field(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """A smooth, asymmetric test function of LPS position (mm): exact under linear interpolation."""
    return 1000.0 + 2.0 * x + 3.0 * y + 5.0 * z


@dataclass
class SynthSeries:
    """What was written: paths, and the geometry the loader must recover."""

    folder: Path
    paths: list[Path]
    iop: tuple[float, ...]
    ipps: list[np.ndarray]
    pixel_spacing: tuple[float, float]
    rows: int
    cols: int
    series_uid: str
    values: list[np.ndarray] = field(default_factory=list)  # modality values per written image

    @property
    def row_dir(self) -> np.ndarray:
        return np.asarray(self.iop[:3])

    @property
    def col_dir(self) -> np.ndarray:
        return np.asarray(self.iop[3:])

    @property
    def normal(self) -> np.ndarray:
        n = np.cross(self.row_dir, self.col_dir)
        return n / np.linalg.norm(n)

    def pixel_world(self, ipp: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """LPS x, y, z of every pixel of an image at ``ipp``, each (rows, cols)."""
        r, c = np.meshgrid(np.arange(self.rows), np.arange(self.cols), indexing="ij")
        dr, dc = self.pixel_spacing
        p = (
            np.asarray(ipp)[None, None, :]
            + (c * dc)[..., None] * self.row_dir
            + (r * dr)[..., None] * self.col_dir
        )
        return p[..., 0], p[..., 1], p[..., 2]


def base_dataset(
    *,
    modality: str = "MR",
    series_uid: str,
    study_uid: str,
    frame_uid: str,
    series_number: int = 7,
    description: str = "synthetic",
    rows: int,
    cols: int,
    transfer_syntax: str = ExplicitVRLittleEndian,
) -> Dataset:
    """A minimal valid image dataset (no pixels yet) with file meta."""
    meta = FileMetaDataset()
    sop_class = CTImageStorage if modality == "CT" else MRImageStorage
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = transfer_syntax
    meta.ImplementationClassUID = generate_uid()
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.FrameOfReferenceUID = frame_uid
    ds.Modality = modality
    ds.SeriesNumber = series_number
    ds.SeriesDescription = description
    ds.PatientName = "Doe^Jane"
    ds.PatientID = "PID-0042"
    ds.PatientBirthDate = "19700101"
    ds.StudyDate = "20240101"
    ds.Manufacturer = "SynthCo"
    ds.Rows = rows
    ds.Columns = cols
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    return ds


def _store(ds: Dataset, stored: np.ndarray, transfer_syntax: str) -> None:
    stored = np.ascontiguousarray(stored)
    ds.PixelRepresentation = 1 if stored.dtype.kind == "i" else 0
    ds.BitsAllocated = stored.dtype.itemsize * 8
    ds.BitsStored = ds.BitsAllocated
    ds.HighBit = ds.BitsAllocated - 1
    if transfer_syntax == RLELossless:
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.PixelData = stored.tobytes()
        ds.compress(RLELossless, encoding_plugin="pydicom")
        return
    if transfer_syntax == ExplicitVRBigEndian:
        ds.PixelData = stored.astype(stored.dtype.newbyteorder(">")).tobytes()
    else:
        ds.PixelData = stored.tobytes()


def write_series(
    folder: str | os.PathLike[str],
    *,
    shape: tuple[int, int, int] = (6, 12, 10),
    iop: Sequence[float] = AXIAL,
    origin: Sequence[float] = (-30.0, -40.0, 20.0),
    pixel_spacing: tuple[float, float] = (1.5, 1.25),
    slice_spacing: float = 3.0,
    positions: Sequence[Sequence[float]] | None = None,
    field_fn: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray] = linear_field,
    slopes: Sequence[float] | float = 1.0,
    intercepts: Sequence[float] | float = 0.0,
    stored_dtype: Any = np.uint16,
    modality: str = "MR",
    photometric: str = "MONOCHROME2",
    series_number: int = 7,
    description: str = "synthetic",
    series_uid: str | None = None,
    study_uid: str | None = None,
    transfer_syntax: str = ExplicitVRLittleEndian,
    names: str = "shuffled",
    instance_numbers: str = "reverse",
    extra: dict[str, Any] | Callable[[int], dict[str, Any]] | None = None,
    seed: int = 0,
) -> SynthSeries:
    """Write one series of single-frame images and return what the loader must recover.

    Parameters
    ----------
    shape
        ``(slices, rows, cols)``.
    positions
        Explicit IPP per slice (overrides ``origin``/``slice_spacing``; use it for tilt and gaps).
    field_fn
        Modality value at LPS (x, y, z); stored values are ``round((f - intercept) / slope)``.
    slopes, intercepts
        One value or one per slice (varying rescale).
    names
        ``"shuffled"`` (random file names, no extension), ``"ordered"`` (``IM0001.dcm``...).
    instance_numbers
        ``"reverse"`` (disagree with position), ``"ordered"``, or ``"none"`` (omitted).
    extra
        Tags added to every dataset (or a function of the slice index returning them).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    n, rows, cols = shape
    rng = np.random.default_rng(seed)
    row_dir = np.asarray(iop[:3], float)
    col_dir = np.asarray(iop[3:], float)
    normal = np.cross(row_dir, col_dir)
    if positions is None:
        positions = [np.asarray(origin, float) + k * slice_spacing * normal for k in range(n)]
    ipps = [np.asarray(p, float) for p in positions]
    n = len(ipps)
    slopes_l = list(slopes) if isinstance(slopes, (list, tuple, np.ndarray)) else [float(slopes)] * n
    inters_l = list(intercepts) if isinstance(intercepts, (list, tuple, np.ndarray)) else [float(intercepts)] * n
    series_uid = series_uid or generate_uid()
    study_uid = study_uid or generate_uid()
    frame_uid = generate_uid()
    info = SynthSeries(folder, [], tuple(float(v) for v in iop), ipps, pixel_spacing, rows, cols, series_uid)
    file_names = (
        [f"{rng.integers(1e9):09d}" for _ in range(n)] if names == "shuffled"
        else [f"IM{k + 1:04d}.dcm" for k in range(n)]
    )
    for k in range(n):
        ds = base_dataset(
            modality=modality, series_uid=series_uid, study_uid=study_uid, frame_uid=frame_uid,
            series_number=series_number, description=description, rows=rows, cols=cols,
            transfer_syntax=transfer_syntax,
        )
        ds.PhotometricInterpretation = photometric
        ds.ImageOrientationPatient = [f"{v:.10f}" for v in iop]
        ds.ImagePositionPatient = [f"{v:.10f}" for v in ipps[k]]
        ds.PixelSpacing = [f"{v:.10f}" for v in pixel_spacing]
        ds.SliceThickness = slice_spacing
        if instance_numbers == "reverse":
            ds.InstanceNumber = n - k
        elif instance_numbers == "ordered":
            ds.InstanceNumber = k + 1
        ds.RescaleSlope = f"{slopes_l[k]:.10g}"
        ds.RescaleIntercept = f"{inters_l[k]:.10g}"
        x, y, z = info.pixel_world(ipps[k])
        value = field_fn(x, y, z)
        stored = np.rint((value - inters_l[k]) / slopes_l[k])
        info_dtype = np.dtype(stored_dtype)
        lim = np.iinfo(info_dtype)
        if stored.min() < lim.min or stored.max() > lim.max:
            raise ValueError(f"field does not fit {info_dtype}: {stored.min()}..{stored.max()}")
        stored = stored.astype(info_dtype)
        info.values.append(stored.astype(np.float64) * slopes_l[k] + inters_l[k])
        if extra:
            for key, val in (extra(k) if callable(extra) else extra).items():
                setattr(ds, key, val)
        _store(ds, stored, transfer_syntax)
        if transfer_syntax == ImplicitVRLittleEndian:
            ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
        path = folder / file_names[k]
        ds.save_as(path, enforce_file_format=True)
        info.paths.append(path)
    return info


def write_enhanced(
    path: str | os.PathLike[str],
    *,
    shape: tuple[int, int, int] = (5, 8, 9),
    iop: Sequence[float] = AXIAL,
    origin: Sequence[float] = (-10.0, -20.0, 5.0),
    pixel_spacing: tuple[float, float] = (1.0, 2.0),
    slice_spacing: float = 2.5,
    field_fn: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray] = linear_field,
    frame_order: Sequence[int] | None = None,
    per_frame_orientation: bool = False,
    slope: float = 1.0,
    intercept: float = 0.0,
) -> SynthSeries:
    """One enhanced MR multi-frame file: per-frame PlanePositionSequence, shared pixel measures.

    ``frame_order`` lists which slice each stored frame holds (default: descending, so frame
    order disagrees with position).
    """
    n, rows, cols = shape
    row_dir = np.asarray(iop[:3], float)
    col_dir = np.asarray(iop[3:], float)
    normal = np.cross(row_dir, col_dir)
    ipps = [np.asarray(origin, float) + k * slice_spacing * normal for k in range(n)]
    order = list(frame_order) if frame_order is not None else list(range(n))[::-1]
    uid = generate_uid()
    info = SynthSeries(Path(path).parent, [Path(path)], tuple(float(v) for v in iop), ipps,
                       pixel_spacing, rows, cols, uid)
    ds = base_dataset(series_uid=uid, study_uid=generate_uid(), frame_uid=generate_uid(), rows=rows, cols=cols)
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.4.1"  # Enhanced MR Image Storage
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.NumberOfFrames = len(order)
    shared = Dataset()
    pm = Dataset()
    pm.PixelSpacing = list(pixel_spacing)
    pm.SliceThickness = slice_spacing
    shared.PixelMeasuresSequence = [pm]
    pvt = Dataset()
    pvt.RescaleSlope = slope
    pvt.RescaleIntercept = intercept
    pvt.RescaleType = "US"
    shared.PixelValueTransformationSequence = [pvt]
    if not per_frame_orientation:
        po = Dataset()
        po.ImageOrientationPatient = list(iop)
        shared.PlaneOrientationSequence = [po]
    ds.SharedFunctionalGroupsSequence = [shared]
    per = []
    frames = []
    for k in order:
        fg = Dataset()
        pp = Dataset()
        pp.ImagePositionPatient = [float(v) for v in ipps[k]]
        fg.PlanePositionSequence = [pp]
        if per_frame_orientation:
            po = Dataset()
            po.ImageOrientationPatient = list(iop)
            fg.PlaneOrientationSequence = [po]
        fc = Dataset()
        fc.InStackPositionNumber = k + 1
        fg.FrameContentSequence = [fc]
        per.append(fg)
        x, y, z = info.pixel_world(ipps[k])
        frames.append(np.rint((field_fn(x, y, z) - intercept) / slope).astype(np.uint16))
    ds.PerFrameFunctionalGroupsSequence = per
    ds.PixelData = np.stack(frames).tobytes()
    info.values = [None] * n  # type: ignore[list-item]
    for k in range(n):
        x, y, z = info.pixel_world(ipps[k])
        info.values[k] = np.rint((field_fn(x, y, z) - intercept) / slope) * slope + intercept
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return info


def check_volume_against_field(vol: Any, field_fn=linear_field, *, atol: float = 0.51) -> None:
    """Assert every voxel of a 3D ``vol`` equals ``field_fn`` at its patient position (via the affine)."""
    s, r, c = vol.shape
    k, j, i = np.meshgrid(np.arange(s), np.arange(r), np.arange(c), indexing="ij")
    world = vol.world(np.stack([k, j, i], axis=-1))
    expected = field_fn(world[..., 0], world[..., 1], world[..., 2])
    np.testing.assert_allclose(np.asarray(vol.array, dtype=float), expected, atol=atol)


def phantom_field(marker_lps: Sequence[float], radius: float = 8.0, body: float = 100.0, peak: float = 1000.0):
    """A field: ``body`` everywhere, ``peak`` inside a ball of ``radius`` mm around ``marker_lps``."""
    m = np.asarray(marker_lps, float)

    def fn(x, y, z):
        d2 = (x - m[0]) ** 2 + (y - m[1]) ** 2 + (z - m[2]) ** 2
        return np.where(d2 <= radius**2, peak, body)

    return fn


def synthetic_volume(
    shape=(20, 24, 28),
    iop: Sequence[float] = AXIAL,
    origin: Sequence[float] = (-40.0, -50.0, -30.0),
    spacing=(3.0, 1.5, 1.25),
    field_fn=linear_field,
    dtype=np.float32,
    meta: dict[str, Any] | None = None,
):
    """A :class:`volume.Volume` sampling ``field_fn`` without writing files (for pure-function tests).

    ``spacing`` is (slice, row, column) mm; the slice axis runs along ``cross(row_dir, col_dir)``.
    """
    from volume import Volume

    row = np.asarray(iop[:3], float)
    col = np.asarray(iop[3:], float)
    normal = np.cross(row, col)
    affine = np.eye(4)
    affine[:3, 0] = normal * spacing[0]
    affine[:3, 1] = col * spacing[1]
    affine[:3, 2] = row * spacing[2]
    affine[:3, 3] = origin
    k, j, i = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    world = np.stack([k, j, i], axis=-1) @ affine[:3, :3].T + affine[:3, 3]
    arr = field_fn(world[..., 0], world[..., 1], world[..., 2]).astype(dtype)
    return Volume(arr, affine, meta or {"modality": "MR", "series_description": "synthetic"})


def write_mosaic(
    folder: str | os.PathLike[str],
    *,
    shape: tuple[int, int, int] = (5, 6, 7),
    iop: Sequence[float] = AXIAL,
    origin: Sequence[float] = (-20.0, -30.0, 10.0),
    pixel_spacing: tuple[float, float] = (2.0, 1.5),
    slice_spacing: float = 3.0,
    n_volumes: int = 1,
    field_fn: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray] = linear_field,
) -> SynthSeries:
    """Siemens-style mosaics: each file tiles ``shape[0]`` slices, ``ceil(sqrt(n))`` per row.

    No CSA header: the slice count is in the private element (0019,100A) NumberOfImagesInMosaic
    (creator "SIEMENS MR HEADER"), the normal is ``cross(row, col)``. ImagePositionPatient is
    that of the whole mosaic, as Siemens writes it. Volume ``t`` (AcquisitionNumber ``t + 1``)
    holds ``field_fn + 100 * t``. Returned ``ipps`` are the true slice positions.
    """
    import math

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    n, rows, cols = shape
    per_row = math.ceil(math.sqrt(n))
    row_dir, col_dir = np.asarray(iop[:3], float), np.asarray(iop[3:], float)
    normal = np.cross(row_dir, col_dir)
    ipps = [np.asarray(origin, float) + k * slice_spacing * normal for k in range(n)]
    dr, dc = pixel_spacing
    mosaic_ipp = (ipps[0] - col_dir * dr * (per_row * rows - rows) / 2
                  - row_dir * dc * (per_row * cols - cols) / 2)
    uid = generate_uid()
    info = SynthSeries(folder, [], tuple(float(v) for v in iop), ipps, pixel_spacing, rows, cols, uid)
    study, frame = generate_uid(), generate_uid()
    for t in range(n_volumes):
        ds = base_dataset(series_uid=uid, study_uid=study, frame_uid=frame, rows=per_row * rows,
                          cols=per_row * cols, transfer_syntax=ImplicitVRLittleEndian)
        ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "ND", "MOSAIC"]
        ds.ImageOrientationPatient = [f"{v:.10f}" for v in iop]
        ds.ImagePositionPatient = [f"{v:.10f}" for v in mosaic_ipp]
        ds.PixelSpacing = [f"{v:.10f}" for v in pixel_spacing]
        ds.SliceThickness = slice_spacing * 0.8
        ds.SpacingBetweenSlices = slice_spacing
        ds.AcquisitionNumber = t + 1
        ds.InstanceNumber = t + 1
        block = ds.private_block(0x0019, "SIEMENS MR HEADER", create=True)
        block.add_new(0x0A, "US", n)
        mosaic = np.zeros((per_row * rows, per_row * cols), dtype=np.uint16)
        for k in range(n):
            x, y, z = info.pixel_world(ipps[k])
            i, j = divmod(k, per_row)
            mosaic[i * rows : (i + 1) * rows, j * cols : (j + 1) * cols] = np.rint(field_fn(x, y, z) + 100 * t)
        ds.PixelData = mosaic.tobytes()
        path = folder / f"mosaic_{t:03d}"
        ds.save_as(path, enforce_file_format=True)
        info.paths.append(path)
    return info


def write_enhanced_4d(
    path: str | os.PathLike[str],
    *,
    shape: tuple[int, int, int, int] = (3, 4, 6, 5),
    iop: Sequence[float] = AXIAL,
    origin: Sequence[float] = (-10.0, -20.0, 5.0),
    pixel_spacing: tuple[float, float] = (1.0, 2.0),
    slice_spacing: float = 2.5,
    field_fn: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray] = linear_field,
    seed: int = 0,
) -> SynthSeries:
    """One enhanced MR file of ``T`` frames x ``S`` slices, stored in a shuffled frame order.

    Per-frame PlanePositionSequence and FrameContentSequence (TemporalPositionIndex ``t + 1``,
    InStackPositionNumber); shared orientation and pixel measures. Frame ``t`` holds
    ``field_fn + 100 * t``; ``shape`` is ``(T, S, R, C)``.
    """
    n_t, n, rows, cols = shape
    row_dir, col_dir = np.asarray(iop[:3], float), np.asarray(iop[3:], float)
    normal = np.cross(row_dir, col_dir)
    ipps = [np.asarray(origin, float) + k * slice_spacing * normal for k in range(n)]
    uid = generate_uid()
    info = SynthSeries(Path(path).parent, [Path(path)], tuple(float(v) for v in iop), ipps,
                       pixel_spacing, rows, cols, uid)
    ds = base_dataset(series_uid=uid, study_uid=generate_uid(), frame_uid=generate_uid(), rows=rows, cols=cols)
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.4.1"  # Enhanced MR Image Storage
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    order = [(t, k) for t in range(n_t) for k in range(n)]
    np.random.default_rng(seed).shuffle(order)
    ds.NumberOfFrames = len(order)
    shared = Dataset()
    pm = Dataset()
    pm.PixelSpacing = list(pixel_spacing)
    pm.SliceThickness = slice_spacing
    shared.PixelMeasuresSequence = [pm]
    po = Dataset()
    po.ImageOrientationPatient = list(iop)
    shared.PlaneOrientationSequence = [po]
    ds.SharedFunctionalGroupsSequence = [shared]
    per, frames = [], []
    for t, k in order:
        fg = Dataset()
        pp = Dataset()
        pp.ImagePositionPatient = [float(v) for v in ipps[k]]
        fg.PlanePositionSequence = [pp]
        fc = Dataset()
        fc.TemporalPositionIndex = t + 1
        fc.InStackPositionNumber = k + 1
        fc.StackID = "1"
        fg.FrameContentSequence = [fc]
        per.append(fg)
        x, y, z = info.pixel_world(ipps[k])
        frames.append(np.rint(field_fn(x, y, z) + 100 * t).astype(np.uint16))
    ds.PerFrameFunctionalGroupsSequence = per
    ds.PixelData = np.stack(frames).tobytes()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return info


__all__ = [
    "AXIAL",
    "CORONAL",
    "SAGITTAL",
    "SynthSeries",
    "check_volume_against_field",
    "linear_field",
    "oblique_iop",
    "phantom_field",
    "pydicom",
    "rotation",
    "synthetic_volume",
    "write_enhanced",
    "write_enhanced_4d",
    "write_mosaic",
    "write_series",
]


def siemens_csa(tags: dict[str, Sequence[str]]) -> bytes:
    """A Siemens CSA header ("SV10" format) holding ``{name: [item text, ...]}``, as (0029,1010) and
    (0029,1020) carry them."""
    import struct

    out = bytearray(b"SV10\x04\x03\x02\x01")
    out += struct.pack("<II", len(tags), 77)
    for name, items in tags.items():
        out += struct.pack("<64si4siii", name.encode(), len(items), b"UN\0\0", 0, len(items), 77)
        for item in items:
            raw = str(item).encode() + b"\0"
            out += struct.pack("<iiii", len(raw), len(raw), 77, len(raw))
            out += raw + b"\0" * (-len(raw) % 4)
    return bytes(out) + (b"\0" if len(out) % 2 else b"")


def siemens_protocol(lines: dict[str, str]) -> bytes:
    """A CSA series header (0029,1020) whose MrPhoenixProtocol is ``key = value`` lines (ASCCONV)."""
    text = "### ASCCONV BEGIN ###\n" + "".join(f"{k} = {v}\n" for k, v in lines.items()) + "### ASCCONV END ###\n"
    return siemens_csa({"MrPhoenixProtocol": [text]})


def add_nested_undefined_length_sequences(ds: Dataset) -> None:
    """Give ``ds`` a ReferencedImageSequence of undefined length, two undefined-length items each
    holding an undefined-length PurposeOfReferenceCodeSequence: the nesting a header reader must
    walk through (and skip) correctly."""
    inner = Dataset()
    inner.CodeValue = "X"
    inner.CodeMeaning = "nested"
    item = Dataset()
    item.ReferencedSOPClassUID = "1.2.3"
    item.ReferencedSOPInstanceUID = "1.2.3.4"
    item.PurposeOfReferenceCodeSequence = [inner]
    item.PurposeOfReferenceCodeSequence.is_undefined_length = True
    item.is_undefined_length_sequence_item = True
    ds.ReferencedImageSequence = [item, item]
    ds["ReferencedImageSequence"].is_undefined_length = True

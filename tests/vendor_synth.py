"""Synthetic files in the vendors' own layouts: UIH grids and private elements, Siemens CSA
headers, Canon's ImageComments. Every value is chosen by the test, so what volume makes of the
files (positions, voxel values, b-values, directions, slice times) is known exactly.

Volume ``t`` of every 4D series holds ``linear_field + 100 * t`` (see :mod:`synth`).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from synth import AXIAL, SynthSeries, base_dataset, linear_field, write_series

UIH_CREATOR = "Image Private Header"


def field_of(t: int) -> Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
    """The values volume ``t`` holds: a linear field of the patient position plus ``100 * t``."""
    return lambda x, y, z: linear_field(x, y, z) + 100 * t


def write_4d(folder: Path, n_volumes: int, tags_of: Callable[[int, int], dict[str, Any]], *,
             shape: tuple[int, int, int] = (4, 6, 5), iop: Sequence[float] = AXIAL,
             private_of: Callable[[Dataset, int, int], None] | None = None, **kw: Any) -> list[SynthSeries]:
    """``n_volumes`` volumes of single-slice files at the same positions; ``tags_of(t, k)`` gives the
    tags of volume ``t``, slice ``k`` (slices ascending along ``cross(row, col)``), and
    ``private_of(ds, t, k)`` adds private elements to its dataset."""
    uid = kw.pop("series_uid", generate_uid())
    out = []
    for t in range(n_volumes):
        out.append(write_series(folder / f"v{t:02d}", shape=shape, iop=iop, series_uid=uid, seed=1000 + t,
                                instance_numbers="none", field_fn=field_of(t),
                                extra=lambda k, t=t: {"InstanceNumber": t * shape[0] + k + 1, **tags_of(t, k)}, **kw))
    if private_of is not None:
        for t, series in enumerate(out):
            for k, path in enumerate(series.paths):
                ds = pydicom.dcmread(path)
                private_of(ds, t, k)
                ds.save_as(path)
    return out


def csa_header(tags: Sequence[tuple[str, str, Sequence[Any]]]) -> bytes:
    """A Siemens CSA header ("SV10") holding ``(name, VR, values)`` tags."""
    out = bytearray(b"SV10\x04\x03\x02\x01") + struct.pack("<II", len(tags), 77)
    for name, vr, values in tags:
        out += struct.pack("<64si4s3i", name.encode(), len(values), vr.encode(), 0, len(values), 77)
        for v in values:
            text = (f"{v:.8f}" if isinstance(v, float) else str(v)).encode() + b"\0"
            out += struct.pack("<4i", len(text), len(text), 77, len(text)) + text + b"\0" * (-len(text) % 4)
    return bytes(out)


def ascconv_header(lines: dict[str, Any]) -> bytes:
    """A CSA series header whose MrPhoenixProtocol holds ``lines`` as an ASCCONV protocol."""
    body = "### ASCCONV BEGIN ###\n" + "".join(f"{k} = {v}\n" for k, v in lines.items()) + "### ASCCONV END ###\n"
    return csa_header([("MrPhoenixProtocol", "UN", [body])])


def siemens_csa(ds: Dataset, *, image: bytes | None = None, series: bytes | None = None) -> None:
    """Put CSA image (0029,1010) and series (0029,1020) headers in ``ds``."""
    block = ds.private_block(0x0029, "SIEMENS CSA HEADER", create=True)
    if image is not None:
        block.add_new(0x10, "OB", image)
    if series is not None:
        block.add_new(0x20, "OB", series)


def siemens_xa_time_after_start(ds: Dataset, seconds: float) -> None:
    """TimeAfterStart (0021,1104) where Siemens XA writes it: block 11, after ``SIEMENS MR SDS 01``."""
    ds.private_block(0x0021, "SIEMENS MR SDS 01", create=True)
    ds.private_block(0x0021, "SIEMENS MR SDI 02", create=True).add_new(0x04, "DS", f"{seconds:.4f}")


def uih_diffusion(ds: Dataset, b: float | None, gradient: Sequence[float] | None) -> None:
    """UIH's b-value (0065,1009) and image-frame gradient (0065,1037)."""
    block = ds.private_block(0x0065, UIH_CREATOR, create=True)
    if b is not None:
        block.add_new(0x09, "FD", float(b))
    if gradient is not None:
        block.add_new(0x37, "FD", [float(v) for v in gradient])


def time_of_day(seconds: float) -> str:
    """A DICOM TM for ``seconds`` since midnight (wrapping past the day's end)."""
    s = seconds % 86400
    return f"{int(s // 3600):02d}{int(s % 3600 // 60):02d}{s % 60:09.6f}"


def write_uih_grid(folder: Path, volumes: Sequence[tuple[float | None, Sequence[float] | None]], *,
                   n: int = 5, tile: tuple[int, int] = (6, 5), iop: Sequence[float] = AXIAL,
                   origin: Sequence[float] = (-20.0, -30.0, 10.0), spacing: float = 3.0,
                   pixel_spacing: tuple[float, float] = (2.0, 1.5), tile_order: Sequence[int] | None = None,
                   vframe: bool = True, top_ipp: bool = False, slice_times: Sequence[float] | None = None,
                   start: float = 36000.0, image_type: str = "VFRAME", n_element: bool = True) -> SynthSeries:
    """UIH grids, one file per volume (``volumes``: ``(b, gradient)`` each, None to leave out).

    ``n`` slices tile a ``ceil(n / per_row)`` x ``per_row`` grid (``per_row = ceil(sqrt(n))``), tile
    ``k`` holding slice ``tile_order[k]``; MRVFrameSequence (0065,1051) gives each tile's position and
    AcquisitionTime (``start + 10 t + slice_times[slice]`` seconds of the day); ``top_ipp`` writes the
    first tile's position at the top level. Returned ``ipps`` are the slices' true positions.
    """
    folder.mkdir(parents=True, exist_ok=True)
    per_row = math.ceil(math.sqrt(n))
    grid_rows = math.ceil(n / per_row)
    rows, cols = tile
    order = list(tile_order) if tile_order is not None else list(range(n))
    times = list(slice_times) if slice_times is not None else [0.1 * k for k in range(n)]
    row, col = np.asarray(iop[:3], float), np.asarray(iop[3:], float)
    ipps = [np.asarray(origin, float) + k * spacing * np.cross(row, col) for k in range(n)]
    uid, study, frame = generate_uid(), generate_uid(), generate_uid()
    info = SynthSeries(folder, [], tuple(float(v) for v in iop), ipps, pixel_spacing, rows, cols, uid)
    for t, (b, g) in enumerate(volumes):
        ds = base_dataset(series_uid=uid, study_uid=study, frame_uid=frame, rows=grid_rows * rows, cols=per_row * cols)
        ds.Manufacturer = "UIH"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "M", image_type, "MAGNITUDE"]
        ds.ImageOrientationPatient = [f"{v:.10f}" for v in iop]
        ds.PixelSpacing = [f"{v:.10f}" for v in pixel_spacing]
        ds.SliceThickness = spacing * 0.8
        ds.SpacingBetweenSlices = spacing
        ds.InstanceNumber = t + 1
        ds.AcquisitionNumber = t + 1
        ds.PatientPosition = "HFS"
        ds.RepetitionTime = 2000
        ds.MRAcquisitionType = "2D"
        if top_ipp:
            ds.ImagePositionPatient = [f"{v:.6f}" for v in ipps[order[0]]]
        uih_diffusion(ds, b, g)
        block = ds.private_block(0x0065, UIH_CREATOR)
        if n_element:
            block.add_new(0x50, "DS", str(n))
        if vframe:
            items = []
            for k in range(n):
                item = Dataset()
                item.ImagePositionPatient = [f"{v:.6f}" for v in ipps[order[k]]]
                item.AcquisitionTime = time_of_day(start + 10 * t + times[order[k]])
                items.append(item)
            block.add_new(0x51, "SQ", items)
        image = np.zeros((grid_rows * rows, per_row * cols), np.uint16)
        for k in range(n):
            x, y, z = info.pixel_world(ipps[order[k]])
            i, j = divmod(k, per_row)
            image[i * rows:(i + 1) * rows, j * cols:(j + 1) * cols] = np.rint(field_of(t)(x, y, z))
        ds.PixelData = image.tobytes()
        path = folder / f"grid{t:03d}"
        ds.save_as(path, enforce_file_format=True)
        info.paths.append(path)
    return info


__all__ = [
    "UIH_CREATOR", "ascconv_header", "csa_header", "field_of", "siemens_csa", "siemens_xa_time_after_start",
    "time_of_day", "uih_diffusion", "write_4d", "write_uih_grid",
]

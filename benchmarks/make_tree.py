"""Write a synthetic archive: many series of small DICOM slices in patient/study/series folders.

Usage::

    python benchmarks/make_tree.py OUT --series 200 --slices 100 --size 64 [--ct-every 4] [--seed 0]

Each series is built once with pydicom (a scanner-like header of about 2 KB, from
``make_ct._template``; MR series get MR fields, unsigned pixels and no rescale) and its slices are
written by patching that file's bytes: SOP instance UID, InstanceNumber, ImagePositionPatient,
SliceLocation and the pixel data have fixed-width values, so 20,000 files take seconds, not
minutes. Every ``--ct-every``-th series is a CT (signed HU + 1024 with intercept -1024), the others
MR. File names are random digits without extension and InstanceNumber runs against the slice
position, as in ``make_ct.py``. Pixels cycle through a pool of 32 phantom-like slices with noise
(what a compressor sees in real data, not zeros).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from make_ct import PIXEL_SPACING_MM, _template, phantom_slice  # noqa: E402

#: Distinct pixel slices per modality; slices of a series cycle through them.
POOL_SLICES = 32

#: Placeholders patched per slice (fixed width, so every offset stays put).
_Z_MARK = b"+99999.999"
_INSTANCE_MARK = b"987654"
_UID_TAIL = "1999999"


def _pool(kind: str, size: int, rng: np.random.Generator) -> list[bytes]:
    if kind == "CT":
        return [phantom_slice(size, k / POOL_SLICES, rng).tobytes() for k in range(POOL_SLICES)]
    y, x = np.ogrid[-1 : 1 : size * 1j, -1 : 1 : size * 1j]
    out = []
    for k in range(POOL_SLICES):
        r = 0.7 + 0.1 * np.sin(k / 5)
        head = (x / r) ** 2 + (y / (r * 1.2)) ** 2 <= 1
        brain = (x / (r * 0.85)) ** 2 + (y / (r * 1.05)) ** 2 <= 1
        img = np.where(brain, 600.0, np.where(head, 250.0, 0.0))
        img += rng.normal(0, 20, size=img.shape) * head + np.abs(rng.normal(0, 4, size=img.shape))
        out.append(np.clip(np.rint(img), 0, 4095).astype(np.uint16).tobytes())
    return out


def _series_bytes(index: int, kind: str, size: int, spacing: float, seed: int) -> bytes:
    """One file of series ``index`` with placeholders where per-slice values go."""
    from pydicom.filebase import DicomBytesIO

    ds = _template(size, spacing)
    root = f"1.2.826.0.1.3680043.9.7777.{seed}.{index}"
    ds.StudyInstanceUID = f"{root}.1"
    ds.SeriesInstanceUID = f"{root}.2"
    ds.FrameOfReferenceUID = f"{root}.3"
    ds.PatientID = f"BENCH{index // 4:04d}"
    ds.SeriesNumber = index + 1
    ds.Modality = kind
    ds.SeriesDescription = f"{'Body CT' if kind == 'CT' else 'T1 SE'} {index}"
    if kind == "MR":
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
        for kw in ("KVP", "XRayTubeCurrent", "Exposure", "ExposureTime", "FilterType", "GeneratorPower",
                   "FocalSpots", "ConvolutionKernel", "DataCollectionDiameter", "DistanceSourceToDetector",
                   "DistanceSourceToPatient", "GantryDetectorTilt", "TableHeight", "RotationDirection",
                   "RescaleIntercept", "RescaleSlope", "RescaleType"):
            delattr(ds, kw)
        ds.PatientPosition = "HFS"
        ds.ScanningSequence = "SE"
        ds.SequenceVariant = "NONE"
        ds.MRAcquisitionType = "2D"
        ds.EchoTime = "12"
        ds.RepetitionTime = "500"
        ds.MagneticFieldStrength = "1.5"
        ds.FlipAngle = "90"
        ds.ImagingFrequency = "63.87"
        ds.PixelRepresentation = 0
        ds.BitsStored = 12
        ds.HighBit = 11
        ds.WindowCenter = "300"
        ds.WindowWidth = "800"
    uid = f"{root}.{_UID_TAIL}"
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = uid
    ds.InstanceNumber = _INSTANCE_MARK.decode()
    half = (size - 1) / 2 * PIXEL_SPACING_MM
    ds.ImagePositionPatient = [f"{-half:.4f}", f"{-half:.4f}", _Z_MARK.decode()]
    ds.SliceLocation = _Z_MARK.decode()
    ds.PixelData = b"\0" * (size * size * 2)
    buf = DicomBytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def _offsets(data: bytes, mark: bytes) -> list[int]:
    """Every offset of ``mark`` in ``data``."""
    found, j = [], data.find(mark)
    while j >= 0:
        found.append(j)
        j = data.find(mark, j + 1)
    return found


def make_tree(out: str | os.PathLike[str], n_series: int = 200, n_slices: int = 100, size: int = 64,
              ct_every: int = 4, spacing: float = 2.0, seed: int = 0) -> list[Path]:
    """Write the archive into ``out``; returns the series folders.

    Series ``i`` lies in ``out/P<i // 4>/S1/<i:03d>/``; slice ``k`` at z = ``k * spacing`` mm.
    """
    out = Path(out)
    rng = np.random.default_rng(seed)
    pools = {kind: _pool(kind, size, rng) for kind in ("CT", "MR")}
    n_pixel = size * size * 2
    folders = []
    for i in range(n_series):
        kind = "CT" if ct_every and i % ct_every == 0 else "MR"
        template = _series_bytes(i, kind, size, spacing, seed)
        tail = f"{_UID_TAIL}".encode()
        assert template.count(_Z_MARK) == 2 and template.count(_INSTANCE_MARK) == 1
        assert template.count(tail) == 2 and template[-n_pixel:] == b"\0" * n_pixel
        z_at = _offsets(template, _Z_MARK)
        uid_at = _offsets(template, tail)
        inst_at = template.find(_INSTANCE_MARK)
        folder = out / f"P{i // 4:03d}" / "S1" / f"{i:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        names = rng.permutation(10**7 + np.arange(n_slices) * 7919 % 10**7)
        buf = bytearray(template)
        for k in range(n_slices):
            z = f"{k * spacing:+010.3f}".encode()
            for j in z_at:
                buf[j : j + len(_Z_MARK)] = z
            for j in uid_at:
                buf[j : j + len(tail)] = f"1{k:06d}".encode()
            buf[inst_at : inst_at + len(_INSTANCE_MARK)] = f"{n_slices - k:06d}".encode()
            buf[-n_pixel:] = pools[kind][k % POOL_SLICES]
            (folder / f"{int(names[k]):08d}").write_bytes(buf)
        folders.append(folder)
    return folders


def cached_tree(n_series: int, n_slices: int, size: int, ct_every: int = 4, seed: int = 0) -> Path:
    """The archive in the temp folder's cache (written once; a ``.complete`` marker says it is whole)."""
    import tempfile

    root = Path(os.environ.get("VOLUME_BENCH_CACHE", tempfile.gettempdir()))
    path = root / f"volume-bench-tree-{n_series}x{n_slices}x{size}-ct{ct_every}-s{seed}"
    if not (path / ".complete").exists():
        import shutil

        shutil.rmtree(path, ignore_errors=True)
        t0 = time.perf_counter()
        make_tree(path, n_series, n_slices, size, ct_every, seed=seed)
        (path / ".complete").write_text("")
        print(f"wrote {n_series * n_slices} files to {path} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="folder to write (created)")
    parser.add_argument("--series", type=int, default=200)
    parser.add_argument("--slices", type=int, default=100)
    parser.add_argument("--size", type=int, default=64, help="rows = columns")
    parser.add_argument("--ct-every", type=int, default=4, help="every N-th series is CT, the others MR (0: all MR)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    make_tree(args.out, args.series, args.slices, args.size, args.ct_every, seed=args.seed)
    print(f"wrote {args.series * args.slices} files to {args.out} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Write a synthetic CT series: 512x512 int16 slices, Explicit VR Little Endian, shuffled names.

Usage::

    python benchmarks/make_ct.py OUT --slices 300 [--size 512] [--spacing 1.0] [--seed 0]

The headers look like a real scanner's (patient, study, series, equipment, CT acquisition,
window, rescale intercept -1024, slope 1), about 2 KB each, so header parsing costs what it costs
on real data. File names are random 8-digit numbers without extension and InstanceNumber runs
against the slice position, so a loader that sorts by name or number gets it wrong.

The pixel values are a body-shaped ellipse of soft tissue with lungs, a spine and noise: the
same phantom every run for a given seed. Writing 300 slices takes a few seconds.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

#: Hounsfield units of the phantom's materials.
AIR_HU, LUNG_HU, TISSUE_HU, BONE_HU = -1000, -850, 40, 700

#: Rescale intercept of the stored values (stored = HU + 1024), as CT scanners write.
INTERCEPT = -1024

#: Pixel spacing in mm (square) of the 512x512 slices: a 350 mm field of view.
PIXEL_SPACING_MM = 350.0 / 512


def phantom_slice(size: int, z_frac: float, rng: np.random.Generator) -> np.ndarray:
    """Stored int16 values (HU + 1024) of one slice at fraction ``z_frac`` of the scan length."""
    y, x = np.ogrid[-1 : 1 : size * 1j, -1 : 1 : size * 1j]
    hu = np.full((size, size), AIR_HU, dtype=np.float32)
    body = (x / 0.85) ** 2 + (y / (0.6 + 0.05 * np.sin(3 * z_frac))) ** 2 <= 1
    hu[body] = TISSUE_HU
    lung_r = 0.25 * (1 - abs(z_frac - 0.5))
    for cx in (-0.4, 0.4):
        hu[((x - cx) / (lung_r * 1.2)) ** 2 + ((y + 0.05) / (lung_r * 1.6)) ** 2 <= 1] = LUNG_HU
    hu[(x / 0.08) ** 2 + ((y - 0.4) / 0.08) ** 2 <= 1] = BONE_HU
    hu += rng.normal(0, 12, size=hu.shape).astype(np.float32) * body
    return (np.rint(hu) - INTERCEPT).astype(np.int16)


def _template(size: int, spacing: float) -> object:
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = pydicom.uid.PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = "VOLUME_BENCH"
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = CTImageStorage
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = "20240315"
    ds.StudyTime = ds.SeriesTime = "101500"
    ds.AccessionNumber = "ACC0001"
    ds.Modality = "CT"
    ds.Manufacturer = "SynthCT"
    ds.InstitutionName = "Benchmark Hospital"
    ds.ReferringPhysicianName = "Ref^Doctor"
    ds.StationName = "CT01"
    ds.StudyDescription = "CHEST ABDOMEN"
    ds.SeriesDescription = "Body 1.0 synthetic"
    ds.ManufacturerModelName = "Synth 64"
    ds.PatientName = "Bench^Patient"
    ds.PatientID = "BENCH001"
    ds.PatientBirthDate = "19600101"
    ds.PatientSex = "O"
    ds.PatientAge = "064Y"
    ds.BodyPartExamined = "CHEST"
    ds.SliceThickness = f"{spacing:g}"
    ds.KVP = "120"
    ds.DataCollectionDiameter = "500"
    ds.SoftwareVersions = "1.0"
    ds.ReconstructionDiameter = "350"
    ds.DistanceSourceToDetector = "1085.6"
    ds.DistanceSourceToPatient = "595"
    ds.GantryDetectorTilt = "0"
    ds.TableHeight = "150"
    ds.RotationDirection = "CW"
    ds.ExposureTime = "500"
    ds.XRayTubeCurrent = "250"
    ds.Exposure = "125"
    ds.FilterType = "BODY FILTER"
    ds.GeneratorPower = "30"
    ds.FocalSpots = "1.2"
    ds.ConvolutionKernel = "B30f"
    ds.PatientPosition = "FFS"
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.StudyID = "1"
    ds.SeriesNumber = 3
    ds.AcquisitionNumber = 1
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.FrameOfReferenceUID = generate_uid()
    ds.PositionReferenceIndicator = ""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = size
    ds.Columns = size
    ds.PixelSpacing = [f"{PIXEL_SPACING_MM:.6f}", f"{PIXEL_SPACING_MM:.6f}"]
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.WindowCenter = "40"
    ds.WindowWidth = "400"
    ds.RescaleIntercept = str(INTERCEPT)
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU"
    return ds


def make_ct(out: str | os.PathLike[str], slices: int = 300, size: int = 512, spacing: float = 1.0,
            seed: int = 0) -> list[Path]:
    """Write the series into ``out`` (created); returns the file paths in slice order (feet first).

    Slice ``k`` lies at z = ``-slices * spacing / 2 + k * spacing`` mm; InstanceNumber counts the
    other way; file names are random.
    """
    from pydicom.uid import generate_uid

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    ds = _template(size, spacing)
    half = (size - 1) / 2 * PIXEL_SPACING_MM
    names = rng.permutation(10**7 + np.arange(slices) * 7919 % 10**7)
    paths = []
    z0 = -slices * spacing / 2
    for k in range(slices):
        z = z0 + k * spacing
        uid = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = uid
        ds.SOPInstanceUID = uid
        ds.InstanceNumber = slices - k
        ds.ImagePositionPatient = [f"{-half:.4f}", f"{-half:.4f}", f"{z:.4f}"]
        ds.SliceLocation = f"{z:.4f}"
        ds.ContentTime = ds.AcquisitionTime = f"1016{k // 100 % 60:02d}.{k % 100:02d}0000"
        ds.PixelData = phantom_slice(size, k / max(1, slices - 1), rng).tobytes()
        path = out / f"{int(names[k]):08d}"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="folder to write (created)")
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--size", type=int, default=512, help="rows = columns")
    parser.add_argument("--spacing", type=float, default=1.0, help="slice spacing in mm")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    paths = make_ct(args.out, args.slices, args.size, args.spacing, args.seed)
    print(f"wrote {len(paths)} slices of {args.size}x{args.size} to {args.out} "
          f"in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

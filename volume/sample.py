"""A small synthetic CT series to try volume without any data of your own.

``write_sample_ct(folder)`` writes an axial CT of an ellipsoidal "head" (soft tissue, a bone
shell) with a bright marker at the patient's left-anterior-superior, so every picture shows
at a glance whether left/right, front/back and up/down are where they belong. File names are
shuffled and InstanceNumber runs against position, as in real exports.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

#: Hounsfield units of the phantom's materials.
AIR_HU, TISSUE_HU, BONE_HU, MARKER_HU = -1000, 40, 900, 2000

#: Centre of the marker ball in patient LPS mm (x left, y posterior, z superior): left-anterior-superior.
MARKER_LPS = (35.0, -40.0, 30.0)

#: Radius of the marker ball, mm.
MARKER_RADIUS_MM = 8.0


def phantom_hu(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Hounsfield units of the phantom at LPS positions (mm), any matching shapes."""
    r = (x / 70.0) ** 2 + (y / 85.0) ** 2 + (z / 60.0) ** 2
    hu = np.full(np.broadcast(x, y, z).shape, AIR_HU, dtype=np.float32)
    hu[r <= 1.0] = BONE_HU
    hu[r <= 0.85] = TISSUE_HU
    m = MARKER_LPS
    ball = (x - m[0]) ** 2 + (y - m[1]) ** 2 + (z - m[2]) ** 2 <= MARKER_RADIUS_MM**2
    hu[ball] = MARKER_HU
    return hu


def write_sample_ct(
    folder: str | os.PathLike[str],
    *,
    slices: int = 48,
    size: int = 128,
    pixel_mm: float = 1.5,
    slice_mm: float = 3.0,
    seed: int = 0,
) -> list[Path]:
    """Write the phantom as an axial CT series (int16, rescale intercept -1024) into ``folder``.

    Returns the written paths. The series is centred on the patient origin; slice ``k`` lies at
    ``z = (k - (slices - 1) / 2) * slice_mm``.
    """
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    half = (size - 1) / 2 * pixel_mm
    cols, rows = np.meshgrid(np.arange(size), np.arange(size))
    paths = []
    for k in range(slices):
        z = (k - (slices - 1) / 2) * slice_mm
        ipp = (-half, -half, z)
        x = ipp[0] + cols * pixel_mm
        y = ipp[1] + rows * pixel_mm
        hu = phantom_hu(x, y, np.full_like(x, z, dtype=float))
        stored = (np.rint(hu) + 1024).astype(np.int16)
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.PatientName, ds.PatientID = "Phantom^Sample", "SAMPLE-001"
        ds.Modality = "CT"
        ds.Manufacturer = "volume sample"
        ds.SeriesNumber = 2
        ds.SeriesDescription = "Phantom head"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.PatientPosition = "HFS"
        ds.InstanceNumber = slices - k
        ds.ImagePositionPatient = [f"{v:.4f}" for v in ipp]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [pixel_mm, pixel_mm]
        ds.SliceThickness = slice_mm
        ds.KVP = 120
        ds.WindowCenter, ds.WindowWidth = 40, 400
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = -1024, 1, "HU"
        ds.Rows = ds.Columns = size
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.PixelData = stored.tobytes()
        path = folder / f"{rng.integers(10**8):08d}"
        pydicom.dcmwrite(path, ds, enforce_file_format=True)
        paths.append(path)
    return paths

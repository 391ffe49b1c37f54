"""Synthetic MR sessions for the BIDS tests: small series (4 slices of 8x8) whose headers hold
exactly the facts a test names (ImageType, sequence, times, volumes, b-values, phase encoding).

The phase-encoding polarity and the readout are written as Siemens XA does (private elements
(0021,111C) PhaseEncodingDirectionPositive and (0021,1153) BandwidthPerPixelPhaseEncode), so
``volume.dicom.bids`` derives PhaseEncodingDirection and TotalReadoutTime from them.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydicom.uid import generate_uid
from synth import AXIAL, write_series

SHAPE = (4, 8, 8)
"""(slices, rows, cols) of every synthetic series."""

STUDY_UID = generate_uid()


def mr_series(folder: str | Path, *, number: int, description: str = "", volumes: int = 1,
              image_type: Sequence[str] = ("ORIGINAL", "PRIMARY", "M", "ND"), sequence: str | Sequence[str] = "SE",
              variant: str | Sequence[str] = "SP", name: str = "", te: float | None = 20.0, tr: float | None = 500.0,
              ti: float | None = None, flip: float | None = 90.0, acquisition: str = "2D", ped: str | None = None,
              bvalues: Sequence[float] | None = None, echo: int | None = None, start: float = 36000.0,
              iop: Sequence[float] = AXIAL, series_uid: str | None = None, manufacturer: str = "SIEMENS",
              extra: dict[str, Any] | None = None, shape: tuple[int, int, int] = SHAPE) -> str:
    """Write one series (``volumes`` volumes of ``shape``) into ``folder``; returns its UID.

    ``ped`` is the phase encoding in the written file's axes (``j``, ``j-``, ``i``, ``i-``): the
    in-plane direction (COL for j, ROW for i) and its polarity. ``bvalues`` gives each volume a
    b-value (and a gradient direction when above zero). ``start`` is the AcquisitionTime (s) of
    the first volume; each volume is one TR later.
    """
    uid = series_uid or generate_uid()
    n = shape[0]
    for t in range(volumes):
        tags: dict[str, Any] = {
            "ImageType": list(image_type), "ScanningSequence": sequence, "SequenceVariant": variant,
            "MRAcquisitionType": acquisition, "Manufacturer": manufacturer, "ProtocolName": description,
            "MagneticFieldStrength": 3, "TemporalPositionIdentifier": t + 1, "NumberOfTemporalPositions": volumes,
        }
        if name:
            tags["SequenceName"] = name
        for key, value in (("EchoTime", te), ("RepetitionTime", tr), ("InversionTime", ti), ("FlipAngle", flip),
                           ("EchoNumbers", echo)):
            if value is not None:
                tags[key] = value
        seconds = start + t * ((tr or 1000.0) / 1000.0)
        tags["AcquisitionTime"] = f"{int(seconds // 3600):02d}{int(seconds % 3600 // 60):02d}{seconds % 60:09.6f}"
        if bvalues is not None:
            b = float(bvalues[t])
            tags["DiffusionBValue"] = b
            tags["DiffusionDirectionality"] = "DIRECTIONAL" if b > 0 else "NONE"
            if b > 0:
                direction = [(1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)][t % 3]
                tags["DiffusionGradientOrientation"] = list(direction)
        tags.update(extra or {})

        def per_slice(k: int, tags: dict[str, Any] = tags, t: int = t) -> dict[str, Any]:
            return {**tags, "InstanceNumber": t * n + k + 1}

        info = write_series(folder, shape=shape, iop=iop, series_number=number, description=description,
                            series_uid=uid, study_uid=STUDY_UID, extra=per_slice, seed=zlib.crc32(f"{uid} {te} {image_type} {t}".encode()),
                            instance_numbers="none")
        if ped is not None:
            _phase_encoding(info.paths, ped)
    return uid


def _phase_encoding(paths: Sequence[Path], ped: str) -> None:
    import pydicom

    for path in paths:
        ds = pydicom.dcmread(path)
        ds.InPlanePhaseEncodingDirection = "ROW" if ped.startswith("i") else "COL"
        ds.add_new(0x00210010, "LO", "SIEMENS MR SDS 01")
        ds.add_new(0x0021111C, "IS", "0" if ped.endswith("-") else "1")
        ds.add_new(0x00211153, "FD", 30.0)
        ds.AcquisitionMatrix = [0, SHAPE[1], SHAPE[2], 0] if ped.startswith("j") else [SHAPE[2], 0, 0, SHAPE[1]]
        ds.save_as(path, enforce_file_format=True)


def t1w(folder: Path, number: int, description: str = "t1_mprage_sag", **kw: Any) -> str:
    """An MPRAGE: gradient echo, inversion-prepared (TI 900 ms), TE 2.3 ms, 3D."""
    return mr_series(folder, number=number, description=description, sequence=["GR", "IR"], variant=["SK", "SP", "MP"],
                     name="*tfl3d1_16ns", te=2.3, tr=2300.0, ti=900.0, flip=8.0, acquisition="3D", **kw)


def t2w(folder: Path, number: int, description: str = "t2_tse_tra", **kw: Any) -> str:
    """A T2 turbo spin echo: TE 100 ms, TR 4000 ms."""
    return mr_series(folder, number=number, description=description, sequence="SE", variant=["SK", "SP"],
                     name="*tse2d1_15", te=100.0, tr=4000.0, **kw)


def bold(folder: Path, number: int, description: str = "rest_bold", volumes: int = 3, ped: str = "j-",
         te: float = 30.0, **kw: Any) -> str:
    """A gradient-echo EPI run: TE 30 ms, TR 2 s."""
    return mr_series(folder, number=number, description=description, volumes=volumes, sequence="EP", variant="SK",
                     name="epfid2d1_8", te=te, tr=2000.0, flip=75.0, ped=ped,
                     **{"image_type": ("ORIGINAL", "PRIMARY", "M", "ND"), **kw})


def se_epi(folder: Path, number: int, ped: str, description: str = "SpinEchoFieldMap", volumes: int = 2,
           **kw: Any) -> str:
    """A spin-echo EPI of a few volumes (a reverse phase-encoding field map)."""
    return mr_series(folder, number=number, description=description, volumes=volumes, sequence="EP", variant="SK",
                     name="epse2d1_8", te=60.0, tr=8000.0, ped=ped, **kw)


def dwi(folder: Path, number: int, description: str = "dMRI_dir6", bvalues: Sequence[float] = (0, 1000, 1000, 1000),
        ped: str = "j-", **kw: Any) -> str:
    """A diffusion series: one b-value (and a direction) per volume."""
    return mr_series(folder, number=number, description=description, volumes=len(bvalues), sequence="EP",
                     variant=["SK", "SP"], name="ep_b1000", te=80.0, tr=5000.0, ped=ped, bvalues=bvalues,
                     image_type=("ORIGINAL", "PRIMARY", "DIFFUSION", "NONE", "ND"), **kw)


def gre_fieldmap(folder: Path, number: int, description: str = "gre_field_mapping", **kw: Any) -> tuple[str, str]:
    """A Siemens-style GRE field map: series ``number`` holds the two magnitude echoes (4.92 and
    7.38 ms), series ``number + 1`` the phase difference (ImageType P, TE 7.38 ms)."""
    mag = generate_uid()
    for echo, te in ((1, 4.92), (2, 7.38)):
        mr_series(folder, number=number, description=description, sequence="GR", variant="SP", name="*fm2d2r",
                  te=te, tr=500.0, flip=60.0, echo=echo, series_uid=mag, **kw)
    phase = mr_series(folder, number=number + 1, description=description, sequence="GR", variant="SP",
                      name="*fm2d2r", te=7.38, tr=500.0, flip=60.0, echo=2,
                      image_type=("ORIGINAL", "PRIMARY", "P", "ND"), **kw)
    return mag, phase


def localizer(folder: Path, number: int) -> str:
    """A localizer (ImageType LOCALIZER)."""
    return mr_series(folder, number=number, description="localizer", sequence="GR", variant="SP", name="*fl2d1",
                     te=4.0, tr=8.0, flip=20.0, image_type=("ORIGINAL", "PRIMARY", "LOCALIZER", "NONE"))


def ge_epi_pepolar(folder: Path, number: int, mode: int = 2, volumes: int = 4, description: str = "fMRI_FM_cv12",
                   **kw: Any) -> str:
    """GE's ``epi_pepolar`` (PSD 0019,109C ``research/ABCD/epi_pepolar``): a gradient-echo EPI whose user
    data 12 (0019,10B3) is ``mode`` (2: odd volumes phase-reversed)."""
    import pydicom

    uid = mr_series(folder, number=number, description=description, volumes=volumes, sequence="EP", variant="SS",
                    te=30.0, tr=2000.0, flip=90.0, ped="j", manufacturer="GE MEDICAL SYSTEMS", **kw)
    for path in sorted(Path(folder).iterdir()):
        ds = pydicom.dcmread(path)
        if ds.SeriesInstanceUID != uid:
            continue
        block = ds.private_block(0x0019, "GEMS_ACQU_01", create=True)
        block.add_new(0x9C, "LO", "research/ABCD/epi_pepolar")
        block.add_new(0xB3, "DS", str(mode))
        ds.save_as(path, enforce_file_format=True)
    return uid

"""World-space comparison of NIfTI outputs (image, ``.bval``/``.bvec``, sidecar) with a peer's reference.

Two converters may order or flip voxel axes differently and both be right; what must agree is
where each voxel lies in the patient and what it holds. Every comparison here goes through the
files' own affines: grids after :func:`nibabel.as_closest_canonical`, gradient directions and the
phase-encoding direction as world (RAS) vectors, slice times by slice position along the normal.
Each ``compare_*`` function returns a list of differences (empty when the files agree), so a test
can say everything that is wrong at once.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

CORNER_TOLERANCE_MM = 0.1
"""Voxel-grid corners of two files may differ by this much (positions written with few decimals)."""

TIME_TOLERANCE_S = 0.003
"""Slice and acquisition times may differ by this much (3 ms: vendors round to milliseconds)."""

BVEC_TOLERANCE = 1e-3
"""Gradient directions (unit vectors) may differ by this much per component, in world space."""


def load_canonical(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """``(data, affine)`` of a NIfTI file reoriented to the closest RAS+ axes (4D data: t last).

    Values are scaled by the header's ``scl_slope``/``scl_inter`` (nibabel's ``get_fdata``).
    """
    import nibabel as nib

    img = nib.as_closest_canonical(nib.load(str(path)))
    return np.asarray(img.get_fdata(dtype=np.float64)), np.asarray(img.affine, dtype=np.float64)


def grid_corners(affine: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """The 8 corner voxel centres of a 3D grid, (8, 3) world mm."""
    ends = [(0, n - 1) for n in shape[:3]]
    idx = np.array([[i, j, k, 1.0] for i in ends[0] for j in ends[1] for k in ends[2]])
    return (idx @ affine.T)[:, :3]


def compare_grids(ours: tuple[np.ndarray, np.ndarray], ref: tuple[np.ndarray, np.ndarray]) -> list[str]:
    """Differences between two canonical ``(data, affine)`` grids: shape and corner positions."""
    (a, aa), (b, ba) = ours, ref
    if a.shape[:3] != b.shape[:3]:
        return [f"grid {a.shape[:3]} vs reference {b.shape[:3]}"]
    worst = float(np.abs(grid_corners(aa, a.shape) - grid_corners(ba, b.shape)).max())
    if worst > CORNER_TOLERANCE_MM:
        return [f"grid corners differ by {worst:.3f} mm (tolerance {CORNER_TOLERANCE_MM} mm)"]
    return []


def as_4d(data: np.ndarray) -> np.ndarray:
    """``data`` with a trailing volume axis (a 3D image is one volume)."""
    return data if data.ndim == 4 else data[..., None]


VALUE_RTOL = 1e-4
"""Relative tolerance of voxel values (float32 arithmetic of a scaling, in either converter)."""

VALUE_ATOL_OF_RANGE = 1e-5
"""Absolute tolerance of voxel values, as a fraction of the reference's largest magnitude: a
scaling's intercept computed in float32 (dcm2niix: -499.99994 for -500) moves every value alike."""


def compare_values(ours: np.ndarray, ref: np.ndarray, *, volumes: Sequence[int] | None = None) -> list[str]:
    """Differences between two canonical arrays of the same grid, volume by volume.

    ``volumes`` lists reference volumes to compare (others are skipped: known defects).
    """
    a, b = as_4d(ours), as_4d(ref)
    if a.shape != b.shape:
        return [f"shape {a.shape} vs reference {b.shape}"]
    out = []
    atol = 1e-3 + VALUE_ATOL_OF_RANGE * float(np.abs(b).max()) if b.size else 1e-3
    for t in range(a.shape[3]) if volumes is None else volumes:
        x, y = a[..., t], b[..., t]
        bad = ~np.isclose(x, y, rtol=VALUE_RTOL, atol=atol)
        if bad.any():
            where = tuple(int(v) for v in np.argwhere(bad)[0])
            out.append(f"volume {t}: {int(bad.sum())} voxels differ, e.g. at {where}: {x[where]!r} vs {y[where]!r}")
    return out


def read_bval(path: str | Path) -> np.ndarray:
    """b-values of an FSL ``.bval`` file (one row)."""
    return np.array([float(v) for v in Path(path).read_text().split()])


def read_bvec(path: str | Path) -> np.ndarray:
    """Gradient directions of an FSL ``.bvec`` file: (3, N)."""
    rows = [[float(v) for v in line.split()] for line in Path(path).read_text().splitlines() if line.strip()]
    return np.array(rows, dtype=float).reshape(3, -1)


def bvec_world(bvec: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """FSL bvecs (3, N) of an image with ``affine`` (RAS) as world (RAS) unit vectors (N, 3).

    FSL's convention: the vectors refer to the voxel axes, with x negated when the affine's
    determinant is positive (FSL then flips the image's x itself).
    """
    rot = affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0)
    v = np.array(bvec, dtype=float).T.copy()
    if np.linalg.det(affine[:3, :3]) > 0:
        v[:, 0] = -v[:, 0]
    return v @ rot.T


def compare_bvals(ours: np.ndarray, ref: np.ndarray, *, atol: float = 0.5) -> list[str]:
    if ours.shape != ref.shape:
        return [f"{ours.size} b-values vs reference {ref.size}: {ours.tolist()} vs {ref.tolist()}"]
    if not np.allclose(ours, ref, atol=atol):
        return [f"b-values {ours.tolist()} vs reference {ref.tolist()}"]
    return []


def compare_bvecs(
    ours: np.ndarray, ours_affine: np.ndarray, ref: np.ndarray, ref_affine: np.ndarray, *, either_sign: bool = False
) -> list[str]:
    """Differences between two bvec sets as world directions (a diffusion direction and its opposite
    are the same measurement; ``either_sign`` accepts them)."""
    a, b = bvec_world(ours, ours_affine), bvec_world(ref, ref_affine)
    if a.shape != b.shape:
        return [f"{len(a)} gradient directions vs reference {len(b)}"]
    out = []
    for t, (x, y) in enumerate(zip(a, b, strict=True)):
        same = np.allclose(x, y, atol=BVEC_TOLERANCE) or (either_sign and np.allclose(x, -y, atol=BVEC_TOLERANCE))
        if not same:
            out.append(f"volume {t}: direction {np.round(x, 4).tolist()} vs reference {np.round(y, 4).tolist()} (world RAS)")
    return out


def axis_world(code: str, affine: np.ndarray) -> np.ndarray:
    """A BIDS voxel-axis direction (``i``, ``j-``, ``k``...) of an image as a world (RAS) unit vector."""
    axis = "ijk".index(code[0])
    v = affine[:3, axis] / np.linalg.norm(affine[:3, axis])
    return -v if code.endswith("-") else v


def slice_times_by_position(times: Sequence[float], affine: np.ndarray, n_slices: int) -> list[tuple[float, float]]:
    """``(position along the slice normal in mm, time)`` for each slice, sorted by position.

    SliceTiming refers to the third voxel axis (k); its world position makes two files comparable
    whatever order each stored its slices in.
    """
    k = affine[:3, 2]
    normal = k / np.linalg.norm(k)
    sign = 1.0 if normal[np.argmax(np.abs(normal))] > 0 else -1.0  # always measure towards +(the main axis)
    pos = [float(sign * normal @ (affine[:3, :3] @ [0, 0, s] + affine[:3, 3])) for s in range(n_slices)]
    return sorted(zip(pos, (float(t) for t in times), strict=True))


def matching_sidecar(ref: Mapping[str, Any], folder: Path, *, prefer_4d: bool = False) -> Path:
    """volume's sidecar in ``folder`` for a dcm2niix sidecar ``ref``: the same SeriesNumber,
    SeriesDescription and PatientPosition; a field map in Hz (dcm2niix's ``_fieldmaphz``) only for a
    field-map reference; with ``prefer_4d``, the 4D one where a series gave several stacks. Exactly
    one must match."""
    found = []
    for path in sorted(folder.glob("*.json")):
        ours = json.loads(path.read_text())
        if all(ours.get(k) == ref.get(k) for k in ("SeriesNumber", "SeriesDescription", "PatientPosition")):
            found.append(path)
    if len(found) > 1:
        field_map = "FIELDMAPHZ" in ref.get("ImageType", [])
        found = [p for p in found if ("fieldmaphz" in p.name) == field_map]
    if len(found) > 1 and prefer_4d:
        found = [p for p in found if len(nib.load(str(p.with_suffix(".nii.gz"))).shape) == 4]
    assert len(found) == 1, (ref.get("SeriesNumber"), found)
    return found[0]


def load_sidecar(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


#: Sidecar fields compared as numbers (seconds, ratios, counts).
NUMERIC_FIELDS = (
    "RepetitionTime", "EchoTime", "EchoTime1", "EchoTime2", "FlipAngle", "EffectiveEchoSpacing",
    "TotalReadoutTime", "MultibandAccelerationFactor", "ParallelReductionFactorInPlane",
    "PartialFourier", "AcquisitionMatrixPE", "ReconMatrixPE", "InversionTime",
)

#: Sidecar fields compared as text.
TEXT_FIELDS = ("Units", "PhaseEncodingAxis")


def compare_sidecars(
    ours: Mapping[str, Any], ours_affine: np.ndarray, ours_shape: Sequence[int],
    ref: Mapping[str, Any], ref_affine: np.ndarray, ref_shape: Sequence[int],
    *, fields: Sequence[str] | None = None,
) -> list[str]:
    """Differences in the research fields of two sidecars, in world terms.

    Fields the reference lacks are not compared; a field the reference has and ours lacks is a
    difference. ``PhaseEncodingDirection`` is compared as a world direction, ``SliceTiming`` by
    slice position (both through each file's affine, so each must be the affine of the canonical
    or the written image consistently: pass the affines of the files as written).
    """
    out = []
    wanted = set(fields) if fields is not None else None

    def want(name: str) -> bool:
        return name in ref and (wanted is None or name in wanted)

    for name in NUMERIC_FIELDS:
        if not want(name):
            continue
        if name not in ours:
            out.append(f"{name} missing (reference {ref[name]!r})")
            continue
        a, b = float(ours[name]), float(ref[name])
        tol = TIME_TOLERANCE_S if name in ("RepetitionTime", "EchoTime", "EchoTime1", "EchoTime2", "InversionTime") else 1e-4
        rel = abs(a - b) <= max(tol, 1e-3 * abs(b)) if name in ("EffectiveEchoSpacing", "TotalReadoutTime") else abs(a - b) <= tol
        if not rel:
            out.append(f"{name} {a!r} vs reference {b!r}")
    for name in TEXT_FIELDS:
        if want(name) and ours.get(name) != ref[name]:
            out.append(f"{name} {ours.get(name)!r} vs reference {ref[name]!r}")
    if want("PhaseEncodingDirection"):
        if "PhaseEncodingDirection" not in ours:
            out.append(f"PhaseEncodingDirection missing (reference {ref['PhaseEncodingDirection']!r})")
        else:
            a = axis_world(ours["PhaseEncodingDirection"], ours_affine)
            b = axis_world(ref["PhaseEncodingDirection"], ref_affine)
            if float(a @ b) < math.cos(math.radians(1)):
                out.append(f"PhaseEncodingDirection {ours['PhaseEncodingDirection']} = {np.round(a, 3).tolist()} vs "
                           f"reference {ref['PhaseEncodingDirection']} = {np.round(b, 3).tolist()} (world RAS)")
    if want("SliceTiming"):
        if "SliceTiming" not in ours:
            out.append("SliceTiming missing")
        elif len(ours["SliceTiming"]) != len(ref["SliceTiming"]):
            out.append(f"{len(ours['SliceTiming'])} slice times vs reference {len(ref['SliceTiming'])}")
        else:
            a = slice_times_by_position(ours["SliceTiming"], ours_affine, ours_shape[2])
            b = slice_times_by_position(ref["SliceTiming"], ref_affine, ref_shape[2])
            for (pa, ta), (pb, tb) in zip(a, b, strict=True):
                if abs(pa - pb) > CORNER_TOLERANCE_MM * 10 or abs(ta - tb) > TIME_TOLERANCE_S:
                    out.append(f"SliceTiming: slice at {pa:.1f} mm at {ta} s vs reference {pb:.1f} mm at {tb} s")
                    break
    return out


# --- the DICOM itself as the reference ------------------------------------------------------------


@dataclass
class DicomImage:
    """One 2D image as its file says it: display values, where its pixels lie, its diffusion weighting."""

    name: str
    values: np.ndarray
    ipp: np.ndarray
    row_dir: np.ndarray
    col_dir: np.ndarray
    spacing: tuple[float, float]
    bvalue: float | None
    gradient: np.ndarray | None


def _b_and_gradient(ds: Any) -> tuple[float | None, np.ndarray | None]:
    """b-value and LPS gradient from the standard tags, else Siemens' private ones (read by tag here,
    independently of volume's reader)."""
    b = ds.get("DiffusionBValue")
    g = ds.get("DiffusionGradientOrientation")
    if b is None and (0x0019, 0x100C) in ds:
        raw = ds[0x0019, 0x100C].value
        b = float(raw.decode() if isinstance(raw, bytes) else raw)
        if (0x0019, 0x100E) in ds:
            raw = ds[0x0019, 0x100E].value
            g = np.frombuffer(raw, "<f8") if isinstance(raw, bytes) else raw
    return (None if b is None else float(b)), (None if g is None else np.asarray(g, dtype=float))


def dicom_images(folder: str | Path) -> list[DicomImage]:
    """Every image of the single-frame and enhanced multi-frame files under ``folder`` (not mosaics)."""
    import pydicom

    out = []
    for path in sorted(Path(folder).rglob("*")):
        if not path.is_file():
            continue
        try:
            ds = pydicom.dcmread(path)
        except Exception:  # noqa: BLE001 - not DICOM
            continue
        if "PixelData" not in ds:
            continue
        pixels = ds.pixel_array.astype(float)
        per = ds.get("PerFrameFunctionalGroupsSequence")
        if per is None:
            iop = np.asarray(ds.ImageOrientationPatient, float)
            values = pixels * float(ds.get("RescaleSlope", 1) or 1) + float(ds.get("RescaleIntercept", 0) or 0)
            out.append(DicomImage(path.name, values, np.asarray(ds.ImagePositionPatient, float), iop[:3], iop[3:],
                                  tuple(float(v) for v in ds.PixelSpacing), *_b_and_gradient(ds)))
            continue
        shared = ds.SharedFunctionalGroupsSequence[0]
        for i, fg in enumerate(per):
            def find(seq: str, kw: str, fg: Any = fg, shared: Any = shared) -> Any:
                for group in (fg, shared):
                    if seq in group and kw in group[seq][0]:
                        return group[seq][0][kw].value
                return None
            iop = np.asarray(find("PlaneOrientationSequence", "ImageOrientationPatient"), float)
            slope = float(find("PixelValueTransformationSequence", "RescaleSlope") or 1)
            inter = float(find("PixelValueTransformationSequence", "RescaleIntercept") or 0)
            b = find("MRDiffusionSequence", "DiffusionBValue")
            g = None
            diffusion = fg.get("MRDiffusionSequence") or shared.get("MRDiffusionSequence")
            if diffusion and "DiffusionGradientDirectionSequence" in diffusion[0]:
                g = np.asarray(diffusion[0].DiffusionGradientDirectionSequence[0].DiffusionGradientOrientation, float)
            out.append(DicomImage(f"{path.name} [frame {i + 1}]", pixels[i] * slope + inter,
                                  np.asarray(find("PlanePositionSequence", "ImagePositionPatient"), float), iop[:3], iop[3:],
                                  tuple(float(v) for v in find("PixelMeasuresSequence", "PixelSpacing")),
                                  None if b is None else float(b), g))
    return out


def compare_with_dicom(nifti: str | Path, images: Sequence[DicomImage], bvals: np.ndarray | None = None,
                       bvecs: np.ndarray | None = None) -> list[str]:
    """Differences between a NIfTI file (with its bval/bvec) and the DICOM images it was made from:
    every pixel of every image must be in the file at its world position, in a volume whose b-value
    and gradient (in world terms) are the image's. Independent of any converter's layout."""
    import nibabel as nib

    img = nib.load(str(nifti))
    data = as_4d(np.asarray(img.get_fdata(dtype=np.float64)))
    inv = np.linalg.inv(img.affine)
    world_bvecs = bvec_world(bvecs, img.affine) if bvecs is not None else None
    out = []
    for im in images:
        r, c = np.meshgrid(np.arange(im.values.shape[0]), np.arange(im.values.shape[1]), indexing="ij")
        lps = im.ipp + (c * im.spacing[1])[..., None] * im.row_dir + (r * im.spacing[0])[..., None] * im.col_dir
        ras = lps * np.array([-1.0, -1.0, 1.0])
        ijk = ras @ inv[:3, :3].T + inv[:3, 3]
        idx = np.rint(ijk).astype(int)
        if np.abs(ijk - idx).max() > 0.01 or (idx < 0).any() or (idx >= np.array(data.shape[:3])).any():
            out.append(f"{im.name}: its pixels are not voxels of the file (off the grid by {np.abs(ijk - idx).max():.3f})")
            continue
        candidates = range(data.shape[3])
        if bvals is not None and im.bvalue is not None:
            candidates = [t for t in candidates if abs(bvals[t] - im.bvalue) <= 0.5]
            if im.gradient is not None and np.linalg.norm(im.gradient) > 0.5 and im.bvalue > 0 and world_bvecs is not None:
                g_ras = im.gradient / np.linalg.norm(im.gradient) * np.array([-1.0, -1.0, 1.0])
                candidates = [t for t in candidates if abs(float(world_bvecs[t] @ g_ras)) > 1 - 1e-4]
        found = [t for t in candidates
                 if np.allclose(data[idx[..., 0], idx[..., 1], idx[..., 2], t], im.values, rtol=VALUE_RTOL, atol=1e-3)]
        if not found:
            out.append(f"{im.name}: no volume with its b-value/gradient holds its values at its position")
    return out


# --- the whole sidecar against dcm2niix's (issue 20) -----------------------------------------------

SIDECAR_RELATIVE_TOLERANCE = 1e-4
"""Sidecar numbers agree within this fraction (dcm2niix writes six significant digits)."""

SIDECAR_ABSOLUTE_TOLERANCE = 1e-5
"""...or this much: dcm2niix writes 1e-16 and -5e-13 for a zero direction cosine."""

TIME_OF_DAY_TOLERANCE_S = 1e-3
"""AcquisitionTime: dcm2niix keeps five decimals of the seconds (and once wrote ``12:30:2.285``)."""

DIRECTION_COSINE = math.cos(math.radians(1))
"""Two phase-encoding directions agree within 1 degree."""

#: Keys that are dcm2niix's own, not a value of the files.
DCM2NIIX_OWN = {
    "ConversionSoftware": "the converter's name",
    "ConversionSoftwareVersion": "the converter's version",
    "BidsGuess": "dcm2niix's guess of a BIDS name from sequence names, not a value of the files",
}

#: How dcm2niix renders a value volume writes as the files give it (compared after undoing it).
DCM2NIIX_RENDERINGS = {
    "ImageType": "dcm2niix splits the values at underscores (ECHO_00 -> ECHO, 00; M_SE -> M, SE) and appends "
                 "the complex component it infers (MAGNITUDE, PHASE, REAL, IMAGINARY) and FIELDMAPHZ; volume "
                 "writes the DICOM values as they are",
    "PhaseEncodingDirection": "dcm2niix stores rows bottom to top, volume top to bottom: j and j- swap; the "
                              "world direction is compared",
    "SliceTiming": "the times are compared by slice position (the two files may order slices differently)",
    "AcquisitionTime": "dcm2niix keeps five decimals of the seconds (11:04:32.975000 for 110432.974996) and "
                       "older versions wrote 12:30:2.285000: compared as a time of day",
}

APPENDED_IMAGE_TYPES = frozenset({"MAGNITUDE", "PHASE", "REAL", "IMAGINARY", "FIELDMAPHZ"})
"""The values dcm2niix appends to ImageType."""


def time_of_day(text: str) -> float:
    """Seconds since midnight of ``HH:MM:SS.ffffff``."""
    hh, mm, ss = text.split(":")
    return int(hh) * 3600 + int(mm) * 60 + float(ss)


def same_value(a: Any, b: Any) -> bool:
    """Equal sidecar values: numbers within the tolerances, lists element by element, the rest exactly."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return abs(a - b) <= max(SIDECAR_ABSOLUTE_TOLERANCE, SIDECAR_RELATIVE_TOLERANCE * abs(b))
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def image_type_agrees(ours: list[str], theirs: list[str]) -> bool:
    """dcm2niix's ImageType is ours split at underscores, then the components it appends."""
    split = [part for value in ours for part in value.split("_")]
    return theirs[: len(split)] == split and set(theirs[len(split):]) <= APPENDED_IMAGE_TYPES


def rows_flipped(img: Any) -> np.ndarray:
    """The affine dcm2niix writes for the grid of volume's ``img`` (rows bottom to top)."""
    flip = np.eye(4)
    flip[1, 1], flip[1, 3] = -1, img.shape[1] - 1
    return np.asarray(img.affine) @ flip


def whole_sidecar_differences(ours: Mapping[str, Any], img: Any, ref: Mapping[str, Any], ref_affine: np.ndarray | None,
                              *, skip: Any = lambda key: False) -> list[str]:
    """Every key of dcm2niix's sidecar ``ref`` that volume's ``ours`` (beside its NIfTI ``img``) lacks
    or gives another value, and a pixdim[4] that is not volume's RepetitionTime.

    Identity keys (:func:`volume.phi.is_identity`), dcm2niix's own keys and the keys ``skip`` names
    are left out; ``ref_affine`` is dcm2niix's NIfTI affine (None: volume's grid, rows flipped).
    """
    from volume.phi import is_identity

    theirs_affine = ref_affine if ref_affine is not None else rows_flipped(img)
    problems = []
    for key, theirs in ref.items():
        if key in DCM2NIIX_OWN or is_identity(key) or skip(key):
            continue
        if key not in ours:
            problems.append(f"{key} missing (dcm2niix: {json.dumps(theirs)[:80]})")
            continue
        mine = ours[key]
        if key == "ImageType":
            agree = image_type_agrees(mine, theirs)
        elif key == "AcquisitionTime":
            agree = abs(time_of_day(mine) - time_of_day(theirs)) <= TIME_OF_DAY_TOLERANCE_S
        elif key == "PhaseEncodingDirection":
            agree = float(axis_world(mine, img.affine) @ axis_world(theirs, theirs_affine)) > DIRECTION_COSINE
        elif key == "SliceTiming":
            agree = len(mine) == len(theirs) and all(
                abs(pa - pb) <= CORNER_TOLERANCE_MM * 10 and abs(ta - tb) <= TIME_TOLERANCE_S
                for (pa, ta), (pb, tb) in zip(slice_times_by_position(mine, img.affine, img.shape[2]),
                                              slice_times_by_position(theirs, theirs_affine, len(theirs)), strict=True))
        else:
            agree = same_value(mine, theirs)
        if not agree:
            problems.append(f"{key}: volume {json.dumps(mine)[:80]} vs dcm2niix {json.dumps(theirs)[:80]}")
    tr = ours.get("RepetitionTime")
    if tr is not None and not same_value(float(img.header["pixdim"][4]), tr):
        problems.append(f"pixdim[4] {float(img.header['pixdim'][4])} is not RepetitionTime {tr}")
    return problems

"""Every case of the peers' own test suites (``../shared/data/peers``), compared in world space.

Two suites, each beside the output its converter checked by hand:

* dicom2nifti's ``tests/data`` (GE, Philips classic and enhanced, Siemens mosaic and classic fMRI
  and DTI) with ground-truth NIfTI and bval/bvec;
* dcm2niix's ``dcm_qa_*`` repositories (GE slice orders, Siemens phase-encoding directions, Philips
  DWI volume order, transfer syntaxes, 12-bit pixels, enhanced field maps and SMS fMRI) with
  dcm2niix's NIfTI, BIDS sidecar and bval/bvec.

Every comparison goes through the files' affines (``tests/peers.py``): the same voxel grid, the same
values, the same volume order, the same b-values and world gradient directions, the same sidecar
fields in world terms. Where a reference is wrong, the case and the reason are named in
:data:`GROUND_TRUTH_DEFECTS` and volume is checked against the DICOM itself instead; and every
dicom2nifti case dcm2niix passes, volume passes too.
"""

from __future__ import annotations

import gzip
import io
import json
import subprocess
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest
from conftest import DATA
from peers import (
    CORNER_TOLERANCE_MM,
    bvec_world,
    compare_bvals,
    compare_bvecs,
    compare_grids,
    compare_sidecars,
    compare_values,
    compare_with_dicom,
    dicom_images,
    load_canonical,
    matching_sidecar,
    read_bval,
    read_bvec,
)

import volume
from volume.jobs.convert import ConvertOptions, convert

PEERS = DATA / "peers"
D2N = PEERS / "dicom2nifti" / "tests" / "data"

pytestmark = pytest.mark.skipif(not PEERS.is_dir(), reason=f"peers' test suites not found at {PEERS}")


def _d2n_cases() -> list[str]:
    if not D2N.is_dir():
        return []
    return sorted(str(p.relative_to(D2N)) for p in D2N.glob("*/*/*") if p.is_dir())


D2N_CASES = _d2n_cases()

#: What is wrong with dicom2nifti's ground truth, by case folder prefix and aspect; volume is
#: compared with the DICOM itself there (``test_d2n_defects_checked_against_the_dicom``).
GROUND_TRUTH_DEFECTS: dict[tuple[str, str], str] = {
    ("siemens/dti", "bvec"): "dicom2nifti writes the scanner's patient-frame gradient (0019,100E) as voxel-axis "
                             "components, ignoring the image orientation and the LPS-to-RAS flip",
    ("siemens/dti_classic", "bvec"): "the same: the patient-frame gradient written as voxel components",
    ("philips/dti/001", "bvec"): "the same with the standard DiffusionGradientOrientation (0018,9089): its world "
                                 "directions are those of the tag rotated by the slices' 1.5 degree obliquity",
    ("philips_enhanced/dti", "bvec"): "the same: the x component of the LPS gradient kept where RAS negates it",
    ("philips_enhanced/dti", "values"): "volumes 1-3 are all zeros although their frames hold data, and volume 0 "
                                        "holds the frames of the last direction although its bval says b=0",
    ("siemens/dti", "grid"): "the mosaic is placed (N-1) slices too far along the normal: its slice centres lie "
                             "outside the protocol's slice array (CSA series header sSliceArray)",
    ("siemens/fmri", "grid"): "the same misplaced mosaic origin",
}


def _defect(case: str, aspect: str) -> str:
    folder = case.removesuffix("_implicit")  # each case also comes as implicit VR, with the same truth
    for (prefix, what), why in GROUND_TRUTH_DEFECTS.items():
        if what == aspect and (folder == prefix or folder.startswith(prefix + "/")):
            return why
    return ""


def _is_philips(case: str) -> bool:
    return case.startswith("philips")


@pytest.fixture(scope="module")
def d2n_outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """volume's output folder of every dicom2nifti case (Philips in display values, as the ground
    truth is written; the precise values are compared with dcm2niix below)."""
    root = tmp_path_factory.mktemp("d2n")
    out = {}
    for case in D2N_CASES:
        folder = root / case
        options = ConvertOptions(scaling="display" if _is_philips(case) else "precise")
        results = convert(D2N / case, folder, options)
        assert all(r.status == "converted" for r in results), [r.message for r in results]
        out[case] = folder
    return out


def _main_image(folder: Path) -> Path:
    """The one 4D series a case holds (derived maps, if any, have their own files)."""
    images = sorted(folder.glob("*.nii*"))
    four_d = [p for p in images if len(nib.load(str(p)).shape) == 4]
    assert len(four_d) == 1, images
    return four_d[0]


def _stem(image: Path) -> Path:
    return image.with_name(image.name.split(".nii")[0])


def gt_differences(image: Path, case: str, *, exceptions: bool) -> list[str]:
    """Everything in which ``image`` (and its bval/bvec) differs from the ground truth of ``case``;
    with ``exceptions``, the aspects :data:`GROUND_TRUTH_DEFECTS` names are left out."""
    gt = D2N / f"{case}_ground_truth.nii.gz"
    skip = (lambda aspect: bool(_defect(case, aspect))) if exceptions else (lambda aspect: False)
    ours, ref = load_canonical(image), load_canonical(gt)
    out = [] if skip("grid") else compare_grids(ours, ref)
    if not skip("values"):
        if ours[0].shape == ref[0].shape:
            out += compare_values(ours[0], ref[0])
        elif not out:
            out.append(f"shape {ours[0].shape} vs reference {ref[0].shape}")
    gt_bval = gt.with_name(f"{Path(case).name}_ground_truth.bval")
    stem = _stem(image)
    if gt_bval.exists() and read_bval(gt_bval).max() > 0:
        if not stem.with_suffix(".bval").exists():
            return out + ["no .bval/.bvec written"]
        bvals, ref_bvals = read_bval(stem.with_suffix(".bval")), read_bval(gt_bval)
        out += compare_bvals(bvals, ref_bvals)
        if not skip("bvec") and bvals.shape == ref_bvals.shape:
            weighted = ref_bvals > 1
            out += compare_bvecs(read_bvec(stem.with_suffix(".bvec"))[:, weighted], nib.load(str(image)).affine,
                                 read_bvec(gt_bval.with_suffix(".bvec"))[:, weighted], nib.load(str(gt)).affine)
    return out


@pytest.mark.parametrize("case", D2N_CASES)
def test_d2n_case_matches_ground_truth(d2n_outputs: dict[str, Path], case: str) -> None:
    """Grid, values, volume order, bval and bvec in world space (the named defects aside)."""
    image = _main_image(d2n_outputs[case])
    assert gt_differences(image, case, exceptions=True) == []


@pytest.mark.parametrize("case", [c for c in D2N_CASES if _defect(c, "bvec") or _defect(c, "values")])
def test_d2n_defects_checked_against_the_dicom(d2n_outputs: dict[str, Path], case: str) -> None:
    """Where the ground truth's bvecs or values are wrong, every DICOM image must be in our file at
    its world position, in a volume with its b-value and its gradient (in world terms)."""
    image = _main_image(d2n_outputs[case])
    stem = _stem(image)
    if case.startswith("siemens/dti/"):  # mosaics: the gradients, here; positions in the next test
        import pydicom

        def gradient(h: Any) -> tuple[float, ...]:
            if (0x0019, 0x100E) not in h:
                return (0.0, 0.0, 0.0)
            raw = h[0x0019, 0x100E].value
            return tuple(np.round(np.frombuffer(raw, "<f8") if isinstance(raw, bytes) else np.asarray(raw, float), 4))

        def bvalue(h: Any) -> float:
            raw = h[0x0019, 0x100C].value
            return float(raw.decode() if isinstance(raw, bytes) else raw)

        heads = [pydicom.dcmread(p, stop_before_pixels=True) for p in sorted((D2N / case).iterdir())]
        wanted = {(bvalue(h), gradient(h)) for h in heads}
        world = bvec_world(read_bvec(stem.with_suffix(".bvec")), nib.load(str(image)).affine)
        lps = {(b, tuple(np.round(w * [-1, -1, 1], 4) + 0.0)) for b, w in zip(read_bval(stem.with_suffix(".bval")), world,
                                                                             strict=True)}
        assert lps == {(b, tuple(np.array(g) + 0.0)) for b, g in wanted}
        return
    images = dicom_images(D2N / case)
    assert images
    bvals = read_bval(stem.with_suffix(".bval")) if stem.with_suffix(".bval").exists() else None
    bvecs = read_bvec(stem.with_suffix(".bvec")) if stem.with_suffix(".bvec").exists() else None
    assert compare_with_dicom(image, images, bvals, bvecs) == []


@pytest.mark.parametrize("case", [c for c in D2N_CASES if _defect(c, "grid")])
def test_d2n_mosaic_slices_lie_where_the_protocol_puts_them(d2n_outputs: dict[str, Path], case: str) -> None:
    """Siemens mosaics without their per-image CSA header: the slice count and slice centres come
    from the protocol in the series CSA header; every written slice centre lies on one of them
    (along the normal), and the data are the ground truth's, slice for slice."""
    import pydicom

    from volume.dicom.siemens import ascconv, protocol_slices

    image = _main_image(d2n_outputs[case])
    ds = pydicom.dcmread(sorted((D2N / case).iterdir())[0], stop_before_pixels=True)
    centres, normal = protocol_slices(ascconv(ds))
    img = nib.load(str(image))
    n_slices = img.shape[2]
    assert n_slices == len(centres)
    middle = np.array([(img.shape[0] - 1) / 2, (img.shape[1] - 1) / 2])
    written = [(img.affine @ [*middle, k, 1])[:3] * [-1, -1, 1] for k in range(n_slices)]  # LPS
    along = sorted(float(p @ normal) for p in written)
    np.testing.assert_allclose(along, sorted(centres @ normal), atol=CORNER_TOLERANCE_MM)
    ours, ref = load_canonical(image), load_canonical(D2N / f"{case}_ground_truth.nii.gz")
    assert compare_values(ours[0], ref[0]) == []


def test_d2n_volume_passes_where_dcm2niix_passes(d2n_outputs: dict[str, Path], dcm2niix: str,
                                                 tmp_path: Path) -> None:
    """The same comparison, no exceptions, for both converters: every case where dcm2niix's output
    agrees with the ground truth (display values, ``-p n``), ours agrees too."""
    dcm2niix_passes = []
    for case in D2N_CASES:
        out = tmp_path / case
        out.mkdir(parents=True)
        subprocess.run([dcm2niix, "-z", "n", "-p", "n", "-f", "%s_%p", "-o", str(out), str(D2N / case)],
                       capture_output=True, timeout=120, check=False)
        theirs = [p for p in out.glob("*.nii") if not p.name.endswith("_ADC.nii")]
        if len(theirs) == 1 and not gt_differences(theirs[0], case, exceptions=False):
            dcm2niix_passes.append(case)
            assert gt_differences(_main_image(d2n_outputs[case]), case, exceptions=False) == [], case
    assert len(dcm2niix_passes) >= 13, dcm2niix_passes  # GE (5), Philips classic and enhanced fMRI, trace DWI (6), Siemens classic fMRI (2)


# --- dcm2niix's validation suites -------------------------------------------------------------------

QA_SUITES = ("dcm_qa_nih", "dcm_qa_philips_dwi", "dcm_qa_ts", "dcm_qa_12bit", "dcm_qa_enh", "dcm_qa_stc")

#: References whose DICOM input is not in this copy of the suite (named so none is silently dropped).
QA_WITHOUT_INPUT = {
    "dcm_qa_enh": {"Canon_DTI_PA-ortho_9000", "Philips_WIP_AnatBrain_T1W3D_301", "Philips_WIP_AnatBrain_T1W3D_301_ph",
                   "Philips_WIP_resting_state_1001_e1", "Philips_WIP_resting_state_1001_e2"},
    "dcm_qa_philips_dwi": {"701_DTI_Biobank_2mm_MB3S2_EPI_enh"},  # its In/enh holds a presentation state and raw data only
}


@pytest.fixture(scope="module")
def qa_outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("qa")
    out = {}
    for suite in QA_SUITES:
        if (PEERS / suite / "In").is_dir():
            results = convert(PEERS / suite / "In", root / suite)
            assert all(r.status == "converted" for r in results), [r.message for r in results]
            out[suite] = root / suite
    return out


def _qa_refs() -> list[tuple[str, str]]:
    return [(suite, p.stem) for suite in QA_SUITES for p in sorted((PEERS / suite / "Ref").glob("*.json"))
            if (PEERS / suite / "Ref").is_dir()]


def _dcm2niix_affine(ours: nib.Nifti1Image) -> np.ndarray:
    """The affine dcm2niix writes for a 2D acquisition converted by volume to ``ours``: the same grid
    with rows stored bottom to top (checked against every reference with its NIfTI, below)."""
    flip = np.eye(4)
    flip[1, 1], flip[1, 3] = -1, ours.shape[1] - 1
    return ours.affine @ flip


@pytest.mark.parametrize(("suite", "name"), _qa_refs())
def test_qa_reference(qa_outputs: dict[str, Path], suite: str, name: str) -> None:
    """Grid, values, b-values, world gradients and sidecar fields (SliceTiming by slice position,
    PhaseEncodingDirection as a world direction, times within 3 ms) as dcm2niix wrote them."""
    if name in QA_WITHOUT_INPUT.get(suite, set()):
        pytest.skip(f"{suite}/Ref/{name}: its DICOM input is not in this copy of the suite")
    ref_json = PEERS / suite / "Ref" / f"{name}.json"
    ref = json.loads(ref_json.read_text())
    ours_json = matching_sidecar(ref, qa_outputs[suite])
    image = ours_json.with_suffix(".nii.gz")
    ours_img = nib.load(str(image))
    ref_nii = ref_json.with_suffix(".nii")
    problems = []
    if ref_nii.exists():
        ref_img = nib.load(str(ref_nii))
        a, b = load_canonical(image), load_canonical(ref_nii)
        problems += compare_grids(a, b) or compare_values(a[0], b[0])
        ref_affine, ref_shape = ref_img.affine, ref_img.shape
    else:
        ref_affine, ref_shape = _dcm2niix_affine(ours_img), ours_img.shape
    problems += compare_sidecars(json.loads(ours_json.read_text()), ours_img.affine, ours_img.shape, ref, ref_affine, ref_shape)
    ref_bval = ref_json.with_suffix(".bval")
    if ref_bval.exists():
        stem = _stem(image)
        bvals, ref_bvals = read_bval(stem.with_suffix(".bval")), read_bval(ref_bval)
        problems += compare_bvals(bvals, ref_bvals, atol=1e-3)
        weighted = ref_bvals > 1
        problems += compare_bvecs(read_bvec(stem.with_suffix(".bvec"))[:, weighted], ours_img.affine,
                                  read_bvec(ref_json.with_suffix(".bvec"))[:, weighted], ref_affine)
        assert not read_bvec(stem.with_suffix(".bvec"))[:, bvals == 0].any(), "b=0 volumes get zero vectors"
    assert problems == []


def test_qa_references_lay_2d_rows_bottom_to_top(qa_outputs: dict[str, Path]) -> None:
    """The reference affine used where a suite lacks dcm2niix's NIfTI is what dcm2niix writes: checked
    on every 2D acquisition whose NIfTI is there."""
    checked = 0
    for suite, name in _qa_refs():
        ref_nii = PEERS / suite / "Ref" / f"{name}.nii"
        ref = json.loads(ref_nii.with_suffix(".json").read_text()) if ref_nii.exists() else {}
        if not ref or ref.get("MRAcquisitionType") != "2D":
            continue
        ours = nib.load(str(matching_sidecar(ref, qa_outputs[suite]).with_suffix(".nii.gz")))
        np.testing.assert_allclose(_dcm2niix_affine(ours), nib.load(str(ref_nii)).affine, atol=1e-3)
        checked += 1
    assert checked >= 10


# --- never silently wrong -----------------------------------------------------------------------------

ISOTROPIC_IMAGE_TYPES = {"TRACEW", "TRACE", "ISOTROPIC", "ADC", "EADC", "FA"}
"""ImageType values of the images a scanner computed from the diffusion-weighted ones."""


#: Private elements read below: tag -> how their raw bytes are stored ("text" or a numpy dtype).
PRIVATE_DIFFUSION = {0x0019100C: "text", 0x20011003: "<f4", 0x00431039: "text", 0x0019100E: "<f8",
                     0x200510B0: "<f4", 0x200510B1: "<f4", 0x200510B2: "<f4", 0x001910BB: "text",
                     0x001910BC: "text", 0x001910BD: "text", 0x20011004: "text"}


def _private(ds: Any, tag: int) -> list[Any] | None:
    """A private element's values (numbers, or one text), raw bytes decoded by how the vendor stores them."""
    if tag not in ds:
        return None
    value, kind = ds[tag].value, PRIVATE_DIFFUSION[tag]
    if isinstance(value, bytes):
        if kind != "text":
            return np.frombuffer(value, kind).tolist()
        value = value.decode(errors="replace").strip("\x00 ")
        return value.split("\\") if tag != 0x20011004 else [value]
    return list(value) if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue" else [value]


def _isotropic_marks(folder: Path) -> dict[int | None, set[int]]:
    """SeriesNumber -> the b-values (rounded) of images the files mark isotropic, read here with
    pydicom independently of volume: DiffusionDirectionality ISOTROPIC, Philips' (2001,1004) ``I``,
    a derived ImageType, or a gradient element (standard, Siemens, Philips, GE) that is all zeros."""
    import pydicom

    marks: dict[int | None, set[int]] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        try:
            raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else None
            ds = pydicom.dcmread(io.BytesIO(raw) if raw else path, stop_before_pixels=True, force=True)
        except Exception:  # noqa: BLE001 - not DICOM
            continue
        items = []
        shared = (ds.get("SharedFunctionalGroupsSequence") or [None])[0]
        for fg in ds.get("PerFrameFunctionalGroupsSequence") or []:
            group = next((g for g in (fg, shared) if g is not None and g.get("MRDiffusionSequence")), None)
            if group is not None:
                items.append(group.MRDiffusionSequence[0])
        if "PerFrameFunctionalGroupsSequence" not in ds:
            items = [ds]
        for item in items:
            b = item.get("DiffusionBValue")
            for tag in (0x0019100C, 0x20011003, 0x00431039):
                b = b if b is not None or _private(ds, tag) is None else float(_private(ds, tag)[0]) % 1_000_000_000
            if b is None or float(b) <= 0:
                continue
            inner = item.get("DiffusionGradientDirectionSequence")
            vectors = [item.get("DiffusionGradientOrientation"), inner[0].get("DiffusionGradientOrientation") if inner else None,
                       _private(ds, 0x0019100E)]
            vectors += [[(_private(ds, t) or [None])[0] for t in tags]
                        for tags in ((0x200510B0, 0x200510B1, 0x200510B2), (0x001910BB, 0x001910BC, 0x001910BD))]
            zero = any(v is not None and None not in v and not np.any(np.asarray(v, float)) for v in vectors)
            marked = (str(item.get("DiffusionDirectionality", "")).upper() == "ISOTROPIC"
                      or (_private(ds, 0x20011004) or [""])[0].strip().upper() == "I"
                      or bool(ISOTROPIC_IMAGE_TYPES & {str(v).upper() for v in ds.get("ImageType", [])}) or zero)
            if marked:
                number = ds.get("SeriesNumber")
                marks.setdefault(None if number is None else int(number), set()).add(round(float(b)))
    return marks


def test_no_weighted_volume_gets_a_zero_direction_its_files_do_not_give(
        d2n_outputs: dict[str, Path], qa_outputs: dict[str, Path]) -> None:
    """Every diffusion series of the peers' suites, as volume writes it: a b>0 volume whose .bvec
    vector is zero is one its files mark isotropic (a trace image); no direction is ever zero-filled."""
    sources = [(folder, D2N / case) for case, folder in d2n_outputs.items()]
    sources += [(folder, PEERS / suite / "In") for suite, folder in qa_outputs.items()]
    checked = 0
    for out, source in sources:
        marks: dict[Any, set[int]] | None = None
        for bval_path in sorted(out.glob("*.bval")):
            sidecar = json.loads(bval_path.with_suffix(".json").read_text())
            assert bval_path.with_suffix(".bvec").exists() or "bvec" in sidecar.get("OmittedFields", {}), bval_path
            if not bval_path.with_suffix(".bvec").exists():
                continue
            bvals, bvecs = read_bval(bval_path), read_bvec(bval_path.with_suffix(".bvec"))
            zero = [round(float(b)) for b, v in zip(bvals, bvecs.T, strict=True) if b > 0 and not np.any(v)]
            if zero:
                marks = _isotropic_marks(source) if marks is None else marks
                assert set(zero) <= marks.get(sidecar.get("SeriesNumber"), set()), (bval_path, zero)
            checked += 1
    assert checked >= 10


def test_philips_dwi_volume_order_follows_diffusion_order() -> None:
    """dcm_qa_philips_dwi's classic files: 17 volumes in the order of DiffusionOrder (2005,1596), the
    order they were acquired in (four b~0 volumes among them), named in the sidecar."""
    found = volume.scan(PEERS / "dcm_qa_philips_dwi" / "In")
    (stack,) = found.stacks
    assert stack.frame_order == "DiffusionOrder" and stack.n_frames == 17 and stack.n_slices == 32
    orders = [stack.frames[t * stack.n_slices].mr.key("DiffusionOrder") for t in range(17)]
    assert orders == sorted(orders)
    assert stack.summary == "DWI b=0,1000 (12 directions)"

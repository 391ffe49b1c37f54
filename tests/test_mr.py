"""fMRI and diffusion series built with known geometry and known weighting, vendor by vendor.

Each test writes a small series whose every value and every gradient is chosen here, then checks
what volume makes of it: which volume each image lands in (values are ``field + 100 * t`` for
volume ``t``), the ``.bval``/``.bvec`` as world directions, the scaling of Philips values, the
messages for incomplete series. dcm2niix, where it is installed, converts the same files and must
agree in world space.
"""

from __future__ import annotations

import gzip
import json
import subprocess
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from peers import bvec_world, load_canonical, read_bval, read_bvec
from synth import (
    AXIAL,
    CORONAL,
    SAGITTAL,
    check_volume_against_field,
    linear_field,
    oblique_iop,
    write_enhanced_4d,
    write_series,
)

import volume
from volume.cli import main
from volume.jobs.convert import convert

SERIES_UID = "1.2.826.0.1.3680043.8.498.1414"


def _write_4d(folder: Path, n_volumes: int, extra_of, *, shape=(4, 6, 5), iop=AXIAL, **kw) -> None:
    """``n_volumes`` volumes at the same positions; ``extra_of(t, k)`` gives the tags of volume t, slice k."""
    for t in range(n_volumes):
        write_series(folder, shape=shape, iop=iop, series_uid=SERIES_UID, seed=1000 + t, instance_numbers="none",
                     field_fn=lambda x, y, z, t=t: linear_field(x, y, z) + 100 * t,
                     extra=lambda k, t=t: extra_of(t, k), **kw)


def _check_volumes(vol: volume.Volume, order: list[int]) -> None:
    """Volume ``i`` of ``vol`` holds what was written as volume ``order[i]``."""
    assert vol.n_frames == len(order)
    for i, t in enumerate(order):
        check_volume_against_field(vol.frame(i), lambda x, y, z, t=t: linear_field(x, y, z) + 100 * t)


# --- which volume an image belongs to ----------------------------------------------------------------


@pytest.mark.parametrize("layout", ["volume-major", "slice-major"])
def test_instance_number_orders_volumes_as_the_last_resort(tmp_path: Path, layout: str) -> None:
    """GE numbers images volume by volume, Philips classic position by position; nothing else says
    which volume an image is in. Either way InstanceNumber orders the volumes, and ls says so."""
    n_t, n_s = 3, 4

    def extra(t: int, k: int) -> dict:
        number = t * n_s + k + 1 if layout == "volume-major" else k * n_t + t + 1
        return {"InstanceNumber": number}

    _write_4d(tmp_path, n_t, extra)
    stack = volume.scan(tmp_path).stacks[0]
    assert stack.frame_order == "InstanceNumber"
    assert stack.notes == ["3 volumes ordered by InstanceNumber (nothing else in the files orders them)"]
    _check_volumes(volume.load(stack), [0, 1, 2])


def test_instance_numbers_that_mix_volumes_are_refused(tmp_path: Path) -> None:
    """InstanceNumbers that are neither volume by volume nor position by position order nothing."""
    numbers = {(0, 0): 1, (0, 1): 5, (0, 2): 3, (0, 3): 8, (1, 0): 2, (1, 1): 4, (1, 2): 7, (1, 3): 6}
    _write_4d(tmp_path, 2, lambda t, k: {"InstanceNumber": numbers[t, k]})
    stack = volume.scan(tmp_path).stacks[0]
    assert "nothing orders them" in stack.problem and "InstanceNumber" in stack.problem
    with pytest.raises(volume.NotAVolumeError, match="2 images share each position"):
        volume.load(stack)


def test_diffusion_weighting_labels_volumes_in_acquisition_order(tmp_path: Path) -> None:
    """Without an ordering field, the b-value and gradient say which images form a volume; volumes
    then come in the order they were acquired (AcquisitionTime), not sorted by b-value."""
    weights = [(1000.0, (0.0, 1.0, 0.0)), (0.0, (0.0, 0.0, 0.0)), (1000.0, (1.0, 0.0, 0.0))]
    _write_4d(tmp_path, 3, lambda t, k: {"DiffusionBValue": weights[t][0], "DiffusionGradientOrientation": list(weights[t][1]),
                                         "AcquisitionTime": f"1200{10 + 3 * t:02d}.{k}"})
    stack = volume.scan(tmp_path).stacks[0]
    assert stack.frame_order == "DiffusionBValue,DiffusionGradientOrientation"
    vol = volume.load(stack)
    _check_volumes(vol, [0, 1, 2])
    assert vol.meta["diffusion"] == {"bvals": [1000.0, 0.0, 1000.0], "bvecs_lps": [[0.0, 1.0, 0.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]}


def test_philips_diffusion_order_beats_scrambled_instance_numbers(tmp_path: Path) -> None:
    """Philips (R5.6 and later) writes the acquisition order of each DWI volume in DiffusionOrder
    (2005,1596); its InstanceNumbers may be scrambled."""
    rng = np.random.default_rng(3)
    numbers = rng.permutation(12) + 1

    def extra(t: int, k: int) -> dict:
        return {"InstanceNumber": int(numbers[t * 4 + k])}

    _write_4d(tmp_path, 3, extra)
    order = [2, 0, 1]  # volume t was acquired order[t]-th
    for p in sorted(tmp_path.iterdir()):
        ds = pydicom.dcmread(p)
        written_as = int(round(float(np.median(ds.pixel_array - _field_of(ds))) / 100))  # values: field + 100 t
        ds.add_new(0x20050015, "LO", "Philips MR Imaging DD 006")  # the block Philips writes DiffusionOrder in
        ds.add_new(0x20051596, "IS", order[written_as] + 1)
        ds.save_as(p)
    stack = volume.scan(tmp_path).stacks[0]
    assert stack.frame_order == "DiffusionOrder"
    _check_volumes(volume.load(stack), [1, 2, 0])


def _field_of(ds: pydicom.Dataset) -> np.ndarray:
    """``linear_field`` at the pixels of one written image."""
    iop = np.asarray(ds.ImageOrientationPatient, float)
    ipp = np.asarray(ds.ImagePositionPatient, float)
    dr, dc = (float(v) for v in ds.PixelSpacing)
    r, c = np.meshgrid(np.arange(ds.Rows), np.arange(ds.Columns), indexing="ij")
    p = ipp + (c * dc)[..., None] * iop[:3] + (r * dr)[..., None] * iop[3:]
    return linear_field(p[..., 0], p[..., 1], p[..., 2])


def test_a_missing_image_names_the_incomplete_volume(tmp_path: Path) -> None:
    """One image of volume 2 lost: one clear line naming that volume and where its slice is missing,
    and nothing written."""
    _write_4d(tmp_path / "in", 3, lambda t, k: {"AcquisitionNumber": t + 1})
    victim = next(p for p in sorted((tmp_path / "in").iterdir())
                  if pydicom.dcmread(p).AcquisitionNumber == 2 and abs(float(pydicom.dcmread(p).ImagePositionPatient[2]) - 26.0) < 1e-6)
    victim.unlink()
    stack = volume.scan(tmp_path / "in").stacks[0]
    assert stack.problem.startswith("volume AcquisitionNumber 2 has 3 of 4 slices, none at 26.00 mm")
    assert main(["convert", str(tmp_path / "in"), "-o", str(tmp_path / "out")]) == 1
    assert not list((tmp_path / "out").glob("*.nii*"))


def test_enhanced_dimension_index_values_order_volumes(tmp_path: Path) -> None:
    """Enhanced files: DimensionIndexValues less the index that only says where a frame lies."""
    info = write_enhanced_4d(tmp_path / "e.dcm", shape=(3, 4, 6, 5))
    ds = pydicom.dcmread(info.paths[0])
    for fg in ds.PerFrameFunctionalGroupsSequence:
        fc = fg.FrameContentSequence[0]
        fc.DimensionIndexValues = [1, int(fc.InStackPositionNumber), 4 - int(fc.TemporalPositionIndex)]  # time reversed
        del fc.TemporalPositionIndex
    ds.save_as(info.paths[0])
    stack = volume.scan(tmp_path).stacks[0]
    assert stack.frame_order == "DimensionIndexValues"
    _check_volumes(volume.load(stack), [2, 1, 0])


# --- diffusion files --------------------------------------------------------------------------------

DIRECTIONS = [(0.0, 0.0, 0.0), (1.0, 0.0, 0.0), (0.0, 0.6, 0.8), (-0.48, 0.6, 0.64)]
"""Gradient directions (patient LPS) of the synthetic DWI: b=0 first."""


def _dwi(folder: Path, *, iop=oblique_iop(AXIAL, degrees=11.0), vendor: str = "standard", trace: bool = False) -> None:
    """A DWI of ``DIRECTIONS`` (b=1000, b=0 first) with the weighting in the standard tags or a
    vendor's private ones; ``trace`` appends a b=1000 isotropic (zero vector) volume."""
    volumes = list(DIRECTIONS) + ([(0.0, 0.0, 0.0)] if trace else [])

    def extra(t: int, k: int) -> dict:
        b = 0.0 if t == 0 else 1000.0
        tags = {"InstanceNumber": t * 4 + k + 1, "ImageType": ["ORIGINAL", "PRIMARY", "DIFFUSION", "NONE"]}
        if vendor == "standard":
            tags.update(DiffusionBValue=b, DiffusionGradientOrientation=list(volumes[t]), Manufacturer="SynthCo")
        return tags

    _write_4d(folder, len(volumes), extra, iop=iop)
    if vendor == "standard":
        return
    for p in sorted(folder.iterdir()):
        ds = pydicom.dcmread(p)
        t = (int(ds.InstanceNumber) - 1) // 4
        b, g = (0.0 if t == 0 else 1000.0), volumes[t]
        if vendor == "siemens":
            ds.Manufacturer = "SIEMENS"
            block = ds.private_block(0x0019, "SIEMENS MR HEADER", create=True)
            block.add_new(0x0C, "IS", str(int(b)))
            block.add_new(0x0E, "FD", list(g))
        elif vendor == "philips":
            ds.Manufacturer = "Philips Medical Systems"
            ds.private_block(0x2001, "Philips Imaging DD 001", create=True).add_new(0x03, "FL", b)
            block = ds.private_block(0x2005, "Philips MR Imaging DD 001", create=True)
            for element, value in zip((0xB0, 0xB1, 0xB2), g, strict=True):
                block.add_new(element, "FL", value)
        ds.save_as(p)


@pytest.mark.parametrize("vendor", ["standard", "siemens", "philips"])
@pytest.mark.parametrize("iop", [oblique_iop(AXIAL, degrees=11.0), SAGITTAL, oblique_iop(CORONAL, degrees=23.0)],
                         ids=["oblique-axial", "sagittal", "oblique-coronal"])
def test_bvec_files_give_the_scanner_gradient_in_world_space(tmp_path: Path, vendor: str, iop) -> None:
    """FSL's convention (voxel axes of the written file, x negated when its determinant is positive)
    turned back into world directions gives exactly the gradient the files carry, whatever the
    slice orientation; b=0 gets a zero vector; the sidecar names the ordering key."""
    _dwi(tmp_path / "in", iop=iop, vendor=vendor)
    (result,) = convert(tmp_path / "in", tmp_path / "out")
    image = Path(result.files[0])
    stem = image.with_name(image.name.split(".nii")[0])
    assert [Path(f).suffix for f in result.files] == [".gz", ".bval", ".bvec", ".json"]
    bvals, bvecs = read_bval(stem.with_suffix(".bval")), read_bvec(stem.with_suffix(".bvec"))
    assert bvals.tolist() == [0, 1000, 1000, 1000]
    world = bvec_world(bvecs, nib.load(str(image)).affine)
    expected_ras = np.array(DIRECTIONS) * [-1, -1, 1]
    np.testing.assert_allclose(world, expected_ras / np.maximum(np.linalg.norm(expected_ras, axis=1, keepdims=True), 1e-12),
                               atol=2e-6)
    assert stem.with_suffix(".bval").read_text() == "0 1000 1000 1000\n"
    sidecar = json.loads(stem.with_suffix(".json").read_text())
    assert sidecar["VolumesOrderedBy"] in ("DiffusionBValue,DiffusionGradientOrientation",)


def test_bvecs_agree_with_dcm2niix(tmp_path: Path, dcm2niix: str) -> None:
    """The same files through dcm2niix: the same b-values and the same world gradient directions."""
    _dwi(tmp_path / "in", iop=oblique_iop(SAGITTAL, degrees=17.0), vendor="siemens")
    (result,) = convert(tmp_path / "in", tmp_path / "ours")
    (tmp_path / "theirs").mkdir()
    subprocess.run([dcm2niix, "-z", "n", "-f", "x", "-o", str(tmp_path / "theirs"), str(tmp_path / "in")], check=True,
                   capture_output=True)
    ours = Path(result.files[0])
    stem = ours.with_name(ours.name.split(".nii")[0])
    theirs = tmp_path / "theirs" / "x"
    np.testing.assert_allclose(read_bval(stem.with_suffix(".bval")), read_bval(theirs.with_suffix(".bval")))
    weighted = read_bval(stem.with_suffix(".bval")) > 0
    a = bvec_world(read_bvec(stem.with_suffix(".bvec")), nib.load(str(ours)).affine)[weighted]
    b = bvec_world(read_bvec(theirs.with_suffix(".bvec")), nib.load(str(theirs.with_suffix(".nii"))).affine)[weighted]
    np.testing.assert_allclose(a, b, atol=1e-5)
    ca, cb = load_canonical(ours), load_canonical(theirs.with_suffix(".nii"))
    np.testing.assert_allclose(ca[1], cb[1], atol=1e-3)
    np.testing.assert_array_equal(ca[0], cb[0])


def test_a_trace_volume_goes_to_its_own_file(tmp_path: Path) -> None:
    """A b=1000 volume without a direction (the isotropic image a scanner appends) is not a direction
    of the 4D series: it becomes its own stack (``_trace``), and the DWI's bval/bvec leave it out."""
    _dwi(tmp_path / "in", trace=True)
    found = volume.scan(tmp_path / "in")
    by_label = {s.label: s for s in found.stacks}
    assert set(by_label) == {"", "trace"}
    assert by_label[""].summary == "DWI b=0,1000 (3 directions)" and by_label[""].n_frames == 4
    assert by_label["trace"].content == "trace" and by_label["trace"].n_frames == 1
    check_volume_against_field(volume.load(by_label["trace"]), lambda x, y, z: linear_field(x, y, z) + 400)
    results = convert(tmp_path / "in", tmp_path / "out")
    names = sorted(Path(f).name for r in results for f in r.files)
    assert "7_synthetic_trace.nii.gz" in names and "7_synthetic.bval" in names
    assert not any(n.startswith("7_synthetic_trace.bv") for n in names)


def test_ge_gradients_follow_the_image_frame_rule_like_dcm2niix(tmp_path: Path, dcm2niix: str) -> None:
    """GE writes gradients in a frame tied to the image (0019,10BB-BD) and the b-value in (0043,1039)
    (plus 10^9 for some sequences); dcm2niix's rule turns them into directions. Both converters give
    the same world directions, for axial, sagittal and coronal slices, phase encoded along rows or
    columns."""
    raw = [(0.0, 0.0, 0.0), (0.6, 0.48, 0.64), (1.0, 0.0, 0.0)]
    for name, iop in (("ax", AXIAL), ("sag", SAGITTAL), ("cor", CORONAL)):
        for phase in ("COL", "ROW"):
            src = tmp_path / f"{name}_{phase}"
            _write_4d(src, 3, lambda t, k, phase=phase: {
                "InstanceNumber": t * 4 + k + 1, "Manufacturer": "GE MEDICAL SYSTEMS",
                "InPlanePhaseEncodingDirection": phase, "PatientPosition": "HFS"}, iop=iop)
            for p in sorted(src.iterdir()):
                ds = pydicom.dcmread(p)
                t = (int(ds.InstanceNumber) - 1) // 4
                ds.private_block(0x0043, "GEMS_PARM_01", create=True).add_new(
                    0x39, "IS", [0 if t == 0 else 1_000_001_000, 8, 0, 0])
                block = ds.private_block(0x0019, "GEMS_ACQU_01", create=True)
                for element, value in zip((0xBB, 0xBC, 0xBD), raw[t], strict=True):
                    block.add_new(element, "DS", value)
                ds.save_as(p)
            (result,) = convert(src, tmp_path / "ours" / src.name)
            (tmp_path / "theirs" / src.name).mkdir(parents=True)
            subprocess.run([dcm2niix, "-z", "n", "-f", "x", "-o", str(tmp_path / "theirs" / src.name), str(src)],
                           check=True, capture_output=True)
            ours = Path(result.files[0])
            stem = ours.with_name(ours.name.split(".nii")[0])
            theirs = tmp_path / "theirs" / src.name / "x"
            assert read_bval(stem.with_suffix(".bval")).tolist() == [0, 1000, 1000]
            a = bvec_world(read_bvec(stem.with_suffix(".bvec")), nib.load(str(ours)).affine)[1:]
            b = bvec_world(read_bvec(theirs.with_suffix(".bvec")), nib.load(str(theirs.with_suffix(".nii"))).affine)[1:]
            np.testing.assert_allclose(a, b, atol=1e-5, err_msg=src.name)


# --- Philips scaling ------------------------------------------------------------------------------


def _philips(folder: Path, *, rs: float, ri: float, ss: float | None, rwv: tuple[float, float] | None = None) -> None:
    write_series(folder, shape=(3, 5, 4), slopes=rs, intercepts=ri, extra={"Manufacturer": "Philips Medical Systems"})
    for p in sorted(folder.iterdir()):
        ds = pydicom.dcmread(p)
        if ss is not None:
            ds.private_block(0x2005, "Philips MR Imaging DD 001", create=True).add_new(0x0E, "FL", ss)
        if rwv is not None:
            item = pydicom.Dataset()
            item.RealWorldValueSlope, item.RealWorldValueIntercept = rwv
            item.LUTLabel = "Philips"
            ds.RealWorldValueMappingSequence = [item]
        ds.save_as(p)


def test_philips_precise_values_by_default_display_on_request(tmp_path: Path) -> None:
    """Philips' floating-point values (stored x RS + RI) / (RS x SS) by default, as dcm2niix writes
    them; DICOM's display values with ``scaling="display"``; the sidecar records the factors."""
    rs, ri, ss = 1.5, -20.0, 0.025
    _philips(tmp_path / "in", rs=rs, ri=ri, ss=ss)
    display = volume.load(tmp_path / "in", scaling="display")
    precise = volume.load(tmp_path / "in")
    np.testing.assert_allclose(np.asarray(precise.array), np.asarray(display.array) / (rs * ss), rtol=1e-6)
    check_volume_against_field(display, atol=1.0)
    assert main(["convert", str(tmp_path / "in"), "-o", str(tmp_path / "out")]) == 0
    sidecar = json.loads(next((tmp_path / "out").glob("*.json")).read_text())
    assert (sidecar["PhilipsRescaleSlope"], sidecar["PhilipsRescaleIntercept"], sidecar["PhilipsScaleSlope"]) == (rs, ri, ss)
    assert sidecar["UsePhilipsFloatNotDisplayScaling"] == 1
    assert main(["convert", str(tmp_path / "in"), "-o", str(tmp_path / "disp"), "--philips-scaling", "display"]) == 0
    img = nib.load(str(next((tmp_path / "disp").glob("*.nii.gz"))))
    np.testing.assert_allclose(np.asarray(img.get_fdata()).transpose(2, 1, 0), np.asarray(display.array), rtol=1e-6)
    assert json.loads(next((tmp_path / "disp").glob("*.json")).read_text())["UsePhilipsFloatNotDisplayScaling"] == 0


def test_philips_real_world_value_mapping_stands_in_for_an_absent_rescale(tmp_path: Path) -> None:
    """A RealWorldValueMapping (slope 5.988, no Rescale Slope) gives the values (as on the knee of
    ../shared/data, and as dcm2niix writes them); other vendors' mappings are left alone."""
    _philips(tmp_path / "p", rs=1.0, ri=0.0, ss=None, rwv=(5.988, 2.0))
    display = volume.load(tmp_path / "p", scaling="display")
    np.testing.assert_allclose(np.asarray(volume.load(tmp_path / "p").array), np.asarray(display.array) * 5.988 + 2.0,
                               rtol=1e-6)
    write_series(tmp_path / "other", shape=(3, 5, 4), extra={"Manufacturer": "SynthCo"})
    for p in sorted((tmp_path / "other").iterdir()):
        ds = pydicom.dcmread(p)
        item = pydicom.Dataset()
        item.RealWorldValueSlope, item.RealWorldValueIntercept = 5.988, 0.0
        ds.RealWorldValueMappingSequence = [item]
        ds.save_as(p)
    np.testing.assert_array_equal(np.asarray(volume.load(tmp_path / "other").array),
                                  np.asarray(volume.load(tmp_path / "other", scaling="display").array))


def test_unknown_scaling_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _philips(tmp_path / "in", rs=1.5, ri=0.0, ss=0.5)
    with pytest.raises(volume.UsageError, match="scaling must be one of precise, display"):
        volume.load(tmp_path / "in", scaling="raw")
    assert main(["convert", str(tmp_path / "in"), "-o", str(tmp_path / "o"), "--philips-scaling", "raw"]) == 2
    assert "--philips-scaling" in capsys.readouterr().err


# --- files as archives store them ---------------------------------------------------------------


def test_gzip_compressed_files_load_like_plain_ones(tmp_path: Path) -> None:
    """Each file gzip-compressed (as some archives and test suites keep them): the same volume;
    a corrupt one is skipped with its reason, the rest still load."""
    write_series(tmp_path / "plain", shape=(5, 6, 7), iop=oblique_iop())
    write_enhanced_4d(tmp_path / "plain_mf" / "e.dcm", shape=(2, 3, 4, 5))
    for src in ("plain", "plain_mf"):
        (tmp_path / f"gz_{src}").mkdir()
        for p in (tmp_path / src).iterdir():
            (tmp_path / f"gz_{src}" / (p.name + ".gz")).write_bytes(gzip.compress(p.read_bytes()))
        a, b = volume.load(tmp_path / src), volume.load(tmp_path / f"gz_{src}")
        np.testing.assert_array_equal(np.asarray(a.array), np.asarray(b.array))
        np.testing.assert_allclose(a.affine, b.affine)
    broken = tmp_path / "gz_plain" / "broken.gz"
    broken.write_bytes(gzip.compress((tmp_path / "plain").iterdir().__next__().read_bytes())[:300])
    found = volume.scan(tmp_path / "gz_plain")
    assert found.report.skipped == {"truncated or corrupt": 1} and len(found.stacks) == 1


def test_an_oversized_gzip_member_is_refused_not_inflated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A gzip file that inflates beyond the limit (a decompression bomb) is skipped as corrupt."""
    from volume.dicom import files

    info = write_series(tmp_path / "s", shape=(1, 40, 40))
    gz = tmp_path / "s" / "big.gz"
    gz.write_bytes(gzip.compress(info.paths[0].read_bytes()))
    info.paths[0].unlink()
    monkeypatch.setattr(files, "MAX_GUNZIP_BYTES", 1000)
    files.gunzip_cached.cache_clear()
    assert volume.scan(tmp_path / "s").report.skipped == {"truncated or corrupt": 1}


# --- Siemens protocol and CSA headers ----------------------------------------------------------------


@pytest.mark.parametrize(("mode", "n", "expected"), [
    (1, 4, [0, 1, 2, 3]), (2, 4, [3, 2, 1, 0]), (4, 5, [0, 3, 1, 4, 2]), (4, 4, [2, 0, 3, 1]),
])
def test_protocol_slice_times_follow_siemens_slice_orders(mode: int, n: int, expected: list[int]) -> None:
    """Ascending, descending, interleaved (odd count: 0, 2, 4... first; even: 1, 3... first), spread
    over TR less the delay in TR; none for multiband."""
    from volume.dicom.siemens import protocol_slice_times

    protocol = {"sSliceArray.lSize": str(n), "sSliceArray.ucMode": hex(mode), "lDelayTimeInTR": "400000",
                **{f"sSliceArray.asSlice[{i}].sPosition.dTra": str(3.0 * i) for i in range(n)},
                "sSliceArray.asSlice[0].sNormal.dTra": "1"}
    step = (2400 - 400) / n / 1000
    assert protocol_slice_times(protocol, 2400) == pytest.approx([k * step for k in expected])
    assert protocol_slice_times({**protocol, "sSliceAcceleration.lMultiBandFactor": "2"}, 2400) is None


def test_csa_headers_read_as_nibabel_reads_them() -> None:
    """volume's CSA reader gives the tags and values nibabel's does, on every Siemens file of the
    peers' suites (texts without their trailing blanks)."""
    import warnings

    from conftest import DATA

    from volume.dicom.siemens import parse_csa

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from nibabel.nicom import csareader
    files = sorted(p for p in (DATA / "peers").rglob("*") if p.is_file() and p.stat().st_size > 1000)
    checked = 0
    for path in files:
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception:  # noqa: BLE001 - not DICOM
            continue
        for tag, which in ((0x00291010, "image"), (0x00291020, "series")):
            if tag not in ds:
                continue
            theirs = csareader.get_csa_header(ds, which)
            if theirs is None:  # nibabel wants the private creator "SIEMENS CSA HEADER" at (0029,0010)
                continue
            expected = {name: [v.strip() if isinstance(v, str) else "" if v == b"" else v for v in t["items"]]
                        for name, t in theirs["tags"].items()}
            assert parse_csa(ds[tag].value) == expected, (path, which)
            checked += 1
    if not checked:
        pytest.skip("no Siemens files with CSA headers in ../shared/data/peers")
    assert checked >= 10


def test_ls_says_what_a_stack_is(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``volume ls``: a DWI with its shells and directions, the key that ordered its volumes."""
    _dwi(tmp_path, trace=True)
    assert main(["ls", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "DWI b=0,1000 (3 directions)" in out and "trace" in out
    assert "4 volumes ordered by DiffusionBValue,DiffusionGradientOrientation" in out
    assert main(["ls", "--json", str(tmp_path)]) == 0
    stacks = json.loads(capsys.readouterr().out)["stacks"]
    assert {s["content"] for s in stacks} == {"DWI b=0,1000 (3 directions)", "trace"}

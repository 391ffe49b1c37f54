"""The sidecar keys of each vendor's convention, from synthetic headers that hold exactly that
convention (issue 20): where each value comes from, what happens when it is missing, and the same
files through dcm2niix, whose sidecar volume's must agree with key by key."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pydicom
import pytest
from peers import whole_sidecar_differences
from pydicom.dataset import Dataset
from synth import siemens_csa, siemens_protocol, write_enhanced_4d, write_series

from volume.dicom.sidecar_keys import manufacturer_name, pulse_sequence_type
from volume.io.nifti import AcquisitionHeader, acquisition_header, nifti_header, slice_code_of, slice_order
from volume.jobs.convert import convert
from volume.phi import is_identity

TR_MS = 2000.0
"""RepetitionTime of the synthetic series."""

SLICES = 4
"""Slices of the synthetic series (one volume; two volumes where a test says so)."""


def _series(folder: Path, vendor: str, *, extra: dict[str, Any] | None = None,
            private: Callable[[Dataset, int], None] | None = None, volumes: int = 1,
            times: list[float] | None = None) -> Path:
    """A classic MR series of ``volumes`` x :data:`SLICES` images of ``vendor``; ``times`` are the
    slices' acquisition times (seconds within a volume), ``private`` adds a file's private elements."""
    base = {"Manufacturer": vendor, "RepetitionTime": f"{TR_MS:g}", "EchoTime": "30", "FlipAngle": "70",
            "InPlanePhaseEncodingDirection": "COL", "MRAcquisitionType": "2D", "ScanningSequence": "EP",
            "SequenceVariant": "SK", "ImageType": ["ORIGINAL", "PRIMARY", "M", "ND"], "SeriesNumber": 5,
            "ProtocolName": "proto", **(extra or {})}
    offsets = times or [k * TR_MS / 1000 / SLICES for k in range(SLICES)]
    positions = [[-30.0, -40.0, 20.0 + 3.0 * k] for k in range(SLICES)] * volumes

    def per_image(i: int) -> dict[str, Any]:
        t, k = divmod(i, SLICES)
        seconds = 12 * 3600 + t * TR_MS / 1000 + offsets[k]
        hh, rest = divmod(seconds, 3600)
        mm, ss = divmod(rest, 60)
        return {**base, "AcquisitionTime": f"{int(hh):02d}{int(mm):02d}{ss:09.6f}", "AcquisitionNumber": t + 1,
                "InstanceNumber": i + 1}

    info = write_series(folder, shape=(SLICES * volumes, 8, 8), positions=positions, extra=per_image,
                        names="ordered", instance_numbers="none")
    if private is not None:
        for i, path in enumerate(info.paths):
            ds = pydicom.dcmread(path)
            private(ds, i)
            ds.save_as(path, enforce_file_format=True)
    return folder


def _convert(folder: Path, out: Path) -> tuple[dict[str, Any], nib.Nifti1Image]:
    results = convert(folder, out)
    assert [r.status for r in results] == ["converted"], [r.message for r in results]
    (json_path,) = out.glob("*.json")
    return json.loads(json_path.read_text()), nib.load(str(json_path.with_suffix(".nii.gz")))


# --- Siemens -------------------------------------------------------------------------------------------

SIEMENS_PROTOCOL = {
    "sKSpace.lBaseResolution": "8", "sKSpace.dPhaseResolution": "0.75", "sKSpace.dPhaseOversamplingForDialog": "0.2",
    "sFastImaging.lEchoSpacing": "560", "sPat.lAccelFactPE": "2", "sPat.lAccelFact3D": "1", "sPat.lRefLinesPE": "24",
    "sPat.ucPATMode": "0x2", "ucCoilCombineMode": "0x2", "lDelayTimeInTR": "500000",
    "sCoilSelectMeas.aRxCoilSelectData[0].asList[0].sCoilElementID.tCoilID": '""Head_32""',
    "sCoilSelectMeas.aRxCoilSelectData[0].asList[1].sCoilElementID.tCoilID": '""Other""',
    "sCoilSelectMeas.sCoilStringForConversion": '""HEA;HEP""', "sProtConsistencyInfo.tBaselineString": '""N4_VB17A""',
    "tSequenceFileName": '""%SiemensSeq%\\\\ep2d_bold""', "sWipMemBlock.tFree": '""abc=1""',
    "sTXSPEC.asNucleusInfo[0].flReferenceAmplitude": "399.953", "sGRADSPEC.asGPAData[0].lOffsetX": "10",
    "sGRADSPEC.asGPAData[0].lOffsetZ": "30", "sGRADSPEC.alShimCurrent[0]": "1", "sGRADSPEC.alShimCurrent[4]": "5",
    "dAveragesDouble": "2.5",
}
"""A Siemens protocol: ShimSetting's Y offset and three second-order shims are left out (zero, as
Siemens writes them); only the VB baseline string gives ConsistencyInfo; the coil element's
name is one of several keys ending in tCoilID (the first counts)."""


def _siemens(ds: Dataset, i: int) -> None:
    ds.private_block(0x0029, "SIEMENS CSA HEADER", create=True).add_new(0x20, "OB", siemens_protocol(SIEMENS_PROTOCOL))
    ds.private_block(0x0029, "SIEMENS CSA HEADER", create=True).add_new(0x10, "OB", siemens_csa({
        "ImaRelTablePosition": ["0", "0", "-40"], "RealDwellTime": ["3400"], "PhaseEncodingDirectionPositive": ["1"],
        "BandwidthPerPixelPhaseEncode": ["25"]}))
    block = ds.private_block(0x0051, "SIEMENS MR HEADER", create=True)
    block.add_new(0x0E, "LO", "Tra>Cor(-6.2)")
    block.add_new(0x0F, "LO", "HE1-4")
    block.add_new(0x11, "LO", "p2")


def test_siemens_protocol_and_csa_keys(tmp_path: Path) -> None:
    """The protocol (CSA series header), the CSA image header and (0051,xxxx) give their keys."""
    meta, img = _convert(_series(tmp_path / "in", "SIEMENS", private=_siemens), tmp_path / "out")
    assert meta["Manufacturer"] == "Siemens"
    assert meta["BaseResolution"] == 8 and meta["RefLinesPE"] == 24
    assert meta["PhaseResolution"] == 0.75 and meta["PhaseOversampling"] == 0.2
    assert meta["VendorReportedEchoSpacing"] == pytest.approx(560e-6) and meta["DelayTime"] == pytest.approx(0.5)
    assert meta["TxRefAmp"] == pytest.approx(399.953) and meta["AveragesDouble"] == 2.5
    assert meta["ShimSetting"] == [10, 0, 30, 1, 0, 0, 0, 5]
    assert meta["ReceiveCoilName"] == "Head_32" and meta["ReceiveCoilActiveElements"] == "HEA;HEP"
    assert meta["CoilString"] == "HE1-4"  # (0051,100F) differs from the active elements
    assert meta["ConsistencyInfo"] == "N4_VB17A" and meta["WipMemBlock"] == "abc=1"
    assert meta["PulseSequenceDetails"] == "%SiemensSeq%\\\\ep2d_bold"
    assert meta["CoilCombinationMethod"] == "Adaptive Combine" and meta["MatrixCoilMode"] == "GRAPPA"
    assert meta["ParallelReductionFactorOutOfPlane"] == 1
    assert meta["TablePosition"] == [0, 0, 40]  # dcm2niix's sign: z from head to feet
    assert meta["DwellTime"] == pytest.approx(3.4e-6)
    assert meta["ImageOrientationText"] == "Tra>Cor(-6.2)"
    assert meta["NonlinearGradientCorrection"] is False  # ImageType ND
    assert meta["PulseSequenceType"] == "Gradient Echo EPI"
    # 1 / (BandwidthPerPixelPhaseEncode x ReconMatrixPE / ParallelReductionFactorInPlane x (1 + oversampling))
    assert meta["DerivedVendorReportedEchoSpacing"] == pytest.approx(1 / (25 * 8 / 2 * 1.2))
    assert meta["EffectiveEchoSpacing"] == pytest.approx(1 / (25 * 8))


def test_siemens_without_its_private_headers_has_no_protocol_keys(tmp_path: Path) -> None:
    """Anonymized Siemens files (no CSA headers): the protocol's keys are left out, never guessed."""
    meta, _ = _convert(_series(tmp_path / "in", "SIEMENS"), tmp_path / "out")
    for key in ("BaseResolution", "ShimSetting", "ReceiveCoilName", "MatrixCoilMode", "TablePosition", "DwellTime",
                "ConsistencyInfo", "TxRefAmp", "DerivedVendorReportedEchoSpacing"):
        assert key not in meta, key
    assert meta["Manufacturer"] == "Siemens" and meta["PulseSequenceType"] == "Gradient Echo EPI"


@pytest.mark.parametrize(("element", "expected"), [(None, True), ("NONE", False)])
def test_siemens_mt_state_from_the_dicom_element_before_the_protocol(tmp_path: Path, element: str | None,
                                                                    expected: bool) -> None:
    """MTState comes from (0018,9020) when the file has it, else from the protocol's sPrepPulses.ucMTC
    (dcm2niix's order too)."""
    def private(ds: Dataset, i: int) -> None:
        ds.private_block(0x0029, "SIEMENS CSA HEADER", create=True).add_new(
            0x20, "OB", siemens_protocol({"sPrepPulses.ucMTC": "1"}))
        if element is not None:
            ds.add_new(0x00189020, "CS", element)

    meta, _ = _convert(_series(tmp_path / "in", "SIEMENS", private=private), tmp_path / "out")
    assert meta["MTState"] is expected


# --- GE ------------------------------------------------------------------------------------------------


def _ge(ds: Dataset, i: int) -> None:
    acq = ds.private_block(0x0019, "GEMS_ACQU_01", create=True)
    acq.add_new(0x5A, "FL", 50000008.0)  # acquisition duration, us
    acq.add_new(0x9C, "LO", "epi2")
    acq.add_new(0x9E, "LO", "EPI2")
    acq.add_new(0xDF, "DS", "2")
    acq.add_new(0xE0, "DS", "30")
    ds.private_block(0x0027, "GEMS_IMAG_01", create=True).add_new(0x62, "FL", 2.0)
    parm = ds.private_block(0x0043, "GEMS_PARM_01", create=True)
    for element, value in ((0x02, 3), (0x03, 4), (0x04, -12)):
        parm.add_new(element, "SS", value)
    parm.add_new(0x95, "LO", "TG/s3,RN/s1")
    parm.add_new(0xB2, "LO", ["956.1", "320.1", "-17.3125", "0"])
    parm.add_new(0x83, "DS", ["0.5", "1"])
    parm.add_new(0xA3, "CS", "PSEUDOCONTINUOUS")
    parm.add_new(0xA5, "IS", "1450")


def test_ge_keys(tmp_path: Path) -> None:
    """GE's private elements: pulse sequence names, shims, prescan, table, ASSET, diffusion counts, ASL."""
    folder = _series(tmp_path / "in", "GE MEDICAL SYSTEMS", private=_ge,
                     extra={"InversionTime": "1525", "ScanningSequence": ["EP", "SE"], "SAR": "0.5"})
    meta, _ = _convert(folder, tmp_path / "out")
    assert meta["Manufacturer"] == "GE"
    assert meta["PulseSequenceName"] == "epi2" and meta["SequenceName"] == "epi2"
    assert meta["InternalPulseSequenceName"] == "EPI2"
    assert meta["ShimSetting"] == [3, 4, -12] and meta["PrescanReuseString"] == "TG/s3,RN/s1"
    assert meta["TablePosition"] == [0, 0, -17.3125]
    assert meta["AcquisitionDuration"] == pytest.approx(50.000008)
    assert meta["ParallelReductionFactorInPlane"] == 2 and meta["ParallelReductionFactorOutOfPlane"] == 1
    assert meta["NumberOfDiffusionDirectionGE"] == 30 and meta["NumberOfDiffusionT2GE"] == 2
    assert meta["NumberOfExcitations"] == 2 and meta["SAR"] == 0.5
    assert meta["ArterialSpinLabelingType"] == "PCASL"
    assert meta["LabelingDuration"] == pytest.approx(1.45) and meta["PostLabelingDelay"] == pytest.approx(1.525)
    assert meta["PulseSequenceType"] == "Spin Echo EPI"


def test_ge_elements_of_another_creator_are_not_read(tmp_path: Path) -> None:
    """The same element numbers under another vendor's private creator are not GE's values."""
    def other(ds: Dataset, i: int) -> None:
        block = ds.private_block(0x0043, "SOMEONE_ELSE", create=True)
        block.add_new(0x95, "LO", "not a prescan")
        block.add_new(0xB2, "LO", ["1", "2", "3"])

    meta, _ = _convert(_series(tmp_path / "in", "GE MEDICAL SYSTEMS", private=other), tmp_path / "out")
    assert "PrescanReuseString" not in meta and "TablePosition" not in meta


# --- Philips -------------------------------------------------------------------------------------------


def _philips(ds: Dataset, i: int) -> None:
    """Philips classic files keep enhanced attributes in private sequence items; the "DD 005" block
    is reserved at (2005,0011) here, not at the usual (2005,0014)."""
    item = Dataset()
    item.add_new(0x00189005, "SH", "DwiSE")
    item.add_new(0x00189020, "CS", "NONE")
    item.add_new(0x00189016, "CS", "RF")
    item.add_new(0x00189078, "CS", "SENSE")
    item.add_new(0x00189036, "CS", "PHASE")
    item.add_new(0x00189058, "US", 112)
    item.add_new(0x00189232, "US", 1)
    item.add_new(0x00189073, "FD", 113.58)
    item.add_new(0x00189155, "FD", 1.0)
    ds.add_new(0x00200012, "IS", "7")
    ds.add_new(0x20050011, "LO", "Philips MR Imaging DD 005")  # DD 005's block is 0x11 here, not 0x14
    ds.add_new(0x2005113C, "FL", -0.2)  # (2005,143C) of DD 005: the table position
    ds.add_new(0x20050012, "LO", "Philips MR Imaging DD 001")
    ds.add_new(0x2005120F, "SQ", [item])  # (2005,100F)-like private item sequence holding standard attributes


def test_philips_keys(tmp_path: Path) -> None:
    """Standard attributes nested in Philips' private items, the table position in a moved block."""
    folder = _series(tmp_path / "in", "Philips Medical Systems", private=_philips,
                     extra={"ScanningSequence": "SE", "TriggerTime": "187", "ReceiveCoilName": "MULTI COIL",
                            "BodyPartExamined": "BRAIN"})
    meta, _ = _convert(folder, tmp_path / "out")
    assert meta["Manufacturer"] == "Philips" and meta["BodyPart"] == "BRAIN" and "BodyPartExamined" not in meta
    assert meta["PulseSequenceName"] == "DwiSE" and meta["PulseSequenceType"] == "Spin Echo"
    assert meta["MTState"] is False
    assert meta["SpoilingState"] is True and meta["SpoilingType"] == "RF"
    assert meta["ParallelAcquisitionTechnique"] == "SENSE" and meta["PartialFourierDirection"] == "PHASE"
    assert meta["FrequencyEncodingSteps"] == 112 and meta["PhaseEncodingStepsOutOfPlane"] == 1
    assert meta["AcquisitionDuration"] == pytest.approx(113.58) and meta["ParallelReductionFactorOutOfPlane"] == 1
    assert meta["TablePosition"] == pytest.approx([0, 0, 0.2])
    assert meta["TriggerDelayTime"] == 187 and meta["CoilString"] == "MULTI COIL"


# --- UIH, Canon/Toshiba --------------------------------------------------------------------------------


def _uih(ds: Dataset, i: int) -> None:
    block = ds.private_block(0x0065, "Image Private Header", create=True)
    block.add_new(0x05, "SH", "A>>P")
    block.add_new(0x0D, "SH", "F:2S")
    ds.add_new(0x00189073, "FD", 40.5)


def test_uih_keys(tmp_path: Path) -> None:
    """UIH: the displayed phase direction, its parallel factor text, the frequency it writes in Hz,
    and its AcquisitionDuration (ms) as the readout time when no bandwidth gives one."""
    folder = _series(tmp_path / "in", "UIH", private=_uih, extra={"ImagingFrequency": "128176031"})
    meta, _ = _convert(folder, tmp_path / "out")
    assert meta["Manufacturer"] == "UIH" and meta["PhaseEncodingDirectionDisplayed"] == "A>>P"
    assert meta["ParallelReductionFactorInPlane"] == 2
    assert meta["ImagingFrequency"] == pytest.approx(128.176031)
    assert meta["TotalReadoutTime"] == pytest.approx(0.0405) and "AcquisitionDuration" not in meta


@pytest.mark.parametrize(("text", "name"), [("SIEMENS", "Siemens"), ("Siemens Healthineers", "Siemens"),
                                             ("GE MEDICAL SYSTEMS", "GE"), ("Philips Medical Systems", "Philips"),
                                             ("TOSHIBA_MEC", "Toshiba"), ("CANON_MEC", "Canon"), ("UIH", "UIH"),
                                             ("SynthCo", None), ("", None)])
def test_manufacturer_names_are_dcm2niix_names(text: str, name: str | None) -> None:
    assert manufacturer_name(text) == name


def test_an_unknown_manufacturer_keeps_its_text(tmp_path: Path) -> None:
    meta, _ = _convert(_series(tmp_path / "in", "SynthCo"), tmp_path / "out")
    assert meta["Manufacturer"] == "SynthCo"


@pytest.mark.parametrize(("scanning", "variant", "mb", "kind"), [
    (["EP"], ["SK"], 1, "Gradient Echo EPI"), (["EP"], ["SK"], 3, "Multiband Gradient Echo EPI"),
    (["SE", "EP"], [], 1, "Spin Echo EPI"), (["EP", "SE"], [], 2, "Multiband Spin Echo EPI"),
    (["GR", "IR"], ["SK", "MP"], 1, "MPRAGE"), (["GR"], ["SP"], 1, "Spoiled Gradient Echo"),
    (["GR"], ["SK"], 1, "Gradient Echo"), (["SE", "IR"], [], 1, "Inversion Recovery Spin Echo"),
    (["SE"], [], 1, "Spin Echo"), (["RM"], [], 1, None), ([], [], 1, None)])
def test_pulse_sequence_type(scanning: list[str], variant: list[str], mb: int, kind: str | None) -> None:
    assert pulse_sequence_type(scanning, variant, mb) == kind


# --- enhanced files ------------------------------------------------------------------------------------


def _enhanced(path: Path) -> Path:
    """A 4D enhanced MR file whose MR fields are only in its functional groups and AcquisitionDateTime."""
    info = write_enhanced_4d(path, shape=(3, 4, 6, 5))
    ds = pydicom.dcmread(info.paths[0])
    ds.Manufacturer = "Siemens Healthineers"
    ds.ProtocolName = "proto"
    ds.AcquisitionDateTime = "20240101083634.135000"
    ds.MRAcquisitionType = "2D"
    shared = ds.SharedFunctionalGroupsSequence[0]
    timing = Dataset()
    timing.RepetitionTime = 500
    timing.FlipAngle = 52
    timing.EchoTrainLength = 1
    timing.GradientEchoTrainLength = 56
    shared.MRTimingAndRelatedParametersSequence = [timing]
    modifier = Dataset()
    modifier.PixelBandwidth = 2298
    modifier.TransmitterFrequency = 123.210568
    modifier.MagnetizationTransfer = "NONE"
    shared.MRImagingModifierSequence = [modifier]
    fov = Dataset()
    fov.InPlanePhaseEncodingDirection = "COLUMN"
    fov.MRAcquisitionFrequencyEncodingSteps = 6
    shared.MRFOVGeometrySequence = [fov]
    echo = Dataset()
    echo.EffectiveEchoTime = 30.0
    for fg in ds.PerFrameFunctionalGroupsSequence:
        fg.MREchoSequence = [echo]
    sds = ds.private_block(0x0021, "SIEMENS MR SDS 01", create=True)
    sds.add_new(0x5A, "CS", "EP")
    sds.add_new(0x5B, "CS", "SK")
    sds.add_new(0x5C, "CS", ["PFP", "FS"])
    ds.save_as(info.paths[0], enforce_file_format=True)
    return info.paths[0]


def test_enhanced_file_gets_the_mr_fields_and_pixdim4_is_tr(tmp_path: Path) -> None:
    """An enhanced file's MR fields come from its functional groups (and Siemens XA's private copies);
    its NIfTI says the repetition time in pixdim[4], in seconds."""
    _enhanced(tmp_path / "in" / "e.dcm")
    meta, img = _convert(tmp_path / "in", tmp_path / "out")
    assert meta["RepetitionTime"] == 0.5 and meta["FlipAngle"] == 52 and meta["EchoTime"] == 0.03
    assert meta["ImagingFrequency"] == pytest.approx(123.210568) and meta["PixelBandwidth"] == 2298
    assert meta["SliceThickness"] == 2.5 and meta["EchoTrainLength"] == 56
    assert meta["ScanningSequence"] == "EP" and meta["SequenceVariant"] == "SK" and meta["ScanOptions"] == "PFP\\FS"
    assert meta["AcquisitionTime"] == "08:36:34.135000"
    assert meta["MTState"] is False and meta["FrequencyEncodingSteps"] == 6
    assert img.shape[3] == 3
    assert float(img.header["pixdim"][4]) == pytest.approx(0.5)
    assert img.header.get_xyzt_units() == ("mm", "sec")
    assert int(img.header["dim_info"]) == 1 | 2 << 2 | 3 << 4


def test_pixdim4_is_the_repetition_time_of_classic_4d_files(tmp_path: Path) -> None:
    _series(tmp_path / "in", "SIEMENS", volumes=2)
    meta, img = _convert(tmp_path / "in", tmp_path / "out")
    assert img.shape[3] == 2 and float(img.header["pixdim"][4]) == pytest.approx(meta["RepetitionTime"]) == 2.0


# --- the NIfTI header's slice fields -------------------------------------------------------------------


@pytest.mark.parametrize("n", [5, 6])
@pytest.mark.parametrize(("code", "name"), [(1, "SEQ_INC"), (2, "SEQ_DEC"), (3, "ALT_INC"), (4, "ALT_DEC"),
                                            (5, "ALT_INC2"), (6, "ALT_DEC2")])
def test_slice_code_from_times(n: int, code: int, name: str) -> None:
    """Times acquired in one of NIfTI's orders give its code and the time between slices."""
    times = [0.0] * n
    for rank, k in enumerate(slice_order(name, n)):
        times[k] = rank * 0.25
    found = slice_code_of(times, n)
    assert found is not None and found[1] == pytest.approx(0.25)
    assert slice_order(dict(((1, "SEQ_INC"), (2, "SEQ_DEC"), (3, "ALT_INC"), (4, "ALT_DEC"), (5, "ALT_INC2"),
                                (6, "ALT_DEC2")))[found[0]], n) == slice_order(name, n)


def test_slice_orders_are_nifti_orders() -> None:
    """nifti1.h's examples: ALT_INC 1,3,5,2,4 and ALT_DEC2 of 5 slices 4,2,5,3,1 (1-based)."""
    assert [k + 1 for k in slice_order("ALT_INC", 5)] == [1, 3, 5, 2, 4]
    assert [k + 1 for k in slice_order("ALT_DEC", 5)] == [5, 3, 1, 4, 2]
    assert [k + 1 for k in slice_order("ALT_INC2", 5)] == [2, 4, 1, 3, 5]
    assert [k + 1 for k in slice_order("ALT_DEC2", 5)] == [4, 2, 5, 3, 1]


def test_no_slice_code_for_multiband_or_other_orders() -> None:
    assert slice_code_of([0.0, 0.5, 0.0, 0.5], 4) is None  # two slices at a time
    assert slice_code_of([0.0, 0.5, 0.25, 0.75, 1.0], 5) is None  # 1,3,2,4,5: no NIfTI order
    assert slice_code_of([0.0, 0.5], 3) is None  # not one time per slice
    assert slice_code_of([0.0, 0.2, 0.45, 0.7], 4) == (1, 0.0)  # the order holds, the spacing is uneven


def test_acquisition_header_fields() -> None:
    fields = {"RepetitionTime": 2.0, "InPlanePhaseEncodingDirectionDICOM": "ROW", "SliceTiming": [0.0, 1.0, 0.5, 1.5]}
    header = acquisition_header(fields, 4)
    assert header.time_step == 2.0 and header.dim_info == 2 | 1 << 2 | 3 << 4
    assert (header.slice_code, header.slice_start, header.slice_end, header.slice_duration) == (3, 0, 3, 0.5)
    assert acquisition_header({}, 4) == AcquisitionHeader()


def test_nifti_header_writes_the_acquisition_fields() -> None:
    """The header bytes hold what nibabel reads back as dim_info, slice timing and pixdim[4]."""
    acquisition = AcquisitionHeader(time_step=2.5, freq_dim=1, phase_dim=2, slice_dim=3, slice_code=4,
                                    slice_start=0, slice_end=4, slice_duration=0.5)
    raw = nifti_header((6, 7, 5, 3), np.int16, np.eye(4), time_step=9.0, acquisition=acquisition)
    header = nib.Nifti1Header.from_fileobj(__import__("io").BytesIO(raw))
    assert header.get_dim_info() == (0, 1, 2) and float(header["pixdim"][4]) == 2.5
    assert int(header["slice_code"]) == 4 and int(header["slice_end"]) == 4
    assert float(header["slice_duration"]) == 0.5
    assert float(nib.Nifti1Header.from_fileobj(__import__("io").BytesIO(
        nifti_header((6, 7, 5, 3), np.int16, np.eye(4), time_step=9.0)))["pixdim"][4]) == 9.0


def test_converted_series_header_says_its_slice_order(tmp_path: Path) -> None:
    """Interleaved Siemens slices (times from AcquisitionTime): NIfTI's ALT_INC, the slice spacing
    in time, the phase axis along the rows' direction (j)."""
    times = [0.0, 1.0, 0.5, 1.5]  # slices 0, 2, 1, 3 in time
    meta, img = _convert(_series(tmp_path / "in", "SIEMENS", times=times, volumes=2), tmp_path / "out")
    assert meta["SliceTiming"] == times
    h = img.header
    assert int(h["slice_code"]) == 3 and float(h["slice_duration"]) == pytest.approx(0.5)
    assert (int(h["slice_start"]), int(h["slice_end"])) == (0, 3)
    assert h.get_dim_info() == (0, 1, 2)


def test_no_phase_direction_no_dim_info(tmp_path: Path) -> None:
    meta, img = _convert(_series(tmp_path / "in", "SIEMENS", extra={"InPlanePhaseEncodingDirection": None}),
                         tmp_path / "out")
    assert "InPlanePhaseEncodingDirectionDICOM" not in meta and int(img.header["dim_info"]) == 0


# --- arterial spin labeling ----------------------------------------------------------------------------

PCASL_PROTOCOL = {"tSequenceFileName": '""%SiemensSeq%\\ep2d_pcasl""', "sWipMemBlock.adFree[1]": "90",
                  "sWipMemBlock.adFree[2]": "1800000", "sWipMemBlock.adFree[3]": "83",
                  "sWipMemBlock.adFree[4]": "360"}
"""The 2D pCASL sequence's WIP slots: labeling distance (mm), post-labeling delay (us), RF blocks,
RF gap (us)."""


def _pcasl(ds: Dataset, i: int) -> None:
    ds.private_block(0x0029, "SIEMENS CSA HEADER", create=True).add_new(0x20, "OB", siemens_protocol(PCASL_PROTOCOL))


def test_siemens_pcasl_keys_from_its_wip_block(tmp_path: Path) -> None:
    """ep2d_pcasl: the sequence's own slots, LabelingDuration = blocks x 18.4 ms, the preparation TR
    in seconds (BIDS' unit)."""
    meta, _ = _convert(_series(tmp_path / "in", "SIEMENS", private=_pcasl), tmp_path / "out")
    assert meta["ArterialSpinLabelingType"] == "PCASL" and meta["LabelingDistance"] == 90
    assert meta["PostLabelingDelay"] == pytest.approx(1.8) and meta["NumRFBlocks"] == 83
    assert meta["LabelingDuration"] == pytest.approx(83 * 0.0184) and meta["RFGap"] == pytest.approx(360e-6)
    assert meta["RepetitionTimePreparation"] == pytest.approx(TR_MS / 1000)
    assert "M0Type" not in meta  # dcm2niix's guess from the sequence name; the files do not say


def test_standard_asl_macro(tmp_path: Path) -> None:
    """ArterialSpinLabelingContrast, ASLPulseTrainDuration (the label's duration) and InversionTimes
    (the delay after it), as PS3.3's ASL macro defines them."""
    def private(ds: Dataset, i: int) -> None:
        ds.add_new(0x00189250, "CS", "PSEUDOCONTINUOUS")
        ds.add_new(0x00189258, "UL", 1800)
        ds.add_new(0x00189079, "FD", [2000.0])

    meta, _ = _convert(_series(tmp_path / "in", "Philips Medical Systems", private=private), tmp_path / "out")
    assert meta["ArterialSpinLabelingType"] == "PCASL"
    assert meta["LabelingDuration"] == pytest.approx(1.8) and meta["PostLabelingDelay"] == pytest.approx(2.0)


def test_ge_asl_keys(tmp_path: Path) -> None:
    """GE: the labeling technique's text (0043,10A4), the labeling duration (0043,10A5, ms) and
    InversionTime as the post-labeling delay."""
    def private(ds: Dataset, i: int) -> None:
        parm = ds.private_block(0x0043, "GEMS_PARM_01", create=True)
        parm.add_new(0xA4, "LO", "3D pulsed continuous ASL technique")
        parm.add_new(0xA5, "IS", "1450")

    folder = _series(tmp_path / "in", "GE MEDICAL SYSTEMS", private=private, extra={"InversionTime": "2025"})
    meta, _ = _convert(folder, tmp_path / "out")
    assert meta["ArterialSpinLabelingType"] == "PCASL"
    assert meta["LabelingDuration"] == pytest.approx(1.45) and meta["PostLabelingDelay"] == pytest.approx(2.025)


def test_no_asl_keys_without_asl_elements(tmp_path: Path) -> None:
    """A series that names no labeling gets none of the ASL keys, even with InversionTimes."""
    def private(ds: Dataset, i: int) -> None:
        ds.add_new(0x00189079, "FD", [900.0])

    meta, _ = _convert(_series(tmp_path / "in", "Philips Medical Systems", private=private), tmp_path / "out")
    assert not {"ArterialSpinLabelingType", "LabelingDuration", "PostLabelingDelay"} & set(meta)
    assert meta["InversionTime"] == pytest.approx(0.9)


# --- reading the header once ---------------------------------------------------------------------------


def test_nested_items_found_without_converting_other_elements() -> None:
    """An enhanced file's header (pydicom) is searched for sequences without converting its other
    elements; a UN element whose bytes begin like a sequence is handed to pydicom (which converts it
    by its private dictionary: here a float it cannot read, so no sequence, and the rest is still
    searched)."""
    import io

    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    from volume.dicom.sidecar_keys import SKIPPED_SEQUENCES, _sequences

    item = Dataset()
    item.add_new(0x00189005, "SH", "DwiSE")
    ds = Dataset()
    ds.add_new(0x0008103E, "LO", "series text")
    ds.add_new(0x00081140, "SQ", [Dataset()])  # a referenced image: never searched
    ds.add_new(0x20050010, "LO", "Philips MR Imaging DD 001")
    ds.add_new(0x2005100F, "SQ", [item])
    ds.add_new(0x2005100E, "SQ", [item])  # rewritten as UN below, as anonymizers write private sequences
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3", "1.2.3.4"
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    raw = bytearray(buffer.getvalue())
    at = raw.find(b"\x05\x20\x0e\x10SQ")
    raw[at + 4:at + 6] = b"UN"
    read = pydicom.dcmread(io.BytesIO(bytes(raw)))
    found = _sequences(read, SKIPPED_SEQUENCES)
    assert [seq[0].PulseSequenceName for seq in found] == ["DwiSE"]  # (2005,100F); the UN one is no sequence
    assert type(read.get_item(0x0008103E)).__name__ == "RawDataElement"  # left as read


# --- identity -------------------------------------------------------------------------------------------


def test_dcm2niix_identity_keys_stay_out(tmp_path: Path) -> None:
    """dcm2niix writes PerformedProcedureStepDescription (as ProcedureStepDescription) and
    ImageComments: identity (PS3.15), never in volume's sidecar without --keep-phi."""
    assert is_identity("ProcedureStepDescription") and is_identity("ImageComments")
    extra = {"PerformedProcedureStepDescription": "MARKER-PSD", "ImageComments": "MARKER-IC"}
    _series(tmp_path / "in", "SIEMENS", extra=extra)
    results = convert(tmp_path / "in", tmp_path / "out")
    text = Path(results[0].files[-1]).read_text()
    assert "MARKER" not in text


# --- the same headers through dcm2niix --------------------------------------------------------------

#: What dcm2niix makes of these synthetic headers that is not theirs: key -> why.
SYNTHETIC_ARTIFACTS = {
    "MultibandAccelerationFactor": "without per-image slice times in a private element, dcm2niix counts the "
                                   "slices sharing the first (missing) time",
    "PulseSequenceType": "follows that multiband factor",
    "SliceTiming": "dcm2niix reads no slice times from these classic files' AcquisitionTime",
}

#: dcm2niix's mistakes these headers show: key -> why volume writes otherwise.
DCM2NIIX_MISTAKES = {
    "SpoilingType": "Spoiling (0018,9016) RF is RF spoiling; dcm2niix's test of the value reads RF as RF and "
                    "gradient (COMBINED)",
    "RepetitionTimePreparation": "dcm2niix writes the pCASL sequences' preparation TR in ms; BIDS' unit is seconds",
    "M0Type": "dcm2niix guesses 'Included' from the sequence name; the files do not say how M0 was acquired",
}

VENDOR_CASES: dict[str, tuple[str, Callable[[Dataset, int], None] | None, dict[str, Any]]] = {
    "siemens": ("SIEMENS", _siemens, {}),
    "ge": ("GE MEDICAL SYSTEMS", _ge, {"InversionTime": "1525", "ScanningSequence": ["EP", "SE"], "SAR": "0.5"}),
    "philips": ("Philips Medical Systems", _philips, {"ScanningSequence": "SE", "TriggerTime": "187",
                                                        "ReceiveCoilName": "MULTI COIL"}),
    "uih": ("UIH", _uih, {}),
    "canon": ("CANON_MEC", None, {"ReceiveCoilName": "32ch Head", "NumberOfPhaseEncodingSteps": "8"}),
    "siemens-pcasl": ("SIEMENS", _pcasl, {"PixelSpacing": [3, 3], "SliceThickness": "5"}),
}


@pytest.mark.parametrize("vendor", sorted(VENDOR_CASES))
def test_synthetic_vendor_sidecar_matches_dcm2niix(tmp_path: Path, dcm2niix: str, vendor: str) -> None:
    """Each vendor's synthetic headers through both converters: every key dcm2niix writes (identity
    aside) is in volume's sidecar with the same value."""
    manufacturer, private, extra = VENDOR_CASES[vendor]
    folder = _series(tmp_path / "in", manufacturer, private=private, extra=extra)
    ours, img = _convert(folder, tmp_path / "out")
    theirs = tmp_path / "dcm2niix"
    theirs.mkdir()
    subprocess.run([dcm2niix, "-z", "n", "-f", "x", "-o", str(theirs), str(folder)], capture_output=True,
                   timeout=60, check=True)
    (ref_json,) = theirs.glob("*.json")  # x.json; Philips' gets its trigger time appended
    ref = json.loads(ref_json.read_text())
    ref_affine = nib.load(str(ref_json.with_suffix(".nii"))).affine
    named = SYNTHETIC_ARTIFACTS.keys() | DCM2NIIX_MISTAKES.keys()
    assert whole_sidecar_differences(ours, img, ref, ref_affine, skip=named.__contains__) == []


def test_synthetic_enhanced_sidecar_matches_dcm2niix(tmp_path: Path, dcm2niix: str) -> None:
    """The enhanced file's functional groups through both converters."""
    _enhanced(tmp_path / "in" / "e.dcm")
    ours, img = _convert(tmp_path / "in", tmp_path / "out")
    theirs = tmp_path / "dcm2niix"
    theirs.mkdir()
    subprocess.run([dcm2niix, "-z", "n", "-f", "x", "-o", str(theirs), str(tmp_path / "in")], capture_output=True,
                   timeout=60, check=True)
    (ref_json,) = theirs.glob("*.json")
    ref = json.loads(ref_json.read_text())
    assert {"RepetitionTime", "PixelBandwidth", "ImagingFrequency", "ScanningSequence", "AcquisitionTime"} <= set(ref)
    ref_affine = nib.load(str(ref_json.with_suffix(".nii"))).affine
    named = SYNTHETIC_ARTIFACTS.keys() | DCM2NIIX_MISTAKES.keys()
    assert whole_sidecar_differences(ours, img, ref, ref_affine, skip=named.__contains__) == []

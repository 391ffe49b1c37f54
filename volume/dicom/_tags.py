"""Tags and VRs of the header elements volume reads, so the header scanner (and the sidecar's
MR fields, :mod:`volume.dicom.bids`) need no pydicom.

Importing pydicom to look keywords up in its data dictionary costs 0.13-0.2 s, more than
scanning a 300-file series with :mod:`volume.dicom.fastheader`. This table is what
``pydicom.datadict`` says for the keywords :mod:`volume.dicom.headers` reads (generated from
pydicom 3.0.2); ``tests/test_fastheader.py`` checks every entry against pydicom's
dictionary and that it covers every keyword the scanner asks for. Keywords not listed here are
still looked up in pydicom by :func:`volume.dicom.fastheader.wanted`.
"""

from __future__ import annotations

#: DICOM keyword -> (tag as ``group << 16 | element``, the dictionary's VR), in tag order.
TAGS: dict[str, tuple[int, str]] = {
    "ImageType": (0x00080008, "CS"),
    "SOPClassUID": (0x00080016, "UI"),
    "SOPInstanceUID": (0x00080018, "UI"),
    "StudyDate": (0x00080020, "DA"),
    "SeriesDate": (0x00080021, "DA"),
    "AcquisitionDate": (0x00080022, "DA"),
    "AcquisitionDateTime": (0x0008002A, "DT"),
    "StudyTime": (0x00080030, "TM"),
    "AcquisitionTime": (0x00080032, "TM"),
    "ContentTime": (0x00080033, "TM"),
    "AccessionNumber": (0x00080050, "SH"),
    "Modality": (0x00080060, "CS"),
    "Manufacturer": (0x00080070, "LO"),
    "InstitutionName": (0x00080080, "LO"),
    "InstitutionAddress": (0x00080081, "ST"),
    "ReferringPhysicianName": (0x00080090, "PN"),
    "CodeValue": (0x00080100, "SH"),
    "StationName": (0x00081010, "SH"),
    "StudyDescription": (0x00081030, "LO"),
    "SeriesDescription": (0x0008103E, "LO"),
    "InstitutionalDepartmentName": (0x00081040, "LO"),
    "ManufacturerModelName": (0x00081090, "LO"),
    "PatientName": (0x00100010, "PN"),
    "PatientID": (0x00100020, "LO"),
    "IssuerOfPatientID": (0x00100021, "LO"),
    "PatientBirthDate": (0x00100030, "DA"),
    "PatientSex": (0x00100040, "CS"),
    "PatientAge": (0x00101010, "AS"),
    "PatientSize": (0x00101020, "DS"),
    "PatientWeight": (0x00101030, "DS"),
    "PatientIdentityRemoved": (0x00120062, "CS"),
    "DeidentificationMethod": (0x00120063, "LO"),
    "BodyPartExamined": (0x00180015, "CS"),
    "ScanningSequence": (0x00180020, "CS"),
    "SequenceVariant": (0x00180021, "CS"),
    "ScanOptions": (0x00180022, "CS"),
    "MRAcquisitionType": (0x00180023, "CS"),
    "SequenceName": (0x00180024, "SH"),
    "SliceThickness": (0x00180050, "DS"),
    "KVP": (0x00180060, "DS"),
    "RepetitionTime": (0x00180080, "DS"),
    "EchoTime": (0x00180081, "DS"),
    "InversionTime": (0x00180082, "DS"),
    "NumberOfAverages": (0x00180083, "DS"),
    "ImagingFrequency": (0x00180084, "DS"),
    "EchoNumbers": (0x00180086, "IS"),
    "MagneticFieldStrength": (0x00180087, "DS"),
    "SpacingBetweenSlices": (0x00180088, "DS"),
    "NumberOfPhaseEncodingSteps": (0x00180089, "IS"),
    "EchoTrainLength": (0x00180091, "IS"),
    "PercentSampling": (0x00180093, "DS"),
    "PercentPhaseFieldOfView": (0x00180094, "DS"),
    "PixelBandwidth": (0x00180095, "DS"),
    "DeviceSerialNumber": (0x00181000, "LO"),
    "SoftwareVersions": (0x00181020, "LO"),
    "ProtocolName": (0x00181030, "LO"),
    "TriggerTime": (0x00181060, "DS"),
    "GantryDetectorTilt": (0x00181120, "DS"),
    "XRayTubeCurrent": (0x00181151, "IS"),
    "ConvolutionKernel": (0x00181210, "SH"),
    "ReceiveCoilName": (0x00181250, "SH"),
    "AcquisitionMatrix": (0x00181310, "US"),
    "InPlanePhaseEncodingDirection": (0x00181312, "CS"),
    "FlipAngle": (0x00181314, "DS"),
    "VariableFlipAngleFlag": (0x00181315, "CS"),
    "SAR": (0x00181316, "DS"),
    "PatientPosition": (0x00185100, "CS"),
    "PulseSequenceName": (0x00189005, "SH"),
    "InversionRecovery": (0x00189009, "CS"),
    "Spoiling": (0x00189016, "CS"),
    "MagnetizationTransfer": (0x00189020, "CS"),
    "RectilinearPhaseEncodeReordering": (0x00189034, "CS"),
    "PartialFourierDirection": (0x00189036, "CS"),
    "MRAcquisitionFrequencyEncodingSteps": (0x00189058, "US"),
    "ParallelReductionFactorInPlane": (0x00189069, "FD"),
    "AcquisitionDuration": (0x00189073, "FD"),
    "DiffusionDirectionality": (0x00189075, "CS"),
    "ParallelAcquisitionTechnique": (0x00189078, "CS"),
    "InversionTimes": (0x00189079, "FD"),
    "PartialFourier": (0x00189081, "CS"),
    "DiffusionBValue": (0x00189087, "FD"),
    "DiffusionGradientOrientation": (0x00189089, "FD"),
    "NumberOfKSpaceTrajectories": (0x00189093, "US"),
    "TransmitterFrequency": (0x00189098, "FD"),
    "ParallelReductionFactorOutOfPlane": (0x00189155, "FD"),
    "MRAcquisitionPhaseEncodingStepsInPlane": (0x00189231, "US"),
    "MRAcquisitionPhaseEncodingStepsOutOfPlane": (0x00189232, "US"),
    "GradientEchoTrainLength": (0x00189241, "US"),
    "ArterialSpinLabelingContrast": (0x00189250, "CS"),
    "ASLPulseTrainDuration": (0x00189258, "UL"),
    "StudyInstanceUID": (0x0020000D, "UI"),
    "SeriesInstanceUID": (0x0020000E, "UI"),
    "StudyID": (0x00200010, "SH"),
    "SeriesNumber": (0x00200011, "IS"),
    "AcquisitionNumber": (0x00200012, "IS"),
    "InstanceNumber": (0x00200013, "IS"),
    "ImagesInAcquisition": (0x00201002, "IS"),
    "ImagePositionPatient": (0x00200032, "DS"),
    "ImageOrientationPatient": (0x00200037, "DS"),
    "FrameOfReferenceUID": (0x00200052, "UI"),
    "Laterality": (0x00200060, "CS"),
    "ImageLaterality": (0x00200062, "CS"),
    "TemporalPositionIdentifier": (0x00200100, "IS"),
    "ImageComments": (0x00204000, "LT"),
    "NominalCardiacTriggerDelayTime": (0x00209153, "FD"),
    "SamplesPerPixel": (0x00280002, "US"),
    "PhotometricInterpretation": (0x00280004, "CS"),
    "PlanarConfiguration": (0x00280006, "US"),
    "NumberOfFrames": (0x00280008, "IS"),
    "Rows": (0x00280010, "US"),
    "Columns": (0x00280011, "US"),
    "PixelSpacing": (0x00280030, "DS"),
    "BitsAllocated": (0x00280100, "US"),
    "BitsStored": (0x00280101, "US"),
    "PixelRepresentation": (0x00280103, "US"),
    "WindowCenter": (0x00281050, "DS"),
    "WindowWidth": (0x00281051, "DS"),
    "RescaleIntercept": (0x00281052, "DS"),
    "RescaleSlope": (0x00281053, "DS"),
    "MeasurementUnitsCodeSequence": (0x004008EA, "SQ"),
    "RealWorldValueMappingSequence": (0x00409096, "SQ"),
    "RealWorldValueIntercept": (0x00409224, "FD"),
    "RealWorldValueSlope": (0x00409225, "FD"),
    "SharedFunctionalGroupsSequence": (0x52009229, "SQ"),
    "PerFrameFunctionalGroupsSequence": (0x52009230, "SQ"),
}


#: Private elements volume reads: name -> (tag, VR, private creator of the tag's block).
#: The creator (gggg,00bb) of block bb is read as well and must match (case-insensitively) when
#: present: another vendor may use the same element number for something else.
PRIVATE: dict[str, tuple[int, str, str]] = {
    "SiemensCSAImageHeader": (0x00291010, "OB", "SIEMENS CSA HEADER"),
    "SiemensCSASeriesHeader": (0x00291020, "OB", "SIEMENS CSA HEADER"),
    "SiemensNumberOfImagesInMosaic": (0x0019100A, "US", "SIEMENS MR HEADER"),
    "SiemensBValue": (0x0019100C, "IS", "SIEMENS MR HEADER"),
    "SiemensDiffusionDirectionality": (0x0019100D, "CS", "SIEMENS MR HEADER"),
    "SiemensDiffusionGradientDirection": (0x0019100E, "FD", "SIEMENS MR HEADER"),
    "SiemensBandwidthPerPixelPhaseEncode": (0x00191028, "FD", "SIEMENS MR HEADER"),
    "SiemensMosaicRefAcqTimes": (0x00191029, "FD", "SIEMENS MR HEADER"),
    "SiemensTimeAfterStart": (0x00211104, "DS", "SIEMENS MR SDI 02"),
    "GEBValue": (0x00431039, "IS", "GEMS_PARM_01"),
    "GEGradientX": (0x001910BB, "DS", "GEMS_ACQU_01"),
    "GEGradientY": (0x001910BC, "DS", "GEMS_ACQU_01"),
    "GEGradientZ": (0x001910BD, "DS", "GEMS_ACQU_01"),
    "GERTIATimer": (0x0021105E, "DS", "GEMS_RELA_01"),
    # GE: the complex component (0 magnitude, 1 phase, 2 real, 3 imaginary; volume.dicom.ge)
    "GEImageTypeComponent": (0x0043102F, "SS", "GEMS_PARM_01"),
    # GE: the pulse sequence names and the slice locations of a B0map's field map (volume.dicom.ge)
    "GEPulseSequenceName": (0x0019109C, "LO", "GEMS_ACQU_01"),
    "GEInternalPulseSequenceName": (0x0019109E, "LO", "GEMS_ACQU_01"),
    "GELocationsInAcquisition": (0x0021104F, "SS", "GEMS_RELA_01"),
    # GE: what kind of diffusion acquisition an image belongs to (volume.dicom.ge.ge_trace_image)
    "GEDiffusionDirectionType": (0x0021105A, "SS", "GEMS_RELA_01"),
    "GEVasCollapseFlag": (0x00431030, "SS", "GEMS_PARM_01"),
    "GENumberOfDiffusionDirections": (0x001910E0, "DS", "GEMS_ACQU_01"),
    # GE: user data 12, the mode of an epi_pepolar series (volume.dicom.ge.ge_pepolar)
    "GEUserData12": (0x001910B3, "DS", "GEMS_ACQU_01"),
    # UIH: the b-value, and the gradient along the image's row, column and normal (volume.dicom.uih)
    "UIHBValue": (0x00651009, "FD", "Image Private Header"),
    "UIHGradientDirection": (0x00651037, "FD", "Image Private Header"),
    "PhilipsBValue": (0x20011003, "FL", "Philips Imaging DD 001"),
    "PhilipsDiffusionDirection": (0x20011004, "CS", "Philips Imaging DD 001"),
    "PhilipsPhaseNumber": (0x20011008, "IS", "Philips Imaging DD 001"),
    "PhilipsScaleIntercept": (0x2005100D, "FL", "Philips MR Imaging DD 001"),
    "PhilipsScaleSlope": (0x2005100E, "FL", "Philips MR Imaging DD 001"),
    # the gradient direction in patient LPS, x (right to left), y (anterior to posterior), z (feet to head)
    "PhilipsGradientRL": (0x200510B0, "FL", "Philips MR Imaging DD 001"),
    "PhilipsGradientAP": (0x200510B1, "FL", "Philips MR Imaging DD 001"),
    "PhilipsGradientFH": (0x200510B2, "FL", "Philips MR Imaging DD 001"),
    "PhilipsBValueNumber": (0x20051412, "IS", "Philips MR Imaging DD 005"),
    "PhilipsGradientOrientationNumber": (0x20051413, "IS", "Philips MR Imaging DD 005"),
    "PhilipsDiffusionOrder": (0x20051596, "IS", "Philips MR Imaging DD 006"),
}


def creator_keyword(tag: int) -> str:
    """The name under which the private creator of ``tag``'s block is read, e.g. ``PrivateCreator_2005_14``."""
    return f"PrivateCreator_{tag >> 16:04X}_{(tag >> 8) & 0xFF:02X}"


def creator_tag(tag: int) -> int:
    """The tag (gggg,00bb) of the private creator of ``tag``'s block."""
    return (tag & 0xFFFF0000) | ((tag >> 8) & 0xFF)


MOVED_BLOCKS = range(0x10, 0x20)
"""Blocks where a private block a PACS or an anonymizer renumbered is looked for at scan time (dcm2niix's
issue 435: Agfa moves 0029,10xx to 0029,11xx, Philips' 2005,14xx to 2005,12xx)."""


def moved_name(name: str, block: int) -> str:
    """The name under which private element ``name`` is read when its block is ``block`` (e.g. ``GEBValue@11``)."""
    return f"{name}@{block:02X}"


def _moved_tags() -> dict[str, tuple[int, str]]:
    """Name -> (tag, VR) of the private elements of :data:`PRIVATE` in the other :data:`MOVED_BLOCKS`
    of their group, and of those blocks' creators; none whose tag is another element's usual one."""
    usual = {tag for tag, _vr, _creator in PRIVATE.values()}
    out: dict[str, tuple[int, str]] = {}
    for name, (tag, vr, _creator) in PRIVATE.items():
        for block in MOVED_BLOCKS:
            moved = (tag & 0xFFFF00FF) | (block << 8)
            if moved not in usual:
                out[moved_name(name, block)] = (moved, vr)
            out[creator_keyword(moved)] = (creator_tag(moved), "LO")
    return out


#: Name -> (tag, VR) of the private elements and of their creators, as the fast reader looks them up:
#: at their usual places, and renumbered within :data:`MOVED_BLOCKS`.
PRIVATE_TAGS: dict[str, tuple[int, str]] = {
    **_moved_tags(),
    **{name: (tag, vr) for name, (tag, vr, _creator) in PRIVATE.items()},
    **{creator_keyword(tag): (creator_tag(tag), "LO") for tag, _vr, _creator in PRIVATE.values()},
}

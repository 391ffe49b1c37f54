"""The one identity policy: what in a DICOM header identifies a patient, and what outputs do with it.

Every output of volume asks this module: ``ls --json``, ``info``, ``index`` (CSV and Parquet),
JSON sidecars, the ``--report`` of ``convert``, DICOM written by ``reslice`` and ``mip``, PNG text
chunks, the web view's page title, and the lines printed on stdout and stderr. ``docs/privacy.md``
is the user's version of this text.

What counts as identity
-----------------------
DICOM PS3.15 Annex E, the Basic Application Level Confidentiality Profile, decides:

* every attribute of its Table E.1-1 (:data:`BASIC_PROFILE`: 456 attributes, as data in
  :mod:`volume.confidentiality_profile`): the patient's name, IDs, birth date, sex, age, weight, size, address and
  telephone; other patient IDs and names; physicians, operators and other persons; institution
  name, address and department; station name, device serial number and other device IDs;
  accession number and study ID; the UIDs the profile replaces (study, series, SOP instance,
  frame of reference...); the dates and times it lists (StudyDate, SeriesDate, AcquisitionDate,
  ContentDate, AcquisitionDateTime..., StudyTime, SeriesTime, ContentTime...); comments and
  free-text descriptions (StudyDescription, ImageComments, DerivationDescription...);
* the table's rows that are rules rather than tags: curve data (50xx,xxxx), overlay data and
  comments (60xx,3000 and 60xx,4000), and private elements (odd groups). A private creator
  element (gggg,0010-00FF) only names the vendor's dictionary and stays visible;
* beyond the table, for the same reasons: every value of VR DA or DT wherever it stands (a date
  dates the study: e.g. the FrameAcquisitionDateTime inside enhanced files' functional groups),
  and :data:`EXTRA` (the instance creation date and time; the AE titles, private information and
  its creator of the file meta group; the procedure code sequence, whose meanings are free text).

Three attributes of the table are *retained* (shown and written without ``--keep-phi``), each under
one of the profile's options and for one reason (:data:`RETAINED`): SeriesDescription and
ProtocolName (the Clean Descriptors Option's attributes, kept as they are, not cleaned: volume names
stacks and files by the series description, and BIDS sidecars carry both as dcm2niix writes them),
and AcquisitionTime (the Retain Longitudinal Temporal Information Full Dates Option, for the time of
day only: the BIDS sidecar's AcquisitionTime; no date is ever kept). A site whose technologists type
names into series descriptions must not share volume's outputs unreviewed.

What outputs do with it
-----------------------
Without ``--keep-phi`` nothing identifying leaves volume; UIDs appear only as :func:`uid_key`
(the first 16 hex digits of their SHA-256: they group and join, and do not reveal the UID). With
``--keep-phi``, the outputs meant to carry identity carry it: ``info`` shows every value, ``index``
adds identity columns and real UIDs, ``ls --json`` adds the series and study UIDs, sidecars and
DICOM outputs carry :data:`CARRIED`, the web page title names the patient. The ``--report``, PNG
text chunks and every message line never carry identity, with or without ``--keep-phi``. DICOM
that volume writes without identity says so (:func:`deidentification_method`, :data:`PROFILE_CODE`).

This module imports nothing heavy (no numpy, no pydicom): the CLI imports it at start-up.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .confidentiality_profile import BASIC_PROFILE_TABLE

HIDDEN = "<hidden: --keep-phi shows it>"
"""What ``info`` and ``index`` show in place of an identity value."""

PROFILE_NAME = "Basic Application Confidentiality Profile"
"""The profile's name as its code's meaning (DCM 113100, CID 7050)."""

PROFILE_CODE = ("113100", "DCM", PROFILE_NAME)
"""(CodeValue, CodingSchemeDesignator, CodeMeaning) of DeidentificationMethodCodeSequence."""

UID_KEY_HEX_DIGITS = 16
"""Hex digits of SHA-256 in a :func:`uid_key` (64 bits: collisions need ~4e9 UIDs)."""

DATE_VRS = frozenset({"DA", "DT"})
"""Value representations that hold a date: identity wherever they stand."""


def _parse(table: str) -> dict[str, tuple[int, str]]:
    rows = (line.split() for line in table.splitlines() if line.strip())
    return {keyword: (int(tag, 16), action) for tag, keyword, action in rows}


BASIC_PROFILE: dict[str, tuple[int, str]] = _parse(BASIC_PROFILE_TABLE)
"""Table E.1-1 of PS3.15: keyword -> (tag, the Basic Profile's action)."""

#: Attributes of the table shown and written without ``--keep-phi``: keyword -> the profile's option
#: and volume's reason.
RETAINED: dict[str, str] = {
    "SeriesDescription": "Clean Descriptors Option (113105), not cleaned: volume names stacks and files by it; "
                         "BIDS sidecars carry it as dcm2niix writes it",
    "ProtocolName": "Clean Descriptors Option (113105), not cleaned: a BIDS sidecar field that conversion "
                    "heuristics match series on",
    "AcquisitionTime": "Retain Longitudinal Temporal Information Full Dates Option (113106), time of day only "
                       "(never a date): the BIDS sidecar's AcquisitionTime, as dcm2niix writes it",
}

#: Identity beyond Table E.1-1: keyword -> (tag, why).
EXTRA: dict[str, tuple[int, str]] = {
    "InstanceCreationDate": (0x00080012, "dates the instance as ContentDate does"),
    "InstanceCreationTime": (0x00080013, "goes with InstanceCreationDate"),
    "SourceApplicationEntityTitle": (0x00020016, "names the sending station, as StationName does"),
    "SendingApplicationEntityTitle": (0x00020017, "names a station"),
    "ReceivingApplicationEntityTitle": (0x00020018, "names a station"),
    "PrivateInformationCreatorUID": (0x00020100, "names whose private data the file meta group carries"),
    "PrivateInformation": (0x00020102, "private data in the file meta group, as the table's private attributes"),
    "ProcedureCodeSequence": (0x00081032, "its code meanings name the procedure in free text, as "
                                          "RequestedProcedureDescription (X/Z) does"),
}

#: Sidecar keys (BIDS' and dcm2niix's names) that are not DICOM keywords -> the DICOM keyword they
#: hold: a key is identity when its keyword is (dcm2niix's ProcedureStepDescription is the
#: PerformedProcedureStepDescription of Table E.1-1).
SIDECAR_NAMES: dict[str, str] = {
    "ProcedureStepDescription": "PerformedProcedureStepDescription",
    "BodyPart": "BodyPartExamined",
    "ManufacturersModelName": "ManufacturerModelName",
    "ImageOrientationPatientDICOM": "ImageOrientationPatient",
    "InPlanePhaseEncodingDirectionDICOM": "InPlanePhaseEncodingDirection",
}

#: Retained attributes a dataset made to be shared leaves out all the same without ``--keep-phi``
#: (``volume bids``: no acquisition time leaves by default, neither in sidecars nor in scans.tsv).
WITHHELD_FROM_DATASETS: tuple[str, ...] = ("AcquisitionTime",)

IDENTITY_KEYWORDS: frozenset[str] = frozenset((set(BASIC_PROFILE) | set(EXTRA)) - set(RETAINED))
"""Every keyword that is identity by name (dates by VR and private elements come on top)."""

_TAG_OF = {kw: tag for kw, (tag, _) in {**BASIC_PROFILE, **EXTRA}.items()}
IDENTITY_TAGS: frozenset[int] = frozenset(_TAG_OF[kw] for kw in IDENTITY_KEYWORDS)
"""The tags of :data:`IDENTITY_KEYWORDS`."""

_RETAINED_TAGS = frozenset(_TAG_OF[kw] for kw in RETAINED)

#: The identity volume reads from headers and carries in ``Volume.meta["identity"]``, to write only
#: with ``--keep-phi``: into sidecars, into DICOM outputs (which then join the source's study), and
#: the web page title (name and ID).
CARRIED = (
    "PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate", "PatientSex", "PatientAge",
    "PatientWeight", "PatientSize",
    "StudyInstanceUID", "StudyID", "AccessionNumber", "StudyDate", "StudyTime", "StudyDescription",
    "ReferringPhysicianName",
    "SeriesInstanceUID", "SeriesDate", "AcquisitionDate", "FrameOfReferenceUID",
    "InstitutionName", "InstitutionAddress", "InstitutionalDepartmentName", "StationName", "DeviceSerialNumber",
)

#: The identity columns ``volume index --keep-phi`` adds (``patient_name``...): what every output
#: carries with ``--keep-phi`` (:data:`CARRIED`), and the file's own UID (a row is one file).
INDEXED = (*CARRIED, "SOPInstanceUID")


def is_private(tag: int) -> bool:
    """True for an element of an odd group (a vendor's private element or its creator)."""
    return bool((int(tag) >> 16) & 1)


def is_identity(key: str | int, vr: str | None = None) -> bool:
    """True when an element identifies a patient, a study or an instance (see the module docstring).

    ``key`` is a keyword (or a sidecar name of :data:`SIDECAR_NAMES`) or a tag
    (``group << 16 | element``); a tag also answers for private
    elements, curve and overlay groups, which have no keyword. ``vr`` (the element's value
    representation, when known) makes any date (DA, DT) identity.
    """
    if isinstance(key, str):
        key = SIDECAR_NAMES.get(key, key)
        if key in RETAINED:
            return False
        return key in IDENTITY_KEYWORDS or vr in DATE_VRS
    tag = int(key)
    if tag in _RETAINED_TAGS:
        return False
    if tag in IDENTITY_TAGS or vr in DATE_VRS:
        return True
    group, element = tag >> 16, tag & 0xFFFF
    if group & 1:  # private data; the creators (gggg,0010-00FF) and group lengths only name and count
        return element > 0x00FF
    if group & 0xFF00 == 0x5000:  # curve data (retired repeating groups)
        return True
    return group & 0xFF00 == 0x6000 and element in (0x3000, 0x4000)  # overlay data and comments


def element_is_identity(elem: Any) -> bool:
    """:func:`is_identity` of a pydicom DataElement (by its tag and VR)."""
    return is_identity(int(elem.tag), str(elem.VR))


def strip(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a keyword-keyed mapping without its identity entries."""
    return {key: value for key, value in mapping.items() if not is_identity(key)}


def uid_key(uid: Any) -> str | None:
    """The first :data:`UID_KEY_HEX_DIGITS` hex digits of the SHA-256 of a UID (``None`` when absent).

    The pseudonym every output uses in place of a UID: equal UIDs give equal keys (rows group and
    tables made from the same files join), and a key does not reveal its UID.
    """
    if uid is None:
        return None
    text = str(uid).strip().rstrip("\x00")
    if not text:
        return None
    import hashlib  # 2.5 ms: only when a key is made, never at start-up

    return hashlib.sha256(text.encode("ascii", "replace")).hexdigest()[:UID_KEY_HEX_DIGITS]


def deidentification_method(version: str, retained: tuple[str, ...] = ()) -> list[str]:
    """DeidentificationMethod (0012,0063) values of DICOM volume writes without identity.

    Each value fits an LO (64 characters): who, which profile, and which of :data:`RETAINED` the
    file still holds (kept as they were, not cleaned).
    """
    values = [f"volume {version}", f"DICOM PS3.15 {PROFILE_NAME}"]
    if retained:
        values.append(f"kept uncleaned: {', '.join(retained)}"[:64])
    return values

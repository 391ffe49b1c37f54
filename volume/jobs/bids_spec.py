"""What the BIDS specification says about file names, as data: entities and their order, the
suffixes of each MRI datatype with the entities they allow and require, labels' alphabet.

Taken from the BIDS schema (version :data:`BIDS_VERSION`, ``rules/files/raw`` and
``objects/entities``); ``tests/test_bids.py`` compares it with the schema that pybids ships
when it is installed. Only MRI datatypes are listed: volume converts MR.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import UsageError

BIDS_VERSION = "1.10.0"
"""The BIDS version ``dataset_description.json`` declares (every file name and field written here
is valid under it and later versions)."""

#: Entities in the order BIDS writes them in a file name: (key in file names, long name).
ENTITIES: tuple[tuple[str, str], ...] = (
    ("sub", "subject"), ("ses", "session"), ("task", "task"), ("acq", "acquisition"), ("ce", "ceagent"),
    ("rec", "reconstruction"), ("dir", "direction"), ("run", "run"), ("echo", "echo"), ("flip", "flip"),
    ("inv", "inversion"), ("mt", "mtransfer"), ("part", "part"), ("chunk", "chunk"),
)

ENTITY_ORDER = tuple(key for key, _ in ENTITIES)
"""Entity keys in file-name order."""

INDEX_ENTITIES = frozenset({"run", "echo", "flip", "inv", "chunk"})
"""Entities whose value is an index (digits), the others are labels (letters and digits)."""

PART_VALUES = ("mag", "phase", "real", "imag")
"""The values of ``part-``."""

_NONPARAMETRIC = ("task", "acq", "ce", "rec", "run", "echo", "part", "chunk")
_PARAMETRIC = ("task", "acq", "ce", "rec", "run")
_FUNC = ("task", "acq", "ce", "rec", "dir", "run", "echo", "part")
_DWI = ("acq", "rec", "dir", "run", "part")
_FMAP_GRE = ("acq", "run")
_FMAP_EPI = ("acq", "ce", "dir", "run", "part", "chunk")
_RF = ("acq", "ce", "rec", "run", "echo", "flip", "inv", "part")
_PERF = ("acq", "rec", "dir", "run")


def _files(suffixes: str, allowed: tuple[str, ...], required: tuple[str, ...] = ()) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    return {s: (allowed, required) for s in suffixes.split()}


#: datatype -> suffix -> (entities allowed besides sub and ses, entities required): BIDS 1.10's table
#: (the schema's ``rules/files/raw``) narrowed to the names npm's bids-validator 1.15 (the legacy
#: line) accepts as well, so that both validators pass: the legacy one has no ``chunk-`` outside
#: anat and epi field maps, no ``rec-`` in epi field maps, no ``echo-``/``part-`` in perf, no
#: ``task-`` in MP2RAGE, no ``dir-`` in MESE, no derived dwi maps, and requires ``dir-`` of an epi
#: field map. ``tests/test_bids.py`` checks every entry against the BIDS schema pybids ships.
FILES: Mapping[str, Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "anat": {
        **_files("T1w T2w PDw T2starw FLAIR inplaneT1 inplaneT2 PDT2 angio", _NONPARAMETRIC),
        **_files("T1map T2map T2starmap R1map R2map R2starmap PDmap MTRmap MTsat UNIT1 T1rho MWFmap MTVmap "
                 "Chimap S0map M0map", _PARAMETRIC),
        **_files("MEGRE MESE", ("task", "acq", "ce", "rec", "run", "echo", "part"), ("echo",)),
        **_files("VFA", ("task", "acq", "ce", "rec", "run", "flip", "part"), ("flip",)),
        **_files("IRT1", ("task", "acq", "ce", "rec", "run", "inv", "part"), ("inv",)),
        **_files("MP2RAGE", ("acq", "ce", "rec", "run", "echo", "flip", "inv", "part"), ("inv",)),
        **_files("MPM MTS", ("task", "acq", "ce", "rec", "run", "echo", "flip", "mt", "part"), ("flip", "mt")),
        **_files("MTR", ("task", "acq", "ce", "rec", "run", "mt", "part"), ("mt",)),
    },
    "func": _files("bold cbv sbref", _FUNC, ("task",)),
    "dwi": _files("dwi sbref", _DWI),
    "fmap": {
        **_files("phasediff phase1 phase2 magnitude1 magnitude2 magnitude fieldmap", _FMAP_GRE),
        **_files("epi m0scan", _FMAP_EPI, ("dir",)),
        **_files("TB1AFI TB1TFL TB1RFM RB1COR", _RF),
        **_files("TB1DAM", ("acq", "ce", "rec", "run", "flip", "part"), ("flip",)),
        **_files("TB1EPI", _RF, ("echo", "flip")),
        **_files("TB1SRGE", _RF, ("flip", "inv")),
        **_files("TB1map RB1map", ("acq", "ce", "rec", "run")),
    },
    "perf": _files("asl m0scan", _PERF),
}

#: datatype -> entities a file name of it never holds together: npm's bids-validator 1.15 orders
#: func names ``dir`` before ``rec``, BIDS 1.10 (and the schema-based validator) ``rec`` before
#: ``dir``, so no func name with both passes both validators.
EXCLUSIVE_ENTITIES: Mapping[str, tuple[str, str]] = {"func": ("rec", "dir")}

#: Sidecar fields BIDS requires of a suffix (``rules/sidecars``: qmri, fmap, func, asl), whatever its datatype.
REQUIRED_BY_SUFFIX: Mapping[str, tuple[str, ...]] = {
    "MP2RAGE": ("FlipAngle", "InversionTime", "RepetitionTimeExcitation", "RepetitionTimePreparation", "NumberShots",
                "MagneticFieldStrength"),
    "MEGRE": ("EchoTime",), "MESE": ("EchoTime",), "IRT1": ("InversionTime",), "MTR": ("MTState",),
    "VFA": ("FlipAngle", "PulseSequenceType", "RepetitionTimeExcitation"),
    "MTS": ("FlipAngle", "MTState", "RepetitionTimeExcitation"), "MPM": ("FlipAngle", "MTState", "RepetitionTimeExcitation"),
    "TB1DAM": ("FlipAngle",), "TB1EPI": ("EchoTime", "FlipAngle", "TotalReadoutTime", "MixingTime"),
    "TB1AFI": ("RepetitionTimeExcitation",),
    "TB1SRGE": ("FlipAngle", "InversionTime", "RepetitionTimeExcitation", "RepetitionTimePreparation", "NumberShots"),
    "phasediff": ("EchoTime1", "EchoTime2"), "phase1": ("EchoTime",), "phase2": ("EchoTime",), "fieldmap": ("Units",),
    "epi": ("PhaseEncodingDirection",), "bold": ("TaskName",), "m0scan": ("RepetitionTimePreparation",),
}

#: Sidecar fields BIDS requires when a file name holds an entity (``rules/sidecars/entity_rules``).
REQUIRED_BY_ENTITY: Mapping[str, tuple[str, ...]] = {
    "echo": ("EchoTime",), "flip": ("FlipAngle",), "inv": ("InversionTime",), "mt": ("MTState",),
}

PHASE_UNITS = ("rad", "arbitrary")
"""The Units BIDS accepts for ``part-phase`` (required there)."""


def missing_fields(suffix: str, entities: Mapping[str, str], sidecar: Mapping[str, object]) -> list[str]:
    """Fields BIDS requires of a file with this suffix and these entities that ``sidecar`` lacks."""
    wanted = list(REQUIRED_BY_SUFFIX.get(suffix, ()))
    for key in entities:
        wanted += [f for f in REQUIRED_BY_ENTITY.get(key, ()) if f not in wanted]
    if entities.get("part") == "phase":
        wanted.append("Units")
    return [f for f in wanted if sidecar.get(f) in (None, "")]


@dataclass(frozen=True)
class ValueRule:
    """What BIDS accepts as a sidecar field's value (the schema's ``objects/metadata``).

    ``kind``: ``number``, ``integer``, ``string``, ``boolean``, ``numbers`` (an array of numbers) or
    ``strings`` (an array of strings); ``scalar_too`` also accepts one value where ``kind`` is an
    array (``EchoTime``: a number, or one per volume). ``minimum`` (``exclusive``: above it),
    ``maximum``, ``enum`` and ``length`` (of an array) constrain the values.
    """

    kind: str
    minimum: float | None = None
    exclusive: bool = False
    maximum: float | None = None
    enum: tuple[str, ...] = ()
    length: int | None = None
    scalar_too: bool = False


_POSITIVE = ValueRule("number", 0.0, exclusive=True)
_POSITIVE_OR_MANY = ValueRule("numbers", 0.0, exclusive=True, scalar_too=True)
_NON_NEGATIVE_OR_MANY = ValueRule("numbers", 0.0, scalar_too=True)
_NUMBER = ValueRule("number")
_STRING = ValueRule("string")
_STRINGS = ValueRule("strings", scalar_too=True)
_BOOLEAN = ValueRule("boolean")
_AXES = ("i", "i-", "j", "j-", "k", "k-")

#: Sidecar fields ``volume convert`` or ``volume bids`` can write that the BIDS schema constrains for
#: MR files (``objects/metadata``), with what it accepts: a value outside is left out of a dataset's
#: sidecar with a note, never written for the validators to refuse. ``tests/test_bids.py`` checks
#: each against the schema pybids ships.
METADATA: Mapping[str, ValueRule] = {
    **dict.fromkeys(("RepetitionTime", "EchoTime1", "EchoTime2", "InversionTime", "EffectiveEchoSpacing",
                     "AcquisitionDuration", "TotalAcquiredPairs"), _POSITIVE),
    "EchoTime": _POSITIVE_OR_MANY,
    "FlipAngle": ValueRule("numbers", 0.0, exclusive=True, maximum=360.0, scalar_too=True),
    "RepetitionTimeExcitation": ValueRule("number", 0.0),
    **dict.fromkeys(("RepetitionTimePreparation", "PostLabelingDelay", "LabelingDuration"), _NON_NEGATIVE_OR_MANY),
    "SliceTiming": ValueRule("numbers", 0.0),
    **dict.fromkeys(("MagneticFieldStrength", "DelayTime", "DwellTime", "TotalReadoutTime",
                     "MultibandAccelerationFactor", "ParallelReductionFactorInPlane",
                     "ParallelReductionFactorOutOfPlane", "PartialFourier", "MTOffsetFrequency"), _NUMBER),
    "NumberShots": ValueRule("numbers", scalar_too=True),
    "NumberOfVolumesDiscardedByScanner": ValueRule("integer", 0.0),
    **dict.fromkeys(("MTState", "NonlinearGradientCorrection", "SpoilingState", "BackgroundSuppression",
                     "BolusCutOffFlag", "VascularCrushing", "LookLocker"), _BOOLEAN),
    "PhaseEncodingDirection": ValueRule("string", enum=_AXES),
    "SliceEncodingDirection": ValueRule("string", enum=_AXES),
    "MRAcquisitionType": ValueRule("string", enum=("1D", "2D", "3D")),
    "ArterialSpinLabelingType": ValueRule("string", enum=("CASL", "PCASL", "PASL")),
    "M0Type": ValueRule("string", enum=("Separate", "Included", "Estimate", "Absent")),
    "SpoilingType": ValueRule("string", enum=("RF", "GRADIENT", "COMBINED")),
    "PCASLType": ValueRule("string", enum=("balanced", "unbalanced")),
    **dict.fromkeys(("Manufacturer", "ManufacturersModelName", "SoftwareVersions", "SequenceName",
                     "PulseSequenceType", "PulseSequenceDetails", "ReceiveCoilName", "ReceiveCoilActiveElements",
                     "MatrixCoilMode", "CoilCombinationMethod", "ParallelAcquisitionTechnique",
                     "PartialFourierDirection", "BodyPart", "TaskName", "InstitutionName", "InstitutionAddress",
                     "InstitutionalDepartmentName", "DeviceSerialNumber", "StationName", "MRTransmitCoilSequence",
                     "Units"), _STRING),
    **dict.fromkeys(("ScanOptions", "SequenceVariant", "B0FieldIdentifier", "B0FieldSource"), _STRINGS),
    "TablePosition": ValueRule("numbers", length=3),
    "AcquisitionVoxelSize": ValueRule("numbers", 0.0, exclusive=True, length=3),
}


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _scalar_problem(rule: ValueRule, value: object) -> str:
    """Why one value breaks ``rule`` (its kind being a scalar's), or ""."""
    kind = {"numbers": "number", "strings": "string"}.get(rule.kind, rule.kind)
    if kind == "boolean":
        return "" if isinstance(value, bool) else "is not true or false"
    if kind == "string":
        if not isinstance(value, str):
            return "is not text"
        return f"is not one of {', '.join(rule.enum)}" if rule.enum and value not in rule.enum else ""
    if not _is_number(value) or (kind == "integer" and not float(value).is_integer()):  # type: ignore[arg-type]
        return f"is not {'a whole number' if kind == 'integer' else 'a number'}"
    number = float(value)  # type: ignore[arg-type]
    if rule.minimum is not None and (number <= rule.minimum if rule.exclusive else number < rule.minimum):
        return f"is {number:g} (BIDS wants {'above' if rule.exclusive else 'at least'} {rule.minimum:g})"
    if rule.maximum is not None and number > rule.maximum:
        return f"is {number:g} (BIDS wants at most {rule.maximum:g})"
    return ""


def value_problem(key: str, value: object) -> str:
    """Why BIDS would refuse ``value`` for sidecar field ``key`` (:data:`METADATA`), or "" (a field
    without a rule is accepted as it is)."""
    rule = METADATA.get(key)
    if rule is None or value is None:
        return ""
    if rule.kind not in ("numbers", "strings"):
        return _scalar_problem(rule, value)
    if not isinstance(value, (list, tuple)):
        return _scalar_problem(rule, value) if rule.scalar_too else "is not a list"
    if rule.length is not None and len(value) != rule.length:
        return f"has {len(value)} values (BIDS wants {rule.length})"
    for v in value:
        why = _scalar_problem(rule, v)
        if why:
            return f"holds a value that {why}"
    return ""


EXTENSIONS = {"dwi": (".bval", ".bvec")}
"""Files beside the image and its sidecar, by suffix."""

_LABEL = re.compile(r"[^A-Za-z0-9]")


def sanitize_label(text: str) -> str:
    """``text`` in BIDS's label alphabet (letters and digits), everything else dropped."""
    return _LABEL.sub("", str(text))


def entity_value(key: str, value: object) -> str:
    """A valid value of entity ``key``: digits for an index, letters and digits for a label.

    Raises
    ------
    UsageError
        The value is empty once sanitised, or an index that is not a number.
    """
    text = str(value).strip()
    if key in INDEX_ENTITIES:
        if not text.isdigit():
            raise UsageError(f"{key}-{text}: BIDS wants a number (an index) for {key}-")
        return text
    label = sanitize_label(text)
    if not label:
        raise UsageError(f"{key}-{text!r}: nothing of it is in BIDS's label alphabet (letters and digits)")
    if key == "part" and label not in PART_VALUES:
        raise UsageError(f"part-{label}: BIDS allows part-{', part-'.join(PART_VALUES)}")
    return label


def check_entities(datatype: str, suffix: str, entities: Mapping[str, str], where: str = "") -> None:
    """Raise :class:`UsageError` when BIDS does not name ``datatype``/``suffix``, or when
    ``entities`` holds one the suffix does not allow or lacks one it requires."""
    prefix = f"{where}: " if where else ""
    if datatype not in FILES:
        raise UsageError(f"{prefix}datatype {datatype!r} is not one of BIDS's MRI datatypes ({', '.join(FILES)})")
    if suffix not in FILES[datatype]:
        raise UsageError(f"{prefix}{datatype}/ has no suffix {suffix!r} in BIDS {BIDS_VERSION}; it has "
                         f"{', '.join(FILES[datatype])}")
    allowed, required = FILES[datatype][suffix]
    extra = [k for k in entities if k not in allowed and k not in ("sub", "ses")]
    if extra:
        raise UsageError(f"{prefix}{datatype}/{suffix} does not take {', '.join(k + '-' for k in extra)} "
                         f"(it takes {', '.join(k + '-' for k in allowed)})")
    missing = [k for k in required if k not in entities]
    if missing:
        raise UsageError(f"{prefix}{datatype}/{suffix} needs {', '.join(k + '-' for k in missing)}")
    pair = EXCLUSIVE_ENTITIES.get(datatype)
    if pair and all(entities.get(k) for k in pair):
        raise UsageError(f"{prefix}a {datatype} name cannot hold both {pair[0]}- and {pair[1]}- (the two BIDS "
                         "validators order them differently)")


def file_stem(entities: Mapping[str, str], suffix: str) -> str:
    """``sub-01_ses-1_task-rest_run-1_bold``: the entities in BIDS's order, then the suffix."""
    unknown = [k for k in entities if k not in ENTITY_ORDER]
    if unknown:
        raise UsageError(f"unknown BIDS entit{'y' if len(unknown) == 1 else 'ies'}: {', '.join(unknown)}")
    parts = [f"{k}-{entities[k]}" for k in ENTITY_ORDER if entities.get(k)]
    return "_".join(parts + [suffix])


__all__ = ["BIDS_VERSION", "ENTITIES", "ENTITY_ORDER", "EXCLUSIVE_ENTITIES", "EXTENSIONS", "FILES", "INDEX_ENTITIES",
           "METADATA", "PART_VALUES", "PHASE_UNITS", "REQUIRED_BY_ENTITY", "REQUIRED_BY_SUFFIX", "ValueRule",
           "check_entities", "entity_value", "file_stem", "missing_fields", "sanitize_label", "value_problem"]

"""What the BIDS specification says about file names, as data: entities and their order, the
suffixes of each MRI datatype with the entities they allow and require, labels' alphabet.

Taken from the BIDS schema (version :data:`BIDS_VERSION`, ``rules/files/raw`` and
``objects/entities``); ``tests/test_bids.py`` compares it with the schema that pybids ships
when it is installed. Only MRI datatypes are listed: volume converts MR.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

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
_PARAMETRIC = ("task", "acq", "ce", "rec", "run", "chunk")
_FUNC = ("task", "acq", "ce", "rec", "dir", "run", "echo", "part", "chunk")
_DWI = ("acq", "rec", "dir", "run", "part", "chunk")
_FMAP_GRE = ("acq", "run", "chunk")
_FMAP_EPI = ("acq", "ce", "rec", "dir", "run", "part", "chunk")
_RF = ("acq", "ce", "rec", "run", "echo", "flip", "inv", "part", "chunk")
_PERF = ("acq", "rec", "dir", "run", "echo", "part")


def _files(suffixes: str, allowed: tuple[str, ...], required: tuple[str, ...] = ()) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    return {s: (allowed, required) for s in suffixes.split()}


#: datatype -> suffix -> (entities allowed besides sub and ses, entities required).
FILES: Mapping[str, Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "anat": {
        **_files("T1w T2w PDw T2starw FLAIR inplaneT1 inplaneT2 PDT2 angio", _NONPARAMETRIC),
        **_files("T1map T2map T2starmap R1map R2map R2starmap PDmap MTRmap MTsat UNIT1 T1rho MWFmap MTVmap "
                 "Chimap S0map M0map", _PARAMETRIC),
        **_files("MEGRE", ("task", "acq", "ce", "rec", "run", "echo", "part", "chunk"), ("echo",)),
        **_files("MESE", ("task", "acq", "ce", "rec", "dir", "run", "echo", "part", "chunk"), ("echo",)),
        **_files("VFA", ("task", "acq", "ce", "rec", "run", "echo", "flip", "part", "chunk"), ("flip",)),
        **_files("IRT1", ("task", "acq", "ce", "rec", "run", "inv", "part", "chunk"), ("inv",)),
        **_files("MP2RAGE", ("task", "acq", "ce", "rec", "run", "echo", "flip", "inv", "part", "chunk"), ("inv",)),
        **_files("MPM MTS", ("task", "acq", "ce", "rec", "run", "echo", "flip", "mt", "part", "chunk"), ("flip", "mt")),
        **_files("MTR", ("task", "acq", "ce", "rec", "run", "mt", "part", "chunk"), ("mt",)),
    },
    "func": _files("bold cbv sbref", _FUNC, ("task",)),
    "dwi": {**_files("dwi sbref", _DWI), **_files("ADC FA S0map colFA expADC trace", ("acq", "rec", "dir", "run", "chunk"))},
    "fmap": {
        **_files("phasediff phase1 phase2 magnitude1 magnitude2 magnitude fieldmap", _FMAP_GRE),
        **_files("epi m0scan", _FMAP_EPI),
        **_files("TB1AFI TB1TFL TB1RFM RB1COR", _RF),
        **_files("TB1DAM", _RF, ("flip",)),
        **_files("TB1EPI", _RF, ("echo", "flip")),
        **_files("TB1SRGE", _RF, ("flip", "inv")),
        **_files("TB1map RB1map", ("acq", "ce", "rec", "run", "chunk")),
    },
    "perf": _files("asl m0scan", _PERF),
}

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


def file_stem(entities: Mapping[str, str], suffix: str) -> str:
    """``sub-01_ses-1_task-rest_run-1_bold``: the entities in BIDS's order, then the suffix."""
    unknown = [k for k in entities if k not in ENTITY_ORDER]
    if unknown:
        raise UsageError(f"unknown BIDS entit{'y' if len(unknown) == 1 else 'ies'}: {', '.join(unknown)}")
    parts = [f"{k}-{entities[k]}" for k in ENTITY_ORDER if entities.get(k)]
    return "_".join(parts + [suffix])


__all__ = ["BIDS_VERSION", "ENTITIES", "ENTITY_ORDER", "EXTENSIONS", "FILES", "INDEX_ENTITIES", "PART_VALUES",
           "PHASE_UNITS", "REQUIRED_BY_ENTITY", "REQUIRED_BY_SUFFIX", "check_entities", "entity_value", "file_stem",
           "missing_fields", "sanitize_label"]

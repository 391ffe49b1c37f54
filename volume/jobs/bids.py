"""A whole MR session to a BIDS dataset, without a configuration file: plan, inspect, write.

:func:`plan_bids` scans the sources, reads each stack's facts (:mod:`volume.dicom.classify`),
classifies them (a configuration's rules first, when given), names the files (entities in BIDS's
order: :mod:`volume.jobs.bids_names`), links field maps to the runs they correct, checks that
every file BIDS requires a field of has it (a stack whose required value is not in the files goes
to ``sourcedata/`` instead, and the plan says why), and checks the names for collisions. The
:class:`BidsPlan` it returns can be printed (:meth:`BidsPlan.table`), inspected (its ``items``),
and written (:meth:`BidsPlan.write`): each stack converted as ``volume convert`` converts it, with
the BIDS fields added to its sidecar; then ``dataset_description.json``, the README,
``participants.tsv`` and ``*_scans.tsv`` (:mod:`volume.io.bids_dataset`).

>>> plan = plan_bids(["DICOM/"], "bids/", subject="01", session="1")   # doctest: +SKIP
>>> print(plan.table())                                               # doctest: +SKIP
>>> results = plan.write()                                            # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from .._version import __version__
from ..dicom.bids import sidecar_fields
from ..dicom.classify import OMIT, SOURCEDATA, Decision, Facts, classify, session_facts, stack_facts
from ..dicom.loader import Scan, scan
from ..dicom.series import Stack
from ..errors import EXIT_OUTPUT_EXISTS, EXIT_PARTIAL, NoDicomError, UsageError
from ..io.bids_dataset import create_json, create_text, dataset_lock, merge_tsv
from ..io.sidecar import ACQUISITION_FIELDS, BACKSLASH_JOINED
from ..phi import WITHHELD_FROM_DATASETS, uid_key
from .bids_config import Config, ConfigRule, load_config
from .bids_names import (
    direction_label,
    same_instance,
    set_acquisitions,
    set_echoes,
    set_parts,
    set_reconstructions,
    set_runs,
    takes,
    task_label,
)
from .bids_spec import (
    BIDS_VERSION,
    EXCLUSIVE_ENTITIES,
    PHASE_UNITS,
    check_entities,
    file_stem,
    missing_fields,
    sanitize_label,
    value_problem,
)
from .convert import (
    CONVERTED,
    EXISTING,
    FAILED,
    SKIPPED,
    ConvertOptions,
    convert_stack,
    plan_names,
    task_outputs,
)

SOURCE_KEY = "SourceStackKey"
"""Sidecar field naming the stack a file was converted from (a key of its SeriesInstanceUID and
split label, :func:`volume.phi.uid_key`: no UID): a re-run recognises its own files, and a file of
another scan at the same name is never taken for done."""

ASL_REQUIRED = ("ArterialSpinLabelingType", "PostLabelingDelay", "BackgroundSuppression", "M0Type",
                "TotalAcquiredPairs", "RepetitionTimePreparation", "MagneticFieldStrength", "MRAcquisitionType",
                "EchoTime")
"""Sidecar fields BIDS requires of every ASL series (plus LabelingDuration for (P)CASL and
BolusCutOffFlag for PASL), mostly absent from DICOM: a configuration gives them."""

ASL_PER_VOLUME = ("PostLabelingDelay", "LabelingDuration", "RepetitionTimePreparation", "FlipAngle")
"""ASL fields that may hold one value per volume (BIDS checks their length against the volumes)."""

WITHHELD = WITHHELD_FROM_DATASETS
"""Sidecar fields ``volume convert`` writes that a BIDS dataset (made to be shared) leaves out
without ``keep_phi`` (:data:`volume.phi.WITHHELD_FROM_DATASETS`)."""


ADDED_HERE = ("TaskName", "Units")
"""Required fields this module writes itself: TaskName (from the description), Units of a phase
image (:data:`PHASE_UNITS_WRITTEN`)."""

PHASE_UNITS_WRITTEN = "arbitrary"
"""Units of a ``part-phase`` image: the scanner's integer phase scale, not converted to radians."""

MS = 1e-3
"""DICOM times are ms, BIDS's seconds."""

PHASEDIFF_DELTA_TE_S = (1e-4, 1e-2)
"""EchoTime2 - EchoTime1 BIDS accepts for a phase difference map (seconds)."""

DATASET_README = """\
# {name}

A BIDS dataset written by volume {version} (`volume bids`) from DICOM files.

Each subject's (and session's) images were classified from their DICOM headers by named rules
(see volume's docs/bids.md); images that are not raw BIDS data (localizers, scanner-derived maps,
reformats, series whose required fields the files lack) are in sourcedata/, converted but outside
the dataset. No patient identity was written unless --keep-phi was given.

Describe the study here: its aims, participants, tasks and acquisition.
"""


@dataclass
class BidsItem:
    """One stack of the plan: where it goes, which rule decided, and what its sidecar gains.

    ``datatype`` is a BIDS datatype (``anat``, ``func``, ``dwi``, ``fmap``, ``perf``),
    ``sourcedata`` or ``omit``; ``path`` the file stem relative to the dataset's root (no
    extension); ``sidecar`` the fields added to the JSON sidecar (None: removed); ``notes`` what
    the plan shows about it; ``reason`` why it is not raw BIDS data.
    """

    stack: Stack
    facts: Facts
    rule: str
    datatype: str
    suffix: str = ""
    entities: dict[str, str] = field(default_factory=dict)
    path: str = ""
    sidecar: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    reason: str = ""
    aslcontext: tuple[str, ...] = ()
    guess: str = ""
    dropped: dict[str, str] = field(default_factory=dict)

    @property
    def is_bids(self) -> bool:
        """True for a file of the raw dataset (not sourcedata, not left out)."""
        return self.datatype not in (SOURCEDATA, OMIT)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly summary (what ``volume bids --plan --json`` prints)."""
        return {
            "stack_id": self.stack.id, "series_number": self.stack.series_number,
            "series_description": self.stack.series_description, "rule": self.rule, "guess": self.guess,
            "datatype": self.datatype, "suffix": self.suffix, "entities": dict(self.entities),
            "path": self.path, "notes": list(self.notes), "reason": self.reason,
            "sidecar": {k: v for k, v in self.sidecar.items() if k != SOURCE_KEY},
        }


@dataclass(frozen=True)
class BidsResult:
    """What writing one item did: ``converted``, ``existing`` (there from an earlier run),
    ``skipped`` (another scan's file holds the name), ``failed`` or ``omitted``."""

    stack_id: str
    path: str
    status: str
    files: tuple[str, ...] = ()
    message: str = ""
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["files"], d["warnings"] = list(self.files), list(self.warnings)
        return d


OMITTED = "omitted"
"""The status of an item no image could be written for."""


@dataclass
class BidsPlan:
    """The plan of one subject (and session): every stack of the sources and where it goes.

    Attributes
    ----------
    root
        The dataset's folder.
    subject, session
        The labels (without ``sub-``/``ses-``).
    items
        One :class:`BidsItem` per stack: its facts, the rule that placed it, its path in the
        dataset (or in ``sourcedata/``) and why.
    config
        The configuration the plan followed, if any.
    notes
        What the plan says about the whole subject.

    Examples
    --------
    >>> plan = volume.plan_bids("ct", "bids", subject="01")
    >>> plan.session_dir, [item.path for item in plan.items]
    ('sub-01', ['sourcedata/sub-01/2_Phantom_head'])
    """

    root: Path
    subject: str
    session: str | None
    items: list[BidsItem]
    config: Config | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def subject_dir(self) -> str:
        return f"sub-{self.subject}"

    @property
    def session_dir(self) -> str:
        """``sub-01/ses-1`` or ``sub-01``: where this plan's files go."""
        return f"sub-{self.subject}" + (f"/ses-{self.session}" if self.session else "")

    def table(self) -> str:
        """The plan as text: one line per stack (id, description, destination, rule), notes indented."""
        lines = []
        for item in self.items:
            where = "left out" if item.datatype == OMIT else item.path
            desc = " ".join(item.stack.series_description.split()) or "-"
            lines.append(f"{item.stack.id}  {desc}  ->  {where}  [{item.rule}]")
            for note in ([item.reason] if item.reason else []) + item.notes:
                lines.append(f"    {note}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"root": str(self.root), "subject": self.subject, "session": self.session,
                "bids_version": BIDS_VERSION, "items": [i.to_dict() for i in self.items], "notes": list(self.notes)}

    def write(self, *, force: bool = False, keep_phi: bool = False, options: ConvertOptions | None = None,
              on_result: Callable[[BidsResult], None] | None = None,
              progress: Callable[[int], None] | None = None) -> list[BidsResult]:
        """Write the plan: every item converted (re-runs skip what exists), then the dataset files.

        Parameters
        ----------
        force
            Overwrite files that exist (otherwise a file from another scan at a planned name is
            refused, and this run's own files from an earlier run are kept).
        keep_phi
            Write identity: into sidecars (as ``volume convert --keep-phi``), age and sex into
            participants.tsv, acquisition times into the sidecars and scans.tsv.
        options
            Conversion options (format, gzip level, scaling...); ``force``, ``skip_existing`` and
            ``keep_phi`` are set here.
        """
        return write_plan(self, force=force, keep_phi=keep_phi, options=options, on_result=on_result,
                          progress=progress)


# --- planning ----------------------------------------------------------------------------------


def subject_label(text: str, what: str = "subject") -> str:
    """A subject or session label in BIDS's alphabet (``sub-`` prefix dropped)."""
    raw = str(text).strip()
    prefix = "sub-" if what == "subject" else "ses-"
    if raw.lower().startswith(prefix):
        raw = raw[len(prefix):]
    label = sanitize_label(raw)
    if not label:
        raise UsageError(f"--{what} {text!r}: a BIDS label needs letters or digits")
    return label


def _planned_sidecar(stack: Stack) -> dict[str, Any]:
    """The sidecar fields a check needs, as convert will write them: the header's times in
    seconds, then :func:`volume.dicom.bids.sidecar_fields`."""
    acq = stack.first.acquisition
    out: dict[str, Any] = {}
    for key in ("EchoTime", "RepetitionTime", "InversionTime"):
        value = acq.get(key)
        try:
            number = float(value[0] if isinstance(value, (list, tuple)) else value)
        except (TypeError, ValueError, IndexError):
            continue
        if number > 0:
            out[key] = number * MS
    for key in ("MagneticFieldStrength", "MRAcquisitionType", "FlipAngle"):
        if acq.get(key) not in (None, ""):
            out[key] = acq[key]
    if stack.modality == "MR" and not stack.problem:
        out.update(sidecar_fields(stack))
    return out


def _config_values(item_facts: Facts, sidecar: Mapping[str, Any], decision: Decision) -> dict[str, Any]:
    """What a configuration rule can match: the sidecar's fields and a few of the stack's."""
    return {
        **sidecar,
        "SeriesDescription": item_facts.description, "ProtocolName": item_facts.protocol,
        "SeriesNumber": item_facts.series_number, "ImageType": list(item_facts.image_type),
        "StackId": item_facts.stack_id, "StackLabel": item_facts.label, "Volumes": item_facts.volumes,
        "Rule": decision.rule, "Datatype": decision.datatype, "Suffix": decision.suffix,
    }


def _decide(stack: Stack, facts: Facts, sidecar: Mapping[str, Any], config: Config | None) -> BidsItem:
    decision = classify(facts)
    guess = f"{decision.datatype}/{decision.suffix}" if decision.suffix else decision.datatype
    rule: ConfigRule | None = None
    if config is not None and decision.datatype != OMIT:
        rule = config.first_match(_config_values(facts, sidecar, decision))
    if rule is not None and not rule.datatype:
        return BidsItem(stack, facts, f"{decision.rule} + config: {rule.name}", decision.datatype, decision.suffix,
                        {**decision.entities, **rule.entities}, sidecar=dict(rule.sidecar),
                        aslcontext=rule.aslcontext, guess=guess)
    if rule is not None:
        item = BidsItem(stack, facts, f"config: {rule.name}", rule.datatype, rule.suffix, dict(rule.entities),
                        sidecar=dict(rule.sidecar), aslcontext=rule.aslcontext, guess=guess)
        if rule.datatype == SOURCEDATA:
            item.reason = f"the configuration's rule {rule.name!r} sends it to sourcedata/"
        return item
    item = BidsItem(stack, facts, decision.rule, decision.datatype, decision.suffix, dict(decision.entities),
                    guess=guess)
    if not item.is_bids:
        item.reason = decision.why + (f": {stack.problem}" if decision.datatype == OMIT and stack.problem else "")
    return item


def _to_sourcedata(item: BidsItem, reason: str) -> None:
    item.notes.append(f"would be {item.datatype}/{item.suffix}")
    item.datatype, item.suffix, item.entities, item.reason = SOURCEDATA, "", {}, reason


def _attach_sbrefs(items: Sequence[BidsItem]) -> set[int]:
    """SBRefs take the entities of the run they precede (set later); returns their ids."""
    by_index = {i.facts.index: i for i in items}
    attached = set()
    for item in items:
        if item.suffix != "sbref" or item.rule.startswith("config"):
            continue
        target = by_index.get(item.facts.sbref_for) if item.facts.sbref_for is not None else None
        if item.datatype == "dwi":
            target = next((t for t in items if t.datatype == "dwi" and t.suffix == "dwi"
                           and t.facts.order > item.facts.order and t.facts.ped == item.facts.ped), None)
        if target is not None and target.datatype == item.datatype:
            item.sidecar["_sbref_of"] = id(target)
            attached.add(id(item))
    return attached


def _set_task(item: BidsItem) -> None:
    if item.datatype != "func":
        return
    if "task" in item.entities:
        item.sidecar.setdefault("TaskName", item.entities["task"])
        return
    label, name = task_label(item.facts.description or item.facts.protocol)
    item.entities["task"] = label
    if item.suffix == "bold":
        item.sidecar.setdefault("TaskName", name)
    if label == "unknown":
        item.notes.append("the description names no task: task-unknown (a --config rule can name it)")
    else:
        item.notes.append(f"task-{label} from the description")


def _set_direction(item: BidsItem) -> None:
    if "dir" in item.entities or not takes(item, "dir") or item.datatype == "anat":
        return
    label = direction_label(item.facts.ped, item.stack.first.iop)
    if label:
        item.entities["dir"] = label
        item.notes.append(f"dir-{label}: PhaseEncodingDirection {item.facts.ped} in patient terms")


def _requirements(item: BidsItem, items: Sequence[BidsItem]) -> str:
    """Why the item cannot be what it was classified as (a field BIDS requires is not in the
    files), or ""; fills what the files give by a named rule (EchoTime1/2 of a phase difference
    from its magnitude echoes)."""
    f, sc = item.facts, {**_view(item), "TaskName": "from the description"}
    if item.datatype == "anat" and f.volumes > 1:
        return "BIDS anat images are 3D; this stack has several volumes"
    if item.datatype == "func" and item.suffix == "bold" and f.volumes < 2:
        return "BIDS checks that a bold is 4D; this stack has one volume"
    if item.datatype == "func" and item.suffix == "bold" and not sc.get("RepetitionTime") and "VolumeTiming" not in sc:
        return "RepetitionTime is not in the files (BIDS requires it of a bold)" + _why_dropped(item, "RepetitionTime")
    if item.datatype == "fmap" and item.suffix == "epi":
        if not sc.get("PhaseEncodingDirection"):
            return "the phase-encoding direction (with its sign) is not in the files (BIDS requires it of an epi field map)"
        if not (sc.get("TotalReadoutTime") or sc.get("EffectiveEchoSpacing")):
            return ("neither TotalReadoutTime nor EffectiveEchoSpacing follows from the files (BIDS requires one)"
                    + _why_dropped(item, "TotalReadoutTime", "EffectiveEchoSpacing"))
    if item.suffix == "phasediff":
        if not (sc.get("EchoTime1") and sc.get("EchoTime2")):
            times = f.magnitude_echo_times
            if len(times) != 2:
                return "EchoTime1 and EchoTime2 are not in the files (BIDS requires them of a phase difference)"
            item.sidecar.update(EchoTime1=round(times[0] * MS, 8), EchoTime2=round(times[1] * MS, 8))
            item.notes.append("EchoTime1/EchoTime2: the echo times of its magnitude images")
            sc = {**sc, **item.sidecar}
        delta = float(sc["EchoTime2"]) - float(sc["EchoTime1"])
        if not PHASEDIFF_DELTA_TE_S[0] <= delta <= PHASEDIFF_DELTA_TE_S[1]:
            return f"EchoTime2 - EchoTime1 = {delta * 1000:.3g} ms, outside the 0.1-10 ms BIDS accepts"
    if item.suffix in ("phase1", "phase2") and not sc.get("EchoTime"):
        return "EchoTime is not in the files (BIDS requires it of phase1/phase2)"
    if item.suffix == "fieldmap" and not sc.get("Units"):
        return "the field map's units are not in the files (BIDS requires Units)"
    if item.suffix in ("magnitude1", "magnitude2", "magnitude") and f.volumes > 1:
        return "a field map's magnitude must be 3D"
    if item.datatype == "anat" and "inv" in item.entities and not sc.get("InversionTime"):
        return "InversionTime is not in the files (BIDS requires it with inv-)"
    if item.datatype == "dwi" and item.suffix == "dwi":
        diffusion = item.stack.diffusion
        if diffusion is None:
            return "no b-values for .bval/.bvec"
        if diffusion.get("bvecs_lps") is None:
            return f"BIDS requires a dwi's .bvec: {diffusion.get('bvecs_missing') or 'gradient directions are missing'}"
    if item.datatype == "perf":
        return _asl_requirements(item, sc)
    missing = [k for k in missing_fields(item.suffix, item.entities, sc) if k not in ADDED_HERE]
    if missing:
        return (f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not in the files (BIDS requires "
                f"{'it' if len(missing) == 1 else 'them'} of {item.suffix}; a --config rule's sidecar can give "
                f"{'it' if len(missing) == 1 else 'them'})")
    return ""


def _asl_requirements(item: BidsItem, sc: Mapping[str, Any]) -> str:
    """What BIDS requires of an ASL series or its M0 (mostly given by a configuration): the fields
    of :data:`ASL_REQUIRED` and those its labelling type, M0 type and bolus cut-off call for, the
    volume types of aslcontext.tsv, and per-volume fields (:data:`ASL_PER_VOLUME`) of one value per
    volume (an M0 scan for M0Type Separate: :func:`_group_consistency`)."""
    required = list(ASL_REQUIRED) if item.suffix == "asl" else ["RepetitionTimePreparation", "EchoTime"]
    if item.suffix == "asl":
        kind = str(sc.get("ArterialSpinLabelingType", "")).upper()
        required += ["LabelingDuration"] if kind in ("CASL", "PCASL") else ["BolusCutOffFlag"] if kind == "PASL" else []
        if kind == "PASL" and sc.get("BolusCutOffFlag") is True:
            required += ["BolusCutOffDelayTime", "BolusCutOffTechnique"]
        if sc.get("M0Type") == "Estimate":
            required.append("M0Estimate")
        if str(sc.get("MRAcquisitionType", "")).upper() == "2D":
            required.append("SliceTiming")
    missing = [k for k in required if sc.get(k) in (None, "")]
    if missing:
        return (f"ASL: {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not in the files "
                "(BIDS requires them; give them in a --config rule's sidecar)")
    if item.suffix != "asl":
        return ""
    volumes = item.facts.volumes
    if len(item.aslcontext) != volumes:
        return (f"ASL: aslcontext.tsv needs the type of each of the {volumes} volumes, not in the "
                "files (give them as a --config rule's aslcontext)")
    uneven = [k for k in ASL_PER_VOLUME if isinstance(sc.get(k), list) and len(sc[k]) != volumes]
    if uneven:
        return f"ASL: {', '.join(uneven)} must hold one value, or one per volume ({volumes})"
    return ""


def _group_consistency(items: Sequence[BidsItem]) -> None:
    """Files that need a partner go to sourcedata without it: a field map's magnitude whose phase or
    field map is not in the dataset, a field map in Hz without a magnitude, an ASL series whose
    M0Type says Separate without an M0 scan."""
    by_series: dict[tuple[str, int | None], list[BidsItem]] = defaultdict(list)
    for item in items:
        by_series[item.facts.series].append(item)
    m0 = any(i.datatype == "perf" and i.suffix == "m0scan" for i in items)
    for item in items:
        if item.datatype == "perf" and item.suffix == "asl" and _view(item).get("M0Type") == "Separate" and not m0:
            _to_sourcedata(item, "ASL: M0Type Separate, but no M0 scan of it is in the dataset (BIDS requires one then)")
    fmaps = [i for i in items if i.datatype == "fmap" and i.suffix != "epi"]
    for item in fmaps:
        if item.rule.startswith("config"):
            continue
        if item.suffix == "fieldmap":
            if not any(m.datatype == "fmap" and m.suffix == "magnitude" for m in by_series[item.facts.series]):
                _to_sourcedata(item, "a field map in Hz without its magnitude image (BIDS requires one)")
        elif item.suffix == "magnitude":
            if not any(m.datatype == "fmap" and m.suffix == "fieldmap" for m in by_series[item.facts.series]):
                _to_sourcedata(item, "the magnitude of a field map that is not in the dataset")
        elif item.suffix.startswith("magnitude"):
            if not any(p.datatype == "fmap" and p.suffix in ("phasediff", "phase1", "phase2")
                       and p.facts.grid == item.facts.grid and abs(p.facts.order - item.facts.order) <= 2 for p in fmaps):
                _to_sourcedata(item, "magnitude images of a field map whose phase is not in the dataset")


def _name(items: Sequence[BidsItem], subject: str, session: str | None) -> None:
    """Entities and paths of the BIDS items (the others get theirs in :func:`plan_bids`)."""
    base = {"sub": subject, **({"ses": session} if session else {})}
    folder = f"sub-{subject}" + (f"/ses-{session}" if session else "")
    bids = [i for i in items if i.is_bids]
    attached = _attach_sbrefs(bids)
    main = [i for i in bids if id(i) not in attached]
    for item in main:
        _set_task(item)
        _set_direction(item)
    set_parts(main)
    set_echoes(main)
    set_reconstructions(main)
    _exclusive_entities(main)
    set_acquisitions(main)
    set_runs(main)
    by_id = {id(i): i for i in bids}
    for item in bids:
        if id(item) in attached:
            target = by_id[item.sidecar.pop("_sbref_of")]
            item.entities = {k: v for k, v in target.entities.items() if takes(item, k)}
            item.notes.append(f"the single-band reference of {file_stem({**base, **target.entities}, target.suffix)}")
        item.sidecar.pop("_sbref_of", None)
    for item in bids:
        entities = {**base, **{k: v for k, v in item.entities.items()}}
        try:
            check_entities(item.datatype, item.suffix, entities, f"series {item.stack.id}")
        except UsageError as exc:
            if _configured(item):
                raise
            _to_sourcedata(item, f"no valid BIDS name: {exc}")
            continue
        item.entities = entities
        item.path = f"{folder}/{item.datatype}/{file_stem(entities, item.suffix)}"


def _exclusive_entities(items: Sequence[BidsItem]) -> None:
    """A func name cannot hold both rec- and dir- (:data:`volume.jobs.bids_spec.EXCLUSIVE_ENTITIES`):
    where reconstructions of one acquisition need rec-, dir- is left out of the name (the sidecar's
    PhaseEncodingDirection still says it)."""
    for item in items:
        pair = EXCLUSIVE_ENTITIES.get(item.datatype)
        if pair and not _configured(item) and all(item.entities.get(k) for k in pair):
            dropped = item.entities.pop(pair[1])
            item.notes = [n for n in item.notes if not n.startswith(f"{pair[1]}-{dropped}:")]
            item.notes.append(f"{pair[1]}-{dropped} (PhaseEncodingDirection {item.facts.ped}) left out of the name: BIDS 1.10 and npm's bids-validator 1.x order "
                              f"{pair[0]}- and {pair[1]}- differently in {item.datatype} names, so one name cannot "
                              "hold both")


def _configured(item: BidsItem) -> bool:
    """True when a configuration rule chose the item's datatype and suffix."""
    return item.rule.startswith("config")


def _resolve_collisions(items: Sequence[BidsItem]) -> None:
    """Two stacks the classifier named alike (nothing in the files tells them apart): the later
    goes to sourcedata with a note. Names a configuration chose are left to
    :func:`_check_collisions`, which refuses them."""
    seen: dict[str, BidsItem] = {}
    for item in sorted((i for i in items if i.is_bids), key=lambda i: (_configured(i), i.facts.order)):
        key = item.path.casefold()
        if key in seen and not _configured(item):
            first = seen[key]
            copy = (f"the same acquisition as series {first.stack.id} (one protocol, grid and acquisition time: a copy, or a "
                    "reconstruction the files do not tell apart); "
                    if same_instance(item.facts, first.facts) else "")
            _to_sourcedata(item, f"{copy}it would share the name {item.path} with series {first.stack.id}; "
                                 "a --config rule can tell them apart")
            continue
        seen.setdefault(key, item)


def _entity_requirements(items: Sequence[BidsItem]) -> None:
    """What the entities require: Units of a phase image (written, :data:`PHASE_UNITS_WRITTEN`),
    EchoTime with echo-, InversionTime with inv- (a file that lacks one goes to sourcedata/)."""
    for item in items:
        if not item.is_bids:
            continue
        units = _view(item).get("Units")
        if item.entities.get("part") == "phase" and not units:
            item.sidecar["Units"] = PHASE_UNITS_WRITTEN
            item.notes.append("Units arbitrary: the scanner's phase values, not converted to radians")
        elif item.entities.get("part") == "phase" and units not in PHASE_UNITS:
            _to_sourcedata(item, f"a phase image in {units} (BIDS takes part-phase images in "
                                 f"{' or '.join(PHASE_UNITS)})")
            continue
        missing = missing_fields(item.suffix, item.entities, _view(item))
        if missing:
            _to_sourcedata(item, f"{', '.join(missing)} not in the files (BIDS requires "
                                 f"{'it' if len(missing) == 1 else 'them'} with {item.path.rsplit('_', 1)[0]})")


def _acquisition_fields(acq: Mapping[str, Any]) -> dict[str, Any]:
    """The header fields ``volume convert`` writes into every sidecar (:data:`ACQUISITION_FIELDS`),
    as it writes them: multi-valued strings joined, numbers scaled to BIDS's units."""
    out: dict[str, Any] = {}
    for keyword, key, scale in ACQUISITION_FIELDS:
        value = acq.get(keyword)
        if value in (None, "", []) or keyword in ("AcquisitionTime", "ImageType"):
            continue
        if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
            values = list(value)
            if keyword in BACKSLASH_JOINED:
                out[key] = "\\".join(str(v) for v in values)
                continue
            value = values[0] if len(values) == 1 else values
        if isinstance(value, (int, float)) and not isinstance(value, bool) and scale is not None:
            value = value * scale
        elif isinstance(value, list) and scale is not None:
            value = [v * scale if isinstance(v, (int, float)) else v for v in value]
        out[key] = value.strip() if isinstance(value, str) else value
    return out


def _as_written(item: BidsItem) -> dict[str, Any]:
    """The item's sidecar as ``volume convert`` will write it: the header's fields, the stack's
    BIDS fields (:func:`volume.dicom.bids.sidecar_fields`), then the plan's (None removes a field)."""
    out = {**_acquisition_fields(item.stack.first.acquisition), **item.facts.sidecar}
    for key, value in item.sidecar.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def _view(item: BidsItem) -> dict[str, Any]:
    """:func:`_as_written` without the fields BIDS would refuse (``item.dropped``)."""
    return {k: v for k, v in _as_written(item).items() if k not in item.dropped}


def _why_dropped(item: BidsItem, *keys: str) -> str:
    reasons = [f"{k} {item.dropped[k]}" for k in keys if k in item.dropped]
    return f" ({'; '.join(reasons)}: left out)" if reasons else ""


def _check_values(item: BidsItem) -> None:
    """Fill ``item.dropped``: fields the files give that BIDS refuses, each with why. A value out of
    what BIDS accepts (:data:`volume.jobs.bids_spec.METADATA`: an echo time of 0, a negative slice
    time), and fields contradicting others: SliceTiming past RepetitionTime or of another length
    than the slices, EffectiveEchoSpacing whose product with the phase-encoding lines exceeds
    RepetitionTime, EffectiveEchoSpacing not below TotalReadoutTime (then neither is kept: the files
    do not say which is wrong). Fields a configuration gives are its own (checked when it is loaded)."""
    written = _as_written(item)
    own = set(item.sidecar) if "config: " in item.rule else set()
    for key, value in written.items():
        why = value_problem(key, value)
        if why and key not in own:
            item.dropped[key] = why
    sc = {k: v for k, v in written.items() if k not in item.dropped}
    timing, tr = sc.get("SliceTiming"), sc.get("RepetitionTime")
    if timing and tr and max(timing) > tr:
        item.dropped["SliceTiming"] = f"ends at {max(timing):.4g} s, past RepetitionTime {tr:.4g} s"
    elif timing and "SliceEncodingDirection" not in sc and len(timing) != item.stack.n_slices:
        item.dropped["SliceTiming"] = f"holds {len(timing)} times for {item.stack.n_slices} slices"
    ees, trt, ped = sc.get("EffectiveEchoSpacing"), sc.get("TotalReadoutTime"), str(sc.get("PhaseEncodingDirection") or "")
    lines = {"i": item.stack.cols, "j": item.stack.rows}.get(ped[:1])
    if ees and tr and lines and ees * lines > tr:
        item.dropped["EffectiveEchoSpacing"] = f"times the {lines} phase-encoding lines exceeds RepetitionTime {tr:.4g} s"
    elif ees and trt and ees >= trt:
        why = f"EffectiveEchoSpacing {ees:.4g} s is not below TotalReadoutTime {trt:.4g} s"
        item.dropped.update(EffectiveEchoSpacing=why, TotalReadoutTime=why)


def _bare_facts(stack: Stack, index: int) -> Facts:
    """The facts of a stack whose header could not be read: what the scan knows."""
    return Facts(index=index, stack_id=stack.id, series_uid=stack.series_uid, series_number=stack.series_number,
                 description=stack.series_description or "", protocol="", modality=stack.modality,
                 kind=stack.kind, problem=stack.problem, rgb=stack.rgb, label=stack.label, volumes=stack.n_frames,
                 slices=stack.n_slices, grid=(stack.rows, stack.cols, stack.n_slices, ()))


# --- field maps --------------------------------------------------------------------------------


def _fieldmap_groups(items: Sequence[BidsItem]) -> list[list[BidsItem]]:
    """The session's field maps: a GRE field map's files (one acquisition), a reverse
    phase-encoding pair of epi files (same axis, opposite signs, same grid, acquired one after
    the other), or a lone epi."""
    gre = [i for i in items if i.datatype == "fmap" and i.suffix != "epi"]
    groups: list[list[BidsItem]] = []
    for item in gre:
        for g in groups:
            if any(same_instance(item.facts, m.facts) or (item.facts.grid == m.facts.grid
                   and abs(item.facts.order - m.facts.order) <= 2) for m in g):
                g.append(item)
                break
        else:
            groups.append([item])
    epis = sorted((i for i in items if i.datatype == "fmap" and i.suffix == "epi"), key=lambda i: i.facts.order)
    used: set[int] = set()
    for k, a in enumerate(epis):
        if id(a) in used:
            continue
        group = [a]
        used.add(id(a))
        for b in epis[k + 1:]:
            if id(b) in used or b.facts.grid[:3] != a.facts.grid[:3] or b.facts.pe_axis != a.facts.pe_axis:
                continue
            if b.facts.ped != a.facts.ped and b.facts.order - a.facts.order <= 2:
                group.append(b)
                used.add(id(b))
                break
        groups.append(group)
    return groups


def _eligible(group: Sequence[BidsItem], target: BidsItem) -> bool:
    g0 = group[0].facts
    t = target.facts
    if g0.shim is not None and t.shim is not None and g0.shim != t.shim:
        return False
    if group[0].suffix == "epi":
        return bool(t.pe_axis) and t.pe_axis == g0.pe_axis
    return True


def _family(group: Sequence[BidsItem]) -> str:
    """The datatype a field map serves first: ``dwi`` for b=0 references of a diffusion sequence."""
    return "dwi" if group[0].rule.startswith("dwi-b0-epi") else "func"


def _preference(group: Sequence[BidsItem], target: BidsItem) -> tuple[int, int]:
    """Sort key of a field map for a run: its family first, then the last acquired before the
    run, then the first after it."""
    when, order = min(m.facts.order for m in group), target.facts.order
    family = 0 if _family(group) == target.datatype else 1
    return (family, order - when if when < order else 10_000 + when - order)


def link_fieldmaps(items: Sequence[BidsItem], subject: str, session: str | None) -> None:
    """B0FieldIdentifier on each field map's files, B0FieldSource on each run it corrects, and
    IntendedFor (paths relative to the subject's folder) for older tools.

    A run (bold, sbref, dwi, asl) takes the field map that is eligible (same shim settings where
    the files carry them; an epi pair on the run's phase-encoding axis) and serves its datatype
    first (b=0 references of a diffusion sequence serve DWI), acquired last before it, else first
    after it.
    """
    groups = _fieldmap_groups(items)
    prefix = f"ses{session}" if session else ""
    ids = [f"{prefix}fmap{k + 1}" if prefix else f"fmap{k + 1}" for k in range(len(groups))]
    for ident, group in zip(ids, groups, strict=True):
        for member in group:
            member.sidecar["B0FieldIdentifier"] = ident
    targets = [i for i in items if i.is_bids and (i.datatype, i.suffix) in
               (("func", "bold"), ("func", "sbref"), ("dwi", "dwi"), ("dwi", "sbref"), ("perf", "asl"))]
    intended: dict[int, list[str]] = defaultdict(list)
    for target in targets:
        eligible = [k for k, g in enumerate(groups) if _eligible(g, target)]
        if not eligible:
            continue
        best = min(eligible, key=lambda k, t=target: _preference(groups[k], t))
        target.sidecar["B0FieldSource"] = ids[best]
        intended[best].append(target.path.split("/", 1)[1] + ".nii.gz")
        target.notes.append(f"corrected by field map {ids[best]} ({', '.join(m.suffix for m in groups[best])})")
    for k, group in enumerate(groups):
        if intended[k]:
            for member in group:
                member.sidecar["IntendedFor"] = sorted(intended[k])
    m0 = [i for i in items if i.datatype == "perf" and i.suffix == "m0scan"]
    asl = [i for i in items if i.datatype == "perf" and i.suffix == "asl"]
    for item in m0:
        item.sidecar.setdefault("IntendedFor", [a.path.split("/", 1)[1] + ".nii.gz" for a in asl])


def _check_collisions(items: Sequence[BidsItem]) -> None:
    seen: dict[str, BidsItem] = {}
    for item in items:
        if not item.path:
            continue
        key = item.path.casefold()
        if key in seen:
            other = seen[key]
            raise UsageError(f"series {other.stack.id} and {item.stack.id} would both be {item.path}; "
                             "tell them apart with a --config rule (acq- or run-)")
        seen[key] = item


def _scanned(sources: str | os.PathLike[str] | Scan | Iterable[str | os.PathLike[str]],
             progress: Callable[[int], None] | None) -> Scan:
    """The scan of the sources (a :class:`Scan` as it is); none without a DICOM image."""
    if isinstance(sources, Scan):
        found = sources
    else:
        paths = [sources] if isinstance(sources, (str, os.PathLike)) else list(sources)
        found = scan([os.fspath(p) for p in paths], progress=progress)
    if not found.stacks:
        raise NoDicomError(f"{', '.join(found.paths)}: no DICOM images found"
                           + (f" ({found.skipped})" if found.skipped else ""))
    return found


def _stack_facts(stacks: list[Stack]) -> tuple[list[Any], list[dict[str, Any]], dict[int, str]]:
    """Each stack's facts for the classifier and its planned sidecar; for a stack whose headers
    cannot be read, bare facts, an empty sidecar and why (by index): one such stack must not stop
    the session."""
    planned, facts, unread = [], [], {}
    for k, stack in enumerate(stacks):
        try:
            sidecar = _planned_sidecar(stack)
            facts.append(stack_facts(stack, sidecar, k))
        except Exception as exc:  # noqa: BLE001 - one unreadable header must not stop the session
            sidecar = {}
            facts.append(_bare_facts(stack, k))
            unread[k] = f"its headers could not be read for classification ({type(exc).__name__}: {exc})"
        planned.append(sidecar)
    return facts, planned, unread


def plan_bids(sources: str | os.PathLike[str] | Scan | Iterable[str | os.PathLike[str]], root: str | os.PathLike[str],
              *, subject: str, session: str | None = None, config: str | os.PathLike[str] | Config | None = None,
              keep_phi: bool = False, progress: Callable[[int], None] | None = None) -> BidsPlan:
    """Plan one subject's (and session's) BIDS files from DICOM sources (folders or files).

    Parameters
    ----------
    sources
        DICOM folders or files (scanned, headers only), or a :class:`~volume.dicom.Scan`.
    root
        The dataset's folder (it may exist and hold other subjects and sessions).
    subject, session
        Labels (letters and digits; ``sub-``/``ses-`` prefixes are dropped).
    config
        A configuration file (JSON or TOML, :mod:`volume.jobs.bids_config`) or a loaded one.
    keep_phi
        Keep acquisition times in the sidecars (otherwise left out, :data:`WITHHELD`).
    progress
        Called with the number of files scanned, as they are.

    Returns
    -------
    BidsPlan
        Every stack and where it goes (:meth:`BidsPlan.table` shows it; :meth:`BidsPlan.write`
        writes the dataset).

    Raises
    ------
    NoDicomError
        No DICOM image in the sources.
    UsageError
        A bad label or configuration, or two stacks planned at one name.

    Examples
    --------
    >>> plan = volume.plan_bids("ct", "bids", subject="01")
    >>> print(plan.table())
    2  Phantom head  ->  sourcedata/sub-01/2_Phantom_head  [not-mr]
        BIDS raw MRI holds MR images only
    """
    subject = subject_label(subject)
    session = subject_label(session, "session") if session not in (None, "") else None
    cfg = load_config(config) if isinstance(config, (str, os.PathLike)) else config
    stacks = list(_scanned(sources, progress).stacks)
    stems = dict(zip(map(id, stacks), plan_names(stacks), strict=True))
    facts, planned, unread = _stack_facts(stacks)
    facts = session_facts(facts)
    items = [_decide(s, f, p, cfg) for s, f, p in zip(stacks, facts, planned, strict=True)]
    for k, why in unread.items():
        if items[k].datatype != OMIT:
            _to_sourcedata(items[k], why)
    for item in items:
        if item.is_bids:
            _check_values(item)
            why = _requirements(item, items)
            if why:
                _to_sourcedata(item, why)
    _group_consistency(items)
    folder = f"sub-{subject}" + (f"/ses-{session}" if session else "")
    _name(items, subject, session)
    _entity_requirements(items)
    _resolve_collisions(items)
    for item in items:
        if not item.is_bids:
            item.path = "" if item.datatype == OMIT else f"sourcedata/{folder}/{stems[id(item.stack)]}"
    link_fieldmaps(items, subject, session)
    for item in items:
        _finish_sidecar(item, keep_phi)
    _check_collisions(items)
    order = {id(i): i.facts.order for i in items}
    items.sort(key=lambda i: order[id(i)])
    plan = BidsPlan(Path(root), subject, session, items, cfg)
    existing = Path(root) / folder
    if existing.is_dir() and any(p.is_file() for p in existing.rglob("*")):
        plan.notes.append(f"{folder} holds files already: this plan's files join them (its runs are numbered "
                          "among its own stacks; a file of another series at a planned name is refused)")
    return plan


def _finish_sidecar(item: BidsItem, keep_phi: bool) -> None:
    """The fields every written sidecar gains or loses: the source key, withheld identity, and in a
    dataset file's sidecar the fields BIDS would refuse (``item.dropped``, each with a note)."""
    stack = item.stack
    item.sidecar[SOURCE_KEY] = uid_key(f"{stack.series_uid}|{stack.label}")
    if not keep_phi:
        for key in WITHHELD:
            item.sidecar[key] = None
    if not item.is_bids:
        return
    for key, why in item.dropped.items():
        item.sidecar[key] = None
        item.notes.append(f"{key} left out: {why}")
    if item.datatype == "fmap" and item.suffix == "fieldmap":
        item.sidecar.setdefault("Units", item.facts.sidecar.get("Units"))


# --- writing -----------------------------------------------------------------------------------


def _existing_key(json_path: Path) -> str | None:
    try:
        return json.loads(json_path.read_text(encoding="utf-8")).get(SOURCE_KEY)
    except (OSError, ValueError, AttributeError):
        return None


def _write_item(item: BidsItem, root: Path, options: ConvertOptions, force: bool,
                progress: Callable[[int], None] | None) -> BidsResult:
    if item.datatype == OMIT:
        return BidsResult(item.stack.id, "", OMITTED, message=item.reason)
    folder, name = (root / item.path).parent, Path(item.path).name
    # BIDS keeps .bval/.bvec for dwi images only (an sbref or a b=0 epi field map has none)
    options = replace(options, diffusion_files=item.datatype == "dwi" and item.suffix == "dwi")
    wanted = task_outputs(folder, name, options, item.stack)
    present = [p for p in wanted if p.exists()]
    sidecar_path = wanted[1] if len(wanted) > 1 else wanted[0]
    own = not present or _existing_key(sidecar_path) == item.sidecar.get(SOURCE_KEY)
    if present and not own and not force:
        message = (existing_message(present[0]) if sidecar_path.exists() else
                   f"{present[0]} exists without its sidecar (a run stopped halfway, or another tool's file): "
                   "--force rewrites it")
        return BidsResult(item.stack.id, item.path, SKIPPED, message=message)
    run_options = ConvertOptions(**{**asdict(options), "force": force, "skip_existing": not force})
    result = convert_stack(item.stack, folder, run_options, name=name, progress=progress,
                           sidecar_extra=item.sidecar)
    files = list(result.files)
    if item.aslcontext and result.status in (CONVERTED, EXISTING):
        context = folder / (name.rsplit("_", 1)[0] + "_aslcontext.tsv")
        if create_text(context, "volume_type\n" + "\n".join(item.aslcontext) + "\n"):
            files.append(str(context))
    status = {CONVERTED: CONVERTED, EXISTING: EXISTING, SKIPPED: SKIPPED}.get(result.status, FAILED)
    return BidsResult(item.stack.id, item.path, status, tuple(files), result.message, result.warnings)


def existing_message(path: Path) -> str:
    """The message of a planned file whose name another scan's file holds."""
    return (f"{path} exists and was converted from another series (another scan of this subject?): "
            "give --session, or --force to replace it")


def _participant_row(items: Sequence[BidsItem], subject: str, keep_phi: bool) -> tuple[list[str], dict[str, Any]]:
    row: dict[str, Any] = {"participant_id": f"sub-{subject}"}
    columns = ["participant_id"]
    if keep_phi:
        identity = items[0].stack.first.identity if items else {}
        columns += ["age", "sex"]
        row["age"] = _age_years(identity.get("PatientAge"))
        sex = str(identity.get("PatientSex") or "").upper()[:1]
        row["sex"] = {"M": "M", "F": "F", "O": "O"}.get(sex)
    return columns, row


def _age_years(value: Any) -> float | int | None:
    """DICOM's AgeString (``045Y``, ``018M``, ``003W``, ``010D``) in years."""
    m = re.fullmatch(r"\s*(\d{1,3})\s*([DWMY]?)\s*", str(value or ""))
    if not m:
        return None
    n, unit = int(m.group(1)), m.group(2) or "Y"
    years = {"Y": n, "M": n / 12, "W": n / 52.1775, "D": n / 365.25}[unit]
    return int(years) if unit == "Y" else round(years, 2)


def _scan_rows(plan: BidsPlan, results: Sequence[BidsResult], keep_phi: bool) -> list[dict[str, Any]]:
    done = {r.stack_id for r in results if r.status in (CONVERTED, EXISTING)}
    rows = []
    prefix = plan.session_dir + "/"
    for item in plan.items:
        if not item.is_bids or item.stack.id not in done:
            continue
        row: dict[str, Any] = {"filename": item.path[len(prefix):] + ".nii.gz"}
        if keep_phi:
            row["acq_time"] = _acq_time(item.stack)
        rows.append(row)
    return rows


def _acq_time(stack: Stack) -> str | None:
    """``YYYY-MM-DDThh:mm:ss`` of the stack's first image (AcquisitionDate and its time)."""
    date = str(stack.first.identity.get("AcquisitionDate") or stack.first.identity.get("SeriesDate") or "")
    times = [f.acquisition_time for f in stack.frames if f.acquisition_time is not None]
    if len(date) < 8 or not date[:8].isdigit() or not times:
        return None
    seconds = int(min(times))
    return f"{date[:4]}-{date[4:6]}-{date[6:8]}T{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def write_dataset_files(plan: BidsPlan, results: Sequence[BidsResult], keep_phi: bool) -> list[str]:
    """``dataset_description.json`` and README when absent; the participant's row and the
    session's scans, merged under the dataset's lock. Returns the files written."""
    root = plan.root
    written = []
    description = {"Name": "volume BIDS dataset", "BIDSVersion": BIDS_VERSION, "DatasetType": "raw",
                   **(dict(plan.config.dataset) if plan.config else {}),
                   "GeneratedBy": [{"Name": "volume", "Version": __version__,
                                    "Description": "volume bids: DICOM to BIDS, classified from DICOM facts"}]}
    if create_json(root / "dataset_description.json", description):
        written.append(str(root / "dataset_description.json"))
    name = description.get("Name", "volume BIDS dataset")
    if not any((root / n).exists() for n in ("README", "README.md", "README.rst", "README.txt")):
        if create_text(root / "README.md", DATASET_README.format(name=name, version=__version__)):
            written.append(str(root / "README.md"))
    columns, row = _participant_row(plan.items, plan.subject, keep_phi)
    rows = _scan_rows(plan, results, keep_phi)
    scans = root / plan.session_dir / f"{plan.session_dir.replace('/', '_')}_scans.tsv"
    with dataset_lock(root):
        if rows and merge_tsv(root / "participants.tsv", "participant_id", columns, [row]):
            written.append(str(root / "participants.tsv"))  # a subject without BIDS files is no participant
        if keep_phi:
            create_json(root / "participants.json", {
                "age": {"Description": "age of the participant at the scan (DICOM PatientAge)", "Units": "year"},
                "sex": {"Description": "sex of the participant (DICOM PatientSex)",
                        "Levels": {"M": "male", "F": "female", "O": "other"}}})
        if rows and merge_tsv(scans, "filename", ["filename"] + (["acq_time"] if keep_phi else []), rows):
            written.append(str(scans))
    return written


def write_plan(plan: BidsPlan, *, force: bool = False, keep_phi: bool = False, options: ConvertOptions | None = None,
               on_result: Callable[[BidsResult], None] | None = None,
               progress: Callable[[int], None] | None = None) -> list[BidsResult]:
    """:meth:`BidsPlan.write`."""
    base = options or ConvertOptions()
    base = ConvertOptions(**{**asdict(base), "keep_phi": keep_phi, "force": False, "skip_existing": False})
    if base.format != "nii.gz":
        raise UsageError("volume bids writes .nii.gz (the dataset's IntendedFor and scans.tsv name them so)")
    _check_collisions(plan.items)
    plan.root.mkdir(parents=True, exist_ok=True)
    results: dict[int, BidsResult] = {}
    # field maps last: their IntendedFor names only the runs that were written
    for item in sorted(plan.items, key=lambda i: i.datatype == "fmap"):
        if item.datatype == "fmap" and item.sidecar.get("IntendedFor"):
            failed = {f"{r.path.split('/', 1)[1]}.nii.gz" for r in results.values() if r.status == FAILED and r.path}
            item = replace(item, sidecar={**item.sidecar,
                                          "IntendedFor": [p for p in item.sidecar["IntendedFor"] if p not in failed]
                                          or None})
        result = _write_item(item, plan.root, base, force, progress)
        results[id(item.stack)] = result
        if on_result is not None:
            on_result(result)
    ordered = [results[id(i.stack)] for i in plan.items]
    write_dataset_files(plan, ordered, keep_phi)
    return ordered


def exit_code(results: Sequence[BidsResult]) -> int:
    """1 when a stack failed or another scan's file holds a planned name, else 0 (a re-run that
    finds everything done included)."""
    if any(r.status == FAILED for r in results):
        return EXIT_PARTIAL
    if any(r.status == SKIPPED for r in results):
        return EXIT_OUTPUT_EXISTS
    return 0


def summary(results: Sequence[BidsResult]) -> str:
    """``converted 7, already there 0, skipped 0, failed 0, left out 1``."""
    counts = {s: sum(r.status == s for r in results) for s in (CONVERTED, EXISTING, SKIPPED, FAILED, OMITTED)}
    names = {CONVERTED: "converted", EXISTING: "already there", SKIPPED: "skipped", FAILED: "failed",
             OMITTED: "left out"}
    return ", ".join(f"{names[k]} {v}" for k, v in counts.items())


def bids(sources: Any, root: str | os.PathLike[str], *, subject: str, session: str | None = None,
         config: Any = None, force: bool = False, keep_phi: bool = False) -> list[BidsResult]:
    """:func:`plan_bids`, then :meth:`BidsPlan.write`: one subject's session into a BIDS dataset."""
    plan = plan_bids(sources, root, subject=subject, session=session, config=config, keep_phi=keep_phi)
    return plan.write(force=force, keep_phi=keep_phi)


__all__ = ["ASL_REQUIRED", "SOURCE_KEY", "WITHHELD", "BidsItem", "BidsPlan", "BidsResult", "bids", "exit_code",
           "link_fieldmaps", "plan_bids", "summary", "write_plan"]

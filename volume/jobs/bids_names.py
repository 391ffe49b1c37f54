"""Entities of a session's BIDS files: ``task-`` from the description, ``dir-`` from the phase
encoding in patient terms, ``echo-``, ``part-``, ``rec-`` and ``acq-`` where two files would
otherwise share a name, ``run-`` for repeats in acquisition order; and the field maps' links
(B0FieldIdentifier, B0FieldSource, IntendedFor) to the runs they correct.

Every function takes the plan's items (:class:`volume.jobs.bids.BidsItem`) of one session and
sets their ``entities`` or ``sidecar`` fields in place.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..dicom.classify import Facts, reconstruction, same_acquisition
from .bids_spec import FILES, sanitize_label

#: (world axis, sign) of the phase-encoding vector in patient LPS -> the ``dir-`` label: from where
#: to where the phase is encoded (``AP``: from anterior to posterior, the vector points to +y).
DIRECTION_LABELS = {(0, 1): "RL", (0, -1): "LR", (1, 1): "AP", (1, -1): "PA", (2, 1): "IS", (2, -1): "SI"}

#: Words of a description that name the acquisition, not the task (removed before ``task-``).
ACQUISITION_WORDS = re.compile(
    r"^(epi|bold|fmri|func|functional|ep2d|epfid|cmrr|mbep2d|mb\d*|sms\d*|multiband|pe|dir|ap|pa|lr|rl|si|is|"
    r"run\d*|r\d+|ax|axial|sag|sagittal|cor|coronal|tra|mosaic|moco|sbref|ge|gre|fid|se|iso|\d+(mm|p\d+)?|"
    r"te\d+|tr\d+|interleaved|sequential|ascending|descending|asc|desc|int|seq|i|s|to|x|with|w|pf\d*|ipat\d*|"
    r"grappa\d*|arc\d*|asset\d*|hyperband|hb\d*|slices?|mm|ms|fmri_?\d*|v\d+|wip|nih|ndsc|p\d+|[a-z]\d+)$",
    re.IGNORECASE)

REST = "rest"
"""The task label of a description that says rest (``Resting_State``, ``REST1``, ``rsfMRI``)."""

UNKNOWN_TASK = "unknown"
"""The task label of a run whose description names no task (the plan warns; --config sets one)."""

_PART_SUFFIXES = {"phasediff", "phase1", "phase2", "magnitude1", "magnitude2", "magnitude", "fieldmap",
                  "UNIT1"}


def task_label(description: str) -> tuple[str, str]:
    """``(label, TaskName)`` from a description: the word after ``task`` (``task-nback``), ``rest``
    when it says rest, else its words that do not name the acquisition (``EPI``, ``bold``, ``MB4``,
    ``AP``...), else ``unknown``."""
    named = re.search(r"(?<![a-z])task[-_ ]?([a-z0-9]+)", description, re.IGNORECASE)
    if named and not named.group(1).isdigit():  # ReproIn's "func-bold_task-nback_run-1"
        label = sanitize_label(named.group(1)).lower()
        return label, named.group(1)
    words = [w for w in re.split(r"[^A-Za-z0-9]+", description) if w]
    if any(re.search(r"rest|rsfmri|(?<![a-z])rs(?![a-z])", w, re.IGNORECASE) for w in words):
        return REST, REST
    kept = [w for w in words if not ACQUISITION_WORDS.match(w)]
    label = sanitize_label("".join(kept)).lower()
    if not label:
        return UNKNOWN_TASK, UNKNOWN_TASK
    return label, " ".join(kept)


def direction_label(ped: str, iop: Sequence[float] | None) -> str:
    """The ``dir-`` label (AP, PA, LR, RL, SI, IS) of a PhaseEncodingDirection (``j-``) in the
    written file, whose ``i`` is ImageOrientationPatient's row direction, ``j`` its column
    direction and ``k`` their cross product (:mod:`volume.dicom.bids`); "" when unknown."""
    if not ped or ped[0] not in "ijk" or iop is None or len(iop) != 6:
        return ""
    row, col = np.asarray(iop[:3], float), np.asarray(iop[3:], float)
    vector = {"i": row, "j": col, "k": np.cross(row, col)}[ped[0]]
    if ped.endswith("-"):
        vector = -vector
    axis = int(np.argmax(np.abs(vector)))
    return DIRECTION_LABELS[(axis, 1 if vector[axis] > 0 else -1)]


def takes(item: Any, key: str) -> bool:
    """Whether BIDS allows entity ``key`` in the item's datatype/suffix."""
    allowed, _ = FILES.get(item.datatype, {}).get(item.suffix, ((), ()))
    return key in allowed


def _key(item: Any, without: Sequence[str] = ()) -> tuple[Any, ...]:
    return (item.datatype, item.suffix,
            tuple(sorted((k, v) for k, v in item.entities.items() if k not in without)))


def same_instance(a: Facts, b: Facts) -> bool:
    """One acquisition (:func:`volume.dicom.classify.same_acquisition`): one series, or a protocol's
    series of one grid acquired together (magnitude and phase, split echoes)."""
    return same_acquisition(a, b)


def instances(items: Sequence[Any]) -> dict[int, int]:
    """Each item's acquisition instance (items of one instance share the smallest member's id)."""
    parent = {id(i): id(i) for i in items}

    def root(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for k, a in enumerate(items):
        for b in items[k + 1:]:
            if same_instance(a.facts, b.facts):
                parent[root(id(b))] = root(id(a))
    return {id(i): root(id(i)) for i in items}


def set_parts(items: Sequence[Any]) -> None:
    """``part-`` (mag, phase, real, imag) where an acquisition holds more than magnitudes."""
    inst = instances(items)
    components: dict[int, set[str]] = defaultdict(set)
    for item in items:
        components[inst[id(item)]].add(item.facts.component)
    for item in items:
        if item.suffix in _PART_SUFFIXES or "part" in item.entities or not takes(item, "part"):
            continue
        if components[inst[id(item)]] - {"mag"}:
            item.entities["part"] = item.facts.component


def set_echoes(items: Sequence[Any]) -> None:
    """``echo-`` for the echoes of a multi-echo run (func, perf), by echo time."""
    for item in items:
        if item.facts.echoes > 1 and takes(item, "echo") and "echo" not in item.entities and \
                item.datatype in ("func", "perf", "dwi"):
            item.entities["echo"] = str(item.facts.echo_rank)


def set_reconstructions(items: Sequence[Any]) -> None:
    """``rec-`` for reconstructions of one acquisition that would share a name (Siemens' ND and
    DIS2D series of one protocol, acquired at the same time): the ImageType words that differ."""
    groups: dict[tuple[Any, ...], list[Any]] = defaultdict(list)
    for item in items:
        if takes(item, "rec") and "rec" not in item.entities:
            groups[(_key(item), item.facts.protocol, item.facts.acquired)].append(item)
    for members in groups.values():
        recs = {reconstruction(m.facts) for m in members}
        if len(members) < 2 or len(recs) < 2:
            continue
        common = set.intersection(*(set(r) for r in recs))
        for m in members:
            words = [w for w in reconstruction(m.facts) if w not in common]
            m.entities["rec"] = sanitize_label("".join(words)).lower() or "default"


def _protocol_key(item: Any) -> tuple[Any, ...]:
    """What makes two acquisitions different protocols: grid, orientation, TR, 2D or 3D (the
    description alone does not: slice orders, phase-encoding words)."""
    f = item.facts
    tr = round(f.repetition_time, 2) if f.repetition_time else None
    return (f.grid, item.stack.orientation, tr, f.acquisition_type)


_DIRECTION_WORDS = re.compile(r"^(ap|pa|lr|rl|si|is|dir|pe|[ap]2[ap]|[lr]2[lr])$", re.IGNORECASE)


def _label_words(description: str) -> list[str]:
    """A description's words (letters and digits), without those naming a phase-encoding direction."""
    return [w for w in re.split(r"[^A-Za-z0-9]+", description) if w and not _DIRECTION_WORDS.match(w)]


def acquisition_label(*descriptions: str) -> str:
    """An ``acq-`` label from the descriptions of one protocol's runs: the words they all begin with
    (the first's words when they share none), letters and digits in lower case, without the words
    naming a phase-encoding direction (``dir-`` says that). Runs described "Axial EPI (Interleaved)"
    and "Axial EPI (Sequential)" get ``axialepi``, not the first run's slice order."""
    lists = [_label_words(d) for d in descriptions if d] or [[]]
    shared = []
    for words in zip(*lists, strict=False):  # (the shortest description ends the shared words)
        if len({w.lower() for w in words}) > 1:
            break
        shared.append(words[0])
    return sanitize_label("".join(shared or lists[0])).lower()


def set_acquisitions(items: Sequence[Any]) -> None:
    """``acq-`` where files of one name come from different protocols (a sagittal 3D T1 and an
    axial 2D T1; a spin-echo field-map pair and a diffusion b=0 pair): the letters and
    digits its runs' descriptions begin with; where those are equal, what differs (2D/3D, matrix,
    TR, else a number)."""
    groups: dict[tuple[Any, ...], list[Any]] = defaultdict(list)
    for item in items:
        if takes(item, "acq") and "acq" not in item.entities:
            groups[_key(item, ("run", "dir", "echo", "part"))].append(item)
    for members in groups.values():
        members = sorted(members, key=lambda m: m.facts.order)
        keys = list(dict.fromkeys(_protocol_key(m) for m in members))
        if len(keys) < 2:
            continue
        labels = {k: acquisition_label(*(m.facts.description or m.facts.protocol for m in members
                                         if _protocol_key(m) == k)) for k in keys}
        if len(set(labels.values())) < len(keys):
            labels = {k: labels[k] + _distinguish(k, keys) for k in keys}
        for m in members:
            m.entities["acq"] = labels[_protocol_key(m)] or "unnamed"


def _distinguish(key: tuple[Any, ...], keys: Sequence[tuple[Any, ...]]) -> str:
    grid, orientation, tr, kind = key
    if len({k[3] for k in keys}) > 1:
        return kind.lower()
    if len({k[0][:3] for k in keys}) > 1:
        return f"{grid[1]}x{grid[0]}x{grid[2]}"
    if len({k[2] for k in keys}) > 1:
        return f"tr{int(round((tr or 0) * 1000))}"
    return str(list(keys).index(key) + 1)


def set_runs(items: Sequence[Any]) -> None:
    """``run-`` (1, 2...) for files that share every other entity, in acquisition order; the
    echoes and parts of one acquisition share a run."""
    inst = instances(items)
    groups: dict[tuple[Any, ...], list[Any]] = defaultdict(list)
    for item in items:
        if takes(item, "run") and "run" not in item.entities:
            groups[_key(item, ("echo", "part"))].append(item)
    for members in groups.values():
        firsts: dict[int, int] = {}
        for m in members:
            firsts[inst[id(m)]] = min(firsts.get(inst[id(m)], m.facts.order), m.facts.order)
        if len(firsts) < 2:
            continue
        order = sorted(firsts, key=lambda r: firsts[r])
        for m in members:
            m.entities["run"] = str(order.index(inst[id(m)]) + 1)


__all__ = ["DIRECTION_LABELS", "REST", "UNKNOWN_TASK", "direction_label", "instances", "same_instance",
           "set_acquisitions", "set_echoes", "set_parts", "set_reconstructions", "set_runs", "takes",
           "task_label"]

"""Which volume each image of a 4D series belongs to, and in which order the volumes come.

When several images share a slice position (fMRI, diffusion, multi-phase), what the files say
decides, most specific first:

1. a *label* shared by the images of one volume: Philips' DiffusionOrder (2005,1596: the order in
   which the volumes were acquired), the enhanced DimensionIndexValues (less their spatial
   components, the first index the slowest, as the standard orders dimensions),
   TemporalPositionIdentifier, Philips' BValueNumber
   with GradientOrientationNumber (2005,1412/1413) and PhaseNumber (2001,1008), the diffusion
   weighting itself (b-value and gradient), AcquisitionNumber. A label orders volumes when every
   image has one, the images at a position have different ones, and every position holds the same
   set (each volume complete). Volumes come in label order; diffusion weightings, which have no
   order of their own, in the order the scanner numbered or acquired them (InstanceNumber, else
   AcquisitionTime);
2. a *rank*: TriggerTime, AcquisitionTime, and the labels that differ at each position without
   lining up across positions; the k-th image of each position belongs to volume k;
3. InstanceNumber, the last resort, when it numbers the images volume by volume (GE) or position
   by position (Philips classic) throughout: then the k-th image of each position belongs to
   volume k.

The key used is reported (``volume ls``, the sidecar), and a series with one volume short gets a
message naming that volume.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .headers import FrameHeader
from .values import seconds_from_first

Clusters = Sequence[Sequence[FrameHeader]]
"""Images grouped by slice position, positions in order along the normal."""

GRADIENT_DECIMALS = 4
"""Gradient directions equal to this many decimals are one direction (vendors round to 4-6)."""

BVALUE_DECIMALS = 3
"""b-values equal to this many decimals are one b-value (Philips writes 0.001 s/mm2 steps)."""


def _mr(name: str) -> Callable[[FrameHeader], Any]:
    return lambda f: f.mr.key(name) if f.mr is not None else None


def _diffusion(f: FrameHeader) -> Any:
    mr = f.mr
    if mr is None or mr.bvalue is None:
        return None
    g = mr.gradient or (0.0, 0.0, 0.0)
    return (round(mr.bvalue, BVALUE_DECIMALS), tuple(round(v, GRADIENT_DECIMALS) + 0.0 for v in g))


#: Label keys, most specific first: DICOM name -> the value of one image (None when absent).
LABEL_KEYS: tuple[tuple[str, Callable[[FrameHeader], Any]], ...] = (
    ("DiffusionOrder", _mr("DiffusionOrder")),
    ("DimensionIndexValues", _mr("DimensionIndexValues")),
    ("TemporalPositionIdentifier", lambda f: f.temporal_position),
    ("BValueNumber,GradientOrientationNumber", _mr("BValueNumber,GradientOrientationNumber")),
    ("PhaseNumber", _mr("PhaseNumber")),
    ("DiffusionBValue,DiffusionGradientOrientation", _diffusion),
    ("AcquisitionNumber", lambda f: f.acquisition_number),
)

#: Keys ranked within each position when they do not label volumes.
RANK_KEYS: tuple[tuple[str, Callable[[FrameHeader], Any]], ...] = (
    ("TemporalPositionIdentifier", lambda f: f.temporal_position),
    ("AcquisitionNumber", lambda f: f.acquisition_number),
    ("TriggerTime", lambda f: f.trigger_time),
    ("AcquisitionTime", lambda f: f.acquisition_time),
)

#: Labels that name a diffusion weighting, not a place in time: volumes come in acquisition order.
NOMINAL_KEYS = frozenset({"DiffusionBValue,DiffusionGradientOrientation"})

LAST_RESORT = "InstanceNumber"
"""The key of the last resort (reported as such)."""


@dataclass(frozen=True)
class Ordering:
    """The volumes of a 4D stack: ``volumes[t][s]`` is slice ``s`` (position order) of volume ``t``."""

    key: str
    volumes: list[list[FrameHeader]]


def _div_labels(clusters: Clusters) -> dict[int, Any] | None:
    """DimensionIndexValues of every image less the components that only say where it lies
    (constant within each position), by ``id`` of the image; None when an image has none."""
    values = {}
    for c in clusters:
        for f in c:
            v = f.mr.key("DimensionIndexValues") if f.mr is not None else None
            if v is None:
                return None
            values[id(f)] = tuple(v)
    lengths = {len(v) for v in values.values()}
    if len(lengths) != 1:
        return None
    spatial = [all(len({values[id(f)][i] for f in c}) == 1 for c in clusters) for i in range(lengths.pop())]
    return {k: tuple(x for x, drop in zip(v, spatial, strict=True) if not drop) for k, v in values.items()}


def _labels(clusters: Clusters, name: str, getter: Callable[[FrameHeader], Any]) -> dict[int, Any] | None:
    """The label of every image (by ``id``) under key ``name``, None when an image has none."""
    if name == "DimensionIndexValues":
        return _div_labels(clusters)
    out = {}
    for c in clusters:
        for f in c:
            v = getter(f)
            if v is None:
                return None
            out[id(f)] = v
    if name == "AcquisitionTime":  # seconds of the day: a series may pass midnight
        return dict(zip(out, seconds_from_first(list(out.values())) or [], strict=True))
    return out


def _distinct_at_each_position(clusters: Clusters, labels: dict[int, Any]) -> bool:
    return all(len({labels[id(f)] for f in c}) == len(c) for c in clusters)


def _sortable(values: Sequence[Any]) -> bool:
    try:
        sorted(values)
    except TypeError:
        return False
    return True


def _volume_rank(images: Sequence[FrameHeader]) -> tuple[Any, ...]:
    """When a nominal label's volume was made: its first InstanceNumber, else AcquisitionTime."""
    numbers = [f.instance_number for f in images]
    if all(n is not None for n in numbers):
        return (0, min(numbers))  # type: ignore[type-var]
    times = [f.acquisition_time for f in images]
    if all(t is not None for t in times):
        return (1, min(times))  # type: ignore[type-var]
    return (2,)


def _by_label(clusters: Clusters, name: str, labels: dict[int, Any]) -> list[list[FrameHeader]] | None:
    """Volumes grouped by label, when every position holds the same set of labels, once each."""
    if not _distinct_at_each_position(clusters, labels):
        return None
    per_position = [{labels[id(f)]: f for f in c} for c in clusters]
    keys = set(per_position[0])
    if any(set(p) != keys for p in per_position[1:]):
        return None
    volumes = {k: [p[k] for p in per_position] for k in keys}
    if name in NOMINAL_KEYS or not _sortable(list(keys)):
        order = sorted(keys, key=lambda k: (_volume_rank(volumes[k]), repr(k)))
    else:
        order = sorted(keys)
    return [volumes[k] for k in order]


def _by_rank(clusters: Clusters, labels: dict[int, Any]) -> list[list[FrameHeader]] | None:
    """Volume ``k`` holds the image of rank ``k`` at each position (distinct, sortable values)."""
    if not _distinct_at_each_position(clusters, labels):
        return None
    if not _sortable([labels[id(f)] for c in clusters for f in c]):
        return None
    ranked = [sorted(c, key=lambda f: labels[id(f)]) for c in clusters]
    return [[r[t] for r in ranked] for t in range(len(ranked[0]))]


def _instance_number_blocks(clusters: Clusters) -> list[list[FrameHeader]] | None:
    """Volumes by InstanceNumber when it numbers every image once, volume by volume or position by
    position: then the k-th number at each position is volume k. None otherwise."""
    images = [f for c in clusters for f in c]
    numbers = [f.instance_number for f in images]
    if any(n is None for n in numbers) or len(set(numbers)) != len(numbers):
        return None
    n_slices, n_volumes = len(clusters), len(clusters[0])
    ranked = [sorted(c, key=lambda f: f.instance_number) for c in clusters]
    position_of = {id(f): s for s, c in enumerate(clusters) for f in c}
    rank_of = {id(f): t for r in ranked for t, f in enumerate(r)}
    in_order = sorted(images, key=lambda f: f.instance_number)
    volume_major = all(rank_of[id(f)] == i // n_slices for i, f in enumerate(in_order))
    slice_major = all(
        len({position_of[id(f)] for f in in_order[s * n_volumes : (s + 1) * n_volumes]}) == 1 for s in range(n_slices)
    )
    if not (volume_major or slice_major):
        return None
    return [[r[t] for r in ranked] for t in range(n_volumes)]


def order_volumes(clusters: Clusters) -> Ordering | None:
    """The volumes of images grouped by position (every position holding the same number), or None
    when nothing in the files orders them (see the module docstring for the keys, in order)."""
    for name, getter in LABEL_KEYS:
        labels = _labels(clusters, name, getter)
        if labels is not None:
            volumes = _by_label(clusters, name, labels)
            if volumes is not None:
                return Ordering(name, volumes)
    for name, getter in RANK_KEYS:
        labels = _labels(clusters, name, getter)
        if labels is not None:
            volumes = _by_rank(clusters, labels)
            if volumes is not None:
                return Ordering(name, volumes)
    volumes = _instance_number_blocks(clusters)
    if volumes is not None:
        return Ordering(LAST_RESORT, volumes)
    return None


def incomplete_volumes(clusters: Clusters, positions: Sequence[float]) -> str:
    """Why positions hold different numbers of images, naming the incomplete volumes when a label
    key tells them apart ("" when none does). ``positions`` are the clusters' mm along the normal."""
    n_positions = len(clusters)
    for name, getter in LABEL_KEYS:
        labels = _labels(clusters, name, getter)
        if labels is None or not _distinct_at_each_position(clusters, labels):
            continue
        counts = Counter(labels.values())
        short = sorted((k for k, n in counts.items() if n < n_positions), key=repr)
        if not short or len(short) == len(counts):
            continue
        present: dict[Any, set[int]] = defaultdict(set)
        for s, c in enumerate(clusters):
            for f in c:
                present[labels[id(f)]].add(s)
        first = short[0]
        missing = [positions[s] for s in range(n_positions) if s not in present[first]]
        where = ", ".join(f"{d:.2f}" for d in missing[:4]) + (", ..." if len(missing) > 4 else "")
        more = f" (and {len(short) - 1} more incomplete volume{'s' if len(short) > 2 else ''})" if len(short) > 1 else ""
        return (f"volume {name} {_label_text(first)} has {counts[first]} of {n_positions} slices, none at {where} mm along "
                f"the slice normal{more}: the series is incomplete; copy the missing images or remove that volume's files")
    return ""


def _label_text(value: Any) -> str:
    """A label for messages: ``2`` (not ``2.0``), ``1000, (0.0, 1.0, 0.0)``, ``(1, 2, 65)``."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, tuple) and value and not isinstance(value[0], int):
        return ", ".join(_label_text(v) for v in value)
    return str(value)

"""Group frame headers into series, and split each series into the stacks it really holds.

A *stack* is a set of 2D images that form one 3D (or 4D) grid: same size, pixel spacing,
orientation, echo and image component. A SeriesInstanceUID often holds several (localizers in
three planes, two echoes, magnitude and phase); each becomes its own :class:`Stack`, never one
fake volume. Repeated positions are frames of a 4D stack when a header field orders them.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import AmbiguousSeriesError
from ..phi import uid_key
from ..volume import axis_codes, closest_plane, orientation_label
from . import canon, ge
from .geometry import (
    POSITION_TOLERANCE_MM,
    GeometryError,
    StackGeometry,
    check_iop,
    output_grid,
    same_orientation,
    stack_geometry,
)
from .headers import FrameHeader
from .mr import B0_THRESHOLD, DERIVED_DIFFUSION_TYPES, ISOTROPIC, ZERO_VECTOR
from .order import LABEL_KEYS, LAST_RESORT, RANK_KEYS, incomplete_volumes, order_volumes

#: The keys that order the volumes of a 4D stack, for messages.
ORDER_KEYS_TEXT = ", ".join(dict.fromkeys(
    [name for name, _ in LABEL_KEYS] + [name for name, _ in RANK_KEYS] + [LAST_RESORT]))

#: Stack kinds, as ``volume ls`` shows them.
KINDS = ("volume", "4D", "localizer", "single image", "2D series", "no geometry")


@dataclass
class Stack:
    """One grid of images inside a series, in load order.

    ``frames`` is ordered frame-major: ``frames[t * n_slices + s]`` is slice ``s`` (sorted along
    the normal) of frame ``t``. ``problem`` is empty when :func:`volume.load` can build a Volume,
    otherwise it says why not (one line, names files).

    Attributes
    ----------
    id
        The stack's name in messages and ``--series`` (the series number, with a suffix when the
        series holds several stacks).
    series_uid, series_number, series_description, modality
        The series' values.
    frames
        Every image's header, in load order (above).
    kind
        One of :data:`KINDS`: ``volume``, ``4D``, ``localizer``, ``single image``...
    n_slices, n_frames
        Images per volume, and volumes.
    geometry
        Slice order, spacing, gaps and tilt (None without positions).
    problem
        Why the stack cannot be loaded ('' when it can).

    Examples
    --------
    >>> stack = volume.scan("ct").stacks[0]
    >>> stack.id, stack.kind, stack.n_slices, stack.n_frames, stack.geometry.spacing
    ('2', 'volume', 48, 1, 3.0)
    """

    id: str
    series_uid: str
    series_number: int | None
    series_description: str
    modality: str
    label: str
    frames: list[FrameHeader]
    kind: str
    n_slices: int
    n_frames: int
    geometry: StackGeometry | None
    frame_order: str = ""
    warnings: list[str] = field(default_factory=list)
    problem: str = ""
    notes: list[str] = field(default_factory=list)
    derived: str = ""
    scaling: dict[str, Any] = field(default_factory=dict)

    @property
    def first(self) -> FrameHeader:
        return self.frames[0]

    @property
    def rows(self) -> int:
        return self.first.rows

    @property
    def cols(self) -> int:
        return self.first.cols

    @property
    def rgb(self) -> bool:
        """True for colour stacks (3 samples per pixel, or a palette)."""
        return self.first.samples == 3 or self.first.photometric == "PALETTE COLOR"

    @property
    def files(self) -> list[str]:
        """Distinct file paths of the stack, in load order."""
        return list(dict.fromkeys(f.path for f in self.frames))

    @property
    def shape(self) -> tuple[int, ...]:
        """``(S, R, C)`` or ``(T, S, R, C)`` of the volume :func:`volume.load` returns (before resampling)."""
        spatial = (self.n_slices, self.rows, self.cols)
        return (self.n_frames, *spatial) if self.n_frames > 1 else spatial

    @property
    def output_shape(self) -> tuple[int, ...]:
        """Shape of the Volume :func:`volume.load` returns by default: a tilted stack's grid grows
        by the drift (no pixel lost); a stack with gaps keeps its slice count (``load`` refuses
        it unless ``allow_gaps``)."""
        if self.geometry is None:
            return self.shape
        _, spatial = output_grid(self.geometry, self.rows, self.cols, resample_gaps=False)
        return (self.n_frames, *spatial) if self.n_frames > 1 else spatial

    @property
    def spacing(self) -> tuple[float, float, float] | None:
        """``(slice, row, column)`` mm, or None without geometry."""
        if self.geometry is None:
            return None
        return tuple(float(v) for v in np.linalg.norm(self.geometry.affine[:3, :3], axis=0))  # type: ignore[return-value]

    @property
    def orientation(self) -> str:
        if self.geometry is None:
            return "unknown"
        return orientation_label(self.geometry.affine)

    @property
    def axcodes(self) -> str:
        return "" if self.geometry is None else axis_codes(self.geometry.affine)

    @property
    def name(self) -> str:
        """``<number>_<description>`` plus the split label: a readable base for file names."""
        parts = [str(self.series_number) if self.series_number is not None else "x"]
        if self.series_description:
            parts.append(self.series_description)
        if self.label:
            parts.append(self.label)
        return "_".join(parts)

    @property
    def diffusion(self) -> dict[str, Any] | None:
        """b-values (s/mm2) and gradient directions (unit vectors, patient LPS) of each volume of a
        diffusion stack, in volume order: ``{"bvals": [...], "bvecs_lps": [[x, y, z], ...]}``.

        None unless every volume has a b-value, and the stack is diffusion-weighted: a volume with a
        direction, or one weighted above :data:`~volume.dicom.mr.B0_THRESHOLD` (b-values at or below it
        without any direction are one nominal value, no weighting); a single volume needs a direction.
        A stack of b=0 volumes only is one when its ImageType says DIFFUSION (dcm2niix's rules).
        b=0 volumes, trace images and the maps a scanner derived get zero vectors. When a weighted
        volume's direction is not in the files (:attr:`volume.dicom.mr.MRFrame.direction_unknown`) in a
        series of several volumes, ``bvecs_lps`` is None and ``bvecs_missing`` says which volumes lack
        one: no vector is made up.
        """
        if self.problem:
            return None
        heads = [self.frames[t * self.n_slices].mr for t in range(self.n_frames)]
        if any(mr is None or mr.bvalue is None for mr in heads):
            return None
        bvals = [float(mr.bvalue) for mr in heads]  # type: ignore[union-attr, arg-type]
        vectors = [[0.0, 0.0, 0.0] if b <= 0 or mr.is_isotropic or mr.gradient is None  # type: ignore[union-attr]
                   else [float(v) for v in mr.gradient] for b, mr in zip(bvals, heads, strict=True)]  # type: ignore[union-attr]
        directional = any(b > 0 and any(v) for b, v in zip(bvals, vectors, strict=True))
        if max(bvals) <= 0:
            return {"bvals": bvals, "bvecs_lps": vectors} if self._marked_diffusion else None
        unknown = [t for t, mr in enumerate(heads) if not self.derived and mr.direction_unknown]  # type: ignore[union-attr]
        if unknown and self.n_frames > 1:
            return {"bvals": bvals, "bvecs_lps": None, "bvecs_missing": _missing_directions(unknown, len(bvals))}
        if not directional and (self.n_frames < 2 or max(bvals) <= B0_THRESHOLD):
            return None
        return {"bvals": bvals, "bvecs_lps": vectors}

    @property
    def _marked_diffusion(self) -> bool:
        """ImageType (an enhanced file's FrameType) says DIFFUSION."""
        return any("DIFFUSION" in v.replace("_", " ").split() for v in self.first.image_type)

    @property
    def content(self) -> str:
        """What the stack holds, for people: ``DWI``, ``fMRI``, ``field map``, a map a scanner derived
        from diffusion images (``ADC``, ``trace``, ``FA``), or "" (anything else)."""
        if self.derived:
            return self.derived
        if self.problem:
            return ""
        if self.diffusion is not None:
            return "DWI"
        f0 = self.first
        words = {w for v in f0.image_type for w in v.replace("_", " ").split()}
        if _field_map(f0):
            return "field map"
        sequence = f0.acquisition.get("ScanningSequence") or []
        if not isinstance(sequence, list):
            sequence = str(sequence).replace("\\", " ").split()
        if self.n_frames > 1 and self.modality == "MR" and (
                "EP" in {str(v).strip().upper() for v in sequence} or {"EPI", "FMRI"} & words):
            return "fMRI"
        return ""

    @property
    def summary(self) -> str:
        """``content`` with the diffusion shells and directions: ``DWI b=0,1000 (12 directions)``."""
        content = self.content
        diffusion = self.diffusion if content == "DWI" else None
        if diffusion is None:
            return content
        shells = sorted({round(b) for b in diffusion["bvals"]})
        if diffusion["bvecs_lps"] is None:
            return f"DWI b={','.join(map(str, shells))} (directions missing)"
        directions = {tuple(round(v, 3) for v in g)
                      for b, g in zip(diffusion["bvals"], diffusion["bvecs_lps"], strict=True) if round(b) > 0 and any(g)}
        n = len(directions)
        if shells == [0]:
            return "DWI b=0"
        return f"DWI b={','.join(map(str, shells))} ({f'{n} direction' + ('s' if n != 1 else '') if n else 'trace'})"

    def describe(self, *, keep_phi: bool = False) -> dict[str, Any]:
        """A JSON-friendly summary (what ``volume ls --json`` prints for the stack).

        The series is named by its key (:func:`volume.phi.uid_key`), never its UID; ``keep_phi``
        adds ``series_uid`` and ``study_uid`` (identity under :mod:`volume.phi`).
        """
        sp = self.spacing
        real_uid = not self.series_uid.startswith("no-uid:")  # group_frames' stand-in for a missing UID
        uids = {"series_uid": self.series_uid if real_uid else None,
                "study_uid": self.first.study_uid or None} if keep_phi else {}
        return {
            "id": self.id,
            "series_number": self.series_number,
            "series_description": self.series_description,
            "series_key": uid_key(self.series_uid) if real_uid else None,
            **uids,
            "modality": self.modality,
            "kind": self.kind,
            "content": self.summary or None,
            "label": self.label,
            "shape": list(self.output_shape),
            "rgb": self.rgb,
            "spacing_mm": None if sp is None else [round(v, 6) for v in sp],
            "orientation": self.orientation,
            "axcodes": self.axcodes,
            "frame_order": self.frame_order or None,
            "notes": list(self.notes),
            "files": len(self.files),
            "warnings": list(self.warnings),
            "problem": self.problem or None,
        }

    def __repr__(self) -> str:
        return (
            f"Stack({self.id!r}, {self.kind}, {'x'.join(map(str, self.shape))}, "
            f"{self.orientation}, {len(self.files)} files"
            f"{', ' + '; '.join(self.warnings) if self.warnings else ''})"
        )


@dataclass
class Series:
    """All stacks sharing one SeriesInstanceUID.

    Attributes
    ----------
    uid, number, description, modality
        SeriesInstanceUID, SeriesNumber, SeriesDescription and Modality.
    stacks
        Its stacks: one grid of images each (a volume, a 4D series, a localizer...).

    Examples
    --------
    >>> series = volume.scan("ct").series[0]
    >>> series.number, series.description, series.modality, len(series.stacks)
    (2, 'Phantom head', 'CT', 1)
    """

    uid: str
    number: int | None
    description: str
    modality: str
    stacks: list[Stack]

    def __iter__(self) -> Iterator[Stack]:
        return iter(self.stacks)

    def __repr__(self) -> str:
        inner = ", ".join(repr(s) for s in self.stacks)
        return f"Series({self.number}, {self.description!r}, {self.modality}, [{inner}])"


def _missing_directions(volumes: list[int], n_volumes: int) -> str:
    """Why a DWI gets no bvec: which b>0 volumes (0-based) have no direction in their files."""
    shown = ", ".join(str(t + 1) for t in volumes[:8]) + (", ..." if len(volumes) > 8 else "")
    return (f"no gradient direction in the files for {len(volumes)} of {n_volumes} volumes (b>0; "
            f"volume{'s' if len(volumes) > 1 else ''} {shown}, counting from 1): no DiffusionGradientOrientation "
            "(0018,9089) or vendor direction, and not marked isotropic; .bvec not written")


def _short_hash(text: str) -> str:
    """Eight hex digits of ``text``'s SHA-1 (the name of a series without a number)."""
    import hashlib  # loads OpenSSL's libcrypto: 3.5 MiB of every convert's memory, for a rare series

    return hashlib.sha1(text.encode()).hexdigest()[:8]


def _orientation_clusters(frames: list[FrameHeader]) -> list[list[FrameHeader]]:
    """Frames with geometry, grouped by IOP within tolerance (first-seen order)."""
    clusters: list[tuple[tuple[float, ...], list[FrameHeader]]] = []
    joins: dict[tuple[float, ...], list[FrameHeader]] = {}  # the cluster an IOP joined (equal IOPs join the same)
    for f in frames:
        assert f.iop is not None
        members = joins.get(tuple(f.iop))
        if members is not None:
            members.append(f)
            continue
        for iop, members in clusters:
            if same_orientation(iop, f.iop):
                members.append(f)
                break
        else:
            members = [f]
            clusters.append((f.iop, members))
        joins[tuple(f.iop)] = members
    return [m for _, m in clusters]


def _component(f: FrameHeader) -> str:
    """Image component of complex MR data: ``ph``, ``real``, ``imag`` or ``""``, from ImageType, else
    the vendor's private element (GE's 0043,102F: its ImageType says OTHER for every component)."""
    t = set(f.image_type)
    if "P" in t or "PHASE" in t:
        return "ph"
    if "R" in t or "REAL" in t:
        return "real"
    if "I" in t or "IMAGINARY" in t:
        return "imag"
    return f.mr.component if f.mr is not None else ""


def _is_directional(f: FrameHeader) -> bool:
    """A diffusion-weighted image with a gradient direction (b > 0, a non-zero vector)."""
    mr = f.mr
    return (mr is not None and mr.bvalue is not None and mr.bvalue > 0 and not mr.is_isotropic
            and mr.gradient is not None and max(map(abs, mr.gradient)) >= ZERO_VECTOR)


def _derived(f: FrameHeader, directional_series: bool) -> str:
    """The kind of map a scanner computed from diffusion images (``ADC``, ``trace``, ``FA``...), or "".

    ImageType names ADC, FA and trace maps. A b>0 image with a zero vector or marked ISOTROPIC is an
    isotropic (trace) image: derived in a series that also holds directions (as dcm2niix treats it),
    else it is what the series is (a trace-weighted acquisition) and stays with the b=0 images. An
    image whose files give no direction at all stays in its series, which then gets no ``.bvec``.
    """
    named = _derived_type(tuple(f.image_type))
    if named:
        return named
    if directional_series and f.mr is not None and f.mr.is_isotropic and not f.mr.direction_unknown:
        return "trace"
    return ""


@functools.lru_cache(maxsize=1024)
def _derived_type(image_type: tuple[str, ...]) -> str:
    """The derived map an ImageType names (its first word of :data:`DERIVED_DIFFUSION_TYPES`), or ""
    (once per distinct ImageType: the files of a series share one)."""
    for value in image_type:
        for word in value.replace("_", " ").split():
            if word in DERIVED_DIFFUSION_TYPES:
                return DERIVED_DIFFUSION_TYPES[word]
    return ""


@functools.lru_cache(maxsize=1024)
def _type_words(image_type: tuple[str, ...]) -> frozenset[str]:
    """The words of an ImageType's values (``_`` separates words too), once per distinct ImageType."""
    return frozenset(w for v in image_type for w in v.replace("_", " ").split())


def _reference_b0s(frames: list[FrameHeader]) -> list[FrameHeader]:
    """A series whose images all carry one b-value at or below :data:`~volume.dicom.mr.B0_THRESHOLD`
    (CMRR's sequences write b=5 on every volume) and some a direction: the images without a
    direction are its unweighted b=0 volumes (dcm2niix: "volumes without gradients are actually B=0")."""
    bvalues = {round(f.mr.bvalue, 3) for f in frames if f.mr is not None and f.mr.bvalue is not None}
    if len(bvalues) != 1 or not 0 < next(iter(bvalues)) <= B0_THRESHOLD or not any(_is_directional(f) for f in frames):
        return frames
    return [f.replace(mr=dataclasses.replace(f.mr, bvalue=0.0, gradient=(0.0, 0.0, 0.0)))
            if f.mr is not None and f.mr.bvalue is not None and not _is_directional(f) else f for f in frames]


def _diffusion_b0s(frames: list[FrameHeader]) -> list[FrameHeader]:
    """The b=0 images of a diffusion series as such, by the vendors' conventions: Canon/Toshiba
    write no b-value on them (:func:`volume.dicom.canon.fill_b0`); a nominal b=5 on every volume
    (:func:`_reference_b0s`); GE writes the nominal b-value on the b=0 (T2) images of a diffusion
    series with directions, with a zero vector: those are b=0 images (dcm2niix reads them so too),
    not trace images, unless GE marks the image as part of an acquisition that is not DTI
    (:func:`volume.dicom.ge.ge_trace_image`): then it is the trace image it looks like."""
    frames = _reference_b0s(canon.fill_b0(frames))
    if not any(_is_directional(f) for f in frames):
        return frames
    out = []
    for f in frames:
        mr = f.mr
        if (mr is not None and mr.is_isotropic and mr.directionality != ISOTROPIC and mr.gradient is not None
                and not mr.vendor_trace and str(f.acquisition.get("Manufacturer", "")).upper().startswith("GE")):
            f = f.replace(mr=dataclasses.replace(mr, bvalue=0.0, gradient=(0.0, 0.0, 0.0)))
        out.append(f)
    return out


def _split_series(frames: list[FrameHeader]) -> list[tuple[dict[str, str], list[FrameHeader]]]:
    """Split a series' frames into candidate stacks; each with its distinguishing labels."""
    groups: dict[tuple[Any, ...], list[FrameHeader]] = defaultdict(list)
    echo_numbers = {f.echo_number for f in frames}
    use_echo_number = len(echo_numbers - {None}) > 1
    frames = ge.mark_b0map_field_map(_diffusion_b0s(frames))
    directional = any(_is_directional(f) for f in frames)
    derived = {id(f): _derived(f, directional) for f in frames}
    spacings: dict[Any, Any] = {}  # each distinct value rounded once (the files of a stack share it)
    echo_times: dict[Any, Any] = {}
    for f in frames:
        ps = f.pixel_spacing
        spacing = spacings.get(ps, spacings)
        if spacing is spacings:
            spacing = spacings[ps] = None if ps is None else tuple(round(v, 4) for v in ps)
        if use_echo_number:
            echo: Any = f.echo_number
        else:
            echo = echo_times.get(f.echo_time, echo_times)
            if echo is echo_times:
                echo = echo_times[f.echo_time] = None if f.echo_time is None else round(f.echo_time, 2)
        key = (
            f.rows,
            f.cols,
            f.samples,
            spacing,
            echo,
            _component(f),
            ge.pepolar_part(f.mr.pepolar if f.mr is not None else None),
            _field_map(f),
            derived[id(f)],
            f.stack_key,
            f.has_geometry and not f.problem,
        )
        groups[key].append(f)
    out: list[tuple[dict[str, str], list[FrameHeader]]] = []
    for key, members in groups.items():
        if key[-1]:
            clusters = _orientation_clusters(members)
        else:
            clusters = [members]
        for cluster in clusters:
            out.append(({"_key": repr(key), "derived": derived[id(cluster[0])]}, cluster))
    # Labels: only for the properties that actually differ within the series.
    if len(out) > 1:
        sizes = {(m[0].rows, m[0].cols) for _, m in out}
        spacings = {_spacing_label(m[0]) for _, m in out}
        echoes = sorted({_echo_of(m[0], use_echo_number) for _, m in out}, key=_sort_none)
        planes = {_plane_of(m) for _, m in out}
        for labels, members in out:
            parts = []
            if len(planes) > 1:
                parts.append(_plane_of(members))
            echo = _echo_of(members[0], use_echo_number)
            if len(echoes) > 1 and echo is not None:
                parts.append(f"e{[e for e in echoes if e is not None].index(echo) + 1}")
            field_map = _field_map(members[0])
            if field_map:
                parts.append(field_map)
            comp = _component(members[0])
            if comp:
                parts.append(comp)
            pepolar = ge.pepolar_part(members[0].mr.pepolar if members[0].mr is not None else None)
            if pepolar:
                parts.append(pepolar)
            if derived[id(members[0])]:
                parts.append(derived[id(members[0])])
                labels["derived"] = derived[id(members[0])]
            if len(sizes) > 1:
                parts.append(f"{members[0].cols}x{members[0].rows}")
            if len(spacings) > 1:
                parts.append(_spacing_label(members[0]))
            if members[0].stack_key and len({m[0].stack_key for _, m in out}) > 1:
                parts.append(f"stack{members[0].stack_key}")
            labels["label"] = "_".join(parts)
        # Stacks nothing above tells apart (e.g. two oblique axial blocks): number them.
        counts: dict[str, int] = defaultdict(int)
        for labels, _ in out:
            counts[labels["label"]] += 1
        seen: dict[str, int] = defaultdict(int)
        for labels, members in sorted(out, key=lambda item: (item[1][0].path, item[1][0].frame or 0)):
            label = labels["label"]
            if counts[label] > 1:
                seen[label] += 1
                base = label or _plane_of(members)
                labels["label"] = f"{base}{'_' if base[-1:].isdigit() else ''}{seen[label]}"
    for labels, _ in out:
        labels.setdefault("label", "")
        labels.pop("_key", None)
    # Deterministic order: by plane label then by first file name.
    out.sort(key=lambda item: (item[0]["label"], item[1][0].path, item[1][0].frame or 0))
    return out


def _spacing_label(f: FrameHeader) -> str:
    """Pixel spacing for stack labels, e.g. ``0.7mm`` (``0.7x0.9mm`` when not square)."""
    if f.pixel_spacing is None:
        return "nospacing"
    dr, dc = f.pixel_spacing
    return f"{dr:.3g}mm" if round(dr, 4) == round(dc, 4) else f"{dc:.3g}x{dr:.3g}mm"


def _sort_none(v: Any) -> tuple[int, Any]:
    return (1, 0) if v is None else (0, v)


def _echo_of(f: FrameHeader, use_number: bool) -> Any:
    """The echo a stack is labelled by: EchoNumbers when they tell echoes apart, else EchoTime
    (ms, 2 decimals); a time of 0 (a map computed from the echoes, e.g. a field map) is no echo."""
    if use_number:
        return f.echo_number
    return None if not f.echo_time else round(f.echo_time, 2)


def _field_map(f: FrameHeader) -> str:
    """``fieldmaphz`` for a B0 field map in Hz (RealWorldValueMapping units, as Philips writes
    them), ``fieldmap`` for other images ImageType calls a field map, else ""."""
    if f.mr is not None and f.mr.rwv_units.upper() == "HZ":
        return "fieldmaphz"
    words = _type_words(tuple(f.image_type))
    if "FIELDMAP" in words or {"FIELD", "MAP"} <= words or {"B0", "MAP"} <= words:
        return "fieldmap"
    return ""


def _plane_of(members: list[FrameHeader]) -> str:
    f = members[0]
    if f.iop is None or not f.has_geometry:
        return "nogeom"
    try:
        row, col = check_iop(f.iop)
    except GeometryError:
        return "nogeom"
    return closest_plane(np.cross(row, col))[0]


def _position_clusters(frames: list[FrameHeader], normal: np.ndarray) -> list[list[FrameHeader]]:
    """Frames grouped by position along ``normal`` (sorted ascending)."""
    d = np.array([np.dot(f.ipp, normal) for f in frames])  # type: ignore[arg-type]
    order = np.argsort(d, kind="stable")
    clusters: list[list[FrameHeader]] = []
    last = None
    for i in order:
        if last is None or d[i] - last > POSITION_TOLERANCE_MM:
            clusters.append([])
        clusters[-1].append(frames[i])
        last = d[i]
    return clusters


def _build_stack(
    uid: str, frames: list[FrameHeader], label: str, localizer_series: bool, derived: str = ""
) -> Stack:
    f0 = frames[0]
    common = dict(
        id="",
        series_uid=uid,
        series_number=f0.series_number,
        series_description=f0.series_description,
        modality=f0.modality,
        label=label,
        derived=derived,
    )
    bad = next((f for f in frames if f.problem), None)
    if bad is not None:
        return Stack(**common, frames=frames, kind="no geometry", n_slices=1, n_frames=len(frames),
                     geometry=None, problem=f"{bad.name}: {bad.problem}")
    if not f0.has_geometry:
        missing = [n for n, v in (("ImagePositionPatient", f0.ipp), ("ImageOrientationPatient", f0.iop),
                                  ("PixelSpacing", f0.pixel_spacing)) if v is None]
        kind = "single image" if len(frames) == 1 else "no geometry"
        return Stack(
            **common, frames=frames, kind=kind, n_slices=1, n_frames=len(frames), geometry=None,
            problem=(f"{f0.name}: {', '.join(missing)} missing or invalid, so the image cannot be "
                     "placed in the patient; use `volume png` for 2D pictures"),
        )
    try:
        row, col = check_iop(f0.iop)
    except GeometryError as exc:
        return Stack(**common, frames=frames, kind="no geometry", n_slices=1, n_frames=len(frames),
                     geometry=None, problem=f"{f0.name}: {exc}")
    normal = np.cross(row, col)
    clusters = _position_clusters(frames, normal)
    counts = {len(c) for c in clusters}
    warnings: list[str] = []
    notes: list[str] = []
    frame_order = ""
    if counts == {1}:
        ordered = [c[0] for c in clusters]
        n_frames = 1
    elif len(counts) == 1:
        n_frames = counts.pop()
        ordering = order_volumes(clusters)
        if ordering is None:
            c = clusters[0]
            names = ", ".join(f.name for f in c[:4]) + (", ..." if len(c) > 4 else "")
            return Stack(
                **common, frames=frames, kind="2D series" if len(clusters) == 1 else "4D",
                n_slices=len(clusters), n_frames=n_frames, geometry=None,
                problem=(f"{n_frames} images share each position (e.g. {names}) and nothing orders "
                         f"them ({ORDER_KEYS_TEXT} missing, equal or inconsistent): not one volume; split "
                         "the files or use `volume png` for 2D pictures"),
            )
        frame_order = ordering.key
        ordered = [f for volume in ordering.volumes for f in volume]
        if frame_order == LAST_RESORT:
            notes.append(f"{n_frames} volumes ordered by InstanceNumber (nothing else in the files orders them)")
        else:
            notes.append(f"{n_frames} volumes ordered by {frame_order}")
    else:
        worst = max(clusters, key=len)
        d = float(np.dot(worst[0].ipp, normal))  # type: ignore[arg-type]
        names = ", ".join(f.name for f in worst[:4]) + (", ..." if len(worst) > 4 else "")
        positions = [float(np.dot(c[0].ipp, normal)) for c in clusters]  # type: ignore[arg-type]
        why = incomplete_volumes(clusters, positions) or (
            f"{len(worst)} images at position {d:.2f} mm ({names}) but other positions "
            f"have {min(map(len, clusters))}: duplicated or missing images; remove the "
            "extra files or convert the complete part")
        return Stack(
            **common, frames=frames, kind="4D", n_slices=len(clusters), n_frames=max(map(len, clusters)),
            geometry=None, problem=why,
        )
    n_slices = len(clusters)
    first_frame = ordered[:n_slices]
    ipps = np.array([f.ipp for f in first_frame])
    thickness = f0.slice_thickness or 1.0
    try:
        geometry = stack_geometry(ipps, f0.iop, f0.pixel_spacing, single_slice_spacing=thickness)  # type: ignore[arg-type]
    except GeometryError as exc:
        culprit = first_frame[exc.image] if exc.image is not None else f0
        return Stack(**common, frames=frames, kind="no geometry", n_slices=n_slices, n_frames=n_frames,
                     geometry=None, problem=f"{culprit.name}: {exc}")
    if geometry.gaps:
        i = geometry.gaps[0]
        a, b = first_frame[int(geometry.order[i])], first_frame[int(geometry.order[i + 1])]
        da, db = geometry.distances[i], geometry.distances[i + 1]
        more = len(geometry.gaps) - 1
        warnings.append(
            f"gap: {db - da:.2f} mm between {a.name} (at {da:.2f} mm along the slice normal) and "
            f"{b.name} (at {db:.2f} mm), others {geometry.spacing:.2f} mm"
            + (f"; {more} more uneven step{'s' if more > 1 else ''}" if more else "")
        )
    if geometry.tilted:
        warnings.append(f"tilt {geometry.tilt_deg:.1f}°, corrected on load (orthogonal grid)")
    pepolar = ge.pepolar_warning([f.mr.pepolar for f in ordered if f.mr is not None])
    if pepolar:
        warnings.append(pepolar)
    if n_slices == 1:
        kind = "single image" if n_frames == 1 else "2D series"
    elif n_frames > 1:
        kind = "4D"
    elif localizer_series or any(f.is_localizer for f in first_frame):
        kind = "localizer"
    else:
        kind = "volume"
    stack = Stack(
        **common, frames=ordered, kind=kind, n_slices=n_slices, n_frames=n_frames,
        geometry=geometry, frame_order=frame_order, warnings=warnings, notes=notes,
    )
    diffusion = stack.diffusion if f0.mr is not None else None
    if diffusion is not None and diffusion["bvecs_lps"] is None:
        warnings.append(diffusion["bvecs_missing"])
    return stack


def group_frames(frames: Iterable[FrameHeader]) -> list[Series]:
    """Group frame headers by SeriesInstanceUID and split each series into stacks.

    Exact duplicates (same SOPInstanceUID and frame in one series) are dropped silently, keeping the first path
    in sorted order. Series come back sorted by (series number, description, UID); stack ids are
    unique: the series number, with the split label when a series holds several stacks and a
    ``#2`` suffix when two series share a number.
    """
    # A SeriesInstanceUID shared by images with different SeriesNumbers (some exports do that)
    # holds separate series: the number splits them.
    by_uid: dict[tuple[str, int | None], list[FrameHeader]] = defaultdict(list)
    seen: dict[tuple[Any, ...], str] = {}
    dropped: dict[tuple[str, int | None], int] = defaultdict(int)
    for f in sorted(frames, key=lambda f: (f.path, f.frame or 0)):
        uid = f.series_uid or f"no-uid:{os.path.dirname(f.path)}:{f.series_number}"
        group = (uid, f.series_number)
        if f.sop_uid:
            key = (group, f.sop_uid, f.frame)  # the same SOP UID in another series is another image
            if key in seen and seen[key] != f.path:
                dropped[group] += 1
                continue
            seen[key] = f.path
        by_uid[group].append(f)
    series_list: list[Series] = []
    for group, members in by_uid.items():
        uid = group[0]
        parts = _split_series(members)
        planes = {_plane_of(m) for _, m in parts if m[0].has_geometry}
        localizer_series = len(planes) > 1
        stacks = [_build_stack(uid, m, labels["label"], localizer_series, labels["derived"]) for labels, m in parts]
        if dropped.get(group):
            stacks[0].warnings.append(f"duplicate: {dropped[group]} identical file(s) ignored")
        f0 = members[0]
        series_list.append(Series(uid=uid, number=f0.series_number, description=f0.series_description,
                                  modality=f0.modality, stacks=stacks))
    series_list.sort(key=lambda s: (_sort_none(s.number), s.description, s.uid))
    bases: list[tuple[Stack, str]] = []
    for s in series_list:
        for st in s.stacks:
            number = st.series_number if st.series_number is not None else s.number
            base_number = str(number) if number is not None else _short_hash(s.uid)
            bases.append((st, base_number + (f"_{st.label}" if st.label else "")))
    # Series sharing a number are all numbered (301#1, 301#2): an id never equals the number
    # another series answers to, so selecting by id is never ambiguous.
    counts = Counter(base for _, base in bases)
    used: dict[str, int] = defaultdict(int)
    for st, base in bases:
        used[base] += 1
        st.id = base if counts[base] == 1 else f"{base}#{used[base]}"
    return series_list


def dimensions_text(shape: tuple[int, ...], rgb: bool = False) -> str:
    """Slices x rows x columns (and the frames of 4D), as ``volume ls`` shows a stack's ``shape``:
    the order of ``Volume.shape``, of the ``Volume`` repr and of the axis letters (``SPL``)
    (docs/conventions.md)."""
    spatial = shape[-3:]
    text = "x".join(str(n) for n in spatial)
    if len(shape) == 4:
        text += f", {shape[0]} frames"
    return text + (" RGB" if rgb else "")


def stack_choice(stack: Stack) -> str:
    """One stack as a choice in a message: ``301#1 T1W_aTSE (MR volume 512x512x24)``, the ID,
    DESCRIPTION, MOD, KIND and DIMENSIONS columns of ``volume ls``."""
    description = " ".join(stack.series_description.split())
    about = " ".join(x for x in (stack.modality, stack.kind, dimensions_text(stack.shape, stack.rgb)) if x)
    return f"{stack.id}{' ' + description if description else ''} ({about})"


def folder_name(stack: Stack) -> str:
    """The name of the folder holding the stack's first file (``T1`` for ``brainix/T1/IM-0001.dcm``)."""
    return os.path.basename(os.path.dirname(os.path.abspath(stack.first.path)))


#: How a selector is matched, tier by tier (the first tier with a match decides): the exact keys
#: (stack id, series number, SeriesInstanceUID, description), the name of the stacks' folder, a part
#: of the description (case ignored, for names and descriptions).
SELECTOR_TIERS = ("exact", "folder", "description part")


def select_stacks(stacks: list[Stack], selector: str | int | None, *, where: str = "") -> list[Stack]:
    """Stacks matching ``selector``, never a silent pick among several series.

    Tiers (:data:`SELECTOR_TIERS`): a stack id selects its stack alone (ids are unique); else the
    stacks whose series number, SeriesInstanceUID or description (case ignored) equals it; else
    those whose folder is named so (``T1`` for ``brainix/T1/``); else those whose description
    contains it (``flair``; a selector needs a letter for this: a number is never a part). Several stacks of one series (a localizer's planes, echoes) are all
    returned; matches in several series raise :class:`~volume.errors.AmbiguousSeriesError`
    listing them (``where`` starts its message). An empty list means nothing matched.
    """
    if selector is None:
        return list(stacks)
    key = str(selector).strip()
    exact = [s for s in stacks if s.id == key]
    if exact:
        return exact
    folded = key.casefold()
    tiers = (
        lambda s: key == str(s.series_number) or key == s.series_uid or folded == s.series_description.casefold(),
        lambda s: folded == folder_name(s).casefold(),
        # a number is a series number, never a part of a description ("1" is not "T1/SE")
        lambda s: any(c.isalpha() for c in folded) and folded in s.series_description.casefold(),
    )
    for test in tiers:
        chosen = [s for s in stacks if test(s)]
        if not chosen:
            continue
        series = {(s.series_uid, s.series_number) for s in chosen}
        if len(series) > 1:
            raise AmbiguousSeriesError(where or "the scan", [stack_choice(s) for s in chosen], selector=key,
                                       series=len(series))
        return chosen
    return []

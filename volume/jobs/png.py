"""``volume png``'s batch: every DICOM image under a folder to a picture, on a process pool.

Each file's failure is caught in the worker and returned as data (:class:`FileResult`): one bad
file never stops the batch. The pictures themselves come from :mod:`volume.jobs.pictures`; the
pool from :mod:`volume.parallel.pool`.
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from .. import lifecycle
from ..dicom.presentation import frame_durations_ms
from ..errors import OutputExistsError, VolumeError
from ..io.image import resize_picture, write_gif, write_picture
from ..io.names import safe_name, unique_names
from ..ops.presets import modality_warning
from ..parallel.pool import ordered_map
from .existing import EXISTS_REASON, Tally, check_outputs
from .pictures import (
    DisplayedFrame,
    DisplayOptions,
    NotAnImage,
    frame_suffix,
    image_check,
    is_multiframe,
    iter_pictures,
    n_frames,
    output_stem,
    read_dataset,
)


@dataclass(frozen=True)
class PngSettings:
    """What ``volume png`` writes: format, size, square pixels, window options, animation, overwrite."""

    display: DisplayOptions = DisplayOptions()
    fmt: str = "png"
    quality: int = 95
    size: int | None = None
    keep_ratio: bool = False
    gif: bool = False
    force: bool = False
    square: bool = False
    gif_always: bool = False
    """With ``gif``: a single-frame file becomes a one-frame GIF too (``-o NAME.gif`` asked for one)."""
    preset: str | None = None
    """The name of the preset ``display.window`` came from (checked against each file's modality)."""
    preset_option: str = "--preset"
    """How the user gave that preset, for the warning."""


@dataclass
class FileResult:
    """What happened to one input file (returned by workers; paths as strings).

    ``series`` names the file's series for warnings (``series 5339 FLAIR_ROI``; see
    :func:`series_label`), empty when the file could not be read.
    """

    source: str
    written: list[str] = field(default_factory=list)
    kept: int = 0
    """Pictures not written because they exist (all of them when ``skipped`` is :data:`EXISTS_REASON`)."""
    skipped: str = ""
    """Why the file gave no picture: not an image, or its pictures exist (:data:`EXISTS_REASON`)."""
    error: str = ""
    notes: list[str] = field(default_factory=list)
    series: str = ""


def series_label(ds: Any) -> str:
    """How warnings name a file's series: ``series <SeriesNumber> <SeriesDescription>``."""
    number = str(ds.get("SeriesNumber", "") or "").strip()
    description = " ".join(str(ds.get("SeriesDescription", "") or "").split())
    return " ".join(x for x in ("series", number or "without a number", description) if x)


@dataclass
class PngSummary:
    """Counts over a batch, for the closing lines."""

    files: int = 0
    pictures: int = 0
    kept: int = 0
    """Pictures kept because they exist (of skipped files and of files whose other frames were written)."""
    kept_beside: int = 0
    """Pictures kept because they exist, of files whose missing frames were written now."""
    done: int = 0
    """Files that gave at least one picture written now."""
    skipped: Counter[str] = field(default_factory=Counter)
    errors: list[tuple[str, str]] = field(default_factory=list)
    notes: Counter[str] = field(default_factory=Counter)
    note_series: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    """``note -> series label -> the files`` it was about, in input order (which series a warning is about)."""

    def add(self, r: FileResult) -> None:
        self.files += 1
        self.pictures += len(r.written)
        self.kept += r.kept
        self.done += bool(r.written)
        if r.skipped != EXISTS_REASON:
            self.kept_beside += r.kept
        if r.skipped:
            self.skipped[r.skipped] += 1
        if r.error:
            self.errors.append((r.source, r.error))
        for note in dict.fromkeys(r.notes):  # a note repeated for every frame counts the file once
            self.notes[note] += 1
            self.note_series.setdefault(note, {}).setdefault(r.series, []).append(r.source)

    def tally(self) -> Tally:
        """The counts by file, as every job counts (:class:`volume.jobs.existing.Tally`)."""
        return Tally("written", done=self.done, skipped=sum(self.skipped.values()),
                     existing=self.skipped[EXISTS_REASON], failed=len(self.errors))


def _within(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def plan_outputs(source: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> list[tuple[str, str]]:
    """Pair every input file with its output stem (a path under ``out_dir`` without suffix).

    A file gives ``out_dir/<name>``; a folder gives ``out_dir/<relative path>``, each component
    made safe (:func:`volume.io.names.safe_name`), DICOM suffixes dropped, names made unique
    within each output folder. Files inside ``out_dir`` (a rerun into the input tree) are
    skipped. Nothing can land outside ``out_dir``.
    """
    src, out = Path(source), Path(out_dir)
    if src.is_file():
        return [(os.fspath(src), os.fspath(out / output_stem(src.name)))]
    pairs: list[tuple[str, tuple[str, ...], str]] = []
    out_inside = _within(out, src) if out.exists() else False
    for root, dirs, files in os.walk(src):
        dirs.sort()
        if out_inside:
            dirs[:] = [d for d in dirs if not _within(Path(root) / d, out)]
        rel_dir = Path(root).relative_to(src)
        parts = tuple(safe_name(p, fallback="folder") for p in rel_dir.parts)
        for name in sorted(files):
            pairs.append((os.path.join(root, name), parts, output_stem(name)))
    by_dir: dict[tuple[str, ...], list[int]] = {}
    for i, (_, parts, _) in enumerate(pairs):
        by_dir.setdefault(parts, []).append(i)
    stems = [p[2] for p in pairs]
    for idxs in by_dir.values():
        for i, unique in zip(idxs, unique_names([stems[i] for i in idxs]), strict=True):
            stems[i] = unique
    return [(path, os.fspath(out.joinpath(*parts, stem))) for (path, parts, _), stem in zip(pairs, stems, strict=True)]


def convert_file(job: tuple[str, str], settings: PngSettings) -> FileResult:
    """Write the pictures of one file; every failure is returned in the result, never raised."""

    source, stem = job
    result = FileResult(source)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _convert_file(source, stem, settings, result)


def _convert_file(source: str, stem: str, settings: PngSettings, result: FileResult) -> FileResult:
    ext = "jpg" if settings.fmt in ("jpg", "jpeg") else "png"
    try:
        ds = read_dataset(source)
        image_check(ds)
        result.series = series_label(ds)
        if settings.preset is not None:
            note = modality_warning(settings.preset_option, settings.preset, ds.get("Modality"))
            if note:
                result.notes.append(note)
        count = n_frames(ds)
        multi = is_multiframe(ds)
        if settings.gif and (multi or settings.gif_always):
            target = stem + ".gif"
            if check_outputs([target], force=settings.force).all:  # the one rule (volume/jobs/existing.py)
                result.kept, result.skipped = 1, EXISTS_REASON
                return result
            durations, origin = frame_durations_ms(ds, count)
            if origin == "default" and count > 1:
                result.notes.append(f"no frame time in the header: GIF frames last {durations[0]:g} ms")
            images = [_resized(shown, settings) for shown in iter_pictures(ds, settings.display)]
            write_gif(images, target, durations_ms=durations, force=settings.force)
            result.written.append(target)
            return result
        targets = [stem + (frame_suffix(i, count) if multi else "") + "." + ext for i in range(count)]
        found = check_outputs(targets, force=settings.force)
        if found.all:  # skipped; with some there, the missing frames are written (a re-run resumes)
            result.kept, result.skipped = len(targets), EXISTS_REASON
            return result
        present = {str(p) for p in found.present}
        for pic in iter_pictures(ds, settings.display):
            index = pic.frame or 0
            if index >= len(targets):
                result.notes.append("more frames decoded than NumberOfFrames declares; extra frames ignored")
                break
            target = targets[index]
            result.notes.extend(pic.notes)
            if target in present:
                result.kept += 1
                continue
            try:
                write_picture(target, _resized(pic, settings), text=pic.picture.text, quality=settings.quality,
                              force=settings.force)
            except OutputExistsError:  # another process wrote it meanwhile
                result.kept += 1
                continue
            result.written.append(target)
    except NotAnImage as exc:
        result.skipped = exc.reason
    except VolumeError as exc:
        result.error = str(exc)
    except MemoryError:
        result.error = "out of memory"
    except Exception as exc:  # noqa: BLE001 - one bad file must not stop the batch
        lifecycle.raise_if_stopping(exc)
        result.error = _error_text(exc, source)
    return result


def _resized(shown: DisplayedFrame, settings: PngSettings) -> Any:
    """A frame's picture at the size asked for (square pixels, ``--size``)."""
    pic = shown.picture
    return resize_picture(pic.image, aspect=pic.aspect, size=settings.size, keep_ratio=settings.keep_ratio,
                          square=settings.square)


def _error_text(exc: Exception, source: str) -> str:
    """One line for a file's failure: an output that cannot be written (a full disk), an input that
    cannot be read any more (deleted since the scan), or the error as it is (a decoder's)."""
    named = os.fspath(exc.filename) if isinstance(exc, OSError) and exc.filename is not None else None
    if isinstance(exc, OSError) and exc.errno is not None:
        what = exc.strerror or str(exc)
        if named is not None and os.path.abspath(named) != os.path.abspath(source):
            return f"cannot write {named}: {what}"
        return f"cannot read: {what} (was it moved or deleted during the run?)"
    text = str(exc).splitlines()[0][:200] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def crashed(job: tuple[str, str]) -> FileResult:
    """The result of a file whose worker process died (see :func:`ordered_map`)."""
    return FileResult(job[0], error="the worker process died on this file (a crash in a decoder, or out of memory)")


def convert_many(
    jobs: Iterable[tuple[str, str]],
    settings: PngSettings,
    *,
    workers: int | None = None,
) -> Iterator[FileResult]:
    """:func:`convert_file` over many jobs in parallel, results in input order.

    A file that crashes its worker process is reported as an error; the batch goes on.
    """
    return ordered_map(partial(convert_file, settings=settings), jobs, workers=workers, chunk=2,
                       on_crash=crashed)

"""The small error family of volume, and the exit codes the CLI maps them to.

Every error raised for bad *input* derives from :class:`VolumeError`. Messages say what is
wrong, where (which file or series), and what to do. They never carry patient identity.
"""

from __future__ import annotations

#: Exit code for a batch where some items failed and others succeeded (or any failure in a batch).
EXIT_PARTIAL = 1
#: Exit code for a usage error (bad option, bad argument, missing path).
EXIT_USAGE = 2
#: Exit code when the input holds no readable DICOM image.
EXIT_NO_DICOM = 3
#: Exit code when the input is DICOM but not a volume the command can use.
EXIT_NOT_A_VOLUME = 4
#: Exit code when an output already exists and ``--force`` was not given.
EXIT_OUTPUT_EXISTS = 5
#: Exit code for an internal error (a bug): please report it, rerun with ``--debug``.
EXIT_INTERNAL = 70
#: Exit code after Ctrl-C (128 + SIGINT), as shells use.
EXIT_INTERRUPTED = 130
#: Exit code after SIGTERM (128 + 15): what SLURM, Kubernetes and systemd send before they kill a job.
EXIT_TERMINATED = 143
#: Exit code after SIGHUP (128 + 1): the terminal closed, or a session ended.
EXIT_HANGUP = 129


class VolumeError(ValueError):
    """Base class of every input error volume raises on purpose."""

    exit_code: int = EXIT_NOT_A_VOLUME


class UsageError(VolumeError):
    """A bad argument: a missing path, an option out of range, a wrong combination."""

    exit_code = EXIT_USAGE


class NoDicomError(VolumeError):
    """The path holds no readable DICOM image."""

    exit_code = EXIT_NO_DICOM


class NotAVolumeError(VolumeError):
    """The images cannot form the requested volume (mixed geometry, one position repeated...)."""

    exit_code = EXIT_NOT_A_VOLUME


class AmbiguousSeriesError(NotAVolumeError):
    """Several stacks were found where exactly one was needed; the message lists them.

    ``candidates`` are the stacks as ``volume ls`` describes them (``301#1 T1W_aTSE (MR volume
    512x512x24)``); :meth:`message` words the advice for the interface in use (``series=`` in
    Python, ``--series`` on the command line); ``str()`` is the Python wording.
    """

    def __init__(self, where: str, candidates: list[str], *, selector: str | None = None,
                 series: int | None = None) -> None:
        self.where = where
        self.candidates = list(candidates)
        self.selector = selector
        self.series = series
        super().__init__(self.message("series="))

    #: Candidates a message lists one by one; the rest are counted.
    LISTED = 12

    def message(self, option: str) -> str:
        """The one-line message, advising ``option`` (``series=`` or ``--series``)."""
        n = len(self.candidates)
        across = f" of {self.series} series" if self.series and self.series > 1 else ""
        api = option.endswith("=")
        if self.selector is None:
            what = f"{n} stacks{across} found"
        else:
            shown = f'{option}"{self.selector}"' if api else f"{option} {self.selector}"
            what = f"{shown} matches {n} stacks{across}"
        listing = "; ".join(self.candidates[: self.LISTED])
        if n > self.LISTED:
            listing += f"; and {n - self.LISTED} more (see `volume ls`)"
        how = f'{option}"ID"' if api else f"{option} ID"
        return f"{self.where}: {what}; choose one with {how}: {listing}"


class SliceGapError(NotAVolumeError):
    """Slice positions are unevenly spaced (a missing slice); ``allow_gaps`` resamples."""


class UnsupportedDicomError(VolumeError):
    """DICOM that volume recognises but cannot decode or use (a codec, an encoding, a layout)."""

    exit_code = EXIT_NOT_A_VOLUME


class ResourceLimitError(VolumeError):
    """An image whose header claims more memory than the configured limit allows."""

    exit_code = EXIT_NOT_A_VOLUME


class OutputPathError(UsageError):
    """An output path that cannot be written: its folder is a file, cannot be created, is
    read-only, or the name is too long. A usage error: choose another ``-o``."""


class InputReadError(VolumeError):
    """An input file that cannot be read any more: deleted or moved during the run, or an I/O error."""

    exit_code = EXIT_PARTIAL


class OutputExistsError(VolumeError):
    """An output file exists already and overwriting was not asked for (``--force``)."""

    exit_code = EXIT_OUTPUT_EXISTS

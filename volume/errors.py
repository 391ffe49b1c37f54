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
    """Several stacks were found where exactly one was needed; the message lists them."""


class SliceGapError(NotAVolumeError):
    """Slice positions are unevenly spaced (a missing slice); ``allow_gaps`` resamples."""


class UnsupportedDicomError(VolumeError):
    """DICOM that volume recognises but cannot decode or use (a codec, an encoding, a layout)."""

    exit_code = EXIT_NOT_A_VOLUME


class ResourceLimitError(VolumeError):
    """An image whose header claims more memory than the configured limit allows."""

    exit_code = EXIT_NOT_A_VOLUME


class OutputExistsError(VolumeError):
    """An output file exists already and overwriting was not asked for (``--force``)."""

    exit_code = EXIT_OUTPUT_EXISTS

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
    """Base class of every input error volume raises on purpose.

    Its message is one line naming the files or series and what to do; ``exit_code`` is the exit
    status the command line gives it (docs/conventions.md lists them).

    Examples
    --------
    >>> try:
    ...     volume.load("nowhere")
    ... except volume.VolumeError as error:
    ...     print(type(error).__name__, error.exit_code, error)
    UsageError 2 nowhere: no such file or folder
    """

    exit_code: int = EXIT_NOT_A_VOLUME


class UsageError(VolumeError):
    """A bad argument: a missing path, an option out of range, a wrong combination.

    Examples
    --------
    >>> volume.project(volume.load("ct"), "oblique")
    Traceback (most recent call last):
    ...
    volume.errors.UsageError: plane must be one of axial, coronal, sagittal, got 'oblique'
    """

    exit_code = EXIT_USAGE


class NoDicomError(VolumeError):
    """The path holds no readable DICOM image.

    Examples
    --------
    >>> import os
    >>> os.mkdir("empty")
    >>> volume.load("empty")
    Traceback (most recent call last):
    ...
    volume.errors.NoDicomError: empty: no DICOM images found
    """

    exit_code = EXIT_NO_DICOM


class NotAVolumeError(VolumeError):
    """The images cannot form the requested volume (mixed geometry, one position repeated...).

    Examples
    --------
    >>> rgb = volume.Volume(np.zeros((2, 4, 4, 3), np.uint8), np.eye(4), rgb=True)
    >>> volume.project(rgb)
    Traceback (most recent call last):
    ...
    volume.errors.NotAVolumeError: projections of colour (RGB) images are not supported; ...
    """

    exit_code = EXIT_NOT_A_VOLUME


class AmbiguousSeriesError(NotAVolumeError):
    """Several stacks were found where exactly one was needed; the message lists them.

    ``candidates`` are the stacks as ``volume ls`` describes them (``301#1 T1W_aTSE (MR volume
    512x512x24)``); :meth:`message` words the advice for the interface in use (``series=`` in
    Python, ``--series`` on the command line); ``str()`` is the Python wording.

    Examples
    --------
    >>> vol = volume.load("ct")
    >>> files = volume.write_dicom_series(volume.reslice(vol, spacing=3.0), "iso", source_meta=vol.meta)
    >>> volume.load(volume.scan(["ct", "iso"]))
    Traceback (most recent call last):
    ...
    volume.errors.AmbiguousSeriesError: ct, iso: 2 stacks of 2 series found; choose one with series="ID": ...
    >>> volume.load(volume.scan(["ct", "iso"]), series="1002").shape
    (48, 64, 64)
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
    """Slice positions are unevenly spaced (a missing slice); ``allow_gaps`` resamples.

    Examples
    --------
    >>> import os
    >>> os.remove(volume.scan("ct").stacks[0].frames[10].path)  # a slice in the middle
    >>> volume.load("ct")
    Traceback (most recent call last):
    ...
    volume.errors.SliceGapError: series 2: uneven slice spacing, 6.00 mm between ...; use --allow-gaps (allow_gaps=True) ...
    >>> volume.load("ct", allow_gaps=True).shape
    (48, 128, 128)
    """


class UnsupportedDicomError(VolumeError):
    """DICOM that volume recognises but cannot decode or use (a codec, an encoding, a layout).

    Examples
    --------
    >>> wide = volume.Volume(np.zeros((1, 1, 40000), np.uint8), np.eye(4))
    >>> volume.write_nifti(wide, "wide.nii")
    Traceback (most recent call last):
    ...
    volume.errors.UnsupportedDicomError: NIfTI-1 dimensions are at most 32767, ...
    """

    exit_code = EXIT_NOT_A_VOLUME


class ResourceLimitError(VolumeError):
    """An image whose header claims more memory than the configured limit allows.

    Examples
    --------
    >>> volume.load("ct", max_bytes=100_000)
    Traceback (most recent call last):
    ...
    volume.errors.ResourceLimitError: series 2: the headers describe 48 images of 128x128, 1.5 MiB, over the 97.7 KiB limit; ...
    """

    exit_code = EXIT_NOT_A_VOLUME


class OutputPathError(UsageError):
    """An output path that cannot be written: its folder is a file, cannot be created, is
    read-only, or the name is too long. A usage error: choose another ``-o``."""


class InputReadError(VolumeError):
    """An input file that cannot be read any more: deleted or moved during the run, or an I/O error."""

    exit_code = EXIT_PARTIAL


class OutputExistsError(VolumeError):
    """An output file exists already and overwriting was not asked for (``--force``).

    Examples
    --------
    >>> vol = volume.load("ct")
    >>> volume.write_nifti(vol, "ct.nii.gz")
    PosixPath('ct.nii.gz')
    >>> volume.write_nifti(vol, "ct.nii.gz")
    Traceback (most recent call last):
    ...
    volume.errors.OutputExistsError: ct.nii.gz: exists already; use --force to overwrite
    >>> volume.write_nifti(vol, "ct.nii.gz", force=True)
    PosixPath('ct.nii.gz')
    """

    exit_code = EXIT_OUTPUT_EXISTS

"""The typer application, shared options, and the mapping from errors to exit codes.

Every command lives in its own module of this package and registers itself on :data:`app`.
Commands stay thin: parse, call the library, print. Errors derived from
:class:`~volume.errors.VolumeError` become one line on stderr and their exit code; anything else
is a bug, reported in one line (``--debug`` shows the traceback).
"""

from __future__ import annotations

import errno
import gc
import importlib
import os
import re
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from .. import lifecycle
from .._version import __version__
from ..errors import (
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_PARTIAL,
    EXIT_USAGE,
    AmbiguousSeriesError,
    UsageError,
    VolumeError,
)
from ..io import TEMP_PREFIX

EXIT_CODES_HELP = (
    "Exit codes: 0 success; 1 some items of a batch failed, or a file could not be read or written "
    "(disk full); 2 usage error (bad option, missing path, an output that cannot be written there); "
    "3 no DICOM found; 4 not a volume (or undecodable); 5 output exists (use --force); "
    "70 internal error (please report; --debug shows a traceback); 130 interrupted (Ctrl-C); "
    "143 terminated (SIGTERM); 129 hung up (SIGHUP)."
)

SERIES_HELP = (
    "Which series: a stack ID (`volume ls`), series number, SeriesInstanceUID or description, else a folder "
    "name (T1 for .../T1/) or a part of a description; matches in several series are listed, never picked."
)
"""The help of ``--series``, the same in every command."""

class _Group(TyperGroup):
    """The ``volume`` group: its plain-text help (in a pipe) lists each command's whole first
    sentence, wrapped, where click cuts it at the width ("Convert every stack under PATH to...")."""

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=10_000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


app = typer.Typer(
    cls=_Group,
    name="volume",
    help="DICOM folders to exact 3D/4D volumes, projections, reslices, NIfTI and renderings.\n\n"
    + EXIT_CODES_HELP,
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

_state: dict[str, Any] = {"debug": False}


def choice_enum(name: str, values: Sequence[str], doc: str = "") -> type[Enum]:
    """A typer choice made from a library tuple (:mod:`volume.choices`): the command offers exactly
    what the operation accepts. Member names are the values made identifiers (``ct-bone`` ->
    ``ct_bone``, ``nii.gz`` -> ``nii_gz``)."""
    choice = Enum(name, {re.sub(r"\W", "_", v): v for v in values}, type=str)  # type: ignore[misc]
    choice.__doc__ = doc or f"One of {', '.join(values)}."
    return choice


def given(arguments: dict[str, Any]) -> dict[str, Any]:
    """A command's arguments as its work takes them: ``work.mip(**given(locals()))``.

    A choice becomes its plain value (``"coronal"``, not ``Plane.coronal``), so the work of a
    command never imports its declaration (no import cycle); the work module, bound in the same
    function, is left out.
    """
    return {name: value.value if isinstance(value, Enum) else value
            for name, value in arguments.items() if not isinstance(value, ModuleType)}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"volume {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for internal errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """DICOM folders to exact 3D/4D volumes, projections, reslices, NIfTI and renderings."""
    _state["debug"] = debug


def _printable(text: str) -> str:
    """``text`` with control characters (escape sequences from header text) shown as ``?``."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)


#: Multipliers of the size suffixes :func:`parse_size` accepts (binary: 1K = 1024 bytes).
SIZE_SUFFIXES = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def parse_size(text: str, option: str = "--max-memory") -> int:
    """Bytes from ``8G``, ``500M``, ``1.5T`` or a plain number; :class:`UsageError` otherwise."""
    raw = str(text).strip().upper().removesuffix("B").removesuffix("I")
    unit = raw[-1:] if raw[-1:] in SIZE_SUFFIXES else ""
    try:
        value = float(raw[: len(raw) - len(unit)])
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise UsageError(f"{option} must be a positive size such as 8G or 500M, got {text!r}")
    return int(value * SIZE_SUFFIXES[unit])


def err(message: str) -> None:
    """Print one line on stderr (newlines in ``message`` are flattened)."""
    line = _printable(" ".join(str(message).split()))
    sys.stderr.write(f"volume: {line}\n")
    sys.stderr.flush()


def warn(message: str) -> None:
    """Print one warning line on stderr."""
    line = _printable(" ".join(str(message).split()))
    sys.stderr.write(f"volume: warning: {line}\n")
    sys.stderr.flush()


def stdout_is_terminal() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


@contextmanager
def progress_bar(description: str, total: int | None, *, enabled: bool | None = None) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on stderr when it is a terminal; a no-op callable otherwise.

    Yields ``advance(n)``. Lines written on stdout meanwhile (the files a job lists) are drawn
    above the bar when stdout is the same terminal, and go to stdout untouched when it is not (a
    pipe or a file keeps its listing).
    """
    show = stderr_is_terminal() if enabled is None else enabled
    if not show or os.environ.get("VOLUME_NO_PROGRESS"):
        yield lambda n=1: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
        redirect_stdout=stdout_is_terminal(),
    ) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n=1: progress.advance(task, n)


class _ReaderSafeStdout:
    """``sys.stdout`` that outlives its reader (``volume convert ... | head``).

    When the reader of a pipe goes away, the next write or flush raises ``BrokenPipeError``
    (Python ignores SIGPIPE). For the commands whose product is files, the listing on stdout is
    a log: losing its reader must not stop a batch halfway. The first broken write points the
    descriptor at ``/dev/null`` (so buffered text and later writes vanish quietly, in this
    process and at exit) and sets :attr:`closed_early`; the command goes on to its end.
    """

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.closed_early = False

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._reader_gone()
            return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._reader_gone()

    def _reader_gone(self) -> None:
        self.closed_early = True
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, self._stream.fileno())
            finally:
                os.close(devnull)
        except (OSError, ValueError, AttributeError):  # no descriptor (a test's buffer): drop text
            self._stream = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def command_word(args: list[str]) -> str | None:
    """The command a command line names: its first word that is not an option (None if none)."""
    return next((a for a in args if not a.startswith("-")), None)


#: Commands whose product is what they print: a closed stdout just ends their listing, silently
#: (as ``ls | head`` does). Every other command writes files and says so when its list was cut.
LISTING_COMMANDS = frozenset({None, "ls", "info"})


#: Command modules, in the order ``volume --help`` lists their commands.
COMMAND_MODULES = ("inspect", "convert", "bids", "mip", "reslice", "render", "png", "index", "sample")

#: The module that registers each command.
COMMANDS = {
    "ls": "inspect", "info": "inspect", "convert": "convert", "bids": "bids", "mip": "mip", "reslice": "reslice",
    "render": "render", "view": "render", "serve": "render", "mesh": "render", "png": "png", "index": "index",
    "sample": "sample",
}


def load_commands(args: list[str] | None = None) -> None:
    """Register the command ``args`` names (its first word that is not an option), or every
    command when there is none or it is unknown. Safe to call repeatedly.

    Typer builds every registered command's parameters on each run: importing one declaration
    module instead of eight saves a tenth of the start-up.
    """
    first = command_word(list(args or ()))
    module = COMMANDS.get(first) if first is not None else None
    for name in (module,) if module else COMMAND_MODULES:
        importlib.import_module(f"{__package__}.{name}")


def stop_line(signum: int) -> str:
    """The one line after a stop signal: Ctrl-C's is the one every command always printed."""
    how = "" if signum == signal.SIGINT else f" by {lifecycle.signal_name(signum)}"
    return f"interrupted{how}; nothing half-written was left"


def main(argv: list[str] | None = None, *, as_program: bool = False) -> int:
    """Run the CLI; return the exit code (see :data:`EXIT_CODES_HELP`).

    SIGINT, SIGTERM and SIGHUP stop a command the same way (:mod:`volume.lifecycle`): it unwinds,
    removing its temporary files, prints one line and returns 130, 143 or 129; a command that
    does not end within :data:`volume.lifecycle.STOP_DEADLINE_S` of the signal is ended then.
    The previous signal handlers are restored at the end, unless ``as_program`` (the process is
    ending: a signal then no longer interrupts, but the process still ends within the deadline).
    """
    original = sys.stdout
    guard = _ReaderSafeStdout(original)
    sys.stdout = guard
    restore: Callable[[], None] = lambda: None  # noqa: E731
    try:
        try:
            restore = lifecycle.handle_stop_signals(lambda signum: err(stop_line(signum)))
            code = _main_guarded(argv)
        except KeyboardInterrupt:  # a signal between the handlers' installation and the command
            code = EXIT_INTERRUPTED
        lifecycle.remove_held()  # never published: a writer interrupted before it could clean up
        signum = lifecycle.stop_signal()
        if signum is not None or code == EXIT_INTERRUPTED:
            lifecycle.report_stop(lambda: err(stop_line(signum if signum is not None else signal.SIGINT)))
            code = lifecycle.exit_code(signum) if signum is not None else EXIT_INTERRUPTED
        guard.flush()
    finally:
        if as_program:
            lifecycle.guard_exit()
        else:
            restore()
        if sys.stdout is guard:
            sys.stdout = original
    if guard.closed_early:
        args = list(sys.argv[1:] if argv is None else argv)
        command = command_word(args)
        if command not in LISTING_COMMANDS and "--help" not in args and "-h" not in args:
            err(
                "standard output was closed early (its reader, such as `head`, quit); the work went "
                "on and every output was written: only the listing of them is incomplete"
            )
    return code


def _main_guarded(argv: list[str] | None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    load_commands(args)
    # Help in a pipe or a CI log is plain text wrapped at the width, never a table whose cells
    # cut words short ("<series>_mip_<plane>…"); rich panels only on a terminal.
    app.rich_markup_mode = "rich" if stdout_is_terminal() else None  # type: ignore[assignment]
    try:
        rv = app(args=args, prog_name="volume", standalone_mode=False)
        # typer turns Ctrl-C (and the other stop signals: a KeyboardInterrupt) into a silent
        # Exit(130); main() prints the line and the signal's own code
        return rv if isinstance(rv, int) else 0
    except typer.Exit as exc:
        return exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    except typer.TyperException as exc:  # a usage error, as click words it (typer vendors click)
        if type(exc).__name__ == "NoArgsIsHelpError":  # `volume` or a command alone: its help
            exc.show()  # type: ignore[attr-defined]
            return EXIT_USAGE
        ctx = getattr(exc, "ctx", None)
        hint = f" (see `{ctx.command_path} --help`)" if ctx is not None and ctx.command_path else ""
        err(f"{exc.format_message()}{hint}")
        return exc.exit_code if exc.exit_code else EXIT_USAGE
    except VolumeError as exc:
        if debug:
            raise
        # the library words its advice for Python (series="ID"); here it is --series ID
        err(exc.message("--series") if isinstance(exc, AmbiguousSeriesError) else str(exc))
        return exc.exit_code
    except BrokenPipeError:  # not stdout's (that one is caught by the guard): a pipe we opened
        if debug:
            raise
        err("a pipe closed while writing (nothing half-written was left)")
        return EXIT_PARTIAL
    except OSError as exc:
        if debug:
            raise
        if exc.errno in WRITE_ERRNOS:
            err(f"{_where(exc.filename)}: {exc.strerror or exc} (nothing half-written was left)")
            return EXIT_PARTIAL
        if exc.errno in READ_ERRNOS and exc.filename:
            err(f"{exc.filename}: cannot read: {exc.strerror or exc} (was it moved or deleted during the run?)")
            return EXIT_PARTIAL
        return _internal(exc)
    except MemoryError:
        if debug:
            raise
        err("out of memory; try a smaller series, --series to pick one, or a machine with more memory")
        return EXIT_INTERNAL
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, no traceback
        if debug:
            raise
        return _internal(exc)
    except BaseException as exc:  # a Rust extension's PanicException derives from BaseException
        if debug or type(exc).__name__ != "PanicException":
            raise
        return _internal(exc)


#: errno values of an environment that refuses writes (disk full, quota, I/O error, read-only, permissions).
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS, errno.EACCES, errno.EPERM,
                          errno.EFBIG})

#: errno values of a file that cannot be read any more (an input deleted or moved during the run).
READ_ERRNOS = frozenset({errno.ENOENT, errno.ESTALE})


def _where(filename: Any) -> str:
    """The output a failed write was for: the folder, when the file was a temporary one."""
    if not filename:
        return "the output"
    parts = Path(os.fspath(filename)).parts
    for i, part in enumerate(parts):
        if part.startswith(TEMP_PREFIX):
            return str(Path(*parts[:i])) if i else "."
    return os.fspath(filename)


def _internal(exc: BaseException) -> int:
    if lifecycle.stop_signal() is not None:
        # raised while the job unwound after a stop signal (a writer torn down mid-write): the stop
        # is what happened, and main() says so with its code; --debug still shows the traceback
        return EXIT_INTERRUPTED
    first = str(exc).splitlines()[0][:300] if str(exc) else ""
    err(f"internal error: {type(exc).__name__}: {first} (a bug: rerun with --debug and report it)")
    return EXIT_INTERNAL




def run() -> None:
    """Console-script entry point: :func:`main`, then a normal exit with its code.

    The cyclic collector runs less often during the command (``volume.cli.GC_THRESHOLDS``, set
    when the command line is imported).

    Before exiting, the objects alive are moved to the collector's permanent generation
    (:func:`gc.freeze`): the collections the interpreter runs while it shuts down then skip them,
    which saves most of the teardown of a process that imported numpy, pydicom and VTK
    (docs/benchmarks.md). Everything else a normal exit does happens as usual: threads are
    joined, ``atexit`` handlers run (worker pools, dask clients, temporary folders), output is
    flushed.
    """
    code = main(as_program=True)  # a stop signal from now on: the process still ends within the deadline
    gc.freeze()
    sys.exit(code)

"""Atomic, never-clobbering writes: a temporary file in the target folder, then ``os.replace``.

Every writer in volume goes through :func:`atomic_output` (a DICOM series through
:func:`atomic_folder`), so an output appears whole or not at all (Ctrl-C, SIGTERM, a full
disk, a crash), and an existing file is kept unless ``force`` is given.

Temporary names say who made them: ``.volume-tmp-<host>_<pid>_<random><suffix>``. A process
killed outright (``kill -9``, the out-of-memory killer, a preempted node) cannot remove its own,
so every run sweeps each folder it writes into, once, for temporaries of processes of this host
that no longer run (:func:`sweep`), and never touches those of a process that runs.

Mistakes in an output path (its folder is a file, cannot be created, is read-only, a name too
long) are :class:`~volume.errors.OutputPathError` (exit 2) naming the output: :func:`check_writable`
finds them before any work, :func:`atomic_output` when it creates the folder. A write that fails
on a full disk, a quota or an I/O error raises ``OSError`` naming the output, not the temporary
file, which is removed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from .. import lifecycle
from ..errors import OutputExistsError, OutputPathError
from . import TEMP_PREFIX

TEMP_NAME = re.compile(re.escape(TEMP_PREFIX) + r"(?P<host>[A-Za-z0-9.-]+)_(?P<pid>\d+)_")
"""How a temporary name starts: the host and the process that made it."""

WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG, errno.EROFS})
"""errno values of a write that failed because of where it went (full disk, quota, I/O error):
re-raised naming the output."""

PATH_ERRNOS = {
    errno.ENOTDIR: "a part of it is a file, not a folder",
    errno.EEXIST: "a part of it is a file (or a broken link), not a folder",
    errno.ENOENT: "a folder on the way cannot be created",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "read-only file system",
    errno.ENAMETOOLONG: "the name is too long",
    errno.ELOOP: "too many symbolic links",
}
"""errno values of an output path that cannot be used, and how a message says it."""

NAME_MAX_GUESS = 200
"""Names up to this many bytes are never checked against the file system's limit (255 nearly everywhere)."""

_swept: set[tuple[int, str]] = set()  # (pid, folder) pairs swept already


def host_name() -> str:
    """This machine's name as temporary names carry it (letters, digits, ``.`` and ``-``)."""
    name = re.sub(r"[^A-Za-z0-9.-]", "-", os.uname().nodename if hasattr(os, "uname") else "host")
    return name.strip(".-") or "host"


def temp_prefix() -> str:
    """The start of this process's temporary names: ``.volume-tmp-<host>_<pid>_``."""
    return f"{TEMP_PREFIX}{host_name()}_{os.getpid()}_"


def _process_runs(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine (one of another user counts)."""
    if pid <= 0:
        return True  # not a process id: never call it dead
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it runs, as someone else
        return True
    return True


def is_stale(name: str) -> bool:
    """Whether ``name`` is a temporary of a process of this host that no longer runs.

    Names of other hosts (a shared folder on a cluster) and names without a host and process (older
    versions of volume) are never stale: nothing here can tell whether their writer still runs.
    """
    m = TEMP_NAME.match(name)
    if m is None or m["host"] != host_name():
        return False
    pid = int(m["pid"])
    return pid != os.getpid() and not _process_runs(pid)


def sweep(folder: str | os.PathLike[str], *, again: bool = False) -> list[str]:
    """Remove from ``folder`` the temporaries (files or folders) left by dead processes of this host.

    Each folder is swept once per process (the first write into it), or ``again`` (after a pool's
    workers were stopped: what a killed one left). Returns the names removed.
    """
    key = (os.getpid(), os.path.abspath(folder))
    if key in _swept and not again:
        return []
    _swept.add(key)
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(TEMP_PREFIX) or not is_stale(entry.name):
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
            removed.append(entry.name)
        except OSError:
            pass
    return removed


def _path_error(path: Path, exc: OSError) -> OutputPathError:
    reason = PATH_ERRNOS.get(exc.errno or 0, exc.strerror or str(exc))
    where = f" ({exc.filename})" if exc.filename and os.fspath(exc.filename) != os.fspath(path) else ""
    return OutputPathError(f"{path}: cannot write here: {reason}{where}; choose another output")


def _existing_ancestor(path: Path) -> Path:
    """The nearest of ``path``'s folders that exists (lexically, ``..`` kept)."""
    parent = path.parent
    while not os.path.lexists(parent) and parent != parent.parent:
        parent = parent.parent
    return parent


def check_output_path(path: str | os.PathLike[str], *, folder: bool = False) -> Path:
    """Refuse, before any work, an output that cannot be written where it is.

    ``path`` is a file to write (its folder is created when missing) or, with ``folder``, a folder
    to write into. Refused: a part of the path that is a file (or a broken link), a folder that
    cannot be written (read-only, no permission), a name longer than the file system allows.

    Raises
    ------
    OutputPathError
        The output cannot be written there (a usage error: exit 2).
    """
    p = check_name(path)
    base = p if folder and p.is_dir() else _existing_ancestor(p)
    if base.exists() and not base.is_dir():
        raise OutputPathError(f"{p}: cannot write here: {base} is a file, not a folder; choose another output")
    if os.path.islink(base) and not base.exists():
        raise OutputPathError(f"{p}: cannot write here: {base} is a broken link; choose another output")
    if base.is_dir() and not os.access(base, os.W_OK | os.X_OK):
        reason = "read-only file system" if _read_only(base) else "permission denied"
        raise OutputPathError(f"{p}: cannot write here: {base}: {reason}; choose another output")
    return p


def check_name(path: str | os.PathLike[str]) -> Path:
    """Refuse a path with a name longer than the file system allows (:class:`OutputPathError`):
    checked before anything looks at the path (a stat of it fails with ENAMETOOLONG)."""
    p = Path(path)
    longest = max((len(os.fsencode(part)) for part in p.parts), default=0)
    if longest > NAME_MAX_GUESS and longest > _name_max(p):
        short = os.fspath(p) if len(os.fspath(p)) <= SHOWN_PATH_CHARS else os.fspath(p)[:SHOWN_PATH_CHARS] + "..."
        raise OutputPathError(f"{short}: cannot write here: a name is too long ({longest} bytes, at most "
                              f"{_name_max(p)}); choose a shorter one")
    if len(os.fsencode(os.path.abspath(p))) >= _path_max():
        raise OutputPathError(f"{os.fspath(p)[:SHOWN_PATH_CHARS]}...: cannot write here: the path is too long; "
                              "choose a shorter one")
    return p


SHOWN_PATH_CHARS = 200
"""A path longer than this is cut in a message (the message stays one readable line)."""


def _name_max(path: Path) -> int:
    try:
        return int(os.pathconf(_existing_ancestor(path / "x"), "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return 255


def _path_max() -> int:
    try:
        return int(os.pathconf("/", "PC_PATH_MAX"))
    except (OSError, ValueError, AttributeError):
        return 4096


def _read_only(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & getattr(os, "ST_RDONLY", 1))
    except (OSError, AttributeError):
        return False


def check_writable(path: str | os.PathLike[str], *, force: bool = False) -> Path:
    """Refuse an output file before any work: :class:`OutputExistsError` when it exists and
    ``force`` is false (or is a folder); :class:`OutputPathError` when it cannot be written there
    (see :func:`check_output_path`)."""
    p = check_name(path)
    if p.exists() and not force:
        raise OutputExistsError(f"{p}: exists already; use --force to overwrite")
    if p.is_dir():
        raise OutputExistsError(f"{p}: is a folder, not a file")
    check_output_path(p)
    return p


def make_folder(folder: str | os.PathLike[str]) -> Path:
    """Create an output folder (and its parents); :class:`OutputPathError` when that cannot be done."""
    f = Path(folder)
    try:
        f.mkdir(parents=True, exist_ok=True)
    except FileExistsError as exc:  # a file, or a broken link, where a folder should be
        raise _path_error(f, exc) from None
    except OSError as exc:
        if exc.errno in PATH_ERRNOS:
            raise _path_error(f, exc) from None
        raise
    return f


def _new_temp(target: Path, suffix: str) -> Path:
    """A new temporary file beside ``target``, held (a stop signal is held back until it is)."""
    with lifecycle.deferred():
        try:
            fd, name = tempfile.mkstemp(prefix=temp_prefix(), suffix=suffix, dir=target.parent)
        except OSError as exc:
            if exc.errno in PATH_ERRNOS:
                raise _path_error(target, exc) from None
            raise
        lifecycle.hold(name)
        os.close(fd)
    return Path(name)


def error_number(exc: BaseException) -> int | None:
    """The errno of ``exc`` or of the error it was raised from: libraries re-raise a failed write as
    an ``OSError`` of their own without one (pydicom: "With tag (7FE0,0010) got exception:
    [Errno 28] ..."), or quote it in the message."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        number = getattr(current, "errno", None)
        if isinstance(number, int):
            return number
        current = current.__cause__ or current.__context__
    m = ERRNO_IN_TEXT.search(str(exc))
    return int(m.group(1)) if m else None


ERRNO_IN_TEXT = re.compile(r"\[errno (\d+)\]", re.IGNORECASE)
"""How a library's message quotes the errno of the error it wraps."""


def _named(exc: OSError, target: Path, tmp: Path) -> OSError:
    """``exc`` naming the output instead of its temporary file, when it is a failed write there (a
    full disk is the output's problem); an error about another file (an input) is left as it is."""
    about = os.fspath(exc.filename) if exc.filename is not None else None
    number = error_number(exc)
    if number in WRITE_ERRNOS and (about is None or about.startswith(os.fspath(tmp))):
        return OSError(number, os.strerror(number), os.fspath(target))
    return exc


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str], *, force: bool = False, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success move it onto ``path`` atomically.

    On any exception (including KeyboardInterrupt and the other stop signals) the temporary file
    is removed and nothing is left at ``path``. Without ``force`` an existing ``path`` raises
    :class:`OutputExistsError` before anything is written, and again at the end if another
    process created it meanwhile. The folder is swept of dead processes' temporaries first
    (:func:`sweep`).

    ``suffix`` is appended to the temporary name (some writers choose a format by extension).

    Raises
    ------
    OutputPathError
        The folder cannot be created or written (a usage error).
    OSError
        The write failed (disk full, quota, I/O error): named after ``path``.
    """
    target = check_writable(path, force=force)
    make_folder(target.parent)
    sweep(target.parent)
    tmp = _new_temp(target, suffix or "".join(target.suffixes))  # held: removed even if interrupted now
    try:
        try:
            yield tmp
        except OSError as exc:
            raise _named(exc, target, tmp) from None
        with lifecycle.publishing():
            _publish(tmp, target, force=force)
            lifecycle.release(tmp)
        try:
            os.chmod(target, 0o666 & ~_umask())
        except OSError:
            pass
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        lifecycle.release(tmp)


def _publish(tmp: Path, target: Path, *, force: bool) -> None:
    """Move the finished ``tmp`` onto ``target`` (never over another process's file without ``force``)."""
    if force:
        os.replace(tmp, target)
        return
    # Another writer may have created the target meanwhile: link fails if it exists.
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise OutputExistsError(f"{target}: was created by another process meanwhile; use --force to overwrite") from None
    except OSError:
        if target.exists():
            raise OutputExistsError(f"{target}: exists already; use --force to overwrite") from None
        os.replace(tmp, target)
    else:
        tmp.unlink()


@contextlib.contextmanager
def temporary_folder(out: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary folder beside ``out`` (held, swept like a temporary file), removed on leaving
    unless it was renamed into place meanwhile."""
    out = Path(out)
    make_folder(out.parent)
    sweep(out.parent)
    with lifecycle.deferred():
        try:
            tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(), dir=out.parent))
        except OSError as exc:
            if exc.errno in PATH_ERRNOS:
                raise _path_error(out, exc) from None
            raise
        lifecycle.hold(tmp, folder=True)
    try:
        try:
            yield tmp
        except OSError as exc:
            raise _named(exc, out, tmp) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(tmp)
        lifecycle.release(tmp)


def _publish_folder(tmp: Path, out: Path, *, force: bool, replaceable: Callable[[Path], object] | None) -> None:
    """Rename the finished temporary folder onto ``out``: a missing or empty ``out`` is taken, a
    full one is replaced only with ``force`` (and when ``replaceable`` accepts it)."""
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"{out}: is a file, not a folder; choose a folder")
    if out.is_dir():
        if any(out.iterdir()):
            if not force:
                raise OutputExistsError(f"{out}: exists and is not empty; use --force to overwrite")
            if replaceable is not None:
                replaceable(out)
            trash = Path(tempfile.mkdtemp(prefix=temp_prefix(), dir=out.parent))
            os.rename(out, trash / "old")
            try:
                os.rename(tmp, out)
            except OSError:
                os.rename(trash / "old", out)
                raise
            shutil.rmtree(trash, ignore_errors=True)
            return
        os.rmdir(out)
    try:
        os.rename(tmp, out)
    except OSError:
        if out.exists():
            raise OutputExistsError(f"{out}: was created by another process meanwhile; use --force to overwrite") from None
        raise


@contextlib.contextmanager
def atomic_folder(out: str | os.PathLike[str], *, force: bool = False,
                  replaceable: Callable[[Path], object] | None = None) -> Iterator[Path]:
    """Yield a temporary folder beside ``out``; on success rename it onto ``out`` whole.

    The folder version of :func:`atomic_output` (a DICOM series): an error or a stop leaves no
    file of it anywhere. A missing or empty ``out`` is taken; an existing one with files raises
    :class:`OutputExistsError` unless ``force``, and then ``replaceable(out)`` may still refuse it
    (it raises for a folder that holds what the writer must not replace). The folder gets the
    permissions the umask gives a new folder.
    """
    out = Path(out)
    with temporary_folder(out) as tmp:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())
        with lifecycle.publishing():  # a forced stop never removes a folder being renamed into place
            _publish_folder(tmp, out, force=force, replaceable=replaceable)
            lifecycle.release(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes(path: str | os.PathLike[str], data: bytes, *, force: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_output`)."""
    with atomic_output(path, force=force) as tmp:
        tmp.write_bytes(data)
    return Path(path)

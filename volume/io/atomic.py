"""Atomic, never-clobbering writes: a temporary file in the target folder, then ``os.replace``.

Every writer in volume goes through :func:`atomic_output`, so an output appears whole or not at
all (Ctrl-C, a full disk, a crash), and an existing file is kept unless ``force`` is given.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ..errors import OutputExistsError
from . import TEMP_PREFIX

#: Prefix of temporary files, so an interrupted run's leftovers are recognisable (and ignorable).


def check_writable(path: str | os.PathLike[str], *, force: bool = False) -> Path:
    """Raise :class:`OutputExistsError` when ``path`` exists and ``force`` is false."""
    p = Path(path)
    if p.exists() and not force:
        raise OutputExistsError(f"{p}: exists already; use --force to overwrite")
    if p.is_dir():
        raise OutputExistsError(f"{p}: is a folder, not a file")
    return p


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str], *, force: bool = False, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success move it onto ``path`` atomically.

    On any exception (including KeyboardInterrupt) the temporary file is removed and nothing is
    left at ``path``. Without ``force`` an existing ``path`` raises :class:`OutputExistsError`
    before anything is written, and again at the end if another process created it meanwhile.

    ``suffix`` is appended to the temporary name (some writers choose a format by extension).
    """
    target = check_writable(path, force=force)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=suffix or "".join(target.suffixes), dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if not force:
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
        else:
            os.replace(tmp, target)
        try:
            os.chmod(target, 0o666 & ~_umask())
        except OSError:
            pass
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes(path: str | os.PathLike[str], data: bytes, *, force: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_output`)."""
    with atomic_output(path, force=force) as tmp:
        tmp.write_bytes(data)
    return Path(path)

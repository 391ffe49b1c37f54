"""How a volume process stops: every stop signal honoured the same way, and the temporary files it
holds removed whatever ends it.

SIGINT (Ctrl-C), SIGTERM (what SLURM, Kubernetes and systemd send before they kill a job) and
SIGHUP (the terminal closed) ask a job to stop. :func:`handle_stop_signals` (the command line
calls it) makes the first of them raise :class:`Interrupted` in the main thread, so the job unwinds
as after Ctrl-C: writers remove their temporary files, pools stop their workers, the command
prints one line and exits with ``128 + signal`` (130, 143, 129). Later stop signals are ignored.

A job can be stuck where an exception cannot reach it soon: a long C call, a thread that will not
join. So the first signal also starts a watchdog: :data:`STOP_DEADLINE_S` later, if the process
still runs, the watchdog removes the temporary files this process holds, prints the line and
ends the process with the same code. Either way the job ends within two seconds of the signal.

Temporary files and folders are *held* here (:func:`hold`) from their creation until they are
renamed into place or removed (:mod:`volume.io.atomic` does both), so the watchdog removes exactly
this process's own. A forked child (a pool worker) starts holding none, with no stop pending.

This module imports only the standard library: the command line installs it at start-up.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

STOP_SIGNALS: tuple[int, ...] = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)
"""Signals that ask a job to stop; a job ends with ``128 + signal`` after one of them."""

STOP_DEADLINE_S = 1.5
"""Seconds from the first stop signal to the end of the process, whatever it is doing then."""

FLUSH_TIMEOUT_S = 0.2
"""Seconds the watchdog waits for standard output to take what is buffered before it ends the process."""


def exit_code(signum: int) -> int:
    """The exit code after stop signal ``signum``: ``128 + signum``, as shells report it."""
    return 128 + int(signum)


def signal_name(signum: int) -> str:
    """``SIGTERM`` for 15; ``signal 99`` for a number without a name."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class Interrupted(KeyboardInterrupt):
    """A stop signal, raised in the main thread (a ``KeyboardInterrupt``, so every clean-up written
    for Ctrl-C runs for SIGTERM and SIGHUP too). ``signum`` says which; ``exit_code`` is 128 + it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal_name(signum))
        self.signum = int(signum)
        _note_stop(self.signum)

    @property
    def exit_code(self) -> int:
        """``128 + signum``."""
        return exit_code(self.signum)


# --- temporary files held by this process -----------------------------------------------------

_lock = threading.RLock()
_held: dict[str, bool] = {}  # path -> is a folder


def hold(path: str | os.PathLike[str], *, folder: bool = False) -> None:
    """Record a temporary file (or folder) of this process: a forced stop removes it."""
    with _lock:
        _held[os.fspath(path)] = folder


def release(path: str | os.PathLike[str]) -> None:
    """Forget a temporary file: it was renamed into place or removed."""
    with _lock:
        _held.pop(os.fspath(path), None)


def held() -> list[str]:
    """The temporary files and folders this process holds now."""
    with _lock:
        return list(_held)


@contextmanager
def publishing() -> Iterator[None]:
    """Rename a temporary file into place inside: a forced stop waits, so it never removes what
    is being published (and a published file is released inside, never removed after)."""
    with _lock:
        yield


def remove_held() -> list[str]:
    """Remove every temporary file and folder this process holds; return their paths."""
    with _lock:
        paths = list(_held.items())
        _held.clear()
    for path, folder in paths:
        try:
            if folder:
                shutil.rmtree(path, ignore_errors=True)
            else:
                os.unlink(path)
        except OSError:
            pass
    return [p for p, _ in paths]


# --- stop signals ------------------------------------------------------------------------------

_stop: dict[str, Any] = {"signum": None, "said": False, "say": None, "deadline": STOP_DEADLINE_S, "deferred": 0,
                         "pending": None}


def _note_stop(signum: int) -> None:
    if _stop["signum"] is None:
        _stop["signum"] = signum


def stop_signal() -> int | None:
    """The first stop signal this process received (None: none)."""
    return _stop["signum"]


def raise_if_stopping(exc: BaseException) -> None:
    """Raise :class:`Interrupted` from ``exc`` when a stop signal has come.

    A handler that isolates failures (one series, one file) calls it first: an error raised while
    a writer is torn down after a stop signal (a closed file written to) is the stop, which must end
    the job, not a failure of that item after which the job goes on.
    """
    signum = _stop["signum"]
    if signum is not None:
        raise Interrupted(signum) from exc


def handle_stop_signals(say: Callable[[int], None], *, deadline_s: float = STOP_DEADLINE_S) -> Callable[[], None]:
    """Honour SIGINT, SIGTERM and SIGHUP the same way (see the module docstring).

    ``say(signum)`` prints the one line about the stop; it is called once, by :func:`report_stop`
    or by the watchdog. A signal that is ignored now stays ignored (``nohup``, a background job
    of a non-interactive shell). Only the main thread can install handlers; elsewhere nothing
    is done.

    Returns
    -------
    callable
        Restores the previous handlers (and forgets the stop), for a caller that goes on running.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    _stop.update(signum=None, said=False, say=say, deadline=deadline_s, deferred=0, pending=None)
    previous: dict[int, Any] = {}
    for signum in STOP_SIGNALS:
        current = signal.getsignal(signum)
        if current == signal.SIG_IGN:
            continue
        previous[signum] = current
        signal.signal(signum, _on_stop_signal)

    def restore() -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        _stop.update(deferred=0, pending=None)  # a stop that came still ends the process (its deadline)

    return restore


def _on_stop_signal(signum: int, _frame: Any) -> None:
    if _stop["signum"] is not None:  # the first one is being honoured; the deadline ends the process
        return
    _stop["signum"] = signum
    say = _stop["say"]
    start_deadline(exit_code(signum), _stop["deadline"], say=(lambda: say(signum)) if say else None)
    if _stop["deferred"]:
        _stop["pending"] = signum
        return
    raise Interrupted(signum)


def _on_stop_signal_when_done(signum: int, _frame: Any) -> None:
    if _stop["signum"] is None:
        _stop["signum"] = signum
        start_deadline(exit_code(signum), _stop["deadline"])


def guard_exit(*, deadline_s: float = STOP_DEADLINE_S) -> None:
    """After the work: a stop signal no longer interrupts anything (the process is ending with its
    own exit code), but the process still ends within ``deadline_s`` of it, should its end hang
    (a thread that will not join). Signals ignored now stay ignored. Once the interpreter has
    joined its threads and run the other ``atexit`` handlers, stop signals are ignored for the few
    milliseconds left (Python would restore their default, which kills the process with the
    signal after its work is done)."""
    if threading.current_thread() is not threading.main_thread():
        return
    _stop.update(signum=None, deadline=deadline_s, exiting=True)
    for signum in STOP_SIGNALS:
        if signal.getsignal(signum) != signal.SIG_IGN:
            signal.signal(signum, _on_stop_signal_when_done)


def _at_exit() -> None:
    """Registered when this module is imported (at start-up), so it runs after every other
    ``atexit`` handler: see :func:`guard_exit`."""
    if _stop.get("exiting") and threading.current_thread() is threading.main_thread():
        for signum in STOP_SIGNALS:
            signal.signal(signum, signal.SIG_IGN)


atexit.register(_at_exit)


@contextmanager
def deferred() -> Iterator[None]:
    """Hold back a stop signal for the few statements inside (a file listed and remembered
    together, never one of the two); it is raised as :class:`Interrupted` right after them."""
    _stop["deferred"] += 1
    try:
        yield
    finally:
        _stop["deferred"] -= 1
    pending = _stop["pending"]
    if pending is not None and not _stop["deferred"]:
        _stop["pending"] = None
        raise Interrupted(pending)


def report_stop(say: Callable[[], None]) -> None:
    """Call ``say`` unless the line about the stop was printed already (by the watchdog)."""
    with _lock:
        if _stop["said"]:
            return
        _stop["said"] = True
    say()


def start_deadline(code: int, seconds: float, *, say: Callable[[], None] | None = None) -> threading.Thread:
    """End the process ``seconds`` from now unless it ends before: remove what it holds
    (:func:`remove_held`), call ``say`` (once, see :func:`report_stop`), flush standard output,
    exit with ``code``."""
    watchdog = threading.Thread(target=_deadline, args=(code, seconds, say), name="volume-stop-deadline", daemon=True)
    watchdog.start()
    return watchdog


def _deadline(code: int, seconds: float, say: Callable[[], None] | None) -> None:
    time.sleep(seconds)
    remove_held()
    if say is not None:
        try:
            report_stop(say)
        except Exception:  # noqa: BLE001 - the line is a courtesy; ending is what matters
            pass
    flusher = threading.Thread(target=_flush_streams, daemon=True)  # a full pipe must not stop the exit
    flusher.start()
    flusher.join(FLUSH_TIMEOUT_S)
    os._exit(code)


def _flush_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - a closed or broken stream: nothing more to say
            pass


def _after_fork_in_child() -> None:
    """A forked child (a pool worker) holds no temporary file of its parent and has no stop pending."""
    global _lock
    _lock = threading.RLock()
    _held.clear()
    _stop.update(signum=None, said=False, say=None, deferred=0, pending=None, exiting=False)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


__all__ = [
    "STOP_DEADLINE_S",
    "STOP_SIGNALS",
    "Interrupted",
    "deferred",
    "exit_code",
    "guard_exit",
    "handle_stop_signals",
    "hold",
    "publishing",
    "release",
    "remove_held",
    "report_stop",
    "signal_name",
    "start_deadline",
    "stop_signal",
]

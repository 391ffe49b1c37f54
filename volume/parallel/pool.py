"""Process pools for batches over many items: ordered and unordered, bounded, crash-proof.

Work is cut into chunks of a few files; at most a few chunks per worker are in flight, so a tree
of 100,000 files never holds more than a handful of results in memory. Results come back in
input order. Each file's failure is caught in the worker and returned as data: one bad file
never stops the batch.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from .. import lifecycle

T = TypeVar("T")
R = TypeVar("R")

IN_FLIGHT_PER_WORKER = 4
"""Chunks queued per worker process: enough to keep workers busy, few enough to bound memory."""


def default_workers() -> int:
    """All cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def in_daemon_process() -> bool:
    """Whether this process is a daemonic multiprocessing worker (someone's ``Pool`` calling our
    API): such a process may not start children, so batches run in it, one item at a time.
    (Such a worker has imported :mod:`multiprocessing`; when nothing has, it is not one, and the
    import is saved.)"""
    mp = sys.modules.get("multiprocessing")
    return bool(mp is not None and mp.current_process().daemon)


def _run_chunk(fn: Callable[[T], R], chunk: list[T]) -> list[R]:
    """Run a chunk in an :func:`ordered_map` worker; a SIGTERM during it (the parent stopping the
    pool) unwinds the running item first (``atomic_output`` removes its temporary file), then ends
    the worker."""
    global _task_running
    _task_running = True
    try:
        results = [fn(item) for item in chunk]
        _task_running = False
        return results
    except SystemExit:  # stopped by the parent: nobody waits for a result
        lifecycle.remove_held()
        os._exit(128 + 15)


def _pool_context() -> Any:
    """``fork`` while this process runs a single thread (instant start, nothing re-imported);
    ``forkserver`` when other threads run (a progress bar's), since forking them is unsafe."""
    import multiprocessing as mp

    methods = mp.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        return mp.get_context("fork")
    if "forkserver" in methods:
        return mp.get_context("forkserver")
    return mp.get_context("spawn")  # pragma: no cover - Windows, macOS defaults


def ordered_map(
    fn: Callable[[T], R],
    items: Iterable[T],
    *,
    workers: int | None = None,
    chunk: int = 4,
    on_crash: Callable[[T], R] | None = None,
) -> Iterator[R]:
    """``map(fn, items)`` over a process pool, results in input order, memory bounded.

    ``fn`` must be picklable (a module-level function or a ``functools.partial`` of one) and
    should catch its own errors. ``workers=1`` runs in this process (no pool).

    A worker that dies (a decoder's segfault, the out-of-memory killer) breaks the pool. With
    ``on_crash`` the pool is restarted, the items of the lost chunk are retried one at a time,
    and the item that kills a worker again gets ``on_crash(item)`` as its result; the batch
    goes on. Without it the error propagates.
    """
    n = 1 if in_daemon_process() else default_workers() if workers is None else max(1, workers)
    if n == 1:
        for item in items:
            yield fn(item)
        return
    from concurrent.futures.process import BrokenProcessPool

    def new_pool() -> WorkerPool:
        return WorkerPool(n)

    pool = new_pool()
    queue: deque[tuple[Any, list[T]]] = deque()
    it = iter(items)

    def submit_next() -> bool:
        batch = []
        for item in it:
            batch.append(item)
            if len(batch) >= chunk:
                break
        if not batch:
            return False
        queue.append((pool.submit(_run_chunk, fn, batch), batch))
        return True

    try:
        while len(queue) < n * IN_FLIGHT_PER_WORKER and submit_next():
            pass
        while queue:
            fut, batch = queue.popleft()
            try:
                results = fut.result()
            except BrokenProcessPool:
                if on_crash is None:
                    raise
                waiting = [b for _, b in queue]
                queue.clear()
                pool.stop(terminate=False)
                pool = new_pool()
                results = []
                for item in batch:  # one at a time: find the item that kills its worker
                    try:
                        results.extend(pool.submit(_run_chunk, fn, [item]).result())
                    except BrokenProcessPool:
                        results.append(on_crash(item))
                        pool.stop(terminate=False)
                        pool = new_pool()
                queue.extend((pool.submit(_run_chunk, fn, b), b) for b in waiting)
            submit_next()
            yield from results
    finally:
        # Early exit (Ctrl-C in the parent, the consumer closing the generator): stop running
        # tasks; they unwind and remove their temporary files. Otherwise all work is done.
        pool.stop(terminate=bool(queue))


_task_running = False
"""In an :func:`unordered_map` worker: whether a task runs now (SIGTERM then unwinds it)."""


_stopping = False
"""In an :func:`unordered_map` worker: a SIGTERM came already (a second one, say from the pool's
own clean-up, must not cut short the unwinding of the first)."""


WORKER_STOP_DEADLINE_S = 0.8
"""Seconds a stopped worker has to unwind its task; then it removes its temporary files and ends."""

PARENT_CHECK_INTERVAL_S = 0.2
"""How often a worker checks that its parent still runs (where the parent-death signal is missing)."""

PR_SET_PDEATHSIG = 1
"""Linux ``prctl`` option: the signal a process gets when its parent dies."""


def _stop_quietly(signum: int, frame: Any) -> None:
    """SIGTERM in a pool worker (the parent stopping the pool, or the parent gone): unwind the
    running task (``atomic_output`` removes its temporary file), or leave at once when idle,
    without a word on stderr. A task that does not unwind within
    :data:`WORKER_STOP_DEADLINE_S` is cut short: its temporary files are removed and the worker
    ends. Later SIGTERMs are ignored."""
    global _stopping
    if _stopping:
        return
    _stopping = True
    if _task_running:
        lifecycle.start_deadline(128 + signum, WORKER_STOP_DEADLINE_S)
        raise SystemExit(128 + signum)
    lifecycle.remove_held()
    os._exit(128 + signum)


def die_with_parent(signum: int = signal.SIGTERM) -> None:
    """Make this process get ``signum`` when its parent process dies.

    Linux delivers it (``prctl(PR_SET_PDEATHSIG)``) the moment the parent is gone, even after
    ``kill -9``; elsewhere, and in case the parent died before the call, a thread checks every
    :data:`PARENT_CHECK_INTERVAL_S` whether the parent changed (an orphan is adopted by another
    process) and sends the signal itself.
    """
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - no prctl: the thread below does it
            pass
    if os.getppid() != parent:  # died between the two calls
        os.kill(os.getpid(), signum)
        return

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_INTERVAL_S)
        os.kill(os.getpid(), signum)

    threading.Thread(target=watch, name="volume-parent-check", daemon=True).start()


def _guarded_call(fn: Callable[[T], R], item: T) -> R:
    """Run one task in a worker; a SIGTERM during it ends the worker once the task has unwound."""
    global _task_running
    _task_running = True
    try:
        result = fn(item)
        _task_running = False
        return result
    except SystemExit:  # stopped by the parent: nobody waits for a result, nothing to report
        lifecycle.remove_held()
        os._exit(128 + 15)


_INHERITED: tuple[Any, ...] = ()
"""In a forked :func:`unordered_map` worker: the map's items, inherited from the parent's memory
(the parent sends an item's index, not the pickled item)."""


def _inherited_call(fn: Callable[[T], R], index: int) -> R:
    """:func:`_guarded_call` of the item a forked worker inherited at ``index``."""
    return _guarded_call(fn, _INHERITED[index])


def _quiet_worker_init(inherited: tuple[Any, ...] = ()) -> None:
    """Worker set-up: ``inherited`` kept as :data:`_INHERITED` (a forked worker's copy of the
    items, passed without pickling); SIGINT and SIGHUP ignored (Ctrl-C in a terminal, or its
    closing, reaches the whole process group; the parent decides and stops the workers), SIGTERM
    handled by :func:`_stop_quietly`, and SIGTERM sent when the parent dies
    (:func:`die_with_parent`): a worker never outlives its job, keeps writing after it, or holds
    the caller's pipes open."""
    global _INHERITED
    _INHERITED = inherited
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _stop_quietly)
    die_with_parent(signal.SIGTERM)


STOP_TIMEOUT_S = 1.0
"""Seconds stopped workers get to unwind (remove their temporary files) before they are killed
(each stops itself within :data:`WORKER_STOP_DEADLINE_S`: this is the margin)."""


class WorkerPool:
    """A process pool of quiet workers (:func:`_quiet_worker_init`) that can be stopped at once.

    concurrent.futures' executor, and the worker processes it started, known through
    :func:`multiprocessing.active_children` (the children started since the pool was made): its
    public interface has no other way to reach them, and a stop must signal them.
    """

    def __init__(self, size: int, items: tuple[Any, ...] = ()) -> None:
        """``items``: what :meth:`submit_item` will send; forked workers get them with their memory
        (``initargs`` are not pickled for a forked process), so only indexes are sent to them."""
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        self._before = set(mp.active_children())
        context = _pool_context()
        self.forked = bool(items) and context.get_start_method() == "fork"
        self.executor = ProcessPoolExecutor(max_workers=size, mp_context=context, initializer=_quiet_worker_init,
                                            initargs=(items,) if self.forked else ())

    def submit(self, fn: Callable[..., R], *args: Any) -> Any:
        """``executor.submit``: a future of ``fn(*args)`` in a worker."""
        return self.executor.submit(fn, *args)

    def submit_item(self, fn: Callable[[T], R], index: int, item: T) -> Any:
        """A future of ``fn(item)`` (:func:`_guarded_call`), ``item`` being the pool's ``items[index]``:
        a forked worker is sent the index of its inherited copy, another the pickled item."""
        if self.forked:
            return self.executor.submit(_inherited_call, fn, index)
        return self.executor.submit(_guarded_call, fn, item)

    def _workers(self) -> list[Any]:
        import multiprocessing as mp

        return [p for p in mp.active_children() if p not in self._before]

    def stop(self, *, terminate: bool) -> None:
        """Shut the pool down and wait for its processes and its manager thread (so the next pool
        can still fork); with ``terminate``, stop running tasks first (SIGTERM, then wait, then kill
        a worker stuck in C code). Its futures are left to the pool: one cancelled from outside
        while the pool breaks would make the pool's own thread fail (CPython 3.11)."""
        if terminate:
            procs = self._workers()
            for proc in procs:
                if proc.is_alive():
                    proc.terminate()
            for proc in procs:
                proc.join(STOP_TIMEOUT_S)
                if proc.is_alive():  # pragma: no cover - a worker stuck in C code ignoring SIGTERM
                    proc.kill()
                    proc.join()
        self.executor.shutdown(wait=True, cancel_futures=True)


def unordered_map(
    fn: Callable[[T], R],
    items: Iterable[T],
    *,
    workers: int | None = None,
    in_flight: int | None = None,
    on_crash: Callable[[T], R] | None = None,
    on_broken: Callable[[], None] | None = None,
    retry_fn: Callable[[T], R] | None = None,
) -> Iterator[tuple[int, R]]:
    """``(index, fn(item))`` pairs over a process pool, as they complete (not in input order).

    For few, large tasks (one series each): one item per task, at most ``in_flight`` (default
    twice the workers) submitted at a time. ``fn`` must be picklable and catch its own errors.
    ``workers=1`` runs in this process.

    A worker that dies (segfault, the out-of-memory killer) breaks the pool: every unfinished
    item is rerun alone in a fresh one-worker pool, the one that kills its worker again gets
    ``on_crash(item)`` as its result, and the batch goes on with a new pool. ``on_broken`` is
    called each time a broken pool has stopped and before new work starts (no worker of ours
    runs then: the moment to remove what a killed worker left). ``retry_fn`` (default ``fn``)
    runs the reruns: a lost item may have finished its work before its result was lost. Without
    ``on_crash`` the ``BrokenProcessPool`` error propagates.

    Stopping early (an exception such as ``KeyboardInterrupt`` while waiting, or closing the
    generator) cancels queued items and stops running workers with SIGTERM, so their
    ``atomic_output`` temporary files are removed before this returns. Workers ignore SIGINT.
    """
    n = 1 if in_daemon_process() else default_workers() if workers is None else max(1, workers)
    if n == 1:
        for i, item in enumerate(items):
            yield i, fn(item)
        return
    from concurrent.futures import FIRST_COMPLETED, Future, wait
    from concurrent.futures.process import BrokenProcessPool

    listed = tuple(items)
    limit = max(1, in_flight or 2 * n)
    it = enumerate(listed)
    pending: dict[Future[R], tuple[int, T]] = {}
    pool = WorkerPool(n, listed)
    clean = False
    try:
        while True:
            while len(pending) < limit:
                nxt = next(it, None)
                if nxt is None:
                    break
                pending[pool.submit_item(fn, *nxt)] = nxt
            if not pending:
                break
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            lost: list[tuple[int, T]] = []
            for fut in done:
                i, item = pending.pop(fut)
                try:
                    result = fut.result()
                except BrokenProcessPool:
                    lost.append((i, item))
                    continue
                yield i, result
            if not lost:
                continue
            if on_crash is None:
                raise BrokenProcessPool("a worker process died")
            lost.extend(pending.values())  # every unfinished item: we cannot tell which one killed it
            pending.clear()
            pool.stop(terminate=False)
            if on_broken is not None:
                on_broken()
            yield from _rerun_alone(lost, retry_fn or fn, on_crash, on_broken, listed)
            pool = WorkerPool(n, listed)
        clean = True
    finally:
        _stop_after(pool, clean)


def _rerun_alone(lost: list[tuple[int, T]], fn: Callable[[T], R], on_crash: Callable[[T], R],
                 on_broken: Callable[[], None] | None, items: tuple[T, ...]) -> Iterator[tuple[int, R]]:
    """The items of a broken pool, each alone in a one-worker pool, in input order: the one that
    kills its worker again gets ``on_crash(item)`` (see :func:`unordered_map`; ``items``, all of the
    map's, for :class:`WorkerPool`)."""
    from concurrent.futures.process import BrokenProcessPool

    pool = WorkerPool(1, items)
    finished = False
    try:
        for i, item in sorted(lost, key=lambda pair: pair[0]):
            fut = pool.submit_item(fn, i, item)
            try:
                result = fut.result()
            except BrokenProcessPool:
                result = on_crash(item)
                pool.stop(terminate=False)
                if on_broken is not None:
                    on_broken()
                pool = WorkerPool(1, items)
            yield i, result
        finished = True
    finally:
        pool.stop(terminate=not finished)  # stopped early (Ctrl-C, the consumer closing us): stop its worker


def _stop_after(pool: WorkerPool, clean: bool) -> None:
    """The end of :func:`unordered_map`: the pool shut down, or after an early stop its workers
    stopped (its queued items then fail with the pool, never run), a second Ctrl-C meanwhile ignored."""
    if clean:
        pool.stop(terminate=False)
        return
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
    try:
        pool.stop(terminate=True)
    finally:
        if main:
            signal.signal(signal.SIGINT, previous)

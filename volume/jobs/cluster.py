"""``volume convert --scheduler``: the same per-stack tasks on a dask.distributed cluster
(:mod:`volume.parallel.dask` connects to it).

Each stack is one task running :func:`volume.jobs.convert.convert_stack` on a worker, which reads
the DICOM files by absolute path and writes to the absolute output folder: both must be visible
under the same paths on every worker (a shared filesystem). Writes are atomic on the worker as
everywhere else.

Ctrl-C (or SIGTERM, SIGHUP) sets a cluster-wide stop event: tasks not started return at once,
running ones stop at their next decoded image (their temporary file, if any, is removed) or finish
the file they are writing; the client waits a short grace period for them (the command ends within
two seconds of the signal), cancels what is left, and returns.

A client that disappears without a word (``kill -9``, a preempted node) cannot set the event. The
scheduler then releases its tasks (distributed's own clean-up of a lost client), and a worker marks
a running task of it *cancelled*: each running task checks that too, and stops the same way.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any

from ..parallel.dask import close, connect, import_distributed, n_workers
from .convert import (
    CONVERTED,
    EXISTING,
    ConvertOptions,
    ConvertResult,
    ConvertTask,
    convert_stack,
    crashed_result,
    failed_result,
    remove_leftovers,
    temp_files,
)

__all__ = ["close", "connect", "iter_results", "n_workers", "remote_convert"]
"""What a command needs to convert on a cluster: reach it, run the stacks, let it go."""

STOP_GRACE_S = 0.8
"""Seconds after Ctrl-C for running tasks to stop or finish the file they are writing (the command
ends within :data:`volume.lifecycle.STOP_DEADLINE_S` of the signal)."""

STOP_CHECK_INTERVAL_S = 0.5
"""A running task asks the scheduler whether to stop at most this often (between images)."""

UNWANTED_STATES = frozenset({"cancelled", "released", "forgotten"})
"""States a worker gives a running task once the scheduler has released it (its client went away,
or cancelled it): the task stops."""


class _Stopped(BaseException):
    """Raised inside a worker's task when the client asked to stop (unwinds ``atomic_output``)."""




def remote_convert(task: ConvertTask, out_dir: str, options: ConvertOptions, stop: str,
                   done: str = "") -> ConvertResult | None:
    """The task a worker runs: :func:`convert_stack`, or ``None`` when told to stop first.

    ``stop`` names a :class:`distributed.Event`; it is checked before starting and between
    decoded images (at most every :data:`STOP_CHECK_INTERVAL_S`). ``done`` names an event set
    once this task has written its files: dask recomputes a task whose result died with its
    worker before the client fetched it, and the rerun must report those files as written, not
    as existing outputs to skip.
    """
    from distributed import Event, get_client, get_worker

    client = get_client()
    event = Event(stop, client=client)
    if event.is_set():
        return None
    written = Event(done, client=client) if done else None
    if written is not None and written.is_set() and not options.force:
        again = convert_stack(task.stack, out_dir, replace(options, skip_existing=True), name=task.name)
        if again.status == EXISTING:
            return replace(again, status=CONVERTED, files=again.existing, existing=(), message="")
        return again
    first = task.stack.frames[0].path if task.stack.frames else ""
    if first and not os.path.exists(first):
        return failed_result(task, f"worker {get_worker().address} cannot see the input files of this series; "
                                   "workers need the same paths as the client (a shared filesystem)")
    last = [time.monotonic()]
    still_wanted = _wanted_check(get_worker())

    def check(_n: int = 1) -> None:
        now = time.monotonic()
        if now - last[0] >= STOP_CHECK_INTERVAL_S:
            last[0] = now
            if not still_wanted() or event.is_set():
                raise _Stopped
    try:
        result = convert_stack(task.stack, out_dir, options, name=task.name, progress=check)
    except _Stopped:
        return None
    if written is not None and result.status == CONVERTED:
        written.set()
    return result


def _wanted_check(worker: Any) -> Callable[[], bool]:
    """Whether the task running in this thread is still wanted: its worker has not marked it
    cancelled (the scheduler releases the tasks of a client that went away)."""
    try:
        key = worker.get_current_task()
        tasks = worker.state.tasks
    except Exception:  # noqa: BLE001 - another distributed: the stop event alone decides
        return lambda: True

    def wanted() -> bool:
        task = tasks.get(key)
        return task is not None and task.state not in UNWANTED_STATES

    return wanted


def _relocate(result: ConvertResult, absolute: str, given: str) -> ConvertResult:
    """Paths of ``result`` under the output folder as the user gave it (not the absolute one)."""
    if absolute == given:
        return result

    def move(paths: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(os.path.join(given, os.path.relpath(p, absolute)) for p in paths)

    return replace(result, files=move(result.files), existing=move(result.existing))


class _ClusterRun:
    """One batch on the cluster: its futures, which of them still owe a result, and the tasks dask
    gave up on after their workers died."""

    def __init__(self, distributed: Any, client: Any, tasks: Sequence[ConvertTask], out_dir: str,
                 options: ConvertOptions, progress: Callable[[int], None] | None) -> None:
        self.distributed, self.client, self.tasks, self.options, self.progress = (
            distributed, client, tasks, options, progress)
        self.given, self.absolute = out_dir, os.path.abspath(out_dir)
        self.batch = uuid.uuid4().hex[:12]
        self.stop_name = f"volume-stop-{self.batch}"
        self.futures: dict[Any, int] = {}
        self.remaining: set[Any] = set()  # submitted, result not fetched yet
        self.killed: list[int] = []  # tasks dask gave up on after their workers died (the culprit, or bystanders)
        self.alone = False  # rerunning the killed tasks one at a time

    def submit(self, i: int, suffix: str = "") -> Any:
        """Send task ``i`` to the cluster."""
        fut = self.client.submit(remote_convert, self.tasks[i], self.absolute, self.options, self.stop_name,
                                 f"volume-done-{self.batch}-{i}", key=f"volume-convert-{self.batch}-{i}{suffix}",
                                 pure=False)
        self.futures[fut] = i
        self.remaining.add(fut)
        return fut

    def advance(self, i: int) -> None:
        if self.progress is not None:
            self.progress(len(self.tasks[i].stack.frames))

    def outcome(self, fut: Any) -> ConvertResult | None:
        """The result of a finished future (None: stopped or cancelled); ``remaining`` loses it
        only once its result is here (Ctrl-C during the fetch must not lose it)."""
        i = self.futures[fut]
        if fut.status == "error":
            return self._error(fut, i)
        if fut.status != "finished":
            self.remaining.discard(fut)
            return None
        result = fut.result()
        self.remaining.discard(fut)
        if result is None:
            return None
        self.advance(i)
        return _relocate(result, self.absolute, self.given)

    def _error(self, fut: Any, i: int) -> ConvertResult | None:
        """The result of a task that raised: a killed worker's (None until it is rerun alone) or the
        cluster's error."""
        exc = fut.exception()
        self.remaining.discard(fut)
        if type(exc).__name__ == "KilledWorker":
            if self.alone:
                self.advance(i)
                return crashed_result(self.tasks[i])
            self.killed.append(i)
            return None
        first = str(exc).splitlines()[0][:300] if str(exc) else ""
        self.advance(i)
        return failed_result(self.tasks[i], f"the cluster failed this task: {type(exc).__name__}: {first}")

    def collect(self, futures: list[Any]) -> Iterator[ConvertResult]:
        """The results of ``futures`` as they complete."""
        for fut in self.distributed.as_completed(futures, loop=self.client.loop):
            result = self.outcome(fut)
            fut.release()  # the cluster may forget it now (no recompute if its worker dies later)
            if result is not None:
                yield result

    def rerun_killed(self) -> Iterator[ConvertResult]:
        """The one killed task is the culprit; several: a task queued on a dying worker counts as
        killed too, so each is rerun alone."""
        if len(self.killed) == 1:
            self.advance(self.killed[0])
            yield crashed_result(self.tasks[self.killed[0]])
        elif self.killed:
            self.alone = True
            for i in self.killed:
                yield from self.collect([self.submit(i, "-alone")])


def iter_results(
    tasks: Sequence[ConvertTask],
    out_dir: str | os.PathLike[str],
    options: ConvertOptions,
    client: Any,
    *,
    progress: Callable[[int], None] | None = None,
) -> Iterator[ConvertResult]:
    """Run the tasks on the cluster of ``client`` (:func:`connect`); yield results as they complete.

    A worker killed on a stack (segfault, out of memory: dask retries it on another worker a few
    times first) makes that stack one failed result. Ctrl-C while waiting: the stop event is
    set, the results of tasks that still finish within :data:`STOP_GRACE_S` are yielded, the
    rest are cancelled, and ``KeyboardInterrupt`` propagates.
    """
    distributed = import_distributed()
    run = _ClusterRun(distributed, client, tasks, os.fspath(out_dir), options, progress)
    before = temp_files(run.absolute)
    try:
        stop = distributed.Event(run.stop_name, client=client)
        first = [run.submit(i) for i in range(len(tasks))]
        try:
            yield from run.collect(first)
            yield from run.rerun_killed()
        except KeyboardInterrupt:
            yield from _stop(distributed, client, stop, run.remaining, run.outcome)
            if run.killed and not run.remaining:
                remove_leftovers(run.absolute, before)
            raise
        if run.killed:  # no task of ours runs now: new temporary files are what the killed workers left
            remove_leftovers(run.absolute, before)
    finally:
        if run.remaining:
            try:
                client.cancel(list(run.remaining))
            except Exception:  # noqa: BLE001 - the scheduler went away: nothing left to cancel
                pass


def _stop(distributed: Any, client: Any, stop: Any, remaining: set[Any],
          outcome: Callable[[Any], ConvertResult | None]) -> Iterator[ConvertResult]:
    """After Ctrl-C: tell running tasks to stop, yield what still finished, cancel the rest."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut this short
    try:
        stop.set()
        waiting = list(remaining)
        if waiting:
            try:
                for _ in distributed.as_completed(waiting, timeout=STOP_GRACE_S, loop=client.loop):
                    pass
            except TimeoutError:  # a long write: it completes on the worker, whole or not at all
                pass
        finished = [f for f in waiting if f.done()]
        client.cancel([f for f in waiting if not f.done()])
    except Exception:  # noqa: BLE001 - the scheduler went away meanwhile: nothing more to collect
        finished = []
    finally:
        signal.signal(signal.SIGINT, previous)
    for fut in finished:
        result = outcome(fut)
        if result is not None:
            yield result

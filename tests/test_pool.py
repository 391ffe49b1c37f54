"""The process pool's items: a forked pool's workers inherit them (only an index is sent), a pool
started another way gets them pickled; both give every item's result once."""

from __future__ import annotations

import subprocess
import sys
import textwrap

#: Runs in a fresh interpreter (one thread, so the pool forks): items no pickle can carry (instances
#: of a class defined in a function) reach the workers, and each result comes back once.
FORKED = textwrap.dedent(
    """
    import operator, os, pickle, threading
    from volume.parallel.pool import unordered_map

    def main():
        class Local:  # defined in a function: pickle cannot carry its instances
            def __init__(self, value):
                self.value = value
        items = [Local(i * 10) for i in range(7)]
        try:
            pickle.dumps(items[0])
        except (AttributeError, pickle.PicklingError):
            pass
        else:
            raise SystemExit("the items were picklable: the test proves nothing")
        assert threading.active_count() == 1
        parent = os.getpid()
        got = list(unordered_map(operator.attrgetter("value"), items, workers=2))
        assert sorted(got) == [(i, i * 10) for i in range(7)], got
        pids = list(unordered_map(lambda_free_pid, [None] * 4, workers=2))
        assert all(pid != parent for _, pid in pids), (parent, pids)
        print("ok")

    def lambda_free_pid(_):
        return os.getpid()

    main()
    """
)

#: The same map while another thread runs: the pool starts from a fork server, the items are
#: pickled, and each result comes back once.
NOT_FORKED = textwrap.dedent(
    """
    import operator, threading
    from volume.parallel import pool

    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        assert pool._pool_context().get_start_method() != "fork"
        got = list(pool.unordered_map(operator.neg, list(range(6)), workers=2))
        assert sorted(got) == [(i, -i) for i in range(6)], got
    finally:
        stop.set()
        thread.join()
    print("ok")
    """
)


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_forked_workers_inherit_the_items_unpickled() -> None:
    done = _run(FORKED)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_workers_started_otherwise_get_the_items_pickled() -> None:
    done = _run(NOT_FORKED)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"

"""How conversions spend less CPU: a forked pool's workers inherit their items (only an index is
sent; a pool started another way gets them pickled), and freed slabs' memory is used again
without new page faults."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

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


#: Allocates, fills and frees a 48 MiB block four times (bigger than glibc's largest automatic
#: mmap threshold, 32 MiB, smaller than REUSED_BLOCK_BYTES) and prints the page faults of each.
FAULTS = textwrap.dedent(
    """
    import resource, sys
    import numpy as np
    from volume.io.nifti_stream import REUSED_BLOCK_BYTES, reuse_freed_memory
    size = 48 * 2**20
    assert size < REUSED_BLOCK_BYTES
    if sys.argv[1] == "reuse" and not reuse_freed_memory():
        print("not glibc")
        raise SystemExit
    def faults():
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        block = np.empty(size, dtype=np.uint8)
        block.fill(1)
        del block
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    print(*[faults() for _ in range(4)])
    """
)


def test_freed_slabs_are_reused_without_new_page_faults() -> None:
    """After ``reuse_freed_memory`` (the slab writer calls it), a freed block's pages serve the next
    block: no page fault after the first; without it, every block is mapped and faulted again."""
    runs = {}
    for mode in ("default", "reuse"):
        done = subprocess.run([sys.executable, "-c", FAULTS, mode], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        runs[mode] = done.stdout.split()
    if runs["reuse"] == ["not", "glibc"]:
        pytest.skip("glibc's mallopt is not there")
    reuse = [int(n) for n in runs["reuse"]]
    default = [int(n) for n in runs["default"]]
    assert reuse[1:] == [0, 0, 0], reuse
    assert min(default[1:]) > 0, default

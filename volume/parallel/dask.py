"""A dask.distributed cluster: reaching its scheduler (fast, one-line errors) and letting go of it.

dask is an optional extra (``pip install "volume[dask]"``), imported only when a scheduler is
given. What runs on the cluster is the job's business (:mod:`volume.jobs.cluster` converts stacks).
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
from typing import Any
from urllib.parse import urlsplit

from ..errors import UsageError

CONNECT_TIMEOUT_S = 5.0
"""Seconds to reach the scheduler before giving up (a clear error, never a hang)."""

INSTALL_HINT = 'pip install "volume[dask]"'
"""How to get dask.distributed."""

_ADDRESS = re.compile(r"^(?:(tcp|tls|ws|wss|inproc|ucx)://)?\[?[A-Za-z0-9.\-_:]+\]?:\d{1,5}$")
"""A scheduler address: ``[protocol://]host:port`` (IPv6 hosts in brackets)."""


def import_distributed() -> Any:
    """The ``distributed`` package, or a usage error saying how to install it."""
    try:
        import distributed
    except ImportError:
        raise UsageError(f"--scheduler needs dask.distributed, which is not installed: {INSTALL_HINT}") from None
    return distributed


def _probe(address: str, timeout: float) -> None:
    """Fail fast when nothing listens at a ``tcp://`` address (dask itself retries until its timeout)."""
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    if parts.scheme != "tcp" or parts.hostname is None or parts.port is None:
        return
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=timeout):
            pass
    except OSError as exc:
        reason = "no answer" if isinstance(exc, TimeoutError) else (exc.strerror or type(exc).__name__)
        raise UsageError(f"cannot reach the dask scheduler at {address}: {reason.lower()}; "
                         "is it running (`dask scheduler`) and reachable from here?") from None


def _identify(address: str, timeout: float) -> Any:
    """What answers at ``address``: its ``identity`` reply, within ``timeout`` seconds in all.

    ``distributed.comm.connect`` bounds the connection and its handshake; the question and the answer
    are bounded here too. (A ``distributed.Client`` waits for the handshake of a peer that accepted the
    connection but never speaks, an HTTP port for instance, until that peer hangs up.)
    """
    from distributed.comm import connect as open_comm

    async def ask() -> Any:
        comm = await asyncio.wait_for(open_comm(address, timeout=timeout), timeout)
        try:
            await asyncio.wait_for(comm.write({"op": "identity", "reply": True}), timeout)
            return await asyncio.wait_for(comm.read(), timeout)
        finally:
            comm.abort()

    return asyncio.run(ask())


def _unreachable(address: str, timeout: float, exc: BaseException) -> UsageError:
    """The one-line error of a scheduler that did not answer in time."""
    reason = " ".join(str(exc).split())[:200] or type(exc).__name__
    return UsageError(
        f"cannot reach the dask scheduler at {address} within {timeout:g} s ({reason}); "
        "is it running (`dask scheduler`) and reachable from here?"
    )


def _check_scheduler(address: str, timeout: float) -> None:
    """Refuse, with one line, an address where no dask scheduler answers within ``timeout``."""
    try:
        identity = _identify(address, timeout)
    except (OSError, TimeoutError) as exc:  # refused, reset, silent (CommClosedError is an OSError)
        raise _unreachable(address, timeout, exc) from None
    except Exception:  # noqa: BLE001 - garbage read as a message (e.g. a huge length): not dask
        raise UsageError(f"cannot use {address}: what answered there is not a dask scheduler") from None
    kind = identity.get("type") if isinstance(identity, dict) else None
    if kind != "Scheduler":
        what = f"a dask {kind}" if isinstance(kind, str) and kind else "not a dask scheduler"
        raise UsageError(f"cannot use {address}: what answered there is {what}, not the scheduler "
                         "(give the scheduler's address, printed by `dask scheduler`)")


def connect(address: str, *, timeout: float = CONNECT_TIMEOUT_S) -> Any:
    """A :class:`distributed.Client` connected to ``address``.

    Raises
    ------
    UsageError
        dask is not installed, the address is malformed, or no dask scheduler answers at it
        within ``timeout`` seconds.
    """
    address = address.strip()
    if not _ADDRESS.match(address):
        raise UsageError(f"--scheduler {address!r}: expected an address such as tcp://host:8786")
    distributed = import_distributed()
    for name in ("distributed", "distributed.client", "distributed.comm"):  # our own one-line errors instead
        logging.getLogger(name).setLevel(logging.CRITICAL)
    _probe(address, timeout)
    _check_scheduler(address, timeout)
    try:
        return distributed.Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError) as exc:  # the scheduler went away between the two
        raise _unreachable(address, timeout, exc) from None


def n_workers(client: Any) -> int:
    """Workers connected to the scheduler now (0 if it cannot tell)."""
    try:
        return len(client.scheduler_info().get("workers", {}))
    except Exception:  # noqa: BLE001 - informational only
        return 0


STOPPING_CLOSE_TIMEOUT_S = 0.3
"""Seconds to close a client after a stop signal (the scheduler cleans up after a lost client anyway)."""


def close(client: Any, *, stopping: bool = False) -> None:
    """Close ``client`` without waiting long for a scheduler that went away (``stopping``: after a
    stop signal, hardly at all)."""
    try:
        client.close(timeout=STOPPING_CLOSE_TIMEOUT_S if stopping else CONNECT_TIMEOUT_S)
    except Exception:  # noqa: BLE001 - closing is best effort
        pass



"""A dask.distributed cluster: reaching its scheduler (fast, one-line errors) and letting go of it.

dask is an optional extra (``pip install "volume[dask]"``), imported only when a scheduler is
given. What runs on the cluster is the job's business (:mod:`volume.jobs.cluster` converts stacks).
"""

from __future__ import annotations

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
    made: list[Any] = []

    class _Client(distributed.Client):  # keeps hold of a client whose start failed, to close it quickly
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            made.append(self)
            super().__init__(*args, **kwargs)

    try:
        return _Client(address, timeout=timeout, set_as_default=False)
    except Exception as exc:  # noqa: BLE001 - refused, timed out, or not a dask scheduler at all
        for client in made:
            _abandon(client)
        if not isinstance(exc, (OSError, TimeoutError)):  # e.g. garbage read as a message length
            raise UsageError(f"cannot use {address}: what answered there is not a dask scheduler") from None
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise UsageError(
            f"cannot reach the dask scheduler at {address} within {timeout:g} s ({reason}); "
            "is it running (`dask scheduler`) and reachable from here?"
        ) from None


def _abandon(client: Any) -> None:
    """Stop a client whose connection failed without the 10 s close its finaliser would attempt."""
    try:
        client.close(timeout=0.5)
    except Exception:  # noqa: BLE001 - it never connected: nothing to close gracefully
        pass
    try:
        client.status = "closed"
        client._loop_runner.stop()
    except Exception:  # noqa: BLE001 - private API; best effort
        pass


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



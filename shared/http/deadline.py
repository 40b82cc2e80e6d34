"""Every write is answered within ``WRITE_TIMEOUT_S`` of its arrival: the clock starts when the
front door (``shared.http.front_door``) lets the request in, and group commit
(``shared.eventstore.group_commit``) answers by then, whatever the store does."""

from __future__ import annotations

import time
from contextvars import Token

from shared.eventstore.group_commit import write_due

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def start_write_clock(method: str, timeout_s: float) -> Token[float | None] | None:
    """For a write, its answer due ``timeout_s`` from now (``write_due``, to be reset with
    the token returned); None for a read."""
    if method not in WRITES:
        return None
    return write_due.set(time.monotonic() + timeout_s)

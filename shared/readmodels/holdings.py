"""Which pool connections a background loop holds now, so that a shutdown it outlasts can end
them (``shared.runtime.background.Background.stop``'s hard stop).

A loop runs in a context whose ``HOLDINGS`` is its own :class:`Holdings` (tasks it starts
inherit it); the service's pool (``shared.readmodels.pool.create_pool``) adds each connection
acquired in such a context to it. A loop stuck past the graceful deadline on a statement, its
batch's rollback, or the session of its lock is ended by ending those sessions
(``pg_terminate_backend``: PostgreSQL rolls the transaction back and frees the session's
advisory locks, a standby replica takes over) and closing the connections (the statement
fails at once in the loop)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from typing import Any

import asyncpg


def _released(proxy: Any) -> bool:
    """Whether the pool's ``proxy`` was given back (asyncpg refuses every call on it then)."""
    try:
        proxy.is_closed()
    except asyncpg.InterfaceError:
        return True
    return False


class Holdings:
    """The connections of a pool that one loop (and the tasks it started) holds now."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._held: set[Any] = set()

    def acquired(self, proxy: Any) -> None:
        """``proxy`` was acquired by the loop; those it gave back are forgotten now (the set
        stays as small as what the loop holds at once)."""
        self._held = {p for p in self._held if not _released(p)}
        self._held.add(proxy)

    def backends(self) -> list[int]:
        """The PostgreSQL backend ids of the connections the loop holds now."""
        pids: list[int] = []
        for proxy in self._held:
            try:
                if not proxy.is_closed():
                    pids.append(proxy.get_server_pid())
            except asyncpg.InterfaceError:  # given back meanwhile: no longer the loop's
                pass
        return pids

    def terminate(self) -> None:
        """Close every connection the loop still holds at once, without a word to the server
        (a backend busy on a statement or a lock wait does not notice its client gone: its
        session is ended by ``pg_terminate_backend`` next). Before the sessions are ended, in
        the same step as ``backends``: a connection closed is never handed to another caller
        (the pool replaces it), so the backend ids name the loop's sessions only."""
        for proxy in self._held:
            try:
                proxy.terminate()
            except asyncpg.InterfaceError:  # given back meanwhile: no longer the loop's
                pass
        self._held.clear()


#: Ends PostgreSQL sessions by backend id (``pg_terminate_backend``, on another connection).
EndSessions = Callable[[Sequence[int]], Awaitable[object]]

#: The statement an ``EndSessions`` runs: the backends of the service's own role.
END_SESSIONS_SQL = "SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid"


#: The loop the running code belongs to (None outside ``Background``'s loops).
HOLDINGS: ContextVar[Holdings | None] = ContextVar("sixstep_holdings", default=None)


async def note_acquired(proxy: Any) -> None:
    """The pool's ``setup``: a connection acquired by a loop is noted as that loop's."""
    holdings = HOLDINGS.get()
    if holdings is not None:
        holdings.acquired(proxy)

"""What a statement that ran out of time raises, for the consumers (hand the batch back, count
no try) and the routes (503 ``statement_timed_out``) alike: the limits are the services'
pools' (``DB_STATEMENT_TIMEOUT_S``, ``shared.readmodels.pool``), and the event store's for a
command a consumer's handler sends (``shared.kernel.errors.Unavailable``)."""

from __future__ import annotations

import traceback

import asyncpg

from shared.kernel.errors import Unavailable

#: What PostgreSQL raises when it ends a statement for its time: statement_timeout and
#: lock_timeout (``57014``, ``55P03``), idle_in_transaction_session_timeout (``25P03``, the
#: session then gone). The statement's transaction is rolled back.
ENDED_BY_SERVER: tuple[type[Exception], ...] = (
    asyncpg.QueryCanceledError, asyncpg.LockNotAvailableError,
    asyncpg.IdleInTransactionSessionTimeoutError)

#: PostgreSQL's limits (``ENDED_BY_SERVER``), the client's own wait for a backend that
#: answers nothing (``TimeoutError``), and a command the event store did not record in time
#: (``Unavailable``: its statement ended, 503 ``statement_timed_out``; not taken, or not
#: confirmed, within ``WRITE_TIMEOUT_S``; the service shutting down): the commands
#: handlers send (follow-up's rules, feedback's survey requests). Not the event's fault: a
#: consumer hands the batch back and tries again with back-off, never counting a try
#: towards the dead-letter stream (``shared.bus.consumer.Consumer._timed_out``). Before
#: 2026-12 a command's ``StatementTimedOut`` was a ``CommandError`` like a refusal to the
#: consumers: each counted a try, and an event whose commands met a lock
#: ``CONSUMER_MAX_DELIVER`` times was dead-lettered, to be replayed by hand.
STORE_TIMED_OUT: tuple[type[BaseException], ...] = (*ENDED_BY_SERVER, TimeoutError,
                                                    Unavailable)


def client_gave_up(exc: BaseException) -> bool:
    """A ``TimeoutError`` the store's client (asyncpg) raised by itself: a statement PostgreSQL
    did not answer within the pool's ``command_timeout`` (DB_STATEMENT_TIMEOUT_S and 5 s: a
    backend stopped, a network gone), or a connection it did not accept in time. Told apart
    from any other ``TimeoutError`` (NATS' is a subclass; a route's own ``asyncio.timeout``)
    by where it was raised: a route answers the store's 503 ``statement_timed_out`` for the
    first only."""
    return type(exc) is TimeoutError and any(
        str(frame.f_globals.get("__name__", "")).startswith("asyncpg.")
        for frame, _ in traceback.walk_tb(exc.__traceback__))

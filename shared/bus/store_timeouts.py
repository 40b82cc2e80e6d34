"""What a statement that ran out of time raises, for the consumers (hand the batch back, count
no try) and the routes (503 ``statement_timed_out``) alike: the limits are the services'
pools' (``DB_STATEMENT_TIMEOUT_S``, ``shared.readmodels.pool``)."""

from __future__ import annotations

import asyncpg

#: What PostgreSQL raises when it ends a statement for its time: statement_timeout and
#: lock_timeout (``57014``, ``55P03``), idle_in_transaction_session_timeout (``25P03``, the
#: session then gone). The statement's transaction is rolled back.
ENDED_BY_SERVER: tuple[type[Exception], ...] = (
    asyncpg.QueryCanceledError, asyncpg.LockNotAvailableError,
    asyncpg.IdleInTransactionSessionTimeoutError)

#: PostgreSQL's limits (``ENDED_BY_SERVER``) and the client's own wait for a backend that
#: answers nothing (``TimeoutError``). Not the event's fault: a consumer hands the batch back
#: and tries again with back-off, never counting a try towards the dead-letter stream
#: (``shared.bus.consumer.Consumer._timed_out``).
STORE_TIMED_OUT: tuple[type[BaseException], ...] = (*ENDED_BY_SERVER, TimeoutError)

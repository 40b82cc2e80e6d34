"""The asyncpg pool a service reads and projects with: its own schema first, every statement
bounded in time."""

from __future__ import annotations

from typing import Any

import asyncpg

from shared.readmodels.holdings import note_acquired
from shared.settings import Settings

#: How much longer than PostgreSQL's statement_timeout the client waits for an answer: a
#: backend that answers nothing (stopped, its host gone) is given up on by the client.
CLIENT_GRACE_S = 5.0


#: How much sooner than statement_timeout a wait for a lock is ended (``lock_timeout``): at
#: most one second, at most a tenth of the limit.
LOCK_MARGIN_S = 1.0


def lock_timeout_s(statement_timeout_s: float) -> float:
    """The longest wait for a lock under ``statement_timeout_s`` (0: none): just below it, so
    that a statement stuck behind another session's lock ends as ``LockNotAvailableError``
    (55P03, "canceling statement due to lock timeout") and one slow on its own as
    ``QueryCanceledError`` (57014): the log, ``/ready`` and a dead letter's reason say which."""
    if statement_timeout_s <= 0:
        return 0.0
    return statement_timeout_s - min(LOCK_MARGIN_S, statement_timeout_s / 10)


def timeouts(settings: Settings) -> dict[str, str]:
    """The sessions' limits as start-up parameters (``DB_STATEMENT_TIMEOUT_S`` and the
    ``lock_timeout`` just below it, ``DB_IDLE_IN_TRANSACTION_TIMEOUT_S``; 0: none)."""
    limit = settings.db_statement_timeout_s
    return {"statement_timeout": f"{round(limit * 1000)}ms",
            "lock_timeout": f"{round(lock_timeout_s(limit) * 1000)}ms",
            "idle_in_transaction_session_timeout":
                f"{round(settings.db_idle_in_transaction_timeout_s * 1000)}ms"}


#: The working pool's size: what a service's requests, batches and rounds share. A leading
#: loop's lock is held on a connection of the lock pool instead (``create_lock_pool``), so no
#: loop a process leads eats into it (tests/unit's guard, test_leaders_leave_the_pool_free).
POOL_SIZE = 10

#: The most lock connections one process holds at once: one per loop it leads (the relay,
#: each consumer, each scheduler: feedback's worker leads seven) and the fan-out's; a cap
#: against a leak, not a size to fill (opened as the loops lead, none while they stand by).
LOCK_POOL_MAX = 32


async def create_pool(settings: Settings, schema: str, *, min_size: int = 2,
                      max_size: int = POOL_SIZE, purpose: str = "") -> asyncpg.Pool:
    """An asyncpg pool whose connections see the service's schema first, and give up on a
    statement after ``DB_STATEMENT_TIMEOUT_S`` (PostgreSQL's own limit, then the client's
    ``CLIENT_GRACE_S`` later): a lock wait on a row another session holds, or a backend that
    hangs, stopped a consumer for ever, saying nothing.

    The search path and the limits are start-up parameters, so they survive the ``RESET ALL``
    that asyncpg runs when a connection goes back to the pool.

    A connection acquired by a background loop is noted as that loop's
    (``shared.readmodels.holdings``): a shutdown the loop outlasts ends it. ``purpose`` is
    added to the sessions' ``application_name`` (``sixstep-<schema>-locks``).
    """
    limit = settings.db_statement_timeout_s
    pool: Any = await asyncpg.create_pool(
        settings.database_url, min_size=min_size, max_size=max_size,
        command_timeout=limit + CLIENT_GRACE_S if limit > 0 else None,
        setup=note_acquired,
        server_settings={"application_name": f"sixstep-{schema}{purpose}",
                         "search_path": f'"{schema}", public', **timeouts(settings)})
    return pool


async def create_lock_pool(settings: Settings, schema: str) -> asyncpg.Pool:
    """The connections the loops a process leads hold their advisory locks on
    (``shared.leadership``), apart from the working pool: a lock is held on its session for
    as long as the loop leads, and on the working pool feedback's worker held seven of its
    ten for good, so a close of the month beside a batch waited for a connection (stop 55).
    Empty at first and opened as loops lead (a standby's tries reuse one while they lose);
    at most ``LOCK_POOL_MAX``."""
    return await create_pool(settings, schema, min_size=0, max_size=LOCK_POOL_MAX,
                             purpose="-locks")

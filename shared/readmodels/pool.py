"""The asyncpg pool a service reads and projects with: its own schema first, every statement
bounded in time."""

from __future__ import annotations

from typing import Any

import asyncpg

from shared.settings import Settings

#: How much longer than PostgreSQL's statement_timeout the client waits for an answer: a
#: backend that answers nothing (stopped, its host gone) is given up on by the client.
CLIENT_GRACE_S = 5.0


def timeouts(settings: Settings) -> dict[str, str]:
    """The sessions' limits as start-up parameters (``DB_STATEMENT_TIMEOUT_S``,
    ``DB_IDLE_IN_TRANSACTION_TIMEOUT_S``; 0: none)."""
    return {"statement_timeout": f"{round(settings.db_statement_timeout_s * 1000)}ms",
            "idle_in_transaction_session_timeout":
                f"{round(settings.db_idle_in_transaction_timeout_s * 1000)}ms"}


async def create_pool(settings: Settings, schema: str, *, min_size: int = 2,
                      max_size: int = 10) -> asyncpg.Pool:
    """An asyncpg pool whose connections see the service's schema first, and give up on a
    statement after ``DB_STATEMENT_TIMEOUT_S`` (PostgreSQL's own limit, then the client's
    ``CLIENT_GRACE_S`` later): a lock wait on a row another session holds, or a backend that
    hangs, stopped a consumer for ever, saying nothing.

    The search path and the limits are start-up parameters, so they survive the ``RESET ALL``
    that asyncpg runs when a connection goes back to the pool.
    """
    limit = settings.db_statement_timeout_s
    pool: Any = await asyncpg.create_pool(
        settings.database_url, min_size=min_size, max_size=max_size,
        command_timeout=limit + CLIENT_GRACE_S if limit > 0 else None,
        server_settings={"application_name": f"sixstep-{schema}",
                         "search_path": f'"{schema}", public', **timeouts(settings)})
    return pool

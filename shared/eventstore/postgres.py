"""Where a service keeps its events: PostgreSQL, one schema per service, reached through the
eventsourcing library's settings."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

import psycopg
from psycopg_pool.base import AttemptWithBackoff

from shared.settings import Settings


def postgres_env(settings: Settings, schema: str, app_name: str) -> dict[str, str]:
    """The eventsourcing library's settings for a service's own schema, from DATABASE_URL."""
    url = urlsplit(settings.database_url)
    if url.scheme not in ("postgres", "postgresql"):
        raise ValueError(f"DATABASE_URL must be a postgresql:// URL, got scheme {url.scheme!r}")
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": unquote(url.path.lstrip("/")) or "postgres",
        "POSTGRES_HOST": url.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(url.port or 5432),
        "POSTGRES_USER": unquote(url.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(url.password or ""),
        "POSTGRES_SCHEMA": schema,
        "POSTGRES_POOL_SIZE": "4",
        "POSTGRES_MAX_OVERFLOW": "4",
        "POSTGRES_CONN_MAX_AGE": "3600",
        # No pre-ping: after a restart of the store, psycopg_pool finds each dead pooled
        # connection on its turn and sleeps 1, 2, 4, 8 s between them, so writes stalled for
        # ~15 s after a 1 s outage (tests/faults/test_postgres_restart.py). Without it a dead
        # connection fails at once (503 to the caller, who retries with the same
        # Idempotency-Key) and is replaced by a fresh one.
        "POSTGRES_PRE_PING": "n",
        # How long a caller waits for a pooled connection (the library's default is 30 s):
        # while the store is away no read or write may wait longer than a write's answer is
        # due (WRITE_TIMEOUT_S); group commit retries within that bound itself.
        "POSTGRES_CONNECT_TIMEOUT": str(max(1, int(settings.write_timeout_s / 2))),
        "POSTGRES_LOCK_TIMEOUT": "10",
        "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": "30",
        "CREATE_TABLE": "y",
        "NAME": app_name,
    }


def ensure_schema(settings: Settings, schema: str) -> None:
    """Create the service's schema (idempotent, safe with several replicas starting at once)."""
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (f"sixstep-schema:{schema}",))
        try:
            conn.execute(psycopg.sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                psycopg.sql.Identifier(schema)))
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (f"sixstep-schema:{schema}",))


#: What psycopg raises when PostgreSQL ends a statement for its time (statement_timeout,
#: lock_timeout, idle_in_transaction_session_timeout): its transaction is rolled back.
ENDED_BY_SERVER: tuple[type[Exception], ...] = (
    psycopg.errors.QueryCanceled, psycopg.errors.LockNotAvailable,
    psycopg.errors.IdleInTransactionSessionTimeout)


def ended_by_server(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it was raised from: the library wraps psycopg's errors) is
    PostgreSQL ending a statement for its time (``ENDED_BY_SERVER``)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ENDED_BY_SERVER):
            return True
        seen = seen.__cause__
    return False


def bound_statements(pool: Any, settings: Settings) -> None:
    """Give every connection of ``pool`` (the library's psycopg_pool.ConnectionPool) the
    services' ``DB_STATEMENT_TIMEOUT_S`` as its statement_timeout, as the asyncpg pools
    have (``shared.readmodels.pool``): a start-up parameter, from the next connection on;
    those the library opened to make its tables are replaced (``drain``). Before, a write
    statement that hung (a slow query, a lock the library's own ``lock_timeout`` does not
    cover) held the writer thread for ever, and every later write answered 503."""
    limit = settings.db_statement_timeout_s
    if limit <= 0:
        return
    pool.kwargs["options"] = f"-c statement_timeout={round(limit * 1000)}"
    if not pool.closed:
        pool.drain()


#: The longest pause between a pool's attempts to reconnect to a store that went away.
RECONNECT_EVERY_S = 1.0


class _PromptAttempt(AttemptWithBackoff):
    """psycopg_pool's reconnection schedule (1, 2, 4, 8, 16, 32 s ...), capped: after a 30 s
    outage the pool otherwise tried again only some 20 s after the store was back, and every
    write in between was refused."""

    def update_delay(self, now: float) -> None:
        super().update_delay(now)
        self.delay = min(self.delay, RECONNECT_EVERY_S)


def reconnect_promptly(pool: Any) -> None:
    """Make ``pool`` (the library's psycopg_pool.ConnectionPool) retry a lost store at least
    every ``RECONNECT_EVERY_S`` (a refused connection costs next to nothing)."""
    base = type(pool)

    def _add_connection(self: Any, attempt: AttemptWithBackoff | None,
                        growing: bool = False) -> None:
        if attempt is None:
            attempt = _PromptAttempt(timeout=self.reconnect_timeout)
        base._add_connection(self, attempt, growing)

    pool.__class__ = type(f"Prompt{base.__name__}", (base,),
                          {"_add_connection": _add_connection})

"""A write whose statement the store cannot finish (the events table locked by another
session, a slow query) is ended by PostgreSQL after DB_STATEMENT_TIMEOUT_S, as the asyncpg
pools' statements are: the caller is answered 503 statement_timed_out (nothing recorded;
retry with the same Idempotency-Key) and the writer goes on with the next write once the lock
is gone.

Before: the group commit's psycopg pool had no statement timeout; the writer thread waited
on the lock for as long as it was held, and every caller got 503 store_unavailable after
WRITE_TIMEOUT_S, none told why."""

from __future__ import annotations

import asyncpg
import pytest

from shared.kernel.errors import StatementTimedOut
from shared.settings import Settings
from tests.intake.test_log_guarantees import open_and_hear, write_side


async def test_a_write_behind_a_locked_events_table_answers_statement_timed_out(
        settings: Settings) -> None:
    settings = settings.model_copy(update={"db_statement_timeout_s": 0.3})
    async with write_side(settings) as side:
        await open_and_hear(side, 1)  # the writer's connections are warm
        schema = settings.schema_for("intake")
        blocker = await asyncpg.connect(settings.database_url)
        try:
            tables = [r["tablename"] for r in await blocker.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = $1", schema)]
            lock = blocker.transaction()
            await lock.start()
            await blocker.execute("; ".join(
                f'LOCK TABLE "{schema}"."{t}" IN ACCESS EXCLUSIVE MODE' for t in tables))
            with pytest.raises(StatementTimedOut) as refused:
                await open_and_hear(side, 1)
            assert refused.value.code == "statement_timed_out" and refused.value.status == 503
            await lock.rollback()
        finally:
            await blocker.close()
        assert len(await open_and_hear(side, 1)) == 1  # the writer goes on

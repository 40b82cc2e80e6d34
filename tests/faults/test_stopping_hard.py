"""A shutdown never returns with a loop still running. A loop that outlasts the graceful stop
(a consumer's batch stuck on a statement, its rollback waiting on the server) is stopped
hard: its PostgreSQL session ended, which frees its lock for a standby replica at once, and
the stop returns only once the loop has ended. Before, ``Background.stop`` said
``task.stop_timeout`` and returned with the loop still running; the runtime then drained
NATS and closed the pool under it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from structlog.testing import capture_logs

from shared.leadership import Leadership
from shared.readmodels.holdings import END_SESSIONS_SQL
from shared.runtime.background import Background
from shared.settings import Settings
from tests.support import lock_free, schema_pool, wait_until

STUCK = "SELECT pg_sleep(600) /* sixstep-test: stuck at shutdown */"


async def test_a_loop_stuck_on_its_statement_at_shutdown_is_stopped_hard_and_its_lock_freed(
        settings: Settings) -> None:
    async with schema_pool(settings, "stopping_hard", []) as pool:
        key = "sixstep-test-stopping-hard"

        async def stuck_loop() -> None:
            """Leads, then waits on its statement and will not go before it ends (as a
            batch's rollback must finish): a cancel alone never ends it."""
            async with Leadership(pool, key, what="test") as lead:
                statement = asyncio.ensure_future(lead.connection.execute(STUCK))
                while not statement.done():
                    with contextlib.suppress(asyncio.CancelledError):
                        await asyncio.shield(statement)
                statement.result()

        async def stuck_on_the_server() -> bool:  # the barrier: the statement is running
            return bool(await pool.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE query = $1 AND state = 'active'",
                STUCK))

        async def end_sessions(backends: Sequence[int]) -> None:
            await pool.execute(END_SESSIONS_SQL, list(backends))

        background = Background()
        background.start("stuck", stuck_loop)
        task = background.tasks["stuck"]
        await wait_until(stuck_on_the_server, what="the loop's statement running")
        backend = await pool.fetchval(
            "SELECT pid FROM pg_stat_activity WHERE query = $1", STUCK)

        with capture_logs() as logs:
            await background.stop(timeout=0.5, end_sessions=end_sessions)

        assert task.done(), "the stop returned with the loop still running"
        overdue = [line for line in logs if line["event"] == "task.stop_overdue"]
        assert [(line["task"], line["backends"]) for line in overdue] == [("stuck", [backend])]
        assert any(line["event"] == "task.hard_stopped" for line in logs)
        # The session is gone on the server, not only the client's socket closed: a backend
        # busy on a statement never notices its client gone, and kept the lock meanwhile.
        await wait_until(lambda: lock_free(pool, key), what="the lock free for a standby")

        async def statement_ended() -> bool:
            return not await stuck_on_the_server()
        await wait_until(statement_ended, what="the stuck statement ended on the server")

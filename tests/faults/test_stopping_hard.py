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
from typing import Any

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


async def test_a_hard_stop_never_ends_a_session_the_loop_gave_back_meanwhile(
        settings: Settings) -> None:
    """The overdue loop gives its connection back while its sessions are being ended (its
    statement ended as the stop began), and the pool hands that very connection to another
    caller (the relay, still running through the other loops' stop; a request). Before, the
    stop took the backend ids, awaited ``end_sessions`` and only then closed the loop's
    connections: the bystander's session was ended, mid-statement. Now the loop's
    connections are closed first, in the same step as their ids are taken: what the loop
    gives back afterwards is a dead connection the pool replaces (another backend)."""
    async with schema_pool(settings, "stopping_hard_bystander", []) as pool:
        release_now, released = asyncio.Event(), asyncio.Event()

        async def overdue_loop() -> None:
            """Holds a connection and goes on past every cancel until it is told to give
            it back (its statement ended); then ends at the next cancel."""
            conn = await pool.acquire()
            try:
                while not release_now.is_set():
                    with contextlib.suppress(asyncio.CancelledError):
                        await release_now.wait()
            finally:
                await pool.release(conn)
                released.set()
            await asyncio.Event().wait()

        bystanders: list[Any] = []

        async def end_sessions(backends: Sequence[int]) -> None:
            release_now.set()
            await released.wait()  # the barrier: the loop's connection is back in the pool
            bystanders.append(await pool.acquire())  # the pool's newest: the loop's own
            await pool.execute(END_SESSIONS_SQL, list(backends))

        background = Background()
        background.start("overdue", overdue_loop)

        async def holding() -> bool:  # the barrier: the loop's connection noted as its own
            return bool(background.holdings["overdue"].backends())
        await wait_until(holding, what="the loop holding its connection")
        with capture_logs() as logs:
            await background.stop(timeout=0.2, end_sessions=end_sessions)
        [overdue] = [line for line in logs if line["event"] == "task.stop_overdue"]
        try:
            [bystander] = bystanders
            assert bystander.get_server_pid() not in overdue["backends"], \
                "the pool handed the loop's live session to another caller before it was ended"
            assert await bystander.fetchval("SELECT 1") == 1
        finally:
            for conn in bystanders:
                await pool.release(conn)

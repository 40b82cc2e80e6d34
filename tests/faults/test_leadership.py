"""``shared/leadership.py``'s own rules, on a real PostgreSQL: the leader sees its lock as
its own whatever the sign of the key's hash (``hashtext`` is negative for half the names:
the lock's high 32 bits are then all ones), a second replica stands by until the first
steps down, and a session PostgreSQL ended is a ``LeadershipLost``."""

from __future__ import annotations

import asyncio

import pytest

from shared.leadership import Leadership, LeadershipLost
from shared.settings import Settings
from tests.support import end_lock_session, lock_free, schema_pool, wait_until


@pytest.mark.parametrize("negative", [True, False], ids=["hash<0", "hash>=0"])
async def test_a_leader_sees_its_lock_whatever_the_sign_of_its_hash_and_loses_it_with_its_session(
        settings: Settings, negative: bool) -> None:
    async with schema_pool(settings, "leadership", []) as pool:
        key = await pool.fetchval(
            "SELECT k FROM (SELECT 'sixstep-test-leadership:' || n AS k FROM"
            " generate_series(1, 50) n) names WHERE (hashtext(k) < 0) = $1 LIMIT 1", negative)
        standing_by = asyncio.Event()
        first = Leadership(pool, key, what="test", standby_s=0.01)
        second = Leadership(pool, key, what="test", standby_s=0.01,
                            on_standby=lambda waiting: waiting and standing_by.set())
        async with first as lead:
            await lead.check()
            assert lead.leading
            waiting = asyncio.create_task(second.__aenter__())
            await standing_by.wait()
            assert not second.leading
        await waiting  # the first stepped down: the second leads
        assert second.leading
        await second.check()
        assert await end_lock_session(pool, key) == 1

        async def gone() -> bool:  # a barrier: the backend ended, its lock with it
            return await lock_free(pool, key)
        await wait_until(gone, what="the lock's session ended")
        with pytest.raises(LeadershipLost):
            await second.check()
        assert not second.leading
        await second.__aexit__(None, None, None)


async def test_a_leader_whose_session_ended_says_so_at_once_not_at_its_next_round(
        settings: Settings) -> None:
    """The period scheduler looks at its lock once a minute: after PostgreSQL ended the
    session, ``leading`` (the ``sixstep_leading`` gauge, /ready's ``checks.leading``) said 1
    for up to a minute on the old leader beside the replica that took the lock (two leaders
    shown). The session's end is heard as it happens (asyncpg's termination listener)."""
    async with schema_pool(settings, "leadership_gauge", []) as pool:
        key = "sixstep-test-leadership:gauge"
        async with Leadership(pool, key, what="test") as lead:
            await lead.check()
            assert await end_lock_session(pool, key) == 1

            async def gone() -> bool:  # a barrier: the backend ended, its lock with it
                return await lock_free(pool, key)
            await wait_until(gone, what="the lock's session ended")

            async def said() -> bool:  # no check() called: nothing but the session's end
                return not lead.leading
            await wait_until(said, what="the old leader to stop saying it leads")
            with pytest.raises(LeadershipLost):
                await lead.check()


async def test_a_leader_cancelled_again_while_stepping_down_gives_its_connection_back(
        settings: Settings) -> None:
    """A shutdown cancels a loop again every 0.2 s until it ends (``Background.stop``: nats-py
    swallows a cancel). One landing on the unlock skipped the connection's return to the
    pool: the lock's connection was lost, and ``pool.close()`` at the end of the shutdown
    waits for it for ever."""
    async with schema_pool(settings, "leadership_cancel", []) as pool:
        key = "sixstep-test-leadership:cancel"
        leading, leaving = asyncio.Event(), asyncio.Event()

        async def loop() -> None:
            async with Leadership(pool, key, what="test"):
                leading.set()
                try:
                    await asyncio.Event().wait()
                finally:
                    leaving.set()  # on into __aexit__: its unlock is sent before we wake

        task = asyncio.create_task(loop())
        await leading.wait()
        task.cancel()
        await leaving.wait()
        task.cancel()  # the second cancel: lands on the unlock's round trip
        with pytest.raises(asyncio.CancelledError):
            await task

        async def back() -> bool:  # a barrier: every connection idle in the pool again
            return pool.get_idle_size() == pool.get_size()
        await wait_until(back, what="the lock's connection back in the pool")
        await wait_until(lambda: lock_free(pool, key), what="the lock given up")

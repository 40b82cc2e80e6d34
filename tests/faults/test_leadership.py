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

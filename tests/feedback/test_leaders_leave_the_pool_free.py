"""Every loop a worker leads (the relay, each consumer, each scheduler) holds its advisory lock
on a session for as long as it leads. Held on the service's working pool, feedback's worker
held seven of its ten connections for good, and a close of the month beside a figures batch
waited for one (tests/feedback/test_close_before_relay.py's
test_a_close_waits_for_the_batch_another_worker_is_applying, stop 55). The locks are held on
the runtime's lock pool now (``shared.readmodels.pool.create_lock_pool``): once every loop of
a worker leads, its working pool is whole. A new loop that leads on the working pool (not
given ``locks=runtime.locks``) fails here."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi import FastAPI

from services.feedback.main import create_app as feedback_app
from services.followup.main import create_app as followup_app
from services.intake.main import create_app as intake_app
from shared.readmodels.pool import POOL_SIZE
from shared.settings import Settings
from tests.support import running, wait_until

APPS: dict[str, Callable[[Settings], FastAPI]] = {
    "intake": intake_app, "followup": followup_app, "feedback": feedback_app}


@pytest.mark.parametrize("service", sorted(APPS))
async def test_a_worker_leading_every_loop_keeps_its_whole_pool_for_the_days_work(
        settings: Settings, service: str) -> None:
    app = APPS[service](settings)
    async with running(app):
        runtime = app.state.runtime

        async def leading_all() -> bool:
            return (all(lead.leading for lead in runtime.leaderships.values())
                    and all(consumer.leads for consumer in runtime.driven.values()))
        await wait_until(leading_all, what=f"{service}'s worker leading every loop")
        led = len(runtime.leaderships) + len(runtime.driven)
        assert led >= 2, (runtime.leaderships, runtime.driven)  # the relay and a consumer
        locks = runtime.lock_pool
        assert locks.get_size() - locks.get_idle_size() >= led, "each lock on the lock pool"
        pool = runtime.pool

        async def whole() -> bool:
            # Requests, batches and rounds borrow a connection for a moment: a moment comes
            # when none is out. A lock held on this pool is out for good.
            return pool.get_max_size() - (pool.get_size() - pool.get_idle_size()) >= POOL_SIZE
        await wait_until(whole, what=f"{service}'s working pool whole beside its {led} leaders")

"""A supervisor's close in the shipped layout: an API process (``ROLES=api``) in front of
workers that share the partitions (``CONSUMER_PARTITIONS``, deploy/compose.yaml).

The close waits for the figures to count everything on the bus. The API process asked the
server about the durable named as it would be unpartitioned (``feedback-figures``), which
no process of such a deployment makes: the workers' are ``feedback-figures-p0_1`` and
``-p2_3``. Not there, it read as not caught up, and every supervisor's close was 503
``figures_catching_up`` for good. It now asks every durable of the figures consumer, and all
the partitions must be someone's.

The scheduler's closes run in one worker (the first to take their lock) and waited only for
that worker's own durable: with the other worker's partitions behind (stopped, restarting),
the month was closed without their events, for good as above.
"""

from __future__ import annotations

import contextlib
from datetime import datetime

from fastapi import FastAPI
from nats.js.errors import NotFoundError

from services.feedback.main import create_app
from shared.bus.consumer import Consumer
from shared.settings import Settings
from tests.feedback.helpers import Clock, KeptSender
from tests.feedback.test_close_waits_for_figures import closed_once_counted
from tests.feedback.test_visits_and_periods import May
from tests.support import TEST_CENTER, running, stream_envelopes, wait_until


def figures_of(app: FastAPI) -> Consumer:
    """The figures consumer of a (partitioned) worker, under its durable's name."""
    runtime = app.state.runtime
    return next(c for name, c in runtime.consumers.items()
                if runtime.base_names[name] == app.state.consumer_names["figures"])


async def durables_made(app: FastAPI) -> None:
    """Wait until a worker's figures durable is on the server (its consumer starts apart)."""
    figures = figures_of(app)

    async def made() -> bool:
        try:
            await figures.measure_oldest_unapplied()
        except NotFoundError:
            return False
        return True

    await wait_until(made, what="the worker's figures durable")


async def test_a_supervisor_closes_a_month_through_an_api_before_partitioned_workers(
        settings: Settings) -> None:
    quick = settings.model_copy(update={"read_wait_timeout_s": 1.0})
    clock = Clock(datetime.fromisoformat("2026-06-03T09:00:00+08:00"))

    def process(**update: object):  # type: ignore[no-untyped-def]
        return create_app(quick.model_copy(update=update), sender=KeptSender(), clock=clock)

    async def close(client) -> int:  # type: ignore[no-untyped-def]
        r = await client.post(f"/periods/{TEST_CENTER}/2026-05/close",
                              headers={"Idempotency-Key": "close-may"})
        return r.status_code

    async with contextlib.AsyncExitStack() as stack:
        api = await stack.enter_async_context(running(process(roles={"api"})))
        await stack.enter_async_context(
            running(process(roles={"workers"}, consumer_partitions="0-1")))
        await May().build().publish(settings)
        # Partitions 2-3 are no worker's yet: their events are counted by no one.
        assert await close(api) == 503
        await stack.enter_async_context(
            running(process(roles={"workers"}, consumer_partitions="2-3")))

        await closed_once_counted(api)


async def test_the_scheduler_waits_for_the_other_workers_partitions(settings: Settings) -> None:
    clock = Clock(datetime.fromisoformat("2026-06-03T09:00:00+08:00"))

    def worker(partitions: str) -> FastAPI:
        return create_app(settings.model_copy(update={
            "roles": {"workers"}, "consumer_partitions": partitions}),
            sender=KeptSender(), clock=clock)

    ticking = worker("0-1")
    async with running(ticking):
        async with running(stopped := worker("2-3")):
            await durables_made(stopped)  # it stops, with May's events of 2 and 3 to come
        await May().build().publish(settings)  # events on all four partitions
        own = figures_of(ticking)

        async def own_counted() -> bool:
            await own.measure_oldest_unapplied()
            return own.stats.pending == 0

        await wait_until(own_counted, what="partitions 0-1 counted")
        clock.advance(days=7)  # 10 June: May is due to close (PERIOD_CLOSE_AFTER_DAYS 5)
        assert await ticking.state.period_scheduler.tick() == (0, 0)
        assert not [e for e in await stream_envelopes(settings) if e.type == "PeriodClosed"]


async def test_a_durable_the_split_no_longer_uses_does_not_hold_closes(
        settings: Settings) -> None:
    """One worker (``feedback-figures``) split in two, as deploy/README says: the old durable
    stays on the server, behind for ever; the new ones count its partitions."""
    quick = settings.model_copy(update={"read_wait_timeout_s": 1.0})
    clock = Clock(datetime.fromisoformat("2026-06-03T09:00:00+08:00"))

    def process(**update: object) -> FastAPI:
        return create_app(quick.model_copy(update=update), sender=KeptSender(), clock=clock)

    async with running(left := process(roles={"workers"})):
        await durables_made(left)  # the single worker's, left behind by the split
    async with contextlib.AsyncExitStack() as stack:
        api = await stack.enter_async_context(running(process(roles={"api"})))
        for partitions in ("0-1", "2-3"):
            await stack.enter_async_context(
                running(process(roles={"workers"}, consumer_partitions=partitions)))
        await May().build().publish(settings)

        await closed_once_counted(api)

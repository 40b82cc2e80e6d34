"""A consumer that dies holding a fetched batch: its successor applies that batch first.

Without recovery the batch would wait out ``ack_wait`` while the successor applied the case's
later events; the earlier event would then look like a duplicate and never be applied.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

import asyncpg

from shared.bus.consumer import TRACKING_DDL, Consumer
from shared.contracts import Envelope
from shared.settings import Settings
from tests.intake.test_log_guarantees import open_and_hear, run_relay, write_side
from tests.support import bus_connection, consumer_running, schema_pool, wait_until


class Recorder:
    def __init__(self) -> None:
        self.applied: list[str] = []

    async def apply(self, conn: asyncpg.Connection, events: Sequence[Envelope]) -> None:
        self.applied.extend(e.type for e in events)


async def test_a_successor_applies_the_dead_consumers_batch_first_and_in_order(
        settings: Settings) -> None:
    async with write_side(settings) as side:
        await open_and_hear(side, 1)  # CaseOpened, then RequestHeard, of one case
        await run_relay(settings, side, 2)
    subjects = [f"{settings.subject_prefix}.intake.*.*"]
    async with schema_pool(settings, "recovery", TRACKING_DDL) as pool:
        # The first process fetches CaseOpened and dies before it acknowledges anything.
        async with bus_connection(settings, "doomed") as doomed:
            first = Consumer(settings=settings, nc=doomed, pool=pool, name="recovery",
                             handler=Recorder(), filter_subjects=subjects, batch=1)
            await first.ensure()
            sub = await doomed.jetstream().pull_subscribe_bind("recovery", settings.stream_name)
            [held] = await sub.fetch(1, timeout=5)
            assert held.subject.split(".")[2] == "CaseOpened"

        # Its successor (ack_wait 30 s as in production) gets CaseOpened back at once, first.
        recorder = Recorder()
        async with bus_connection(settings, "successor") as nc, consumer_running(Consumer(
                settings=settings, nc=nc, pool=pool, name="recovery", handler=recorder,
                filter_subjects=subjects, batch=1)):
            async def both() -> bool:
                return len(recorder.applied) >= 2
            await wait_until(both, timeout=10, what="both events applied")
            assert recorder.applied == ["CaseOpened", "RequestHeard"]


async def test_a_second_process_with_the_same_consumer_waits_on_standby(
        settings: Settings) -> None:
    async with write_side(settings) as side:
        await open_and_hear(side, 2)
        await run_relay(settings, side, 4)
    subjects = [f"{settings.subject_prefix}.intake.*.*"]
    recorders = [Recorder(), Recorder()]
    async with schema_pool(settings, "standby", TRACKING_DDL) as pool, \
            bus_connection(settings, "replica-0") as nc0, \
            bus_connection(settings, "replica-1") as nc1:
        consumers = [Consumer(settings=settings, nc=nc, pool=pool, name="standby",
                              handler=r, filter_subjects=subjects, batch=1)
                     for nc, r in zip((nc0, nc1), recorders, strict=True)]
        async with consumer_running(consumers[0]) as leader:
            async def led() -> bool:
                return len(recorders[0].applied) == 4
            await wait_until(led, what="the leader to apply everything")
            async with consumer_running(consumers[1]):
                async def standing_by() -> bool:
                    return consumers[1].stats.standing_by
                await wait_until(standing_by, what="the second process to find the durable taken")
                # A barrier: new events, published while the second process waits, all reach
                # the leader; a second process pulling too would have taken some of them.
                async with write_side(settings) as side:
                    await open_and_hear(side, 3)
                    await run_relay(settings, side, 10)

                async def led_on() -> bool:
                    return len(recorders[0].applied) == 10
                await wait_until(led_on, what="the leader to apply the new events")
                assert recorders[1].applied == [], "the second process only stands by"
                assert consumers[1].stats.standing_by and consumers[1].stats.batches == 0
                leader.cancel()  # the leader goes away: the standby takes over
                with contextlib.suppress(asyncio.CancelledError):
                    await leader
                async with write_side(settings) as side:
                    await open_and_hear(side, 1)
                    await run_relay(settings, side, 12)

                async def took_over() -> bool:
                    return recorders[1].applied == ["CaseOpened", "RequestHeard"]
                await wait_until(took_over, what="the standby to take over")
                assert not consumers[1].stats.standing_by

"""A busy consumer gathers a small batch before applying it; an idle one never waits.

Every batch pays a fixed cost whatever its size (its transaction and tracking write, the
handler's round trips, the ack, the span): at middle rates each stage applied one event at a
time (benchmarks/README.md, target 3). With ``CONSUMER_GATHER_MS`` a consumer whose last batch
ended moments ago waits that long for more before applying fewer than
``CONSUMER_GATHER_BELOW`` events; a lone event reaching an idle consumer is applied at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, cast

import asyncpg

from services.intake import commands as c
from shared.bus.consumer import TRACKING_DDL
from shared.contracts import Envelope
from shared.settings import Settings
from tests.intake.test_log_guarantees import relay_running, stream_made, write_side
from tests.support import consumer_running, intake_consumer, wait_until

CENTER = "SH-PD-HUAMU"


class Batches:
    """The batches applied, each as its events' cases."""

    def __init__(self) -> None:
        self.batches: list[list[uuid.UUID | None]] = []

    async def apply(self, conn: asyncpg.Connection, events: Sequence[Envelope]) -> None:
        self.batches.append([e.case_id for e in events])

    def applied(self) -> int:
        return sum(len(b) for b in self.batches)


async def test_a_busy_consumer_applies_the_next_events_together_and_an_idle_one_at_once(
        settings: Settings) -> None:
    handler = Batches()
    await stream_made(settings)
    async with write_side(settings) as side, relay_running(settings, side), \
            intake_consumer(settings, "gathering", handler, TRACKING_DDL, batch=50,
                            gather_s=120.0, gather_below=2, gather_window_s=120.0
                            ) as consumer, consumer_running(consumer):
        js = consumer.nc.jetstream()

        async def open_one(i: int) -> uuid.UUID:
            return await _opened(side, f"gather-{i}")

        # The morning's first resident: the consumer has applied nothing yet (idle), so the
        # lone event is applied as it comes, not after the two minutes a busy one may wait.
        first = await open_one(0)

        async def applied(n: int) -> bool:
            return handler.applied() >= n
        await wait_until(lambda: applied(1), what="the lone event applied at once")
        assert handler.batches == [[first]]

        # Right after that batch the consumer is busy: the next event is delivered and held
        # (not applied, not acked) until another comes, and both go in one batch.
        second = await open_one(1)

        async def held_unacked() -> bool:
            info = await js.consumer_info(settings.stream_name, consumer.name)
            return info.num_pending == 0 and info.num_ack_pending == 1
        await wait_until(held_unacked, what="the second event delivered and held")
        third = await open_one(2)
        await wait_until(lambda: applied(3), what="the held event applied with the next")
        assert handler.batches == [[first], [second, third]]

        async def all_acked() -> bool:
            info = await js.consumer_info(settings.stream_name, consumer.name)
            return info.num_ack_pending == 0 and info.num_redelivered == 0
        await wait_until(all_acked, what="every event acked once")


async def test_an_event_held_in_a_gather_past_ack_wait_is_applied_once(
        settings: Settings) -> None:
    """Sun 20 Dec 2026, a busy counter and an ops team that set CONSUMER_GATHER_MS above
    ack_wait: the second event is held for more while its ack wait passes, the server
    delivers it again into the same gather (5 s at most), and the third comes. Each
    event is given to the handler once (both copies passed the batch's tracking write: the
    second was applied twice), and every event is acked."""
    handler = Batches()
    await stream_made(settings)
    async with write_side(settings) as side, relay_running(settings, side), \
            intake_consumer(settings, "gathering_late", handler, TRACKING_DDL, batch=50,
                            ack_wait=1.0, gather_s=5.0, gather_below=3,
                            gather_window_s=120.0) as consumer, consumer_running(consumer):
        js = consumer.nc.jetstream()

        async def open_one(i: int) -> uuid.UUID:
            return await _opened(side, f"late-{i}")

        first = await open_one(0)
        await wait_until(lambda: _applied(handler, 1), what="the lone event applied at once")
        second = await open_one(1)

        async def delivered_again() -> bool:
            info = await js.consumer_info(settings.stream_name, consumer.name)
            return info.num_redelivered >= 1
        await wait_until(delivered_again, what="the held event delivered again, ack_wait past")
        third = await open_one(2)
        async def all_acked() -> bool:
            info = await js.consumer_info(settings.stream_name, consumer.name)
            return info.num_ack_pending == 0 and info.num_pending == 0
        await wait_until(all_acked, timeout=30, what="every event applied and acked")
        applied = [case for batch in handler.batches for case in batch]
        assert sorted(map(str, applied)) == sorted(map(str, [first, second, third]))


async def _applied(handler: Batches, n: int) -> bool:
    return handler.applied() >= n


async def _opened(side: Any, key: str) -> uuid.UUID:
    """A case opened at the counter, under the Idempotency-Key ``key``."""
    opened = await side.intake.open_case(c.OpenCase(
        center_id=CENTER, counter_id="w1", clerk_id="clerk-1",
        service_item="MI-MEDICAL-REIMBURSEMENT"), "clerk-1", key)
    return cast(uuid.UUID, opened.aggregate_id)

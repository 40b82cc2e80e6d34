"""A consumer stopped while events still arrive (a shutdown, the relay publishing the last
accepted writes) leaves nothing delivered and unacknowledged on its durable: the next leader
gets every such event at once. Two ways left some behind (CI, tests/faults/
test_graceful_stop.py under load: 2 on intake-cases after a clean exit). What the consumer
held at its stop it nakked, and JetStream counts a nakked message pending an ack until it is
delivered again: with nobody pulling, until the next leader (here, every stop). And the inbox
was taken off the client before the server was told: an event the server sent in that moment
was dropped unseen, and stayed delivered until the next leader's reset or ack_wait (a stop in
some 50 with an event published just before it)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import asyncpg
from nats.js.errors import NotFoundError

from shared.bus.consumer import TRACKING_DDL, Consumer
from shared.bus.jetstream import ensure_streams
from shared.contracts import Envelope
from shared.kernel.tasks import cancel_and_wait
from shared.settings import Settings
from tests.support import bus_connection, schema_pool, wait_until

#: Stops, each with an event published just before it: the server's delivery of the event and
#: the consumer's going race each time; every one must end with nothing left behind.
STOPS = 100


class Nothing:
    async def apply(self, conn: asyncpg.Connection, events: Sequence[Envelope]) -> None:
        return None


async def test_a_consumer_stopped_as_events_arrive_leaves_none_delivered_and_unacknowledged(
        settings: Settings) -> None:
    async with schema_pool(settings, "stopping", TRACKING_DDL) as pool, \
            bus_connection(settings, "stopping") as nc:
        js = nc.jetstream()
        await ensure_streams(js, settings)
        for i in range(STOPS):
            subject = f"{settings.subject_prefix}.stoptest.s{i}.p0"
            consumer = Consumer(settings=settings, nc=nc, pool=pool, name=f"stopping{i}",
                                handler=Nothing(), filter_subjects=[subject], batch=10,
                                ack_wait=600)
            running = asyncio.create_task(consumer.run())

            async def pulling(consumer: Consumer = consumer) -> bool:
                """The barrier: it leads, and its requests are open on the server."""
                try:
                    info = await js.consumer_info(settings.stream_name, consumer.name)
                except NotFoundError:  # not made yet
                    return False
                return consumer.leads and bool(info.num_waiting)
            await wait_until(pulling, what="the consumer pulling")
            await nc.publish(subject, b"{}")  # stored, then delivered as the consumer stops
            await consumer.drain()  # a shutdown: stop_runtime, then Background.stop
            await cancel_and_wait(running)
            await nc.flush()
            info = await js.consumer_info(settings.stream_name, consumer.name)
            assert info.num_ack_pending == 0, (
                f"stop {i}: {info.num_ack_pending} delivered and never handed back: it "
                "waits for ack_wait")

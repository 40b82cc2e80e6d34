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
from nats.js.api import ConsumerInfo
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


async def test_a_consumer_that_lost_its_lock_as_it_stops_leaves_the_durable_to_the_new_leader(
        settings: Settings) -> None:
    """The graceful stop's reset of the durable to its ack floor is the leader's to make: a
    consumer whose lock session ended as it stopped (a hard stop ending its sessions, a
    proxy's cut; a standby replica takes the lock within a second) made it all the same,
    under the new leader: every event that leader had in hand came to it again, one more
    delivery counted against each one's limit."""
    async with schema_pool(settings, "stopping_lost", TRACKING_DDL) as pool, \
            bus_connection(settings, "stopping_lost") as nc:
        js = nc.jetstream()
        await ensure_streams(js, settings)
        subject = f"{settings.subject_prefix}.stoptest.lost.p0"
        consumer = Consumer(settings=settings, nc=nc, pool=pool, name="stopping_lost",
                            handler=Nothing(), filter_subjects=[subject], batch=10,
                            ack_wait=600)
        resets: list[bool] = []
        reset = consumer._reset_to_ack_floor

        async def counted() -> ConsumerInfo | None:
            resets.append(consumer._stopping.is_set())
            return await reset()
        consumer._reset_to_ack_floor = counted  # type: ignore[method-assign]
        running = asyncio.create_task(consumer.run())

        async def leading() -> bool:  # the barrier: it leads and pulls
            return consumer.leads and bool(resets)
        await wait_until(leading, what="the consumer leading")
        backend = consumer._conn.get_server_pid()  # type: ignore[union-attr]
        await consumer.drain()  # the stop begins
        await pool.execute("SELECT pg_terminate_backend($1)", backend)  # its lock goes
        await asyncio.wait([running])
        assert isinstance(running.exception(), ConnectionError)  # LeadershipLost
        assert resets == [False], "the durable was reset by a consumer no longer leading"

"""A consumer that dies holding a fetched batch: its successor applies that batch first. A
delivery lost on the way (the NATS server it came through died): applied before the case's
later events.

Without recovery the batch would wait out ``ack_wait`` while the successor applied the case's
later events; the earlier event would then look like a duplicate and never be applied.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence

import asyncpg
import pytest
from nats.aio.msg import Msg

from shared.bus.consumer import TRACKING_DDL, Consumer
from shared.bus.consumer import consuming as consumer_module
from shared.bus.jetstream import ensure_streams
from shared.bus.pulling import Puller, delivery
from shared.contracts import Envelope
from shared.leadership import LeadershipLost
from shared.settings import Settings
from tests.intake.test_log_guarantees import open_and_hear, run_relay, write_side
from tests.support import (
    bus_connection,
    consumer_running,
    consumer_supervised,
    end_lock_session,
    schema_pool,
    wait_until,
)


class Recorder:
    def __init__(self) -> None:
        self.applied: list[str] = []
        self.by_case: list[tuple[object, str]] = []

    async def apply(self, conn: asyncpg.Connection, events: Sequence[Envelope]) -> None:
        self.applied.extend(e.type for e in events)
        self.by_case.extend((e.case_id, e.type) for e in events)


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


@contextlib.asynccontextmanager
async def two_replicas(settings: Settings, name: str, cases: int
                       ) -> AsyncIterator[tuple[asyncpg.Pool, list[Consumer], list[Recorder]]]:
    """``cases`` cases opened and heard on the stream, and two processes' consumer ``name``
    of intake's events (each its own NATS connection, one pool), not started."""
    async with write_side(settings) as side:
        await open_and_hear(side, cases)
        await run_relay(settings, side, 2 * cases)
    subjects = [f"{settings.subject_prefix}.intake.*.*"]
    recorders = [Recorder(), Recorder()]
    async with schema_pool(settings, name, TRACKING_DDL) as pool, \
            bus_connection(settings, "replica-0") as nc0, \
            bus_connection(settings, "replica-1") as nc1:
        yield pool, [Consumer(settings=settings, nc=nc, pool=pool, name=name, handler=r,
                              filter_subjects=subjects, batch=1)
                     for nc, r in zip((nc0, nc1), recorders, strict=True)], recorders


async def one_more_case_reaches(settings: Settings, recorder: Recorder, on_stream: int,
                                what: str) -> None:
    """A case opened and heard, published (``on_stream`` events then), and applied by the
    process of ``recorder`` (its only events)."""
    async with write_side(settings) as side:
        await open_and_hear(side, 1)
        await run_relay(settings, side, on_stream)

    async def applied() -> bool:
        return recorder.applied == ["CaseOpened", "RequestHeard"]
    await wait_until(applied, what=what)


async def test_a_second_process_with_the_same_consumer_waits_on_standby(
        settings: Settings) -> None:
    async with two_replicas(settings, "standby", 2) as (_, consumers, recorders):
        async with consumer_running(consumers[0]) as leader:
            async def led() -> bool:
                return len(recorders[0].applied) == 4
            await wait_until(led, what="the leader to apply everything")
            # Run as a service runs it: a takeover whose first JetStream call times out (a
            # loaded server) starts again, as in production, rather than ending the test's
            # task and leaving nobody to take over.
            async with consumer_supervised(consumers[1]):
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
                await one_more_case_reaches(settings, recorders[1], 12,
                                            "the standby to take over")
                assert not consumers[1].stats.standing_by


async def test_a_reader_too_slow_to_say_goodbye_leaves_no_pull_open_behind(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """A leader stopping waits at most 2 s for the server's last round trip; under load that
    ran out and the inbox stayed subscribed, its pull requests open on the server: the next
    events went to a reader that was gone, and its successor saw nothing until ack_wait."""
    subjects = [f"{settings.subject_prefix}.intake.*.*"]
    async with schema_pool(settings, "goodbye", TRACKING_DDL) as pool, \
            bus_connection(settings, "leaving") as leaving, \
            bus_connection(settings, "next") as nc:
        await ensure_streams(nc.jetstream(), settings)
        await Consumer(settings=settings, nc=nc, pool=pool, name="goodbye", handler=Recorder(),
                       filter_subjects=subjects, batch=1).ensure()
        # Requests that stay open long: what is left of a leader's when it stops.
        gone = Puller(leaving, settings.stream_name, "goodbye", 1, expires_s=60)
        await gone.start()

        async def no_answer(timeout: float = 0) -> None:
            await asyncio.Event().wait()
        monkeypatch.setattr(leaving, "flush", no_answer)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(gone.stop(), 0.2)

        successor = Puller(nc, settings.stream_name, "goodbye", 1)
        await successor.start()
        async with write_side(settings) as side:
            await open_and_hear(side, 1)
            await run_relay(settings, side, 2)
        taken: list[Msg] = []

        async def both() -> bool:
            taken.extend(await successor.take(timeout=0.2))
            return len(taken) == 2
        await wait_until(both, timeout=10, what="the successor to get both events")
        await successor.stop()


@pytest.mark.parametrize("lost_seq", [1, 3], ids=["the-first-delivery", "mid-stream"])
async def test_a_delivery_lost_on_the_way_is_applied_before_the_cases_later_events(
        settings: Settings, monkeypatch: pytest.MonkeyPatch, lost_seq: int) -> None:
    """The server delivered a message and the connection it went out on broke (the node died,
    CI's three-node cluster): the server counts it delivered, the consumer never saw it, and the
    next pull brings what follows. Applied then, a case's later event moved its tracking past
    the lost one, which came back after ack_wait as a "duplicate" and was never applied (its
    read model row missing for good). A gap in the deliveries' numbers now starts the consumer
    again from its ack floor, in stream order."""
    async with write_side(settings) as side:
        cases = await open_and_hear(side, 2)  # A opened, A heard, B opened, B heard
        await run_relay(settings, side, 4)
    dropped: list[int] = []

    class LosingOnTheWay(Puller):
        async def _on_msg(self, msg: Msg) -> None:
            if msg.reply and not dropped and delivery(msg).stream_seq == lost_seq:
                dropped.append(lost_seq)  # gone with the broken connection
                return
            await super()._on_msg(msg)

    monkeypatch.setattr(consumer_module, "Puller", LosingOnTheWay)
    subjects = [f"{settings.subject_prefix}.intake.*.*"]
    recorder = Recorder()
    async with schema_pool(settings, "lost", TRACKING_DDL) as pool, \
            bus_connection(settings, "lossy") as nc:
        consumer = Consumer(settings=settings, nc=nc, pool=pool, name="lost", handler=recorder,
                            filter_subjects=subjects, batch=1, ack_wait=1.0)
        async with consumer_running(consumer):
            async def settled() -> bool:  # every event acked: applied, or skipped as applied
                return bool(dropped) and await consumer.caught_up()
            await wait_until(settled, timeout=20, what="every event applied or skipped")
    assert recorder.by_case == [(cases[0], "CaseOpened"), (cases[0], "RequestHeard"),
                                (cases[1], "CaseOpened"), (cases[1], "RequestHeard")]


async def test_a_consumer_whose_lock_session_ended_gives_the_durable_to_the_standby(
        settings: Settings) -> None:
    """PostgreSQL ends the session holding the durable's lock (a restart, a proxy's cut): the
    lock is free, the standby takes it and drives the durable, and the old leader stops
    pulling rather than drive it beside the standby."""
    async with two_replicas(settings, "lockended", 1) as (pool, consumers, recorders):
        leader = asyncio.create_task(consumers[0].run())
        try:
            async def led() -> bool:
                return len(recorders[0].applied) == 2
            await wait_until(led, what="the leader to apply everything")
            key = consumers[0].lock_key
            async with consumer_supervised(consumers[1]):
                async def standing_by() -> bool:
                    return consumers[1].stats.standing_by
                await wait_until(standing_by, what="the second process to find the durable taken")
                assert await end_lock_session(pool, key) == 1

                async def took_over() -> bool:
                    return not consumers[1].stats.standing_by
                await wait_until(took_over, what="the standby to take the free lock")

                async def stopped() -> bool:
                    return leader.done()
                await wait_until(stopped, what="the old leader to stop without its lock")
                assert isinstance(leader.exception(), LeadershipLost)
                await one_more_case_reaches(settings, recorders[1], 4,
                                            "the new leader to apply the new case")
                assert len(recorders[0].applied) == 2
        finally:
            leader.cancel()
            await asyncio.gather(leader, return_exceptions=True)

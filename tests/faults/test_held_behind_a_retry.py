"""Events of a case that wait behind one being retried are applied after it, never dropped.

While an event fails and is retried with back-off, the later events of its case are handed
back to the stream (nak) each time they come: they wait, in order. JetStream counts each of
those hand-backs as a delivery; a durable with a delivery limit stops delivering a message at
the limit, silently (no dead letter, no error). The case's later events were then never
applied: what CI saw once as a read model 18 cases behind for good after a transient failure.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import asyncpg
import pytest
from nats.js.api import AckPolicy, ConsumerConfig

from shared.bus.consumer import TRACKING_DDL, Consumer
from shared.bus.jetstream import server_at_least
from shared.contracts import Envelope
from shared.settings import Settings
from tests.faults.test_consumer_recovery import Recorder
from tests.intake.test_log_guarantees import open_and_hear, run_relay, stream_made, write_side
from tests.support import (
    bus_connection,
    consumer_running,
    dead_letters,
    schema_pool,
    wait_until,
)


class Flaky:
    """Fails the first case's opening for ``failing_for`` seconds from its first try, then
    its next event once (the batch's try and the one-by-one try of one delivery)."""

    def __init__(self, case: uuid.UUID, failing_for: float) -> None:
        self.case = case
        self.failing_for = failing_for
        self.first_try: float | None = None
        self.heard_tries = 0
        self.applied: list[tuple[uuid.UUID | None, str]] = []

    async def apply(self, conn: asyncpg.Connection, events: Sequence[Envelope]) -> None:
        now = asyncio.get_running_loop().time()
        for e in events:
            if e.case_id != self.case:
                continue
            if e.type == "CaseOpened":
                self.first_try = self.first_try or now
                failing = now - self.first_try < self.failing_for
            else:
                self.heard_tries += 1
                failing = self.heard_tries <= 2
            if failing:
                raise RuntimeError(f"{e.type} not yet (a lock timeout, a restarting database)")
        self.applied.extend((e.case_id, e.type) for e in events)


async def test_events_waiting_behind_a_retried_one_are_applied_after_it(
        settings: Settings) -> None:
    async with write_side(settings) as side:
        cases = await open_and_hear(side, 3)  # CaseOpened, then RequestHeard, of each case
        await run_relay(settings, side, 6)
    # The first case's opening fails for a second: its RequestHeard is handed back every
    # 50 ms meanwhile, some twenty times.
    handler = Flaky(cases[0], failing_for=1.0)
    async with schema_pool(settings, "held", TRACKING_DDL) as pool, \
            bus_connection(settings, "held") as nc:
        consumer = Consumer(settings=settings, nc=nc, pool=pool, name="held", handler=handler,
                            filter_subjects=[f"{settings.subject_prefix}.intake.*.*"],
                            batch=10, max_deliver=5, backoff=(0.05, 0.15, 0.4, 0.6))
        async with consumer_running(consumer):
            async def all_applied() -> bool:
                return len(handler.applied) == 6
            await wait_until(all_applied, timeout=20, what="every event applied")
            first = [t for case, t in handler.applied if case == cases[0]]
            assert first == ["CaseOpened", "RequestHeard"], "in the case's order"
            # The opening was retried (within max_deliver), and so was the event that waited:
            # not dead-lettered for the hand-backs it was counted while it waited.
            assert consumer.stats.retried >= 2 and consumer.stats.dead_lettered == 0
            assert handler.heard_tries == 3
            assert await dead_letters(settings) == []


async def test_a_durable_made_with_a_delivery_limit_has_it_lifted_at_start(
        settings: Settings) -> None:
    """Durables made before: JetStream's limit of max_deliver + 2 deliveries goes at start."""
    await stream_made(settings)
    async with bus_connection(settings, "limit") as nc:
        js = nc.jetstream()
        subjects = [f"{settings.subject_prefix}.intake.*.*"]
        await js.add_consumer(settings.stream_name, ConsumerConfig(
            durable_name="limited", ack_policy=AckPolicy.EXPLICIT, max_deliver=7, ack_wait=30,
            max_waiting=64, filter_subjects=subjects, max_ack_pending=4000))
        consumer = Consumer(settings=settings, nc=nc, pool=None,  # type: ignore[arg-type]
                            name="limited", handler=Recorder(),
                            filter_subjects=subjects, batch=1000)
        await consumer.ensure()
        info = await js.consumer_info(settings.stream_name, "limited")
        assert info.config.max_deliver == -1


class NeverOpens:
    """Fails the first case's opening every time (a bug for that case), applies the rest."""

    def __init__(self, case: uuid.UUID) -> None:
        self.case = case
        self.applied: list[tuple[uuid.UUID | None, str]] = []

    async def apply(self, conn: asyncpg.Connection, events: Sequence[Envelope]) -> None:
        if any(e.case_id == self.case and e.type == "CaseOpened" for e in events):
            raise RuntimeError("CaseOpened of this case fails every time")
        self.applied.extend((e.case_id, e.type) for e in events)


async def test_a_case_waiting_behind_an_event_the_stream_no_longer_holds_goes_on(
        settings: Settings) -> None:
    """The stream's limits take the retried event (max_msgs lowered by an operator): it is
    never delivered again, so neither applied nor dead-lettered; its case's next event, which
    waited behind it, is applied rather than handed back for ever."""
    async with write_side(settings) as side:
        cases = await open_and_hear(side, 3)  # seq 1: the first case's CaseOpened
        await run_relay(settings, side, 6)
    handler = NeverOpens(cases[0])
    async with schema_pool(settings, "gone", TRACKING_DDL) as pool, \
            bus_connection(settings, "gone") as nc:
        consumer = Consumer(settings=settings, nc=nc, pool=pool, name="gone", handler=handler,
                            filter_subjects=[f"{settings.subject_prefix}.intake.*.*"],
                            batch=10, max_deliver=1000, backoff=(0.05, 0.1))
        async with consumer_running(consumer):
            async def the_rest_applied() -> bool:
                return len(handler.applied) == 4
            await wait_until(the_rest_applied, timeout=20, what="the other cases applied")
            blocked = await pool.fetchval(
                "SELECT blocked_seq FROM consumer_tracking WHERE consumer = 'gone' AND key = $1",
                cases[0])
            assert blocked == 1, "the first case waits behind its opening"
            js = nc.jetstream()
            config = (await js.stream_info(settings.stream_name)).config
            config.max_msgs = 5  # the oldest of the six goes: the opening being retried
            await js.update_stream(config)

            # Its tracking row, not the handler's list: the handler records an event before
            # the batch's transaction commits (read between the two under load: seq 0).
            async def heard_applied() -> bool:
                row = await pool.fetchrow(
                    "SELECT seq, blocked_seq FROM consumer_tracking"
                    " WHERE consumer = 'gone' AND key = $1", cases[0])
                return (row["seq"], row["blocked_seq"]) == (2, None)
            await wait_until(heard_applied, timeout=20,
                             what="the first case's RequestHeard applied and committed")
            assert (cases[0], "RequestHeard") in handler.applied
            assert consumer.stats.dead_lettered == 0


async def test_events_a_limited_durable_gave_up_on_are_applied_once_the_limit_is_lifted(
        settings: Settings) -> None:
    """A deployment from before: its durable (max_deliver 2) stopped delivering two events
    at the limit. The new release lifts the limit at start and has them again."""
    async with write_side(settings) as side:
        await open_and_hear(side, 1)
        await run_relay(settings, side, 2)
    subjects = [f"{settings.subject_prefix}.intake.*.*"]
    async with schema_pool(settings, "lifted", TRACKING_DDL) as pool, \
            bus_connection(settings, "lifted") as nc:
        js = nc.jetstream()
        if not server_at_least(js, (2, 14)):
            pytest.skip(f"nats-server {nc.connected_server_version} cannot reset a durable "
                        "to a sequence (2.14+): what it gave up on stays below its floor")
        await js.add_consumer(settings.stream_name, ConsumerConfig(
            durable_name="lifted", ack_policy=AckPolicy.EXPLICIT, max_deliver=2, ack_wait=30,
            max_waiting=64, filter_subjects=subjects, max_ack_pending=4000))
        sub = await js.pull_subscribe_bind("lifted", settings.stream_name)
        # Each delivered twice, naked each time: a fetch of two may bring one (the other's
        # redelivery not back yet), so count deliveries rather than fetches.
        delivered: dict[int, int] = {}
        while len(delivered) < 2 or min(delivered.values()) < 2:
            for msg in await sub.fetch(2, timeout=5):
                delivered[msg.metadata.sequence.stream] = msg.metadata.num_delivered
                await msg.nak()
        try:
            left = await sub.fetch(2, timeout=1)
        except TimeoutError:
            left = []
        assert left == [], "the server gave up on both"
        await sub.unsubscribe()
        handler = Recorder()
        consumer = Consumer(settings=settings, nc=nc, pool=pool, name="lifted",
                            handler=handler, filter_subjects=subjects, batch=10)
        async with consumer_running(consumer):
            async def both() -> bool:
                return len(handler.applied) == 2
            await wait_until(both, timeout=15, what="both events applied")

"""The log's guarantees: nothing lost or doubled between store and stream, and consumers
that apply each event once, in order, dead-lettering what they cannot apply."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from nats.aio.msg import Msg
from nats.errors import MsgAlreadyAckdError

from services.intake import commands as c
from services.intake.application import Intake, IntakeApplication
from shared.bus.consumer import TRACKING_DDL, Consumer, PermanentError
from shared.bus.jetstream import connect, ensure_streams, server_at_least
from shared.bus.pulling import ack_each
from shared.catalogue import load_catalogue
from shared.contracts import Envelope
from shared.eventstore.application import build_application
from shared.eventstore.group_commit import GroupCommitter
from shared.eventstore.outbox import Relay
from shared.leadership import Leadership, LeadershipLost
from shared.readmodels.migrations import run_migrations
from shared.readmodels.pool import create_pool
from shared.settings import Settings
from tests.support import (
    auth_env,
    bearer,
    dead_letters,
    end_lock_session,
    lock_free,
    stream_envelopes,
    stream_messages,
    wait_until,
)
from tools.devservers import free_port

CENTER = "SH-PD-HUAMU"


@dataclass
class WriteSide:
    app: IntakeApplication
    intake: Intake
    committer: GroupCommitter
    pool: asyncpg.Pool


@contextlib.asynccontextmanager
async def write_side(settings: Settings) -> AsyncIterator[WriteSide]:
    """Intake's store and use cases with no relay running: events stay in the outbox."""
    app = await asyncio.to_thread(build_application, IntakeApplication, settings, "intake")
    committer = GroupCommitter(app)
    committer.start()
    pool = await create_pool(settings, settings.schema_for("intake"))
    try:
        yield WriteSide(app, Intake(committer, load_catalogue()), committer, pool)
    finally:
        await committer.close()
        await pool.close()
        app.close()


async def open_and_hear(side: WriteSide, n: int) -> list[uuid.UUID]:
    ids = []
    for i in range(n):
        opened = await side.intake.open_case(c.OpenCase(
            center_id=CENTER, counter_id="w1", clerk_id="clerk-1",
            service_item="MI-MEDICAL-REIMBURSEMENT"), "clerk-1", f"open-{i:04d}-{uuid.uuid4().hex}")
        await side.intake.hear_request(opened.aggregate_id, c.HearRequest(words=f"第{i}位居民"),
                                       "clerk-1", f"hear-{uuid.uuid4().hex}")
        ids.append(opened.aggregate_id)
    return ids


@dataclass
class RunningRelay:
    """An intake relay running as a task (``relay_running``)."""

    relay: Relay
    task: asyncio.Task[None]

    async def until(self, check: Callable[[Relay], bool], what: str,
                    timeout: float = 15.0) -> None:
        """Wait until ``check(relay)``; a relay that died meanwhile fails with its own error."""
        async def alive_and_checked() -> bool:
            if self.task.done():
                self.task.result()  # the relay died: say why
            return check(self.relay)
        await wait_until(alive_and_checked, timeout=timeout, what=what)


@contextlib.asynccontextmanager
async def relay_running(settings: Settings, side: WriteSide, relay: Relay | None = None
                        ) -> AsyncIterator[RunningRelay]:
    """Intake's relay on ``side``'s store (``relay``, made and fitted by the caller, or a
    plain one), running until the block ends."""
    relay = relay or Relay(settings, "intake", side.app, side.pool)
    task = asyncio.create_task(relay.run())
    try:
        yield RunningRelay(relay, task)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def stream_made(settings: Settings) -> None:
    """The stream exists before a relay or a test publishes to it."""
    nc = await connect(settings, "test-setup")
    try:
        await ensure_streams(nc.jetstream(), settings)
    finally:
        await nc.close()


async def run_relay(settings: Settings, side: WriteSide, until_events: int) -> None:
    """Run the relay until it has published the whole log: its saved position reaches the
    log's head (acknowledged by the stream, so nothing more of it will be published), and the
    stream holds ``until_events`` events of it."""
    await stream_made(settings)
    async with relay_running(settings, side) as running:
        head = await side.pool.fetchval(
            f'SELECT max(notification_id) FROM "{running.relay.schema}".'
            f'"{running.relay.table}"')
        await running.until(lambda relay: relay.position >= head,
                            what=f"the relay to publish up to position {head}")
        assert len(await stream_messages(settings)) >= until_events


async def assert_each_applied_once(pool: asyncpg.Pool, events: int) -> None:
    """The test handler's effects: ``events`` of them, each applied once."""
    counts = [r["n"] for r in await pool.fetch("SELECT n FROM effects")]
    assert len(counts) == events and set(counts) == {1}


def assert_once_in_order(envelopes: Sequence[Envelope], expected: int) -> None:
    positions = [e.position for e in envelopes]
    assert positions == list(range(1, expected + 1)), "each stored event once, in log order"
    by_case: dict[uuid.UUID, list[int]] = {}
    for e in envelopes:
        by_case.setdefault(e.aggregate_id, []).append(e.aggregate_version)
    assert all(v == list(range(1, len(v) + 1)) for v in by_case.values())


async def test_stored_events_reach_the_stream_once_after_a_relay_crash(
        settings: Settings) -> None:
    async with write_side(settings) as side:
        await open_and_hear(side, 5)  # stored; the relay is "down": nothing published yet
        assert await stream_messages(settings) == []
        await run_relay(settings, side, 10)
        assert_once_in_order(await stream_envelopes(settings), 10)

        # The relay crashed after publishing but before saving its position.
        await side.pool.execute("UPDATE outbox_position SET position = 0")
        await open_and_hear(side, 2)
        await run_relay(settings, side, 14)
        assert_once_in_order(await stream_envelopes(settings), 14)

        # Even with its position lost entirely, the server drops re-publishes by Nats-Msg-Id
        # (each on its own: the headers of the atomic round it was stored in left out).
        await side.pool.execute("DELETE FROM outbox_position")
        nc = await connect(settings, "test")
        js = nc.jetstream()
        for m in (await stream_messages(settings))[:3]:
            ack = await js.publish(m.subject, m.data, headers={
                k: v for k, v in (m.headers or {}).items()
                if not k.startswith(("Nats-Batch-", "Nats-Expected-"))})
            assert ack.duplicate
        await nc.close()
        assert_once_in_order(await stream_envelopes(settings), 14)


async def test_an_idle_relay_saves_how_far_it_published(settings: Settings) -> None:
    """A busy relay saves its position at most every SAVE_EVERY_S; once idle, the saved
    position catches up with what it published, or a standby's count, ``sixstep ops status``
    and the relay-stall check would see published events as waiting for good."""
    await stream_made(settings)
    async with write_side(settings) as side, relay_running(settings, side) as running:
        relay = running.relay
        for _ in range(6):  # rounds closer together than SAVE_EVERY_S: saves are skipped
            await open_and_hear(side, 1)
            head = await side.pool.fetchval(
                f'SELECT max(notification_id) FROM "{relay.schema}"."{relay.table}"')
            await running.until(lambda r, head=head: r.position >= head,
                                what="the relay to publish the round")

        async def saved() -> bool:
            return await side.pool.fetchval(
                "SELECT position FROM outbox_position") == relay.position == head
        await wait_until(saved, timeout=5, what="the idle relay to save its position")


class HeldAcks:
    """The stream's acknowledgements to a relay, held back until the test lets them through
    or answers one with a refusal: what a slow round trip to NATS, or a stream that loses
    its leader, looks like to the relay. (Installed before ``run()``, which subscribes.)"""

    def __init__(self, relay: Relay) -> None:
        self.deliver = relay._on_ack
        self.held: dict[int, Msg] = {}
        self.passing = False
        relay._on_ack = self._on_ack  # type: ignore[method-assign]

    async def _on_ack(self, msg: Msg) -> None:
        if self.passing:
            await self.deliver(msg)
        else:
            self.held[int(msg.subject.rsplit(".", 1)[1])] = msg

    async def release(self, *positions: int) -> None:
        for position in positions:
            await self.deliver(self.held.pop(position))

    async def refuse(self, *positions: int) -> None:
        for position in positions:
            await self.deliver(dataclasses.replace(self.held.pop(position), data=orjson.dumps(
                {"error": {"code": 503, "description": "no leader"}})))


async def open_case(side: WriteSide) -> None:
    await side.intake.open_case(c.OpenCase(
        center_id=CENTER, counter_id="w1", clerk_id="clerk-1",
        service_item="MI-MEDICAL-REIMBURSEMENT"), "clerk-1", f"open-{uuid.uuid4().hex}")


@contextlib.asynccontextmanager
async def relay_holding_acks(settings: Settings, side: WriteSide, **kwargs: Any
                             ) -> AsyncIterator[tuple[Relay, HeldAcks, asyncio.Task[None]]]:
    """A relay publishing ``side``'s outbox, the stream's acks to it held (``HeldAcks``)."""
    await stream_made(settings)
    relay = Relay(settings, "intake", side.app, side.pool, **kwargs)
    acks = HeldAcks(relay)
    async with relay_running(settings, side, relay) as running:
        yield relay, acks, running.task


@dataclasses.dataclass
class Parking:
    """Watches the relay's wait for room to publish: ``parked`` is set when it has a round
    to publish while another is in flight; ``behind`` counts rounds it then published before
    the one in flight was settled."""

    parked: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    behind: int = 0


def parked_behind_a_round(relay: Relay) -> Parking:
    parking = Parking()
    room = relay._room

    async def _room() -> None:
        waiting = bool(relay._flight)
        if waiting:
            parking.parked.set()
        await room()
        if waiting and relay._flight:
            parking.behind += 1

    relay._room = _room  # type: ignore[method-assign]
    return parking


async def test_a_case_stored_while_the_last_round_awaits_its_acks_waits_for_them(
        settings: Settings) -> None:
    """Nothing is published behind a round not yet acknowledged: were the stream to refuse
    it (no leader) and take the next (a leader elected in between), the service's events
    would be stored out of order. The position moves only past what was acknowledged."""
    async with write_side(settings) as side:
        await open_and_hear(side, 1)  # positions 1 and 2: the relay's first round
        async with relay_holding_acks(settings, side) as (relay, acks, task):
            parking = parked_behind_a_round(relay)

            async def on_stream(n: int) -> bool:
                if task.done():
                    task.result()
                return len(await stream_messages(settings)) >= n
            await wait_until(lambda: on_stream(2), what="the first round on the stream")
            await open_case(side)  # position 3, while the first round's acks are held
            await asyncio.wait_for(parking.parked.wait(), 15)
            assert len(await stream_messages(settings)) == 2, \
                "published behind a round whose acknowledgements are still held"
            assert relay.position == 0, "nothing acknowledged yet: the position stays"
            acks.passing = True
            await acks.release(*sorted(acks.held))

            async def acknowledged() -> bool:
                return relay.position == 3
            await wait_until(acknowledged, what="the relay to move past what was acked")
            assert_once_in_order(await stream_envelopes(settings), 3)


async def test_a_refused_round_sends_the_relay_back_and_what_came_after_waits(
        settings: Settings) -> None:
    """The stream refuses a round (or its answer is lost) while a later case waits to be
    published: the relay goes back to the service's last event on the stream that follows
    the saved position without a gap (here the whole round: it was stored after all) and
    publishes what comes after it, each event counted published once, in order."""
    async with write_side(settings) as side:
        await open_and_hear(side, 1)  # positions 1 and 2: the relay's first round
        counted: list[int] = []
        async with relay_holding_acks(settings, side, on_published=counted.append) as (
                relay, acks, task):
            parking = parked_behind_a_round(relay)

            async def held(*positions: int) -> bool:
                if task.done():
                    task.result()
                return set(positions) <= set(acks.held)
            await wait_until(lambda: held(1, 2), what="the first round's acks")
            await open_case(side)  # position 3: waits behind the first round
            await asyncio.wait_for(parking.parked.wait(), 15)
            assert parking.behind == 0 and 3 not in acks.held, "published behind the first round"
            acks.passing = True
            await acks.refuse(1)  # the first round refused: the relay goes back
            await acks.release(2)

            async def published_again() -> bool:
                if task.done():
                    task.result()
                return relay.position == 3 and sum(counted) >= 3
            await wait_until(published_again, what="the relay to publish from 1 again")
            assert sum(counted) == 3, f"each event counted published once: {counted}"
            assert parking.behind == 0, "a round published behind one not yet acknowledged"
            assert_once_in_order(await stream_envelopes(settings), 3)


def _service_env(settings: Settings, port: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"DATABASE_URL": settings.database_url, "NATS_URL": settings.nats_url,
                "STREAM_NAME": settings.stream_name, "SUBJECT_PREFIX": settings.subject_prefix,
                "SCHEMA_PREFIX": settings.schema_prefix, "PARTITIONS": str(settings.partitions),
                "INTAKE_PORT": str(port), "LOG_LEVEL": "WARNING", **auth_env(settings)})
    return env


async def _start_service(settings: Settings, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-m", "services.intake.main"],
                            env=_service_env(settings, port), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)

    async def healthy() -> bool:
        try:
            async with httpx.AsyncClient() as client:
                return (await client.get(f"http://127.0.0.1:{port}/ready")).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        await wait_until(healthy, timeout=30, what="intake to be ready")
    except BaseException:  # not ready: the caller never gets it to stop, so stop it here
        proc.kill()
        proc.wait(timeout=20)
        raise
    return proc


async def test_kill_9_mid_load_loses_and_doubles_nothing(settings: Settings) -> None:
    port = free_port()
    proc = await _start_service(settings, port)
    accepted: list[dict] = []
    base = f"http://127.0.0.1:{port}"

    async def writer(client: httpx.AsyncClient, i: int, kill_after: int = 0) -> None:
        body = {"center_id": CENTER, "counter_id": "w2", "clerk_id": "clerk-2",
                "service_item": "SA-HARDSHIP-SUBSIDY"}
        with contextlib.suppress(httpx.HTTPError):
            r = await client.post(f"{base}/cases", json=body,
                                  headers={"Idempotency-Key": f"load-{i:06d}"})
            if r.status_code == 201:
                accepted.append(r.json())
                if len(accepted) == kill_after:
                    proc.send_signal(signal.SIGKILL)

    try:
        async with httpx.AsyncClient(timeout=5, headers=bearer(settings, center=CENTER)) as client:
            # Killed mid-load, at a known point: right after the 30th write was answered,
            # with the other 120 sent or waiting to be (no other task runs in between).
            first = [asyncio.create_task(writer(client, i, kill_after=30)) for i in range(150)]
            await asyncio.gather(*first)
            proc.wait()
            assert len(accepted) < 150, "the kill came mid-load: some writes were not answered"
            proc = await _start_service(settings, port)
            await asyncio.gather(*[writer(client, i) for i in range(150, 250)])
            # Retries of writes whose answer was lost in the crash are answered, not redone.
            await asyncio.gather(*[writer(client, i) for i in range(0, 150)])
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)

    accepted_ids = {a["id"] for a in accepted}
    assert len(accepted_ids) == 250

    async def all_published() -> bool:
        return len(await stream_messages(settings)) >= 250

    if not await all_published():  # the stop's relay did not finish: a restarted one does
        proc = await _start_service(settings, port)
        try:
            await wait_until(all_published, what="every accepted write on the stream")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=20)
    envelopes = await stream_envelopes(settings)
    assert_once_in_order(envelopes, len(envelopes))
    assert {str(e.aggregate_id) for e in envelopes} == accepted_ids


class CountingHandler:
    """Counts how often each event's effect is applied; fails on the resident's word 'poison'."""

    def __init__(self) -> None:
        self.fail_always = "poison"

    async def apply(self, conn: asyncpg.Connection, events: Sequence[Envelope]) -> None:
        for e in events:
            if e.payload.get("words") == self.fail_always:
                raise RuntimeError("cannot apply this one")
            if e.payload.get("words") == "permanent":
                raise PermanentError("this event can never apply")
            await conn.execute(
                "INSERT INTO effects (event_id, n) VALUES ($1, 1) "
                "ON CONFLICT (event_id) DO UPDATE SET n = effects.n + 1", e.event_id)


@contextlib.asynccontextmanager
async def consumer_of(settings: Settings, crash_before_first_ack: bool = False,
                      handler: Any = None, batch: int = 50
                      ) -> AsyncIterator[tuple[Consumer, asyncpg.Pool]]:
    schema = f"{settings.schema_prefix}consumer"
    conn = await asyncpg.connect(settings.database_url)
    await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    await conn.close()
    pool = await create_pool(settings, schema)
    await run_migrations(pool, schema, [*TRACKING_DDL, "CREATE TABLE IF NOT EXISTS effects "
                                        "(event_id uuid PRIMARY KEY, n int NOT NULL)"])
    nc = await connect(settings, "test-consumer")
    await ensure_streams(nc.jetstream(), settings)

    class CrashingConsumer(Consumer):
        async def _ack(self, msgs):  # type: ignore[no-untyped-def]
            if crash_before_first_ack:  # the first delivery's ack never arrives
                for m in [m for m in msgs if m.metadata.num_delivered == 1]:
                    await m.nak()
                msgs = [m for m in msgs if m.metadata.num_delivered > 1]
            await super()._ack(msgs)

    consumer = CrashingConsumer(settings=settings, nc=nc, pool=pool, name="counting",
                                handler=handler or CountingHandler(),
                                filter_subjects=[f"{settings.subject_prefix}.intake.*.*"],
                                batch=batch, max_deliver=3, backoff=(0.05, 0.1, 0.2))
    task = asyncio.create_task(consumer.run())
    try:
        yield consumer, pool
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await nc.close()
        await pool.close()


async def test_a_redelivered_event_is_not_applied_twice(settings: Settings) -> None:
    async with write_side(settings) as side:
        await open_and_hear(side, 10)
        await run_relay(settings, side, 20)
    async with consumer_of(settings, crash_before_first_ack=True) as (consumer, pool):
        async def all_seen_twice() -> bool:
            return consumer.stats.duplicates >= 20
        await wait_until(all_seen_twice, what="every event redelivered")
        await assert_each_applied_once(pool, 20)


async def test_a_batch_applied_is_acked_in_one_write_and_nothing_comes_back(
        settings: Settings) -> None:
    async with write_side(settings) as side:
        await open_and_hear(side, 12)
        await run_relay(settings, side, 24)
    async with consumer_of(settings, batch=50) as (consumer, pool):
        async def all_applied() -> bool:
            return consumer.stats.applied >= 24
        await wait_until(all_applied, what="every event applied")
        js = consumer.nc.jetstream()

        async def all_acked() -> bool:
            info = await js.consumer_info(settings.stream_name, consumer.name)
            return info.num_ack_pending == 0 and info.ack_floor.stream_seq == 24
        await wait_until(all_acked, what="the ack floor at the last event")
        info = await js.consumer_info(settings.stream_name, consumer.name)
        assert info.num_redelivered == 0 and consumer.stats.duplicates == 0
        await assert_each_applied_once(pool, 24)


class KeyedHandler(CountingHandler):
    """Reads its own table by key each batch, as the figures do: it names it in ``analyzed``."""

    analyzed = ("effects",)


async def test_the_tracking_table_and_the_handlers_own_get_statistics_beside_the_batches(
        settings: Settings) -> None:
    async with write_side(settings) as side:
        await open_and_hear(side, 5)
        await run_relay(settings, side, 10)
    async with consumer_of(settings, batch=4, handler=KeyedHandler()) as (consumer, pool):
        async def analyzed() -> bool:
            counts = await pool.fetch(
                "SELECT relname, analyze_count FROM pg_stat_user_tables WHERE relname ="
                " ANY($1::text[]) AND schemaname = current_schema()",
                ["consumer_tracking", "effects"])
            return consumer.stats.applied >= 10 and len(counts) == 2 and all(
                r["analyze_count"] for r in counts)
        await wait_until(analyzed, what="consumer_tracking and effects analyzed")
        await assert_each_applied_once(pool, 10)


async def test_acking_a_message_twice_is_refused_before_anything_is_sent(
        settings: Settings) -> None:
    async with write_side(settings) as side:
        await open_and_hear(side, 2)
        await run_relay(settings, side, 4)
    nc = await connect(settings, "test")
    try:
        js = nc.jetstream()
        sub = await js.pull_subscribe(f"{settings.subject_prefix}.intake.*.*", "twice",
                                      stream=settings.stream_name)
        msgs = await sub.fetch(4, timeout=5)
        while len(msgs) < 4:  # a fetch hands over what is there at once: maybe not all four
            msgs += await sub.fetch(4 - len(msgs), timeout=5)
        first, second, *rest = msgs
        await ack_each(nc, [first])
        with pytest.raises(MsgAlreadyAckdError):
            await ack_each(nc, [second, first])
        assert not second._ackd  # refused as a whole: nothing of it was sent
        await ack_each(nc, [second, *rest])
        await nc.flush()  # the server has the acks; its consumer applies them on its own queue

        async def all_acked() -> bool:
            info = await js.consumer_info(settings.stream_name, "twice")
            return info.num_ack_pending == 0 and info.ack_floor.stream_seq == 4
        await wait_until(all_acked, timeout=10, what="the four acks applied by the server")
    finally:
        await nc.close()


async def _publish_raw(settings: Settings, subject: str, data: bytes) -> None:
    nc = await connect(settings, "test")
    await nc.jetstream().publish(subject, data)
    await nc.close()


async def test_a_poison_event_is_dead_lettered_and_the_rest_keep_flowing(
        settings: Settings) -> None:
    async with write_side(settings) as side:
        good = await open_and_hear(side, 2)
        poisoned = await side.intake.open_case(c.OpenCase(
            center_id=CENTER, counter_id="w1", clerk_id="clerk-1",
            service_item="SA-HARDSHIP-SUBSIDY"), "clerk-1", "open-poison-0001")
        await side.intake.hear_request(poisoned.aggregate_id, c.HearRequest(words="poison"),
                                       "clerk-1", "hear-poison-0001")
        # Later events of the poisoned case wait behind it, then flow once it is dead-lettered.
        await side.intake.note_concerns(poisoned.aggregate_id, c.NoteConcerns(emotion="upset"),
                                        "clerk-1", "concerns-poison-0001")
        later = await open_and_hear(side, 2)
        await run_relay(settings, side, 11)
    await _publish_raw(settings, f"{settings.subject_prefix}.intake.CaseOpened.p0",
                       b"{not json")
    async with consumer_of(settings) as (consumer, pool):
        async def settled() -> bool:
            return consumer.stats.applied >= 10 and consumer.stats.dead_lettered >= 2
        await wait_until(settled, what="the good events applied and two dead letters")
        applied = {r["event_id"] for r in await pool.fetch("SELECT event_id FROM effects")}
    letters = await dead_letters(settings)
    reasons = sorted((m.headers or {})["Sixstep-Reason"] for m in letters)
    assert len(letters) == 2
    assert reasons[0].startswith("RuntimeError: cannot apply this one")
    assert reasons[1].startswith("undecodable event")
    poison = orjson.loads(next(m.data for m in letters
                               if m.headers["Sixstep-Reason"].startswith("RuntimeError")))
    assert poison["payload"]["words"] == "poison"
    assert int(next(m for m in letters if m.headers["Sixstep-Reason"].startswith(
        "RuntimeError")).headers["Sixstep-Delivered"]) == 3, "bounded retries first"
    assert len(applied) == 10, "2+2 good cases x2 events, the poisoned case's other 2 events"
    assert len(good) == 2 and len(later) == 2


@pytest.mark.parametrize("words", ["permanent"])
async def test_a_permanent_failure_is_dead_lettered_at_once(settings: Settings,
                                                             words: str) -> None:
    async with write_side(settings) as side:
        case = await side.intake.open_case(c.OpenCase(
            center_id=CENTER, counter_id="w1", clerk_id="clerk-1",
            service_item="SA-HARDSHIP-SUBSIDY"), "clerk-1", "open-perm-00001")
        await side.intake.hear_request(case.aggregate_id, c.HearRequest(words=words),
                                       "clerk-1", "hear-perm-00001")
        await run_relay(settings, side, 2)
    async with consumer_of(settings) as (consumer, _):
        async def done() -> bool:
            return consumer.stats.dead_lettered == 1 and consumer.stats.applied == 1
        await wait_until(done, what="one applied, one dead letter")
    letters = await dead_letters(settings)
    assert letters[0].headers["Sixstep-Delivered"] == "1"


class PreparingHandler(CountingHandler):
    """Prepares each batch's event ids (no database) and, applying, checks that what it was
    handed is its own batch's; each apply waits on PostgreSQL a moment, as a real one does,
    so that the next batch is read ahead and prepared meanwhile."""

    def __init__(self) -> None:
        super().__init__()
        self.prepared_used = 0

    def prepare(self, events: Sequence[Envelope]) -> list[uuid.UUID]:
        return [e.event_id for e in events]

    async def apply(self, conn: asyncpg.Connection, events: Sequence[Envelope],
                    prepared: object | None = None) -> None:
        if prepared is not None:
            assert prepared == [e.event_id for e in events], "another batch's preparation"
            self.prepared_used += 1
        await conn.execute("SELECT pg_sleep(0.05)")
        await super().apply(conn, events)


async def test_a_batch_prepared_while_the_one_before_is_applied_is_applied_once_as_itself(
        settings: Settings) -> None:
    async with write_side(settings) as side:
        await open_and_hear(side, 15)
        await run_relay(settings, side, 30)
    handler = PreparingHandler()
    async with consumer_of(settings, handler=handler, batch=5) as (consumer, pool):
        async def all_applied() -> bool:
            return consumer.stats.applied >= 30
        await wait_until(all_applied, what="every event applied")
        await assert_each_applied_once(pool, 30)
    assert handler.prepared_used >= 1, "no batch was prepared while the one before waited"


class WaitingHandler(CountingHandler):
    """Waits as follow-up's rules wait for their commands, and has the consumer's tracking
    written meanwhile (``meanwhile``), when ``runs_tracking``: it then looks, in its own
    transaction, that every case of the batch is tracked, and only then applies (failing on
    the poison, so that a batch tracked and then failed must leave no tracking behind)."""

    waits = True

    def __init__(self, runs_tracking: bool) -> None:
        super().__init__()
        self.runs_tracking = runs_tracking
        self.tracked_meanwhile = 0

    async def apply(self, conn: asyncpg.Connection, events: Sequence[Envelope],
                    meanwhile: Callable[[], Any] | None = None) -> None:
        if self.runs_tracking and len(events) > 1:  # a batch, not the one-by-one retry
            assert meanwhile is not None, "the consumer handed no tracking to run meanwhile"
            await meanwhile()
            keys = list({e.partition_key for e in events})
            tracked = await conn.fetchval(
                "SELECT count(*) FROM consumer_tracking WHERE consumer = 'counting'"
                " AND key = ANY($1::uuid[])", keys)
            assert tracked == len(keys), "the tracking ran meanwhile, in this transaction"
            self.tracked_meanwhile += 1
        await super().apply(conn, events)


@pytest.mark.parametrize("runs_tracking", [True, False])
async def test_a_batch_tracked_while_it_waits_commits_its_tracking_with_its_effects_or_not_at_all(
        settings: Settings, runs_tracking: bool) -> None:
    async with write_side(settings) as side:
        await open_and_hear(side, 4)
        poisoned = await side.intake.open_case(c.OpenCase(
            center_id=CENTER, counter_id="w1", clerk_id="clerk-1",
            service_item="SA-HARDSHIP-SUBSIDY"), "clerk-1", "open-wait-poison1")
        await side.intake.hear_request(poisoned.aggregate_id, c.HearRequest(words="poison"),
                                       "clerk-1", "hear-wait-poison1")
        await open_and_hear(side, 4)
        await run_relay(settings, side, 18)
    handler = WaitingHandler(runs_tracking)
    async with consumer_of(settings, handler=handler, batch=50) as (consumer, pool):
        async def settled() -> bool:
            return consumer.stats.applied >= 17 and consumer.stats.dead_lettered >= 1
        await wait_until(settled, what="the good events applied and the poison dead-lettered")
        # The batch that was tracked and then failed on the poison left nothing tracked:
        # every event of it was applied (once) by the retry, none skipped as seen.
        await assert_each_applied_once(pool, 17)
        tracked = await pool.fetchval(
            "SELECT count(*) FROM consumer_tracking WHERE consumer = 'counting'")
    assert tracked == 9, "every case tracked, whoever ran the tracking"
    assert consumer.stats.duplicates == 0
    assert (handler.tracked_meanwhile >= 1) is runs_tracking


def refusing(nc: Any, msg_id: str, *, answer: bool) -> None:
    """``nc`` publishes everything but ``msg_id``, once: what a stream electing a leader in
    the middle of a round does to one event. The stream answers it with a refusal when
    ``answer`` (as a server does once it knows there is no leader), else never (as a server
    does that still forwarded it to the leader that went away)."""
    publish = nc.publish
    refused: list[str] = []

    async def maybe(subject: str, payload: bytes = b"", reply: str = "",
                    headers: dict[str, str] | None = None) -> None:
        if (headers or {}).get("Nats-Msg-Id") == msg_id and not refused:
            refused.append(msg_id)
            if answer:
                await publish(reply, orjson.dumps({"error": {"code": 503,
                                                             "description": "no leader"}}))
            return
        await publish(subject, payload, reply=reply, headers=headers)

    nc.publish = maybe


@contextlib.contextmanager
def relay_connections(monkeypatch: pytest.MonkeyPatch, change: Callable[[Any], None]
                      ) -> Iterator[None]:
    """The relays started meanwhile publish on connections ``change`` was applied to."""
    from shared.eventstore import outbox

    async def changed(*args: Any, **kwargs: Any) -> Any:
        nc = await connect(*args, **kwargs)
        change(nc)
        return nc
    with monkeypatch.context() as patched:
        patched.setattr(outbox, "connect", changed)
        yield

async def stopped_after_a_refused_3(settings: Settings, side: WriteSide,
                                    monkeypatch: pytest.MonkeyPatch) -> Relay:
    """Positions 1-4 stored as one round; the stream refuses 3 and stores 4, and the relay
    stops with position 2 saved (the stream holds 1, 2, 4). The relay, stopped."""
    await open_and_hear(side, 2)
    with relay_connections(monkeypatch, lambda nc: refusing(nc, "intake:3", answer=True)):
        async with relay_running(settings, side) as running:
            await running.until(lambda r: r.last_error is not None and r.position == 2,
                                what="the round to fail at position 3")
    return running.relay



async def test_a_round_the_stream_lost_an_event_of_is_stored_whole_and_in_order_or_not_at_all(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The stream never receives position 3 of a round (its leader went away with it) and
    takes 4 (a new leader elected meanwhile): with the round one atomic batch (a replicated
    stream's default), nothing of it is stored; the relay publishes it again, and the stream
    holds 1-4 once, in order. (Event by event, 4 stood before 3 on the stream once 3's ack
    timed out and it went again.)"""
    atomic = settings.model_copy(update={"relay_atomic_rounds": True})
    nc = await connect(settings, "test-setup")
    try:
        await ensure_streams(nc.jetstream(), settings)
        if not server_at_least(nc.jetstream(), (2, 12)):
            pytest.skip(f"nats-server {nc.connected_server_version} has no atomic batches "
                        "(2.12+; NATS_URL names an older server)")
    finally:
        await nc.close()
    async with write_side(settings) as side:
        await open_and_hear(side, 2)  # positions 1-4: one round
        with relay_connections(monkeypatch, lambda nc: refusing(nc, "intake:3",
                                                                answer=False)):
            await run_relay(atomic, side, 4)
        assert_once_in_order(await stream_envelopes(settings), 4)


async def test_an_event_the_stream_refused_before_a_later_one_is_not_skipped_at_restart(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Event by event (one node's default), the stream refuses position 3 (no leader) and
    stores 4 (a leader elected in between), and the relay stops before publishing 3 again:
    the next relay starts past the saved position only over what is on the stream without a
    gap, so 3 is published, not lost. Both relays say the stream holds an event out of
    store order."""
    await stream_made(settings)
    async with write_side(settings) as side:
        await open_and_hear(side, 2)  # positions 1-4: one round
        with relay_connections(monkeypatch, lambda nc: refusing(nc, "intake:3", answer=True)):
            async with relay_running(settings, side) as running:
                first = running.relay
                await running.until(lambda r: r.last_error is not None and r.position == 2,
                                    what="the round to fail at position 3")
        positions = [e.position for e in await stream_envelopes(settings)]
        assert positions == [1, 2, 4] and first.out_of_order == 1 and not first.atomic
        await run_relay(settings, side, 4)
        positions = [e.position for e in await stream_envelopes(settings)]
        assert sorted(positions) == [1, 2, 3, 4], f"each stored event once: {positions}"


async def oldest_taken_by_limits(settings: Settings, before_seq: int) -> None:
    """The stream drops its messages before ``before_seq``, as its limits do (max_age, or
    max_msgs with discard old): the oldest go first."""
    nc = await connect(settings, "test-setup")
    try:
        js = nc.jetstream()
        await js.purge_stream(settings.stream_name, seq=before_seq)
        assert (await js.stream_info(settings.stream_name)).state.first_seq >= before_seq
    finally:
        await nc.close()


async def test_an_event_missing_after_a_saved_position_the_limits_took_is_not_skipped(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The stream refuses 3 and stores 4, and the relay stops with its position 2 saved (the
    stream's sequence 2). While it is down, the stream's limits take its oldest messages,
    1 and 2: the next relay cannot read the saved position's message, but every message
    after it is still there, so it still finds 3 missing and publishes it. (It started
    unchecked, from 4: 3 was never sent.)"""
    await stream_made(settings)
    async with write_side(settings) as side:
        await stopped_after_a_refused_3(settings, side, monkeypatch)
        assert [e.position for e in await stream_envelopes(settings)] == [1, 2, 4]
        await oldest_taken_by_limits(settings, before_seq=3)
        await run_relay(settings, side, 2)
        positions = [e.position for e in await stream_envelopes(settings)]
        assert positions == [4, 3], f"3 published, nothing else again: {positions}"


async def duplicate_window_passed(settings: Settings) -> None:
    """Wait until the stream's duplicate window has passed for what is on it: a probe
    published again is stored again (then the probes are removed)."""
    nc = await connect(settings, "test-setup")
    try:
        js = nc.jetstream()
        probe = f"{settings.subject_prefix}.probe"

        async def stored_again() -> bool:
            ack = await js.publish(probe, b"", headers={"Nats-Msg-Id": "probe"})
            return not ack.duplicate
        assert await stored_again()
        await wait_until(stored_again, what="the duplicate window to pass")
        await js.purge_stream(settings.stream_name, subject=probe)
    finally:
        await nc.close()


async def test_events_the_limits_took_after_the_saved_position_are_not_published_again(
        settings: Settings) -> None:
    """The relay published 1-4 and was killed before saving past 2. While it is down, the
    stream's limits take 1-3, and the duplicate window passes: the next relay finds 4 the
    first event still held after the saved position, with as many messages gone after it as
    events before it (3), and goes on after 4. Sent again, 3 would stand after 4 and be
    applied again by every consumer."""
    settings = settings.model_copy(update={"stream_duplicate_window_s": 1})
    async with write_side(settings) as side:
        await open_and_hear(side, 2)
        await run_relay(settings, side, 4)
        relay = Relay(settings, "intake", side.app, side.pool)
        await side.pool.execute(
            f'UPDATE "{relay.schema}".outbox_position SET position = 2, stream_seq = 2')
        await duplicate_window_passed(settings)
        await oldest_taken_by_limits(settings, before_seq=4)
        await open_and_hear(side, 1)  # 5-6
        await run_relay(settings, side, 3)
        positions = [e.position for e in await stream_envelopes(settings)]
        assert positions == [4, 5, 6], f"nothing published again: {positions}"


async def stream_rolled_back_to(settings: Settings, keep: int) -> None:
    """The stream as a server that lost its last writes left it (a machine that crashed
    before its file store synced them), or as restored from a backup older than the relay's
    saved position: only its first ``keep`` messages, at the same sequences."""
    nc = await connect(settings, "test-setup")
    try:
        js = nc.jetstream()
        kept = [await js.get_msg(settings.stream_name, seq) for seq in range(1, keep + 1)]
        await js.delete_stream(settings.stream_name)
        await ensure_streams(js, settings)
        for msg in kept:
            assert msg.subject is not None
            ack = await js.publish(msg.subject, msg.data or b"", headers=msg.headers)
            assert ack.seq == msg.seq
    finally:
        await nc.close()


async def test_events_a_stream_lost_after_the_saved_position_are_published_again(
        settings: Settings) -> None:
    """The relay published 1-4 and saved 4 (the stream's sequence 4); the stream then lost
    3-4. The next relay finds the service's last event on the stream (2) before its saved
    position, and the saved sequence no longer its message: it publishes 3-4 again. (It
    went on after its saved 4, and 3-4 were never on the stream again.)"""
    async with write_side(settings) as side:
        await open_and_hear(side, 2)
        await run_relay(settings, side, 4)
        await stream_rolled_back_to(settings, keep=2)
        await open_and_hear(side, 1)  # 5-6
        await run_relay(settings, side, 6)
        assert_once_in_order(await stream_envelopes(settings), 6)


async def test_a_stream_whose_limits_took_every_event_gets_only_the_new_ones(
        settings: Settings) -> None:
    """The relay published 1-4 and saved 4; the stream's limits then took all of it. The
    stream's sequences go on past the saved one (its message aged out, not lost): the next
    relay publishes 5-6 only, not 1-4 again (out of the duplicate window, stored again)."""
    settings = settings.model_copy(update={"stream_duplicate_window_s": 1})
    async with write_side(settings) as side:
        await open_and_hear(side, 2)
        await run_relay(settings, side, 4)
        await duplicate_window_passed(settings)
        await oldest_taken_by_limits(settings, before_seq=5)
        await open_and_hear(side, 1)  # 5-6
        await run_relay(settings, side, 2)
        assert [e.position for e in await stream_envelopes(settings)] == [5, 6]


async def test_the_events_after_a_missing_one_are_not_published_again_out_of_the_window(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The stream refuses 3 and stores 4, and the relay stops before publishing 3 again. The
    next relay starts after the duplicate window has passed: it publishes 3, and not 4,
    which the stream holds (sent again, it was stored a second time, and applied twice by
    every consumer, which tracks the stream's sequences)."""
    settings = settings.model_copy(update={"stream_duplicate_window_s": 1})
    await stream_made(settings)
    async with write_side(settings) as side:
        await stopped_after_a_refused_3(settings, side, monkeypatch)
        await duplicate_window_passed(settings)
        await open_and_hear(side, 1)  # 5-6
        await run_relay(settings, side, 6)
        positions = [e.position for e in await stream_envelopes(settings)]
        assert positions == [1, 2, 4, 3, 5, 6], f"each stored event once: {positions}"


class LeadingWithoutTheLock(Leadership):
    """A replica that leads at once, on a connection of its own, without the lock: the old
    leader that has not noticed yet that its lock's session is gone."""

    async def __aenter__(self) -> Leadership:
        self._conn, self.leading = await self.pool.acquire(), True
        return self


async def test_two_relays_publishing_at_once_store_each_event_once_and_neither_stops(
        settings: Settings) -> None:
    """The relay lock handed over while the old leader still publishes (its connection to
    the store gone, not yet noticed): two relays publish the same events. The stream answers
    one of each pair as a duplicate of the other relay's message, the store's own event:
    both go on, and the stream holds each event once, in order."""
    await stream_made(settings)
    async with write_side(settings) as side:
        second = Relay(settings, "intake", side.app, side.pool)
        second.leadership = LeadingWithoutTheLock(side.pool, "unused", what="relay")
        async with relay_running(settings, side) as one:
            await one.until(lambda r: r.nc is not None, what="the first relay to lead")
            async with relay_running(settings, side, second) as two:
                await two.until(lambda r: r.nc is not None,
                                what="the second relay to publish too")
                await open_and_hear(side, 10)  # 1-20
                for running in (one, two):
                    await running.until(lambda r: r.position >= 20,
                                        what="both relays to reach position 20")
                assert one.relay.last_error is None and two.relay.last_error is None
    assert_once_in_order(await stream_envelopes(settings), 20)


async def test_more_events_missing_than_the_limits_took_go_out_again(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The stream refuses 3 and stores 4; the relay stops, its position saved as 1 (killed
    before saving 2). The limits then take 1-2: one message went after the saved one, and two
    events (2 and 3) are not there before 4. One of them never reached the stream, which one
    cannot be told: both go out again (2 dropped as a duplicate within the window), and 3 is
    not lost."""
    await stream_made(settings)
    async with write_side(settings) as side:
        relay = await stopped_after_a_refused_3(settings, side, monkeypatch)
        await side.pool.execute(
            f'UPDATE "{relay.schema}".outbox_position SET position = 1, stream_seq = 1')
        await oldest_taken_by_limits(settings, before_seq=3)
        await run_relay(settings, side, 2)
        positions = [e.position for e in await stream_envelopes(settings)]
        assert positions == [4, 3], f"3 published: {positions}"


async def test_a_relay_whose_lock_session_ended_stops_and_the_next_one_publishes(
        settings: Settings) -> None:
    """PostgreSQL ends the session holding the relay's lock (a restart, a proxy's idle cut):
    the old leader stops at once (its LISTEN and its lock were on that session) rather than
    publish beside the replica that takes the free lock and publishes. It stops as every
    singleton loop does (``LeadershipLost``, ``leader.lost`` in the log): the relay holds
    its lock through ``shared.leadership`` like the consumers and the schedulers (until
    review50 it had a lock of its own, and ended with a bare ``ConnectionError``)."""
    await stream_made(settings)
    async with write_side(settings) as side:
        first = Relay(settings, "intake", side.app, side.pool)
        one = RunningRelay(first, asyncio.create_task(first.run()))
        try:
            await one.until(lambda r: r.leading, what="the first relay to lead")
            key = f"sixstep-relay:{first.schema}"
            assert await end_lock_session(side.pool, key) == 1

            async def free() -> bool:
                return await lock_free(side.pool, key)
            await wait_until(free, what="the lock gone with its session")
            async with relay_running(settings, side) as two:
                await two.until(lambda r: r.leading, what="the next relay to take the lock")

                async def stopped() -> bool:
                    return one.task.done()
                await wait_until(stopped, what="the old leader to stop")
                assert not first.leading
                assert isinstance(one.task.exception(), LeadershipLost)
                await open_and_hear(side, 2)
                await two.until(lambda r: r.position >= 4, what="the new leader to publish")
        finally:
            one.task.cancel()
            await asyncio.gather(one.task, return_exceptions=True)
    assert_once_in_order(await stream_envelopes(settings), 4)

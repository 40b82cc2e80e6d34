"""Ops delete the stream and make it again (a disaster recovery): the consumers notice.

A consumer's tracking rows hold stream sequences. The stream made anew numbers its messages
from 1 again and the relays publish every stored event onto it anew, each at a sequence of
its own; compared with the old rows, a case's new event at a sequence below its row looked
applied and was skipped, silently: the read model stopped moving and nothing said so. Now
the consumer finds the stream's creation time is not the one its rows were written against
and applies nothing until its read model is rebuilt; a stream whose limits took its oldest
events is still its stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import orjson
import pytest
from nats.aio.client import Client as NATS
from nats.js.api import StreamConfig

import services.intake.commands as c
from services.intake.main import create_app
from services.intake.projections import READ_MODEL
from shared.analytics.rebuild import Rebuild, RebuildError
from shared.bus.consumer import APPLIED_SEQ, REFUSED_KEY, TRACKING_DDL, Consumer
from shared.bus.deadletters import REPLAY_DDL, replay_dead_letters
from shared.bus.jetstream import dead_letter_subject
from shared.bus.stream_identity import forget_stream, stream_seen
from shared.eventstore import outbox
from shared.settings import Settings
from tests.analytics.test_rebuild import a_visit, post, read
from tests.cli.in_process import invoke
from tests.faults.harness import service_env
from tests.faults.test_consumer_recovery import Recorder
from tests.intake.test_log_guarantees import (
    RunningRelay,
    WriteSide,
    open_and_hear,
    relay_running,
    run_relay,
    stream_made,
    write_side,
)
from tests.support import (
    bus_connection,
    consumer_running,
    running,
    schema_pool,
    stored_heads,
    stream_envelopes,
    stream_messages,
    wait_until,
)


async def hear_again(side: WriteSide, case: uuid.UUID) -> None:
    await side.intake.hear_request(case, c.HearRequest(words="又补充了一句"), "clerk-1",
                                   f"hear-{uuid.uuid4().hex}")


def recording(settings: Settings, nc: NATS, pool: asyncpg.Pool, name: str,
              recorder: Recorder) -> Consumer:
    """A consumer of intake's events named ``name`` that records what it applies."""
    return Consumer(settings=settings, nc=nc, pool=pool, name=name, handler=recorder,
                    filter_subjects=[f"{settings.subject_prefix}.intake.*.*"], batch=10)


async def four_applied(consumer: Consumer, recorder: Recorder) -> None:
    """Run ``consumer`` until it has applied two cases' opening and hearing, and committed
    them (the handler records an event before its transaction commits)."""
    async with consumer_running(consumer):
        async def all_four() -> bool:
            return len(recorder.applied) == 4 and consumer.stats.applied == 4
        await wait_until(all_four, what="the four events applied")


@contextlib.asynccontextmanager
async def two_cases_on_the_stream(settings: Settings, name: str) -> AsyncIterator[
        tuple[WriteSide, asyncpg.Pool, NATS, list[uuid.UUID]]]:
    """Intake's store with two cases opened and heard, all four events on the stream; a
    schema for the consumer ``name`` and a bus connection."""
    async with write_side(settings) as side, \
            schema_pool(settings, name, TRACKING_DDL) as pool, \
            bus_connection(settings, name) as nc:
        cases = await open_and_hear(side, 2)
        await run_relay(settings, side, 4)
        yield side, pool, nc, cases


async def made_anew(settings: Settings, nc: NATS, side: WriteSide, case: uuid.UUID) -> None:
    """Disaster recovery: `nats stream rm`, `sixstep ops apply`; the counter goes on (a new
    RequestHeard of ``case``), and the relay puts every stored event on the new stream."""
    await nc.jetstream().delete_stream(settings.stream_name)
    await stream_made(settings)
    await hear_again(side, case)
    await run_relay(settings, side, 5)  # every stored event again, at sequences 1-5


async def forgotten_and_applied_again(settings: Settings, nc: NATS, pool: asyncpg.Pool,
                                      name: str, recorder: Recorder) -> None:
    """`sixstep ops forget-stream <name>` (a handler keyed by the upstream event id, a
    command writer, may go on so): the consumer applies the new stream from its first
    event."""
    seen = await stream_seen(nc.jetstream(), settings.stream_name)
    async with pool.acquire() as conn:
        await forget_stream(conn, name, seen, applied_seq_sql=APPLIED_SEQ)

    async def all_again() -> bool:
        return len(recorder.applied) == 9
    await wait_until(all_again, what="the new stream applied from its first event")
    assert recorder.applied[4:] == [*["CaseOpened", "RequestHeard"] * 2, "RequestHeard"]


@contextlib.asynccontextmanager
async def others_filled_the_new_stream_first(settings: Settings) -> AsyncIterator[
        tuple[WriteSide, RunningRelay]]:
    """Intake's relay running, its two cases published (sequences 1-4); the stream deleted
    and made again, the other services' relays first to fill it (sequences 1-6), and a new
    event stored (the relay puts it at sequence 7: above its last, 4, in seeming order)."""
    await stream_made(settings)
    async with write_side(settings) as side, bus_connection(settings, "ops") as nc:
        cases = await open_and_hear(side, 2)
        async with relay_running(settings, side) as running:
            await running.until(lambda relay: relay.position >= 4, what="four events published")
            js = nc.jetstream()
            await js.delete_stream(settings.stream_name)
            await stream_made(settings)
            for i in range(6):
                await js.publish(f"{settings.subject_prefix}.feedback.Other.p0", b"{}",
                                 headers={"Nats-Msg-Id": f"other:{i}"})
            await hear_again(side, cases[0])
            yield side, running


async def whole_store_on_the_new_stream(settings: Settings) -> None:
    async def whole_store() -> bool:
        on_stream = await stream_messages(
            settings, subject=f"{settings.subject_prefix}.intake.>")
        return sorted(orjson.loads(m.data)["position"] for m in on_stream) == [1, 2, 3, 4, 5]
    await wait_until(whole_store, what="every stored event on the new stream")


async def test_a_consumer_applies_nothing_on_a_stream_made_anew_and_says_why(
        settings: Settings) -> None:
    await stream_made(settings)
    async with bus_connection(settings, "other-services") as nc:
        # The other services' events came first on the old stream: intake's stood after them.
        for i in range(3):
            await nc.jetstream().publish(f"{settings.subject_prefix}.feedback.Other.p0", b"{}",
                                         headers={"Nats-Msg-Id": f"other:{i}"})
    recorder = Recorder()
    async with write_side(settings) as side, \
            schema_pool(settings, "anew", TRACKING_DDL) as pool, \
            bus_connection(settings, "anew") as nc:
        cases = await open_and_hear(side, 2)  # at sequences 4-7 of the old stream
        await run_relay(settings, side, 7)

        def consumer() -> Consumer:
            return recording(settings, nc, pool, "anew", recorder)

        await four_applied(consumer(), recorder)

        await made_anew(settings, nc, side, cases[0])

        again = consumer()
        async with consumer_running(again):
            async def applied_or_refused() -> bool:
                return len(recorder.applied) > 4 or again.stats.stream_refused is not None
            # Before: the new RequestHeard (sequence 5) was below its case's row (5 on the
            # old stream), taken for applied and skipped: neither happened, ever.
            await wait_until(applied_or_refused, timeout=10,
                             what="the new event applied, or the consumer saying why not")
            assert again.stats.stream_refused is not None
            assert again.stats.stream_refused.startswith("recreated"), again.stats
            # The refusal comes before anything is fetched: nothing skipped, nothing twice.
            assert recorder.applied == ["CaseOpened", "RequestHeard"] * 2
            info = await nc.jetstream().consumer_info(settings.stream_name, "anew")
            assert (info.config.metadata or {}).get(REFUSED_KEY, "").startswith("recreated")

            await forgotten_and_applied_again(settings, nc, pool, "anew", recorder)
            assert again.stats.stream_refused is None


async def test_a_stream_whose_limits_took_its_oldest_events_is_still_its_stream(
        settings: Settings) -> None:
    recorder = Recorder()
    async with two_cases_on_the_stream(settings, "aged") as (side, pool, nc, cases):
        def consumer() -> Consumer:
            return recording(settings, nc, pool, "aged", recorder)

        await four_applied(consumer(), recorder)

        # The stream keeps its last three messages only: the oldest go as new ones come.
        js = nc.jetstream()
        config: StreamConfig = (await js.stream_info(settings.stream_name)).config
        config.max_msgs = 3
        await js.update_stream(config)
        await hear_again(side, cases[0])
        await hear_again(side, cases[1])
        await run_relay(settings, side, 3)
        state = (await js.stream_info(settings.stream_name)).state
        assert state.first_seq == 4 and state.last_seq == 6

        again = consumer()
        async with consumer_running(again):
            async def all_six() -> bool:
                return len(recorder.applied) == 6
            await wait_until(all_six, what="the two new events applied")
            assert again.stats.stream_refused is None
        assert recorder.applied[4:] == ["RequestHeard", "RequestHeard"]


async def test_after_the_stream_is_made_anew_a_rebuild_brings_the_view_back_as_a_fresh_one(
        settings: Settings) -> None:
    """The runbook end to end: services stopped, the stream deleted and made again, services
    started; the relay publishes intake's whole store again, the view's consumer refuses the
    new stream and /ready says what to run; `sixstep rebuild intake` puts it right, and the
    consumer goes on by itself."""
    async with running(create_app(settings)) as client:
        visits = [await a_visit(client, resolve=False) for _ in range(3)]
        for case_id, position in visits:
            assert (await read(client, case_id, position))["stage"] == "guided"

    async with bus_connection(settings, "ops") as nc:
        await nc.jetstream().delete_stream(settings.stream_name)
    await stream_made(settings)

    # READY_MAX_LAG 1: the refusing consumer's lag (the whole new stream) must not take the
    # service out of its load balancer; its writes go on.
    async with running(create_app(settings.model_copy(update={"ready_max_lag": 1}))) as client:
        resolved = await post(client, f"/cases/{visits[0][0]}/resolve", {
            "outcome": "resolved", "explanation": "已办结", "emotion_defused": True})
        newcomer, position = await a_visit(client)

        # The relay: every stored event on the new stream, once, in store order.
        head = (await stored_heads(settings))["intake"]
        on_stream = await stream_envelopes(settings, f"{settings.subject_prefix}.intake.>")
        assert [e.position for e in on_stream] == list(range(1, head + 1))

        async def refused() -> bool:
            ready = (await client.get("/ready")).json()
            return any(r.startswith("consumer intake-cases: applies nothing")
                       for r in ready["checks"]["degraded"])
        await wait_until(refused, what="/ready saying the view's consumer refuses the stream")
        async def lag_measured() -> bool:
            lag = (await client.get("/ready")).json()["checks"]["consumer_lag"]
            return lag.get("intake-cases", 0) > 1
        await wait_until(lag_measured, what="the probe measuring the refusing consumer's lag")
        answer = await client.get("/ready")
        assert answer.status_code == 200, answer.text
        ready = answer.json()
        assert "run `sixstep rebuild intake`" in " ".join(ready["checks"]["degraded"])
        metrics = (await client.get("/metrics")).text
        assert ('sixstep_consumer_stream_refused{consumer="intake-cases",service="intake"} 1.0'
                in metrics)
        status = await asyncio.to_thread(invoke, ["ops", "status"], env=service_env(settings))
        assert "consumer intake-cases applies nothing" in status.output, status.output
        forgot = await asyncio.to_thread(invoke, ["ops", "forget-stream", "intake-cases"],
                                         env=service_env(settings))
        assert forgot.exit_code != 0 and "sixstep rebuild intake" in forgot.output
        stale = await client.get(f"/cases/{visits[0][0]}")
        assert stale.json()["stage"] == "guided", "nothing applied on the new stream"

        async with Rebuild(settings, READ_MODEL) as rb:  # `sixstep rebuild intake`
            await rb.prepare()
            await rb.catch_up()
            await rb.switch()

        async def caught_up() -> bool:
            r = await client.get(f"/cases/{newcomer}")
            return r.status_code == 200 and not (await refused())
        await wait_until(caught_up, what="the consumer going on after the rebuild")
        assert (await read(client, visits[0][0], resolved["position"]))["stage"] == "resolved"
        assert (await read(client, newcomer, position))["stage"] == "resolved"
        # Later writes are applied once, from the rebuilt tracking.
        latest, at = await a_visit(client, resolve=False)
        timeline = (await read(client, latest, at))["timeline"]
        assert [t["version"] for t in timeline] == list(range(1, len(timeline) + 1))

        async with Rebuild(settings, READ_MODEL) as rb:
            await rb.prepare(fresh=True)
            await rb.catch_up()
            diff = await rb.diff()
            assert diff.same and diff.lagging_keys == 0, diff
            await rb.discard()


@pytest.mark.parametrize("start_checks", [None, 2], ids=["shipped", "store-longer-than-it"])
async def test_a_relay_publishing_while_the_stream_is_made_anew_puts_the_whole_store_on_it(
        settings: Settings, monkeypatch: pytest.MonkeyPatch, start_checks: int | None) -> None:
    """Ops skip the runbook's first step and leave the services running. The relay's next
    event landed on the new stream and the relay went on after it: the new stream never got
    the store's earlier events, and a rebuild from it lost them. Now the relay sees the
    stream is new (an acknowledged sequence below the last, another creation time) and
    publishes every event of the store onto it.

    ``store-longer-than-it``: a city's store holds millions of events; the start reads the
    stream past the saved position for at most CHECK_AT_START_MAX of them (here 2, for
    100,000) and trusts the stream's last event beyond that. On the new stream the start went
    from position 0 and found the one event the relay had put there before it noticed, far
    more than that past 0: it trusted it, went on after it, and every event of the store
    before it stayed off the new stream. The new stream holds no more of the service than
    what was published since it was made, so that much is read, whatever the store's
    length."""
    if start_checks is not None:
        monkeypatch.setattr(outbox, "CHECK_AT_START_MAX", start_checks)
    await stream_made(settings)
    async with write_side(settings) as side, bus_connection(settings, "ops") as nc:
        cases = await open_and_hear(side, 2)
        async with relay_running(settings, side) as running:
            await running.until(lambda relay: relay.position >= 4, what="four events published")
            await nc.jetstream().delete_stream(settings.stream_name)
            await stream_made(settings)
            await hear_again(side, cases[0])  # at sequence 1 of the new stream

            async def whole_store() -> bool:
                on_stream = await stream_envelopes(settings, published=0)
                return sorted(e.position for e in on_stream) == [1, 2, 3, 4, 5]
            await wait_until(whole_store, what="every stored event on the new stream")
            await running.until(lambda relay: relay.position == 5, what="the relay at 5")
        positions = [e.position for e in await stream_envelopes(settings, published=0)]
        assert sorted(positions) == [1, 2, 3, 4, 5], "each stored event once"
        # The event published before the relay saw the new stream stands first: said so.
        assert running.relay.out_of_order >= 1


async def test_a_rebuild_begun_on_the_old_stream_does_not_go_on_on_the_new_one(
        settings: Settings) -> None:
    async with running(create_app(settings)) as client:
        case_id, position = await a_visit(client)
        await read(client, case_id, position)
        async with Rebuild(settings, READ_MODEL) as rb:
            await rb.prepare()
            await rb.catch_up()  # interrupted before the switch
    async with bus_connection(settings, "ops") as nc:
        await nc.jetstream().delete_stream(settings.stream_name)
    await stream_made(settings)
    async with Rebuild(settings, READ_MODEL) as rb:
        with pytest.raises(RebuildError, match="begun on another stream"):
            await rb.prepare()
        await rb.prepare(fresh=True)
        assert not rb.resumed


async def test_a_partitioned_worker_goes_on_after_the_rebuild_of_its_view(
        settings: Settings) -> None:
    """A worker owning partitions (``CONSUMER_PARTITIONS``) tracks under a durable of its own
    (``intake-cases-p0_1_2_3``). After the stream is made anew it refuses it, as the view's
    own consumer does, and `sixstep rebuild intake` hands it the rebuilt tracking rows and
    the new stream too: before, the switch replaced only ``intake-cases``' rows and the
    worker refused the new stream for ever."""
    split = settings.model_copy(update={"consumer_partitions": "0-3"})
    worker = "intake-cases-p0_1_2_3"
    assert settings.partitions == 4, "the worker owns every partition"

    async def stage(client: httpx.AsyncClient, case_id: str) -> str | None:
        r = await client.get(f"/cases/{case_id}")  # no ?after=: progress is per durable
        return r.json()["stage"] if r.status_code == 200 else None

    async with running(create_app(split)) as client:
        old, _ = await a_visit(client, resolve=False)

        async def guided() -> bool:
            return await stage(client, old) == "guided"
        await wait_until(guided, what="the worker applying the first visit")

    async with bus_connection(settings, "ops") as nc:
        await nc.jetstream().delete_stream(settings.stream_name)
    await stream_made(settings)

    async with running(create_app(split)) as client:
        newcomer, _ = await a_visit(client)

        async def refused() -> bool:
            ready = (await client.get("/ready")).json()
            return any(r.startswith(f"consumer {worker}: applies nothing")
                       for r in ready["checks"]["degraded"])
        await wait_until(refused, what="the partitioned worker refusing the new stream")
        assert await stage(client, newcomer) is None, "nothing applied on the new stream"

        async with Rebuild(settings, READ_MODEL) as rb:  # `sixstep rebuild intake`
            await rb.prepare()
            await rb.catch_up()
            await rb.switch()

        async def going_on() -> bool:
            return await stage(client, newcomer) == "resolved" and not await refused()
        await wait_until(going_on, what="the partitioned worker going on after the rebuild")
        latest, _ = await a_visit(client)

        async def latest_resolved() -> bool:
            return await stage(client, latest) == "resolved"
        await wait_until(latest_resolved, what="a later visit applied by the worker")
        timeline = (await client.get(f"/cases/{latest}")).json()["timeline"]
        assert [t["version"] for t in timeline] == list(range(1, len(timeline) + 1))


async def test_a_consumer_left_running_while_the_stream_is_made_anew_refuses_it_too(
        settings: Settings) -> None:
    """Ops skip the runbook's first step: the consumer runs on while the stream is deleted
    and made again. Its durable went with the old stream, and it waited for ever on it,
    applying nothing and saying nothing; now, idle, it looks at the stream's creation time,
    finds a new stream and refuses it as a consumer starting on it does."""
    await stream_made(settings)
    recorder = Recorder()
    async with two_cases_on_the_stream(settings, "left") as (side, pool, nc, cases):
        consumer = recording(settings, nc, pool, "left", recorder)
        async with consumer_running(consumer):
            async def all_four() -> bool:
                return len(recorder.applied) == 4 and consumer.stats.applied == 4
            await wait_until(all_four, what="the four events applied")

            await made_anew(settings, nc, side, cases[0])

            async def refused() -> bool:
                return consumer.stats.stream_refused is not None
            await wait_until(refused, what="the running consumer refusing the new stream")
            assert consumer.stats.stream_refused.startswith("recreated"), consumer.stats
            assert recorder.applied == ["CaseOpened", "RequestHeard"] * 2

            await forgotten_and_applied_again(settings, nc, pool, "left", recorder)


async def test_a_quiet_relay_finds_the_stream_made_anew_though_others_filled_it_first(
        settings: Settings) -> None:
    """The services left running: the other services' relays put their stores on the new
    stream first, past this quiet relay's last sequence, so its next event is acknowledged
    above it, in seeming order. The relay went on after it and the new stream never got
    the rest of its store; now it looks at the stream's creation time now and then."""
    async with others_filled_the_new_stream_first(settings):
        await whole_store_on_the_new_stream(settings)


async def test_a_relay_stopped_before_it_noticed_the_stream_made_anew_still_fills_it(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The services left running: the relay's next event lands on the new stream above its
    last sequence (the other services' relays filled it first), it saves that position, and
    it stops (a restart, a lost connection) before its look at the stream's creation time.
    The relay started after it took the saved position for the new stream's and went on
    after it: the store's earlier events never reached the new stream. The position is now
    saved with the creation time of the stream it was published onto as far as the relay
    knew, and the start finds the stream made anew."""
    monkeypatch.setattr(outbox, "STREAM_LOOK_S", 3600.0)  # stops before its look, always
    async with others_filled_the_new_stream_first(settings) as (side, running):
        async def saved_on_the_new_stream() -> bool:
            return await side.pool.fetchval(
                "SELECT position FROM outbox_position WHERE stream_seq = 7") == 5
        await wait_until(saved_on_the_new_stream, what="position 5 saved at sequence 7")
        running.task.cancel()  # stopped
        with contextlib.suppress(asyncio.CancelledError):
            await running.task
        async with relay_running(settings, side):  # started again
            await whole_store_on_the_new_stream(settings)


async def test_a_stream_made_anew_during_a_rebuild_stops_its_switch(settings: Settings) -> None:
    """`sixstep rebuild intake` is under way when ops delete the stream and make it again
    (the services left running: the relay puts the store on the new stream). The switch
    caught up from the new stream's sequences against the staging schema's tracking rows of
    the old one, and put that in place of the live view. Now it stops and says why."""
    async with running(create_app(settings)) as client:
        case_id, position = await a_visit(client, resolve=False)
        assert (await read(client, case_id, position))["stage"] == "guided"
    async with Rebuild(settings, READ_MODEL) as rb:
        await rb.prepare()
        await rb.catch_up()
        async with bus_connection(settings, "ops") as nc:
            await nc.jetstream().delete_stream(settings.stream_name)
        await stream_made(settings)
        async with running(create_app(settings)) as client:
            await a_visit(client)

            async def whole_store() -> bool:
                head = (await stored_heads(settings))["intake"]
                on_stream = await stream_envelopes(settings, f"{settings.subject_prefix}.intake.>")
                return sorted(e.position for e in on_stream) == list(range(1, head + 1))
            await wait_until(whole_store, what="intake's store on the new stream")
            with pytest.raises(RebuildError, match="begun on another stream"):
                await rb.switch()
            live = await client.get(f"/cases/{case_id}")
            assert live.json()["stage"] == "guided", "the live view kept"


async def dead_lettered(settings: Settings, nc: NATS, name: str, seq: int) -> None:
    """The stream's message ``seq`` failed for good in ``name``: a dead letter as the
    consumer writes one (``Consumer._dead_letter``; without its Nats-Msg-Id, whose
    duplicate window is not what this is about)."""
    js = nc.jetstream()
    msg = await js.get_msg(settings.stream_name, seq)
    await js.publish(dead_letter_subject(settings, name), msg.data, headers={
        "Sixstep-Consumer": name, "Sixstep-Reason": "failed for good",
        "Sixstep-Subject": msg.subject or "", "Sixstep-Stream-Seq": str(seq),
        "Sixstep-Delivered": "5"})


async def test_a_dead_letter_of_the_stream_made_anew_is_applied_though_an_old_one_had_its_seq(
        settings: Settings) -> None:
    """A command writer replayed a dead letter of the old stream (its sequence 3); the stream
    is made anew and `sixstep ops forget-stream` lets the writer go on. The new stream's
    event at sequence 3 fails for good too, and its letter is replayed: it was taken for the
    old one (the replays are keyed by the stream's sequence), reported as already applied,
    deleted, and never applied. Forgetting the stream forgets those replays too."""
    recorder = Recorder()
    await stream_made(settings)
    async with two_cases_on_the_stream(settings, "letters") as (side, pool, nc, cases):
        await pool.execute(REPLAY_DDL[0])
        await four_applied(recording(settings, nc, pool, "letters", recorder), recorder)
        await dead_lettered(settings, nc, "letters", 3)
        report = await replay_dead_letters(nc, pool, settings, "letters", Recorder())
        assert len(report.replayed) == 1, report

        await made_anew(settings, nc, side, cases[0])
        seen = await stream_seen(nc.jetstream(), settings.stream_name)
        async with pool.acquire() as conn:
            await forget_stream(conn, "letters", seen, applied_seq_sql=APPLIED_SEQ)
        await dead_lettered(settings, nc, "letters", 3)
        again = Recorder()
        report = await replay_dead_letters(nc, pool, settings, "letters", again)
        assert len(report.replayed) == 1 and not report.already_applied, report
        assert again.applied == ["CaseOpened"]  # the new stream's third: the second case's


async def test_the_rebuild_onto_a_stream_made_anew_forgets_the_old_streams_replays(
        settings: Settings) -> None:
    """The view's consumer had a dead letter of the old stream replayed (its sequence 3).
    A rebuild on the same stream keeps that record; the rebuild that brings the view onto a
    stream made anew forgets it with the rest of the old stream's bookkeeping, so that a
    letter of the new stream at sequence 3 is not taken for it; a retired split's durable's
    too (``_first_replay`` matches any durable of the consumer)."""
    replays = f'"{settings.schema_for("intake")}".consumer_replays'
    async with running(create_app(settings)) as client:
        case_id, position = await a_visit(client, resolve=False)
        await read(client, case_id, position)
    conn = await asyncpg.connect(settings.database_url)
    try:
        # And one of a split retired since (two replicas once, one now): a replay looks for
        # any durable's of the consumer, so the old stream's must go with the rest.
        await conn.execute(f"INSERT INTO {replays} (consumer, stream_seq, dlq_seq)"
                           " VALUES ('intake-cases', 3, 1), ('intake-cases-p0', 5, 2)")

        async def rebuilt() -> int:
            async with Rebuild(settings, READ_MODEL) as rb:
                await rb.prepare(fresh=True)
                await rb.catch_up()
                await rb.switch()
            return await conn.fetchval(f"SELECT count(*) FROM {replays}")

        assert await rebuilt() == 2, "the same stream: its replays stand"
        async with bus_connection(settings, "ops") as nc:
            await nc.jetstream().delete_stream(settings.stream_name)
        await stream_made(settings)
        async with running(create_app(settings)) as client:
            async def whole_store() -> bool:
                head = (await stored_heads(settings))["intake"]
                on_stream = await stream_envelopes(settings, f"{settings.subject_prefix}.intake.>")
                return sorted(e.position for e in on_stream) == list(range(1, head + 1))
            await wait_until(whole_store, what="intake's store on the new stream")
            assert await rebuilt() == 0, "the old stream's replays forgotten"
    finally:
        await conn.close()

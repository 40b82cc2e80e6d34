"""Each live consumer's events/s, beside raw fetch + ack of the same backlog.

    .venv/bin/python benchmarks/consumers.py [--events 100000] [--only followup-rules ...]

On servers of its own, in one run:

  * a backlog of realistic events on the stream: the synthetic log of
    ``benchmarks/synthetic.py`` (eight centers at their real daily rate from Monday
    2025-03-03 until ``--events`` are reached, every visit with what follows it, every
    payload through its contract), in time order, as the relays would have published it
    (with tracing on: each message's ``traceparent``, a tenth of them sampled).
  * every consumer the three services run, as ``services/*/main.py`` wires it: the service's
    own ``create_app`` runs its lifespan with ``roles=api`` (store, pool, bus, group commit and
    the consumers built, nothing started; the garbage collector settled as ``serve()`` settles
    it), then each consumer in ``runtime.consumers`` drains
    its backlog alone through the real ``Consumer`` and handler (decode, batch transaction,
    tracking, acks, and the group-commit writes of the handlers that append events). Rate =
    the events it received (its durable's pending count at the start) / the time to apply them;
    beside it the CPU an event of this process, of PostgreSQL and of nats-server meanwhile (a
    consumer waiting on PostgreSQL shows its cost there, not in its own CPU).
  * baselines in the same run: decoding alone (Envelope + upcast, in memory); raw nats-py
    pull fetch + ack of each consumer's backlog (same filter subjects, nothing decoded); and
    for the consumers that append events, their service's group commit of the same command
    (512 concurrent callers, as ``pipeline.py`` measures it).

Feedback's clock is set to the backlog's first day, so it asks a survey for every resolution
(a resolution older than its survey's answer window gets none); follow-up's to the backlog's
last moment, since its rules refuse a moment ahead of their clock (OCCURRED_AT_MAX_FUTURE_S).
The outbox relays do not run: what the handlers append stays in the store. Every consumer
starts on empty tables, as a new deployment or a new read model catching up on a backlog: its
statements are prepared before PostgreSQL has statistics of the tables they read.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fastapi import FastAPI
from nats.aio.client import Client as NATS
from nats.js.api import AckPolicy, ConsumerConfig

from benchmarks.common import (
    SAMPLER_ARG,
    bench_settings,
    like_main,
    machine,
    server_cpu_seconds,
    servers,
    target,
)
from benchmarks.synthetic import (
    CENTERS,
    ITEMS,
    PER_DAY,
    TZ,
    Publisher,
    in_time_order,
    visit_times,
)
from services.feedback import main as feedback_main
from services.feedback.application import Feedback, ResolvedCase
from services.followup import main as followup_main
from services.followup.application import FollowUps, Plan
from services.intake import main as intake_main
from services.intake.application import Intake, Verdict
from shared.bus.consumer import Consumer
from shared.bus.jetstream import connect, ensure_streams
from shared.contracts import REGISTRY, Envelope
from shared.contracts.followup import Reason
from shared.http.app import settle_garbage_collector
from shared.kernel.clock import ManualClock
from shared.runtime.lifecycle import Runtime
from shared.settings import Settings

START = datetime(2025, 3, 3, tzinfo=TZ)
#: The consumers that write commands, and what their service's group commit is measured with.
APPENDING = {"followup-rules": "followup", "feedback-intake": "feedback",
             "intake-verdicts": "intake"}
GROUP_COMMIT_COMMAND = {"followup": "schedule()", "feedback": "request_survey()",
                        "intake": "hear_unsolved()"}


# -- baselines ---------------------------------------------------------------------------------

def decode_rate(bodies: list[bytes]) -> float:
    start = time.perf_counter()
    for body in bodies:
        REGISTRY.current(Envelope.model_validate_json(body))
    return len(bodies) / (time.perf_counter() - start)


async def raw_fetch(nc: NATS, settings: Settings, subjects: list[str], batch: int
                    ) -> tuple[int, float, float, float]:
    """Pull fetch + ack of everything on ``subjects``, nothing decoded: (messages, per s,
    this process's and nats-server's CPU seconds per message)."""
    js = nc.jetstream()
    name = f"raw-{uuid.uuid4().hex[:8]}"
    await js.add_consumer(settings.stream_name, ConsumerConfig(
        durable_name=name, ack_policy=AckPolicy.EXPLICIT, filter_subjects=subjects,
        max_ack_pending=max(batch * 4, 1000)))
    sub = await js.pull_subscribe_bind(name, settings.stream_name)
    total = (await js.consumer_info(settings.stream_name, name)).num_pending
    got = 0
    start, cpu, (_, nats) = time.perf_counter(), time.process_time(), server_cpu_seconds()
    while got < total:
        msgs = await sub.fetch(batch, timeout=5)
        for m in msgs:
            await m.ack()
        got += len(msgs)
    rate = got / (time.perf_counter() - start)
    cpu = (time.process_time() - cpu) / max(got, 1)
    nats = (server_cpu_seconds()[1] - nats) / max(got, 1)
    await sub.unsubscribe()
    await js.delete_consumer(settings.stream_name, name)
    return got, rate, cpu, nats


async def concurrently(n: int, call: Callable[[int], Any], concurrency: int = 512) -> float:
    """``call(i)`` for i < n from ``concurrency`` callers at once: calls per second."""
    queue = iter(range(n))

    async def caller() -> None:
        for i in queue:
            await call(i)

    start = time.perf_counter()
    await asyncio.gather(*[caller() for _ in range(concurrency)])
    return n / (time.perf_counter() - start)


async def followup_group_commit(followups: FollowUps, n: int) -> float:
    """What the rules append: a post-resolution check, one new FollowUp per command."""
    due = START + timedelta(days=7, hours=9)
    return await concurrently(n, lambda i: followups.schedule(Plan(
        follow_up_id=uuid.uuid4(), center_id=CENTERS[i % 8], case_id=uuid.uuid4(),
        reason=Reason.POST_RESOLUTION_CHECK, resident_id=uuid.uuid4(), due_at=due,
        assigned_clerk="clerk-1", assigned_team=None, source="intake:CaseResolved",
        source_id=uuid.uuid4(), occurred_at=START)))


async def feedback_group_commit(feedback: Feedback, n: int) -> float:
    """What the intake follower appends: a survey request, one new Survey per command."""
    return await concurrently(n, lambda i: feedback.request_survey(ResolvedCase(
        case_id=uuid.uuid4(), center_id=CENTERS[i % 8], counter_id="window-1",
        clerk_id="clerk-1", service_item=ITEMS[i % len(ITEMS)], intake_channel="counter",
        resident_id=uuid.uuid4(), resolved_event_id=uuid.uuid4(), resolved_at=START)))


async def intake_group_commit(runtime: Runtime, intake: Intake, said_at: datetime, n: int
                              ) -> float:
    """What the verdicts consumer appends: a "not solved" reopening a resolved case, one per
    case (the backlog's resolved cases, as the intake read model holds them)."""
    schema = runtime.settings.schema_for("intake")
    ids = [r["case_id"] for r in await runtime.pool.fetch(
        f'SELECT case_id FROM "{schema}".cases WHERE status = \'resolved\' LIMIT $1', n)]
    if not ids:
        return 0.0
    return await concurrently(len(ids), lambda i: intake.hear_unsolved(
        UUID(bytes=ids[i].bytes), Verdict(uuid.uuid4(), said_at)))


# -- the consumers -----------------------------------------------------------------------------

@dataclass
class Measured:
    consumer: str
    service: str
    handler: str
    events: int
    rate: float
    raw_rate: float
    cpu_us: float = 0.0  # this process's CPU per event while the consumer drained
    raw_cpu_us: float = 0.0  # ... and while raw fetch + ack read the same share
    appended: int = 0
    group_commit: float = 0.0
    batches: int = 0
    merged: int = 0  # batches taken into the one before while it waited (``Merging``)
    rounds: int = 0  # group-commit rounds its appends took
    #: The servers' CPU per event while the consumer drained (PostgreSQL, nats-server), and
    #: nats-server's while raw fetch + ack read the share: a consumer that waits on
    #: PostgreSQL shows what it asks of it here, not in its own CPU.
    pg_us: float = 0.0
    nats_us: float = 0.0
    raw_nats_us: float = 0.0
    #: With ``--framework``: the same consumer with a handler that applies nothing
    #: (:class:`AppliesNothing`), its process's and PostgreSQL's CPU per event and its rate.
    framework_cpu_us: float | None = None
    framework_pg_us: float = 0.0
    framework_rate: float = 0.0


class AppliesNothing:
    """A handler that applies nothing: a consumer feeding it pays what every consumer pays
    (fetch, decode, the per-message spans, tracking, acks), none of a handler's own work."""

    async def apply(self, conn: Any, events: Any) -> None:
        return None


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[Runtime]:
    async with app.router.lifespan_context(app):
        # As ``serve()`` does once a service has started (every deployed process, consumers'
        # too): start-up's objects frozen, the young generation collected every
        # ``GC_YOUNG_THRESHOLD`` allocations (100,000), not 700.
        settle_garbage_collector()
        yield app.state.runtime


async def stored_position(runtime: Runtime) -> int:
    relay = runtime.relay
    assert relay is not None
    return int(await runtime.pool.fetchval(
        f'SELECT COALESCE(max(notification_id), 0) FROM "{relay.schema}"."{relay.table}"'))


async def drain(consumer: Consumer) -> tuple[int, float, float, tuple[float, float]]:
    """Run the consumer until it has applied its whole backlog: (events, seconds, CPU
    seconds of this process: the consumer's loop, the group-commit thread, the exporters;
    PostgreSQL's and nats-server's CPU seconds meanwhile)."""
    await consumer.ensure()
    js = consumer.nc.jetstream()
    expected = (await js.consumer_info(consumer.settings.stream_name, consumer.name)).num_pending
    start, cpu, servers_cpu = time.perf_counter(), time.process_time(), server_cpu_seconds()
    task = asyncio.create_task(consumer.run())
    stats = consumer.stats
    last, still = -1, time.perf_counter()
    try:
        while stats.applied + stats.duplicates + stats.dead_lettered < expected:
            if task.done():
                task.result()
                raise RuntimeError(f"{consumer.name} stopped before its backlog was applied")
            done = stats.applied + stats.dead_lettered
            if done != last:
                last, still = done, time.perf_counter()
            elif time.perf_counter() - still > 60:
                raise RuntimeError(f"{consumer.name} made no progress for 60 s at {done}")
            await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu
        pg, nats = server_cpu_seconds()
        servers_cpu = (pg - servers_cpu[0], nats - servers_cpu[1])
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    if stats.dead_lettered or stats.retried:
        raise SystemExit(f"{consumer.name}: {stats.dead_lettered} dead-lettered, "
                         f"{stats.retried} retried: the backlog is not what it expects")
    return expected, elapsed, cpu, servers_cpu


def group_commit_rounds(runtime: Runtime) -> int:
    """How many group-commit rounds the service ran so far (its batch-size histogram)."""
    for metric in runtime.metrics.batches.collect():
        for sample in metric.samples:
            if sample.name.endswith("_count") and sample.labels.get("service") == \
                    runtime.service:
                return int(sample.value)
    return 0


async def framework_alone(runtime: Runtime, consumer: Consumer) -> tuple[float, float, float]:
    """``consumer``'s share drained by a consumer of the same subjects and batch whose handler
    applies nothing (``AppliesNothing``): (events/s, this process's and PostgreSQL's CPU us
    an event): the consumer framework's own cost, the handler's left out."""
    alone = Consumer(runtime.settings, runtime.nc, runtime.pool, f"{consumer.name}-framework",
                     AppliesNothing(), consumer.filter_subjects, batch=consumer.batch)
    events, seconds, cpu, (pg, _) = await drain(alone)
    return events / seconds, cpu * 1e6 / max(events, 1), pg * 1e6 / max(events, 1)


async def measure_service(runtime: Runtime, only: set[str] | None, gc_events: int,
                          group_commit: Callable[[int], Any] | None,
                          empty: list[str] | None = None,
                          framework: bool = False) -> list[Measured]:
    """Each consumer's drain beside raw fetch + ack of its share (and, with ``framework``,
    beside the framework alone: ``framework_alone``); a consumer with nothing on
    its subjects in this log (intake-plans: the synthetic log draws up no plans) is left
    out, its name added to ``empty``."""
    out: list[Measured] = []
    raw_nc = await connect(runtime.settings, "bench-raw")
    try:
        for name, consumer in runtime.consumers.items():
            if only and name not in only:
                continue
            share, raw_rate, raw_cpu, raw_nats = await raw_fetch(raw_nc, runtime.settings,
                                                       consumer.filter_subjects, consumer.batch)
            if not share:
                if empty is not None:
                    empty.append(name)
                continue
            before, rounds = await stored_position(runtime), group_commit_rounds(runtime)
            print(f"draining {name}", file=sys.stderr, flush=True)  # a profiler's cue
            events, seconds, cpu, (pg, nats) = await drain(consumer)
            print(f"drained {name}", file=sys.stderr, flush=True)
            appended = await stored_position(runtime) - before
            rounds = group_commit_rounds(runtime) - rounds
            out.append(Measured(name, runtime.service, type(consumer.handler).__name__, events,
                                events / seconds, raw_rate, cpu * 1e6 / max(events, 1),
                                raw_cpu * 1e6, appended, batches=consumer.stats.batches,
                                merged=consumer.stats.merged,
                                rounds=rounds, pg_us=pg * 1e6 / max(events, 1),
                                nats_us=nats * 1e6 / max(events, 1),
                                raw_nats_us=raw_nats * 1e6))
            if framework:
                m = out[-1]
                m.framework_rate, m.framework_cpu_us, m.framework_pg_us = \
                    await framework_alone(runtime, consumer)
        if group_commit is not None and any(m.appended for m in out):
            rate = await group_commit(gc_events)
            for m in out:
                if m.appended:
                    m.group_commit = rate
    finally:
        await raw_nc.close()
    return out


async def run(settings: Settings, events: int, only: set[str] | None, bare: bool = False,
              framework: bool = False) -> dict[str, Any]:
    f: dict[str, Any] = {}
    nc = await connect(settings, "bench-setup")
    await ensure_streams(nc.jetstream(), settings)
    start = time.perf_counter()
    visits, envelopes = in_time_order(
        visit_times(random.Random(20250303), PER_DAY, START.date()), seed=20250303,
        events=events)
    # Each message with a ``traceparent`` as the relays give them with tracing on (as
    # deployed): a tenth in sampled traces, whose consumer spans are recorded and exported.
    log = Publisher(settings, sample_every=6, sampled=None if bare else SAMPLER_ARG)
    await log.publish(envelopes)
    sample, f["bytes"] = log.sample, log.bytes
    f["generated_s"] = time.perf_counter() - start
    f["events"], f["visits"] = len(envelopes), visits
    f["days"] = (envelopes[0].occurred_at.date(), envelopes[-1].occurred_at.date())
    last_moment = envelopes[-1].occurred_at
    f["by_service"] = log.by_service
    del envelopes, log  # the consumers run in a process of the services' size
    f["decode_per_s"] = decode_rate(sample)
    del sample
    _, f["raw_all_per_s"], _, _ = await raw_fetch(nc, settings, [f"{settings.subject_prefix}.>"],
                                            settings.consumer_batch)
    await nc.close()
    gc_events = max(2000, events // 20)
    measured: list[Measured] = []
    empty: list[str] = []
    f["empty"] = empty
    # Follow-up's rules refuse a moment ahead of their clock (OCCURRED_AT_MAX_FUTURE_S): its
    # clock stands at the backlog's last moment, as if the rules caught up on it afterwards.
    followup_clock = ManualClock(last_moment.astimezone(UTC))
    apps: list[tuple[FastAPI, Callable[[FastAPI], Callable[[int], Any]] | None]] = [
        (intake_main.create_app(settings),
         lambda app: lambda n: intake_group_commit(app.state.runtime, app.state.intake,
                                                   last_moment, n)),
        (followup_main.create_app(settings, clock=followup_clock),
         lambda app: lambda n: followup_group_commit(app.state.followups, n)),
        (feedback_main.create_app(settings, clock=ManualClock(START.astimezone(UTC))),
         lambda app: lambda n: feedback_group_commit(app.state.feedback, n)),
    ]
    for app, group_commit in apps:
        async with lifespan(app) as runtime:
            measured += await measure_service(runtime, only, gc_events,
                                              group_commit(app) if group_commit else None,
                                              empty, framework)
    f["measured"] = measured
    f["gc_events"] = gc_events
    return f


def report(f: dict[str, Any]) -> None:
    by = f["by_service"]
    first, last = f["days"]
    print(f"machine: {machine()}; {f['events']:,} events ({by['intake']:,} intake, "
          f"{by['followup']:,} followup, {by['feedback']:,} feedback; "
          f"{f['bytes'] / f['events']:,.0f} B each): {f['visits']:,} visits at {len(CENTERS)} "
          f"centers, {PER_DAY} a working day each, {first} to {last}; "
          f"generated and published in {f['generated_s']:.1f} s")
    print(f"{'decode only: Envelope + upcast (every 6th event)':<56} {f['decode_per_s']:>9,.0f} /s")
    print(f"{'raw pull fetch + ack, whole stream':<56} {f['raw_all_per_s']:>9,.0f} /s")
    shown: set[str] = set()
    for m in f["measured"]:
        if m.group_commit and m.service not in shown:
            shown.add(m.service)
            what = GROUP_COMMIT_COMMAND[m.service]
            label = f"group commit: {m.service} {what}, 512 callers"
            print(f"{label:<56} {m.group_commit:>9,.0f} /s")
    for name in f.get("empty", []):
        print(f"{name}: no events on its subjects in this log, not measured")
    for m in f["measured"]:
        label = f"{m.consumer}: raw fetch + ack of its {m.events:,}"
        print(f"{label:<56} {m.raw_rate:>9,.0f} /s  (CPU {m.raw_cpu_us:,.0f} us/event; "
              f"nats-server {m.raw_nats_us:,.0f})")
        label = f"{m.consumer}: {m.handler}"
        line = (f"{label:<56} {m.rate:>9,.0f} /s  = {m.rate / m.raw_rate:.2f} x raw_fetch "
                f"({m.batches:,} batches{f', {m.merged:,} merged' if m.merged else ''}; "
                f"CPU {m.cpu_us:,.0f} us/event; PostgreSQL "
                f"{m.pg_us:,.0f}, nats-server {m.nats_us:,.0f})")
        if m.appended:
            seconds = m.events / m.rate
            appends = m.appended / seconds
            line += (f"; {m.appended:,} appended in {m.rounds:,} group-commit rounds = "
                     f"{appends:,.0f} /s = {appends / m.group_commit:.2f} x group_commit")
        print(line)
        if m.framework_cpu_us is not None:
            label = f"{m.consumer}: the framework alone (a handler applying nothing)"
            print(f"{label:<56} {m.framework_rate:>9,.0f} /s  = "
                  f"{m.framework_rate / m.raw_rate:.2f} x raw_fetch (CPU "
                  f"{m.framework_cpu_us:,.0f} us/event; PostgreSQL {m.framework_pg_us:,.0f}): "
                  f"the handler's own work {m.cpu_us - m.framework_cpu_us:,.0f} us/event, "
                  f"PostgreSQL {m.pg_us - m.framework_pg_us:,.0f}")
        if m.appended:
            # A consumer appends for some of its events only: at raw fetch + ack's own rate
            # (a consumer costing nothing) its appends would reach no more than this. What is
            # counted is events stored, not commands: the rules' lapsed plan stores two
            # (FollowUpScheduled, FollowUpCancelled), a plan on time one, a batch's plans go
            # as one command (``schedule_each``).
            ceiling = m.appended / m.events * m.raw_rate
            print(f"  {m.consumer}: one event stored per {m.events / m.appended:.1f} read: at raw "
                  f"fetch + ack's rate, {ceiling:,.0f} appends/s = "
                  f"{ceiling / m.group_commit:.2f} x group_commit (the most it can reach)")
    measured = f["measured"]
    if measured:
        low = min(measured, key=lambda m: m.rate / m.raw_rate)
        print(target(f"every live consumer vs raw fetch + ack of its share (lowest: "
                     f"{low.consumer})", low.rate / low.raw_rate, 0.8))
    writing = [m for m in measured if m.appended and m.group_commit]
    if writing:
        low = min(writing, key=lambda m: m.appended * m.rate / m.events / m.group_commit)
        ratio = low.appended * low.rate / low.events / low.group_commit
        print(target(f"consumers' appends vs group commit of the same command (lowest: "
                     f"{low.consumer})", ratio, 0.5))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--only", nargs="*", help="only these consumers (e.g. followup-rules)")
    parser.add_argument("--no-traceparent", action="store_true",
                        help="publish the log without the traceparent the relays add with "
                             "tracing on (every consumer span a new root, as before 12-04)")
    parser.add_argument("--framework", action="store_true",
                        help="also drain each share through the consumer framework alone (a "
                             "handler applying nothing): what every consumer pays, apart "
                             "from its handler's own work")
    args = parser.parse_args()
    with servers() as srv:
        settings = bench_settings(srv, stream_name="BENCH", subject_prefix="bench",
                                  schema_prefix="bench_", roles={"api"})
        like_main(settings)  # logging as main.py's; start_runtime starts the tracing
        figures = asyncio.run(run(settings, args.events, set(args.only or []) or None,
                                  args.no_traceparent, args.framework))
    report(figures)


if __name__ == "__main__":
    main()

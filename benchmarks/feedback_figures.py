"""The center's figures recomputed from a synthetic year, beside the raw stream read rate.

    .venv/bin/python benchmarks/feedback_figures.py
    SIXSTEP_BENCH_EVENTS=0 .venv/bin/python benchmarks/feedback_figures.py   # the full year

A synthetic 2025 for eight centers: each visit opens a case (heard, concerns, guidance,
resolution), a survey is requested, sent and answered or left without an answer, a bad review
is rectified and revisited, a third of the cases get a follow-up. The full year is 127,467
visits per center (about 8.7 million events); by default the visits per center are scaled
down so that the log holds about SIXSTEP_BENCH_EVENTS = 1,000,000 events, still spread over
the whole year and the eight centers.

Measured in one run, on servers the benchmark starts itself:
  * raw stream read: every message of the stream through a pull consumer, nothing decoded
    (the baseline: no figure can be rebuilt faster than the log is read)
  * the rebuild: the figures consumer (durable pull consumer, exactly-once tracking,
    FiguresProjection in batches of SIXSTEP_BENCH_BATCH) from the first event to the last,
    in this process, with its peak RSS; PostgreSQL's memory is not included
  * the figures queries: all figures per center and month over the year, and per counter
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import resource
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson
import psutil
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from benchmarks.common import machine, servers
from services.feedback import figures
from shared.bus.consumer import TRACKING_DDL, Consumer
from shared.bus.jetstream import connect, ensure_streams, partition_of
from shared.contracts import REGISTRY, Envelope
from shared.eventstore.postgres import ensure_schema
from shared.kernel.calendar import WorkingCalendar
from shared.readmodels.migrations import run_migrations
from shared.readmodels.pool import create_pool
from shared.settings import Settings

YEAR_VISITS = 127_467
CENTERS = 8
TZ = ZoneInfo("Asia/Shanghai")
CALENDAR = WorkingCalendar(TZ)  # the package's official years; provisional after
COUNTED = frozenset(figures.INTAKE_TYPES + figures.FEEDBACK_TYPES + figures.FOLLOWUP_TYPES)
ITEMS = ["SA-HARDSHIP-SUBSIDY", "SA-MINIMUM-LIVING", "EMP-UNEMPLOYMENT-REGISTRATION",
         "EMP-UNEMPLOYMENT-INSURANCE", "MED-REIMBURSEMENT", "PEN-PENSION-CERTIFICATE",
         "SA-TEMPORARY-ASSISTANCE", "HOU-RENTAL-SUBSIDY", "DIS-DISABILITY-CARD",
         "ELD-ELDERLY-ALLOWANCE"]


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


@dataclass
class Log:
    """Writes envelopes onto the stream as the relays would (pipelined, each one acknowledged),
    counting what it wrote."""

    settings: Settings
    rng: random.Random
    nc: Any = None
    js: Any = None
    refused: int = 0
    events: int = 0
    counted: int = 0
    bytes: int = 0
    visits: int = 0
    positions: dict[str, int] = field(default_factory=lambda: {"intake": 0, "feedback": 0,
                                                               "followup": 0})

    def _acked(self, ack: asyncio.Future[Any]) -> None:
        if ack.cancelled() or ack.exception() is not None:
            self.refused += 1

    def uid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    async def emit(self, service: str, type_: str, center: str, case_id: str,
                   aggregate_id: str, version: int, at: datetime, payload: dict[str, Any],
                   actor: str = "clerk") -> None:
        self.positions[service] += 1
        stamp = at.isoformat()
        body = orjson.dumps({
            "event_id": self.uid(), "type": type_, "version": 1 if type_ != "ConcernsNoted"
            else 2, "service": service, "position": self.positions[service],
            "aggregate_id": aggregate_id, "aggregate_version": version, "case_id": case_id,
            "center_id": center, "occurred_at": stamp, "recorded_at": stamp,
            "causation_id": None, "correlation_id": None, "actor": actor, "payload": payload})
        partition = partition_of(uuid.UUID(case_id), self.settings.partitions)
        ack = await self.js.publish_async(
            f"{self.settings.subject_prefix}.{service}.{type_}.p{partition}", body)
        ack.add_done_callback(self._acked)
        self.events += 1
        self.bytes += len(body)
        if type_ in COUNTED:
            self.counted += 1

    async def visit(self, center: str, opened: datetime) -> None:
        """One resident's visit and everything it leads to."""
        rng, uid = self.rng, self.uid
        case_id = uid()
        counter = f"window-{rng.randint(1, 6)}"
        clerk = f"{center}-clerk-{rng.randint(1, 14):02d}"
        item = rng.choice(ITEMS)
        channel = rng.choices(["counter", "phone", "home_visit"], [80, 15, 5])[0]
        resident = uid()
        self.visits += 1
        v = 0

        async def intake(type_: str, minutes: float, payload: dict[str, Any]) -> None:
            nonlocal v
            v += 1
            await self.emit("intake", type_, center, case_id, case_id, v,
                            opened + timedelta(minutes=minutes), payload)

        await intake("CaseOpened", 0, {"center_id": center, "counter_id": counter,
                                       "clerk_id": clerk, "channel": channel,
                                       "service_item": item, "resident_id": resident})
        await intake("RequestHeard", 2, {"words": "…"})
        emotion = rng.choices(["calm", "anxious", "upset", "angry", "distressed"],
                              [55, 25, 12, 5, 3])[0]
        await intake("ConcernsNoted", 4, {"needs": [], "worries": [], "emotion": emotion,
                                          "urgency": "normal"})
        await intake("GuidanceGiven", 8, {"service_item": item, "policy_basis": "…",
                                          "eligibility": "eligible", "promised": "",
                                          "missing_documents": []})
        if rng.random() < 0.003:
            return  # still open at the end of the year
        outcome = rng.choices(["resolved", "partly_resolved", "cannot_be_resolved"],
                              [985, 10, 5])[0]
        resolved = opened + timedelta(minutes=20)
        await intake("CaseResolved", 20, {"outcome": outcome, "explanation": "…",
                                          "emotion_defused": rng.random() < 0.985})
        await self.survey(center, case_id, resident, counter, clerk, item, resolved,
                          "resolution", None, "tablet" if channel == "counter" else "sms")
        if rng.random() < 0.3:
            await self.follow_up(center, case_id, resolved)

    async def survey(self, center: str, case_id: str, resident: str, counter: str,
                     clerk: str, item: str, at: datetime, purpose: str,
                     rectification: str | None, channel: str) -> None:
        rng = self.rng
        survey_id = self.uid()
        send_at = at if channel == "tablet" else at + timedelta(hours=2)
        expires = send_at + timedelta(days=7)
        await self.emit("feedback", "SurveyRequested", center, case_id, survey_id, 1, at, {
            "survey_id": survey_id, "purpose": purpose, "channel": channel,
            "resident_id": resident, "counter_id": counter, "clerk_id": clerk,
            "service_item": item, "send_at": send_at.isoformat(),
            "expires_at": expires.isoformat(), "rectification_id": rectification})
        await self.emit("feedback", "SurveySent", center, case_id, survey_id, 2, send_at,
                        {"survey_id": survey_id, "channel": channel,
                         "expires_at": expires.isoformat()})
        if rng.random() < 0.08:
            await self.emit("feedback", "SurveyExpired", center, case_id, survey_id, 3,
                            expires, {"survey_id": survey_id, "purpose": purpose,
                                      "was_sent": True})
            return
        level = rng.choices(["very_satisfied", "satisfied", "basically_satisfied",
                             "dissatisfied", "very_dissatisfied"], [700, 250, 45, 4, 1])[0]
        if purpose == "revisit":
            level = "satisfied"
        rated = send_at + timedelta(minutes=rng.randint(1, 600))
        await self.emit("feedback", "RatingGiven", center, case_id, survey_id, 3, rated, {
            "survey_id": survey_id, "purpose": purpose, "level": level, "comment": "",
            "aspects": {}, "via": "token", "clerk_id": None,
            "rectification_id": rectification}, actor="resident")
        if level in figures.BAD:
            rect = self.uid()
            deadline = rated.date() + timedelta(days=21)
            await self.emit("feedback", "RectificationOpened", center, case_id, rect, 1, rated,
                            {"rectification_id": rect, "resident_id": resident,
                             "rating": level, "deadline_on": deadline.isoformat(),
                             "summary": "", "survey_id": survey_id})
            done = rated + timedelta(days=rng.randint(3, 25))
            await self.emit("feedback", "RectificationCompleted", center, case_id, rect, 2,
                            done, {"rectification_id": rect, "outcome": "rectified",
                                   "actions": "…", "deadline_on": deadline.isoformat(),
                                   "completed_on": done.date().isoformat(),
                                   "on_time": done.date() <= deadline})
            revisit = self.uid()
            await self.emit("feedback", "RevisitRequested", center, case_id, rect, 3, done,
                            {"rectification_id": rect, "survey_id": revisit})
            await self.survey(center, case_id, resident, counter, clerk, item, done,
                              "revisit", rect, "sms")

    async def follow_up(self, center: str, case_id: str, at: datetime) -> None:
        follow_up_id = self.uid()
        due = at + timedelta(days=7)
        await self.emit("followup", "FollowUpScheduled", center, case_id, follow_up_id, 1, at, {
            "reason": "post_resolution_check", "resident_id": None, "due_at": due.isoformat(),
            "assigned_clerk": None, "assigned_team": "followup-desk", "priority": "normal",
            "service_item": None, "source": "intake:CaseResolved", "source_id": None},
            actor="system:followup")
        v = 1
        if self.rng.random() < 0.05:
            v += 1
            await self.emit("followup", "FollowUpMissed", center, case_id, follow_up_id, v,
                            due + timedelta(hours=8), {"due_at": due.isoformat(),
                                                       "escalate_at": due.isoformat()},
                            actor="system:followup")
        await self.emit("followup", "FollowUpCompleted", center, case_id, follow_up_id, v + 1,
                        due + timedelta(hours=self.rng.randint(1, 30)),
                        {"outcome": "done", "channel": "phone", "note": ""})


async def generate(settings: Settings, visits_per_center: int) -> Log:
    """The year, day by day, every center's visits of the day in turn."""
    log = Log(settings, random.Random(20250101))
    log.nc = await connect(settings, "bench-generator")
    log.js = log.nc.jetstream(publish_async_max_pending=4000)
    days = [date(2025, 1, 1) + timedelta(days=i) for i in range(365)]
    working = [d for d in days if CALENDAR.is_working_day(d)]
    centers = [f"CENTER-{i + 1:02d}" for i in range(CENTERS)]
    per_day = visits_per_center / len(working)
    owed = 0.0
    for day in working:
        owed += per_day
        today, owed = int(owed), owed - int(owed)
        for center in centers:
            for _ in range(today):
                minute = log.rng.randint(0, 8 * 60 - 30)
                opened = datetime(day.year, day.month, day.day, 9, tzinfo=TZ) + \
                    timedelta(minutes=minute)
                await log.visit(center, opened)
    await log.js.publish_async_completed()
    await log.nc.close()
    if log.refused:
        raise SystemExit(f"the stream refused {log.refused} events")
    return log


async def stream_count(settings: Settings, expected: int) -> int:
    """The stream's message count once it stops growing (the server stores asynchronously)."""
    nc = await connect(settings, "bench-info")
    try:
        last, still = -1, 0
        while True:
            count = (await nc.jetstream().stream_info(settings.stream_name)).state.messages
            if count >= expected:
                return count
            still = still + 1 if count == last else 0
            if still > 20:
                return count
            last = count
            await asyncio.sleep(0.25)
    finally:
        await nc.close()


async def raw_read(settings: Settings, batch: int = 5000) -> tuple[int, int, float]:
    """Every message of the stream, fetched and acknowledged by nobody: (messages, bytes, s)."""
    nc = await connect(settings, "bench-reader")
    try:
        js = nc.jetstream()
        total = (await js.stream_info(settings.stream_name)).state.messages
        sub = await js.pull_subscribe(">", stream=settings.stream_name, config=ConsumerConfig(
            ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL, max_waiting=8,
            inactive_threshold=30.0))
        start = time.perf_counter()
        seen = size = 0
        while seen < total:
            msgs = await sub.fetch(batch, timeout=5.0)
            seen += len(msgs)
            size += sum(len(m.data) for m in msgs)
        elapsed = time.perf_counter() - start
        await sub.unsubscribe()
        return seen, size, elapsed
    finally:
        await nc.close()


class PeakRSS:
    """Samples this process's resident memory while a phase runs."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.peak = 0

    async def __aenter__(self) -> PeakRSS:
        self.peak = self.process.memory_info().rss
        self._task = asyncio.create_task(self._sample())
        return self

    async def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, self.process.memory_info().rss)
            await asyncio.sleep(0.05)

    async def __aexit__(self, *_: object) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self.peak = max(self.peak, self.process.memory_info().rss)

    @property
    def mb(self) -> float:
        return self.peak / 2**20


async def rebuild_direct(settings: Settings, expected: int, batch: int) -> float:
    """The same projection fed straight from a pull consumer, no tracking: (seconds)."""
    schema = f"{settings.schema_prefix}direct"
    await asyncio.to_thread(ensure_schema, settings, schema)
    pool = await create_pool(settings, schema)
    await run_migrations(pool, schema, figures.DDL)
    projection = figures.FiguresProjection(settings.tz)
    nc = await connect(settings, "bench-direct")
    try:
        js = nc.jetstream()
        sub = await js.pull_subscribe(
            "", stream=settings.stream_name, config=ConsumerConfig(
                ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL,
                filter_subjects=figures.subjects(settings.subject_prefix),
                inactive_threshold=30.0))
        start = time.perf_counter()
        seen = 0
        upcoming = asyncio.create_task(sub.fetch(batch, timeout=5.0))
        while seen < expected:
            msgs = await upcoming
            seen += len(msgs)
            if seen < expected:  # fetch the next batch while this one is applied
                upcoming = asyncio.create_task(sub.fetch(batch, timeout=5.0))
            events = [REGISTRY.current(Envelope.model_validate_json(m.data)) for m in msgs]
            async with pool.acquire() as conn, conn.transaction():
                await projection.apply(conn, events)
        elapsed = time.perf_counter() - start
        await sub.unsubscribe()
        return elapsed
    finally:
        await nc.close()
        await pool.close()


async def rebuild(settings: Settings, expected: int) -> float:
    """The figures consumer from the first event to the last: seconds."""
    schema = settings.schema_for("feedback")
    await asyncio.to_thread(ensure_schema, settings, schema)
    pool = await create_pool(settings, schema)
    await run_migrations(pool, schema, [*TRACKING_DDL, *figures.DDL])
    nc = await connect(settings, "bench-figures")
    consumer = Consumer(settings=settings, nc=nc, pool=pool, name=figures.CONSUMER,
                        handler=figures.FiguresProjection(settings.tz),
                        filter_subjects=figures.subjects(settings.subject_prefix),
                        batch=settings.consumer_batch)
    start = time.perf_counter()
    task = asyncio.create_task(consumer.run())
    try:
        while consumer.stats.applied + consumer.stats.dead_lettered < expected:
            if task.done():
                task.result()
            await asyncio.sleep(0.1)
        elapsed = time.perf_counter() - start
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await nc.close()
        await pool.close()
    if consumer.stats.dead_lettered:
        raise SystemExit(f"{consumer.stats.dead_lettered} events were dead-lettered")
    return elapsed


async def queries(settings: Settings) -> tuple[float, float, list[dict[str, Any]]]:
    pool = await create_pool(settings, settings.schema_for("feedback"))
    try:
        start = time.perf_counter()
        by_month = await figures.compute(pool, figures.FigureQuery(
            period="month", as_of=date(2026, 1, 1), group_by=("center_id",)))
        month_s = time.perf_counter() - start
        start = time.perf_counter()
        await figures.compute(pool, figures.FigureQuery(
            period="year", as_of=date(2026, 1, 1), group_by=("center_id", "counter_id")))
        counter_s = time.perf_counter() - start
        year = await figures.compute(pool, figures.FigureQuery(
            period="all", as_of=date(2026, 1, 1), group_by=()))
        assert len(by_month) >= CENTERS * 12, len(by_month)  # + January 2026: late answers
        return month_s, counter_s, year
    finally:
        await pool.close()


def rate(value: Any) -> str:
    if isinstance(value, dict):
        r = value["rate"]
        return (f"{r * 100:.2f} % ({value['numerator']:,}/{value['denominator']:,})"
                if r is not None else "n/a")
    return f"{value:,}"


async def main() -> None:
    target = env_int("SIXSTEP_BENCH_EVENTS", 1_000_000)
    per_visit = 8.7  # events per visit in this synthetic year, measured
    visits = YEAR_VISITS if target == 0 else max(1, round(target / per_visit / CENTERS))
    batch = env_int("SIXSTEP_BENCH_BATCH", 2000)
    print(f"machine: {machine()}")
    with servers() as srv:
        settings = Settings(database_url=srv.database_url, nats_url=srv.nats_url,
                            stream_name="BENCH", subject_prefix="bench", schema_prefix="bench_",
                            partitions=16, consumer_batch=batch, log_level="WARNING",
                            log_json=False)
        nc = await connect(settings, "bench-setup")
        await ensure_streams(nc.jetstream(), settings)
        await nc.close()

        start = time.perf_counter()
        log = await generate(settings, visits)
        generated_s = time.perf_counter() - start
        stored = await stream_count(settings, log.events)
        assert stored == log.events, (stored, log.events)
        print(f"synthetic 2025: {CENTERS} centers x {visits:,} visits = {log.visits:,} visits, "
              f"{log.events:,} events ({log.counted:,} read by the figures), "
              f"{log.bytes / 2**20:,.0f} MiB; generated and published in {generated_s:.1f} s "
              f"({log.events / generated_s:,.0f} events/s)")

        messages, size, read_s = await raw_read(settings)
        raw_rate = messages / read_s
        print(f"raw stream read (baseline):  {messages:,} messages in {read_s:.1f} s = "
              f"{raw_rate:,.0f} events/s ({size / 2**20 / read_s:,.0f} MiB/s)")

        async with PeakRSS() as direct_rss:
            direct_s = await rebuild_direct(settings, log.counted, batch)
        print(f"figures projection fed straight from the stream (no tracking): "
              f"{log.counted:,} events in {direct_s:.1f} s = {log.counted / direct_s:,.0f} "
              f"events/s ({log.counted / direct_s / raw_rate:.2f} x raw read); batch {batch}; "
              f"peak RSS {direct_rss.mb:,.0f} MB")

        async with PeakRSS() as consumer_rss:
            rebuild_s = await rebuild(settings, log.counted)
        print(f"figures rebuilt by the figures consumer (durable, exactly-once tracking): "
              f"{log.counted:,} events in {rebuild_s:.1f} s = {log.counted / rebuild_s:,.0f} "
              f"events/s ({log.counted / rebuild_s / raw_rate:.2f} x raw read); batch {batch}; "
              f"peak RSS {consumer_rss.mb:,.0f} MB")
        print(f"process peak RSS over the whole run (generation included): "
              f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")

        month_s, counter_s, year = await queries(settings)
        print(f"figures query: per center and month over the year {month_s * 1000:,.0f} ms; "
              f"per center and counter for the year {counter_s * 1000:,.0f} ms")
        (row,) = year
        print("the whole log, all centers: " + "; ".join(
            f"{f.name} {rate(row[f.name])}" for f in figures.FIGURES))
    print(f"finished {datetime.now(UTC).isoformat(timespec='seconds')}")


if __name__ == "__main__":
    asyncio.run(main())

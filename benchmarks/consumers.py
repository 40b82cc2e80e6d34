"""Each live consumer's events/s, beside raw fetch + ack of the same backlog.

    .venv/bin/python benchmarks/consumers.py [--events 100000] [--only followup-rules ...]

On servers of its own, in one run:

  * a backlog of realistic events on the stream: eight centers at their real daily rate
    (127,467 visits a year each, about 510 a working day) from Monday 2025-03-03 until
    ``--events`` are reached, every visit with what follows it (restatement, concerns,
    guidance, actions, deadlines, obligations, resolution, the odd reopening; the survey and
    its answer, expiry or withdrawal, bad reviews and their rectification and revisit; the
    follow-ups and how they went). Every payload goes through its contract in
    ``shared/contracts`` and every envelope is encoded as the outbox relay encodes it; the
    stream holds them in time order, each service's positions and each aggregate's versions
    counting up as the relays would have published them. (``feedback_figures.py``'s year is
    published visit by visit, a case's whole life in one run of the stream, and has none of
    the deadlines, obligations and reopenings the follow-up rules act on.)
  * every consumer the three services run, as ``services/*/main.py`` wires it: the service's
    own ``create_app`` runs its lifespan with ``roles=api`` (store, pool, bus, group commit and
    the consumers built, nothing started), then each consumer in ``runtime.consumers`` drains
    its backlog alone through the real ``Consumer`` and handler (decode, batch transaction,
    tracking, acks, and the group-commit writes of the handlers that append events). Rate =
    the events it received (its durable's pending count at the start) / the time to apply them.
  * baselines in the same run: decoding alone (Envelope + upcast, in memory); raw nats-py
    pull fetch + ack of each consumer's backlog (same filter subjects, nothing decoded); and
    for the consumers that append events, their service's group commit of the same command
    (512 concurrent callers, as ``pipeline.py`` measures it).

The clocks of follow-up and feedback are set to the backlog's first day, so feedback asks a
survey for every resolution (a resolution older than its survey's answer window gets none).
The outbox relays do not run: what the handlers append stays in the store. Every consumer
starts on empty tables, as a new deployment or a new read model catching up on a backlog: its
statements are prepared before PostgreSQL has statistics of the tables they read.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import random
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fastapi import FastAPI
from nats.aio.client import Client as NATS
from nats.js.api import AckPolicy, ConsumerConfig

from benchmarks.common import machine, servers
from benchmarks.feedback_figures import ITEMS, YEAR_VISITS
from services.feedback import main as feedback_main
from services.feedback.application import Feedback, ResolvedCase
from services.followup import main as followup_main
from services.followup.application import FollowUps, Plan
from services.followup.domain import obligation_aggregate_id
from services.intake import main as intake_main
from shared.bus.consumer import Consumer
from shared.bus.jetstream import connect, ensure_streams, event_subject
from shared.contracts import REGISTRY, Envelope, event_id_for
from shared.contracts.followup import Reason
from shared.eventstore.outbox import encode
from shared.kernel.calendar import WorkingCalendar
from shared.kernel.clock import ManualClock
from shared.runtime.lifecycle import Runtime
from shared.runtime.logs import configure_logging
from shared.settings import Settings

TZ = ZoneInfo("Asia/Shanghai")
CALENDAR = WorkingCalendar(TZ)  # the package's official years; provisional after
START = datetime(2025, 3, 3, tzinfo=TZ)
CENTERS = [f"CENTER-{i + 1:02d}" for i in range(8)]
PER_DAY = round(YEAR_VISITS / 250)  # visits per center per working day
WORDS = ["家里老人住院了，想问问临时救助怎么申请", "失业了三个月，想办失业登记",
         "上个月的医疗费报销还没到账", "想了解低保的条件，材料不知道带得对不对",
         "养老金资格认证要怎么做", "房租涨了，问问租房补贴"]
EMOTIONS = (["calm", "anxious", "upset", "angry", "distressed"], [55, 25, 12, 5, 3])
LEVELS = (["very_satisfied", "satisfied", "basically_satisfied", "dissatisfied",
           "very_dissatisfied"], [700, 250, 45, 4, 1])
SURVEY_CHANNEL = {"counter": "tablet", "phone": "phone_callback", "home_visit": "sms"}
APPENDING = {"followup-rules": "followup", "feedback-intake": "feedback"}


# -- the backlog -------------------------------------------------------------------------------

@dataclass
class Pending:
    """One event before the stream's order is known."""

    at: datetime
    order: int
    service: str
    type: str
    aggregate_id: uuid.UUID
    case_id: uuid.UUID | None
    center_id: str
    actor: str
    payload: dict[str, Any]


@dataclass
class Backlog:
    """Visits and everything they lead to, each payload checked against its contract."""

    rng: random.Random
    pending: list[Pending] = field(default_factory=list)
    last_at: dict[uuid.UUID, datetime] = field(default_factory=dict)
    visits: int = 0

    def uid(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def add(self, service: str, type_: str, center: str, case_id: uuid.UUID | None,
            aggregate_id: uuid.UUID, at: datetime, payload: dict[str, Any],
            actor: str = "clerk") -> datetime:
        contract = REGISTRY.get(type_)
        assert contract.service == service, (type_, service)
        body = contract.payload.model_validate(payload).model_dump(mode="json")
        at = max(at, self.last_at.get(aggregate_id, at))  # an aggregate's events in order
        self.last_at[aggregate_id] = at
        self.pending.append(Pending(at, len(self.pending), service, type_, aggregate_id,
                                    case_id, center, actor, body))
        return at

    def visit(self, center: str, opened: datetime) -> None:
        rng = self.rng
        case = self.uid()
        counter = f"window-{rng.randint(1, 6)}"
        clerk = f"{center}-clerk-{rng.randint(1, 14):02d}"
        item = rng.choice(ITEMS)
        channel = rng.choices(["counter", "phone", "home_visit"], [80, 15, 5])[0]
        resident = self.uid()
        self.visits += 1

        def intake(type_: str, minutes: float, payload: dict[str, Any]) -> datetime:
            return self.add("intake", type_, center, case, case,
                            opened + timedelta(minutes=minutes), payload, actor=clerk)

        intake("CaseOpened", 0, {"center_id": center, "counter_id": counter, "clerk_id": clerk,
                                 "channel": channel, "service_item": item,
                                 "resident_id": resident})
        words = rng.choice(WORDS)
        intake("RequestHeard", 2, {"words": words})
        confirmed = rng.random() < 0.9
        intake("RequestRestated", 3, {"restatement": f"您是想{words}", "confirmed": confirmed,
                                      "correction": None if confirmed else "不是，是帮家里人问"})
        emotion = rng.choices(*EMOTIONS)[0]
        intake("ConcernsNoted", 5, {"needs": ["了解政策", "尽快办理"], "worries": ["材料不全"],
                                    "emotion": emotion,
                                    "urgency": rng.choices(["low", "normal", "high"],
                                                           [20, 70, 10])[0]})
        if rng.random() < 0.05:
            item = rng.choice(ITEMS)  # the guidance found the right item
        intake("GuidanceGiven", 8, {
            "service_item": item, "policy_basis": "《社会救助暂行办法》第四十七条",
            "eligibility": rng.choices(["eligible", "more_documents", "not_eligible"],
                                       [85, 12, 3])[0],
            "promised": "三个工作日内回复", "missing_documents": []})
        intake("ActionTaken", 12, {"kind": "done_on_the_spot", "description": "当场受理并录入"})
        if rng.random() < 0.2:
            intake("ActionTaken", 13, {"kind": "referred", "description": "转街道民政科",
                                       "referred_to": "街道民政科"})
        deadline, noted = None, opened
        if rng.random() < 0.1:
            deadline = (self.uid(), opened.date() + timedelta(days=rng.randint(3, 20)))
            noted = intake("DeadlineNoted", 14, {"deadline_id": deadline[0], "due_on": deadline[1],
                                         "description": "申请窗口关闭"})
        obligation = None
        if item in ("MED-REIMBURSEMENT", "SA-MINIMUM-LIVING") and rng.random() < 0.2:
            obligation = self.uid()
            intake("ObligationDeclared", 15, {
                "obligation_id": obligation, "description": "每月报销到账",
                "cadence": "monthly", "next_due_on": opened.date() + timedelta(days=30)})
        if rng.random() < 0.003:
            return  # still open
        context = (center, case, resident, counter, clerk, item, channel)
        resolved = intake("CaseResolved", 20, self.resolution())
        reopened = rng.random() < 0.01
        check = self.follow_up(center, case, resident, clerk, item, resolved,
                               "post_resolution_check", self.opening(resolved, 5),
                               cancelled=reopened)
        self.survey(context, resolved, "resolution", None, withdrawn=reopened)
        if reopened:
            again = intake("CaseReopened", 60 * 24 + 20, {"reason": "居民反映问题未解决"})
            self.add("followup", "FollowUpCancelled", center, case, check, again,
                     {"reason": "case reopened"}, actor="system:rules")
            resolved = intake("CaseResolved", 60 * 48 + 20, self.resolution())
            self.follow_up(center, case, resident, clerk, item, resolved,
                           "post_resolution_check", self.opening(resolved, 5))
            self.survey(context, resolved, "resolution", None)
        if deadline is not None:
            self.follow_up(center, case, resident, clerk, item, noted, "deadline_reminder",
                           self.opening(deadline[1], -2))
        if obligation is not None:
            self.add("followup", "ObligationWatched", center, case,
                     obligation_aggregate_id(obligation), resolved, {
                "obligation_id": obligation, "resident_id": resident, "cadence": "monthly",
                "next_due_on": opened.date() + timedelta(days=30),
                "missed_at": opened + timedelta(days=33), "assigned_clerk": clerk,
                "service_item": item}, actor="system:rules")

    @staticmethod
    def opening(start: datetime | date, working_days: int) -> datetime:
        """Office opening (9:00) ``working_days`` after ``start``'s day (before, if negative)."""
        day = start.astimezone(TZ).date() if isinstance(start, datetime) else start
        if working_days < 0:
            for _ in range(-working_days):
                day -= timedelta(days=1)
                while not CALENDAR.is_working_day(day):
                    day -= timedelta(days=1)
        else:
            day = CALENDAR.add_working_days(day, working_days)
        return datetime(day.year, day.month, day.day, 9, tzinfo=TZ)

    def resolution(self) -> dict[str, Any]:
        outcome = self.rng.choices(["resolved", "partly_resolved", "cannot_be_resolved"],
                                   [985, 10, 5])[0]
        return {"outcome": outcome, "explanation": "已按政策办理，告知后续进度查询方式",
                "emotion_defused": self.rng.random() < 0.985}

    def survey(self, context: tuple[Any, ...], at: datetime, purpose: str,
               rectification: uuid.UUID | None, withdrawn: bool = False) -> None:
        rng = self.rng
        center, case, resident, counter, clerk, item, channel = context
        survey = self.uid()
        via_channel = "sms" if purpose == "revisit" else SURVEY_CHANNEL[channel]
        send_at = at if via_channel == "tablet" else at + timedelta(hours=2)
        expires = send_at + timedelta(days=7)

        def add(type_: str, when: datetime, payload: dict[str, Any],
                actor: str = "system:feedback") -> datetime:
            return self.add("feedback", type_, center, case, survey, when,
                            {"survey_id": survey, **payload}, actor)

        add("SurveyRequested", at, {
            "purpose": purpose, "channel": via_channel, "resident_id": resident,
            "counter_id": counter, "clerk_id": clerk, "service_item": item,
            "send_at": send_at, "expires_at": expires, "rectification_id": rectification})
        add("SurveySent", send_at, {"channel": via_channel, "expires_at": expires})
        if withdrawn:
            add("SurveyWithdrawn", at + timedelta(days=1), {"reason": "the case was reopened"})
            return
        if rng.random() < 0.08:
            add("SurveyExpired", expires, {"purpose": purpose, "was_sent": True})
            return
        level = "satisfied" if purpose == "revisit" else rng.choices(*LEVELS)[0]
        by_clerk = via_channel == "phone_callback"
        rated = add("RatingGiven", send_at + timedelta(minutes=rng.randint(1, 600)), {
            "purpose": purpose, "level": level, "comment": "办事很耐心" if rng.random() < 0.2
            else "", "aspects": {"listened": 5, "understood": 5, "explained_clearly": 4,
                                 "served_well": 5},
            "via": "clerk" if by_clerk else "token", "clerk_id": clerk if by_clerk else None,
            "rectification_id": rectification}, actor=clerk if by_clerk else "resident")
        if level in ("dissatisfied", "very_dissatisfied"):
            rect = self.uid()
            deadline = CALENDAR.add_working_days(rated.astimezone(TZ).date(), 15)

            def rectify(type_: str, when: datetime, payload: dict[str, Any]) -> datetime:
                return self.add("feedback", type_, center, case, rect, when,
                                {"rectification_id": rect, **payload}, actor="supervisor")

            rectify("RectificationOpened", rated, {
                "resident_id": resident, "rating": level, "deadline_on": deadline,
                "summary": "居民对办理时长不满意", "survey_id": survey})
            self.follow_up(center, case, resident, None, item, rated, "rectification",
                           self.opening(deadline, 0))
            done = rated + timedelta(days=rng.randint(3, 25))
            revisit = self.uid()
            rectify("RectificationCompleted", done, {
                "outcome": "rectified", "actions": "专人跟进，当面解释并加快办理",
                "deadline_on": deadline, "completed_on": done.astimezone(TZ).date(),
                "on_time": done.astimezone(TZ).date() <= deadline})
            rectify("RevisitRequested", done, {"survey_id": revisit})
            self.survey(context, done, "revisit", rect)

    def follow_up(self, center: str, case: uuid.UUID, resident: uuid.UUID, clerk: str | None,
                  item: str, at: datetime, reason: str, due: datetime,
                  cancelled: bool = False) -> uuid.UUID:
        """Scheduled at ``at`` by a rule, due at ``due``; then due, done (now and then missed
        first), unless ``cancelled`` before it falls due."""
        rng = self.rng
        follow_up = self.uid()
        due = max(due, at)
        source = {"post_resolution_check": "intake:CaseResolved",
                  "deadline_reminder": "intake:DeadlineNoted",
                  "rectification": "feedback:RectificationOpened"}[reason]

        def add(type_: str, when: datetime, payload: dict[str, Any], actor: str) -> None:
            self.add("followup", type_, center, case, follow_up, when, payload, actor)

        add("FollowUpScheduled", at, {
            "reason": reason, "resident_id": resident, "due_at": due, "assigned_clerk": clerk,
            "assigned_team": None if clerk else "followup-desk",
            "priority": "high" if reason == "rectification" else "normal",
            "service_item": item, "source": source, "source_id": None}, "system:rules")
        if cancelled:
            return follow_up
        overdue = due + timedelta(hours=8)
        add("FollowUpDue", due, {"due_at": due, "overdue_at": overdue}, "system:scheduler")
        done = due + timedelta(hours=rng.randint(1, 7))
        if rng.random() < 0.05:
            add("FollowUpMissed", overdue, {"due_at": due,
                                            "escalate_at": overdue + timedelta(days=2)},
                "system:scheduler")
            done = overdue + timedelta(days=1)
        add("FollowUpCompleted", done, {
            "outcome": rng.choices(["done", "needs_action", "unreachable"], [90, 7, 3])[0],
            "channel": "phone", "note": ""}, clerk or "followup-desk")
        return follow_up

    def envelopes(self) -> list[Envelope]:
        """The stream: time order; positions per service and versions per aggregate counted
        in that order, as the relays publish."""
        positions: Counter[str] = Counter()
        versions: Counter[uuid.UUID] = Counter()
        out: list[Envelope] = []
        for p in sorted(self.pending, key=lambda p: (p.at, p.order)):
            positions[p.service] += 1
            versions[p.aggregate_id] += 1
            version = versions[p.aggregate_id]
            contract = REGISTRY.get(p.type)
            out.append(Envelope(
                event_id=event_id_for(p.service, p.aggregate_id, version), type=p.type,
                version=contract.version, service=p.service, position=positions[p.service],
                aggregate_id=p.aggregate_id, aggregate_version=version, case_id=p.case_id,
                center_id=p.center_id, occurred_at=p.at,
                recorded_at=p.at + timedelta(milliseconds=self.rng.randint(5, 80)),
                causation_id=f"key-{p.order}", correlation_id=str(p.case_id),
                actor=p.actor, payload=p.payload))
        return out


def build_backlog(events: int) -> tuple[Backlog, list[Envelope]]:
    backlog = Backlog(random.Random(20250303))
    day = START.date()
    per_visit = 13.0  # about, measured; the loop checks the real count every day
    while len(backlog.pending) < events:
        if CALENDAR.is_working_day(day):
            todo = min(PER_DAY, max(1, round((events - len(backlog.pending)) / per_visit
                                             / len(CENTERS))))
            opened = sorted(backlog.rng.randint(0, 8 * 60 - 30) for _ in range(todo))
            for minute in opened:
                for center in CENTERS:
                    backlog.visit(center, datetime(day.year, day.month, day.day, 9,
                                                   tzinfo=TZ) + timedelta(minutes=minute))
        day += timedelta(days=1)
    return backlog, backlog.envelopes()


async def publish(settings: Settings, envelopes: list[Envelope]) -> tuple[list[bytes], int]:
    """Onto the stream as the relays publish: subject, Nats-Msg-Id, pipelined, all acked.
    Returns every 6th body (for the decoding baseline) and the bytes published."""
    nc = await connect(settings, "bench-backlog")
    js = nc.jetstream(publish_async_max_pending=4000)
    sample: list[bytes] = []
    size = 0
    for i, e in enumerate(envelopes):
        body = encode(e)
        size += len(body)
        if i % 6 == 0:
            sample.append(body)
        await js.publish_async(
            event_subject(settings, e.service, e.type, e.partition_key), body,
            headers={"Nats-Msg-Id": f"{e.service}:{e.position}", "Sixstep-Type": e.type})
    await js.publish_async_completed()
    stored = (await js.stream_info(settings.stream_name)).state.messages
    await nc.close()
    if stored != len(envelopes):
        raise SystemExit(f"the stream holds {stored} events, {len(envelopes)} were published")
    return sample, size


# -- baselines ---------------------------------------------------------------------------------

def decode_rate(bodies: list[bytes]) -> float:
    start = time.perf_counter()
    for body in bodies:
        REGISTRY.current(Envelope.model_validate_json(body))
    return len(bodies) / (time.perf_counter() - start)


async def raw_fetch(nc: NATS, settings: Settings, subjects: list[str], batch: int
                    ) -> tuple[int, float]:
    """Pull fetch + ack of everything on ``subjects``, nothing decoded: (messages, per s)."""
    js = nc.jetstream()
    name = f"raw-{uuid.uuid4().hex[:8]}"
    await js.add_consumer(settings.stream_name, ConsumerConfig(
        durable_name=name, ack_policy=AckPolicy.EXPLICIT, filter_subjects=subjects,
        max_ack_pending=max(batch * 4, 1000)))
    sub = await js.pull_subscribe_bind(name, settings.stream_name)
    total = (await js.consumer_info(settings.stream_name, name)).num_pending
    got = 0
    start = time.perf_counter()
    while got < total:
        msgs = await sub.fetch(batch, timeout=5)
        for m in msgs:
            await m.ack()
        got += len(msgs)
    rate = got / (time.perf_counter() - start)
    await sub.unsubscribe()
    await js.delete_consumer(settings.stream_name, name)
    return got, rate


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


# -- the consumers -----------------------------------------------------------------------------

@dataclass
class Measured:
    consumer: str
    service: str
    handler: str
    events: int
    rate: float
    raw_rate: float
    appended: int = 0
    group_commit: float = 0.0
    batches: int = 0


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[Runtime]:
    async with app.router.lifespan_context(app):
        yield app.state.runtime


async def stored_position(runtime: Runtime) -> int:
    relay = runtime.relay
    assert relay is not None
    return int(await runtime.pool.fetchval(
        f'SELECT COALESCE(max(notification_id), 0) FROM "{relay.schema}"."{relay.table}"'))


async def drain(consumer: Consumer) -> tuple[int, float]:
    """Run the consumer until it has applied its whole backlog: (events, seconds)."""
    await consumer.ensure()
    js = consumer.nc.jetstream()
    expected = (await js.consumer_info(consumer.settings.stream_name, consumer.name)).num_pending
    start = time.perf_counter()
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
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    if stats.dead_lettered or stats.retried:
        raise SystemExit(f"{consumer.name}: {stats.dead_lettered} dead-lettered, "
                         f"{stats.retried} retried: the backlog is not what it expects")
    return expected, elapsed


async def measure_service(runtime: Runtime, only: set[str] | None, gc_events: int,
                          group_commit: Callable[[int], Any] | None) -> list[Measured]:
    out: list[Measured] = []
    raw_nc = await connect(runtime.settings, "bench-raw")
    try:
        for name, consumer in runtime.consumers.items():
            if only and name not in only:
                continue
            _, raw_rate = await raw_fetch(raw_nc, runtime.settings, consumer.filter_subjects,
                                          consumer.batch)
            before = await stored_position(runtime)
            print(f"draining {name}", file=sys.stderr, flush=True)  # a profiler's cue
            events, seconds = await drain(consumer)
            print(f"drained {name}", file=sys.stderr, flush=True)
            appended = await stored_position(runtime) - before
            out.append(Measured(name, runtime.service, type(consumer.handler).__name__, events,
                                events / seconds, raw_rate, appended,
                                batches=consumer.stats.batches))
        if group_commit is not None and any(m.appended for m in out):
            rate = await group_commit(gc_events)
            for m in out:
                if m.appended:
                    m.group_commit = rate
    finally:
        await raw_nc.close()
    return out


async def run(settings: Settings, events: int, only: set[str] | None) -> dict[str, Any]:
    f: dict[str, Any] = {}
    nc = await connect(settings, "bench-setup")
    await ensure_streams(nc.jetstream(), settings)
    start = time.perf_counter()
    backlog, envelopes = build_backlog(events)
    sample, f["bytes"] = await publish(settings, envelopes)
    f["generated_s"] = time.perf_counter() - start
    f["events"], f["visits"] = len(envelopes), backlog.visits
    f["days"] = (envelopes[0].occurred_at.date(), envelopes[-1].occurred_at.date())
    f["by_service"] = Counter(e.service for e in envelopes)
    del backlog, envelopes  # the consumers run in a process of the services' size
    f["decode_per_s"] = decode_rate(sample)
    del sample
    _, f["raw_all_per_s"] = await raw_fetch(nc, settings, [f"{settings.subject_prefix}.>"],
                                            settings.consumer_batch)
    await nc.close()
    gc_events = max(2000, events // 20)
    measured: list[Measured] = []
    followup_clock = ManualClock(START.astimezone(UTC))
    apps: list[tuple[FastAPI, Callable[[FastAPI], Callable[[int], Any]] | None]] = [
        (intake_main.create_app(settings), None),
        (followup_main.create_app(settings, clock=followup_clock),
         lambda app: lambda n: followup_group_commit(app.state.followups, n)),
        (feedback_main.create_app(settings, clock=lambda: START.astimezone(UTC)),
         lambda app: lambda n: feedback_group_commit(app.state.feedback, n)),
    ]
    for app, group_commit in apps:
        async with lifespan(app) as runtime:
            measured += await measure_service(runtime, only, gc_events,
                                              group_commit(app) if group_commit else None)
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
            what = {"followup": "schedule()", "feedback": "request_survey()"}[m.service]
            label = f"group commit: {m.service} {what}, 512 callers"
            print(f"{label:<56} {m.group_commit:>9,.0f} /s")
    for m in f["measured"]:
        label = f"{m.consumer}: raw fetch + ack of its {m.events:,}"
        print(f"{label:<56} {m.raw_rate:>9,.0f} /s")
        label = f"{m.consumer}: {m.handler}"
        line = f"{label:<56} {m.rate:>9,.0f} /s  = {m.rate / m.raw_rate:.2f} x raw_fetch"
        if m.appended:
            seconds = m.events / m.rate
            appends = m.appended / seconds
            line += (f"; {m.appended:,} appended = {appends:,.0f} /s = "
                     f"{appends / m.group_commit:.2f} x group_commit")
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--only", nargs="*", help="only these consumers (e.g. followup-rules)")
    args = parser.parse_args()
    configure_logging("WARNING", json=False)
    logging.getLogger().setLevel(logging.WARNING)
    with servers() as srv:
        settings = Settings(database_url=srv.database_url, nats_url=srv.nats_url,
                            stream_name="BENCH", subject_prefix="bench", schema_prefix="bench_",
                            roles={"api"}, log_level="WARNING", log_json=False)
        figures = asyncio.run(run(settings, args.events, set(args.only or []) or None))
    report(figures)


if __name__ == "__main__":
    main()

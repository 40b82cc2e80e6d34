"""The synthetic log every benchmark that needs one publishes: one generator.

Centers at their real daily rate (127,467 visits a year each, about 510 a working day) or
fewer, spread over the working days from a first day, each visit with what follows it:
restatement, concerns, guidance, actions, the odd deadline and obligation, resolution and the
odd reopening; the survey and its answer, expiry or withdrawal; bad reviews with their
rectification and revisit; the follow-ups and how they went. Every payload goes through its
contract in ``shared/contracts`` and every envelope is encoded as the outbox relay encodes it
(``shared.eventstore.outbox.encode``), each service's positions and each aggregate's versions
counting up as the relays would have published them.

Two orders:

* :func:`in_visit_order` — visit by visit, a case's whole life in one run of the stream;
  streams with bounded memory, for logs of millions of events (``feedback_figures.py``,
  ``rebuild_all.py``, ``replay_export.py``);
* :func:`in_time_order` — the whole log sorted by time, as a real year reaches the stream;
  held in memory, for backlogs of some hundred thousand events (``consumers.py``).

:class:`Publisher` puts envelopes onto the stream as the relays do (subject, ``Nats-Msg-Id``,
pipelined, every one acknowledged; with ``sampled``, a ``traceparent`` as a relay with tracing
on gives each) and counts them.

For a whole city (``city_month.py``, ``scale_out.py``): :func:`city` names 220 centers,
:func:`one_month` gives a month of their visits with the office day shaped by
:data:`OFFICE_HOURS` (the morning peak), and :func:`write_log` / :func:`read_log` keep a
generated log in a gzip file (~107 B an event), so that tens of millions of events are
generated once per set of parameters and published from there. :func:`write_part` writes one
slice of a day on its own (its visits and stories drawn from the seed, the day and the slice),
so that ``city_log.py`` makes the month's log on every core.
"""

from __future__ import annotations

import asyncio
import gzip
import random
import struct
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from itertools import takewhile
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from services.followup.domain import obligation_aggregate_id
from shared.bus.jetstream import connect, ensure_streams, event_subject
from shared.contracts import REGISTRY, Envelope, event_id_for
from shared.eventstore.outbox import encode
from shared.kernel.calendar import WorkingCalendar
from shared.settings import Settings
from shared.tracing import TRACEPARENT

TZ = ZoneInfo("Asia/Shanghai")
CALENDAR = WorkingCalendar(TZ)  # the package's official years; provisional after
YEAR_VISITS = 127_467  # visits a year at one center
CENTERS = [f"CENTER-{i + 1:02d}" for i in range(8)]
PER_DAY = round(YEAR_VISITS / 250)  # visits per center per working day
EVENTS_PER_VISIT = 13.8  # about, measured (a year of 1,528 visits: 21,106 events)
ITEMS = ["SA-HARDSHIP-SUBSIDY", "SA-MINIMUM-LIVING", "EMP-UNEMPLOYMENT-REGISTRATION",
         "EMP-UNEMPLOYMENT-INSURANCE", "MED-REIMBURSEMENT", "PEN-PENSION-CERTIFICATE",
         "SA-TEMPORARY-ASSISTANCE", "HOU-RENTAL-SUBSIDY", "DIS-DISABILITY-CARD",
         "ELD-ELDERLY-ALLOWANCE"]
WORDS = ["家里老人住院了，想问问临时救助怎么申请", "失业了三个月，想办失业登记",
         "上个月的医疗费报销还没到账", "想了解低保的条件，材料不知道带得对不对",
         "养老金资格认证要怎么做", "房租涨了，问问租房补贴"]
EMOTIONS = (["calm", "anxious", "upset", "angry", "distressed"], [55, 25, 12, 5, 3])
LEVELS = (["very_satisfied", "satisfied", "basically_satisfied", "dissatisfied",
           "very_dissatisfied"], [700, 250, 45, 4, 1])
SURVEY_CHANNEL = {"counter": "tablet", "phone": "phone_callback", "home_visit": "sms"}
OFFICE_HOURS = (22, 18, 12, 6, 10, 14, 12, 6)
"""A day's visits by the hour they open, in percent, from 9:00 to 16:30 (the last hour half):
the morning peak (9:00-11:00 holds 40 %: residents come when the office opens, and an
affair that needs a second counter must start before the lunch break), the lunch hour at its
lowest, a smaller rise after it. An assumption, stated in benchmarks/README.md."""
PEAK_HOURS = 2  # the morning peak: 9:00-11:00


@dataclass
class Pending:
    """One event before its place on the stream is known."""

    at: datetime
    order: int
    service: str
    type: str
    aggregate_id: uuid.UUID
    case_id: uuid.UUID | None
    center_id: str
    actor: str
    payload: dict[str, Any]


def city(centers: int) -> list[str]:
    """The first ``centers`` centers of a city (220 in Shanghai's districts and streets)."""
    return CENTERS[:centers] if centers <= len(CENTERS) else [
        f"CENTER-{i + 1:03d}" for i in range(centers)]


def office_minutes(rng: random.Random, visits: int,
                   hours: Sequence[float] | None) -> list[int]:
    """Minutes after 9:00 at which ``visits`` open, sorted: evenly over the office day
    (9:00-16:30), or with ``hours`` weighing each hour from 9:00 (the last one half)."""
    if hours is None:
        return sorted(rng.randint(0, 8 * 60 - 30) for _ in range(visits))
    last = len(hours) - 1
    return sorted(h * 60 + rng.randrange(30 if h == last else 60)
                  for h in rng.choices(range(len(hours)), hours, k=visits))


def visit_times(rng: random.Random, per_day: float, first: date,
                centers: list[str] = CENTERS, hours: Sequence[float] | None = None
                ) -> Iterator[tuple[str, datetime]]:
    """(center, opened) for ever, from ``first``: ``per_day`` visits per center and working
    day (a fraction carried to the next day), at random minutes of the office day (evenly, or
    shaped by ``hours``: :data:`OFFICE_HOURS`), every center's visit of a minute in turn."""
    day, owed = first, 0.0
    while True:
        if CALENDAR.is_working_day(day):
            owed += per_day
            today, owed = int(owed), owed - int(owed)
            morning = datetime(day.year, day.month, day.day, 9, tzinfo=TZ)
            for minute in office_minutes(rng, today, hours):
                for center in centers:
                    yield center, morning + timedelta(minutes=minute)
        day += timedelta(days=1)


@dataclass
class Visits:
    """Visits and everything they lead to, each payload checked against its contract."""

    rng: random.Random
    visits: int = 0
    _order: int = 0
    _out: list[Pending] = field(default_factory=list)
    _last_at: dict[uuid.UUID, datetime] = field(default_factory=dict)

    def uid(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def add(self, service: str, type_: str, center: str, case_id: uuid.UUID | None,
            aggregate_id: uuid.UUID, at: datetime, payload: dict[str, Any],
            actor: str = "clerk") -> datetime:
        contract = REGISTRY.get(type_)
        assert contract.service == service, (type_, service)
        body = contract.payload.model_validate(payload).model_dump(mode="json")
        at = max(at, self._last_at.get(aggregate_id, at))  # an aggregate's events in order
        self._last_at[aggregate_id] = at
        self._out.append(Pending(at, self._order, service, type_, aggregate_id, case_id,
                                 center, actor, body))
        self._order += 1
        return at

    def visit(self, center: str, opened: datetime) -> list[Pending]:
        """One resident's visit and what follows it, in the order it was recorded."""
        self._out, self._last_at = [], {}  # a visit's aggregates are its own
        self._visit(center, opened)
        return self._out

    def _visit(self, center: str, opened: datetime) -> None:
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
            noted = intake("DeadlineNoted", 14, {"deadline_id": deadline[0],
                                                 "due_on": deadline[1],
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
                         "obligation_id": obligation, "resident_id": resident,
                         "cadence": "monthly", "next_due_on": opened.date() + timedelta(days=30),
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


@dataclass
class Numbering:
    """Each service's positions and each aggregate's versions, counted as the relays publish;
    every ``v1_every``-th ConcernsNoted stored as its v1 (replay then upcasts it)."""

    rng: random.Random
    v1_every: int = 0
    causation: str = "key-"  # a part of a log written in parts (``write_part``): its own
    positions: Counter[str] = field(default_factory=Counter)
    versions: Counter[uuid.UUID] = field(default_factory=Counter)
    concerns: int = 0

    def envelope(self, p: Pending) -> Envelope:
        self.positions[p.service] += 1
        self.versions[p.aggregate_id] += 1
        version = self.versions[p.aggregate_id]
        contract = REGISTRY.get(p.type)
        stored, payload = contract.version, p.payload
        if p.type == "ConcernsNoted":
            self.concerns += 1
            if self.v1_every and self.concerns % self.v1_every == 0:
                stored = 1
                payload = {k: v for k, v in payload.items() if k != "needs_defusing"}
        return Envelope(
            event_id=event_id_for(p.service, p.aggregate_id, version), type=p.type,
            version=stored, service=p.service, position=self.positions[p.service],
            aggregate_id=p.aggregate_id, aggregate_version=version, case_id=p.case_id,
            center_id=p.center_id, occurred_at=p.at,
            recorded_at=p.at + timedelta(milliseconds=self.rng.randint(5, 80)),
            causation_id=f"{self.causation}{p.order}", correlation_id=str(p.case_id),
            actor=p.actor, payload=payload)


def in_visit_order(visits: Iterable[tuple[str, datetime]], *, seed: int, events: int = 0,
                   v1_every: int = 0) -> Iterator[Envelope]:
    """The log visit by visit, until ``visits`` end or (with ``events``) that many were
    made; memory stays at one visit."""
    story = Visits(random.Random(seed))
    numbering = Numbering(story.rng, v1_every)
    made = 0
    for center, opened in visits:
        for pending in story.visit(center, opened):
            yield numbering.envelope(pending)
            made += 1
            if made == events:
                return


def part_visits(day: date, part: int, parts: int, centers: list[str], seed: int,
                hours: Sequence[float] | None = OFFICE_HOURS) -> Iterator[tuple[str, datetime]]:
    """(center, opened) of the ``part``-th of ``parts`` slices of ``day``'s office minutes:
    every center at its real daily rate, the day shaped by ``hours``, the day's minutes drawn
    from ``seed`` and the day alone (every slice draws the same, whatever else is made)."""
    rng = random.Random(day_seed(seed, day))
    minutes = office_minutes(rng, PER_DAY, hours)
    morning = datetime(day.year, day.month, day.day, 9, tzinfo=TZ)
    for minute in minutes[len(minutes) * part // parts:len(minutes) * (part + 1) // parts]:
        for center in centers:
            yield center, morning + timedelta(minutes=minute)


def day_seed(seed: int, day: date) -> int:
    return seed * 1_000_000 + day.toordinal()


def write_part(path: Path, day: date, part: int, parts: int, centers: list[str], seed: int,
               hours: Sequence[float] | None = OFFICE_HOURS) -> Counter[str]:
    """One slice of a day (:func:`part_visits`) visit by visit into a log file of its own, its
    stories drawn from ``seed``, the day and the slice alone: a month's log is its days'
    slices concatenated, made on as many cores as there are, the same whichever core made
    which. Each service's positions count from 1 in the file (:func:`read_log` numbers them
    on through the parts); the causation ids name the slice. Returns :func:`write_log`'s
    counts."""
    story = Visits(random.Random(day_seed(seed, day) * 64 + part + 1))
    numbering = Numbering(story.rng, causation=f"key-{day:%Y%m%d}-{part}-")
    return write_log(path, (numbering.envelope(pending)
                            for center, opened in part_visits(day, part, parts, centers, seed,
                                                              hours)
                            for pending in story.visit(center, opened)))


def working_days(year: int, month: int) -> list[date]:
    first = date(year, month, 1)
    after = date(year + month // 12, month % 12 + 1, 1)
    return [first + timedelta(days=n) for n in range((after - first).days)
            if CALENDAR.is_working_day(first + timedelta(days=n))]


def in_time_order(visits: Iterable[tuple[str, datetime]], *, seed: int,
                  events: int) -> tuple[int, list[Envelope]]:
    """(visits, the log) of whole visits until about ``events`` were made, sorted by time."""
    story = Visits(random.Random(seed))
    pending: list[Pending] = []
    for center, opened in visits:
        pending += story.visit(center, opened)
        if len(pending) >= events:
            break
    numbering = Numbering(story.rng)
    return story.visits, [numbering.envelope(p)
                          for p in sorted(pending, key=lambda p: (p.at, p.order))]


@dataclass(frozen=True)
class Record:
    """One envelope as the relay publishes it: what its subject and message id are made of,
    and its encoded body."""

    service: str
    type: str
    partition_key: uuid.UUID
    position: int
    body: bytes

    @classmethod
    def of(cls, e: Envelope) -> Record:
        return cls(e.service, e.type, e.partition_key, e.position, encode(e))


SERVICES = ("intake", "followup", "feedback")
_HEAD = struct.Struct("<BB16sQI")  # service, type's length, partition key, position, body's


def write_log(path: Path, envelopes: Iterable[Envelope]) -> Counter[str]:
    """``envelopes`` encoded into ``path`` (gzip, fastest level), written to a temporary name
    and moved into place when whole: a cut-short generation never passes for a log. Returns the
    envelopes counted by service and, under ``"visits:<hour>"``, the visits (their
    CaseOpened) by the hour they opened."""
    return write_records(path, ((Record.of(e), e.occurred_at) for e in envelopes))


def write_records(path: Path, records: Iterable[tuple[Record, datetime | None]]
                  ) -> Counter[str]:
    """:func:`write_log` of records, each with when it occurred (read of a CaseOpened only)."""
    counts: Counter[str] = Counter()
    part = path.with_name(path.name + ".part")
    buffer = bytearray()
    with gzip.open(part, "wb", compresslevel=1) as out:
        for r, occurred_at in records:
            kind = r.type.encode()
            buffer += _HEAD.pack(SERVICES.index(r.service), len(kind), r.partition_key.bytes,
                                 r.position, len(r.body))
            buffer += kind
            buffer += r.body
            if len(buffer) >= 1 << 20:
                out.write(buffer)
                buffer.clear()
            counts[r.service] += 1
            if r.type == "CaseOpened":
                assert occurred_at is not None
                counts[f"visits:{occurred_at.astimezone(TZ).hour:02d}"] += 1
        out.write(buffer)
    part.rename(path)
    return counts


def cut_log(path: Path, to: Path, events: int) -> Counter[str]:
    """The first ``events`` records of the log at ``path`` into ``to``; its counts."""
    return write_records(to, ((r, datetime.fromisoformat(orjson.loads(r.body)["occurred_at"])
                               if r.type == "CaseOpened" else None)
                              for r in read_log(path, events)))


def read_log(path: Path, limit: int = 0) -> Iterator[Record]:
    """The records :func:`write_log` wrote (several logs' files concatenated are one log), in
    order, the first ``limit`` of them (0: all). Each service's positions are given here, as
    a relay numbers its outbox: the n-th event of a service read is its position n (a log
    written in parts, :func:`write_part`, holds each part's own)."""
    positions = [0] * len(SERVICES)
    head = _HEAD.size
    read = 0
    with gzip.open(path, "rb") as f:
        buf, at = b"", 0
        while True:
            if len(buf) - at < head:
                buf, at = buf[at:] + f.read(1 << 20), 0
                if len(buf) < head:
                    break
            service, kind, key, position, size = _HEAD.unpack_from(buf, at)
            end = at + head + kind + size
            if end > len(buf):
                more = f.read(max(1 << 20, end - at))
                if not more:
                    break
                buf, at = buf[at:] + more, 0
                continue
            body = buf[at + head + kind:end]
            positions[service] = n = positions[service] + 1
            if position != n:
                body = body.replace(b'"position":%d,' % position, b'"position":%d,' % n, 1)
            yield Record(SERVICES[service], buf[at + head:at + head + kind].decode(),
                         uuid.UUID(bytes=key), n, body)
            at = end
            read += 1
            if read == limit:
                return
    if len(buf) != at:  # a cut-short file is never read as a log
        raise ValueError(f"{path} ends in the middle of a record")


@dataclass
class Publisher:
    """Envelopes onto the stream as the relays publish them (subject, Nats-Msg-Id, pipelined,
    every one acknowledged), counted by service and type."""

    settings: Settings
    events: int = 0
    bytes: int = 0
    by_service: Counter[str] = field(default_factory=Counter)
    by_type: Counter[str] = field(default_factory=Counter)
    refused: int = 0
    sample_every: int = 0  # keep every n-th body (for a decoding baseline)
    sample: list[bytes] = field(default_factory=list)
    shared: bool = False  # others publish to the stream too: only refusals are checked
    #: With tracing on (as deployed), the relay gives every message a ``traceparent``: the
    #: trace of the request that stored the event, sampled at the deployment's share. With a
    #: share here, each event gets one (a trace of its own, sampled at that share, seeded);
    #: None: no ``traceparent`` (a relay with tracing off), every consumer span a new root.
    sampled: float | None = None
    seed: int = 20250303

    def _acked(self, ack: asyncio.Future[Any]) -> None:
        if ack.cancelled() or ack.exception() is not None:
            self.refused += 1

    async def publish(self, envelopes: Iterable[Envelope]) -> None:
        await self.publish_records(Record.of(e) for e in envelopes)

    async def publish_records(self, records: Iterable[Record]) -> None:
        nc = await connect(self.settings, "bench-publisher")
        rng = random.Random(self.seed)
        try:
            js = nc.jetstream(publish_async_max_pending=4000)
            await ensure_streams(js, self.settings)
            for r in records:
                if self.sample_every and self.events % self.sample_every == 0:
                    self.sample.append(r.body)
                headers = {"Nats-Msg-Id": f"{r.service}:{r.position}", "Sixstep-Type": r.type}
                if self.sampled is not None:
                    flags = "01" if rng.random() < self.sampled else "00"
                    headers[TRACEPARENT] = (f"00-{rng.getrandbits(128) or 1:032x}-"
                                            f"{rng.getrandbits(64) or 1:016x}-{flags}")
                ack = await js.publish_async(
                    event_subject(self.settings, r.service, r.type, r.partition_key), r.body,
                    headers=headers)
                ack.add_done_callback(self._acked)
                self.events += 1
                self.bytes += len(r.body)
                self.by_service[r.service] += 1
                self.by_type[r.type] += 1
            await js.publish_async_completed()
            stored = (await js.stream_info(self.settings.stream_name)).state.messages
        finally:
            await nc.close()
        if self.refused or (stored != self.events and not self.shared):
            raise SystemExit(f"the stream holds {stored} events of {self.events} published "
                             f"({self.refused} refused)")


def one_year(year: int, visits_per_center: float, seed: int) -> Iterator[tuple[str, datetime]]:
    """(center, opened) over ``year``'s working days: ``visits_per_center`` at each center."""
    first, after = date(year, 1, 1), date(year + 1, 1, 1)
    working = sum(CALENDAR.is_working_day(first + timedelta(days=n))
                  for n in range((after - first).days))
    return takewhile(lambda visit: visit[1].date() < after,
                     visit_times(random.Random(seed), visits_per_center / working, first))


def visits_for(events: int) -> int:
    """Visits a center for a synthetic year of about ``events`` events over CENTERS."""
    return max(1, round(events / EVENTS_PER_VISIT / len(CENTERS)))


async def publish_year(settings: Settings, visits_per_center: int, year: int = 2025
                       ) -> Publisher:
    """A synthetic year onto the stream, visit by visit: ``visits_per_center`` at each of the
    eight centers, spread over the year's working days."""
    log = Publisher(settings)
    await log.publish(in_visit_order(one_year(year, visits_per_center, seed=year * 10_000 + 101),
                                     seed=year * 10_000 + 101))
    return log


def one_month(year: int, month: int, centers: list[str], seed: int,
              hours: Sequence[float] | None = OFFICE_HOURS) -> Iterator[tuple[str, datetime]]:
    """(center, opened) over the working days of ``month``: every center at its real daily
    rate, the day shaped by ``hours``."""
    first = date(year, month, 1)
    after = date(year + month // 12, month % 12 + 1, 1)
    return takewhile(lambda visit: visit[1].date() < after,
                     visit_times(random.Random(seed), PER_DAY, first, centers, hours))

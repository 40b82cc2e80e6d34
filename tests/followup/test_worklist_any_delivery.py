"""Whatever the delivery, the worklist's batches leave what one event at a time leaves.

The day's follow-ups are scheduled, fall due, are reassigned, prioritised, rescheduled and
done; the stream hands them over as it may: a batch redelivered after the ones behind it
(a crash after its commit, before its ack), the same follow-up changed several times in a
batch, a scheduling in the same batch as its changes or after them, a change of a follow-up
with no row yet, a row already between a batch's first change and its last. Batched live
(``apply``), and batched as a rebuild does (``copy_apply``, the live handler where it gives
up), the ``followups`` and ``timers`` tables are those of the same events applied one at a
time, in the order they came, compared whole."""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from services.followup.projections import DDL, FOLLOWUP_COLUMNS, WorklistProjection
from shared.contracts import Envelope
from shared.readmodels.readmodel import make_tables
from shared.settings import Settings
from tests.support import bare_envelope

TZ = ZoneInfo("Asia/Shanghai")
CENTER = "SH-PD-HUAMU"
#: The calendar's edges: Sun 20 Dec 2026, 31 Dec 23:30 in Shanghai, a provisional 2027
#: day, 29 Feb 2028.
DAYS = [datetime(2026, 12, 20, 2, tzinfo=UTC), datetime(2026, 12, 31, 15, 30, tzinfo=UTC),
        datetime(2027, 2, 10, 1, tzinfo=UTC), datetime(2028, 2, 29, 7, tzinfo=UTC)]
SEEDS = range(60)


class _Log:
    """The follow-up service's log: each follow-up's events, versions rising from 1."""

    def __init__(self, rnd: random.Random) -> None:
        self.rnd = rnd
        self.position = 0

    def event(self, type_: str, fid: uuid.UUID, version: int, at: datetime,
              payload: dict[str, Any]) -> Envelope:
        self.position += 1
        return bare_envelope(type_, at, service="followup", payload=payload,
                             actor="system:rules").model_copy(update={
                                 "aggregate_id": fid, "aggregate_version": version,
                                 "position": self.position, "center_id": CENTER})

    def life(self, fid: uuid.UUID) -> list[Envelope]:
        """A follow-up's day: scheduled, then a few changes in some order."""
        rnd = self.rnd
        at = rnd.choice(DAYS) + timedelta(minutes=rnd.randrange(600))
        clerk = rnd.choice(["clerk-017", "clerk-042", None])
        events = [self.event("FollowUpScheduled", fid, 1, at, {
            "reason": "post_resolution_check", "resident_id": str(uuid.uuid4()),
            "due_at": (at + timedelta(days=3)).isoformat(), "assigned_clerk": clerk,
            "assigned_team": None if clerk else "followup-desk", "priority": "normal",
            "service_item": "hardship-aid", "source": "intake:CaseResolved",
            "source_id": str(uuid.uuid4()), "basis": rnd.choice(["official", "provisional"]),
            "contact": True})]
        for version in range(2, rnd.randrange(2, 8)):
            at += timedelta(hours=rnd.randrange(1, 30))
            kind = rnd.choice(["due", "missed", "escalated", "reassigned", "prioritised",
                               "rescheduled", "withdrawn", "confirmed", "stays", "completed"])
            if kind == "due":
                e = self.event("FollowUpDue", fid, version, at, {
                    "due_at": at.isoformat(), "overdue_at": (at + timedelta(hours=8)).isoformat()})
            elif kind == "missed":
                e = self.event("FollowUpMissed", fid, version, at, {
                    "escalate_at": (at + timedelta(days=1)).isoformat()})
            elif kind == "escalated":
                e = self.event("FollowUpEscalated", fid, version, at,
                               {"escalated_to": "supervisors"})
            elif kind == "reassigned":
                to = rnd.choice(["clerk-099", None])
                e = self.event("FollowUpReassigned", fid, version, at, {
                    "assigned_clerk": to, "assigned_team": None if to else "followup-desk",
                    "case_id": rnd.choice([None, str(uuid.uuid4())])})
            elif kind == "prioritised":
                e = self.event("FollowUpPrioritised", fid, version, at, {"priority": "high"})
            elif kind == "rescheduled":
                to = rnd.choice(["clerk-017", None])
                e = self.event("FollowUpRescheduled", fid, version, at, {
                    "due_at": (at + timedelta(days=rnd.randrange(1, 5))).isoformat(),
                    "assigned_clerk": to, "assigned_team": None if to else "followup-desk",
                    "basis": rnd.choice(["official", "provisional"]), "reason": "asked"})
            elif kind == "stays":
                e = self.event("FollowUpRescheduled", fid, version, at, {
                    "due_at": at.isoformat(), "assigned_clerk": None, "assigned_team": None,
                    "basis": "official", "stays": True, "reason": "unanswered"})
            elif kind == "withdrawn":
                e = self.event("FollowUpContactWithdrawn", fid, version, at, {})
            elif kind == "confirmed":
                e = self.event("FollowUpDueConfirmed", fid, version, at, {
                    "basis": "official", "published_due_at": rnd.choice(
                        [None, (at + timedelta(days=1)).isoformat()])})
            else:
                e = self.event("FollowUpCompleted", fid, version, at,
                               {"outcome": "solved", "channel": "phone"})
            events.append(e)
        return events

    def delivery(self, lives: int) -> list[list[Envelope]]:
        """The lives interleaved in log order (each follow-up's own in order), cut into
        batches; some batches come again later (redelivered after newer ones), some events
        twice in a batch, now and then a follow-up's scheduling after its changes."""
        rnd = self.rnd
        queues = [self.life(uuid.uuid4()) for _ in range(lives)]
        log: list[Envelope] = []
        while any(queues):
            queue = rnd.choice([q for q in queues if q])
            log.append(queue.pop(0))
        for _ in range(rnd.randrange(6)):  # a stale event moved later: out of order
            i = rnd.randrange(len(log))
            log.insert(rnd.randrange(i, len(log) + 1), log.pop(i))
        batches: list[list[Envelope]] = []
        i = 0
        while i < len(log):
            size = rnd.randrange(1, 12)
            batches.append(log[i:i + size])
            i += size
        delivered: list[list[Envelope]] = []
        for batch in batches:
            if rnd.random() < 0.15 and batch:
                batch = [*batch, rnd.choice(batch)]  # an event twice in one batch
            delivered.append(batch)
            if rnd.random() < 0.25:
                delivered.append(list(rnd.choice(delivered)))  # an older batch again
            if rnd.random() < 0.25:  # what came since a point, again, cut anew
                since = [e for b in delivered for e in b][-rnd.randrange(1, 15):]
                cut = rnd.randrange(len(since) + 1)
                delivered += [b for b in (since[:cut], since[cut:]) if b]
        return delivered


async def _rows(conn: asyncpg.Connection) -> tuple[list[tuple[Any, ...]], ...]:
    followups = [tuple(r) for r in await conn.fetch(
        f"SELECT {', '.join(FOLLOWUP_COLUMNS)} FROM followups ORDER BY follow_up_id")]
    timers = [tuple(r) for r in await conn.fetch(
        "SELECT aggregate_id, kind, fire_at, version FROM timers ORDER BY aggregate_id")]
    return followups, timers


async def _live(conn: asyncpg.Connection, batches: Sequence[Sequence[Envelope]]) -> None:
    projection = WorklistProjection(TZ)
    for batch in batches:
        async with conn.transaction():
            await projection.apply(conn, batch, projection.prepare(batch))


async def _rebuilt(conn: asyncpg.Connection, batches: Sequence[Sequence[Envelope]]) -> None:
    """As ``Rebuild._apply``: the bulk path, the live handler for a batch it gives up on."""
    projection = WorklistProjection(TZ)
    for batch in batches:
        try:
            async with conn.transaction():
                await projection.copy_apply(conn, batch)
        except asyncpg.UniqueViolationError:
            async with conn.transaction():
                await projection.apply(conn, batch)


async def test_the_worklist_is_what_one_event_at_a_time_leaves_whatever_the_delivery(
        settings: Settings) -> None:
    schema = settings.schema_for("followup")
    ways = ("batched", "rebuilt", "one_by_one")
    # Each way has a connection of its own, its tables made once there and emptied (DELETE)
    # for each seed: dropped and made anew on one connection (DDL, TRUNCATE's new files, every
    # statement prepared again against the way's schema) they took 70 % of the test's time.
    conns = {way: await asyncpg.connect(settings.database_url) for way in ways}
    try:
        emptied = {}
        for way, conn in conns.items():
            await make_tables(conn, f"{schema}_{way}", DDL)
            tables = await conn.fetch("SELECT format('%I.%I', schemaname, tablename) AS name"
                                      " FROM pg_tables WHERE schemaname = $1", f"{schema}_{way}")
            assert tables and not await conn.fetchval(  # emptied, they are as new ones
                "SELECT count(*) FROM pg_sequences WHERE schemaname = $1", f"{schema}_{way}")
            emptied[way] = "; ".join(f"DELETE FROM {t['name']}" for t in tables)
        for seed in SEEDS:
            delivered = _Log(random.Random(seed)).delivery(lives=6)
            left = {}
            for way, conn in conns.items():
                await conn.execute(emptied[way])
                if way == "batched":
                    await _live(conn, delivered)
                elif way == "rebuilt":
                    await _rebuilt(conn, delivered)
                else:
                    await _live(conn, [[e] for batch in delivered for e in batch])
                left[way] = await _rows(conn)
            assert left["batched"] == left["one_by_one"], seed
            assert left["rebuilt"] == left["one_by_one"], seed
    finally:
        for way, conn in conns.items():
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}_{way}" CASCADE')
            await conn.close()


async def test_a_reassignment_that_came_late_stays_unapplied_when_it_comes_again_with_the_next(
        settings: Settings) -> None:
    """A follow-up falls due, is prioritised, then its reassignment (an earlier version)
    arrives late: one at a time it is passed over (the row is past it). It comes again in a
    batch with the follow-up's completion: the row is between the batch's first change and
    its last, so the completion is taken and the reassignment still not."""
    log = _Log(random.Random(0))
    fid, at = uuid.uuid4(), DAYS[1]
    life = [log.event("FollowUpScheduled", fid, 1, at, {
        "reason": "post_resolution_check", "resident_id": str(uuid.uuid4()),
        "due_at": (at + timedelta(days=3)).isoformat(), "assigned_clerk": "clerk-017",
        "assigned_team": None, "priority": "normal", "service_item": "hardship-aid",
        "source": "intake:CaseResolved", "source_id": str(uuid.uuid4()), "basis": "official",
        "contact": True}),
        log.event("FollowUpDue", fid, 2, at, {"due_at": at.isoformat(),
                                              "overdue_at": at.isoformat()}),
        log.event("FollowUpReassigned", fid, 3, at, {"assigned_clerk": "clerk-099",
                                                     "assigned_team": None}),
        log.event("FollowUpPrioritised", fid, 4, at, {"priority": "high"}),
        log.event("FollowUpCompleted", fid, 5, at, {"outcome": "solved", "channel": "phone"})]
    s1, d2, r3, p4, c5 = life
    delivered = [[s1, d2], [p4], [r3], [r3, c5]]
    conn = await asyncpg.connect(settings.database_url)
    schema = settings.schema_for("followup")
    try:
        left = {}
        for way, batches in (("batched", delivered),
                             ("one_by_one", [[e] for b in delivered for e in b])):
            await make_tables(conn, f"{schema}_{way}", DDL)
            await _live(conn, batches)
            left[way] = await _rows(conn)
            row = await conn.fetchrow("SELECT assigned_clerk, status, version FROM followups")
            assert tuple(row) == ("clerk-017", "completed", 5), (way, row)
        assert left["batched"] == left["one_by_one"]
    finally:
        for way in ("batched", "one_by_one"):
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}_{way}" CASCADE')
        await conn.close()

"""Reported months: closing a center's month (by a supervisor, or by itself some days after
it ended) records its figures as reported; late events that change them later are recorded as
a revision naming those events. ``GET /figures`` answers a closed month with what was reported
(``reported``), the public page (``public.py``) shows nothing else.

The figures are counted from the figures read model (``figures/``); the late events are the
ones it noted (``fig_late_events``: events that changed a row dated in an earlier month than
the one they were recorded in, or in a month closed before they were applied, whenever they
were recorded). Which of them a count may have missed is decided by where the count stood in
the notes, not by ``recorded_at``: a close, and each count of a closed month, marks the month
(``fig_closed_marks``) under the month's lock before it counts (``_mark``), and every note
after the mark is counted again. One replica runs the scheduler (an advisory lock); a close is
once per center and month whatever races (the aggregate's id is the center and month).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import asyncpg
import orjson
import structlog

from services.feedback.figures import FIGURES, FigureQuery, compute
from services.feedback.figures.projection import MARKS, NOTED_SEQ, month_lock
from services.feedback.periods import (
    Reported,
    ReportedMonth,
    as_reported,
    closable,
    month_end,
    period_id_for,
)
from shared.contracts.periods import LATE_EVENTS_KEPT
from shared.eventstore.command_path import CommandPath
from shared.eventstore.group_commit import Written
from shared.kernel.errors import CommandError, InvalidCommand, NotFound, Unavailable
from shared.kernel.meta import Meta
from shared.leadership import Leadership

log = structlog.get_logger("sixstep.feedback.periods")


class FiguresCatchingUp(CommandError):
    """The figures read model has not applied every event on the bus yet: a month closed now
    would miss what it has not counted, and an event recorded within the month is not late,
    so no revision would ever bring it in. Nothing was recorded; close again shortly."""

    status = 503
    code = "figures_catching_up"
    retry_after = 5


#: The marks table as it stands now (its oid): a rebuild's switch puts another in its place.
MARKS_NOW = f"to_regclass('{MARKS}')::oid::bigint"
#: A month's record under way (``Periods._under_way``), by its Idempotency-Key (``$1``), in
#: this schema: the session lock its worker holds from ``_pending`` to ``_counted``.
RECORD_LOCK = ("hashtextextended('sixstep-period-record:' || current_schema() || ':'"
               " || $1::text, 0)")


@dataclass(frozen=True)
class Mark:
    """Where a count of a month stands in the figures' notes (``Periods._mark``): ``seq``
    on the notes' numbering, taken against the marks table ``marks`` (its oid; None: not
    known, a pending record's). A rebuild switched in since numbered the notes anew, so
    the count's ``seq`` says nothing of where the rebuilt notes stand."""

    seq: int
    marks: int | None = None


@dataclass(frozen=True)
class ReportedRow:
    """A closed month as the read model has it."""

    center_id: str
    month: date
    revision: int
    closed_by: str
    as_of: date
    closed_at: datetime
    recorded_at: datetime
    figures: Reported
    changed: list[str]
    late_events: list[dict[str, Any]]

    @classmethod
    def of(cls, r: asyncpg.Record) -> ReportedRow:
        return cls(r["center_id"], r["month"], r["revision"], r["closed_by"], r["as_of"],
                   r["closed_at"], r["recorded_at"], orjson.loads(r["figures"]),
                   orjson.loads(r["changed"]), orjson.loads(r["late_events"]))

    def values(self) -> dict[str, Any]:
        """The figures in the shape of ``figures.compute``'s rows."""
        return {f["name"]: f["count"] if f.get("count") is not None else
                {"numerator": f["numerator"], "denominator": f["denominator"],
                 "rate": f["rate"]} for f in self.figures}


async def reported(pool: asyncpg.Pool | asyncpg.Connection, center_ids: list[str] | None,
                   date_from: date | None = None, date_to: date | None = None
                   ) -> list[ReportedRow]:
    """The closed months (of ``center_ids``; None: every center), oldest first."""
    rows = await pool.fetch(
        "SELECT * FROM fig_reported WHERE month IS NOT NULL"
        " AND ($1::text[] IS NULL OR center_id = ANY($1))"
        " AND ($2::date IS NULL OR month >= date_trunc('month', $2::timestamp)::date)"
        " AND ($3::date IS NULL OR month <= $3) ORDER BY center_id, month",
        center_ids, date_from, date_to)
    return [ReportedRow.of(r) for r in rows]


class Periods:
    """Close a month, revise a closed one: the use cases, through the command path."""

    def __init__(self, path: CommandPath, pool: asyncpg.Pool, arrivals: tuple[str, ...],
                 tz: Any, caught_up: Callable[[], Awaitable[bool]] | None = None) -> None:
        self.path = path
        self.pool = pool
        self.arrivals = arrivals
        self.tz = tz
        #: Whether the figures read model has applied everything on the bus (its consumer's
        #: ``caught_up``): a supervisor's close waits for it (``until_counted``).
        self.caught_up = caught_up

    async def until_counted(self, bound_s: float) -> None:
        """Return once the figures read model has counted every event on the bus; 503
        ``figures_catching_up`` when it has not within ``bound_s`` (the scheduler's closes
        wait for the same before each tick)."""
        if self.caught_up is None:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + bound_s
        delay = 0.05
        while not await self.caught_up():
            if loop.time() >= deadline:
                raise FiguresCatchingUp(
                    "the figures have not counted every event recorded yet (a worker catching "
                    "up, or stopped): the month was not closed; close it again shortly")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)

    def today(self) -> date:
        return self.path.now().astimezone(self.tz).date()

    async def figures_of(self, center_id: str, month: date, as_of: date) -> Reported:
        rows = await compute(self.pool, FigureQuery(
            period="month", date_from=month, date_to=month_end(month), as_of=as_of,
            group_by=("center_id",), filters=(("center_id", center_id),),
            arrivals=self.arrivals))
        names = [f.name for f in FIGURES]
        return as_reported(rows[0] if rows else {}, names)

    async def close(self, center_id: str, month: date, closed_by: str, actor: str,
                    key: str, counted_within_s: float | None = None) -> Written:
        """``counted_within_s``: wait that long for the figures to count everything
        (``until_counted``) before a close that would record anything. A close already
        recorded answers as it first did (a retry under its key) and a month not ended is
        refused, whatever the figures: a supervisor's retry of a close that went through was
        a 503 while a worker was behind, and a close of this month waited in vain."""
        earliest = self.path.moments.earliest.replace(day=1)
        if month < earliest:  # a month before any event could be counted (the year 1, 1969)
            raise InvalidCommand(f"month must be {earliest.isoformat()[:7]} or later",
                                 field="month", earliest=earliest.isoformat()[:7])
        today = self.today()
        meta = self.path.meta(actor, key, center_id=center_id)
        period_id = period_id_for(center_id, month)
        if counted_within_s is not None:
            ReportedMonth.check_closable(month, today)
            first = await self.path.created(period_id, "PeriodClosed", key, actor, meta)
            if first is not None:
                return first
            await self.until_counted(counted_within_s)
            today = self.today()
        ReportedMonth.check_closable(month, today)  # before it is marked: noted for nothing
        mark = await self._mark(center_id, month, first=True)
        figures = await self.figures_of(center_id, month, today)
        async with self._under_way(key) as conn:
            # closed before (this key's record made, its process gone before the marks
            # moved): its entry stands at the count recorded, not at this one (a note
            # between them, counted by no record, was taken as counted: never revised)
            before = await self.path.created(period_id, "PeriodClosed", key, actor, meta)
            if before is None:
                await self._pending(center_id, month, mark, key, db=conn)
                written = await self.path.create(period_id, "PeriodClosed", key, lambda: (
                    ReportedMonth.close(center_id, month, closed_by, today, figures, meta)))
            else:
                written = before
            if not written.replayed:  # this count is the one recorded: the month stands at it
                await self._counted(center_id, month, mark, recorded=True, key=key, db=conn)
        if written.replayed:  # closed before (this close's first try, gone before its marks
            await self._settle(center_id, month)  # moved?): settled once no longer under way
        return written

    @contextlib.asynccontextmanager
    async def _under_way(self, key: str) -> AsyncIterator[asyncpg.Connection]:
        """While a record under ``key`` is being made (from ``_pending`` to ``_counted``):
        its session holds a lock on the key, which ``_settle`` on another worker tries: an
        entry whose lock is held is a record still under way there (not recorded *yet*),
        not one left behind. The lock goes with the session: a process gone, its
        connection closed, its entries are settled. The connection is the record's own
        for ``_pending`` and ``_counted``: no second one is taken while the lock is held."""
        async with self.pool.acquire() as conn:
            await conn.execute(f"SELECT pg_advisory_lock({RECORD_LOCK})", key)
            try:
                yield conn
            finally:
                with contextlib.suppress(asyncpg.PostgresError, OSError):
                    await conn.execute(f"SELECT pg_advisory_unlock({RECORD_LOCK})", key)

    async def _mark(self, center_id: str, month: date, *, first: bool = False) -> Mark:
        """Where a count of the month stands in the figures' notes, taken under the month's
        lock (``figures.projection.month_lock``): every batch that changed the month before
        it has committed, and every batch after it notes its events against the month.
        ``first``: a close, which leaves the mark (the first close's, whichever wins: what
        it counted is counted by any close after it) so that the figures note from now on;
        the close whose count is recorded moves it to its own (``_counted``), or a close
        that failed after marking (the store away) left the notes between its mark and the
        recorded count's to be named by the first revision as late, though counted.
        The mark holds for the marks table it was taken against (``Mark.marks``)."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(f"SELECT pg_advisory_xact_lock({month_lock('$1::date')})", month)
            mark: int = await conn.fetchval(f"SELECT nextval('{NOTED_SEQ}')")
            if first:
                await conn.execute(f"INSERT INTO {MARKS} VALUES ($1, $2, $3::bigint, $3)"
                                   " ON CONFLICT DO NOTHING", center_id, month, mark)
            marks: int = await conn.fetchval(f"SELECT {MARKS_NOW}")
        return Mark(mark, marks)

    async def revise(self, center_id: str, month: date) -> bool:
        """Count a closed month again; a change is recorded with the late events since the
        last record. True when a revision was recorded. Counted from a mark (``_mark``): the
        notes after it wait for the next count, and the month's mark moves to it once it is
        counted (and, when a revision was recorded, its record's)."""
        found = await reported(self.pool, [center_id], month, month)
        if not found:
            return False
        row = found[0]
        await self._settle(center_id, month)
        while True:
            mark = await self._mark(center_id, month)
            figures = await self.figures_of(center_id, month, row.as_of)
            found_late = await self._late_since(center_id, month, mark, row.recorded_at)
            if found_late is not None:
                break
            # a rebuild switched in since the mark: its seq says nothing of the rebuilt
            # notes (the late events of another count named); count again on them
            log.info("periods.recounted_after_switch", center_id=center_id,
                     month=str(month))
        total, late = found_late
        named = [{"event_id": str(r["event_id"]), "type": r["type"],
                  "recorded_at": r["recorded_at"].isoformat()} for r in late]
        out: dict[str, bool] = {}

        def act(period: ReportedMonth, meta: Meta) -> None:
            out["revised"] = period.revise(figures, named, total, meta)

        # one key per count (its mark): the month's aggregate says whether it was recorded
        key = f"period-revise:{center_id}:{month.isoformat()[:7]}:{mark.seq}"
        meta = self.path.meta("system:feedback-periods", key)
        async with self._under_way(key) as conn:
            await self._pending(center_id, month, mark, key, db=conn)
            await self.path.on(period_id_for(center_id, month), "period", "PeriodRevised",
                               act, meta, key)
            revised = out.get("revised", False)
            await self._counted(center_id, month, mark, recorded=revised, key=key,
                                revised=revised, db=conn)
        return revised

    async def _late_since(self, center_id: str, month: date, mark: Mark,
                          last_recorded: datetime) -> tuple[int, list[asyncpg.Record]] | None:
        """The late events a count at ``mark`` brings in since the month's last record: how
        many, and the first ``LATE_EVENTS_KEPT``; None when a rebuild's switch replaced the
        marks since ``mark`` was taken (``Mark.marks``): the mark is on the retired
        numbering, and the rebuilt notes between the last record and it are not those the
        count counted (a slip applied after the mark and before the switch was named, not
        counted, and named again by the next revision). Read in one transaction that holds
        the marks and the notes: a switch waits for it, so what it read is of one numbering."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(f"LOCK TABLE {MARKS}, fig_late_events IN ACCESS SHARE MODE")
            if mark.marks is not None and await conn.fetchval(f"SELECT {MARKS_NOW}") != (
                    mark.marks):
                return None
            since = await conn.fetchval(
                f"SELECT recorded_through FROM {MARKS} WHERE center_id = $1 AND month = $2",
                center_id, month) or 0
            # noted after the last record and by this count; noted before the notes were
            # numbered: recorded after the last record, as they were compared then
            where = ("FROM fig_late_events WHERE center_id = $1 AND month = $2 AND"
                     " (noted_seq > $3::bigint AND noted_seq <= $4::bigint OR noted_seq IS"
                     " NULL AND recorded_at > $5)")
            args = (center_id, month, since, mark.seq, last_recorded)
            total: int = await conn.fetchval(f"SELECT count(*) {where}", *args)
            late = await conn.fetch(
                f"SELECT event_id, type, recorded_at {where} ORDER BY recorded_at, event_id"
                f" LIMIT {LATE_EVENTS_KEPT}", *args)
        return total, late

    async def _pending(self, center_id: str, month: date, mark: Mark, key: str, *,
                       db: asyncpg.Pool | asyncpg.Connection | None = None) -> None:
        """Before a record (a close or a revision) counted at ``mark`` under ``key``: say so
        on the month's marks, so that a process gone between the record and ``_counted`` is
        caught up with by the next revision (``_settle``), not named from the record before.
        A mark taken against marks a rebuild has since replaced (``Mark.marks``) is pending
        at 0, as ``_counted`` moves none: its number is on the live numbering, above a slip
        the rebuild noted anew (applied between the count and the switch), and the next
        revision, settling the record there, named nothing of what changed May.
        Written in the old slot too (``pending_key``, ``pending_through``) when it is free:
        in a rolling upgrade a replica of the release before, which reads that slot alone,
        takes the scheduler over and settles it there (else its next revision named again
        what this record counted); ``_settle`` then finds it settled (``_passed``)."""
        through = (f"CASE WHEN $5::bigint IS NULL OR {MARKS_NOW} = $5::bigint THEN $3::bigint"
                   " ELSE 0 END")
        await (db or self.pool).execute(
            f"INSERT INTO {MARKS} AS k (center_id, month, counted_through, recorded_through,"
            " pending, pending_through, pending_key) VALUES ($1, $2, 0, 0,"
            f" jsonb_build_object($4::text, {through}), {through}, $4)"
            " ON CONFLICT (center_id, month) DO UPDATE SET pending ="
            " coalesce(k.pending, '{}'::jsonb) || EXCLUDED.pending, pending_through = CASE"
            " WHEN k.pending_key IS NULL THEN EXCLUDED.pending_through ELSE k.pending_through"
            " END, pending_key = coalesce(k.pending_key, EXCLUDED.pending_key)",
            center_id, month, mark.seq, key, mark.marks)

    async def _settle(self, center_id: str, month: date) -> None:
        """A record left pending (``_pending``) by a close or a revision that did not move
        the marks after it (the process killed, the database away): when the month's
        aggregate has its key, it was recorded, and the marks move to where it counted;
        else it was not, and nothing moves (its count was never compared). A record still
        under way on another worker (``_under_way``: its lock held) is left to it: not
        recorded yet is not "not recorded", and once cleared here, its record made and its
        process gone before its marks moved, nothing was left to settle it (stop 49)."""
        left = await self.pool.fetchrow(
            f"SELECT pending, pending_through, pending_key, recorded_through FROM {MARKS}"
            " WHERE center_id = $1 AND month = $2 AND (pending_key IS NOT NULL OR"
            " pending <> '{}'::jsonb)", center_id, month)
        if left is None:
            return
        records = {k: int(v) for k, v in orjson.loads(left["pending"] or "{}").items()}
        if left["pending_key"] is not None:  # left by a release before, in its one slot
            key = left["pending_key"]  # (a retry under the same key stands further)
            records[key] = max(records.get(key, 0), left["pending_through"] or 0)
        seen: set[str] = set()

        def look(period: ReportedMonth, meta: Meta) -> None:
            seen.update(k for k in records if k in period.commands)

        async with self.pool.acquire() as conn:
            left_behind = [k for k in records if await conn.fetchval(
                f"SELECT pg_try_advisory_lock({RECORD_LOCK})", k)]
            try:
                if not left_behind:
                    return
                # looked at once every lock is taken: what is not recorded now never will be
                await self.path.on(period_id_for(center_id, month), "period", "PeriodRevised",
                                   look, self.path.meta("system:feedback-periods", None), None)
                for key in left_behind:
                    recorded = key in seen
                    if recorded and _passed(key, records[key], left):
                        # settled already, by a replica of the release before that found
                        # it in the old slot (``_pending``): the marks stand at it, its
                        # window was opened then; only its entry is left to drop
                        await self._counted(center_id, month, Mark(records[key]),
                                            recorded=False, key=key, counted=False, db=conn)
                        continue
                    if recorded:
                        log.info("periods.record_settled", center_id=center_id,
                                 month=str(month))
                    await self._counted(center_id, month, Mark(records[key]),
                                        recorded=recorded, key=key, counted=recorded,
                                        revised=recorded and key.startswith("period-revise:"),
                                        db=conn)
            finally:
                for key in left_behind:
                    with contextlib.suppress(asyncpg.PostgresError, OSError):
                        await conn.execute(f"SELECT pg_advisory_unlock({RECORD_LOCK})", key)

    async def _counted(self, center_id: str, month: date, mark: Mark, *, recorded: bool,
                       key: str | None = None, counted: bool = True, revised: bool = False,
                       db: asyncpg.Pool | asyncpg.Connection | None = None) -> None:
        """The month counted at ``mark`` (``_mark``), and that count ``recorded`` (a close or
        a revision): its marks move on to it, never back (a later count stands further);
        the record ``key`` made (``_pending``) is no longer pending. ``counted``: False for
        a count never compared (``_settle``), which moves nothing. ``revised``: a revision
        was recorded now (``revised_at``, the scheduler's window). A mark taken against
        marks a rebuild has since replaced (``Mark.marks``) moves none: the rebuild
        numbered the notes anew from 1, so a note after the count (a slip applied between
        the count and the switch) stood below the mark, and May was never counted again;
        the month is counted again instead (what the record counted may be named again,
        nothing is left out)."""
        same = f"($9::bigint IS NULL OR {MARKS_NOW} = $9::bigint)"
        await (db or self.pool).execute(
            f"INSERT INTO {MARKS} AS k VALUES ($1, $2, $3::bigint, CASE WHEN $4::boolean"
            " THEN $3::bigint ELSE 0 END) ON CONFLICT (center_id, month) DO UPDATE SET"
            f" counted_through = CASE WHEN $6::boolean AND {same} THEN"
            " greatest(k.counted_through, $3::bigint) ELSE k.counted_through END,"
            f" recorded_through = CASE WHEN $4::boolean AND {same} THEN"
            " greatest(k.recorded_through, $3::bigint) ELSE k.recorded_through END,"
            " pending = CASE WHEN $5::text IS NULL THEN k.pending ELSE k.pending - $5::text"
            " END, pending_through = CASE WHEN k.pending_key = $5"
            " THEN NULL ELSE k.pending_through END, pending_key = CASE WHEN k.pending_key"
            " = $5 THEN NULL ELSE k.pending_key END, revised_at = CASE WHEN $7::boolean"
            " THEN $8::timestamptz ELSE k.revised_at END",
            center_id, month, mark.seq, recorded, key, counted, revised, self.path.now(),
            mark.marks)


def _passed(key: str, through: int, left: asyncpg.Record) -> bool:
    """Whether the marks already stand at a pending record's count (``through``) that is no
    longer in the old slot: a replica of the release before settled it there and cleared
    the slot, not the jsonb entry it does not know (or a later record passed it). A record
    pending at 0 (marks replaced since its count) passes nothing."""
    return left["pending_key"] != key and 0 < through <= (left["recorded_through"] or 0)


#: How far back the scheduler looks for a month to close (``PeriodScheduler.due_months``).
CLOSE_LOOKBACK_MONTHS = 12
#: The per-day counts (``fig_day_totals``) of the rows the tick's scan closes a month for: a
#: trip, a case opened or resolved, a survey closed, a follow-up done or missed on a day it
#: was due (its on-time rate is that month's: a center whose month held only follow-up calls
#: was never closed for it), or cancelled by its own clerk (``followups_cancelled_by_assignee``
#: is that month's figure too); a check due that month and still open closes none.
CLOSING_COUNTS = ("visits", "cases", "resolved", "answers_or_expiries",
                  "staff_recorded_answers", "no_consent", "declined", "revisit_answers",
                  "followups_closed", "followups_cancelled_by_assignee")


class PeriodScheduler:
    """Closes each center's month ``after_days`` days after it ended (the month before too,
    when the service was down then) and revises closed months that late events changed."""

    def __init__(self, pool: asyncpg.Pool, periods: Periods, after_days: int, *, schema: str,
                 tick_s: float = 60.0, recheck_s: float = 3600.0,
                 caught_up: Callable[[], Awaitable[bool]] | None = None,
                 revise_every: timedelta = timedelta(0),
                 failed: Callable[[str], None] | None = None,
                 locks: asyncpg.Pool | None = None) -> None:
        """``caught_up``: whether the figures read model has applied every event on the
        stream so far; a month is closed or revised only then (a service starting on a long
        history must not report a month half counted). ``revise_every``: a month revised
        is revised again only that long after (``PERIOD_REVISE_EVERY_MINUTES``): the slips
        of a paper register typed in one by one after the close are one revision, naming
        them all, not one report version (and one notice) each. ``failed``: told the step
        (``close``, ``revise``) of each month a database error stopped
        (``sixstep_period_failures_total``): that month waits for the next tick, the tick
        goes on with the others."""
        self.failed = failed
        self.revise_every = revise_every
        self.caught_up = caught_up
        self.pool = pool
        self.periods = periods
        self.after_days = after_days
        self.lock_key = f"sixstep-feedback-periods:{schema}"
        # Its lock on a connection of ``locks`` (the runtime's lock pool), else of ``pool``.
        self.leadership = Leadership(locks or pool, self.lock_key, what="period-scheduler",
                                     standby_s=5.0)
        self.tick_s = tick_s
        self._checked: dict[tuple[str, date], datetime] = {}
        #: Months older than the last two found with nothing left to close: not scanned over
        #: the fact rows again (a year of them each tick), the last two are, as late-starting
        #: centers come. A settled month is looked at again when its days' counts
        #: (``fig_day_totals``: centers x days rows) show a center it has no report of: the
        #: first event of a center's month typed in from the paper register months later
        #: (month -> the centers without a report counted there when it was settled),
        #: every ``recheck_s`` (that look reads a year of centers x days: ~0.2 s at 300
        #: centers).
        self._settled: dict[date, set[str]] = {}
        self.recheck_s = recheck_s
        self._rechecked = time.monotonic()

    async def run(self) -> None:
        async with self.leadership as lead:
            while True:
                # not at once: a starting replica's read model is still catching up
                await asyncio.sleep(self.tick_s)
                # still ours? The lock lives with its session: PostgreSQL restarted (a
                # failover, a proxy's cut), it is gone and another replica may hold it
                # now. Ticking on (on the pool) made two schedulers revise the same
                # months at once; raised, the supervisor starts the loop again to wait
                # for the lock like any replica (shared/leadership.py)
                await lead.check()
                try:
                    await self.tick()
                except (CommandError, asyncpg.PostgresError, OSError) as exc:
                    log.warning("periods.tick_failed", error=f"{type(exc).__name__}: {exc}")

    def due_months(self, today: date) -> list[date]:
        """The months of the last year that may close by now (oldest first): a month is
        closed once its counts are in, also after the service was down (or its clock stood)
        for more than a month, where only the last two were looked at and the older ones,
        events and all, stayed open with nothing said. A month older than the last two is
        scanned until a tick finds nothing left to close in it (``_settled``), and again
        when a center without a report of it counts something there (``_unsettle``)."""
        first = today.replace(day=1)
        months = []
        for _ in range(CLOSE_LOOKBACK_MONTHS):
            first = (first - timedelta(days=1)).replace(day=1)
            if closable(first, today, self.after_days):
                months.append(first)
        return sorted(months)

    async def _unreported(self, months: list[date]) -> dict[date, set[str]]:
        """The centers that count on a day of ``months`` something that closes a month (the
        tick's scan: a case opened or resolved, a trip, a survey closed) and have no report
        of it (``fig_day_totals``: centers x days rows, not the fact rows)."""
        found = await self.pool.fetch(
            "SELECT DISTINCT date_trunc('month', t.day)::date AS month, t.center_id"
            " FROM fig_day_totals t WHERE t.day BETWEEN $1 AND $2"
            f" AND ({' + '.join(f't.{c}' for c in CLOSING_COUNTS)}) > 0"
            " AND date_trunc('month', t.day)::date = ANY($3::date[]) AND NOT EXISTS"
            " (SELECT 1 FROM fig_reported r WHERE r.center_id = t.center_id"
            " AND r.month = date_trunc('month', t.day)::date)",
            min(months), month_end(max(months)), months)
        out: dict[date, set[str]] = {m: set() for m in months}
        for r in found:
            out[r["month"]].add(r["center_id"])
        return out

    async def _unsettle(self) -> None:
        """Scan again the settled months in which a center now counts something and has no
        report, that did not when the month was settled: a late event gave it its first
        fact row there (a visit of 20 May typed in on 10 September), and the skip alone left
        that month open for good (until a restart: the skip is kept in memory only). A center
        counted there when the month was settled (what the scan closes nothing for) does not
        make the month scanned again each tick."""
        if not self._settled or time.monotonic() - self._rechecked < self.recheck_s:
            return
        self._rechecked = time.monotonic()
        now = await self._unreported(sorted(self._settled))
        for month, centers in now.items():
            if not centers <= self._settled[month]:
                del self._settled[month]

    async def tick(self) -> tuple[int, int]:
        """One pass: (months closed, months revised)."""
        if self.caught_up is not None and not await self.caught_up():
            log.info("periods.waiting", reason="the figures read model is catching up")
            return 0, 0
        today = self.periods.today()
        closed = 0
        months = self.due_months(today)
        for gone in set(self._settled) - set(months):  # out of the year looked back on
            del self._settled[gone]
        await self._unsettle()
        for month in months:
            if month in self._settled:
                continue
            end = month_end(month)
            centers = await self.pool.fetch(
                "SELECT center_id FROM (SELECT center_id FROM fig_cases WHERE opened_on"
                " BETWEEN $1 AND $2 UNION SELECT center_id FROM fig_cases WHERE resolved_on"
                " BETWEEN $1 AND $2 UNION SELECT center_id FROM fig_visits WHERE day BETWEEN"
                " $1 AND $2 UNION SELECT center_id FROM fig_surveys WHERE closed_on BETWEEN"
                " $1 AND $2 UNION SELECT center_id FROM fig_followups WHERE due_on BETWEEN"
                " $1 AND $2 AND (completed_on IS NOT NULL OR missed OR cancelled_by_assignee)) c"
                " WHERE center_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM"
                " fig_reported r WHERE r.center_id = c.center_id AND r.month = $1)",
                month, end)
            if not centers and month not in months[-2:]:
                self._settled[month] = (await self._unreported([month]))[month]
            for r in centers:
                key = f"period-close:{r['center_id']}:{month.isoformat()[:7]}"
                try:
                    await self.periods.close(r["center_id"], month, "automatic",
                                             "system:feedback-periods", key)
                    closed += 1
                except (Unavailable, asyncpg.PostgresError, OSError) as exc:
                    # this month's database error (the marks', or the store's: a lock
                    # timeout answered 503 by the group commit): the others go on
                    self._failed("close", r["center_id"], month, exc)
                except CommandError as exc:
                    log.warning("periods.close_failed", center_id=r["center_id"],
                                month=str(month), error=exc.message)
        revised = 0
        # A closed month is counted again when the figures noted an event after its last
        # count's mark (``Periods._mark``), whatever the event's recorded_at; a note of
        # before the marks were kept, when recorded after the month's last record.
        # (Two ranges of an index each, not one OR over every note of every closed month.)
        stale = await self.pool.fetch(
            "SELECT center_id, month, max(noted) AS noted, max(latest) AS latest FROM ("
            " SELECT r.center_id, r.month, l.noted_seq AS noted, NULL::timestamptz AS latest"
            f" FROM fig_reported r LEFT JOIN {MARKS} k ON k.center_id = r.center_id"
            " AND k.month = r.month JOIN fig_late_events l ON l.center_id = r.center_id"
            " AND l.month = r.month AND l.noted_seq > coalesce(k.counted_through, 0)"
            " UNION ALL SELECT r.center_id, r.month, NULL, l.recorded_at FROM fig_reported r"
            " JOIN fig_late_events l ON l.center_id = r.center_id AND l.month = r.month"
            " AND l.recorded_at > r.recorded_at AND l.noted_seq IS NULL) s"
            " GROUP BY center_id, month")
        waiting: set[tuple[str, date]] = set()
        if stale and self.revise_every:
            # revised within the window on this clock; a revision stamped more than a window
            # ahead of it was stamped before the clock was stepped back (NTP): it holds
            # nothing back (it held a month's slips for as long as the step, a day, a year)
            now = self.periods.path.now()
            waiting = {(w["center_id"], w["month"]) for w in await self.pool.fetch(
                f"SELECT center_id, month FROM {MARKS} WHERE revised_at > $1"
                " AND revised_at <= $2", now - self.revise_every, now + self.revise_every)}
        for r in stale:
            where = (r["center_id"], r["month"])
            if where in waiting:
                continue  # revised lately: what is noted meanwhile waits for the window's end
            if r["noted"] is None and self._checked.get(where) == r["latest"]:
                continue  # counted again already: the late events changed nothing
            try:
                revised += await self.periods.revise(*where)
            except (Unavailable, asyncpg.PostgresError, OSError) as exc:
                # one month's database error (a lock timeout, a constraint; in the marks or
                # in the store, whose refusal the group commit answers as a 503) ended the
                # whole tick, or (the store's) was a warning nobody counted: said, counted
                self._failed("revise", *where, exc)
                continue
            except (CommandError, NotFound) as exc:
                log.warning("periods.revise_failed", center_id=where[0], month=str(where[1]),
                            error=getattr(exc, "message", str(exc)))
                continue
            self._checked[where] = r["latest"]
        return closed, revised

    def _failed(self, step: str, center_id: str, month: date, exc: BaseException) -> None:
        """A month's close or revision stopped by the database: logged and counted (alert
        ``SixstepPeriodsFailing``); the month is tried again at the next tick."""
        log.error("periods.month_failed", step=step, center_id=center_id, month=str(month),
                  error=f"{type(exc).__name__}: {exc}")
        if self.failed is not None:
            self.failed(step)


def _whole_month(month: date, q: FigureQuery) -> bool:
    return (q.date_from is None or q.date_from <= month) and (
        q.date_to is None or q.date_to >= month_end(month))


async def with_reported(pool: asyncpg.Pool, rows: list[dict[str, Any]], q: FigureQuery
                        ) -> list[dict[str, Any]]:
    """``rows`` (``figures.compute``) with each closed month of a center answered as
    reported, saying so (``reported``); a row counted now has no ``reported``. Only a
    center's whole months are reported: other periods, groupings and parts of a month are
    counted now (and a figure added since the month was closed keeps its live value)."""
    by_center = q.period == "month" and q.group_by == ("center_id",) and all(
        d == "center_id" for d, _ in q.filters)
    closed: dict[tuple[date, str], ReportedRow] = {}
    if by_center and rows:
        centers = sorted({r["center_id"] for r in rows if r.get("center_id")})
        for found in await reported(pool, centers, q.date_from, q.date_to):
            closed[(found.month, found.center_id)] = found
    out = []
    for row in rows:
        found = closed.get((row["period_start"], row.get("center_id")))
        if found is not None and not _whole_month(found.month, q):
            found = None  # part of a month was asked for: counted now
        if found is None:
            out.append(row)
            continue
        out.append({**row, **found.values(), "reported": {
            "revision": found.revision, "closed_by": found.closed_by,
            "as_of": found.as_of.isoformat(), "closed_at": found.closed_at.isoformat(),
            "changed": found.changed, "late_events": found.late_events}})
    return out

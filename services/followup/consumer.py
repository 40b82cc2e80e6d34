"""What follow-up does with other services' events: the rules of step 5.

From intake (consumed from the stream, in each case's order):

* ``CaseOpened`` / ``GuidanceGiven``: remember the case (center, resident, clerk, service items)
  in ``case_refs`` and ``resident_items``, the read model the policy fan-out walks.
* ``DeadlineNoted``: a *deadline reminder* at office opening N working days before the deadline
  (``followup_deadline_reminder_working_days``), or at once when the deadline is closer.
* ``CaseResolved``: a *post-resolution check* M working days later
  (``followup_post_resolution_working_days``); an *early check* (``followup_early_check_working_
  days``, priority high) when the outcome is ``cannot_be_resolved`` or the emotion was not
  defused.
* ``CaseReopened``: the open post-resolution checks of the case are cancelled (the counter is
  handling it again; resolving it again schedules a new check). Reopened because the resident
  said it was not solved (reason ``resident_says_unsolved``): a follow-up of that reason, due
  at once, high priority, for the case's clerk (their worklist and the center's board),
  cancelled when the case is resolved again (unless the clerk completed it first).
* ``ObligationDeclared``: the obligation is watched (see ``domain.Obligation``).

From feedback: ``RectificationOpened`` -> a *rectification* follow-up due at office opening on
the deadline (on the last working day before it when the deadline is a day off);
``RectificationDeadlineRevised`` (the deadline worked out again once an official schedule
replaced a provisional year) moves that follow-up with it.

From intake, about a resident (``residents.py``): ``ConsentChanged`` and ``ResidentErased``
are remembered, and every rule plans with what the resident agreed to
(``domain.consent_allows``): nothing for an erased resident, no outreach without consent to
contact, and a task without contact for the work owed anyway. A refusal or erasure arriving
after something was planned brings what is still open in line (cancelled, obligations ended,
or made a task: ``FollowUps.respect``).

Each effect is a command with a deterministic id, so re-applying an event after a crash finds
the follow-up already there and writes nothing. Each due moment keeps the rule it came from
and its basis (official, or provisional on a year without a published schedule), so it can be
re-planned. A rule whose dates fall outside the working-day calendar is *parked*
(``services/followup/parked.py``: visible, counted, retried when the calendar grows): never a
guessed date, never a lost follow-up.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from datetime import date, datetime
from typing import Any
from uuid import UUID

import asyncpg
import structlog

from services.followup import commands as c
from services.followup import parked as parking
from services.followup import residents
from services.followup.application import SYSTEM_RULES, FollowUps, Plan, Watch
from services.followup.domain import (
    Consent,
    consent_allows,
    follow_up_id_for,
    obligation_aggregate_id,
)
from shared.contracts import Envelope
from shared.contracts.followup import Priority, Reason
from shared.contracts.vocabulary import RESIDENT_SAYS_UNSOLVED
from shared.kernel.calendar import Basis, CalendarNotCovered, CalendarOutOfRange, DueRule
from shared.kernel.errors import InvalidCommand, NotFound, RuleViolated

log = structlog.get_logger("sixstep.followup.rules")

CONSUMER = "followup-rules"

DDL = [
    "CREATE TABLE IF NOT EXISTS case_refs ("
    " case_id uuid PRIMARY KEY, center_id text NOT NULL, resident_id uuid,"
    " clerk_id text NOT NULL, counter_id text NOT NULL, service_item text NOT NULL,"
    " status text NOT NULL, opened_at timestamptz NOT NULL)",
    "CREATE TABLE IF NOT EXISTS resident_items ("
    " resident_id uuid NOT NULL, service_item text NOT NULL, case_id uuid NOT NULL,"
    " center_id text NOT NULL, opened_at timestamptz NOT NULL,"
    " PRIMARY KEY (resident_id, service_item, case_id))",
    "CREATE INDEX IF NOT EXISTS resident_items_item ON resident_items (service_item)",
    "CREATE TABLE IF NOT EXISTS rule_followups ("
    " case_id uuid NOT NULL, follow_up_id uuid NOT NULL, rule text NOT NULL,"
    " PRIMARY KEY (case_id, follow_up_id))",
    *parking.DDL,
    "CREATE INDEX IF NOT EXISTS case_refs_resident ON case_refs (resident_id)",
    *residents.DDL,
]

Row = tuple[UUID, UUID, str]
"""(case id, follow-up id, rule): what a rule scheduled for a case, kept in rule_followups."""
def plain(value: Any) -> UUID | None:
    """asyncpg's UUID as the standard library's (the event store transcodes only that)."""
    return None if value is None else UUID(str(value))


Effect = Callable[[list[Row]], Awaitable[Row | None]]
"""Runs one rule; gets what earlier rules of the same case scheduled in this batch."""
ConsentOf = Callable[[UUID | None], Consent]
"""What a resident agreed to, as of the end of the batch being applied."""


class Rules:
    """The consumer handler: read models first (in the consumer's transaction), then effects."""

    def __init__(self, followups: FollowUps,
                 on_parked: Callable[[int], None] | None = None) -> None:
        self.followups = followups
        self.settings = followups.settings
        self.on_parked = on_parked  # told how many rules are parked after each change

    async def apply(self, conn: asyncpg.Connection, events: Sequence[Envelope]) -> None:
        refs = await _CaseRefs.load(conn, events)
        known = await _consents(conn, events, refs)
        for e in events:
            known.remember(e)  # the whole batch: a rule plans with the latest word
        per_case: dict[UUID, list[tuple[Envelope, Effect]]] = defaultdict(list)
        for e in events:
            refs.remember(e)
            effect = await self._effect_for(conn, e, refs, known.consent)
            if effect is not None:
                per_case[e.partition_key].append((e, effect))
        await refs.save(conn)
        await known.save(conn)
        latest = {UUID(e.payload["resident_id"]): e for e in events
                  if e.service == "intake" and e.type in residents.TYPES}
        for resident_id, cause in known.narrowed.items():
            found = await residents.pending(conn, resident_id)
            per_case[resident_id].append((latest[resident_id], self._respect(
                found, known.consent(resident_id), cause)))
        results = await asyncio.gather(*(self._run_in_order(conn, steps)
                                         for steps in per_case.values()))
        rows = [row for result in results for row in result[0]]
        parked = [p for result in results for p in result[1]]
        if rows:
            await conn.executemany(
                "INSERT INTO rule_followups (case_id, follow_up_id, rule) VALUES ($1, $2, $3)"
                " ON CONFLICT DO NOTHING", rows)
        for e, reason, year in parked:
            await parking.park(conn, e, reason, year)
        if parked and self.on_parked is not None:
            self.on_parked(await parking.count(conn))

    async def _run_in_order(self, conn: asyncpg.Connection, steps: list[tuple[Envelope, Effect]]
                            ) -> tuple[list[Row], list[tuple[Envelope, str, int | None]]]:
        rows: list[Row] = []
        parked: list[tuple[Envelope, str, int | None]] = []
        for e, effect in steps:
            try:
                result = await effect(rows)
            except (CalendarOutOfRange, CalendarNotCovered) as exc:
                year = exc.year if isinstance(exc, CalendarOutOfRange) else \
                    exc.details.get("year")
                parked.append((e, str(exc) if isinstance(exc, CalendarOutOfRange)
                               else exc.message, year))
                continue
            if result is not None:
                rows.append(result)
        return rows, parked

    async def retry_parked(self, pool: asyncpg.Pool) -> int:
        """Apply parked rules again (the calendar grew: a holidays file, a package upgrade);
        returns how many went through. Rules that still cannot be applied stay parked."""
        done = 0
        async with pool.acquire() as conn:
            for e in await parking.parked_envelopes(conn):
                async with conn.transaction():
                    refs = await _CaseRefs.load(conn, [e])
                    known = await _consents(conn, [e], refs)
                    effect = await self._effect_for(conn, e, refs, known.consent)
                    if effect is None:
                        await parking.unpark(conn, e.event_id)
                        continue
                    created, parked = await self._run_in_order(conn, [(e, effect)])
                    if parked:
                        await parking.park(conn, *parked[0])
                        continue
                    if created:
                        await conn.executemany(
                            "INSERT INTO rule_followups (case_id, follow_up_id, rule)"
                            " VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", created)
                    await parking.unpark(conn, e.event_id)
                    done += 1
            if self.on_parked is not None:
                self.on_parked(await parking.count(conn))
        return done

    # -- effects ----------------------------------------------------------------------------

    async def _effect_for(self, conn: asyncpg.Connection, e: Envelope, refs: _CaseRefs,
                          consent_of: ConsentOf | None = None) -> Effect | None:
        consent_of = consent_of or (lambda _: Consent())
        if e.type == "RectificationOpened":
            return self._rectification(e, refs.snapshot(e.case_id), consent_of)
        if e.type == "RectificationDeadlineRevised":
            return self._deadline_revised(e)
        if e.service != "intake" or e.case_id is None:
            return None
        if e.type not in ("DeadlineNoted", "CaseResolved", "CaseReopened", "ObligationDeclared"):
            return None
        case = refs.snapshot(e.case_id)
        if case is None:  # CaseOpened was dead-lettered or predates this consumer
            log.warning("rule.unknown_case", case_id=str(e.case_id), type=e.type)
            return None
        if e.type == "DeadlineNoted":
            return self._deadline(e, case, consent_of)
        if e.type == "CaseResolved":
            unsolved = [r["follow_up_id"] for r in await conn.fetch(
                "SELECT follow_up_id FROM rule_followups WHERE case_id = $1 AND rule = $2",
                e.case_id, Reason.RESIDENT_SAYS_UNSOLVED.value)]
            return self._resolved(e, case, consent_of, unsolved)
        if e.type == "ObligationDeclared":
            return self._obligation(e, case, consent_of)
        open_checks = [r["follow_up_id"] for r in await conn.fetch(
            "SELECT follow_up_id FROM rule_followups WHERE case_id = $1 AND rule = $2",
            e.case_id, Reason.POST_RESOLUTION_CHECK.value)]
        return self._reopened(e, case, open_checks, consent_of)

    def _respect(self, found: list[tuple[UUID, str]], consent: Consent, cause: str) -> Effect:
        """A resident's refusal or erasure: what may still reach them, brought in line."""
        async def run(_: list[Row]) -> None:
            for aggregate_id, kind in found:
                try:
                    await self.followups.respect(aggregate_id, kind, consent, cause)
                except NotFound:  # a worklist row whose aggregate is not here: nothing to do
                    log.warning("rule.respect_unknown", aggregate_id=str(aggregate_id))
            return None

        return run

    def _plan(self, e: Envelope, case: CaseRef, follow_up_id: UUID, reason: Reason,
              due_at: datetime, **extra: Any) -> Plan:
        return Plan(follow_up_id=follow_up_id, center_id=e.center_id, case_id=e.case_id,
                    reason=reason, resident_id=plain(case["resident_id"]), due_at=due_at,
                    assigned_clerk=extra.pop("assigned_clerk", case["clerk_id"]),
                    assigned_team=extra.pop("assigned_team", None),
                    source=f"{e.service}:{e.type}", service_item=case["service_item"],
                    causation_id=str(e.event_id), correlation_id=e.correlation_id,
                    occurred_at=e.occurred_at, **extra)

    def _deadline(self, e: Envelope, case: CaseRef, consent_of: ConsentOf) -> Effect:
        calendar = self.followups.calendar(e.center_id)
        deadline_id = UUID(e.payload["deadline_id"])
        follow_up_id = follow_up_id_for("deadline", deadline_id)

        async def run(_: list[Row]) -> Row | None:
            contact = consent_allows(Reason.DEADLINE_REMINDER,
                                     consent_of(plain(case["resident_id"])))
            if contact is None:
                return None  # erased: nothing is planned for them
            rule = DueRule("on_or_before", date.fromisoformat(e.payload["due_on"]),
                           self.settings.followup_deadline_reminder_working_days,
                           not_before=e.occurred_at)  # closer: at once
            planned = calendar.plan(rule)
            await self.followups.schedule(self._plan(
                e, case, follow_up_id, Reason.DEADLINE_REMINDER, planned.at,
                source_id=deadline_id, basis=planned.basis, due_rule=rule, contact=contact))
            return (case["case_id"], follow_up_id, Reason.DEADLINE_REMINDER.value)

        return run

    def _resolved(self, e: Envelope, case: CaseRef, consent_of: ConsentOf,
                  unsolved: Sequence[UUID] = ()) -> Effect:
        calendar = self.followups.calendar(e.center_id)
        early = (e.payload["outcome"] == "cannot_be_resolved"
                 or e.payload["emotion_defused"] is False)
        days = (self.settings.followup_early_check_working_days if early
                else self.settings.followup_post_resolution_working_days)
        follow_up_id = follow_up_id_for("resolution", e.event_id)

        async def run(earlier: list[Row]) -> Row | None:
            # Resolved again: the "not solved" it was reopened for is taken up (done by the
            # resolution, which its own check and survey now ask about).
            this_batch = [f for _, f, rule in earlier if rule == Reason.RESIDENT_SAYS_UNSOLVED]
            for follow_up_id_ in dict.fromkeys([*unsolved, *this_batch]):
                try:
                    await self.followups.cancel(
                        follow_up_id_, c.CancelFollowUp(reason="case resolved again",
                                                        occurred_at=e.occurred_at),
                        SYSTEM_RULES, f"resolved:{e.event_id}")
                except (RuleViolated, NotFound):  # done by the clerk already
                    pass
                except InvalidCommand as exc:  # never at the cost of the check planned below
                    log.warning("rule.unsolved_not_closed", follow_up_id=str(follow_up_id_),
                                reason=exc.message)
            if consent_allows(Reason.POST_RESOLUTION_CHECK,
                              consent_of(plain(case["resident_id"]))) is None:
                return None  # only outreach: not without consent, not for the erased
            rule = DueRule("on_or_after", calendar.local_day(e.occurred_at), days,
                           not_before=e.occurred_at)
            planned = calendar.plan(rule)
            await self.followups.schedule(self._plan(
                e, case, follow_up_id, Reason.POST_RESOLUTION_CHECK, planned.at,
                priority=Priority.HIGH if early else Priority.NORMAL, source_id=e.event_id,
                basis=planned.basis, due_rule=rule))
            return (case["case_id"], follow_up_id, Reason.POST_RESOLUTION_CHECK.value)

        return run

    def _reopened(self, e: Envelope, case: CaseRef, open_checks: list[UUID],
                  consent_of: ConsentOf) -> Effect:
        unsolved = e.payload.get("reason") == RESIDENT_SAYS_UNSOLVED
        follow_up_id = follow_up_id_for("unsolved", e.event_id)

        async def run(earlier: list[Row]) -> Row | None:
            # Checks scheduled by this case's earlier events in the same batch count too.
            this_batch = [f for _, f, rule in earlier if rule == Reason.POST_RESOLUTION_CHECK]
            for follow_up_id_ in dict.fromkeys([*open_checks, *this_batch]):
                await self.followups.cancel(
                    follow_up_id_, c.CancelFollowUp(reason="case reopened",
                                                    occurred_at=e.occurred_at),
                    SYSTEM_RULES, f"reopen:{e.event_id}")
            if not unsolved:
                return None
            # The resident said it was not solved: the case's clerk takes it up again at once
            # (high priority, on the clerk's worklist and the center's board).
            contact = consent_allows(Reason.RESIDENT_SAYS_UNSOLVED,
                                     consent_of(plain(case["resident_id"])))
            if contact is None:
                return None  # erased: nobody to take it up with
            calendar = self.followups.calendar(e.center_id)
            rule = DueRule("on_or_after", calendar.local_day(e.occurred_at), 0,
                           not_before=e.occurred_at)
            planned = calendar.plan(rule)
            await self.followups.schedule(self._plan(
                e, case, follow_up_id, Reason.RESIDENT_SAYS_UNSOLVED, planned.at,
                priority=Priority.HIGH, source_id=e.event_id, basis=planned.basis,
                due_rule=rule, contact=contact))
            return (case["case_id"], follow_up_id, Reason.RESIDENT_SAYS_UNSOLVED.value)

        return run

    def _obligation(self, e: Envelope, case: CaseRef, consent_of: ConsentOf) -> Effect:
        p = e.payload
        watch = Watch(obligation_id=UUID(p["obligation_id"]), center_id=e.center_id,
                      case_id=e.case_id,  # type: ignore[arg-type]
                      resident_id=plain(case["resident_id"]),  # type: ignore[arg-type]
                      cadence=p["cadence"],
                      next_due_on=date.fromisoformat(p["next_due_on"]),
                      assigned_clerk=case["clerk_id"], service_item=case["service_item"],
                      causation_id=str(e.event_id), correlation_id=e.correlation_id,
                      occurred_at=e.occurred_at)

        async def run(_: list[Row]) -> Row | None:
            if watch.resident_id is None:
                log.warning("rule.obligation_without_resident", case_id=str(e.case_id))
                return None
            if consent_of(watch.resident_id).erased:
                return None  # nobody to watch for; a missed period would plan a contact
            await self.followups.watch(watch)
            # Remembered with the case: an erasure finds it before the worklist shows it.
            return (watch.case_id, obligation_aggregate_id(watch.obligation_id), "obligation")

        return run

    def _rectification(self, e: Envelope, case: CaseRef | None,
                       consent_of: ConsentOf) -> Effect:
        p = e.payload
        rectification_id = UUID(p["rectification_id"])
        follow_up_id = follow_up_id_for("rectification", rectification_id)
        resident = (UUID(p["resident_id"]) if p.get("resident_id")
                    else plain(case["resident_id"]) if case else None)

        async def run(_: list[Row]) -> Row | None:
            contact = consent_allows(Reason.RECTIFICATION, consent_of(resident))
            if contact is None:
                return None  # erased: no revisit to plan
            due_at, basis = self._at_deadline(e, date.fromisoformat(p["deadline_on"]))
            await self.followups.schedule(Plan(
                follow_up_id=follow_up_id, center_id=e.center_id, case_id=e.case_id,
                reason=Reason.RECTIFICATION, resident_id=resident, due_at=due_at,
                assigned_clerk=None, assigned_team=self.settings.followup_team,
                source=f"{e.service}:{e.type}", source_id=rectification_id,
                priority=Priority.HIGH, service_item=case["service_item"] if case else None,
                causation_id=str(e.event_id), correlation_id=e.correlation_id,
                occurred_at=e.occurred_at, basis=basis, contact=contact))
            if e.case_id is None:
                return None
            return (e.case_id, follow_up_id, Reason.RECTIFICATION.value)

        return run

    def _at_deadline(self, e: Envelope, deadline: date) -> tuple[datetime, Basis]:
        """Office opening on a rectification's deadline (the last working day before it when
        it is a day off), never before the event; provisional when the deadline was."""
        calendar = self.followups.calendar(e.center_id)
        planned = calendar.plan(DueRule("on_or_before", deadline, 0, not_before=e.occurred_at))
        provisional = Basis.PROVISIONAL in (planned.basis, e.payload.get("basis"))
        return planned.at, Basis.PROVISIONAL if provisional else Basis.OFFICIAL

    def _deadline_revised(self, e: Envelope) -> Effect:
        follow_up_id = follow_up_id_for("rectification", UUID(e.payload["rectification_id"]))

        async def run(_: list[Row]) -> None:
            due_at, basis = self._at_deadline(e, date.fromisoformat(e.payload["deadline_on"]))
            try:
                await self.followups.follow_deadline(follow_up_id, due_at, basis,
                                                     str(e.event_id), e.occurred_at)
            except NotFound:  # its RectificationOpened was parked or dead-lettered
                log.warning("rule.revision_without_follow_up", follow_up_id=str(follow_up_id))
            return None

        return run


async def _consents(conn: asyncpg.Connection, events: Sequence[Envelope],
                    refs: _CaseRefs) -> residents.Residents:
    """What the batch's residents agreed to: those its consent events name, those of the
    cases it touches, and those a rectification names."""
    ids: set[UUID | None] = set(residents.Residents.ids_in(events))
    for e in events:
        case = refs.cases.get(e.case_id) if e.case_id is not None else None
        if case is not None:
            ids.add(plain(case["resident_id"]))
        if e.type in ("CaseOpened", "RectificationOpened") and e.payload.get("resident_id"):
            ids.add(UUID(str(e.payload["resident_id"])))
    return await residents.Residents.load(conn, ids)


CaseRef = dict[str, Any]
"""A row of ``case_refs`` (case_id, center_id, resident_id, clerk_id, counter_id,
service_item, status, opened_at)."""
CASE_REF_COLUMNS = ("case_id", "center_id", "resident_id", "clerk_id", "counter_id",
                    "service_item", "status", "opened_at")


class _CaseRefs:
    """``case_refs`` and ``resident_items`` for one batch: the cases its events touch are read
    in one query, folded in memory event by event (so each rule sees its case as of its own
    event), and written back in two statements."""

    def __init__(self, cases: dict[UUID, CaseRef]) -> None:
        self.cases = cases
        self.dirty: set[UUID] = set()
        self.touched: list[tuple[UUID, str, UUID, str, datetime]] = []

    @classmethod
    async def load(cls, conn: asyncpg.Connection, events: Sequence[Envelope]) -> _CaseRefs:
        ids = list({e.case_id for e in events if e.case_id is not None})
        rows = await conn.fetch("SELECT * FROM case_refs WHERE case_id = ANY($1::uuid[])",
                                ids) if ids else []
        return cls({r["case_id"]: {c: r[c] for c in CASE_REF_COLUMNS} for r in rows})

    def snapshot(self, case_id: UUID | None) -> CaseRef | None:
        case = self.cases.get(case_id) if case_id is not None else None
        return dict(case) if case is not None else None

    def remember(self, e: Envelope) -> None:
        if e.service != "intake" or e.case_id is None:
            return
        p = e.payload
        case = self.cases.get(e.case_id)
        if e.type == "CaseOpened":
            if case is not None:  # seen already (a replay of the same opening)
                return
            resident = UUID(p["resident_id"]) if p["resident_id"] else None
            self.cases[e.case_id] = {
                "case_id": e.case_id, "center_id": e.center_id, "resident_id": resident,
                "clerk_id": p["clerk_id"], "counter_id": p["counter_id"],
                "service_item": p["service_item"], "status": "open",
                "opened_at": e.occurred_at}
            self.dirty.add(e.case_id)
            if resident is not None:
                self.touched.append((resident, p["service_item"], e.case_id, e.center_id,
                                     e.occurred_at))
        elif case is None:
            return
        elif e.type == "GuidanceGiven":
            case["service_item"] = p["service_item"]
            self.dirty.add(e.case_id)
            if case["resident_id"] is not None:
                self.touched.append((case["resident_id"], p["service_item"], e.case_id,
                                     case["center_id"], case["opened_at"]))
        elif e.type in ("CaseResolved", "CaseReopened"):
            case["status"] = "resolved" if e.type == "CaseResolved" else "open"
            self.dirty.add(e.case_id)

    async def save(self, conn: asyncpg.Connection) -> None:
        if self.dirty:
            await conn.executemany(
                f"INSERT INTO case_refs ({', '.join(CASE_REF_COLUMNS)}) VALUES ($1, $2, $3, $4,"
                " $5, $6, $7, $8) ON CONFLICT (case_id) DO UPDATE SET"
                " service_item = EXCLUDED.service_item, status = EXCLUDED.status",
                [tuple(self.cases[i][c] for c in CASE_REF_COLUMNS) for i in self.dirty])
        if self.touched:
            await conn.executemany(
                "INSERT INTO resident_items (resident_id, service_item, case_id, center_id,"
                " opened_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                list(dict.fromkeys(self.touched)))

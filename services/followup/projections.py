"""Follow-up's read models (asyncpg), built from its own events on the stream.

* ``followups``      the worklists: one row per follow-up, its status and assignment
* ``timers``         the scheduler's index: per aggregate, when it next has something to do
* ``policy_changes`` each published policy change and its fan-out's progress
* ``obligations``    watched obligations and their current period
* ``help_tasks``     帮办: help tasks, their owner, deadline and status
* ``referrals``      派单 / 回复 / 督办: referrals, their unit, reply deadline and reply

Every event that leaves a timer running carries its moment, so ``timers`` is a function of the
last event of each aggregate. The scheduler also writes ``timers`` (from the aggregate it just
advanced); both writes are guarded by the aggregate version, so the newer one wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import asyncpg
import orjson

from shared.contracts import Envelope
from shared.kernel.meta import by_a_worker
from shared.readmodels import bulk
from shared.readmodels.readmodel import ReadModel

CONSUMER = "followup-worklist"
OPEN = ("scheduled", "due", "missed", "escalated")

#: A new follow-up's row (``_new_followups``) as one element of the INSERT's one array
#: parameter (``bulk.RowType``).
SCHEDULED_ROW = bulk.RowType("followup_scheduled", (
    ("follow_up_id", "uuid"), ("center_id", "text"), ("case_id", "uuid"),
    ("resident_id", "uuid"), ("reason", "text"), ("priority", "text"), ("status", "text"),
    ("due_at", "timestamptz"), ("due_on", "date"), ("assigned_clerk", "text"),
    ("assigned_team", "text"), ("service_item", "text"), ("source", "text"),
    ("source_id", "uuid"), ("scheduled_at", "timestamptz"), ("updated_at", "timestamptz"),
    ("version", "integer"), ("position", "bigint"), ("basis", "text"), ("contact", "boolean")))
#: A follow-up's changes in a batch (``folded``), one element of ``UPDATE_FOLLOWUPS``'s array.
FOLLOWUP_CHANGE = bulk.RowType("followup_change", (
    ("follow_up_id", "uuid"), ("version", "integer"), ("position", "bigint"),
    ("updated_at", "timestamptz"), ("status", "text"), ("due_at", "timestamptz"),
    ("due_on", "date"), ("reassigned", "boolean"), ("clerk", "text"), ("team", "text"),
    ("escalated_to", "text"), ("outcome", "text"), ("channel", "text"),
    ("completed_at", "timestamptz"), ("basis", "text"), ("contact", "boolean"),
    ("priority", "text"), ("due_kept", "boolean"), ("case_id", "uuid"), ("since", "integer")))

DDL = [
    "CREATE TABLE IF NOT EXISTS followups ("
    " follow_up_id uuid PRIMARY KEY, center_id text NOT NULL, case_id uuid,"
    " resident_id uuid, reason text NOT NULL, priority text NOT NULL, status text NOT NULL,"
    " due_at timestamptz NOT NULL, due_on date NOT NULL, assigned_clerk text,"
    " assigned_team text, escalated_to text, service_item text, source text NOT NULL,"
    " source_id uuid, outcome text, channel text, scheduled_at timestamptz NOT NULL,"
    " updated_at timestamptz NOT NULL, completed_at timestamptz, version int NOT NULL,"
    " position bigint NOT NULL)",
    # When the row first became visible here: end-to-end latency is measured against it.
    "ALTER TABLE followups ADD COLUMN IF NOT EXISTS projected_at timestamptz"
    " NOT NULL DEFAULT clock_timestamp()",
    # official | provisional: whether due_at was worked out on a year without a schedule.
    "ALTER TABLE followups ADD COLUMN IF NOT EXISTS basis text NOT NULL DEFAULT 'official'",
    "CREATE INDEX IF NOT EXISTS followups_provisional ON followups (center_id)"
    " WHERE basis = 'provisional' AND status = 'scheduled'",
    # Due, missed or escalated on a provisional day: confirmed when the schedule keeps it.
    "CREATE INDEX IF NOT EXISTS followups_provisional_past ON followups (follow_up_id)"
    " WHERE basis = 'provisional' AND status IN ('due', 'missed', 'escalated')",
    # A clerk's and a team's open follow-ups (their worklists, ``assigned_clerk = $2``,
    # ``assigned_team = $2``). A follow-up names a clerk or a team, seldom both: each index
    # keeps only the rows that name its assignee, so an open row's write enters one of them,
    # not both (the other's NULL was an entry no worklist reads; each entry of a status
    # change is PostgreSQL's work in the worklist's batches). They replace followups_clerk
    # and followups_team, which kept those NULLs; the center's board reads
    # followups_by_status.
    "CREATE INDEX IF NOT EXISTS followups_of_clerk ON followups (center_id, assigned_clerk,"
    " due_on) WHERE assigned_clerk IS NOT NULL"
    " AND status IN ('scheduled', 'due', 'missed', 'escalated')",
    "CREATE INDEX IF NOT EXISTS followups_of_team ON followups (center_id, assigned_team,"
    " due_on) WHERE assigned_team IS NOT NULL"
    " AND status IN ('scheduled', 'due', 'missed', 'escalated')",
    "DROP INDEX IF EXISTS followups_clerk",
    "DROP INDEX IF EXISTS followups_team",
    # A team's open follow-ups escalated to it: the team's worklist asks ``(assigned_team =
    # $2 OR escalated_to = $2)``, which PostgreSQL reads as a BitmapOr of followups_of_team
    # and this one. With followups_escalated (status 'escalated' only) no index served the
    # OR, and it read the center's every row off followups_by_status (53,336 rows read
    # against 4,231 for a team's 24 lists at 100,000 rows). escalated_to stays once set, on
    # one rescheduled since too, so the index keeps every open status.
    "CREATE INDEX IF NOT EXISTS followups_escalated_to ON followups (center_id, escalated_to,"
    " due_on) WHERE escalated_to IS NOT NULL"
    " AND status IN ('scheduled', 'due', 'missed', 'escalated')",
    "DROP INDEX IF EXISTS followups_escalated",
    # False: a task for staff, without contact (the resident has not agreed to be contacted).
    "ALTER TABLE followups ADD COLUMN IF NOT EXISTS contact boolean NOT NULL DEFAULT true",
    # Due, missed or escalated on a provisional day the published schedule moves: kept on its
    # day and basis, said once (FollowUpDueConfirmed with published_due_at), not re-read.
    "ALTER TABLE followups ADD COLUMN IF NOT EXISTS due_kept boolean NOT NULL DEFAULT false",
    "CREATE INDEX IF NOT EXISTS followups_case ON followups (case_id)",
    # Every follow-up of a resident, whatever its status: GET /followups?resident_id= without
    # a status read the whole table past the partial index this replaces (58-73 ms at 100k
    # rows); the erasure's and the rules' look at a resident's open ones uses it too.
    "CREATE INDEX IF NOT EXISTS followups_of_resident ON followups (resident_id)",
    "DROP INDEX IF EXISTS followups_resident",
    "CREATE INDEX IF NOT EXISTS followups_source ON followups (source_id)",
    # GET /followups?status= alone (a center's missed or escalated ones, newest due first):
    # it read the whole table and sorted it (~70 ms at 100k rows). A city-wide token's
    # (no center) is not served by it: rare, and a second index costs every status change.
    "CREATE INDEX IF NOT EXISTS followups_by_status ON followups"
    " (center_id, status, due_at DESC)",
    "CREATE INDEX IF NOT EXISTS followups_home_visits ON followups (center_id, due_at)"
    " WHERE reason = 'home_visit' AND status IN ('scheduled', 'due', 'missed', 'escalated')",
    "CREATE TABLE IF NOT EXISTS timers ("
    " aggregate_id uuid PRIMARY KEY, kind text NOT NULL, fire_at timestamptz,"
    " version int NOT NULL)",
    "CREATE INDEX IF NOT EXISTS timers_due ON timers (fire_at, aggregate_id)"
    " WHERE fire_at IS NOT NULL",
    "CREATE TABLE IF NOT EXISTS policy_changes ("
    " policy_id uuid PRIMARY KEY, center_id text NOT NULL, service_items text[] NOT NULL,"
    " all_centers boolean NOT NULL, effective_on date NOT NULL,"
    " outreach_due_at timestamptz NOT NULL, published_at timestamptz NOT NULL,"
    " cursor uuid, residents int NOT NULL DEFAULT 0, finished_at timestamptz)",
    "ALTER TABLE policy_changes ADD COLUMN IF NOT EXISTS basis text NOT NULL"
    " DEFAULT 'official'",
    "ALTER TABLE policy_changes ADD COLUMN IF NOT EXISTS due_rule jsonb",
    "CREATE TABLE IF NOT EXISTS obligations ("
    " obligation_id uuid PRIMARY KEY, aggregate_id uuid NOT NULL, center_id text NOT NULL,"
    " case_id uuid, resident_id uuid NOT NULL, cadence text NOT NULL,"
    " next_due_on date NOT NULL, missed_at timestamptz, active boolean NOT NULL,"
    " missed_periods int NOT NULL DEFAULT 0, version int NOT NULL)",
    "CREATE INDEX IF NOT EXISTS obligations_aggregate ON obligations (aggregate_id)",
    "CREATE INDEX IF NOT EXISTS obligations_resident ON obligations (resident_id)"
    " WHERE active",
    # official | provisional: what the current period's missed_at was worked out on; NULL on
    # rows from before the column (not known: re-planning looks at them, ObligationReplanned).
    "ALTER TABLE obligations ADD COLUMN IF NOT EXISTS basis text",
    "CREATE INDEX IF NOT EXISTS obligations_unofficial ON obligations (aggregate_id)"
    " WHERE active AND basis IS DISTINCT FROM 'official'",
    # The publisher's reach (PolicyChangePublished v2) and who published: the fan-out writes
    # as that publisher, within that reach.
    "ALTER TABLE policy_changes ADD COLUMN IF NOT EXISTS scope text NOT NULL"
    " DEFAULT 'center'",
    "ALTER TABLE policy_changes ADD COLUMN IF NOT EXISTS published_by text",
    # When the fan-out last moved (the row's arrival, then each saved batch): /ready says so
    # when a policy change stands still (fanout.stalled).
    "ALTER TABLE policy_changes ADD COLUMN IF NOT EXISTS moved_at timestamptz NOT NULL"
    " DEFAULT now()",
    "CREATE TABLE IF NOT EXISTS help_tasks ("
    " task_id uuid PRIMARY KEY, center_id text NOT NULL, case_id uuid,"
    " owner_clerk text, owner_team text, requested_by text NOT NULL, status text NOT NULL,"
    " deadline_at timestamptz NOT NULL, deadline_on date NOT NULL, basis text NOT NULL,"
    " escalated_to text, service_item text, source_id uuid NOT NULL,"
    " opened_at timestamptz NOT NULL, updated_at timestamptz NOT NULL, version int NOT NULL,"
    " position bigint NOT NULL)",
    "CREATE INDEX IF NOT EXISTS help_tasks_owner ON help_tasks"
    " (center_id, owner_clerk, deadline_at) WHERE status IN ('open', 'accepted', 'in_progress')",
    "CREATE INDEX IF NOT EXISTS help_tasks_case ON help_tasks (case_id)",
    # Handed back to the clerk who asked: on their worklist while the case is open.
    # ... and, closed by its case's resolution, while the case is reopened (queries.py).
    # Bounded to FOLLOWUP_HANDED_BACK_DAYS, the latest first: the moment in the index.
    "DROP INDEX IF EXISTS help_tasks_handed_back",
    "DROP INDEX IF EXISTS help_tasks_back_to_asker",
    "CREATE INDEX IF NOT EXISTS help_tasks_asker_recent ON help_tasks"
    " (center_id, requested_by, updated_at DESC, task_id)"
    " WHERE status IN ('handed_back', 'closed')",
    "CREATE TABLE IF NOT EXISTS referrals ("
    " referral_id uuid PRIMARY KEY, center_id text NOT NULL, case_id uuid,"
    " unit_kind text NOT NULL, unit_name text NOT NULL, unit_contact text NOT NULL,"
    " referred_by text NOT NULL, status text NOT NULL, reply_due_at timestamptz NOT NULL,"
    " basis text NOT NULL, reply text, replied_by_recipient boolean,"
    " replied_at timestamptz, follow_up_id uuid, sent_at timestamptz NOT NULL,"
    " updated_at timestamptz NOT NULL, version int NOT NULL, position bigint NOT NULL)",
    # Escalated (a task) or overdue (a referral) on a provisional deadline the published
    # schedule moves: kept on its moment and basis, said once (published_deadline_at,
    # published_reply_due_at), not re-read at every reload (replanning.py).
    "ALTER TABLE help_tasks ADD COLUMN IF NOT EXISTS deadline_kept boolean NOT NULL"
    " DEFAULT false",
    "ALTER TABLE referrals ADD COLUMN IF NOT EXISTS reply_due_kept boolean NOT NULL"
    " DEFAULT false",
    # The staff who moved a help task along (accepted, started, did or handed it back): they
    # served its case (帮办), as the colleague it names (``shared.kernel.serving``), so they
    # do not record its resident's favourable verdict (代评) nor work its bad review's
    # follow-ups (residents.SERVED_CASE). A task of the supervisor team names nobody: any
    # supervisor works it. Empty before this column (rebuild to fill it).
    "ALTER TABLE help_tasks ADD COLUMN IF NOT EXISTS worked_by text[] NOT NULL DEFAULT '{}'",
    "CREATE INDEX IF NOT EXISTS referrals_case ON referrals (case_id)",
    "CREATE INDEX IF NOT EXISTS referrals_waiting ON referrals (center_id, reply_due_at)"
    " WHERE status <> 'replied'",
    # The scheduler's look for overdue referrals of resolved cases (scheduler.LEFT_CHASED).
    "CREATE INDEX IF NOT EXISTS referrals_overdue ON referrals (case_id)"
    " WHERE status = 'overdue'",
    # ... and its page a tick of those awaiting a reply (scheduler.LEFT_WAITING).
    "CREATE INDEX IF NOT EXISTS referrals_awaiting ON referrals (referral_id)"
    " WHERE status = 'awaiting_reply'",
    # The live batches' rows, each as one composite (``bulk.RowType``: never altered, a new
    # shape is a new name; a rebuild's switch leaves them in the live schema).
    SCHEDULED_ROW.ddl,
    FOLLOWUP_CHANGE.ddl,
]

UPSERT_TIMER = (
    "INSERT INTO timers (aggregate_id, kind, fire_at, version)"
    " SELECT * FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::int[])"
    " ON CONFLICT (aggregate_id) DO UPDATE SET fire_at = EXCLUDED.fire_at,"
    " version = EXCLUDED.version WHERE timers.version <= EXCLUDED.version")


async def upsert_timers(conn: asyncpg.Connection | asyncpg.Pool,
                        rows: Sequence[tuple[UUID, str, datetime | None, int]]) -> None:
    """Write ``rows`` in the order of their ids: the worklist's batches (in event order) and
    the schedulers' ticks (in due order) write the same timers, and two statements taking
    them in opposite orders deadlocked (PostgreSQL failed one of them)."""
    if rows:
        await conn.execute(UPSERT_TIMER, *timer_columns(rows))


def timer_columns(rows: Sequence[tuple[UUID, str, datetime | None, int]]
                  ) -> tuple[list[Any], ...]:
    """``UPSERT_TIMER``'s four arrays for ``rows`` (not empty), in the order of their ids
    (``upsert_timers``)."""
    return tuple(list(column) for column in zip(*sorted(rows, key=lambda r: r[0]),
                                                strict=True))


def _at(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


FOLLOWUP_COLUMNS = (
    "follow_up_id", "center_id", "case_id", "resident_id", "reason", "priority", "status",
    "due_at", "due_on", "assigned_clerk", "assigned_team", "escalated_to", "service_item",
    "source", "source_id", "outcome", "channel", "scheduled_at", "updated_at", "completed_at",
    "version", "position", "basis", "contact", "due_kept")
#: What an event after FollowUpScheduled may change.
FOLLOWUP_CHANGING = ("status", "due_at", "due_on", "assigned_clerk", "assigned_team",
                     "escalated_to", "outcome", "channel", "completed_at", "updated_at",
                     "version", "position", "basis", "contact", "priority", "due_kept",
                     "case_id")
OBLIGATION_COLUMNS = ("obligation_id", "aggregate_id", "center_id", "case_id", "resident_id",
                      "cadence", "next_due_on", "missed_at", "active", "missed_periods",
                      "version", "basis")
#: An ObligationWatched's row (``WorklistProjection._watch``).
WATCHED_COLUMNS = ("obligation_id", "aggregate_id", "center_id", "case_id", "resident_id",
                   "cadence", "next_due_on", "missed_at", "active", "version", "basis")
OBLIGATION_CHANGING = ("next_due_on", "missed_at", "missed_periods", "active", "version",
                       "basis")


#: A new follow-up's row as the live handler inserts it (``_new_followups``).
SCHEDULED_COLUMNS = SCHEDULED_ROW.columns
#: A batch's changes (``folded``), one row per follow-up, in one statement: each row what
#: the event-by-event ``UPDATE ... WHERE version < $n`` would leave (``None``: unchanged),
#: ``since`` the version of the first of them (the guard: the row older than each one).
#: The rows go as one array of ``FOLLOWUP_CHANGE`` (``bulk.RowType``: asyncpg checks each
#: row once, not each of its 19 values).
UPDATE_FOLLOWUPS = (
    "UPDATE followups AS t SET version = s.version, position = s.position,"
    " updated_at = s.updated_at, status = COALESCE(s.status, t.status),"
    " due_at = COALESCE(s.due_at, t.due_at), due_on = COALESCE(s.due_on, t.due_on),"
    " assigned_clerk = CASE WHEN s.reassigned THEN s.clerk ELSE t.assigned_clerk END,"
    " assigned_team = CASE WHEN s.reassigned THEN s.team ELSE t.assigned_team END,"
    " escalated_to = COALESCE(s.escalated_to, t.escalated_to),"
    " outcome = COALESCE(s.outcome, t.outcome), channel = COALESCE(s.channel, t.channel),"
    " completed_at = COALESCE(s.completed_at, t.completed_at),"
    " basis = COALESCE(s.basis, t.basis), contact = COALESCE(s.contact, t.contact),"
    " priority = COALESCE(s.priority, t.priority),"
    " due_kept = COALESCE(s.due_kept, t.due_kept),"
    " case_id = COALESCE(s.case_id, t.case_id)"
    f" FROM unnest($1::{FOLLOWUP_CHANGE.name}[]) AS s"
    " WHERE t.follow_up_id = s.follow_up_id AND t.version < s.since")


def _new_followups(scheduled: Sequence[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """``_Plan.scheduled`` as rows of ``SCHEDULED_COLUMNS``, the first of each follow-up
    only (as one INSERT ... ON CONFLICT DO NOTHING per event leaves it)."""
    return bulk.first_of_each(
        ((fid, center_id, case_id, resident_id, reason, priority, "scheduled", due_at, due_on,
          clerk, team, item, source, source_id, at, at, v, position, basis, contact)
         for (fid, center_id, case_id, resident_id, reason, priority, due_at, due_on, clerk,
              team, item, source, source_id, at, v, position, basis, contact) in scheduled),
        1)


@dataclass
class _Plan:
    """What a batch does: follow-ups scheduled and changed (in order), the last timer of each
    aggregate, and the policy and obligation events (in order).

    ``early`` indexes the updates ahead of their follow-up's scheduling in the batch (on the
    stream before it): one event at a time, they find no row unless an earlier batch made
    it, so they are applied only then, wherever the batches end."""

    scheduled: list[tuple[Any, ...]] = field(default_factory=list)
    updates: list[tuple[Any, ...]] = field(default_factory=list)
    early: set[int] = field(default_factory=set)
    timers: dict[UUID, tuple[UUID, str, datetime | None, int]] = field(default_factory=dict)
    others: list[Envelope] = field(default_factory=list)
    #: What the live statements send (``sending``), built once.
    _sent: _Sending | None = None

    def sending(self) -> _Sending:
        """The rows the live statements send for this plan, built the first time it is
        asked: by ``WorklistProjection.prepare``, while the batch before waits on
        PostgreSQL, or else by ``apply``. Pure; the plan stays as it was."""
        if self._sent is None:
            updates = self.updates
            self._sent = _Sending(
                _new_followups(self.scheduled) if self.scheduled else [],
                with_since(updates) if updates and not self.early and rising(updates)
                else None,
                timer_columns(list(self.timers.values())) if self.timers else None)
        return self._sent

    def timer(self, row: tuple[UUID, str, datetime | None, int]) -> None:
        """An aggregate's timer, the newest version winning as the upsert's guard makes it
        win across batches (``timers.version <= EXCLUDED.version``): a stale event later in
        the batch (a step out of order on the log) leaves the timer as it is."""
        known = self.timers.get(row[0])
        if known is None or known[3] <= row[3]:
            self.timers[row[0]] = row


@dataclass(slots=True)
class _Sending:
    """A plan's rows as the live statements take them (``_Plan.sending``)."""

    #: New follow-ups (``SCHEDULED_ROW``), the first of each.
    scheduled: list[tuple[Any, ...]]
    #: ``UPDATE_FOLLOWUPS``' rows when each follow-up's changes rise in version and none is
    #: ahead of its scheduling (no read first); None: read the versions first.
    changes: list[tuple[Any, ...]] | None
    #: ``UPSERT_TIMER``'s arrays; None: no timer changed.
    timers: tuple[list[Any], ...] | None


def _iso_date(value: str) -> date:
    """``YYYY-MM-DD`` only: what PostgreSQL's ``text::date`` reads the same way (anything
    else fails here, and the batch goes to the live handler's SQL)."""
    if len(value) != 10:
        raise ValueError(f"not a YYYY-MM-DD date: {value!r}")
    return date.fromisoformat(value)


#: Where an update row (``_Plan.updates``) holds what: the follow-up, its version, position
#: and moment, then the changed columns (None: unchanged), ``reassigned`` saying whether
#: the assignee (clerk, team: None is a value there) changed.
_VERSION, _REASSIGNED, _CLERK, _TEAM = 1, 7, 8, 9


def folded(updates: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The batch's changes of each follow-up as one update row, in the order they were made:
    the last version, position and moment, each column's last value (the live UPDATE keeps
    a column its change leaves None), the last reassignment. ``updates`` are those the
    version guard lets through one by one (rising versions, each above the row's: see
    ``WorklistProjection.apply``), so the row is what their UPDATEs in turn would leave."""
    by_id: dict[Any, list[Any]] = {}
    for update in updates:
        row = by_id.get(update[0])
        if row is None:
            by_id[update[0]] = list(update)
            continue
        for i, value in enumerate(update):
            if i in (_CLERK, _TEAM):
                continue
            if i == _REASSIGNED:
                if value:
                    row[_REASSIGNED], row[_CLERK], row[_TEAM] = True, update[_CLERK], \
                        update[_TEAM]
            elif value is not None or i <= 3:
                row[i] = value
    return [tuple(row) for row in by_id.values()]


def rising(updates: list[tuple[Any, ...]]) -> bool:
    """Whether each follow-up's updates rise in version, one after the other: then a row
    older than the first of them takes every one, event by event, and a row at or past
    the first takes none of them (it is at or past the last too, unless the batch's own
    SQL moved it: see ``WorklistProjection.apply``)."""
    last: dict[Any, int] = {}
    for update in updates:
        known = last.get(update[0])
        if known is not None and known >= update[_VERSION]:
            return False
        last[update[0]] = update[_VERSION]
    return True


def with_since(updates: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """``folded(updates)``, each row with the version of its follow-up's first update
    (``since``: ``UPDATE_FOLLOWUPS``' guard)."""
    first: dict[Any, int] = {}
    for update in updates:
        first.setdefault(update[0], update[_VERSION])
    return [(*row, first[row[0]]) for row in folded(updates)]


class WorklistProjection:
    """Applies follow-up's own events to its read models in the consumer's transaction.

    ``copy_apply`` (a rebuild's staging tables) leaves the same rows: follow-ups and
    obligations are read once per batch where an earlier batch wrote them, every event is
    applied in memory as the live SQL would (the version guard included), new rows are
    COPied and changed ones written back with one UPDATE per table; timers are one upsert
    per batch, as live; policy changes (a handful a year) go through the live statements.
    """

    def __init__(self, tz: ZoneInfo) -> None:
        self.tz = tz
        self._tables = bulk.Tables()

    def _plan(self, events: Sequence[Envelope]) -> _Plan:
        plan = _Plan()
        # The follow-ups the batch schedules, until their scheduling is met.
        scheduling = {e.aggregate_id for e in events
                      if e.service == "followup" and e.type == "FollowUpScheduled"}
        for e in events:
            if e.service != "followup":
                continue
            p, fid, v = e.payload, e.aggregate_id, e.aggregate_version
            if fid in scheduling:
                if e.type == "FollowUpScheduled":
                    scheduling.discard(fid)
                elif e.type.startswith("FollowUp"):
                    plan.early.add(len(plan.updates))  # the update it is about to add
            if e.type == "FollowUpScheduled":
                due_at = _at(p["due_at"])
                assert due_at is not None
                plan.scheduled.append((
                    fid, e.center_id, e.case_id,
                    UUID(p["resident_id"]) if p["resident_id"] else None, p["reason"],
                    p["priority"], due_at, due_at.astimezone(self.tz).date(),
                    p["assigned_clerk"], p["assigned_team"], p["service_item"], p["source"],
                    UUID(p["source_id"]) if p["source_id"] else None, e.occurred_at, v,
                    e.position, p["basis"], p["contact"]))
                plan.timer((fid, "followup", due_at, v))
            elif e.type in ("FollowUpContactWithdrawn", "FollowUpPrioritised",
                            "FollowUpReassigned", "FollowUpDueConfirmed") or (
                    e.type == "FollowUpRescheduled"
                    and (p.get("stays") or p.get("counted") is False)):
                # The timer runs on: as a task without contact, now high priority, for its
                # new assignee, with its due moment confirmed on the published schedule, or
                # missed or escalated still after an unanswered attempt (``stays``), or after
                # a call recorded but not counted (``counted`` false: its moment unchanged).
                plan.updates.append((fid, v, e.position, e.occurred_at, *self._change(e)))
            elif e.type.startswith("FollowUp"):
                change = self._change(e)
                plan.updates.append((fid, v, e.position, e.occurred_at, *change))
                fire = {"FollowUpDue": "overdue_at", "FollowUpMissed": "escalate_at",
                        "FollowUpRescheduled": "due_at"}.get(e.type)
                plan.timer((fid, "followup", _at(p[fire]) if fire else None, v))
            elif e.type.startswith("PolicyChange"):
                plan.others.append(e)
            elif e.type.startswith(("HelpTask", "Referral")):
                plan.others.append(e)
                fire = {"HelpTaskOpened": "deadline_at", "HelpTaskReplanned": "deadline_at",
                        "ReferralSent": "reply_due_at", "ReferralReopened": "reply_due_at",
                        "ReferralReplanned": "reply_due_at"}.get(e.type)
                if fire and _at(p.get(f"previous_{fire}")) == _at(p[fire]):
                    # A deadline confirmed (the same moment, a new basis): its timer stays as
                    # it is; that of a referral chased or a task escalated is off, and the
                    # confirmation must not re-arm it.
                    continue
                if fire or e.type in ("HelpTaskDone", "HelpTaskHandedBack", "HelpTaskClosed",
                                      "HelpTaskEscalated", "ReferralReplied", "ReferralOverdue",
                                      "ReferralClosed"):
                    kind = "helptask" if e.type.startswith("HelpTask") else "referral"
                    plan.timer((fid, kind, _at(p[fire]) if fire else None, v))
            elif e.type.startswith("Obligation"):
                plan.others.append(e)
                missed_at = None if e.type == "ObligationEnded" else _at(p["missed_at"])
                plan.timer((fid, "obligation", missed_at, v))
        return plan

    def prepare(self, events: Sequence[Envelope]) -> _Plan:
        """The batch's plan and the rows its statements send (no database): made while the
        batch before is applied."""
        plan = self._plan(events)
        plan.sending()
        return plan

    async def apply(self, conn: asyncpg.Connection, events: Sequence[Envelope],
                    prepared: object | None = None) -> None:
        plan = prepared if isinstance(prepared, _Plan) else self._plan(events)
        watched: list[Envelope] = []  # ObligationWatched in a row: one INSERT for them
        for e in plan.others:
            if e.type == "ObligationWatched":
                watched.append(e)
                continue
            await self._watch(conn, watched)
            if e.type.startswith("PolicyChange"):
                await self._policy(conn, e)
            elif e.type.startswith(("HelpTask", "Referral")):
                await self._help_or_referral(conn, e)
            else:
                await self._obligation(conn, e)
        await self._watch(conn, watched)
        sending = plan.sending()
        inserted: set[UUID] = set()
        if sending.scheduled:
            inserted = {r["follow_up_id"] for r in await bulk.insert_rows(
                conn, self._tables, "followups", SCHEDULED_COLUMNS, sending.scheduled,
                returning=("follow_up_id",) if plan.early else (), row_type=SCHEDULED_ROW)}
        updates = plan.updates  # (the plan stays whole: a batch tried again takes it again)
        if sending.changes is not None:
            # Without reading the rows first: each follow-up's changes rise in version, so
            # event by event a row older than the first takes them all, and one at or past
            # it none (it is past the first while a later one of the batch still applies
            # only if the log holds a version twice or out of order: ``rising`` is false
            # then). Every row changed: done. Else (a row at or past the first, or none for
            # an update), the rows are read as below; those this UPDATE changed are at
            # their last version now and take nothing more.
            rows = sending.changes
            if await bulk.changed_rows(conn, UPDATE_FOLLOWUPS, rows) == len(rows):
                updates = []
        if updates:
            # The version guard (``version < $2``), event by event, against the rows as they
            # are: a folded row then holds only the changes each event's own UPDATE would
            # have made, wherever the batch ends (a stale version within it included).
            versions = dict(await conn.fetch(
                "SELECT follow_up_id, version FROM followups"
                " WHERE follow_up_id = ANY($1::uuid[])", list({u[0] for u in updates})))
            applied = []
            for i, update in enumerate(updates):
                if i in plan.early and update[0] in inserted:
                    continue  # ahead of its scheduling, which made the row: no row then
                known = versions.get(update[0])
                if known is not None and known < update[_VERSION]:
                    versions[update[0]] = update[_VERSION]
                    applied.append(update)
            if applied:
                await bulk.send_rows(conn, UPDATE_FOLLOWUPS, with_since(applied))
        if sending.timers is not None:
            await conn.execute(UPSERT_TIMER, *sending.timers)

    async def copy_apply(self, conn: asyncpg.Connection, events: Sequence[Envelope]) -> None:
        plan = self._plan(events)
        for e in plan.others:
            if e.type.startswith("PolicyChange"):
                await self._policy(conn, e)
            elif e.type.startswith(("HelpTask", "Referral")):
                # A few per case at most: the live statements, as for policy changes.
                await self._help_or_referral(conn, e)
        await self._copy_obligations(conn, [e for e in plan.others
                                            if e.type.startswith("Obligation")])
        new: dict[UUID, dict[str, Any]] = {}
        for (fid, center_id, case_id, resident_id, reason, priority, due_at, due_on, clerk,
             team, item, source, source_id, at, v, position, basis,
             contact) in plan.scheduled:
            if fid not in new:  # ON CONFLICT DO NOTHING: the first one stays
                new[fid] = dict(
                    follow_up_id=fid, center_id=center_id, case_id=case_id,
                    resident_id=resident_id, reason=reason, priority=priority,
                    status="scheduled", due_at=due_at, due_on=due_on, assigned_clerk=clerk,
                    assigned_team=team, escalated_to=None, service_item=item, source=source,
                    source_id=source_id, outcome=None, channel=None, scheduled_at=at,
                    updated_at=at, completed_at=None, version=v, position=position,
                    basis=basis, contact=contact, due_kept=False)
        earlier = await bulk.fetch_rows(conn, "followups", "follow_up_id",
                                        {u[0] for u in plan.updates if u[0] not in new})
        changed: set[UUID] = set()
        for i, (fid, v, position, at, status, due_at, due_on, reassigned, clerk, team,
                escalated_to, outcome, channel, completed_at, basis, contact,
                priority, due_kept, case_id) in enumerate(plan.updates):
            if i in plan.early:  # had an earlier batch made the row, the COPY fails
                continue
            row = new.get(fid) or earlier.get(fid)
            if row is None or not row["version"] < v:
                continue
            row.update(version=v, position=position, updated_at=at)
            for column, value in (("status", status), ("due_at", due_at), ("due_on", due_on),
                                  ("escalated_to", escalated_to), ("outcome", outcome),
                                  ("channel", channel), ("completed_at", completed_at),
                                  ("basis", basis), ("contact", contact),
                                  ("priority", priority), ("due_kept", due_kept),
                                  ("case_id", case_id)):
                if value is not None:  # COALESCE($n, column)
                    row[column] = value
            if reassigned:
                row.update(assigned_clerk=clerk, assigned_team=team)
            if fid in earlier:
                changed.add(fid)
        await bulk.copy_rows(conn, "followups", FOLLOWUP_COLUMNS, new.values())
        await bulk.update_rows(conn, self._tables, "followups", "follow_up_id", {
            fid: {c: earlier[fid][c] for c in FOLLOWUP_CHANGING} for fid in changed})
        await upsert_timers(conn, list(plan.timers.values()))

    async def _copy_obligations(self, conn: asyncpg.Connection,
                                events: Sequence[Envelope]) -> None:
        """``_obligation`` for a batch, in memory over the rows it touches."""
        if not events:
            return
        watched = [UUID(e.payload["obligation_id"]) for e in events
                   if e.type == "ObligationWatched"]
        found = await conn.fetch(
            f"SELECT {', '.join(OBLIGATION_COLUMNS)} FROM obligations"
            " WHERE obligation_id = ANY($1::uuid[]) OR aggregate_id = ANY($2::uuid[])",
            watched, list({e.aggregate_id for e in events}))
        rows = {r["obligation_id"]: dict(r) for r in found}
        earlier = set(rows)
        changed: set[UUID] = set()
        for e in events:
            p, v = e.payload, e.aggregate_version
            if e.type == "ObligationWatched":
                oid = UUID(p["obligation_id"])
                if oid not in rows:  # ON CONFLICT DO NOTHING
                    rows[oid] = dict(
                        obligation_id=oid, aggregate_id=e.aggregate_id, center_id=e.center_id,
                        case_id=e.case_id, resident_id=UUID(p["resident_id"]),
                        cadence=p["cadence"], next_due_on=_iso_date(p["next_due_on"]),
                        missed_at=_at(p["missed_at"]), active=True, missed_periods=0, version=v,
                        basis=p["basis"])
                continue
            if e.type in ("ObligationFulfilled", "ObligationMissed", "ObligationReplanned"):
                change = dict(next_due_on=_iso_date(p["next_due_on"]),
                              missed_at=_at(p["missed_at"]), version=v, basis=p["basis"])
                missed = 1 if e.type == "ObligationMissed" else 0
            elif e.type == "ObligationEnded":
                change, missed = dict(active=False, missed_at=None, version=v), 0
            else:
                continue
            for oid, row in rows.items():  # WHERE aggregate_id = $1 AND version < $n
                if row["aggregate_id"] == e.aggregate_id and row["version"] < v:
                    row.update(change)
                    row["missed_periods"] += missed
                    changed.add(oid)
        await bulk.copy_rows(conn, "obligations", OBLIGATION_COLUMNS,
                             [row for oid, row in rows.items() if oid not in earlier])
        await bulk.update_rows(conn, self._tables, "obligations", "obligation_id", {
            oid: {c: rows[oid][c] for c in OBLIGATION_CHANGING} for oid in changed & earlier})

    async def _policy(self, conn: asyncpg.Connection, e: Envelope) -> None:
        p = e.payload
        if e.type == "PolicyChangePublished":
            await conn.execute(
                "INSERT INTO policy_changes (policy_id, center_id, service_items,"
                " all_centers, effective_on, outreach_due_at, published_at, basis, due_rule,"
                " scope, published_by)"
                " VALUES ($1, $2, $3, $4, $5::text::date, $6, $7, $8, $9::jsonb, $10, $11)"
                " ON CONFLICT (policy_id) DO NOTHING",
                e.aggregate_id, e.center_id, p["service_items"], p["all_centers"],
                p["effective_on"], _at(p["outreach_due_at"]), e.occurred_at, p["basis"],
                orjson.dumps(p["due_rule"]).decode() if p["due_rule"] else None,
                p["scope"], e.actor)
        elif e.type == "PolicyChangeFannedOut":
            await conn.execute(
                "UPDATE policy_changes SET finished_at = COALESCE(finished_at, $2),"
                " residents = $3 WHERE policy_id = $1", e.aggregate_id, e.occurred_at,
                p["residents"])

    def _change(self, e: Envelope) -> tuple[Any, ...]:
        """(status, due_at, due_on, reassigned, clerk, team, escalated_to, outcome, channel,
        completed_at, basis, contact, priority, due_kept, case_id) for an event after
        FollowUpScheduled; None leaves a column as it is."""
        p = e.payload
        none = (None, None, None, False, None, None, None, None, None, None, None, None, None,
                None, None)
        if e.type == "FollowUpDue":
            return ("due", *none[1:])
        if e.type == "FollowUpMissed":
            return ("missed", *none[1:])
        if e.type == "FollowUpEscalated":
            return ("escalated", None, None, False, None, None, p["escalated_to"], None, None,
                    None, None, None, None, None, None)
        if e.type == "FollowUpCompleted":
            return ("completed", None, None, False, None, None, None, p["outcome"],
                    p["channel"], e.occurred_at, None, None, None, None, None)
        if e.type == "FollowUpRescheduled" and (p.get("stays") or p.get("counted") is False):
            return none  # an attempt on a missed or escalated one, or a call not counted
        if e.type == "FollowUpRescheduled":
            due_at = _at(p["due_at"])
            assert due_at is not None
            return ("scheduled", due_at, due_at.astimezone(self.tz).date(), True,
                    p["assigned_clerk"], p["assigned_team"], None, None, None, None, p["basis"],
                    None, None, False, None)
        if e.type == "FollowUpCancelled":
            return ("cancelled", *none[1:])
        if e.type == "FollowUpContactWithdrawn":
            return (*none[:-4], False, None, None, None)
        if e.type == "FollowUpPrioritised":
            return (*none[:-3], p["priority"], None, None)
        if e.type == "FollowUpReassigned":
            # ``case_id``: a plan step's reminder whose step was linked to a case since.
            linked = p.get("case_id")
            return (None, None, None, True, p["assigned_clerk"], p["assigned_team"], None,
                    None, None, None, None, None, None, None, UUID(linked) if linked else None)
        if e.type == "FollowUpDueConfirmed":
            # Kept: the published schedule gives another moment (``published_due_at``);
            # without it, confirmed on its moment: nothing kept (a correcting notice's).
            return (*none[:10], p["basis"], None, None, p.get("published_due_at") is not None,
                    None)
        return none

    async def _help_or_referral(self, conn: asyncpg.Connection, e: Envelope) -> None:
        """``help_tasks`` and ``referrals``, each change guarded by the aggregate's version."""
        p, v = e.payload, e.aggregate_version
        if e.type == "HelpTaskOpened":
            deadline_at = _at(p["deadline_at"])
            assert deadline_at is not None
            await conn.execute(
                "INSERT INTO help_tasks (task_id, center_id, case_id, owner_clerk, owner_team,"
                " requested_by, status, deadline_at, deadline_on, basis, service_item,"
                " source_id, opened_at, updated_at, version, position) VALUES ($1, $2, $3, $4,"
                " $5, $6, 'open', $7, $8, $9, $10, $11, $12, $12, $13, $14)"
                " ON CONFLICT (task_id) DO NOTHING",
                e.aggregate_id, e.center_id, e.case_id, p["owner_clerk"], p["owner_team"],
                p["requested_by"], deadline_at, deadline_at.astimezone(self.tz).date(),
                p["basis"], p["service_item"], UUID(p["source_id"]), e.occurred_at, v,
                e.position)
        elif e.type == "HelpTaskEscalated":
            await conn.execute(
                "UPDATE help_tasks SET escalated_to = $2, updated_at = $3, version = $4,"
                " position = $5 WHERE task_id = $1 AND version < $4", e.aggregate_id,
                p["escalated_to"], e.occurred_at, v, e.position)
        elif e.type == "HelpTaskReplanned":
            # Its day in the centers' zone, as HelpTaskOpened's.
            await conn.execute(
                "UPDATE help_tasks SET deadline_at = $2,"
                " deadline_on = ($2::timestamptz AT TIME ZONE $3::text)::date, basis = $4,"
                " deadline_kept = $8, updated_at = $5, version = $6, position = $7"
                " WHERE task_id = $1 AND version < $6", e.aggregate_id, _at(p["deadline_at"]),
                self.tz.key, p["basis"], e.occurred_at, v, e.position,
                p.get("published_deadline_at") is not None)
        elif e.type.startswith("HelpTask"):
            status = {"HelpTaskAccepted": "accepted", "HelpTaskStarted": "in_progress",
                      "HelpTaskDone": "done", "HelpTaskHandedBack": "handed_back",
                      "HelpTaskClosed": "closed"}[e.type]
            worker = None if e.actor is None or by_a_worker(e.actor) else e.actor
            await conn.execute(
                "UPDATE help_tasks SET status = $2, updated_at = $3, version = $4,"
                " position = $5, worked_by = CASE WHEN $6::text IS NULL"
                " OR $6 = ANY(worked_by) THEN worked_by ELSE worked_by || $6 END"
                " WHERE task_id = $1 AND version < $4", e.aggregate_id, status,
                e.occurred_at, v, e.position, worker)
        elif e.type == "ReferralSent":
            await conn.execute(
                "INSERT INTO referrals (referral_id, center_id, case_id, unit_kind, unit_name,"
                " unit_contact, referred_by, status, reply_due_at, basis, sent_at, updated_at,"
                " version, position) VALUES ($1, $2, $3, $4, $5, $6, $7, 'awaiting_reply', $8,"
                " $9, $10, $10, $11, $12) ON CONFLICT (referral_id) DO NOTHING",
                e.aggregate_id, e.center_id, e.case_id, p["unit_kind"], p["unit_name"],
                p["unit_contact"], p["referred_by"], _at(p["reply_due_at"]), p["basis"],
                e.occurred_at, v, e.position)
        elif e.type == "ReferralReplied":
            await conn.execute(
                "UPDATE referrals SET status = 'replied', reply = $2,"
                " replied_by_recipient = $3, replied_at = $4, updated_at = $4, version = $5,"
                " position = $6 WHERE referral_id = $1 AND version < $5", e.aggregate_id,
                p["reply"], p["by_recipient"], e.occurred_at, v, e.position)
        elif e.type == "ReferralOverdue":
            await conn.execute(
                "UPDATE referrals SET status = 'overdue', follow_up_id = $2, updated_at = $3,"
                " version = $4, position = $5 WHERE referral_id = $1 AND version < $4",
                e.aggregate_id, UUID(p["follow_up_id"]), e.occurred_at, v, e.position)
        elif e.type == "ReferralClosed":
            await conn.execute(
                "UPDATE referrals SET status = 'closed', updated_at = $2, version = $3,"
                " position = $4 WHERE referral_id = $1 AND version < $3", e.aggregate_id,
                e.occurred_at, v, e.position)
        elif e.type == "ReferralReplanned":
            await conn.execute(
                "UPDATE referrals SET reply_due_at = $2, basis = $3, reply_due_kept = $7,"
                " updated_at = $4, version = $5, position = $6"
                " WHERE referral_id = $1 AND version < $5",
                e.aggregate_id, _at(p["reply_due_at"]), p["basis"], e.occurred_at, v,
                e.position, p.get("published_reply_due_at") is not None)
        elif e.type == "ReferralReopened":
            # Chased again: awaited anew by its new deadline, no 督办 of this round yet.
            await conn.execute(
                "UPDATE referrals SET status = 'awaiting_reply', reply_due_at = $2, basis = $3,"
                " follow_up_id = NULL, reply_due_kept = false, updated_at = $4, version = $5,"
                " position = $6"
                " WHERE referral_id = $1 AND version < $5", e.aggregate_id,
                _at(p["reply_due_at"]), p["basis"], e.occurred_at, v, e.position)

    async def _watch(self, conn: asyncpg.Connection, watched: list[Envelope]) -> None:
        """ObligationWatched events (emptied): what ``_obligation`` inserts for each, in one
        ``INSERT ... ON CONFLICT DO NOTHING``, the first of each obligation only. A date
        Python does not read as ``YYYY-MM-DD`` goes through ``_obligation``'s own SQL."""
        if not watched:
            return
        try:
            rows = [(UUID(p["obligation_id"]), e.aggregate_id, e.center_id, e.case_id,
                     UUID(p["resident_id"]), p["cadence"], _iso_date(p["next_due_on"]),
                     _at(p["missed_at"]), True, e.aggregate_version, p["basis"])
                    for e in watched for p in (e.payload,)]
        except ValueError:
            for e in watched:
                await self._obligation(conn, e)
        else:
            await bulk.insert_rows(conn, self._tables, "obligations", WATCHED_COLUMNS,
                                   bulk.first_of_each(rows, 1))
        watched.clear()

    async def _obligation(self, conn: asyncpg.Connection, e: Envelope) -> None:
        p = e.payload
        if e.type == "ObligationWatched":
            await conn.execute(
                "INSERT INTO obligations (obligation_id, aggregate_id, center_id, case_id,"
                " resident_id, cadence, next_due_on, missed_at, active, version, basis)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7::text::date, $8, true, $9, $10)"
                " ON CONFLICT (obligation_id) DO NOTHING",
                UUID(p["obligation_id"]), e.aggregate_id, e.center_id, e.case_id,
                UUID(p["resident_id"]), p["cadence"], p["next_due_on"], _at(p["missed_at"]),
                e.aggregate_version, p["basis"])
        elif e.type in ("ObligationFulfilled", "ObligationMissed", "ObligationReplanned"):
            await conn.execute(
                "UPDATE obligations SET next_due_on = $2::text::date, missed_at = $3,"
                " missed_periods = missed_periods + $4, version = $5, basis = $6"
                " WHERE aggregate_id = $1 AND version < $5",
                e.aggregate_id, p["next_due_on"], _at(p["missed_at"]),
                1 if e.type == "ObligationMissed" else 0, e.aggregate_version, p["basis"])
        elif e.type == "ObligationEnded":
            await conn.execute(
                "UPDATE obligations SET active = false, missed_at = NULL, version = $2"
                " WHERE aggregate_id = $1 AND version < $2", e.aggregate_id, e.aggregate_version)


READ_MODEL = ReadModel(
    service="followup", consumer=CONSUMER, handler=lambda s: WorklistProjection(s.tz), ddl=DDL,
    subjects=lambda settings: [f"{settings.subject_prefix}.followup.*.*"],
    keys={"followups": "case_id", "help_tasks": "case_id", "referrals": "case_id"},
    # The fan-out moves a policy's cursor and count and stamps finished_at itself (not from
    # events); the scheduler's timer writes equal the ones folded from the events.
    volatile=frozenset({"projected_at", "cursor", "residents", "finished_at",
                        "moved_at"}),
    # Follow-ups, timers, help tasks and referrals are found by their ids only: a rebuild
    # makes these last. Obligations are also found by their aggregate: theirs stay.
    built_after=frozenset({"followups_provisional", "followups_provisional_past",
                           "followups_of_clerk", "followups_of_team", "followups_escalated_to",
                           "followups_case", "followups_of_resident", "followups_source",
                           "followups_by_status",
                           "followups_home_visits", "timers_due", "help_tasks_owner",
                           "help_tasks_case", "help_tasks_asker_recent", "referrals_case",
                           "referrals_waiting", "referrals_overdue", "referrals_awaiting"}),
)
"""What ``sixstep rebuild followup`` folds the log with (the worklist and its indexes)."""

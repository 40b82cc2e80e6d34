"""Follow-up's reads: a follow-up, the follow-ups of a case, a resident or a source, the
worklists (overdue, due today, upcoming), a policy change and an obligation, from the read
model (``projections.py``). The routes (``api.py``) check the caller may see what these
return."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
from pydantic import Field

from services.followup.domain import WorkDay
from services.followup.projections import OPEN
from shared.readmodels.public import Elsewhere, Moment, Public, elsewhere, in_reach

COLUMNS = ("follow_up_id, center_id, case_id, resident_id, reason, priority, status, due_at,"
           " due_on, basis, assigned_clerk, assigned_team, escalated_to, service_item, source,"
           " source_id, outcome, channel, scheduled_at, updated_at, completed_at, version,"
           " position, contact, due_kept")
_X_COLUMNS = ", ".join(f"x.{c.strip()}" for c in COLUMNS.split(","))
POLICY_COLUMNS = ("policy_id, center_id, service_items, all_centers, effective_on,"
                  " outreach_due_at, published_at, cursor, residents, finished_at, basis,"
                  " due_rule, scope, published_by")
OBLIGATION_COLUMNS = ("obligation_id, aggregate_id, center_id, case_id, resident_id, cadence,"
                      " next_due_on, missed_at, active, missed_periods, version, basis")
#: The by-id reads' select lists: each column only in the caller's reach (``$2``;
#: ``public.in_reach``), another center's row sent as its center alone; a policy published
#: for every center (``all_centers``) is in everyone's.
FOLLOW_UP_IN_REACH = in_reach(COLUMNS, "$2")
POLICY_IN_REACH = in_reach(POLICY_COLUMNS, "$2", shared="all_centers")
OBLIGATION_IN_REACH = in_reach(OBLIGATION_COLUMNS, "$2")


class FollowUpPublic(Public):
    """A follow-up: why, for whom, when it is due (and on which basis), who has it, and how
    it ended."""

    follow_up_id: UUID
    center_id: str
    case_id: UUID | None
    resident_id: UUID | None
    reason: str
    priority: str
    status: str
    due_at: Moment
    due_on: date
    basis: str
    assigned_clerk: str | None
    assigned_team: str | None
    escalated_to: str | None
    service_item: str | None
    source: str
    source_id: UUID | None
    outcome: str | None
    channel: str | None
    scheduled_at: Moment
    updated_at: Moment
    completed_at: Moment | None
    version: int
    position: int
    contact: bool
    due_kept: bool = Field(False, description=(
        "Due, missed or escalated on a provisional day that the published schedule moves: "
        "kept on that day, its basis still provisional (FollowUpDueConfirmed with "
        "published_due_at, once); no longer re-planned."))


class FollowUpList(Public):
    items: list[FollowUpPublic]


class CaseDuePublic(Public):
    """An open case on a worklist: past its due date (办结时限), due soon, or critical."""

    case_id: UUID
    center_id: str
    clerk_id: str
    service_item: str
    urgency: str | None
    due_on: date | None
    due_basis: str | None
    urgent: bool = Field(description="urgency high or critical, or a deadline noted close: "
                                     "its follow-ups are high priority")
    overdue: bool = Field(description="open past its due date")
    due_source: str | None = Field(None, description=(
        "where the due date came from: item_days, promised, deadline, moved (null: none yet, "
        "or kept before it was read)"))
    due_may_move: bool = Field(False, description=(
        "whether the due date may still move when its year's holiday schedule is published "
        "(暂定): provisional, counted from the item's days, not past (docs/calendar.md, "
        "\"What keeps its day\"); a typed date (promised, a deadline, moved by hand) and an "
        "overdue one keep their day"))
    owner_clerk: str | None = Field(None, description=(
        "who does the work now when the case was handed over (转办); both null: clerk_id"))
    owner_team: str | None = None


class HelpTaskPublic(Public):
    """帮办: a help task, its owner (a colleague or the supervisor team), deadline and status
    (open, accepted, in_progress, done, handed_back, or closed: its case was resolved first);
    ``escalated_to`` once overdue."""

    task_id: UUID
    center_id: str
    case_id: UUID | None
    owner_clerk: str | None
    owner_team: str | None
    requested_by: str
    status: str
    deadline_at: Moment
    deadline_on: date
    basis: str
    escalated_to: str | None
    service_item: str | None
    source_id: UUID
    opened_at: Moment
    updated_at: Moment
    version: int
    position: int
    deadline_kept: bool = Field(False, description=(
        "Escalated on a provisional deadline that the published schedule moves: kept on that "
        "moment, its basis still provisional (HelpTaskReplanned with published_deadline_at, "
        "once); no longer re-planned."))


class HelpTaskList(Public):
    items: list[HelpTaskPublic]


class ReferralPublic(Public):
    """派单: where the case went (the unit's kind, name and contact; no personal data), the
    reply deadline, the status (awaiting_reply, overdue, replied, closed: its case resolved
    before a reply), the reply and who recorded it, and the 督办 follow-up once overdue."""

    referral_id: UUID
    center_id: str
    case_id: UUID | None
    unit_kind: str
    unit_name: str
    unit_contact: str
    referred_by: str
    status: str
    reply_due_at: Moment
    basis: str
    reply: str | None
    replied_by_recipient: bool | None
    replied_at: Moment | None
    follow_up_id: UUID | None
    sent_at: Moment
    updated_at: Moment
    version: int
    position: int
    reply_due_kept: bool = Field(False, description=(
        "Overdue (督办) on a provisional reply deadline that the published schedule moves: "
        "kept on that moment, its basis still provisional (ReferralReplanned with "
        "published_reply_due_at, once); no longer re-planned. False again once it is chased "
        "anew (ReferralReopened)."))


class ReferralList(Public):
    items: list[ReferralPublic]


class ReplyLinkPublic(Public):
    """A reply link for the referred unit: it records that referral's reply, nothing else."""

    referral_id: UUID
    token: str
    expires_at: Moment


class WorklistPublic(Public):
    """A clerk's or a team's follow-ups on ``today`` (the center's day), high priority first;
    the open cases overdue or due soon (``CASE_DUE_SOON_WORKING_DAYS``), critical ones
    whatever their due date, critical first, then urgent, then by due date; and the help
    tasks they own that are not done (帮办; overdue ones first), on a clerk's worklist then
    those they asked for that were handed back to them while the case is open."""

    today: date
    overdue: list[FollowUpPublic]
    due_today: list[FollowUpPublic]
    upcoming: list[FollowUpPublic]
    cases: list[CaseDuePublic] = Field(default_factory=list)
    help_tasks: list[HelpTaskPublic] = Field(default_factory=list)


class OpenOverduePublic(Public):
    """How many are open, and how many of those are past their deadline."""

    open: int
    overdue: int


class CenterBoardPublic(WorklistPublic):
    """The whole center's worklist, how many rules wait for the calendar, the open home
    visits (whenever due: the team plans its rounds), the help tasks (帮办) and referrals
    (派单) open and overdue, and the referrals still waiting for a reply."""

    parked_rules: int
    home_visits: list[FollowUpPublic] = Field(default_factory=list)
    escalations: OpenOverduePublic = Field(
        default_factory=lambda: OpenOverduePublic(open=0, overdue=0),
        description="help tasks not done (open, accepted, in progress); overdue: past their "
                    "deadline")
    referrals: OpenOverduePublic = Field(
        default_factory=lambda: OpenOverduePublic(open=0, overdue=0),
        description="referrals without a reply; overdue: past their reply deadline (督办)")
    referrals_waiting: list[ReferralPublic] = Field(
        default_factory=list, description="the referrals without a reply, earliest due first")


class PolicyChangePublic(Public):
    """A policy change and its fan-out's progress (``state``: fanning_out, fanned_out)."""

    policy_id: UUID
    center_id: str
    service_items: list[str]
    all_centers: bool
    effective_on: date
    outreach_due_at: Moment
    published_at: Moment
    cursor: UUID | None
    residents: int
    finished_at: Moment | None
    basis: str
    due_rule: str | None  # the rule's JSON, as stored
    scope: str
    published_by: str | None
    state: str


class ObligationPublic(Public):
    """A watched obligation: its current period and how many periods were missed."""

    obligation_id: UUID
    aggregate_id: UUID
    center_id: str
    case_id: UUID | None
    resident_id: UUID
    cadence: str
    next_due_on: date
    missed_at: Moment | None
    active: bool
    missed_periods: int
    version: int
    basis: str | None = Field(None, description=(
        "official | provisional: what missed_at was worked out on (a provisional one is "
        "re-planned when the year's schedule is published); null on a row from before this "
        "field, until the obligation's next event"))


async def follow_up(pool: asyncpg.Pool, follow_up_id: UUID, reach: str | None = None
                    ) -> FollowUpPublic | Elsewhere | None:
    """The follow-up, or None; another center's than ``reach`` (the caller's; None: every
    center's) as :class:`Elsewhere`, decoded no further than its center. So are the other
    by-id reads here."""
    row = await pool.fetchrow(f"SELECT {FOLLOW_UP_IN_REACH} FROM followups"
                              " WHERE follow_up_id = $1", follow_up_id, reach)
    if row is None:
        return None
    return elsewhere(row, reach) or FollowUpPublic.of(row)


async def follow_ups(pool: asyncpg.Pool, given: dict[str, Any], center_id: str | None,
                     limit: int) -> FollowUpList:
    """The follow-ups matching every column = value of ``given`` (None values left out), of
    ``center_id`` when given, latest due first."""
    if center_id is None and given.get("status") is not None \
            and all(v is None for k, v in given.items() if k != "status"):
        return await _of_status_citywide(pool, given["status"], limit)
    where: list[str] = []
    args: list[Any] = []
    for column, value in [*given.items(), ("center_id", center_id)]:
        if value is not None:
            args.append(value)
            where.append(f"{column} = ${len(args)}")
    args.append(limit)
    rows = await pool.fetch(f"SELECT {COLUMNS} FROM followups WHERE {' AND '.join(where)}"
                            f" ORDER BY due_at DESC LIMIT ${len(args)}", *args)
    return FollowUpList(items=[FollowUpPublic.of(r) for r in rows])


async def _of_status_citywide(pool: asyncpg.Pool, status: str, limit: int) -> FollowUpList:
    """Every center's follow-ups of one status, latest due first (the city's token): each
    center's first ``limit`` off ``followups_by_status`` (center, status, due_at), the
    centers found by skipping along that index, and the few merged. Until stop 49 it read
    the whole table and sorted every match: no index leads with the status alone, and one
    more would cost every status change."""
    rows = await pool.fetch(
        "WITH RECURSIVE centers AS ("
        " (SELECT center_id FROM followups ORDER BY center_id LIMIT 1)"
        " UNION ALL SELECT (SELECT f.center_id FROM followups f WHERE f.center_id > c.center_id"
        "  ORDER BY f.center_id LIMIT 1) FROM centers c WHERE c.center_id IS NOT NULL)"
        f" SELECT {_X_COLUMNS} FROM centers c CROSS JOIN LATERAL (SELECT * FROM followups f"
        "  WHERE f.center_id = c.center_id AND f.status = $1 ORDER BY f.due_at DESC"
        "  LIMIT $2) x ORDER BY x.due_at DESC LIMIT $2", status, limit)
    return FollowUpList(items=[FollowUpPublic.of(r) for r in rows])


async def worklist(pool: asyncpg.Pool, day: WorkDay, center_id: str, who: str, value: str,
                   days: int, limit: int) -> WorklistPublic:
    """``who``: the condition on ``$2`` (``value``) naming whose worklist it is. Overdue,
    due today and upcoming on the scheduler's rule (``WorkDay``): overdue once the office
    closed on the working day a follow-up is to be done (or missed or escalated already)."""
    base = (f"SELECT {COLUMNS} FROM followups WHERE center_id = $1 AND {who}"
            f" AND status = ANY($3::text[])")
    open_ = list(OPEN)
    overdue = await pool.fetch(
        f"{base} AND (due_at < $4 OR status IN ('missed', 'escalated'))"
        " ORDER BY priority = 'high' DESC, due_at, follow_up_id LIMIT $5",
        center_id, value, open_, day.overdue_before, limit)
    # due_on (the local day of due_at) bounds each range too, for the (..., due_on) indexes.
    due_today = await pool.fetch(
        f"{base} AND due_at >= $4 AND due_at < $5 AND due_on BETWEEN $6 AND $7"
        " AND status IN ('scheduled', 'due')"
        " ORDER BY priority = 'high' DESC, due_at, follow_up_id LIMIT $8",
        center_id, value, open_, day.overdue_before, day.due_today_before,
        day.overdue_before.date(), day.today, limit)
    upcoming = await pool.fetch(
        f"{base} AND due_at >= $4 AND due_on BETWEEN $5 AND $6"
        " AND status IN ('scheduled', 'due')"
        " ORDER BY priority = 'high' DESC, due_at, follow_up_id LIMIT $7",
        center_id, value, open_, day.due_today_before, day.due_today_before.date(),
        day.today + timedelta(days=days), limit)
    return WorklistPublic(today=day.today, overdue=[FollowUpPublic.of(r) for r in overdue],
                          due_today=[FollowUpPublic.of(r) for r in due_today],
                          upcoming=[FollowUpPublic.of(r) for r in upcoming])


async def home_visits(pool: asyncpg.Pool, center_id: str, limit: int) -> list[FollowUpPublic]:
    """The center's open home visits, soonest first."""
    rows = await pool.fetch(
        f"SELECT {COLUMNS} FROM followups WHERE center_id = $1 AND reason = 'home_visit'"
        " AND status = ANY($2::text[]) ORDER BY due_at, follow_up_id LIMIT $3",
        center_id, list(OPEN), limit)
    return [FollowUpPublic.of(r) for r in rows]

#: A case whose urgency was never assessed (no concerns step: urgency NULL) is not urgent:
#: ``NULL IN (...)`` is NULL, which the public model's ``urgent: bool`` refused (a 500).
URGENT = "(coalesce(urgency IN ('high', 'critical'), false) OR deadline_close)"


#: An open case's due date that re-planning may still move (intake's ``notice.may_move``):
#: provisional, counted from the item's days (a row kept before ``due_source`` was read is
#: taken as such, as it was shown before), and not past ``$3`` (today).
DUE_MAY_MOVE = ("coalesce(due_basis = 'provisional' AND coalesce(due_source, 'item_days')"
                " = 'item_days' AND due_on >= $3, false)")


async def cases_due(pool: asyncpg.Pool, today: date, soon_until: date, center_id: str,
                    who: str, value: str, limit: int) -> list[CaseDuePublic]:
    """The open cases of ``center_id`` (``who``: the condition on ``$2`` naming whose) past
    their due date, due on or before ``soon_until``, or critical: critical first, then
    urgent, then the earliest due."""
    rows = await pool.fetch(
        "SELECT case_id, center_id, clerk_id, service_item, urgency, due_on, due_basis,"
        f" due_source, {DUE_MAY_MOVE} AS due_may_move,"
        f" owner_clerk, owner_team, {URGENT} AS urgent,"
        " coalesce(due_on < $3, false) AS overdue FROM case_refs"
        f" WHERE center_id = $1 AND {who} AND status = 'open'"
        " AND (due_on <= $4 OR urgency = 'critical')"
        f" ORDER BY urgency = 'critical' DESC, {URGENT} DESC, due_on NULLS LAST, case_id"
        " LIMIT $5", center_id, value, today, soon_until, limit)
    return [CaseDuePublic.of(r) for r in rows]


async def policy_change(pool: asyncpg.Pool, policy_id: UUID, reach: str | None = None
                        ) -> PolicyChangePublic | Elsewhere | None:
    """A policy published for every center (``all_centers``) is in everyone's reach."""
    row = await pool.fetchrow(f"SELECT {POLICY_IN_REACH} FROM policy_changes"
                              " WHERE policy_id = $1", policy_id, reach)
    if row is None:
        return None
    if not row["all_centers"] and (away := elsewhere(row, reach)):
        return away
    return PolicyChangePublic.of(row, state="fanned_out" if row["finished_at"]
                                 else "fanning_out")


async def obligation(pool: asyncpg.Pool, obligation_id: UUID, reach: str | None = None
                     ) -> ObligationPublic | Elsewhere | None:
    row = await pool.fetchrow(f"SELECT {OBLIGATION_IN_REACH} FROM obligations"
                              " WHERE obligation_id = $1", obligation_id, reach)
    if row is None:
        return None
    return elsewhere(row, reach) or ObligationPublic.of(row)


HELP_COLUMNS = ("task_id, center_id, case_id, owner_clerk, owner_team, requested_by, status,"
                " deadline_at, deadline_on, basis, escalated_to, service_item, source_id,"
                " opened_at, updated_at, version, position, deadline_kept")
REFERRAL_COLUMNS = ("referral_id, center_id, case_id, unit_kind, unit_name, unit_contact,"
                    " referred_by, status, reply_due_at, basis, reply, replied_by_recipient,"
                    " replied_at, follow_up_id, sent_at, updated_at, version, position,"
                    " reply_due_kept")
HELP_IN_REACH = in_reach(HELP_COLUMNS, "$2")
REFERRAL_IN_REACH = in_reach(REFERRAL_COLUMNS, "$2")


async def help_task(pool: asyncpg.Pool, task_id: UUID, reach: str | None = None
                    ) -> HelpTaskPublic | Elsewhere | None:
    row = await pool.fetchrow(f"SELECT {HELP_IN_REACH} FROM help_tasks WHERE task_id = $1",
                              task_id, reach)
    if row is None:
        return None
    return elsewhere(row, reach) or HelpTaskPublic.of(row)


async def help_tasks(pool: asyncpg.Pool, center_id: str | None, case_id: UUID | None,
                     limit: int) -> HelpTaskList:
    """The help tasks of a case (of ``center_id`` when given), latest deadline first."""
    rows = await pool.fetch(
        f"SELECT {HELP_COLUMNS} FROM help_tasks WHERE case_id = $1"
        " AND ($2::text IS NULL OR center_id = $2) ORDER BY deadline_at DESC LIMIT $3",
        case_id, center_id, limit)
    return HelpTaskList(items=[HelpTaskPublic.of(r) for r in rows])


HELP_OF_OPEN_CASE = ("(h.escalated_to IS NOT NULL OR NOT EXISTS (SELECT 1 FROM case_refs r"
                     " WHERE r.case_id = h.case_id AND r.status = 'resolved'))")
"""A help task (``h``) whose case is not known resolved, or that is escalated: a task its
resolution did not close because it was escalated or overdue then
(``HelpTask.close_as_not_needed``) stays on the worklists and in the board's overdue count
until its owner or a supervisor finishes it or hands it back; one left open otherwise
(before the rules closed them) is on no worklist and in no figure."""


async def open_help_tasks(pool: asyncpg.Pool, center_id: str, who: str, value: str,
                          limit: int) -> list[HelpTaskPublic]:
    """The help tasks not done on a worklist (``who``: the condition on ``$2``), the escalated
    and the earliest deadline first; none of a case resolved (``HELP_OF_OPEN_CASE``)."""
    rows = await pool.fetch(
        f"SELECT {HELP_COLUMNS} FROM help_tasks h WHERE center_id = $1 AND {who}"
        f" AND status IN ('open', 'accepted', 'in_progress') AND {HELP_OF_OPEN_CASE}"
        " ORDER BY escalated_to IS NULL, deadline_at, task_id LIMIT $3",
        center_id, value, limit)
    return [HelpTaskPublic.of(r) for r in rows]


async def handed_back_help_tasks(pool: asyncpg.Pool, center_id: str, clerk_id: str,
                                 limit: int, since: datetime) -> list[HelpTaskPublic]:
    """The help tasks ``clerk_id`` asked for and their owner handed back (the task goes back
    to the clerk who asked), while the case is still open: the latest handed back first.
    And those its case's resolution closed (``closed``) once the case is reopened, until
    help is asked for it again (a task opened since): nobody is helping with the case any
    more, and only the clerk who asked can ask again if it is still needed.

    Only those handed back or closed ``since`` (``FOLLOWUP_HANDED_BACK_DAYS`` ago): the
    clerk's history of such tasks grows for ever, mostly of cases long resolved, and was
    read whole, each row against its case, on every worklist. ``help_tasks_asker_recent``
    (center, asker, moment, latest first) serves it: the scan starts at the latest and stops
    at ``since``, or sooner at ``limit`` rows of open cases."""
    rows = await pool.fetch(
        f"SELECT {HELP_COLUMNS} FROM help_tasks h WHERE center_id = $1 AND requested_by = $2"
        " AND status IN ('handed_back', 'closed') AND updated_at >= $4"
        " AND (status = 'handed_back'"
        "  OR NOT EXISTS (SELECT 1 FROM help_tasks n WHERE n.case_id = h.case_id"
        "  AND n.opened_at > h.updated_at))"
        " AND EXISTS (SELECT 1 FROM case_refs r WHERE r.case_id = h.case_id"
        " AND r.status = 'open')"
        " ORDER BY updated_at DESC, task_id LIMIT $3", center_id, clerk_id, limit, since)
    return [HelpTaskPublic.of(r) for r in rows]


async def help_and_referral_counts(pool: asyncpg.Pool, center_id: str, now: datetime,
                                   ) -> tuple[OpenOverduePublic, OpenOverduePublic]:
    """The center's help tasks not done and referrals without a reply, open and overdue at
    ``now`` (a deadline passed, whether or not the scheduler has fired it yet)."""
    row = await pool.fetchrow(
        "SELECT count(*) AS open,"
        " count(*) FILTER (WHERE deadline_at < $2) AS overdue FROM help_tasks h"
        " WHERE center_id = $1 AND status IN ('open', 'accepted', 'in_progress')"
        f" AND {HELP_OF_OPEN_CASE}",
        center_id, now)
    ref = await pool.fetchrow(
        "SELECT count(*) AS open, count(*) FILTER (WHERE reply_due_at < $2) AS overdue"
        " FROM referrals WHERE center_id = $1 AND status NOT IN ('replied', 'closed')",
        center_id, now)
    assert row is not None and ref is not None
    return (OpenOverduePublic(open=row["open"], overdue=row["overdue"]),
            OpenOverduePublic(open=ref["open"], overdue=ref["overdue"]))


async def referral(pool: asyncpg.Pool, referral_id: UUID, reach: str | None = None
                   ) -> ReferralPublic | Elsewhere | None:
    row = await pool.fetchrow(f"SELECT {REFERRAL_IN_REACH} FROM referrals"
                              " WHERE referral_id = $1", referral_id, reach)
    if row is None:
        return None
    return elsewhere(row, reach) or ReferralPublic.of(row)


async def referrals(pool: asyncpg.Pool, center_id: str | None, case_id: UUID | None,
                    waiting: bool, limit: int) -> ReferralList:
    """A case's referrals, or (``waiting``) those of the center still without a reply."""
    rows = await pool.fetch(
        f"SELECT {REFERRAL_COLUMNS} FROM referrals WHERE ($1::uuid IS NULL OR case_id = $1)"
        " AND ($2::text IS NULL OR center_id = $2)"
        " AND (NOT $3 OR status NOT IN ('replied', 'closed'))"
        " ORDER BY reply_due_at, referral_id LIMIT $4", case_id, center_id, waiting, limit)
    return ReferralList(items=[ReferralPublic.of(r) for r in rows])

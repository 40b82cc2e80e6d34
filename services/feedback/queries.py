"""Feedback's reads: a survey, a case's feedback, the supervisor's board of rectifications and
one rectification, from the read model (``projections.py``); the figures come from
``figures/``. The routes (``api.py``) check the caller may see what these return."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal
from uuid import UUID

import asyncpg
import orjson
from pydantic import ConfigDict, Field

from services.feedback.figures import Dimension, Period
from shared.readmodels.public import Elsewhere, Moment, Public, elsewhere, in_reach

SURVEY_COLUMNS = (
    "survey_id, case_id, center_id, counter_id, clerk_id, service_item, purpose, channel,"
    " rectification_id, status, requested_at, send_at, expires_at, sent_at, answered_at,"
    " level, comment, aspects::text AS aspects, via, answered_by, recorded_by, closed_at,"
    " withdrawn_reason, verdict, staff_channel, reason_tags::text AS reason_tags, version,"
    " position")
_RECTIFICATION_OWN = (
    "r.rectification_id, r.case_id, r.center_id, r.survey_id, r.rating, r.summary,"
    " r.opened_at, r.deadline_on, r.basis,"
    " CASE WHEN r.status = 'open' AND r.appeal = 'upheld'"
    " THEN 'void' ELSE r.status END AS status, r.completed_at, r.completed_on,"
    " r.outcome,"
    " r.actions, r.on_time, r.revisit_survey_id")
_RECTIFICATION_REST = (
    "r.revisit_attempt, r.resident_id IS NOT NULL AS named,"
    " coalesce(r.track, 'untriaged') AS track, r.triaged_at, r.appeal, r.appealed_by,"
    " r.appeal_reasons, r.appeal_grounds, r.appeal_decided_by, r.appeal_decision_reasons,"
    " r.reason_tags::text AS reason_tags, r.version, r.position")
#: The revisit survey's columns, as the board reads them: from its join to ``surveys v``.
_REVISIT_JOINED = ("v.status AS revisit_status", "v.level AS revisit_level")
#: The same columns read by the survey's primary key, for a read from ``rectifications r``
#: alone (one rectification by id, in reach only).
_REVISIT_BY_KEY = tuple(
    f"(SELECT v.{column} FROM surveys v WHERE v.survey_id = r.revisit_survey_id)"
    f" AS revisit_{column}" for column in ("status", "level"))
RECTIFICATION_COLUMNS = ", ".join((_RECTIFICATION_OWN, *_REVISIT_JOINED, _RECTIFICATION_REST))
#: Open: no outcome yet, and no upheld appeal took the review away.
OPEN = "r.status = 'open' AND r.appeal IS DISTINCT FROM 'upheld'"
#: A named resident's revisit still waiting for an answer: a task until it is done.
REVISITING = ("r.resident_id IS NOT NULL AND r.status = 'completed'"
              " AND v.status IN ('requested', 'sent')")
RECTIFICATION_FROM = ("rectifications r LEFT JOIN surveys v"
                      " ON v.survey_id = r.revisit_survey_id")
SURVEY_IN_REACH = in_reach(SURVEY_COLUMNS, "$2")
"""A survey by id (or a case's): its columns only in the caller's reach (``in_reach``)."""
RECTIFICATION_IN_REACH = in_reach(
    ", ".join((_RECTIFICATION_OWN, *_REVISIT_BY_KEY, _RECTIFICATION_REST)), "$2",
    center="r.center_id")
"""A rectification by id, from ``rectifications r`` alone: its columns only in the caller's
reach, the revisit survey's status and level read (each by its primary key) for a row in
reach only; the board's join to ``surveys`` looked it up for another center's row too. Built
from the same parts as :data:`RECTIFICATION_COLUMNS` (until stop 50 by replacing text in it:
a reworded column there left the join's ``v.`` in a read that has no ``v``, seen only at run
time)."""

RectificationStatus = Literal["open", "overdue", "completed", "appealed", "revisiting", "all"]
Track = Literal["untriaged", "immediate", "limited", "explain"]
TRACKS: tuple[Track, ...] = ("untriaged", "immediate", "limited", "explain")


class SurveyPublic(Public):
    """A survey: where it stands, and the answer if any (who answered, who recorded it)."""

    survey_id: UUID
    case_id: UUID
    center_id: str
    counter_id: str
    clerk_id: str
    service_item: str
    purpose: str
    channel: str
    rectification_id: UUID | None
    status: str
    requested_at: Moment
    send_at: Moment
    expires_at: Moment
    sent_at: Moment | None
    answered_at: Moment | None
    level: str | None
    comment: str | None
    aspects: dict[str, Any]
    via: str | None
    answered_by: str | None
    recorded_by: str | None
    closed_at: Moment | None
    withdrawn_reason: str | None
    verdict: str | None = None
    staff_channel: str | None = None
    reason_tags: list[str] = Field(default_factory=list)
    version: int
    position: int

    @classmethod
    def of_row(cls, row: asyncpg.Record) -> SurveyPublic:
        return cls.of(row, aspects=orjson.loads(row["aspects"]) if row["aspects"] else {},
                      reason_tags=orjson.loads(row["reason_tags"]) if row["reason_tags"]
                      else [])


class RectificationPublic(Public):
    """What was done about a bad review, by its deadline (``overdue`` on the day asked)."""

    rectification_id: UUID
    case_id: UUID
    center_id: str
    survey_id: UUID | None
    rating: str
    summary: str
    opened_at: Moment
    deadline_on: date
    basis: str
    status: str
    completed_at: Moment | None
    completed_on: date | None
    outcome: str | None
    actions: str | None
    on_time: bool | None
    revisit_survey_id: UUID | None
    revisit_status: str | None
    revisit_level: str | None
    reason_tags: list[str] = Field(default_factory=list)
    revisit_attempt: int | None = Field(description=(
        "1 for the first revisit; more when a named resident's revisit went unanswered and "
        "was asked again by phone."))
    named: bool = Field(description="实名: the resident is known (the revisit is a task).")
    track: Track = Field(description="untriaged until a supervisor triages it.")
    triaged_at: Moment | None
    appeal: str | None = Field(description="pending, upheld or rejected; None: no appeal.")
    appealed_by: str | None
    appeal_reasons: str | None
    appeal_grounds: str | None
    appeal_decided_by: str | None
    appeal_decision_reasons: str | None
    version: int
    position: int
    overdue: bool

    @classmethod
    def of_row(cls, row: asyncpg.Record, today: date) -> RectificationPublic:
        return cls.of(row, overdue=False,
                      reason_tags=orjson.loads(row["reason_tags"]) if row["reason_tags"]
                      else []).judged_on(today)

    def judged_on(self, day: date) -> RectificationPublic:
        """``overdue`` on ``day``: still open, its deadline before it."""
        self.overdue = self.status == "open" and self.deadline_on < day
        return self


class CaseFeedbackPublic(Public):
    case_id: str
    surveys: list[SurveyPublic]
    rectifications: list[RectificationPublic]


class RectificationBoard(Public):
    """The supervisor's board on ``as_of``: how many are open and overdue, the open ones by
    triage track, the appeals waiting for a decision, and the list asked for."""

    as_of: date
    open: int
    overdue: int
    by_track: dict[Track, int] = Field(description="Open rectifications per track.")
    appeals_waiting: int
    revisits_waiting: int = Field(description=(
        "Named residents' revisits asked and not yet answered or declined (asked again by "
        "phone until they are)."))
    items: list[RectificationPublic]


class FiguresPublic(Public):
    """The figures asked for: one row per period (``period_start``) and group, each figure a
    count or ``{numerator, denominator, rate}``; ``figures`` says what each one means."""

    model_config = ConfigDict(populate_by_name=True)

    period: Period
    date_from: date | None = Field(alias="from")
    date_to: date | None = Field(alias="to")
    as_of: date
    group_by: list[Dimension]
    filters: dict[str, str]
    time_zone: str
    figures: dict[str, str]
    rows: list[dict[str, Any]]
    live: bool = Field(False, description=(
        "True: every row is counted now. False (the default): a closed month of a center "
        "(period=month, grouped by center only) answers what was reported, the row saying "
        "so (`reported`: revision, closed_by, as_of, closed_at, changed, late_events); a row "
        "without `reported` is counted now."))


async def survey(pool: asyncpg.Pool, survey_id: UUID, reach: str | None = None
                 ) -> SurveyPublic | Elsewhere | None:
    """The survey, or None; another center's than ``reach`` (the caller's; None: every
    center's) as :class:`Elsewhere`, decoded no further than its center. So are the other
    by-id reads here."""
    row = await pool.fetchrow(f"SELECT {SURVEY_IN_REACH} FROM surveys WHERE survey_id = $1",
                              survey_id, reach)
    if row is None:
        return None
    return elsewhere(row, reach) or SurveyPublic.of_row(row)


async def case_feedback(pool: asyncpg.Pool, case_id: UUID, today: date,
                        reach: str | None = None) -> CaseFeedbackPublic | Elsewhere | None:
    """None when the case has no survey yet. Another center's case: its rectifications
    are not read (they were, before its surveys were looked at)."""
    rows = await pool.fetch(f"SELECT {SURVEY_IN_REACH} FROM surveys WHERE case_id = $1"
                            " ORDER BY requested_at, survey_id", case_id, reach)
    if not rows:
        return None
    if away := elsewhere(rows[0], reach):
        return away
    rects = await pool.fetch(f"SELECT {RECTIFICATION_COLUMNS} FROM {RECTIFICATION_FROM}"
                             " WHERE r.case_id = $1 ORDER BY r.opened_at", case_id)
    return CaseFeedbackPublic(case_id=str(case_id),
                              surveys=[SurveyPublic.of_row(r) for r in rows],
                              rectifications=[RectificationPublic.of_row(r, today)
                                              for r in rects])


async def rectification_board(pool: asyncpg.Pool, center_id: str | None,
                              status: RectificationStatus, today: date,
                              limit: int) -> RectificationBoard:
    where: list[str] = []
    args: list[Any] = []

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if center_id:
        where.append(f"r.center_id = {arg(center_id)}")
    if status in ("open", "overdue"):
        where.append(OPEN)
    if status == "overdue":
        where.append(f"r.deadline_on < {arg(today)}")
    elif status == "completed":
        where.append(f"NOT ({OPEN})")
    elif status == "appealed":
        where.append("r.appeal = 'pending'")
    elif status == "revisiting":
        where.append(REVISITING)
    sql = f"SELECT {RECTIFICATION_COLUMNS} FROM {RECTIFICATION_FROM}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += f" ORDER BY r.deadline_on, r.opened_at LIMIT {arg(limit)}"
    rows = await pool.fetch(sql, *args)
    counts = await pool.fetch(
        f"SELECT coalesce(r.track, 'untriaged') AS track, count(*) FILTER (WHERE {OPEN}) AS open,"
        f" count(*) FILTER (WHERE {OPEN} AND r.deadline_on < $1) AS overdue,"
        " count(*) FILTER (WHERE r.appeal = 'pending') AS appeals,"
        f" count(*) FILTER (WHERE {REVISITING}) AS revisits FROM {RECTIFICATION_FROM}"
        " WHERE ($2::text IS NULL OR r.center_id = $2) GROUP BY 1",
        today, center_id)
    by_track: dict[Track, int] = dict.fromkeys(TRACKS, 0)
    for c in counts:
        by_track[c["track"]] = c["open"]
    return RectificationBoard(as_of=today, open=sum(c["open"] for c in counts),
                              overdue=sum(c["overdue"] for c in counts), by_track=by_track,
                              appeals_waiting=sum(c["appeals"] for c in counts),
                              revisits_waiting=sum(c["revisits"] for c in counts),
                              items=[RectificationPublic.of_row(r, today) for r in rows])


async def rectification(pool: asyncpg.Pool, rectification_id: UUID, today: date,
                        reach: str | None = None) -> RectificationPublic | Elsewhere | None:
    row = await pool.fetchrow(f"SELECT {RECTIFICATION_IN_REACH} FROM rectifications r"
                              " WHERE r.rectification_id = $1", rectification_id, reach)
    if row is None:
        return None
    return elsewhere(row, reach) or RectificationPublic.of_row(row, today)

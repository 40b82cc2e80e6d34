"""The center's figures over the fact rows: one definition each, and the query that computes
them for a period, by center, counter, clerk or service item.

``FIGURES`` is the definition of every figure, numerator and denominator, as SQL over the rows
of ``projection.py``; docs/figures.md gives the same definitions as queries over the raw events.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

import asyncpg

from services.feedback.figures import totals
from services.feedback.figures.projection import (
    CASES,
    FOLLOWUPS,
    RECTIFICATIONS,
    SURVEYS,
    VISITS,
    Table,
)
from shared.contracts.feedback import REVISIT_REACHED

UPSET = ("upset", "angry", "distressed")
"""The arrivals counted in the emotion-defused rate by default (``EMOTION_DEFUSING_ARRIVALS``;
``anxious`` may be added)."""
SATISFIED = ("very_satisfied", "satisfied", "basically_satisfied")
BAD = ("dissatisfied", "very_dissatisfied")

Period = Literal["day", "week", "month", "year", "all"]
Dimension = Literal["center_id", "counter_id", "clerk_id", "owner_clerk", "service_item"]
#: ``clerk_id`` is the first responder (首问: who opened the case), ``owner_clerk`` who has
#: it now (the clerk or team it was last handed to; the first clerk when never handed over):
#: a clerk's figures in either role.
DIMENSIONS: tuple[Dimension, ...] = ("center_id", "counter_id", "clerk_id", "owner_clerk",
                                     "service_item")


def _in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


#: An answer whose bad review was appealed and the appeal upheld (malicious or mistaken): it
#: leaves bad_reviews and the satisfaction figures, counted in appeals_upheld instead.
KEPT = ("NOT EXISTS (SELECT 1 FROM fig_rectifications x WHERE x.survey_id = f.survey_id"
        " AND x.appeal = 'upheld')")
NOT_UPHELD = "f.appeal IS DISTINCT FROM 'upheld'"
#: KEPT as a join, so that one scan can count it for several figures: the surveys an upheld
#: appeal took out, once each (a correlated NOT EXISTS under FILTER would run per row).
UPHELD = (" LEFT JOIN (SELECT DISTINCT survey_id FROM fig_rectifications"
          " WHERE appeal = 'upheld') upheld ON upheld.survey_id = f.survey_id")
KEPT_JOINED = "upheld.survey_id IS NULL"
#: Only the surveys an upheld appeal took out.
STRUCK_JOINED = UPHELD.replace(" LEFT JOIN", " JOIN")
#: A rectification's resident was reached by a revisit (any attempt): they answered it, or
#: said they would rather not rate (``REVISIT_REACHED``, the analysts' rule too).
REVISITED = ("EXISTS (SELECT 1 FROM fig_surveys s WHERE s.rectification_id = f.rectification_id"
             f" AND s.purpose = 'revisit' AND s.result IN {_in(REVISIT_REACHED)})")


@dataclass(frozen=True)
class Figure:
    """``denominator`` rows of ``table`` whose ``anchor`` day is in the period; ``numerator``
    those of them that also meet ``numerator``. A count has no numerator."""

    name: str
    table: Table
    anchor: str
    denominator: str
    numerator: str | None = None
    meaning: str = ""
    summed: bool = False  # the numerator is sum(numerator) over the rows, not a count


# -- issue 18: visits as 人次 (trips), cases apart; the emotion on leaving -------------------
VISIT_FIGURES: tuple[Figure, ...] = (
    Figure("visits", VISITS, "day", "TRUE",
           meaning="trips to the center, 人次 (VisitRecorded), however many affairs each"),
    Figure("cases", CASES, "opened_on", "TRUE",
           meaning="cases opened (CaseOpened): affairs, not trips"),
    Figure("trips_per_resolved_case", CASES, "resolved_on", "f.resolved",
           "1 + f.return_trips", summed=True,
           meaning="trips per resolved case: the opening trip and every trip naming the case "
                   "on a later day, over cases whose last word is CaseResolved"),
    Figure("first_trip_rate", CASES, "resolved_on", "f.resolved", "f.return_trips = 0",
           meaning="一次办成率: resolved cases the resident came for once (no trip naming the "
                   "case after its opening day)"),
    Figure("emotion_defused_rate", CASES, "resolved_on",
           "f.resolved AND f.emotion = ANY($arrivals)",
           "CASE WHEN f.leaving IS NOT NULL THEN NOT f.leaving = ANY($arrivals)"
           " ELSE f.defused END",
           meaning="resolved cases that arrived in an emotion to defuse (upset/angry/"
                   "distressed by default; EMOTION_DEFUSING_ARRIVALS) and left in none of "
                   "them (before CaseResolved v2: the clerk's emotion_defused)"),
)
# -- end issue 18 ---------------------------------------------------------------------------

FIGURES: tuple[Figure, ...] = (
    *VISIT_FIGURES,
    # -- the residents' verdicts (issue 18): was it solved? -----------------------------
    Figure("resolution_rate", CASES, "verdict_on", "f.verdict IS NOT NULL",
           "f.verdict = 'solved'",
           meaning="cases whose resident said 'solved' over cases whose resident answered "
                   "'was your matter solved?' (survey or post-resolution check; the latest "
                   "answer of each case, on its day)"),
    Figure("declared_resolution_rate", CASES, "resolved_on", "f.resolved",
           "f.outcome = 'resolved'",
           meaning="cases resolved as 'resolved' over cases whose last word is CaseResolved "
                   "(the clerk's own word)"),
    Figure("on_time_rate", CASES, "resolved_on", "f.resolved AND f.due_on IS NOT NULL",
           "coalesce(f.judged_on, f.resolved_on) <= f.due_on",
           meaning="按时办结率: cases whose last word is CaseResolved and that have a due date "
                   "(CaseDueDateSet), resolved on or before the latest due date (a backdated "
                   "resolution judged on the day of its judged_at, here and on the spot)"),
    Figure("backdated_resolutions", CASES, "resolved_on",
           "f.resolved AND f.judged_on IS NOT NULL",
           meaning="resolutions posted with an occurred_at more than OCCURRED_AT_GRACE_S "
                   "before intake's clock: judged on time on that clock less the grace "
                   "(CaseResolved.judged_at), counted on the day they give"),
    Figure("on_the_spot_rate", CASES, "resolved_on", "f.resolved",
           "coalesce(f.judged_on, f.resolved_on) = f.opened_on",
           meaning="当场办结率: cases whose last word is CaseResolved, resolved on the day "
                   "they were opened"),
    # issue 18: open cases past their due date, on the due day
    Figure("overdue_open_cases", CASES, "due_on", "NOT f.resolved AND f.due_on < $as_of",
           meaning="cases still open (last word CaseOpened or CaseReopened) whose latest due "
                   "date (CaseDueDateSet) is before as_of, counted on the due day"),
    Figure("satisfaction_rate", SURVEYS, "closed_on",
           f"f.purpose = 'resolution' AND f.result = 'answered' AND f.via = 'token' AND {KEPT}",
           f"f.level IN {_in(SATISFIED)}",
           meaning="satisfied levels over the residents' own answers (link or pad) to "
                   "resolution surveys (less bad reviews taken out by an upheld appeal)"),
    Figure("staff_recorded_satisfaction_rate", SURVEYS, "closed_on",
           f"f.purpose = 'resolution' AND f.result = 'answered' AND f.via = 'clerk' AND {KEPT}",
           f"f.level IN {_in(SATISFIED)}",
           meaning="satisfied levels over answers to resolution surveys recorded by staff "
                   "(phone callback, paper form): apart from the headline"),
    Figure("staff_recorded_answers", SURVEYS, "closed_on",
           "f.result = 'answered' AND f.via = 'clerk'",
           meaning="answers recorded by staff for the resident (any survey)"),
    Figure("response_rate", SURVEYS, "closed_on",
           "f.purpose = 'resolution' AND f.result IN ('answered', 'expired')",
           "f.result = 'answered'",
           meaning="answers over answers + no answers (resolution surveys)"),
    Figure("no_consent", SURVEYS, "closed_on", "f.result = 'no_consent'",
           meaning="surveys not sent: a text or a call the resident has not agreed to "
                   "(SurveyWithdrawn because no_consent); neither an answer nor a no answer"),
    Figure("declined", SURVEYS, "closed_on", "f.result = 'declined'",
           meaning="surveys the resident declined to rate (SurveyDeclined: on the pad or the "
                   "link, or told the clerk who asked by phone); neither an answer nor a no "
                   "answer, never satisfied nor a bad review"),
    Figure("bad_reviews", SURVEYS, "closed_on",
           f"f.result = 'answered' AND f.level IN {_in(BAD)} AND {KEPT}",
           meaning="answers dissatisfied or very dissatisfied (any survey), less those an "
                   "upheld appeal took out"),
    Figure("revisit_satisfaction_rate", SURVEYS, "closed_on",
           f"f.purpose = 'revisit' AND f.result = 'answered' AND {KEPT}",
           f"f.level IN {_in(SATISFIED)}",
           meaning="satisfied levels over answers to revisit surveys"),
    Figure("rectifications_opened", RECTIFICATIONS, "opened_on", "TRUE",
           meaning="rectifications opened (RectificationOpened)"),
    Figure("rectification_on_time_rate", RECTIFICATIONS, "opened_on",
           f"(f.completed_on IS NOT NULL OR f.deadline_on < $as_of) AND {NOT_UPHELD}",
           "f.completed_on IS NOT NULL AND f.completed_on <= f.deadline_on",
           meaning="completed by the deadline in force (the triage track's) over completed or "
                   "past the deadline; an upheld appeal leaves it"),
    Figure("appeals_upheld", RECTIFICATIONS, "opened_on", "f.appeal = 'upheld'",
           meaning="bad reviews taken out by an upheld appeal (malicious or mistaken), on the "
                   "day of the review"),
    Figure("named_revisit_rate", RECTIFICATIONS, "opened_on",
           f"f.named AND {NOT_UPHELD}", REVISITED,
           meaning="实名差评回访率: named bad reviews whose resident a revisit reached (they "
                   "answered it, or declined to rate: the center reached them), over named "
                   "bad reviews (less upheld appeals), on the day of the review; "
                   "target 100 %"),
    Figure("followups_on_time_rate", FOLLOWUPS, "due_on",
           "(f.completed_on IS NOT NULL OR f.missed)",
           "f.completed_on IS NOT NULL AND NOT f.missed"
           " AND f.outcome IS DISTINCT FROM 'unreachable'"
           " AND coalesce(f.judged_on, f.completed_on) <= coalesce(f.due_by, f.due_on)",
           meaning="completed (the resident reached, or a task done) by its due day (the "
                   "working day it was to be done on, FollowUpCompleted.due_by: a Sunday's "
                   "or a Friday 18:00's is Monday's; the date of due_at before due_by) and never "
                   "missed over completed or missed, on the day of its last due_at (a missed "
                   "one on the due day it was first missed on, however moved after); judged "
                   "on the day of its completion "
                   "(FollowUpCompleted.judged_at when backdated), not on whether the "
                   "scheduler saw it missed: one done after its due day while the scheduler "
                   "was down is not on time"),
    Figure("followups_unreachable", FOLLOWUPS, "due_on",
           "f.completed_on IS NOT NULL AND f.outcome = 'unreachable'",
           meaning="follow-ups ended with the resident not reached after every attempt "
                   "(FollowUpCompleted outcome unreachable): the team takes a check or a "
                   "revisit up (resident_unreachable, or a home visit); never done on time"),
    Figure("followups_cancelled_by_assignee", FOLLOWUPS, "due_on",
           "f.cancelled_by_assignee",
           meaning="follow-ups cancelled by the clerk they were assigned to (FollowUpCancelled "
                   "whose actor is the assigned_clerk of its last FollowUpScheduled, "
                   "FollowUpRescheduled or FollowUpReassigned), on the day of their last "
                   "due_at: in no rate, so counted apart"),
    Figure("followups_open_past_due", FOLLOWUPS, "open_by",
           f"{totals.OPEN_FOLLOWUP} AND f.open_by < $as_of",
           meaning="follow-ups still open (never completed, missed or cancelled; or missed, "
                   "then moved to a new due moment: open again) past the "
                   "working day they are to be done on (the day its clerk's own moves kept, "
                   "FollowUpRescheduled.on_time_by, or the day the scheduler misses its due "
                   "moment at, FollowUpDue.overdue_at, the earlier; the day of due_at before "
                   "it fell due), as of the report's day, on that day: one its clerk pushes "
                   "every day, never done, is counted here"),
)
FIGURE_NAMES = tuple(f.name for f in FIGURES)


@dataclass(frozen=True, kw_only=True)
class FigureQuery:
    """What figures to compute. ``as_of`` is the day the open and overdue counts are taken
    on: the center's today for live figures (its zone, never the machine's: from 16:00 UTC
    Shanghai is a day ahead), the closing day for a closed month."""

    as_of: date
    period: Period = "month"
    date_from: date | None = None
    date_to: date | None = None
    group_by: tuple[Dimension, ...] = ("center_id",)
    filters: tuple[tuple[Dimension, str], ...] = ()
    arrivals: tuple[str, ...] = UPSET  # the emotions on arrival the defused rate counts


def _bucket(period: Period, column: str) -> str:
    if period == "all":
        return "NULL::date"
    return f"date_trunc('{period}', {column}::timestamp)::date"


def _sql(figures: tuple[Figure, ...], q: FigureQuery, args: list[Any]) -> str:
    """One scan for ``figures`` of one table and anchor: for each, its denominator
    (``d<i>``) and numerator (``n<i>``) per (period, group), counted over the rows it counts
    (the rows no figure counts are left out)."""
    table, anchor_column = figures[0].table, figures[0].anchor

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    own = set(table.names)  # a visit has its own counter and clerk, not an item
    on_case = [d for d in (*q.group_by, *(k for k, _ in q.filters)) if d not in own]
    join = table is not CASES and bool(on_case)
    source = f"{table.name} f"
    if join:
        source += " LEFT JOIN fig_cases c ON c.case_id = f.case_id"
    if any(KEPT in (f.denominator + (f.numerator or "")) for f in figures):
        source += UPHELD

    def column(d: Dimension) -> str:
        if d in own or table is CASES:
            return f"f.{d}"
        return f"c.{d}"

    anchor = f"f.{anchor_column}"
    counted: list[str] = []
    denominators: list[str] = []
    for i, figure in enumerate(figures):
        denominator = figure.denominator.replace(KEPT, KEPT_JOINED)
        numerator_sql = (figure.numerator or "").replace(KEPT, KEPT_JOINED)
        if "$as_of" in denominator:
            denominator = denominator.replace("$as_of", arg(q.as_of))
        if "$arrivals" in denominator + numerator_sql:
            arrivals = f"{arg(list(q.arrivals))}::text[]"
            denominator = denominator.replace("$arrivals", arrivals)
            numerator_sql = numerator_sql.replace("$arrivals", arrivals)
        denominators.append(f"({denominator})")
        if not figure.numerator:
            numerator = "NULL::bigint"
        elif figure.summed:
            numerator = f"(sum({numerator_sql}) FILTER (WHERE {denominator}))::bigint"
        else:
            numerator = f"count(*) FILTER (WHERE ({denominator}) AND ({numerator_sql}))"
        counted.append(f"count(*) FILTER (WHERE {denominator}) AS d{i}, {numerator} AS n{i}")
    where = [f"({' OR '.join(denominators)})", f"{anchor} IS NOT NULL"]
    if q.date_from:
        where.append(f"{anchor} >= {arg(q.date_from)}")
    if q.date_to:
        where.append(f"{anchor} <= {arg(q.date_to)}")
    for d, value in q.filters:
        where.append(f"{column(d)} = {arg(value)}")
    keys = [f"{_bucket(q.period, anchor)} AS period_start",
            *(f"{column(d)} AS {d}" for d in q.group_by)]
    groups = ", ".join(str(i + 1) for i in range(len(keys)))
    return (f"SELECT {', '.join(keys)}, {', '.join(counted)}"
            f" FROM {source} WHERE {' AND '.join(where)} GROUP BY {groups}")


def _scans() -> list[tuple[Figure, ...]]:
    """FIGURES by (table, anchor): the figures one scan computes."""
    scans: dict[tuple[str, str], list[Figure]] = {}
    for figure in FIGURES:
        scans.setdefault((figure.table.name, figure.anchor), []).append(figure)
    return [tuple(figures) for figures in scans.values()]


SCANS = _scans()


Counted = dict[tuple[Any, ...], dict[str, tuple[int | None, int]]]
"""(period, group...) -> figure -> (numerator, denominator), as the scans count them."""


async def compute(conn: asyncpg.Connection | asyncpg.Pool, q: FigureQuery,
                  scans: list[tuple[Figure, ...]] | None = None) -> list[dict[str, Any]]:
    """Every figure for every (period, group) that has at least one counted row.

    By center (or for all centers together) from the counts per center and day
    (``totals.py``: centers x days rows, whatever the events); by counter, clerk or service
    item over the fact rows, one scan per table and anchor (:data:`SCANS`). ``scans``
    counts over the fact rows those scans instead (a scan per figure gives the same rows)."""
    if scans is None and _by_center(q):
        counted = await _count_by_day(conn, q)
    else:
        counted = await _count_rows(conn, q, scans or SCANS)
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    for key, figures in counted.items():
        for figure in FIGURES:
            if figure.name not in figures or not figures[figure.name][1]:
                continue  # none of the group's rows counts for this figure
            row = merged.get(key)
            if row is None:
                row = merged[key] = {"period_start": _label(key[0], q),
                                     **dict(zip(q.group_by, key[1:], strict=True))}
            row[figure.name] = _value(figure, *figures[figure.name])
    out = []
    for key in sorted(merged, key=lambda k: tuple((v is None, v or "") for v in k)):
        row = merged[key]
        for figure in FIGURES:
            row.setdefault(figure.name, _value(figure, 0, 0))
        out.append(row)
    return out


def _label(start: date | None, q: FigureQuery) -> date | None:
    """A period's row is labelled by its first day within the range asked for: a year from
    1 December is the row of 1 December (its December), not of 1 January, which it does not
    count (only the first period can start before ``from``)."""
    if start is not None and q.date_from is not None and start < q.date_from:
        return q.date_from
    return start


async def _count_rows(conn: asyncpg.Connection | asyncpg.Pool, q: FigureQuery,
                      scans: list[tuple[Figure, ...]]) -> Counted:
    """Each figure counted over its fact rows, one scan per tuple of ``scans``."""
    counted: Counted = {}
    for figures in scans:
        args: list[Any] = []
        for r in await conn.fetch(_sql(figures, q, args), *args):
            key = (r["period_start"], *(r[d] for d in q.group_by))
            mine = counted.setdefault(key, {})
            for i, figure in enumerate(figures):
                mine[figure.name] = (r[f"n{i}"], r[f"d{i}"])
    return counted


def _by_center(q: FigureQuery) -> bool:
    """Whether the counts per center and day answer ``q``: grouped by center or not at all,
    for one center or all, the defused rate's arrivals among the emotions kept."""
    return (set(q.group_by) <= {"center_id"} and all(d == "center_id" for d, _ in q.filters)
            and set(q.arrivals) <= set(totals.EMOTIONS))


#: figure -> (numerator, denominator) in the counts per center and day; the numerator None
#: for a count. The rectifications' figures, the defused rate and the trips are apart.
FROM_TOTALS: dict[str, tuple[str | None, str]] = {
    "visits": (None, "visits"), "cases": (None, "cases"),
    "first_trip_rate": ("first_trip", "resolved"),
    "resolution_rate": ("said_solved", "verdicts"),
    "declared_resolution_rate": ("resolved_as_resolved", "resolved"),
    "on_time_rate": ("resolved_on_time", "resolved_with_due"),
    "on_the_spot_rate": ("resolved_on_the_spot", "resolved"),
    "backdated_resolutions": (None, "backdated_resolutions"),
    "overdue_open_cases": (None, "open_due"),
    "satisfaction_rate": ("satisfied_own_answers", "own_answers"),
    "staff_recorded_satisfaction_rate": ("satisfied_staff_answers", "staff_answers"),
    "staff_recorded_answers": (None, "staff_recorded_answers"),
    "response_rate": ("survey_answers", "answers_or_expiries"),
    "no_consent": (None, "no_consent"),
    "declined": (None, "declined"),
    "bad_reviews": (None, "bad_reviews"),
    "revisit_satisfaction_rate": ("satisfied_revisits", "revisit_answers"),
    "followups_on_time_rate": ("followups_on_time", "followups_closed"),
    "followups_unreachable": (None, "followups_unreachable"),
    "followups_cancelled_by_assignee": (None, "followups_cancelled_by_assignee"),
    "followups_open_past_due": (None, "followups_open"),
}
#: The survey counts an upheld appeal takes a bad review out of (KEPT).
STRUCK = ("own_answers", "satisfied_own_answers", "staff_answers", "satisfied_staff_answers",
          "bad_reviews", "revisit_answers", "satisfied_revisits")


async def _count_by_day(conn: asyncpg.Connection | asyncpg.Pool, q: FigureQuery) -> Counted:
    """The figures from the counts per center and day, less the surveys an upheld appeal
    struck out; the rectifications' figures over their own (few) rows."""
    group = ", center_id" if q.group_by else ""
    counts = ", ".join(f"sum({c})::bigint AS {c}" for c in totals.COLUMNS
                       if c not in totals.AS_OF_COUNTS)
    past = ", ".join(f"(sum({c}) FILTER (WHERE day < $1))::bigint AS {c}"
                     for c in totals.AS_OF_COUNTS)
    as_of: list[Any] = [q.as_of]
    where = _days("", "day", q, as_of)
    sql = (f"SELECT {_bucket(q.period, 'day')} AS period_start{group}, {counts}, {past}"
           f" FROM {totals.TABLE} WHERE {where} GROUP BY {'1, 2' if group else '1'}")
    sums: dict[tuple[Any, ...], dict[str, int]] = {}
    for r in await conn.fetch(sql, *as_of):
        sums[(r["period_start"], *(r[d] for d in q.group_by))] = dict(r)
    struck_args: list[Any] = []
    cells = ", ".join(f"count(*) FILTER (WHERE {totals.CONDITION[c]}) AS {c}" for c in STRUCK)
    struck = (f"SELECT {_bucket(q.period, 'f.closed_on')} AS period_start"
              f"{', f.center_id' if group else ''}, {cells} FROM fig_surveys f{STRUCK_JOINED}"
              f" WHERE f.closed_on IS NOT NULL AND {_days('f.', 'closed_on', q, struck_args)}"
              f" GROUP BY {'1, 2' if group else '1'}")
    for r in await conn.fetch(struck, *struck_args):
        mine = sums.setdefault((r["period_start"], *(r[d] for d in q.group_by)),
                               dict.fromkeys(totals.COLUMNS, 0))
        for c in STRUCK:
            mine[c] -= r[c]
    arrivals = set(q.arrivals)
    counted: Counted = {}
    for key, s in sums.items():
        mine = counted[key] = {}
        for name, (numerator, denominator) in FROM_TOTALS.items():
            mine[name] = (s[numerator] if numerator else None, s[denominator])
        mine["trips_per_resolved_case"] = (s["trips"] if s["trips_known"] else None,
                                           s["resolved"])
        mine["emotion_defused_rate"] = (
            sum(s[totals.left(e, x)] for e in arrivals for x in totals.EMOTIONS
                if x not in arrivals) + sum(s[totals.defused(e)] for e in arrivals),
            sum(s[totals.arrived(e)] for e in arrivals))
    rectifications = [f for f in FIGURES if f.table is RECTIFICATIONS]
    for key, figures in (await _count_rows(conn, q, [tuple(rectifications)])).items():
        counted.setdefault(key, {}).update(figures)
    return counted


def _days(alias: str, column: str, q: FigureQuery, args: list[Any]) -> str:
    """The period's days of ``column`` and the query's center, as SQL (``args`` filled)."""
    where = ["TRUE"]
    for bound, op in ((q.date_from, ">="), (q.date_to, "<=")):
        if bound:
            args.append(bound)
            where.append(f"{alias}{column} {op} ${len(args)}")
    for _, value in q.filters:  # center_id (``_by_center``)
        args.append(value)
        where.append(f"{alias}center_id = ${len(args)}")
    return " AND ".join(where)


def _value(figure: Figure, numerator: int | None, denominator: int) -> Any:
    if figure.numerator is None:
        return denominator
    return {"numerator": numerator or 0, "denominator": denominator,
            "rate": round(numerator / denominator, 6) if denominator and numerator is not None
            else None}


async def center_seen_on(pool: asyncpg.Pool, center_id: str) -> date | None:
    """The latest day a survey of ``center_id`` closed on (answered, expired, declined,
    withdrawn), as the figures have read it so far: a day feedback's clock had reached when
    it recorded that survey's close (an ``occurred_at`` is never recorded ahead of it,
    ``Moments.recorded``), the center's high-water mark that a bad review's appeal window, a
    triage's missed deadline and an outcome's grace are judged on when the clock says an
    earlier day (``services.feedback.domain.judged_day``). None: nothing
    closed there yet. One look along ``fig_surveys_closed``."""
    day: date | None = await pool.fetchval(
        "SELECT max(closed_on) FROM fig_surveys WHERE center_id = $1", center_id)
    return day

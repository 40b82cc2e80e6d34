"""The center's figures per day, kept as the fact rows change: one row per (center, day).

A month of the whole city counted over the fact rows is a scan of every case, survey and
follow-up of the month (1.45 M cases at 20 M events: seconds). ``fig_day_totals`` keeps, per
center and day, every count those figures are made of, so that the figures of every center
for any period read centers x days rows (``queries.compute``). A count is kept on the day
its figure anchors it (a resolution on the day resolved, an answer on the day closed, ...).

Each fact row *contributes* to some counts of some days (:func:`contributions`: the
``FIGURES`` definitions of ``queries.py``, restated over one row). The projection, live and
rebuild alike, counts what the rows of a batch contributed before it and after it, and adds
the difference (:class:`Counted`, :func:`write`): an answer, an appeal or a reopening that
changes a row dated earlier moves that row's counts off its old day. :data:`COLUMNS_SQL`
states the same contributions in SQL, over the fact tables: it fills the table once where the
fact rows were there before it (:data:`DDL`), and the tests check both against the scans.

Not kept here, and still counted over their rows: what depends on other rows than its own.
The rectifications' figures (their rows are few: one per bad review) and the upheld appeals
that take a bad review out of the survey figures (``queries.compute`` subtracts the struck
surveys' counts, found from the upheld rectifications); and any grouping other than by
center (counter, clerk, service item), which ``compute`` counts over the fact rows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date
from typing import Any

import asyncpg

from shared.contracts.vocabulary import Emotion
from shared.readmodels import bulk

TABLE = "fig_day_totals"
FILLED = "fig_day_totals_filled"
RECOUNTED = "fig_day_totals_late_followups_recounted"

SATISFIED = ("very_satisfied", "satisfied", "basically_satisfied")
BAD = ("dissatisfied", "very_dissatisfied")
EMOTIONS = tuple(e.value for e in Emotion)


def arrived(emotion: str) -> str:
    """Resolved cases that arrived in ``emotion`` (the defused rate's denominator, by the
    emotions it counts)."""
    return f"arrived_{emotion}"


def left(emotion: str, leaving: str) -> str:
    """Of those, the ones that left in ``leaving`` (CaseResolved v2)."""
    return f"left_{emotion}_{leaving}"


def defused(emotion: str) -> str:
    """Of those, the ones resolved before the emotion on leaving was recorded, with the
    clerk's ``emotion_defused``."""
    return f"defused_{emotion}"


#: A follow-up neither completed, missed nor cancelled, or missed and since moved to a new
#: due moment, open again (SQL: a null flag meets no condition).
OPEN_FOLLOWUP = ("f.completed_on IS NULL AND (f.missed = false OR f.reopened = true)"
                 " AND f.cancelled = false")
#: The counts kept on a day that are counted only when that day is before as_of.
AS_OF_COUNTS = ("open_due", "followups_open")

#: (fact table, the day its counts are kept on, {count: which of its rows, in SQL}); the
#: same as :func:`contributions`, which the projection runs.
COLUMNS_SQL: tuple[tuple[str, str, dict[str, str]], ...] = (
    ("fig_visits", "day", {"visits": "TRUE"}),
    ("fig_cases", "opened_on", {"cases": "TRUE"}),
    ("fig_cases", "resolved_on", {
        "resolved": "f.resolved",
        "resolved_as_resolved": "f.resolved AND f.outcome = 'resolved'",
        "trips": "sum(1 + f.return_trips) FILTER (WHERE f.resolved)",
        "trips_known": "f.resolved AND f.return_trips IS NOT NULL",
        "first_trip": "f.resolved AND f.return_trips = 0",
        "resolved_with_due": "f.resolved AND f.due_on IS NOT NULL",
        "resolved_on_time": "f.resolved AND f.due_on IS NOT NULL"
                            " AND coalesce(f.judged_on, f.resolved_on) <= f.due_on",
        "backdated_resolutions": "f.resolved AND f.judged_on IS NOT NULL",
        "resolved_on_the_spot": "f.resolved"
                                " AND coalesce(f.judged_on, f.resolved_on) = f.opened_on",
        **{arrived(e): f"f.resolved AND f.emotion = '{e}'" for e in EMOTIONS},
        **{left(e, x): f"f.resolved AND f.emotion = '{e}' AND f.leaving = '{x}'"
           for e in EMOTIONS for x in EMOTIONS},
        **{defused(e): f"f.resolved AND f.emotion = '{e}' AND f.leaving IS NULL"
                       " AND f.defused" for e in EMOTIONS}}),
    ("fig_cases", "due_on", {"open_due": "NOT f.resolved"}),
    ("fig_cases", "verdict_on", {"verdicts": "f.verdict IS NOT NULL",
                                 "said_solved": "f.verdict = 'solved'"}),
    ("fig_surveys", "closed_on", {
        "own_answers": "f.purpose = 'resolution' AND f.result = 'answered'"
                       " AND f.via = 'token'",
        "satisfied_own_answers": "f.purpose = 'resolution' AND f.result = 'answered'"
                                 f" AND f.via = 'token' AND f.level IN {SATISFIED!r}",
        "staff_answers": "f.purpose = 'resolution' AND f.result = 'answered'"
                         " AND f.via = 'clerk'",
        "satisfied_staff_answers": "f.purpose = 'resolution' AND f.result = 'answered'"
                                   f" AND f.via = 'clerk' AND f.level IN {SATISFIED!r}",
        "staff_recorded_answers": "f.result = 'answered' AND f.via = 'clerk'",
        "answers_or_expiries": "f.purpose = 'resolution'"
                               " AND f.result IN ('answered', 'expired')",
        "survey_answers": "f.purpose = 'resolution' AND f.result = 'answered'",
        "no_consent": "f.result = 'no_consent'",
        "declined": "f.result = 'declined'",
        "bad_reviews": f"f.result = 'answered' AND f.level IN {BAD!r}",
        "revisit_answers": "f.purpose = 'revisit' AND f.result = 'answered'",
        "satisfied_revisits": "f.purpose = 'revisit' AND f.result = 'answered'"
                              f" AND f.level IN {SATISFIED!r}"}),
    ("fig_followups", "due_on", {
        "followups_closed": "f.completed_on IS NOT NULL OR f.missed",
        "followups_on_time": "f.completed_on IS NOT NULL AND NOT f.missed"
                             " AND coalesce(f.judged_on, f.completed_on)"
                             " <= coalesce(f.due_by, f.due_on)"
                             " AND f.outcome IS DISTINCT FROM 'unreachable'",
        "followups_cancelled_by_assignee": "f.cancelled_by_assignee",
        "followups_unreachable": "f.completed_on IS NOT NULL"
                                 " AND f.outcome = 'unreachable'"}),
    # Open (never completed, missed or cancelled; or missed, then moved: open again) on the
    # day it is overdue after: summed over
    # the days before as_of when counted (followups_open_past_due), as open_due is.
    ("fig_followups", "open_by", {"followups_open": OPEN_FOLLOWUP}),
)
COLUMNS: tuple[str, ...] = tuple(c for _, _, counts in COLUMNS_SQL for c in counts)
#: count -> which rows of its table it counts, in SQL (``f`` the fact row).
CONDITION: dict[str, str] = {c: e for _, _, counts in COLUMNS_SQL for c, e in counts.items()}
INDEX = {c: i for i, c in enumerate(COLUMNS)}

Key = tuple[str, date]  # (center, day)


class Counted:
    """Counts by (center, day), added up from rows' contributions (``sign`` -1: a row as it
    was before the batch, +1: as it is after)."""

    def __init__(self) -> None:
        self.counts: dict[Key, list[int]] = defaultdict(lambda: [0] * len(COLUMNS))

    def add(self, table: str, row: dict[str, Any], sign: int) -> None:
        for center, day, column, n in contributions(table, row):
            self.counts[(center, day)][INDEX[column]] += sign * n

    def changed(self) -> list[tuple[Key, list[int]]]:
        """The (center, day) whose counts moved, in key order (so that two replicas writing
        the same days lock them in the same order)."""
        return sorted((k, v) for k, v in self.counts.items() if any(v))


def contributions(table: str, row: dict[str, Any]) -> Iterable[tuple[str, date, str, int]]:
    """(center, day, count, how much) for one fact row, as :data:`COLUMNS_SQL` counts it
    (SQL's NULLs kept: an unknown value meets no condition)."""
    center = row["center_id"]
    if table == "fig_visits":
        if row["day"] is not None:
            yield center, row["day"], "visits", 1
    elif table == "fig_cases":
        yield from _case(center, row)
    elif table == "fig_surveys":
        yield from _survey(center, row)
    elif table == "fig_followups":
        on = row["due_on"]
        if on is not None:
            done, missed = row["completed_on"] is not None, row["missed"]
            if done or missed is True:
                yield center, on, "followups_closed", 1
            unreachable = done and row["outcome"] == "unreachable"
            if done and missed is False and not unreachable and (
                    row["judged_on"] or row["completed_on"]) <= (row["due_by"] or on):
                yield center, on, "followups_on_time", 1
            if unreachable:
                yield center, on, "followups_unreachable", 1
            if row["cancelled_by_assignee"] is True:
                yield center, on, "followups_cancelled_by_assignee", 1
        open_by = row["open_by"]
        if (open_by is not None and row["completed_on"] is None
                and (row["missed"] is False or row.get("reopened") is True)
                and row["cancelled"] is False):
            yield center, open_by, "followups_open", 1


def _case(center: str, row: dict[str, Any]) -> Iterable[tuple[str, date, str, int]]:
    opened, on, resolved = row["opened_on"], row["resolved_on"], row["resolved"]
    if opened is not None:
        yield center, opened, "cases", 1
    if on is not None and resolved is True:
        yield center, on, "resolved", 1
        if row["outcome"] == "resolved":
            yield center, on, "resolved_as_resolved", 1
        trips = row["return_trips"]
        if trips is not None:
            yield center, on, "trips", 1 + trips
            yield center, on, "trips_known", 1
            if trips == 0:
                yield center, on, "first_trip", 1
        due, judged = row["due_on"], row["judged_on"]
        if due is not None:
            yield center, on, "resolved_with_due", 1
            if (judged or on) <= due:
                yield center, on, "resolved_on_time", 1
        if judged is not None:
            yield center, on, "backdated_resolutions", 1
        if opened is not None and (judged or on) == opened:
            yield center, on, "resolved_on_the_spot", 1
        emotion = row["emotion"]
        if emotion in EMOTIONS:
            yield center, on, arrived(emotion), 1
            leaving = row["leaving"]
            if leaving in EMOTIONS:
                yield center, on, left(emotion, leaving), 1
            elif leaving is None and row["defused"] is True:
                yield center, on, defused(emotion), 1
    if row["due_on"] is not None and resolved is False:
        yield center, row["due_on"], "open_due", 1
    if row["verdict_on"] is not None and row["verdict"] is not None:
        yield center, row["verdict_on"], "verdicts", 1
        if row["verdict"] == "solved":
            yield center, row["verdict_on"], "said_solved", 1


def _survey(center: str, row: dict[str, Any]) -> Iterable[tuple[str, date, str, int]]:
    on = row["closed_on"]
    if on is None:
        return
    purpose, result, via, level = row["purpose"], row["result"], row["via"], row["level"]
    answered = result == "answered"
    if purpose == "resolution" and answered:
        yield center, on, "survey_answers", 1
        if via in ("token", "clerk"):
            own = via == "token"
            yield center, on, "own_answers" if own else "staff_answers", 1
            if level in SATISFIED:
                yield (center, on, "satisfied_own_answers" if own
                       else "satisfied_staff_answers", 1)
    if answered and via == "clerk":
        yield center, on, "staff_recorded_answers", 1
    if purpose == "resolution" and result in ("answered", "expired"):
        yield center, on, "answers_or_expiries", 1
    if result == "no_consent":
        yield center, on, "no_consent", 1
    if result == "declined":
        yield center, on, "declined", 1
    if answered and level in BAD:
        yield center, on, "bad_reviews", 1
    if purpose == "revisit" and answered:
        yield center, on, "revisit_answers", 1
        if level in SATISFIED:
            yield center, on, "satisfied_revisits", 1


#: The type a batch's counts go as, one array of it (center, day, every count): as one array
#: a count, asyncpg asked each of a day's ~70 values whether it is itself an array (a Python
#: ``isinstance`` each); a composite is asked 4 times (``bulk.RowType``).
ROW = bulk.RowType("fig_day_counts", (("center_id", "text"), ("day", "date"),
                                      *((c, "bigint") for c in COLUMNS)))


def _upsert() -> str:
    names = ", ".join(COLUMNS)
    sets = ", ".join(f"{c} = {TABLE}.{c} + EXCLUDED.{c}" for c in COLUMNS)
    return (f"INSERT INTO {TABLE} (center_id, day, {names})"
            f" SELECT {', '.join(f's.{c}' for c in ROW.columns)}"
            f" FROM unnest($1::{ROW.name}[]) AS s ORDER BY 2, 1"
            f" ON CONFLICT (day, center_id) DO UPDATE SET {sets}")


UPSERT = _upsert()


#: The days a batch took counts off that have none left: a row is there only while it counts
#: something, so that the table is the same whatever the batches were (a live batch of one
#: event leaves a day a row moved off at zero; a rebuild's larger batch nets it out and
#: writes nothing, and ``sixstep rebuild --dry-run`` said "differences found").
EMPTIED = (f"DELETE FROM {TABLE} t USING unnest($1::text[], $2::date[]) AS k(center_id, day)"
           " WHERE t.center_id = k.center_id AND t.day = k.day AND "
           + " AND ".join(f"t.{c} = 0" for c in COLUMNS))


async def write(conn: asyncpg.Connection, counted: Counted) -> None:
    """Add what the batch moved (one statement; nothing when no count moved), and drop the
    days it left with no count (a second statement, only when it took any count off)."""
    changed = counted.changed()
    if not changed:
        return
    await bulk.send_rows(conn, UPSERT, [(*k, *v) for k, v in changed])
    lowered = [k for k, v in changed if any(n < 0 for n in v)]
    if lowered:
        await conn.execute(EMPTIED, [k[0] for k in lowered], [k[1] for k in lowered])


def _cell(expression: str) -> str:
    return expression if expression.startswith("sum(") else \
        f"count(*) FILTER (WHERE {expression})"


def counted_sql() -> str:
    """The counts per (center, day) over the fact tables, as :data:`COLUMNS_SQL` defines them:
    what the table holds when the projection kept it right."""
    parts = []
    for table, anchor, counts in COLUMNS_SQL:
        cells = ", ".join(_cell(counts[c]) if c in counts else "0" for c in COLUMNS)
        parts.append(f"SELECT f.center_id, f.{anchor} AS day, {cells} FROM {table} f"
                     f" WHERE f.{anchor} IS NOT NULL GROUP BY 1, 2")
    names = ", ".join(COLUMNS)
    sums = ", ".join(f"sum({c})::bigint AS {c}" for c in COLUMNS)
    counting = " OR ".join(f"sum({c}) <> 0" for c in COLUMNS)  # a day with no count: no row
    return (f"SELECT center_id, day, {sums} FROM ({' UNION ALL '.join(parts)})"
            f" AS t(center_id, day, {names}) GROUP BY 1, 2 HAVING {counting}")


DDL = [
    ROW.ddl,
    f"CREATE TABLE IF NOT EXISTS {TABLE} (center_id text NOT NULL, day date NOT NULL, "
    + ", ".join(f"{c} bigint NOT NULL DEFAULT 0" for c in COLUMNS)
    + ", PRIMARY KEY (day, center_id))",
    # Counts added since the table was first made (the fill below names every column; a
    # rebuild fills them for the days already kept).
    *(f"ALTER TABLE {TABLE} ADD COLUMN IF NOT EXISTS {c} bigint NOT NULL DEFAULT 0"
      for c in ("followups_unreachable", "declined", "backdated_resolutions",
                "followups_cancelled_by_assignee", "followups_open")),
    # Follow-ups done after their due day while the scheduler was down (never missed) were
    # counted on time until the rule judged the completion's day: counted again, once.
    f"CREATE TABLE IF NOT EXISTS {RECOUNTED} (recounted boolean PRIMARY KEY)",
    f"WITH first AS (INSERT INTO {RECOUNTED} VALUES (true) ON CONFLICT DO NOTHING RETURNING 1)"
    f" UPDATE {TABLE} t SET followups_on_time = c.n FROM (SELECT f.center_id, f.due_on,"
    f" count(*) FILTER (WHERE {CONDITION['followups_on_time']}) AS n FROM fig_followups f"
    " WHERE f.due_on IS NOT NULL GROUP BY 1, 2) c WHERE c.center_id = t.center_id"
    " AND c.due_on = t.day AND c.n <> t.followups_on_time AND EXISTS (SELECT 1 FROM first)",
    # Where the fact rows were kept before this table was: filled from them, once.
    f"CREATE TABLE IF NOT EXISTS {FILLED} (filled boolean PRIMARY KEY)",
    f"WITH first AS (INSERT INTO {FILLED} VALUES (true) ON CONFLICT DO NOTHING RETURNING 1)"
    f" INSERT INTO {TABLE} (center_id, day, {', '.join(COLUMNS)})"
    f" SELECT * FROM ({counted_sql()}) c WHERE EXISTS (SELECT 1 FROM first)",
]

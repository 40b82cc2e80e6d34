"""How the figures projection sends a batch's rows: one array of a composite type a
statement (``Table.row``, ``totals.ROW``), live and rebuilt, and the rows it leaves.

As one array a column, asyncpg asked each value of each row (19 a case, 68 a day's counts)
whether it was itself an array, a Python call each: the figures' CPU an event. The rows must
be the same whatever way they travel, also on the calendar's edges: the weekend desk of
Sunday 20 December 2026, a case opened at 23:30 on New Year's Eve in Shanghai (15:30 UTC: the
center's day is still the 31st) and resolved in 2027, a due date after 2027's Spring Festival
(a provisional year), and a case opened on 29 February 2028 with a return trip the next day.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any
from uuid import UUID

import asyncpg

from services.feedback.figures import FiguresProjection, totals
from services.feedback.figures.projection import FACTS, TABLES
from shared.contracts import Envelope
from shared.settings import Settings
from tests.feedback.helpers import History, figures_schema, fold_figures
from tests.feedback.totals_check import assert_totals_are_the_scans, kept_totals
from tests.readmodel_tables import ParamsSent

CENTER = "SH-PD-HUAMU"
CLERK = "clerk-017"
ITEM = "SA-HARDSHIP-SUBSIDY"


def _id(name: str) -> UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"figures-rows-sent-{name}")


def calendar_edges() -> tuple[list[Envelope], dict[str, UUID]]:
    h = History(CENTER)
    ids = {n: _id(n) for n in ("weekend", "eve", "leap", "survey", "check", "trip")}

    def opened(name: str, at: str) -> UUID:
        case_id = ids[name]
        h.add("intake", "CaseOpened", at, {
            "center_id": CENTER, "counter_id": "window-3", "clerk_id": CLERK,
            "channel": "counter", "service_item": ITEM, "resident_id": None},
            case_id=case_id, actor=CLERK)
        return case_id

    # Sunday 20 December 2026, the weekend desk: anxious, resolved at the window; the
    # resident's own answer on the pad, and a check planned after 2027's Spring Festival.
    weekend = opened("weekend", "2026-12-20T09:00:00+08:00")
    h.step(weekend, "ConcernsNoted", "2026-12-20T09:04:00+08:00", emotion="anxious",
           urgency="high", needs_defusing=True)
    h.resolved(weekend, "2026-12-20T09:20:00+08:00")
    h.add("feedback", "SurveyRequested", "2026-12-20T09:21:00+08:00", {
        "survey_id": str(ids["survey"]), "purpose": "resolution", "channel": "tablet",
        "resident_id": None, "counter_id": "window-3", "clerk_id": CLERK,
        "service_item": ITEM, "send_at": "2026-12-20T09:21:00+08:00",
        "expires_at": "2027-01-20T00:00:00+08:00"}, case_id=weekend,
        aggregate_id=ids["survey"])
    h.add("feedback", "RatingGiven", "2026-12-20T09:25:00+08:00", {
        "survey_id": str(ids["survey"]), "purpose": "resolution", "level": "satisfied",
        "via": "token", "verdict": "solved"}, case_id=weekend, aggregate_id=ids["survey"],
        actor="resident")
    h.add("followup", "FollowUpScheduled", "2026-12-20T09:30:00+08:00", {
        "reason": "post_resolution_check", "resident_id": None,
        "due_at": "2027-02-18T09:00:00+08:00", "assigned_clerk": CLERK,
        "assigned_team": None, "source": "test"}, case_id=weekend, aggregate_id=ids["check"])
    # New Year's Eve, 23:30 in Shanghai: the 31st's case, resolved on 4 January 2027.
    eve = opened("eve", "2026-12-31T23:30:00+08:00")
    h.step(eve, "ConcernsNoted", "2026-12-31T23:35:00+08:00", emotion="upset",
           urgency="normal", needs_defusing=True)
    h.step(eve, "CaseDueDateSet", "2026-12-31T23:40:00+08:00", due_on="2027-01-04",
           source="promised", cause="promised")
    h.resolved(eve, "2027-01-04T10:00:00+08:00")
    h.add("followup", "FollowUpCompleted", "2027-02-18T10:00:00+08:00", {
        "outcome": "done", "channel": "phone", "verdict": "solved"},
        case_id=weekend, aggregate_id=ids["check"])
    # 29 February 2028 (a year no schedule covers yet), back the next day: a return trip.
    leap = opened("leap", "2028-02-29T10:00:00+08:00")
    h.step(leap, "CaseDueDateSet", "2028-02-29T10:05:00+08:00", due_on="2028-03-02",
           source="promised", cause="promised")
    h.add("intake", "VisitRecorded", "2028-03-01T09:00:00+08:00", {
        "visit_id": str(ids["trip"]), "center_id": CENTER, "counter_id": "window-3",
        "clerk_id": CLERK, "channel": "counter", "case_id": str(leap), "ticket": "A017",
        "wait_minutes": 5}, case_id=leap, aggregate_id=ids["trip"], actor=CLERK)
    h.resolved(leap, "2028-03-01T09:30:00+08:00")
    return h.envelopes, ids


async def _dump(pool: asyncpg.Pool) -> dict[str, list[tuple[Any, ...]]]:
    tables = {t.name: [tuple(r) for r in await pool.fetch(
        f"SELECT * FROM {t.name} ORDER BY {t.key}")] for t in TABLES}
    tables[totals.TABLE] = [tuple(r) for r in await pool.fetch(
        f"SELECT * FROM {totals.TABLE} ORDER BY day, center_id")]
    return tables


async def test_the_calendar_edges_leave_the_same_rows_live_and_rebuilt_in_any_batch(
        settings: Settings) -> None:
    envelopes, ids = calendar_edges()
    dumps = []
    for batch, rebuilding in ((len(envelopes), False), (1, False), (len(envelopes), True),
                              (1, True), (3, True)):
        async with figures_schema(settings, f"rows_sent_{batch}_{int(rebuilding)}") as pool:
            await fold_figures(pool, settings, envelopes, batch, rebuilding)
            await assert_totals_are_the_scans(pool, date(2028, 3, 6))
            dumps.append(await _dump(pool))
            if len(dumps) > 1:
                continue
            cases = {r["case_id"]: dict(r) for r in await pool.fetch(
                "SELECT case_id, opened_on, resolved, resolved_on, due_on, emotion, defused,"
                " return_trips, verdict, verdict_on FROM fig_cases")}
            assert cases[ids["weekend"]] == {
                "case_id": ids["weekend"], "opened_on": date(2026, 12, 20), "resolved": True,
                "resolved_on": date(2026, 12, 20), "due_on": None, "emotion": "anxious",
                "defused": True, "return_trips": 0, "verdict": "solved",
                "verdict_on": date(2027, 2, 18)}
            assert cases[ids["eve"]] == {
                "case_id": ids["eve"], "opened_on": date(2026, 12, 31), "resolved": True,
                "resolved_on": date(2027, 1, 4), "due_on": date(2027, 1, 4),
                "emotion": "upset", "defused": True, "return_trips": 0, "verdict": None,
                "verdict_on": None}
            assert cases[ids["leap"]] == {
                "case_id": ids["leap"], "opened_on": date(2028, 2, 29), "resolved": True,
                "resolved_on": date(2028, 3, 1), "due_on": date(2028, 3, 2), "emotion": None,
                "defused": True, "return_trips": 1, "verdict": None, "verdict_on": None}
            check = await pool.fetchrow("SELECT due_on, completed_on, missed FROM"
                                        " fig_followups WHERE follow_up_id = $1", ids["check"])
            assert tuple(check) == (date(2027, 2, 18), date(2027, 2, 18), False)
            kept = await kept_totals(pool)
            got = {day: {c: n for c, n in zip(totals.COLUMNS, counts, strict=True) if n}
                   for (center, day), counts in kept.items() if center == CENTER}
            assert got == {
                date(2026, 12, 20): {
                    "cases": 1, "resolved": 1, "resolved_as_resolved": 1, "trips": 1,
                    "trips_known": 1, "first_trip": 1, "resolved_on_the_spot": 1,
                    "arrived_anxious": 1, "defused_anxious": 1, "own_answers": 1,
                    "satisfied_own_answers": 1, "answers_or_expiries": 1,
                    "survey_answers": 1},
                date(2026, 12, 31): {"cases": 1},
                date(2027, 1, 4): {
                    "resolved": 1, "resolved_as_resolved": 1, "trips": 1, "trips_known": 1,
                    "first_trip": 1, "resolved_with_due": 1, "resolved_on_time": 1,
                    "arrived_upset": 1, "defused_upset": 1},
                date(2027, 2, 18): {"verdicts": 1, "said_solved": 1, "followups_closed": 1,
                                    "followups_on_time": 1},
                date(2028, 2, 29): {"cases": 1},
                date(2028, 3, 1): {
                    "visits": 1, "resolved": 1, "resolved_as_resolved": 1, "trips": 2,
                    "trips_known": 1, "resolved_with_due": 1, "resolved_on_time": 1}}
    assert all(d == dumps[0] for d in dumps[1:])


async def test_a_batch_of_figures_goes_as_one_array_a_table(settings: Settings) -> None:
    """Each statement writing a fact table or the day counts has one parameter, live and
    rebuilt (the rebuild's second batch updates rows of its first)."""
    envelopes, _ = calendar_edges()
    written = {t.name for t in FACTS} | {totals.TABLE}
    for rebuilding in (False, True):
        async with figures_schema(settings, f"rows_one_array_{int(rebuilding)}") as pool:
            projection = FiguresProjection(settings.tz)
            seen: dict[str, int] = {}
            half = len(envelopes) // 2
            for part in (envelopes[:half], envelopes[half:]):
                async with pool.acquire() as c, c.transaction():
                    sent = ParamsSent(c)
                    apply = projection.copy_apply if rebuilding else projection.apply
                    await apply(sent, part)  # type: ignore[arg-type]
                for statement, n in sent.sent:
                    words = statement.split()
                    if words[0] in ("INSERT", "UPDATE") and (
                            target := words[2 if words[0] == "INSERT" else 1]) in written:
                        assert n == 1, (target, n)
                        seen[target] = seen.get(target, 0) + 1
            assert set(seen) >= {"fig_cases", totals.TABLE}, seen
            if rebuilding:  # rows of the first half updated, not copied
                assert any(s.startswith("UPDATE fig_cases") for s, _ in sent.sent)

"""The residents' word in the figures, on a hand-built May worked out by hand below.

Six cases at one center: residents saying "not solved" by survey and by the post-resolution
check (each followed by the reopening and a second resolution), answers recorded by staff
(phone callback, paper form) counted apart from the residents' own, and answers stored before
the verdict existed (``RatingGiven`` v1, ``FollowUpCompleted`` v1), which count as they always
did and say nothing on whether the matter was solved. The feedback service's figures and the
analysts' report from an export give the same numbers.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from services.feedback.figures import FIGURE_NAMES, FigureQuery
from services.feedback.figures import compute as service_figures
from services.feedback.main import create_app
from shared.analytics.export import export
from shared.analytics.figures import RATES, compute, connect_export
from shared.contracts import REGISTRY
from shared.settings import Settings
from tests.feedback.helpers import Clock, History, KeptSender, figures_schema, fold_figures
from tests.feedback.totals_check import assert_totals_are_the_scans
from tests.support import running, stream_envelopes, wait_until

CENTER = "SH-PD-HUAMU"
C1, C2 = "clerk-001", "clerk-002"
ITEM = "SA-HARDSHIP-SUBSIDY"


def at(day: str, hhmm: str = "10:00") -> str:
    return f"2026-05-{day}T{hhmm}:00+08:00"


def may() -> History:
    h = History(CENTER)

    def case(n: int, opened: str, clerk: str) -> UUID:
        case_id = uuid.uuid5(uuid.NAMESPACE_URL, f"verdict-case-{n}")
        h.add("intake", "CaseOpened", opened, {
            "center_id": CENTER, "counter_id": "window-1", "clerk_id": clerk,
            "channel": "counter", "service_item": ITEM, "resident_id": str(uuid.uuid4())},
            case_id=case_id, actor=clerk)
        h.add("intake", "RequestHeard", opened, {"words": "…"}, case_id=case_id, actor=clerk)
        return case_id

    def resolve(case_id: UUID, when: str, outcome: str = "resolved") -> None:
        h.add("intake", "CaseResolved", when, {"outcome": outcome, "explanation": "…",
                                               "emotion_defused": True}, case_id=case_id)

    def reopened_on_their_word(case_id: UUID, when: str) -> None:
        h.add("intake", "CaseReopened", when, {"reason": "resident_says_unsolved"},
              case_id=case_id, actor="system:verdicts")

    def survey(case_id: UUID, name: str, requested: str) -> UUID:
        survey_id = uuid.uuid5(uuid.NAMESPACE_URL, name)
        h.add("feedback", "SurveyRequested", requested, {
            "survey_id": str(survey_id), "purpose": "resolution", "channel": "tablet",
            "resident_id": None, "counter_id": "window-1", "clerk_id": "c",
            "service_item": ITEM, "send_at": requested,
            "expires_at": "2026-07-01T00:00:00+08:00"}, case_id=case_id, aggregate_id=survey_id)
        return survey_id

    def own(survey_id: UUID, case_id: UUID, when: str, level: str,
            verdict: str | None, **more: Any) -> None:
        """The resident's own answer (the link or the counter pad)."""
        h.add("feedback", "RatingGiven", when, {
            "survey_id": str(survey_id), "purpose": "resolution", "level": level,
            "via": "token", "verdict": verdict, **more},
            case_id=case_id, aggregate_id=survey_id, actor="resident")

    def by_staff(survey_id: UUID, case_id: UUID, when: str, level: str, verdict: str,
                 channel: str, recorder: str) -> None:
        h.add("feedback", "RatingGiven", when, {
            "survey_id": str(survey_id), "purpose": "resolution", "level": level,
            "via": "clerk", "clerk_id": recorder, "verdict": verdict,
            "staff_channel": channel}, case_id=case_id, aggregate_id=survey_id, actor=recorder)

    def check(case_id: UUID, name: str, due: str) -> UUID:
        follow_up_id = uuid.uuid5(uuid.NAMESPACE_URL, name)
        h.add("followup", "FollowUpScheduled", at("01"), {
            "reason": "post_resolution_check", "resident_id": None, "due_at": due,
            "assigned_clerk": C1, "assigned_team": None, "source": "test"},
            case_id=case_id, aggregate_id=follow_up_id)
        return follow_up_id

    # A (clerk 1): resolved on the 4th; the resident, on the pad: satisfied but "not solved";
    # reopened on their word, resolved again on the 6th; the second survey: very satisfied,
    # "solved" (the 7th). A's verdict: solved, on the 7th.
    a = case(1, at("04", "09:00"), C1)
    resolve(a, at("04", "09:30"))
    sa = survey(a, "sa", at("04", "09:31"))
    own(sa, a, at("04", "09:40"), "satisfied", "not_solved")
    reopened_on_their_word(a, at("04", "09:40"))
    resolve(a, at("06"))
    sa2 = survey(a, "sa2", at("06", "10:01"))
    own(sa2, a, at("07"), "very_satisfied", "solved")

    # B (clerk 1): partly resolved on the 4th; a colleague records the phone callback on the
    # 5th (basically satisfied, "partly"); at the post-resolution check on the 11th the
    # resident says "not solved": reopened, resolved again on the 12th with no word since.
    # B's verdict: not_solved, on the 11th.
    b = case(2, at("04", "11:00"), C1)
    resolve(b, at("04", "11:30"), "partly_resolved")
    sb = survey(b, "sb", at("04", "11:31"))
    by_staff(sb, b, at("05"), "basically_satisfied", "partly", "phone_callback", C2)
    fb = check(b, "fb", at("11", "09:00"))
    h.add("followup", "FollowUpCompleted", at("11", "09:30"), {
        "outcome": "needs_action", "channel": "phone", "verdict": "not_solved"},
        case_id=b, aggregate_id=fb)
    reopened_on_their_word(b, at("11", "09:30"))
    resolve(b, at("12"))

    # C (clerk 2): resolved on the 6th; dissatisfied (it took three trips) but solved; the
    # rectification carries the reasons picked.
    c = case(3, at("06", "09:00"), C2)
    resolve(c, at("06", "09:30"))
    sc = survey(c, "sc", at("06", "09:31"))
    own(sc, c, at("06", "09:45"), "dissatisfied", "solved", reason_tags=["多次跑腿"])
    rc = uuid.uuid5(uuid.NAMESPACE_URL, "rc")
    h.add("feedback", "RectificationOpened", at("06", "09:45"), {
        "rectification_id": str(rc), "resident_id": None, "rating": "dissatisfied",
        "deadline_on": "2026-05-27", "survey_id": str(sc), "reason_tags": ["多次跑腿"]},
        case_id=c, aggregate_id=rc)

    # D (clerk 2): resolved on the 7th; satisfied, answered before the verdict was asked
    # (RatingGiven v1): counted in satisfaction as always, not in the residents' verdicts.
    d = case(4, at("07", "09:00"), C2)
    resolve(d, at("07", "09:30"))
    sd = survey(d, "sd", at("07", "09:31"))
    h.add("feedback", "RatingGiven", at("07", "09:50"), {
        "survey_id": str(sd), "purpose": "resolution", "level": "satisfied", "comment": "",
        "aspects": {}, "via": "token", "clerk_id": None, "rectification_id": None},
        case_id=d, aggregate_id=sd, actor="resident", version=1)

    # E (clerk 1): resolved on the 8th; a paper form recorded on 31 May 16:30 UTC = 1 June
    # 00:30 in Shanghai: June's, both the verdict and the staff-recorded answer.
    e = case(5, at("08", "09:00"), C1)
    resolve(e, at("08", "09:30"))
    se = survey(e, "se", at("08", "09:31"))
    by_staff(se, e, "2026-05-31T16:30:00+00:00", "satisfied", "solved", "paper_form", C2)

    # F (clerk 2): cannot be resolved on the 9th; its check (FollowUpCompleted v1) asked
    # nothing about it being solved.
    f = case(6, at("09", "09:00"), C2)
    resolve(f, at("09", "09:30"), "cannot_be_resolved")
    ff = check(f, "ff", at("12", "09:00"))
    h.add("followup", "FollowUpCompleted", at("12", "10:00"), {
        "outcome": "done", "channel": "phone", "note": ""}, case_id=f, aggregate_id=ff,
        version=1)
    return h


def rate(numerator: int, denominator: int) -> dict[str, Any]:
    return {"numerator": numerator, "denominator": denominator,
            "rate": round(numerator / denominator, 6) if denominator else None}


MAY = {  # one center, May 2026, deadlines judged on 15 June
    "cases": 6,  # opened (trips, visits, are VisitRecorded's: none here)
    # The residents' word, each case's latest: A solved (7th), B not solved (11th),
    # C solved (6th); D and F never said; E's is June's.
    "resolution_rate": rate(2, 3),
    # The clerks' word, each case's last resolution: A, B, C, D, E resolved; F cannot.
    "declared_resolution_rate": rate(5, 6),
    # The residents' own answers: sa satisfied, sa2 very satisfied, sc dissatisfied,
    # sd satisfied (v1, via token); sb was recorded by staff: apart.
    "satisfaction_rate": rate(3, 4),
    "staff_recorded_satisfaction_rate": rate(1, 1),  # sb basically satisfied
    "staff_recorded_answers": 1,  # sb (se is June's)
    "response_rate": rate(5, 5),  # every answer, whoever recorded it; none expired
    "bad_reviews": 1,  # sc
    "rectifications_opened": 1,  # rc
}
JUNE = {"resolution_rate": rate(1, 1), "declared_resolution_rate": rate(0, 0),
        "satisfaction_rate": rate(0, 0), "staff_recorded_satisfaction_rate": rate(1, 1),
        "staff_recorded_answers": 1, "response_rate": rate(1, 1), "cases": 0}
# Clerk 1: A solved, B not (E is June's); A, B, E declared resolved. Clerk 2: C; C, D of C, D, F.
BY_CLERK = {C1: {"resolution_rate": rate(1, 2), "declared_resolution_rate": rate(3, 3)},
            C2: {"resolution_rate": rate(1, 1), "declared_resolution_rate": rate(2, 3)}}


def mine(row: dict[str, Any], wanted: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in wanted}


async def test_the_residents_word_in_the_figures_of_a_hand_built_may(
        settings: Settings, tmp_path: Path) -> None:
    history = may()
    clock = Clock(datetime.fromisoformat("2027-01-04T09:00:00+08:00"))  # asks no new surveys
    async with running(create_app(settings, sender=KeptSender(), clock=clock)) as client:
        last_seq = await history.publish(settings)
        pool = client._transport.app.state.pool  # type: ignore[attr-defined]

        async def applied() -> bool:
            seq = await pool.fetchval("SELECT max(stream_seq) FROM consumer_progress"
                                      " WHERE consumer = 'feedback-figures'")
            return seq is not None and seq >= last_seq
        await wait_until(applied, what="the figures consumer to apply the history")

        async def figures(**params: Any) -> list[dict[str, Any]]:
            r = await client.get("/figures", params={"as_of": "2026-06-15", **params})
            assert r.status_code == 200, r.text
            return r.json()["rows"]

        may_row, june_row = await figures(period="month")
        assert may_row["period_start"] == "2026-05-01"
        assert mine(may_row, MAY) == MAY
        assert mine(june_row, JUNE) == JUNE
        by_clerk = await figures(period="month", group_by="clerk_id", to="2026-05-31")
        assert {r["clerk_id"]: mine(r, BY_CLERK[r["clerk_id"]]) for r in by_clerk} == BY_CLERK
        live = await figures(period="month")

    # Rebuilt from the log, live and by the bulk path, in other batch sizes: the same rows.
    envelopes = [REGISTRY.current(e) for e in await stream_envelopes(settings)]
    for batch, bulk in ((1, False), (5, True), (50, True)):
        async with figures_schema(settings, f"verdicts{batch}") as rebuilt:
            await fold_figures(rebuilt, settings, envelopes, batch, bulk)
            rows = await service_figures(rebuilt, FigureQuery(period="month",
                                                              as_of=date(2026, 6, 15)))
            await assert_totals_are_the_scans(rebuilt, date(2026, 6, 15))
        assert [{**r, "period_start": r["period_start"].isoformat()} for r in rows] == live, \
            (batch, bulk)

    # The analysts' report from an export: the same numbers, figure by figure.
    await export(settings, tmp_path / "export")
    report = compute(tmp_path / "export", date(2026, 5, 1), date(2026, 5, 31),
                     tz="Asia/Shanghai", center=CENTER)
    assert {name: _as_service(report.total, name) for name in MAY} == MAY
    june = compute(tmp_path / "export", date(2026, 6, 1), date(2026, 6, 30),
                   tz="Asia/Shanghai", center=CENTER)
    assert {name: _as_service(june.total, name) for name in JUNE} == JUNE
    assert set(MAY) <= set(FIGURE_NAMES)

    # The export flags each answer staff recorded: who recorded it, and how it came.
    con = connect_export(tmp_path / "export")
    try:
        flagged = con.execute(
            'SELECT actor, via, staff_channel, verdict FROM "RatingGiven"'
            " WHERE via = 'clerk' ORDER BY occurred_at").fetchall()
    finally:
        con.close()
    assert flagged == [(C2, "clerk", "phone_callback", "partly"),
                       (C2, "clerk", "paper_form", "solved")]


def _as_service(row: Any, name: str) -> Any:
    if name in row.counts:
        return row.counts[name]
    r = next(r for r in RATES if r.name == name)
    return rate(row.counts[r.numerator], row.counts[r.denominator])


async def test_a_log_from_before_the_verdict_gives_the_old_figures(settings: Settings) -> None:
    """RatingGiven v1 and FollowUpCompleted v1 (no verdict, no staff channel): the clerks'
    resolution figure is what ``resolution_rate`` said before (``declared_resolution_rate``),
    satisfaction counts every v1 answer by a resident's link as it did, and nothing claims a
    resident said anything about the matter being solved."""
    h = History(CENTER)
    case_id = uuid.uuid4()
    h.add("intake", "CaseOpened", at("04", "09:00"), {
        "center_id": CENTER, "counter_id": "window-1", "clerk_id": C1, "channel": "counter",
        "service_item": ITEM, "resident_id": None}, case_id=case_id)
    h.add("intake", "CaseResolved", at("04", "09:30"), {
        "outcome": "resolved", "explanation": "…", "emotion_defused": True}, case_id=case_id)
    survey_id = uuid.uuid4()
    h.add("feedback", "SurveyRequested", at("04", "09:31"), {
        "survey_id": str(survey_id), "purpose": "resolution", "channel": "tablet",
        "resident_id": None, "counter_id": "window-1", "clerk_id": C1, "service_item": ITEM,
        "send_at": at("04", "09:31"), "expires_at": at("11")},
        case_id=case_id, aggregate_id=survey_id)
    h.add("feedback", "RatingGiven", at("04", "09:40"), {
        "survey_id": str(survey_id), "purpose": "resolution", "level": "very_satisfied",
        "comment": "", "aspects": {}, "via": "token", "clerk_id": None,
        "rectification_id": None}, case_id=case_id, aggregate_id=survey_id, version=1)
    clock = Clock(datetime.fromisoformat("2027-01-04T09:00:00+08:00"))
    async with running(create_app(settings, sender=KeptSender(), clock=clock)) as client:
        last_seq = await h.publish(settings)
        pool = client._transport.app.state.pool  # type: ignore[attr-defined]

        async def applied() -> bool:
            seq = await pool.fetchval("SELECT max(stream_seq) FROM consumer_progress"
                                      " WHERE consumer = 'feedback-figures'")
            return seq is not None and seq >= last_seq
        await wait_until(applied, what="the figures consumer to apply the old log")
        r = await client.get("/figures", params={"period": "month", "as_of": "2026-06-15"})
        (row,) = r.json()["rows"]
        assert row["declared_resolution_rate"] == rate(1, 1)  # the old resolution_rate
        assert row["satisfaction_rate"] == rate(1, 1)
        assert row["resolution_rate"] == rate(0, 0)  # nobody was asked
        assert row["staff_recorded_answers"] == 0

        async def answered() -> dict[str, Any] | None:
            r = await client.get(f"/surveys/{survey_id}")
            return r.json() if r.status_code == 200 and r.json()["status"] == "answered" \
                else None
        await wait_until(answered, what="the old answer in the surveys view")
        seen = await answered()
        assert seen is not None
        assert (seen["verdict"], seen["reason_tags"], seen["via"]) == (None, [], "token")


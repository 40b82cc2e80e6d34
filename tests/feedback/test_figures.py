"""The center's figures on a hand-built March, every number worked out by hand below.

Seven cases at one center, two windows, two clerks, two service items; their surveys,
rectifications and follow-ups, written onto the stream as the three services' relays would.
The figures consumer builds its read model from them; a rebuild from the same events in
other batch sizes gives the same figures.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any
from uuid import UUID

import httpx

from services.feedback.figures import FigureQuery, FiguresProjection, compute
from services.feedback.main import create_app
from shared.contracts import REGISTRY
from shared.settings import Settings
from tests.feedback.helpers import Clock, History, KeptSender, figures_schema
from tests.support import running, stream_envelopes, wait_until

CENTER = "SH-PD-HUAMU"
A, B = "SA-HARDSHIP-SUBSIDY", "EMP-UNEMPLOYMENT-REGISTRATION"
W1, W2, C1, C2 = "window-1", "window-2", "clerk-001", "clerk-002"


def at(day: str, hhmm: str = "10:00") -> str:
    return f"2026-03-{day}T{hhmm}:00+08:00"


def march() -> History:
    h = History(CENTER)

    def case(n: int, opened: str, counter: str, clerk: str, item: str) -> UUID:
        case_id = uuid.uuid5(uuid.NAMESPACE_URL, f"case-{n}")
        h.add("intake", "CaseOpened", opened, {
            "center_id": CENTER, "counter_id": counter, "clerk_id": clerk, "channel": "counter",
            "service_item": item, "resident_id": str(uuid.uuid4())}, case_id=case_id)
        return case_id

    def intake(case_id: UUID, type_: str, when: str, **payload: Any) -> None:
        h.add("intake", type_, when, payload, case_id=case_id)

    def concerns(case_id: UUID, when: str, emotion: str) -> None:
        intake(case_id, "ConcernsNoted", when, emotion=emotion, urgency="normal")

    def resolve(case_id: UUID, when: str, outcome: str, defused: bool) -> None:
        intake(case_id, "CaseResolved", when, outcome=outcome, explanation="…",
               emotion_defused=defused)

    def feedback(aggregate: UUID, case_id: UUID, type_: str, when: str, **payload: Any) -> None:
        h.add("feedback", type_, when, payload, case_id=case_id, aggregate_id=aggregate)

    def survey(case_id: UUID, name: str, requested: str, purpose: str = "resolution",
               rectification: UUID | None = None) -> UUID:
        survey_id = uuid.uuid5(uuid.NAMESPACE_URL, name)
        feedback(survey_id, case_id, "SurveyRequested", requested, survey_id=str(survey_id),
                 purpose=purpose, channel="tablet", resident_id=None, counter_id="w",
                 clerk_id="c", service_item="x", send_at=requested,
                 expires_at="2026-04-30T00:00:00+08:00",
                 rectification_id=str(rectification) if rectification else None)
        feedback(survey_id, case_id, "SurveySent", requested, survey_id=str(survey_id),
                 channel="tablet", expires_at="2026-04-30T00:00:00+08:00")
        return survey_id

    def rating(survey_id: UUID, case_id: UUID, when: str, level: str,
               purpose: str = "resolution") -> None:
        feedback(survey_id, case_id, "RatingGiven", when, survey_id=str(survey_id),
                 purpose=purpose, level=level, via="token")

    def rectification(case_id: UUID, name: str, when: str, deadline: str) -> UUID:
        rect_id = uuid.uuid5(uuid.NAMESPACE_URL, name)
        feedback(rect_id, case_id, "RectificationOpened", when,
                 rectification_id=str(rect_id), resident_id=None, rating="dissatisfied",
                 deadline_on=deadline)
        return rect_id

    def completed(rect_id: UUID, case_id: UUID, when: str, on: str, deadline: str) -> None:
        feedback(rect_id, case_id, "RectificationCompleted", when,
                 rectification_id=str(rect_id), outcome="rectified", actions="…",
                 deadline_on=deadline, completed_on=on, on_time=on <= deadline)

    def follow_up(case_id: UUID, name: str, due: str) -> UUID:
        follow_up_id = uuid.uuid5(uuid.NAMESPACE_URL, name)
        h.add("followup", "FollowUpScheduled", at("01"), {
            "reason": "post_resolution_check", "resident_id": None, "due_at": due,
            "assigned_clerk": "clerk-001", "assigned_team": None, "source": "test"},
            case_id=case_id, aggregate_id=follow_up_id)
        return follow_up_id

    def followup(follow_up_id: UUID, case_id: UUID, type_: str, when: str, **payload: Any) -> None:
        h.add("followup", type_, when, payload, case_id=case_id, aggregate_id=follow_up_id)

    # case 1: window 1, clerk 1, item A. Angry, resolved and defused. Very satisfied.
    c1 = case(1, at("02", "09:00"), W1, C1, A)
    concerns(c1, at("02", "09:05"), "angry")
    resolve(c1, at("02", "09:30"), "resolved", True)
    s1 = survey(c1, "s1", at("02", "09:31"))
    rating(s1, c1, at("02", "09:35"), "very_satisfied")
    f1 = follow_up(c1, "f1", at("09", "09:00"))
    followup(f1, c1, "FollowUpCompleted", at("09"), outcome="done", channel="phone")  # on time

    # case 2: window 1, clerk 1, item A. Calm, partly resolved. Basically satisfied.
    c2 = case(2, at("02"), W1, C1, A)
    concerns(c2, at("02", "10:05"), "calm")
    resolve(c2, at("03", "11:00"), "partly_resolved", False)
    s2 = survey(c2, "s2", at("03", "11:01"))
    rating(s2, c2, at("04", "09:00"), "basically_satisfied")
    f2 = follow_up(c2, "f2", at("10", "09:00"))
    followup(f2, c2, "FollowUpMissed", at("10", "17:00"), due_at=at("10", "09:00"),
             escalate_at=at("12", "09:00"))
    followup(f2, c2, "FollowUpCompleted", at("11"), outcome="done", channel="phone")  # late

    # case 3: window 2, clerk 2, item B. Upset, resolved, not defused. Dissatisfied ->
    # rectification r1 (deadline 25th) done on the 20th; the revisit: satisfied.
    c3 = case(3, at("03", "09:00"), W2, C2, B)
    concerns(c3, at("03", "09:05"), "upset")
    intake(c3, "GuidanceGiven", at("03", "09:10"), service_item=B, policy_basis="…",
           eligibility="eligible")
    resolve(c3, at("03"), "resolved", False)
    s3 = survey(c3, "s3", at("03", "10:01"))
    rating(s3, c3, at("04"), "dissatisfied")
    r1 = rectification(c3, "r1", at("04"), "2026-03-25")
    completed(r1, c3, at("20", "15:00"), "2026-03-20", "2026-03-25")
    v1 = survey(c3, "v1", at("20", "15:00"), purpose="revisit", rectification=r1)
    rating(v1, c3, at("23"), "satisfied", purpose="revisit")
    f3 = follow_up(c3, "f3", at("12", "09:00"))
    followup(f3, c3, "FollowUpRescheduled", at("11"), due_at=at("16", "09:00"),
             assigned_clerk="clerk-001", assigned_team=None)
    followup(f3, c3, "FollowUpCompleted", at("16", "11:00"), outcome="done", channel="phone")

    # case 4: window 2, clerk 2, item B. Distressed; resolved, reopened (its first survey
    # withdrawn), resolved again as cannot-be-resolved but defused; the second survey expired.
    c4 = case(4, at("03", "14:00"), W2, C2, B)
    concerns(c4, at("03", "14:05"), "distressed")
    resolve(c4, at("04"), "resolved", True)
    s4a = survey(c4, "s4a", at("04", "10:01"))
    intake(c4, "CaseReopened", at("05", "09:00"), reason="…")
    feedback(s4a, c4, "SurveyWithdrawn", at("05", "09:00"), survey_id=str(s4a), reason="…")
    concerns(c4, at("05", "09:10"), "calm")  # the emotion on arrival stays 'distressed'
    # 首问负责制: reopened, it is handed to clerk 1; clerk 2 stays its first responder.
    intake(c4, "CaseHandedOver", at("05", "09:20"), to_clerk=C1, to_team=None, from_clerk=None,
           from_team=None, first_clerk=C2, reason="…")
    resolve(c4, at("06"), "cannot_be_resolved", True)
    s4b = survey(c4, "s4b", at("06", "10:01"))
    feedback(s4b, c4, "SurveyExpired", at("13", "12:00"), survey_id=str(s4b),
             purpose="resolution", was_sent=True)
    f4 = follow_up(c4, "f4", at("13", "09:00"))
    followup(f4, c4, "FollowUpCancelled", at("12"), reason="…")
    # Cancelled by the clerk it is assigned to: in no rate, counted apart (the day it was due).
    f8 = follow_up(c4, "f8", at("14", "09:00"))
    h.add("followup", "FollowUpCancelled", at("13"), {"reason": "…"}, case_id=c4,
          aggregate_id=f8, actor="clerk-001")

    # case 5: window 1, clerk 2, item A, opened 31 March 16:30 UTC = 1 April 00:30 in Shanghai.
    case(5, "2026-03-31T16:30:00+00:00", W1, C2, A)

    # case 6: window 1, clerk 1, item B then A (guidance). Anxious; resolved. Very
    # dissatisfied -> rectification r2 (deadline 27th), never completed.
    c6 = case(6, at("05", "09:00"), W1, C1, B)
    concerns(c6, at("05", "09:05"), "anxious")
    intake(c6, "GuidanceGiven", at("05", "09:10"), service_item=A, policy_basis="…",
           eligibility="eligible")
    resolve(c6, at("05", "11:00"), "resolved", False)
    s6 = survey(c6, "s6", at("05", "11:01"))
    rating(s6, c6, at("06", "09:00"), "very_dissatisfied")
    rectification(c6, "r2", at("06", "09:00"), "2026-03-27")
    follow_up(c6, "f5", at("20", "09:00"))  # still pending
    f7 = follow_up(c6, "f7", at("18", "09:00"))  # not reached at the last attempt
    followup(f7, c6, "FollowUpCompleted", at("19"), outcome="unreachable", channel="phone")

    # case 7: window 2, clerk 1, item B; its concerns stored as ConcernsNoted v1. Dissatisfied
    # -> rectification r3 (deadline 31st) completed 2 April: late.
    c7 = case(7, at("09", "09:00"), W2, C1, B)
    h.add("intake", "ConcernsNoted", at("09", "09:05"), {"emotion": "calm", "urgency": "normal"},
          case_id=c7, version=1)
    resolve(c7, at("09"), "resolved", False)
    s7 = survey(c7, "s7", at("09", "10:01"))
    rating(s7, c7, at("10"), "dissatisfied")
    r3 = rectification(c7, "r3", at("10"), "2026-03-31")
    completed(r3, c7, "2026-04-02T10:00:00+08:00", "2026-04-02", "2026-03-31")
    # Its revisit would go by text, which this resident has not agreed to: not asked.
    v3 = uuid.uuid5(uuid.NAMESPACE_URL, "v3")
    feedback(v3, c7, "SurveyRequested", "2026-04-02T10:00:00+08:00", survey_id=str(v3),
             purpose="revisit", channel="sms", resident_id=None, counter_id="w", clerk_id="c",
             service_item="x", send_at="2026-04-02T12:00:00+08:00",
             expires_at="2026-04-09T12:00:00+08:00", rectification_id=str(r3))
    feedback(v3, c7, "SurveyWithdrawn", "2026-04-02T12:00:00+08:00", survey_id=str(v3),
             reason="…", because="no_consent")
    f6 = follow_up(c7, "f6", "2026-03-31T16:30:00+00:00")  # due 1 April in Shanghai
    followup(f6, c7, "FollowUpCompleted", "2026-04-01T10:00:00+08:00", outcome="done",
             channel="phone")
    return h


def rate(numerator: int, denominator: int) -> dict[str, Any]:
    return {"numerator": numerator, "denominator": denominator,
            "rate": round(numerator / denominator, 6) if denominator else None}


MARCH = {  # one center, March 2026, deadlines judged on 1 April
    "visits": 0,  # no trip recorded (VisitRecorded): tests/feedback/test_visits_and_periods.py
    "cases": 6,  # cases 1, 2, 3, 4, 6, 7 (case 5 opened on 1 April, Shanghai time)
    "trips_per_resolved_case": rate(6, 6),  # one trip each: none names a case later
    "first_trip_rate": rate(6, 6),
    "resolution_rate": rate(0, 0),  # no resident was asked "was it solved?" in this March
    "declared_resolution_rate": rate(4, 6),  # resolved: 1, 3, 6, 7; partly: 2; cannot: 4
    "staff_recorded_satisfaction_rate": rate(0, 0),  # every answer is the resident's own
    "staff_recorded_answers": 0,
    "emotion_defused_rate": rate(2, 3),  # upset/angry/distressed: 1 yes, 3 no, 4 yes
    "satisfaction_rate": rate(2, 5),  # s1 very satisfied, s2 basically; s3, s6, s7 bad
    "response_rate": rate(5, 6),  # 5 answers + s4b no answer; s4a withdrawn: not asked
    "bad_reviews": 3,  # s3, s6, s7
    "revisit_satisfaction_rate": rate(1, 1),  # v1 satisfied
    "rectifications_opened": 3,  # r1, r2, r3
    "rectification_on_time_rate": rate(1, 3),  # r1 on time; r2 overdue; r3 done late
    # f1, f3 on time; f2 missed; f7 not reached (closed, never on time); f4 cancelled; f5 due
    "followups_on_time_rate": rate(2, 4),
    "followups_unreachable": 1,  # f7: the team took it up
    "followups_cancelled_by_assignee": 1,  # f8 (f4 was cancelled by someone else)
    "followups_open_past_due": 1,  # f5: due 20 March, still open on 1 April
    "no_consent": 0,  # v3, not asked for want of consent, is April's
    "declined": 0,  # no resident declined to rate here: tests/feedback/test_declined.py
    "on_time_rate": rate(0, 0),  # no case has a due date (CaseDueDateSet) here
    "on_the_spot_rate": rate(4, 6),  # resolved the day opened: 1, 3, 6, 7; not 2, 4
    "appeals_upheld": 0,  # no appeal in March
    "named_revisit_rate": rate(0, 0),  # the March rectifications name no resident
    "overdue_open_cases": 0,  # no case has a due date here
    "backdated_resolutions": 0,  # tests/analytics/test_completion_figures.py has one
}
APRIL = {"cases": 1, "followups_on_time_rate": rate(1, 1),  # case 5; f6 done on its day
         "no_consent": 1}  # v3: counted apart, never as no answer (no response rate)


def expect(**given: Any) -> dict[str, Any]:
    """A row: every figure zero (or no rate) unless given."""
    zero = {"visits": 0, "cases": 0, "bad_reviews": 0, "rectifications_opened": 0,
            "no_consent": 0, "staff_recorded_answers": 0, "appeals_upheld": 0,
            "overdue_open_cases": 0, "followups_unreachable": 0, "declined": 0,
            "followups_cancelled_by_assignee": 0, "followups_open_past_due": 0,
            "backdated_resolutions": 0}
    out = {name: zero.get(name, rate(0, 0)) for name in MARCH}
    out.update(given)
    return out


async def figures(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    r = await client.get("/figures", params={"as_of": "2026-04-01", **params})
    assert r.status_code == 200, r.text
    return r.json()["rows"]


def without_keys(row: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in keys}


async def test_the_figures_of_a_hand_built_march(settings: Settings) -> None:
    history = march()
    # The resolutions are long past for this clock: feedback asks no new surveys about them.
    clock = Clock(datetime.fromisoformat("2027-01-04T09:00:00+08:00"))
    async with running(create_app(settings, sender=KeptSender(), clock=clock)) as client:
        last_seq = await history.publish(settings)
        pool = client._transport.app.state.pool  # type: ignore[attr-defined]

        async def applied() -> bool:
            seq = await pool.fetchval("SELECT max(stream_seq) FROM consumer_progress"
                                      " WHERE consumer = 'feedback-figures'")
            return seq is not None and seq >= last_seq
        await wait_until(applied, what="the figures consumer to apply the history")

        march_row, april_row = await figures(client, period="month")
        assert march_row == {"period_start": "2026-03-01", "center_id": CENTER, **MARCH}
        assert april_row == {"period_start": "2026-04-01", "center_id": CENTER,
                             **expect(**APRIL)}

        # A deadline not yet passed is not judged: on 26 March r2 (due 27th) is still pending.
        (early,) = await figures(client, period="month", to="2026-03-31", as_of="2026-03-26")
        assert early["rectification_on_time_rate"] == rate(1, 2)

        by_counter = await figures(client, period="month", group_by="counter_id")
        assert [without_keys(r, "period_start") for r in by_counter] == [
            {"counter_id": W1, **expect(
                cases=3, trips_per_resolved_case=rate(3, 3), first_trip_rate=rate(3, 3),
                declared_resolution_rate=rate(2, 3), emotion_defused_rate=rate(1, 1),
                satisfaction_rate=rate(2, 3), response_rate=rate(3, 3), bad_reviews=1,
                rectifications_opened=1, rectification_on_time_rate=rate(0, 1),
                followups_on_time_rate=rate(1, 3), followups_unreachable=1,  # f1; f2, f7
                followups_open_past_due=1, on_the_spot_rate=rate(2, 3))},  # f5
            {"counter_id": W2, **expect(
                cases=3, trips_per_resolved_case=rate(3, 3), first_trip_rate=rate(3, 3),
                declared_resolution_rate=rate(2, 3), emotion_defused_rate=rate(1, 2),
                satisfaction_rate=rate(0, 2), response_rate=rate(2, 3), bad_reviews=2,
                revisit_satisfaction_rate=rate(1, 1), rectifications_opened=2,
                rectification_on_time_rate=rate(1, 2), followups_on_time_rate=rate(1, 1),
                followups_cancelled_by_assignee=1, on_the_spot_rate=rate(2, 3))},  # f8
            {"counter_id": W1, **expect(cases=1)},  # April: case 5
            {"counter_id": W2, **expect(followups_on_time_rate=rate(1, 1),  # April: f6,
                                        no_consent=1)},  # v3
        ]

        # Item A is the case's item after guidance: cases 1, 2 and 6 (5 is April's).
        (item_a, _) = await figures(client, period="month", service_item=A)
        assert item_a["cases"] == 3 and item_a["declared_resolution_rate"] == rate(2, 3)
        (clerk_2, _) = await figures(client, period="month", clerk_id=C2,
                                     group_by="center_id,clerk_id")
        assert clerk_2["clerk_id"] == C2 and clerk_2["cases"] == 2  # cases 3, 4
        assert clerk_2["satisfaction_rate"] == rate(0, 1)  # s3
        assert clerk_2["response_rate"] == rate(1, 2)  # s3 answered, s4b not
        # Both roles: clerk 2 first responded to cases 3 and 4, but owns only 3 now (4 was
        # handed to clerk 1, who owns 1, 2, 4, 6 and 7).
        owners = {r["owner_clerk"]: r for r in await figures(
            client, period="month", to="2026-03-31", group_by="owner_clerk")}
        assert (owners[C1]["cases"], owners[C2]["cases"]) == (5, 1)
        assert owners[C1]["declared_resolution_rate"] == rate(3, 5)  # 1, 6, 7 of 1, 2, 4, 6, 7
        (owned_by_2,) = await figures(client, period="month", to="2026-03-31",
                                      owner_clerk=C2)
        assert owned_by_2["response_rate"] == rate(1, 1)  # s3

        # Days and weeks are Shanghai's; weeks start on Monday.
        (first_of_april,) = await figures(client, period="day", **{"from": "2026-04-01",
                                                                   "to": "2026-04-01"})
        assert first_of_april["cases"] == 1
        weeks = {r["period_start"]: r["cases"] for r in await figures(client, period="week")
                 if r["cases"]}
        assert weeks == {"2026-03-02": 5, "2026-03-09": 1, "2026-03-30": 1}
        (year,) = await figures(client, period="year")
        assert year["period_start"] == "2026-01-01" and year["cases"] == 7

        r = await client.get("/figures", params={"group_by": "window"})
        assert r.status_code == 400 and r.json()["error"]["code"] == "group_by_invalid"

    # Rebuilt from the log in other batch sizes: the same figures.
    envelopes = [REGISTRY.current(e) for e in await stream_envelopes(settings)]
    for batch in (1, 7):
        async with figures_schema(settings, f"rebuild{batch}") as rebuilt:
            projection = FiguresProjection(settings.tz)
            for i in range(0, len(envelopes), batch):
                async with rebuilt.acquire() as conn, conn.transaction():
                    await projection.apply(conn, envelopes[i:i + batch])
            rows = await compute(rebuilt, FigureQuery(period="month", as_of=date(2026, 4, 1)))
        assert [{**r, "period_start": r["period_start"].isoformat()} for r in rows] == [
            march_row, april_row]


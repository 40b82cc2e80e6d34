"""A survey nobody answered counts as no answer on the day its answer window closed, whenever the
scheduler records it: the year's last week does not spill into January."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from services.feedback.figures.projection import READ_MODEL
from services.feedback.main import create_app
from shared.analytics.export import export
from shared.analytics.figures import compute
from shared.analytics.rebuild import Rebuild
from shared.settings import Settings
from tests.feedback.helpers import Clock, History, KeptSender
from tests.feedback.test_feedback_loop import CENTER, center, fast, resolved_case
from tests.feedback.test_visits_and_periods import _true, applied_up_to, month_row, rate
from tests.support import TEST_CENTER, running, stream_envelopes, wait_until

RESOLVED = "2026-12-24T21:59:30+08:00"  # Christmas Eve, by phone: the call is due at 23:59:30
CLOSED = datetime.fromisoformat("2026-12-31T23:59:30+08:00")  # its week ends on New Year's Eve
AFTER_MIDNIGHT = datetime.fromisoformat("2027-01-01T00:01:00+08:00")  # the workers were behind


async def test_a_survey_whose_week_ends_on_new_years_eve_is_decembers_no_answer(
        settings: Settings, tmp_path: Path) -> None:
    # No quiet hours at this center, so the call is due two hours after the resolution.
    settings = fast(settings).model_copy(update={"survey_quiet_from": time(0),
                                                 "survey_quiet_until": time(0)})
    clock, sender = Clock(datetime.fromisoformat(RESOLVED)), KeptSender()
    async with center(settings, clock, sender) as (intake, feedback):
        case_id = await resolved_case(intake, channel="phone", emotion="calm", at=RESOLVED)
        clock.set(datetime.fromisoformat("2026-12-24T23:59:31+08:00"))

        async def called() -> bool:
            return sender.for_case(case_id) is not None
        await wait_until(called, what="the phone callback handed to the desk")
        survey_id = sender.for_case(case_id).survey_id
        r = await feedback.get(f"/surveys/{survey_id}")
        assert r.status_code == 200, r.text
        assert datetime.fromisoformat(r.json()["expires_at"]) == CLOSED

        # Nobody called back. The scheduler gets to the survey a minute after midnight.
        clock.set(AFTER_MIDNIGHT)

        async def expired() -> bool:
            return any(e.type == "SurveyExpired" for e in await stream_envelopes(settings))
        await wait_until(expired, what="the survey recorded as no answer")
        (event,) = [e for e in await stream_envelopes(settings) if e.type == "SurveyExpired"]
        assert event.occurred_at == CLOSED, "no answer came by the deadline: then"

        # December's response rate has its no answer; January's has nothing of it.
        r = await feedback.get("/figures", params={
            "period": "month", "from": "2026-12-01", "to": "2027-01-31", "center_id": CENTER,
            "after": event.position})
        assert r.status_code == 200, r.text
        rates = {row["period_start"]: row["response_rate"] for row in r.json()["rows"]}
        assert rates["2026-12-01"] == {"numerator": 0, "denominator": 1, "rate": 0.0}
        assert rates.get("2027-01-01", {"denominator": 0})["denominator"] == 0

        # The same day rebuilt from the log, and in the report from an export: one answer.
        async with Rebuild(settings, READ_MODEL) as rebuild:  # `sixstep rebuild --dry-run`
            await rebuild.prepare(fresh=True)
            await rebuild.catch_up(stoppable=False)
            diff = await rebuild.diff()
            assert diff.same, diff.tables
            await rebuild.discard()
        await export(settings, tmp_path / "export")
        for first, last, expired in ((date(2026, 12, 31), date(2026, 12, 31), 1),
                                     (date(2027, 1, 1), date(2027, 1, 31), 0)):
            report = compute(tmp_path / "export", first, last, tz="Asia/Shanghai",
                             center=CENTER)
            assert (report.total.counts["survey_answers"],
                    report.total.counts["answers_or_expiries"]) == (0, expired), first


async def test_a_no_answer_recorded_after_december_closed_revises_december_openly(
        settings: Settings) -> None:
    """December closed at 00:00:30 on New Year's Day; the scheduler records the no answer of a
    week that ended at 23:59:30 a minute later. It is December's, recorded in January: a late
    event, and December's report is revised with it (``PeriodRevised``), not left silently
    wrong while January counts a survey it never had."""
    h = History(TEST_CENTER)
    case_id = uuid.uuid5(uuid.NAMESPACE_URL, "eve-case")
    survey_id = uuid.uuid5(uuid.NAMESPACE_URL, "eve-survey")
    h.add("intake", "CaseOpened", RESOLVED, {
        "center_id": TEST_CENTER, "counter_id": "window-1", "clerk_id": "clerk-001",
        "channel": "phone", "service_item": "SA-HARDSHIP-SUBSIDY",
        "resident_id": str(uuid.uuid4())}, case_id=case_id, actor="clerk-001")
    h.add("intake", "CaseResolved", RESOLVED, {
        "outcome": "resolved", "explanation": "…", "emotion_defused": True},
        case_id=case_id, actor="clerk-001")
    h.add("feedback", "SurveyRequested", RESOLVED, {
        "survey_id": str(survey_id), "purpose": "resolution", "channel": "phone_callback",
        "resident_id": None, "counter_id": "window-1", "clerk_id": "clerk-001",
        "service_item": "SA-HARDSHIP-SUBSIDY", "send_at": "2026-12-24T23:59:30+08:00",
        "expires_at": CLOSED.isoformat(), "rectification_id": None},
        case_id=case_id, aggregate_id=survey_id)
    clock = Clock(AFTER_MIDNIGHT)
    app = create_app(settings, sender=KeptSender(), clock=clock)
    async with running(app) as client:
        pool = app.state.pool

        await applied_up_to(pool, await h.publish_new(settings))
        r = await client.post(f"/periods/{TEST_CENTER}/2026-12/close",
                              headers={"Idempotency-Key": "close-december"})
        assert r.status_code in (200, 201), r.text

        async def reported() -> dict[str, Any]:
            row = await month_row(client, "2026-12")
            return row if "reported" in row else {}
        await wait_until(lambda: _true(reported), what="December's report")
        assert (await reported())["response_rate"] == rate(0, 0), "the survey still open"

        expired = h.add("feedback", "SurveyExpired", CLOSED.isoformat(), {
            "survey_id": str(survey_id), "purpose": "resolution", "was_sent": True},
            case_id=case_id, aggregate_id=survey_id, actor="system:feedback-scheduler")
        h.envelopes[-1] = expired.model_copy(update={"recorded_at": AFTER_MIDNIGHT})
        await applied_up_to(pool, await h.publish_new(settings))
        assert await app.state.period_scheduler.tick() == (0, 1)

        async def revised() -> bool:
            return (await month_row(client, "2026-12")).get("reported", {}).get(
                "revision") == 1
        await wait_until(revised, what="December's revision")
        row = await month_row(client, "2026-12")
        assert row["response_rate"] == rate(0, 1)
        assert "response_rate" in row["reported"]["changed"]
        assert [e["type"] for e in row["reported"]["late_events"]] == ["SurveyExpired"]
        r = await client.get("/figures", params={"period": "month", "from": "2027-01-01",
                                                 "to": "2027-01-31"})
        assert r.status_code == 200 and r.json()["rows"] == [], "January has nothing of it"

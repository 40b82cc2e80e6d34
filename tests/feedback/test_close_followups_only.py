"""A center whose month held only follow-up calls: no visit, no case opened or resolved, no
survey closed there, but checks done (or missed) on days of it. Their on-time rate is a
figure of that month (``followups_on_time_rate``, counted on the day each was due), and the
period scheduler left the month open for that center for good: it closed a month for a
center only from its trips, cases and surveys. A follow-up done or missed closes its month
as they do; one merely due there, still open, still closes none
(``test_close_settled_months.py``).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

import pytest

from services.feedback.main import create_app
from shared.settings import Settings
from tests.feedback.helpers import Clock, History, KeptSender
from tests.feedback.test_visits_and_periods import applied_up_to, month_row
from tests.support import TEST_CENTER, running, wait_until


@pytest.mark.parametrize("year", [2026, 2027, 2028])
async def test_a_december_of_follow_up_calls_only_is_closed_in_the_new_year(
        settings: Settings, year: int) -> None:
    """The calendar trap: a check due on Sunday 20 December done on Monday the 21st, one due
    at 23:30 on New Year's Eve (Shanghai) missed, one due on the 28th still open; in 2027
    (provisional holidays) and 2028 (a year the holiday package does not know) too."""
    history = History(TEST_CENTER)
    case_id = uuid.uuid5(uuid.NAMESPACE_URL, f"followups-only-{year}")

    def check(name: str, due_at: str) -> uuid.UUID:
        follow_up_id = uuid.uuid5(uuid.NAMESPACE_URL, f"followups-only-{year}-{name}")
        history.add("followup", "FollowUpScheduled", f"{year}-12-01T10:00:00+08:00", {
            "reason": "post_resolution_check", "resident_id": None, "due_at": due_at,
            "assigned_clerk": "clerk-001", "assigned_team": None, "source": "api"},
            case_id=case_id, aggregate_id=follow_up_id)
        return follow_up_id

    sunday = check("sunday", f"{year}-12-20T10:00:00+08:00")
    history.add("followup", "FollowUpCompleted", f"{year}-12-21T09:30:00+08:00", {
        "outcome": "done", "channel": "phone"}, case_id=case_id, aggregate_id=sunday)
    eve = check("eve", f"{year}-12-31T23:30:00+08:00")
    history.add("followup", "FollowUpMissed", f"{year + 1}-01-01T09:00:00+08:00", {
        "due_at": f"{year}-12-31T23:30:00+08:00",
        "escalate_at": f"{year + 1}-01-04T09:00:00+08:00"},
        case_id=case_id, aggregate_id=eve)
    check("open", f"{year}-12-28T10:00:00+08:00")

    clock = Clock(datetime.fromisoformat(f"{year + 1}-01-06T10:00:00+08:00"))
    app = create_app(settings, sender=KeptSender(), clock=clock)
    async with running(app) as client:
        pool = app.state.pool
        await applied_up_to(pool, await history.publish(settings),
                            app.state.period_scheduler.caught_up)
        assert (await app.state.period_scheduler.tick())[0] == 1, "December closes"

        async def reported() -> bool:
            return await pool.fetchval(
                "SELECT count(*) FROM fig_reported WHERE center_id = $1 AND month = $2",
                TEST_CENTER, date(year, 12, 1)) == 1
        await wait_until(reported, what="December's report")
        row = await month_row(client, f"{year}-12")
        assert row["reported"]["closed_by"] == "automatic"
        assert row["followups_on_time_rate"]["denominator"] == 2
        january = await client.get("/figures", params={
            "period": "month", "from": f"{year + 1}-01-01", "to": f"{year + 1}-01-31"})
        assert january.json()["rows"] == [], "31 December in Shanghai, not January in UTC"


@pytest.mark.parametrize("year", [2026, 2028])
async def test_a_december_whose_only_figure_is_a_check_its_clerk_cancelled_is_closed(
        settings: Settings, year: int) -> None:
    """The one follow-up of the center's December, due on Sunday the 20th, cancelled by the
    clerk it was assigned to: ``followups_cancelled_by_assignee`` is 1 for December, a
    figure of that month as the on-time rate is, and the month stayed open for that center
    for good (the scan closed it only for a check done or missed). A check cancelled by the
    rules or a supervisor is in no figure, and closes nothing."""
    history = History(TEST_CENTER)
    case_id = uuid.uuid5(uuid.NAMESPACE_URL, f"followups-cancelled-{year}")
    for name, actor in (("own", "clerk-001"), ("rules", "system:followup-rules")):
        follow_up_id = uuid.uuid5(uuid.NAMESPACE_URL, f"followups-cancelled-{year}-{name}")
        history.add("followup", "FollowUpScheduled", f"{year}-12-01T10:00:00+08:00", {
            "reason": "post_resolution_check", "resident_id": None,
            "due_at": f"{year}-12-20T10:00:00+08:00", "assigned_clerk": "clerk-001",
            "assigned_team": None, "source": "api"}, case_id=case_id, aggregate_id=follow_up_id)
        history.add("followup", "FollowUpCancelled", f"{year}-12-18T09:00:00+08:00", {
            "reason": "不用了"}, case_id=case_id, aggregate_id=follow_up_id, actor=actor)
    clock = Clock(datetime.fromisoformat(f"{year + 1}-01-06T10:00:00+08:00"))
    app = create_app(settings, sender=KeptSender(), clock=clock)
    async with running(app) as client:
        await applied_up_to(app.state.pool, await history.publish(settings),
                            app.state.period_scheduler.caught_up)
        assert (await app.state.period_scheduler.tick())[0] == 1, "December closes"

        async def reported() -> bool:
            return "reported" in await month_row(client, f"{year}-12")
        await wait_until(reported, what="December's report")
        row = await month_row(client, f"{year}-12")
        assert row["reported"]["closed_by"] == "automatic"
        assert row["followups_cancelled_by_assignee"] == 1

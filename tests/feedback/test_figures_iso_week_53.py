"""The figures' days, weeks and years at the year's turn (calendar50).

2026 has an ISO week 53 (Monday 28 December 2026 to Sunday 3 January 2027): a week of the
figures starts on its Monday whatever the year, so the visits of 28 December to 3 January are
one week labelled 2026-12-28, not week 1 of 2026 nor split at New Year. Days are Shanghai's:
a visit at 23:30 on 31 December (15:30 UTC) is December's, and one at 00:30 on 1 January,
16:30 UTC on the 31st, is January's and 2027's, however the UTC date reads."""

from __future__ import annotations

from datetime import datetime

from services.feedback.main import create_app
from shared.settings import Settings
from tests.feedback.helpers import Clock, History, KeptSender
from tests.feedback.test_close_new_years_eve import _visit, _visits
from tests.feedback.test_visits_and_periods import applied_up_to
from tests.support import TEST_CENTER, running

VISITS = {
    "sunday-of-week-52": "2026-12-27T23:30:00+08:00",
    "monday-of-week-53": "2026-12-28T09:00:00+08:00",
    "new-years-eve": "2026-12-31T23:30:00+08:00",  # 15:30 UTC
    "new-years-night": "2027-01-01T00:30:00+08:00",  # 16:30 UTC, on the 31st in UTC
    "sunday-of-week-53": "2027-01-03T23:59:58+08:00",
    "monday-of-week-1": "2027-01-04T00:00:05+08:00",
}


async def test_week_53_of_2026_is_one_week_from_monday_28_december_and_days_are_shanghai_s(
        settings: Settings) -> None:
    history = History(TEST_CENTER)
    for name, when in VISITS.items():
        _visit(history, f"calendar50-{name}", when)
    clock = Clock(datetime.fromisoformat("2027-01-04T10:00:00+08:00"))
    app = create_app(settings, sender=KeptSender(), clock=clock)
    async with running(app) as client:
        await applied_up_to(app.state.pool, await history.publish_new(settings),
                            app.state.period_scheduler.caught_up)
        assert await _visits(client, "week", "2026-12-21", "2027-01-10") == [
            ("2026-12-21", 1), ("2026-12-28", 4), ("2027-01-04", 1)]
        assert await _visits(client, "day", "2026-12-31", "2027-01-01") == [
            ("2026-12-31", 1), ("2027-01-01", 1)], "the 23:30 visit is not the next day's"
        # Asked from New Year's Day, week 53 counts its 2027 days, labelled by the first.
        assert await _visits(client, "week", "2027-01-01", "2027-01-10") == [
            ("2027-01-01", 2), ("2027-01-04", 1)]
        assert await _visits(client, "year", "2026-01-01", "2027-12-31") == [
            ("2026-01-01", 3), ("2027-01-01", 3)]
        assert await _visits(client, "month", "2026-12-01", "2027-01-31") == [
            ("2026-12-01", 3), ("2027-01-01", 3)]

"""The figures by year (or month, or week) for a range that starts inside a period: its first
row counts only the days asked for, and said so by its label. A year from 1 December 2026 was
labelled 2026-01-01, as if January to November were in it."""

from __future__ import annotations

import uuid
from datetime import datetime

from services.feedback.main import create_app
from shared.settings import Settings
from tests.feedback.helpers import Clock, History, KeptSender
from tests.feedback.test_visits_and_periods import applied_up_to
from tests.support import TEST_CENTER, running


async def test_a_year_from_1_december_is_labelled_1_december(settings: Settings) -> None:
    """Visits on Sunday 20 December 2026, at 23:30 on New Year's Eve (Shanghai), in the
    provisional 2027 and in 2028, a year the holiday package does not know."""
    history = History(TEST_CENTER)
    for n, when in enumerate(("2026-12-20T10:00:00+08:00", "2026-12-31T23:30:00+08:00",
                              "2027-03-01T10:00:00+08:00", "2027-12-20T10:00:00+08:00",
                              "2028-02-29T10:00:00+08:00")):
        visit_id = uuid.uuid5(uuid.NAMESPACE_URL, f"labels-{n}")
        history.add("intake", "VisitRecorded", when, {
            "visit_id": str(visit_id), "center_id": TEST_CENTER, "counter_id": "window-1",
            "clerk_id": "clerk-001", "channel": "counter", "case_id": None, "ticket": "A001",
            "wait_minutes": 3}, case_id=None, aggregate_id=visit_id, actor="clerk-001")
    app = create_app(settings, sender=KeptSender(),
                     clock=Clock(datetime.fromisoformat("2028-12-06T10:00:00+08:00")))
    async with running(app) as client:
        await applied_up_to(app.state.pool, await history.publish(settings))

        async def labels(period: str, date_from: str, date_to: str) -> dict[str, int]:
            r = await client.get("/figures", params={
                "period": period, "from": date_from, "to": date_to})
            assert r.status_code == 200, r.text
            return {row["period_start"]: row["visits"] for row in r.json()["rows"]}

        assert await labels("year", "2026-12-01", "2027-11-30") == {
            "2026-12-01": 2, "2027-01-01": 1}
        assert await labels("year", "2027-12-01", "2028-11-30") == {
            "2027-12-01": 1, "2028-01-01": 1}
        assert await labels("month", "2026-12-20", "2027-01-31") == {"2026-12-20": 2}
        assert await labels("year", "2026-01-01", "2026-12-31") == {"2026-01-01": 2}

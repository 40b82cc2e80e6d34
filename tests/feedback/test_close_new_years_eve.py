"""The year's turn at the period scheduler (the calendar trap, months50).

31 December 2026, 23:30 in Shanghai (15:30 UTC): a supervisor's close of December races the
scheduler's revision of November (a November slip typed in that evening); December has not
ended in the center's zone, so it is refused, and November is revised naming the slip. At
00:00:01 on 1 January 2027 (a provisional year) December is closed; a visit of 23:59:58 on
31 December arrives at 00:00:05, after the close: December is revised naming it, and the
year's figures count it once, in December (its ``occurred_at``), none in January.

29 February 2028, in a year the holiday package does not know: a month closes
``PERIOD_CLOSE_AFTER_DAYS`` calendar days after it ends, no working-day rule is asked, so
February closes on 6 March as any month does, and a visit of 23:59:58 on the 29th arriving
on 1 March revises February, not March."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime

import httpx
import pytest

from services.feedback.closing import PeriodScheduler
from services.feedback.main import create_app
from shared.contracts import Envelope
from shared.settings import Settings
from tests.feedback.helpers import Clock, History, KeptSender
from tests.feedback.test_close_before_relay import _revision
from tests.feedback.test_visits_and_periods import applied_up_to, month_row
from tests.support import TEST_CENTER, running


def _visit(history: History, name: str, when: str, recorded_at: str | None = None
           ) -> Envelope:
    visit_id = uuid.uuid5(uuid.NAMESPACE_URL, f"months50-{name}")
    return history.add("intake", "VisitRecorded", when, {
        "visit_id": str(visit_id), "center_id": TEST_CENTER, "counter_id": "window-1",
        "clerk_id": "clerk-001", "channel": "counter", "case_id": None, "ticket": "A001",
        "wait_minutes": 3}, case_id=None, aggregate_id=visit_id, actor="clerk-001",
        recorded_at=datetime.fromisoformat(recorded_at) if recorded_at else None)


async def _visits(client: httpx.AsyncClient, period: str, date_from: str, date_to: str
                  ) -> list[tuple[str, int]]:
    r = await client.get("/figures", params={"period": period, "from": date_from,
                                             "to": date_to})
    assert r.status_code == 200, r.text
    return [(row["period_start"], row["visits"]) for row in r.json()["rows"]]


async def _revised_for(client: httpx.AsyncClient, scheduler: PeriodScheduler, month: str,
                       late: Envelope, visits: int) -> None:
    """The next tick revises ``month`` (revision 1, ``visits``) naming ``late`` alone."""
    assert await scheduler.tick() == (0, 1)
    row = await _revision(client, month, 1)
    assert row["visits"] == visits
    assert [e["event_id"] for e in row["reported"]["late_events"]] == [str(late.event_id)]


async def test_new_years_eve_a_close_of_december_racing_november_s_revision_and_a_visit_of_23_59(
        settings: Settings) -> None:
    history = History(TEST_CENTER)
    _visit(history, "november", "2026-11-20T10:00:00+08:00")
    _visit(history, "december", "2026-12-20T10:00:00+08:00")  # a Sunday
    clock = Clock(datetime.fromisoformat("2026-12-06T10:00:00+08:00"))
    app = create_app(settings, sender=KeptSender(), clock=clock)
    async with running(app) as client:
        pool, scheduler = app.state.pool, app.state.period_scheduler
        await applied_up_to(pool, await history.publish_new(settings), scheduler.caught_up)
        assert await scheduler.tick() == (1, 0), "November closes by itself"

        clock.set(datetime.fromisoformat("2026-12-31T23:30:00+08:00"))
        slip = _visit(history, "november-slip", "2026-11-27T15:00:00+08:00",
                      recorded_at="2026-12-31T23:00:00+08:00")
        await applied_up_to(pool, await history.publish_new(settings), scheduler.caught_up)
        close, ticked = await asyncio.gather(
            client.post(f"/periods/{TEST_CENTER}/2026-12/close",
                        headers={"Idempotency-Key": "close-2026-12-early"}),
            scheduler.tick())
        assert close.status_code == 409, close.text  # 15:30 UTC, 23:30 in the center's zone
        assert "period_not_ended" in close.text
        assert ticked == (0, 1), "November revised, December not closed"
        november = await _revision(client, "2026-11", 1)
        assert november["visits"] == 2
        assert [e["event_id"] for e in november["reported"]["late_events"]] == [
            str(slip.event_id)]

        clock.set(datetime.fromisoformat("2027-01-01T00:00:01+08:00"))
        r = await client.post(f"/periods/{TEST_CENTER}/2026-12/close",
                              headers={"Idempotency-Key": "close-2026-12"})
        assert r.status_code in (200, 201), r.text
        assert (await month_row(client, "2026-12"))["visits"] == 1
        clock.set(datetime.fromisoformat("2027-01-01T00:00:05+08:00"))
        eve = _visit(history, "eve", "2026-12-31T23:59:58+08:00",
                     recorded_at="2027-01-01T00:00:05+08:00")
        await applied_up_to(pool, await history.publish_new(settings), scheduler.caught_up)
        await _revised_for(client, scheduler, "2026-12", eve, visits=2)

        assert await _visits(client, "year", "2026-01-01", "2026-12-31") == [
            ("2026-01-01", 4)], "each visit once, the eve's in 2026"
        assert await _visits(client, "month", "2026-11-01", "2027-01-31") == [
            ("2026-11-01", 2), ("2026-12-01", 2)], "none in January"
        assert await scheduler.tick() == (0, 0), "named once"


@pytest.mark.parametrize("after_days", [5, 0])
async def test_february_2028_closes_on_calendar_days_and_a_visit_of_the_29th_revises_it(
        settings: Settings, after_days: int) -> None:
    history = History(TEST_CENTER)
    _visit(history, "leap-day", "2028-02-29T10:00:00+08:00")
    closes_on = "2028-03-06" if after_days else "2028-03-01"
    clock = Clock(datetime.fromisoformat("2028-03-01T00:00:01+08:00"))
    app = create_app(settings.model_copy(update={"period_close_after_days": after_days}),
                     sender=KeptSender(), clock=clock)
    async with running(app) as client:
        pool, scheduler = app.state.pool, app.state.period_scheduler
        await applied_up_to(pool, await history.publish_new(settings), scheduler.caught_up)
        if after_days:  # the day before: not yet, whatever the calendar does not know
            clock.set(datetime.fromisoformat("2028-03-05T23:59:59+08:00"))
            assert await scheduler.tick() == (0, 0)
            clock.set(datetime.fromisoformat(f"{closes_on}T00:00:01+08:00"))
        assert await scheduler.tick() == (1, 0)
        assert (await month_row(client, "2028-02"))["visits"] == 1

        late = _visit(history, "leap-night", "2028-02-29T23:59:58+08:00",
                      recorded_at="2028-03-01T00:00:05+08:00")
        await applied_up_to(pool, await history.publish_new(settings), scheduler.caught_up)
        await _revised_for(client, scheduler, "2028-02", late, visits=2)
        assert await _visits(client, "month", "2028-03-01", "2028-03-31") == []

"""A month older than the last two that the period scheduler found with nothing left to close,
and a paper slip of that month typed in afterwards (redteam67).

The scheduler stops scanning such a month (dcd2164b: a year of fact rows each tick). But
intake accepts an ``occurred_at`` back to ``OCCURRED_AT_EARLIEST``: a visit of 20 May typed
in on 10 September from the paper register gives the center its first fact row in May that
closes a month (a check due in May, still open, closes none). May has no report for it, so
May must close for it, as it did before the skip (and as it does after a restart, the skip
being kept in memory only).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from services.feedback.main import create_app
from shared.settings import Settings
from tests.feedback.helpers import Clock, KeptSender
from tests.feedback.test_visits_and_periods import May, applied_up_to, at
from tests.support import TEST_CENTER, running, wait_until


async def test_a_may_visit_typed_in_from_the_register_in_september_closes_may(
        settings: Settings) -> None:
    clock = Clock(datetime.fromisoformat("2026-09-10T10:00:00+08:00"))
    app = create_app(settings, sender=KeptSender(), clock=clock)
    async with running(app):
        pool = app.state.pool
        scheduler = app.state.period_scheduler
        august = May()
        august.visit("august", at("14", month="08"))
        history = august.h
        # the center's only May fact: a check still open, due 25 May (it closes no month)
        check = uuid.uuid5(uuid.NAMESPACE_URL, "settled-may-check")
        history.add("followup", "FollowUpScheduled", "2026-05-20T10:00:00+08:00", {
            "reason": "post_resolution_check", "resident_id": None,
            "due_at": "2026-05-25T09:00:00+08:00", "assigned_clerk": "clerk-001",
            "assigned_team": None, "source": "api"}, case_id=uuid.uuid4(), aggregate_id=check)
        await applied_up_to(pool, await history.publish(settings))
        assert await scheduler.tick() == (1, 0)  # August closes; May has nothing to close

        # 10 September: the 20 May visit from the paper register is typed in
        may = May()
        may.h._positions = history._positions  # intake's relay goes on from where it was
        may.visit("from-the-register", at("20"))
        slip = may.h.envelopes[-1]
        may.h.envelopes[-1] = slip.model_copy(
            update={"recorded_at": datetime.fromisoformat("2026-09-10T09:30:00+08:00")})
        await applied_up_to(pool, await may.h.publish(settings))

        scheduler.recheck_s = 0.0  # the settled months are looked at again (hourly)
        assert await scheduler.tick() == (1, 0), "May closes for the center"

        async def may_reported() -> bool:
            return await pool.fetchval(
                "SELECT count(*) FROM fig_reported WHERE center_id = $1 AND month = $2",
                TEST_CENTER, date(2026, 5, 1)) == 1
        await wait_until(may_reported, what="May's report")

"""The window's tablet runs three minutes fast. A case opened at 23:50 and resolved at 23:58 on
its day is posted as resolved at 00:01 the next day: before, it was resolved on that day, not
on the spot, and in the next month's figures (next year's, on New Year's Eve). Recorded at
intake's moment, it counts on the day it happened. New Year's Eve in Shanghai, Sunday 20
December, and the last minute of February 2028 (a year the holiday package does not know)."""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.feedback.main import create_app as feedback_app
from services.intake.main import create_app as intake_app
from shared.settings import Settings
from tests.feedback.helpers import Clock, KeptSender, key
from tests.support import headers, register_resident, running, stream_envelopes

SHANGHAI = ZoneInfo("Asia/Shanghai")
CENTER = "SH-PD-HUAMU"
LAST_MINUTES = {
    "new_years_eve": datetime(2026, 12, 31, 23, 58, tzinfo=SHANGHAI),
    "sunday_20_december": datetime(2026, 12, 20, 23, 58, tzinfo=SHANGHAI),
    "february_2028": datetime(2028, 2, 29, 23, 58, tzinfo=SHANGHAI),
}


@pytest.mark.parametrize("edge", list(LAST_MINUTES))
async def test_a_case_resolved_at_23_58_on_a_tablet_three_minutes_fast_counts_that_day(
        settings: Settings, edge: str) -> None:
    resolved = LAST_MINUTES[edge]
    tablet = (resolved + timedelta(minutes=3)).isoformat()  # 00:01 the next day
    clock = Clock(resolved - timedelta(minutes=8))
    async with contextlib.AsyncExitStack() as stack:
        intake = await stack.enter_async_context(running(intake_app(settings, clock=clock)))
        feedback = await stack.enter_async_context(running(feedback_app(
            settings, sender=KeptSender(), clock=clock)))
        r = await intake.post("/cases", headers=headers(key()), json={
            "center_id": CENTER, "counter_id": "window-3", "clerk_id": "clerk-017",
            "channel": "counter", "service_item": "SA-HARDSHIP-SUBSIDY",
            "resident_id": await register_resident(intake)})
        assert r.status_code == 201, r.text
        case_id = r.json()["id"]
        r = await intake.post(f"/cases/{case_id}/hear", headers=headers(key()),
                              json={"words": "临时救助还没批下来"})
        assert r.status_code == 200, r.text
        clock.set(resolved)
        r = await intake.post(f"/cases/{case_id}/resolve", headers=headers(key()), json={
            "outcome": "resolved", "explanation": "当场办结", "emotion_defused": True,
            "occurred_at": tablet})
        assert r.status_code == 200, r.text

        figures = (await feedback.get("/figures", params={
            "period": "month", "center_id": CENTER, "after_intake": r.json()["position"],
            "as_of": (resolved + timedelta(days=1)).date().isoformat()})).json()
        [month] = figures["rows"]
        assert month["period_start"] == resolved.date().replace(day=1).isoformat(), month
        assert month["on_the_spot_rate"]["numerator"] == 1, month

    [done] = [e for e in await stream_envelopes(settings) if e.type == "CaseResolved"]
    assert done.occurred_at == resolved
    assert done.occurred_at.astimezone(SHANGHAI).date() == resolved.date()

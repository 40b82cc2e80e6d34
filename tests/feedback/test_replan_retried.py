"""A re-planning that fails for one rectification is not forgotten (replan56): the reload's
answer counts it failed, nothing is remembered as re-planned, and once the obstacle goes the
service's own retry records the revised deadline, exactly once. Until then the failure was a
log line: the changed official days were marked re-planned and remembered, so no later reload
or start looked at that rectification again, and its deadline stayed the one counted on the
old calendar."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import asyncpg

from shared.settings import Settings
from tests.feedback.test_clock_set_back import reviewed_on_monday_28
from tests.support import bearer, stream_envelopes, wait_until


async def _seen_fingerprint(settings: Settings) -> str | None:
    conn = await asyncpg.connect(settings.database_url)
    try:
        return await conn.fetchval(f'SELECT fingerprint FROM "{settings.schema_for("feedback")}"'
                                   ".calendar_seen WHERE center_id = '*'")
    finally:
        await conn.close()


async def test_a_schedule_published_while_the_store_refuses_a_rectification_is_re_planned_later(
        settings: Settings, tmp_path: Path) -> None:
    # Reviewed on Monday 28 December 2026: due Tuesday 5 January 2027 (29-31, 4, 5), a
    # provisional year. On Monday 4 January 2027's schedule is published with the 5th off (an
    # illustrative one) and reloaded while feedback's store takes no write (its events table
    # locked by another session past WRITE_TIMEOUT_S): the rectification's revision fails.
    # WRITE_TIMEOUT_S as deployed (5 s): smaller, a loaded host's ordinary writes time out too.
    async with reviewed_on_monday_28(settings, tmp_path) as day:
        settings, feedback = day.settings, day.feedback
        day.clock.set(datetime.fromisoformat("2027-01-04T10:00:00+08:00"))
        before = await _seen_fingerprint(settings)
        day.publish_2027_with_the_5th_off()
        ops = bearer(settings, role="ops", center=None)
        async with day.store_takes_no_write():  # then the obstacle goes: the lock let go
            r = await feedback.post("/ops/calendar/reload", headers=ops)
            assert r.status_code == 200, r.text
            said = r.json()
            assert said["replanned"]["feedback"]["rectifications_checked"] == 1
            assert said["replanned"]["feedback"]["rectifications_failed"] == 1
            assert (said["failed"], said["retry_scheduled"]) == (1, True)
            # Not remembered as re-planned: a restart now would take it again.
            assert await _seen_fingerprint(settings) == before
            ready = (await feedback.get("/ready")).json()
            assert any("not re-planned" in d for d in ready["checks"]["degraded"]), ready
            metrics = (await feedback.get("/metrics")).text
            assert 'sixstep_calendar_replan_pending{service="feedback"} 1.0' in metrics

        async def remembered() -> bool:
            return await _seen_fingerprint(settings) != before
        # The service's own retry, without an operator: the new calendar remembered once the
        # rectification went through.
        await wait_until(remembered, timeout=60, what="the retried re-planning")
        revised = [e for e in await stream_envelopes(settings)
                   if e.type == "RectificationDeadlineRevised"]
        assert [(e.payload["deadline_on"], e.payload["basis"]) for e in revised] == [
            ("2027-01-06", "official")]
        assert (await feedback.get("/ready")).json()["checks"]["degraded"] == []
        metrics = (await feedback.get("/metrics")).text
        assert 'sixstep_calendar_replan_pending{service="feedback"} 0.0' in metrics

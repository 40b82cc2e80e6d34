"""The leader of calendar-replan adopts a pending re-planning only on the calendars it was made
on (redteam123). Feedback's API replica A was deployed with 2027's schedule in its holidays
file; worker replica B, which runs ``calendar-replan``, still has the file before it (2027
provisional): a rollout half done. A's reload of the schedule fails on an item and A goes
(scaled down) before its retry gets through. B reads its holidays file again and still plans
2027 provisionally: it cannot run that re-planning. It leaves the row, says why, and /ready
and ``GET /ops/calendar`` keep saying it is pending. Until redteam123 B ran it on its own,
provisional, calendars, which went through, took the row away and remembered them as
re-planned: the re-planning of 2027's schedule was dropped and nothing said so any more."""

from __future__ import annotations

import json
from pathlib import Path

from services.feedback.main import create_app as feedback_app
from shared.runtime import replan_pending
from shared.runtime.lifecycle import Runtime
from shared.settings import Settings
from tests.feedback.test_appeal_window import on_sunday
from tests.support import bearer, running


async def test_a_leader_without_the_pending_re_plannings_schedule_leaves_it_pending(
        settings: Settings, tmp_path: Path) -> None:
    settings, clock, sender, _, _ = on_sunday(settings)
    published, before = tmp_path / "a-holidays.json", tmp_path / "b-holidays.json"
    published.write_text(json.dumps({"2027": {
        "source": "illustrative, not the State Council's",
        "holidays": ["2027-01-01..2027-01-03", "2027-01-05"], "workdays": []}}))
    before.write_text("{}")
    b_app = feedback_app(settings.model_copy(update={"holidays_file": before}),
                         sender=sender, clock=clock)
    a_app = feedback_app(settings.model_copy(update={"holidays_file": published}),
                         sender=sender, clock=clock)
    ops = bearer(settings, role="ops", center=None)
    async with running(b_app) as b_client:
        b: Runtime = b_app.state.runtime
        b_passes = 0

        async def counted() -> dict[str, int]:
            nonlocal b_passes
            b_passes += 1
            return {}

        b.calendar_hooks = {"counted": counted, **b.calendar_hooks}
        async with running(a_app):
            a: Runtime = a_app.state.runtime

            async def not_taken() -> dict[str, int]:
                return {"part_failed": 1}  # every try of A's: a write not taken in time

            a.calendar_hooks = {"not_taken": not_taken, **a.calendar_hooks}
            said = await a.reload_calendars()
            assert said["failed"] == 1
            made_on = a.calendars.fingerprints()  # type: ignore[union-attr]
        # A is gone; its row's next try long past.
        await b.pool.execute("UPDATE calendar_replan_pending"
                             " SET next_try_at = now() - interval '1 minute'")
        row = await replan_pending.read(b.pool, "feedback")
        assert row is not None and row.orphaned and row.public.fingerprints == made_on
        assert b.calendars is not None and b.calendars.fingerprints() != made_on
        await b.replanner.try_again(adopting=True)  # what B's calendar-replan loop runs on it
        assert b_passes == 0, "B re-planned on calendars the re-planning was not made on"
        await b.replanner.try_again(adopting=True)  # its next look, 5 s later: the same
        assert b_passes == 0 and b.replan_not_adopted == row.revision
        left = await replan_pending.read(b.pool, "feedback")
        assert left is not None and left.public.fingerprints == made_on
        status = (await b_client.get("/ops/calendar", headers=ops)).json()
        assert status["replan_pending"] is not None
        b.replan_pending.seen(left, b.replan_pending.ended)  # as B's loop reads it
        [degraded] = (await b_client.get("/ready")).json()["checks"]["degraded"]
        assert "not retried here" in degraded, degraded

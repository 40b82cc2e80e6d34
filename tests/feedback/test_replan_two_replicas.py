"""Two replicas of feedback on one database and one NATS (redteam120): replica A's retry of a
failed re-planning (replan56) runs while replica B reloads a corrected schedule. A's calendars
learn of B's reload when B tells them; B told them once it had re-planned, so A's retry,
running during B's re-planning, counted the rectification again on the schedule B's reload
had just replaced, after B had counted it on the new one (the command keys name the
schedules: both were taken), went through and ended the retry. The deadline stayed the
withdrawn schedule's (Wednesday 6 January instead of Tuesday 5) for good: no later run read
it, as A remembered it re-planned."""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import datetime
from pathlib import Path

from services.feedback.main import create_app as feedback_app
from services.followup.main import create_app as followup_app
from services.intake.main import create_app as intake_app
from shared.kernel.clock import ManualClock
from shared.runtime.lifecycle import Runtime
from shared.settings import Settings
from tests.feedback.test_appeal_window import on_sunday
from tests.feedback.test_bad_reviews import bad_review
from tests.support import running, stream_envelopes, wait_until

#: Illustrative 2027 schedules (not the State Council's): New Year, then a notice that gives
#: the 5th off too, then its correction, the 6th instead.
NEW_YEAR = {"2027": {"source": "illustrative", "holidays": ["2027-01-01..2027-01-03"],
                     "workdays": []}}
FIFTH_OFF = {"2027": {"source": "illustrative", "holidays": ["2027-01-01..2027-01-03",
                                                           "2027-01-05"], "workdays": []}}
SIXTH_OFF = {"2027": {"source": "illustrative", "holidays": ["2027-01-01..2027-01-03",
                                                           "2027-01-06"], "workdays": []}}


async def test_a_retry_during_another_replicas_reload_leaves_no_deadline_on_the_old_schedule(
        settings: Settings, tmp_path: Path) -> None:
    holidays = tmp_path / "holidays.json"
    holidays.write_text(json.dumps(NEW_YEAR))
    settings, clock, sender, _, _ = on_sunday(settings)
    settings = settings.model_copy(update={"holidays_file": holidays})
    monday = datetime.fromisoformat("2026-12-28T10:05:00+08:00")
    clock.set(monday)
    a_app, b_app = (feedback_app(settings, sender=sender, clock=clock) for _ in range(2))
    async with contextlib.AsyncExitStack() as stack:
        intake = await stack.enter_async_context(running(intake_app(settings, clock=clock)))
        feedback = await stack.enter_async_context(running(a_app))
        await stack.enter_async_context(running(followup_app(settings,
                                                             clock=ManualClock(monday))))
        await stack.enter_async_context(running(b_app))
        a: Runtime = a_app.state.runtime
        b: Runtime = b_app.state.runtime
        # Reviewed Monday 28 December 2026: due Tuesday 5 January 2027 (29-31, 4, 5).
        _, reviewed = await bad_review(intake, feedback, sender, "2026-12-28T10:00:00+08:00")
        assert (reviewed["deadline_on"], reviewed["basis"]) == ("2027-01-05", "official")
        clock.set(datetime.fromisoformat("2027-01-04T10:00:00+08:00"))

        # On A, a notice with the 5th off is reloaded and its re-planning has an item fail
        # (another part's, say): the rectification moves to the 6th, and A retries.
        passes, a_open, a_waiting, a_done = 0, asyncio.Event(), asyncio.Event(), asyncio.Event()
        ran = 0

        async def gate() -> dict[str, int]:
            nonlocal passes
            passes += 1
            if passes == 1:
                return {"part_failed": 1}
            a_waiting.set()  # A's retry, on A's calendars, until B's re-planning lets it on
            await a_open.wait()
            return {}

        async def after_a() -> dict[str, int]:
            nonlocal ran
            ran += 1
            a_done.set()
            return {}

        a.calendar_hooks = {"gate": gate, **a.calendar_hooks, "after": after_a}
        holidays.write_text(json.dumps(FIFTH_OFF))
        said = await a.reload_calendars()
        assert said["failed"] == 1 and said["hooks"]["feedback"]["deadlines_revised"] == 1
        await a_waiting.wait()

        # The notice corrected (the 6th off instead) and reloaded on B: the rectification's
        # deadline back to the 5th. A's retry goes on meanwhile.
        async def after_b() -> dict[str, int]:
            async def told() -> bool:
                return a.calendars.fingerprints() == b.calendars.fingerprints()  # type: ignore[union-attr]
            with contextlib.suppress(AssertionError):  # before the fix: told only after this
                await wait_until(told, timeout=10, what="replica A told of B's reload")
            a_open.set()
            await a_done.wait()
            return {}

        b.calendar_hooks = {**b.calendar_hooks, "after": after_b}
        holidays.write_text(json.dumps(SIXTH_OFF))
        said = await b.reload_calendars()
        assert said["failed"] == 0 and said["hooks"]["feedback"]["deadlines_revised"] == 1

        async def through() -> bool:  # A's retry went through: every pass it began ended
            return passes == ran and a.replan_pending.since is None
        await wait_until(through, what="A's retry through")
        stored = await a.pool.fetchval(  # every revision stored, by either replica
            f'SELECT count(*) FROM "{settings.schema_for("feedback")}".feedback_events'
            " WHERE topic LIKE '%RectificationDeadlineRevised%'")
        revised: list[tuple[str, str]] = []

        async def published() -> bool:
            revised[:] = [(e.payload["deadline_on"], e.payload["basis"])
                          for e in await stream_envelopes(settings)
                          if e.type == "RectificationDeadlineRevised"]
            return len(revised) == stored
        await wait_until(published, what="every revision on the stream")
        assert revised[-1] == ("2027-01-05", "official"), revised
        assert passes == 3  # A's retry ran again, on the corrected schedule

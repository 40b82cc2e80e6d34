"""Feedback's clock set back behind the day its center reached (an operator's slip, a VM
restored from an image): what the supervisor reads and what a published schedule re-plans are
judged on the day the center reached, as the triage judges a missed deadline
(``judged_day``). Until calendar54 the board read "not overdue" of a rectification the triage
refused as ``deadline_missed``, and a schedule published on that clock moved a missed
provisional deadline to a later day: put right then, it came out on time."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg

from shared.settings import Settings
from tests.feedback.helpers import key
from tests.feedback.test_appeal_window import SUNDAY, another_rating_on_tuesday_29, on_sunday
from tests.feedback.test_bad_reviews import bad_review, center
from tests.support import bearer, headers, stream_envelopes, wait_until


async def test_on_a_clock_set_back_the_board_shows_overdue_what_the_triage_refuses_as_missed(
        settings: Settings) -> None:
    # Reviewed on Sunday 20 December 2026: due Monday 28, untriaged. On Tuesday 29 the center's
    # day goes on (another resident rates another case); then feedback's clock is set back to
    # Monday 28 at 16:00. The triage refuses: deadline missed. The board said "due today".
    settings, clock, sender, _, director = on_sunday(settings)
    async with center(settings, clock, sender, SUNDAY) as (intake, feedback):
        case_id, reviewed = await bad_review(intake, feedback, sender,
                                             "2026-12-20T10:00:00+08:00")
        rectification_id = reviewed["rectification_id"]
        await another_rating_on_tuesday_29(intake, feedback, sender, clock, director)
        clock.set(datetime.fromisoformat("2026-12-28T16:00:00+08:00"))
        r = await feedback.post(f"/rectifications/{rectification_id}/triage",
                                json={"track": "explain"}, headers={**headers(key()), **director})
        assert r.status_code == 409, r.text
        assert r.json()["error"]["details"]["rule"] == "deadline_missed"
        board = (await feedback.get("/rectifications", headers=director)).json()
        assert (board["as_of"], board["open"], board["overdue"]) == ("2026-12-29", 1, 1)
        assert [i["overdue"] for i in board["items"]] == [True]
        overdue = (await feedback.get("/rectifications", params={"status": "overdue"},
                                      headers=director)).json()
        assert [i["rectification_id"] for i in overdue["items"]] == [rectification_id]
        one = await feedback.get(f"/rectifications/{rectification_id}", headers=director)
        assert one.json()["overdue"] is True
        case = await feedback.get(f"/cases/{case_id}/feedback", headers=director)
        assert [r["overdue"] for r in case.json()["rectifications"]] == [True]
        # A day given is the day asked: on Monday 28 it was due that day, not overdue.
        board = (await feedback.get("/rectifications", params={"as_of": "2026-12-28"},
                                    headers=director)).json()
        assert (board["as_of"], board["overdue"]) == ("2026-12-28", 0)


@dataclass
class ReviewedOnMonday28:
    """A bad review on Monday 28 December 2026, due Tuesday 5 January 2027 (29-31, 4, 5: a
    provisional year), in a center whose holidays file is ``holidays`` (empty so far)."""
    settings: Settings
    holidays: Path
    clock: Any
    sender: Any
    director: dict[str, str]
    intake: Any
    feedback: Any

    @contextlib.asynccontextmanager
    async def store_takes_no_write(self) -> AsyncIterator[None]:
        """Feedback's events table locked by another session until the block ends: no write
        is taken (within WRITE_TIMEOUT_S or at all); the lock let go, they are again."""
        blocker = await asyncpg.connect(self.settings.database_url)
        try:
            async with blocker.transaction():
                await blocker.execute(f'LOCK TABLE "{self.settings.schema_for("feedback")}".'
                                      '"feedback_events" IN EXCLUSIVE MODE')
                yield
        finally:
            await blocker.close()

    def publish_2027_with_the_5th_off(self) -> None:
        """2027's schedule published (an illustrative one) with the 5th off."""
        self.holidays.write_text(json.dumps({"2027": {
            "source": "illustrative, not the State Council's",
            "holidays": ["2027-01-01..2027-01-03", "2027-01-05"], "workdays": []}}))


@contextlib.asynccontextmanager
async def reviewed_on_monday_28(settings: Settings, tmp_path: Path
                                ) -> AsyncIterator[ReviewedOnMonday28]:
    holidays = tmp_path / "holidays.json"
    holidays.write_text("{}")
    settings, clock, sender, _, director = on_sunday(settings)
    settings = settings.model_copy(update={"holidays_file": holidays})
    monday = datetime.fromisoformat("2026-12-28T10:05:00+08:00")
    clock.set(monday)
    async with center(settings, clock, sender, monday) as (intake, feedback):
        _, reviewed = await bad_review(intake, feedback, sender, "2026-12-28T10:00:00+08:00")
        assert (reviewed["deadline_on"], reviewed["basis"]) == ("2027-01-05", "provisional")
        yield ReviewedOnMonday28(settings, holidays, clock, sender, director, intake, feedback)


async def test_a_schedule_published_on_a_clock_set_back_moves_no_missed_deadline(
        settings: Settings, tmp_path: Path) -> None:
    # Reviewed on Monday 28 December 2026: due Tuesday 5 January 2027 (29-31, 4, 5), a
    # provisional year. On Thursday 7 January the center's day goes on (another resident
    # rates another case), nothing done about the review: missed. Feedback's clock is set
    # back to Monday 4 January, and 2027's schedule is published with the 5th off (an
    # illustrative one) and reloaded: counted again, Wednesday 6, and on the clock's 4th it
    # was not yet missed. Until calendar54 it moved to the 6th, so a rectification put right
    # on the 6th came out on time; the triage already refused it as missed.
    async with reviewed_on_monday_28(settings, tmp_path) as day:
        settings, clock, sender, intake, feedback = (day.settings, day.clock, day.sender,
                                                     day.intake, day.feedback)
        await another_rating_on_tuesday_29(intake, feedback, sender, clock, day.director,
                                           "2027-01-07")
        clock.set(datetime.fromisoformat("2027-01-04T10:00:00+08:00"))
        day.publish_2027_with_the_5th_off()
        ops = bearer(settings, role="ops", center=None)
        r = await feedback.post("/ops/calendar/reload", headers=ops)
        assert r.status_code == 200, r.text
        assert r.json()["replanned"]["feedback"]["rectifications_checked"] == 1

        async def revised() -> list:
            return [e for e in await stream_envelopes(settings)
                    if e.type == "RectificationDeadlineRevised"]
        # Recorded by the reload, or, its write not taken in time on a loaded host
        # (``rectifications_failed``), by the service's own retry (replan56).
        await wait_until(revised, timeout=60, what="the rectification's revision")
        [said] = await revised()
        # Kept on its day, provisional; the published day said once.
        assert (said.payload["deadline_on"], said.payload["basis"],
                said.payload["published_deadline_on"]) == ("2027-01-05", "provisional",
                                                           "2027-01-06")

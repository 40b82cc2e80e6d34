"""A text that was due in the evening is not sent in the night because the scheduler came to it
late: feedback restarted at 22:30 (a deploy, a crash, a backlog of resolutions read late) and
found a survey due at 20:00 still unsent. It waits for the end of the quiet hours
(SURVEY_QUIET_FROM..UNTIL); the counter's tablet still asks at once, the resident is there."""

from __future__ import annotations

import uuid
from datetime import datetime, time
from typing import Any

from services.feedback.main import create_app
from shared.settings import Settings
from tests.feedback.helpers import Clock, History, KeptSender
from tests.feedback.test_feedback_loop import CENTER
from tests.support import running, wait_until

LATE = datetime.fromisoformat("2026-11-25T22:30:00+08:00")  # a Wednesday night


async def test_a_text_due_at_eight_in_the_evening_and_found_late_waits_for_the_morning(
        settings: Settings) -> None:
    # The scheduler ticks once at start and then only when the story says.
    settings = settings.model_copy(update={
        "feedback_tick_s": 3600.0, "survey_quiet_from": time(21, 0),
        "survey_quiet_until": time(8, 0)})
    clock, sender = Clock(LATE), KeptSender()
    app = create_app(settings, sender=sender, clock=clock)
    history = History(CENTER)
    resident = uuid.uuid4()
    by_text = history.case("2026-11-25T17:50:00+08:00", resident_id=resident,
                           channel="home_visit")
    history.resolved(by_text, "2026-11-25T18:00:00+08:00")  # texted at 20:00, not quiet
    at_the_counter = history.case("2026-11-25T22:20:00+08:00", resident_id=None)
    history.resolved(at_the_counter, "2026-11-25T22:25:00+08:00")

    async with running(app) as feedback:
        await history.take().publish(settings)

        async def survey_of(case_id: uuid.UUID) -> dict[str, Any] | None:
            r = await feedback.get(f"/cases/{case_id}/feedback")
            return r.json()["surveys"][0] if r.status_code == 200 else None

        async def both_requested() -> bool:
            return (await survey_of(by_text) is not None
                    and await survey_of(at_the_counter) is not None)

        await wait_until(both_requested, what="both surveys requested")
        sms = await survey_of(by_text)
        assert sms is not None and sms["channel"] == "sms"

        await app.state.scheduler.tick()  # 22:30: the tablet asks, the text waits
        assert sender.for_case(at_the_counter) is not None
        assert sender.for_case(by_text) is None, "a resident texted at 22:30"
        # ... and says when it really goes: at 08:00, not "20:00" (past, yet unsent).
        waiting = await survey_of(by_text)
        assert waiting is not None and waiting["status"] == "requested"
        assert datetime.fromisoformat(waiting["send_at"]) == datetime.fromisoformat(
            "2026-11-26T08:00:00+08:00")
        r = await feedback.get(f"/surveys/{waiting['survey_id']}")
        assert r.json()["send_at"] == waiting["send_at"]

        clock.set(datetime.fromisoformat("2026-11-26T07:59:00+08:00"))
        await app.state.scheduler.tick()
        assert sender.for_case(by_text) is None, "a resident texted at 07:59"

        clock.set(datetime.fromisoformat("2026-11-26T08:00:00+08:00"))
        await app.state.scheduler.tick()
        message = sender.for_case(by_text)
        assert message is not None and message.channel == "sms"

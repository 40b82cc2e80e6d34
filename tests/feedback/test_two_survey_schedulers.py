"""A replica cut off from PostgreSQL without a word (a network partition: no FIN, no RST) is
told so only by its next look at the lock, at most ``confirm_s`` (10 s) away since stop 51,
not at its next 0.25 s tick: until then its survey scheduler ticks on its pool beside the
replica PostgreSQL gave the lock to. Those ticks must do no harm: each survey is sent once,
whichever replica records it (the survey's version fences the other's write)."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter

from services.feedback.main import create_app
from services.feedback.scheduler import SurveyScheduler
from shared.settings import Settings
from tests.feedback.helpers import Clock, KeptSender
from tests.feedback.test_feedback_loop import START, center, fast, resolved_case
from tests.support import running, wait_until


async def test_two_replicas_ticking_at_once_send_each_resolved_residents_survey_once(
        settings: Settings) -> None:
    settings = fast(settings)
    clock, sender, kept = Clock(START), KeptSender(), KeptSender()
    async with center(settings, clock, sender) as (intake, _), \
            running(create_app(settings, sender=kept, clock=clock)) as other:
        # the other replica's scheduler as if it held the lock too: its own application
        # (its own committer), its own pool, ticking beside whichever replica leads
        state = other._transport.app.state  # type: ignore[attr-defined]
        twin = SurveyScheduler(state.pool, state.scheduler.feedback, kept, "https://s.test",
                               schema="redteam102-twin")
        ticks = 0

        async def ticking() -> None:
            nonlocal ticks
            while True:
                await twin.tick()
                ticks += 1
                await asyncio.sleep(0.01)

        beside = asyncio.create_task(ticking())
        try:
            cases = [await resolved_case(intake) for _ in range(8)]  # tablet, right away

            async def all_sent() -> bool:
                return {str(m.case_id) for m in sender.sent + kept.sent} >= set(cases)
            await wait_until(all_sent, what="every resolved case's survey sent")
            seen = ticks

            async def ticked_past() -> bool:  # a barrier: two more ticks of the twin
                return ticks >= seen + 2
            await wait_until(ticked_past, what="the twin ticking past the sends")
        finally:
            beside.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beside
        sends = Counter((m.survey_id, m.channel) for m in sender.sent + kept.sent)
        assert set(sends.values()) == {1}, sends

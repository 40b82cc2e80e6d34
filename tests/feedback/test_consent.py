"""Only residents who agreed are asked by text or phone; an erased resident is asked nothing.

Intake's ConsentChanged and ResidentErased travel by resident, its case events by case, so
they reach feedback in either order: a refusal known at the resolution withdraws the survey at
once, one that arrives later withdraws what is still open, and the scheduler looks again
before it sends anything (a revisit is requested by the supervisor, not by the consumer)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from services.feedback.main import create_app
from shared.contracts import Envelope
from shared.settings import Settings
from tests.feedback.helpers import Clock, History, KeptSender, key
from tests.feedback.test_feedback_loop import CENTER, fast
from tests.support import headers, running, stream_envelopes, wait_until

START = datetime.fromisoformat("2026-11-25T10:05:00+08:00")  # a Wednesday
MORNING, LATER = "2026-11-25T09:30:00+08:00", "2026-11-25T10:00:00+08:00"


async def test_no_text_or_call_without_consent_and_nothing_for_an_erased_resident(
        settings: Settings) -> None:
    settings = fast(settings)
    clock, sender = Clock(START), KeptSender()
    app = create_app(settings, sender=sender, clock=clock)
    history = History(CENTER)
    refuses, changes_mind, erased, at_the_counter = (uuid.uuid4() for _ in range(4))

    # Registered refusing contact and surveys; then a home visit (a text) and a counter visit.
    history.consent(refuses, MORNING, contact=False, surveys=False, reason="registration")
    by_text = history.case(MORNING, resident_id=refuses, channel="home_visit")
    tablet = history.case(MORNING, resident_id=refuses, channel="counter")
    # A phone case (a callback), refused only after the survey was requested.
    by_phone = history.case(MORNING, resident_id=changes_mind, channel="phone")
    # An Open311 case (a text) of a resident erased before it was sent; and one more after.
    open311 = history.case(MORNING, resident_id=erased, channel="open311")
    # At the counter, then no more surveys: the revisit after a bad review goes by text.
    counter = history.case(MORNING, resident_id=at_the_counter, channel="counter")
    for case_id in (by_text, tablet, by_phone, open311, counter):
        history.resolved(case_id, LATER)
    history.consent(at_the_counter, LATER, contact=True, surveys=False)

    async with running(app) as feedback:
        await history.take().publish(settings)

        async def surveyed(case_id: uuid.UUID) -> dict[str, Any] | None:
            r = await feedback.get(f"/cases/{case_id}/feedback")
            return r.json()["surveys"][0] if r.status_code == 200 else None

        async def status_of(case_id: uuid.UUID, status: str) -> bool:
            survey = await surveyed(case_id)
            return survey is not None and survey["status"] == status

        for case_id, status in ((by_text, "withdrawn"), (tablet, "sent"), (counter, "sent"),
                                (by_phone, "requested"), (open311, "requested")):
            await wait_until(lambda c=case_id, s=status: status_of(c, s),
                             what=f"the survey of {case_id} {status}")

        # Later the same morning: a refusal by phone, an erasure, and another case of the
        # erased resident (no one to ask: no survey at all).
        history.consent(changes_mind, "2026-11-25T10:01:00+08:00", contact=True,
                        surveys=False)
        history.erased(erased, "2026-11-25T10:02:00+08:00")
        after_erasure = history.case("2026-11-25T10:03:00+08:00", resident_id=erased,
                                     channel="home_visit")
        history.resolved(after_erasure, "2026-11-25T10:03:30+08:00")
        marker = history.case("2026-11-25T10:04:00+08:00", resident_id=None)
        history.resolved(marker, "2026-11-25T10:04:30+08:00")
        await history.take().publish(settings)
        for case_id in (by_phone, open311):
            await wait_until(lambda c=case_id: status_of(c, "withdrawn"),
                             what=f"the survey of {case_id} withdrawn")
        await wait_until(lambda: status_of(marker, "sent"), what="the marker case's survey")
        assert await surveyed(after_erasure) is None, "an erased resident is asked nothing"

        # The tablet survey is answered badly; the outcome asks again, by text: not this one.
        message = sender.for_survey((await surveyed(counter))["survey_id"])  # type: ignore[index]
        assert message is not None
        r = await feedback.post(f"/surveys/{message.survey_id}/rating", headers=headers(key()),
                                json={"token": message.token, "level": "dissatisfied"})
        assert r.status_code == 200, r.text
        opened = await _first(settings, "RectificationOpened")
        r = await feedback.post(f"/rectifications/{opened.aggregate_id}/outcome",
                                headers=headers(key()),
                                json={"outcome": "explained", "actions": "重新解释了政策"})
        assert r.status_code == 200, r.text
        revisit = r.json()["revisit_survey_id"]

        # Past every delay: the scheduler sends what may be sent, withdraws the revisit.
        clock.advance(hours=3)
        await app.state.scheduler.tick()

        async def revisit_withdrawn() -> bool:
            r = await feedback.get(f"/surveys/{revisit}")
            return r.status_code == 200 and r.json()["status"] == "withdrawn"

        await wait_until(revisit_withdrawn, what="the revisit withdrawn: no consent")
        # The tablet's survey of the resident who refused: someone else came to the window
        # since (the cases of 10:03 and 10:04), so it is asked where they are, by text, which
        # they refused: withdrawn too, counted as no consent (they never saw it).
        await wait_until(lambda: status_of(tablet, "withdrawn"),
                         what="the tablet's survey asked by text, withdrawn: no consent")
        await app.state.scheduler.tick()
        sent = sorted((str(m.case_id), m.channel) for m in sender.sent)
        # The marker's resident (nobody on file) left the window without rating: a clerk's
        # call, once its tablet time was over.
        assert sent == sorted([(str(tablet), "tablet"), (str(counter), "tablet"),
                               (str(marker), "tablet"), (str(marker), "phone_callback")]), (
            "the counter's tablet asks a resident who is there; no text, no call without "
            "consent, nothing to an erased resident")

        async def four_without_consent() -> bool:
            r = await feedback.get("/figures", params={"period": "all", "center_id": CENTER})
            return r.json()["rows"][0]["no_consent"] == 4
        # the text, the callback, the revisit and the tablet's survey asked again by text
        await wait_until(four_without_consent, what="four surveys not sent: no consent")
        r = await feedback.get("/figures", params={"period": "all", "center_id": CENTER})
        (row,) = r.json()["rows"]
        assert row["response_rate"] == {"numerator": 1, "denominator": 1, "rate": 1.0}, (
            "not asked is not a no answer")

    withdrawn = {e.aggregate_id: e for e in await stream_envelopes(settings)
                 if e.type == "SurveyWithdrawn"}
    because = sorted(e.payload["because"] for e in withdrawn.values())
    assert because == ["erased", "no_consent", "no_consent", "no_consent", "no_consent"]
    assert all(e.actor.startswith("system:") for e in withdrawn.values())


async def _first(settings: Settings, type_: str) -> Envelope:
    found: list[Envelope] = []

    async def there() -> bool:
        found[:] = [e for e in await stream_envelopes(settings) if e.type == type_]
        return bool(found)

    await wait_until(there, what=type_)
    return found[0]

"""One resolution survey a case a center day. A clerk who saw a bad rating coming reopened the
case before the resident pressed it (the survey withdrawn: counted nowhere) and resolved it
again for a fresh survey on the tablet, as often as they liked. Now a survey put before the
resident (at the window, or sent by text or a call) stays open when staff reopen the case that
day, and resolving it again that day asks nothing new: the day's survey is the one rated. The
resident's own "not solved" still gets them asked anew (``test_not_solved``); a reopening on a
later day, or before the text went, withdraws as before."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from datetime import datetime, time, timedelta

import httpx
import pytest

from services.feedback.main import create_app
from services.feedback.sending import SurveyMessage
from shared.settings import Settings
from tests.feedback.helpers import Clock, History, KeptSender, key
from tests.feedback.test_feedback_loop import CENTER, center, fast, resolved_case
from tests.support import as_resident, headers, running, stream_envelopes, wait_until

SUNDAY = "2026-12-20T10:30:00+08:00"  # Sunday 20 December 2026, a weekend service day


async def _post(intake: httpx.AsyncClient, case_id: str, step: str, at: str,
                **body: object) -> None:
    r = await intake.post(f"/cases/{case_id}/{step}", json={**body, "occurred_at": at},
                          headers=headers(key()))
    assert r.status_code == 200, r.text


async def test_reopened_and_resolved_again_the_same_day_the_first_survey_is_the_one_rated(
        settings: Settings) -> None:
    settings = fast(settings)
    sender = KeptSender()
    clock = Clock(datetime.fromisoformat("2026-12-20T10:31:00+08:00"))
    async with center(settings, clock, sender) as (intake, feedback):
        case_id = await resolved_case(intake, at=SUNDAY)
        await wait_until(lambda: _sent_for(sender, case_id, 1), what="the tablet survey")
        [first] = [m for m in sender.sent if str(m.case_id) == case_id]
        assert first.channel == "tablet"
        # The resident frowns at the tablet; the clerk reopens and resolves again.
        clock.advance(minutes=8)
        await _post(intake, case_id, "reopen", "2026-12-20T10:32:00+08:00",
                    reason="再核对一下材料")
        await _post(intake, case_id, "resolve", "2026-12-20T10:38:00+08:00",
                    outcome="resolved", explanation="当场办结", emotion_defused=True)
        # The resident rates the day's survey, still on the tablet.
        await _rated_badly(feedback, first)
        # A barrier: another case resolved after it has its survey (the window's next
        # resident: the first survey's tablet link has done its work).
        later = await resolved_case(intake, at="2026-12-20T10:39:00+08:00")
        await wait_until(lambda: _sent_for(sender, later, 1), what="the later case's survey")
        assert [m.survey_id for m in sender.sent if str(m.case_id) == case_id] == [
            first.survey_id], "no fresh survey the same day"
        assert not [e for e in await stream_envelopes(settings)
                    if e.type == "SurveyWithdrawn"], "the day's survey was not withdrawn"


async def _rated_badly(feedback: httpx.AsyncClient, message: SurveyMessage) -> None:
    """The resident answers the survey they were sent: very dissatisfied (accepted)."""
    r = await as_resident(feedback).post(
        f"/surveys/{message.survey_id}/rating", headers=headers(key()),
        json={"token": message.token, "level": "very_dissatisfied"})
    assert r.status_code == 200, r.text


async def _sent_for(sender: KeptSender, case_id: str, n: int) -> bool:
    return len([m for m in sender.sent if str(m.case_id) == case_id]) >= n


async def test_a_text_survey_sent_stands_through_a_reopening_that_day_one_not_sent_is_withdrawn(
        settings: Settings) -> None:
    """Two home-visit cases resolved on Sunday 20 December at 10:30, each texted at 12:30
    (``SURVEY_DELAY_MINUTES``). The clerk reopened the first after its text had gone, and
    resolved it again: the text was withdrawn (the resident's answer refused, counted
    nowhere) and a fresh one outnumbered it. Now a text or a call put to the resident stands
    through a staff reopening that day, and resolving again that day asks nothing new, as
    the tablet's survey. The second, reopened at 11:00 before its text went, asked nothing
    yet: withdrawn as before, and resolved again at 12:40 it is asked anew."""
    settings = fast(settings)
    sender = KeptSender()
    clock = Clock(datetime.fromisoformat("2026-12-20T10:31:00+08:00"))
    async with center(settings, clock, sender) as (intake, feedback):
        sent, waiting = [await resolved_case(intake, channel="home_visit", at=SUNDAY)
                         for _ in range(2)]
        clock.advance(minutes=30)
        await _post(intake, waiting, "reopen", "2026-12-20T11:00:00+08:00", reason="材料缺一份")

        async def withdrawn() -> list[str]:
            return [str(e.case_id) for e in await stream_envelopes(settings)
                    if e.type == "SurveyWithdrawn"]

        async def waiting_withdrawn() -> bool:
            return await withdrawn() == [waiting]

        await wait_until(waiting_withdrawn, what="the unsent text withdrawn")
        clock.advance(minutes=90)  # 12:31: the first case's text goes
        await wait_until(lambda: _sent_for(sender, sent, 1), what="the text")
        [first] = [m for m in sender.sent if str(m.case_id) == sent]
        assert first.channel == "sms"
        clock.advance(minutes=10)
        await _post(intake, sent, "reopen", "2026-12-20T12:35:00+08:00", reason="再核对一下")
        for case_id in (sent, waiting):
            await _post(intake, case_id, "resolve", "2026-12-20T12:40:00+08:00",
                        outcome="resolved", explanation="已办结", emotion_defused=True)
        await _rated_badly(feedback, first)
        # A barrier: the second case's new text goes at 14:40, after both resolutions.
        clock.advance(hours=2)
        await wait_until(lambda: _sent_for(sender, waiting, 1), what="the second case's text")
        assert [m.survey_id for m in sender.sent if str(m.case_id) == sent] == [
            first.survey_id], "no fresh text the same day"
        assert await withdrawn() == [waiting], "the text sent was not withdrawn"


async def test_a_text_the_resident_never_agreed_to_holds_no_day_once_they_agree(
        settings: Settings) -> None:
    """A resident who refused texts: their home-visit case, resolved on Sunday 20 December
    at 10:30, gets a text withdrawn at once (no consent: never put before them). At 13:00
    they agree to be asked; the clerk reopens at 13:10 and resolves again at 13:20. The
    withdrawn text held the day as if it had been sent at 12:30, and the resolution asked
    nothing: only a survey that was or will be put before the resident holds the day."""
    settings = fast(settings)
    clock, sender = Clock(datetime.fromisoformat("2026-12-20T13:30:00+08:00")), KeptSender()
    app = create_app(settings, sender=sender, clock=clock)
    history = History(CENTER)
    resident = uuid.uuid4()
    history.consent(resident, "2026-12-20T09:00:00+08:00", contact=True, surveys=False,
                    reason="registration")
    case_id = history.case("2026-12-20T09:30:00+08:00", resident_id=resident,
                           channel="home_visit")
    history.resolved(case_id, SUNDAY)
    async with running(app) as feedback:
        async def surveys() -> list[dict[str, object]]:
            r = await feedback.get(f"/cases/{case_id}/feedback")
            return r.json()["surveys"] if r.status_code == 200 else []

        async def first_withdrawn() -> bool:
            return [s["status"] for s in await surveys()] == ["withdrawn"]

        await history.publish_new(settings)
        await wait_until(first_withdrawn, what="the text withdrawn at once: no consent")
        history.consent(resident, "2026-12-20T13:00:00+08:00", contact=True, surveys=True)
        history.step(case_id, "CaseReopened", "2026-12-20T13:10:00+08:00", reason="再核对一下")
        history.resolved(case_id, "2026-12-20T13:20:00+08:00")
        await history.publish_new(settings)

        async def asked_anew() -> bool:
            return sorted(str(s["status"]) for s in await surveys()) == ["requested",
                                                                         "withdrawn"]

        await wait_until(asked_anew, what="the second resolution's text, now agreed to")


@pytest.mark.parametrize("read_together", [False, True])
async def test_a_text_due_but_not_yet_sent_is_withdrawn_by_a_reopening_and_asked_anew(
        settings: Settings, read_together: bool) -> None:
    """A home-visit case resolved on Sunday 20 December at 10:30: its text was to go at
    12:30, but the scheduler was down (its clock still reads 10:31) and nothing went. The
    clerk reopens the case at 12:45 and resolves it again at 12:50. The text's planned send
    moment had passed, so the reopening took it as put before the resident and left it
    standing, to go out about a case reopened since; now the survey itself says it never
    went: withdrawn, and the second resolution asks anew (``read_together``: the reopening
    and the resolution read in one batch, feedback restarted after both)."""
    settings = fast(settings)
    clock, sender = Clock(datetime.fromisoformat("2026-12-20T10:31:00+08:00")), KeptSender()
    history = History(CENTER)
    case_id = history.case("2026-12-20T09:30:00+08:00", resident_id=uuid.uuid4(),
                           channel="home_visit")
    history.resolved(case_id, SUNDAY)

    async def statuses(feedback: httpx.AsyncClient) -> list[str]:
        r = await feedback.get(f"/cases/{case_id}/feedback")
        return sorted(str(s["status"]) for s in r.json()["surveys"]) if (
            r.status_code == 200) else []

    async with running(create_app(settings, sender=sender, clock=clock)) as feedback:
        await history.publish_new(settings)
        await wait_until(lambda: _is(statuses(feedback), ["requested"]),
                         what="the text, waiting")
        history.step(case_id, "CaseReopened", "2026-12-20T12:45:00+08:00", reason="再核对一下")
        history.resolved(case_id, "2026-12-20T12:50:00+08:00")
        if not read_together:
            await history.publish_new(settings)
            await wait_until(lambda: _is(statuses(feedback), ["requested", "withdrawn"]),
                             what="the unsent text withdrawn, a new one asked")
    if read_together:
        await history.publish_new(settings)
        async with running(create_app(settings, sender=sender, clock=clock)) as feedback:
            await wait_until(lambda: _is(statuses(feedback), ["requested", "withdrawn"]),
                             what="the unsent text withdrawn, a new one asked")
    assert not sender.sent, "nothing went"


async def _is(found: Awaitable[list[str]], wanted: list[str]) -> bool:
    return await found == wanted


async def test_a_text_withdrawn_unsent_as_consent_was_taken_back_holds_no_day_at_a_reopening(
        settings: Settings) -> None:
    """A home-visit case resolved on Sunday 20 December at 10:30, its text due at 12:30; the
    resident takes back their consent at 11:00 (the text withdrawn, never sent). At 12:40 the
    clerk reopens the case, at 13:00 the resident agrees again, at 13:20 the case is resolved
    again. Before, the withdrawn text held the day (the reopening took it as put before the
    resident) and the resolution asked nothing: they were never asked about the case."""
    settings = fast(settings)
    clock, sender = Clock(datetime.fromisoformat("2026-12-20T10:31:00+08:00")), KeptSender()
    history, resident = History(CENTER), uuid.uuid4()
    history.consent(resident, "2026-12-20T09:00:00+08:00", contact=True, surveys=True)
    case_id = history.case("2026-12-20T09:30:00+08:00", resident_id=resident,
                           channel="home_visit")
    history.resolved(case_id, SUNDAY)

    async with running(create_app(settings, sender=sender, clock=clock)) as feedback:
        await history.publish_new(settings)
        await wait_until(lambda: _is(_statuses(feedback, case_id), ["requested"]),
                         what="the text, waiting")
        history.consent(resident, "2026-12-20T11:00:00+08:00", contact=True, surveys=False)
        await history.publish_new(settings)
        await wait_until(lambda: _is(_statuses(feedback, case_id), ["withdrawn"]),
                         what="the text withdrawn: consent taken back")
        history.step(case_id, "CaseReopened", "2026-12-20T12:40:00+08:00", reason="再核对一下")
        history.consent(resident, "2026-12-20T13:00:00+08:00", contact=True, surveys=True)
        history.resolved(case_id, "2026-12-20T13:20:00+08:00")
        await history.publish_new(settings)
        await wait_until(lambda: _is(_statuses(feedback, case_id), ["requested", "withdrawn"]),
                         what="the second resolution's text, agreed to again")
    assert not sender.sent, "nothing went"


async def _statuses(feedback: httpx.AsyncClient, case_id: str) -> list[str]:
    """The statuses of the case's surveys, sorted (none while feedback does not know it)."""
    r = await feedback.get(f"/cases/{case_id}/feedback")
    return sorted(str(s["status"]) for s in r.json()["surveys"]) if r.status_code == 200 else []


@pytest.mark.parametrize(("resolved", "reopened", "again", "reopened_again"), [
    # Sunday 20 December 2026: the text due at 12:30, the second reopening that afternoon.
    ("2026-12-20T10:30", "2026-12-20T12:45", "2026-12-20T12:50", "2026-12-20T12:55"),
    # New Year's Eve, Shanghai: the text due at 23:30, reopened at 23:40, resolved again at
    # 23:50 and reopened again past midnight, on New Year's Day (2027, provisional).
    ("2026-12-31T21:30", "2026-12-31T23:40", "2026-12-31T23:50", "2027-01-01T00:10"),
    # A year the holiday package does not know.
    ("2028-03-15T10:30", "2028-03-15T12:45", "2028-03-15T12:50", "2028-03-15T12:55"),
])
async def test_reopened_resolved_and_reopened_again_in_one_read_withdraws_both_unsent_texts(
        settings: Settings, resolved: str, reopened: str, again: str,
        reopened_again: str) -> None:
    """A home-visit case resolved at 10:30, its text due at 12:30 but not sent (the scheduler
    down). The clerk reopens it at 12:45, resolves it at 12:50 and reopens it again at 12:55,
    read by feedback in one batch: the first text is withdrawn unsent, the second resolution
    asks anew, and the second reopening withdraws that one too (unsent), so nothing asks the
    resident about a case that is open again. Before, the new text stood and went out about
    an open case. Resolved once more later, the case's survey is asked (no day held)."""
    settings = fast(settings).model_copy(update={  # quiet hours out of the evening's way
        "survey_quiet_from": time(3, 0), "survey_quiet_until": time(4, 0)})
    zone = "+08:00"
    clock = Clock(datetime.fromisoformat(resolved + zone) + timedelta(minutes=1))
    sender, history = KeptSender(), History(CENTER)
    case_id = history.case(resolved[:11] + "09:30:00" + zone, resident_id=uuid.uuid4(),
                           channel="home_visit")
    history.resolved(case_id, resolved + zone)
    history.step(case_id, "CaseReopened", reopened + zone, reason="再核对一下")
    history.resolved(case_id, again + zone)
    history.step(case_id, "CaseReopened", reopened_again + zone, reason="还要补材料")
    async with running(create_app(settings, sender=sender, clock=clock)):
        pass  # the stream and the consumers made; the steps then read in one batch
    await history.publish_new(settings)
    async with running(create_app(settings, sender=sender, clock=clock)) as feedback:
        await wait_until(lambda: _is(_statuses(feedback, case_id), ["withdrawn", "withdrawn"]),
                         what="both unsent texts withdrawn")
        last = datetime.fromisoformat(reopened_again + zone) + timedelta(minutes=5)
        history.resolved(case_id, last.isoformat())
        await history.publish_new(settings)
        await wait_until(lambda: _is(_statuses(feedback, case_id),
                                     ["requested", "withdrawn", "withdrawn"]),
                         what="the last resolution's survey asked")
    assert not sender.sent, "nothing went"


#: (the resolution at the window, the staff reopening on the paper slip, when the slip was typed
#: in: past OCCURRED_AT_GRACE_S, so intake gives the reopening ``judged_at``, a later day)
SLIPS = {
    "Sunday 20 December": ("2026-12-20T10:30:00+08:00", "2026-12-20T10:40:00+08:00",
                           "2026-12-24T10:45:00+08:00"),
    "New Year's Eve 23:30": ("2026-12-31T23:30:00+08:00", "2026-12-31T23:45:00+08:00",
                             "2027-01-04T00:30:00+08:00"),
}


@pytest.mark.parametrize("story", list(SLIPS))
async def test_a_staff_reopening_typed_in_from_the_slip_of_the_surveys_day_leaves_it_standing(
        settings: Settings, story: str) -> None:
    """The case resolved at the window, its survey on the tablet before the resident; the
    clerk reopened it ten minutes later on a paper slip, typed in four days on (intake gives
    the reopening ``CaseReopened.judged_at``: its clock less the grace, a later day, for
    follow-up's planning). It was reopened the day the survey was put before the resident:
    the survey stands. Judged by that later day, the reopening withdrew the survey put before
    the resident (counted nowhere), as a reopening on a later day does."""
    resolved_at, slip, typed = (datetime.fromisoformat(s) for s in SLIPS[story])
    settings = fast(settings)
    sender = KeptSender()
    clock = Clock(resolved_at + timedelta(minutes=1))
    async with center(settings, clock, sender) as (intake, _):
        case_id = await resolved_case(intake, at=resolved_at.isoformat())
        await wait_until(lambda: _sent_for(sender, case_id, 1), what="the tablet survey")
        clock.advance(typed - clock.now())
        await _post(intake, case_id, "reopen", slip.isoformat(), reason="再核对一下材料")
        # A barrier: the window's next resident, resolved after it, has their survey.
        later = await resolved_case(intake, at=typed.isoformat())
        await wait_until(lambda: _sent_for(sender, later, 1), what="the later case's survey")
        envelopes = await stream_envelopes(settings)
        [reopened] = [e for e in envelopes if e.type == "CaseReopened"]
        assert reopened.payload["judged_at"] is not None, "typed in past the grace"
        assert not [e for e in envelopes if e.type == "SurveyWithdrawn"], \
            "the survey put before the resident the day it was reopened stands"

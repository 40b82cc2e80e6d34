"""The idle rating pad shows the clerk now at the window. A revisit survey (the supervisor's
outcome of a bad review, or the unanswered revisit asked again) names the clerk who was
reviewed, days ago perhaps, and is requested when the supervisor acts, from the board: it says
nothing of who sits at the window now, so it does not put the reviewed clerk's 工号 back on
the pad in front of the next clerk's resident."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import httpx

from services.feedback.main import create_app
from shared.settings import Settings
from tests.feedback.helpers import Clock, History, KeptSender, key
from tests.feedback.test_consent import _first
from tests.feedback.test_feedback_loop import CENTER, fast
from tests.support import headers, running, wait_until

WINDOW = "window-3"  # History's cases are opened there


def the_window(now: str, last_resolved: str) -> tuple[Clock, KeptSender, History, uuid.UUID]:
    """Feedback's clock at ``now``; clerk-017's last case at the window, resolved at
    ``last_resolved`` (opened ten minutes before)."""
    resolved = datetime.fromisoformat(last_resolved)
    history = History(CENTER)
    last = history.case((resolved - timedelta(minutes=10)).isoformat(),
                         resident_id=uuid.uuid4(), clerk_id="clerk-017")
    history.resolved(last, last_resolved)
    return Clock(datetime.fromisoformat(now)), KeptSender(), history, last


def sat_down(history: History, at: str, clerk: str = "clerk-017") -> None:
    """A resident's trip to window-3 (a first one: it names no case)."""
    trip = uuid.uuid4()
    history.add("intake", "VisitRecorded", at, {
        "visit_id": str(trip), "center_id": CENTER, "counter_id": WINDOW, "clerk_id": clerk,
        "channel": "counter"}, case_id=trip, aggregate_id=trip, actor=clerk)


async def clerk_on_the_pad(feedback: httpx.AsyncClient) -> Callable[[str], Awaitable[bool]]:
    """Pairs a pad at the window; returns whether it shows a clerk."""
    made = await feedback.post("/pads/pairings", json={"counter_id": WINDOW})
    assert made.status_code == 201, made.text
    paired = await feedback.post("/pads/pair", json={"code": made.json()["code"]})
    assert paired.status_code == 200, paired.text
    pad = {"X-Pad-Token": paired.json()["pad_token"]}

    async def shows(clerk: str) -> bool:
        r = await feedback.get("/pads/next", headers=pad)
        assert r.status_code == 200, r.text
        return r.json()["clerk_id"] == clerk

    return shows


async def test_a_revisit_of_the_mornings_clerk_leaves_the_afternoons_clerk_on_the_pad(
        settings: Settings) -> None:
    settings = fast(settings)
    clock, sender, history, morning = the_window("2026-11-25T10:00:00+08:00",
                                                 "2026-11-25T09:55:00+08:00")
    async with running(create_app(settings, sender=sender, clock=clock)) as feedback:
        shows = await clerk_on_the_pad(feedback)
        # The morning: clerk-017's resident rates the visit badly on the pad.
        await history.take().publish(settings)
        await wait_until(lambda: _sent(sender, morning), what="the morning's survey on the pad")
        message = sender.for_case(morning)
        assert message is not None
        r = await feedback.post(f"/surveys/{message.survey_id}/rating", headers=headers(key()),
                                json={"token": message.token, "level": "dissatisfied"})
        assert r.status_code == 200, r.text
        opened = await _first(settings, "RectificationOpened")
        assert await shows("clerk-017")

        # 13:00, the shift changes: clerk-018 opens a case for the resident at the window.
        clock.set(datetime.fromisoformat("2026-11-25T13:00:00+08:00"))
        history.case("2026-11-25T13:00:00+08:00", resident_id=uuid.uuid4(),
                     clerk_id="clerk-018")
        await history.take().publish(settings)
        await wait_until(lambda: shows("clerk-018"), what="clerk-018 on the pad")

        # 13:30, on the board: the supervisor records what was done about the morning's review;
        # the revisit asks the morning's resident again, about clerk-017.
        clock.set(datetime.fromisoformat("2026-11-25T13:30:00+08:00"))
        r = await feedback.post(f"/rectifications/{opened.aggregate_id}/outcome",
                                headers=headers(key()),
                                json={"outcome": "explained", "actions": "重新解释了政策"})
        assert r.status_code == 200, r.text
        revisit = r.json()["revisit_survey_id"]

        async def revisit_seen() -> bool:
            return (await feedback.get(f"/surveys/{revisit}")).status_code == 200

        await wait_until(revisit_seen, what="the revisit survey in the read model")
        assert await shows("clerk-018"), (
            "the revisit of the morning's review put clerk-017 back on the afternoon's pad")


async def _sent(sender: KeptSender, case_id: uuid.UUID) -> bool:
    return sender.for_case(case_id) is not None


async def _shown_sent(feedback: httpx.AsyncClient, sender: KeptSender,
                      case_id: uuid.UUID) -> bool:
    """The case's survey sent, and the read model the pad reads saying so (the sender is
    called before the view applies ``SurveySent``)."""
    message = sender.for_case(case_id)
    if message is None:
        return False
    r = await feedback.get(f"/surveys/{message.survey_id}")
    return r.status_code == 200 and r.json()["status"] == "sent"


async def test_after_a_shift_change_read_late_the_pad_shows_the_clerk_now_at_the_window(
        settings: Settings) -> None:
    """Feedback reads the window's day a few minutes late (restarted, behind): the morning
    clerk's last resolution (13:59:50) and the afternoon clerk's first case (14:00) reach it
    at 14:05. The survey is compared with the case by the window's own moments (the tablet
    asks at the resolution), not by when feedback got round to requesting it."""
    settings = fast(settings)
    clock, sender, history, last = the_window("2026-11-25T14:05:00+08:00",
                                              "2026-11-25T13:59:50+08:00")
    history.case("2026-11-25T14:00:00+08:00", resident_id=uuid.uuid4(), clerk_id="clerk-018")
    async with running(create_app(settings, sender=sender, clock=clock)) as feedback:
        shows = await clerk_on_the_pad(feedback)
        await history.take().publish(settings)
        await wait_until(lambda: _sent(sender, last), what="the last survey of the morning")
        await wait_until(lambda: shows("clerk-018"), what="clerk-018 now at the window")


async def test_read_an_hour_late_the_pad_offers_no_survey_of_a_resident_who_has_left(
        settings: Settings) -> None:
    """Feedback was down from 09:00 and reads the window's morning at 10:40. Clerk-017's
    resident of 09:30 left long ago; the resident at the window now came at 10:35. The pad
    offered the 09:30 survey to them (it was sent a moment ago), and they rated a visit not
    theirs. The pad asks about the window's latest resolution only, while no case has been
    opened there since (the window's own moments: its clock may be off feedback's)."""
    settings = fast(settings)
    clock, sender, history, gone = the_window("2026-11-25T10:40:00+08:00",
                                              "2026-11-25T09:30:00+08:00")
    now_here = history.case("2026-11-25T10:35:00+08:00", resident_id=uuid.uuid4(),
                            clerk_id="clerk-017")
    async with running(create_app(settings, sender=sender, clock=clock)) as feedback:
        made = await feedback.post("/pads/pairings", json={"counter_id": WINDOW})
        paired = await feedback.post("/pads/pair", json={"code": made.json()["code"]})
        pad = {"X-Pad-Token": paired.json()["pad_token"]}
        await history.take().publish(settings)
        await wait_until(lambda: _shown_sent(feedback, sender, gone),
                         what="the 09:30 survey sent at 10:40")
        r = await feedback.get("/pads/next", headers=pad)
        assert r.status_code == 200, r.text
        assert r.json()["survey"] is None, "the pad offered the 09:30 resident's survey"

        # 10:39: the resident at the window is served; feedback reads it with a backlog of the
        # morning (a 10:33 resolution too): the pad asks them about their own visit.
        before = history.case("2026-11-25T10:15:00+08:00", resident_id=uuid.uuid4(),
                              clerk_id="clerk-017")
        history.resolved(before, "2026-11-25T10:33:00+08:00")
        history.resolved(now_here, "2026-11-25T10:39:00+08:00")
        await history.take().publish(settings)
        await wait_until(lambda: _shown_sent(feedback, sender, now_here),
                         what="the 10:39 survey")
        await wait_until(lambda: _shown_sent(feedback, sender, before), what="the 10:33 survey")
        mine = sender.for_case(now_here)
        assert mine is not None
        r = await feedback.get("/pads/next", headers=pad)
        assert r.json()["survey"]["survey_id"] == str(mine.survey_id), r.text


async def test_a_resident_back_about_another_case_is_not_offered_the_last_residents_survey(
        settings: Settings) -> None:
    """10:30: clerk-017's resident at window-3 is served and leaves without rating. 10:32: a
    resident comes back about a case opened last week at window-7 and sits down at window-3
    (a return trip, no new case opened here). The pad offered them the 10:30 survey: "no
    case opened since" did not see a trip; a trip about another case now ends the offer as a
    new case does."""
    settings = fast(settings)
    clock, sender, history, gone = the_window("2026-11-25T10:33:00+08:00",
                                              "2026-11-25T10:30:00+08:00")
    earlier = uuid.uuid4()
    history.add("intake", "CaseOpened", "2026-11-18T09:00:00+08:00", {
        "center_id": CENTER, "counter_id": "window-7", "clerk_id": "clerk-022",
        "channel": "counter", "service_item": "SA-HARDSHIP-SUBSIDY",
        "resident_id": str(uuid.uuid4())}, case_id=earlier, actor="clerk-022")
    async with running(create_app(settings, sender=sender, clock=clock)) as feedback:
        made = await feedback.post("/pads/pairings", json={"counter_id": WINDOW})
        paired = await feedback.post("/pads/pair", json={"code": made.json()["code"]})
        pad = {"X-Pad-Token": paired.json()["pad_token"]}
        await history.take().publish(settings)
        await wait_until(lambda: _sent(sender, gone), what="the 10:30 survey")

        async def offered() -> bool:
            r = await feedback.get("/pads/next", headers=pad)
            assert r.status_code == 200, r.text
            return r.json()["survey"] is not None
        await wait_until(offered, what="the 10:30 survey, before anyone else sat down")

        trip = uuid.uuid4()
        history.add("intake", "VisitRecorded", "2026-11-25T10:32:00+08:00", {
            "visit_id": str(trip), "center_id": CENTER, "counter_id": WINDOW,
            "clerk_id": "clerk-017", "channel": "counter", "case_id": str(earlier)},
            case_id=earlier, aggregate_id=trip, actor="clerk-017")
        await history.take().publish(settings)

        async def gone_from_the_pad() -> bool:
            return not await offered()
        await wait_until(gone_from_the_pad, what="the 10:30 survey no longer offered")


async def test_yesterdays_case_finished_in_the_back_office_leaves_todays_clerk_on_the_pad(
        settings: Settings) -> None:
    """Clerk-017 opened a case at window-3 yesterday afternoon; the documents came by post and
    the back office resolves it at 10:00 today, when clerk-018 has sat at window-3 since 09:00.
    The resident is at home, so the survey goes by SMS: it says nothing of who sits at the
    window. Before, every resolution's survey counted from when feedback requested it, and
    yesterday's clerk went back onto today's pad in front of clerk-018's residents."""
    settings = fast(settings)
    clock = Clock(datetime.fromisoformat("2026-11-25T10:05:00+08:00"))
    sender, history = KeptSender(), History(CENTER)
    yesterday = history.case("2026-11-24T16:30:00+08:00", resident_id=uuid.uuid4(),
                             clerk_id="clerk-017")
    history.case("2026-11-25T09:00:00+08:00", resident_id=uuid.uuid4(), clerk_id="clerk-018")
    history.resolved(yesterday, "2026-11-25T10:00:00+08:00")
    async with running(create_app(settings, sender=sender, clock=clock)) as feedback:
        shows = await clerk_on_the_pad(feedback)
        await history.take().publish(settings)

        async def asked_by_sms() -> bool:
            r = await feedback.get(f"/cases/{yesterday}/feedback")
            assert r.status_code in (200, 404), r.text  # 404: nothing asked yet
            return [s["channel"] for s in r.json().get("surveys", [])] == ["sms"]

        await wait_until(asked_by_sms, what="yesterday's case asked by SMS")
        assert await shows("clerk-018"), "yesterday's clerk is back on today's pad"


async def test_a_resident_back_at_the_same_window_is_shown_the_clerk_who_received_them(
        settings: Settings) -> None:
    """Clerk-017 opened the case at window-3 yesterday; today clerk-031 sits there, receives
    the resident back about it (a trip naming the case) and resolves it with them: the tablet
    asks them at window-3, under clerk-031's name. Before, only a trip to another window was
    taken for the trip's clerk; at the same window the resolution's survey, naming the case's
    first responder, put yesterday's clerk on the pad in front of the resident."""
    settings = fast(settings)
    clock = Clock(datetime.fromisoformat("2026-11-25T10:05:00+08:00"))
    sender, history = KeptSender(), History(CENTER)
    back = history.case("2026-11-24T16:30:00+08:00", resident_id=uuid.uuid4(),
                        clerk_id="clerk-017")
    visit = uuid.uuid4()
    history.add("intake", "VisitRecorded", "2026-11-25T09:40:00+08:00", {
        "visit_id": str(visit), "center_id": CENTER, "counter_id": WINDOW,
        "clerk_id": "clerk-031", "channel": "counter", "case_id": str(back)},
        case_id=back, aggregate_id=visit, actor="clerk-031")
    history.resolved(back, "2026-11-25T10:00:00+08:00")
    async with running(create_app(settings, sender=sender, clock=clock)) as feedback:
        shows = await clerk_on_the_pad(feedback)
        await history.take().publish(settings)
        await wait_until(lambda: _sent(sender, back), what="the survey on window-3's tablet")
        message = sender.for_case(back)
        assert message is not None and message.channel == "tablet", message
        assert await shows("clerk-031"), "yesterday's clerk on the pad of today's resident"


def a_family_at_the_window(day: str = "2026-11-25"
                           ) -> tuple[Clock, KeptSender, History, uuid.UUID, uuid.UUID]:
    """A mother and her son at window-3 on ``day``: a trip each (09:59, 10:03), a case each
    (10:00, 10:04), resolved 10:10 and 10:11; feedback's clock at 10:12. (clock, sender,
    history, the mother's case, the son's)"""
    clock = Clock(datetime.fromisoformat(f"{day}T10:12:00+08:00"))
    sender, history = KeptSender(), History(CENTER)
    sat_down(history, f"{day}T09:59:00+08:00")
    mother = history.case(f"{day}T10:00:00+08:00", resident_id=uuid.uuid4())
    sat_down(history, f"{day}T10:03:00+08:00")
    son = history.case(f"{day}T10:04:00+08:00", resident_id=uuid.uuid4())
    history.resolved(mother, f"{day}T10:10:00+08:00")
    history.resolved(son, f"{day}T10:11:00+08:00")
    return clock, sender, history, mother, son


async def test_a_family_served_together_is_asked_one_after_the_other_on_the_pad(
        settings: Settings) -> None:
    """A mother and her son sit down at window-3 together: clerk-017 looks each up and opens
    a case for each (10:00, 10:04: a trip each, as the counter app counts a person looked up)
    and resolves them at 10:10 and 10:11. The pad asks about the son's case; once he has
    rated it, his mother's is next. Before, the pad offered the window's latest resolution
    only: with the son's answered it offered nothing, and the mother was never asked (her
    survey waited unseen until it expired). The son's trip, after his mother's case was
    opened, is not the next resident's."""
    settings = fast(settings)
    clock, sender, history, mother, son = a_family_at_the_window()
    async with running(create_app(settings, sender=sender, clock=clock)) as feedback:
        made = await feedback.post("/pads/pairings", json={"counter_id": WINDOW})
        paired = await feedback.post("/pads/pair", json={"code": made.json()["code"]})
        pad = {"X-Pad-Token": paired.json()["pad_token"]}
        await history.take().publish(settings)
        for case_id in (mother, son):
            await wait_until(lambda c=case_id: _sent(sender, c), what="both surveys sent")
        hers, his = sender.for_case(mother), sender.for_case(son)
        assert hers is not None and his is not None

        async def offered() -> str | None:
            r = await feedback.get("/pads/next", headers=pad)
            assert r.status_code == 200, r.text
            survey = r.json()["survey"]
            return survey["survey_id"] if survey else None

        async def seen() -> bool:
            return await offered() is not None
        await wait_until(seen, what="a survey on the pad")
        assert await offered() == str(his.survey_id)
        r = await feedback.post(f"/surveys/{his.survey_id}/rating", headers=headers(key()),
                                json={"token": his.token, "level": "very_satisfied"})
        assert r.status_code == 200, r.text

        async def answered() -> bool:
            r = await feedback.get(f"/surveys/{his.survey_id}")
            return r.status_code == 200 and r.json()["status"] == "answered"
        await wait_until(answered, what="the son's answer in the read model")
        assert await offered() == str(hers.survey_id), "the mother was never asked"


async def test_a_case_finished_in_the_afternoon_is_not_offered_to_the_resident_then_at_the_window(
        settings: Settings) -> None:
    """09:00: a resident leaves their documents at window-3 and goes home. 15:50: another
    resident sits down there (their trip) and clerk-018 opens their case. 16:00: the back
    office resolves the morning's case: the same day, so its survey goes to window-3's tablet.
    The pad offered it to the resident sitting there since 15:50 ("no case opened since"
    looks only after the resolution), who rated a visit not theirs. Someone else sat down
    at the window after the resident was last there: they are not there."""
    settings = fast(settings)
    clock = Clock(datetime.fromisoformat("2026-11-25T16:02:00+08:00"))
    sender, history = KeptSender(), History(CENTER)
    morning = history.case("2026-11-25T09:00:00+08:00", resident_id=uuid.uuid4())
    now_here = history.case("2026-11-25T15:50:00+08:00", resident_id=uuid.uuid4(),
                            clerk_id="clerk-018")
    # Their trip, as the counter app records it for a resident it did not look up: as it
    # opens their case, a moment after the case's moment.
    sat_down(history, "2026-11-25T15:50:00.400+08:00", "clerk-018")
    async with running(create_app(settings, sender=sender, clock=clock)) as feedback:
        made = await feedback.post("/pads/pairings", json={"counter_id": WINDOW})
        paired = await feedback.post("/pads/pair", json={"code": made.json()["code"]})
        pad = {"X-Pad-Token": paired.json()["pad_token"]}
        last = await history.take().publish(settings)
        pool = feedback._transport.app.state.pool  # type: ignore[attr-defined]

        async def applied() -> bool:  # the trip: intake's follower is past it
            seq = await pool.fetchval("SELECT max(stream_seq) FROM consumer_progress"
                                      " WHERE consumer = 'feedback-intake'")
            return seq is not None and seq >= last
        await wait_until(applied, what="the 15:50 trip applied")
        history.resolved(morning, "2026-11-25T16:00:00+08:00")
        await history.take().publish(settings)
        await wait_until(lambda: _shown_sent(feedback, sender, morning),
                         what="the morning's survey on window-3's tablet")
        message = sender.for_case(morning)
        assert message is not None and message.channel == "tablet", message
        r = await feedback.get("/pads/next", headers=pad)
        assert r.status_code == 200, r.text
        assert r.json()["survey"] is None, "the pad offered the morning's survey at 16:02"

        # Their own case resolved at 16:01: the pad asks them about it (their trip, a moment
        # after their case was opened, is theirs).
        history.resolved(now_here, "2026-11-25T16:01:00+08:00")
        await history.take().publish(settings)
        await wait_until(lambda: _shown_sent(feedback, sender, now_here),
                         what="the 16:01 survey")
        mine = sender.for_case(now_here)
        assert mine is not None
        r = await feedback.get("/pads/next", headers=pad)
        assert r.json()["survey"]["survey_id"] == str(mine.survey_id), r.text

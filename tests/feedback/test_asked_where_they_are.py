"""A tablet survey the window can no longer offer its own resident is asked where the resident
is: by SMS, or by a clerk's call when nobody is on file, once, and counted once.

09:00: a resident leaves their documents at window-3 and goes home. 15:50: another resident
sits down there. 16:00: the back office resolves the morning's case, the same day, so its
survey goes to window-3's tablet; the rating pad rightly keeps it from the resident sitting
there (someone else came to the window since). Before, that was all: the morning's resident
was never asked, and the survey expired after seven days as "no answer", counted so. Nor is
a survey left unrated at a window where nobody sat down since: once the pad has shown it its
ten minutes, its resident is asked by text too.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, time, timedelta

import httpx
import pytest
from eventsourcing.application import AggregateNotFoundError

from services.feedback.domain import survey_id_for_resolution
from services.feedback.main import create_app
from services.feedback.scheduler import SETTLE, SurveyScheduler
from services.feedback.sending import SurveyMessage
from shared.analytics.rebuild import Rebuild
from shared.kernel.errors import RuleViolated
from shared.readmodels.readmodel import load_read_model
from shared.settings import Settings
from tests.feedback.helpers import Clock, History, KeptSender, key
from tests.feedback.test_feedback_loop import CENTER, fast
from tests.feedback.test_pad_clerk import WINDOW, _sent, a_family_at_the_window, sat_down
from tests.support import bearer, headers, running, wait_until

OTHER_CENTER = "SH-PD-ZHANGJIANG"


async def _pad(feedback: httpx.AsyncClient, **auth: str) -> dict[str, str]:
    """A rating pad paired at window-3 (of the caller's center)."""
    made = await feedback.post("/pads/pairings", json={"counter_id": WINDOW}, headers=auth)
    assert made.status_code == 201, made.text
    paired = await feedback.post("/pads/pair", json={"code": made.json()["code"]})
    assert paired.status_code == 200, paired.text
    return {"X-Pad-Token": paired.json()["pad_token"]}


async def _on_pad(feedback: httpx.AsyncClient, pad: dict[str, str]) -> str | None:
    r = await feedback.get("/pads/next", headers=pad)
    assert r.status_code == 200, r.text
    survey = r.json()["survey"]
    return survey["survey_id"] if survey else None


async def _survey(feedback: httpx.AsyncClient, survey_id: uuid.UUID | str) -> dict:
    r = await feedback.get(f"/surveys/{survey_id}")
    assert r.status_code == 200, r.text
    return r.json()


@contextlib.asynccontextmanager
async def _on_the_tablet(settings: Settings, opened: str, resolved: str, now: str
                         ) -> AsyncIterator[tuple[httpx.AsyncClient, Clock, KeptSender, History,
                                                  SurveyMessage]]:
    """Feedback at ``now`` (Shanghai), a case opened at window-3 at ``opened`` and resolved
    there at ``resolved``, once its survey went to the window's tablet (the message sent)."""
    clock = Clock(datetime.fromisoformat(now + ":00+08:00"))
    sender, history = KeptSender(), History(CENTER)
    case_id = history.case(opened + ":00+08:00", resident_id=uuid.uuid4())
    history.resolved(case_id, resolved + ":00+08:00")
    async with running(create_app(settings, sender=sender, clock=clock)) as feedback:
        await history.take().publish(settings)
        await wait_until(lambda: _sent(sender, case_id), what="the survey on the tablet")
        message = sender.for_case(case_id)
        assert message is not None and message.channel == "tablet"
        yield feedback, clock, sender, history, message


def _sent_to(sender: KeptSender, survey_id: uuid.UUID | str) -> list[str]:
    return [m.channel for m in sender.sent if str(m.survey_id) == str(survey_id)]


@pytest.mark.parametrize(("day", "other", "resolved", "texted"), [
    # A Wednesday: texted at 18:00, the delay after the resolution.
    ("2026-11-25", "15:50", "16:00", "2026-11-25T18:00:00+08:00"),
    # New Year's Eve, resolved at 23:30 Shanghai (15:30 UTC): not texted in the night, at
    # 08:00 on New Year's Day, in the next year.
    ("2026-12-31", "22:50", "23:30", "2027-01-01T08:00:00+08:00"),
    # A year the holiday package does not know.
    ("2027-03-10", "15:50", "16:00", "2027-03-10T18:00:00+08:00"),
])
async def test_a_case_finished_in_the_back_office_is_asked_where_its_resident_is(
        settings: Settings, day: str, other: str, resolved: str, texted: str) -> None:
    settings = fast(settings).model_copy(update={  # the center's quiet hours
        "survey_quiet_from": time(21, 0), "survey_quiet_until": time(8, 0)})
    at = f"{day}T{resolved}:00+08:00"
    clock = Clock(datetime.fromisoformat(at) + timedelta(minutes=2))
    sender, history = KeptSender(), History(CENTER)
    named, refused = uuid.uuid4(), uuid.uuid4()
    history.consent(refused, f"{day}T08:55:00+08:00", contact=True, surveys=False)
    home = history.case(f"{day}T09:00:00+08:00", resident_id=named)
    nobody = history.case(f"{day}T09:05:00+08:00", resident_id=None)
    declined = history.case(f"{day}T09:10:00+08:00", resident_id=refused)
    history.case(f"{day}T{other}:00+08:00", resident_id=uuid.uuid4(), clerk_id="clerk-018")
    sat_down(history, f"{day}T{other}:00.400+08:00", "clerk-018")
    async with running(create_app(settings, sender=sender, clock=clock)) as feedback:
        pad = await _pad(feedback)
        last = await history.take().publish(settings)
        app = feedback._transport.app  # type: ignore[attr-defined]
        pool = app.state.pool

        async def applied() -> bool:  # the other resident's trip: the follower is past it
            seq = await pool.fetchval("SELECT max(stream_seq) FROM consumer_progress"
                                      " WHERE consumer = 'feedback-intake'")
            return seq is not None and seq >= last
        await wait_until(applied, what="the other resident's trip applied")
        for case_id in (home, nobody, declined):
            history.resolved(case_id, at)
        await history.take().publish(settings)
        for case_id in (home, nobody, declined):
            await wait_until(lambda c=case_id: _sent(sender, c), what="the tablet's surveys")
        ids = {c: sender.for_case(c).survey_id for c in (home, nobody, declined)}  # type: ignore[union-attr]
        assert [m.channel for m in sender.sent] == ["tablet"] * 3
        assert await _on_pad(feedback, pad) is None, "offered to the resident sitting there"

        # Once the window has settled, each is asked where its resident is, timed as if it
        # had been asked there from the resolution (the delay, out of the quiet hours).
        clock.advance(SETTLE + timedelta(seconds=1))

        async def redirected() -> bool:
            channels = [(await _survey(feedback, i))["channel"] for i in ids.values()]
            return "tablet" not in channels
        await wait_until(redirected, what="the surveys asked where the residents are")
        for case_id, channel in ((home, "sms"), (nobody, "phone_callback"),
                                 (declined, "sms")):
            now = await _survey(feedback, ids[case_id])
            assert (now["channel"], now["status"]) == (channel, "requested"), now
        sms = await _survey(feedback, ids[home])
        assert datetime.fromisoformat(sms["send_at"]) == datetime.fromisoformat(texted), sms
        assert await _on_pad(feedback, pad) is None
        # Asked elsewhere, they say nothing of the window: the pad names the clerk there.
        r = await feedback.get("/pads/next", headers=pad)
        assert r.json()["clerk_id"] == "clerk-018", r.text

        # At that time it goes out: a text, a clerk's call; not to whoever refused texts.
        clock.set(datetime.fromisoformat(texted))
        await wait_until(lambda: _sent_twice(sender, ids[home], ids[nobody]),
                         what="the text and the call")

        async def withdrawn() -> bool:
            return (await _survey(feedback, ids[declined]))["status"] == "withdrawn"
        await wait_until(withdrawn, what="the text the resident refused, withdrawn")
        assert _sent_to(sender, ids[home]) == ["tablet", "sms"]
        assert _sent_to(sender, ids[nobody]) == ["tablet", "phone_callback"]
        assert _sent_to(sender, ids[declined]) == ["tablet"]

        # Once, across replicas and restarts: another scheduler (its memory empty) and the
        # command again find nothing to redirect.
        again = SurveyScheduler(pool, app.state.feedback, sender, "/s", schema="again")
        assert await again.redirect_from_windows(clock.now()) == 0
        with pytest.raises(RuleViolated):
            await app.state.feedback.redirect_survey(ids[home])

        # The resident answers the text: one survey, one answer, counted once.
        text = [m for m in sender.sent if m.survey_id == ids[home]][-1]
        r = await feedback.post(f"/surveys/{ids[home]}/rating", headers=headers(key()),
                                json={"token": text.token, "level": "satisfied"})
        assert r.status_code == 200, r.text

        async def counted() -> bool:
            rows = await pool.fetch("SELECT result FROM fig_surveys WHERE case_id = ANY($1)",
                                    [home, nobody, declined])
            return sorted(r["result"] or "" for r in rows) == ["", "answered", "no_consent"]
        await wait_until(counted, what="the figures: one row per survey")
        assert len(sender.sent) == 5

        # Rebuilt from the log, the survey views and the figures are the live ones.
        async def answered() -> bool:
            return (await _survey(feedback, ids[home]))["status"] == "answered"
        await wait_until(answered, what="the answer in the views")
        for ref in ("feedback", "feedback.figures"):
            async with Rebuild(settings, load_read_model(ref), batch_size=3) as rb:
                await rb.prepare()
                await rb.catch_up()
                assert (await rb.state())["skipped"] == 0, await rb.skipped()
                diff = await rb.diff()
                assert diff.same, (ref, diff)
                await rb.discard()


async def test_a_survey_the_sweep_meets_days_late_is_not_texted_about_an_old_visit(
        settings: Settings) -> None:
    """Feedback stopped from Sunday 20 December to Tuesday 22 December (or the upgrade that
    brought the idle window's rule came then): the family's surveys were shown on the pad on
    Sunday and left unrated. Found two days late, they are not texted about that visit, all
    at once with every other one of those days: they wait out their deadline as before."""
    settings = fast(settings)
    clock, sender, history, mother, son = a_family_at_the_window("2026-12-20")
    async with running(create_app(settings, sender=sender, clock=clock)) as feedback:
        await history.take().publish(settings)
        for case_id in (mother, son):
            await wait_until(lambda c=case_id: _sent(sender, c), what="both surveys sent")
        clock.set(datetime.fromisoformat("2026-12-22T09:00:00+08:00"))
        scheduler = feedback._transport.app.state.scheduler  # type: ignore[attr-defined]
        assert await scheduler.redirect_from_windows(clock.now()) == 0
        for case_id in (mother, son):
            survey = sender.for_case(case_id)
            assert survey is not None
            assert (await _survey(feedback, survey.survey_id))["channel"] == "tablet"
        assert [m.channel for m in sender.sent] == ["tablet", "tablet"]


async def _sent_twice(sender: KeptSender, *survey_ids: uuid.UUID) -> bool:
    return all(len(_sent_to(sender, i)) == 2 for i in survey_ids)


async def test_a_family_is_asked_on_the_pad_one_after_the_other_and_by_text_once_gone(
        settings: Settings) -> None:
    """A mother and her son, served together at window-3 (a trip each, 10:00 and 10:03;
    resolved 10:10 and 10:11). Minutes later both surveys still wait on the pad, one after
    the other: the son's trip is not someone else's. The son rates his; the mother leaves
    without rating hers, and nobody sits down at the window after them. Once the pad has
    shown her survey its ten minutes, she is asked by text, two hours after her resolution
    (好差评: whoever did not rate on the spot gets a text). Before, only someone else sitting
    down redirected a survey: at an idle window hers waited unseen for seven days and
    expired as no answer."""
    settings = fast(settings)
    clock, sender, history, mother, son = a_family_at_the_window()
    async with running(create_app(settings, sender=sender, clock=clock)) as feedback:
        pad = await _pad(feedback)
        await history.take().publish(settings)
        for case_id in (mother, son):
            await wait_until(lambda c=case_id: _sent(sender, c), what="both surveys sent")
        hers, his = sender.for_case(mother), sender.for_case(son)
        assert hers is not None and his is not None

        async def seen() -> bool:
            return await _on_pad(feedback, pad) is not None
        await wait_until(seen, what="a survey on the pad")
        # Past the settling minute the window is judged: both stay on the pad.
        clock.advance(SETTLE + timedelta(minutes=1))
        app = feedback._transport.app  # type: ignore[attr-defined]
        scheduler = app.state.scheduler
        assert await scheduler.redirect_from_windows(clock.now()) == 0
        assert await _on_pad(feedback, pad) == str(his.survey_id)
        r = await feedback.post(f"/surveys/{his.survey_id}/rating", headers=headers(key()),
                                json={"token": his.token, "level": "very_satisfied"})
        assert r.status_code == 200, r.text

        async def answered() -> bool:
            return (await _survey(feedback, his.survey_id))["status"] == "answered"
        await wait_until(answered, what="the son's answer in the read model")
        assert await _on_pad(feedback, pad) == str(hers.survey_id), "the mother was never asked"

        # Nine minutes after it was sent (10:12) the pad still shows hers: it stays.
        clock.set(datetime.fromisoformat("2026-11-25T10:21:00+08:00"))
        assert await scheduler.redirect_from_windows(clock.now()) == 0
        assert await _on_pad(feedback, pad) == str(hers.survey_id)

        # 10:25: shown its ten minutes, unrated; nobody has sat down since: asked by text.
        clock.set(datetime.fromisoformat("2026-11-25T10:25:00+08:00"))

        async def redirected() -> bool:
            return (await _survey(feedback, hers.survey_id))["channel"] == "sms"
        await wait_until(redirected, what="the mother's survey asked by text")
        now = await _survey(feedback, hers.survey_id)
        assert datetime.fromisoformat(now["send_at"]) == datetime.fromisoformat(
            "2026-11-25T12:10:00+08:00"), now
        assert await _on_pad(feedback, pad) is None
        assert (await _survey(feedback, his.survey_id))["status"] == "answered"
        clock.set(datetime.fromisoformat("2026-11-25T12:10:00+08:00"))

        async def texted() -> bool:
            return _sent_to(sender, hers.survey_id) == ["tablet", "sms"]
        await wait_until(texted, what="the mother asked by text")
        assert _sent_to(sender, his.survey_id) == ["tablet"]
        # The pad's link of her survey answers no more (whoever has it): her text's does.
        text = [m for m in sender.sent if m.survey_id == hers.survey_id][-1]
        r = await feedback.post(f"/surveys/{hers.survey_id}/rating", headers=headers(key()),
                                json={"token": hers.token, "level": "very_satisfied"})
        assert r.status_code == 410 and r.json()["error"]["code"] == "token_superseded", r.text
        r = await feedback.post(f"/surveys/{hers.survey_id}/rating", headers=headers(key()),
                                json={"token": text.token, "level": "satisfied"})
        assert r.status_code == 200, r.text


async def test_another_centers_staff_and_pads_cannot_reach_a_survey_asked_elsewhere(
        settings: Settings) -> None:
    """The redirected survey (a clerk's call: nobody on file) is the center's: another
    center's clerk can neither read it nor record its answer, nor see its case's feedback,
    and its pad at a window of the same name offers nothing."""
    settings = fast(settings)
    clock = Clock(datetime.fromisoformat("2026-11-25T16:02:00+08:00"))
    sender, history = KeptSender(), History(CENTER)
    morning = history.case("2026-11-25T09:00:00+08:00", resident_id=None)
    history.case("2026-11-25T15:50:00+08:00", resident_id=uuid.uuid4(), clerk_id="clerk-018")
    sat_down(history, "2026-11-25T15:50:00.400+08:00", "clerk-018")
    history.resolved(morning, "2026-11-25T16:00:00+08:00")
    async with running(create_app(settings, sender=sender, clock=clock)) as feedback:
        await history.take().publish(settings)
        await wait_until(lambda: _sent(sender, morning), what="the survey on the tablet")
        message = sender.for_case(morning)
        assert message is not None
        # The clerk who served the case has its link on their screen (the QR code).
        ours = bearer(settings, role="clerk", center=CENTER, sub="clerk-017")
        shown: list[httpx.Response] = []

        async def on_screen() -> bool:
            shown.append(await feedback.get(f"/cases/{morning}/survey/qr", headers=ours))
            return shown[-1].status_code == 200
        await wait_until(on_screen, what="the survey's QR code on the clerk's screen")
        window_link = shown[-1].json()["link"].split("t=")[1]
        # Two replicas at once (the lock between their schedulers lost): one redirection.
        app = feedback._transport.app  # type: ignore[attr-defined]
        both = await asyncio.gather(*(app.state.feedback.redirect_survey(message.survey_id)
                                      for _ in range(2)), return_exceptions=True)
        assert sum(not isinstance(b, BaseException) for b in both) == 1, both
        assert all(isinstance(b, RuleViolated) for b in both if isinstance(b, BaseException))
        clock.advance(SETTLE + timedelta(seconds=1))

        async def redirected() -> bool:
            return (await _survey(feedback, message.survey_id))["channel"] == "phone_callback"
        await wait_until(redirected, what="the survey asked by a clerk's call")
        assert await app.state.scheduler.redirect_from_windows(clock.now()) == 0
        # Asked by a call, the desk records what the resident says as staff: the window's
        # links (the QR code the clerk kept, the tablet's own) answer nothing as the resident
        # any more, nor open the page (代评 past the self_rating check).
        for token in (window_link, message.token):
            r = await feedback.post(f"/surveys/{message.survey_id}/rating",
                                    headers=headers(key()),
                                    json={"token": token, "level": "very_satisfied"})
            assert r.status_code == 410 and r.json()["error"]["code"] == "token_superseded", r.text
        page = await feedback.get(f"/s/{message.survey_id}", params={"t": window_link})
        assert page.status_code == 410, page.text

        theirs = bearer(settings, role="clerk", center=OTHER_CENTER, sub="clerk-900")
        r = await feedback.get(f"/surveys/{message.survey_id}", headers=theirs)
        assert r.status_code in (403, 404), r.text
        r = await feedback.get(f"/cases/{morning}/feedback", headers=theirs)
        assert r.status_code in (403, 404), r.text
        r = await feedback.post(f"/surveys/{message.survey_id}/rating",
                                headers={**headers(key()), **theirs},
                                json={"level": "very_satisfied", "clerk_id": "clerk-900"})
        assert r.status_code in (403, 404), r.text
        r = await feedback.get(f"/cases/{morning}/survey/qr", headers=theirs)
        assert r.status_code in (403, 404), r.text
        their_pad = await _pad(feedback, **bearer(settings, role="supervisor",
                                                  center=OTHER_CENTER, sub="director-09"))
        assert await _on_pad(feedback, their_pad) is None
        assert (await _survey(feedback, message.survey_id))["status"] == "requested"


async def test_a_trip_applied_after_the_resolution_still_sends_the_survey_where_they_are(
        settings: Settings) -> None:
    """The other resident's trip (15:50) travels on another partition than the morning's
    case and is applied after its 16:00 resolution: the survey went to the tablet as if
    nobody had come. Once the trip is in, the window is judged again and the survey is
    asked by text. A rule run as the follower applied the resolution would have missed it."""
    settings = fast(settings)
    async with _on_the_tablet(settings, "2026-11-25T09:00", "2026-11-25T16:00",
                              "2026-11-25T16:02") as (feedback, clock, sender, history, message):
        clock.advance(SETTLE + timedelta(seconds=1))
        app = feedback._transport.app  # type: ignore[attr-defined]
        assert await app.state.scheduler.redirect_from_windows(clock.now()) == 0

        history.case("2026-11-25T15:50:00+08:00", resident_id=uuid.uuid4(),
                     clerk_id="clerk-018")
        sat_down(history, "2026-11-25T15:50:00.400+08:00", "clerk-018")
        await history.take().publish(settings)

        async def redirected() -> bool:
            return (await _survey(feedback, message.survey_id))["channel"] == "sms"
        await wait_until(redirected, what="the survey asked by text once the trip is in")
        clock.set(datetime.fromisoformat("2026-11-25T18:00:00+08:00"))

        async def texted() -> bool:
            return _sent_to(sender, message.survey_id) == ["tablet", "sms"]
        await wait_until(texted, what="the text at 18:00")


async def test_a_survey_left_unrated_on_the_tablet_and_texted_stands_through_a_reopening(
        settings: Settings) -> None:
    """Sunday 20 December: a resident's case resolved at window-3 at 10:00; the tablet shows
    its survey and the resident leaves without rating, so after its ten minutes it is asked
    by text (due at 12:00). At 10:20 the clerk reopens the case and resolves it again at
    10:25: the survey was put before the resident on the tablet, so it stands, texted as
    planned, and the second resolution asks nothing (one survey a case a center day).
    Before, the redirect made it "waiting to be sent": the reopening withdrew it and the
    second resolution put a fresh survey on the tablet over the one left unrated."""
    settings = fast(settings)
    async with _on_the_tablet(settings, "2026-12-20T09:00", "2026-12-20T10:00",
                              "2026-12-20T10:02") as (feedback, clock, sender, history, message):
        case_id = message.case_id
        clock.set(datetime.fromisoformat("2026-12-20T10:15:00+08:00"))

        async def texted_later() -> bool:
            return (await _survey(feedback, message.survey_id))["channel"] == "sms"
        await wait_until(texted_later, what="the survey asked by text, the resident gone")

        history.step(case_id, "CaseReopened", "2026-12-20T10:20:00+08:00", reason="补充材料")
        again = history.resolved(case_id, "2026-12-20T10:25:00+08:00")
        last = await history.take().publish(settings)
        app = feedback._transport.app  # type: ignore[attr-defined]

        async def applied() -> bool:  # the reopening and the resolution, and their commands
            seq = await app.state.pool.fetchval("SELECT max(stream_seq) FROM consumer_progress"
                                                " WHERE consumer = 'feedback-intake'")
            return seq is not None and seq >= last
        await wait_until(applied, what="the reopening and the second resolution read")
        store = app.state.feedback.path.committer.app.repository
        survey = store.get(message.survey_id)
        assert (survey.status, survey.channel) == ("requested", "sms")
        with pytest.raises(AggregateNotFoundError):
            store.get(survey_id_for_resolution(again.event_id))
        clock.set(datetime.fromisoformat("2026-12-20T12:00:00+08:00"))

        async def texted() -> bool:
            return _sent_to(sender, message.survey_id) == ["tablet", "sms"]
        await wait_until(texted, what="the text at 12:00")

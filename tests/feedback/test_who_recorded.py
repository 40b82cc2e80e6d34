"""An answer recorded by staff names who recorded it: the token's subject, never a name from
the body. A supervisor may record for a clerk; then both are kept. Neither may be someone who
opened or served the case (代评: 403 ``self_rating``)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from services.feedback.application import ResolvedCase
from services.feedback.domain import survey_id_for_resolution
from services.feedback.main import create_app
from shared.security.principals import Role
from shared.settings import Settings
from tests.feedback.helpers import Clock, History, KeptSender, key
from tests.support import TEST_CENTER, bearer, headers, running, stream_envelopes, wait_until


async def test_a_clerk_records_answers_in_their_own_name_and_a_supervisor_for_a_clerk(
        settings: Settings) -> None:
    app = create_app(settings)
    async with running(app, anonymous=True) as client:
        feedback = app.state.feedback

        async def phone_survey() -> uuid.UUID:
            resolved = ResolvedCase(
                case_id=uuid.uuid4(), center_id=TEST_CENTER, counter_id="phone-desk",
                clerk_id="clerk-005", service_item="SA-HARDSHIP-SUBSIDY",
                intake_channel="phone", resident_id=uuid.uuid4(),
                resolved_event_id=uuid.uuid4(), resolved_at=feedback.clock.now())
            return (await feedback.request_survey(resolved)).aggregate_id

        clerk = bearer(settings, role=Role.CLERK, sub="clerk-017")
        supervisor = bearer(settings, role=Role.SUPERVISOR, sub="director-01")
        first, second, third = [await phone_survey() for _ in range(3)]

        async def record(survey: uuid.UUID, who: dict[str, str], clerk_id: str) -> dict:
            r = await client.post(f"/surveys/{survey}/rating", headers={**headers(key()), **who},
                                  json={"level": "satisfied", "clerk_id": clerk_id})
            return {"status": r.status_code, **r.json()}

        # A clerk cannot put a colleague's name on an answer (and on the figures per clerk).
        spoofed = await record(first, clerk, "clerk-099")
        assert spoofed["status"] == 403 and spoofed["error"]["code"] == "forbidden_actor"
        assert (await record(first, clerk, "clerk-017"))["status"] == 200
        # A supervisor records the phone desk's answer for the clerk who took the call.
        behalf = await record(second, supervisor, "clerk-021")
        assert behalf["status"] == 200
        own = await record(third, supervisor, "director-01")
        assert own["status"] == 200

        r = await client.get(f"/surveys/{second}", params={"after": behalf["position"]},
                             headers=supervisor)
        assert (r.json()["answered_by"], r.json()["recorded_by"]) == ("clerk-021", "director-01")

    async def rated() -> bool:
        return sum(e.type == "RatingGiven" for e in await stream_envelopes(settings)) == 3

    await wait_until(rated, what="the three answers on the stream")
    answers = {e.aggregate_id: e for e in await stream_envelopes(settings)
               if e.type == "RatingGiven"}
    assert (answers[first].actor, answers[first].payload["clerk_id"]) == ("clerk-017",
                                                                          "clerk-017")
    assert (answers[second].actor, answers[second].payload["clerk_id"]) == ("director-01",
                                                                            "clerk-021")
    assert (answers[third].actor, answers[third].payload["clerk_id"]) == ("director-01",
                                                                          "director-01")


async def test_the_clerk_who_served_cannot_answer_with_the_residents_link_while_signed_in(
        settings: Settings) -> None:
    """The survey's QR code is on the serving clerk's screen. Sent with the link's token and
    their own bearer token, their answer was taken as the resident's own (actor resident,
    counted in the residents' satisfaction), past the 代评 check their staff answer meets. Now
    403 ``self_rating``; a colleague's token beside the link changes nothing."""
    app = create_app(settings)
    async with running(app, anonymous=True) as client:
        feedback = app.state.feedback

        async def survey() -> tuple[uuid.UUID, str]:
            resolved = ResolvedCase(
                case_id=uuid.uuid4(), center_id=TEST_CENTER, counter_id="window-3",
                clerk_id="clerk-017", service_item="SA-HARDSHIP-SUBSIDY",
                intake_channel="counter", resident_id=uuid.uuid4(),
                resolved_event_id=uuid.uuid4(), resolved_at=feedback.clock.now())
            survey_id = (await feedback.request_survey(resolved)).aggregate_id
            return survey_id, feedback.tokens.issue(survey_id, feedback.clock.now()
                                                    + timedelta(days=7))

        own, own_link = await survey()
        r = await client.post(f"/surveys/{own}/rating", json={
            "token": own_link, "level": "very_satisfied"}, headers={
            **headers(key()), **bearer(settings, role=Role.CLERK, sub="clerk-017")})
        assert r.status_code == 403 and r.json()["error"]["code"] == "self_rating", r.text
        other, other_link = await survey()
        r = await client.post(f"/surveys/{other}/rating", json={
            "token": other_link, "level": "satisfied"}, headers={
            **headers(key()), **bearer(settings, role=Role.SUPERVISOR, sub="director-01")})
        assert r.status_code == 200, r.text
        r = await client.post(f"/surveys/{own}/rating", json={  # the resident, at last
            "token": own_link, "level": "satisfied"}, headers=headers(key()))
        assert r.status_code == 200, r.text


async def test_the_supervisor_who_did_the_help_task_does_not_record_the_answer(
        settings: Settings) -> None:
    """clerk-017's case is escalated on Friday 18 December to the supervisor team (帮办, a
    task naming nobody); supervisor-02 takes it and does it; the case is resolved on Sunday
    the 20th and its resident, with nobody on file, is to be called. supervisor-02 records
    the answer: 403 ``self_rating``, as the colleague an escalation names (they served the
    resident); director-01 records it. Before, only intake's steps made staff of a case."""
    history = History(TEST_CENTER)
    case_id = history.case("2026-12-18T09:00:00+08:00", resident_id=None)
    history.step(case_id, "ActionTaken", "2026-12-18T09:30:00+08:00", kind="escalated",
                 description="政策冲突需协调")
    task = uuid.uuid4()
    for type_, at in (("HelpTaskAccepted", "2026-12-18T10:00:00+08:00"),
                      ("HelpTaskDone", "2026-12-18T15:00:00+08:00")):
        history.add("followup", type_, at, {}, case_id=case_id, aggregate_id=task,
                    actor="supervisor-02")
    resolved = history.resolved(case_id, "2026-12-20T10:00:00+08:00")
    survey = survey_id_for_resolution(resolved.event_id)
    clock = Clock(datetime.fromisoformat("2026-12-20T10:05:00+08:00"))
    app = create_app(settings, sender=KeptSender(), clock=clock)
    async with running(app, anonymous=True) as client:
        await history.publish(settings)

        async def asked() -> bool:
            return (await client.get(f"/surveys/{survey}", headers=bearer(
                settings, role=Role.SUPERVISOR, sub="director-01"))).status_code == 200

        await wait_until(asked, what="the resolution's survey")

        async def record(sub: str) -> dict:
            r = await client.post(f"/surveys/{survey}/rating", headers={
                **headers(key()), **bearer(settings, role=Role.SUPERVISOR, sub=sub)},
                json={"level": "very_satisfied", "clerk_id": sub})
            return {"status": r.status_code, **r.json()}

        own = await record("supervisor-02")
        assert own["status"] == 403 and own["error"]["code"] == "self_rating", own
        assert (await record("director-01"))["status"] == 200

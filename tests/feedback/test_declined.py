"""好差评: a resident may decline to rate. On the pad or the text's link the resident says
"I'd rather not": the survey is recorded as declined (``SurveyDeclined``, actor ``resident``),
counted apart, never as an answer, never as no answer, never as a good (no default 好评) or a
bad review. Staff never decline for the resident: a clerk's or a supervisor's token is refused,
and a resident's token bound to another case reaches nothing."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

from eventsourcing.domain import Aggregate

from services.feedback.application import Feedback, ResolvedCase
from services.feedback.domain import rectification_id_for, revisit_survey_id_for
from services.feedback.figures import FigureQuery, FiguresProjection, compute
from services.feedback.main import create_app
from shared.contracts import REGISTRY
from shared.eventstore.group_commit import Unit
from shared.kernel.meta import meta_for
from shared.security.principals import Role
from shared.settings import Settings
from tests.feedback.helpers import figures_schema, key
from tests.support import TEST_CENTER, bearer, headers, running, stream_envelopes, wait_until


async def test_a_resident_may_decline_to_rate_and_staff_cannot_decline_for_them(
        settings: Settings) -> None:
    app = create_app(settings)
    async with running(app, anonymous=True) as client:
        feedback = app.state.feedback
        cases: dict[uuid.UUID, uuid.UUID] = {}

        async def survey(channel: str = "counter") -> tuple[uuid.UUID, str]:
            resolved = ResolvedCase(
                case_id=uuid.uuid4(), center_id=TEST_CENTER, counter_id="window-3",
                clerk_id="clerk-005", service_item="SA-HARDSHIP-SUBSIDY",
                intake_channel=channel, resident_id=uuid.uuid4(),
                resolved_event_id=uuid.uuid4(), resolved_at=feedback.clock.now())
            survey_id = (await feedback.request_survey(resolved)).aggregate_id
            cases[survey_id] = resolved.case_id
            return survey_id, feedback.tokens.issue(survey_id, feedback.clock.now()
                                                    + timedelta(days=7))

        declined, link = await survey()
        rated, rated_link = await survey()
        by_bearer, _ = await survey()

        # Staff cannot decline for the resident, with or without naming a clerk.
        for role, sub in ((Role.CLERK, "clerk-017"), (Role.SUPERVISOR, "director-01")):
            r = await client.post(f"/surveys/{declined}/decline", json={},
                                  headers={**headers(key()), **bearer(settings, role=role,
                                                                      sub=sub)})
            assert (r.status_code, r.json()["error"]["code"]) == (403, "forbidden_role")
            # Nor with the link's token in hand (the clerk's screen shows the survey's QR).
            r = await client.post(f"/surveys/{declined}/decline", json={"token": link},
                                  headers={**headers(key()), **bearer(settings, role=role,
                                                                      sub=sub)})
            assert (r.status_code, r.json()["error"]["code"]) == (403, "forbidden_role")
        r = await client.post(f"/surveys/{declined}/decline", json={}, headers=headers(key()))
        assert (r.status_code, r.json()["error"]["code"]) == (401, "token_missing")
        # Another survey's link, or a resident's token of another case, reaches nothing.
        r = await client.post(f"/surveys/{declined}/decline", json={"token": rated_link},
                              headers=headers(key()))
        assert r.status_code == 403, r.text
        other_case = bearer(settings, role=Role.RESIDENT, case_id=cases[rated])
        r = await client.post(f"/surveys/{declined}/decline", json={},
                              headers={**headers(key()), **other_case})
        assert r.status_code in (403, 404), r.text

        # The resident declines on the pad (the link's token); a retry answers as the first.
        first = key()
        r = await client.post(f"/surveys/{declined}/decline", json={"token": link},
                              headers=headers(first))
        assert r.status_code == 200, r.text
        again = await client.post(f"/surveys/{declined}/decline", json={"token": link},
                                  headers=headers(first))
        assert again.status_code == 200 and again.json()["version"] == r.json()["version"]
        # Declined is final: no rating after it, by the resident or by staff.
        r = await client.post(f"/surveys/{declined}/rating", headers=headers(key()),
                              json={"token": link, "level": "very_satisfied"})
        assert (r.status_code, r.json()["error"]["code"]) == (409, "survey_declined")
        r = await client.post(f"/surveys/{declined}/rating", headers={
            **headers(key()), **bearer(settings, role=Role.CLERK, sub="clerk-017")},
            json={"level": "very_satisfied", "clerk_id": "clerk-017"})
        assert (r.status_code, r.json()["error"]["code"]) == (409, "survey_declined")
        # A resident's own token bound to the case declines too; an answered one cannot.
        r = await client.post(f"/surveys/{by_bearer}/decline", json={}, headers={
            **headers(key()), **bearer(settings, role=Role.RESIDENT,
                                       case_id=cases[by_bearer])})
        assert r.status_code == 200, r.text
        r = await client.post(f"/surveys/{rated}/rating", headers=headers(key()),
                              json={"token": rated_link, "level": "satisfied"})
        assert r.status_code == 200, r.text
        r = await client.post(f"/surveys/{rated}/decline", json={"token": rated_link},
                              headers=headers(key()))
        assert (r.status_code, r.json()["error"]["code"]) == (409, "survey_already_answered")

        # The page the pad or the text opens says so, and offers nothing more to answer.
        async def page_says_declined() -> bool:
            page = await client.get(f"/s/{declined}", params={"t": link})
            return page.status_code == 200 and 'id="state-declined"' in page.text

        await wait_until(page_says_declined, what="the survey page to show it declined")

        boss = bearer(settings, role=Role.SUPERVISOR, sub="director-01")

        async def counted() -> bool:
            r = await client.get("/figures", headers=boss,
                                 params={"period": "all", "center_id": TEST_CENTER})
            rows = r.json()["rows"]  # the rating came after both declines on the stream
            return bool(rows) and rows[0]["declined"] == 2 and (
                rows[0]["response_rate"]["denominator"] == 1)

        await wait_until(counted, what="the figures to count the two declined and the answer")
        (row,) = (await client.get("/figures", headers=boss, params={
            "period": "all", "center_id": TEST_CENTER})).json()["rows"]
        assert row["satisfaction_rate"] == {"numerator": 1, "denominator": 1, "rate": 1.0}, (
            "declined is no 好评")
        assert row["bad_reviews"] == 0, "declined is no 差评"
        assert row["response_rate"] == {"numerator": 1, "denominator": 1, "rate": 1.0}, (
            "declined is no missing answer")

    envelopes = await stream_envelopes(settings)
    mine = [e for e in envelopes if e.type == "SurveyDeclined"]
    assert {e.aggregate_id for e in mine} == {declined, by_bearer}
    assert all(e.actor == "resident" for e in mine), "never staff"
    assert all(e.payload == {"survey_id": str(e.aggregate_id), "purpose": "resolution"}
               for e in mine)

    # Rebuilt from the log: the same figures.
    async with figures_schema(settings, "declined") as rebuilt:
        projection = FiguresProjection(settings.tz)
        async with rebuilt.acquire() as conn, conn.transaction():
            await projection.apply(conn, [REGISTRY.current(e) for e in envelopes])
        [again_row] = await compute(rebuilt, FigureQuery(period="all", as_of=date.today()))
        assert again_row["declined"] == 2 and again_row["bad_reviews"] == 0


async def _asked(feedback: Feedback, resident: uuid.UUID | None, intake_channel: str
                 ) -> uuid.UUID:
    """The survey of a case clerk-005 resolved just now, asked on the intake channel's."""
    resolved = ResolvedCase(
        case_id=uuid.uuid4(), center_id=TEST_CENTER, counter_id="window-3",
        clerk_id="clerk-005", service_item="SA-HARDSHIP-SUBSIDY",
        intake_channel=intake_channel, resident_id=resident,
        resolved_event_id=uuid.uuid4(), resolved_at=feedback.clock.now())
    return (await feedback.request_survey(resolved)).aggregate_id


async def test_the_clerk_who_asks_by_phone_records_that_the_resident_would_rather_not(
        settings: Settings) -> None:
    """A survey asked by a clerk's call has no link in the resident's hands: "I'd rather not"
    said on the phone could not be recorded (staff were refused), the survey expired, and a
    named resident's revisit was called again every week for good. A clerk of the survey's
    center records it (actor the clerk); not the clerk who served the case (代评), nor
    another center's clerk, and no staff member declines a survey asked on the tablet or by
    text."""
    app = create_app(settings)
    async with running(app, anonymous=True) as client:
        feedback = app.state.feedback

        by_phone = await _asked(feedback, None, "online")
        by_text = await _asked(feedback, uuid.uuid4(), "online")
        clerk = bearer(settings, role=Role.CLERK, sub="clerk-005")
        colleague = bearer(settings, role=Role.CLERK, sub="clerk-017")
        other_center = bearer(settings, role=Role.CLERK, sub="clerk-900",
                              center="SH-JA-JINGAN")
        r = await client.post(f"/surveys/{by_phone}/decline", json={},
                              headers={**headers(key()), **other_center})
        assert r.status_code == 404, r.text  # another center's survey: as for none
        r = await client.post(f"/surveys/{by_text}/decline", json={},
                              headers={**headers(key()), **colleague})
        assert (r.status_code, r.json()["error"]["code"]) == (403, "forbidden_role")
        # Nor the clerk who served the case (代评, as for an answer): a colleague calls.
        r = await client.post(f"/surveys/{by_phone}/decline", json={},
                              headers={**headers(key()), **clerk})
        assert (r.status_code, r.json()["error"]["code"]) == (403, "self_rating")
        r = await client.post(f"/surveys/{by_phone}/decline", json={},
                              headers={**headers(key()), **colleague})
        assert r.status_code == 200, r.text

    [declined] = [e for e in await stream_envelopes(settings) if e.type == "SurveyDeclined"]
    assert (declined.aggregate_id, declined.actor) == (by_phone, "clerk-017")


async def test_who_recorded_a_rectifications_outcome_neither_answers_nor_declines_its_revisit(
        settings: Settings) -> None:
    """回访 is not the 承办人's: the supervisor who recorded what was done about a bad review
    asks its revisit by phone like anyone (the revisit's default channel) but may record
    neither the resident's answer nor their "I'd rather not". Before, only the staff who
    served the case were refused: the rectifier closed the revisit as declined, which counts
    as revisited (实名差评回访率, ``REVISIT_REACHED``), or rated their own work; a colleague
    still records it."""
    app = create_app(settings)
    async with running(app, anonymous=True) as client:
        feedback = app.state.feedback
        survey_id = await _asked(feedback, uuid.uuid4(), "phone")
        colleague = bearer(settings, role=Role.CLERK, sub="clerk-017")
        rectifier = bearer(settings, role=Role.SUPERVISOR, sub="sup-007")
        r = await client.post(f"/surveys/{survey_id}/rating", json={
            "level": "dissatisfied", "clerk_id": "clerk-017"},
            headers={**headers(key()), **colleague})
        assert r.status_code == 200, r.text
        rectification_id = rectification_id_for(survey_id)
        r = await client.post(f"/rectifications/{rectification_id}/outcome", json={
            "outcome": "explained", "actions": "重新解释了政策"},
            headers={**headers(key()), **rectifier})
        assert r.status_code == 200, r.text
        revisit = r.json()["revisit_survey_id"]
        r = await client.post(f"/surveys/{revisit}/decline", json={},
                              headers={**headers(key()), **rectifier})
        assert (r.status_code, r.json()["error"]["code"]) == (403, "self_rating"), r.text
        r = await client.post(f"/surveys/{revisit}/rating", json={
            "level": "very_satisfied", "clerk_id": "sup-007"},
            headers={**headers(key()), **rectifier})
        assert (r.status_code, r.json()["error"]["code"]) == (403, "self_rating"), r.text
        r = await client.post(f"/surveys/{revisit}/decline", json={},
                              headers={**headers(key()), **colleague})
        assert r.status_code == 200, r.text

        # A revisit asked before who recorded the outcome was kept on the rectification: its
        # survey names only the staff who served the case, as the events stored then do (the
        # rectification's replay names the rectifier: RectificationCompleted's actor). The
        # rectifier declined it (200) or rated their own work.
        before = await _asked(feedback, uuid.uuid4(), "phone")
        r = await client.post(f"/surveys/{before}/rating", json={
            "level": "dissatisfied", "clerk_id": "clerk-017"},
            headers={**headers(key()), **colleague})
        assert r.status_code == 200, r.text
        before_id = rectification_id_for(before)
        now = feedback.clock.now()

        def as_before_this_release(unit: Unit) -> Aggregate:
            rectification = unit.get(before_id, "rectification")
            meta = rectification.meta_for(meta_for("sup-007", key(), now))
            served = rectification.served_by
            rectification.complete("explained", "重新解释了政策", now.date(), meta)
            replayed, rectification.served_by = rectification.served_by, served
            unit.add(rectification.request_revisit(now, now + timedelta(days=7), meta))
            rectification.served_by = replayed
            return rectification

        await feedback.path.committer.submit(as_before_this_release, [before_id])
        for route, body in (("decline", {}),
                            ("rating", {"level": "very_satisfied", "clerk_id": "sup-007"})):
            r = await client.post(f"/surveys/{revisit_survey_id_for(before_id)}/{route}",
                                  json=body, headers={**headers(key()), **rectifier})
            assert (r.status_code, r.json()["error"]["code"]) == (403, "self_rating"), r.text

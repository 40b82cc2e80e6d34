"""Another center's case is not there for a clerk of ours: every route that takes a case id,
in its path or its body, answers as for an id nobody has (404, the same words), never 403.

A case's id is worked out from its center and the Idempotency-Key it was opened under
(``case_id_for``), which a counter app or a phone line may make guessable (a window and a
running number). A visit naming another center's case answered 403 "the case belongs to
another center" (with that center), reading or stepping on it 403 ``forbidden_center``, and
an id nobody has 404: another center's clerk could tell which cases exist at ours."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from services.feedback.domain import rectification_id_for
from services.feedback.main import create_app as create_feedback
from services.intake import plan_views
from services.intake.domain import case_id_for
from services.intake.main import create_app as create_intake
from shared.kernel.clock import ManualClock
from shared.readmodels.positions import ReadModelBehind
from shared.security.principals import Role
from shared.settings import Settings
from tests.followup.story import CENTER, at
from tests.security.resolutions import resolved_at_counter
from tests.support import (
    batch_loads,
    bearer,
    error_words,
    headers,
    register_resident,
    running,
)

OTHER = "SH-PD-ZHANGJIANG"


async def test_a_clerk_of_another_center_cannot_tell_our_cases_from_none(
        settings: Settings) -> None:
    async with running(create_intake(settings, clock=ManualClock(at(2026, 12, 20, 9)))) as intake:
        here = bearer(settings, role=Role.CLERK, sub="clerk-017", center=CENTER)
        there = bearer(settings, role=Role.CLERK, sub="clerk-900", center=OTHER)
        opened = await intake.post("/cases", headers={**here, **headers("window-3-0001")},
                                   json={"center_id": CENTER, "counter_id": "window-3",
                                         "service_item": "SA-HARDSHIP-SUBSIDY"})
        assert opened.status_code == 201, opened.text
        ours = str(case_id_for(CENTER, "window-3-0001"))
        assert opened.json()["id"] == ours, "worked out from the key"
        nobodys = str(case_id_for(CENTER, "window-3-9999"))
        after = {"after": opened.json()["position"]}
        n = iter(range(100))

        async def visit(case_id: str, auth: dict[str, str]) -> httpx.Response:
            return await intake.post("/visits", headers={**auth, **headers(f"visit-{next(n):04}")},
                                     json={"center_id": OTHER if auth is there else CENTER,
                                           "counter_id": "window-1", "case_id": case_id})

        probes = {
            "a visit naming it": visit,
            "its reading": lambda c, a: intake.get(f"/cases/{c}", params=after, headers=a),
            "its notice": lambda c, a: intake.get(f"/cases/{c}/notice", params=after,
                                                  headers=a),
            "a step on it": lambda c, a: intake.post(
                f"/cases/{c}/hear", json={"words": "我想问问"},
                headers={**a, **headers(f"hear-{next(n):04}")}),
        }
        for what, probe in probes.items():
            theirs, none = await probe(ours, there), await probe(nobodys, there)
            assert (theirs.status_code, none.status_code) == (404, 404), (what, theirs.text)
            assert error_words(theirs.json(), ours) == error_words(none.json(), nobodys), what
        own = await visit(ours, here)  # our own clerk's return trip about it
        assert own.status_code == 201, own.text


async def test_another_centers_case_has_no_feedback_to_read(settings: Settings) -> None:
    """The case's surveys (``/cases/{id}/feedback``), and its survey by id, read as for a
    case or a survey nobody has, for another center's clerk (was 403 ``forbidden_center``)."""
    app = create_feedback(settings)
    async with running(app) as feedback:
        case_id = uuid.uuid4()
        written = await app.state.feedback.request_survey(resolved_at_counter(case_id))
        there = bearer(settings, role=Role.CLERK, sub="clerk-900", center=OTHER)
        nobodys = uuid.uuid4()
        theirs = await feedback.get(f"/cases/{case_id}/feedback", headers=there,
                                    params={"after": written.position})
        none = await feedback.get(f"/cases/{nobodys}/feedback", headers=there)
        assert (theirs.status_code, none.status_code) == (404, 404), theirs.text
        assert error_words(theirs.json(), str(case_id)) == error_words(none.json(),
                                                                       str(nobodys))
        ours = await feedback.get(f"/cases/{case_id}/feedback", params={
            "after": written.position})
        assert ours.status_code == 200, ours.text
        # Its survey's id is worked out from the case's resolution (its event id: the case
        # and its version): another center's is a survey nobody has, read or answered.
        survey = str(written.aggregate_id)
        never = str(uuid.uuid4())
        for ask in (lambda s: feedback.get(f"/surveys/{s}", headers=there),
                    lambda s: feedback.post(f"/surveys/{s}/rating", headers={
                        **there, **headers(f"rate-{s}")}, json={"level": "satisfied",
                                                                 "clerk_id": "clerk-900"})):
            theirs, none = await ask(survey), await ask(never)
            assert (theirs.status_code, none.status_code) == (404, 404), theirs.text
            assert error_words(theirs.json(), survey) == error_words(none.json(), never)


async def test_another_centers_survey_link_cannot_tell_our_surveys_from_none(
        settings: Settings) -> None:
    """A survey link is a key anyone with a phone holds: a resident of another center, or a
    clerk there (the QR code at their window). Declining with it names a survey in the path;
    our survey, whose id is worked out from its case's resolution (the case id, from a
    guessed key, and a version), answers as a survey nobody has. The link was checked
    against the survey only once it was loaded: 403 ``token_wrong_case`` for a survey that
    exists (anywhere: which cases were resolved there), 404 for none; the rating checks it
    before anything is loaded, and so now does the decline."""
    app = create_feedback(settings)
    async with running(app, anonymous=True) as feedback:
        service = app.state.feedback

        async def resolved(center: str) -> uuid.UUID:
            written = await service.request_survey(resolved_at_counter(center_id=center))
            return written.aggregate_id

        ours, theirs = str(await resolved(CENTER)), await resolved(OTHER)
        link = service.tokens.issue(theirs, datetime.now(UTC) + timedelta(days=7))
        never = str(uuid.uuid4())
        for route, body in (("decline", {"token": link}),
                            ("rating", {"token": link, "level": "satisfied"})):
            there, none = [await feedback.post(f"/surveys/{s}/{route}", json=body,
                                               headers=headers(f"{route}-{s}"))
                           for s in (ours, never)]
            assert there.status_code == none.status_code, (route, there.text, none.text)
            assert error_words(there.json(), ours) == error_words(none.json(), never), route


async def test_a_residents_token_cannot_tell_the_centers_other_surveys_from_none(
        settings: Settings) -> None:
    """A resident's bearer token (a citizen app's sign-in) is bound to their case. Naming
    another survey of the same center (its id worked out from that case's resolution) was
    a 403 "another case than the token's" when it exists and a 404 when not: which of the
    center's cases were resolved, to someone outside it. It answers as a survey nobody has."""
    app = create_feedback(settings)
    async with running(app, anonymous=True) as feedback:
        service = app.state.feedback

        async def resolved() -> tuple[uuid.UUID, uuid.UUID]:
            case_id = uuid.uuid4()
            written = await service.request_survey(resolved_at_counter(case_id))
            return case_id, written.aggregate_id

        (_, neighbours), (mine, _) = await resolved(), await resolved()
        me = bearer(settings, role=Role.RESIDENT, center=CENTER, case_id=mine)
        ours, never = str(neighbours), str(uuid.uuid4())
        for route, body in (("decline", {}), ("rating", {"level": "satisfied"})):
            there, none = [await feedback.post(f"/surveys/{s}/{route}", json=body,
                                               headers={**me, **headers(f"{route}-{s}")})
                           for s in (ours, never)]
            assert (there.status_code, none.status_code) == (404, 404), (route, there.text)
            assert error_words(there.json(), ours) == error_words(none.json(), never), route


async def test_another_centers_survey_answered_by_staff_is_not_read_on_before_its_404(
        settings: Settings) -> None:
    """A clerk of another center records an answer to our survey, or their supervisor
    triages our rectification: nothing of ours is read for them before the 404 (who served
    our case, whose help work feedback may not have read yet). Before, the survey was loaded
    and its case's staff asked of the read model first: a case whose help work was not read
    yet answered another center 504 ``read_model_behind`` where a survey nobody has is 404."""
    app = create_feedback(settings)
    async with running(app) as feedback:
        service = app.state.feedback
        written = await service.request_survey(resolved_at_counter())
        survey = str(written.aggregate_id)
        bad = await feedback.post(f"/surveys/{survey}/rating", headers={
            **headers("rate-ours"), **bearer(settings, role=Role.CLERK, sub="clerk-018",
                                             center=CENTER)},
            json={"level": "dissatisfied", "clerk_id": "clerk-018"})
        assert bad.status_code == 200, bad.text
        rectification = str(rectification_id_for(written.aggregate_id))
        asked: list[uuid.UUID] = []

        async def not_read_yet(case_id: uuid.UUID) -> tuple[str, ...]:
            asked.append(case_id)
            raise ReadModelBehind("feedback has not read who worked the case's help tasks "
                                  "yet; retry shortly", position=1, service="followup")

        service.served_now = not_read_yet
        clerk = bearer(settings, role=Role.CLERK, sub="clerk-900", center=OTHER)
        never = str(uuid.uuid4())
        theirs, none = [await feedback.post(f"/surveys/{s}/rating", headers={
            **clerk, **headers(f"rate-{s}")}, json={"level": "satisfied",
                                                     "clerk_id": "clerk-900"})
            for s in (survey, never)]
        assert (theirs.status_code, none.status_code) == (404, 404), theirs.text
        assert error_words(theirs.json(), survey) == error_words(none.json(), never)
        boss = bearer(settings, role=Role.SUPERVISOR, sub="director-900", center=OTHER)
        theirs, none = [await feedback.post(f"/rectifications/{r}/triage", headers={
            **boss, **headers(f"triage-{r}")}, json={"track": "explain"})
            for r in (rectification, never)]
        assert (theirs.status_code, none.status_code) == (404, 404), theirs.text
        assert error_words(theirs.json(), rectification) == error_words(none.json(), never)
        assert asked == []


async def test_another_centers_clerk_reading_our_case_reads_no_more_than_for_none(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading a case by id, or its notice: for another center's clerk our case's timeline,
    relation and plans are not read before the 404, as nothing more is read for an id nobody
    has. Before, they were all read first (four queries, where an id nobody has takes one):
    the 404 took some two to three times as long as for none, and another center's clerk
    could tell by the answer's time which guessed ids are cases here."""
    read: list[object] = []
    plans_of_case = plan_views.plans_of_case

    async def plans_read(pool: object, case_id: uuid.UUID) -> object:
        read.append(case_id)
        return await plans_of_case(pool, case_id)  # type: ignore[arg-type]

    monkeypatch.setattr(plan_views, "plans_of_case", plans_read)
    async with running(create_intake(settings, clock=ManualClock(at(2026, 12, 20, 9)))) as intake:
        opened = await intake.post("/cases", headers=headers("window-3-0001"), json={
            "center_id": CENTER, "counter_id": "window-3", "service_item": "SA-HARDSHIP-SUBSIDY"})
        assert opened.status_code == 201, opened.text
        ours = str(case_id_for(CENTER, "window-3-0001"))
        after = {"after": opened.json()["position"]}
        there = bearer(settings, role=Role.CLERK, sub="clerk-900", center=OTHER)
        for route in (f"/cases/{ours}", f"/cases/{ours}/notice"):
            refused = await intake.get(route, params=after, headers=there)
            assert refused.status_code == 404, refused.text
        assert read == []
        here = bearer(settings, role=Role.CLERK, sub="clerk-017", center=CENTER)
        assert (await intake.get(f"/cases/{ours}", headers=here)).status_code == 200
        assert [str(c) for c in read] == [ours]


async def _our_plan(intake: httpx.AsyncClient, key: str) -> httpx.Response:
    """A plan drawn up at our center, for a resident registered here, under ``key``."""
    resident = await register_resident(intake)
    drawn = await intake.post("/plans", headers=headers(key), json={
        "center_id": CENTER, "counter_id": "window-3", "resident_id": resident,
        "title": "困难补助", "steps": [{"service_item": "SA-HARDSHIP-SUBSIDY",
                                      "effective_on": "2027-01-04", "what": "补助到账"}]})
    assert drawn.status_code == 201, drawn.text
    return drawn


async def test_another_centers_clerk_reading_our_plan_reads_no_more_than_for_none(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """A plan's id is worked out from its center and key, as a case's is: another center's
    clerk reading ours has its steps not read before the 404 (they were: one query more than
    for a plan nobody has, by the answer's time which guessed ids are plans here)."""
    read: list[object] = []
    with_steps = plan_views._with_steps

    async def steps_read(pool: object, rows: object) -> object:
        read.extend(rows)  # type: ignore[arg-type]
        return await with_steps(pool, rows)  # type: ignore[arg-type]

    monkeypatch.setattr(plan_views, "_with_steps", steps_read)
    async with running(create_intake(settings, clock=ManualClock(at(2026, 12, 20, 9)))) as intake:
        drawn = await _our_plan(intake, "plan-window-3-0001")
        plan = drawn.json()["id"]
        there = bearer(settings, role=Role.CLERK, sub="clerk-900", center=OTHER)
        refused = await intake.get(f"/plans/{plan}", params={"after": drawn.json()["position"]},
                                   headers=there)
        assert refused.status_code == 404, refused.text
        assert read == []
        assert (await intake.get(f"/plans/{plan}")).status_code == 200
        assert len(read) == 1


async def test_another_centers_clerk_linking_their_case_to_our_plan_loads_neither(
        settings: Settings) -> None:
    """A plan of ours, a case of theirs: their clerk links the case to our plan's step (a
    second route into our plan). The 404 is a plan nobody has's, refused on the plan's first
    event before the command loads the plan and the case beside it (it loaded both whole
    for them, and refused after, until December 2026)."""
    app = create_intake(settings, clock=ManualClock(at(2026, 12, 20, 9)))
    async with running(app) as intake:
        drawn = await _our_plan(intake, "plan-window-3-0002")
        plan = drawn.json()["id"]
        there = bearer(settings, role=Role.CLERK, sub="clerk-900", center=OTHER)
        opened = await intake.post("/cases", headers={**there, **headers("window-9-0001")}, json={
            "center_id": OTHER, "counter_id": "window-9", "service_item": "SA-HARDSHIP-SUBSIDY"})
        assert opened.status_code == 201, opened.text
        loaded = batch_loads(app)
        nobodys = str(uuid.uuid4())
        theirs, none = [await intake.post(f"/plans/{p}/links", json={
            "step": 1, "case_id": opened.json()["id"]}, headers={**there, **headers(f"link-{p}")})
            for p in (plan, nobodys)]
        assert (theirs.status_code, none.status_code) == (404, 404), theirs.text
        assert error_words(theirs.json(), plan) == error_words(none.json(), nobodys)
        assert [ids for ids in loaded if uuid.UUID(plan) in ids] == [], loaded


async def test_another_centers_clerk_naming_our_case_beside_their_own_plan_or_visit_loads_it_not(
        settings: Settings) -> None:
    """The other way round: their clerk's own plan (drawn up, a step added, a step linked)
    or visit names a case of ours. Their plan and visit are theirs to write; our case is
    refused on its first event, as a case nobody has, before the command loads it whole
    beside them (it was loaded, every event of it, then refused by ``Unit.get``: by the
    answer's time, which guessed ids are cases here)."""
    app = create_intake(settings, clock=ManualClock(at(2026, 12, 20, 9)))
    async with running(app) as intake:
        opened = await intake.post("/cases", headers=headers("window-3-0003"), json={
            "center_id": CENTER, "counter_id": "window-3", "service_item": "SA-HARDSHIP-SUBSIDY"})
        assert opened.status_code == 201, opened.text
        ours, nobodys = opened.json()["id"], str(uuid.uuid4())
        there = bearer(settings, role=Role.CLERK, sub="clerk-900", center=OTHER)
        resident = await register_resident(intake, auth=there)
        plan = await intake.post("/plans", headers={**there, **headers("plan-window-9-0001")},
                                 json={"center_id": OTHER, "counter_id": "window-9",
                                       "resident_id": resident, "title": "困难补助",
                                       "steps": [{"service_item": "SA-HARDSHIP-SUBSIDY",
                                                  "effective_on": "2027-01-04",
                                                  "what": "补助到账"}]})
        assert plan.status_code == 201, plan.text
        plan_id = plan.json()["id"]
        loaded = batch_loads(app)
        step = {"service_item": "SA-HARDSHIP-SUBSIDY", "effective_on": "2027-01-04",
                "what": "补助到账"}
        writes = {
            "draw up": lambda case, n: ("/plans", {
                "center_id": OTHER, "counter_id": "window-9", "resident_id": resident,
                "title": "困难补助", "steps": [{**step, "case_id": case}]}),
            "add a step": lambda case, n: (f"/plans/{plan_id}/steps", {**step, "case_id": case}),
            "link": lambda case, n: (f"/plans/{plan_id}/links", {"step": 1, "case_id": case}),
            "visit": lambda case, n: ("/visits", {"center_id": OTHER, "counter_id": "window-9",
                                                  "case_id": case}),
        }
        for n, (what, write) in enumerate(writes.items()):
            answers = []
            for case in (ours, nobodys):
                path, body = write(case, n)
                answers.append(await intake.post(path, json=body, headers={
                    **there, **headers(f"{what.replace(' ', '-')}-{n}-{case}")}))
            theirs, none = answers
            assert (theirs.status_code, none.status_code) == (404, 404), (what, theirs.text)
            assert error_words(theirs.json(), ours) == error_words(none.json(), nobodys), what
        assert [ids for ids in loaded if uuid.UUID(ours) in ids] == [], loaded

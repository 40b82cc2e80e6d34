"""Another center's clerk reads our case, follow-up, survey, a case's feedback or our
rectification by id: the 404 is the one an id nobody has gets, and nothing of our row is
decoded for them. The center is checked on the raw row (its column) first. Before December
2026 each read built the row into its answer first and refused it after: a caller who may
not see it had it decoded, and the decoding was the time by which ours answered later than
an id nobody has (a timing oracle on ids worked out from a center and a key)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from services.feedback.domain import rectification_id_for
from services.feedback.main import create_app as create_feedback
from services.feedback.queries import RectificationPublic, SurveyPublic
from services.followup.queries import FollowUpPublic
from services.intake import queries as intake_queries
from services.intake.domain import case_id_for
from services.intake.main import create_app as create_intake
from services.intake.queries import CasePublic
from shared.kernel.clock import ManualClock
from shared.readmodels.public import Elsewhere
from shared.security.principals import Role
from shared.settings import Settings
from tests.followup.story import CENTER, at, center_day, key
from tests.security.resolutions import resolved_at_counter
from tests.support import bearer, error_words, headers, running

OTHER = "SH-PD-ZHANGJIANG"


def decoded(monkeypatch: pytest.MonkeyPatch, model: type, name: str) -> list[object]:
    """The rows ``model.<name>`` builds from here on (a list that grows)."""
    built: list[object] = []
    real: Callable[..., Any] = getattr(model, name)

    def counting(cls: type, row: Any, *args: Any, **kwargs: Any) -> Any:
        built.append(row)
        return real(row, *args, **kwargs)

    monkeypatch.setattr(model, name, classmethod(counting))
    return built


async def test_another_centers_case_is_refused_before_its_row_is_decoded(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    async with running(create_intake(settings, clock=ManualClock(at(2026, 12, 20, 9)))) as intake:
        opened = await intake.post("/cases", headers=headers("window-3-0001"), json={
            "center_id": CENTER, "counter_id": "window-3", "service_item": "SA-HARDSHIP-SUBSIDY"})
        assert opened.status_code == 201, opened.text
        ours, nobodys = (str(case_id_for(CENTER, k)) for k in ("window-3-0001", "window-3-9999"))
        after = {"after": opened.json()["position"]}
        assert (await intake.get(f"/cases/{ours}", params=after)).status_code == 200
        built = decoded(monkeypatch, CasePublic, "of")
        there = bearer(settings, role=Role.CLERK, sub="clerk-900", center=OTHER)
        for path in ("/cases/{}", "/cases/{}/notice"):
            theirs = await intake.get(path.format(ours), headers=there, params=after)
            none = await intake.get(path.format(nobodys), headers=there)
            assert (theirs.status_code, none.status_code) == (404, 404), theirs.text
            assert error_words(theirs.json(), ours) == error_words(none.json(), nobodys)
        assert built == [], "another center's case was decoded before its 404"


async def test_another_centers_follow_up_is_refused_before_its_row_is_decoded(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    async with center_day(settings, at(2026, 12, 20, 9), with_intake=False) as center:
        api = center.followup
        made = await api.post("/followups", headers=headers(key()), json={
            "center_id": CENTER, "reason": "home_visit", "due_on": "2026-12-21",
            "assigned_clerk": "clerk-017"})
        assert made.status_code == 201, made.text
        ours, nobodys = made.json()["id"], str(uuid.uuid4())
        after = {"after": made.json()["position"]}
        assert (await api.get(f"/followups/{ours}", params=after)).status_code == 200
        built = decoded(monkeypatch, FollowUpPublic, "of")
        there = bearer(settings, role=Role.CLERK, sub="clerk-900", center=OTHER)
        theirs = await api.get(f"/followups/{ours}", headers=there, params=after)
        none = await api.get(f"/followups/{nobodys}", headers=there)
        assert (theirs.status_code, none.status_code) == (404, 404), theirs.text
        assert error_words(theirs.json(), ours) == error_words(none.json(), nobodys)
        assert built == [], "another center's follow-up was decoded before its 404"


async def test_another_centers_survey_and_rectification_are_refused_before_decoding(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    app = create_feedback(settings)
    async with running(app) as feedback:
        case_id = uuid.uuid4()
        written = await app.state.feedback.request_survey(resolved_at_counter(case_id))
        survey = str(written.aggregate_id)
        bad = await feedback.post(f"/surveys/{survey}/rating", headers={
            **headers("rate-ours"), **bearer(settings, role=Role.CLERK, sub="clerk-018",
                                             center=CENTER)},
            json={"level": "dissatisfied", "clerk_id": "clerk-018"})
        assert bad.status_code == 200, bad.text
        rectification = str(rectification_id_for(written.aggregate_id))
        after = {"after": bad.json()["position"]}
        read = await feedback.get(f"/rectifications/{rectification}", params=after)
        assert read.status_code == 200, read.text
        surveys = decoded(monkeypatch, SurveyPublic, "of_row")
        rectifications = decoded(monkeypatch, RectificationPublic, "of_row")
        clerk = bearer(settings, role=Role.CLERK, sub="clerk-900", center=OTHER)
        boss = bearer(settings, role=Role.SUPERVISOR, sub="director-9", center=OTHER)
        for path, ours, auth in (("/surveys/{}", survey, clerk),
                                 ("/cases/{}/feedback", str(case_id), clerk),
                                 ("/rectifications/{}", rectification, boss)):
            nobodys = str(uuid.uuid4())
            theirs = await feedback.get(path.format(ours), headers=auth, params=after)
            none = await feedback.get(path.format(nobodys), headers=auth)
            assert (theirs.status_code, none.status_code) == (404, 404), (path, theirs.text)
            assert error_words(theirs.json(), ours) == error_words(none.json(), nobodys), path
        assert (surveys, rectifications) == ([], []), "decoded before the 404"


async def test_another_centers_case_row_comes_back_with_its_center_alone(
        settings: Settings) -> None:
    """The statement itself keeps our case's columns from another center's caller: the row
    comes back with its center and nothing else (not even the resident's status, a subquery
    on the vault's table), so asyncpg decodes a few NULLs where it decoded the whole row
    (4-10 us of CPU that told ours from none's until stop 49; benchmarks/elsewhere_paired.py).
    Our own clerk, and the city (no center), get every column."""
    app = create_intake(settings, clock=ManualClock(at(2026, 12, 20, 9)))
    async with running(app) as intake:
        opened = await intake.post("/cases", headers=headers("window-3-0002"), json={
            "center_id": CENTER, "counter_id": "window-3", "service_item": "SA-HARDSHIP-SUBSIDY"})
        assert opened.status_code == 201, opened.text
        ours = case_id_for(CENTER, "window-3-0002")
        after = {"after": opened.json()["position"]}
        assert (await intake.get(f"/cases/{ours}", params=after)).status_code == 200
        pool = app.state.pool
        rows: list[Any] = []

        class Spy:
            async def fetchrow(self, sql: str, *args: Any) -> Any:
                rows.append(await pool.fetchrow(sql, *args))
                return rows[-1]

            def __getattr__(self, name: str) -> Any:
                return getattr(pool, name)

        assert isinstance(await intake_queries.case(Spy(), ours, OTHER), Elsewhere)  # type: ignore[arg-type]
        assert {k: v for k, v in dict(rows[-1]).items() if v is not None} == {
            "center_id": CENTER}
        for reach in (CENTER, None):
            rows.clear()
            case = await intake_queries.case(Spy(), ours, reach)  # type: ignore[arg-type]
            assert isinstance(case, CasePublic) and case.service_item == "SA-HARDSHIP-SUBSIDY"
            assert rows[0]["counter_id"] == "window-3" and rows[0]["opened_at"] is not None

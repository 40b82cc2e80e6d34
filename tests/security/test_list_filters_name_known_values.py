"""A list filtered by a value that is not one of the filter's (a misspelt status, an action the
trail never writes) is refused 422 with the values it takes, at every list: an empty
page said "none of those", which was never the question. Until stop 49
``GET /followups?status=`` and ``GET /audit?action=`` took any word and answered empty."""

from __future__ import annotations

import httpx

from services.followup.main import create_app as followup_app
from services.intake.main import create_app as intake_app
from shared.security.principals import Role
from shared.settings import Settings
from tests.support import TEST_CENTER, bearer, running


def refused_naming(answer: httpx.Response, field: str, *values: str) -> None:
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "validation_failed"
    [named] = [f for f in error["details"]["fields"] if f["field"] == field]
    assert all(f"'{v}'" in named["message"] for v in values), named


async def test_a_misspelt_follow_up_status_is_refused_with_the_statuses_it_takes(
        settings: Settings) -> None:
    async with running(followup_app(settings)) as desk:
        clerk = bearer(settings, role=Role.CLERK, center=TEST_CENTER, sub="clerk-1")
        for auth in ({}, clerk):  # a supervisor's token, a clerk's
            for asked in ("mised", "open", "done"):
                refused_naming(await desk.get("/followups", headers=auth,
                                              params={"status": asked}),
                               "query.status", "scheduled", "due", "missed", "escalated",
                               "completed", "cancelled")
            known = await desk.get("/followups", headers=auth, params={"status": "missed"})
            assert (known.status_code, known.json()["items"]) == (200, [])


async def test_an_audit_action_the_trail_never_writes_is_refused_with_those_it_does(
        settings: Settings) -> None:
    async with running(intake_app(settings)) as desk:
        supervisor = bearer(settings, role=Role.SUPERVISOR, center=TEST_CENTER, sub="sup-a")
        refused_naming(await desk.get("/audit", headers=supervisor,
                                      params={"action": "reads"}),
                       "query.action", "register", "lookup", "read", "hints", "change",
                       "erase", "open_case", "lookup_burst", "record_relation")
        known = await desk.get("/audit", headers=supervisor, params={"action": "read"})
        assert known.status_code == 200, known.text

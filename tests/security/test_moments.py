"""A counter that reports the year 1 or 9999 gets a 422 naming the field, at every service,
and nothing is recorded: no event exists that a reader could not convert."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import pytest

from services.feedback.main import create_app as feedback_app
from services.followup.main import create_app as followup_app
from services.intake.domain import Case
from services.intake.main import create_app as intake_app
from shared.security.principals import Role
from shared.settings import Settings
from tests.support import TEST_CENTER, headers, running, stream_messages, wait_until

POISON = ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "1999-12-31T23:59:59+00:00")


def key() -> str:
    return f"k-{uuid.uuid4().hex}"


def refused(r: httpx.Response, field: str) -> None:
    assert r.status_code == 422, r.text
    assert r.json()["error"]["details"]["field"] == field, r.text


async def test_intake_refuses_moments_and_days_out_of_range(settings: Settings) -> None:
    async with running(intake_app(settings), role=Role.CLERK) as client:
        opening = {"center_id": TEST_CENTER, "counter_id": "window-3",  # the clerk: the caller
                   "service_item": "SA-HARDSHIP-SUBSIDY"}
        for moment in POISON:
            refused(await client.post("/cases", headers=headers(key()),
                                      json={**opening, "occurred_at": moment}), "occurred_at")
        ahead = (datetime.now(UTC) + timedelta(minutes=30)).isoformat()
        refused(await client.post("/cases", headers=headers(key()),
                                  json={**opening, "occurred_at": ahead}), "occurred_at")
        r = await client.post("/cases", headers=headers(key()), json=opening)
        case, version = r.json()["id"], r.json()["version"]
        for moment in POISON:
            refused(await client.post(f"/cases/{case}/hear", headers=headers(key()),
                                      json={"words": "想问补助", "occurred_at": moment}),
                    "occurred_at")
        await client.post(f"/cases/{case}/hear", headers=headers(key()), json={"words": "补助"})
        refused(await client.post(f"/cases/{case}/deadlines", headers=headers(key()), json={
            "due_on": "9999-12-31", "description": "补交材料"}), "due_on")
        refused(await client.post(f"/cases/{case}/obligations", headers=headers(key()), json={
            "description": "每月报销", "next_due_on": "0001-01-01"}), "next_due_on")
        r = await client.post(f"/cases/{case}/deadlines", headers=headers(key()), json={
            "due_on": "2030-06-30", "description": "补交材料"})
        # hear, then the deadline and the due date it sets (CaseDueDateSet): only good writes.
        assert r.status_code == 200 and r.json()["version"] == version + 3, "only good writes"


@pytest.mark.parametrize("moment", POISON[:2])
async def test_follow_up_and_feedback_refuse_them_too(settings: Settings, moment: str) -> None:
    async with running(followup_app(settings), role=Role.SUPERVISOR) as client:
        refused(await client.post("/followups", headers=headers(key()), json={
            "center_id": TEST_CENTER, "assigned_team": "followup-desk",
            "due_on": "2026-12-10", "occurred_at": moment}), "occurred_at")
        refused(await client.post("/followups", headers=headers(key()), json={
            "center_id": TEST_CENTER, "assigned_team": "followup-desk",
            "due_on": moment[:10]}), "due_on")
        refused(await client.post("/policy-changes", headers=headers(key()), json={
            "center_id": TEST_CENTER, "service_items": ["SA-HARDSHIP-SUBSIDY"],
            "summary": "补助标准上调", "effective_on": moment[:10]}), "effective_on")
    async with running(feedback_app(settings), role=Role.SUPERVISOR) as client:
        refused(await client.post(f"/surveys/{uuid.uuid4()}/rating", headers=headers(key()),
                                  json={"level": "satisfied", "clerk_id": "clerk-017",
                                        "occurred_at": moment}), "occurred_at")
        refused(await client.post(f"/rectifications/{uuid.uuid4()}/outcome",
                                  headers=headers(key()),
                                  json={"outcome": "rectified", "actions": "已整改",
                                        "occurred_at": moment}), "occurred_at")


def test_the_window_is_a_setting_that_cannot_go_beyond_the_contracts() -> None:
    with pytest.raises(ValueError):
        Settings(occurred_at_earliest="1969-12-31")
    with pytest.raises(ValueError):
        Settings(occurred_at_max_future_s=86_401)
    assert Settings(occurred_at_earliest="1990-01-01").occurred_at_earliest.year == 1990


async def test_an_event_stored_before_the_bounds_still_reaches_the_stream_and_nothing_waits(
        settings: Settings) -> None:
    """The store may hold such events from an older release: the relay publishes them in
    their place, as stored (readers report them), and the events after them flow."""
    app = intake_app(settings)
    async with running(app, role=Role.CLERK) as client:
        old = uuid.uuid4()
        case = Case(id=old, center_id=TEST_CENTER, counter_id="window-3", clerk_id="clerk-017",
                    channel="counter", service_item="SA-HARDSHIP-SUBSIDY", resident_id=None,
                    meta={"actor": "clerk-017", "causation_id": "old-release-1",
                          "correlation_id": None, "center_id": TEST_CENTER, "case_id": old,
                          "occurred_at": datetime.fromisoformat(POISON[0])})
        await asyncio.to_thread(app.state.runtime.application.save, case)
        r = await client.post("/cases", headers=headers(key()), json={
            "center_id": TEST_CENTER, "counter_id": "window-3",
            "service_item": "SA-HARDSHIP-SUBSIDY"})
        assert r.status_code == 201, r.text
        after = r.json()["position"]

        async def published() -> bool:
            return len(await stream_messages(settings)) >= after

        await wait_until(published, what="the outbox to get past the old event")
    messages = [orjson.loads(m.data) for m in await stream_messages(settings)]
    first, last = messages[0], messages[after - 1]
    assert first["aggregate_id"] == str(old) and first["occurred_at"].startswith("0001-01-01")
    assert last["position"] == after and last["type"] == "CaseOpened"

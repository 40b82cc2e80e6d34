"""A case at the counter, a follow-up and a survey: every command on each goes through the one
command path (``shared.eventstore.command_path``), so a clerk meets the same answers whichever
service they write to: a retried Idempotency-Key replays the first answer (even with an If-Match
gone stale since), a stale If-Match is the same 409, an unknown id the same 404, and a token of
another center the same 403."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from services.feedback.application import ResolvedCase
from services.feedback.main import create_app as feedback_app
from services.followup.main import create_app as followup_app
from services.intake.main import create_app as intake_app
from shared.security.principals import Role
from shared.settings import Settings
from tests.support import TEST_CENTER, bearer, headers, running

OTHER_CENTER = "SH-XH-TIANPING"


@dataclass
class Target:
    """One aggregate of one service, and a command that may be sent to it again and again."""

    service: str
    what: str  # the aggregate's name in the answers
    client: httpx.AsyncClient
    path: str  # with {id}
    body: dict[str, Any]
    id: str

    async def send(self, key: str, *, id: str | None = None, **extra: str) -> httpx.Response:
        return await self.client.post(self.path.format(id=id or self.id), json=self.body,
                                      headers={**headers(key), **extra})


def key() -> str:
    return f"cp-{uuid.uuid4().hex}"


@contextlib.asynccontextmanager
async def three_services(settings: Settings) -> AsyncIterator[list[Target]]:
    feedback = feedback_app(settings)
    async with (running(intake_app(settings)) as intake,
                running(followup_app(settings)) as followup,
                running(feedback) as feedback_client):
        r = await intake.post("/cases", headers=headers(key()), json={
            "center_id": TEST_CENTER, "counter_id": "window-3", "channel": "counter",
            "service_item": "SA-HARDSHIP-SUBSIDY"})
        assert r.status_code == 201, r.text
        case = Target("intake", "case", intake, "/cases/{id}/hear",
                      {"words": "想问问临时救助怎么申请"}, r.json()["id"])

        r = await followup.post("/followups", headers=headers(key()), json={
            "center_id": TEST_CENTER, "assigned_team": "followup-desk",
            "due_at": (datetime.now(UTC) + timedelta(days=2)).isoformat()})
        assert r.status_code == 201, r.text
        follow_up = Target("followup", "follow-up", followup, "/followups/{id}/cancel",
                           {"reason": "居民已自行办结"}, r.json()["id"])

        written = await feedback.state.feedback.request_survey(ResolvedCase(
            case_id=uuid.uuid4(), center_id=TEST_CENTER, counter_id="phone-desk",
            clerk_id="clerk-005", service_item="SA-HARDSHIP-SUBSIDY", intake_channel="phone",
            resident_id=uuid.uuid4(), resolved_event_id=uuid.uuid4(),
            resolved_at=datetime.now(UTC)))
        survey = Target("feedback", "survey", feedback_client, "/surveys/{id}/rating",
                        {"level": "satisfied", "clerk_id": "clerk-017"},
                        str(written.aggregate_id))
        yield [case, follow_up, survey]


def error(r: httpx.Response) -> tuple[int, dict[str, Any]]:
    return r.status_code, r.json()


async def test_case_follow_up_and_survey_commands_share_one_path(settings: Settings) -> None:
    async with three_services(settings) as targets:
        for t in targets:
            first_key = key()
            first = await t.send(first_key)
            assert first.status_code == 200, (t.service, first.text)
            version = first.json()["version"]

            # A retry answers as the first attempt did, even with the If-Match it was sent
            # with (the version before the write): the key is checked before the version.
            for retry in (await t.send(first_key),
                          await t.send(first_key, **{"If-Match": str(version - 1)})):
                assert retry.status_code == 200, (t.service, retry.text)
                assert retry.json() == {**first.json(), "replayed": True}, t.service

            assert error(await t.send(key(), **{"If-Match": "99"})) == (409, {"error": {
                "code": "version_conflict",
                "message": f"{t.what} is at version {version}, not 99",
                "details": {"current_version": version, "expected_version": 99}}}), t.service

            unknown = str(uuid.uuid4())
            assert error(await t.send(key(), id=unknown)) == (404, {"error": {
                "code": "not_found", "message": f"{t.what} {unknown} not found",
                "details": {"id": unknown}}}), t.service

            elsewhere = bearer(settings, role=Role.SUPERVISOR, center=OTHER_CENTER)
            # Another center's: as for one nobody has (a 403 said it exists there).
            assert error(await t.send(key(), **elsewhere)) == (404, {"error": {
                "code": "not_found", "message": f"{t.what} {t.id} not found",
                "details": {"id": t.id}}}), t.service


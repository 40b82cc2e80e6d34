"""A bug answers like every other error: the clerk's screen gets a code it can say in its own
words, the answer leaves with the security headers and is kept by no cache, nothing of the
exception (which may quote a resident) reaches the counter, and the log has it once, under the
request's correlation id."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Sequence

import httpx
import pytest
from fastapi import FastAPI
from structlog.contextvars import merge_contextvars
from structlog.testing import capture_logs

from services.intake.application import Intake
from services.intake.main import create_app
from shared.eventstore.group_commit import Command, Written
from shared.http.security_headers import API_POLICY
from shared.settings import Settings
from tests.unit.test_fast_route import CASE, _token

#: What a careless exception says: a resident's phone number.
LEAK = "failed for resident 13812345678"


class Failing:
    command_digest_key = b"unhandled-error-tests-command-digest-key"

    def send(self, command: Command, ids: Sequence[uuid.UUID]) -> Awaitable[Written]:
        return self.submit(command, ids)  # answered when awaited, as the real one

    async def submit(self, command: Command, ids: Sequence[uuid.UUID]) -> Written:
        raise RuntimeError(LEAK)


@pytest.fixture(scope="module")
def settings() -> Settings:
    return Settings(environment="development", log_json=False)


@pytest.fixture(scope="module")
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app: FastAPI = create_app(settings)
    app.state.intake = Intake(Failing(), app.state.catalogue)  # type: ignore[arg-type]

    @app.get("/cases-of-a-bug")
    async def a_bug() -> None:
        raise RuntimeError(LEAK)

    # raise_app_exceptions: an exception the service lets out fails the test.
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://sixstep.test") as client_:
        yield client_


@pytest.mark.parametrize("way", ["a read route", "a write answered directly"])
async def test_a_bug_is_a_500_internal_error_with_the_headers_and_no_exception_text(
        client: httpx.AsyncClient, settings: Settings, way: str) -> None:
    headers = {"Authorization": _token(settings), "X-Correlation-Id": "corr-bug-1",
               "Idempotency-Key": "key-00000500", "Content-Type": "application/json"}
    with capture_logs(processors=[merge_contextvars]) as logs:
        if way == "a read route":
            answer = await client.get("/cases-of-a-bug", headers=headers)
        else:
            answer = await client.post("/cases", headers=headers,
                                       content=json.dumps(CASE).encode())
    assert answer.status_code == 500
    assert answer.json()["error"]["code"] == "internal_error"
    assert answer.json()["error"]["details"] == {"correlation_id": "corr-bug-1"}
    assert "13812345678" not in answer.text and "RuntimeError" not in answer.text
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["content-security-policy"] == API_POLICY
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["x-correlation-id"] == "corr-bug-1"
    [line] = [entry for entry in logs if entry["log_level"] in ("error", "critical")]
    assert line["event"] == "http.unhandled_error"
    assert line["correlation_id"] == "corr-bug-1" and line["exc_info"] is True

"""Bad input: schemathesis generates requests from each service's own OpenAPI description and
sends them with a valid token; no answer is a 5xx, and none breaks the schema it promises."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import hypothesis
import schemathesis

# Imported at collection, not at a test's first ``from_dict``: pytest rewrites a plugin's
# modules (schemathesis is one) as they are first imported, and CPython 3.11.7's compile
# fails spuriously when the garbage collector finalises a coroutine in the middle ("AST
# constructor recursion depth mismatch", gh-106905: stop 50's CI run, the coroutine a
# consumer's task left running by a shutdown: tests/faults/test_cancelled_twice.py).
import schemathesis.specs.openapi.schemas
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from services.feedback.main import create_app as feedback_app
from services.followup.main import create_app as followup_app
from services.intake.main import create_app as intake_app
from shared.settings import Settings
from tests.support import TEST_CENTER, running

EXAMPLES = 12  # per operation: enough to shake out shape errors, cheap on two cores


async def fuzz(app: FastAPI, client: httpx.AsyncClient, examples: int = EXAMPLES) -> list[str]:
    """Every operation, ``examples`` generated requests each; the failures, described."""
    schema = schemathesis.openapi.from_dict(app.openapi())
    loop = asyncio.get_running_loop()
    failures: list[str] = []
    sent = [0]

    def send(kwargs: dict[str, Any]) -> httpx.Response:
        kwargs.pop("url", None)
        path = kwargs.pop("path")
        call = client.request(kwargs.pop("method"), path, **kwargs)
        sent[0] += 1
        return asyncio.run_coroutine_threadsafe(call, loop).result(timeout=60)

    def operation(op: Any) -> Callable[[], None]:
        @hypothesis.settings(max_examples=examples, deadline=None, database=None,
                             phases=[Phase.explicit, Phase.generate],
                             suppress_health_check=list(HealthCheck))
        @hypothesis.given(op.as_strategy())
        def check(case: Any) -> None:
            kwargs = case.as_transport_kwargs(base_url="http://sixstep.test")
            request = {"method": kwargs["method"], "path": case.formatted_path,
                       "params": kwargs.get("params"),
                       "headers": {k: v for k, v in (kwargs.get("headers") or {}).items()
                                   if k.lower() not in ("authorization", "user-agent")}}
            if "json" in kwargs:
                request["json"] = kwargs["json"]
            elif isinstance(kwargs.get("data"), dict):
                request["data"] = kwargs["data"]  # a form (Open311)
            elif "data" in kwargs:
                request["content"] = kwargs["data"]
            response = send(request)
            try:
                case.validate_response(response, checks=[not_a_server_error,
                                                          response_schema_conformance])
            except Exception as exc:  # a check failed: remember it, keep looking
                failures.append(f"{case.method} {case.path}: {response.status_code} "
                                f"{response.text[:200]} -- {str(exc)[:300]}")

        return check

    def run_all() -> None:
        for result in schema.get_all_operations():
            op = result.ok()
            operation(op)()

    await asyncio.to_thread(run_all)
    operations = len(list(schema.get_all_operations()))
    assert sent[0] >= operations * 2, f"only {sent[0]} requests for {operations} operations"
    print(f"{app.title}: {sent[0]} generated requests over {operations} operations")
    return failures


async def test_intake_answers_generated_requests_without_5xx(settings: Settings) -> None:
    app = intake_app(settings)
    async with running(app) as client:
        assert await fuzz(app, client) == []


async def test_followup_answers_generated_requests_without_5xx(settings: Settings) -> None:
    app = followup_app(settings)
    async with running(app) as client:
        assert await fuzz(app, client) == []


async def test_feedback_answers_generated_requests_without_5xx(settings: Settings) -> None:
    app = feedback_app(settings)
    # intake's log is there too, so a made-up ?after_intake= is refused at once, not waited on
    async with running(intake_app(settings)), running(app) as client:
        assert await fuzz(app, client) == []


async def test_a_position_past_what_a_store_can_hold_is_a_422_not_an_overflow(
        settings: Settings) -> None:
    """``?after=2**73`` (the fuzzer's) overflowed asyncpg's int64 in the plans' position query:
    a 500. Every ``?after=`` is bounded by PostgreSQL's bigint, where positions come from."""
    too_far, largest = 2**73, 2**63 - 1
    async with running(intake_app(settings)) as intake:
        for path in ("/plans", "/cases"):
            answer = await intake.get(path, params={"after": too_far, "center_id": TEST_CENTER,
                                                    "resident_id": str(uuid.uuid4())})
            assert answer.status_code == 422, (path, answer.text)
            assert answer.json()["error"]["code"] == "validation_failed"
        # The largest a store could hand out is a position not written yet: 400, as before.
        answer = await intake.get("/plans", params={"after": largest,
                                                    "resident_id": str(uuid.uuid4())})
        assert answer.status_code == 400, answer.text
        async with running(feedback_app(settings)) as feedback:
            for name in ("after", "after_intake"):
                answer = await feedback.get("/figures", params={
                    name: too_far, "center_id": TEST_CENTER})
                assert answer.status_code == 422, (name, answer.text)

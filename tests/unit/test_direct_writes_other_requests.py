"""What is not an ordinary write gets the same answer behind the front door's direct writes as
through FastAPI's stack: another method on a write route (HEAD, OPTIONS, GET, PUT), a POST
no route takes, Open311's form POST, the pages, and a write route included after the app has
served (after intake's mounts: the router finds it, its ``FastRoute``'s fast path answers;
``test_direct_routes`` has a route added to a leading router)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fastapi import APIRouter

from shared.http.dependencies import Write, WrittenPublic
from shared.http.fast_route import FastRoute
from shared.settings import Settings
from tests.unit.test_direct_writes import Pair, _headers
from tests.unit.test_fast_route import CASE, STEP, _token


@pytest.fixture(scope="module")
def local_settings() -> Settings:
    return Settings(environment="development", log_json=False, max_body_bytes=4096)


@pytest.fixture(scope="module")
async def pair(local_settings: Settings) -> AsyncIterator[Pair]:
    both = Pair(local_settings)
    yield both
    for client in both.clients:
        await client.aclose()


async def _same(pair: Pair, method: str, path: str, headers: dict[str, Any],
                content: bytes = b"") -> int:
    headers = {"X-Correlation-Id": "corr-1", **headers}
    direct, stacked = [await client.request(method, path, headers=headers, content=content)
                       for client in pair.clients]
    assert (direct.status_code, direct.content) == (stacked.status_code, stacked.content), \
        (method, path)
    assert _headers(direct) == _headers(stacked), (method, path)
    return direct.status_code


async def test_other_methods_paths_forms_and_pages_get_the_same_answer_directly(
        pair: Pair, local_settings: Settings) -> None:
    good = {"Authorization": _token(local_settings), "Idempotency-Key": "key-00000031",
            "Content-Type": "application/json"}
    body = json.dumps(CASE).encode()
    statuses = set()
    for method in ("HEAD", "OPTIONS", "GET", "PUT", "PATCH", "DELETE"):
        for path in ("/cases", STEP):
            statuses.add(await _same(pair, method, path, good, body))
    for path in ("/cases/", f"/cases/{uuid.UUID(int=7)}/no-such-step", "/nowhere",
                 f"/cases/{uuid.UUID(int=7)}"):
        statuses.add(await _same(pair, "POST", path, good, body))
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    statuses.add(await _same(pair, "POST", "/open311/v2/requests.json", form,
                             b"api_key=nope&service_code=SA-HARDSHIP-SUBSIDY"))
    statuses.add(await _same(pair, "POST", "/open311/v2/requests.json", form, b"\xff=\xff"))
    for page in ("/", "/counter"):
        statuses.add(await _same(pair, "GET", page, {}))
    assert {200, 404, 405} <= statuses, statuses


async def test_a_write_route_included_after_the_app_has_served_is_answered_the_same(
        pair: Pair, local_settings: Settings) -> None:
    good = {"Authorization": _token(local_settings), "Idempotency-Key": "key-00000032",
            "Content-Type": "application/json"}
    assert await _same(pair, "POST", "/cases", good, json.dumps(CASE).encode()) == 201
    late = APIRouter(prefix="/late", route_class=FastRoute)

    @late.post("/{case_id}", response_model=WrittenPublic)
    async def noted(case_id: uuid.UUID, write: Write) -> WrittenPublic:
        return WrittenPublic(id=str(case_id), version=1, position=write.expected_version or 0)

    for app in pair.apps:
        app.include_router(late)
    path = f"/late/{uuid.UUID(int=5)}"
    assert await _same(pair, "POST", path, {**good, "If-Match": "4"}, b"") == 200
    assert await _same(pair, "POST", path, {**good, "If-Match": "four"}, b"") == 400
    assert await _same(pair, "POST", "/late/x", good, b"") == 422
    assert await _same(pair, "HEAD", path, good, b"") == 405

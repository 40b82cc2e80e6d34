"""A write answered directly behind the front door is answered exactly as through FastAPI's stack.

Each request goes to two copies of the intake app, one as it runs (the front door hands a
write route's request to ``DirectWrites``) and one whose front door hands every request to
FastAPI's stack (exception middleware, exit stacks, router, ``request_response``). Status,
headers and body must be the same, for every way a write can be right or wrong: malformed
JSON, wrong types, unknown fields, no token, another center's token, a body too large (said
by its length or streamed), a NUL, an error of the use case, an exception nothing handles;
and the request must be counted in the metrics under the same route and status, and traced
in a span of the same name, attributes and status.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Iterator, Sequence
from typing import Any

import httpx
import pytest
import structlog
from fastapi import APIRouter, FastAPI
from opentelemetry.trace import SpanKind
from prometheus_client import generate_latest

from services.intake.application import Intake
from services.intake.main import create_app
from shared.eventstore.group_commit import Command, Written
from shared.http.dependencies import Write, WrittenPublic
from shared.http.direct_writes import DirectWrites
from shared.http.fast_route import FastRoute
from shared.http.front_door import FrontDoor
from shared.kernel.errors import OutcomeUnknown, RuleViolated, VersionConflict
from shared.runtime.logs import log_processors
from shared.settings import Settings
from tests.tracing.memory import traced
from tests.unit.test_fast_route import CASE, STEP, _token, _variants


class Committer:
    """Accepts every command at version 1, position 7, or raises what it is told to."""

    command_digest_key = b"direct-writes-tests-command-digest-key"

    def __init__(self) -> None:
        self.fails: Exception | None = None

    def send(self, command: Command, ids: Sequence[uuid.UUID]) -> Awaitable[Written]:
        return self.submit(command, ids)  # answered when awaited, as the real one

    async def submit(self, command: Command, ids: Sequence[uuid.UUID]) -> Written:
        if self.fails is not None:
            raise self.fails
        return Written(ids[0], 1, 7)


async def _streamed(parts: list[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def _front_door(app: FastAPI) -> FrontDoor:
    if app.middleware_stack is None:
        app.middleware_stack = app.build_middleware_stack()
    layer: Any = app.middleware_stack
    while not isinstance(layer, FrontDoor):
        layer = getattr(layer, "app", None) or layer.inner
    return layer


def _headers(answer: httpx.Response) -> list[tuple[str, str]]:
    """The answer's headers in order, a new correlation id (a refused one's) as ``new``."""
    sent = answer.request.headers["x-correlation-id"]
    return [(name, "new" if name == "x-correlation-id" and value != sent else value)
            for name, value in answer.headers.multi_items()]


class Pair:
    """The app as it runs, and the same app with every request through FastAPI's stack."""

    def __init__(self, settings: Settings) -> None:
        self.apps, self.committers, self.clients = [], [], []
        for direct in (True, False):
            app = create_app(settings)
            committer = Committer()
            app.state.intake = Intake(committer, app.state.catalogue)  # type: ignore[arg-type]
            door = _front_door(app)
            assert isinstance(door.inner, DirectWrites), "intake's writes are answered directly"
            if not direct:
                door.inner = door.app
            self.apps.append(app)
            self.committers.append(committer)
            self.clients.append(httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
                base_url="http://sixstep.test"))

    def fail_with(self, exc: Exception | None) -> None:
        for committer in self.committers:
            committer.fails = exc

    async def same(self, path: str, headers: dict[str, Any],
                   content: bytes | list[bytes]) -> httpx.Response:
        """``content`` a list: sent in those parts, without a Content-Length."""
        headers = {"X-Correlation-Id": "corr-1", **headers}
        answers = []
        for client in self.clients:
            body = content if isinstance(content, bytes) else _streamed(content)
            answers.append(await client.post(path, headers=headers, content=body))
        direct, stacked = answers
        assert (direct.status_code, direct.content) == (stacked.status_code, stacked.content), \
            (path, headers, content)
        assert _headers(direct) == _headers(stacked), (path, headers)
        return direct

    def counted(self) -> list[list[str]]:
        """Each app's request counts, by method, route and status."""
        return [sorted(line for line in generate_latest(_front_door(app).metrics.registry)
                       .decode().splitlines()
                       if line.startswith("sixstep_http_requests_total{")) for app in self.apps]


@pytest.fixture(scope="module")
def local_settings() -> Settings:
    return Settings(environment="development", log_json=False, max_body_bytes=4096)


@pytest.fixture(scope="module")
async def pair(local_settings: Settings) -> AsyncIterator[Pair]:
    both = Pair(local_settings)
    yield both
    for client in both.clients:
        await client.aclose()


def _good(settings: Settings) -> dict[str, Any]:
    return {"Authorization": _token(settings), "Idempotency-Key": "key-00000021",
            "Content-Type": "application/json"}


async def test_every_write_good_or_bad_gets_the_same_answer_directly(
        pair: Pair, local_settings: Settings) -> None:
    good = _good(local_settings)
    body = json.dumps(CASE).encode()
    variants = [
        *_variants(local_settings),
        ("/cases", good, json.dumps({**CASE, "clerk_id": "x" * 5000}).encode()),  # > max
        ("/cases", good, [body[:10], b" " * 5000, body[10:]]),  # streamed, > max
        ("/cases", good, [body[:10], body[10:]]),  # streamed, in two parts
        ("/cases", good, body[:-1] + b', "clerk_id": "a\\u0000b"}'),  # a JSON-escaped NUL
        ("/cases", good, json.dumps({**CASE, "center_id": 7}).encode()),  # a wrong type
        ("/cases", good, json.dumps({**CASE, "correlation_id": "corr-9"}).encode()),
        ("/cases", {**good, "X-Correlation-Id": "13912345678"}, body),  # a phone number
        ("/cases", {**good, "Idempotency-Key": "13912345678-key"}, body),
        ("/cases", {**good, "Authorization": "Basic abc"}, body),
        (f"/cases/{uuid.UUID(int=9)}/restate", good, b'{"restatement": 5}'),
        (f"/cases/{uuid.UUID(int=9)}/concerns", good, b'{"emotion": "calm", "x": 1}'),
    ]
    statuses = set()
    for path, headers, content in variants:
        statuses.add((await pair.same(path, headers, content)).status_code)
    assert {200, 201, 400, 401, 403, 413, 422} <= statuses
    direct, stacked = pair.counted()
    assert direct == stacked and direct


@pytest.fixture
def plain_logs() -> Iterator[None]:
    """The services' own log processors (the traceback formatted as text): unconfigured,
    structlog draws a bug's traceback with every frame's locals, ~15 s of CPU each here."""
    structlog.configure(processors=log_processors(json=False))
    try:
        yield
    finally:
        structlog.reset_defaults()


async def test_what_the_use_case_raises_is_answered_the_same_directly(
        pair: Pair, local_settings: Settings, plain_logs: None) -> None:
    good = _good(local_settings)
    statuses = []
    try:
        for exc in (VersionConflict("someone wrote first"), RuleViolated("not in this state"),
                    OutcomeUnknown("not confirmed in time"), RuntimeError("a bug")):
            pair.fail_with(exc)
            for path, content in (("/cases", json.dumps(CASE).encode()),
                                  (STEP, json.dumps({"words": "想问问补贴"}).encode())):
                statuses.append((await pair.same(path, {**good, "If-Match": "2"}, content))
                                .status_code)
    finally:
        pair.fail_with(None)
    assert statuses == [409, 409, 409, 409, 503, 503, 500, 500]
    direct, stacked = pair.counted()
    assert direct == stacked and direct


async def test_a_write_s_span_is_the_same_directly(pair: Pair, local_settings: Settings) -> None:
    good = _good(local_settings)
    spans = []
    for client in pair.clients:
        with traced() as exporter:
            for content in (json.dumps(CASE).encode(), b"{", b'{"center_id": 7}'):
                await client.post("/cases", headers=good, content=content)
            await client.post(STEP, headers={**good, "If-Match": "x"},
                              content=json.dumps({"words": "想问问补贴"}).encode())
            spans.append([(s.name, s.kind, dict(s.attributes or {}), s.status.status_code)
                          for s in exporter.get_finished_spans()
                          if s.kind == SpanKind.SERVER])
    direct, stacked = spans
    assert direct == stacked
    assert [name for name, *_ in direct] == ["POST /cases"] * 3 + ["POST /cases/{case_id}/hear"]


# -- what is not an ordinary write (redteam103) ---------------------------------------------
# Another method on a write route, a POST no route takes, Open311's form POST, the pages, and
# a write route included after the app has served (after intake's mounts: the router finds
# it, its FastRoute's fast path answers; test_direct_routes has a route added to a leading
# router) get the same answer both ways.

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
            if method in ("GET", "HEAD") and path == "/cases":
                continue  # the case list: a read, which wants the pool these apps lack
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

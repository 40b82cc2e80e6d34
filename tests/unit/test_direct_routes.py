"""The write routes found directly answer exactly as FastAPI's router would have.

Every request goes to the same intake app twice: as it runs (``DirectRoutes`` in front of
its router) and with the router alone. Status, body and headers must be the same, for every
way a write can be right or wrong and for requests the router must keep deciding (another
method, a path no write takes, a trailing slash). The scope a route is handed must be the
one the router builds, key by key.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request

from shared.http.app import new_app
from shared.http.direct_routes import DirectRoutes
from shared.http.fast_route import FastRoute
from shared.settings import Settings
from tests.unit.test_fast_route import CASE, STEP, _app, _token, _variants


@pytest.fixture(scope="module")
def local_settings() -> Settings:
    return Settings(environment="development", log_json=False)


@pytest.fixture(scope="module")
def app(local_settings: Settings) -> FastAPI:
    return _app(local_settings, standard=False)


def _lane(app: FastAPI) -> DirectRoutes:
    lane = app.router.middleware_stack
    assert isinstance(lane, DirectRoutes), "new_app puts DirectRoutes in front of the router"
    return lane


class Both:
    """Sends a request through DirectRoutes and through the router alone."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.lane = _lane(app)
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                        base_url="http://sixstep.test")

    async def send(self, method: str, path: str, headers: dict[str, Any],
                   content: bytes) -> tuple[httpx.Response, httpx.Response]:
        answers = []
        for stack in (self.lane, self.lane.standard):
            self.app.router.middleware_stack = stack
            try:
                answers.append(await self.client.request(method, path, headers=headers,
                                                         content=content))
            finally:
                self.app.router.middleware_stack = self.lane
        return answers[0], answers[1]

    async def same(self, method: str, path: str, headers: dict[str, Any],
                   content: bytes) -> httpx.Response:
        direct, routed = await self.send(method, path, {"X-Correlation-Id": "corr-1", **headers},
                                         content)
        assert (direct.status_code, direct.content) == (routed.status_code, routed.content), \
            (method, path, headers, content)
        assert direct.headers == routed.headers, (method, path)
        return direct


@pytest.fixture(scope="module")
async def both(app: FastAPI) -> AsyncIterator[Both]:
    pair = Both(app)
    yield pair
    await pair.client.aclose()


async def test_every_write_variant_gets_the_router_s_answer(
        both: Both, local_settings: Settings) -> None:
    statuses = set()
    for path, headers, content in _variants(local_settings):
        statuses.add((await both.same("POST", path, headers, content)).status_code)
    assert {201, 200, 400, 401, 403, 422} <= statuses


async def test_what_the_writes_do_not_take_is_still_the_router_s(
        both: Both, local_settings: Settings) -> None:
    good = {"Authorization": _token(local_settings), "Idempotency-Key": "key-00000011",
            "Content-Type": "application/json"}
    body = json.dumps(CASE).encode()
    case = uuid.UUID(int=7)
    statuses = set()
    for method, path in (("POST", "/cases/"), ("POST", f"/cases/{case}"),
                         ("POST", f"/cases/{case}/no-such-step"), ("PUT", "/cases"),
                         ("GET", STEP), ("GET", "/catalogue"), ("POST", "/nowhere"),
                         ("POST", "/visits"), ("DELETE", STEP), ("POST", STEP + "/")):
        statuses.add((await both.same(method, path, good, body)).status_code)
    assert {404, 405} <= statuses


def _scope_seen(app: FastAPI) -> list[dict[str, Any]]:
    """An included FastRoute router whose route keeps the scope it was handed."""
    seen: list[dict[str, Any]] = []
    writes = APIRouter(prefix="/things", route_class=FastRoute)

    @writes.post("/{thing_id}/note", status_code=201)
    async def note(thing_id: uuid.UUID, request: Request) -> dict[str, str]:
        seen.append(dict(request.scope))
        return {"thing_id": str(thing_id)}

    @writes.get("/{thing_id}/note")
    async def read(thing_id: uuid.UUID) -> dict[str, str]:
        return {}

    app.include_router(writes)
    return seen


async def test_the_route_is_handed_the_scope_the_router_builds() -> None:
    app = new_app()
    seen = _scope_seen(app)
    lane = _lane(app)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://t") as client:
        for stack in (lane, lane.standard):
            app.router.middleware_stack = stack
            r = await client.post(f"/things/{uuid.UUID(int=3)}/note")
            assert r.status_code == 201, r.text
    app.router.middleware_stack = lane
    assert lane._match({"type": "http", "method": "POST", "path": "/things/x/note",
                        "root_path": ""}) is not None, "the first request went directly"
    direct, routed = seen
    assert list(direct) == list(routed), "the same keys, in the same order"
    per_request = {"fastapi_middleware_astack", "fastapi_inner_astack",
                   "fastapi_function_astack", "state", "client", "extensions"}
    for key in direct:
        if key in per_request:
            assert type(direct[key]) is type(routed[key]), key
        else:
            assert direct[key] == routed[key], key
    assert direct["path_params"] == {"thing_id": str(uuid.UUID(int=3))}
    assert direct["route"].path == "/things/{thing_id}/note"


async def test_a_write_is_not_matched_by_the_router(
        app: FastAPI, local_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    lane = _lane(app)
    routed: list[str] = []
    standard = lane.standard

    async def counting(scope: Any, receive: Any, send: Any) -> None:
        routed.append(scope["path"])
        await standard(scope, receive, send)

    monkeypatch.setattr(lane, "standard", counting)
    headers = {"Authorization": _token(local_settings), "Idempotency-Key": "key-00000012"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://sixstep.test") as client:
        assert (await client.post("/cases", json=CASE, headers=headers)).status_code == 201
        assert (await client.post(STEP, json={"words": "x"}, headers=headers)).status_code == 200
        assert routed == []
        await client.get("/catalogue", headers=headers)
        await client.post("/cases/", json=CASE, headers=headers)
    assert routed == ["/catalogue", "/cases/"]


async def test_a_write_does_not_walk_the_app_s_routes(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """FastAPI's routes version walks every route of the app's router on each call (~2 % of
    intake's request thread): a write found directly asks the routers' own counters."""
    app = new_app()
    for n in range(40):  # the app's own routes, as intake has dozens
        app.add_api_route(f"/plain-{n}", lambda: {}, methods=["GET"])
    _scope_seen(app)
    walks: list[int] = []
    walk = APIRouter._get_routes_version

    def counted(router: APIRouter, seen: set[int] | None = None) -> int:
        walks.append(id(router))
        return walk(router, seen)

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://t") as client:
        assert (await client.post(f"/things/{uuid.UUID(int=1)}/note")).status_code == 201
        monkeypatch.setattr(APIRouter, "_get_routes_version", counted)
        for n in range(3):
            assert (await client.post(f"/things/{uuid.UUID(int=n)}/note")).status_code == 201
    assert walks == []


async def test_routes_added_after_the_first_write_are_found() -> None:
    """A route added to an included router, or a router included, after the routes were
    first read: the router's answer, and the new write routes found directly."""
    app = new_app()
    _scope_seen(app)
    lane = _lane(app)
    late = APIRouter(prefix="/late", route_class=FastRoute)

    @late.post("/one", status_code=201)
    async def one() -> dict[str, str]:
        return {"late": "one"}

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://t") as client:
        assert (await client.post(f"/things/{uuid.UUID(int=1)}/note")).status_code == 201
        assert (await client.post("/late/one")).status_code == 404
        app.include_router(late)
        assert (await client.post("/late/one")).json() == {"late": "one"}

        @late.post("/two", status_code=201)
        async def two() -> dict[str, str]:
            return {"late": "two"}

        scope = {"type": "http", "method": "POST", "path": "/late/two", "root_path": ""}
        assert lane._match(scope) is not None, "a route added to an included router"
        assert (await client.post("/late/two")).json() == {"late": "two"}

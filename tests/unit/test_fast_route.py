"""The write routes' fast path answers every request exactly as FastAPI's own path does.

Each request goes to two copies of the intake app: one as it runs, one forced onto FastAPI's
dependency solver (any dependency override turns the fast path off). Status, body and headers
must be the same, for ordinary writes and for every way a write can be wrong. The group
commit behind the routes is replaced by one that accepts everything at version 1: what is
compared here is the HTTP layer, not the store. The FastAPI internals the fast path calls are
checked by name at the end: an upgrade that takes one away fails here, naming it.
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
import tomllib
import uuid
from collections.abc import AsyncIterator, Awaitable, Sequence
from pathlib import Path
from typing import Any

import fastapi
import fastapi.routing
import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import shared.http.fast_route
from services.intake.application import Intake
from services.intake.main import create_app
from shared.eventstore.group_commit import Command, Written
from shared.http.fast_route import FastRoute
from shared.security.principals import Role
from shared.security.tokens import issue_token
from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
CENTER = "SH-PD-HUAMU"
CASE = {"center_id": CENTER, "counter_id": "window-1", "clerk_id": "clerk-001",
        "service_item": "SA-HARDSHIP-SUBSIDY"}
STEP = f"/cases/{uuid.UUID(int=7)}/hear"


class AcceptingCommitter:
    """Accepts every command at version 1, position 7, without running it."""

    command_digest_key = b"fast-route-tests-command-digest-key"

    def send(self, command: Command, ids: Sequence[uuid.UUID]) -> Awaitable[Written]:
        return self.submit(command, ids)  # answered when awaited, as the real one

    async def submit(self, command: Command, ids: Sequence[uuid.UUID]) -> Written:
        return Written(ids[0], 1, 7)


def _app(settings_: Settings, *, standard: bool) -> FastAPI:
    app = create_app(settings_)
    app.state.intake = Intake(AcceptingCommitter(), app.state.catalogue)  # type: ignore[arg-type]
    if standard:
        app.dependency_overrides[_never_used] = _never_used
    return app


def _never_used() -> None:
    """An override for nothing: its presence alone sends every request to FastAPI's path."""


@pytest.fixture(scope="module")
def local_settings() -> Settings:
    return Settings(environment="development", log_json=False)


@pytest.fixture(scope="module")
async def clients(local_settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, ...]]:
    out = []
    for standard in (False, True):
        transport = httpx.ASGITransport(app=_app(local_settings, standard=standard))
        out.append(httpx.AsyncClient(transport=transport, base_url="http://sixstep.test"))
    yield tuple(out)
    for client in out:
        await client.aclose()


def _token(settings_: Settings, role: Role = Role.CLERK, center: str | None = CENTER) -> str:
    return "Bearer " + issue_token(settings_, "clerk-001", role, center)


async def same_answer(clients: tuple[httpx.AsyncClient, ...], path: str,
                      headers: dict[str, Any], content: bytes) -> httpx.Response:
    headers = {"X-Correlation-Id": "corr-1", **headers}
    fast, standard = [await c.post(path, headers=headers, content=content) for c in clients]
    assert (fast.status_code, fast.content) == (standard.status_code, standard.content), \
        (path, headers, content)
    assert fast.headers == standard.headers
    return fast


def _variants(settings_: Settings) -> list[tuple[str, dict[str, Any], bytes]]:
    clerk = _token(settings_)
    good = {"Authorization": clerk, "Idempotency-Key": "key-00000001",
            "Content-Type": "application/json"}
    body = json.dumps(CASE).encode()
    cases: list[tuple[str, dict[str, Any], bytes]] = []
    for path, ok in (("/cases", body), (STEP, json.dumps({"words": "想问问补贴"}).encode())):
        cases += [
            (path, good, ok),
            (path, {**good, "Content-Type": "application/json; charset=utf-8"}, ok),
            (path, {**good, "If-Match": '"3"'}, ok),
            (path, {**good, "If-Match": 'W/"3"'}, ok),
            (path, {**good, "If-Match": "three"}, ok),
            (path, {**good, "If-Match": "²".encode("latin-1")}, ok),
            (path, {k: v for k, v in good.items() if k != "Idempotency-Key"}, ok),
            (path, {**good, "Idempotency-Key": "short"}, ok),
            (path, {**good, "Idempotency-Key": "has spaces in it"}, ok),
            (path, {**good, "Authorization": _token(settings_, Role.ANALYST, None)}, ok),
            (path, {**good, "Authorization": _token(settings_, Role.OPS, None)}, ok),
            (path, {**good, "Authorization": _token(settings_, center="SH-PD-OTHER")}, ok),
            (path, {**good, "Authorization": "Bearer not-a-token"}, ok),
            (path, {k: v for k, v in good.items() if k != "Authorization"}, ok),
            (path, {**good, "Content-Type": "text/plain"}, ok),
            (path, {k: v for k, v in good.items() if k != "Content-Type"}, ok),
            (path, {**good, "Content-Type": "application/merge-patch+json"}, ok),
            (path, good, b""),
            (path, good, b"{"),
            (path, good, b"[1, 2]"),
            (path, good, b"null"),
            (path, good, b'{"center_id": NaN}'),
            (path, good, b'{"words": 123456789012345678901234567890}'),
            (path, good, b'{"words": "\\ud800"}'),
            (path, good, ok.decode().encode("utf-16")),
            (path, good, b"\xef\xbb\xbf" + ok),
            (path, good, ok[:-1] + b', "unexpected": 1}'),
            (path, good, ok[:-1] + b', "occurred_at": "2026-03-02T09:15:00"}'),
            (path, good, ok[:-1] + b', "correlation_id": "from-the-body"}'),
            (path, good, b"\x00" + ok),
        ]
    cases += [
        ("/cases", good, json.dumps({**CASE, "service_item": "NO-SUCH-ITEM"}).encode()),
        ("/cases", good, json.dumps({**CASE, "channel": "fax"}).encode()),
        ("/cases", good, b'{"center_id": "A", ' + body[1:]),  # the last of a duplicate counts
        ("/cases/not-a-uuid/hear", good, b'{"words": "x"}'),
        (f"/cases/{uuid.UUID(int=7).hex}/hear", good, b'{"words": "x"}'),
    ]
    return cases


async def test_every_variant_of_a_write_gets_the_same_answer_on_both_paths(
        clients: tuple[httpx.AsyncClient, ...], local_settings: Settings) -> None:
    statuses = set()
    for path, headers, content in _variants(local_settings):
        statuses.add((await same_answer(clients, path, headers, content)).status_code)
    assert {201, 200, 400, 401, 403, 422} <= statuses


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=20) | st.sampled_from(["SH-PD-HUAMU", "counter", "phone", "", " x "]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=3),
    max_leaves=6)


@settings(max_examples=150, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture])
@given(changes=st.dictionaries(st.sampled_from([*CASE, "channel", "resident_id", "occurred_at",
                                                "correlation_id", "extra"]),
                               json_values, max_size=4),
       drop=st.sets(st.sampled_from(list(CASE)), max_size=2))
async def test_any_json_body_gets_the_same_answer_on_both_paths(
        clients: tuple[httpx.AsyncClient, ...], local_settings: Settings,
        changes: dict[str, Any], drop: set[str]) -> None:
    body = {k: v for k, v in {**CASE, **changes}.items() if k not in drop}
    headers = {"Authorization": _token(local_settings), "Idempotency-Key": "key-00000002",
               "Content-Type": "application/json"}
    await same_answer(clients, "/cases", headers, json.dumps(body).encode())


async def test_only_the_unusual_write_goes_through_fastapis_dependency_solver(
        clients: tuple[httpx.AsyncClient, ...], local_settings: Settings,
        monkeypatch: pytest.MonkeyPatch) -> None:
    solved: list[str] = []
    solve = fastapi.routing.solve_dependencies

    async def counting(**kwargs: Any) -> Any:
        solved.append(kwargs["request"].url.path)
        return await solve(**kwargs)

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", counting)
    fast, _ = clients
    headers = {"Authorization": _token(local_settings), "Idempotency-Key": "key-00000003"}
    assert (await fast.post("/cases", json=CASE, headers=headers)).status_code == 201
    assert (await fast.post(STEP, json={"words": "x"}, headers=headers)).status_code == 200
    assert solved == []
    refused = await fast.post("/cases", json=CASE, headers={**headers, "Idempotency-Key": "x"})
    assert refused.json()["error"]["code"] == "idempotency_key_invalid"
    assert solved == ["/cases"]


async def test_a_client_that_leaves_before_its_body_arrives_gets_the_same_answer(
        local_settings: Settings) -> None:
    answers = []
    for standard in (False, True):
        app = _app(local_settings, standard=standard)
        headers = [(b"authorization", _token(local_settings).encode()),
                   (b"idempotency-key", b"key-00000004"), (b"content-type", b"application/json"),
                   (b"x-correlation-id", b"corr-2")]
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                 "method": "POST", "scheme": "http", "path": "/cases", "raw_path": b"/cases",
                 "query_string": b"", "root_path": "", "headers": headers,
                 "server": ("sixstep.test", 80), "client": ("127.0.0.1", 5000), "state": {}}
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any], sent: list[dict[str, Any]] = sent) -> None:
            sent.append(message)

        await app(scope, receive, send)
        answers.append(sent)
    assert answers[0] == answers[1]
    assert answers[0][0]["status"] == 400


# -- the FastAPI internals FastRoute relies on ---------------------------------------------
# FastRoute (shared/http/fast_route.py) calls FastAPI's own functions and reads its routes'
# attributes, none of them public API: pyproject.toml pins FastAPI's minor version, and these
# tests name the internal an upgrade took away or changed, before any answer differs.

PINNED = "FastRoute (shared/http/fast_route.py) relies on it; pyproject.toml pins fastapi"

INTERNALS: dict[str, tuple[str, ...] | None] = {
    # name: the parameters FastRoute passes (None: used as a value, no call)
    "fastapi.routing._effective_route_context_var": None,
    "fastapi.routing.run_endpoint_function": ("dependant", "values", "is_coroutine"),
    "fastapi.routing.serialize_response": (
        "field", "response_content", "include", "exclude", "by_alias", "exclude_unset",
        "exclude_defaults", "exclude_none", "dump_json"),
    "fastapi.dependencies.utils.request_body_to_args": (
        "body_fields", "received_body", "embed_body_fields"),
    "fastapi.dependencies.utils.request_params_to_args": ("fields", "received_params"),
    "fastapi.dependencies.utils._should_embed_body_fields": ("fields",),
    "fastapi.dependencies.utils._get_form_models": ("field",),
    "fastapi.utils.is_body_allowed_for_status_code": ("status_code",),
    "fastapi._body_limit.get_body_limit_error": ("exc",),
    "fastapi.datastructures.DefaultPlaceholder": None,
    "starlette.middleware.body_limit.MAX_BODY_SIZE_SCOPE_KEY": None,
}
DEPENDANT_FIELDS = (
    "path_params", "query_params", "header_params", "cookie_params", "body_params",
    "dependencies", "name", "call", "request_param_name", "websocket_param_name",
    "http_connection_param_name", "response_param_name", "background_tasks_param_name",
    "security_scopes_param_name")
ROUTE_ATTRIBUTES = (
    "dependant", "status_code", "response_class", "response_field", "response_model_include",
    "response_model_exclude", "response_model_by_alias", "response_model_exclude_unset",
    "response_model_exclude_defaults", "response_model_exclude_none",
    "dependency_overrides_provider", "_embed_body_fields")


def test_fastapi_is_the_minor_version_pyproject_pins() -> None:
    pins = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pin = next(p for p in pins if re.match(r"fastapi\b", p))
    wanted = re.fullmatch(r"fastapi>=(\d+)\.(\d+)(?:\.\d+)?,<(\d+)\.(\d+)", pin)
    assert wanted, f"pyproject.toml must pin fastapi's minor version ({PINNED}): {pin!r}"
    installed = tuple(int(n) for n in fastapi.__version__.split(".")[:2])
    assert installed == (int(wanted[1]), int(wanted[2])), (
        f"fastapi {fastapi.__version__} is installed, {pin!r} pinned: {PINNED}")


@pytest.mark.parametrize("name", INTERNALS)
def test_the_fastapi_internals_fast_route_calls_are_there(name: str) -> None:
    module, _, attribute = name.rpartition(".")
    try:
        found = getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError):
        pytest.fail(f"{name} is gone in fastapi {fastapi.__version__}; {PINNED}")
    if (expected := INTERNALS[name]) is not None:
        parameters = inspect.signature(found).parameters
        missing = [p for p in expected if p not in parameters]
        assert not missing, (f"{name} no longer takes {missing} in fastapi "
                             f"{fastapi.__version__}; {PINNED}")


async def test_the_route_and_dependant_attributes_fast_route_reads_are_there(
        local_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """FastRoute builds its handler from the route FastAPI builds per inclusion in a router
    (``_effective_route_context_var``); what it reads there must be there."""
    seen: list[Any] = []
    build = FastRoute.get_route_handler

    def recording(route: FastRoute) -> Any:
        seen.append(fastapi.routing._effective_route_context_var.get())
        return build(route)

    monkeypatch.setattr(FastRoute, "get_route_handler", recording)
    app = _app(local_settings, standard=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sixstep.test") as client:
        r = await client.post("/cases", json=CASE, headers={
            "Authorization": _token(local_settings), "Idempotency-Key": "key-00000005"})
    assert r.status_code == 201, r.text
    included = [c for c in seen if c is not None and getattr(c, "path", None) == "/cases"
                and "POST" in getattr(c, "methods", ())]
    assert included, (f"fastapi {fastapi.__version__} no longer builds an included route's "
                      f"handler inside _effective_route_context_var; {PINNED}")
    effective = included[0]
    missing = ["original_route is the FastRoute"] if not isinstance(
        getattr(effective, "original_route", None), FastRoute) else []
    missing += [f"route.{a}" for a in ROUTE_ATTRIBUTES if not hasattr(effective, a)]
    missing += [f"Dependant.{f}" for f in DEPENDANT_FIELDS
                if not hasattr(effective.dependant, f)]
    assert not missing, f"gone in fastapi {fastapi.__version__}: {missing}; {PINNED}"


async def test_the_endpoint_runs_inside_fastapis_operation_only_when_its_telemetry_is_on(
        local_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """A service's app turns FastAPI's own telemetry off, so the fast path awaits the endpoint
    itself; a request that FastAPI's telemetry does observe (its key in the scope) still runs
    it through ``run_endpoint_function``, inside FastAPI's operation."""
    wrapped: list[str] = []
    run = shared.http.fast_route.run_endpoint_function

    async def counting(**kwargs: Any) -> Any:
        wrapped.append(kwargs["dependant"].call.__name__)
        return await run(**kwargs)

    monkeypatch.setattr(shared.http.fast_route, "run_endpoint_function", counting)
    app = _app(local_settings, standard=False)
    observed = object()

    async def telemetry_on(scope: Any, receive: Any, send: Any) -> None:
        scope["fastapi.telemetry"] = observed
        await app(scope, receive, send)

    headers = {"Authorization": _token(local_settings)}
    for asgi, key in ((app, "key-00000011"), (telemetry_on, "key-00000012")):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi),
                                     base_url="http://sixstep.test") as client:
            answer = await client.post("/cases", json=CASE,
                                       headers={**headers, "Idempotency-Key": key})
            assert answer.status_code == 201, answer.text
        assert wrapped == ([] if asgi is app else ["open_case"])


async def test_with_fastapis_telemetry_really_on_the_endpoint_still_has_its_span(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast path tells FastAPI's telemetry by a scope key FastAPI sets (``fastapi.telemetry``,
    not public): an app with FastAPI's telemetry on (another app than a service's) must still
    record FastAPI's endpoint span for a write the fast path answers. An upgrade that moves
    the key would drop the span silently; this fails instead."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    router = fastapi.APIRouter(route_class=FastRoute)

    @router.post("/notes", status_code=201)
    async def note(body: dict[str, int]) -> dict[str, int]:
        return body

    solved: list[int] = []
    solve = fastapi.routing.solve_dependencies

    async def counting(**kwargs: Any) -> Any:
        solved.append(1)
        return await solve(**kwargs)

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", counting)
    for telemetry, spans in (({"tracer_provider": provider, "metrics": False, "logs": False},
                              ["fastapi.endpoint", "POST /notes"]),
                             ({"tracing": False, "metrics": False, "logs": False}, [])):
        app = FastAPI(telemetry=telemetry)  # type: ignore[arg-type]
        app.include_router(router)
        exporter.clear()
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://sixstep.test") as client:
            answer = await client.post("/notes", json={"n": 1})
        assert (answer.status_code, answer.json()) == (201, {"n": 1})
        assert [s.name for s in exporter.get_finished_spans()] == spans
        endpoint = [s for s in exporter.get_finished_spans() if s.name == "fastapi.endpoint"]
        assert all(s.attributes and s.attributes["code.function.name"].endswith(".note")
                   for s in endpoint)
    provider.shutdown()
    assert solved == []  # both answered by the fast path

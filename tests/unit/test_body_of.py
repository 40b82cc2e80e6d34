"""The write routes read a request's body as Starlette's ``Request.body()`` does, without its
async generator (``shared.http.fast_route.body_of``): the same bytes or the same error, the
same ``receive`` calls, the same state left on the request."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.requests import Request

from shared.http.fast_route import body_of
from tests.unit.test_fast_route import CASE, _app, _token

Message = dict[str, Any]

messages = st.one_of(
    st.builds(lambda body, more: {"type": "http.request", "body": body, "more_body": more},
              st.binary(max_size=8), st.booleans()),
    st.just({"type": "http.request"}),  # no body key, no more_body: the last message
    st.just({"type": "http.disconnect"}),
    st.just({"type": "http.other"}),  # neither: read past, as Starlette does
)


async def _read(how: str, script: list[Message | str], twice: bool) -> tuple[Any, ...]:
    """What ``how`` gives for a client sending ``script`` (a "raise" step: ``receive``
    fails), and the request's state after it."""
    taken: list[int] = []
    steps = iter(script)

    async def receive() -> Message:
        taken.append(1)
        step = next(steps, {"type": "http.disconnect"})
        if step == "raise":
            raise OSError("connection reset")
        return dict(step)  # type: ignore[arg-type]

    request = Request({"type": "http", "method": "POST", "headers": []}, receive)
    outcomes = []
    for _ in range(2 if twice else 1):
        try:
            outcomes.append(await (body_of(request) if how == "direct" else request.body()))
        except Exception as exc:  # the error is what is compared
            outcomes.append((type(exc), str(exc)))
    return (outcomes, len(taken), getattr(request, "_body", None),
            request._stream_consumed, request._is_disconnected)


@settings(max_examples=300, deadline=None)
@given(script=st.lists(st.one_of(messages, st.just("raise")), max_size=6), twice=st.booleans())
async def test_a_body_read_directly_is_what_starlette_reads(script: list[Any],
                                                             twice: bool) -> None:
    assert await _read("direct", script, twice) == await _read("starlette", script, twice)


async def test_a_stream_read_already_is_refused_as_starlette_refuses_it() -> None:
    for how in ("direct", "starlette"):
        sent = iter([{"type": "http.request", "body": b"{}", "more_body": False}])

        async def receive(sent: Any = sent) -> Message:
            return next(sent)

        request = Request({"type": "http", "method": "POST", "headers": []}, receive)
        async for _ in request.stream():
            pass  # consumed, no _body kept
        with pytest.raises(RuntimeError, match="Stream consumed"):
            await (body_of(request) if how == "direct" else request.body())


async def _a_clerk_opens_a_case() -> httpx.Response:
    """``POST /cases`` through intake's app as it runs (group commit accepting every write)."""
    from shared.settings import Settings

    settings_ = Settings(environment="development", log_json=False)
    app = _app(settings_, standard=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://sixstep.test") as client:
        return await client.post("/cases", content=json.dumps(CASE).encode(), headers={
            "Authorization": _token(settings_), "Idempotency-Key": "key-00000001",
            "Content-Type": "application/json"})


async def test_an_ordinary_write_starts_no_async_generator_for_its_body(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A clerk opens a case: the write's body is read without ``Request.stream`` (an async
    generator, its first-iteration hook and its closing on every write)."""

    def no_stream(self: Request) -> Any:
        raise AssertionError("the fast path read the body through Request.stream")

    monkeypatch.setattr(Request, "stream", no_stream)
    answer = await _a_clerk_opens_a_case()
    assert answer.status_code == 201, answer.text


async def test_an_ordinary_writes_body_is_validated_without_fastapis_body_walk(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A clerk opens a case: the body, the route's one model, is validated by its field as
    ``request_body_to_args`` would, without working out again on every write that it is one
    model (the answers on both paths: test_fast_route)."""
    import shared.http.fast_route as fast_route

    async def walked(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the fast path walked the body fields on a write")

    monkeypatch.setattr(fast_route, "request_body_to_args", walked)
    answer = await _a_clerk_opens_a_case()
    assert answer.status_code == 201, answer.text


def test_the_body_fields_validate_takes_what_the_fast_path_passes() -> None:
    import inspect

    from fastapi._compat.v2 import ModelField

    assert {"value", "values", "loc"} <= set(inspect.signature(ModelField.validate).parameters)

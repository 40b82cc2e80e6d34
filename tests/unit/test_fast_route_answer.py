"""A write's answer leaves the fast path as FastAPI's would, dumped once.

FastAPI validates what an endpoint returns against the route's response model before dumping
it (``serialize_response``). For an instance of exactly that model, one that does not
revalidate instances and has no model validator, validation hands back the very instance
(~1 % of a one-process intake write); ``FastRoute`` dumps it directly. Anything else (a
subclass, a dict, a model with a validator or that revalidates) is still validated, and
answered as FastAPI answers it.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, field_validator, model_validator

import shared.http.fast_route as fast_route
from shared.http.fast_route import FastRoute, _passed_as_is
from shared.settings import Settings
from tests.unit.test_fast_route import CASE, _app, _token


async def test_an_opened_case_is_answered_without_validating_the_answer_again(
        monkeypatch: pytest.MonkeyPatch) -> None:
    local = Settings(environment="development", log_json=False)
    serialized: list[Any] = []
    serialize = fast_route.serialize_response

    async def counting(**kwargs: Any) -> Any:
        serialized.append(kwargs["response_content"])
        return await serialize(**kwargs)

    monkeypatch.setattr(fast_route, "serialize_response", counting)
    fast, standard = (
        httpx.AsyncClient(transport=httpx.ASGITransport(app=_app(local, standard=standard)),
                          base_url="http://sixstep.test") for standard in (False, True))
    headers = {"Authorization": _token(local), "Idempotency-Key": "key-answer-01",
               "X-Correlation-Id": "corr-1"}
    answered = await fast.post("/cases", json=CASE, headers=headers)
    assert answered.status_code == 201
    assert serialized == []
    # The same bytes and headers as FastAPI's own path (which validates, then dumps).
    same = await standard.post("/cases", json=CASE, headers=headers)
    assert (answered.content, answered.headers) == (same.content, same.headers)
    await fast.aclose()
    await standard.aclose()


class Plain(BaseModel):
    id: str
    n: int


class Revalidated(BaseModel):
    model_config = ConfigDict(revalidate_instances="always")
    id: str
    n: int

    @field_validator("n")
    @classmethod
    def _doubled(cls, n: int) -> int:
        return n * 2


class Checked(BaseModel):
    id: str
    n: int

    @model_validator(mode="before")
    @classmethod
    def _upper(cls, data: Any) -> Any:
        if isinstance(data, Checked):
            return {"id": data.id.upper(), "n": data.n}
        return data


class Wider(Plain):
    secret: str = "kept out of the answer by validation"


def _endpoint(make: Any) -> Any:
    async def endpoint() -> Any:
        return make()
    return endpoint


def _answering(route_class: type[APIRoute]) -> FastAPI:
    router = APIRouter(route_class=route_class)
    answers: dict[str, Any] = {
        "plain": (Plain, lambda: Plain(id="a", n=1)),
        "revalidated": (Revalidated, lambda: Revalidated.model_construct(id="a", n=1)),
        "checked": (Checked, lambda: Checked.model_construct(id="a", n=1)),
        "wider": (Plain, lambda: Wider(id="a", n=1)),
        "dict": (Plain, lambda: {"id": "a", "n": "1"}),
    }
    for name, (model, make) in answers.items():
        router.add_api_route(f"/{name}", _endpoint(make), methods=["POST"],
                             response_model=model, status_code=201)
    app = FastAPI()
    app.include_router(router)
    return app


@pytest.mark.parametrize("name", ["plain", "revalidated", "checked", "wider", "dict"])
async def test_every_kind_of_answer_is_answered_as_fastapi_answers_it(name: str) -> None:
    answers = []
    for route_class in (FastRoute, APIRoute):
        transport = httpx.ASGITransport(app=_answering(route_class))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            answers.append(await client.post(f"/{name}"))
    fast, standard = answers
    assert (fast.status_code, fast.content, fast.headers) == (
        standard.status_code, standard.content, standard.headers)


def test_only_a_model_that_validates_into_itself_is_passed_as_is() -> None:
    def field(model: type[BaseModel]) -> Any:
        async def endpoint() -> Any: ...
        return APIRoute("/", endpoint, response_model=model).response_field

    assert _passed_as_is(field(Plain)) is Plain
    assert _passed_as_is(field(Revalidated)) is None
    assert _passed_as_is(field(Checked)) is None
    assert _passed_as_is(None) is None

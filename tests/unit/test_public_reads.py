"""Every read of the three services says in its OpenAPI document what it answers: a named
``<Thing>Public`` model (``services/<name>/queries.py``), never a bare object; and a model
answers moments as the routes always wrote them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from services.feedback.main import create_app as feedback
from services.followup.main import create_app as followup
from services.intake.main import create_app as intake
from shared.readmodels.public import Moment, Public
from shared.settings import Settings

#: Answers that are not a read model's: liveness, readiness (``shared.http.health``), and
#: Open311, whose answer is JSON or XML as the path's ``.{fmt}`` asks (the GeoReport spec).
NOT_READ_MODELS = ("/health", "/ready", "/open311/")


@pytest.mark.parametrize("create_app", [intake, followup, feedback],
                         ids=["intake", "followup", "feedback"])
def test_every_read_names_the_model_it_answers(create_app: Any) -> None:
    document = create_app(Settings(environment="development", log_json=False)).openapi()
    schemas = document["components"]["schemas"]
    untyped = []
    for path, operations in document["paths"].items():
        get = operations.get("get")
        if get is None or path.startswith(NOT_READ_MODELS):
            continue
        content = get["responses"]["200"].get("content", {})
        if "application/json" not in content:
            continue  # a page (HTML)
        schema = content["application/json"]["schema"]
        ref = schema.get("$ref") or schema.get("items", {}).get("$ref")
        if ref is None or ref.rsplit("/", 1)[1] not in schemas:
            untyped.append(path)
    assert untyped == []


class Stamped(Public):
    at: Moment
    maybe: Moment | None = None


def test_a_moment_is_answered_with_its_offset_as_before_never_z() -> None:
    utc = datetime(2026, 3, 2, 1, 15, 30, 250, tzinfo=UTC)
    shanghai = utc.astimezone(timezone(timedelta(hours=8)))
    assert Stamped.of({"at": utc}).model_dump_json() == (
        '{"at":"2026-03-02T01:15:30.000250+00:00","maybe":null}')
    assert Stamped(at=utc, maybe=shanghai).model_dump(mode="json")["maybe"] == (
        "2026-03-02T09:15:30.000250+08:00")

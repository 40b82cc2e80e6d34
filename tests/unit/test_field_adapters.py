"""Every app of a process analyses the same module-level routers: the second app's fields take
the first's pydantic adapters (shared/http/field_adapters.py), and a field that differs in
anything, a default's type included, keeps its own."""

from __future__ import annotations

import hashlib
import inspect
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi._compat.v2 import ModelField
from fastapi.routing import _IncludedRouter
from fastapi.testclient import TestClient
from pydantic import Field

from shared.http import field_adapters
from shared.http.app import new_app
from shared.http.field_adapters import field_key

router = APIRouter()


@router.get("/worklist")
def worklist(clerk: Annotated[str, Query(max_length=8)], days: int = 5,
             urgent: bool = False) -> dict[str, object]:
    return {"clerk": clerk, "days": days, "urgent": urgent}


def _fields(app: object) -> dict[str, ModelField]:
    [included] = [r for r in app.router.routes  # type: ignore[attr-defined]
                  if isinstance(r, _IncludedRouter)]
    [context] = included.effective_candidates()
    return {f.name: f for f in context.dependant.query_params}


def test_a_second_app_of_the_same_routers_reuses_the_first_apps_field_adapters() -> None:
    apps = [new_app(), new_app()]
    for app in apps:
        app.include_router(router)
    first, second = (_fields(app) for app in apps)
    for name in ("clerk", "days", "urgent"):
        assert first[name]._type_adapter is second[name]._type_adapter, name
    assert first["days"]._type_adapter is not first["urgent"]._type_adapter
    # and they validate as their own fields would
    with TestClient(apps[1]) as client:
        assert client.get("/worklist", params={"clerk": "c-07"}).json() == {
            "clerk": "c-07", "days": 5, "urgent": False}
        assert client.get("/worklist", params={"clerk": "c-000007"}).status_code == 200
        assert client.get("/worklist", params={"clerk": "c-0000007"}).status_code == 422
        assert client.get("/worklist", params={"clerk": "c", "days": "x"}).status_code == 422


def test_fields_that_differ_in_anything_keep_their_own_adapters() -> None:
    def key(annotation: object, *metadata: object, **attributes: object) -> object:
        return field_key(annotation, list(metadata), attributes)

    # a default False is not a default 0 (equal, and equal hashes, in Python)
    assert key(int, default=0) != key(int, default=False)
    assert key(int, default=0) == key(int, default=0)
    assert key(str, *Field(max_length=8).metadata) != key(str, *Field(max_length=9).metadata)
    assert key(str, alias="a") != key(str, alias="b")
    # what cannot be compared safely is not shared: a factory (it may hold an app), a list
    assert key(list[int], default_factory=lambda: [1]) is None
    assert key(list[int], examples=[[1]]) is None


def test_the_shared_adapter_is_built_as_fastapis_own_field_builds_it() -> None:
    """field_adapters._post_init does what FastAPI 0.165's ModelField.__post_init__ does (the
    adapter of the annotation, its metadata and a Field of its other attributes): a FastAPI
    whose method reads otherwise must be read again before the pin is raised."""
    new_app()  # installs the sharing
    assert field_adapters.replaced is not None
    source = inspect.getsource(field_adapters.replaced)
    assert hashlib.sha256(source.encode()).hexdigest()[:16] == "5d3689614a475b63", source


def test_a_constraint_written_as_a_float_is_not_the_same_constraint_written_as_an_int() -> None:
    """Gt(1) == Gt(1.0) in Python, but the OpenAPI document says exclusiveMinimum 1.0 for the
    second: a field sharing the first's adapter published the other number."""
    import annotated_types as at

    def key(annotation: object, *metadata: object, **attributes: object) -> object:
        return field_key(annotation, list(metadata), attributes)

    assert key(int, at.Gt(1)) != key(int, at.Gt(1.0))
    assert key(int, at.Gt(1)) == key(int, at.Gt(1))
    assert key(tuple[int, ...], default=(1,)) != key(tuple[int, ...], default=(True,))

    router_ = APIRouter()

    @router_.get("/whole")
    def whole(n: Annotated[int, Query(gt=1)]) -> int:
        return n

    @router_.get("/written-as-float")
    def written_as_float(n: Annotated[int, Query(gt=1.0)]) -> int:
        return n

    app = new_app()
    app.include_router(router_)
    schema = app.openapi()["paths"]["/written-as-float"]["get"]["parameters"][0]["schema"]
    assert repr(schema["exclusiveMinimum"]) == "1.0"


def test_building_the_same_apps_again_keeps_no_more_adapters() -> None:
    """pydantic's metadata of Field(pattern=...) compares by identity, and FastAPI makes a new
    one each time it analyses a route: each app built kept one more adapter for good."""
    assert field_key(str, Field(pattern="^a$").metadata, {}) == field_key(
        str, Field(pattern="^a$").metadata, {})
    assert field_key(str, Field(pattern="^a$").metadata, {}) != field_key(
        str, Field(pattern="^b$").metadata, {})

    router_ = APIRouter()

    @router_.get("/cases")
    def cases(status: Annotated[str | None, Query(alias="status", pattern="^(open|resolved)$")]
              = None) -> str | None:
        return status

    def build() -> None:
        app = new_app()
        app.include_router(router_)
        with TestClient(app) as client:
            assert client.get("/cases", params={"status": "shut"}).status_code == 422

    build()
    kept = len(field_adapters._ADAPTERS)
    build()
    build()
    assert len(field_adapters._ADAPTERS) == kept

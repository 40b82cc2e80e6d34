"""A FastAPI route class that answers the ordinary request without FastAPI's dependency solver.

FastAPI solves a route's dependency tree on every request: for a write that is the body, the
caller (three nested dependencies for the token) and the write headers, some eight dependants
with four parameter passes each, about a fifth of the API's CPU per request. Most requests are
ordinary: a valid token with the right role, well-formed headers, a JSON body that validates.

:class:`FastRoute` tries that ordinary case first. Each top-level dependency of the route must
declare a cheap resolver (:func:`fast_dependency`): a plain function of the request that either
returns the dependency's value or :data:`SLOW` when anything is unusual (a header missing or
malformed, no principal, a role not allowed). The body and path parameters are validated by
FastAPI's own functions. Only when every part resolves is the endpoint called, with exactly
the values FastAPI would have passed; otherwise, before the endpoint has run, the request goes
to FastAPI's own handler, which answers it as it always did (same errors, same order), the
body already read being handed over. The endpoint's answer is serialised as FastAPI does.

The route's declaration is untouched, so the OpenAPI document is exactly the same; a route
whose parameters are not all understood here (query, header or cookie parameters, background
tasks, a ``Response`` parameter, streams, dependency overrides) always takes FastAPI's path.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import orjson
from fastapi import params
from fastapi.datastructures import DefaultPlaceholder
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import request_body_to_args, request_params_to_args
from fastapi.routing import APIRoute, run_endpoint_function, serialize_response
from fastapi.utils import is_body_allowed_for_status_code
from pydantic import BaseModel, RootModel
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from shared.http.correlation import SNIFFED_BODY

# What FastAPI's own handler uses where it has it (newer versions): the route's effective
# settings when included in a router, its body-size limit, JSON straight from pydantic.
try:
    from fastapi.routing import _effective_route_context_var
except ImportError:  # pragma: no cover - older FastAPI
    _effective_route_context_var = None
try:
    from fastapi._body_limit import get_body_limit_error
    from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY
except ImportError:  # pragma: no cover - older FastAPI
    get_body_limit_error, MAX_BODY_SIZE_SCOPE_KEY = None, None
_DUMP_JSON = "dump_json" in inspect.signature(serialize_response).parameters
try:  # how request_body_to_args tells a body that is the one model itself (0.165)
    from fastapi.dependencies.utils import _get_form_models, _should_embed_body_fields
except ImportError:  # pragma: no cover - another FastAPI: request_body_to_args decides
    _get_form_models = _should_embed_body_fields = None  # type: ignore[assignment]

SLOW: Any = object()
"""What a fast resolver returns when FastAPI's own path must decide."""

FastResolver = Callable[[Request], Any]
FastPath = Callable[[Request], Coroutine[Any, Any, Response]]
"""A route's ordinary answer to a request, or :data:`SLOW` (nothing sent, nothing run)."""
_FAST_PATH = "_sixstep_fast_path"
_TELEMETRY = "fastapi.telemetry"
"""The scope's key of FastAPI's own telemetry for a request (0.165; absent or None: off)."""
_F = TypeVar("_F", bound=Callable[..., Any])
_ATTRIBUTE = "__sixstep_fast__"


def fast_dependency(resolve: FastResolver) -> Callable[[_F], _F]:
    """Declare ``resolve(request)`` as the cheap equivalent of the decorated dependency.

    ``resolve`` must be pure (no side effects) and return the very value the dependency
    would, or :data:`SLOW` whenever the dependency could do anything else (raise, or depend on
    something ``resolve`` does not look at)."""

    def mark(dependency: _F) -> _F:
        setattr(dependency, _ATTRIBUTE, resolve)
        return dependency

    return mark


def fast_path_of(route: Any) -> FastPath | None:
    """The fast path :class:`FastRoute` built for ``route`` (an included route's effective
    context, or the route itself), or None when that route always takes FastAPI's path."""
    return getattr(route, _FAST_PATH, None)


def principal_of(request: Request) -> Any:
    """The principal the authentication middleware left in the request's state, if any."""
    state = request.scope.get("state")
    return state.get("principal") if state else None


#: Whether this Starlette's ``Request`` keeps its stream's state where :func:`body_of` reads
#: it (``_receive``, ``_stream_consumed``, ``_is_disconnected``; ``_body`` once read).
_STREAM_STATE = all(hasattr(Request({"type": "http"}), name)
                    for name in ("_receive", "_stream_consumed", "_is_disconnected"))


async def body_of(request: Request) -> bytes:
    """``await request.body()``, without the async generator (``Request.stream``) and the
    ``aclosing`` around it: the same ``receive`` calls, the same state left on ``request``
    (``_body``, ``_stream_consumed``, ``_is_disconnected``), the same errors
    (``ClientDisconnect``, ``RuntimeError("Stream consumed")``, what ``receive`` raises).
    The generator, its first-iteration hook (a weak set's add) and its closing were ~1.2 us
    of every write."""
    if not _STREAM_STATE:  # pragma: no cover - another Starlette
        return await request.body()
    if hasattr(request, "_body"):
        return request._body
    if request._stream_consumed:
        raise RuntimeError("Stream consumed")
    chunks: list[bytes] = []
    receive = request._receive
    while not request._stream_consumed:
        message = await receive()
        if message["type"] == "http.request":
            chunk = message.get("body", b"")
            if not message.get("more_body", False):
                request._stream_consumed = True
            if chunk:
                chunks.append(chunk)
        elif message["type"] == "http.disconnect":
            request._is_disconnected = True
            raise ClientDisconnect()
    request._body = b"".join(chunks)
    return request._body


def _resolvers(dependant: Dependant) -> list[tuple[str, FastResolver]] | None:
    """The top-level dependencies' resolvers, or None when the route cannot take the fast path."""
    if (dependant.query_params or dependant.header_params or dependant.cookie_params
            or dependant.background_tasks_param_name or dependant.response_param_name
            or dependant.security_scopes_param_name or dependant.websocket_param_name
            or dependant.http_connection_param_name or len(dependant.body_params) > 1):
        return None
    if dependant.body_params and isinstance(dependant.body_params[0].field_info, params.Form):
        return None
    resolvers: list[tuple[str, FastResolver]] = []
    for sub in dependant.dependencies:
        resolve = getattr(sub.call, _ATTRIBUTE, None)
        if resolve is None or sub.name is None:
            return None
        resolvers.append((sub.name, resolve))
    return resolvers


def _passed_as_is(field: Any) -> type[BaseModel] | None:
    """The model class whose instances the response ``field`` validates into themselves, so
    that ``serialize_response`` need not validate an answer of exactly that class: a plain
    model annotation (no constraints, no ``Annotated`` metadata), a model that does not
    revalidate instances and has no model validator (a ``before`` or ``wrap`` one would run
    on the instance too). None when that is not sure, and every answer is validated."""
    if field is None or not _DUMP_JSON:
        return None
    cls = getattr(getattr(field, "field_info", None), "annotation", None)
    if (not isinstance(cls, type) or not issubclass(cls, BaseModel)
            or issubclass(cls, RootModel) or field.field_info.metadata
            or cls.model_config.get("revalidate_instances", "never") != "never"
            or cls.__pydantic_decorators__.model_validators):
        return None
    return cls


def _json_content_type(value: str | None) -> bool:
    """``application/json`` (parameters allowed): where FastAPI parses the body as JSON.
    Any other type, ``+json`` ones included, is left to FastAPI."""
    return value is not None and value.partition(";")[0].strip().lower() == "application/json"


class FastRoute(APIRoute):
    """An ``APIRoute`` with the fast path described in the module's docstring."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        standard = super().get_route_handler()
        # An included route is built once per inclusion with its effective settings
        # (prefix, router dependencies, responses): read them the way APIRoute does.
        route: Any = self
        effective = _effective_route_context_var.get() if _effective_route_context_var else None
        if effective is not None and effective.original_route is self:
            route = effective
        dependant: Dependant = route.dependant
        resolvers = _resolvers(dependant)
        status_code: int = route.status_code or 200
        if (resolvers is None or dependant.call is None
                or getattr(route, "is_sse_stream", False)
                or getattr(route, "is_json_stream", False)
                or getattr(route, "stream_item_field", None) is not None
                or not isinstance(route.response_class, DefaultPlaceholder)
                or not is_body_allowed_for_status_code(status_code)):
            return standard
        call = dependant.call
        body_params = dependant.body_params
        path_params = dependant.path_params
        embed = getattr(route, "_embed_body_fields", False)
        request_name = dependant.request_param_name
        # The body is the one model itself (not embedded, no form): request_body_to_args
        # would validate it with the field's own ``validate`` at ("body",), working out that
        # this is so on every request (~1.3 us of every write); worked out once here.
        whole: Any = None
        if (_should_embed_body_fields is not None and len(body_params) == 1 and not embed
                and not _should_embed_body_fields(body_params)
                and not _get_form_models(body_params[0])):
            whole = body_params[0]
        overrides = route.dependency_overrides_provider
        response_field = route.response_field
        passed = _passed_as_is(response_field)
        serialize: dict[str, Any] = {
            "include": route.response_model_include, "exclude": route.response_model_exclude,
            "by_alias": route.response_model_by_alias,
            "exclude_unset": route.response_model_exclude_unset,
            "exclude_defaults": route.response_model_exclude_defaults,
            "exclude_none": route.response_model_exclude_none}

        async def fast(request: Request) -> Response:
            """The ordinary request's answer, or SLOW (nothing sent, nothing run) when
            FastAPI's own path must decide; the body, when read, stays on ``request``."""
            if overrides is not None and getattr(overrides, "dependency_overrides", None):
                return SLOW
            values: dict[str, Any] = {}
            for name, resolve in resolvers:
                value = resolve(request)
                if value is SLOW:
                    return SLOW
                values[name] = value
            if path_params:
                found, errors = request_params_to_args(path_params, request.path_params)
                if errors:
                    return SLOW
                values.update(found)
            if body_params:
                try:
                    raw = await body_of(request)  # kept: FastAPI's path reads it again
                except HTTPException:
                    raise  # the limits middleware's 413 / 422, as FastAPI lets them through
                except Exception as exc:  # what FastAPI's handler answers when reading fails
                    if MAX_BODY_SIZE_SCOPE_KEY in request.scope and (
                            error := get_body_limit_error(exc)):
                        raise error from exc
                    raise HTTPException(400, "There was an error parsing the body") from exc
                if not raw or not _json_content_type(request.headers.get("content-type")):
                    return SLOW
                sniffed = request.scope.get(SNIFFED_BODY)
                if sniffed is not None and sniffed[0] == raw:
                    parsed = sniffed[1]  # the front door parsed these very bytes already
                else:
                    try:
                        # orjson parses what it accepts exactly as json.loads does; what it
                        # refuses (NaN, UTF-16, big integers, lone surrogates) FastAPI's path
                        # decides.
                        parsed = orjson.loads(raw)
                    except orjson.JSONDecodeError:
                        return SLOW
                if whole is not None:
                    value, errors = whole.validate(parsed, {}, loc=("body",))
                    if errors:
                        return SLOW
                    values[whole.name] = value
                else:
                    found, errors = await request_body_to_args(body_params, parsed, embed)
                    if errors:
                        return SLOW
                    values.update(found)
            if request_name:
                values[request_name] = request
            if request.scope.get(_TELEMETRY) is None:
                # FastAPI's own telemetry is not on for this request (a service's app turns
                # it off: ``shared.http.app``), so run_endpoint_function's operation span
                # is its no-op: the endpoint awaited as it would await it, without a read of
                # the OpenTelemetry context and a null context manager (~2 % in-process).
                answer = await call(**values)
            else:
                answer = await run_endpoint_function(dependant=dependant, values=values,
                                                     is_coroutine=True)
            if isinstance(answer, Response):
                return answer
            if response_field is None:
                return JSONResponse(await serialize_response(response_content=answer),
                                    status_code)
            if not _DUMP_JSON:
                return JSONResponse(await serialize_response(
                    field=response_field, response_content=answer, **serialize), status_code)
            if type(answer) is passed:
                # What validating it would hand back is this very instance: dumped as
                # serialize_response dumps what validation hands back.
                return Response(response_field.serialize_json(answer, **serialize),
                                status_code, media_type="application/json")
            content = await serialize_response(field=response_field, response_content=answer,
                                               dump_json=True, **serialize)
            return Response(content, status_code, media_type="application/json")

        async def handle(request: Request) -> Response:
            answer = await fast(request)
            return await standard(request) if answer is SLOW else answer

        if not inspect.iscoroutinefunction(call):
            return standard
        setattr(route, _FAST_PATH, fast)  # for shared.http.direct_writes
        return handle

"""The app router's matching, done directly for the write routes.

FastAPI finds a request's route through its included routers: every router included with
``app.include_router`` is a route of the app's router whose own routes are matched in turn,
each step setting and restoring keys of the request's scope, then handing the request down
through four more calls to the route's app. A py-spy profile of intake's API under load put
that routing at ~6 % of the request thread, for a ``POST /cases`` that always ends at the
same ``FastRoute``.

:class:`DirectRoutes` takes the router's place (``install_direct_routes``): for a ``POST``
it matches the path against the routes of the routers included first, in the router's
order, exactly as the router would (the first route whose pattern and method fit; a route
whose pattern fits but not its method is passed over, as the router passes over a partial
match). When that route is a :class:`~shared.http.fast_route.FastRoute`, it sets the scope
as the router would have left it (``router``, the ``fastapi`` keys of the inclusion and the
route, ``endpoint``, ``path_params``, ``route``) and calls the route's app, the very app the
router calls: Starlette's exception handlers, the body limit and FastAPI's
``request_response`` are untouched. Everything else (another method, a path no leading route
takes, a route of another kind, FastAPI's own telemetry on) goes to the router as before.

The routes and their order are read again whenever FastAPI's own routes version changes.
That version (``APIRouter._get_routes_version``) walks every route of the app's router to
find the included ones, on each call: ~2 % of the request thread for intake's ~70 routes.
:class:`DirectRoutes` asks instead the counters it is the sum of (each router's own
``_routes_version``, which every change of its routes or inclusions moves), of the routers
it found reachable when it last read the routes: the same changes are seen, as a router
can only become reachable through an inclusion that moves a reachable router's counter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute, APIRouter
from starlette._utils import get_route_path
from starlette.convertors import Convertor
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.http.fast_route import FastRoute

try:  # FastAPI's included routers (0.165): what the router's matching goes through
    from fastapi.routing import (
        _FASTAPI_EFFECTIVE_ROUTE_CONTEXT_KEY,
        _FASTAPI_INCLUDED_ROUTER_KEY,
        _apply_router_form_limits,
        _EffectiveRouteContext,
        _get_fastapi_scope,
        _IncludedRouter,
    )
except ImportError:  # pragma: no cover - another FastAPI: the router does it all
    _IncludedRouter = None  # type: ignore[assignment,misc]


_ROUTES_VERSION = attrgetter("_routes_version")
"""A router's own counter of changes (read on each request: no list or frame a router)."""


@dataclass(frozen=True, slots=True)
class _Leading:
    """One route of a router included first, as the app's router would match it."""

    regex: re.Pattern[str]
    convertors: dict[str, Convertor[Any]]
    methods: frozenset[str] | None
    included: Any  # the _IncludedRouter (None: a route of the app's router itself)
    context: Any  # its _EffectiveRouteContext for the route
    route: Route
    direct: bool  # a FastRoute: dispatched here


class DirectRoutes:
    """The app router's ``middleware_stack``: see the module's docstring."""

    def __init__(self, router: APIRouter) -> None:
        self.router = router
        self.standard: ASGIApp = router.app
        self._version: int | None = None
        self._leading: tuple[_Leading, ...] = ()
        self._routers: tuple[APIRouter, ...] = ()  # reachable when the routes were read

    def _stamp(self) -> int | None:
        """The routers' own counters, summed; None before the routes are first read."""
        if not self._routers:
            return None
        return sum(map(_ROUTES_VERSION, self._routers))

    def _routes(self) -> tuple[_Leading, ...]:
        """The leading routes, in the router's order: its own plain routes (the OpenAPI
        document's, never dispatched here) and those of its included routers, up to the
        first that is neither (a mount, a nested router: the router decides from there)."""
        if self._version is not None and self._stamp() == self._version:
            return self._leading
        routers = _reachable(self.router)
        leading: list[_Leading] = []
        for included in self.router.routes:
            if type(included) in (Route, APIRoute):  # the app's own: never direct
                leading.append(_Leading(included.path_regex, included.param_convertors,
                                        frozenset(included.methods or ()) or None,
                                        None, None, included, False))
                continue
            if not isinstance(included, _IncludedRouter):
                break
            candidates = included.effective_candidates()
            for context in candidates:
                route = getattr(context, "original_route", None)
                if (not isinstance(context, _EffectiveRouteContext)
                        or not isinstance(route, APIRoute)
                        or context.starlette_route is not None or context.app is None):
                    break
                methods = context.methods
                leading.append(_Leading(
                    context.path_regex, context.param_convertors,
                    frozenset(methods) if methods else None, included, context, route,
                    isinstance(route, FastRoute)))
            else:
                continue
            break
        self._leading, self._routers = tuple(leading), routers
        self._version = self._stamp()
        return self._leading

    def _match(self, scope: Scope) -> tuple[_Leading, dict[str, Any]] | None:
        """The leading route the router would hand this POST to, with its path parameters;
        None when the router must decide."""
        path = get_route_path(scope)
        for leading in self._routes():
            found = leading.regex.match(path)
            if found is None:
                continue
            if leading.methods is not None and "POST" not in leading.methods:
                continue  # a partial match: the router goes on to a full one as well
            if not leading.direct:
                return None
            convertors = leading.convertors
            return leading, {key: convertors[key].convert(value)
                             for key, value in found.groupdict().items()}
        return None

    def found(self, scope: Scope) -> tuple[_Leading, dict[str, Any]] | None:
        """The ``FastRoute`` the router would hand this request to, with its path
        parameters; None when the router must decide (not a ``POST``, FastAPI's own
        telemetry on, no leading route that is a ``FastRoute``)."""
        if (scope["type"] != "http" or scope["method"] != "POST"
                or scope.get("fastapi.telemetry") is not None):
            return None
        return self._match(scope)

    def enter(self, scope: Scope, leading: _Leading, params: dict[str, Any]) -> None:
        """Leave in the scope what APIRouter.app, _IncludedRouter.matches/handle and
        APIRouter._handle_selected leave there for this route, in their order."""
        router = self.router
        _apply_router_form_limits(scope, router.form_limits)
        if "router" not in scope:
            scope["router"] = router
        fastapi_scope = _get_fastapi_scope(scope)
        _apply_router_form_limits(scope, leading.included.include_context.form_limits)
        fastapi_scope[_FASTAPI_INCLUDED_ROUTER_KEY] = leading.included
        path_params = dict(scope.get("path_params", {}))
        path_params.update(params)
        scope["endpoint"] = leading.context.endpoint
        scope["path_params"] = path_params
        scope["route"] = leading.route
        fastapi_scope[_FASTAPI_EFFECTIVE_ROUTE_CONTEXT_KEY] = leading.context

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        matched = self.found(scope)
        if matched is None:
            await self.standard(scope, receive, send)
            return
        leading, params = matched
        self.enter(scope, leading, params)
        await leading.context.app(scope, receive, send)


def _reachable(router: APIRouter) -> tuple[APIRouter, ...]:
    """``router`` and every router included in it, however deep, once each (the routers
    ``APIRouter._get_routes_version`` adds up)."""
    found: dict[int, APIRouter] = {}
    todo = [router]
    while todo:
        one = todo.pop()
        if id(one) in found:
            continue
        found[id(one)] = one
        todo.extend(route.original_router for route in one.routes
                    if isinstance(route, _IncludedRouter))
    return tuple(found.values())


def install_direct_routes(app: FastAPI) -> None:
    """Put :class:`DirectRoutes` in front of ``app``'s router (where the router has no
    middleware or body limit of its own, and this FastAPI has included routers)."""
    router = app.router
    if _IncludedRouter is None or router.middleware_stack != router.app:
        return
    router.middleware_stack = DirectRoutes(router)

"""The write routes answered in one layer, behind the front door.

Behind the front door (``shared.http.front_door``) an ordinary ``POST /cases`` went on
through six more layers before its route ran: Starlette's ``ExceptionMiddleware`` (a
``Request`` and a wrapper of ``send``), FastAPI's ``AsyncExitStackMiddleware`` (an exit
stack), the router and :class:`~shared.http.direct_routes.DirectRoutes`, then FastAPI's
``request_response`` (another ``Request``, two exit stacks, another wrapper of ``send``) around
:class:`~shared.http.fast_route.FastRoute`'s handler. Each layer was there for something an
ordinary write never uses: exception handlers that only answer when something is raised, exit
stacks for dependencies with ``yield`` and uploaded files (a ``FastRoute``'s fast path takes
neither), a route found by the router (``DirectRoutes`` finds it without).

:class:`DirectWrites` is what the front door hands a request to instead of that stack. For a
``POST`` that ``DirectRoutes`` would hand to a ``FastRoute`` (the routes of ``FastRoute``
routers: intake's case steps and visits, follow-up's and feedback's writes), it leaves in the
scope what those layers leave there for the route (the exception handlers, the router's keys:
``DirectRoutes.enter``), runs the route's fast path (``fast_route.fast_path_of``) and sends
its answer. Whatever the fast path raises is answered by the app's exception handlers, found
as Starlette's ``wrap_app_handling_exceptions`` finds them (status handlers first for an
``HTTPException``, then by the exception's classes); what none handles propagates as before
(the front door answers it: 500 ``internal_error``, logged once). When the fast path says
the request is unusual (:data:`~shared.http.fast_route.SLOW`: nothing sent, the endpoint not
run), the request goes to the stack above as it always did, its body, when already read,
replayed. Any other request (a read, a path no ``FastRoute`` takes, FastAPI's own telemetry
on, a route with a body limit of its own) goes to the stack untouched.

Not set in the scope: the three exit stacks (``fastapi_middleware_astack``,
``fastapi_inner_astack``, ``fastapi_function_astack``), which only dependencies with ``yield``
and form uploads use, and which the fast path never runs.
``tests/unit/test_direct_writes.py`` sends every kind of write, good and bad, both ways and
compares status, headers and body.
"""

from __future__ import annotations

from typing import Any

from fastapi.middleware.asyncexitstack import AsyncExitStackMiddleware
from fastapi.routing import APIRouter
from starlette._utils import is_async_callable
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import Request
from starlette.types import ASGIApp, ExceptionHandler, Message, Receive, Scope, Send

from shared.http.direct_routes import DirectRoutes
from shared.http.fast_route import SLOW, fast_path_of


class DirectWrites:
    """The front door's inner app: see the module's docstring."""

    def __init__(self, stack: ExceptionMiddleware, router: APIRouter) -> None:
        self.stack = stack
        self.router = router
        self.handlers: tuple[dict[Any, ExceptionHandler], dict[int, ExceptionHandler]] = (
            stack._exception_handlers, stack._status_handlers)

    @classmethod
    def over(cls, app: ASGIApp) -> ASGIApp:
        """``app`` (what the front door wraps) answering the write routes directly, when it
        is the stack FastAPI builds inside the app's middlewares (``ExceptionMiddleware``,
        ``AsyncExitStackMiddleware``, the router); else ``app`` itself."""
        exit_stack = getattr(app, "app", None)
        router = getattr(exit_stack, "app", None)
        if (type(app) is not ExceptionMiddleware
                or type(exit_stack) is not AsyncExitStackMiddleware
                or not isinstance(router, APIRouter)):
            return app
        return cls(app, router)

    def _handler(self, exc: Exception) -> ExceptionHandler | None:
        exception_handlers, status_handlers = self.handlers
        if isinstance(exc, HTTPException) and (
                handler := status_handlers.get(exc.status_code)) is not None:
            return handler
        for cls in type(exc).__mro__:
            if cls in exception_handlers:
                return exception_handlers[cls]
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        lane = self.router.middleware_stack
        matched = lane.found(scope) if type(lane) is DirectRoutes else None
        if matched is None:
            await self.stack(scope, receive, send)
            return
        leading, params = matched
        context = leading.context
        fast = fast_path_of(context)
        if fast is None or getattr(context, "max_body_size", None) is not None:
            await self.stack(scope, receive, send)
            return
        scope["starlette.exception_handlers"] = self.handlers
        lane.enter(scope, leading, params)
        request = Request(scope, receive, send)
        try:
            answer = await fast(request)
        except Exception as exc:
            handler = self._handler(exc)
            if handler is None:
                raise
            if is_async_callable(handler):
                response = await handler(request, exc)
            else:
                response = await run_in_threadpool(handler, request, exc)
            if response is not None:
                await response(scope, receive, send)
            exc.__traceback__ = None  # as Starlette: a reused exception keeps no traceback
            return
        if answer is SLOW:
            await self.stack(scope, _replaying(request, receive), send)
            return
        try:
            await answer(scope, receive, send)
        except Exception as exc:
            if self._handler(exc) is None:
                raise
            # Starlette's words: a handled exception once the answer has started to go.
            raise RuntimeError("Caught handled exception, but response already started.") \
                from exc


def _replaying(request: Request, receive: Receive) -> Receive:
    """``receive`` with the body the fast path read (Starlette keeps it on the request)
    given again first; ``receive`` itself when the body was not read."""
    body: bytes | None = getattr(request, "_body", None)
    if body is None:
        return receive
    replayed = False

    async def replaying() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replaying

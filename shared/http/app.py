"""The app factory: what every service's FastAPI app is built with and served by."""

from __future__ import annotations

import contextlib
import gc
import os
import sys
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI

from shared.bus.connection import SignInRefused
from shared.bus.jetstream import ServerTooOld
from shared.bus.revocations import RevocationsUnread
from shared.http.auth import install_auth
from shared.http.direct_routes import install_direct_routes
from shared.http.errors import install_error_handlers
from shared.http.field_adapters import share_field_adapters
from shared.http.front_door import FrontDoor
from shared.http.health import install_health
from shared.http.limits import RequestLimits
from shared.http.metrics import install_metrics
from shared.http.security_headers import page_policy
from shared.kernel.clock import Clock
from shared.runtime import heap
from shared.runtime.calendars import ClockAheadUntilRefused
from shared.runtime.metrics import Metrics
from shared.settings import (
    DevelopmentDefaults,
    NatsCredentialsMissing,
    ServiceName,
    Settings,
    settings_problem,
)


def new_app(**kwargs: Any) -> FastAPI:
    """A FastAPI app as every sixstep service wants it: Prometheus metrics are ours, so
    FastAPI's own OpenTelemetry hooks (an environment lookup on every request) stay off; the
    write routes are found without the included routers' matching
    (``shared.http.direct_routes``); a route's fields take the adapters that equal fields of
    an app built before in this process built (``shared.http.field_adapters``)."""
    share_field_adapters()
    app = FastAPI(telemetry={"tracing": False, "metrics": False, "logs": False}, **kwargs)
    install_direct_routes(app)
    return app


def install_surface(app: FastAPI, settings: Settings, metrics: Metrics, *,
                    public: Iterable[str] = (), optional: Iterable[str] = (),
                    clock: Clock | None = None) -> None:
    """What every service's app has in front of its own routes: error bodies; the front door
    (``shared.http.front_door``: write deadline, correlation id, metrics, request limits,
    authentication with ``public`` and ``optional`` path patterns, see ``shared.http.auth``,
    and the security headers on every response); health, readiness and the ops routes of the
    runtime that the lifespan puts in ``app.state.runtime``; and a span for every request
    (``shared.http.tracing``). ``clock``: the service's (a write's arrival on it is what its
    ``sent_at`` is measured against).
    Outside development a development secret stops it here
    (``Settings.refuse_development_defaults``), and so does NATS without credentials
    (``Settings.refuse_anonymous_nats``), however the settings were made."""
    settings.refuse_development_defaults()
    settings.refuse_anonymous_nats()
    app.state.settings = settings
    app.state.runtime = None
    install_error_handlers(app, metrics)
    authenticate = install_auth(app, settings, optional=optional, public=public)
    install_metrics(app, metrics)
    install_health(app, lambda: app.state.runtime)
    issuer = urlsplit(settings.oidc_issuer) if settings.oidc_issuer else None
    app.add_middleware(  # every request, whatever answers it (a 401, a 413, a route)
        FrontDoor, authenticate=authenticate, limits=RequestLimits(settings.max_body_bytes),
        metrics=metrics, write_timeout_s=settings.write_timeout_s,
        page_policy=page_policy([f"{issuer.scheme}://{issuer.netloc}"] if issuer else []),
        # its first step: every request, answered by whichever part, has a span
        traced=True, clock=clock)


#: The cyclic garbage collector's young-generation threshold once a service is up (CPython's
#: default is 700 allocations): above what a consumer holds while it applies a batch and
#: reads the next ahead (a command writer's two batches of 2,000 events: their messages,
#: envelopes, payloads, rows; some 40,000 objects and more). At 10,000 each batch set off
#: a young collection that walked those objects, all alive and freed by reference counting
#: soon after: follow-up's rules 52 collections in a 26,595-event drain, 8.4 us an event (a
#: tenth of its CPU) for 10 objects found; the cases projection 2.3-3.8 us. The count is of
#: objects allocated and not yet freed, so only what is held or cyclic garbage reaches it:
#: the rare collection left walks at most this many (~35 ms), and cycles are still collected.
GC_YOUNG_THRESHOLD = 100_000
#: How many young collections go by between two of the middle generation once a service is up
#: (CPython's default is 10). A consumer holds two or three batches of decoded events (tens of
#: thousands of objects) across every young collection, so each young collection moved them
#: into the middle generation, and every tenth walked them all again there: 35-67 ms of CPU
#: each, 5-10 us an event of the rules and the intake follower, dead by reference counting by
#: the next one (benchmarks/README.md, target 2, round of 2026-12-06).
GC_OLDER_THRESHOLD = 100


def settle_garbage_collector() -> None:
    """Once a service has started: put what start-up built (the app, its routes and models, the
    store's and the bus's clients) out of the cyclic collector's reach, and run the collector's
    young and middle generations less often.

    A request waiting for its group commit keeps its objects alive across many allocations, so
    with CPython's defaults each request paid some 45 us of collections that walked the whole
    heap, more than FastAPI's routing. Reference counting still frees almost everything at
    once; reference cycles are still collected, a little later.
    """
    gc.collect()
    heap.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, GC_OLDER_THRESHOLD, gc.get_threshold()[2])


def serve(service: ServiceName, create_app: Callable[[Settings], FastAPI]) -> None:
    """``python -m services.<name>.main``: settings from the environment, logs, then uvicorn
    on the service's own port (``shared.http.server``: one socket write per answer); the
    garbage collector settled once the service has started."""
    import uvicorn
    from pydantic import ValidationError

    from shared.http.server import OneWriteHttpProtocol
    from shared.runtime.logs import configure_logging

    try:
        settings = Settings()
        configure_logging(settings.log_level, settings.log_json)
        app = create_app(settings)
    except (ValidationError, DevelopmentDefaults, NatsCredentialsMissing,
            ClockAheadUntilRefused) as exc:
        # A start-up refusal an operator reads: the settings at fault, no traceback.
        print(f"sixstep {service}: refusing to start: {settings_problem(exc)}", file=sys.stderr)
        raise SystemExit(2) from None
    starting = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app_: Any) -> AsyncIterator[Any]:
        async with contextlib.AsyncExitStack() as stack:
            try:
                state = await stack.enter_async_context(starting(app_))
            except (ServerTooOld, RevocationsUnread, SignInRefused) as exc:
                # A start-up refusal too, read the same way: one line, exit 2. Raised on, it
                # was uvicorn's "Application startup failed" (exit 3) after a traceback of
                # some 40 frames that Starlette hands uvicorn to log, the reason in its last
                # line. Nothing runs yet that a stop would finish (the relay and the
                # consumers start after the streams); the connections end with the process.
                print(f"sixstep {service}: refusing to start: {exc}", file=sys.stderr,
                      flush=True)
                sys.stdout.flush()
                os._exit(2)
            settle_garbage_collector()
            yield state

    app.router.lifespan_context = lifespan
    uvicorn.run(app, host=settings.host, port=settings.port_for(service),
                log_level=settings.log_level.lower(), access_log=False,
                http=OneWriteHttpProtocol)  # one socket write per answer

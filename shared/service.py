"""The runtime every service shares: store, pool, bus, group commit, relay, consumers, health."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import re
import secrets
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import structlog
from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from nats.aio.client import Client as NATS
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.metrics import Gauge

from shared.auth import install_auth
from shared.bus.consumer import TRACKING_DDL, Consumer, ConsumerStats, Handler
from shared.bus.deadletters import REPLAY_DDL
from shared.bus.jetstream import connect, ensure_streams_when_ready
from shared.calendars import Calendars
from shared.eventstore.application import ServiceApplication, build_application
from shared.eventstore.group_commit import GroupCommitter
from shared.eventstore.outbox import Relay
from shared.http import Metrics, install_correlation, install_error_handlers
from shared.limits import install_request_limits
from shared.logs import adopt_stdlib_logging
from shared.ops import install_ops
from shared.readmodels.migrations import run_migrations
from shared.readmodels.pool import create_pool
from shared.runtime import Background
from shared.settings import DevelopmentDefaults, ServiceName, Settings
from shared.web.security import install_security_headers

log = structlog.get_logger("sixstep.service")

#: The suffix ``add_consumer`` gives a partitioned replica's durable (``-p0_1``, ``-p0to15x16``).
PARTITION_SUFFIX = re.compile(r"-p(?:\d+(?:_\d+)*|\d+to\d+x\d+)$")


@dataclass
class Runtime:
    settings: Settings
    service: ServiceName
    application: ServiceApplication
    pool: asyncpg.Pool
    nc: NATS
    committer: GroupCommitter
    metrics: Metrics
    background: Background = field(default_factory=Background)
    consumers: dict[str, Consumer] = field(default_factory=dict)
    base_names: dict[str, str] = field(default_factory=dict)
    relay: Relay | None = None
    #: The service's working-day calendars (every service builds them once, from settings).
    calendars: Calendars | None = None
    #: What time it is for the calendar's warnings (the service's injected clock).
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    #: Run after the calendars changed (re-planning, parked rules): name -> counts.
    calendar_hooks: dict[str, Callable[[], Awaitable[dict[str, int]]]] = field(
        default_factory=dict)
    #: Reasons the service serves but needs attention (/ready answers 200 ``degraded``).
    degradations: list[Callable[[], Awaitable[list[str]]]] = field(default_factory=list)
    origin: str = field(default_factory=lambda: secrets.token_hex(6))

    def add_consumer(self, name: str, handler: Handler, filter_subjects: Sequence[str]) -> Consumer:
        settings = self.settings
        base = name
        owned = settings.owned_partitions()
        if owned is not None:
            # Scale out by partition: this replica's durable consumer sees only its share.
            name = f"{name}-p{'_'.join(str(p) for p in owned)}" if len(owned) <= 4 else \
                f"{name}-p{owned[0]}to{owned[-1]}x{len(owned)}"
            filter_subjects = [f"{subject.rsplit('.', 1)[0]}.p{p}"
                               for subject in filter_subjects for p in owned]
        counter = self.metrics.consumed.labels(self.service, name)
        dead = self.metrics.dead_letters.labels(self.service, name)
        lag = self.metrics.lag.labels(self.service, name)
        seen = {"applied": 0, "dead": 0}

        def on_batch(stats: ConsumerStats) -> None:
            counter.inc(stats.applied - seen["applied"])
            dead.inc(stats.dead_lettered - seen["dead"])
            seen["applied"], seen["dead"] = stats.applied, stats.dead_lettered
            lag.set(stats.pending)

        consumer = Consumer(settings=settings, nc=self.nc, pool=self.pool, name=name,
                            handler=handler, filter_subjects=list(filter_subjects),
                            batch=settings.consumer_batch,
                            max_deliver=settings.consumer_max_deliver,
                            backoff=settings.consumer_backoff_s, on_batch=on_batch,
                            ack_wait=settings.consumer_ack_wait_s)
        self.consumers[name] = consumer
        self.base_names[name] = base
        if self.runs_workers:
            self.background.start(f"consumer:{name}", consumer.run)
        return consumer

    def handler_for(self, consumer: str) -> Handler | None:
        """The handler behind a consumer name, also another partition replica's
        (``intake-cases-p2_3`` on a replica that owns 0-1): for dead-letter replay."""
        if consumer in self.consumers:
            return self.consumers[consumer].handler
        base = PARTITION_SUFFIX.sub("", consumer)
        for name, known in self.base_names.items():
            if known == base:
                return self.consumers[name].handler
        return None

    def scheduler_backlog(self, scheduler: str) -> Gauge:
        """The gauge a scheduler sets to how much due work it has not yet turned into events
        (``runtime.scheduler_backlog("followups").set(n)`` after each tick)."""
        return self.metrics.scheduler_backlog.labels(self.service, scheduler)

    @property
    def runs_workers(self) -> bool:
        return "workers" in self.settings.roles

    def start_worker(self, name: str, loop_factory: Callable[[], Awaitable[None]]) -> None:
        """A background loop (scheduler, fan-out) that runs only in worker processes."""
        if self.runs_workers:
            self.background.start(name, loop_factory)

    async def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Whether to serve (store, NATS, lag) and what needs attention without stopping it:
        ``checks["degraded"]`` (e.g. parked rules) and ``checks["warnings"]`` (e.g. the
        official holiday schedules end soon)."""
        checks: dict[str, Any] = {}
        try:
            await asyncio.wait_for(self.pool.fetchval("SELECT 1"), 2.0)
            checks["store"] = "ok"
        except Exception as exc:
            checks["store"] = f"down: {type(exc).__name__}"
        checks["nats"] = "ok" if self.nc.is_connected else "down"
        lag = ({name: c.stats.pending for name, c in self.consumers.items()}
               if self.runs_workers else {})
        checks["consumer_lag"] = lag
        lag_ok = all(v <= self.settings.ready_max_lag for v in lag.values())
        ok = checks["store"] == "ok" and checks["nats"] == "ok" and lag_ok
        degraded: list[str] = []
        for reasons in self.degradations:
            try:
                degraded.extend(await asyncio.wait_for(reasons(), 2.0))
            except Exception as exc:  # the store is down: already said above
                log.debug("ready.degradation_unknown", error=f"{type(exc).__name__}: {exc}")
        checks["degraded"] = degraded
        checks["warnings"] = []
        if self.calendars is not None:
            status = self.calendars.status(self.now().astimezone(self.settings.tz).date())
            checks["calendar"] = {"official_until": min(c.official_until
                                                        for c in status.centers).isoformat(),
                                  "covers_until": min(c.covers_until
                                                      for c in status.centers).isoformat()}
            checks["warnings"] = status.warnings
        return ok, checks

    # -- the working-day calendar ---------------------------------------------------------

    def calendar_subject(self) -> str:
        """Core NATS (outside every stream): a reload on one replica reaches the others."""
        return f"ops.{self.settings.subject_prefix}.calendar.reload"

    async def reload_calendars(self, *, tell_others: bool = True) -> dict[str, Any]:
        """Read the holidays files again (all or nothing: ``HolidaysFileError`` names the file
        and line and leaves everything as it was), then run the hooks (re-planning, parked
        rules) and tell the other replicas of every service to reload too."""
        if self.calendars is None:
            return {"changed": [], "hooks": {}}
        changed = await asyncio.to_thread(self.calendars.reload)
        log.info("calendar.reloaded", service=self.service, changed=changed)
        hooks = await self.run_calendar_hooks()
        if tell_others:
            with contextlib.suppress(Exception):
                await self.nc.publish(self.calendar_subject(), self.origin.encode())
        return {"changed": changed, "hooks": hooks}

    async def run_calendar_hooks(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, hook in self.calendar_hooks.items():
            out[name] = await hook()
        return out

    async def listen_for_calendar_reloads(self) -> None:
        """Another replica reloaded (``POST /ops/calendar/reload``): reload here too, so every
        replica plans on the same calendar; a bad file is logged and changes nothing."""
        async def heard(msg: Any) -> None:
            if msg.data.decode(errors="replace") == self.origin:
                return
            try:
                changed = await asyncio.to_thread(self.calendars.reload)  # type: ignore[union-attr]
                log.info("calendar.reloaded", service=self.service, changed=changed,
                         told_by="another replica")
            except Exception as exc:
                log.error("calendar.reload_failed", service=self.service, error=str(exc))

        if self.calendars is not None:
            await self.nc.subscribe(self.calendar_subject(), cb=heard)


async def start_runtime(settings: Settings, service: ServiceName,
                        app_cls: type[ServiceApplication], ddl: Sequence[str],
                        metrics: Metrics | None = None,
                        calendars: Calendars | None = None) -> Runtime:
    """Open the store, the pool and the bus; start group commit and the relay.

    Pass the ``Metrics`` installed on the FastAPI app (``metrics.install(app)`` at creation)
    so that /metrics shows the runtime's counters, and the service's ``Calendars`` (built at
    creation, so a bad holidays file stops it there) for /ready's warnings and the
    ``/ops/calendar`` routes.
    """
    if settings.log_json:
        adopt_stdlib_logging(settings.log_level)
    application = await asyncio.to_thread(build_application, app_cls, settings, service)
    schema = settings.schema_for(service)
    pool = await create_pool(settings, schema)
    await run_migrations(pool, schema, [*TRACKING_DDL, *REPLAY_DDL, *ddl])
    nc = await connect(settings, f"sixstep-{service}")
    await ensure_streams_when_ready(nc.jetstream(), settings)
    metrics = metrics or Metrics(service)
    application.on_recorded = metrics.appended.labels(service).inc
    committer = GroupCommitter(
        application, max_batch=settings.group_commit_max_batch,
        max_wait_ms=settings.group_commit_max_wait_ms,
        on_batch=lambda n: metrics.batches.labels(service).observe(n))
    committer.start()
    runtime = Runtime(settings, service, application, pool, nc, committer, metrics,
                      calendars=calendars)
    await runtime.listen_for_calendar_reloads()
    if calendars is not None:
        def days_left() -> float:
            today = runtime.now().astimezone(settings.tz).date()
            return float(min(c.official_days_left for c in calendars.status(today).centers))

        metrics.calendar_days_left.labels(service).set_function(days_left)
    published = metrics.published.labels(service)
    relay = Relay(settings, service, application, pool, nc, on_published=published.inc)
    runtime.relay = relay
    runtime.start_worker("relay", relay.run)
    log.info("service.started", service=service, schema=schema)
    return runtime


async def stop_runtime(runtime: Runtime) -> None:
    """Graceful: consumers finish the batch in hand (they may write too), the other loops
    (schedulers) stop, accepted writes are committed, the relay publishes them; then NATS is
    drained and the store closed."""
    await asyncio.gather(*(c.drain() for c in runtime.consumers.values()))
    await runtime.background.stop(names=[n for n in runtime.background.tasks if n != "relay"])
    await runtime.committer.close()
    if runtime.relay is not None and runtime.relay.leading:
        deadline = asyncio.get_running_loop().time() + 5.0
        last = await runtime.pool.fetchval(
            f'SELECT max(notification_id) FROM "{runtime.relay.schema}".'
            f'"{runtime.relay.table}"') or 0
        while runtime.relay.position < last and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
    await runtime.background.stop()
    with contextlib.suppress(Exception):
        await runtime.nc.drain()
    await runtime.pool.close()
    await asyncio.to_thread(runtime.application.close)
    log.info("service.stopped", service=runtime.service)


def install_surface(app: FastAPI, settings: Settings, metrics: Metrics, *,
                    public: Iterable[str] = (), optional: Iterable[str] = ()) -> None:
    """What every service's app has in front of its own routes, in this order: error bodies,
    authentication (``public`` and ``optional`` path patterns, see ``shared.auth``), request
    limits, metrics, then health, readiness and the ops routes of the runtime that the
    lifespan puts in ``app.state.runtime``; and the security headers on every response
    (``shared.web.security``). Outside development a development secret stops it here
    (``Settings.refuse_development_defaults``), however the settings were made."""
    settings.refuse_development_defaults()
    app.state.settings = settings
    app.state.runtime = None
    install_error_handlers(app)
    install_auth(app, settings, optional=optional, public=public)
    install_request_limits(app, settings.max_body_bytes)
    metrics.install(app)
    install_health(app, lambda: app.state.runtime)
    install_security_headers(app)  # outermost: on every answer, a 401 or a 413 too


def install_health(app: FastAPI, get_runtime: Callable[[], Runtime | None]) -> None:
    """The operations surface of a service: /health, /ready, /metrics (when the service did
    not install its own ``Metrics``: then only the runtime's counters), the /ops routes
    (``shared.ops``) and a correlation id in the log context of every request."""
    install_correlation(app)
    install_ops(app, get_runtime)
    if not any(getattr(route, "path", None) == "/metrics" for route in app.routes):
        @app.get("/metrics", include_in_schema=False)
        async def _metrics() -> Response:
            runtime = get_runtime()
            body = generate_latest(runtime.metrics.registry) if runtime else b""
            return Response(body, media_type=CONTENT_TYPE_LATEST)

    @app.get("/health", tags=["ops"], summary="Alive")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready", tags=["ops"], summary=(
        "200 ready, or 200 degraded (serving; reasons say what needs attention, e.g. parked "
        "rules), or 503 not_ready (store, NATS or consumer lag); warnings (e.g. the official "
        "holiday schedules end within CALENDAR_WARN_DAYS) never change the status"))
    async def ready() -> JSONResponse:
        runtime = get_runtime()
        if runtime is None:
            return JSONResponse({"status": "starting"}, status_code=503)
        ok, checks = await runtime.readiness()
        # Degraded still serves (200): a parked rule must not take a pod out of rotation.
        state = "not_ready" if not ok else "degraded" if checks["degraded"] else "ready"
        return JSONResponse({"status": state, "reasons": checks["degraded"],
                             "warnings": checks["warnings"], "checks": checks},
                            status_code=200 if ok else 503)




#: The cyclic garbage collector's young-generation threshold once a service is up (CPython's
#: default is 700 allocations).
GC_YOUNG_THRESHOLD = 10_000


def settle_garbage_collector() -> None:
    """Once a service has started: put what start-up built (the app, its routes and models, the
    store's and the bus's clients) out of the cyclic collector's reach, and run the collector's
    young generation less often.

    A request waiting for its group commit keeps its objects alive across many allocations, so
    with CPython's defaults each request paid some 45 us of collections that walked the whole
    heap, more than FastAPI's routing. Reference counting still frees almost everything at
    once; reference cycles are still collected, a little later.
    """
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


def _settings_problem(exc: Exception) -> str:
    if isinstance(exc, DevelopmentDefaults):
        return str(exc)
    errors = exc.errors() if hasattr(exc, "errors") else []
    return "; ".join(
        f"{'.'.join(str(p) for p in e.get('loc', ())).upper() or 'settings'}: "
        f"{str(e.get('msg', '')).removeprefix('Value error, ')}" for e in errors) or str(exc)


def serve(service: ServiceName, create_app: Callable[[Settings], FastAPI]) -> None:
    """``python -m services.<name>.main``: settings from the environment, logs, then uvicorn
    on the service's own port; the garbage collector settled once the service has started."""
    import uvicorn
    from pydantic import ValidationError

    from shared.logs import configure_logging

    try:
        settings = Settings()
        configure_logging(settings.log_level, settings.log_json)
        app = create_app(settings)
    except (ValidationError, DevelopmentDefaults) as exc:
        # A start-up refusal an operator reads: the settings at fault, no traceback.
        print(f"sixstep {service}: refusing to start: {_settings_problem(exc)}", file=sys.stderr)
        raise SystemExit(2) from None
    starting = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app_: Any) -> AsyncIterator[Any]:
        async with starting(app_) as state:
            settle_garbage_collector()
            yield state

    app.router.lifespan_context = lifespan
    uvicorn.run(app, host=settings.host, port=settings.port_for(service),
                log_level=settings.log_level.lower(), access_log=False)

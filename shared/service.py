"""The runtime every service shares: store, pool, bus, group commit, relay, consumers, health."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import structlog
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from nats.aio.client import Client as NATS

from shared.bus import connect, ensure_streams
from shared.consumer import TRACKING_DDL, Consumer, ConsumerStats, Handler
from shared.eventstore import ServiceApplication, build_application
from shared.group_commit import GroupCommitter
from shared.http import Metrics
from shared.outbox import Relay
from shared.runtime import Background
from shared.settings import ServiceName, Settings
from shared.store import create_pool, run_migrations

log = structlog.get_logger("sixstep.service")


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
    relay: Relay | None = None

    def add_consumer(self, name: str, handler: Handler, filter_subjects: Sequence[str]) -> Consumer:
        settings = self.settings
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
                            backoff=settings.consumer_backoff_s, on_batch=on_batch)
        self.consumers[name] = consumer
        if self.runs_workers:
            self.background.start(f"consumer:{name}", consumer.run)
        return consumer

    @property
    def runs_workers(self) -> bool:
        return "workers" in self.settings.roles

    def start_worker(self, name: str, loop_factory: Callable[[], Awaitable[None]]) -> None:
        """A background loop (scheduler, fan-out) that runs only in worker processes."""
        if self.runs_workers:
            self.background.start(name, loop_factory)

    async def readiness(self) -> tuple[bool, dict[str, Any]]:
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
        return ok, checks


async def start_runtime(settings: Settings, service: ServiceName,
                        app_cls: type[ServiceApplication], ddl: Sequence[str],
                        metrics: Metrics | None = None) -> Runtime:
    """Open the store, the pool and the bus; start group commit and the relay.

    Pass the ``Metrics`` installed on the FastAPI app (``metrics.install(app)`` at creation)
    so that /metrics shows the runtime's counters.
    """
    application = await asyncio.to_thread(build_application, app_cls, settings, service)
    schema = settings.schema_for(service)
    pool = await create_pool(settings, schema)
    await run_migrations(pool, schema, [*TRACKING_DDL, *ddl])
    nc = await connect(settings, f"sixstep-{service}")
    await ensure_streams(nc.jetstream(), settings)
    metrics = metrics or Metrics(service)
    committer = GroupCommitter(
        application, max_batch=settings.group_commit_max_batch,
        max_wait_ms=settings.group_commit_max_wait_ms,
        on_batch=lambda n: metrics.batches.labels(service).observe(n))
    committer.start()
    runtime = Runtime(settings, service, application, pool, nc, committer, metrics)
    published = metrics.published.labels(service)
    relay = Relay(settings, service, application, pool, nc, on_published=published.inc)
    runtime.relay = relay
    runtime.start_worker("relay", relay.run)
    log.info("service.started", service=service, schema=schema)
    return runtime


async def stop_runtime(runtime: Runtime) -> None:
    """Graceful: finish accepted writes, let the relay publish them, then drain and close."""
    await runtime.committer.close()
    if runtime.relay is not None and runtime.runs_workers:
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


def install_health(app: FastAPI, get_runtime: Callable[[], Runtime | None]) -> None:
    @app.get("/health", tags=["ops"], summary="Alive")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready", tags=["ops"], summary="Store, NATS and consumer lag within bounds")
    async def ready() -> JSONResponse:
        runtime = get_runtime()
        if runtime is None:
            return JSONResponse({"status": "starting"}, status_code=503)
        ok, checks = await runtime.readiness()
        return JSONResponse({"status": "ready" if ok else "not_ready", "checks": checks},
                            status_code=200 if ok else 503)



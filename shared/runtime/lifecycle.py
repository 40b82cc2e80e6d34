"""A running service: what it holds (:class:`Runtime`: the store, the pool, the bus, group
commit, the relay, its consumers and background loops, its calendars), how it starts
(:func:`start_runtime`) and how it stops, gracefully (:func:`stop_runtime`). Its HTTP surface
(health, readiness, ops routes) is ``shared.http``'s."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import structlog
from nats.aio.client import Client as NATS
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client.metrics import Gauge

from shared.bus.consumer import (
    TRACKING_DDL,
    Consumer,
    ConsumerStats,
    Handler,
    partitioned_name,
)
from shared.bus.deadletters import REPLAY_DDL
from shared.bus.durable_names import base_consumer
from shared.bus.jetstream import connect, consumer_service, ensure_streams_when_ready
from shared.bus.revocations import bucket_stream, load_and_watch
from shared.eventstore.application import ServiceApplication, build_application
from shared.eventstore.group_commit import GroupCommitter
from shared.eventstore.outbox import Relay
from shared.kernel.clock import Clock, SystemClock
from shared.kernel.tasks import cancel_and_wait, gather_all
from shared.leadership import Leadership
from shared.readmodels.holdings import END_SESSIONS_SQL
from shared.readmodels.migrations import run_migrations
from shared.readmodels.pool import create_lock_pool, create_pool
from shared.readmodels.readmodel import read_model_of
from shared.runtime import calendar_seen, heap, replan_pending
from shared.runtime.background import Background
from shared.runtime.calendars import Calendars
from shared.runtime.logs import adopt_stdlib_logging
from shared.runtime.metrics import Metrics, time_writes
from shared.runtime.replanning import FailureLog, Hook, Pending, Replanner
from shared.runtime.tracing import start_tracing, stop_tracing
from shared.security.revocations import RevokedTokens
from shared.settings import ServiceName, Settings

log = structlog.get_logger("sixstep.service")


def _iso(at: float | None) -> str | None:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds") if at else None


def _for_how_long(since: float | None) -> str:
    """``for 12 s (since 2026-12-03T22:01:02+00:00)``: the reason's duration."""
    if since is None:
        return ""
    return f"for {max(0.0, time.time() - since):.0f} s (since {_iso(since)})"



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
    #: The consumers this process drives (a worker's, of those CONSUMERS names).
    driven: dict[str, Consumer] = field(default_factory=dict)
    base_names: dict[str, str] = field(default_factory=dict)
    #: The subjects each consumer's code reads (its base name's, every partition): what a
    #: dead letter's replay may apply (``filters_for``).
    base_filters: dict[str, list[str]] = field(default_factory=dict)
    relay: Relay | None = None
    #: The singleton loops this process may lead, by name (``start_leading``).
    leaderships: dict[str, Leadership] = field(default_factory=dict)
    #: The service's working-day calendars (every service builds them once, from settings).
    calendars: Calendars | None = None
    #: What time it is for the calendar's warnings (the service's injected clock).
    clock: Clock = field(default_factory=SystemClock)
    #: Reasons the service serves but needs attention (/ready answers 200 ``degraded``).
    degradations: list[Callable[[], Awaitable[list[str]]]] = field(default_factory=list)
    origin: str = field(default_factory=lambda: secrets.token_hex(6))
    #: When (``time.time()``) /ready first found the store down; None while it answers.
    store_down_since: float | None = None
    #: The process's traces, when OTEL_EXPORTER_OTLP_ENDPOINT is set (shared.runtime.tracing).
    tracer_provider: TracerProvider | None = None
    #: Whether start_runtime froze the heap (``gc.freeze``), to be given back at stop.
    froze_heap: bool = False
    #: The tokens signed out before their expiry (``shared.bus.revocations``), and its watch.
    revoked: RevokedTokens = field(default_factory=RevokedTokens)
    revocations_watch: asyncio.Task[None] | None = None
    #: The connections the loops this process leads hold their locks on (``create_lock_pool``):
    #: none of ``pool``'s, which stays whole for requests, batches and rounds. None (a test's
    #: runtime): ``pool``.
    lock_pool: asyncpg.Pool | None = None
    #: What the service does when its calendars change (``shared.runtime.replanning``):
    #: reload, re-plan, retry a failed re-planning.
    replanner: Replanner = field(init=False)

    def __post_init__(self) -> None:
        self.replanner = Replanner(self.service, self.settings, self.pool, self.nc,
                                   self.calendars, origin=self.origin, log=log)

    @property
    def locks(self) -> asyncpg.Pool:
        """Where a loop this process leads holds its lock (``Leadership``'s pool): give it to
        every loop that leads (``locks=runtime.locks``); on ``pool`` it would hold one of the
        working connections for as long as it leads."""
        return self.lock_pool or self.pool

    def add_consumer(self, name: str, handler: Handler, filter_subjects: Sequence[str]) -> Consumer:
        settings = self.settings
        base = name
        if consumer_service(name) != self.service:
            # Its dead letters go to dlq.<prefix>.<the name up to its first "-">.<name>, which
            # the shipped NATS lets this service's user publish only when that is this
            # service: another name's letters were refused by the server, and the consumer,
            # unable to dead-letter, handed its batch back for ever (redteam128).
            raise ValueError(f"consumer {name!r} of {self.service}: its name must begin "
                             f"with '{self.service}-' (the service its dead letters name)")
        self.base_filters[base] = list(filter_subjects)
        owned = settings.owned_partitions()
        if owned is not None:
            # Scale out by partition: this replica's durable consumer sees only its share.
            name = partitioned_name(name, owned)
            filter_subjects = [f"{subject.rsplit('.', 1)[0]}.p{p}"
                               for subject in filter_subjects for p in owned]
        counter = self.metrics.consumed.labels(self.service, name)
        dead = self.metrics.dead_letters.labels(self.service, name)
        merged = self.metrics.merged.labels(self.service, name)
        refused = self.metrics.merges_refused.labels(self.service, name)
        seen = {"applied": 0, "dead": 0, "merged": 0, "refused": 0}

        def on_batch(stats: ConsumerStats) -> None:
            counter.inc(stats.applied - seen["applied"])
            dead.inc(stats.dead_lettered - seen["dead"])
            merged.inc(stats.merged - seen["merged"])
            refused.inc(stats.merges_refused - seen["refused"])
            seen["applied"], seen["dead"] = stats.applied, stats.dead_lettered
            seen["merged"], seen["refused"] = stats.merged, stats.merges_refused

        consumer = Consumer(settings=settings, nc=self.nc, pool=self.pool, locks=self.locks,
                            name=name,
                            handler=handler, filter_subjects=list(filter_subjects),
                            batch=settings.consumer_batch,
                            max_deliver=settings.consumer_max_deliver,
                            backoff=settings.consumer_backoff_s, on_batch=on_batch,
                            ack_wait=settings.consumer_ack_wait_s,
                            isolate_after=settings.consumer_isolate_after_timeouts,
                            gather_s=settings.consumer_gather_ms / 1000,
                            gather_below=settings.consumer_gather_below,
                            gather_window_s=settings.consumer_gather_window_ms / 1000,
                            on_store_timeout=self.metrics.store_timeouts.labels(
                                self.service, name).inc)
        self.consumers[name] = consumer
        self.base_names[name] = base
        if self.runs_workers and not self.runs_consumer(base):
            return consumer  # another worker's (CONSUMERS): its lag is that worker's to say
        # Read when scraped: the batches and the probe (``probe_event_path``) keep them true.
        self.metrics.lag.labels(self.service, name).set_function(
            lambda: consumer.stats.pending)
        self.metrics.oldest_unapplied_age.labels(self.service, name).set_function(
            consumer.stats.oldest_unapplied_age)
        self.metrics.stream_refused.labels(self.service, name).set_function(
            lambda: float(consumer.stats.stream_refused is not None))
        if self.runs_workers:
            self.driven[name] = consumer
            self.metrics.leading.labels(self.service, f"consumer:{name}").set_function(
                lambda: int(consumer.leads))
            self.background.start(f"consumer:{name}", consumer.run)
        return consumer

    def runs_consumer(self, name: str) -> bool:
        """Whether this process drives the consumer ``name`` (its base name): a worker, and
        one of the CONSUMERS it was given (all when none were)."""
        chosen = self.settings.consumers
        return self.runs_workers and (not chosen or name in chosen)

    def handler_for(self, consumer: str) -> Handler | None:
        """The handler behind a consumer name, also another partition replica's
        (``intake-cases-p2_3`` on a replica that owns 0-1): for dead-letter replay."""
        if consumer in self.consumers:
            return self.consumers[consumer].handler
        base = base_consumer(consumer)
        for name, known in self.base_names.items():
            if known == base:
                return self.consumers[name].handler
        return None

    def filters_for(self, consumer: str) -> list[str]:
        """The subjects the consumer's code reads, for any of its durables (every
        partition's): a dead letter's event must be on one of them to be replayed. From the
        code, never the durable's config on the server, which a service's user may change."""
        return self.base_filters.get(base_consumer(consumer), [])

    def scheduler_backlog(self, scheduler: str) -> Gauge:
        """The gauge a scheduler sets to how much due work it has not yet turned into events
        (``runtime.scheduler_backlog("followups").set(n)`` after each tick)."""
        return self.metrics.scheduler_backlog.labels(self.service, scheduler)

    @property
    def runs_workers(self) -> bool:
        return "workers" in self.settings.roles

    def start_leading(self, name: str, leadership: Leadership,
                      loop_factory: Callable[[], Awaitable[None]], *,
                      role: str = "workers") -> None:
        """``start_worker`` for a singleton loop that holds ``leadership`` (one replica runs
        it): ``sixstep_leading{loop=name}`` says whether this replica leads it, and /ready's
        ``leading`` lists the loops it leads."""
        if role in self.settings.roles:
            self.leaderships[name] = leadership
            self.metrics.leading.labels(self.service, name).set_function(
                lambda: int(leadership.leading))
        self.start_worker(name, loop_factory, role=role)

    def start_worker(self, name: str, loop_factory: Callable[[], Awaitable[None]], *,
                     role: str = "workers") -> None:
        """A background loop that runs only in processes of ``role``: a scheduler in worker
        processes, the policy fan-out in ``fanout`` processes (``ROLES``)."""
        if role in self.settings.roles:
            self.background.start(name, loop_factory)

    async def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Whether to serve (store, NATS, lag) and what needs attention without stopping it:
        ``checks["degraded"]`` (e.g. parked rules) and ``checks["warnings"]`` (e.g. the
        official holiday schedules end soon)."""
        checks: dict[str, Any] = {}
        degraded: list[str] = []
        try:
            async with asyncio.timeout(2.0):  # in this task: see probe_event_path
                await self.pool.fetchval("SELECT 1")
            checks["store"] = "ok"
            self.store_down_since = None
        except Exception as exc:
            checks["store"] = f"down: {type(exc).__name__}"
            self.store_down_since = self.store_down_since or time.time()
            degraded.append(f"store: down {_for_how_long(self.store_down_since)}")
        checks["nats"] = ("down" if not self.nc.is_connected else
                          "deaf" if _reading_ended(self.nc) else "ok")
        checks["leading"] = sorted(
            [name for name, lead in self.leaderships.items() if lead.leading]
            + [f"consumer:{name}" for name, c in self.driven.items() if c.leads])
        lag = {name: c.stats.pending for name, c in self.driven.items()}
        checks["consumer_lag"] = lag
        # A consumer refusing a stream made anew lags by the whole stream: no restart can fix
        # that, and the service's writes go on; it makes /ready degraded, not 503.
        lag_ok = all(v <= self.settings.ready_max_lag for name, v in lag.items()
                     if self.driven[name].stats.stream_refused is None)
        checks["revoked_tokens"] = len(self.revoked) if self.revoked.loaded else "not read"
        ok = (checks["store"] == "ok" and checks["nats"] == "ok" and lag_ok
              and self.revoked.loaded)
        degraded.extend(self._path_degradations(checks))
        for reasons in self.degradations:
            try:
                async with asyncio.timeout(2.0):
                    degraded.extend(await reasons())
            except Exception as exc:  # the store is down: already said above
                log.debug("ready.degradation_unknown", error=f"{type(exc).__name__}: {exc}")
        if (pending := self.replan_pending).since is not None or pending.row is not None:
            row = pending.row.public if pending.row is not None else None
            since = row.since.timestamp() if row is not None else pending.since
            tries = f", {row.attempts} tries" if row is not None else ""
            error = f"; last error: {row.last_error}" if row and row.last_error else ""
            left = (pending.since is None and pending.row is not None
                    and pending.row.revision == self.replan_not_adopted)
            how = ("not retried here: made on calendars this replica's holidays files do not "
                   "give (calendar.replan_not_adopted in its log)" if left else
                   "retried by the service with back-off")
            degraded.append(f"calendar: {pending.shown} item(s) not re-planned after the "
                            f"calendar changed {_for_how_long(since)}{tries}, {how}: "
                            "`sixstep calendar status` says what, see its log, "
                            f"replan.failed{error}")
        checks["degraded"] = degraded
        checks["warnings"] = []
        if self.calendars is not None:
            status = self.calendars.status(self.clock.now().astimezone(self.settings.tz).date())
            checks["calendar"] = {"official_until": min(c.official_until
                                                        for c in status.centers).isoformat(),
                                  "covers_until": min(c.covers_until
                                                      for c in status.centers).isoformat()}
            checks["warnings"] = status.warnings
        if self.revoked.bucket_differs:  # said once in the log at the start: said here too
            checks["warnings"] = [*checks["warnings"], (
                f"signed-out tokens: the bucket's stream {bucket_stream(self.settings)} "
                f"differs ({', '.join(self.revoked.bucket_differs)}): a service's write may "
                "end a revocation for replicas started after; `sixstep ops apply` makes it "
                "again (docs/security.md)")]
        return ok, checks

    def _path_degradations(self, checks: dict[str, Any]) -> list[str]:
        """The event path behind this worker: the relay stalled past RELAY_STALL_S, a
        consumer's oldest unapplied event older than CONSUMER_LAG_DEGRADED_S (both as the
        last probe measured them; the ages grow between probes)."""
        if not self.runs_workers:
            return []
        out: list[str] = []
        relay = self.relay
        if relay is not None and relay.leading:
            age = relay.unpublished_age()
            checks["relay"] = {"unpublished": relay.unpublished, "age_s": round(age, 3),
                               "since": _iso(relay.behind_since),
                               "last_error": relay.last_error,
                               "connections_lost": relay.connections_lost,
                               "out_of_order": relay.out_of_order}
            if age > self.settings.relay_stall_s:
                why = f": {relay.last_error}" if relay.last_error else ""
                out.append(f"relay: {relay.unpublished} stored event(s) not published "
                           f"{_for_how_long(relay.behind_since)}{why}")
        ages = {name: c.stats.oldest_unapplied_age() for name, c in self.driven.items()}
        checks["consumer_oldest_unapplied_s"] = {n: round(a, 3) for n, a in ages.items()}
        for name, c in self.driven.items():
            if c.stats.stream_refused is not None:
                model = read_model_of(self.base_names.get(name, name))
                fix = (f"run `sixstep rebuild {model}`" if model else
                       "it builds no read model: see deploy/README, 'A stream made anew'")
                out.append(f"consumer {name}: applies nothing, the stream is not the one its "
                           f"tracking rows were written against ({c.stats.stream_refused}): "
                           f"{fix}")
        for name, c in self.driven.items():
            if c.stats.timing_out_since is not None and not (
                    c.stats.last_timeout or "").startswith("Unavailable:"):
                out.append(f"consumer {name}: its statements run out of time "
                           f"(DB_STATEMENT_TIMEOUT_S {self.settings.db_statement_timeout_s:g} s;"
                           f" {c.stats.last_timeout}) {_for_how_long(c.stats.timing_out_since)}"
                           ", retried with back-off: a lock another session holds? see "
                           "deploy/README, 'A hung statement'")
            elif c.stats.timing_out_since is not None:
                # A command its handler sends refused as unavailable (``Unavailable`` itself,
                # not a statement's time: the writer's queue full, or the vault's key bucket
                # missing, which lasts until someone puts it right): retried without a try
                # counted, never dead-lettered.
                out.append(f"consumer {name}: a command it sends is refused as unavailable "
                           f"({c.stats.last_timeout}) {_for_how_long(c.stats.timing_out_since)}"
                           ", retried with back-off and no try counted (never dead-lettered): see "
                           "deploy/README, 'A consumer retrying for ever'")
        for name, age in ages.items():
            if age > self.settings.consumer_lag_degraded_s:
                since = self.consumers[name].stats.oldest_unapplied_at
                out.append(f"consumer {name}: oldest unapplied event waiting "
                           f"{_for_how_long(since)}")
        return out

    async def probe_event_path(self) -> None:
        """Measure, every HEALTH_PROBE_INTERVAL_S, the relay's backlog and each consumer's
        oldest unapplied event, into the metrics (/ready reads the same numbers). A probe
        that fails (NATS or the store away) keeps the last answer: the ages go on growing.

        Bounded with ``asyncio.timeout``, in this task, not ``asyncio.wait_for``: Python
        3.11's runs the measure as a task of its own and, cancelled a second time while that
        task unwinds (a shutdown cancels again every 0.2 s), returns without it: the measure
        went on past the service's stop with no owner."""
        service = self.service
        unpublished = self.metrics.relay_unpublished.labels(service)
        if self.relay is not None:
            self.metrics.relay_unpublished_age.labels(service).set_function(
                self.relay.unpublished_age)
        while True:
            if self.relay is not None:
                try:
                    async with asyncio.timeout(2.0):
                        unpublished.set(await self.relay.measure())
                except Exception as exc:
                    log.debug("probe.relay_failed", error=f"{type(exc).__name__}: {exc}")
            for name, consumer in list(self.driven.items()):
                try:
                    async with asyncio.timeout(2.0):
                        await consumer.measure_oldest_unapplied()
                except Exception as exc:
                    log.debug("probe.consumer_failed", consumer=name,
                              error=f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(self.settings.health_probe_interval_s)

    # -- the working-day calendar: the Replanner's (shared.runtime.replanning) ------------

    @property
    def calendar_hooks(self) -> dict[str, Hook]:
        """Run after the calendars changed (re-planning, parked rules): name -> counts."""
        return self.replanner.hooks

    @calendar_hooks.setter
    def calendar_hooks(self, hooks: dict[str, Hook]) -> None:
        self.replanner.hooks = hooks

    @property
    def replan_pending(self) -> Pending:
        """A re-planning with failed items, run again by ``keep_replanning`` until it goes
        through."""
        return self.replanner.pending

    @property
    def replan_failures(self) -> FailureLog:
        return self.replanner.failures

    @property
    def replan_not_adopted(self) -> int | None:
        """The revision of the pending re-planning this worker left, its calendars not its
        own."""
        return self.replanner.not_adopted

    def calendar_subject(self) -> str:
        return self.replanner.subject()

    async def reload_calendars(self, *, tell_others: bool = True) -> dict[str, Any]:
        return await self.replanner.reload(tell_others=tell_others)

    async def replan_at_start(self) -> dict[str, Any]:
        return await self.replanner.at_start()

    async def keep_replanning(self) -> None:
        await self.replanner.keep_retrying()

    async def adopt_replannings(self) -> None:
        await self.replanner.adopt()

    async def run_calendar_hooks(self) -> dict[str, Any]:
        return await self.replanner.run_hooks()

    async def listen_for_calendar_reloads(self) -> None:
        await self.replanner.listen()


async def start_runtime(settings: Settings, service: ServiceName,
                        app_cls: type[ServiceApplication], ddl: Sequence[str],
                        metrics: Metrics | None = None,
                        calendars: Calendars | None = None) -> Runtime:
    """Open the store, the pool and the bus; start group commit and the relay.

    Pass the ``Metrics`` installed on the FastAPI app (by ``install_surface`` at creation)
    so that /metrics shows the runtime's counters, and the service's ``Calendars`` (built at
    creation, so a bad holidays file stops it there) for /ready's warnings and the
    ``/ops/calendar`` routes.
    """
    if settings.log_json:
        adopt_stdlib_logging(settings.log_level)
    tracer_provider = start_tracing(settings, service)
    application = await asyncio.to_thread(build_application, app_cls, settings, service)
    schema = settings.schema_for(service)
    pool = await create_pool(settings, schema)
    lock_pool = await create_lock_pool(settings, schema)
    await run_migrations(pool, schema, [*TRACKING_DDL, *REPLAY_DDL, *calendar_seen.DDL,
                                         *replan_pending.DDL, *ddl])
    nc = await connect(settings, f"sixstep-{service}")
    await ensure_streams_when_ready(nc.jetstream(), settings, align=False)
    metrics = metrics or Metrics(service)
    application.on_recorded = metrics.appended.labels(service).inc
    committer = GroupCommitter(
        application, max_batch=settings.group_commit_max_batch,
        max_wait_ms=settings.group_commit_wait_ms(), write_timeout_s=settings.write_timeout_s,
        command_digest_key=settings.command_digest_key(),
        on_batch=lambda n: metrics.batches.labels(service).observe(n))
    committer.on_clock_ahead = metrics.occurred_ahead.labels(service).observe
    committer.on_clock_behind = metrics.occurred_behind.labels(service).observe
    fast, slow = (metrics.clock_refused.labels(service, clock) for clock in ("fast", "slow"))
    committer.on_clock_refused = lambda ahead: (fast if ahead else slow).inc()
    committer.start()
    time_writes(committer, metrics.commit_seconds.labels(service).observe)
    runtime = Runtime(settings, service, application, pool, nc, committer, metrics,
                      calendars=calendars, tracer_provider=tracer_provider,
                      lock_pool=lock_pool)
    await runtime.listen_for_calendar_reloads()
    # Before any request: a token signed out on another service is refused here from the first.
    runtime.revocations_watch = await load_and_watch(nc, settings, runtime.revoked)
    if calendars is not None:
        def days_left() -> float:
            today = runtime.clock.now().astimezone(settings.tz).date()
            return float(min(c.official_days_left for c in calendars.status(today).centers))

        metrics.calendar_days_left.labels(service).set_function(days_left)
        metrics.calendar_replan_pending.labels(service).set_function(
            lambda: runtime.replan_pending.shown)
        runtime.background.start("calendar-retry", runtime.keep_replanning)
        runtime.start_worker("calendar-replan", runtime.adopt_replannings)
    published = metrics.published.labels(service)
    relay = Relay(settings, service, application, pool, locks=lock_pool,
                  on_published=published.inc,
                  on_connection_lost=metrics.relay_connections_lost.labels(service).inc,
                  on_out_of_order=metrics.relay_out_of_order.labels(service).inc)
    runtime.relay = relay
    runtime.start_leading("relay", relay.leadership, relay.run)
    runtime.start_worker("probe", runtime.probe_event_path)
    # What the process holds once started (modules, contracts, catalogue, the application:
    # some 400,000 objects) lives as long as the runtime: left out of the cyclic collector's
    # full passes, each of which walked all of it (a quarter to a half of a busy consumer's
    # CPU; benchmarks/README.md, issue 23 target 2). Back in at stop_runtime, so that
    # nothing frozen outlives the runtime uncollected. Only a heap nobody froze before: where
    # the process settled its collector already (``settle_garbage_collector``: the test run,
    # once collected), the runtime's objects stay collectable and what the process froze stays
    # frozen. Frozen and given back at every runtime's start and stop, a test run's earlier
    # tests were hidden from every collection (frozen while the next ran): 2.2 GB of garbage.
    runtime.froze_heap = not heap.frozen()  # (counting the frozen objects walks them all)
    if runtime.froze_heap:
        heap.freeze()
    log.info("service.started", service=service, schema=schema)
    return runtime


async def stop_runtime(runtime: Runtime) -> None:
    """Graceful: consumers finish the batch in hand (they may write too), the other loops
    (schedulers) stop, accepted writes are committed, the relay publishes them; then NATS is
    drained and the store closed.

    A graceful part that fails (PostgreSQL gone at shutdown: the relay's last position could
    not be read) is logged and raised at the end, once every loop, the watch of signed-out
    tokens, NATS and the pool have been let go: it returned at once and left them all running
    with no owner (a test run's shared loop kept them, retrying, for the rest of the run). A
    cancel of the stop itself goes straight out (a shutdown's deadline was asked).

    A loop that outlasts its graceful stop (10 s) is stopped hard before anything is let go
    under it (``Background.stop``: its PostgreSQL sessions ended, its connections closed):
    NATS is drained and the pool closed only once every loop has ended."""
    failed: Exception | None = None

    async def end_sessions(backends: Sequence[int]) -> None:
        await runtime.pool.execute(END_SESSIONS_SQL, list(backends))

    try:
        await gather_all(*(c.drain() for c in runtime.consumers.values()))
        await runtime.background.stop(names=[n for n in runtime.background.tasks
                                             if n != "relay"], end_sessions=end_sessions)
        await runtime.committer.close()
        await _relay_catches_up(runtime)
    except Exception as exc:
        failed = exc
        log.error("service.stop_failed", service=runtime.service,
                  error=f"{type(exc).__name__}: {exc}")
    await runtime.background.stop(end_sessions=end_sessions)
    if runtime.revocations_watch is not None:
        # Not ``suppress(BaseException)`` around an await: that also swallowed a cancel of
        # this stop itself (a shutdown's deadline), which then went on as if never asked.
        await cancel_and_wait(runtime.revocations_watch)
    with contextlib.suppress(Exception):
        await runtime.nc.drain()
    if runtime.lock_pool is not None:  # every loop has ended: its lock given back
        await runtime.lock_pool.close()
    await runtime.pool.close()
    await asyncio.to_thread(runtime.application.close)
    await asyncio.to_thread(stop_tracing, runtime.tracer_provider)  # the last spans sent
    if runtime.froze_heap:
        heap.unfreeze()
    log.info("service.stopped", service=runtime.service)
    if failed is not None:
        raise failed


async def _relay_catches_up(runtime: Runtime) -> None:
    """The relay publishes what was committed before the stop, for up to 5 s."""
    if runtime.relay is None or not runtime.relay.leading:
        return
    deadline = asyncio.get_running_loop().time() + 5.0
    last = await runtime.pool.fetchval(
        f'SELECT max(notification_id) FROM "{runtime.relay.schema}".'
        f'"{runtime.relay.table}"') or 0
    while runtime.relay.position < last and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)


def _reading_ended(nc: NATS) -> bool:
    """Whether the client's read loop ended while it still says it is connected: nats-py ends
    it on any error it does not expect (stop 56: a PONG for a flush given up on), and
    nothing it asks is answered from then on; not ready, so that it is seen and replaced."""
    reading = getattr(nc, "_reading_task", None)
    return reading is not None and reading.done()

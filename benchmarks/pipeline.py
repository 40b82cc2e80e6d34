"""The event pipeline's stages, each beside the raw rate of what it is built on.

    .venv/bin/python benchmarks/pipeline.py [--events 20000]

On servers of its own, in one run:
  * naive write path: eventsourcing ``save()`` of one aggregate at a time (table lock and
    commit per write) vs sixstep's group commit of the same commands
  * outbox relay: stored events -> stream, vs raw pipelined JetStream publish
  * consumer: stream -> intake read model (batched transaction + tracking), vs raw pull
    fetch with ack
  * COPY into PostgreSQL, the ceiling of any bulk load
  * what tracing, metrics and logging cost, paired in one run (modes interleaved, best of
    two or three): group commit of the same commands, each in a request's span as the HTTP
    surface opens it; a consumer applying the same events into the cases read model; a
    request through FastAPI with the tracing middleware. Modes: ``off`` (no tracing, no
    metrics hooks), ``no-op`` (every tracing helper runs, the API's no-op tracer),
    ``in-memory`` (the SDK recording every span into memory) and ``deployed`` (as the
    services run in every benchmark: OTLP/HTTP export to the run's local sink, sampled at
    ``common.SAMPLER_ARG``, and the runtime's metrics hooks).

The stages above run as deployed (``common.like_main``: INFO JSON logs, tracing to the sink,
metrics hooks); the logs are on in every mode.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg
import nats
from fastapi import FastAPI
from nats.js.api import AckPolicy, ConsumerConfig
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NoOpTracerProvider
from starlette.responses import Response

from benchmarks.common import (
    SAMPLER_ARG,
    bench_settings,
    like_main,
    machine,
    peak_rss_mb,
    publish_pipelined,
    servers,
)
from services.intake import commands as c
from services.intake.application import Intake, IntakeApplication
from services.intake.domain import Case
from services.intake.projections import DDL, CaseProjection
from shared import tracing
from shared.bus.consumer import TRACKING_DDL, Consumer, ConsumerStats
from shared.bus.jetstream import connect, ensure_streams
from shared.catalogue import load_catalogue
from shared.eventstore.application import build_application
from shared.eventstore.group_commit import GroupCommitter
from shared.eventstore.outbox import Relay
from shared.http.tracing import install_tracing
from shared.readmodels.migrations import run_migrations
from shared.readmodels.pool import create_pool
from shared.runtime.metrics import Metrics, time_writes
from shared.runtime.tracing import start_tracing, stop_tracing
from shared.settings import Settings

MODES = ("off", "no-op", "in-memory", "deployed")
PAIRED = ("off", "deployed")
"""The modes of the consumer's paired run (a consumer's share of tracing is its spans)."""


def metered(app: Any, committer: GroupCommitter, metrics: Metrics | None) -> None:
    """The runtime's metrics hooks on a store and its group commit (``start_runtime``'s)."""
    if metrics is None:
        return
    app.on_recorded = metrics.appended.labels("intake").inc
    committer._on_batch = metrics.batches.labels("intake").observe
    time_writes(committer, metrics.commit_seconds.labels("intake").observe)


def naive_save_rate(settings: Settings, n: int) -> float:
    app = build_application(IntakeApplication, settings.model_copy(
        update={"schema_prefix": "naive_"}), "intake")
    start = time.perf_counter()
    for i in range(n):
        case = Case(id=uuid.uuid4(), center_id="SH-PD-HUAMU", counter_id="w1",
                    clerk_id="clerk-1", channel="counter", service_item="SA-HARDSHIP-SUBSIDY",
                    resident_id=None, meta={"causation_id": f"naive-{i}", "center_id": "c"})
        app.save(case)
    rate = n / (time.perf_counter() - start)
    app.close()
    return rate


async def group_commit_rate(intake: Intake, n: int, concurrency: int = 512,
                            tag: str = "gc") -> float:
    """Each command in a request's span, as the HTTP surface opens one (none while off)."""
    body = c.OpenCase(center_id="SH-PD-HUAMU", counter_id="w1", clerk_id="clerk-1",
                      service_item="SA-HARDSHIP-SUBSIDY")
    queue = iter(range(n))
    server = tracing.SpanKind.SERVER

    async def worker() -> None:
        for i in queue:
            with tracing.span("POST /cases", kind=server):
                written = await intake.open_case(body, "clerk-1", f"{tag}-open-{i}")
            with tracing.span("POST /cases/{case_id}/hear", kind=server):
                await intake.hear_request(written.aggregate_id,
                                          c.HearRequest(words="想申请补助"), "clerk-1",
                                          f"{tag}-hear-{i}")

    start = time.perf_counter()
    await asyncio.gather(*[worker() for _ in range(concurrency)])
    return 2 * n / (time.perf_counter() - start)


def counted(metrics: Metrics | None) -> Callable[[ConsumerStats], None] | None:
    """A consumer's applied-events counter, as ``Runtime.consumer`` hooks it (None: off)."""
    if metrics is None:
        return None
    counter = metrics.consumed.labels("intake", "bench")
    seen = [0]

    def on_batch(stats: ConsumerStats) -> None:
        counter.inc(stats.applied - seen[0])
        seen[0] = stats.applied

    return on_batch


@contextlib.contextmanager
def tracing_as(mode: str, settings: Settings) -> Iterator[Metrics | None]:
    """``off``: nothing installed, no metrics; ``no-op``: the API's no-op tracer behind every
    helper; ``in-memory``: the SDK recording, batched into memory; ``deployed``: as every
    benchmark runs the services (OTLP to the sink, sampled, with metrics). Yields the metrics
    to hook, None when off."""
    provider: Any = None
    if mode == "no-op":
        provider = NoOpTracerProvider()
    elif mode == "in-memory":
        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(InMemorySpanExporter()))
    elif mode == "deployed":
        provider = start_tracing(settings, "intake")
    tracing.install(provider)
    try:
        yield None if mode == "off" else Metrics("intake")
    finally:
        tracing.install(None)
        if isinstance(provider, TracerProvider):
            provider.shutdown()


async def traced_group_commit_rates(settings: Settings, n: int, rounds: int = 2
                                    ) -> dict[str, float]:
    """Group commit's writes/s in each tracing mode (best of ``rounds``, modes interleaved)."""
    best = dict.fromkeys(MODES, 0.0)
    for r in range(rounds):
        for mode in MODES:
            own = settings.model_copy(
                update={"schema_prefix": f"trace{r}_{mode.replace('-', '')}_"})
            app = await asyncio.to_thread(build_application, IntakeApplication, own, "intake")
            committer = GroupCommitter(app)
            committer.start()
            with tracing_as(mode, settings) as metrics:
                metered(app, committer, metrics)
                rate = await group_commit_rate(Intake(committer, load_catalogue()), n,
                                               tag=f"t{r}{mode}")
            await committer.close()
            app.close()
            best[mode] = max(best[mode], rate)
    return best


async def traced_consumer_rates(settings: Settings, nc: Any, events: int, rounds: int = 2
                                ) -> dict[str, float]:
    """Events/s of the cases projection over the same ``events`` (already on the stream),
    off and as deployed (its spans, its metrics), best of ``rounds``, modes interleaved."""
    best = dict.fromkeys(PAIRED, 0.0)
    for r in range(rounds):
        for mode in PAIRED:
            schema = f"paired{r}_{mode}"
            pool = await create_pool(settings, schema, max_size=4)
            await run_migrations(pool, schema, [*TRACKING_DDL, *DDL])
            with tracing_as(mode, settings) as metrics:
                consumer = Consumer(settings=settings, nc=nc, pool=pool,
                                    name=f"bench-paired-{r}-{mode.replace('-', '')}",
                                    handler=CaseProjection(), on_batch=counted(metrics),
                                    filter_subjects=[f"{settings.subject_prefix}.intake.*.*"],
                                    batch=500)
                start = time.perf_counter()
                task = asyncio.create_task(consumer.run())
                while consumer.stats.applied < events:
                    await asyncio.sleep(0.02)
                best[mode] = max(best[mode], events / (time.perf_counter() - start))
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await pool.close()
    return best


async def traced_request_cost(settings: Settings, n: int = 20_000, rounds: int = 3
                              ) -> dict[str, float]:
    """Microseconds per request through a FastAPI app with the tracing middleware, in each
    mode (best of ``rounds``): the HTTP surface's own share of tracing's cost."""
    app = FastAPI()

    @app.post("/cases/{case_id}/resolve")
    async def resolve(case_id: str) -> Response:
        return Response(b"{}", media_type="application/json")

    install_tracing(app)
    scope = {"type": "http", "method": "POST", "path": "/cases/1/resolve", "raw_path": b"",
             "root_path": "", "query_string": b"", "headers": [], "scheme": "http",
             "server": ("test", 80), "client": ("test", 1), "http_version": "1.1",
             "asgi": {"version": "3.0"}, "app": app}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(_: Any) -> None:
        return None

    best = dict.fromkeys(MODES, float("inf"))
    for _ in range(rounds):
        for mode in MODES:
            with tracing_as(mode, settings):
                start = time.perf_counter()
                for _ in range(n):
                    await app(dict(scope), receive, send)
                best[mode] = min(best[mode], (time.perf_counter() - start) / n * 1e6)
    return best


async def raw_publish_and_fetch(url: str, n: int) -> tuple[float, float]:
    nc = await nats.connect(url)
    js = nc.jetstream()
    await js.add_stream(name="RAW", subjects=["raw.>"])
    data = b"x" * 700
    publish = await publish_pipelined(js, "raw.e", data, n, "r")
    sub = await js.pull_subscribe("raw.>", durable="raw", stream="RAW",
                                  config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT,
                                                        max_ack_pending=20000))
    got = 0
    start = time.perf_counter()
    while got < n:
        msgs = await sub.fetch(500, timeout=5)
        for m in msgs:
            await m.ack()
        got += len(msgs)
    fetch = n / (time.perf_counter() - start)
    await js.delete_stream("RAW")
    await nc.close()
    return publish, fetch


async def copy_rate(dsn: str, n: int) -> float:
    conn = await asyncpg.connect(dsn)
    await conn.execute("CREATE TABLE copy_rows (id uuid, case_id uuid, type text, payload jsonb)")
    rows = [(uuid.uuid4(), uuid.uuid4(), "RequestHeard", '{"words": "想申请补助"}')
            for _ in range(n)]
    start = time.perf_counter()
    await conn.copy_records_to_table("copy_rows", records=rows)
    rate = n / (time.perf_counter() - start)
    await conn.close()
    return rate


async def run(settings: Settings, n: int) -> dict[str, float]:
    f: dict[str, float] = {}
    f["naive_save_per_s"] = await asyncio.to_thread(naive_save_rate, settings, min(n // 10, 3000))
    provider = start_tracing(settings, "intake")  # the stages as deployed (main.py's setup)
    metrics = Metrics("intake")
    app = await asyncio.to_thread(build_application, IntakeApplication, settings, "intake")
    committer = GroupCommitter(app)
    metered(app, committer, metrics)
    committer.start()
    intake = Intake(committer, load_catalogue())
    f["group_commit_per_s"] = await group_commit_rate(intake, n // 2)
    await committer.close()
    events = n
    pool = await create_pool(settings, settings.schema_for("intake"), max_size=4)
    await run_migrations(pool, settings.schema_for("intake"), [*TRACKING_DDL, *DDL])
    nc = await connect(settings, "bench")
    await ensure_streams(nc.jetstream(), settings)
    relay = Relay(settings, "intake", app, pool, on_published=metrics.published.labels(
        "intake").inc)
    start = time.perf_counter()
    task = asyncio.create_task(relay.run())
    while relay.position < events:
        await asyncio.sleep(0.02)
    f["relay_per_s"] = events / (time.perf_counter() - start)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    consumer = Consumer(settings=settings, nc=nc, pool=pool, name="bench-cases",
                        handler=CaseProjection(), on_batch=counted(metrics),
                        filter_subjects=[f"{settings.subject_prefix}.intake.*.*"], batch=500)
    start = time.perf_counter()
    task = asyncio.create_task(consumer.run())
    while consumer.stats.applied < events:
        await asyncio.sleep(0.02)
    f["consumer_per_s"] = events / (time.perf_counter() - start)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await asyncio.to_thread(stop_tracing, provider)
    for mode, rate in (await traced_consumer_rates(settings, nc, events)).items():
        f[f"consumer_tracing_{mode}_per_s"] = rate
    await nc.close()
    await pool.close()
    app.close()
    f["raw_publish_per_s"], f["raw_fetch_per_s"] = await raw_publish_and_fetch(settings.nats_url, n)
    f["copy_per_s"] = await copy_rate(settings.database_url, n)
    for mode, rate in (await traced_group_commit_rates(settings, n // 4)).items():
        f[f"group_commit_tracing_{mode}_per_s"] = rate
    for mode, us in (await traced_request_cost(settings)).items():
        f[f"request_tracing_{mode}_us"] = us
    f["peak_rss_mb"] = peak_rss_mb()
    return f


def report(f: dict[str, float], n: int) -> None:
    print(f"machine: {machine()}; {n:,} events")
    rows = [
        ("naive save(), one aggregate per commit", f["naive_save_per_s"], None),
        ("group commit (512 concurrent callers)", f["group_commit_per_s"], "naive_save_per_s"),
        ("raw JetStream publish, pipelined", f["raw_publish_per_s"], None),
        ("outbox relay: store -> stream", f["relay_per_s"], "raw_publish_per_s"),
        ("raw pull fetch + ack", f["raw_fetch_per_s"], None),
        ("consumer: stream -> cases read model", f["consumer_per_s"], "raw_fetch_per_s"),
        ("asyncpg COPY", f["copy_per_s"], None),
    ]
    for label, rate, base in rows:
        ratio = f"  = {rate / f[base]:.2f} x {base.removesuffix('_per_s')}" if base else ""
        print(f"{label:<42} {rate:>9,.0f} /s{ratio}")
    print(f"peak RSS of this process: {f['peak_rss_mb']:.0f} MB")
    off = f["group_commit_tracing_off_per_s"]
    print("tracing + metrics (logs INFO JSON throughout), paired: off / no-op / in memory / "
          f"deployed (OTLP to the sink, OTEL_TRACES_SAMPLER_ARG={SAMPLER_ARG:g}, metrics):")
    for mode in MODES:
        rate = f[f"group_commit_tracing_{mode}_per_s"]
        extra = (f"  = {rate / off:.2f} x off, {1e6 / rate - 1e6 / off:+.1f} us per write"
                 if mode != "off" else "")
        print(f"  group commit, each write in a request span, {mode:<9} {rate:>9,.0f} /s{extra}")
    off = f["consumer_tracing_off_per_s"]
    for mode in PAIRED:
        rate = f[f"consumer_tracing_{mode}_per_s"]
        extra = (f"  = {rate / off:.2f} x off, {1e6 / rate - 1e6 / off:+.1f} us per event"
                 if mode != "off" else "")
        print(f"  consumer into the cases read model, {mode:<9} {rate:>9,.0f} events/s{extra}")
    base = f["request_tracing_off_us"]
    for mode in MODES:
        us = f[f"request_tracing_{mode}_us"]
        extra = f"  = {us - base:+.1f} us per request" if mode != "off" else ""
        print(f"  a FastAPI request with the tracing middleware, {mode:<9} {us:>6.1f} us{extra}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    args = parser.parse_args()
    with servers() as srv:
        settings = bench_settings(srv)
        like_main(settings)  # logging as main.py's; tracing per stage (start_tracing)
        figures = asyncio.run(run(settings, args.events))
    report(figures, args.events)


if __name__ == "__main__":
    main()

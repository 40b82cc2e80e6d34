"""What every benchmark needs: its own servers, services in their own processes, a load tool.

Benchmarks start their own NATS and PostgreSQL (never the machine's shared ones) in a
temporary folder, run each service as a separate process, and drive HTTP load with wrk from
another process, so the figures are the service's and not the load generator's.

Every run observes the services as users run them: the shipped log level (INFO, JSON lines),
metrics on, and tracing on, exporting over OTLP/HTTP to a local sink that ``servers()`` starts
on 127.0.0.1 (``OtlpSink``: it accepts and counts spans, as a collector would take them),
sampled at ``SAMPLER_ARG``, the share a deployment keeps. Services started with
``service_env`` get it from the environment, as ``main.py`` reads it; an in-process benchmark
builds its settings with ``bench_settings`` and sets itself up with ``like_main``. When the
servers stop, the run prints one ``observability:`` line saying what was on and how many spans
the sink took.

A benchmark stopped with Ctrl-C (or SIGTERM, SIGHUP) stops every server and process it started:
servers and services are stopped by PID at exit (``tools.devservers.stop_adopted``). Each says
on stderr when it is up (``bench: ... up``), with its PID.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import psutil
from nats.js.api import AckPolicy, ConsumerConfig

from shared.bus.jetstream import connect
from shared.bus.pulling import Puller
from shared.settings import Settings
from tools.devservers import (
    NatsServer,
    PostgresServer,
    adopt_process,
    exit_on_signals,
    free_port,
)

ROOT = Path(__file__).resolve().parent.parent


SAMPLER_ARG = 0.1
"""``OTEL_TRACES_SAMPLER_ARG`` in every benchmark: a tenth of new traces kept, what a
deployment at the city's rate would keep (docs/tracing.md); a caller's sampled
``traceparent`` is always followed, so a kept trace is whole across the services."""

OBSERVABILITY = "observability: "
"""The line each run prints, saying what was on (run_all checks every section has one)."""


class OtlpSink:
    """A tiny OTLP/HTTP receiver on 127.0.0.1: takes ``POST /v1/traces`` (protobuf), counts
    the spans and answers 200 as a collector does. The exporters' network cost is real, what
    a collector does with the spans is not measured."""

    def __init__(self) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
            ExportTraceServiceResponse,
        )

        self.spans = 0
        self.requests = 0
        lock = threading.Lock()
        sink = self
        answer = ExportTraceServiceResponse().SerializeToString()

        class Receiver(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                n = sum(len(s.spans) for r in request.resource_spans for s in r.scope_spans)
                with lock:
                    sink.spans += n
                    sink.requests += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True,
                                        name="otlp-sink")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        # shutdown() waits for serve_forever to notice: forever if it never ran (a Ctrl-C
        # between the sink's making and its start hung rebuild_all.py here).
        if self._thread.is_alive():
            self.server.shutdown()
        self.server.server_close()


@dataclass
class Servers:
    nats_url: str
    database_url: str
    folder: Path
    sink: OtlpSink | None = field(default=None, repr=False)

    @property
    def otlp_endpoint(self) -> str | None:
        return self.sink.endpoint if self.sink is not None else None


_in_process: list[str] = []
"""What ``like_main`` set up in this process (for the ``observability:`` line)."""


def observability_line(srv: Servers) -> str:
    """What was on in this run, and what the sink took."""
    inside = "; in this process: " + ", ".join(_in_process) if _in_process else ""
    sink = srv.sink
    return (f"{OBSERVABILITY}services as deployed: logs INFO JSON, metrics on, tracing ON "
            f"over OTLP/HTTP to a local sink (OTEL_TRACES_SAMPLER_ARG={SAMPLER_ARG:g}){inside};"
            f" the sink took {sink.spans if sink else 0:,} spans in "
            f"{sink.requests if sink else 0:,} exports")


@contextlib.contextmanager
def servers() -> Iterator[Servers]:
    folder = Path(tempfile.mkdtemp(prefix="sixstep-bench-"))
    exit_on_signals()
    nats = NatsServer(folder / "nats")
    pg = PostgresServer(folder / "pg")
    sink = OtlpSink()
    srv = Servers("", "", folder, sink)
    try:
        sink.start()
        nats.start()
        pg.start()
        srv.nats_url, srv.database_url = nats.url, pg.url
        say(f"servers up: nats-server pid {nats.pid}, postgres pid {pg.pid}, "
            f"OTLP sink {sink.endpoint}")
        yield srv
    finally:
        pg.stop()
        nats.stop()
        sink.stop()
        shutil.rmtree(folder, ignore_errors=True)
        print(observability_line(srv), flush=True)


def server_cpu_seconds() -> tuple[float, float]:
    """CPU time so far of the servers this process started: PostgreSQL (the postmaster, the
    backends it waited for, those still running) and nats-server."""
    pg = nats = 0.0
    for child in psutil.Process().children():
        with contextlib.suppress(psutil.Error):
            name = child.name()
            if name not in ("postgres", "nats-server"):
                continue
            t = child.cpu_times()
            total = t.user + t.system + t.children_user + t.children_system
            for grandchild in child.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    g = grandchild.cpu_times()
                    total += g.user + g.system
            if name == "postgres":
                pg += total
            else:
                nats += total
    return pg, nats


def say(line: str) -> None:
    """A progress line on stderr (``make bench`` keeps stdout for the figures)."""
    print(f"bench: {line}", file=sys.stderr, flush=True)


@dataclass
class Progress:
    """Progress lines of a long phase (``say``): done of the total, the rate since the start
    and the time left at that rate; at most one every ``every_s`` seconds unless forced."""

    what: str
    total: int
    unit: str = "events"
    every_s: float = 30.0
    start: float = field(default_factory=time.perf_counter)
    _said: float = 0.0

    def __call__(self, done: int, note: str = "", *, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self._said < self.every_s:
            return
        self._said = now
        elapsed = max(now - self.start, 1e-9)
        rate = done / elapsed
        left = (f", ETA {(self.total - done) / rate / 60:,.1f} min"
                if self.total and rate and done < self.total else "")
        share = f" ({done / self.total:.0%})" if self.total else ""
        say(f"{self.what}: {done:,} of {self.total:,} {self.unit}{share} in {elapsed:,.0f} s ="
            f" {rate:,.0f} /s{left}{'; ' + note if note else ''}")


def service_env(srv: Servers, **extra: str) -> dict[str, str]:
    """A service's environment as deployed: the shipped log level and format (whatever this
    shell has set), tracing to the run's sink at ``SAMPLER_ARG``."""
    env = {k: v for k, v in os.environ.items() if k not in ("LOG_LEVEL", "LOG_JSON")}
    env.update({"DATABASE_URL": srv.database_url, "NATS_URL": srv.nats_url,
                "OTEL_TRACES_SAMPLER_ARG": str(SAMPLER_ARG)})
    if srv.otlp_endpoint:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = srv.otlp_endpoint
    env.update(extra)
    return env


def bench_settings(srv: Servers, **overrides: Any) -> Settings:
    """Settings for services run inside the benchmark's process, as ``service_env`` gives a
    service: shipped log level, tracing to the sink at ``SAMPLER_ARG`` (``start_runtime``
    starts it); ``overrides`` on top."""
    return Settings(**{"database_url": srv.database_url, "nats_url": srv.nats_url,
                       "otel_exporter_otlp_endpoint": srv.otlp_endpoint,
                       "otel_traces_sampler_arg": SAMPLER_ARG, **overrides})


def like_main(settings: Settings, service: Any = None) -> Any:
    """Set this process up as ``main.py`` sets a service up: its logging (level and format
    from ``settings``, as ``shared.http.app.serve`` does) and, given ``service`` (for parts
    run without ``start_runtime``, which starts tracing itself), its tracing: the provider,
    for ``shared.runtime.tracing.stop_tracing`` at the end."""
    from shared.runtime.logs import configure_logging
    from shared.runtime.tracing import start_tracing

    configure_logging(settings.log_level, settings.log_json)
    provider = start_tracing(settings, service) if service is not None else None
    traced = settings.otel_exporter_otlp_endpoint is not None
    note = (f"logs {settings.log_level} {'JSON' if settings.log_json else 'text'}, tracing "
            + (f"ON (sampler {settings.otel_traces_sampler_arg:g})" if traced else "off"))
    if note not in _in_process:
        _in_process.append(note)
    return provider


@contextlib.contextmanager
def service(module: str, port: int, env: dict[str, str],
            cwd: Path = ROOT) -> Iterator[subprocess.Popen[bytes]]:
    """``python -m <module>`` (from ``cwd``: another source tree's code, given its path in
    ``PYTHONPATH``) until it answers ``/ready`` on ``port``; stopped at the end."""
    proc = adopt_process(subprocess.Popen([sys.executable, "-m", module], env=env, cwd=cwd,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    try:
        deadline = time.time() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"{module} did not become ready on port {port}")
            time.sleep(0.1)
        say(f"{module} up on port {port}, pid {proc.pid}")
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


WRK_DONE = """
local wrk_threads = {}
setup = function(thread) wrk_threads[#wrk_threads + 1] = thread end
done = function(summary, latency, requests)
  -- A script may count the answers of a window of its own (globals window_answers and
  -- window_ms in its thread): the rate of the run's middle, without its ends.
  local answers, ms = 0, 0
  for _, thread in ipairs(wrk_threads) do
    answers = answers + (thread:get("window_answers") or 0)
    ms = math.max(ms, thread:get("window_ms") or 0)
  end
  io.write(string.format('WRK_JSON {"requests": %d, "duration_us": %d, "non2xx": %d, '
    .. '"errors": %d, "p50_us": %d, "p99_us": %d, "window_answers": %d, "window_ms": %f}\\n',
    summary.requests, summary.duration, summary.errors.status, summary.errors.connect
    + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), answers, ms))
end
"""


@dataclass
class WrkResult:
    rate: float
    p50_ms: float
    p99_ms: float
    requests: int
    failures: int
    window_rate: float | None = None
    """Answers/s in the script's own window (``window_answers`` over ``window_ms``), if it
    counts one."""


def wrk(url: str, script: str, *, seconds: int = 10, connections: int = 32) -> WrkResult:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed for HTTP load: apt-get install -y wrk")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script + WRK_DONE)
        path = f.name
    try:
        out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", path,
                              "--timeout", "10s", url], capture_output=True, text=True,
                             check=True).stdout
    finally:
        os.unlink(path)
    line = next(x for x in out.splitlines() if x.startswith("WRK_JSON "))
    data = json.loads(line.removeprefix("WRK_JSON "))
    return WrkResult(rate=data["requests"] / (data["duration_us"] / 1e6),
                     p50_ms=data["p50_us"] / 1000, p99_ms=data["p99_us"] / 1000,
                     requests=data["requests"], failures=data["non2xx"] + data["errors"],
                     window_rate=data["window_answers"] / (data["window_ms"] / 1000)
                     if data["window_ms"] > 0 else None)


def bearer(center_id: str = "SH-PD-HUAMU") -> str:
    """A clerk's token for the services a benchmark starts (their development keys)."""
    from shared.security.tokens import issue_token
    from shared.settings import Settings

    return issue_token(Settings(), "bench-clerk", "clerk", center_id)


def post_script(path: str, body: str, key_prefix: str, delay_ms: float = 0) -> str:
    """A wrk script that POSTs ``body`` with a fresh Idempotency-Key on every request.

    With ``delay_ms`` each connection pauses between requests: a steady, bounded rate.
    """
    pause = f"delay = function() return {delay_ms:.1f} end" if delay_ms else ""
    return pause + f"""
local counter = 0
local prefix = "{key_prefix}-" .. tostring(math.random(1, 1e9))
request = function()
  counter = counter + 1
  return wrk.format("POST", "{path}", {{["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer {bearer()}",
    ["Idempotency-Key"] = prefix .. "-" .. counter}}, [[{body}]])
end
"""


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}, {platform.system()}"


def free_ports(n: int) -> list[int]:
    return [free_port() for _ in range(n)]


TARGET = "TARGET "
"""A benchmark's line that states one of the city-scale targets and whether this run met it
(``make bench`` gathers them into one table)."""


def target(name: str, measured: float, goal: float, unit: str = "x", *,
           at_most: bool = False) -> str:
    """``TARGET`` line for run_all's table: met, or missed by how much."""
    met = measured <= goal if at_most else measured >= goal
    verdict = "met" if met else f"MISSED by {abs(measured - goal) / goal:.0%}"
    sign = "<=" if at_most else ">="
    return f"{TARGET}{name}: {measured:,.2f} {unit} ({sign} {goal:g} {unit}) {verdict}"


async def pipelined_pull(settings: Settings, total: int, batch: int) -> tuple[int, float]:
    """The transport's own ceiling: ``total`` messages of the stream through the pipelined pull
    requests replay and rebuilds read with (``shared.bus.pulling.Puller``), no acks, nothing
    decoded: (messages, seconds)."""
    nc = await connect(settings, "bench-raw-pull")
    try:
        start = time.perf_counter()
        info = await nc.jetstream().add_consumer(settings.stream_name, ConsumerConfig(
            ack_policy=AckPolicy.NONE, inactive_threshold=60.0, mem_storage=True))
        puller = Puller(nc, settings.stream_name, info.name, batch)
        await puller.start()
        got = 0
        while got < total:
            got += len(await puller.take(timeout=2.0))
        seconds = time.perf_counter() - start
        await puller.stop()
        return got, seconds
    finally:
        await nc.close()


async def publish_pipelined(js: Any, subject: str, data: bytes, n: int, key: str) -> float:
    """``n`` JetStream publishes of ``data``, a thousand awaited together: publishes per s."""
    start = time.perf_counter()
    for chunk in range(0, n, 1000):
        await asyncio.gather(*[js.publish(subject, data, headers={"Nats-Msg-Id": f"{key}{i}"})
                               for i in range(chunk, min(chunk + 1000, n))])
    return n / (time.perf_counter() - start)

"""What every benchmark needs: its own servers, services in their own processes, a load tool.

Benchmarks start their own NATS and PostgreSQL (never the machine's shared ones) in a
temporary folder, run each service as a separate process, and drive HTTP load with wrk from
another process, so the figures are the service's and not the load generator's.

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
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
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


@dataclass
class Servers:
    nats_url: str
    database_url: str
    folder: Path


@contextlib.contextmanager
def servers() -> Iterator[Servers]:
    folder = Path(tempfile.mkdtemp(prefix="sixstep-bench-"))
    exit_on_signals()
    nats = NatsServer(folder / "nats")
    pg = PostgresServer(folder / "pg")
    try:
        nats.start()
        pg.start()
        say(f"servers up: nats-server pid {nats.pid}, postgres pid {pg.pid}")
        yield Servers(nats.url, pg.url, folder)
    finally:
        pg.stop()
        nats.stop()
        shutil.rmtree(folder, ignore_errors=True)


def say(line: str) -> None:
    """A progress line on stderr (``make bench`` keeps stdout for the figures)."""
    print(f"bench: {line}", file=sys.stderr, flush=True)


def service_env(srv: Servers, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"DATABASE_URL": srv.database_url, "NATS_URL": srv.nats_url,
                "LOG_LEVEL": "WARNING"})
    env.update(extra)
    return env


@contextlib.contextmanager
def service(module: str, port: int, env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    proc = adopt_process(subprocess.Popen([sys.executable, "-m", module], env=env, cwd=ROOT,
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
done = function(summary, latency, requests)
  io.write(string.format('WRK_JSON {"requests": %d, "duration_us": %d, "non2xx": %d, '
    .. '"errors": %d, "p50_us": %d, "p99_us": %d}\\n', summary.requests, summary.duration,
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout, latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass
class WrkResult:
    rate: float
    p50_ms: float
    p99_ms: float
    requests: int
    failures: int


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
                     requests=data["requests"], failures=data["non2xx"] + data["errors"])


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

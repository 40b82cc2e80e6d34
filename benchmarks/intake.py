"""Intake's write path: sustained HTTP case-writes/s and end-to-end latency, beside baselines.

    .venv/bin/python benchmarks/intake.py [--seconds 10]

Measured in one run, on servers the benchmark starts itself:
  * asyncpg single-row INSERT rate (32 connections, autocommit)
  * JetStream publish-with-ack rate, awaited one by one and pipelined
  * plain FastAPI + asyncpg INSERT over HTTP (the CRUD baseline), wrk, 32 connections, in one
    uvicorn process and in two (uvicorn workers sharing the socket)
  * sixstep intake POST /cases over HTTP, same wrk client: in one process (API and workers),
    paired with CRUD's one process, and as API + workers processes, paired with CRUD's two;
    each pair's runs alternate (``--rounds``), the best of each counts
  * end-to-end latency: HTTP 201 -> the case in intake's read model (via relay, stream and
    consumer), at half of intake's measured maximum rate, open loop
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg
import httpx
import nats
import psutil

from benchmarks.common import (
    ROOT,
    Servers,
    free_ports,
    machine,
    post_script,
    publish_pipelined,
    say,
    servers,
    service,
    service_env,
    target,
    wrk,
)
from benchmarks.pipeline import naive_save_rate
from shared.settings import Settings
from tools.devservers import adopt_process

# The clerk is the token's subject (``common.bearer``): a clerk opens cases in their own name.
CASE = ('{"center_id": "SH-PD-HUAMU", "counter_id": "window-3", "clerk_id": "bench-clerk",'
        ' "channel": "counter", "service_item": "SA-HARDSHIP-SUBSIDY"}')


async def asyncpg_insert_rate(dsn: str, seconds: float) -> float:
    pool = await asyncpg.create_pool(dsn, min_size=32, max_size=32)
    await pool.execute("CREATE TABLE IF NOT EXISTS bench_rows (id uuid PRIMARY KEY, v text)")
    count = 0
    stop = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal count
        async with pool.acquire() as conn:
            while time.perf_counter() < stop:
                await conn.execute("INSERT INTO bench_rows VALUES ($1, 'x')", uuid.uuid4())
                count += 1

    start = time.perf_counter()
    await asyncio.gather(*[worker() for _ in range(32)])
    elapsed = time.perf_counter() - start
    await pool.close()
    return count / elapsed


async def jetstream_rates(url: str, n: int) -> tuple[float, float]:
    nc = await nats.connect(url)
    js = nc.jetstream()
    await js.add_stream(name="BENCH", subjects=["bench.>"])
    data = b"x" * 600
    start = time.perf_counter()
    for i in range(n // 4):
        await js.publish("bench.one", data, headers={"Nats-Msg-Id": f"a{i}"})
    awaited = (n // 4) / (time.perf_counter() - start)
    pipelined = await publish_pipelined(js, "bench.many", data, n, "b")
    await js.delete_stream("BENCH")
    await nc.close()
    return awaited, pipelined


def case_body(counter: str) -> str:
    return CASE.replace('"window-3"', f'"{counter}"')


def steady_load(base: str, rate: float, seconds: int, counter: str) -> float:
    """wrk with a pause per connection: about ``rate`` writes/s; returns the achieved rate."""
    connections = 16
    delay = max(1.0, connections * 1000.0 / rate - 2.0)
    result = wrk(base, post_script("/cases", case_body(counter), counter, delay_ms=delay),
                 seconds=seconds, connections=connections)
    return result.rate


async def stored_to_read_model(dsn: str, counter: str) -> tuple[float, float, int]:
    """From the event's commit (recorded_at) to its row in the read model, on server clocks."""
    conn = await asyncpg.connect(dsn)
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            behind = await conn.fetchval(
                "SELECT count(*) FROM intake.intake_events e WHERE e.notification_id > "
                "(SELECT coalesce(max(position), 0) FROM intake.consumer_progress)")
            if behind == 0:
                break
            await asyncio.sleep(0.2)
        rows = await conn.fetch(
            "SELECT extract(epoch FROM c.projected_at - t.recorded_at) * 1000 AS ms"
            " FROM intake.cases c JOIN intake.case_timeline t"
            " ON t.case_id = c.case_id AND t.version = 1 WHERE c.counter_id = $1", counter)
    finally:
        await conn.close()
    latencies = sorted(float(r["ms"]) for r in rows)
    return (statistics.median(latencies), latencies[max(0, int(len(latencies) * 0.99) - 1)],
            len(latencies))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2, help=(
        "wrk runs of each HTTP server, CRUD and sixstep alternating; the best counts"))
    args = parser.parse_args()
    with servers() as srv:
        run(srv, args.seconds, args.rounds)


@contextlib.contextmanager
def crud_server(port: int, dsn: str, processes: int) -> Iterator[subprocess.Popen[bytes]]:
    """The CRUD baseline in ``processes`` uvicorn worker processes sharing one socket."""
    proc = adopt_process(subprocess.Popen(
        [sys.executable, "benchmarks/crud_baseline.py", str(port), dsn, str(processes)],
        cwd=ROOT))
    try:
        for _ in range(200):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ready").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        say(f"CRUD baseline up on port {port} ({processes} processes), pid {proc.pid}")
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def cpu_seconds(pids: list[int]) -> float:
    """CPU time (user + system) used so far by these processes and their descendants."""
    total = 0.0
    for pid in pids:
        try:
            root = psutil.Process(pid)
            family = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for process in family:
            with contextlib.suppress(psutil.NoSuchProcess):
                times = process.cpu_times()
                total += times.user + times.system
    return total


def server_pids(srv: Servers) -> list[int]:
    """PostgreSQL's and nats-server's processes (those started on the benchmark's folder)."""
    folder = str(srv.folder)
    return [p.pid for p in psutil.process_iter(["cmdline"])
            if any(folder in part for part in p.info["cmdline"] or ())]


Run = tuple[str, str, dict[str, list[int]]]
"""A server to load: its base URL, the prefix of its Idempotency-Keys, and the processes whose
CPU time is counted per request, by name."""


def paired(figures: dict[str, float], rounds: int, seconds: int, runs: dict[str, Run]) -> None:
    """wrk on each server in turn, ``rounds`` times (the servers see the same machine load):
    the best rate of each into ``figures[key]``, its failures into ``figures[key_failures]``,
    and the CPU time per request of that best round in ``figures[key_cpu_<name>]`` (us)."""
    for round_ in range(rounds):
        for key, (base, prefix, groups) in runs.items():
            before = {name: cpu_seconds(pids) for name, pids in groups.items()}
            result = wrk(base, post_script("/cases", CASE, f"{prefix}{round_}"), seconds=seconds)
            used = {name: cpu_seconds(pids) - before[name] for name, pids in groups.items()}
            if result.rate > figures.get(key, 0.0):
                figures[key] = result.rate
                for name, seconds_used in used.items():
                    figures[f"{key}_cpu_{name}"] = seconds_used / max(1, result.requests) * 1e6
            figures[f"{key}_failures"] = figures.get(f"{key}_failures", 0) + result.failures


def run(srv: Servers, seconds: int, rounds: int = 2) -> dict[str, float]:
    figures: dict[str, float] = {}
    figures["asyncpg_insert_per_s"] = asyncio.run(asyncpg_insert_rate(srv.database_url, 3))
    # The naive event-sourced path: one library save() (lock, insert, commit) per write.
    figures["naive_save_per_s"] = naive_save_rate(
        Settings(database_url=srv.database_url, nats_url=srv.nats_url), 2000)
    awaited, pipelined = asyncio.run(jetstream_rates(srv.nats_url, 20_000))
    figures["js_publish_awaited_per_s"], figures["js_publish_pipelined_per_s"] = awaited, pipelined
    crud1_port, crud2_port, intake_port, worker_port = free_ports(4)
    crud1, crud2 = f"http://127.0.0.1:{crud1_port}", f"http://127.0.0.1:{crud2_port}"
    base = f"http://127.0.0.1:{intake_port}"
    # One process each: CRUD's one uvicorn process, sixstep's API and workers in one (the
    # default of `make run`).
    stores = server_pids(srv)
    with crud_server(crud1_port, srv.database_url, 1) as crud, \
         service("services.intake.main", intake_port,
                 service_env(srv, INTAKE_PORT=str(intake_port))) as intake:
        paired(figures, rounds, seconds, {
            "crud_http_per_s": (crud1, "crud", {"app": [crud.pid], "stores": stores}),
            "intake_http_per_s": (base, "intake", {"api": [intake.pid], "stores": stores})})
    # Two processes each: CRUD's two uvicorn workers, sixstep's API and workers (relay,
    # consumers) as ops would scale them.
    with crud_server(crud2_port, srv.database_url, 2) as crud, \
         service("services.intake.main", worker_port,
                 service_env(srv, INTAKE_PORT=str(worker_port), ROLES="workers")) as workers, \
         service("services.intake.main", intake_port,
                 service_env(srv, INTAKE_PORT=str(intake_port), ROLES="api")) as api:
        paired(figures, rounds, seconds, {
            "crud2_http_per_s": (crud2, "crud2", {"app": [crud.pid], "stores": stores}),
            "intake_split_http_per_s": (base, "split", {
                "api": [api.pid], "workers": [workers.pid], "stores": stores})})
        best = max(figures["intake_http_per_s"], figures["intake_split_http_per_s"])
        for share, label in ((0.5, "half"), (0.9, "ninety")):
            achieved = steady_load(base, best * share, max(4, seconds // 2), f"e2e-{label}")
            p50, p99, n = asyncio.run(stored_to_read_model(srv.database_url, f"e2e-{label}"))
            figures[f"e2e_{label}_rate"], figures[f"e2e_{label}_p50_ms"] = achieved, p50
            figures[f"e2e_{label}_p99_ms"], figures[f"e2e_{label}_n"] = p99, n
    report(figures)
    return figures


CPU_NAMES = {"app": "app", "api": "API", "workers": "workers",
             "stores": "PostgreSQL + NATS"}


def cpu_line(f: dict[str, float], key: str) -> str:
    """``API 300 us + PostgreSQL + NATS 200 us = 500 us`` for the best round of ``key``."""
    parts = {name: f[f"{key}_cpu_{name}"] for name in CPU_NAMES if f"{key}_cpu_{name}" in f}
    return (" + ".join(f"{CPU_NAMES[name]} {us:,.0f} us" for name, us in parts.items())
            + f" = {sum(parts.values()):,.0f} us")


def report(f: dict[str, float]) -> None:
    print(f"machine: {machine()}")
    print(f"asyncpg single-row INSERT (32 conns)        {f['asyncpg_insert_per_s']:>9,.0f} /s")
    print(f"JetStream publish, awaited one by one        {f['js_publish_awaited_per_s']:>9,.0f} /s")
    pipelined = f["js_publish_pipelined_per_s"]
    print(f"JetStream publish, pipelined                 {pipelined:>9,.0f} /s")
    for crud_key, key, label in (
            ("crud_http_per_s", "intake_http_per_s", "intake, one process"),
            ("crud2_http_per_s", "intake_split_http_per_s", "intake, api + workers processes")):
        crud = f[crud_key]
        processes = "one process" if crud_key == "crud_http_per_s" else "two processes"
        print(f"CRUD baseline: FastAPI + asyncpg INSERT, {processes:<13} {crud:>9,.0f} req/s")
        print(f"sixstep {label:<46} {f[key]:>9,.0f} req/s  = {f[key] / crud:.2f} x CRUD, "
              f"{f[key] / f['asyncpg_insert_per_s']:.2f} x asyncpg INSERT, "
              f"{f[key] / f['js_publish_awaited_per_s']:.2f} x awaited publish"
              f" ({f[f'{key}_failures']:.0f} failures)")
        print(f"  CPU per request: CRUD {cpu_line(f, crud_key)}; sixstep {cpu_line(f, key)}")
    print(f"naive save(), one case per commit        {f['naive_save_per_s']:>9,.0f} /s")
    print(target("intake HTTP writes vs CRUD baseline, one process each",
                 f["intake_http_per_s"] / f["crud_http_per_s"], 1.0))
    print(target("intake HTTP writes vs CRUD baseline, two processes each",
                 f["intake_split_http_per_s"] / f["crud2_http_per_s"], 1.0))
    best = max(f["intake_http_per_s"], f["intake_split_http_per_s"])
    print(target("intake HTTP writes vs naive save() loop", best / f["naive_save_per_s"], 3.0))
    for label in ("half", "ninety"):
        print(f"stored -> intake read model at {f[f'e2e_{label}_rate']:,.0f}/s ({label} of max): "
              f"p50 {f[f'e2e_{label}_p50_ms']:.1f} ms, p99 {f[f'e2e_{label}_p99_ms']:.1f} ms "
              f"({f[f'e2e_{label}_n']:.0f} cases)")


if __name__ == "__main__":
    main()

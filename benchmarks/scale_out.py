"""Consumers scaled out by partition: follow-up and feedback with one and with two replicas.

For each service and each replica count, on a fresh stream, the same backlog is published
first: intake's events of the shared synthetic log (``benchmarks/synthetic.py``: the city's
220 centers from the morning four days ago, the office day's morning peak, time order, every
payload through its contract, published as intake's relay would). Then the service's worker
processes (``ROLES=workers``) are started, and from when all are up the clock runs until
every durable consumer of the service has nothing pending and the service's own outbox is
all on the stream (its derived events, surveys and follow-ups, are consumed too). Two
replicas own partitions 0-7 and 8-15 (``CONSUMER_PARTITIONS``, ``PARTITIONS=16``).

The figure is events applied per second in that time, summed over the replicas' own
counters (``sixstep_events_applied_total``; what they applied before the clock started is
subtracted), with one replica as the baseline of the same run (the median of ``--repeat``
runs each), and the CPU seconds the worker processes used. The services' timed schedulers
are parked (ticks of an hour): this measures consumers.

    .venv/bin/python benchmarks/scale_out.py [--events 16000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import re
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg
import httpx

from benchmarks.common import ROOT, Servers, bench_settings, like_main, machine, say, servers
from benchmarks.synthetic import (
    OFFICE_HOURS,
    PER_DAY,
    TZ,
    Publisher,
    city,
    in_time_order,
    visit_times,
)
from shared.bus.jetstream import connect, ensure_streams
from shared.contracts import Envelope
from shared.settings import Settings
from tools.devservers import adopt_process, free_port

APPLIED = re.compile(r'^sixstep_events_applied_total\{[^}]*\} ([0-9.e+]+)$', re.M)
SHARES = {1: [""], 2: ["0-7", "8-15"]}


def intake_backlog(events: int) -> list[Envelope]:
    """Intake's events of the first ``events`` of the shared synthetic log (the city's
    centers from the morning four days ago, time order: recent enough for feedback to ask
    every resolution's survey); the workers derive their own follow-ups and surveys."""
    first = datetime.now(TZ).date() - timedelta(days=4)
    _, log = in_time_order(visit_times(random.Random(11), PER_DAY, first, city(220),
                                       OFFICE_HOURS), seed=11, events=events * 2)
    return [e for e in log if e.service == "intake"][:events]


def worker_env(srv: Servers, settings: Settings, service: str, port: int,
               partitions: str) -> dict[str, str]:
    from benchmarks.common import service_env

    return service_env(srv, STREAM_NAME=settings.stream_name,
                       SUBJECT_PREFIX=settings.subject_prefix,
                       SCHEMA_PREFIX=settings.schema_prefix, PARTITIONS="16", ROLES="workers",
                       CONSUMER_PARTITIONS=partitions, **{f"{service.upper()}_PORT": str(port)},
                       SURVEY_TOKEN_SECRET="bench-survey-token-secret-0123456789abcdef",
                       # consumers only: the timed schedulers would add their tick to the clock
                       FEEDBACK_TICK_S="3600", FOLLOWUP_SCHEDULER_INTERVAL_S="3600")


async def wait_healthy(url: str, proc: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient(timeout=1, trust_env=False) as client:
        for _ in range(600):
            if proc.poll() is not None:
                raise RuntimeError(f"worker exited with {proc.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"{url}/health")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


async def pending(settings: Settings, service: str) -> dict[str, int]:
    """What each durable consumer of the service still has to do (pending + unacked); empty
    while none is created yet."""
    nc = await connect(settings, "bench-probe")
    try:
        js = nc.jetstream()
        return {i.name: i.num_pending + i.num_ack_pending
                for i in await js.consumers_info(settings.stream_name)
                if i.name.startswith(service)}
    finally:
        await nc.close()


async def outbox(settings: Settings, service: str) -> tuple[int, int] | None:
    """(stored, published) of the service's own outbox (its derived events); None while its
    tables are not created yet."""
    conn = await asyncpg.connect(settings.database_url)
    schema = settings.schema_for(service)  # type: ignore[arg-type]
    try:
        stored = await conn.fetchval(
            f'SELECT coalesce(max(notification_id), 0) FROM "{schema}"."{service}_events"')
        published = await conn.fetchval(
            f'SELECT coalesce(max(position), 0) FROM "{schema}".outbox_position')
    except asyncpg.UndefinedTableError:
        return None
    finally:
        await conn.close()
    return int(stored), int(published)


async def drained(settings: Settings, service: str, timeout: float) -> None:
    """Until intake's backlog and the service's own events are all published and applied;
    after ``timeout`` seconds a RuntimeError says what was still outstanding (a stalled
    relay or consumer ends the run with its name, not a wait that never ends)."""
    deadline = time.monotonic() + timeout
    while True:
        await asyncio.sleep(0.1)
        box = await outbox(settings, service)
        left = await pending(settings, service)
        if box is not None and box[0] == box[1] and left and not any(left.values()):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"{service} not drained after {timeout:.0f} s: outbox stored/published "
                f"{box or 'not created'}, consumers' pending + unacked {left or 'none yet'}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def applied(urls: list[str]) -> float:
    total = 0.0
    async with httpx.AsyncClient(timeout=5, trust_env=False) as client:
        for url in urls:
            total += sum(float(v) for v in APPLIED.findall((await client.get(
                f"{url}/metrics")).text))
    return total


async def run(srv: Servers, service: str, replicas: int, backlog: list[Envelope],
              timeout: float) -> tuple[float, float, float]:
    """(events applied, seconds, workers' CPU seconds) for ``service`` with ``replicas``
    worker processes."""
    tag = uuid.uuid4().hex[:6]
    settings = bench_settings(srv, stream_name=f"B{tag}", subject_prefix=f"b{tag}",
                              schema_prefix=f"b{tag}_", partitions=16)
    like_main(settings)
    nc = await connect(settings, "bench-setup")
    await ensure_streams(nc.jetstream(), settings)
    await Publisher(settings).publish(backlog)  # the backlog, before any worker reads it
    procs: list[subprocess.Popen[bytes]] = []
    urls: list[str] = []
    try:
        logs = []
        for i, partitions in enumerate(SHARES[replicas]):
            port = free_port()
            logs.append(srv.folder / f"{service}-{tag}-{i}.log")
            with logs[-1].open("wb") as log:
                procs.append(adopt_process(subprocess.Popen(
                    [sys.executable, "-m", f"services.{service}.main"], cwd=ROOT,
                    env=worker_env(srv, settings, service, port, partitions),
                    stdout=log, stderr=subprocess.STDOUT)))
            urls.append(f"http://127.0.0.1:{port}")
        for url, proc, log_path in zip(urls, procs, logs, strict=True):
            try:
                await wait_healthy(url, proc)
            except RuntimeError as exc:
                tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-15:])
                raise RuntimeError(f"{exc}:\n{tail}") from None
            say(f"{service} worker up at {url}, pid {proc.pid}")
        # the clock from when every replica is up: what they applied while others started
        # is left out of the count
        before = await applied(urls)
        cpu_before = sum(cpu_seconds(p.pid) for p in procs)
        start = time.perf_counter()
        await drained(settings, service, timeout)
        elapsed = time.perf_counter() - start
        cpu = sum(cpu_seconds(p.pid) for p in procs) - cpu_before
        total = await applied(urls) - before
        return total, elapsed, cpu
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        await nc.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=16_000,
                        help="intake events in the backlog (the shared synthetic log's)")
    parser.add_argument("--services", nargs="*", default=["followup", "feedback"])
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs per configuration; the median run is shown")
    parser.add_argument("--timeout", type=float, default=900,
                        help="seconds a run may take to drain before it fails, saying what"
                             " was outstanding")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    backlog = intake_backlog(args.events)
    print(f"backlog: {len(backlog):,} intake events of the synthetic log (220 centers, "
          f"{sum(e.type == 'CaseOpened' for e in backlog):,} cases opened, from "
          f"{backlog[0].occurred_at:%Y-%m-%d %H:%M}), 16 partitions")
    with servers() as srv:
        for service in args.services:
            base: float | None = None
            for replicas in (1, 2):
                runs = sorted([await run(srv, service, replicas, backlog, args.timeout)
                               for _ in range(args.repeat)], key=lambda r: r[0] / r[1])
                total, seconds, cpu = runs[len(runs) // 2]
                rate = total / seconds
                ratio = "" if base is None else f"  = {rate / base:.2f} x one replica"
                base = base or rate
                print(f"{service:<9} {replicas} replica{'s' if replicas > 1 else ' '}  "
                      f"{total:>8,.0f} events applied in {seconds:5.1f} s  "
                      f"{rate:>8,.0f} events/s  (workers' CPU {cpu:4.1f} s){ratio}",
                      flush=True)


if __name__ == "__main__":
    asyncio.run(main())

"""End to end across the three services: a resolution at the counter until every read model
it reaches shows it: intake's cases, follow-up's worklist, feedback's surveys (views) and the
center's figures.

    .venv/bin/python benchmarks/end_to_end.py [--seconds 6] [--layout split|together ...]

On servers of its own, with the three services running as ``make run`` starts them (the
``split`` layout: feedback's API and its workers in two processes, ``ROLES=api`` and
``ROLES=workers``; ``together``: one process for each service, both roles), it first finds the
**maximum of whole cases**: wrk drives whole cases (open, hear, resolve) from 16, then 32
connections with no pause for ``--seconds`` each (the higher rate counts), so the write side
runs as fast as the three services let it while every consumer works beside it (the rate
where offered load stops raising the write rate); the read models must then drain what was
written (the time it took is printed, so a maximum the read models cannot follow shows). It
then offers whole cases at half and at 90 % of that rate on one open-loop schedule (each
write has its slot, whatever the answers' latency) and prints the rate reached. Every rate,
the maximum's too, counts the writes answered in the run's middle (its first sixth and last
twelfth left out), with the figures' sampler running in every phase. It reports, on the
servers' clocks, the latency from the stored CaseResolved to the row in each read model:
intake's cases (its projection), follow-up's worklist (via follow-up's rules, its store,
relay and worklist consumer), feedback's surveys (its intake follower, its store, relay and
views consumer) and the figures (feedback's figures consumer, straight from intake's event),
and feedback's path hop by hop, cut where its clocks can be read (the stream's own
timestamps of the CaseResolved and of the SurveyRequested, the survey's requested_at).
Several ``--layout`` values are measured in turn, ``--rounds`` times, on the same servers
(paired, for a shared machine). ``--rate N`` skips the search for the maximum: the
services are warmed at N writes/s, then N is measured as "half of max" (before/after
pairs at one offered rate).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg
import httpx
import orjson
import psutil
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from benchmarks.common import (
    Servers,
    bearer,
    free_ports,
    machine,
    say,
    server_cpu_seconds,
    servers,
    service,
    service_env,
    target,
    wrk,
)
from benchmarks.intake import CASE
from shared.bus.jetstream import connect
from shared.settings import Settings

SERVICES = ("intake", "followup", "feedback")
FIGURES = "feedback-figures"
HOP = "feedback's first hop (intake relay, follower, command)"
LAYOUTS = ("split", "together", "figures-apart", "intake-apart")
#: feedback's consumers in the ``figures-apart`` layout: the surveys' path in one worker, the
#: figures (which fold every intake event) in another.
SURVEY_PATH = "feedback-views,feedback-intake"
FIGURES_APART = "feedback-figures,feedback-people"
DEFAULT_LAYOUT = "split"


CASE_FLOW = """
-- Whole cases, on any connection: open, then hear, then resolve. The answer to each write
-- carries the case id and its version, which says what the case needs next.
local opened, heard = {}, {}
local n = 0
local prefix = "%(tag)s-" .. tostring(math.random(1, 1e9))
local residents = {%(residents)s}
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local clock = ffi.new("bench_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, clock)  -- CLOCK_MONOTONIC
  return tonumber(clock.tv_sec) * 1000 + tonumber(clock.tv_nsec) / 1e6
end
-- The rate counted: writes answered (stored) in the run's middle, from lead_ms after the
-- first write for window_ms (globals: wrk's done() reads them), without the start, where
-- the connections open and the first writes go, nor the end, where the last are in flight.
local first, lead_ms = nil, %(lead_ms).1f
window_answers, window_ms = 0, %(window_ms).1f
local function post(path, body)
  n = n + 1
  return wrk.format("POST", path, {["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer %(token)s", ["Idempotency-Key"] = prefix .. "-" .. n}, body)
end
%(pacing)s
request = function()
  first = first or now_ms()
  local id = table.remove(heard, 1)
  if id then
    return post("/cases/" .. id .. "/resolve", '{"outcome": "resolved", "emotion_defused": true}')
  end
  id = table.remove(opened, 1)
  if id then return post("/cases/" .. id .. "/hear", '{"words": "想申请补助"}') end
  local open = string.gsub('%(open)s', "RESIDENT", residents[math.random(#residents)])
  return post("/cases", open)
end
response = function(status, headers, body)
  if status >= 300 then return end
  local at = now_ms() - first - lead_ms
  if at >= 0 and at < window_ms then window_answers = window_answers + 1 end
  local id = body:match('"id":%%s*"([%%x%%-]+)"')
  local version = tonumber(body:match('"version":%%s*(%%d+)'))
  if version == 1 then opened[#opened + 1] = id elseif version == 2 then heard[#heard + 1] = id end
end
"""
PACED = """
-- One schedule for every connection (wrk -t1: one Lua state): the n-th write is due at
-- n x every_ms after the first, whatever the answers' latency, so the rate offered is the
-- rate asked (open loop). wrk calls delay() before each write and waits that many whole
-- milliseconds; a write that is late (every connection was busy) goes at once, so the
-- schedule catches up rather than drifting.
local every_ms, due = %(every_ms).6f, nil
delay = function()
  local now = now_ms()
  due = due or now
  local wait = due - now
  due = due + every_ms
  if wait <= 0 then return 0 end
  return math.floor(wait + 0.5)
end
"""
MAXIMUM_CONNECTIONS = (16, 32)
"""The maximum is the higher of wrk's runs without pause on these many connections (more
writes in flight than the services can take at once: the rate stops rising with them)."""
PACED_CONNECTIONS = 64
"""A paced step's connections: only a bound on the writes in flight, never reached at a rate
the services sustain, so a slow answer does not hold the next write back. Fewer at a low
rate (``IDLE_S``)."""
IDLE_S = 2.0
"""The longest a paced step's connection stays idle (each takes every n-th slot of the
schedule, n its connections): well inside uvicorn's keep-alive (5 s), which would otherwise
close it under wrk and fail its next write."""


def register_residents(base: str, clerks: str, n: int = 40) -> list[str]:
    """Residents of the center in intake's vault (a case names only a resident on file),
    each registered by a clerk of their own (registering by ID number is paced per clerk:
    ``clerks`` names a fresh set of clerks for each services' start)."""
    from services.intake.idnumber import check_character
    from shared.security.tokens import issue_token
    from shared.settings import Settings

    ids = []
    with httpx.Client(base_url=base, timeout=10) as client:
        for i in range(n):
            first17 = f"31011519800101{i:03d}"
            token = issue_token(Settings(), f"bench-registrar-{clerks}-{i}", "clerk",
                                "SH-PD-HUAMU")
            r = client.post("/residents", headers={"Authorization": f"Bearer {token}"}, json={
                "name": "测试居民", "id_number": first17 + check_character(first17),
                "phone": "13912345678", "consent": {"contact": True, "surveys": True}})
            r.raise_for_status()
            ids.append(r.json()["resident_id"])
    return ids


@dataclass(frozen=True)
class Driven:
    """What a run of whole cases came to (``drive_cases``)."""

    rate: float  # writes/s answered in the run's middle
    resolved: int  # cases surely resolved
    writes: int  # writes answered in the whole run
    failed: int  # of them, failed
    p99_ms: float  # the answers' latency, from the write sent (wrk's)


def drive_cases(base: str, residents: str, writes_per_s: float, seconds: float,
                tag: str, connections: int | None = None) -> Driven:
    """Whole cases (open, hear, resolve) from wrk (a process of its own) on ``connections``
    for ``seconds``, under the counter ``tag``: without pause when ``writes_per_s`` is 0 (as
    fast as the services take them: the maximum), else offered at exactly that rate on one
    schedule (``PACED``: open loop, a write's slot does not wait for the answer before it).
    Returns the writes/s completed, the same measure for the maximum and for each step (writes
    answered in the run's middle, from a sixth of it after the first write to a twelfth
    before its end, over that window's length), how many cases were surely resolved (each
    connection, and each failed write, may leave one case short of its resolution), how many
    writes were answered in the whole run and how many of them failed. A failure stops the
    maximum's run; a step reports its failures (an open loop the services fall behind
    queues, and a write not stored within WRITE_TIMEOUT_S answers 503)."""
    body = CASE.replace('"window-3"', f'"{tag}"').replace(
        '"service_item"', '"resident_id": "RESIDENT", "service_item"')
    pacing = PACED % {"every_ms": 1000.0 / writes_per_s} if writes_per_s > 0 else ""
    lead_s, tail_s = seconds / 6, seconds / 12
    script = CASE_FLOW % {"tag": tag, "token": bearer(), "pacing": pacing, "open": body,
                          "residents": residents, "lead_ms": lead_s * 1000,
                          "window_ms": (seconds - lead_s - tail_s) * 1000}
    if connections is None:
        connections = max(4, min(PACED_CONNECTIONS, int(writes_per_s * IDLE_S)))
    result = wrk(base, script, seconds=int(seconds), connections=connections)
    if result.failures and writes_per_s <= 0:
        raise SystemExit(f"{result.failures} writes failed at {writes_per_s:.0f}/s")
    assert result.window_rate is not None
    resolved = max(0, result.requests - 3 * result.failures - 2 * connections) // 3
    return Driven(result.window_rate, resolved, result.requests, result.failures,
                  result.p99_ms)


async def latencies(dsn: str, tag: str, expected: int) -> dict[str, tuple[float, float, int]]:
    conn = await asyncpg.connect(dsn)
    out: dict[str, tuple[float, float, int]] = {}
    try:
        queries = {
            "intake": "SELECT extract(epoch FROM c.projected_at - t.recorded_at) * 1000 AS ms"
                      " FROM intake.cases c JOIN intake.case_timeline t ON t.case_id ="
                      " c.case_id AND t.type = 'CaseResolved' WHERE c.counter_id = $1",
            "followup": "SELECT extract(epoch FROM f.projected_at - t.recorded_at) * 1000 AS ms"
                        " FROM intake.cases c JOIN intake.case_timeline t ON t.case_id ="
                        " c.case_id AND t.type = 'CaseResolved' JOIN followup.followups f ON"
                        " f.case_id = c.case_id WHERE c.counter_id = $1",
            "feedback": "SELECT extract(epoch FROM s.projected_at - t.recorded_at) * 1000 AS ms"
                        " FROM intake.cases c JOIN intake.case_timeline t ON t.case_id ="
                        " c.case_id AND t.type = 'CaseResolved' JOIN feedback.surveys s ON"
                        " s.case_id = c.case_id WHERE c.counter_id = $1",
        }
        # Not a read model: where the surveys' time goes. The survey is requested on the
        # follower's clock (requested_at) once intake's relay and feedback's intake follower
        # have passed the resolution on; the rest is feedback's commit, relay and views.
        queries[HOP] = ("SELECT extract(epoch FROM s.requested_at - t.recorded_at) * 1000 AS ms"
                        " FROM intake.cases c JOIN intake.case_timeline t ON t.case_id ="
                        " c.case_id AND t.type = 'CaseResolved' JOIN feedback.surveys s ON"
                        " s.case_id = c.case_id WHERE c.counter_id = $1")
        for name, sql in queries.items():
            deadline = time.time() + 60
            rows: list = []
            while time.time() < deadline:
                rows = await conn.fetch(sql, tag)
                if len(rows) >= expected:
                    break
                await asyncio.sleep(0.5)
            out[name] = summary(sorted(float(r["ms"]) for r in rows))
    finally:
        await conn.close()
    return out


class FiguresProgress:
    """The figures have no row per case: their consumer's progress on intake's log is sampled
    (every ``every_s``, on the server's clock) in a thread beside wrk, and a case counts as in
    the figures at the first sample whose position reached its CaseResolved (so the figure
    is late by up to one sampling interval, ~5 ms, plus a query)."""

    def __init__(self, dsn: str, every_s: float = 0.005) -> None:
        self.dsn = dsn
        self.every_s = every_s
        self.samples: list[tuple[datetime, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._sample()), daemon=True)

    async def _sample(self) -> None:
        conn = await asyncpg.connect(self.dsn)
        try:
            while not self._stop.is_set():
                row = await conn.fetchrow(
                    "SELECT clock_timestamp() AS at, coalesce(max(position), 0) AS position"
                    " FROM feedback.consumer_progress WHERE consumer = $1 AND service ="
                    " 'intake'", FIGURES)
                self.samples.append((row["at"], row["position"]))
                await asyncio.sleep(self.every_s)
        finally:
            await conn.close()

    def __enter__(self) -> FiguresProgress:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    async def latencies(self, dsn: str, tag: str) -> tuple[float, float, int]:
        conn = await asyncpg.connect(dsn)
        try:
            rows = await conn.fetch(
                "SELECT t.position, t.recorded_at FROM intake.cases c JOIN intake.case_timeline"
                " t ON t.case_id = c.case_id AND t.type = 'CaseResolved'"
                " WHERE c.counter_id = $1", tag)
        finally:
            await conn.close()
        positions = [p for _, p in self.samples]
        ms = []
        for row in rows:
            i = bisect.bisect_left(positions, row["position"])
            if i < len(self.samples):
                ms.append((self.samples[i][0] - row["recorded_at"]).total_seconds() * 1000)
        return summary(sorted(ms))


#: Feedback's path cut where its clocks can be read: the intake event's recorded_at, its
#: time on the stream (intake's relay published it), the survey's requested_at (the follower
#: asked for it), the SurveyRequested's time on the stream (feedback's store and relay), the
#: row in the surveys view.
PATH_HOPS = ("intake's store + relay", "follower", "feedback's store + relay", "views")


async def path_hops(srv: Servers, tag: str, since: datetime) -> list[tuple[float, float, int]]:
    """(p50, p99, n) of each of PATH_HOPS for the cases resolved under ``tag``."""
    settings = Settings(nats_url=srv.nats_url, database_url=srv.database_url)
    on_stream: dict[tuple[str, str], float] = {}
    nc = await connect(settings, "bench-path-hops")
    try:
        js = nc.jetstream()
        name = f"bench-hops-{int(time.time() * 1000)}"
        prefix = settings.subject_prefix
        await js.add_consumer(settings.stream_name, ConsumerConfig(
            durable_name=name, ack_policy=AckPolicy.NONE,
            filter_subjects=[f"{prefix}.intake.CaseResolved.*",
                             f"{prefix}.feedback.SurveyRequested.*"],
            deliver_policy=DeliverPolicy.BY_START_TIME,
            opt_start_time=since.isoformat().replace("+00:00", "Z")))
        sub = await js.pull_subscribe_bind(name, settings.stream_name)
        while True:
            try:
                msgs = await sub.fetch(1000, timeout=1.0)
            except TimeoutError:
                break
            for msg in msgs:
                event = orjson.loads(msg.data)
                on_stream[(event["type"], event["case_id"])] = msg.metadata.timestamp.timestamp()
        await js.delete_consumer(settings.stream_name, name)
    finally:
        await nc.close()
    conn = await asyncpg.connect(srv.database_url)
    try:
        rows = await conn.fetch(
            "SELECT c.case_id::text AS case_id, extract(epoch FROM t.recorded_at) AS recorded,"
            " extract(epoch FROM s.requested_at) AS requested,"
            " extract(epoch FROM s.projected_at) AS projected"
            " FROM intake.cases c JOIN intake.case_timeline t ON t.case_id = c.case_id"
            " AND t.type = 'CaseResolved' JOIN feedback.surveys s ON s.case_id = c.case_id"
            " WHERE c.counter_id = $1", tag)
    finally:
        await conn.close()
    hops: list[list[float]] = [[] for _ in PATH_HOPS]
    for row in rows:
        resolved = on_stream.get(("CaseResolved", row["case_id"]))
        requested = on_stream.get(("SurveyRequested", row["case_id"]))
        if resolved is None or requested is None:
            continue
        moments = [float(row["recorded"]), resolved, float(row["requested"]), requested,
                   float(row["projected"])]
        for i, hop in enumerate(hops):
            hop.append((moments[i + 1] - moments[i]) * 1000)
    return [summary(sorted(hop)) for hop in hops]


def summary(ms: list[float]) -> tuple[float, float, int]:
    """(p50, p99, n) of sorted latencies."""
    if not ms:
        return float("nan"), float("nan"), 0
    return statistics.median(ms), ms[max(0, int(len(ms) * 0.99) - 1)], len(ms)


class Cpu:
    """CPU seconds spent while a phase's wrk ran, by whom: the services' processes, PostgreSQL
    and nats-server (what a write costs on this host), and the generator (wrk and this
    process with its figures' sampler: the host's share the services did not have)."""

    PARTS = ("services", "PostgreSQL", "nats-server", "generator")

    def __init__(self) -> None:
        self.spent: dict[str, float] = {}

    @staticmethod
    def now() -> dict[str, float]:
        me = psutil.Process()
        services = 0.0
        for child in me.children():
            with contextlib.suppress(psutil.Error):
                if any(arg.startswith("services.") for arg in child.cmdline()):
                    t = child.cpu_times()
                    services += t.user + t.system
        pg, nats = server_cpu_seconds()
        own = me.cpu_times()  # with the wrk runs it waited for
        generator = own.user + own.system + own.children_user + own.children_system
        return dict(zip(Cpu.PARTS, (services, pg, nats, generator), strict=True))

    def __enter__(self) -> Cpu:
        self._start, self._at = self.now(), time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        end, self.seconds = self.now(), time.perf_counter() - self._at
        self.spent = {part: end[part] - self._start[part] for part in self.PARTS}

    def line(self, writes: int) -> str:
        """Each part's CPU a write answered, and the cores busy (of the host's)."""
        per = ", ".join(f"{part} {self.spent[part] / max(writes, 1) * 1e6:,.0f} us"
                        for part in self.PARTS)
        busy = sum(self.spent.values()) / self.seconds
        return f"CPU a write: {per}; {busy:.2f} of {psutil.cpu_count()} cores busy"


async def drained(dsn: str, tag: str, cases: int, within_s: float = 120.0) -> float:
    """Seconds until every read model shows the ``cases`` cases resolved under ``tag``."""
    started = time.time()
    conn = await asyncpg.connect(dsn)
    try:
        while time.time() - started < within_s:
            n = await conn.fetchval(
                "SELECT least((SELECT count(*) FROM followup.followups f JOIN intake.cases c"
                " USING (case_id) WHERE c.counter_id = $1), (SELECT count(*) FROM"
                " feedback.surveys s JOIN intake.cases c USING (case_id) WHERE"
                " c.counter_id = $1))", tag)
            if n >= cases:
                break
            await asyncio.sleep(0.2)
    finally:
        await conn.close()
    return time.time() - started


@contextlib.contextmanager
def running(layout: str, srv: Servers, seconds: int) -> Iterator[str]:
    """The three services in ``layout``; yields intake's base URL."""
    ports = dict(zip((*SERVICES, "feedback-workers", "feedback-figures", "intake-workers"),
                     free_ports(6), strict=True))
    env = service_env(srv, **{f"{s.upper()}_PORT": str(p) for s, p in ports.items()
                              if s in SERVICES}, SURVEY_DELAY_MINUTES="0",
                              SURVEY_QUIET_FROM="00:00", SURVEY_QUIET_UNTIL="00:00")
    with contextlib.ExitStack() as stack:
        for name in SERVICES:
            if name == "feedback" and layout != "together":
                stack.enter_context(service("services.feedback.main", ports[name],
                                            {**env, "ROLES": "api"}))
                apart = layout == "figures-apart"
                # First, so it leads the relay and the scheduler (the other stands by).
                stack.enter_context(service(
                    "services.feedback.main", ports["feedback-workers"],
                    {**env, "ROLES": "workers", "FEEDBACK_PORT": str(ports["feedback-workers"]),
                     "CONSUMERS": SURVEY_PATH if apart else ""}))
                if apart:
                    stack.enter_context(service(
                        "services.feedback.main", ports["feedback-figures"],
                        {**env, "ROLES": "workers", "CONSUMERS": FIGURES_APART,
                         "FEEDBACK_PORT": str(ports["feedback-figures"])}))
            elif name == "intake" and layout == "intake-apart":
                # Intake as the k8s manifests run it: its API, and its relay and consumers
                # (the cases projection) in a worker process of their own.
                stack.enter_context(service("services.intake.main", ports[name],
                                            {**env, "ROLES": "api"}))
                stack.enter_context(service(
                    "services.intake.main", ports["intake-workers"],
                    {**env, "ROLES": "workers", "INTAKE_PORT": str(ports["intake-workers"])}))
            else:
                stack.enter_context(service(f"services.{name}.main", ports[name], env))
        yield f"http://127.0.0.1:{ports['intake']}"


def measure(layout: str, srv: Servers, seconds: int, round_: int, rate: float = 0.0) -> None:
    with running(layout, srv, seconds) as base:
        residents = ", ".join(f'"{r}"' for r in register_residents(base, f"{layout}-{round_}"))
        rates, took, costs = [], 0.0, []
        for connections in () if rate else MAXIMUM_CONNECTIONS:
            tag = f"e2e-{layout}-{round_}-max{connections}"
            # The figures' sampler runs in every phase (it takes a little of the host's CPU
            # and of PostgreSQL's): the maximum is found under the same watch as the steps.
            with FiguresProgress(srv.database_url), Cpu() as cpu:
                run = drive_cases(base, residents, 0.0, seconds, tag, connections)
            rates.append(run.rate)
            costs.append(f"{cpu.line(run.writes)}; answers p99 {run.p99_ms:,.0f} ms")
            took = max(took, asyncio.run(drained(srv.database_url, tag, run.resolved)))
        if rate:  # --rate: that rate alone, named "half of max" (what it stands for)
            # Warmed first as the maximum's search warms them (pools, prepared statements,
            # the follower's first ANALYZE): a fresh process's first seconds have the tails.
            tag = f"e2e-{layout}-{round_}-warm"
            run = drive_cases(base, residents, rate, seconds, tag)
            took = asyncio.run(drained(srv.database_url, tag, run.resolved))
            maximum, shares = rate * 2, (0.5,)
        else:
            maximum, shares = max(rates), (0.5, 0.9)
        print(f"[{layout}, round {round_}] maximum of whole cases, three services running: "
              f"{maximum:,.0f} writes/s ({maximum / 3:,.0f} cases/s; " + ", ".join(
                  f"{r:,.0f} on {n} connections" for n, r
                  in zip(MAXIMUM_CONNECTIONS[:len(rates)], rates, strict=True))
              + (f"; the read models drained {took:.1f} s after)" if rates
                 else f" (--rate: twice the rate asked, not searched; warmed {seconds} s at"
                      f" the rate, drained {took:.1f} s after)"))
        for n, cost in zip(MAXIMUM_CONNECTIONS[:len(costs)], costs, strict=True):
            print(f"  on {n} connections, {cost}")
        for share in shares:
            tag = f"e2e-{layout}-{round_}-{int(share * 100)}"
            since = datetime.now(UTC)
            with FiguresProgress(srv.database_url) as figures_progress:
                with Cpu() as cpu:
                    began = time.time()
                    run = drive_cases(base, residents, maximum * share, seconds, tag)
                # When the step ran, on the host's clock (``e2e_hops.py`` reads its cases by it).
                say(f"e2e step {layout} {round_} {int(share * 100)}% {began:.3f} {time.time():.3f}")
                result = asyncio.run(latencies(srv.database_url, tag, run.resolved))
            result["figures"] = asyncio.run(figures_progress.latencies(srv.database_url, tag))
            achieved = run.rate
            print(f"[{layout}, round {round_}] at {achieved:,.0f} writes/s = "
                  f"{achieved / maximum:.3f} x max ({share:.0%} asked), whole cases from wrk:")
            print(f"  {cpu.line(run.writes)}; answers p99 {run.p99_ms:,.0f} ms")
            if run.failed:
                print(f"  {run.failed:,} of {run.writes:,} writes failed (not stored in time:"
                      " the services fell behind the schedule)")
            goal = 100 if share == 0.5 else 250
            if layout == DEFAULT_LAYOUT and share == 0.9:
                print(target("e2e writes/s completed at 90% of max asked, vs max",
                             achieved / maximum, 0.9))
            for name, (p50, p99, n) in result.items():
                print(f"  CaseResolved stored -> {name}{'' if name == HOP else ' read model'}:"
                      f" p50 {p50:.0f} ms, p99 {p99:.0f} ms ({n} cases)")
                if layout == DEFAULT_LAYOUT and name != HOP:
                    print(target(f"e2e p99 into {name} at {share:.0%} of max", p99, goal, "ms",
                                 at_most=True))
            hops = asyncio.run(path_hops(srv, tag, since))
            print("  feedback's path hop by hop, p50 / p99: " + ", ".join(
                f"{name} {p50:.0f} / {p99:.0f} ms" for name, (p50, p99, _)
                in zip(PATH_HOPS, hops, strict=True)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--layout", action="append", choices=LAYOUTS, help=(
        "split: feedback's API and workers in two processes (what make run starts); "
        "together: one process a service; figures-apart: split, and feedback's figures "
        "consumers in a third process; intake-apart: split, and intake's API and workers in "
        "two processes (the k8s manifests'). Repeat to compare; default split."))
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--rate", type=float, default=0.0, help=(
        "writes/s: skip the search for the maximum and offer only this rate (reported as "
        "half of a maximum twice it); for paired before/after runs at one rate, e.g. "
        "--rate 380 --layout split --layout figures-apart --rounds 4"))
    args = parser.parse_args()
    layouts = args.layout or [DEFAULT_LAYOUT]
    print(f"machine: {machine()}")
    with servers() as srv:
        for round_ in range(1, args.rounds + 1):
            for layout in layouts:
                measure(layout, srv, args.seconds, round_, args.rate)


if __name__ == "__main__":
    main()

"""End to end across the three services: a resolution at the counter until the follow-up
service has scheduled its check and the feedback service has requested its survey.

    .venv/bin/python benchmarks/end_to_end.py [--seconds 6]

On servers of its own, with the three services each in their own process, it first finds
intake's maximum write rate (wrk, POST /cases), then drives whole cases (open, hear, resolve)
at half and at 90 % of that write rate from this separate process, and reports, on the
servers' clocks, the latency from the stored CaseResolved to the row in follow-up's worklist
(via follow-up's rules, its store, relay and worklist consumer) and in feedback's surveys.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg
import httpx

from benchmarks.common import (
    bearer,
    free_ports,
    machine,
    post_script,
    servers,
    service,
    service_env,
    target,
    wrk,
)
from benchmarks.intake import CASE

SERVICES = ("intake", "followup", "feedback")


CASE_FLOW = """
-- Whole cases, on any connection: open, then hear, then resolve. The answer to each write
-- carries the case id and its version, which says what the case needs next.
local opened, heard = {}, {}
local n = 0
local prefix = "%(tag)s-" .. tostring(math.random(1, 1e9))
local residents = {%(residents)s}
local function post(path, body)
  n = n + 1
  return wrk.format("POST", path, {["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer %(token)s", ["Idempotency-Key"] = prefix .. "-" .. n}, body)
end
delay = function() return %(delay_ms).1f end
request = function()
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
  local id = body:match('"id":%%s*"([%%x%%-]+)"')
  local version = tonumber(body:match('"version":%%s*(%%d+)'))
  if version == 1 then opened[#opened + 1] = id elseif version == 2 then heard[#heard + 1] = id end
end
"""
CONNECTIONS = 16


def register_residents(base: str, n: int = 40) -> list[str]:
    """Residents of the center in intake's vault (a case names only a resident on file),
    each registered by a clerk of their own (registering by ID number is paced per clerk)."""
    from services.intake.idnumber import check_character
    from shared.security.tokens import issue_token
    from shared.settings import Settings

    ids = []
    with httpx.Client(base_url=base, timeout=10) as client:
        for i in range(n):
            first17 = f"31011519800101{i:03d}"
            token = issue_token(Settings(), f"bench-registrar-{i}", "clerk", "SH-PD-HUAMU")
            r = client.post("/residents", headers={"Authorization": f"Bearer {token}"}, json={
                "name": "测试居民", "id_number": first17 + check_character(first17),
                "phone": "13912345678", "consent": {"contact": True, "surveys": True}})
            r.raise_for_status()
            ids.append(r.json()["resident_id"])
    return ids


def drive_cases(base: str, writes_per_s: float, seconds: float, tag: str) -> float:
    """Whole cases (open, hear, resolve) at about ``writes_per_s`` HTTP writes per second,
    from wrk (a separate process). Each connection pauses between its writes; the pause is
    found by short probes at that rate (their cases are on other counters, so only the
    measured run's cases are counted). Returns the writes/s achieved."""
    residents = ", ".join(f'"{r}"' for r in register_residents(base))

    def run(delay_ms: float, for_s: int, counter: str) -> float:
        body = CASE.replace('"window-3"', f'"{counter}"').replace(
            '"service_item"', '"resident_id": "RESIDENT", "service_item"')
        script = CASE_FLOW % {"tag": counter, "token": bearer(), "delay_ms": delay_ms,
                              "open": body, "residents": residents}
        result = wrk(base, script, seconds=for_s, connections=CONNECTIONS)
        if result.failures:
            raise SystemExit(f"{result.failures} writes failed at {writes_per_s:.0f}/s")
        return result.rate

    cycle_ms = CONNECTIONS * 1000.0 / writes_per_s
    delay = max(0.0, cycle_ms - 5.0)
    for probe in range(4):
        achieved = run(delay, 2, f"{tag}-p{probe}")
        if abs(achieved - writes_per_s) <= 0.05 * writes_per_s or (delay == 0.0
                                                                   and achieved < writes_per_s):
            break
        # Each connection's cycle is its pause plus the answer's latency.
        delay = max(0.0, delay + cycle_ms - CONNECTIONS * 1000.0 / achieved)
    return run(delay, int(seconds), tag)


async def latencies(dsn: str, tag: str, expected: int) -> dict[str, tuple[float, float, int]]:
    conn = await asyncpg.connect(dsn)
    out: dict[str, tuple[float, float, int]] = {}
    try:
        queries = {
            "followup": "SELECT extract(epoch FROM f.projected_at - t.recorded_at) * 1000 AS ms"
                        " FROM intake.cases c JOIN intake.case_timeline t ON t.case_id ="
                        " c.case_id AND t.type = 'CaseResolved' JOIN followup.followups f ON"
                        " f.case_id = c.case_id WHERE c.counter_id = $1",
            "feedback": "SELECT extract(epoch FROM s.projected_at - t.recorded_at) * 1000 AS ms"
                        " FROM intake.cases c JOIN intake.case_timeline t ON t.case_id ="
                        " c.case_id AND t.type = 'CaseResolved' JOIN feedback.surveys s ON"
                        " s.case_id = c.case_id WHERE c.counter_id = $1",
        }
        for name, sql in queries.items():
            deadline = time.time() + 60
            rows: list = []
            while time.time() < deadline:
                rows = await conn.fetch(sql, tag)
                if len(rows) >= expected:
                    break
                await asyncio.sleep(0.5)
            ms = sorted(float(r["ms"]) for r in rows)
            out[name] = ((statistics.median(ms), ms[max(0, int(len(ms) * 0.99) - 1)], len(ms))
                         if ms else (float("nan"), float("nan"), 0))
    finally:
        await conn.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=6)
    args = parser.parse_args()
    with servers() as srv:
        ports = dict(zip(SERVICES, free_ports(3), strict=True))
        env = service_env(srv, **{f"{s.upper()}_PORT": str(p) for s, p in ports.items()},
                          SURVEY_DELAY_MINUTES="0")
        with contextlib.ExitStack() as stack:
            for name in SERVICES:
                stack.enter_context(service(f"services.{name}.main", ports[name], env))
            base = f"http://127.0.0.1:{ports['intake']}"
            maximum = wrk(base, post_script("/cases", CASE, "max"), seconds=args.seconds).rate
            print(f"machine: {machine()}")
            print(f"intake maximum, three services running: {maximum:,.0f} writes/s")
            for share in (0.5, 0.9):
                tag = f"e2e-{int(share * 100)}"
                achieved = drive_cases(base, maximum * share, args.seconds, tag)
                cases = int(achieved * args.seconds / 3 * 0.9)
                result = asyncio.run(latencies(srv.database_url, tag, cases))
                print(f"at {achieved:,.0f} writes/s = {achieved / maximum:.2f} x max "
                      f"({share:.0%} asked), whole cases from wrk:")
                for name, (p50, p99, n) in result.items():
                    print(f"  CaseResolved stored -> {name} read model: p50 {p50:.0f} ms, "
                          f"p99 {p99:.0f} ms ({n} cases)")
                    if share == 0.5:
                        print(target(f"e2e p99 into {name} at half of max", p99, 100, "ms",
                                     at_most=True))


if __name__ == "__main__":
    main()

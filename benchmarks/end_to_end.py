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
import uuid
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
    wrk,
)
from benchmarks.intake import CASE

SERVICES = ("intake", "followup", "feedback")


async def drive_cases(base: str, writes_per_s: float, seconds: float, tag: str) -> float:
    """Open, hear and resolve cases at about ``writes_per_s`` HTTP writes per second."""
    cases_per_s = writes_per_s / 3
    done = 0
    async with httpx.AsyncClient(base_url=base, timeout=30,
                                 headers={"Authorization": f"Bearer {bearer()}"},
                                 limits=httpx.Limits(max_connections=128)) as client:
        async def one(i: int) -> None:
            nonlocal done
            key = f"{tag}-{i}-{uuid.uuid4().hex[:8]}"
            body = CASE.replace('"window-3"', f'"{tag}"').replace(
                '"service_item"', f'"resident_id": "{uuid.uuid4()}", "service_item"')
            r = await client.post("/cases", content=body, headers={
                "Idempotency-Key": f"{key}-open", "Content-Type": "application/json"})
            case = r.json()["id"]
            await client.post(f"/cases/{case}/hear", json={"words": "想申请补助"},
                              headers={"Idempotency-Key": f"{key}-hear"})
            r = await client.post(f"/cases/{case}/resolve", json={
                "outcome": "resolved", "emotion_defused": True},
                headers={"Idempotency-Key": f"{key}-resolve"})
            if r.status_code == 200:
                done += 1

        start = time.perf_counter()
        tasks, i = [], 0
        while time.perf_counter() - start < seconds:
            tasks.append(asyncio.create_task(one(i)))
            i += 1
            await asyncio.sleep(max(0.0, start + i / cases_per_s - time.perf_counter()))
        await asyncio.gather(*tasks)
        return 3 * done / (time.perf_counter() - start)


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
                achieved = asyncio.run(drive_cases(base, maximum * share, args.seconds, tag))
                cases = int(achieved * args.seconds / 3 * 0.95)
                result = asyncio.run(latencies(srv.database_url, tag, cases))
                print(f"at {achieved:,.0f} writes/s ({share:.0%} of max asked):")
                for name, (p50, p99, n) in result.items():
                    print(f"  CaseResolved stored -> {name} read model: p50 {p50:.0f} ms, "
                          f"p99 {p99:.0f} ms ({n} cases)")


if __name__ == "__main__":
    main()

"""The cases projection's three statements, its rows sent as one array a column and as one
array of a composite (``bulk.RowType`` / ``bulk.patch_type``), paired: CPU time a row of
this process in each statement (asyncpg's encoding; the rows are built outside) and of the
PostgreSQL backend (receiving, unnesting, writing; /proc's ticks, 1 us a row at the
defaults).

    .venv/bin/python benchmarks/case_rows_paired.py [--pairs 6] [--batch 500] [--batches 20]

Each measurement sends ``--batches`` batches of ``--batch`` rows per statement in a
transaction rolled back after each batch (the tables stay as they were): new cases (28
columns), their timeline steps (11, the payload as text cast to jsonb), and changes to cases
already there (the masked UPDATE over the columns the patches name, ~20 with the mask). The
two ways alternate, and so does which goes first (``pairing.alternate``). Not part of
``make bench``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg
import orjson

from benchmarks.common import servers
from benchmarks.pairing import alternate
from services.intake.projections import (
    CASE_CHANGE,
    CASE_COLUMNS,
    CASE_EXPRESSIONS,
    CASE_ROW,
    DDL,
    TIMELINE_COLUMNS,
    TIMELINE_ROW,
)
from shared.readmodels import bulk
from shared.readmodels.readmodel import make_tables

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
AT = datetime(2026, 12, 20, 1, 30, tzinfo=UTC)  # Sunday 20 December, 09:30 in Shanghai


def backend_cpu(pid: int) -> float:
    """The backend's CPU seconds so far (same machine: /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def new_case(i: int) -> tuple[Any, ...]:
    row: dict[str, Any] = dict.fromkeys(CASE_COLUMNS)
    row.update(case_id=uuid.uuid4(), center_id="SH-PD-HUAMU", counter_id="window-3",
               clerk_id="clerk-017", channel="counter", service_item="SA-HARDSHIP-SUBSIDY",
               resident_id=uuid.uuid4() if i % 3 else None, status="open", stage="heard",
               urgency="normal" if i % 2 else None, opened_at=AT, updated_at=AT,
               reopen_count=0, version=2, position=1000 + i)
    return tuple(row[c] for c in CASE_COLUMNS)


def step(case_id: uuid.UUID, i: int) -> tuple[Any, ...]:
    return (case_id, 2, 1000 + i, "RequestHeard", 1, AT, AT, "clerk-017", f"k-{i}",
            str(uuid.uuid4()), orjson.dumps({"words": "想问问高龄津贴怎么领"}).decode())


def patch(i: int) -> dict[str, Any]:
    at = AT + timedelta(minutes=i % 50)
    shapes = [
        {"stage": "concerns_noted", "emotion_on_arrival": "anxious", "urgency": "high"},
        {"stage": "guided", "eligibility": "eligible", "service_item": "SA-MEDICAL-AID"},
        {"stage": "served", "next_deadline": date(2028, 2, 29)},
        {"stage": "resolved", "status": "resolved", "outcome": "resolved",
         "emotion_defused": True, "resolved_at": at},
    ]
    return {**shapes[i % len(shapes)], "updated_at": at, "version": 3, "position": 5000 + i,
            "reopen_count": 0}


async def measure(url: str, composite: bool, batch: int, batches: int
                  ) -> tuple[dict[str, float], float]:
    conn = await asyncpg.connect(url)
    try:
        await make_tables(conn, "bench_rows", DDL)
        await conn.execute("TRUNCATE cases, case_timeline")
        there = [new_case(i) for i in range(batch)]
        await bulk.insert_rows(conn, bulk.Tables(), "cases", CASE_COLUMNS, there)
        patches = {row[0]: patch(i) for i, row in enumerate(there)}
        pid = await conn.fetchval("SELECT pg_backend_pid()")
        tables = bulk.Tables()
        await tables.types(conn, "cases")
        await tables.types(conn, "case_timeline")
        spent = {"timeline": 0.0, "cases": 0.0, "changes": 0.0}
        pg = backend_cpu(pid)
        for _ in range(batches):
            cases = [new_case(i) for i in range(batch)]
            steps = [step(c[0], i) for i, c in enumerate(cases)]
            tr = conn.transaction()
            await tr.start()
            began = time.process_time()
            await bulk.insert_rows(conn, tables, "case_timeline", TIMELINE_COLUMNS, steps,
                                   returning=("case_id", "version"),
                                   row_type=TIMELINE_ROW if composite else None)
            spent["timeline"] += time.process_time() - began
            began = time.process_time()
            await bulk.insert_rows(conn, tables, "cases", CASE_COLUMNS, cases,
                                   conflict="(case_id) DO NOTHING", returning=("case_id",),
                                   row_type=CASE_ROW if composite else None)
            spent["cases"] += time.process_time() - began
            began = time.process_time()
            await bulk.update_rows(conn, tables, "cases", "case_id", patches,
                                   CASE_EXPRESSIONS, also="projected_at = clock_timestamp()",
                                   row_type=CASE_CHANGE if composite else None)
            spent["changes"] += time.process_time() - began
            await tr.rollback()
        rows = batch * batches
        return ({k: v / rows * 1e6 for k, v in spent.items()},
                (backend_cpu(pid) - pg) / rows * 1e6)
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=6)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--batches", type=int, default=20)
    args = parser.parse_args()
    with servers() as srv:
        backends: dict[str, list[float]] = {"columns": [], "composite": []}

        def run(tree: Path) -> float:
            way = tree.name
            client, pg = asyncio.run(measure(srv.database_url, way == "composite", args.batch,
                                             args.batches))
            backends[way].append(pg)
            print(f"  {way}: client us a row: " + ", ".join(
                f"{k} {v:.2f}" for k, v in client.items()) + f"; PostgreSQL backend {pg:.2f}"
                " us a case (its step, its change)", file=sys.stderr, flush=True)
            return sum(client.values())

        asyncio.run(measure(srv.database_url, True, args.batch, 2))  # warm both
        asyncio.run(measure(srv.database_url, False, args.batch, 2))
        # "other" is one array a column (as before), "this" one array of a composite.
        alternate(Path("columns"), Path("composite"), args.pairs, run,
                  "of client CPU a case (its row, its step, its change)")
        for way, values in backends.items():
            print(f"backend {way}: " + ", ".join(f"{v:.2f}" for v in values))


if __name__ == "__main__":
    main()

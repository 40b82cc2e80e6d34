"""The by-id read's gap between another center's case and an id nobody has, in the reading
process's CPU time: the statement as the reads send it (the whole row, decoded by asyncpg
before ``elsewhere`` looks at its center) against one that returns the row's columns only in
the caller's reach (``CASE WHEN center_id = $2 THEN ... END``, the rest NULL).

    PYTHONPATH=$PWD .venv/bin/python benchmarks/elsewhere_paired.py [pairs]

One PostgreSQL of its own (``fsync=on``) in a folder of its own; each figure a child process,
each way the best of 6 rounds of 2,000 reads; the two statements alternate, and so does
which goes first (``pairing.alternate``: "other" is the whole row, "this" the CASE)."""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg

from services.intake import projections
from shared.readmodels.readmodel import make_tables

ROUNDS, READS = 6, 2000
COLUMNS = projections.CASE_COLUMNS
WHOLE = f"SELECT {', '.join(COLUMNS)} FROM cases WHERE case_id = $1"
IN_REACH = ("SELECT center_id, " + ", ".join(
    f"CASE WHEN center_id = $2 THEN {c} END AS {c}" for c in COLUMNS if c != "center_id")
    + " FROM cases WHERE case_id = $1")


async def _prepare(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await make_tables(conn, "bench_elsewhere", projections.DDL)
        await conn.execute("TRUNCATE cases")
        await conn.execute(
            "INSERT INTO cases (case_id, center_id, counter_id, clerk_id, channel, service_item,"
            " resident_id, resident_basis, applicant_id, status, stage, emotion_on_arrival,"
            " urgency, eligibility, outcome, emotion_defused, opened_at, updated_at,"
            " resolved_at, next_deadline, reopen_count, version, position, due_on, due_basis,"
            " due_source, owner_clerk, owner_team) VALUES ($1, 'SH-PD-HUAMU', 'window-3',"
            " 'clerk-017', 'counter', 'SA-HARDSHIP-SUBSIDY', $2, 'registration', $3,"
            " 'resolved', 'feedback', 'anxious', 'high', 'eligible', 'resolved_on_the_spot',"
            " true, now(), now(), now(), now(), 1, 12, 123456, current_date, 'official',"
            " 'deadline', 'clerk-017', 'team-2')", uuid.UUID(int=1), uuid.uuid4(), uuid.uuid4())
    finally:
        await conn.close()


async def _gap(url: str, sql: str) -> float:
    """us of CPU per read: another center's case minus an id nobody has (each the best of
    its rounds)."""
    conn = await asyncpg.connect(url, server_settings={"search_path": "bench_elsewhere"})
    theirs, nobody = uuid.UUID(int=1), uuid.UUID(int=2)
    args = () if "$2" not in sql else ("SH-PD-ZHANGJIANG",)
    best = {"theirs": float("inf"), "nobody": float("inf")}
    try:
        for round_ in range(ROUNDS):
            ids = (("theirs", theirs), ("nobody", nobody))
            for name, id_ in ids if round_ % 2 == 0 else ids[::-1]:
                started = time.process_time()
                for _ in range(READS):
                    await conn.fetchrow(sql, id_, *args)
                spent = (time.process_time() - started) / READS * 1e6
                best[name] = min(best[name], spent)
    finally:
        await conn.close()
    return best["theirs"] - best["nobody"]


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        mode, url = sys.argv[2], sys.argv[3]
        print(asyncio.run(_gap(url, IN_REACH if mode == "case" else WHOLE)))
        return
    from benchmarks.pairing import alternate, child
    from tools.devservers import PostgresServer, exit_on_signals

    pairs = int(sys.argv[1]) if len(sys.argv) > 1 else 6
    folder = Path(tempfile.mkdtemp(prefix="elsewhere-paired-"))
    exit_on_signals()
    pg = PostgresServer(folder / "pg")
    try:
        pg.start()
        asyncio.run(_prepare(pg.url))
        script, tree = Path(__file__).resolve(), Path(__file__).resolve().parents[1]
        alternate(Path("whole"), Path("case"), pairs,
                  lambda mode: child(script, tree, mode.name, pg.url),
                  "CPU a read (another center's case minus nobody's)")
    finally:
        pg.stop()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()

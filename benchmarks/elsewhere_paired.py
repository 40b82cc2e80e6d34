"""The by-id read's gap between another center's case and an id nobody has, in the reading
process's CPU time: the statement as the reads send it (the whole row, decoded by asyncpg
before ``elsewhere`` looks at its center) against one that returns the row's columns only in
the caller's reach (``CASE WHEN center_id = $2 THEN ... END``, the rest NULL).

    PYTHONPATH=$PWD .venv/bin/python benchmarks/elsewhere_paired.py [pairs] [route]

``route``: ``case`` (the default: the statement written out here, as stop 49 measured it),
``followup``, ``rectification``, ``help`` or ``plan`` (the statements the reads sent before
stop 49's reach49b against the ones they send now, ``*_IN_REACH``; the row every column
filled).

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

from benchmarks.pairing import theirs_minus_nobodys
from services.feedback import projections as feedback_projections
from services.feedback import queries as feedback_queries
from services.followup import projections as followup_projections
from services.followup import queries as followup_queries
from services.intake import plan_views, projections
from shared.readmodels.readmodel import make_tables

ROUNDS, READS = 6, 2000
COLUMNS = projections.CASE_COLUMNS
WHOLE = f"SELECT {', '.join(COLUMNS)} FROM cases WHERE case_id = $1"
IN_REACH = ("SELECT center_id, " + ", ".join(
    f"CASE WHEN center_id = $2 THEN {c} END AS {c}" for c in COLUMNS if c != "center_id")
    + " FROM cases WHERE case_id = $1")

#: route: (its read model's DDL, table, key, the statement before, the statement now)
ROUTES = {
    "followup": (followup_projections.DDL, "followups", "follow_up_id",
                 f"SELECT {followup_queries.COLUMNS} FROM followups WHERE follow_up_id = $1",
                 f"SELECT {followup_queries.FOLLOW_UP_IN_REACH} FROM followups"
                 " WHERE follow_up_id = $1"),
    "rectification": (feedback_projections.DDL, "rectifications", "rectification_id",
                      f"SELECT {feedback_queries.RECTIFICATION_COLUMNS}"
                      f" FROM {feedback_queries.RECTIFICATION_FROM}"
                      " WHERE r.rectification_id = $1",
                      f"SELECT {feedback_queries.RECTIFICATION_IN_REACH} FROM rectifications r"
                      " WHERE r.rectification_id = $1"),
    "help": (followup_projections.DDL, "help_tasks", "task_id",
             f"SELECT {followup_queries.HELP_COLUMNS} FROM help_tasks WHERE task_id = $1",
             f"SELECT {followup_queries.HELP_IN_REACH} FROM help_tasks WHERE task_id = $1"),
    "plan": (plan_views.DDL, "plans", "plan_id",
             f"SELECT {plan_views.PLAN_COLUMNS} FROM plans WHERE plan_id = $1",
             f"SELECT {plan_views.PLAN_IN_REACH} FROM plans WHERE plan_id = $1"),
}
FILLED = {"text": "'clerk-017 window-3'", "uuid": "gen_random_uuid()",
          "timestamp with time zone": "now()", "date": "current_date", "integer": "3",
          "bigint": "123456", "smallint": "1", "boolean": "true", "jsonb": "'[\"wait\"]'",
          "json": "'[\"wait\"]'", "ARRAY": "'{}'", "numeric": "1"}


async def _prepare_route(url: str, route: str) -> None:
    """One row of the route's table, every column filled (its type's value), center
    SH-PD-HUAMU; the rectification's revisit survey too (the old statement's join finds it)."""
    ddl, table, key, _, _ = ROUTES[route]
    conn = await asyncpg.connect(url)
    try:
        await make_tables(conn, f"bench_{route}", ddl)
        for name, id_ in ((table, uuid.UUID(int=1)), ("surveys", uuid.UUID(int=3))):
            if name == "surveys" and route != "rectification":
                continue
            cols = await conn.fetch(
                "SELECT column_name, data_type FROM information_schema.columns"
                " WHERE table_name = $1 AND table_schema = $2", name, f"bench_{route}")
            given = {"center_id": "'SH-PD-HUAMU'", "revisit_survey_id": f"'{uuid.UUID(int=3)}'",
                     key if name == table else "survey_id": f"'{id_}'"}
            names = [c["column_name"] for c in cols]
            values = [given.get(c["column_name"], FILLED.get(c["data_type"], "NULL"))
                      for c in cols]
            await conn.execute(f"TRUNCATE {name}")
            await conn.execute(f"INSERT INTO {name} ({', '.join(names)})"
                               f" VALUES ({', '.join(values)})")
    finally:
        await conn.close()


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


async def _gap(url: str, sql: str, schema: str = "bench_elsewhere") -> float:
    """us of CPU per read: another center's row minus an id nobody has (each the best of
    its rounds)."""
    conn = await asyncpg.connect(url, server_settings={"search_path": schema})
    theirs, nobody = uuid.UUID(int=1), uuid.UUID(int=2)
    args = () if "$2" not in sql else ("SH-PD-ZHANGJIANG",)
    try:
        return await theirs_minus_nobodys(lambda id_: conn.fetchrow(sql, id_, *args), theirs,
                                          nobody, ROUNDS, READS, time.process_time)
    finally:
        await conn.close()


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        mode, url = sys.argv[2], sys.argv[3]
        route = sys.argv[4] if len(sys.argv) > 4 else "case"
        if route == "case":
            print(asyncio.run(_gap(url, IN_REACH if mode == "case" else WHOLE)))
        else:
            _, _, _, before, now = ROUTES[route]
            print(asyncio.run(_gap(url, now if mode == "case" else before, f"bench_{route}")))
        return
    from benchmarks.pairing import alternate, child
    from tools.devservers import PostgresServer, exit_on_signals

    pairs = int(sys.argv[1]) if len(sys.argv) > 1 else 6
    route = sys.argv[2] if len(sys.argv) > 2 else "case"
    folder = Path(tempfile.mkdtemp(prefix="elsewhere-paired-"))
    exit_on_signals()
    pg = PostgresServer(folder / "pg")
    try:
        pg.start()
        asyncio.run(_prepare(pg.url) if route == "case" else _prepare_route(pg.url, route))
        script, tree = Path(__file__).resolve(), Path(__file__).resolve().parents[1]
        alternate(Path("whole"), Path("case"), pairs,
                  lambda mode: child(script, tree, mode.name, pg.url, route),
                  f"CPU a read (another center's {route} minus nobody's)")
    finally:
        pg.stop()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()

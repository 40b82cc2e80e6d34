"""What the worklist's batches cost PostgreSQL, and that it stays the same rows.

The morning's checks fall due and are done: a batch of ``FollowUpDue`` and
``FollowUpCompleted`` of follow-ups scheduled in earlier batches is written in one UPDATE,
without reading the rows' versions first (the batch knows its changes rise in version). A
row already at or past a batch's first change, a change with no row, and a change ahead of
its follow-up's scheduling leave what one event at a time leaves. A clerk's follow-up takes
no entry in the teams' index (nor a team's in the clerks'): each index an open row's write
enters is PostgreSQL's work in every batch."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from services.followup.projections import DDL, FOLLOWUP_COLUMNS, WorklistProjection
from shared.contracts import Envelope
from shared.readmodels.readmodel import make_tables
from shared.settings import Settings
from tests.support import bare_envelope

TZ = ZoneInfo("Asia/Shanghai")
CENTER = "SH-PD-HUAMU"
#: The calendar's edges: a Sunday (20 Dec 2026), New Year's Eve late in Shanghai, a day of
#: 2027 (provisional holidays), 29 Feb 2028.
DAYS = [datetime(2026, 12, 20, 2, tzinfo=UTC), datetime(2026, 12, 31, 15, 30, tzinfo=UTC),
        datetime(2027, 2, 10, 1, tzinfo=UTC), datetime(2028, 2, 29, 7, tzinfo=UTC)]


class _Seen:
    """Stands where the projection expects a connection: keeps each statement it sends."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn
        self.statements: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._conn, name)
        if name not in ("execute", "fetch", "fetchval", "fetchrow", "executemany"):
            return attr

        async def seen(statement: str, *args: Any, **kwargs: Any) -> Any:
            self.statements.append(statement)
            return await attr(statement, *args, **kwargs)
        return seen


_positions = iter(range(1, 1_000_000))


def _event(type_: str, fid: uuid.UUID, version: int, at: datetime,
           payload: dict[str, Any]) -> Envelope:
    return bare_envelope(type_, at, service="followup", payload=payload,
                         actor="system:rules").model_copy(update={
                             "aggregate_id": fid, "aggregate_version": version,
                             "position": next(_positions), "center_id": CENTER})


def scheduled(fid: uuid.UUID, at: datetime, clerk: str | None = "clerk-017") -> Envelope:
    return _event("FollowUpScheduled", fid, 1, at, {
        "reason": "post_resolution_check", "resident_id": str(uuid.uuid4()),
        "due_at": (at + timedelta(days=3)).isoformat(), "assigned_clerk": clerk,
        "assigned_team": None if clerk else "followup-desk", "priority": "normal",
        "service_item": "hardship-aid", "source": "intake:CaseResolved",
        "source_id": str(uuid.uuid4()), "basis": "official", "contact": True})


def due(fid: uuid.UUID, version: int, at: datetime) -> Envelope:
    return _event("FollowUpDue", fid, version, at + timedelta(days=3), {
        "due_at": (at + timedelta(days=3)).isoformat(),
        "overdue_at": (at + timedelta(days=3, hours=8)).isoformat()})


def completed(fid: uuid.UUID, version: int, at: datetime) -> Envelope:
    return _event("FollowUpCompleted", fid, version, at + timedelta(days=3, hours=2),
                  {"outcome": "solved", "channel": "phone"})


async def _apply(conn: Any, batches: Sequence[Sequence[Envelope]]) -> None:
    projection = WorklistProjection(TZ)
    for batch in batches:
        async with conn.transaction():
            await projection.apply(conn, batch, projection.prepare(batch))


async def _rows(conn: asyncpg.Connection) -> list[tuple[Any, ...]]:
    cols = ", ".join(c for c in FOLLOWUP_COLUMNS if c != "position")
    return [tuple(r) for r in await conn.fetch(
        f"SELECT {cols} FROM followups ORDER BY follow_up_id")]


async def test_the_mornings_checks_fall_due_and_are_done_in_one_update_read_nowhere(
        settings: Settings) -> None:
    conn = await asyncpg.connect(settings.database_url)
    try:
        await make_tables(conn, settings.schema_for("followup"), DDL)
        fids = [uuid.uuid4() for _ in DAYS]
        await _apply(conn, [[scheduled(f, at) for f, at in zip(fids, DAYS, strict=True)]])
        seen = _Seen(conn)
        falling_due = [due(f, 2, at) for f, at in zip(fids, DAYS, strict=True)]
        done = [completed(f, 3, at) for f, at in zip(fids[:2], DAYS[:2], strict=True)]
        await _apply(seen, [[*falling_due, *done]])
        touching = [s for s in seen.statements if "followups" in s]
        assert len(touching) == 1 and touching[0].startswith("UPDATE followups"), touching
        rows = {r["follow_up_id"]: r for r in await conn.fetch(
            "SELECT follow_up_id, status, version, outcome, due_on FROM followups")}
        assert [(rows[f]["status"], rows[f]["version"], rows[f]["outcome"]) for f in fids] == [
            ("completed", 3, "solved"), ("completed", 3, "solved"), ("due", 2, None),
            ("due", 2, None)]
        # Each due day is the center's (Shanghai's), not UTC's: New Year's Eve at 23:30
        # there is 3 Jan 2027 three days on; 29 Feb 2028 three days on is 3 Mar.
        assert [rows[f]["due_on"].isoformat() for f in fids] == [
            "2026-12-23", "2027-01-03", "2027-02-13", "2028-03-03"]
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{settings.schema_for("followup")}" CASCADE')
        await conn.close()


async def test_a_row_past_its_batchs_first_change_and_a_change_without_a_row_are_as_one_by_one(
        settings: Settings) -> None:
    """A follow-up already due when the batch says it fell due again (a version twice on
    the log) and is done, one never scheduled here, one done ahead of its scheduling, and
    plain ones beside them: the rows a batch leaves are those one event at a time leaves."""
    a, b, c, d, e = (uuid.uuid4() for _ in range(5))
    at = DAYS[1]
    first = [scheduled(a, at), scheduled(b, at, clerk=None), scheduled(d, at)]
    second = [due(a, 2, at)]
    third = [due(a, 2, at), completed(a, 3, at), due(b, 2, at), due(c, 2, at),
             due(d, 2, at), completed(d, 3, at)]
    fourth = [completed(e, 2, at), scheduled(e, at)]
    conn = await asyncpg.connect(settings.database_url)
    schema = settings.schema_for("followup")
    try:
        left = {}
        for name, batches in (("batched", [first, second, third, fourth]),
                              ("one_by_one",
                               [[x] for x in (*first, *second, *third, *fourth)])):
            await make_tables(conn, f"{schema}_{name}", DDL)
            await _apply(conn, batches)
            left[name] = await _rows(conn)
        assert left["batched"] == left["one_by_one"]
        statuses = {r[0]: (r[6], r[-4]) for r in left["batched"]}  # status, version
        assert statuses == {a: ("completed", 3), b: ("due", 2), d: ("completed", 3),
                            e: ("scheduled", 1)}
    finally:
        for name in ("batched", "one_by_one"):
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}_{name}" CASCADE')
        await conn.close()


async def test_a_clerks_follow_up_takes_no_entry_in_the_teams_index_nor_a_teams_in_the_clerks(
        settings: Settings) -> None:
    conn = await asyncpg.connect(settings.database_url)
    schema = settings.schema_for("followup")
    try:
        await make_tables(conn, schema, DDL)
        indexes = {r["indexname"]: r["indexdef"] for r in await conn.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = $1"
            " AND tablename = 'followups'", schema)}
        for column in ("assigned_clerk", "assigned_team"):
            keyed = {n: d for n, d in indexes.items()
                     if column in d.split(" USING ", 1)[1].split(")", 1)[0]}
            assert keyed, indexes
            for name, definition in keyed.items():
                assert f"{column} IS NOT NULL" in definition, (name, definition)
        # Still read through those indexes (sequential scans priced out): a clerk's
        # worklist, a team's.
        await conn.execute("SET enable_seqscan = off")
        for who in ("assigned_clerk", "assigned_team"):
            plan = await conn.fetchval(
                f"EXPLAIN SELECT * FROM followups WHERE center_id = $1 AND {who} = $2"
                " AND status IN ('scheduled', 'due') AND due_on BETWEEN $3 AND $4",
                CENTER, "x", DAYS[0].date(), DAYS[3].date())
            assert "Seq Scan" not in plan and "followups_of_" in plan, plan
        # The center's board (every open one of the center, whoever's): by center and status.
        plan = await conn.fetchval(
            "EXPLAIN SELECT * FROM followups WHERE center_id = $1"
            " AND status IN ('scheduled', 'due') AND due_on BETWEEN $2 AND $3",
            CENTER, DAYS[0].date(), DAYS[3].date())
        assert "Seq Scan" not in plan and "followups_by_status" in plan, plan
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()

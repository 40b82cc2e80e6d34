"""What intake's cases projection writes for a batch: each case the batch opens once.

A live batch holds a visit's first steps together (opened, heard, concerns noted, resolved at
the window). The projection folds them into the case's row and writes it once, where it
inserted the row and then updated it in the same transaction: a second row version and, as
the resolution changes an indexed column, an entry in every one of the table's indexes.
Only cases of earlier batches are updated. PostgreSQL's own count of the transaction's
inserted and updated rows (``pg_stat_xact_user_tables``) says which.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import asyncpg
import pytest

from services.intake.projections import CASE_CHANGE, DDL, CaseProjection
from shared.readmodels.readmodel import make_tables
from shared.settings import Settings
from tests.feedback.helpers import History
from tests.intake.case_tables import with_case_tables

CENTER = "SH-PD-HUAMU"


def t(hour: int, minute: int = 0) -> str:
    return f"2026-12-20T{hour:02d}:{minute:02d}:00+08:00"


async def _counts(conn: asyncpg.Connection) -> tuple[int, int]:
    """(rows inserted, rows updated) in ``cases`` by this session's transactions whose counts
    PostgreSQL has not yet flushed to its statistics (this one's included)."""
    row = await conn.fetchrow("SELECT n_tup_ins, n_tup_upd FROM pg_stat_xact_user_tables"
                              " WHERE relid = 'cases'::regclass")
    return (row["n_tup_ins"], row["n_tup_upd"]) if row else (0, 0)


def _less(after: tuple[int, int], before: tuple[int, int]) -> tuple[int, int]:
    return after[0] - before[0], after[1] - before[1]


async def _case(conn: asyncpg.Connection, case_id: uuid.UUID) -> dict[str, Any]:
    row = await conn.fetchrow(
        "SELECT status, stage, urgency, emotion_on_arrival, outcome, emotion_defused,"
        " reopen_count, version FROM cases WHERE case_id = $1", case_id)
    assert row is not None
    return dict(row)


async def test_a_visit_resolved_at_the_window_is_written_once(settings: Settings) -> None:
    history = History(CENTER)
    quick = history.case(t(9), resident_id=None)  # Sunday 20 December, the weekend desk
    history.step(quick, "RequestHeard", t(9, 2), words="想问问高龄津贴怎么领")
    history.step(quick, "ConcernsNoted", t(9, 4), emotion="anxious", urgency="high",
                 needs_defusing=True)
    history.resolved(quick, t(9, 20))
    slow = history.case(t(9, 30), resident_id=None)
    history.step(slow, "RequestHeard", t(9, 31), words="医保报销材料不全")
    first = history.take()

    conn = await with_case_tables(settings)
    try:
        projection = CaseProjection()
        async with conn.transaction():
            before = await _counts(conn)
            await projection.apply(conn, first.envelopes)
            # Two rows, no second version of either.
            assert _less(await _counts(conn), before) == (2, 0)
        assert await _case(conn, quick) == {
            "status": "resolved", "stage": "resolved", "urgency": "high",
            "emotion_on_arrival": "anxious", "outcome": "resolved", "emotion_defused": True,
            "reopen_count": 0, "version": 4}
        heard = await conn.fetchrow("SELECT jsonb_typeof(payload) AS kind, payload::text"
                                    " FROM case_timeline WHERE case_id = $1 AND version = 2",
                                    quick)
        assert heard["kind"] == "object"  # jsonb, as the event said it
        assert json.loads(heard["payload"]) == first.envelopes[1].payload

        # The next batch: a step of a case opened before is an update of its row.
        history.step(slow, "ConcernsNoted", t(9, 40), emotion="calm", urgency="normal",
                     needs_defusing=False)
        async with conn.transaction():
            before = await _counts(conn)
            await projection.apply(conn, history.take().envelopes)
            assert _less(await _counts(conn), before) == (0, 1)
        assert (await _case(conn, slow))["stage"] == "concerns_noted"

        # A case whose row is there but whose opening the timeline lacks (its steps written
        # by hand, say) keeps its row, and the batch's later steps are applied to it.
        again = History(CENTER)
        kept = again.case(t(10), resident_id=None)
        again.step(kept, "RequestHeard", t(10, 1), words="问低保")
        async with conn.transaction():
            await projection.apply(conn, again.envelopes[:1])
        await conn.execute("DELETE FROM case_timeline WHERE case_id = $1", kept)
        await conn.execute("UPDATE cases SET counter_id = 'window-9' WHERE case_id = $1", kept)
        async with conn.transaction():
            await projection.apply(conn, again.envelopes)
        row = await conn.fetchrow("SELECT counter_id, stage, version FROM cases"
                                  " WHERE case_id = $1", kept)
        assert dict(row) == {"counter_id": "window-9", "stage": "heard", "version": 2}
    finally:
        await conn.close()


async def test_the_cases_table_keeps_room_for_updates_beside_the_row(
        settings: Settings) -> None:
    """fillfactor 75, set once: later starts find it set and leave the table alone."""
    conn = await with_case_tables(settings)
    try:
        for statement in DDL:  # a second start
            await conn.execute(statement)
        options = await conn.fetchval(
            "SELECT reloptions FROM pg_class WHERE oid = 'cases'::regclass")
        assert options == ["fillfactor=75"]
        indexes = {r["indexname"] for r in await conn.fetch(
            "SELECT indexname FROM pg_indexes WHERE schemaname = $1 AND tablename = 'cases'",
            settings.schema_for("intake"))}
        assert "cases_center_due" in indexes and "cases_center_status" not in indexes
    finally:
        await conn.close()


class Counting(asyncpg.Connection):  # type: ignore[misc]
    """Remembers each INSERT's and UPDATE's table and how many parameters it was sent with;
    a statement of several parts (``WITH``) as the tables it writes."""

    sent: list[tuple[str, int]]

    async def fetch(self, query: str, *args: Any, **kwargs: Any) -> list[asyncpg.Record]:
        if query.startswith("INSERT INTO"):
            self.sent.append((query.split()[2].strip('"'), len(args)))
        elif query.startswith("WITH"):
            written = re.findall(r'(?:INSERT INTO|UPDATE) "?(\w+)"?', query)
            self.sent.append(("+".join(w for w in written if w != "SET"), len(args)))
        return await super().fetch(query, *args, **kwargs)

    async def execute(self, query: str, *args: Any, **kwargs: Any) -> str:
        if query.startswith("UPDATE"):
            self.sent.append((query.split()[1].strip('"'), len(args)))
        return await super().execute(query, *args, **kwargs)


async def test_a_batch_of_visits_goes_to_postgresql_as_one_parameter_a_table(
        settings: Settings) -> None:
    """Sunday 20 December at the weekend desk, then a step on New Year's Eve (23:30 in
    Shanghai): each batch's new cases and timeline steps are sent as one array of a
    composite each (``bulk.RowType``), and the changes to cases of earlier batches too
    (``bulk.patch_type``), not one array a column (28, 11 and ~20 parameters, each of their
    values checked by asyncpg in Python), all three in one statement (a round trip, where a
    middle rate's batch of one or two events paid one a table); the rows read as the events
    said them."""
    history = History(CENTER)
    opened = [history.case(t(9, i), resident_id=None) for i in range(3)]
    for i, case in enumerate(opened):
        history.step(case, "RequestHeard", t(9, 10 + i), words="想问问高龄津贴怎么领")
    history.step(opened[0], "DeadlineNoted", t(9, 20), deadline_id=str(uuid.uuid4()),
                 due_on="2028-02-29", description="材料补交截止")
    first = history.take()
    history.step(opened[1], "ConcernsNoted", "2026-12-31T23:30:00+08:00", emotion="upset",
                 urgency="high", needs_defusing=True)
    second = history.take()

    conn: Counting = await asyncpg.connect(settings.database_url, connection_class=Counting)
    conn.sent = []
    try:
        await make_tables(conn, settings.schema_for("intake"), DDL)
        projection = CaseProjection()
        async with conn.transaction():
            await projection.apply(conn, first.envelopes)
        async with conn.transaction():
            await projection.apply(conn, second.envelopes)
        # Each batch one statement (its timeline, new cases and patches: an array each,
        # and how many steps it has), where there were a statement each.
        assert conn.sent == [("case_timeline+cases+cases", 4),
                             ("case_timeline+cases+cases", 4)]
        rows = {r["case_id"]: dict(r) for r in await conn.fetch(
            "SELECT case_id, stage, urgency, next_deadline::text, version FROM cases")}
        assert rows[opened[0]] == {"case_id": opened[0], "stage": "heard", "urgency": None,
                                   "next_deadline": "2028-02-29", "version": 3}
        assert rows[opened[1]]["urgency"] == "high" and rows[opened[1]]["version"] == 3
        steps = await conn.fetch("SELECT payload FROM case_timeline ORDER BY position")
        assert [json.loads(r["payload"]) for r in steps] == [
            e.payload for e in [*first.envelopes, *second.envelopes]]
    finally:
        await conn.close()


async def test_the_cases_go_on_after_their_types_are_dropped_and_made_again(
        settings: Settings) -> None:
    """New Year's Eve, 23:30 in Shanghai: the operator drops a live type of the cases (the
    changes', not an old digest) and a replica's start makes it again (another oid). The
    running projection, whose UPDATE holds the old one, fails that batch once (redelivered),
    then applies it: not every batch after it dead-lettered."""
    history = History(CENTER)
    cases = [history.case(f"2026-12-31T23:{m}:00+08:00", resident_id=None) for m in (10, 20)]
    first = history.take()
    history.step(cases[0], "RequestHeard", "2026-12-31T23:25:00+08:00", words="问明年的补贴")
    second = history.take()
    history.step(cases[1], "RequestHeard", "2026-12-31T23:30:00+08:00", words="问2028年的补贴")
    third = history.take()
    conn = await with_case_tables(settings)
    admin = await with_case_tables(settings)
    try:
        projection = CaseProjection()
        for batch in (first, second):  # the second prepares the UPDATE with the type
            async with conn.transaction():
                await projection.apply(conn, batch.envelopes)
        await admin.execute(f'DROP TYPE "{CASE_CHANGE.name}"')
        for statement in DDL:
            await admin.execute(statement)
        with pytest.raises(asyncpg.PostgresError):
            async with conn.transaction():
                await projection.apply(conn, third.envelopes)
        async with conn.transaction():  # the redelivery
            await projection.apply(conn, third.envelopes)
        assert [(await _case(conn, c))["stage"] for c in cases] == ["heard", "heard"]
    finally:
        await conn.close()
        await admin.close()

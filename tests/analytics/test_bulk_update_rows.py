"""A read model's batch of changes to earlier rows, of several shapes, written in one
statement (``shared.readmodels.bulk.update_rows``) leaves each row as one UPDATE of its own
would: columns a change does not name keep their value, NULLs set are set, expressions run."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from shared.readmodels import bulk

EXPRESSIONS = {"n": "t.n + s.n", "note": "COALESCE(t.note, s.note)"}


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    schema = f"bulk_{secrets.token_hex(3)}"
    c = await asyncpg.connect(database_url)
    await c.execute(f'CREATE SCHEMA "{schema}"; SET search_path TO "{schema}"')
    try:
        yield c
    finally:
        await c.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await c.close()


async def rows_after(conn: asyncpg.Connection, table: str,
                     patches: dict[uuid.UUID, dict[str, Any]], one_by_one: bool
                     ) -> list[dict[str, Any]]:
    await conn.execute(
        f"CREATE TABLE {table} (k uuid PRIMARY KEY, stage text, status text, n int NOT NULL,"
        " note text, closed_at timestamptz, stamped boolean NOT NULL DEFAULT false)")
    await conn.executemany(
        f"INSERT INTO {table} (k, stage, status, n, note, closed_at)"
        " VALUES ($1, 'opened', 'open', 1, $2, '2025-03-03 09:00+08')",
        [(k, "kept" if i % 2 else None) for i, k in enumerate(sorted(patches))])
    tables = bulk.Tables()
    if one_by_one:  # each patch alone: one shape, one plain UPDATE
        for k, patch in patches.items():
            await bulk.update_rows(conn, tables, table, "k", {k: patch}, EXPRESSIONS,
                                   also="stamped = true")
    else:
        await bulk.update_rows(conn, tables, table, "k", patches, EXPRESSIONS,
                               also="stamped = true")
    return [dict(r) for r in await conn.fetch(f"SELECT * FROM {table} ORDER BY k")]


async def test_changes_of_several_shapes_in_one_statement_leave_what_each_update_would(
        conn: asyncpg.Connection) -> None:
    keys = sorted(uuid.uuid4() for _ in range(6))
    patches: dict[uuid.UUID, dict[str, Any]] = {
        keys[0]: {"stage": "heard", "n": 0},
        keys[1]: {"stage": "resolved", "status": "resolved", "n": 0},
        keys[2]: {"status": "open", "closed_at": None, "n": 2},  # a reopening: NULL is set
        keys[3]: {"note": "first", "n": 0},  # COALESCE keeps a note already there
        keys[4]: {"note": "first", "n": 0, "stage": None},
        keys[5]: {},  # nothing to change
    }
    one_statement = await rows_after(conn, "together", patches, one_by_one=False)
    alone = await rows_after(conn, "alone", patches, one_by_one=True)
    assert one_statement == alone
    assert [r["n"] for r in one_statement] == [1, 1, 3, 1, 1, 1]
    assert one_statement[2]["closed_at"] is None and one_statement[0]["closed_at"] is not None
    assert [r["stamped"] for r in one_statement] == [True] * 5 + [False]


#: The test table's patches as one composite array (``bulk.patch_type``).
PATCH = bulk.patch_type("test_patch", ("k", "uuid"), (
    ("stage", "text"), ("status", "text"), ("n", "integer"), ("note", "text"),
    ("closed_at", "timestamptz")))


async def test_changes_sent_as_one_array_of_a_patch_type_leave_what_each_update_would(
        conn: asyncpg.Connection) -> None:
    """Monday 28 February 2028 into 29 February: the same patches, sent as one array of a
    composite with their mask, leave the rows one UPDATE per patch leaves."""
    keys = sorted(uuid.uuid4() for _ in range(5))
    at = datetime(2028, 2, 29, 0, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
    patches: dict[uuid.UUID, dict[str, Any]] = {
        keys[0]: {"stage": "heard", "n": 0},
        keys[1]: {"status": "open", "closed_at": None, "n": 2},
        keys[2]: {"note": "first", "n": 0, "stage": None},
        keys[3]: {"closed_at": at, "status": "resolved", "n": 0},
        keys[4]: {},
    }
    await conn.execute(PATCH.ddl)
    alone = await rows_after(conn, "alone", patches, one_by_one=True)
    await conn.execute(
        "CREATE TABLE typed (k uuid PRIMARY KEY, stage text, status text, n int NOT NULL,"
        " note text, closed_at timestamptz, stamped boolean NOT NULL DEFAULT false)")
    await conn.executemany(
        "INSERT INTO typed (k, stage, status, n, note, closed_at)"
        " VALUES ($1, 'opened', 'open', 1, $2, '2025-03-03 09:00+08')",
        [(k, "kept" if i % 2 else None) for i, k in enumerate(sorted(patches))])
    changed = await bulk.update_rows(conn, bulk.Tables(), "typed", "k", patches,
                                     EXPRESSIONS, also="stamped = true", row_type=PATCH)
    assert changed == 4
    assert [dict(r) for r in await conn.fetch("SELECT * FROM typed ORDER BY k")] == alone
    with pytest.raises(ValueError, match="no field 'colour'"):
        await bulk.update_rows(conn, bulk.Tables(), "typed", "k", {keys[0]: {"colour": 1}},
                               row_type=PATCH)


def test_a_patch_type_wider_than_its_mask_is_refused() -> None:
    with pytest.raises(ValueError, match="63 columns"):
        bulk.patch_type("too_wide", ("k", "uuid"), [(f"c{i}", "text") for i in range(63)])

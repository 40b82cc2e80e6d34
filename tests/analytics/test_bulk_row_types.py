"""A live batch's rows sent as one array of a composite type (``bulk.RowType``): one
parameter, the rows ``INSERT ... unnest`` of column arrays leaves, and a type that outlives
a second start and a rebuild's switch (tables moved out of the live schema and in from a
staging schema that made its own type of the same name, then dropped), on the live
connection that had the statement prepared; and a live type dropped by mistake and made again
(another oid) costs a running worklist one failed batch, not its events dead-lettered."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

import asyncpg
import pytest

from services.followup import projections
from shared.readmodels import bulk
from shared.settings import Settings
from tests.followup.story import at, center_day, key
from tests.followup.test_worklists import schedule
from tests.support import headers

ROW = bulk.RowType("visit_row", (("k", "uuid"), ("center_id", "text"), ("due_on", "date"),
                                 ("n", "integer"), ("note", "text"), ("at", "timestamptz")))
DDL = ["CREATE TABLE IF NOT EXISTS visits (k uuid PRIMARY KEY, center_id text NOT NULL,"
       " due_on date, n int NOT NULL, note text, at timestamptz,"
       " stamped timestamptz NOT NULL DEFAULT clock_timestamp())", ROW.ddl]


class Counting(asyncpg.Connection):  # type: ignore[misc]
    """Remembers how many parameters each INSERT was sent with."""

    sent: list[int]

    async def execute(self, query: str, *args: Any, **kwargs: Any) -> str:
        if query.startswith("INSERT"):
            self.sent.append(len(args))
        return await super().execute(query, *args, **kwargs)


@pytest.fixture
async def schemas(database_url: str) -> AsyncIterator[tuple[str, str, str]]:
    tag = secrets.token_hex(3)
    names = (f"rt_live_{tag}", f"rt_staging_{tag}", f"rt_retired_{tag}")
    admin = await asyncpg.connect(database_url)
    for name in names:
        await admin.execute(f'CREATE SCHEMA "{name}"')
    try:
        yield names
    finally:
        for name in names:
            await admin.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        await admin.close()


def rows(n: int, note: str | None) -> list[tuple[Any, ...]]:
    at = datetime(2026, 12, 20, 2, 0, tzinfo=UTC)  # Sunday 20 December, 10:00 in Shanghai
    return [(uuid.uuid4(), "SH-PD-HUAMU", date(2028, 1, 3) if i % 2 else None, i,
             note if i % 3 else None, at) for i in range(n)]


async def test_a_batch_goes_as_one_array_and_its_type_outlives_a_restart_and_a_switch(
        database_url: str, schemas: tuple[str, str, str]) -> None:
    live, staging, retired = schemas
    conn: Counting = await asyncpg.connect(
        database_url, connection_class=Counting,
        server_settings={"search_path": f'"{live}", public'})
    conn.sent = []
    plain = await asyncpg.connect(database_url,
                                  server_settings={"search_path": f'"{staging}", public'})
    try:
        for _ in range(2):  # a second start finds the type there
            for statement in DDL:
                await conn.execute(statement)
        batch = rows(7, "带材料")
        await bulk.insert_rows(conn, bulk.Tables(), "visits", ROW.columns, batch,
                               row_type=ROW)
        assert conn.sent == [1]
        # The same rows as column arrays leave the same table.
        for statement in DDL:
            await plain.execute(statement)
        await bulk.insert_rows(plain, bulk.Tables(), "visits", ROW.columns, batch)
        cols = ", ".join(ROW.columns)
        assert [tuple(r) for r in await conn.fetch(f"SELECT {cols} FROM visits ORDER BY k")] \
            == [tuple(r) for r in await plain.fetch(f"SELECT {cols} FROM visits ORDER BY k")]
        # A rebuild's switch: the live table out, the staging one in, staging dropped (with
        # its own type of the same name). The live connection goes on with its statement.
        await plain.execute(f'ALTER TABLE "{live}".visits SET SCHEMA "{retired}"')
        await plain.execute(f'ALTER TABLE "{staging}".visits SET SCHEMA "{live}"')
        await plain.execute(f'DROP SCHEMA "{staging}" CASCADE')
        later = rows(3, "补交")
        await bulk.insert_rows(conn, bulk.Tables(), "visits", ROW.columns, later,
                               row_type=ROW, conflict="(k) DO NOTHING")
        assert await conn.fetchval("SELECT count(*) FROM visits") == 10
        assert await conn.fetchval(
            "SELECT count(*) FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace"
            " WHERE t.typname = $1", ROW.name) == 1  # the live schema's, nothing else
    finally:
        await conn.close()
        await plain.close()


def test_a_new_shape_is_a_new_type() -> None:
    wider = bulk.RowType("visit_row", (*ROW.fields, ("channel", "text")))
    assert wider.name != ROW.name and wider.name.startswith("visit_row_")


async def test_a_type_dropped_by_mistake_and_made_again_costs_a_live_connection_one_batch(
        database_url: str, schemas: tuple[str, str, str]) -> None:
    """The operator drops the live digest instead of the old one, and a replica's start
    makes it again (another oid): a running replica's connection, whose statement holds the
    dropped oid, fails that batch (redelivered) and sends the next, not every one after it
    (each event dead-lettered in turn)."""
    live, _, _ = schemas
    conn = await asyncpg.connect(database_url,
                                 server_settings={"search_path": f'"{live}", public'})
    admin = await asyncpg.connect(database_url,
                                  server_settings={"search_path": f'"{live}", public'})
    try:
        for statement in DDL:
            await conn.execute(statement)
        await bulk.insert_rows(conn, bulk.Tables(), "visits", ROW.columns, rows(2, "a"),
                               row_type=ROW)
        await admin.execute(f'DROP TYPE "{ROW.name}"')
        for statement in DDL:
            await admin.execute(statement)
        batch = rows(3, "补交")
        with pytest.raises(asyncpg.PostgresError):
            await bulk.insert_rows(conn, bulk.Tables(), "visits", ROW.columns, batch,
                                   row_type=ROW)
        await bulk.insert_rows(conn, bulk.Tables(), "visits", ROW.columns, batch,
                               row_type=ROW)  # the redelivery
        assert await conn.fetchval("SELECT count(*) FROM visits") == 5
    finally:
        await conn.close()
        await admin.close()


async def test_the_worklist_goes_on_after_its_types_are_dropped_and_made_again(
        settings: Settings) -> None:
    """New Year's Eve, 23:30 in Shanghai: the operator drops the worklist's live types (not
    the old digest), a replica's start makes them again; the running worklist applies the
    next follow-up (one failed batch, its event tried alone) instead of dead-lettering it."""
    async with center_day(settings, at(2026, 12, 31, 15, 30), with_intake=False) as center:
        api = center.followup

        async def moved_to_the_new_year() -> None:
            made = await schedule(api, due_on="2027-02-10", assigned_clerk="clerk-017")
            r = await api.post(f"/followups/{made['id']}/reschedule", headers=headers(key()),
                               json={"due_on": "2028-01-28", "reason": "居民约春节后"})
            assert r.status_code == 200, r.text
            got = (await api.get(f"/followups/{made['id']}",
                                 params={"after": r.json()["position"]})).json()
            # 2028's Spring Festival on a provisional calendar: the next working day.
            assert (got["due_on"], got["version"]) == ("2028-01-31", 2), got

        await moved_to_the_new_year()
        live = settings.schema_for("followup")
        conn = await asyncpg.connect(settings.database_url,
                                     server_settings={"search_path": f'"{live}", public'})
        try:
            for row_type in (projections.SCHEDULED_ROW, projections.FOLLOWUP_CHANGE):
                await conn.execute(f'DROP TYPE "{row_type.name}"')
            for statement in projections.DDL:
                await conn.execute(statement)
        finally:
            await conn.close()
        await moved_to_the_new_year()

"""A rebuild's switch keeps the live rows of a ``kept_live`` table the log cannot give it
(a close's mark of its month), each numbered column taken anew (``kept_numbered``). The
table's columns were read as one string joined with ", " and split on it again: a column
whose name holds ", " was cut in two, matched no numbered name, and its row kept its live
number, on the wrong side of every rebuilt one."""

from __future__ import annotations

import asyncpg

from shared.analytics.rebuild import Rebuild
from shared.readmodels.readmodel import ReadModel
from shared.settings import Settings


async def test_a_kept_mark_in_a_column_named_with_a_comma_goes_back_before_the_rebuilt_notes(
        settings: Settings) -> None:
    model = ReadModel(
        service="feedback", consumer="kept-columns", handler=lambda s: None, ddl=[],
        subjects=lambda s: [], kept_live=frozenset({"marks"}),
        kept_numbered={"marks": {"counted, through": None, "seq": "noted"}})
    live, retired = settings.schema_for("feedback"), f"{settings.schema_prefix}retired"
    conn = await asyncpg.connect(settings.database_url)
    try:
        for schema in (live, retired):
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            await conn.execute(
                f'CREATE TABLE {schema}.marks (month text PRIMARY KEY, "counted, through"'
                ' bigint, seq bigint, "label, as typed" text)')
        await conn.execute(f"CREATE SEQUENCE {live}.noted")
        await conn.execute(f"SELECT setval('{live}.noted', 40)")  # the rebuilt notes
        await conn.execute(f"INSERT INTO {retired}.marks VALUES ('2026-12', 1000, 7,"
                           " 'December, closing')")
        rebuild = Rebuild(settings, model)
        rebuild._conn = conn
        await rebuild._live_rows_kept(retired, live, {"marks": "r"})
        kept = await conn.fetchrow(f"SELECT * FROM {live}.marks")
        assert dict(kept) == {"month": "2026-12", "counted, through": 0, "seq": 41,
                              "label, as typed": "December, closing"}
    finally:
        await conn.close()

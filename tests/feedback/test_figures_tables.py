"""The figures' fact tables as the projection's DDL leaves them (the consumer's own costs:
rows of earlier batches updated beside themselves)."""

from __future__ import annotations

import asyncpg

from services.feedback.figures.projection import DDL, FiguresProjection
from shared.readmodels.readmodel import make_tables
from shared.settings import Settings


async def test_the_fact_tables_updated_most_keep_room_beside_each_row(
        settings: Settings) -> None:
    """fillfactor 75 on the cases, surveys and follow-ups the figures update batch after
    batch, set once: a second start finds it set and leaves the tables alone."""
    conn = await asyncpg.connect(settings.database_url)
    try:
        schema = settings.schema_for("feedback")
        for _ in range(2):  # a first start, then a second
            await make_tables(conn, schema, DDL)
        options = {r["relname"]: r["reloptions"] for r in await conn.fetch(
            "SELECT relname, reloptions FROM pg_class WHERE relnamespace = $1::regnamespace"
            " AND relname = ANY($2::text[])", schema,
            ["fig_cases", "fig_surveys", "fig_followups", "fig_visits"])}
        assert options == {"fig_cases": ["fillfactor=75"], "fig_surveys": ["fillfactor=75"],
                           "fig_followups": ["fillfactor=75"], "fig_visits": None}
    finally:
        await conn.close()


def test_the_figures_consumer_asks_statistics_of_the_tables_it_reads_by_key() -> None:
    """Its ``= ANY($1)`` reads, prepared while the tables were empty, scanned every row."""
    made = " ".join(DDL)
    assert FiguresProjection.analyzed
    assert all(f"CREATE TABLE IF NOT EXISTS {t} " in made for t in FiguresProjection.analyzed)

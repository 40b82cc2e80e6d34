"""The counts per center and day (``services/feedback/figures/totals.py``) checked against the
fact rows they stand for: what the projection kept equals the same counts taken over the fact
tables, and every figure read from them equals the figure counted over the rows."""

from __future__ import annotations

from datetime import date
from typing import Any

import asyncpg

from services.feedback.figures import FigureQuery, compute, totals
from services.feedback.figures.queries import SCANS, UPSET


def _nonzero(rows: list[asyncpg.Record]) -> dict[tuple[str, date], tuple[int, ...]]:
    out = {}
    for r in rows:
        counts = tuple(int(r[c]) for c in totals.COLUMNS)
        if any(counts):
            out[(r["center_id"], r["day"])] = counts
    return out


async def kept_totals(conn: asyncpg.Connection | asyncpg.Pool
                      ) -> dict[tuple[str, date], tuple[int, ...]]:
    """The counts the projection kept, per (center, day): no day without a count is kept
    (the table is the same whatever the batches were)."""
    rows = await conn.fetch(f"SELECT * FROM {totals.TABLE}")
    kept = _nonzero(rows)
    assert len(kept) == len(rows), "days with no count left kept"
    return kept


async def assert_totals_are_the_scans(conn: asyncpg.Connection | asyncpg.Pool,
                                      as_of: date) -> None:
    kept = await kept_totals(conn)
    assert kept, "no counts kept"
    assert kept == _nonzero(await conn.fetch(totals.counted_sql()))
    centers = sorted({center for center, _ in kept})
    queries: list[FigureQuery] = [
        FigureQuery(period=period, as_of=as_of, group_by=group_by, arrivals=arrivals)
        for period in ("day", "month", "all") for group_by in (("center_id",), ())
        for arrivals in (UPSET, ("anxious", *UPSET))]
    queries += [FigureQuery(period="month", as_of=day, date_from=min(d for _, d in kept),
                            date_to=as_of, filters=(("center_id", centers[0]),))
                for day in (as_of, min(d for _, d in kept))]
    for q in queries:
        by_day: list[dict[str, Any]] = await compute(conn, q)
        assert by_day, q
        assert by_day == await compute(conn, q, SCANS), q

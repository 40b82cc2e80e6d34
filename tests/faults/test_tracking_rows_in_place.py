"""A case's tracking row moves with every batch that applies one of its events: it is
rewritten beside itself on its page (a HOT update: no new entry in the primary key), the
table keeping room on each page for that."""

from __future__ import annotations

import uuid

from shared.bus.consumer import TRACKING_DDL
from shared.settings import Settings
from tests.support import schema_pool

#: ``Consumer._track``'s upsert of the tracking rows, the progress left out.
TRACK = (
    "INSERT INTO consumer_tracking (consumer, key, seq) SELECT $1, k, s FROM"
    " unnest($2::uuid[], $3::bigint[]) AS t(k, s) ON CONFLICT (consumer, key) DO UPDATE SET"
    " seq = EXCLUDED.seq, blocked_seq = CASE WHEN consumer_tracking.blocked_seq <="
    " EXCLUDED.seq THEN NULL ELSE consumer_tracking.blocked_seq END")


async def test_the_next_batch_of_a_morning_moves_each_case_row_on_its_own_page(
        settings: Settings) -> None:
    async with schema_pool(settings, "tracking_pages", TRACKING_DDL) as pool:
        # A morning's cases, opened batch after batch: the table's pages as they fill.
        cases = [uuid.uuid4() for _ in range(1_000)]
        for start in range(0, len(cases), 250):
            chunk = cases[start:start + 250]
            await pool.execute(TRACK, "intake-cases", chunk, [1] * len(chunk))
        pages = dict(await pool.fetch(
            "SELECT key, (ctid::text::point)[0] FROM consumer_tracking"))
        assert len(set(pages.values())) > 2  # rows on several full pages
        # The next batch: a step of every fifth case.
        moved = cases[::5]
        await pool.execute(TRACK, "intake-cases", moved, [2] * len(moved))
        after = dict(await pool.fetch(
            "SELECT key, (ctid::text::point)[0] FROM consumer_tracking WHERE key = ANY($1)",
            moved))
        assert {key: pages[key] for key in moved} == after
        # Applying the statements again (every start) changes nothing.
        async with pool.acquire() as conn:
            for statement in TRACKING_DDL:
                await conn.execute(statement)
            assert await conn.fetchval(
                "SELECT reloptions FROM pg_class WHERE oid = 'consumer_tracking'::regclass"
            ) == ["fillfactor=70"]

"""The figures of every center read from the counts per center and day, kept by the figures
projection as the fact rows change (a month of the whole city in centers x days rows): the
same counts as over the fact rows, live and rebuilt, in any batch size; every figure the same
as counted over the rows.

The history: ten visits over two centers across a month boundary with their surveys,
rectifications and follow-ups (``support.aftercare``), the bad-review week whose appeal was
upheld (its survey leaves the satisfaction figures), and the week of due dates."""

from __future__ import annotations

from datetime import date

from services.feedback.figures import DDL, FiguresProjection
from shared.analytics.replay import Replay
from shared.contracts import Envelope
from shared.readmodels.migrations import run_migrations
from shared.settings import Settings
from tests.analytics import test_bad_review_figures as bad_reviews
from tests.analytics import test_completion_figures as completion
from tests.analytics.support import HUAMU, aftercare, month_of_march_stories, publish
from tests.feedback.helpers import figures_schema, fold_figures
from tests.feedback.totals_check import assert_totals_are_the_scans, kept_totals


async def history(settings: Settings) -> list[Envelope]:
    march = month_of_march_stories()
    week = bad_reviews.stories()
    await publish(settings, [*march, *week],
                  [*aftercare(march), *bad_reviews.week(week), *completion.week()])
    async with Replay(settings) as replay:
        return [e async for batch in replay for e in batch.events]


async def test_the_counts_per_day_are_the_fact_rows_counted_live_and_rebuilt(
        settings: Settings) -> None:
    envelopes = await history(settings)
    kept = []
    for batch, bulk in ((1, False), (7, False), (3, True), (50, True)):
        async with figures_schema(settings, f"per_day_{batch}") as pool:
            await fold_figures(pool, settings, envelopes, batch, bulk)
            await assert_totals_are_the_scans(pool, date(2026, 3, 6))
            kept.append(await kept_totals(pool))
    assert all(k == kept[0] for k in kept)


async def test_fact_rows_kept_before_the_counts_per_day_fill_them_once(
        settings: Settings) -> None:
    """A read model built before ``fig_day_totals`` existed: its migration fills the counts
    from the fact rows, once (a second start adds nothing)."""
    envelopes = await history(settings)
    async with figures_schema(settings, "per_day_late") as pool:
        schema = f"{settings.schema_prefix}per_day_late"
        async with pool.acquire() as c, c.transaction():
            await FiguresProjection(settings.tz).apply(c, envelopes)
        live = await kept_totals(pool)
        await pool.execute("DROP TABLE fig_day_totals, fig_day_totals_filled")
        await run_migrations(pool, schema, DDL)
        await run_migrations(pool, schema, DDL)
        assert await kept_totals(pool) == live
        await assert_totals_are_the_scans(pool, date(2026, 3, 6))

        # Counts kept by a release that counted case 8's check, done after its due day while
        # the scheduler was down (never missed), on time: that day is counted again, once.
        assert await pool.execute(
            "UPDATE fig_day_totals SET followups_on_time = followups_on_time + 1"
            " WHERE center_id = $1 AND day = $2", HUAMU, date(2026, 3, 2)) == "UPDATE 1"
        await pool.execute("DROP TABLE IF EXISTS fig_day_totals_late_followups_recounted")
        await run_migrations(pool, schema, DDL)
        await run_migrations(pool, schema, DDL)
        assert await kept_totals(pool) == live

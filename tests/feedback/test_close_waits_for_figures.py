"""A supervisor's close of a month waits for the figures to count everything on the bus.

The close records the month's figures as the figures read model has them at that moment. An
event recorded within the month but not applied yet (its worker catching up after a restart,
stopped, held behind a database lock) was left out, and for good: it is not a late event
(recorded after the month), so no revision would ever count it. The scheduler's closes
already waited for the figures to catch up; a supervisor's did not. Now it waits a bounded
while, then answers 503 ``figures_catching_up`` with nothing recorded.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import asyncpg
import httpx

from services.feedback.figures import TABLES
from services.feedback.main import create_app
from shared.settings import Settings
from tests.feedback.helpers import Clock, KeptSender
from tests.feedback.test_visits_and_periods import May, month_row
from tests.support import TEST_CENTER, running, stream_envelopes, wait_until


async def test_a_month_is_not_closed_before_the_figures_counted_it(settings: Settings) -> None:
    quick = settings.model_copy(update={"read_wait_timeout_s": 1.0})
    clock = Clock(datetime.fromisoformat("2026-06-03T09:00:00+08:00"))
    app = create_app(quick, sender=KeptSender(), clock=clock)
    async with running(app) as client:
        async with figures_held(settings):
            await May().build().publish(settings)
            r = await client.post(f"/periods/{TEST_CENTER}/2026-05/close",
                                  headers={"Idempotency-Key": "close-may"})
            assert r.status_code == 503, r.text
            assert r.json()["error"]["code"] == "figures_catching_up"
            assert r.headers["Retry-After"] == "5"
            closes = [e for e in await stream_envelopes(settings) if e.type == "PeriodClosed"]
            assert closes == []  # nothing recorded

        # Counted: the same close (the same key) now records May with all its cases.
        await closed_once_counted(client)


@contextlib.asynccontextmanager
async def figures_held(settings: Settings) -> AsyncIterator[None]:
    """The figures worker is held: a lock on its tables that lets readers in and no writer
    (as a long report's or a migration's would), until the block ends."""
    holder = await asyncpg.connect(settings.database_url)
    tx = holder.transaction()
    await tx.start()
    try:
        schema = settings.schema_for("feedback")
        tables = ", ".join(f'"{schema}".{table.name}' for table in TABLES)
        await holder.execute(f"LOCK TABLE {tables} IN SHARE MODE")
        yield
    finally:
        await tx.rollback()
        await holder.close()


async def closed_once_counted(client: httpx.AsyncClient) -> dict[str, Any]:
    """A supervisor's close of May (key ``close-may``) is recorded once the figures counted
    it, and the month's report has its five cases; the close's answer."""
    answer: dict[str, Any] = {}

    async def closed() -> bool:
        r = await client.post(f"/periods/{TEST_CENTER}/2026-05/close",
                              headers={"Idempotency-Key": "close-may"})
        answer.update(r.json())
        return r.status_code in (200, 201)

    await wait_until(closed, timeout=30, what="May closed once counted")

    async def reported() -> bool:
        return "reported" in await month_row(client, "2026-05")

    await wait_until(reported, what="May's report")
    assert (await month_row(client, "2026-05"))["cases"] == 5
    return answer


async def test_a_close_retried_or_too_early_does_not_wait_for_the_figures(
        settings: Settings) -> None:
    """The supervisor's close of May went through, its answer was lost, and the board retries
    it under the same key while the figures worker is behind (held, as above): the retry
    answers the close as it was recorded. A close of June, not ended, is refused at once. Both
    were 503 ``figures_catching_up`` after the bounded wait."""
    quick = settings.model_copy(update={"read_wait_timeout_s": 1.0})
    clock = Clock(datetime.fromisoformat("2026-06-03T09:00:00+08:00"))
    app = create_app(quick, sender=KeptSender(), clock=clock)
    async with running(app) as client:
        may = May()
        history = may.build()
        await history.publish(settings)
        first = await closed_once_counted(client)
        async with figures_held(settings):
            may.case("june", "2026-06-02T10:00:00+08:00")  # the figures cannot count it yet
            await history.publish(settings)
            r = await client.post(f"/periods/{TEST_CENTER}/2026-05/close",
                                  headers={"Idempotency-Key": "close-may"})
            assert r.status_code == 200, r.text
            assert r.json()["position"] == first["position"]
            r = await client.post(f"/periods/{TEST_CENTER}/2026-06/close",
                                  headers={"Idempotency-Key": "close-june"})
            assert r.status_code == 409, r.text
            assert r.json()["error"]["details"]["rule"] == "period_not_ended"

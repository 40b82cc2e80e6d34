"""A step of a case the log holds twice is applied once by intake's cases projection.

The relay's message ids let the stream drop a republish within its duplicate window; one
after it (say, the stream's position restored from an older backup) reaches the consumer under
a new stream sequence, which its tracking cannot tell from a new event. The case's own
version can: the timeline holds one row per (case, version), and a step it had already
changes nothing, so a stale copy of a reopening cannot reopen a case resolved since, nor
count the reopening twice (before: ``status`` open again, ``reopen_count`` 2).
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from services.intake.projections import CaseProjection
from shared.contracts import Envelope
from shared.settings import Settings
from tests.feedback.helpers import History
from tests.intake.case_tables import with_case_tables

CENTER = "SH-PD-HUAMU"


def t(hour: int, minute: int = 0) -> str:
    return f"2026-03-02T{hour:02d}:{minute:02d}:00+08:00"


async def _case(conn: asyncpg.Connection, case_id: uuid.UUID) -> dict[str, Any]:
    row = await conn.fetchrow("SELECT status, outcome, reopen_count, version FROM cases"
                              " WHERE case_id = $1", case_id)
    assert row is not None
    return dict(row)


async def test_a_stale_copy_of_a_step_changes_nothing(settings: Settings) -> None:
    history = History(CENTER)
    case_id = history.case(t(9), resident_id=None)
    history.step(case_id, "RequestHeard", t(9, 5), words="想问问困难补助怎么申请")
    history.resolved(case_id, t(9, 30))
    reopened = history.step(case_id, "CaseReopened", t(10), reason="材料有误")
    resolved_again = history.resolved(case_id, t(10, 30), outcome="partly_resolved")
    events: list[Envelope] = history.envelopes

    conn = await with_case_tables(settings)
    try:
        projection = CaseProjection()
        async with conn.transaction():
            await projection.apply(conn, events)
        first = await _case(conn, case_id)
        assert first == {"status": "resolved", "outcome": "partly_resolved",
                         "reopen_count": 1, "version": resolved_again.aggregate_version}

        # The reopening again, alone, and then beside the resolution again in one batch.
        for batch in ([reopened], [reopened, resolved_again, reopened]):
            async with conn.transaction():
                await projection.apply(conn, batch)
            assert await _case(conn, case_id) == first, batch
        steps = await conn.fetchval("SELECT count(*) FROM case_timeline WHERE case_id = $1",
                                    case_id)
        assert steps == len(events)

        # A batch holding a step twice, the first time the case is seen: applied once.
        other = History(CENTER)
        other_id = other.case(t(11), resident_id=None)
        other.resolved(other_id, t(11, 10))
        again = other.step(other_id, "CaseReopened", t(11, 20), reason="居民说没解决")
        async with conn.transaction():
            await projection.apply(conn, [*other.envelopes, again])
        assert (await _case(conn, other_id))["reopen_count"] == 1
    finally:
        await conn.close()

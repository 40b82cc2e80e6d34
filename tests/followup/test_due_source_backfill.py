"""Follow-up's rules keep a due source ``sixstep ops backfill`` filled in, also when they write
back a case they read before it did."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

from services.followup.consumer import CASE_REF_COLUMNS, DDL, _CaseRefs
from shared.readmodels import bulk
from shared.settings import Settings
from tests.support import schema_pool


async def test_a_backfilled_due_source_outlives_the_batch_that_read_the_case_before_it(
        settings: Settings) -> None:
    """A case read before ``due_source`` existed (NULL): the backfill gives it ``promised``
    while the rules hold the row as read before, to write the case's urgency noted a moment
    later. The rules wrote their NULL over it; now a filled source stays (every due date the
    rules read names its own)."""
    case = uuid.uuid4()
    row = dict.fromkeys(CASE_REF_COLUMNS) | {
        "case_id": case, "center_id": "SH-PD-HUAMU", "clerk_id": "clerk-017",
        "counter_id": "window-3", "service_item": "SA-HARDSHIP-SUBSIDY", "status": "open",
        "opened_at": datetime(2026, 12, 18, 1, 30, tzinfo=UTC), "deadline_close": False,
        "due_on": date(2027, 1, 15), "due_basis": "provisional"}
    tables = bulk.Tables()
    async with schema_pool(settings, "followup_due_sources", DDL) as pool, \
            pool.acquire() as conn:
        first = _CaseRefs({case: dict(row)})
        first.dirty.add(case)
        await first.save(conn, tables)
        read_before = _CaseRefs({case: dict(row, urgency="critical")})
        await conn.execute("UPDATE case_refs SET due_source = 'promised' WHERE case_id = $1",
                           case)
        read_before.dirty.add(case)
        await read_before.save(conn, tables)
        assert (await conn.fetchval("SELECT due_source FROM case_refs WHERE case_id = $1",
                                    case)) == "promised"
        assert (await conn.fetchval("SELECT urgency FROM case_refs WHERE case_id = $1",
                                    case)) == "critical"

"""Feedback's intake follower reads what a batch needs before it decides in one round trip:
its cases' rows and the residents it may ask or must respect, both locked."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from services.feedback.consumer import DDL, _read
from shared.contracts import Envelope
from shared.settings import Settings
from tests.support import CountingConnection, bare_envelope, schema_pool

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)


def _event(type_: str, case_id: uuid.UUID | None = None,
           payload: dict[str, Any] | None = None) -> Envelope:
    return bare_envelope(type_, NOW, case_id=case_id, payload=payload)


async def test_a_batch_reads_its_cases_and_the_residents_it_may_ask_in_one_statement(
        settings: Settings) -> None:
    async with schema_pool(settings, "feedback_reads", DDL) as pool:
        resolved, heard, opened = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        asked, listening, newcomer, refusing = (uuid.uuid4() for _ in range(4))
        async with pool.acquire() as conn:
            await conn.executemany(
                "INSERT INTO intake_cases (case_id, center_id, counter_id, clerk_id, channel,"
                " service_item, resident_id, served_by) VALUES ($1, 'SH-PD-HUAMU', 'window-3',"
                " 'clerk-017', 'counter', 'SA-HARDSHIP-SUBSIDY', $2, '{clerk-017}')",
                [(resolved, asked), (heard, listening)])
            await conn.executemany(
                "INSERT INTO residents (resident_id, surveys, erased, changed_at)"
                " VALUES ($1, $2, false, $3)",
                [(asked, True, NOW), (listening, True, NOW), (newcomer, False, NOW),
                 (refusing, True, NOW)])
            events = [
                _event("CaseResolved", resolved),
                _event("RequestHeard", heard),
                _event("CaseOpened", opened, {"resident_id": str(newcomer)}),
                _event("CaseResolved", opened),
                _event("ConsentChanged", None, {"resident_id": str(refusing),
                                                "surveys": False}),
            ]
            counting = CountingConnection(conn)
            async with conn.transaction():
                cases, known = await _read(counting, events)  # type: ignore[arg-type]
                async with pool.acquire() as other:  # another batch waits for these rows
                    for table, column, key in (("intake_cases", "case_id", resolved),
                                               ("residents", "resident_id", asked),
                                               ("residents", "resident_id", newcomer)):
                        with pytest.raises(asyncpg.LockNotAvailableError):
                            await other.execute(f"SELECT 1 FROM {table} WHERE {column} = $1"
                                                " FOR UPDATE NOWAIT", key)
                    await other.execute("SELECT 1 FROM residents WHERE resident_id = $1"
                                        " FOR UPDATE NOWAIT", listening)
        assert counting.statements == 1, "one round trip before the follower decides"
        assert set(cases) == {resolved, heard}, "the rows there are of the batch's cases"
        assert cases[resolved]["resident_id"] == asked and cases[heard]["served_by"] == [
            "clerk-017"]
        assert known.consent(asked).surveys, "the resident of a case it resolves"
        assert known.consent(newcomer).surveys is False, "of a case opened and resolved in it"
        assert known.consent(refusing).surveys, "named by a consent event: as stored"
        assert known.flags(listening) is None, "nothing of theirs is resolved in the batch"

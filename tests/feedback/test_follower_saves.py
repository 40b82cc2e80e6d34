"""Feedback's intake follower writes what a batch changed of its cases in one statement: the
rows one INSERT ... ON CONFLICT per case left, without one execution per case."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from services.feedback.consumer import DDL, IntakeFollower, backfill_help_work, save_cases
from shared.contracts import Envelope
from shared.settings import Settings
from tests.support import bare_envelope, schema_pool

MORNING = datetime(2026, 12, 21, 1, 30, tzinfo=UTC)  # Monday 09:30 in Shanghai


class Statements:
    """A connection that remembers which of its methods a handler called."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.called: list[str] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.conn, name)

        async def called(*args: Any, **kwargs: Any) -> Any:
            self.called.append(name)
            return await method(*args, **kwargs)
        return called


def opened(case_id: uuid.UUID, clerk: str, window: str, at: datetime) -> Envelope:
    return bare_envelope("CaseOpened", at, case_id=case_id, actor=clerk, payload={
        "counter_id": window, "clerk_id": clerk, "channel": "counter",
        "service_item": "SA-HARDSHIP-SUBSIDY", "resident_id": None})


async def test_a_morning_of_cases_is_kept_in_one_statement_with_who_served_each(
        settings: Settings) -> None:
    earlier, busy, quiet = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    follower = IntakeFollower(feedback=None)  # type: ignore[arg-type]  # nothing resolved
    async with schema_pool(settings, "feedback_saves", DDL) as pool:
        async with pool.acquire() as conn:
            # Yesterday's batch: a case opened at window 3, served by nobody else yet.
            async with conn.transaction():
                await follower.apply(conn, [opened(earlier, "clerk-017", "window-3",
                                                   MORNING - timedelta(days=1))])
            later = MORNING + timedelta(minutes=40)
            batch = [
                opened(busy, "clerk-021", "window-5", MORNING),
                bare_envelope("ActionTaken", MORNING, case_id=busy, actor="clerk-033",
                              payload={"owner_clerk": "clerk-044"}),
                bare_envelope("GuidanceGiven", MORNING, case_id=earlier, actor="clerk-021",
                              payload={"service_item": "SA-UNEMPLOYMENT-REG"}),
                opened(quiet, "system:import", "window-1", MORNING),  # a worker: serves nobody
                bare_envelope("VisitRecorded", later, case_id=uuid.uuid4(), actor="clerk-017",
                              payload={"case_id": str(earlier), "counter_id": "window-2",
                                       "clerk_id": "clerk-017", "channel": "counter"}),
            ]
            watched = Statements(conn)
            async with conn.transaction():
                await follower.apply(watched, batch)  # type: ignore[arg-type]
            rows = {r["case_id"]: r for r in await conn.fetch("SELECT * FROM intake_cases")}
    assert "executemany" not in watched.called, "the batch's cases in one statement"
    assert rows[busy]["served_by"] == ["clerk-021", "clerk-033", "clerk-044"]
    assert rows[busy]["counter_id"] == "window-5" and rows[busy]["opened_at"] == MORNING
    assert rows[quiet]["served_by"] == [], "opened by a worker: served by nobody"
    back = rows[earlier]
    assert back["served_by"] == ["clerk-017", "clerk-021"]
    assert back["service_item"] == "SA-UNEMPLOYMENT-REG", "the guidance moved it"
    assert (back["present_at"], back["present_counter"], back["present_clerk"]) == (
        later, "window-2", "clerk-017"), "the resident came back about it at window 2"
    assert back["counter_id"] == "window-3" and back["opened_at"] == MORNING - timedelta(
        days=1), "what it was opened with stays"


async def test_a_backfilled_helper_outlives_the_batch_that_read_the_case_before_it(
        settings: Settings) -> None:
    """The upgrade's ``sixstep ops backfill`` adds supervisor-02, who did the case's help task
    in March, to its ``served_by`` while the live consumer holds the row as it read it before
    (a batch with clerk-021's guidance, committing a moment later). The batch wrote its list
    over the row's: the backfill was lost, and supervisor-02 could record the answer (代评).
    Now the batch's list is merged with the row's."""
    case = uuid.uuid4()
    follower = IntakeFollower(feedback=None)  # type: ignore[arg-type]  # nothing resolved
    async with schema_pool(settings, "feedback_backfill", DDL) as pool:
        async with pool.acquire() as conn:
            async with conn.transaction():
                await follower.apply(conn, [opened(case, "clerk-017", "window-3", MORNING)])
            row = "SELECT * FROM intake_cases WHERE case_id = $1"
            read_before = dict(await conn.fetchrow(row, case))
            done = bare_envelope("HelpTaskDone", MORNING, service="followup", case_id=case,
                                 actor="supervisor-02", payload={})
            async with conn.transaction():
                await backfill_help_work(conn, [done])
            read_before["served_by"] = [*read_before["served_by"], "clerk-021"]
            await save_cases(conn, [read_before])
            assert (await conn.fetchrow(row, case))["served_by"] == [
                "clerk-017", "supervisor-02", "clerk-021"]

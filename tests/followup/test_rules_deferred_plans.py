"""The rules plan a case's last follow-ups of a batch in one command at the end of the batch
(``Rules._schedule``, ``FollowUps.schedule_each``). That command is recorded before the
batch's own transaction (its ``rule_followups`` rows, written while the command is in
flight, its tracking) commits: a batch that fails after sending it, as a process killed
before the commit would, is applied again and must plan nothing twice, and what it
remembers must still let the next batch cancel the check. (A failed batch's plans are
answered before its transaction ends: the command is in the store when it is applied
again.)"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import pytest

from services.followup import consumer
from shared.settings import Settings
from tests.followup.story import SHANGHAI, center_day
from tests.support import wait_until

#: A Sunday, New Year's Eve late in Shanghai, a day of 2027 (provisional holidays), one of
#: 2028 (a year nobody published yet).
DAYS = [datetime(2026, 12, 20, 10, tzinfo=SHANGHAI), datetime(2026, 12, 31, 23, 30,
                                                              tzinfo=SHANGHAI),
        datetime(2027, 2, 10, 9, tzinfo=SHANGHAI), datetime(2028, 5, 2, 15, tzinfo=SHANGHAI)]


@pytest.mark.parametrize("day", DAYS, ids=lambda d: d.strftime("%Y-%m-%d"))
async def test_a_resolution_whose_batch_failed_after_its_check_was_planned_plans_it_once(
        settings: Settings, monkeypatch: pytest.MonkeyPatch, day: datetime) -> None:
    async with center_day(settings, day, consumer_batch=1) as center:
        followups = center.app.state.followups
        sent: list[int] = []
        each = followups.schedule_each

        def counted(plans: Any) -> Any:  # counted as it is sent
            sent.append(len(plans))
            return each(plans)

        followups.schedule_each = counted
        insert = consumer.bulk.insert_rows
        failed: list[str] = []

        async def fails_once(conn: Any, tables: Any, table: str, *args: Any,
                             **kwargs: Any) -> Any:
            if table == "rule_followups" and sent and not failed:
                failed.append(table)
                raise ConnectionError("gone between the plans' command and the commit")
            return await insert(conn, tables, table, *args, **kwargs)

        monkeypatch.setattr(consumer.bulk, "insert_rows", fails_once)
        case_id = await center.open_case(day)
        await center.step(case_id, "resolve", {
            "outcome": "resolved", "explanation": "已办结", "emotion_defused": True,
            "occurred_at": day.isoformat()})
        [check] = await center.followups_of(case_id, 1, "the post-resolution check")
        await center.settled()
        assert failed and len(sent) == 2, (failed, sent)  # sent, failed, applied again
        assert check["version"] == 1 and check["reason"] == "post_resolution_check"
        assert len(await center.followups_of(case_id, 1)) == 1
        # The worklist may show the check before the rules' batch, applied again, commits
        # what it remembers (the command is answered before that transaction ends): a
        # barrier on the rules' own row, then exactly one.
        remembered = "SELECT count(*) FROM rule_followups WHERE case_id = $1"

        async def kept() -> bool:
            return await center.app.state.pool.fetchval(
                remembered, uuid.UUID(case_id)) >= 1

        await wait_until(kept, what="the rules remembering the check")
        assert await center.app.state.pool.fetchval(remembered, uuid.UUID(case_id)) == 1

        # The next batch (a reopening) finds the check and cancels it.
        await center.step(case_id, "reopen", {"reason": "没有解决",
                                              "occurred_at": day.isoformat()})

        async def cancelled() -> bool:
            return (await center.get(check["follow_up_id"]))["status"] == "cancelled"

        await wait_until(cancelled, what="the check cancelled by the reopening")

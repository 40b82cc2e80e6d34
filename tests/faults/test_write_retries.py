"""A counter app that times out retries with the same Idempotency-Key; the retry can meet its
own first attempt in one group-commit batch. It still gets the first answer, position and all,
so that its ``?after=`` read waits for the right event."""

from __future__ import annotations

import asyncio

from services.intake import commands as c
from shared.settings import Settings
from tests.intake.test_log_guarantees import CENTER, write_side


async def test_a_retry_in_the_same_batch_as_its_first_attempt_gets_its_position(
        settings: Settings) -> None:
    async with write_side(settings) as side:
        opened = await side.intake.open_case(c.OpenCase(
            center_id=CENTER, counter_id="w1", clerk_id="clerk-1",
            service_item="SA-HARDSHIP-SUBSIDY"), "clerk-1", "open-retry-0001")
        first, retry = await asyncio.gather(*(
            side.intake.hear_request(opened.aggregate_id, c.HearRequest(words="低保的事"),
                                     "clerk-1", "hear-retry-0001") for _ in range(2)))
    assert not first.replayed and retry.replayed
    assert (retry.version, retry.position) == (first.version, first.position) == (2, 2)

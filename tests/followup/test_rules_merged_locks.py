"""Two rules replicas (``CONSUMER_PARTITIONS``), each merging the next batch while its own
batch's commands wait (``Rules.merges``): the merged batch takes its ``MEETS`` advisory locks
after the batch in hand took its own, out of the one statement's order that keeps two
transactions from waiting for each other in a circle. A merged batch never waits for such a
lock: one it cannot take at once hands it back (``_meet``, ``_WouldWait``), to be applied as
the next batch, holding nothing then."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

import pytest

from services.followup.domain import follow_up_id_for
from shared.bus.consumer import batch as batch_module
from shared.contracts import Envelope
from shared.settings import Settings
from tests.faults.test_tracking_after_effects import Msg
from tests.followup.story import center_day
from tests.followup.test_care_checks import _intake_event
from tests.followup.test_rules_merged import (
    Held,
    _applied,
    _items,
    _read_ahead,
    _resolved,
    _rules_consumer,
)
from tests.followup.test_rules_one_round import DAYS, _opened
from tests.support import wait_until


class _Refusals:
    """The merges handed back (``consumer.merge_refused``), as logged."""

    def __init__(self, log: Any) -> None:
        self.log, self.errors = log, cast(list[str], [])

    def info(self, event: str, **kw: Any) -> None:
        if event == "consumer.merge_refused":
            self.errors.append(kw.get("error", ""))
        self.log.info(event, **kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.log, name)


def _hold_plans(monkeypatch: pytest.MonkeyPatch, followups: Any, n: int) -> asyncio.Event:
    """The next ``n`` ``schedule_each`` (the batches in hand's) held until the event returned
    is set; the later ones as they are."""
    go = asyncio.Event()
    original = followups.schedule_each
    calls: list[int] = []

    def schedule_each(plans: Sequence[Any]) -> Any:
        calls.append(len(plans))
        return Held(original(plans), go) if len(calls) <= n else original(plans)

    monkeypatch.setattr(followups, "schedule_each", schedule_each)
    monkeypatch.setattr(followups, "held_calls", calls, raising=False)
    return go


@pytest.mark.parametrize("day", DAYS, ids=lambda d: d.strftime("%Y-%m-%d"))
async def test_two_replicas_merging_care_flags_never_wait_for_each_other_in_a_circle(
        settings: Settings, monkeypatch: pytest.MonkeyPatch, day: datetime) -> None:
    """Two replicas resolve a case each (shared locks on their residents' buckets), their
    checks' command waiting for its round; each reads ahead the other resident's care flag
    (on the resident's partition, another replica's) and merges it: an exclusive lock on
    the bucket the other replica holds. Had each merged flag waited for its lock, the two
    transactions waited for each other until PostgreSQL's deadlock detection refused one
    (``deadlock_timeout`` later, on both replicas). Now a merged batch never waits for such
    a lock: both flags are handed back at once, applied as the next batches, and both checks
    come early, high priority."""
    refusals = _Refusals(batch_module.log)
    monkeypatch.setattr(batch_module, "log", refusals)
    async with center_day(settings, day, with_intake=False) as center:
        a, _ = _rules_consumer(center)
        b, _ = _rules_consumer(center)
        b.name = "rules-merged-b"
        followups = center.app.state.followups
        go = _hold_plans(monkeypatch, followups, 2)
        r1, r2, c1, c2 = (uuid.uuid4() for _ in range(4))
        first_a = _items([_opened(c1, r1, day), _resolved(c1, 2, day)], 1)
        first_b = _items([_opened(c2, r2, day), _resolved(c2, 2, day)], 1)
        flag = {r: _items([_intake_event("CareNeedChanged", r, None, day,
                                         resident_id=str(r), more_care=True)], 3)
                for r in (r1, r2)}
        ahead_a, ahead_b = _read_ahead(a, []), _read_ahead(b, [])
        applying = [asyncio.ensure_future(_applied(a, center, first_a)),
                    asyncio.ensure_future(_applied(b, center, first_b))]
        try:
            async def both_in_hand() -> bool:
                return len(followups.held_calls) >= 2 or any(t.done() for t in applying)
            await wait_until(both_in_hand, timeout=20, what="both batches' plans in flight")
            # Both batches hold their locks and wait for their answers: each is given the
            # other resident's flag to merge.
            for consumer, ahead, item in ((a, ahead_a, flag[r2][0]), (b, ahead_b, flag[r1][0])):
                ahead.append(item.msg)
                consumer._decoded_ahead[id(item.msg)] = item
                consumer._ahead_grew.set()

            async def handed_back() -> bool:
                return bool(ahead_a) or bool(ahead_b) or any(t.done() for t in applying)
            await wait_until(handed_back, timeout=30, what="a merged flag handed back")
        finally:
            go.set()
            await asyncio.gather(*applying, return_exceptions=True)
        for t in applying:
            t.result()
        assert not [e for e in refusals.errors if "Deadlock" in e], refusals.errors
        # Each refusal counted where /metrics and /ops/consumers read it, not only logged.
        assert a.stats.merges_refused + b.stats.merges_refused == len(refusals.errors)
        assert [cast(Msg, i.msg).answer for i in first_a + first_b] == ["ack"] * 4
        # The flags handed back, applied as the next batches.
        for consumer, ahead, item in ((a, ahead_a, flag[r2][0]), (b, ahead_b, flag[r1][0])):
            if ahead:
                assert ahead == [item.msg]
                _read_ahead(consumer, [])
                await _applied(consumer, center, [item])
        assert [cast(Msg, flag[r][0].msg).answer for r in (r1, r2)] == ["ack", "ack"]
        await center.settled()
        for first in (first_a, first_b):
            check = await center.get(str(follow_up_id_for(
                "resolution", cast(Envelope, first[1].envelope).event_id)))
            assert check["priority"] == "high", check

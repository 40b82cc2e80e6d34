"""Events a handler reads nothing of (``Handler.ignores``) are only tracked, in their case's order.

Follow-up's rules read nothing of a request heard or restated (a quarter of what they are
sent). The consumer reads such an event no further than its head (its case, its service's
position), tracks it with the batch and never hands it to the handler; it still waits behind
an event of its case being retried, and is not tracked past it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import asyncpg

from shared.bus.consumer import TRACKING_DDL
from shared.contracts import Envelope
from shared.settings import Settings
from tests.intake.test_log_guarantees import open_and_hear, run_relay, write_side
from tests.support import consumer_running, intake_consumer, wait_until


class OpeningsOnly:
    """Reads openings only; the first case's opening fails on its first ``failures`` tries,
    with ``error`` (a bug's, or a statement's that ran out of time)."""

    ignores = frozenset({"RequestHeard"})

    def __init__(self, failing: uuid.UUID | None = None, failures: int = 0,
                 error: Exception | None = None) -> None:
        self.failing = failing
        self.failures = failures
        self.error = error or RuntimeError("not yet (a lock timeout, a restarting database)")
        self.handed: list[tuple[uuid.UUID | None, str]] = []

    async def apply(self, conn: asyncpg.Connection, events: Sequence[Envelope]) -> None:
        if self.failures and any(e.case_id == self.failing for e in events):
            self.failures -= 1
            raise self.error
        self.handed.extend((e.case_id, e.type) for e in events)


async def _tracked(pool: asyncpg.Pool, consumer: str) -> dict[uuid.UUID, int]:
    rows = await pool.fetch("SELECT key, seq FROM consumer_tracking WHERE consumer = $1"
                            " AND blocked_seq IS NULL", consumer)
    return {r["key"]: r["seq"] for r in rows}


async def test_a_request_heard_is_tracked_behind_its_opening_without_reaching_the_rules(
        settings: Settings) -> None:
    async with write_side(settings) as side:
        cases = await open_and_hear(side, 3)  # CaseOpened, then RequestHeard, of each case
        await run_relay(settings, side, 6)
    handler = OpeningsOnly(failing=cases[0], failures=2)
    async with intake_consumer(settings, "ignoring", handler, TRACKING_DDL, batch=10,
                               max_deliver=5, backoff=(0.05, 0.15, 0.4, 0.6)) as consumer:
        pool = consumer.pool
        async with consumer_running(consumer):
            async def all_tracked() -> bool:
                return consumer.stats.applied == 6
            await wait_until(all_tracked, timeout=20, what="every event applied or tracked")
            # Each case tracked at its last event, the request heard: none skipped, the
            # first case's opening applied after its retries, not passed by its request.
            tracked = await _tracked(pool, "ignoring")
        assert sorted(handler.handed) == sorted((case, "CaseOpened") for case in cases)
        # The stream: each case's opening, then its request heard (sequences 1 to 6).
        assert tracked == {cases[0]: 2, cases[1]: 4, cases[2]: 6}
        assert consumer.stats.retried >= 1 and consumer.stats.dead_lettered == 0


async def test_an_isolation_pass_only_tracks_the_events_the_handler_ignores(
        settings: Settings) -> None:
    """A pass applying one event at a time (a batch ran out of time) gives the handler none
    of the ignored events either: it had only their heads, and a handler reading one would
    fail on it (the rules fold every event they are handed)."""
    async with write_side(settings) as side:
        cases = await open_and_hear(side, 2)
        await run_relay(settings, side, 4)
    handler = OpeningsOnly(failing=cases[0], failures=1, error=asyncpg.QueryCanceledError(
        "canceling statement due to statement timeout"))
    async with intake_consumer(settings, "ignoring_alone", handler, TRACKING_DDL, batch=10,
                               max_deliver=5, backoff=(0.05, 0.15, 0.4, 0.6),
                               isolate_after=0) as consumer:  # every pass event by event
        pool = consumer.pool
        async with consumer_running(consumer):
            async def all_tracked() -> bool:
                return consumer.stats.applied + consumer.stats.dead_lettered == 4
            await wait_until(all_tracked, timeout=20, what="every event applied or tracked")
            tracked = await _tracked(pool, "ignoring_alone")
        assert sorted(handler.handed) == sorted((case, "CaseOpened") for case in cases)
        assert tracked == {cases[0]: 2, cases[1]: 4}
        assert consumer.stats.dead_lettered == 0

"""A command a consumer's handler sends that the event store ends for its time (503
``statement_timed_out``: a lock on the case's row, a slow write) is the store's trouble, not
the event's: the batch goes back and is applied once the store takes the command, with no try
counted and nothing dead-lettered, as for the consumer's own statements.

Before: ``StatementTimedOut`` is a ``CommandError``, and the consumer counted it as a try like
a refused command: an event whose commands met the lock ``CONSUMER_MAX_DELIVER`` times was
dead-lettered, to be replayed by hand."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import asyncpg
from nats.js.errors import NotFoundError

from shared.bus.consumer import RETRYING_KEY, TRACKING_DDL
from shared.contracts import Envelope
from shared.kernel.errors import StatementTimedOut, Unavailable
from shared.settings import Settings
from tests.intake.test_log_guarantees import open_and_hear, run_relay, write_side
from tests.support import consumer_supervised, dead_letters, intake_consumer, wait_until


class PlansOnOpenings:
    """Sends a command for each opening; the first case's is ended by the store for its time
    on its first ``failures`` tries (what group commit answers then). With one try allowed
    (``max_deliver=1``), a try counted for it is a dead letter."""

    def __init__(self, failing: uuid.UUID, failures: int) -> None:
        self.failing = failing
        self.failures = failures
        self.planned: list[uuid.UUID | None] = []

    async def apply(self, conn: asyncpg.Connection, events: Sequence[Envelope]) -> None:
        if self.failures and any(e.case_id == self.failing for e in events):
            self.failures -= 1
            raise StatementTimedOut("a database statement of the write ran out of time",
                                    error="LockNotAvailable")
        self.planned += [e.case_id for e in events if e.type == "CaseOpened"]


async def test_a_rule_whose_command_timed_out_is_applied_later_not_dead_lettered(
        settings: Settings) -> None:
    async with write_side(settings) as side:
        cases = await open_and_hear(side, 2)
        await run_relay(settings, side, 4)
    handler = PlansOnOpenings(failing=cases[0], failures=2)
    async with intake_consumer(settings, "timed_cmd", handler, TRACKING_DDL, max_deliver=1,
                               backoff=(0.05, 0.1), isolate_after=10) as consumer, \
            consumer_supervised(consumer):
        async def applied() -> bool:
            return consumer.stats.applied == 4 or consumer.stats.dead_lettered > 0

        await wait_until(applied, timeout=10, what="every event applied")
        assert consumer.stats.dead_lettered == 0 and await dead_letters(settings) == []
        assert sorted(handler.planned) == sorted(cases)  # each case's opening, once
        assert consumer.stats.store_timeouts == 2  # handed back twice, no try counted


class VaultWithoutItsBucket:
    """Every batch refused as unavailable (the vault's key bucket missing: ``Unavailable``,
    retried without a try counted) until ``mended``."""

    def __init__(self) -> None:
        self.mended = False
        self.applied = 0

    async def apply(self, conn: asyncpg.Connection, events: Sequence[Envelope]) -> None:
        if not self.mended:
            raise Unavailable("the vault's key bucket 3 is missing")
        self.applied += len(events)


async def test_a_consumer_retrying_for_ever_says_so_on_its_durable_until_it_goes_through(
        settings: Settings) -> None:
    """A command refused as unavailable for as long as nobody puts it right (the vault's key
    bucket missing) is retried for ever, no try counted: its durable says since when and on
    what (``RETRYING_KEY``, which ``sixstep ops status`` prints and exits 2 on); once a
    batch goes through, it says so no more. Before, only the service's /ready and a metric
    said it, and ``ops status`` showed a consumer merely behind."""
    async with write_side(settings) as side:
        await open_and_hear(side, 1)
        await run_relay(settings, side, 2)
    handler = VaultWithoutItsBucket()
    async with intake_consumer(settings, "vault_cmd", handler, TRACKING_DDL, max_deliver=1,
                               backoff=(0.05, 0.1), isolate_after=100,
                               retrying_said_after_s=0.2) as consumer, \
            consumer_supervised(consumer):
        async def said() -> str | None:
            try:
                info = await consumer.nc.jetstream().consumer_info(settings.stream_name,
                                                                   consumer.name)
            except NotFoundError:  # not made yet
                return None
            return (info.config.metadata or {}).get(RETRYING_KEY)

        async def says_the_bucket() -> bool:
            return "Unavailable: the vault's key bucket 3 is missing" in (await said() or "")

        await wait_until(says_the_bucket, timeout=10, what="the durable saying it retries")
        handler.mended = True

        async def through() -> bool:
            return handler.applied == 2 and await said() is None

        await wait_until(through, timeout=10, what="applied, and said no more")
        assert consumer.stats.dead_lettered == 0 and await dead_letters(settings) == []

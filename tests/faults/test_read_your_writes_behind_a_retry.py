"""``?after=`` waits for every event up to the position, not only for the last one applied.

While an event of one case fails and is retried, later events of other cases go on and are
applied: the consumer's last position applied passes the held event. A read that waited for
that position returned before the held event (and the events of its case waiting behind it)
were in the read model: a caller's own write, just answered, missing from the read it asked
to see it in. The consumer now keeps what it holds back (``consumer_held``) and a position
counts as applied only below the lowest held.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import asyncpg
from nats.aio.client import Client as NATS

from shared.bus.consumer import (
    APPLIED_POSITION,
    TRACKING_DDL,
    Consumer,
    PermanentError,
    wait_for_position,
)
from shared.contracts import Envelope
from shared.settings import Settings
from tests.intake.test_log_guarantees import open_and_hear, run_relay, write_side
from tests.support import bus_connection, consumer_running, schema_pool, wait_until


class FailsOneCase:
    """Fails every event of ``case`` while ``failing`` (a database error for that case),
    or dead-letters its opening when ``poison``; applies everything else."""

    def __init__(self, case: uuid.UUID, poison: bool = False) -> None:
        self.case = case
        self.poison = poison
        self.failing = True
        self.positions: dict[tuple[uuid.UUID | None, str], int] = {}
        self.applied: set[tuple[uuid.UUID | None, str]] = set()

    async def apply(self, conn: asyncpg.Connection, events: Sequence[Envelope]) -> None:
        for e in events:
            self.positions[(e.case_id, e.type)] = e.position
            if e.case_id == self.case and self.failing:
                if self.poison and e.type == "CaseOpened":
                    raise PermanentError("this opening can never be applied")
                if not self.poison:
                    raise RuntimeError("lock timeout on this case's row")
        self.applied.update((e.case_id, e.type) for e in events)


async def applied_position(pool: asyncpg.Pool, consumer: str) -> int | None:
    return await pool.fetchval(APPLIED_POSITION, consumer, "intake")


def retrying(settings: Settings, nc: NATS, pool: asyncpg.Pool, name: str,
             handler: FailsOneCase, subjects: str = "*") -> Consumer:
    """A consumer that retries its failing events (almost) for ever, quickly."""
    return Consumer(settings=settings, nc=nc, pool=pool, name=name, handler=handler,
                    filter_subjects=[f"{settings.subject_prefix}.intake.{subjects}.*"],
                    batch=10, max_deliver=1000, backoff=(0.05,))


async def until_held(pool: asyncpg.Pool, name: str, case: uuid.UUID,
                     handler: FailsOneCase) -> None:
    """``case``'s two events held back behind its failing opening, the other two cases'
    four applied."""
    async def held() -> bool:
        count = await pool.fetchval("SELECT count(*) FROM consumer_held WHERE consumer = $1"
                                    " AND key = $2", name, case)
        return count == 2 and len(handler.applied) == 4
    await wait_until(held, timeout=20, what="the case's events held, the others applied")


async def test_a_position_behind_an_event_being_retried_is_not_applied_yet(
        settings: Settings) -> None:
    async with write_side(settings) as side:
        cases = await open_and_hear(side, 3)  # case 0 at positions 1-2, then 3-4, 5-6
        await run_relay(settings, side, 6)
    handler = FailsOneCase(cases[0])
    async with schema_pool(settings, "ryw", TRACKING_DDL) as pool, \
            bus_connection(settings, "ryw") as nc:
        consumer = retrying(settings, nc, pool, "ryw", handler)
        async with consumer_running(consumer):
            async def the_others_applied() -> bool:  # and committed: the last position
                return {(c, t) for c in cases[1:] for t in ("CaseOpened", "RequestHeard")} \
                    <= handler.applied and await pool.fetchval(
                        "SELECT position FROM consumer_progress WHERE consumer = 'ryw'"
                        " AND service = 'intake'") == max(handler.positions.values())
            await wait_until(the_others_applied, timeout=20, what="cases 1 and 2 applied")
            opened = handler.positions[(cases[0], "CaseOpened")]
            last = max(handler.positions.values())
            # The last position applied is past case 0's events; they are not in the view.
            assert (cases[0], "CaseOpened") not in handler.applied
            assert await applied_position(pool, "ryw") == opened - 1
            # Its own write (the opening, the words heard behind it) and every later one
            # are not applied yet: a bounded wait says so, as ?after= answers 504.
            for position in (opened, opened + 1, last):  # its words heard: written next
                assert not await wait_for_position(pool, "ryw", "intake", position, 0.2)

            handler.failing = False
            assert await wait_for_position(pool, "ryw", "intake", last, 20.0)
            assert {(cases[0], "CaseOpened"), (cases[0], "RequestHeard")} <= handler.applied
            assert consumer.stats.dead_lettered == 0


async def test_a_dead_lettered_event_holds_back_no_position(settings: Settings) -> None:
    async with write_side(settings) as side:
        cases = await open_and_hear(side, 2)
        await run_relay(settings, side, 4)
    handler = FailsOneCase(cases[0], poison=True)
    async with schema_pool(settings, "ryw_dead", TRACKING_DDL) as pool, \
            bus_connection(settings, "ryw_dead") as nc:
        # A PermanentError: dead-lettered at its first failure, whatever max_deliver says.
        consumer = retrying(settings, nc, pool, "ryw_dead", handler)
        async with consumer_running(consumer):
            async def done() -> bool:
                return consumer.stats.dead_lettered == 1 and len(handler.applied) == 3
            await wait_until(done, timeout=20, what="the opening dead-lettered, the rest applied")
            # Its case's words heard waited behind it (held), then were applied: nothing is
            # held any more, so the last position counts as applied (once the handler's
            # transaction commits: ``handler.applied`` grows inside it).
            last = max(handler.positions.values())

            async def last_applied() -> bool:
                return await applied_position(pool, "ryw_dead") == last
            await wait_until(last_applied, timeout=20, what="the last position applied")


async def test_an_event_removed_from_the_stream_while_retried_holds_back_no_position_for_good(
        settings: Settings) -> None:
    """The stream's limits (max_age, max_msgs, max_bytes) or an operator (``nats stream rmm``,
    a purge) take the events of a case while they are retried: they never come again, so
    they are neither applied nor dead-lettered. Their holds stayed, and every ``?after=`` of
    that log at or past them answered 504 for good, across restarts too (the case had no
    later event to lift its block, ``_released``)."""
    async with write_side(settings) as side:
        cases = await open_and_hear(side, 3)
        await run_relay(settings, side, 6)
    handler = FailsOneCase(cases[0])  # fails for ever: its tries would outlast the test
    async with schema_pool(settings, "ryw_gone", TRACKING_DDL) as pool, \
            bus_connection(settings, "ryw_gone") as nc:
        async with consumer_running(retrying(settings, nc, pool, "ryw_gone", handler)):
            await until_held(pool, "ryw_gone", cases[0], handler)
            last = max(handler.positions.values())
            assert not await wait_for_position(pool, "ryw_gone", "intake", last, 0.2)
            js = nc.jetstream()
            for seq in await pool.fetchval(
                    "SELECT array_agg(seq) FROM consumer_held WHERE consumer = 'ryw_gone'"):
                await js.delete_msg(settings.stream_name, seq)
            # Gone from the stream: nothing of case 0 will ever be applied, and nothing
            # else is waited for.
            assert await wait_for_position(pool, "ryw_gone", "intake", last, 30.0)
            assert (cases[0], "CaseOpened") not in handler.applied
            assert await pool.fetchval(
                "SELECT count(*) FROM consumer_held WHERE consumer = 'ryw_gone'") == 0


async def test_a_release_that_no_longer_takes_a_retried_event_lets_its_case_go_on(
        settings: Settings) -> None:
    """A new release of a read model takes fewer event types: its durable's filters change
    while an event of a type it no longer takes is retried. The server never hands that
    event back, and it was still on the stream, so the case's later events waited behind it
    for ever, and its hold made every ``?after=`` past it answer 504 for good."""
    async with write_side(settings) as side:
        cases = await open_and_hear(side, 3)
        await run_relay(settings, side, 6)
    async with schema_pool(settings, "ryw_filter", TRACKING_DDL) as pool, \
            bus_connection(settings, "ryw_filter") as nc:
        handler = FailsOneCase(cases[0])
        async with consumer_running(retrying(settings, nc, pool, "ryw_filter", handler)):
            await until_held(pool, "ryw_filter", cases[0], handler)
        last = max(handler.positions.values())
        handler = FailsOneCase(cases[0])
        handler.failing = False
        after = retrying(settings, nc, pool, "ryw_filter", handler, subjects="RequestHeard")
        async with consumer_running(after):
            async def heard_applied() -> bool:
                return (cases[0], "RequestHeard") in handler.applied
            await wait_until(heard_applied, timeout=30,
                             what="case 0's words heard applied, its opening no longer taken")
            assert await wait_for_position(pool, "ryw_filter", "intake", last, 30.0)


async def test_a_held_event_counts_as_gone_only_when_the_stream_says_it_has_no_such_message(
        settings: Settings) -> None:
    """What lets a hold go (``Consumer._still_coming``): the message is gone from the stream
    (removed, purged, past its limits) or off the consumer's subjects. A stream that is not
    there at all (deleted, about to be restored) says nothing of its messages: a case's block
    lifted then let its later events overtake the one that failed."""
    async with write_side(settings) as side:
        await open_and_hear(side, 1)
        await run_relay(settings, side, 2)
    prefix = settings.subject_prefix
    async with schema_pool(settings, "ryw_coming", TRACKING_DDL) as pool, \
            bus_connection(settings, "ryw_coming") as nc:
        def consumer(subjects: list[str]) -> Consumer:
            return Consumer(settings=settings, nc=nc, pool=pool, name="ryw_coming",
                            handler=FailsOneCase(uuid.uuid4()), filter_subjects=subjects)
        every = consumer([f"{prefix}.intake.*.*"])
        js = nc.jetstream()
        assert await every._still_coming(1) is True
        assert await consumer([f"{prefix}.intake.RequestHeard.*"])._still_coming(1) is False
        await js.delete_msg(settings.stream_name, 1)
        assert await every._still_coming(1) is False
        assert await every._still_coming(2) is True
        await js.delete_stream(settings.stream_name)
        assert await every._still_coming(2) is None

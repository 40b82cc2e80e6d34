"""A consumer started again on the connection it had (``supervise``: after a batch it gave
back, after PostgreSQL ended its lock's session) opens one fetch subscription per start and
closes it at each end: started again and again, it holds one at a time, and once stopped
(cancelled, drained, cancelled twice) none, its message loop ended with it. Each open one is
an interest on the server, a task in the process, and what the client subscribes again after
a reconnect: one left per start would grow for as long as the service runs.

Counted on the client, where each is (``nc._subs``: what the connection replays on a
reconnect; each subscribe and unsubscribe goes to the server), by the subscriptions' message
loops; the connection's own request inbox (nats-py's, opened by its first request, ended by
its close) is not a consumer's."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import asyncpg
import pytest
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import OutboundBufferLimitError

from shared.bus.consumer import TRACKING_DDL, Consumer
from shared.bus.pulling import Puller
from shared.contracts import Envelope
from shared.kernel.errors import StatementTimedOut
from shared.settings import Settings
from tests.intake.test_log_guarantees import open_and_hear, run_relay, write_side
from tests.support import (
    bus_connection,
    consumer_running,
    consumer_supervised,
    end_lock_session,
    intake_consumer,
    nothing_left_running,
    request_inbox,
    subscription_of,
    wait_until,
)


def fetch_subscriptions(nc: NATS) -> list[Any]:
    """The connection's subscriptions but its own request inbox: the consumers' (a pull
    consumer's inbox)."""
    return [sub for sub in nc._subs.values() if not request_inbox(sub)]


def message_loops(nc: NATS) -> list[asyncio.Task[Any]]:
    """The message loops still running of the connection's subscriptions, its request inbox's
    but, closed or not: a loop only cancelled is still there."""
    return [t for t in asyncio.all_tasks() if not t.done()
            and (sub := subscription_of(t)) is not None and sub._conn is nc
            and not request_inbox(sub)]


def held(nc: NATS) -> tuple[int, int]:
    """(fetch subscriptions, their message loops still running) of the connection."""
    return len(fetch_subscriptions(nc)), len(message_loops(nc))


async def one_case_published(settings: Settings) -> None:
    async with write_side(settings) as side:
        await open_and_hear(side, 1)
        await run_relay(settings, side, 2)


class TimesOutFirst:
    """Its first ``failures`` batches end for their time (the store's: ``StatementTimedOut``,
    the batch given back, the consumer raised out and started again by its supervisor)."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.applied: list[str] = []

    async def apply(self, conn: asyncpg.Connection, events: Sequence[Envelope]) -> None:
        if self.failures:
            self.failures -= 1
            raise StatementTimedOut("a database statement ran out of time",
                                    error="LockNotAvailable")
        self.applied += [e.type for e in events]

    async def reached(self, events: int, what: str) -> None:
        async def applied() -> bool:
            return len(self.applied) == events
        await wait_until(applied, what=what)


async def test_a_consumer_started_again_five_times_holds_one_fetch_subscription_then_none(
        settings: Settings) -> None:
    await one_case_published(settings)
    handler = TimesOutFirst(failures=5)
    async with intake_consumer(settings, "restarts", handler, TRACKING_DDL,
                               backoff=(0.01,), isolate_after=100) as consumer:
        nc = consumer.nc
        async with consumer_supervised(consumer):
            await handler.reached(2, "the case applied after five batches given back")
            assert consumer.stats.store_timeouts == 5  # raised out, started again each time
            assert held(nc) == (1, 1)
        assert held(nc) == (0, 0)


async def test_a_consumer_whose_lock_session_ended_three_times_holds_one_fetch_subscription(
        settings: Settings) -> None:
    async with write_side(settings) as side:
        await open_and_hear(side, 1)
        await run_relay(settings, side, 2)
        handler = TimesOutFirst(failures=0)
        async with intake_consumer(settings, "relead", handler, TRACKING_DDL) as consumer:
            nc = consumer.nc
            async with consumer_supervised(consumer):
                for n in range(1, 4):
                    await handler.reached(2 * n, f"case {n} applied by leader {n}")
                    assert await end_lock_session(consumer.pool, consumer.lock_key) == 1
                    await open_and_hear(side, 1)  # applied by the consumer led again
                    await run_relay(settings, side, 2 * (n + 1))
                await handler.reached(8, "case 4 applied by leader 4")
                assert held(nc) == (1, 1)
            assert held(nc) == (0, 0)


async def test_a_drained_consumer_and_a_cancelled_one_leave_no_fetch_subscription(
        settings: Settings) -> None:
    await one_case_published(settings)
    handler = TimesOutFirst(failures=0)
    async with intake_consumer(settings, "stopped", handler, TRACKING_DDL) as consumer:
        nc = consumer.nc
        async with consumer_running(consumer) as task:
            await handler.reached(2, "the case applied")
            await consumer.drain()
            task.cancel()
            await asyncio.wait((task,))
            assert held(nc) == (0, 0)
        again = Consumer(settings=settings, nc=nc, pool=consumer.pool, name="stopped",
                         handler=handler, filter_subjects=consumer.filter_subjects)
        async with consumer_running(again) as task:
            async def leads() -> bool:
                return len(fetch_subscriptions(nc)) == 1
            await wait_until(leads, what="the consumer started again to fetch")
            task.cancel()
            await asyncio.sleep(0)
            task.cancel()  # a shutdown's second cancel, while the first unwinds
            await asyncio.wait((task,))
            assert held(nc) == (0, 0)


async def test_a_consumer_whose_first_pull_requests_were_refused_holds_one_fetch_subscription(
        settings: Settings) -> None:
    """The pull requests a start sends refused by the client three times (nats-py's
    ``OutboundBufferLimitError``: the connection reconnecting, its buffer full; the one
    refusal no test server can be made to give at will, so the connection's ``publish`` gives
    it): the consumer fails, its supervisor starts it again, and the fourth start applies the
    case. Before, each refused start left its inbox subscribed on the connection for good."""
    await one_case_published(settings)
    handler = TimesOutFirst(failures=0)
    async with intake_consumer(settings, "refused", handler, TRACKING_DDL) as consumer:
        nc = consumer.nc
        publish, refusals = nc.publish, 3

        async def refusing(subject: str, *args: Any, **kwargs: Any) -> None:
            nonlocal refusals
            if refusals and subject.startswith("$JS.API.CONSUMER.MSG.NEXT."):
                refusals -= 1
                raise OutboundBufferLimitError
            await publish(subject, *args, **kwargs)

        nc.publish = refusing  # type: ignore[method-assign]
        async with consumer_supervised(consumer):
            await handler.reached(2, "the case applied by the fourth start")
            assert refusals == 0
            assert held(nc) == (1, 1)
        assert held(nc) == (0, 0)


async def test_a_stopped_puller_has_ended_its_message_loop_when_its_stop_returns(
        settings: Settings) -> None:
    """nats-py's ``unsubscribe`` only cancels the subscription's message loop: before, the
    loop ended a round of the event loop after the stop had returned (the guard of
    ``tests.support`` waited for it as the library's own cleanup)."""
    async with bus_connection(settings, "puller") as nc:
        puller = Puller(nc, settings.stream_name, "nobody", batch=10)
        await puller.start()
        assert held(nc) == (1, 1)
        assert await puller.stop() == []
        assert held(nc) == (0, 0)


async def test_the_guard_counts_a_subscription_left_open_not_the_kept_connections_inbox(
        settings: Settings) -> None:
    """``nothing_left_running`` (``consumer_running``, ``consumer_supervised``): the request
    inbox a first request opens on a connection the test keeps is the connection's, ended by
    its close; a subscription left open in the block is counted (at once: only a loop
    already cancelled is waited for, as the library's cleanup)."""
    async def ignored(msg: Msg) -> None:
        return None

    async with bus_connection(settings, "guarded") as nc:
        async with nothing_left_running("a first request"):
            await nc.jetstream().account_info()
        left: list[Any] = []
        with pytest.raises(AssertionError, match=r"Subscription\._wait_for_msgs"):
            async with nothing_left_running("a subscription left open"):
                left.append(await nc.subscribe(f"{settings.subject_prefix}.left", cb=ignored))
        await left[0].unsubscribe()

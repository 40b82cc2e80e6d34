"""A ``Puller``'s stop returns when the server does not answer its drain (NATS away, the
connection reconnecting: a Ctrl-C of ``sixstep rebuild`` or ``replay`` then, whose reader
stops its puller unbounded). nats-py's ``Subscription.drain`` waits for its round trip as long
as its flush's default, 10 s; the flushes it replaced were bounded at 1 s."""

from __future__ import annotations

import asyncio

import pytest
from nats.aio.subscription import Subscription

from shared.bus import pulling
from shared.bus.pulling import Puller


class Reconnecting:
    """A connection to a server that is away: what is sent is buffered, no answer comes."""

    is_draining = False
    is_closed = False

    def __init__(self) -> None:
        self.unsubscribed: list[int] = []
        self.removed: list[int] = []
        self.answer = asyncio.Event()  # never set

    def new_inbox(self) -> str:
        return "_INBOX.test"

    async def _send_unsubscribe(self, sid: int, limit: int = 0) -> None:
        self.unsubscribed.append(sid)

    async def flush(self, timeout: float = 10) -> None:
        await self.answer.wait()  # nats-py: until its timeout (10 s) says FlushTimeoutError

    def _remove_sub(self, sid: int) -> None:
        self.removed.append(sid)


async def test_a_stop_whose_drain_is_never_answered_returns_with_the_inbox_let_go(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pulling, "STOP_DRAIN_S", 0.05)
    nc = Reconnecting()
    puller = Puller(nc, "stream", "consumer", 10)  # type: ignore[arg-type]
    puller._sub = Subscription(nc, 7, "_INBOX.test")
    stopping = asyncio.ensure_future(puller.stop())
    # A hang guard only (the bound is 0.05 s): before, the stop waited on the drain for good
    # here (nats-py: 10 s).
    done, _ = await asyncio.wait([stopping], timeout=30)
    if not done:
        stopping.cancel()
    assert done, "the stop waited on a drain the server never answered"
    assert stopping.result() == []
    assert nc.unsubscribed == [7], "the server is told the inbox is gone"
    assert nc.removed == [7], "the inbox taken off the client"

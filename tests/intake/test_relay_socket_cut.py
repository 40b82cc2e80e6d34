"""The relay's socket to NATS breaks in the middle of a round: the stream still holds every
stored event once, in store order.

A stalled connection that then breaks loses what was in flight in it (the socket's and the
client's write buffers); the server stores a prefix of the round. The relay's own
connection never reconnects: it closes, and the relay starts again, on a new one, after the
service's last event on the stream, checked to follow the saved position without a gap. (The relay
before this one passed this test too, five runs of five: it hands a whole round to nats-py
without yielding, so the client's buffer never held the end of a round while the socket
held its start; it waited 10 s for the acks of the lost events instead of failing at once.)
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

from nats.js import JetStreamContext

from services.intake import commands as c
from shared.bus.jetstream import connect, ensure_streams
from shared.settings import Settings
from tests.intake.test_log_guarantees import (
    CENTER,
    RunningRelay,
    WriteSide,
    assert_once_in_order,
    relay_running,
    stream_made,
    write_side,
)
from tests.support import stream_envelopes, wait_until


class StallingProxy:
    """A TCP proxy in front of the test's nats-server. Armed with ``let_through`` bytes, it
    passes that much from the client to the server, then stops reading from the client (its
    socket fills up, as a connection does before it is found dead); ``cut()`` then breaks
    every connection it carries. Connections made after the cut pass freely."""

    def __init__(self, target: str) -> None:
        parts = urlsplit(target)
        self.target = (parts.hostname or "127.0.0.1", parts.port or 4222)
        self.let_through: int | None = None
        #: Hold every new connection without an answer (a server gone silent: the client's
        #: connect waits out its timeout, 5 s).
        self.holding = False
        self._held: list[asyncio.StreamWriter] = []
        self.passed = 0
        self.stalled = asyncio.Event()
        self._links: list[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> str:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window
        sock.bind(("127.0.0.1", 0))
        self._server = await asyncio.start_server(self._link, sock=sock)
        return f"nats://127.0.0.1:{sock.getsockname()[1]}"

    async def _link(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter
                    ) -> None:
        if self.holding:
            self._held.append(client_w)
            return
        server_r, server_w = await asyncio.open_connection(*self.target)
        self._links.append((client_w, server_w))
        for task in (self._pipe(client_r, server_w, upstream=True),
                     self._pipe(server_r, client_w, upstream=False)):
            t = asyncio.create_task(task)
            self._tasks.add(t)
            t.add_done_callback(self._tasks.discard)

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, *,
                    upstream: bool) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while True:
                n = 65536
                if upstream and self.let_through is not None:
                    n = min(n, self.let_through - self.passed)
                    if n <= 0:
                        self.stalled.set()
                        await asyncio.Event().wait()  # until cut
                data = await src.read(n)
                if not data:
                    break
                dst.write(data)
                await dst.drain()
                if upstream:
                    self.passed += len(data)
            dst.close()

    def answer_again(self) -> None:
        """The server answers again: new connections pass, and those held without an answer
        are refused at once (as a restarted server's are), so the relay's connect fails now
        rather than when its 5 s timeout ends."""
        self.holding = False
        for held in self._held:
            held.transport.abort()

    def cut(self) -> None:
        self.let_through = None
        for task in list(self._tasks):
            task.cancel()
        for client_w, server_w in self._links:
            client_w.transport.abort()
            server_w.transport.abort()
        self._links.clear()

    async def close(self) -> None:
        self.cut()
        for held in self._held:
            held.transport.abort()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


async def store_long_requests(side: WriteSide, n: int) -> None:
    """``n`` cases, each heard in long words: 2n events, some 9 kB each on the bus."""
    for i in range(n):
        opened = await side.intake.open_case(c.OpenCase(
            center_id=CENTER, counter_id="w1", clerk_id="clerk-1",
            service_item="MI-MEDICAL-REIMBURSEMENT"), "clerk-1", f"open-{uuid.uuid4().hex}")
        await side.intake.hear_request(opened.aggregate_id, c.HearRequest(
            words=f"第{i}位居民：" + "我想问一下医疗报销的材料还差什么" * 180), "clerk-1",
            f"hear-{uuid.uuid4().hex}")


async def test_a_relay_whose_socket_breaks_mid_round_keeps_the_stream_in_store_order(
        settings: Settings) -> None:
    proxy = StallingProxy(settings.nats_url)
    through_proxy = settings.model_copy(update={"nats_url": await proxy.start()})
    await stream_made(settings)
    try:
        async with write_side(settings) as side:
            await store_long_requests(side, 200)  # positions 1-400: one round of the relay
            head = 400
            # The connection's start (CONNECT, the stream's last event) and some 40 events
            # pass.
            proxy.let_through = 400_000
            async with relay_running(through_proxy, side) as running:
                await running.until(lambda r: proxy.stalled.is_set() and r._sent == head,
                                    what="the round published into a stalled connection")
                proxy.cut()
                await running.until(lambda r: r.position >= head, timeout=60,
                                    what="the relay to publish the whole log after the cut")
                assert running.relay.connections_lost >= 1, "the cut was not seen"
                assert running.relay.out_of_order == 0
    finally:
        await proxy.close()
    assert_once_in_order(await stream_envelopes(settings), head)


async def test_events_stored_while_the_relay_has_no_connection_are_timed_as_waiting(
        settings: Settings) -> None:
    """The relay is caught up when its connection breaks, and its next connect waits on a
    silent server: what is stored meanwhile waits, and the probe's measure (every
    HEALTH_PROBE_INTERVAL_S) starts the clock /ready's stall check and the SixstepRelayBehind
    alert read. It stood at 0 until that connect failed (5 s) or a connection was back: a
    stream leader killed in CI left /ready "ready" through the relay's 7 s outage."""
    proxy = StallingProxy(settings.nats_url)
    through_proxy = settings.model_copy(update={"nats_url": await proxy.start()})
    await stream_made(settings)
    try:
        async with write_side(settings) as side:
            await store_long_requests(side, 1)
            async with relay_running(through_proxy, side) as running:
                relay = running.relay
                await running.until(lambda r: r.position >= 2 and r.nc is not None,
                                    what="the relay to publish the first case")
                assert await relay.measure() == 0 and relay.unpublished_age() == 0
                proxy.holding = True
                proxy.cut()
                await running.until(
                    lambda r: r.connections_lost == 1 and len(proxy._held) == 1,
                    what="the relay's next connect to hang")
                await store_long_requests(side, 1)
                assert await relay.measure() == 2
                assert relay.connections_lost == 1, "the hanging connect gave up already"
                assert relay.unpublished_age() > 0
                proxy.answer_again()
                await running.until(lambda r: r.position >= 4, timeout=30,
                                    what="the relay back, publishing")
                assert relay.unpublished_age() == 0
    finally:
        await proxy.close()
    assert_once_in_order(await stream_envelopes(settings), 4)


async def test_a_stream_ahead_of_the_store_gets_nothing_published_and_says_why(
        settings: Settings) -> None:
    """A database restored without its stream: the stream holds intake's events up to
    position 6, the store only 2 (as if restored to before 3-6 were written), then stores
    3-4 anew. Published, they would get ids the stream holds (``intake:3``, ``intake:4``):
    dropped as duplicates, counted as published, lost. The relay publishes nothing, says why,
    and times the wait for /ready."""
    nc = await connect(settings, "test-setup")
    js = nc.jetstream()
    await ensure_streams(js, settings)
    subject = f"{settings.subject_prefix}.intake.RequestHeard.p0"
    for position in range(1, 7):  # what the lost database had published
        await js.publish(subject, b"{}", headers={"Nats-Msg-Id": f"intake:{position}"})
    before = (await js.stream_info(settings.stream_name)).state.messages
    async with write_side(settings) as side:
        await store_long_requests(side, 2)  # positions 1-4 in the restored store
        async with relay_running(settings, side) as running:
            relay = running.relay
            await running.until(lambda r: "beyond this store's last (4)" in (r.last_error or ""),
                                what="the relay to find the stream ahead of its store")
            assert relay.position == 0 and relay.connections_lost == 0
            assert await relay.measure() == 4

            async def timed() -> bool:
                await relay.measure()
                return relay.unpublished_age() > 0
            await wait_until(timed, what="the wait to be timed for /ready")
    assert (await js.stream_info(settings.stream_name)).state.messages == before
    await nc.close()


@contextlib.asynccontextmanager
async def relay_caught_up_at_2(settings: Settings
                               ) -> AsyncIterator[tuple[JetStreamContext, WriteSide,
                                                        RunningRelay]]:
    """An operator's JetStream context, intake's store with positions 1-2, and its relay
    running, caught up with them."""
    nc = await connect(settings, "test-operator")
    try:
        js = nc.jetstream()
        await ensure_streams(js, settings)
        async with write_side(settings) as side:
            await store_long_requests(side, 1)  # 1-2
            async with relay_running(settings, side) as running:
                await running.until(lambda r: r.position == 2, what="the relay to publish 1-2")
                yield js, side, running
    finally:
        await nc.close()


async def test_an_id_published_by_hand_does_not_take_the_place_of_the_event_it_names(
        settings: Settings) -> None:
    """While the relay is caught up at position 2, someone publishes a message of their own
    with intake's next id, ``intake:3``. The stream drops the relay's 3 as a duplicate of
    it: the relay counted 3 published, and it was lost. The relay does not go past an id it
    did not publish: it says which message holds it, publishes nothing while it is there,
    and publishes 3 once it is removed and its duplicate window has passed."""
    settings = settings.model_copy(update={"stream_duplicate_window_s": 3})
    async with relay_caught_up_at_2(settings) as (js, side, running):
        stray = await js.publish(f"{settings.subject_prefix}.intake.RequestHeard.p0",
                                 b"{}", headers={"Nats-Msg-Id": "intake:3"})
        await store_long_requests(side, 1)  # 3-4
        await running.until(
            lambda r: f"message {stray.seq} (intake:3)" in (r.last_error or ""),
            what="the relay to name the message holding intake:3")
        assert running.relay.position == 2
        await js.delete_msg(settings.stream_name, stray.seq)
        await running.until(lambda r: r.position == 4, timeout=30,
                            what="the relay to publish 3 once the message is gone")
    positions = [e.position for e in await stream_envelopes(settings)]
    assert sorted(positions) == [1, 2, 3, 4], f"each stored event once: {positions}"


async def test_an_id_far_beyond_the_store_published_by_hand_stops_the_relay_until_removed(
        settings: Settings) -> None:
    """A message published by hand as ``intake:<a very large position>``: the relay does not
    take it for its last event (it would skip every position below it) nor publish beside
    it; it names the message as a stream ahead of the store, and goes on once it is gone."""
    async with relay_caught_up_at_2(settings) as (js, side, running):
        stray = await js.publish(f"{settings.subject_prefix}.intake.RequestHeard.p0",
                                 b"{}", headers={"Nats-Msg-Id": f"intake:{10**12}"})
        relay_nc = running.relay.nc
        assert relay_nc is not None
        await relay_nc.close()  # the relay starts again: its start reads the stream
        await running.until(
            lambda r: f"message {stray.seq} (intake:{10**12}) is beyond this store's "
                      "last (2)" in (r.last_error or ""),
            what="the relay to name the message beyond the store")
        await store_long_requests(side, 1)  # 3-4
        await js.delete_msg(settings.stream_name, stray.seq)
        await running.until(lambda r: r.position == 4, timeout=30,
                            what="the relay to publish 3-4 once the message is gone")
    assert [e.position for e in await stream_envelopes(settings)] == [1, 2, 3, 4]

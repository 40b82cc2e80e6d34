"""Pipelined pull requests on one inbox: the way sixstep reads a JetStream consumer.

Lingering pull requests stay open on the server, so a message published while the reader waits
is delivered at once (no poll interval, no waiting for a batch to fill), and under load the
next batch is already on its way while one is being applied. The replay tools and the live
consumers (``shared.bus.consumer``) both read this way.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Sequence
from typing import Any, NamedTuple

import orjson
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from shared.kernel.tasks import cancel_and_wait

#: The longest ``Puller.stop`` waits for the server to answer the inbox's drain.
STOP_DRAIN_S = 2.0


class Delivery(NamedTuple):
    """What a JetStream message's ack subject says about its delivery."""

    stream_seq: int
    consumer_seq: int
    delivered: int
    pending: int


def delivery(msg: Msg) -> Delivery:
    """The numbers of ``msg.metadata``, read from the ack subject without building its objects
    (nats-py's parser was a third of the cost of decoding an event). Both the old
    ``$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>``
    and the new form (domain and account hash after ``$JS.ACK``, a token at the end) are read.
    """
    tokens = (msg.reply or "").split(".")
    if len(tokens) >= 9 and tokens[1] == "ACK":
        base = 4 if len(tokens) == 9 else 6
        return Delivery(int(tokens[base + 1]), int(tokens[base + 2]), int(tokens[base]),
                        int(tokens[base + 4]))
    meta = msg.metadata
    return Delivery(meta.sequence.stream, meta.sequence.consumer, meta.num_delivered,
                    meta.num_pending)


def consumer_sequence(msg: Msg) -> int:
    """The consumer sequence of ``msg``'s delivery (:func:`delivery`): one more for each
    message the consumer delivers, redeliveries included."""
    tokens = (msg.reply or "").split(".")
    if len(tokens) == 9 and tokens[1] == "ACK":
        return int(tokens[6])
    return delivery(msg).consumer_seq


def sequence_and_delivered(msg: Msg) -> tuple[int, int]:
    """(stream sequence, times delivered) of ``msg``: the two numbers of :func:`delivery` a
    consumer reads of every message, read from the usual ack subject at half its cost."""
    tokens = (msg.reply or "").split(".")
    if len(tokens) == 9 and tokens[1] == "ACK":
        return int(tokens[5]), int(tokens[4])
    facts = delivery(msg)
    return facts.stream_seq, facts.delivered


def sequences_and_pending(msg: Msg) -> tuple[int, int, int]:
    """(stream sequence, consumer sequence, pending) of ``msg``: the three numbers of
    :func:`delivery` a log reader reads of every message (``shared.analytics.reading``), read
    from the usual ack subject without the named tuple and the fifth number (2.4 -> 1.1 us a
    message, a twentieth of reading and decoding an event)."""
    tokens = (msg.reply or "").split(".")
    if len(tokens) == 9 and tokens[1] == "ACK":
        return int(tokens[5]), int(tokens[6]), int(tokens[8])
    facts = delivery(msg)
    return facts.stream_seq, facts.consumer_seq, facts.pending


async def ack_each(nc: NATS, msgs: Sequence[Msg]) -> None:
    """Ack every message of ``msgs``, in order: for each, what ``Msg.ack`` sends (an empty
    ``PUB`` to its reply subject), written to the client's outbound buffer at once.

    nats-py's ``Msg.ack`` pays a whole ``publish`` per message (subject checks, connection
    state, a command string formatted and encoded, a flush check): 4-5 us an event, an eighth
    of a live consumer's apply (py-spy, feedback's intake follower). Here the commands are
    built from each message's ack subject in one join and go out on the client's next flush,
    as a publish would. A message acked already, or one JetStream did not deliver (no reply
    subject), is refused as ``Msg.ack`` refuses it, before anything is sent. A client
    without the buffer this writes to (another nats-py) acks message by message."""
    if not msgs:
        return
    send = getattr(nc, "_send_command", None)
    flush = getattr(nc, "_flush_pending", None)
    if send is None or flush is None or not nc.is_connected:
        for msg in msgs:
            await msg.ack()
        return
    for msg in msgs:
        msg._check_reply()  # NotJSMessageError / MsgAlreadyAckdError, as Msg.ack raises
    await send(b"".join(b"PUB %s 0\r\n\r\n" % msg.reply.encode() for msg in msgs))
    for msg in msgs:
        msg._ackd = True
    queue = getattr(nc, "_flush_queue", None)
    if queue is not None and queue.empty():
        await flush()


class Puller:
    """Pipelined pull requests on one inbox: the next batch is on its way while one is decoded.

    At most ``depth`` requests of ``batch`` messages are outstanding, and a new one goes out
    only when the messages buffered and still due stay under ``depth * batch``: memory is
    bounded however far behind the reader falls.

    Started with the consumer sequence its first delivery will carry (``start(next_delivery=
    ...)``), it watches for deliveries lost on the way: the server counted a message delivered
    and it never came (the connection it went out on broke: the node died, the client
    reconnected to another). From the first message past such a gap on, nothing more is handed
    out or asked for, and ``lost`` says which deliveries are missing: what came before the gap
    can still be applied, what came after must wait until the lost ones come back (the caller
    starts its consumer again from the ack floor).
    """

    def __init__(self, nc: NATS, stream: str, consumer: str, batch: int, *, depth: int = 2,
                 expires_s: float = 2.0) -> None:
        self.nc = nc
        self.api = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}"
        self.request = orjson.dumps({"batch": batch, "expires": int(expires_s * 1e9)})
        self.batch = batch
        self.depth = depth
        self.inbox = nc.new_inbox()
        self.expires_s = expires_s
        self._ready: deque[Msg] = deque()
        # Per outstanding request, oldest first: [messages still due, when it is surely over].
        self._due: deque[list[float]] = deque()
        self._wake = asyncio.Event()
        self._sub: Any = None
        self._stopping = False
        self._received = 0
        #: The consumer sequence the next delivery should carry (None: not watched).
        self._next_delivery: int | None = None
        #: (the first missing, the one that came) once a gap was seen; see the class doc.
        self.lost: tuple[int, int] | None = None

    async def start(self, next_delivery: int | None = None) -> None:
        """Subscribe the inbox and send the first requests. The first requests refused (the
        connection reconnecting with its buffer full: ``OutboundBufferLimitError``; closed)
        or the start cancelled: the inbox is unsubscribed before the error goes on. Left
        subscribed, it stayed on the connection for its life, replayed at each reconnect,
        one more at each start again of its consumer (``_unsubscribe``)."""
        self._next_delivery = next_delivery
        self._sub = await self.nc.subscribe(self.inbox, cb=self._on_msg)
        try:
            await self._top_up()
        except BaseException:
            await self._unsubscribe()
            raise

    async def stop(self) -> list[Msg]:
        """Stop reading; returns what was delivered but never taken (the caller hands it
        back, e.g. with a nak, so that it is redelivered now rather than after ack_wait).

        No new request goes out, and the inbox is drained: the server is told first
        (``UNSUB``), and the inbox goes on taking what comes until a round trip behind it
        answers (nats-py's ``Subscription.drain``). The server delivers into a request only
        while the inbox is subscribed: what it sent before it heard the ``UNSUB`` comes
        before the answer and is handed back here, and nothing comes after it (the requests
        still open are dropped unanswered). Before, the inbox was taken off the client first
        and the server told after: a message the server sent in that moment (the relay
        publishing the last accepted writes as the consumers stop) was dropped by the
        client and waited, delivered and unacknowledged, for ack_wait."""
        self._stopping = True
        if self._sub is not None:
            try:
                sub = self._sub
                # Not on a connection being drained (it refuses; its own drain takes the
                # inbox's last messages) or closed.
                # Bounded: nats-py's drain waits for its round trip as long as its flush's
                # default (10 s), and on a connection reconnecting (NATS away at a Ctrl-C of
                # ``sixstep rebuild`` or ``replay``) no answer comes; the flushes before
                # drain were bounded at 1 s.
                if not self.nc.is_draining and not self.nc.is_closed:
                    with contextlib.suppress(Exception):
                        async with asyncio.timeout(STOP_DRAIN_S):
                            await sub.drain()
            finally:
                # Also when the caller gives up waiting (its time up; a server slow to answer
                # under load): an inbox left subscribed keeps the requests it has open on the
                # server, which go on delivering to a reader that is gone (a successor on the
                # same durable got nothing of it until ack_wait).
                await self._unsubscribe()
        return self.left()

    async def _unsubscribe(self) -> None:
        """The inbox unsubscribed, and its message loop (nats-py's task calling ``_on_msg``)
        ended before this returns, also when cancelled meanwhile (``cancel_and_wait``):
        nats-py's ``unsubscribe`` only cancels the loop, which ended a round of the event
        loop later, after its owner had gone. A closed connection refuses the unsubscribe
        and has cancelled the loop already: waited for too. A connection being drained
        refuses it and ends the subscription itself once its loop has handed out what it
        holds: that loop is the drain's, not cancelled here (the drain would wait for it
        until its own time was up). A drain of the inbox cut short (``stop``: its answer
        late) told the server already and left the inbox on the client: taken off it here
        (nats-py refuses an unsubscribe of a drained subscription)."""
        sub, self._sub = self._sub, None
        if sub is None:
            return
        try:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
            remove = getattr(self.nc, "_remove_sub", None)
            if remove is not None and getattr(sub, "_closed", False):
                remove(sub._id)  # a drained inbox is gone already: nothing happens
        finally:
            loop = getattr(sub, "_wait_for_msgs_task", None)
            if loop is not None and not self.nc.is_draining:
                await cancel_and_wait(loop)

    def left(self) -> list[Msg]:
        """What was delivered but never taken, taken now: also once a ``stop`` was cut short
        (its time up, its caller cancelled), whose list went with it."""
        left = list(self._ready)
        self._ready.clear()
        return left

    async def _top_up(self) -> None:
        now = asyncio.get_running_loop().time()
        # A request whose end never came (the connection dropped and reconnected while it
        # was open) is forgotten once it has surely expired on the server.
        while self._due and self._due[0][1] < now:
            self._due.popleft()
        while (not self._stopping and self.lost is None and len(self._due) < self.depth
               and len(self._ready) + sum(d for d, _ in self._due) + self.batch
               <= self.depth * self.batch):
            self._due.append([self.batch, now + self.expires_s + 1.0])
            await self.nc.publish(self.api, self.request, reply=self.inbox)

    async def _on_msg(self, msg: Msg) -> None:
        self._received += 1
        if not msg.reply:  # a status: 100 heartbeat, 404/408/409 the oldest request is over
            status = (msg.headers or {}).get("Status")
            if status != "100" and self._due:
                self._due.popleft()
            self._wake.set()
            return
        if self._next_delivery is not None and not self._in_sequence(msg):
            return
        self._ready.append(msg)
        if self._due:
            self._due[0][0] -= 1
            if self._due[0][0] <= 0:
                self._due.popleft()
        self._wake.set()

    def _in_sequence(self, msg: Msg) -> bool:
        """Whether ``msg`` may be handed out: no delivery before it went missing. A number
        below the expected one (a new consumer leader numbering from its last replicated
        state) is no gap. What follows a gap is dropped unacknowledged: it comes back with
        the lost ones, after them."""
        if self.lost is not None:
            return False
        seq = consumer_sequence(msg)
        assert self._next_delivery is not None
        if seq > self._next_delivery:
            self.lost = (self._next_delivery, seq)
            self._wake.set()  # a reader waiting for more learns there is no more
            return False
        self._next_delivery = seq + 1
        return True

    async def take_now(self, limit: int) -> list[Msg]:
        """Up to ``limit`` messages already delivered, in order, without waiting."""
        n = min(len(self._ready), limit)
        out = [self._ready.popleft() for _ in range(n)]
        await self._topped_up(out)
        return out

    async def _topped_up(self, taken: list[Msg]) -> None:
        """The next request sent after ``taken`` left the buffer; cancelled meanwhile, they
        go back to it (``stop`` returns them: none is left unanswered)."""
        try:
            await self._top_up()
        except BaseException:
            self._ready.extendleft(reversed(taken))
            raise

    async def arrival(self) -> None:
        """Returns once a message is delivered and not yet taken (at once when one is)."""
        while not self._ready:
            self._wake.clear()  # before the top-up: a message it brings sets it again
            await self._top_up()
            if not self._ready:
                await self._wake.wait()

    async def take(self, timeout: float) -> list[Msg]:
        """Up to ``batch`` messages, in order; [] when none came within ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self._ready:
            if self.lost is not None:
                return []
            await self._top_up()
            self._wake.clear()
            left = deadline - loop.time()
            if left <= 0:
                return []
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await self._wake.wait()
        n = min(len(self._ready), self.batch)
        out = [self._ready.popleft() for _ in range(n)]
        await self._topped_up(out)
        return out

"""Consumers and replays read a message's delivery facts from its ack subject as nats-py would;
a puller watching the deliveries' numbers hands out nothing past a lost one."""

from __future__ import annotations

import pytest
from nats.aio.msg import Msg

from shared.bus.pulling import (
    Puller,
    consumer_sequence,
    delivery,
    sequence_and_delivered,
    sequences_and_pending,
)


@pytest.mark.parametrize("reply", [
    "$JS.ACK.SIXSTEP.intake-cases.3.1042.977.1764048000000000000.58",
    "$JS.ACK.hub.ACCHASH.SIXSTEP.intake-cases.3.1042.977.1764048000000000000.58.x7Yt",
    "$JS.ACK.hub.ACCHASH.SIXSTEP.intake-cases.1.7.7.1764048000000000000.0",
])
def test_delivery_matches_nats_py_metadata(reply: str) -> None:
    msg = Msg(_client=None, subject="sixstep.intake.CaseOpened.p0", reply=reply)  # type: ignore[arg-type]
    meta = msg.metadata
    assert delivery(msg) == (meta.sequence.stream, meta.sequence.consumer, meta.num_delivered,
                             meta.num_pending)
    assert sequence_and_delivered(msg) == (meta.sequence.stream, meta.num_delivered)
    assert consumer_sequence(msg) == meta.sequence.consumer
    assert sequences_and_pending(msg) == (meta.sequence.stream, meta.sequence.consumer,
                                          meta.num_pending)


def test_a_message_without_an_ack_subject_is_refused() -> None:
    msg = Msg(_client=None, subject="sixstep.intake.CaseOpened.p0", reply="")  # type: ignore[arg-type]
    with pytest.raises(Exception):  # noqa: B017 - nats-py's own error for "not a JetStream message"
        delivery(msg)
    with pytest.raises(Exception):  # noqa: B017 - the same
        sequence_and_delivered(msg)
    with pytest.raises(Exception):  # noqa: B017 - the same
        sequences_and_pending(msg)


class _Inbox:
    """What a Puller asks of its client: an inbox name, and to send its pull requests."""

    def __init__(self) -> None:
        self.requests = 0

    def new_inbox(self) -> str:
        return "_INBOX.test"

    async def publish(self, subject: str, payload: bytes, reply: str) -> None:
        self.requests += 1


def _delivered(stream_seq: int, consumer_seq: int) -> Msg:
    return Msg(_client=None, subject="sixstep.intake.CaseOpened.p0",  # type: ignore[arg-type]
               reply=f"$JS.ACK.SIXSTEP.c.1.{stream_seq}.{consumer_seq}.1764048000000000000.0")


async def test_nothing_past_a_lost_delivery_is_handed_out() -> None:
    client = _Inbox()
    puller = Puller(client, "SIXSTEP", "c", 10)  # type: ignore[arg-type]
    puller._next_delivery = 5  # what ``start`` sets from the durable's info
    for stream_seq, consumer_seq in [(40, 5), (41, 6), (43, 8), (44, 9)]:  # 7 went missing
        await puller._on_msg(_delivered(stream_seq, consumer_seq))
    assert [delivery(m).stream_seq for m in await puller.take_now(10)] == [40, 41]
    assert puller.lost == (7, 8)
    assert await puller.take(timeout=5.0) == []  # at once: nothing more comes
    assert client.requests == 0  # nor is asked for


async def test_a_lower_number_is_no_gap() -> None:
    """A new consumer leader numbers from its last replicated state: a number seen before."""
    puller = Puller(_Inbox(), "SIXSTEP", "c", 10)  # type: ignore[arg-type]
    puller._next_delivery = 5
    for stream_seq, consumer_seq in [(40, 5), (41, 6), (41, 5), (42, 6), (43, 7)]:
        await puller._on_msg(_delivered(stream_seq, consumer_seq))
    assert [delivery(m).stream_seq for m in await puller.take_now(10)] == [40, 41, 41, 42, 43]
    assert puller.lost is None


async def test_a_puller_not_told_the_next_number_watches_nothing() -> None:
    puller = Puller(_Inbox(), "SIXSTEP", "c", 10)  # type: ignore[arg-type]
    for stream_seq, consumer_seq in [(40, 5), (43, 8)]:
        await puller._on_msg(_delivered(stream_seq, consumer_seq))
    assert len(await puller.take_now(10)) == 2 and puller.lost is None

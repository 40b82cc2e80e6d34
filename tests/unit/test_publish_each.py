"""The relay's round in one write (server-free): the bytes handed to the client's buffer are
the ones nats-py's ``publish`` would have buffered message by message, in the same order, and
what ``publish`` refuses is refused by it, before anything of the round is sent."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from nats.aio.client import Client as NATS
from nats.errors import BadHeaderError, MaxPayloadError

from shared.bus.publishing import Outgoing, publish_each


class Connected(NATS):
    """A client whose buffer is looked at, not sent: connected, a flusher waiting."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[bytes] = []
        self.flushes = 0
        self._status = NATS.CONNECTED
        self._max_payload = 1024
        self._flush_queue = asyncio.Queue()
        self._flusher_task = None

    async def _send_command(self, cmd: bytes, priority: bool = False) -> None:
        self.sent.append(bytes(cmd))

    async def _flush_pending(self, force_flush: bool = False) -> Any:
        self.flushes += 1


ROUND = [
    Outgoing("sixstep.intake.CaseOpened.p7", b'{"event_id":"x","payload":{"n":"\xe7\x8e\x8b"}}',
             "_INBOX.relay.intake.ab12.41", {"Nats-Msg-Id": "intake:41",
                                              "Sixstep-Type": "CaseOpened"}),
    Outgoing("sixstep.intake.RequestHeard.p7", b"{}", "_INBOX.relay.intake.ab12.42",
             {"Nats-Msg-Id": "intake:42", "Sixstep-Type": "RequestHeard",
              "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"}),
    Outgoing("sixstep.intake.CaseResolved.p0", b"", "",  # an atomic round's middle message
             {"Nats-Msg-Id": "intake:43", "Nats-Batch-Id": "9f3e", "Nats-Batch-Sequence": "2",
              "Sixstep-Type": " padded value\r\n"}),
]


def one_by_one(messages: list[Outgoing]) -> tuple[list[bytes], dict[str, int]]:
    client = Connected()

    async def publish() -> None:
        for m in messages:
            await client.publish(m.subject, m.payload, reply=m.reply, headers=m.headers)

    asyncio.run(publish())
    return client.sent, {k: client.stats[k] for k in ("out_msgs", "out_bytes")}


def test_a_round_goes_out_as_the_publishes_would_have_sent_it() -> None:
    expected, stats = one_by_one(ROUND)
    client = Connected()
    asyncio.run(publish_each(client, ROUND))
    assert b"".join(client.sent) == b"".join(expected)
    assert len(client.sent) == 1 and client.flushes == 1  # one write, one kick of the flusher
    assert {k: client.stats[k] for k in ("out_msgs", "out_bytes")} == stats


@pytest.mark.parametrize("bad, error", [
    (Outgoing("sixstep.intake.X.p1", b"x" * 2000, "r.1", {"Nats-Msg-Id": "intake:1"}),
     MaxPayloadError),
    (Outgoing("sixstep.intake.X.p1", b"{}", "r.1", {"Bad Key": "v"}), BadHeaderError),
])
def test_what_publish_refuses_is_refused_before_anything_is_sent(bad: Outgoing,
                                                                 error: type) -> None:
    client = Connected()
    with pytest.raises(error):
        asyncio.run(publish_each(client, [ROUND[0], bad, ROUND[1]]))
    # One by one, as before: the messages ahead of it went, none after it.
    expected, _ = one_by_one([ROUND[0]])
    assert client.sent == expected


def test_a_header_key_publish_would_change_goes_message_by_message() -> None:
    odd = [ROUND[0], Outgoing("s.x", b"{}", "", {" Nats-Msg-Id ": "intake:9", "": "skipped"})]
    expected, _ = one_by_one(odd)
    client = Connected()
    asyncio.run(publish_each(client, odd))
    assert client.sent == expected


def test_a_wrapped_publish_sees_every_message() -> None:
    client = Connected()
    seen: list[str] = []
    publish = client.publish

    async def wrapped(subject: str, payload: bytes = b"", reply: str = "",
                      headers: dict[str, str] | None = None) -> None:
        seen.append(subject)
        await publish(subject, payload, reply=reply, headers=headers)

    client.publish = wrapped  # type: ignore[method-assign]
    asyncio.run(publish_each(client, ROUND))
    assert seen == [m.subject for m in ROUND]
    assert client.sent == one_by_one(ROUND)[0]

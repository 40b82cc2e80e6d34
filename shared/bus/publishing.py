"""A round of messages published in one write to the client's outbound buffer.

nats-py's ``Client.publish`` pays, per message, its subject checks, the connection state, a
header block built key by key (a regex each), a command formatted and encoded, and a flush
check: some 15 % of the outbox relay's CPU an event (py-spy of intake's workers process under
``benchmarks/intake_paired.py``). :func:`publish_each` builds the very bytes each ``publish``
would have buffered (``HPUB <subject> <reply> <header length> <total length>``, the header
block, the payload), in order, joins them and hands them to the client's buffer once, to go out
on its next flush as the publishes would: the server sees the same stream of commands
(``tests/unit/test_publish_each.py`` compares it with nats-py's own, byte for byte).

Whatever ``publish`` would refuse (a closed, draining or reconnecting connection, a payload
over the server's limit, a subject or header it finds malformed) or a client without the
buffer this writes to (another nats-py), or whose ``publish`` is wrapped (an instrumentation,
a test's fault), goes message by message through ``publish``, which refuses it as always,
before anything of the round is sent.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, NamedTuple

from nats.aio.client import Client as NATS

#: What nats-py refuses in a subject (whitespace, CR, LF: ``_validate_subject``) and in a
#: header key (``_HEADER_KEY_RE``), and what it turns into a space in a header value.
_SUBJECT_INVALID = re.compile(r"[\s\r\n]")
_HEADER_KEY = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_VALUE_NEWLINES = {13: " ", 10: " "}


class Outgoing(NamedTuple):
    """One message of a round: what ``Client.publish`` takes."""

    subject: str
    payload: bytes
    reply: str
    headers: dict[str, str]


def frame(message: Outgoing) -> bytes | None:
    """The bytes ``Client.publish`` buffers for ``message`` (a message with headers), or
    None where it would refuse or change something (left to it)."""
    subject, payload, reply, headers = message
    if not subject or _SUBJECT_INVALID.search(subject) or (
            reply and _SUBJECT_INVALID.search(reply)):
        return None
    parts = ["NATS/1.0\r\n"]
    for key, value in headers.items():
        if key != key.strip() or not _HEADER_KEY.fullmatch(key):
            return None
        parts.append(f"{key}: {value.strip().translate(_VALUE_NEWLINES)}\r\n")
    parts.append("\r\n")
    header = "".join(parts).encode()
    return b"%s%s%s\r\n" % (
        f"HPUB {subject} {reply} {len(header)} {len(header) + len(payload)}\r\n".encode(),
        header, payload)


def _own_publish(client: Any) -> bool:
    """Whether ``client.publish`` is nats-py's own: one wrapped by something (an
    instrumentation, a test's fault on the way to the server) sees every message, as before."""
    return "publish" not in vars(client) and getattr(type(client), "publish", None) is (
        NATS.publish)


async def publish_each(nc: NATS, messages: Sequence[Outgoing]) -> None:
    """Publish ``messages`` in order, as ``nc.publish`` would one by one, in one write to the
    client's buffer (module doc)."""
    if not messages:
        return
    client: Any = nc
    send = getattr(client, "_send_command", None)
    flush = getattr(client, "_flush_pending", None)
    frames: list[bytes] = []
    if (send is not None and flush is not None and nc.is_connected and not nc.is_draining_pubs
            and _own_publish(client)):
        limit = nc.max_payload
        for message in messages:
            if len(message.payload) > limit or (one := frame(message)) is None:
                break
            frames.append(one)
    if len(frames) != len(messages):
        for message in messages:
            await nc.publish(message.subject, message.payload, reply=message.reply,
                             headers=message.headers)
        return
    stats = client.stats
    stats["out_msgs"] += len(messages)
    stats["out_bytes"] += sum(len(message.payload) for message in messages)
    assert send is not None and flush is not None
    await send(b"".join(frames))
    queue = getattr(client, "_flush_queue", None)
    if queue is not None and queue.empty():
        await flush()

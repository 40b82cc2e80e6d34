"""A NATS client that reads message headers at about half of nats-py's cost, with its answer.

nats-py parses every message's header block in Python, and tests each header name for
whitespace with a generator over its characters (``any(c.isspace() for c in key)``): some
6.5 us a message with the three headers sixstep's messages carry (``Nats-Msg-Id``,
``Sixstep-Type``, ``traceparent``), paid once per message a consumer or a replay receives.
:class:`Client` makes the same test with one precompiled search (``\\s`` in a ``str``
pattern is ``str.isspace``), everything else as nats-py does it: the same dict for every
header block (``tests/unit/test_header_parsing.py`` compares the two).
"""

from __future__ import annotations

import re
from typing import Any

from nats.aio.client import NATS_HDR_LINE_SIZE
from nats.aio.client import Client as NATS

_CRLF = b"\r\n"
_SPACE = b" "
_WHITESPACE = re.compile(r"\s")


class Client(NATS):
    """nats-py's client, reading header blocks with :func:`parse_header_lines`, and not
    deafened by a PONG for a flush given up on (:meth:`_process_pong`)."""

    @staticmethod
    def _parse_header_lines(raw: bytes) -> dict[str, str]:
        return parse_header_lines(raw)

    async def _process_pong(self) -> None:
        """A PONG answers the oldest PING still out: its waiter told, unless it gave up.
        nats-py 2.16 sets the result of a waiter that gave up (a flush past its timeout, one
        whose caller was cancelled: a puller's bounded ``sub.drain()`` as a consumer stops)
        and the ``InvalidStateError`` ends its read loop, silently: the connection stays
        "connected" and deaf, every request and pull times out for good (feedback's four
        consumers, ``nats: timeout`` every 10 s until the process was restarted, in the CI's
        PostgreSQL-restart test under load)."""
        if self._pongs:
            future = self._pongs.pop(0)
            if not future.done():
                future.set_result(True)
            self._pongs_received += 1
            self._pings_outstanding = 0


class StatusOnlyClient(Client):
    """A client that reads of a message's header block only an inline status (``NATS/1.0 404
    No Messages``: ``Status`` and ``Description``, and any header lines after a status, as
    nats-py reads them); the header lines of every other message are not read, and its
    ``msg.headers`` is None. For a connection that reads the log's bytes and nothing of its
    headers (``Nats-Msg-Id``, ``Sixstep-Type``, ``traceparent``): the replay's reader process
    (``shared.analytics.reading``), where reading them was a ninth of its CPU (py-spy)."""

    async def _process_headers(self, headers: Any) -> dict[str, str] | None:
        if headers and headers[NATS_HDR_LINE_SIZE:NATS_HDR_LINE_SIZE + 1] == _SPACE:
            return await super()._process_headers(headers)  # type: ignore[no-any-return]
        return None


def parse_header_lines(raw: bytes) -> dict[str, str]:
    """``nats.aio.client.Client._parse_header_lines(raw)``: ``Name: Value`` per line; a line
    without a colon, a name that is not ASCII or holds whitespace, is skipped."""
    out: dict[str, str] = {}
    search = _WHITESPACE.search
    for line in raw.split(_CRLF):
        if not line:
            continue
        name, sep, value = line.partition(b":")
        if not sep:
            continue
        try:
            key = name.strip().decode("ascii")
        except UnicodeDecodeError:
            continue
        if search(key) is not None:
            continue
        out[key] = value.strip().decode("utf-8", "replace")
    return out

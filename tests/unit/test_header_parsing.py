"""Every NATS connection reads header blocks as nats-py does, only cheaper."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from nats.aio.client import Client as NatsPy

from shared.bus.headers import Client, StatusOnlyClient, parse_header_lines

nats_py = NatsPy._parse_header_lines

BLOCKS = [
    b"Nats-Msg-Id: intake:12345\r\nSixstep-Type: RequestHeard\r\n"
    b"traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00\r\n\r\n",
    b"Name:Value\r\nName2:\tValue2\r\n",  # no space, a tab after the colon
    b"No colon here\r\nA: b: c\r\n",  # a line without a colon is skipped; a colon in a value
    b"Bad Name: x\r\nTab\tName: y\r\nSep\x1cName: z\r\n Lead: ok\r\n",  # whitespace in a name
    b"N\xc3\xa4me: x\r\nGood: caf\xc3\xa9\r\nBroken: \xff\xfe\r\n",  # non-ASCII name, UTF-8
    b"Dup: 1\r\nDup: 2\r\n",  # the last one wins
    b"", b"\r\n\r\n", b":empty name\r\n",
]


@pytest.mark.parametrize("raw", BLOCKS)
def test_header_blocks_read_as_nats_py_reads_them(raw: bytes) -> None:
    assert parse_header_lines(raw) == nats_py(raw)


@given(st.lists(st.tuples(st.binary(max_size=12), st.sampled_from([b":", b": ", b"", b":\t"]),
                          st.binary(max_size=12)), max_size=5))
def test_any_header_block_reads_as_nats_py_reads_it(
        lines: list[tuple[bytes, bytes, bytes]]) -> None:
    raw = b"".join(name + sep + value + b"\r\n" for name, sep, value in lines)
    assert parse_header_lines(raw) == nats_py(raw)


def test_the_bus_client_reads_headers_with_it() -> None:
    assert issubclass(Client, NatsPy)
    assert Client._parse_header_lines is not NatsPy._parse_header_lines
    assert Client._parse_header_lines(BLOCKS[0]) == nats_py(BLOCKS[0])


STATUS_BLOCKS = [
    b"NATS/1.0 404 No Messages\r\n\r\n",
    b"NATS/1.0 408 Request Timeout\r\nNats-Pending-Messages: 3\r\nNats-Pending-Bytes: 9\r\n\r\n",
    b"NATS/1.0 100 Idle Heartbeat\r\nNats-Last-Consumer: 1016\r\nNats-Last-Stream: 1024\r\n\r\n",
    b"NATS/1.0 503\r\n\r\n",
]


@pytest.mark.parametrize("raw", STATUS_BLOCKS)
async def test_a_status_only_client_reads_a_status_as_nats_py_does(raw: bytes) -> None:
    """The replay's reader process reads no header lines, but every status its puller acts
    on (the end of a pull request, a heartbeat) reads as before."""
    assert await StatusOnlyClient()._process_headers(raw) == \
        await NatsPy()._process_headers(raw)  # type: ignore[no-untyped-call]


async def test_a_status_only_client_leaves_a_message_s_header_lines_unread() -> None:
    raw = b"NATS/1.0\r\n" + BLOCKS[0]
    assert await NatsPy()._process_headers(raw)  # type: ignore[no-untyped-call]
    assert await StatusOnlyClient()._process_headers(raw) is None
    assert await StatusOnlyClient()._process_headers(b"") is None

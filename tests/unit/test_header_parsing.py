"""Every NATS connection reads header blocks as nats-py does, only cheaper."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from nats.aio.client import Client as NatsPy

from shared.bus.headers import Client, parse_header_lines

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

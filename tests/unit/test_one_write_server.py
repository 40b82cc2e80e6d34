"""The services' HTTP protocol sends an answer's headers and body with one socket write, and
still sends every byte, in order: kept-alive connections, streamed answers, refusals."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from shared.http.server import OneWriteHttpProtocol, OneWriteTransport


class Recording:
    """A transport that records its writes."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


async def test_two_writes_in_one_turn_leave_as_one() -> None:
    inner = Recording()
    transport = OneWriteTransport(inner, asyncio.get_running_loop())  # type: ignore[arg-type]
    transport.write(b"HTTP/1.1 201 Created\r\n\r\n")
    transport.write(b"{}")
    assert inner.writes == [b"HTTP/1.1 201 Created\r\n\r\n{}"]
    await asyncio.sleep(0)
    assert inner.writes == [b"HTTP/1.1 201 Created\r\n\r\n{}"]


async def test_a_lone_write_leaves_at_the_end_of_the_turn_and_close_sends_what_is_held() -> None:
    inner = Recording()
    transport = OneWriteTransport(inner, asyncio.get_running_loop())  # type: ignore[arg-type]
    transport.write(b"a")
    assert inner.writes == []
    await asyncio.sleep(0)
    assert inner.writes == [b"a"]
    transport.write(b"b")
    transport.close()
    assert inner.writes == [b"a", b"b"] and inner.closed


async def test_a_stream_never_has_more_than_one_write_held() -> None:
    inner = Recording()
    transport = OneWriteTransport(inner, asyncio.get_running_loop())  # type: ignore[arg-type]
    for chunk in (b"1", b"2", b"3", b"4", b"5"):
        transport.write(chunk)
    assert b"".join(inner.writes) == b"1234"
    await asyncio.sleep(0)
    assert b"".join(inner.writes) == b"12345"


def _app() -> FastAPI:
    app = FastAPI()

    @app.post("/echo", status_code=201)
    async def echo(body: dict[str, Any]) -> dict[str, Any]:
        return body

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            for i in range(200):
                yield f"{i:05d}\n".encode()

        return StreamingResponse(chunks(), media_type="text/plain")

    return app


@pytest.fixture
async def served() -> AsyncIterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(_app(), log_level="warning", access_log=False,
                                           http=OneWriteHttpProtocol, lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


async def test_served_answers_are_whole_on_a_kept_alive_connection(served: str) -> None:
    async with httpx.AsyncClient(base_url=served) as client:
        for i in range(20):
            answer = await client.post("/echo", json={"n": i})
            assert answer.status_code == 201 and answer.json() == {"n": i}
        streamed = await client.get("/stream")
        assert streamed.text == "".join(f"{i:05d}\n" for i in range(200))
        again = await client.post("/echo", json={"n": "last"})
        assert again.json() == {"n": "last"}


async def test_a_malformed_request_is_answered_400_and_closed(served: str) -> None:
    host, port = served.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"NOT HTTP AT ALL\r\n\r\n")
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), timeout=10)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 400 ")

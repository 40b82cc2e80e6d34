"""A read or a write whose database statement ran out of time (DB_STATEMENT_TIMEOUT_S on the
services' pools) answers 503 ``statement_timed_out`` in the one error shape, with Retry-After,
not a bare 500 that says nothing of what happened."""

from __future__ import annotations

import asyncio

import asyncpg
import nats.errors
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from shared.http.errors import install_error_handlers


@pytest.mark.parametrize("error", [
    asyncpg.QueryCanceledError("canceling statement due to statement timeout"),
    asyncpg.LockNotAvailableError("canceling statement due to lock timeout"),
    asyncpg.IdleInTransactionSessionTimeoutError(
        "terminating connection due to idle-in-transaction timeout"),
])
def test_a_clerks_read_that_ran_out_of_time_is_told_to_try_again(error: Exception) -> None:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/figures/{center_id}")
    async def figures(center_id: str) -> dict[str, str]:
        raise error

    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.get("/figures/c1")
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "5"
    body = answer.json()["error"]
    assert body["code"] == "statement_timed_out"
    assert "DB_STATEMENT_TIMEOUT_S" in body["message"]
    assert body["details"] == {"error": type(error).__name__}


def test_a_read_whose_database_answers_nothing_is_told_to_try_again() -> None:
    """PostgreSQL that answers nothing (a backend stopped, a network gone) ends no statement:
    the pool's client gives up by itself (``command_timeout``, 5 s after
    DB_STATEMENT_TIMEOUT_S; a new connection's ``timeout``) with a bare ``TimeoutError``,
    which the consumers hand back as a timed-out statement (``STORE_TIMED_OUT``) but the
    routes answered with a bare 500. Here the store is a port that takes the connection
    and never says a word. A ``TimeoutError`` from elsewhere (NATS', or the route's own)
    is no statement's: still the 500 it was."""
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/worklists/{clerk_id}")
    async def worklist(clerk_id: str) -> dict[str, str]:
        silent = await asyncio.start_server(lambda reader, writer: None, "127.0.0.1", 0)
        try:
            port = silent.sockets[0].getsockname()[1]
            await asyncpg.connect(host="127.0.0.1", port=port, user="sixstep",
                                  database="sixstep", timeout=0.2, ssl=False)
        finally:
            silent.close()
        return {}

    @app.get("/ops/dlq")
    async def dlq() -> dict[str, str]:
        raise nats.errors.TimeoutError

    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.get("/worklists/clerk-017")
        other = client.get("/ops/dlq")
    assert answer.status_code == 503, answer.text
    assert answer.headers["Retry-After"] == "5"
    assert answer.json()["error"]["code"] == "statement_timed_out"
    assert answer.json()["error"]["details"] == {"error": "TimeoutError"}
    assert other.status_code == 500

"""A read or a write whose database statement ran out of time (DB_STATEMENT_TIMEOUT_S on the
services' pools) answers 503 ``statement_timed_out`` in the one error shape, with Retry-After,
not a bare 500 that says nothing of what happened."""

from __future__ import annotations

import asyncpg
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

"""The baseline a write path is measured against: FastAPI + one asyncpg INSERT per request."""

from __future__ import annotations

import contextlib
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import uvicorn
from fastapi import FastAPI, Request


def create_app(dsn: str) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.pool = await asyncpg.create_pool(dsn, min_size=4, max_size=20)
        await app.state.pool.execute(
            "CREATE TABLE IF NOT EXISTS crud_cases (id uuid PRIMARY KEY, key text UNIQUE,"
            " body jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now())")
        yield
        await app.state.pool.close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/ready")
    async def ready() -> dict[str, str]:
        return {"status": "ready"}

    @app.post("/cases", status_code=201)
    async def create(request: Request, body: dict[str, Any]) -> dict[str, str]:
        case_id = uuid.uuid4()
        await request.app.state.pool.execute(
            "INSERT INTO crud_cases (id, key, body) VALUES ($1, $2, $3::jsonb)", case_id,
            request.headers.get("idempotency-key"), __import__("json").dumps(body))
        return {"id": str(case_id)}

    return app


if __name__ == "__main__":
    port, dsn = int(sys.argv[1]), sys.argv[2]
    uvicorn.run(create_app(dsn), host="127.0.0.1", port=port, log_level="warning",
                access_log=False)

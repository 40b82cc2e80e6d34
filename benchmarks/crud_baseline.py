"""The baseline a write path is measured against: FastAPI + one asyncpg INSERT per request.

    python benchmarks/crud_baseline.py PORT DSN [PROCESSES]

``PROCESSES`` uvicorn worker processes (default 1) share the listening socket, so the baseline
can be compared with sixstep at the same number of processes.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import uvicorn
from fastapi import FastAPI, Request


def create_app(dsn: str) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.pool = await asyncpg.create_pool(dsn, min_size=4, max_size=20)
        with contextlib.suppress(asyncpg.UniqueViolationError):  # two workers at once
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
            request.headers.get("idempotency-key"), json.dumps(body))
        return {"id": str(case_id)}

    return app


def app_from_environment() -> FastAPI:
    """The app of each worker process (uvicorn's ``--workers`` imports it by name)."""
    return create_app(os.environ["CRUD_DSN"])


if __name__ == "__main__":
    port, dsn = int(sys.argv[1]), sys.argv[2]
    processes = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    if processes == 1:
        uvicorn.run(create_app(dsn), host="127.0.0.1", port=port, log_level="warning",
                    access_log=False)
    else:
        os.environ["CRUD_DSN"] = dsn
        uvicorn.run("benchmarks.crud_baseline:app_from_environment", factory=True,
                    workers=processes, app_dir=str(Path(__file__).resolve().parent.parent),
                    host="127.0.0.1", port=port, log_level="warning", access_log=False)

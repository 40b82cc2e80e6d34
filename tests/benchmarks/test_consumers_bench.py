"""``benchmarks/consumers.py`` measures each consumer in a process set up as a deployed one:
once a service has started, its garbage collector is settled as ``serve()`` settles it."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator
from types import SimpleNamespace

from fastapi import FastAPI

from benchmarks.consumers import lifespan
from shared.http.app import GC_OLDER_THRESHOLD, GC_YOUNG_THRESHOLD
from shared.runtime import heap


async def test_each_service_runs_with_the_collector_serve_gives_it() -> None:
    runtime = SimpleNamespace()  # what the service's own lifespan leaves in app.state

    @contextlib.asynccontextmanager
    async def started(app: FastAPI) -> AsyncIterator[None]:
        app.state.runtime = runtime
        yield

    threshold = gc.get_threshold()
    gc.set_threshold(700, 10, threshold[2])  # CPython's default, as a fresh process has it
    try:
        async with lifespan(FastAPI(lifespan=started)) as got:
            assert got is runtime
            assert gc.get_threshold()[:2] == (GC_YOUNG_THRESHOLD, GC_OLDER_THRESHOLD)
            assert gc.get_freeze_count() > 0
    finally:
        heap.unfreeze()
        gc.set_threshold(*threshold)

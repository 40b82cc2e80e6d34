"""The asyncpg pool a service reads and projects with: its own schema first."""

from __future__ import annotations

from typing import Any

import asyncpg

from shared.settings import Settings


async def create_pool(settings: Settings, schema: str, *, min_size: int = 2,
                      max_size: int = 10) -> asyncpg.Pool:
    """An asyncpg pool whose connections see the service's schema first.

    The search path is a start-up parameter, so it survives the ``RESET ALL`` that asyncpg
    runs when a connection goes back to the pool.
    """
    pool: Any = await asyncpg.create_pool(
        settings.database_url, min_size=min_size, max_size=max_size,
        server_settings={"application_name": f"sixstep-{schema}",
                         "search_path": f'"{schema}", public'})
    return pool

"""Read-your-writes for the HTTP APIs: wait until a read model has applied a write's position,
and refuse at once a position that no write has had yet (it would only hold a connection for
``read_wait_timeout_s`` and end in a 504)."""

from __future__ import annotations

import asyncpg

from shared.bus.consumer import wait_for_position
from shared.kernel.errors import CommandError
from shared.settings import ServiceName, Settings


class PositionUnknown(CommandError):
    """``?after=`` names a position no write of that service has had yet."""

    status = 400
    code = "position_unknown"


class ReadModelBehind(CommandError):
    """The read model did not apply ``?after=`` within ``read_wait_timeout_s``."""

    status = 504
    code = "read_model_behind"


async def log_head(pool: asyncpg.Pool, settings: Settings, service: ServiceName) -> int | None:
    """The last position written in ``service``'s log (0 when empty); None when this service
    cannot see that log (another service's schema, not there or not granted)."""
    schema = settings.schema_for(service)
    try:
        head = await pool.fetchval(
            f'SELECT max(notification_id) FROM "{schema}"."{service}_events"')
    except (asyncpg.UndefinedTableError, asyncpg.InsufficientPrivilegeError):
        return None
    return int(head or 0)


async def wait_for_write(pool: asyncpg.Pool, settings: Settings, consumer: str,
                         service: ServiceName, after: int | None) -> None:
    """Return once ``consumer`` applied ``service``'s ``after``; 400 ``position_unknown`` for a
    position beyond the log's head, 504 ``read_model_behind`` past the bounded wait."""
    if after is None or await wait_for_position(pool, consumer, service, after, 0):
        return
    head = await log_head(pool, settings, service)
    if head is not None and after > head:
        raise PositionUnknown(f"no {service} write has position {after}; pass a position a "
                              "write answered with", position=after, service=service)
    if not await wait_for_position(pool, consumer, service, after,
                                   settings.read_wait_timeout_s):
        raise ReadModelBehind(f"the read model has not applied {service} position {after} "
                              "yet; retry shortly", position=after, service=service)

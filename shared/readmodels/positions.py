"""Read-your-writes for the HTTP APIs: wait until a read model has applied a write's position,
and refuse at once a position that no write has had yet (it would only hold a connection for
``read_wait_timeout_s`` and end in a 504)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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


@dataclass(frozen=True)
class SomeEvents:
    """The events of one service's log that a consumer takes, by their stored topics (its
    subjects take only those types): a consumer of a few events need not follow the whole
    log for ``?after=`` to be waited on.

    What it has applied is then the position of the last of them at or before ``after``:
    writes are stored one transaction after the other (the store locks its table), so once
    a write has answered with ``after`` every event at or before it is in the log. That
    last one is found by a partial index of the log over those topics (:meth:`ddl`), which
    an insert of any other event does not touch."""

    service: ServiceName
    name: str  # the index's: ``<service>_events_<name>``
    topics: Sequence[str]

    def _table(self, settings: Settings) -> str:
        return f'"{settings.schema_for(self.service)}"."{self.service}_events"'

    def _predicate(self) -> str:
        # Literals, not a parameter: the planner uses a partial index only for a predicate
        # it can see implies the index's.
        quoted = ", ".join("'" + topic.replace("'", "''") + "'" for topic in self.topics)
        return f"topic IN ({quoted})"

    def ddl(self) -> str:
        """The partial index (for the service's migrations, which run after the store
        created its table; in the schema the migrations' search path names)."""
        return (f'CREATE INDEX IF NOT EXISTS "{self.service}_events_{self.name}" ON '
                f'"{self.service}_events" (notification_id) WHERE {self._predicate()}')

    async def positions(self, pool: asyncpg.Pool, settings: Settings,
                        after: int) -> tuple[int, int]:
        """The log's head, and the position of the last of these events at or before
        ``after`` (0 when none)."""
        table = self._table(settings)
        row = await pool.fetchrow(
            f"SELECT (SELECT max(notification_id) FROM {table}) AS head, (SELECT"
            f" max(notification_id) FROM {table} WHERE notification_id <= $1 AND"
            f" {self._predicate()}) AS last", after)
        assert row is not None
        return int(row["head"] or 0), int(row["last"] or 0)


async def wait_for_write(pool: asyncpg.Pool, settings: Settings, consumer: str,
                         service: ServiceName, after: int | None,
                         only: SomeEvents | None = None) -> None:
    """Return once ``consumer`` applied ``service``'s ``after``; 400 ``position_unknown`` for a
    position beyond the log's head, 504 ``read_model_behind`` past the bounded wait.
    ``only``: the consumer takes only these events of the log; it has applied ``after`` once
    it has applied the last of them at or before ``after``."""
    if after is None:
        return
    if only is not None:
        head, last = await only.positions(pool, settings, after)
        if after > head:
            raise PositionUnknown(f"no {service} write has position {after}; pass a position "
                                  "a write answered with", position=after, service=service)
        if not await wait_for_position(pool, consumer, service, last,
                                       settings.read_wait_timeout_s):
            raise ReadModelBehind(f"the read model has not applied {service} position "
                                  f"{after} yet; retry shortly", position=after,
                                  service=service)
        return
    if await wait_for_position(pool, consumer, service, after, 0):
        return
    head = await log_head(pool, settings, service)
    if head is not None and after > head:
        raise PositionUnknown(f"no {service} write has position {after}; pass a position a "
                              "write answered with", position=after, service=service)
    if not await wait_for_position(pool, consumer, service, after,
                                   settings.read_wait_timeout_s):
        raise ReadModelBehind(f"the read model has not applied {service} position {after} "
                              "yet; retry shortly", position=after, service=service)

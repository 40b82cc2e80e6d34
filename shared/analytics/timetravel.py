"""Time travel: one case as it stood at any moment, folded from the log by the live handler.

The read model's own handler and DDL are used on a throwaway schema inside a transaction that
is rolled back at the end, so the past state is computed by exactly the code that computes the
present one, and nothing is left behind. Only the case's partition is read from the stream.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from shared.analytics.rebuild import q
from shared.analytics.replay import Clock, Replay, Selection
from shared.readmodels.readmodel import ReadModel, make_tables
from shared.settings import Settings


@dataclass
class AsOf:
    key: UUID
    moment: datetime
    clock: Clock
    events: int = 0
    last_type: str | None = None
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def exists(self) -> bool:
        return self.events > 0


async def state_as_of(settings: Settings, model: ReadModel, key: UUID, moment: datetime, *,
                      clock: Clock = "recorded") -> AsOf:
    """The rows of ``model`` for ``key`` built from the events at or before ``moment``.

    ``clock="recorded"`` answers "what did the center's system show then" (events stored by
    then); ``clock="occurred"`` answers "what had happened by then" by the counter's clock.
    """
    if not model.keys:
        raise ValueError(f"read model {model.consumer} names no key columns to pick a case by")
    selection = Selection(subjects=tuple(model.subjects(settings)), cases=(key,),
                          until=moment, clock=clock)
    result = AsOf(key, moment, clock)
    conn: asyncpg.Connection = await asyncpg.connect(settings.database_url)
    try:
        tx = conn.transaction()
        await tx.start()
        try:
            await make_tables(conn, f"asof_{secrets.token_hex(6)}", model.ddl, local=True)
            handler = model.handler(settings)
            async with Replay(settings, selection) as replay:
                async for batch in replay:
                    if batch.events:
                        await handler.apply(conn, batch.events)
                        result.events += len(batch.events)
                        result.last_type = batch.events[-1].type
            for table, column in model.keys.items():
                rows = await conn.fetch(
                    f"SELECT * FROM {q(table)} WHERE {q(column)} = $1 ORDER BY 1, 2", key)
                result.tables[table] = [dict(r) for r in rows]
        finally:
            await tx.rollback()
    finally:
        await conn.close()
    return result

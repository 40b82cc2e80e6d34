"""What a service keeps of intake's word about a resident: one consent flag and the erasure.

Follow-up keeps whether a resident may be contacted, feedback whether they may be surveyed;
both from intake's ``ConsentChanged`` and ``ResidentErased``, in their consumer's transaction
(the opaque id and two flags; no personal data). :class:`ResidentFacts` holds the rows one
batch touches: read once, folded in stream order (an erasure is final), written back once.
A service subclasses it with its table, its flag and the consent its domain speaks of.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import ClassVar, Self
from uuid import UUID

import asyncpg

from shared.contracts import Envelope

TYPES = ("ConsentChanged", "ResidentErased")


def ddl(table: str, flag: str) -> list[str]:
    """The table of one service's residents: the opaque id, its flag, erased, since when."""
    return [f"CREATE TABLE IF NOT EXISTS {table} ("
            f" resident_id uuid PRIMARY KEY, {flag} boolean NOT NULL,"
            " erased boolean NOT NULL DEFAULT false, changed_at timestamptz NOT NULL)"]


class ResidentFacts:
    """The rows one batch touches; ``table`` and ``flag`` name the service's own."""

    table: ClassVar[str]
    flag: ClassVar[str]  # the ConsentChanged field this service keeps
    lock: ClassVar[bool] = False  # FOR UPDATE: the batch decides with rows nobody changes

    def __init__(self, known: dict[UUID, tuple[bool, bool, datetime | None]]) -> None:
        self._rows = known
        self._dirty: set[UUID] = set()
        #: Residents whose consent narrowed in this batch, with the event that narrowed it.
        self.narrowed: dict[UUID, str] = {}

    @classmethod
    async def load(cls, conn: asyncpg.Connection, ids: Iterable[UUID | None]) -> Self:
        wanted = list({i for i in ids if i is not None})
        rows = await conn.fetch(
            f"SELECT resident_id, {cls.flag} AS flag, erased, changed_at FROM {cls.table}"
            " WHERE resident_id = ANY($1::uuid[])" + (" FOR UPDATE" if cls.lock else ""),
            wanted) if wanted else []
        return cls({UUID(str(r["resident_id"])): (r["flag"], r["erased"], r["changed_at"])
                    for r in rows})

    @staticmethod
    def ids_in(events: Sequence[Envelope]) -> set[UUID]:
        return {UUID(e.payload["resident_id"]) for e in events
                if e.service == "intake" and e.type in TYPES}

    def flags(self, resident_id: UUID | None) -> tuple[bool, bool] | None:
        """(flag, erased), or None for a resident intake said nothing about yet."""
        if resident_id is None or resident_id not in self._rows:
            return None
        flag, erased, _ = self._rows[resident_id]
        return flag, erased

    def remember(self, e: Envelope) -> None:
        """Fold one ConsentChanged or ResidentErased (erasure is final)."""
        if e.service != "intake" or e.type not in TYPES:
            return
        resident_id = UUID(e.payload["resident_id"])
        flag, erased, _ = self._rows.get(resident_id, (True, False, None))
        if e.type == "ResidentErased":
            erased = True
        else:
            flag = bool(e.payload[self.flag])
        self._rows[resident_id] = (flag, erased, e.occurred_at)
        self._dirty.add(resident_id)
        if erased or not flag:
            self.narrowed[resident_id] = str(e.event_id)
        else:
            self.narrowed.pop(resident_id, None)

    async def save(self, conn: asyncpg.Connection) -> None:
        if self._dirty:
            await conn.executemany(
                f"INSERT INTO {self.table} (resident_id, {self.flag}, erased, changed_at)"
                " VALUES ($1, $2, $3, $4) ON CONFLICT (resident_id) DO UPDATE SET"
                f" {self.flag} = EXCLUDED.{self.flag},"
                f" erased = {self.table}.erased OR EXCLUDED.erased,"
                " changed_at = EXCLUDED.changed_at",
                [(i, *self._rows[i]) for i in self._dirty])

"""What feedback knows of each resident: whether they may be asked, whether they are erased.

``residents`` is kept from intake's ``ConsentChanged`` and ``ResidentErased`` in the
feedback-intake consumer's transaction (one row per resident who ever had one; no personal
data, only the opaque id). Consent events are partitioned by resident and case events by case,
so they arrive in either order: a resolution decides with what is known when it is applied,
and a refusal or an erasure that arrives later withdraws the surveys still open
(``open_surveys``); the scheduler checks again before anything is sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from uuid import UUID

import asyncpg

from services.feedback.domain import Consent
from shared.contracts import Envelope

TYPES = ("ConsentChanged", "ResidentErased")

DDL = [
    "CREATE TABLE IF NOT EXISTS residents ("
    " resident_id uuid PRIMARY KEY, surveys boolean NOT NULL,"
    " erased boolean NOT NULL DEFAULT false, changed_at timestamptz NOT NULL)",
]


class Residents:
    """The rows one batch touches: read once, folded in stream order, written back once."""

    def __init__(self, known: dict[UUID, tuple[bool, bool, datetime | None]]) -> None:
        self._rows = known
        self._dirty: set[UUID] = set()
        #: Residents whose consent narrowed in this batch, with the event that narrowed it.
        self.narrowed: dict[UUID, str] = {}

    @classmethod
    async def load(cls, conn: asyncpg.Connection, ids: Iterable[UUID]) -> Residents:
        wanted = list(set(ids))
        rows = await conn.fetch(
            "SELECT resident_id, surveys, erased, changed_at FROM residents"
            " WHERE resident_id = ANY($1::uuid[]) FOR UPDATE", wanted) if wanted else []
        return cls({UUID(str(r["resident_id"])): (r["surveys"], r["erased"], r["changed_at"])
                    for r in rows})

    @staticmethod
    def ids_in(events: Sequence[Envelope]) -> set[UUID]:
        return {UUID(e.payload["resident_id"]) for e in events
                if e.service == "intake" and e.type in TYPES}

    def consent(self, resident_id: UUID | None) -> Consent:
        if resident_id is None or resident_id not in self._rows:
            return Consent()
        surveys, erased, _ = self._rows[resident_id]
        return Consent(surveys=surveys, erased=erased)

    def remember(self, e: Envelope) -> None:
        """Fold one ConsentChanged or ResidentErased (erasure is final)."""
        resident_id = UUID(e.payload["resident_id"])
        surveys, erased, _ = self._rows.get(resident_id, (True, False, None))
        if e.type == "ResidentErased":
            erased = True
        elif e.type == "ConsentChanged":
            surveys = bool(e.payload["surveys"])
        else:
            return
        self._rows[resident_id] = (surveys, erased, e.occurred_at)
        self._dirty.add(resident_id)
        if erased or not surveys:
            self.narrowed[resident_id] = str(e.event_id)
        else:
            self.narrowed.pop(resident_id, None)

    async def save(self, conn: asyncpg.Connection) -> None:
        if self._dirty:
            await conn.executemany(
                "INSERT INTO residents (resident_id, surveys, erased, changed_at)"
                " VALUES ($1, $2, $3, $4) ON CONFLICT (resident_id) DO UPDATE SET"
                " surveys = EXCLUDED.surveys, erased = residents.erased OR EXCLUDED.erased,"
                " changed_at = EXCLUDED.changed_at",
                [(i, *self._rows[i]) for i in self._dirty])


async def open_surveys(conn: asyncpg.Connection, resident_id: UUID) -> list[UUID]:
    """The resident's surveys that may still be asking: open in the surveys view, and the
    latest of each of their cases (requested by this consumer, perhaps not in the view yet)."""
    rows = await conn.fetch(
        "SELECT survey_id FROM surveys WHERE resident_id = $1"
        " AND status IN ('requested', 'sent')"
        " UNION SELECT last_survey_id FROM intake_cases WHERE resident_id = $1"
        " AND last_survey_id IS NOT NULL", resident_id)
    return [UUID(str(r["survey_id"])) for r in rows]

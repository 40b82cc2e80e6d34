"""What follow-up knows of each resident: whether they may be contacted, whether erased.

``resident_consent`` is kept from intake's ``ConsentChanged`` and ``ResidentErased`` in the
followup-rules consumer's transaction (the opaque id and two flags; no personal data). Consent
events travel by resident and case events by case, so they arrive in either order:

* a rule applied after the resident's refusal or erasure plans accordingly
  (``domain.consent_allows``), with what the whole batch says;
* a refusal or an erasure applied after a follow-up was planned brings what is still open in
  line (``pending``: the worklist's rows, and what the rules planned that the worklist may not
  show yet);
* the scheduler reads consent again whenever a follow-up or an obligation is due to move, so
  nothing planned in a race (a fan-out batch, a hand-made follow-up) ever falls due for a
  resident who said no.

The API reads it too (``PgConsents``): a follow-up planned by hand for an erased resident is a
409, outreach to one who refused contact as well.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from uuid import UUID

import asyncpg

from services.followup.domain import Consent
from shared.contracts import Envelope

TYPES = ("ConsentChanged", "ResidentErased")

DDL = [
    "CREATE TABLE IF NOT EXISTS resident_consent ("
    " resident_id uuid PRIMARY KEY, contact boolean NOT NULL,"
    " erased boolean NOT NULL DEFAULT false, changed_at timestamptz NOT NULL)",
]

#: Whatever may still reach the resident: open follow-ups and watched obligations in the
#: worklist, and what the rules planned for their cases (perhaps not in the worklist yet).
PENDING = (
    "SELECT follow_up_id AS id, 'followup' AS kind FROM followups"
    " WHERE resident_id = $1 AND status IN ('scheduled', 'due', 'missed', 'escalated')"
    " UNION SELECT aggregate_id, 'obligation' FROM obligations"
    " WHERE resident_id = $1 AND active"
    " UNION SELECT r.follow_up_id, CASE r.rule WHEN 'obligation' THEN 'obligation'"
    " ELSE 'followup' END FROM rule_followups r JOIN case_refs c USING (case_id)"
    " WHERE c.resident_id = $1")


class Residents:
    """The rows one batch touches: read once, folded in stream order, written back once."""

    def __init__(self, known: dict[UUID, tuple[bool, bool, datetime | None]]) -> None:
        self._rows = known
        self._dirty: set[UUID] = set()
        #: Residents whose consent narrowed in this batch, with the event that narrowed it.
        self.narrowed: dict[UUID, str] = {}

    @classmethod
    async def load(cls, conn: asyncpg.Connection, ids: Iterable[UUID | None]) -> Residents:
        wanted = list({i for i in ids if i is not None})
        rows = await conn.fetch(
            "SELECT resident_id, contact, erased, changed_at FROM resident_consent"
            " WHERE resident_id = ANY($1::uuid[])", wanted) if wanted else []
        return cls({UUID(str(r["resident_id"])): (r["contact"], r["erased"], r["changed_at"])
                    for r in rows})

    @staticmethod
    def ids_in(events: Sequence[Envelope]) -> set[UUID]:
        return {UUID(e.payload["resident_id"]) for e in events
                if e.service == "intake" and e.type in TYPES}

    def consent(self, resident_id: UUID | None) -> Consent:
        if resident_id is None or resident_id not in self._rows:
            return Consent()
        contact, erased, _ = self._rows[resident_id]
        return Consent(contact=contact, erased=erased)

    def remember(self, e: Envelope) -> None:
        """Fold one ConsentChanged or ResidentErased (erasure is final)."""
        if e.service != "intake" or e.type not in TYPES:
            return
        resident_id = UUID(e.payload["resident_id"])
        contact, erased, _ = self._rows.get(resident_id, (True, False, None))
        if e.type == "ResidentErased":
            erased = True
        else:
            contact = bool(e.payload["contact"])
        self._rows[resident_id] = (contact, erased, e.occurred_at)
        self._dirty.add(resident_id)
        if erased or not contact:
            self.narrowed[resident_id] = str(e.event_id)
        else:
            self.narrowed.pop(resident_id, None)

    async def save(self, conn: asyncpg.Connection) -> None:
        if self._dirty:
            await conn.executemany(
                "INSERT INTO resident_consent (resident_id, contact, erased, changed_at)"
                " VALUES ($1, $2, $3, $4) ON CONFLICT (resident_id) DO UPDATE SET"
                " contact = EXCLUDED.contact,"
                " erased = resident_consent.erased OR EXCLUDED.erased,"
                " changed_at = EXCLUDED.changed_at",
                [(i, *self._rows[i]) for i in self._dirty])


async def pending(conn: asyncpg.Connection, resident_id: UUID) -> list[tuple[UUID, str]]:
    """(aggregate id, kind) of everything that may still reach the resident."""
    return [(UUID(str(r["id"])), r["kind"]) for r in await conn.fetch(PENDING, resident_id)]


class PgConsents:
    """``application.Consents`` over ``resident_consent`` (for the API's hand-made plans)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def of(self, resident_id: UUID) -> Consent:
        row = await self.pool.fetchrow(
            "SELECT contact, erased FROM resident_consent WHERE resident_id = $1", resident_id)
        return Consent() if row is None else Consent(contact=row["contact"],
                                                     erased=row["erased"])

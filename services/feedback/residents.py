"""What feedback knows of each resident: whether they may be asked, whether they are erased.

``residents`` is kept from intake's ``ConsentChanged`` and ``ResidentErased`` in the
feedback-intake consumer's transaction (one row per resident who ever had one; no personal
data, only the opaque id). Consent events are partitioned by resident and case events by case,
so they arrive in either order: a resolution decides with what is known when it is applied,
and a refusal or an erasure that arrives later withdraws the surveys still open
(``open_surveys``); the scheduler checks again before anything is sent.
"""

from __future__ import annotations

from uuid import UUID

import asyncpg

from services.feedback.domain import Consent
from shared.readmodels.residents import TYPES, ResidentFacts, ddl

__all__ = ["DDL", "TYPES", "Residents", "open_surveys"]

DDL = ddl("residents", "surveys")


class Residents(ResidentFacts):
    """Who may be surveyed, for one batch of the feedback-intake consumer."""

    table, flag = "residents", "surveys"
    lock = True  # a resolution and a refusal in two batches at once: one waits

    def consent(self, resident_id: UUID | None) -> Consent:
        known = self.flags(resident_id)
        return Consent() if known is None else Consent(surveys=known[0], erased=known[1])


async def open_surveys(conn: asyncpg.Connection, resident_id: UUID) -> list[UUID]:
    """The resident's surveys that may still be asking: open in the surveys view, and the
    latest of each of their cases (requested by this consumer, perhaps not in the view yet)."""
    rows = await conn.fetch(
        "SELECT survey_id FROM surveys WHERE resident_id = $1"
        " AND status IN ('requested', 'sent')"
        " UNION SELECT last_survey_id FROM intake_cases WHERE resident_id = $1"
        " AND last_survey_id IS NOT NULL", resident_id)
    return [UUID(str(r["survey_id"])) for r in rows]

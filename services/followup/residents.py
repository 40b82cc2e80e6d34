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

``resident_care`` (whether a resident needs more care) and ``hinted_items`` (items eligibility
hints suggested) are kept the same way, from ``CareNeedChanged`` and ``HintShown``.

The API reads it too (``PgConsents``): a follow-up planned by hand for an erased resident is a
409, outreach to one who refused contact as well; for a resident the center does not know
(``known_residents.py``) a 404, before either is said.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import asyncpg

from services.followup import known_residents
from services.followup.domain import Consent
from shared.contracts import Envelope
from shared.readmodels.residents import TYPES, ResidentFacts, ddl

__all__ = ["DDL", "PENDING", "TYPES", "PgConsents", "Residents", "pending",
           "remember_care_and_hints"]

DDL = [
    *ddl("resident_consent", "contact"),
    # Whether the resident needs more care (intake's CareNeedChanged: one bit, never why).
    "CREATE TABLE IF NOT EXISTS resident_care ("
    " resident_id uuid PRIMARY KEY, more_care boolean NOT NULL,"
    " changed_at timestamptz NOT NULL)",
    # Items eligibility hints suggested to a resident (intake's HintShown): a policy change on
    # the item reaches them too (fanout.py), though no case of theirs is about it.
    "CREATE TABLE IF NOT EXISTS hinted_items ("
    " resident_id uuid NOT NULL, service_item text NOT NULL, center_id text NOT NULL,"
    " shown_at timestamptz NOT NULL, PRIMARY KEY (resident_id, service_item, center_id))",
    "CREATE INDEX IF NOT EXISTS hinted_items_item ON hinted_items (service_item)",
]


async def remember_care_and_hints(conn: asyncpg.Connection, events: Sequence[Envelope]) -> None:
    """Fold a batch's ``CareNeedChanged`` (the last word wins) and ``HintShown`` events, in
    the consumer's transaction; an erased resident's rows are dropped."""
    care = {UUID(e.payload["resident_id"]): (e.payload["more_care"], e.occurred_at)
            for e in events if e.service == "intake" and e.type == "CareNeedChanged"}
    if care:
        await conn.executemany(
            "INSERT INTO resident_care (resident_id, more_care, changed_at) VALUES ($1, $2, $3)"
            " ON CONFLICT (resident_id) DO UPDATE SET more_care = EXCLUDED.more_care,"
            " changed_at = EXCLUDED.changed_at", [(i, *v) for i, v in care.items()])
    hinted = [(UUID(e.payload["resident_id"]), e.payload["service_item"], e.center_id,
               e.occurred_at) for e in events if e.service == "intake" and e.type == "HintShown"]
    if hinted:
        await conn.executemany(
            "INSERT INTO hinted_items (resident_id, service_item, center_id, shown_at)"
            " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING", hinted)
    erased = [UUID(e.payload["resident_id"]) for e in events
              if e.service == "intake" and e.type == "ResidentErased"]
    if erased:  # nothing is planned for them any more: what was known of them goes too
        await conn.execute("DELETE FROM resident_care WHERE resident_id = ANY($1::uuid[])",
                           erased)
        await conn.execute("DELETE FROM hinted_items WHERE resident_id = ANY($1::uuid[])",
                           erased)

#: Whatever may still reach the resident: open follow-ups and watched obligations in the
#: worklist, and what the rules planned for their cases (perhaps not in the worklist yet).
PENDING = (
    "SELECT follow_up_id AS id, 'followup' AS kind FROM followups"
    " WHERE resident_id = $1 AND status IN ('scheduled', 'due', 'missed', 'escalated')"
    " UNION SELECT aggregate_id, 'obligation' FROM obligations"
    " WHERE resident_id = $1 AND active"
    " UNION SELECT r.follow_up_id, CASE r.rule WHEN 'obligation' THEN 'obligation'"
    " ELSE 'followup' END FROM rule_followups r JOIN case_refs c USING (case_id)"
    " WHERE c.resident_id = $1 AND r.rule <> 'referral'"  # a unit is chased, not them
    # Planned by hand naming only the case, by a release that did not yet take the case's
    # resident for it (``FollowUps.schedule_by_hand``): the case's resident's all the same;
    # or naming who applied for it on their behalf (代办): a call about the erased
    # resident's affairs, as the rules' follow-ups of the case are.
    " UNION SELECT f.follow_up_id, 'followup' FROM followups f JOIN case_refs c USING (case_id)"
    " WHERE c.resident_id = $1 AND f.source = 'api'"
    " AND f.status IN ('scheduled', 'due', 'missed', 'escalated')")


class Residents(ResidentFacts):
    """Who may be contacted, for one batch of the followup-rules consumer; and which of the
    batch's residents need more care (``cared``: ``resident_care`` as read, then the batch's
    ``CareNeedChanged``, the last word winning)."""

    table, flag = "resident_consent", "contact"

    def __init__(self, known: dict[UUID, tuple[bool, bool, datetime | None]],
                 cared: set[UUID] | None = None) -> None:
        super().__init__(known)
        self.cared = set(cared or ())

    def remember(self, e: Envelope) -> None:
        if e.service == "intake" and e.type == "CareNeedChanged":
            resident_id = UUID(e.payload["resident_id"])
            if e.payload["more_care"]:
                self.cared.add(resident_id)
            else:
                self.cared.discard(resident_id)
            return
        super().remember(e)

    def more_care(self, resident_id: UUID | None) -> bool:
        return resident_id is not None and resident_id in self.cared

    def consent(self, resident_id: UUID | None) -> Consent:
        known = self.flags(resident_id)
        return Consent() if known is None else Consent(contact=known[0], erased=known[1])


async def pending(conn: asyncpg.Connection, resident_id: UUID) -> list[tuple[UUID, str]]:
    """(aggregate id, kind) of everything that may still reach the resident."""
    return [(UUID(str(r["id"])), r["kind"]) for r in await conn.fetch(PENDING, resident_id)]


SERVED_CASE = (
    "SELECT EXISTS (SELECT 1 FROM case_refs WHERE case_id = $1"
    " AND $2 IN (clerk_id, owner_clerk))"
    " OR EXISTS (SELECT 1 FROM case_staff WHERE case_id = $1 AND staff = $2)"
    # 帮办: who moved one of its help tasks along (the supervisor team's names nobody)
    " OR EXISTS (SELECT 1 FROM help_tasks WHERE case_id = $1 AND $2 = ANY(worked_by))")


class PgConsents:
    """``application.Consents`` over ``resident_consent`` (for the API's hand-made plans)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def of(self, resident_id: UUID) -> Consent:
        row = await self.pool.fetchrow(
            "SELECT contact, erased FROM resident_consent WHERE resident_id = $1", resident_id)
        return Consent() if row is None else Consent(contact=row["contact"],
                                                     erased=row["erased"])

    async def known_at(self, resident_id: UUID, center_id: str) -> bool:
        return await known_residents.known_at(self.pool, resident_id, center_id)

    async def case_at(self, case_id: UUID, center_id: str) -> bool:
        """Whether intake opened the case at the center (as far as the rules have read)."""
        return bool(await self.pool.fetchval(
            "SELECT EXISTS (SELECT 1 FROM case_refs WHERE case_id = $1 AND center_id = $2)",
            case_id, center_id))

    async def needs_more_care(self, follow_up_id: UUID) -> bool:
        """Whether intake said the follow-up's resident needs more care (``resident_care``,
        through the worklist's row of the follow-up: planned days before it is completed)."""
        return bool(await self.pool.fetchval(
            "SELECT rc.more_care FROM followups f JOIN resident_care rc USING (resident_id)"
            " WHERE f.follow_up_id = $1", follow_up_id))

    async def served_case(self, case_id: UUID, staff: str) -> bool:
        """Whether ``staff`` opened or served the case (its first clerk, its owner, or one
        ``case_staff`` names: took a step of it, had it handed to them, was asked to help; or
        moved one of its help tasks along: ``help_tasks.worked_by``), as far as the rules
        have read intake and the worklist follow-up's own events."""
        return bool(await self.pool.fetchval(SERVED_CASE, case_id, staff))

    async def resident_of_case(self, case_id: UUID) -> UUID | None:
        """The resident the case was opened for (None: without one, or not known yet)."""
        found = await self.pool.fetchval(
            "SELECT resident_id FROM case_refs WHERE case_id = $1", case_id)
        return found if found is None else UUID(str(found))

    async def applicant_of_case(self, case_id: UUID) -> UUID | None:
        """Who applied for the case on its resident's behalf (代办; None: no one else)."""
        return await known_residents.applicant_of_case(self.pool, case_id)

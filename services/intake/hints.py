"""Eligibility hints at the counter: what else a resident may be entitled to, and what came of
each suggestion.

After a lookup the counter asks for the resident's hints. They are worked out there and then
from what the center already holds: the age and sex the ID number carries (opened from the
vault for this one request, audited, never stored or sent), the facts the resident declared
(sealed in the vault with their consent), and the items of their past cases at this center;
the rules are data (``shared.catalogue.eligibility``). Each item suggested becomes a ``Hint``
(``HintShown``, once per center, resident, rule version and item); the clerk records whether
the resident took it up (``HintTaken``) or not (``HintDismissed``). The events carry opaque
ids only, so a policy change on the item can reach those it was shown to (follow-up's fan-out).

A lookup is also when the resident's need for more care is checked against the calendar: a
resident who turned 80 since the log was last told is told now (``CareNeedChanged``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
from eventsourcing.domain import Aggregate

from services.intake import commands as c
from services.intake.application import Residents
from services.intake.domain import Hint, hint_id_for
from services.intake.vault import Access, Vault
from shared.catalogue import Catalogue, LocalizedText
from shared.catalogue.eligibility import Profile, Rules, Suggestion, age_on, needs_more_care
from shared.eventstore.command_path import CommandPath, check_version
from shared.eventstore.group_commit import GroupCommitter, Unit, Written
from shared.kernel.clock import Clock
from shared.kernel.errors import Forbidden, RuleViolated
from shared.kernel.meta import COMMAND_DIGEST, Meta, meta_for
from shared.kernel.moments import Moments


@dataclass(frozen=True)
class Shown:
    """A hint as the counter shows it."""

    hint_id: UUID
    suggestion: Suggestion
    status: str
    version: int


class Hints:
    def __init__(self, committer: GroupCommitter, vault: Vault, residents: Residents,
                 rules: Rules, catalogue: Catalogue, pool: asyncpg.Pool, clock: Clock,
                 moments: Moments | None = None) -> None:
        self.path = CommandPath(committer, clock, moments)
        self.committer = committer
        self.vault = vault
        self.residents = residents
        self.rules = rules
        self.catalogue = catalogue
        self.pool = pool
        self.clock = clock

    async def show(self, resident_id: UUID, access: Access) -> list[Shown]:
        """The resident's hints at the caller's center, each recorded as shown once."""
        principal = access.principal
        center = principal.center_id
        if center is None:
            raise Forbidden("hints are shown at a center: the token names none")
        held = await self.vault.profile(resident_id, access)
        age = age_on(held.birth, self.vault.today())
        if needs_more_care(age, held.facts) != bool(held.more_care_told):
            await self.residents.retell_care(resident_id, principal.actor)
        past = frozenset(r["service_item"] for r in await self.pool.fetch(
            "SELECT DISTINCT service_item FROM cases WHERE resident_id = $1 AND center_id = $2",
            resident_id, center))
        suggestions = self.rules.suggest(Profile(age=age, sex=held.sex, facts=held.facts,
                                                 past_items=past))
        meta = meta_for(principal.actor, None, self.clock.now(), center_id=center,
                        case_id=None, correlation_id=access.correlation_id)
        return [await self._shown(resident_id, center, s, meta) for s in suggestions]

    async def _shown(self, resident_id: UUID, center: str, suggestion: Suggestion,
                     meta: Meta) -> Shown:
        hint_id = hint_id_for(center, resident_id, suggestion.rule_id, suggestion.rule_version,
                              suggestion.service_item)
        seen: dict[str, Any] = {}

        def run(unit: Unit) -> Aggregate:
            hint: Hint | None = unit.find(hint_id)
            if hint is None:
                hint = Hint(id=hint_id, resident_id=resident_id, rule_id=suggestion.rule_id,
                            rule_version=suggestion.rule_version,
                            service_item=suggestion.service_item, meta=dict(meta))
                unit.add(hint)
            seen["status"] = hint.status
            return hint

        written = await self.committer.submit(run, [hint_id])
        return Shown(hint_id, suggestion, seen["status"], written.version)

    async def take(self, hint_id: UUID, cmd: c.TakeHint, actor: str, key: str | None,
                   expected_version: int | None = None) -> Written:
        """The case opened for the item, when named, is loaded beside the hint: another
        center's is a 404 as an unknown one (``Unit.get``), another resident's a 409.
        Another center's hint is a 404, as one never shown (``Unit.get``: its id is worked
        out from the center, the resident and the rule)."""
        meta = self.path.meta(actor, key, cmd)
        if cmd.case_id is None:
            return await self.path.on(hint_id, "hint", "HintTaken",
                                      lambda hint, m: hint.take(None, m), meta, key,
                                      expected_version)
        case_id = cmd.case_id
        await self.path.in_reach_first(hint_id, "hint")  # before the case beside it loads
        await self.path.in_reach_first(case_id, "case")  # another center's: nor is it loaded

        def run(unit: Unit) -> Aggregate:
            hint: Hint = unit.get(hint_id, "hint")
            hint.check_new_command(key, "HintTaken", digest=meta.get(COMMAND_DIGEST))
            meta.update(hint.meta_for(meta))
            check_version(hint, "hint", expected_version)
            case = unit.get(case_id, "case")
            if case.resident_id != hint.resident_id:
                raise RuleViolated("the case taken up is another resident's",
                                   rule="hint_case_resident", case_id=str(case_id))
            hint.take(case_id, meta)
            return hint

        return await self.committer.submit(run, [hint_id, case_id])

    async def dismiss(self, hint_id: UUID, cmd: c.DismissHint, actor: str, key: str | None,
                      expected_version: int | None = None) -> Written:
        meta = self.path.meta(actor, key, cmd)
        return await self.path.on(hint_id, "hint", "HintDismissed",
                                  lambda hint, m: hint.dismiss(m), meta, key, expected_version)

    def policy_basis(self, code: str) -> LocalizedText:
        return self.catalogue.require(code).policy_basis

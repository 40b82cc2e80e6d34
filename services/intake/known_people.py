"""Who a case is about, as the vault knows them: what the case's free text is scrubbed of.

A case names its resident (and the applicant acting for them) once, when it is opened
(``CaseOpened.resident_id``, ``applicant_id``), and never changes them. Before a command
with free text reaches the case, the application asks here for their name, phone, ID number
and address (``Vault.identity_terms``), and hands them to the scrubber in the command's meta
(``shared.kernel.scrubbing.KNOWN_PERSON``); they are never stored. Whom a case names is read
from the case's first stored event (not from the read model, which may not have the case
yet) and remembered: it is a fact that never changes.
The personal data itself is fetched anew for every command and not kept, and only for a
caller the case is in reach of: another center's clerk naming the case gets the command's 403,
not a read of its resident from the vault first (as follow-up's and feedback's commands ask
intake only for a caller in reach: ``CommandPath.scrubbing``).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Any, NamedTuple, Protocol
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application

from shared.eventstore.group_commit import out_of_scope
from shared.kernel.privacy import KnownPerson
from shared.security.principals import Principal


class _Named(NamedTuple):
    """What a case's (or plan's) first event says of it: whom it names, and where it is (the
    center and case the command path's scope check reads)."""

    resident_id: UUID | None
    applicant_id: UUID | None
    center_id: str | None
    case_id: UUID | None


class IdentityTerms(Protocol):
    async def identity_terms(self, resident_id: UUID) -> KnownPerson | None: ...


class KnownPeople:
    def __init__(self, app: Application, vault: IdentityTerms, *,
                 remembered: int = 50_000) -> None:
        self.app = app
        self.vault = vault
        self._residents: OrderedDict[UUID, _Named] = OrderedDict()
        self._remembered = remembered

    async def of_case(self, case_id: UUID, caller: Principal | None = None
                      ) -> KnownPerson | None:
        """The resident the case (or plan: its beneficiary) names, with the applicant acting
        for them (代办), or None (no resident, erased, no such case, or a case out of
        ``caller``'s reach: another center's, which the command refuses as it loads it)."""
        named = await self._named(case_id)
        if named is None or out_of_scope(caller, named) is not None:
            return None
        resident, applicant = named.resident_id, named.applicant_id
        person = await self.of_resident(resident)
        if applicant is None or applicant == resident:
            return person
        other = await self.of_resident(applicant)  # 代办: the relative applying, too
        if person is None:
            return other
        both = person.also(other)
        _ = both.needles  # prepared here, not on the writer thread
        return both

    async def of_resident(self, resident_id: UUID | None) -> KnownPerson | None:
        """The resident's own name, phone, ID number and address to scrub, or None."""
        if resident_id is None:
            return None
        person = await self.vault.identity_terms(resident_id)
        if person is not None:
            _ = person.needles  # prepared here, not on the writer thread
        return person

    async def _named(self, case_id: UUID) -> _Named | None:
        """The resident and the applicant the case's first event names (None: no such case)."""
        if case_id in self._residents:
            self._residents.move_to_end(case_id)
            return self._residents[case_id]
        try:
            named = await asyncio.to_thread(self._first_event_names, case_id)
        except AggregateNotFoundError:
            return None  # not remembered: the case may be opened in a moment
        self._residents[case_id] = named
        while len(self._residents) > self._remembered:
            self._residents.popitem(last=False)
        return named

    def _first_event_names(self, case_id: UUID) -> _Named:
        case: Any = self.app.repository.get(case_id, version=1)
        return _Named(getattr(case, "resident_id", None), getattr(case, "applicant_id", None),
                      getattr(case, "center_id", None), getattr(case, "case_id", None))

"""Intake's use cases: each turns one command into events on one case, committed in batches."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from services.intake import commands as c
from services.intake.domain import Case, Meta, case_id_for
from shared.catalogue import Catalogue
from shared.errors import InvalidCommand, VersionConflict
from shared.eventstore import ServiceApplication
from shared.group_commit import GroupCommitter, Unit, Written
from shared.moments import Moments
from shared.scrubbing import KNOWN_PERSON

if TYPE_CHECKING:
    from services.intake.known_people import KnownPeople

CHILD_NAMESPACE = UUID("8d3f2e61-4b7a-4c0e-9f15-2a6b7c8d9e0f")


class IntakeApplication(ServiceApplication):
    name = "intake"


def system_clock() -> datetime:
    return datetime.now(UTC)


class Intake:
    """The intake use cases, one method each, shared by the HTTP API and the demo.

    ``known``: who a case is about, from the vault, so that a command's free text is scrubbed
    of that resident's own name, phone, ID number and address (``known_people.py``); without
    it the scrubber's patterns still apply. ``moments``: the window a command's
    ``occurred_at`` and days must lie in; ``clock``: the service's now."""

    def __init__(self, committer: GroupCommitter, catalogue: Catalogue,
                 known: KnownPeople | None = None, moments: Moments | None = None,
                 clock: Callable[[], datetime] = system_clock) -> None:
        self.committer = committer
        self.catalogue = catalogue
        self.known = known
        self.moments = moments or Moments()
        self.clock = clock

    def meta_for(self, command: c._Command, actor: str, key: str | None) -> Meta:
        now = self.clock()
        self.moments.check(command, now)
        return {
            "actor": actor,
            "occurred_at": command.occurred_at or now,
            "causation_id": key,
            "correlation_id": command.correlation_id,
        }

    def _known_item(self, code: str) -> None:
        if self.catalogue.get(code) is None:
            raise InvalidCommand(
                f"service item {code!r} is not in the catalogue",
                field="service_item",
                service_item=code,
            )

    async def open_case(self, cmd: c.OpenCase, actor: str, key: str) -> Written:
        self._known_item(cmd.service_item)
        case_id = case_id_for(cmd.center_id, key)
        meta = self.meta_for(cmd, actor, key)
        meta["center_id"] = cmd.center_id
        meta["case_id"] = case_id

        def run(unit: Unit) -> Aggregate:
            existing = unit.find(case_id)
            if existing is not None:
                existing.check_new_command(key, "CaseOpened")
            case = Case(
                id=case_id,
                center_id=cmd.center_id,
                counter_id=cmd.counter_id,
                clerk_id=cmd.clerk_id,
                channel=cmd.channel.value,
                service_item=cmd.service_item,
                resident_id=cmd.resident_id,
                meta=meta,
            )
            unit.add(case)
            return case

        return await self.committer.submit(run, [case_id])

    async def _on_case(
        self,
        case_id: UUID,
        kind: str,
        key: str | None,
        expected_version: int | None,
        act: Any,
        meta: Meta,
    ) -> Written:
        # Every command on a case carries free text: the resident the case names is
        # scrubbed from it (shared.scrubbing), in memory, never stored.
        if self.known is not None and (person := await self.known.of_case(case_id)):
            meta[KNOWN_PERSON] = person

        def run(unit: Unit) -> Aggregate:
            case: Case = unit.get(case_id)
            case.check_new_command(key, kind)
            meta["center_id"] = case.center_id
            meta["case_id"] = case.id
            if expected_version is not None and case.version != expected_version:
                raise VersionConflict(
                    f"case is at version {case.version}, not {expected_version}",
                    current_version=case.version,
                    expected_version=expected_version,
                )
            act(case)
            return case

        return await self.committer.submit(run, [case_id])

    async def hear_request(
        self,
        case_id: UUID,
        cmd: c.HearRequest,
        actor: str,
        key: str | None,
        expected_version: int | None = None,
    ) -> Written:
        meta = self.meta_for(cmd, actor, key)
        return await self._on_case(
            case_id,
            "RequestHeard",
            key,
            expected_version,
            lambda case: case.hear_request(cmd.words, meta),
            meta=meta,
        )

    async def restate_request(
        self,
        case_id: UUID,
        cmd: c.RestateRequest,
        actor: str,
        key: str | None,
        expected_version: int | None = None,
    ) -> Written:
        meta = self.meta_for(cmd, actor, key)
        return await self._on_case(
            case_id,
            "RequestRestated",
            key,
            expected_version,
            lambda case: case.restate_request(cmd.restatement, cmd.confirmed, cmd.correction, meta),
            meta=meta,
        )

    async def note_concerns(
        self,
        case_id: UUID,
        cmd: c.NoteConcerns,
        actor: str,
        key: str | None,
        expected_version: int | None = None,
    ) -> Written:
        meta = self.meta_for(cmd, actor, key)
        return await self._on_case(
            case_id,
            "ConcernsNoted",
            key,
            expected_version,
            lambda case: case.note_concerns(
                cmd.needs, cmd.worries, cmd.emotion.value, cmd.urgency.value, meta
            ),
            meta=meta,
        )

    async def give_guidance(
        self,
        case_id: UUID,
        cmd: c.GiveGuidance,
        actor: str,
        key: str | None,
        expected_version: int | None = None,
    ) -> Written:
        if cmd.service_item:
            self._known_item(cmd.service_item)
        meta = self.meta_for(cmd, actor, key)
        return await self._on_case(
            case_id,
            "GuidanceGiven",
            key,
            expected_version,
            lambda case: case.give_guidance(
                cmd.service_item or case.service_item,
                cmd.policy_basis,
                cmd.eligibility.value,
                cmd.promised,
                cmd.missing_documents,
                meta,
            ),
            meta=meta,
        )

    async def take_action(
        self,
        case_id: UUID,
        cmd: c.TakeAction,
        actor: str,
        key: str | None,
        expected_version: int | None = None,
    ) -> Written:
        meta = self.meta_for(cmd, actor, key)
        return await self._on_case(
            case_id,
            "ActionTaken",
            key,
            expected_version,
            lambda case: case.take_action(cmd.kind.value, cmd.description, cmd.referred_to, meta),
            meta=meta,
        )

    async def note_deadline(
        self,
        case_id: UUID,
        cmd: c.NoteDeadline,
        actor: str,
        key: str | None,
        expected_version: int | None = None,
    ) -> Written:
        meta = self.meta_for(cmd, actor, key)
        deadline_id = uuid5(CHILD_NAMESPACE, f"{case_id}:deadline:{key or datetime.now(UTC)}")
        return await self._on_case(
            case_id,
            "DeadlineNoted",
            key,
            expected_version,
            lambda case: case.note_deadline(deadline_id, cmd.due_on, cmd.description, meta),
            meta=meta,
        )

    async def declare_obligation(
        self,
        case_id: UUID,
        cmd: c.DeclareObligation,
        actor: str,
        key: str | None,
        expected_version: int | None = None,
    ) -> Written:
        meta = self.meta_for(cmd, actor, key)
        obligation_id = uuid5(CHILD_NAMESPACE, f"{case_id}:obligation:{key or datetime.now(UTC)}")
        return await self._on_case(
            case_id,
            "ObligationDeclared",
            key,
            expected_version,
            lambda case: case.declare_obligation(
                obligation_id, cmd.description, cmd.cadence.value, cmd.next_due_on, meta
            ),
            meta=meta,
        )

    async def resolve_case(
        self,
        case_id: UUID,
        cmd: c.ResolveCase,
        actor: str,
        key: str | None,
        expected_version: int | None = None,
    ) -> Written:
        meta = self.meta_for(cmd, actor, key)
        return await self._on_case(
            case_id,
            "CaseResolved",
            key,
            expected_version,
            lambda case: case.resolve(
                cmd.outcome.value, cmd.explanation, cmd.emotion_defused, meta
            ),
            meta=meta,
        )

    async def reopen_case(
        self,
        case_id: UUID,
        cmd: c.ReopenCase,
        actor: str,
        key: str | None,
        expected_version: int | None = None,
    ) -> Written:
        meta = self.meta_for(cmd, actor, key)
        return await self._on_case(
            case_id,
            "CaseReopened",
            key,
            expected_version,
            lambda case: case.reopen(cmd.reason, meta),
            meta=meta,
        )

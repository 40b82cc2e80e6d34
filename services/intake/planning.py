"""Intake's plan use cases: draw up a plan for one beneficiary, add a step, link a case opened
later to its step. Each runs in the group commit with the cases it names loaded beside the
plan, so a case of another center is refused where it is loaded (``Unit.get``) and a case for
another beneficiary by the plan's own rule (``Plan.check_case``). A plan's free text (its
title, each step's ``what``) is scrubbed of its beneficiary's own name, phone, ID number and
address, as a case's is (``known_people.py``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from uuid import UUID

from eventsourcing.domain import Aggregate

from services.intake import commands as c
from services.intake.domain import Case
from services.intake.known_people import KnownPeople
from services.intake.plan import CaseRef, Plan, plan_id_for, step_id_for
from services.intake.vault import Access, Vault
from shared.catalogue import Catalogue
from shared.eventstore.command_path import CommandPath, check_version
from shared.eventstore.group_commit import Unit, Written
from shared.kernel.errors import AlreadyDoneError, CommandError, InvalidCommand
from shared.kernel.meta import COMMAND_DIGEST, Meta
from shared.kernel.scrubbing import KNOWN_PERSON
from shared.security.principals import Principal, current_caller


def _case_of(unit: Unit, case_id: UUID | None) -> CaseRef | None:
    """A case a step names, loaded and scope-checked (another center's is a 404, as for
    a case nobody has: ``Unit.get``)."""
    if case_id is None:
        return None
    case: Case = unit.get(case_id, "case")
    return case.id, case.center_id, case.resident_id, case.service_item


class Plans:
    """Linked plans across service items (``plan.py``), through the one command path."""

    def __init__(self, path: CommandPath, catalogue: Catalogue, vault: Vault | None,
                 known: KnownPeople | None = None) -> None:
        self.path = path
        self.catalogue = catalogue
        self.vault = vault
        self.known = known

    async def _scrubbing(self, meta: Meta, resident_id: UUID | None = None,
                         plan_id: UUID | None = None) -> Meta:
        """``meta`` with the beneficiary to scrub from the plan's free text (in memory only)."""
        if self.known is None:
            return meta
        person = (await self.known.of_resident(resident_id) if resident_id is not None
                  else await self.known.of_case(plan_id, current_caller())  # in reach only
                  if plan_id is not None else None)
        if person is not None:
            meta[KNOWN_PERSON] = person
        return meta

    def _known_items(self, steps: list[c.PlanStep]) -> None:
        for n, step in enumerate(steps):
            if self.catalogue.get(step.service_item) is None:
                raise InvalidCommand(f"service item {step.service_item!r} is not in the "
                                     "catalogue", field=f"steps[{n}].service_item",
                                     service_item=step.service_item)

    async def draw_up(self, cmd: c.DrawUpPlan, actor: str, key: str,
                      principal: Principal) -> Written:
        """A plan with its steps, in one commit. The beneficiary needs the same standing as
        a case's resident (registered here, or present: the vault's rule)."""
        self._known_items(cmd.steps)
        if self.vault is None:
            raise InvalidCommand("plans name a resident: this intake has no vault",
                                 field="resident_id")
        plan_id = plan_id_for(cmd.center_id, key)
        meta = self.path.meta(actor, key, cmd, center_id=cmd.center_id)

        def answered(unit: Unit) -> None:
            """A retried drawing-up answers as the first did."""
            existing = unit.find(plan_id)
            if existing is not None:
                existing.check_new_command(key, "PlanDrawnUp", actor, meta.get(COMMAND_DIGEST))
                raise AlreadyDoneError(plan_id, 1)

        if done := await self.path.created(plan_id, "PlanDrawnUp", key, actor, meta):
            # Drawn up already under this key (a retry), or the key was another command's,
            # or a sent_at far off the clock under a key nobody used (422, decided where the
            # key is looked up): the vault is not asked, so its audit trail holds no
            # admission that no plan recorded (as for a case's opening).
            return done
        try:
            await self.vault.admit_case(cmd.resident_id, Access(principal, "plan drawn up",
                                                                cmd.correlation_id))
        except CommandError as refused:
            # Admitted the first time (the grant may have expired since): the first answer.
            error = refused

            def retried(unit: Unit) -> Aggregate:
                answered(unit)
                raise error

            return await self.path.committer.submit(retried, [plan_id])
        await self._scrubbing(meta, resident_id=cmd.resident_id)

        def run(unit: Unit) -> Aggregate:
            answered(unit)
            plan = Plan(id=plan_id, plan_id=plan_id, center_id=cmd.center_id,
                        counter_id=cmd.counter_id, resident_id=cmd.resident_id,
                        title=cmd.title, meta=meta)
            unit.add(plan)  # the caller's center is checked here
            judged = self.path.judged_at(meta)
            for n, step in enumerate(cmd.steps, start=1):
                _add(plan, unit, step, n, meta, judged)
            return plan

        cases = [s.case_id for s in cmd.steps if s.case_id is not None]
        # After the vault's admission, not before: a case nobody has is refused after it
        # (by the command), so ours refused before it left no audit line where none's did.
        await self._cases_in_reach(cases)
        return await self.path.committer.submit(run, [plan_id, *cases])

    async def _cases_in_reach(self, cases: list[UUID]) -> None:
        """Each case a step names refused on its first event when another center's, before
        the command loads it whole (as for a case nobody has: nothing of it is read). Until
        December 2026 a clerk's own plan naming our case had it loaded whole, then refused."""
        for case_id in dict.fromkeys(cases):
            await self.path.in_reach_first(case_id, "case")

    async def add_step(self, plan_id: UUID, cmd: c.AddPlanStep, actor: str, key: str | None,
                       expected_version: int | None = None) -> Written:
        self._known_items([cmd])
        meta = await self._scrubbing(self.path.meta(actor, key, cmd), plan_id=plan_id)
        return await self._on_plan(plan_id, "PlanStepAdded", meta, key, expected_version,
                                   [cmd.case_id] if cmd.case_id else [],
                                   lambda plan, unit: _add(plan, unit, cmd,
                                                           len(plan.steps) + 1, meta,
                                                           self.path.judged_at(meta)))

    async def link_case(self, plan_id: UUID, cmd: c.LinkCase, actor: str, key: str | None,
                        expected_version: int | None = None) -> Written:
        meta = self.path.meta(actor, key, cmd)

        def act(plan: Plan, unit: Unit) -> None:
            case = _case_of(unit, cmd.case_id)
            assert case is not None
            plan.link_case(step_id_for(plan.id, cmd.step), case, meta)

        return await self._on_plan(plan_id, "PlanCaseLinked", meta, key, expected_version,
                                   [cmd.case_id], act)

    async def _on_plan(self, plan_id: UUID, kind: str, meta: Meta, key: str | None,
                       expected_version: int | None, cases: list[UUID],
                       act: Callable[[Plan, Unit], object]) -> Written:
        """The command path's steps (load, scope, key, meta, If-Match, verb) on a plan, with
        the cases the verb reads loaded beside it."""

        def run(unit: Unit) -> Aggregate:
            plan: Plan = unit.get(plan_id, "plan")
            plan.check_new_command(key, kind, meta.get("actor"),
                                   digest=meta.get(COMMAND_DIGEST))
            meta.update(plan.meta_for(meta))
            check_version(plan, "plan", expected_version)
            act(plan, unit)
            return plan

        if cases:  # another center's plan, or case: refused before anything is loaded
            await self.path.in_reach_first(plan_id, "plan")
            await self._cases_in_reach(cases)
        return await self.path.committer.submit(run, [plan_id, *cases])


def _add(plan: Plan, unit: Unit, step: c.PlanStep, seq: int, meta: Meta,
         judged_at: datetime | None) -> UUID:
    """Step ``seq`` of ``plan``; its ``depends_on`` names an earlier step by its place;
    ``judged_at``: the backdated post's judged moment (``Moments.judged_at``), else None."""
    if step.depends_on is not None and step.depends_on >= seq:
        raise InvalidCommand("a step depends on an earlier step (its place, 1 first)",
                             field="depends_on", seq=seq, depends_on=step.depends_on)
    depends = step_id_for(plan.id, step.depends_on) if step.depends_on else None
    return plan.add_step(step.service_item, step.effective_on, step.timing.value, depends,
                         _case_of(unit, step.case_id), step.what, meta, judged_at)

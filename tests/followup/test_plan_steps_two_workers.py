"""Two workers of follow-up's rules (``CONSUMER_PARTITIONS``): a plan's events travel on the
plan's partition, a case's on the case's. A plan step naming a case (added on it, or linked to
it later) and that case's handover or urgency, each applied while the other's transaction is
still open, in both orders: the step's reminder ends with whoever has the case now, high
priority when it is urgent. Before, each read before the other committed: the step planned
its reminder for the first clerk at normal priority, and the handover (or urgency) found no
reminder to move (or prioritise).

Sunday 20 December 2026 at the counter; the steps take effect that Sunday (the reminder at
once), on New Year's Day 2027 (a holiday of a provisional year) and in March 2028 (a year the
holiday package does not know)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import date

import asyncpg

from services.followup.domain import follow_up_id_for
from shared.contracts import Envelope
from shared.settings import Settings
from tests.followup.story import DECEMBER_20, center_day
from tests.followup.test_care_checks import _blocked_or_done
from tests.followup.test_rules_one_round import _event, _opened, _plan_event

EFFECTIVE = [date(2026, 12, 20), date(2027, 1, 1), date(2028, 3, 1)]


def _step(plan_id: uuid.UUID, step_id: uuid.UUID, resident: uuid.UUID, on: date,
          case_id: uuid.UUID | None) -> Envelope:
    return _plan_event(plan_id, 2, "PlanStepAdded", DECEMBER_20, {
        "step_id": str(step_id), "seq": 1, "service_item": "SA-HARDSHIP-SUBSIDY",
        "effective_on": on.isoformat(), "timing": "day",
        "case_id": str(case_id) if case_id else None, "resident_id": str(resident),
        "what": "补交材料后审核"})


def _handed_to_the_team(case_id: uuid.UUID) -> Envelope:
    return _event(case_id, 2, "CaseHandedOver", DECEMBER_20, {
        "to_team": "elderly-care", "from_clerk": "clerk-017", "first_clerk": "clerk-017",
        "reason": "涉及多部门，需小组协调"})


def _noted_urgent(case_id: uuid.UUID) -> Envelope:
    return _event(case_id, 2, "ConcernsNoted", DECEMBER_20, {
        "emotion": "anxious", "urgency": "high", "needs_defusing": False})


async def _at_the_same_instant(pool: asyncpg.Pool, rules: object, first: list[Envelope],
                               second: list[Envelope]) -> None:
    """``first`` applied by one worker, its transaction held open until ``second``, applied by
    the other, waits for a lock or has finished (the barrier: no sleep)."""
    apply = rules.apply  # type: ignore[attr-defined]
    async with pool.acquire() as one, pool.acquire() as other:
        async with one.transaction():
            await apply(one, first)

            async def then() -> None:
                async with other.transaction():
                    await apply(other, second)
            later = asyncio.create_task(then())
            await _blocked_or_done(pool, other.get_server_pid(), later)
        await later


Scenario = Callable[[uuid.UUID, uuid.UUID, uuid.UUID, uuid.UUID, date],
                    tuple[list[Envelope], Envelope, Envelope]]


def _added_on_the_case_and_handed_over(plan_id: uuid.UUID, step_id: uuid.UUID,
                                       resident: uuid.UUID, case_id: uuid.UUID, on: date
                                       ) -> tuple[list[Envelope], Envelope, Envelope]:
    return ([_opened(case_id, resident, DECEMBER_20)],
            _step(plan_id, step_id, resident, on, case_id), _handed_to_the_team(case_id))


def _added_on_the_case_and_noted_urgent(plan_id: uuid.UUID, step_id: uuid.UUID,
                                        resident: uuid.UUID, case_id: uuid.UUID, on: date
                                        ) -> tuple[list[Envelope], Envelope, Envelope]:
    return ([_opened(case_id, resident, DECEMBER_20)],
            _step(plan_id, step_id, resident, on, case_id), _noted_urgent(case_id))


def _linked_and_handed_over(plan_id: uuid.UUID, step_id: uuid.UUID, resident: uuid.UUID,
                            case_id: uuid.UUID, on: date
                            ) -> tuple[list[Envelope], Envelope, Envelope]:
    linked = _plan_event(plan_id, 3, "PlanCaseLinked", DECEMBER_20, {
        "step_id": str(step_id), "case_id": str(case_id)})
    return ([_step(plan_id, step_id, resident, on, None),
             _opened(case_id, resident, DECEMBER_20)], linked, _handed_to_the_team(case_id))


async def test_a_plan_step_and_its_cases_handover_or_urgency_applied_at_once_by_two_workers(
        settings: Settings) -> None:
    expected = {_added_on_the_case_and_handed_over: (None, "elderly-care", "normal"),
                _added_on_the_case_and_noted_urgent: ("clerk-017", None, "high"),
                _linked_and_handed_over: (None, "elderly-care", "normal")}
    async with center_day(settings, DECEMBER_20, with_intake=False) as center:
        rules = center.app.state.rules
        pool: asyncpg.Pool = center.app.state.pool
        store = center.app.state.followups.committer.app
        seen, wanted = [], []
        for scenario, owner in expected.items():
            for on in EFFECTIVE:
                for step_first in (True, False):
                    plan_id, step_id, resident, case_id = (uuid.uuid4() for _ in range(4))
                    before, step, case = scenario(plan_id, step_id, resident, case_id, on)
                    async with pool.acquire() as conn, conn.transaction():
                        await rules.apply(conn, before)
                    first, second = (step, case) if step_first else (case, step)
                    await _at_the_same_instant(pool, rules, [first], [second])
                    reminder = store.repository.get(follow_up_id_for("plan-step", step_id))
                    what = (scenario.__name__, on.isoformat(), step_first)
                    seen.append((*what, reminder.assigned_clerk, reminder.assigned_team,
                                 str(reminder.priority)))
                    wanted.append((*what, *owner))
        assert seen == wanted

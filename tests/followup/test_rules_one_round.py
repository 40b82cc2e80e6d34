"""A batch of the rules sends its cases' commands to the group commit together: a command whose
answer nothing after it waits on (a follow-up planned, an obligation watched, a help task
opened) is queued and the case's next step runs at once (``Rules._send``), so a case's
commands reach the store in its order, most of them in one round. Each command keeps its own
answer: one refused (a 404) loses and doubles none of the others, and the batch applied again
(redelivered after a crash) records nothing twice."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest

from services.followup.domain import (
    follow_up_id_for,
    help_task_id_for,
    obligation_aggregate_id,
)
from shared.contracts import REGISTRY, Envelope
from shared.settings import Settings
from tests.followup.story import SHANGHAI, center_day

#: A Sunday, New Year's Eve late in Shanghai, a day of 2027 (provisional holidays), one of
#: 2028 (a year nobody published yet).
DAYS = [datetime(2026, 12, 20, 10, tzinfo=SHANGHAI), datetime(2026, 12, 31, 23, 30,
                                                              tzinfo=SHANGHAI),
        datetime(2027, 2, 10, 9, tzinfo=SHANGHAI), datetime(2028, 5, 2, 15, tzinfo=SHANGHAI)]
CENTER = "SH-PD-HUAMU"


def _event(case_id: uuid.UUID, version: int, type_: str, at: datetime,
           payload: dict[str, Any]) -> Envelope:
    """Intake's event, its payload through its contract (as the relay publishes it)."""
    contract = REGISTRY.get(type_)
    payload = contract.payload.model_validate(payload).model_dump(mode="json")
    return Envelope(event_id=uuid.uuid4(), type=type_, version=contract.version,
        service="intake", position=version,
        aggregate_id=case_id, aggregate_version=version, case_id=case_id, center_id=CENTER,
        occurred_at=at, recorded_at=at, actor="clerk-017", payload=payload)


def _a_morning_at_the_counter(case_id: uuid.UUID, at: datetime
                              ) -> tuple[list[Envelope], dict[str, uuid.UUID]]:
    """A case opened, escalated to a colleague (帮办), a deadline noted, handed over to
    another clerk (转办) and a monthly obligation declared: all in one batch of the rules."""
    deadline, obligation = uuid.uuid4(), uuid.uuid4()
    day = at.date()
    events = [
        _event(case_id, 1, "CaseOpened", at, {
            "center_id": CENTER, "resident_id": str(uuid.uuid4()), "clerk_id": "clerk-017",
            "counter_id": "window-3",
            "service_item": "SA-HARDSHIP-SUBSIDY", "channel": "counter"}),
        _event(case_id, 2, "ActionTaken", at, {
            "kind": "escalated", "description": "请王科长帮办", "owner_clerk": "clerk-021",
            "within_working_days": 3}),
        _event(case_id, 3, "DeadlineNoted", at, {
            "deadline_id": str(deadline), "due_on": (day + timedelta(days=20)).isoformat(),
            "description": "申请截止"}),
        _event(case_id, 4, "CaseHandedOver", at, {
            "to_clerk": "clerk-033", "first_clerk": "clerk-017", "reason": "转办"}),
        _event(case_id, 5, "ObligationDeclared", at, {
            "obligation_id": str(obligation), "description": "每月报销",
            "cadence": "monthly", "next_due_on": (day + timedelta(days=30)).isoformat()}),
    ]
    return events, {"help task": help_task_id_for(events[1].event_id),
                    "reminder": follow_up_id_for("deadline", deadline),
                    "obligation": obligation_aggregate_id(obligation)}


@pytest.mark.parametrize("day", DAYS, ids=lambda d: d.strftime("%Y-%m-%d"))
async def test_a_refused_command_in_a_batch_leaves_the_others_stored_once(
        settings: Settings, day: datetime) -> None:
    async with center_day(settings, day, with_intake=False) as center:
        runtime = center.app.state.runtime
        rules = runtime.consumers["followup-rules"].handler
        committer = center.app.state.followups.committer
        store = committer.app
        pool = center.app.state.pool
        case_id = uuid.uuid4()
        events, made = _a_morning_at_the_counter(case_id, day)
        # What an earlier batch remembered for the case, whose follow-up is not in the store:
        # the handover's move of it is refused (404), before it moves the new reminder.
        await pool.execute("INSERT INTO rule_followups (case_id, follow_up_id, rule)"
                           " VALUES ($1, $2, 'deadline_reminder')", case_id, uuid.uuid4())
        rounds: list[int] = []
        counted = committer._on_batch

        def count(size: int) -> None:
            rounds.append(size)
            if counted is not None:
                counted(size)

        committer._on_batch = count
        for _ in range(2):  # the batch, and the same batch delivered again
            async with pool.acquire() as conn, conn.transaction():
                await rules.apply(conn, events)
            versions = {what: store.repository.get(i).version for what, i in made.items()}
            # Each stored once, the reminder moved to the new owner once; nothing else.
            assert versions == {"help task": 1, "reminder": 2, "obligation": 1}, versions
            assert store.repository.get(made["reminder"]).assigned_clerk == "clerk-033"
            # Five commands, one of them refused: in three rounds (the help task, the
            # reminder and the refused move; the reminder's move; the obligation), not five
            # (a round each, every command awaited before the case's next step ran).
            assert len(rounds) <= 3, rounds
            rounds.clear()


def _opened(case_id: uuid.UUID, resident: uuid.UUID, day: datetime) -> Envelope:
    return _event(case_id, 1, "CaseOpened", day, {
        "center_id": CENTER, "resident_id": str(resident), "clerk_id": "clerk-017",
        "counter_id": "window-3", "service_item": "SA-HARDSHIP-SUBSIDY", "channel": "counter"})


def _plan_event(plan_id: uuid.UUID, version: int, type_: str, at: datetime,
                payload: dict[str, Any]) -> Envelope:
    """A plan's event, as intake's relay publishes it: on the plan's partition, no case."""
    contract = REGISTRY.get(type_)
    return Envelope(
        event_id=uuid.uuid4(), type=type_, version=contract.version, service="intake",
        position=version, aggregate_id=plan_id, aggregate_version=version, case_id=None,
        center_id=CENTER, occurred_at=at, recorded_at=at, actor="clerk-017",
        payload=contract.payload.model_validate(payload).model_dump(mode="json"))


def _step_added(plan_id: uuid.UUID, step_id: uuid.UUID, resident: uuid.UUID, day: datetime,
                case_id: uuid.UUID | None) -> Envelope:
    """A step taking effect twenty days on, carried by ``case_id`` (None: no case yet)."""
    return _plan_event(plan_id, 2, "PlanStepAdded", day, {
        "step_id": str(step_id), "seq": 1, "service_item": "SA-HARDSHIP-SUBSIDY",
        "effective_on": (day.date() + timedelta(days=20)).isoformat(), "timing": "day",
        "case_id": str(case_id) if case_id else None, "resident_id": str(resident),
        "what": "补交材料后审核"})


def _to_the_team_and_urgent(case_id: uuid.UUID, day: datetime) -> list[Envelope]:
    """The case handed to the elderly-care team (转办), its urgency noted high."""
    return [_event(case_id, 2, "CaseHandedOver", day, {
                "to_team": "elderly-care", "from_clerk": "clerk-017",
                "first_clerk": "clerk-017", "reason": "涉及多部门，需小组协调"}),
            _event(case_id, 3, "ConcernsNoted", day, {
                "emotion": "anxious", "urgency": "high", "needs_defusing": False})]


async def _reminder_after(center: Any, batch: list[Envelope], step_id: uuid.UUID
                          ) -> tuple[str | None, str | None, str]:
    """The step's reminder (clerk, team, priority) once the rules applied ``batch``."""
    async with center.app.state.pool.acquire() as conn, conn.transaction():
        await center.app.state.runtime.consumers["followup-rules"].handler.apply(conn, batch)
    reminder = center.app.state.followups.committer.app.repository.get(
        follow_up_id_for("plan-step", step_id))
    return reminder.assigned_clerk, reminder.assigned_team, str(reminder.priority)


@pytest.mark.parametrize("day", DAYS, ids=lambda d: d.strftime("%Y-%m-%d"))
async def test_a_plan_step_read_in_one_batch_with_its_cases_handover_and_urgency_follows_both(
        settings: Settings, day: datetime) -> None:
    """The morning's events reach the rules in one batch: a case opened, a plan step added on
    it (the plan's event, on the plan's partition), the case handed to the elderly-care team
    (转办) and its urgency noted high. The step's reminder is the team's and high priority, as
    when the handover and the urgency come in a later batch. Run on the plan's partition
    apart from the case's events, it kept the first clerk and normal priority: the handover
    and the urgency moved and prioritised only what their case's own events planned."""
    async with center_day(settings, day, with_intake=False) as center:
        case_id, plan_id, step_id, resident = (uuid.uuid4() for _ in range(4))
        events = [
            _opened(case_id, resident, day),
            _step_added(plan_id, step_id, resident, day, case_id),
            *_to_the_team_and_urgent(case_id, day),
        ]
        assert await _reminder_after(center, events, step_id) == (None, "elderly-care", "high")


@pytest.mark.parametrize("day", DAYS, ids=lambda d: d.strftime("%Y-%m-%d"))
async def test_a_plan_step_linked_to_a_case_later_is_reminded_to_whoever_has_the_case(
        settings: Settings, day: datetime) -> None:
    """The plan's step was drawn up before its case was opened: its reminder the plan's
    author's. The case, opened later, is handed to the elderly-care team and noted urgent,
    and then carries the step (``POST /plans/{id}/links``): the reminder is the team's and
    high priority, and a later handover (to clerk-033) moves it, as for a step added on the
    case. The rules ignored the link: the reminder stayed the author's, normal priority, on
    no worklist of who does the case's work, and no handover ever moved it."""
    async with center_day(settings, day, with_intake=False) as center:
        case_id, plan_id, step_id, resident = (uuid.uuid4() for _ in range(4))
        batches = [
            [_step_added(plan_id, step_id, resident, day, None), _opened(case_id, resident, day),
             *_to_the_team_and_urgent(case_id, day)],
            [_plan_event(plan_id, 3, "PlanCaseLinked", day, {
                "step_id": str(step_id), "case_id": str(case_id)})],
            [_event(case_id, 4, "CaseHandedOver", day, {
                "to_clerk": "clerk-033", "from_team": "elderly-care",
                "first_clerk": "clerk-017", "reason": "小组协调完毕，交回窗口"})],
        ]
        seen = [await _reminder_after(center, batch, step_id) for batch in batches]
        assert seen == [("clerk-017", None, "normal"), (None, "elderly-care", "high"),
                        ("clerk-033", None, "high")], seen


@pytest.mark.parametrize("day", DAYS, ids=lambda d: d.strftime("%Y-%m-%d"))
async def test_a_plan_step_drawn_up_and_linked_to_a_case_in_one_batch_is_whoever_has_the_case(
        settings: Settings, day: datetime) -> None:
    """The step drawn up, its case opened, handed to the team and noted urgent, and the step
    linked to it, all read in one batch (after an outage of follow-up): the reminder is the
    team's and high priority. The link, run in its case's order, met no reminder yet (the
    step's, on the plan's partition, was planned at the batch's end) and left it the
    author's."""
    async with center_day(settings, day, with_intake=False) as center:
        case_id, plan_id, step_id, resident = (uuid.uuid4() for _ in range(4))
        events = [
            _step_added(plan_id, step_id, resident, day, None), _opened(case_id, resident, day),
            *_to_the_team_and_urgent(case_id, day),
            _plan_event(plan_id, 3, "PlanCaseLinked", day, {
                "step_id": str(step_id), "case_id": str(case_id)})]
        assert await _reminder_after(center, events, step_id) == (None, "elderly-care", "high")

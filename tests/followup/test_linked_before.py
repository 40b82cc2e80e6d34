"""The plan steps linked to a case before follow-up's rules read ``PlanCaseLinked`` (stop 47)
get the rule once, after the upgrade (``services/followup/linked_before.py``).

The rules' durable always took the links, and tracked them without applying them: a step drawn
up before its case and linked to it later kept its reminder with the plan's author, at normal
priority, with no case on its row, and the case's handover and urgency never reached it. The
sweep applies the rule to the links at or below the durable's ack floor, once this process
drives the durable: each reminder goes to whoever has the case now, high priority when it is
urgent, and is the case's from then on. Run again, it changes nothing.

Sunday 20 December 2026 at the counter; the steps take effect that Sunday, on New Year's Day
2027 (a provisional year) and in March 2028 (a year the holiday package does not know)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from services.followup.consumer import IGNORED
from services.followup.domain import follow_up_id_for
from services.followup.linked_before import STEP, LinkedBefore, LinkedCasesNamed
from shared.bus.consumer import Consumer
from shared.settings import Settings
from tests.feedback.helpers import History
from tests.followup.story import CENTER, DECEMBER_20, Center, center_day
from tests.support import wait_until

AT = DECEMBER_20.isoformat()
EFFECTIVE = ["2026-12-20", "2027-01-01", "2028-03-01"]


async def test_steps_linked_before_the_rules_read_links_follow_their_case_after_the_upgrade(
        settings: Settings) -> None:
    async with center_day(settings, DECEMBER_20, with_intake=False) as center:
        runtime = center.app.state.runtime
        rules = runtime.consumers["followup-rules"]
        store = center.app.state.followups.committer.app
        pool: asyncpg.Pool = center.app.state.pool
        # The release before: the links tracked, nothing done (PlanCaseLinked in IGNORED).
        rules._ignores = frozenset({*IGNORED, "PlanCaseLinked"})

        history = History(CENTER)
        case_id, steps = _steps_linked(history, EFFECTIVE)
        history.add("intake", "CaseHandedOver", AT, {
            "to_team": "elderly-care", "from_clerk": "clerk-017", "first_clerk": "clerk-017",
            "reason": "涉及多部门，需小组协调"}, case_id=case_id, actor="clerk-017")
        history.add("intake", "ConcernsNoted", AT, {
            "emotion": "anxious", "urgency": "high", "needs_defusing": False},
            case_id=case_id, actor="clerk-017")
        await history.publish_new(settings)
        await wait_until(rules.caught_up, what="the old rules through the log")
        await center.settled()
        reminders = [follow_up_id_for("plan-step", step) for step in steps]

        async def seen() -> list[tuple[object, ...]]:
            rows = {r["follow_up_id"]: r["case_id"] for r in await pool.fetch(
                "SELECT follow_up_id, case_id FROM followups WHERE follow_up_id = ANY($1)",
                reminders)}
            return [(store.repository.get(f).assigned_clerk, store.repository.get(f).assigned_team,
                     str(store.repository.get(f).priority), rows[f]) for f in reminders]

        assert await seen() == [("clerk-009", None, "normal", None)] * 3, "as the old rules left"

        # The new release drives the durable: the sweep (its start ran it on an empty log).
        rules._ignores = frozenset(IGNORED)
        step = f"{STEP}:{rules.name}"
        await pool.execute("DELETE FROM upgrade_steps WHERE name = $1", step)
        sweep = LinkedBefore(pool, runtime.nc, settings, center.app.state.rules, rules)
        assert await sweep.sweep() == 3
        await center.settled()
        assert await seen() == [(None, "elderly-care", "high", case_id)] * 3
        assert {r["follow_up_id"] for r in await pool.fetch(
            "SELECT follow_up_id FROM rule_followups WHERE case_id = $1 AND rule = 'plan_step'",
            case_id)} == set(reminders)

        # Once: a second start does nothing; made to run again, it records nothing.
        assert await sweep.sweep() is None
        versions = [store.repository.get(f).version for f in reminders]
        await pool.execute("DELETE FROM upgrade_steps WHERE name = $1", step)
        assert await sweep.sweep() == 3
        assert [store.repository.get(f).version for f in reminders] == versions

        # And the case's next handover reaches them, as for a step added on the case.
        history.add("intake", "CaseHandedOver", AT, {
            "to_clerk": "clerk-033", "from_team": "elderly-care", "first_clerk": "clerk-017",
            "reason": "小组协调完毕，交回窗口"}, case_id=case_id, actor="clerk-017")
        await history.publish_new(settings)

        async def moved() -> bool:
            return all(store.repository.get(f).assigned_clerk == "clerk-033"
                       for f in reminders)
        await wait_until(moved, what="the handover to move the steps' reminders")


@contextlib.asynccontextmanager
async def _old_rules_day(settings: Settings) -> AsyncIterator[tuple[Center, Consumer, History]]:
    """Sunday 20 December, the rules as the release before had them (the links tracked,
    nothing done: PlanCaseLinked in IGNORED): the center, the rules' consumer, the log."""
    async with center_day(settings, DECEMBER_20, with_intake=False) as center:
        rules = center.app.state.runtime.consumers["followup-rules"]
        rules._ignores = frozenset({*IGNORED, "PlanCaseLinked"})
        yield center, rules, History(CENTER)


def _steps_linked(history: History, effective: list[str], *,
                  unlinked: list[tuple[uuid.UUID, uuid.UUID, uuid.UUID]] | None = None
                  ) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """clerk-017's case, and a plan clerk-009 drew up before it with a step on each day of
    ``effective``, each linked to the case (clerk-017; given ``unlinked``, each step's
    (plan, step, case) is put there instead, for ``_link`` later):
    the case and the steps. The links are recorded now, on the services' clock (the
    log's order: a move by hand after them is recorded after them)."""
    resident, plan_id = uuid.uuid4(), uuid.uuid4()
    case_id = history.case(AT, resident_id=resident)  # clerk-017's
    history.add("intake", "PlanDrawnUp", AT, {
        "plan_id": str(plan_id), "center_id": CENTER, "resident_id": str(resident),
        "title": "治疗期间的保障衔接", "counter_id": "window-3"},
        case_id=None, aggregate_id=plan_id, actor="clerk-009")
    steps = [uuid.uuid4() for _ in effective]
    for seq, (step, on) in enumerate(zip(steps, effective, strict=True), start=1):
        history.add("intake", "PlanStepAdded", AT, {
            "step_id": str(step), "seq": seq, "service_item": "SA-HARDSHIP-SUBSIDY",
            "effective_on": on, "timing": "day", "resident_id": str(resident),
            "what": "补交材料后审核"}, case_id=None, aggregate_id=plan_id, actor="clerk-009")
        if unlinked is None:
            _link(history, plan_id, step, case_id, AT)
        else:
            unlinked.append((plan_id, step, case_id))
    return case_id, steps


def _link(history: History, plan_id: uuid.UUID, step: uuid.UUID, case_id: uuid.UUID,
          at: str) -> None:
    """``PlanCaseLinked`` as intake records it now (``recorded_at``), said to be at ``at``."""
    history.add("intake", "PlanCaseLinked", at, {
        "step_id": str(step), "case_id": str(case_id)}, case_id=None,
        aggregate_id=plan_id, actor="clerk-017", recorded_at=datetime.now(UTC))


async def _moved_by_hand(center: Center, reminders: list[uuid.UUID], said_at: str | None
                         ) -> None:
    """The supervisor gives each reminder to clerk-021, saying it was decided at ``said_at``
    (a post queued on a tablet, a move typed in after the fact; None: now)."""
    store = center.app.state.followups.committer.app
    for n, f in enumerate(reminders):
        moved = store.repository.get(f)
        r = await center.followup.post(
            f"/followups/{f}/reschedule", headers={"Idempotency-Key": f"moved-by-hand-{n}"},
            json={"due_at": moved.due_at.isoformat(), "reason": "clerk-009 is away",
                  "assigned_clerk": "clerk-021",
                  **({"occurred_at": said_at} if said_at else {})})
        assert r.status_code == 200, r.text


async def _sweep(center: Center, rules: Consumer, settings: Settings) -> int:
    """The release that applies links takes the durable back: the sweep of the old links."""
    runtime, pool = center.app.state.runtime, center.app.state.pool
    rules._ignores = frozenset(IGNORED)
    await pool.execute("DELETE FROM upgrade_steps WHERE name = $1", f"{STEP}:{rules.name}")
    swept = await LinkedBefore(pool, runtime.nc, settings, center.app.state.rules,
                               rules).sweep()
    await center.settled()
    return swept


@pytest.mark.parametrize("said_at", [None, "2026-12-19T16:00:00+08:00"],
                         ids=["", "dated-the-day-before"])
async def test_a_reminder_a_supervisor_moved_before_the_sweep_stays_where_they_put_it(
        settings: Settings, said_at: str | None) -> None:
    """Sunday 20 December: the steps of New Year's Day 2027 (provisional) and of 1 March 2028
    (the day after 29 February, in a year the holiday package does not know) were linked to
    clerk-017's case at 10:00 while the old rules ignored links; their reminders stayed with
    the plan's author, and the supervisor moved them by hand to clerk-021. The sweep then
    gave them to the case's owner, undoing the move. A move by staff after the link wins:
    the reminders stay clerk-021's, and are the case's. ``said_at``: the move typed in with
    the moment it was decided, Saturday 19 December 16:00: before the link by the caller's
    clock, after it in the log; judged by the claimed moment, the sweep undid it (its
    claimed moment is still the one shown)."""
    async with _old_rules_day(settings) as (center, rules, history):
        store = center.app.state.followups.committer.app
        case_id, steps = _steps_linked(history, EFFECTIVE[1:])
        await history.publish_new(settings)
        await wait_until(rules.caught_up, what="the old rules through the log")
        await center.settled()
        reminders = [follow_up_id_for("plan-step", step) for step in steps]
        await _moved_by_hand(center, reminders, said_at)

        assert await _sweep(center, rules, settings) == 2
        kept = [store.repository.get(f) for f in reminders]
        assert [f.assigned_clerk for f in kept] == ["clerk-021"] * 2
        assert [f.case_of_now() for f in kept] == [case_id] * 2
        if said_at is not None:
            assert {f.moved_by_hand_at.isoformat() for f in kept} == {said_at}


async def test_a_link_recorded_after_a_move_by_hand_dated_later_takes_the_reminder_to_the_case(
        settings: Settings) -> None:
    """Sunday 20 December: the supervisor moves the reminders of 1 January 2027 and 1 March
    2028 to clerk-021, saying 16:00; the links of their steps to clerk-017's case, said to be
    made at 10:00 (a tablet's queued post), are recorded only after it. The move came before
    the link in the log: the link gives the reminders to whoever has the case, as a handover
    after any move would. Judged by the claimed moments (16:00 after 10:00), the move won."""
    async with _old_rules_day(settings) as (center, rules, history):
        store = center.app.state.followups.committer.app
        unlinked: list[tuple[uuid.UUID, uuid.UUID, uuid.UUID]] = []
        case_id, steps = _steps_linked(history, EFFECTIVE[1:], unlinked=unlinked)
        await history.publish_new(settings)
        await wait_until(rules.caught_up, what="the old rules through the log")
        await center.settled()
        reminders = [follow_up_id_for("plan-step", step) for step in steps]
        await _moved_by_hand(center, reminders, "2026-12-20T16:00:00+08:00")
        for plan_id, step, case in unlinked:
            _link(history, plan_id, step, case, AT)  # recorded now: after the move
        await history.publish_new(settings)
        await wait_until(rules.caught_up, what="the old rules through the links")

        assert await _sweep(center, rules, settings) == 2
        taken = [store.repository.get(f) for f in reminders]
        assert [f.assigned_clerk for f in taken] == ["clerk-017"] * 2
        assert [f.case_of_now() for f in taken] == [case_id] * 2


async def test_a_row_an_old_worklist_replica_left_without_its_case_is_named_once_it_leads(
        settings: Settings) -> None:
    """A rolling upgrade, Sunday 20 December: the new rules link the step of New Year's
    Day 2027 (provisional) to clerk-017's case, and a worklist replica of the release
    before rulesrace48 applies the ``FollowUpReassigned``: it moved the reminder on the row
    and ignored the optional ``case_id`` (its worklist knew none), and the row named no case
    until a rebuild (``GET /followups?case_id=`` left it out). Once this release drives the
    worklist durable, the row takes the case the rules remembered, once."""
    async with _linked_step_named(settings) as (center, case_id, reminder, row_case):
        pool: asyncpg.Pool = center.app.state.pool
        worklist = center.app.state.runtime.consumers["followup-worklist"]
        named = LinkedCasesNamed(pool, worklist)

        async def ran_at_start() -> bool:  # nothing to name then: every row had its case
            return await pool.fetchval(
                "SELECT applied FROM upgrade_steps WHERE name = $1", named.step) is not None
        await wait_until(ran_at_start, what="the start's repair")
        # what the old replica's worklist left: the reassignment applied, no case
        await pool.execute("UPDATE followups SET case_id = NULL WHERE follow_up_id = $1",
                           reminder)
        await pool.execute("DELETE FROM upgrade_steps WHERE name = $1", named.step)
        assert await named.repair() == 1
        assert await row_case() == case_id
        r = await center.followup.get("/followups", params={"case_id": str(case_id)})
        assert str(reminder) in {i["follow_up_id"] for i in r.json()["items"]}
        assert await named.repair() is None, "once"


@contextlib.asynccontextmanager
async def _linked_step_named(settings: Settings) -> AsyncIterator[tuple[Center, uuid.UUID,
                                                                       uuid.UUID, Any]]:
    """Sunday 20 December: New Year's Day 2027's step linked to clerk-017's case by the new
    rules, its reminder's row naming the case: the center, the case, the reminder and a
    reader of the case its row names."""
    async with center_day(settings, DECEMBER_20, with_intake=False) as center:
        pool: asyncpg.Pool = center.app.state.pool
        history = History(CENTER)
        case_id, (step,) = _steps_linked(history, EFFECTIVE[1:2])
        await history.publish_new(settings)
        reminder = follow_up_id_for("plan-step", step)

        async def row_case() -> object:
            return await pool.fetchval(
                "SELECT case_id FROM followups WHERE follow_up_id = $1", reminder)
        await wait_until(lambda: _named(row_case), what="the reminder's row naming its case")
        yield center, case_id, reminder, row_case


async def _named(row_case: Any) -> bool:
    return await row_case() is not None


class _Durable:
    """The worklist durable as a process sees it: whether it drives it now (``leads``);
    ``unled``: set once it was asked while it did not."""

    def __init__(self, name: str) -> None:
        self.name, self.driving, self.unled = name, False, asyncio.Event()

    @property
    def leads(self) -> bool:
        if not self.driving:
            self.unled.set()
        return self.driving


async def test_a_row_left_caseless_by_an_old_replica_that_led_again_is_named_when_it_leads(
        settings: Settings) -> None:
    """A rolling upgrade, Sunday 20 December, New Year's Day 2027's step (provisional):
    this release drove the worklist durable and named the rows (its step recorded), then
    restarted, and a worklist replica of the release before, still running, took the
    durable back and applied a link's ``FollowUpReassigned`` without its case. Another
    process of this release taking the durable found the step recorded and did nothing:
    the row named no case until a rebuild. Each time a process of this release takes the
    durable, the rows an older one left caseless take their case."""
    async with _linked_step_named(settings) as (center, case_id, reminder, row_case):
        pool: asyncpg.Pool = center.app.state.pool
        durable = _Durable(center.app.state.runtime.consumers["followup-worklist"].name)
        named = LinkedCasesNamed(pool, durable, look_every_s=0.01)  # type: ignore[arg-type]

        async def recorded() -> bool:  # by the process that led first (its start)
            return await pool.fetchval(
                "SELECT applied FROM upgrade_steps WHERE name = $1", named.step) is not None
        await wait_until(recorded, what="the first leader's repair")
        running = asyncio.create_task(named.run())
        try:
            for _ in range(2):  # taken first, then lost to an old replica and taken back
                await durable.unled.wait()  # seen not driving it
                await pool.execute("UPDATE followups SET case_id = NULL"
                                   " WHERE follow_up_id = $1", reminder)  # the old replica's
                durable.driving = True
                await wait_until(lambda: _named(row_case), what="the row named again")
                assert await row_case() == case_id
                durable.unled.clear()
                durable.driving = False
        finally:
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running

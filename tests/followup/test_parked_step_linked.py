"""A plan step whose reminder is parked (its day past the working-day calendar) keeps the case
it is linked to meanwhile: the link waits behind its step and follows it when the calendar
grows (``Rules.retry_parked``, run by ``POST /ops/calendar/reload`` as ``sixstep calendar
reload`` asks it).

Before, the link found no reminder to hand over, logged ``rule.linked_step_without_reminder``
and was dropped: once the year was published the step's rule planned its reminder for the
plan's author, with no case, on no worklist of the team that has the case, at normal priority
on an urgent case, and no later handover moved it.

Sunday 20 December 2026 at the counter, follow-up's calendar knowing 2026 and nothing after
(no provisional years): a step on New Year's Day 2027 (linked in a batch of its own), one on
1 March 2028 (a year the holiday package does not know; linked in the step's own batch, the
link's event id sorting before the step's). 2027 published: the first goes to the case's team,
the second waits with its link; 2028 published: the second too."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg

from services.followup import parked as parking
from services.followup.consumer import IGNORED
from services.followup.domain import follow_up_id_for
from services.followup.linked_before import STEP, LinkedBefore
from shared.contracts import Envelope
from shared.readmodels.migrations import run_migrations
from shared.settings import Settings
from tests.feedback.helpers import History
from tests.followup.story import CENTER, DECEMBER_20, center_day
from tests.followup.test_calendar_published import SCHEDULE_2027, _Noting, ops
from tests.followup.test_care_checks import _blocked_or_done
from tests.followup.test_plan_steps_two_workers import (
    _handed_to_the_team,
    _noted_urgent,
    _step,
)
from tests.followup.test_rules_one_round import _opened, _plan_event
from tests.support import wait_until

SCHEDULE_2028 = {"2028": {"source": "illustrative test data",
                          "holidays": ["2028-01-01", "2028-01-03"], "workdays": []}}


def _linked(plan_id: uuid.UUID, step_id: uuid.UUID, case_id: uuid.UUID) -> Envelope:
    return _plan_event(plan_id, 3, "PlanCaseLinked", DECEMBER_20, {
        "step_id": str(step_id), "case_id": str(case_id)})


@contextlib.asynccontextmanager
async def _knowing_2026_alone(settings: Settings, holidays: Path) -> AsyncIterator[Any]:
    """Sunday 20 December 2026, follow-up's calendar knowing 2026 and nothing after (no
    provisional years; ``holidays`` the file a reload reads, empty)."""
    async with center_day(settings, DECEMBER_20, with_intake=False, holidays_file=holidays,
                          calendar_provisional_years=0) as center:
        yield center


async def test_a_parked_steps_link_waits_and_the_reminder_is_the_cases_once_its_year_is_known(
        settings: Settings, tmp_path: Path) -> None:
    holidays = tmp_path / "holidays.json"
    holidays.write_text("{}")
    async with _knowing_2026_alone(settings, holidays) as center:
        rules = center.app.state.rules
        pool: asyncpg.Pool = center.app.state.pool
        store = center.app.state.followups.committer.app

        async def apply(events: list[Envelope]) -> None:
            async with pool.acquire() as conn, conn.transaction():
                await rules.apply(conn, events)

        async def parked() -> list[str]:
            return [r["type"] for r in await pool.fetch(
                "SELECT type FROM parked_rules ORDER BY type")]

        resident, case_id = uuid.uuid4(), uuid.uuid4()
        await apply([_opened(case_id, resident, DECEMBER_20)])  # clerk-017's
        # New Year's Day 2027: the step alone, its link in a later batch.
        plan_a, new_year = uuid.uuid4(), uuid.uuid4()
        await apply([_step(plan_a, new_year, resident, date(2027, 1, 1), None)])
        # The case goes to the elderly-care team and turns urgent meanwhile.
        await apply([_handed_to_the_team(case_id), _noted_urgent(case_id)])
        await apply([_linked(plan_a, new_year, case_id)])
        # 1 March 2028: the step and its link in one batch; the link's id sorts first.
        plan_b, march = uuid.uuid4(), uuid.uuid4()
        step_b = _step(plan_b, march, resident, date(2028, 3, 1), None)
        link_b = _linked(plan_b, march, case_id).model_copy(
            update={"event_id": uuid.UUID(int=0)})
        step_b = step_b.model_copy(update={"event_id": uuid.UUID(int=2 ** 128 - 1)})
        await apply([step_b, link_b])
        assert await parked() == ["PlanCaseLinked"] * 2 + ["PlanStepAdded"] * 2
        listed = await center.followup.get("/parked-rules", headers=ops(settings))
        assert sorted(i["year"] for i in listed.json()["items"]) == [2027, 2027, 2028, 2028]

        reminders = {follow_up_id_for("plan-step", s): s for s in (new_year, march)}

        async def reminder(step_id: uuid.UUID) -> tuple[object, ...]:
            follow_up_id = follow_up_id_for("plan-step", step_id)
            await center.settled()
            row = await pool.fetchrow(
                "SELECT case_id, assigned_team, priority FROM followups"
                " WHERE follow_up_id = $1", follow_up_id)
            remembered = await pool.fetchval(
                "SELECT case_id FROM rule_followups WHERE follow_up_id = $1", follow_up_id)
            f = store.repository.get(follow_up_id)
            return (f.assigned_clerk, f.assigned_team, str(f.priority),
                    row and (row["case_id"], row["assigned_team"], row["priority"]),
                    remembered)

        the_cases = (None, "elderly-care", "high", (case_id, "elderly-care", "high"), case_id)
        # 2027 published: New Year's step and its link go through, in their order.
        holidays.write_text(json.dumps(SCHEDULE_2027))
        r = await center.followup.post("/ops/calendar/reload", headers=ops(settings))
        assert r.status_code == 200, r.text
        assert r.json()["replanned"]["followup"]["rules_unparked"] == 2
        assert await reminder(new_year) == the_cases
        assert await parked() == ["PlanCaseLinked", "PlanStepAdded"], "2028 still unknown"
        # 2028 published: March's step, then its link (parked in the same batch).
        holidays.write_text(json.dumps({**SCHEDULE_2027, **SCHEDULE_2028}))
        r = await center.followup.post("/ops/calendar/reload", headers=ops(settings))
        assert r.json()["replanned"]["followup"]["rules_unparked"] == 2
        assert await reminder(march) == the_cases
        assert await parked() == []
        # The case's follow-ups name both (GET /followups?case_id=).
        r = await center.followup.get("/followups", params={"case_id": str(case_id)})
        assert {i["follow_up_id"] for i in r.json()["items"]} >= {
            str(f) for f in reminders}


async def test_a_link_applied_while_its_parked_step_is_applied_again_ends_with_the_case(
        settings: Settings) -> None:
    """The calendar grew and the parked step is applied again (``retry_parked``) at the very
    moment the live rules apply its link, one of the two held in its transaction (a barrier),
    the other let in meanwhile, in both orders: the reminder ends with the case's team. The
    link held after it found no reminder: the step's retry waits for it, then applies the link
    parked behind it. Before, the retry went ahead (nothing to meet), the link was parked (or
    dropped) after the retry had read what was parked, and the reminder stayed the author's.
    New Year's Day 2027, a holiday of a provisional year."""
    async with center_day(settings, DECEMBER_20, with_intake=False) as center:
        rules = center.app.state.rules
        followups = center.app.state.followups
        pool: asyncpg.Pool = center.app.state.pool
        store = followups.committer.app
        seen = []
        for first in ("live", "retry"):
            resident, case_id, plan_id, step_id = (uuid.uuid4() for _ in range(4))
            step = _step(plan_id, step_id, resident, date(2027, 1, 1), None)
            async with pool.acquire() as conn, conn.transaction():
                await rules.apply(conn, [_opened(case_id, resident, DECEMBER_20),
                                         _handed_to_the_team(case_id)])
                await parking.park(conn, step, "2027 was past the calendar", 2027)
            reached, go = asyncio.Event(), asyncio.Event()
            verb = "reassign" if first == "live" else "schedule"
            original = getattr(followups, verb)

            async def held(*args: Any, original: Any = original, reached: asyncio.Event = reached,
                           go: asyncio.Event = go, **kwargs: Any) -> Any:
                try:
                    return await original(*args, **kwargs)
                finally:  # found none (the live link), or planned (the retried step)
                    reached.set()
                    await go.wait()

            retrying = _Noting(pool)
            setattr(followups, verb, held)
            try:
                async with pool.acquire() as other:
                    async def live(other: asyncpg.Connection = other,
                                   link: Envelope = _linked(plan_id, step_id, case_id)) -> None:
                        async with other.transaction():
                            await rules.apply(other, [link])
                    if first == "live":
                        went = asyncio.create_task(live())
                        await asyncio.wait_for(reached.wait(), 10)
                        second = asyncio.create_task(rules.retry_parked(retrying))

                        async def acquired(retrying: _Noting = retrying) -> bool:
                            return bool(retrying.pids)
                        await wait_until(acquired, what="the retry's connection")
                        await _blocked_or_done(pool, retrying.pids[0], second)
                        go.set()
                        await went
                        await second
                    else:
                        went = asyncio.create_task(rules.retry_parked(retrying))
                        await asyncio.wait_for(reached.wait(), 10)
                        second = asyncio.create_task(live())
                        await _blocked_or_done(pool, other.get_server_pid(), second)
                        go.set()
                        await went
                        await second
            finally:
                delattr(followups, verb)
            f = store.repository.get(follow_up_id_for("plan-step", step_id))
            seen.append((first, f.assigned_clerk, f.assigned_team,
                         await pool.fetchval("SELECT count(*) FROM parked_rules")))
        assert seen == [("live", None, "elderly-care", 0), ("retry", None, "elderly-care", 0)]


async def test_a_link_the_old_rules_ignored_waits_for_its_parked_step_after_the_upgrade(
        settings: Settings, tmp_path: Path) -> None:
    """The upgrade sweep (``linked_before.py``) meets a link whose step's rule is parked (its
    day, New Year's Day 2027, past the calendar of Sunday 20 December 2026): the link waits
    behind it, and once 2027 is published the reminder is the case's team's. Before, the
    sweep found no reminder and dropped the link; the step's rule then planned it for the
    plan's author with no case."""
    holidays = tmp_path / "holidays.json"
    holidays.write_text("{}")
    async with _knowing_2026_alone(settings, holidays) as center:
        runtime = center.app.state.runtime
        driving = runtime.consumers["followup-rules"]
        store = center.app.state.followups.committer.app
        pool: asyncpg.Pool = center.app.state.pool
        driving._ignores = frozenset({*IGNORED, "PlanCaseLinked"})  # the release before
        history = History(CENTER)
        resident, plan_id, step = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        case_id = history.case(DECEMBER_20.isoformat(), resident_id=resident)
        history.add("intake", "PlanStepAdded", DECEMBER_20.isoformat(), {
            "step_id": str(step), "seq": 1, "service_item": "SA-HARDSHIP-SUBSIDY",
            "effective_on": "2027-01-01", "timing": "day", "resident_id": str(resident),
            "what": "补交材料后审核"}, case_id=None, aggregate_id=plan_id, actor="clerk-009")
        history.add("intake", "PlanCaseLinked", DECEMBER_20.isoformat(), {
            "step_id": str(step), "case_id": str(case_id)}, case_id=None,
            aggregate_id=plan_id, actor="clerk-017")
        history.add("intake", "CaseHandedOver", DECEMBER_20.isoformat(), {
            "to_team": "elderly-care", "from_clerk": "clerk-017", "first_clerk": "clerk-017",
            "reason": "涉及多部门，需小组协调"}, case_id=case_id, actor="clerk-017")
        await history.publish_new(settings)
        await wait_until(driving.caught_up, what="the old rules through the log")
        assert [r["type"] for r in await pool.fetch("SELECT type FROM parked_rules")] == [
            "PlanStepAdded"]

        driving._ignores = frozenset(IGNORED)  # the new release: its sweep
        await pool.execute("DELETE FROM upgrade_steps WHERE name = $1",
                           f"{STEP}:{driving.name}")
        sweep = LinkedBefore(pool, runtime.nc, settings, center.app.state.rules, driving)
        assert await sweep.sweep() == 1
        assert sorted(r["type"] for r in await pool.fetch("SELECT type FROM parked_rules")) == [
            "PlanCaseLinked", "PlanStepAdded"]

        holidays.write_text(json.dumps(SCHEDULE_2027))
        r = await center.followup.post("/ops/calendar/reload", headers=ops(settings))
        assert r.json()["replanned"]["followup"]["rules_unparked"] == 2
        await center.settled()
        f = store.repository.get(follow_up_id_for("plan-step", step))
        assert (f.assigned_clerk, f.assigned_team) == (None, "elderly-care")
        assert await pool.fetchval("SELECT case_id FROM followups WHERE follow_up_id = $1",
                                   f.id) == case_id


async def test_a_retry_of_parked_rules_ends_while_the_live_rules_keep_parking(
        settings: Settings, tmp_path: Path) -> None:
    """The calendar reload applies the parked rules again while the live rules keep parking
    new ones (a flow of steps on 2027 days, the calendar still knowing 2026 alone): the retry
    reads the parked list again only for the links parked behind the steps it applied
    (``_meet``), and ends. Before, each round took whatever had been parked meanwhile and read
    the list again: as long as the live rules parked one rule a round, the reload's request
    never ended (here the live rules stop after 30, the rounds counted)."""
    holidays = tmp_path / "holidays.json"
    holidays.write_text("{}")
    async with _knowing_2026_alone(settings, holidays) as center:
        rules = center.app.state.rules
        pool: asyncpg.Pool = center.app.state.pool

        async def apply(events: list[Envelope]) -> None:  # the live rules' batch
            async with pool.acquire() as conn, conn.transaction():
                await rules.apply(conn, events)

        resident = uuid.uuid4()
        await apply([_step(uuid.uuid4(), uuid.uuid4(), resident, date(2027, 1, 4), None)])
        rounds: list[int] = []
        retry = rules._retry

        async def retry_while_the_live_rules_park(conn: Any, events: list[Envelope]) -> int:
            rounds.append(len(events))
            done = await retry(conn, events)
            if len(rounds) <= 30:  # a live batch parked one more step meanwhile
                await apply([_step(uuid.uuid4(), uuid.uuid4(), resident, date(2027, 1, 5),
                                   None)])
            return done

        rules._retry = retry_while_the_live_rules_park
        assert await rules.retry_parked(pool) == 0, "2027 still unknown"
        assert rounds == [1], rounds
        assert await pool.fetchval("SELECT count(*) FROM parked_rules") == 2


async def test_a_parked_link_is_listed_with_the_case_it_links(settings: Settings,
                                                              tmp_path: Path) -> None:
    """Sunday 20 December 2026, the calendar knowing 2026 alone: a step of 1 March 2028 and
    its link are parked. ``GET /parked-rules`` listed the link with no case (a plan's events
    carry none on their envelope: the case is in the link's payload), so the supervisor
    could not tell which case waits for 2028 until it was retried. The link names its case,
    also for a link parked by a release before (the upgrade fills it in)."""
    holidays = tmp_path / "holidays.json"
    holidays.write_text("{}")
    async with _knowing_2026_alone(settings, holidays) as center:
        rules = center.app.state.rules
        pool: asyncpg.Pool = center.app.state.pool
        resident, case_id, plan_id, step_id = (uuid.uuid4() for _ in range(4))
        async with pool.acquire() as conn, conn.transaction():
            await rules.apply(conn, [_opened(case_id, resident, DECEMBER_20)])
            await rules.apply(conn, [_step(plan_id, step_id, resident, date(2028, 3, 1), None),
                                     _linked(plan_id, step_id, case_id)])

        async def listed() -> dict[str, Any]:
            r = await center.followup.get("/parked-rules", headers=ops(settings))
            return {i["type"]: i["case_id"] for i in r.json()["items"]}
        assert await listed() == {"PlanStepAdded": None, "PlanCaseLinked": str(case_id)}
        # parked by the release before: no case on its row; the upgrade's DDL fills it in
        await pool.execute("UPDATE parked_rules SET case_id = NULL")
        await run_migrations(pool, settings.schema_for("followup"), parking.DDL)
        assert await listed() == {"PlanStepAdded": None, "PlanCaseLinked": str(case_id)}

"""A resident found to need more care after their case was resolved (intake's
``CareNeedChanged`` reaching follow-up later than the resolution) is checked on early all
the same: the post-resolution check already planned moves to the early check (one working
day from the resolution's day), never earlier than now, and becomes high priority. Before,
the flag moved nothing: the check stayed five working days out, normal priority. Run on the
calendar's edges: Sunday 20 December, New Year's Eve at 23:30 (the check in 2027, a year the
holiday package does not know: provisional), and March 2027."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from services.followup.domain import FollowUp
from shared.contracts.followup import Reason
from shared.kernel.calendar import Basis, DueRule, WorkingCalendar

SHANGHAI = ZoneInfo("Asia/Shanghai")
CALENDAR = WorkingCalendar()
USUAL, EARLY = 5, 1  # followup_post_resolution_working_days, followup_early_check_working_days


def at(year: int, month: int, day: int, hour: int = 9, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


def meta(key: str, occurred_at: datetime) -> dict[str, Any]:
    return {"actor": "system:followup-rules", "occurred_at": occurred_at, "causation_id": key,
            "correlation_id": None, "center_id": "SH-PD-HUAMU", "case_id": uuid.uuid4()}


def check_after(resolved: datetime, days: int = USUAL, priority: str = "normal",
                reason: Reason = Reason.POST_RESOLUTION_CHECK) -> FollowUp:
    """The check the rules plan at a resolution: ``days`` working days from its day."""
    rule = DueRule("on_or_after", CALENDAR.local_day(resolved), days, not_before=resolved)
    planned = CALENDAR.plan(rule)
    return FollowUp(id=uuid.uuid4(), reason=reason.value, resident_id=uuid.uuid4(),
                    due_at=planned.at, assigned_clerk="clerk-017", assigned_team=None,
                    priority=priority, service_item="SA-HARDSHIP-SUBSIDY",
                    source="intake:CaseResolved", source_id=None,
                    meta=meta("resolved-1", resolved), basis=planned.basis.value,
                    due_rule=rule.as_dict())


def flagged(f: FollowUp, now: datetime, key: str = "care-1") -> list[str]:
    return f.check_early(CALENDAR, EARLY, now, meta(key, now))


@pytest.mark.parametrize(("resolved", "flag", "early", "basis"), [
    # Sunday 20 December: the next working day but one (as at the resolution), not 28 Dec.
    (at(2026, 12, 20, 10), at(2026, 12, 21, 15), at(2026, 12, 22), Basis.OFFICIAL),
    # 23:30 on New Year's Eve, flagged on New Year's Day: Monday 4 January 2027, provisional.
    (at(2026, 12, 31, 23, 30), at(2027, 1, 1, 10), at(2027, 1, 4), Basis.PROVISIONAL),
    # March 2027, flagged after the early check's day had passed: due at once.
    (at(2027, 3, 10, 16), at(2027, 3, 15, 11), at(2027, 3, 15, 11), Basis.PROVISIONAL),
])
def test_a_care_flag_after_the_resolution_brings_the_check_forward_and_raises_it(
        resolved: datetime, flag: datetime, early: datetime, basis: Basis) -> None:
    check = check_after(resolved)
    usual = check.due_at
    assert usual > early and check.priority == "normal"
    assert flagged(check, flag) == ["FollowUpRescheduled", "FollowUpPrioritised"]
    assert (check.due_at, check.priority, check.status) == (early, "high", "scheduled")
    assert check.basis == basis.value
    assert DueRule.from_dict(check.due_rule).working_days == EARLY  # re-planned as early
    # The same flag again (a re-run after a crash), or another one: nothing more.
    assert flagged(check, flag) == []
    assert flagged(check, flag, key="care-2") == []


def test_a_check_already_early_or_moved_by_staff_or_ended_stays_as_it_is() -> None:
    resolved, flag = at(2026, 12, 20, 10), at(2026, 12, 21, 15)
    # Not defused or not resolvable: early and high from the start.
    early = check_after(resolved, days=EARLY, priority="high")
    due = early.due_at
    assert flagged(early, flag) == [] and early.due_at == due
    # Moved by staff to a day agreed with the resident (no rule kept): only high priority.
    agreed = check_after(resolved)
    agreed.reschedule(at(2026, 12, 30, 14), "约好的时间", None, None, flag,
                      meta("staff-1", flag))
    assert flagged(agreed, flag) == ["FollowUpPrioritised"]
    assert agreed.due_at == at(2026, 12, 30, 14)
    # Done already: nothing.
    done = check_after(resolved)
    done.complete("reached", "phone", "", meta("done-1", flag))
    assert flagged(done, flag) == []
    # Not a post-resolution check: nothing.
    reminder = check_after(resolved, reason=Reason.DEADLINE_REMINDER)
    assert flagged(reminder, flag) == []

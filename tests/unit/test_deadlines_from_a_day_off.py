"""Whatever the center receives on a day off counts from the next working day (the 政务服务
rule), and every working-day deadline is counted so, through ``WorkingCalendar.deadline_day``:
a help task (帮办) and a bad review's rectification (整改) raised on the same Sunday fall due
on the same day. Until stop 51 the help task's count started on the Sunday's next day as its
first working day, and it fell due a working day before the rectification raised beside it.

Checked at the calendar's trap dates: Sunday 20 December 2026; 31 December 2026 at 23:30 in
Shanghai (15:30 UTC: still the 31st at the center); 2027's provisional holidays (the law
alone: 1 January, Qingming on Monday 5 April); 29 February 2028."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from services.feedback.domain import Answer, Rectification, Survey
from services.followup.domain import working_deadline
from shared.contracts.feedback import AnsweredVia, RatingLevel
from shared.kernel.calendar import Basis, WorkingCalendar

SHANGHAI = ZoneInfo("Asia/Shanghai")
CALENDAR = WorkingCalendar()


def meta(when: datetime) -> dict[str, Any]:
    return {"actor": "system:feedback", "occurred_at": when, "causation_id": None,
            "correlation_id": None, "center_id": "SH-PD-HUAMU", "case_id": uuid.uuid4()}


def rectification_raised(when: datetime, working_days: int) -> Rectification:
    survey_id = uuid.uuid4()
    s = Survey(id=survey_id, survey_id=survey_id, purpose="resolution", channel="sms",
               resident_id=uuid.uuid4(), counter_id="window-3", clerk_id="clerk-017",
               service_item="SA-HARDSHIP-SUBSIDY", send_at=when,
               expires_at=when + timedelta(days=7), rectification_id=None, meta=meta(when),
               served_by=("clerk-017",))
    s.rate(Answer(RatingLevel.DISSATISFIED, "等了两个小时"), AnsweredVia.TOKEN, None, when,
           meta(when))
    return Rectification.open_for(s, CALENDAR, working_days, meta(when))


@pytest.mark.parametrize(("raised", "days", "due", "basis"), [
    # Sunday 20 December 2026: as from Monday 21, three working days: Thursday 24.
    (datetime(2026, 12, 20, 15, 0, tzinfo=SHANGHAI), 3, date(2026, 12, 24), Basis.OFFICIAL),
    # Thursday 31 December 2026 at 23:30 in Shanghai, a working day: counted from the 31st;
    # Friday 1 January 2027 off (provisional), so Monday 4, Tuesday 5.
    (datetime(2026, 12, 31, 23, 30, tzinfo=SHANGHAI), 2, date(2027, 1, 5),
     Basis.PROVISIONAL),
    # Friday 1 January 2027, New Year's Day on the law alone: as from Monday 4, 1 day: the 5th.
    (datetime(2027, 1, 1, 10, 0, tzinfo=SHANGHAI), 1, date(2027, 1, 5), Basis.PROVISIONAL),
    # Qingming, Monday 5 April 2027 (provisional): as from Tuesday 6, 3 days: Friday 9.
    (datetime(2027, 4, 5, 9, 0, tzinfo=SHANGHAI), 3, date(2027, 4, 9), Basis.PROVISIONAL),
    # Tuesday 29 February 2028, a working day: 1 day: Wednesday 1 March.
    (datetime(2028, 2, 29, 16, 0, tzinfo=SHANGHAI), 1, date(2028, 3, 1), Basis.PROVISIONAL),
])
def test_a_help_task_and_a_rectification_raised_the_same_day_fall_due_the_same_day(
        raised: datetime, days: int, due: date, basis: Basis) -> None:
    day = CALENDAR.local_day(raised)
    task_due_at, task_basis = working_deadline(CALENDAR, day, days)
    rectification = rectification_raised(raised.astimezone(ZoneInfo("UTC")), days)
    assert CALENDAR.local_day(task_due_at) == rectification.deadline_on == due
    assert task_basis is basis and rectification.basis == basis.value
    assert CALENDAR.deadline_day(day, days) == due

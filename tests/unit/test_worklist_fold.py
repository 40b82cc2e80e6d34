"""A batch's changes of one follow-up reach the worklist as one row, as if made in turn."""

from __future__ import annotations

from datetime import UTC, date, datetime
from uuid import uuid4

from services.followup.projections import folded


def test_a_rescheduled_then_completed_follow_up_is_one_update_with_every_change() -> None:
    fid, other = uuid4(), uuid4()
    at = datetime(2025, 3, 3, 9, tzinfo=UTC)
    later = datetime(2025, 3, 4, 9, tzinfo=UTC)
    rescheduled = (fid, 3, 30, at, "scheduled", later, date(2025, 3, 4), True, "clerk-2", None,
                   None, None, None, None, "official", None, None, False)
    prioritised = (other, 2, 31, at, None, None, None, False, None, None, None, None, None,
                   None, None, None, "high", None)
    completed = (fid, 4, 32, later, "completed", None, None, False, None, None, None,
                 "solved", "phone", later, None, None, None, None)
    assert folded([rescheduled, prioritised, completed]) == [
        (fid, 4, 32, later, "completed", later, date(2025, 3, 4), True, "clerk-2", None,
         None, "solved", "phone", later, "official", None, None, False),
        prioritised,
    ]

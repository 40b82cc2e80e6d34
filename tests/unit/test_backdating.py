"""A post's ``occurred_at`` is taken as said within the grace of the counter's offline queue
(``OCCURRED_AT_GRACE_S``, 72 h) before the service's clock; further back, a deadline judges it
on that clock less the grace (``Moments.judged_at``), and the figures count it as backdated.
Run at the calendar's edges: Sunday 20 December 2026, New Year's Eve 23:30 in Shanghai, and
2027 (a year the holiday package does not know)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from services.feedback.figures import projection, totals
from shared.kernel.moments import Moments
from shared.settings import Settings

SHANGHAI = ZoneInfo("Asia/Shanghai")
GRACE = Moments(grace=timedelta(hours=72))


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)  # type: ignore[misc]


@pytest.mark.parametrize(("now", "occurred", "judged"), [
    # Sunday 20 December 2026, 10:00: 72 h back is Thursday 17 December, 10:00.
    (at(2026, 12, 20, 10), at(2026, 12, 17, 10), None),
    (at(2026, 12, 20, 10), at(2026, 12, 17, 9, 59), at(2026, 12, 17, 10)),
    (at(2026, 12, 20, 10), at(2026, 3, 20, 10), at(2026, 12, 17, 10)),
    # recorded 00:10 on 1 January 2027, said 23:50 on New Year's Eve: stands.
    (at(2027, 1, 1, 0, 10), at(2026, 12, 31, 23, 50), None),
    (at(2026, 12, 31, 23, 30), at(2026, 12, 31, 23, 30), None),
    # 2027, provisional: a Spring Festival week's post sent on its Monday stands; a month's not.
    (at(2027, 2, 15, 9), at(2027, 2, 12, 17), None),
    (at(2027, 2, 15, 9), at(2027, 1, 15, 17), at(2027, 2, 12, 9)),
    # ahead of the clock (within OCCURRED_AT_MAX_FUTURE_S): stands.
    (at(2027, 2, 15, 9), at(2027, 2, 15, 9, 4), None),
])
def test_occurred_at_stands_within_the_grace_and_is_judged_on_the_clock_beyond_it(
        now: datetime, occurred: datetime, judged: datetime | None) -> None:
    assert GRACE.judged_at(occurred, now) == judged


def test_the_grace_is_a_setting_of_72_hours_bounded_to_30_days() -> None:
    assert Moments.from_settings(Settings()).grace == timedelta(hours=72)
    assert Moments.from_settings(Settings(occurred_at_grace_s=3600)).grace == timedelta(hours=1)
    for bad in (-1, 30 * 86_400 + 1):
        with pytest.raises(ValidationError):
            Settings(occurred_at_grace_s=bad)


def _resolved_case(resolved_on: date, due_on: date, judged_on: date | None) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(projection.CASES.names)
    row.update(case_id=uuid4(), center_id="SH-PD-HUAMU", opened_on=resolved_on,
               resolved=True, resolved_on=resolved_on, outcome="resolved", due_on=due_on,
               return_trips=0, judged_on=judged_on)
    return row


def _counts(row: dict[str, Any]) -> dict[str, tuple[date, int]]:
    return {name: (day, n) for _, day, name, n in totals.contributions("fig_cases", row)}


def test_a_backdated_resolution_counts_on_its_day_but_is_judged_on_the_judged_day() -> None:
    """Said 31 December (due that day, opened that day), judged 3 January 2027: resolved on
    31 December, neither on time nor on the spot, and backdated; without a judged day (every
    resolution recorded before judged_at existed, or within the grace) as before."""
    backdated = _counts(_resolved_case(date(2026, 12, 31), date(2026, 12, 31),
                                       date(2027, 1, 3)))
    assert backdated["resolved"] == backdated["resolved_with_due"] == (date(2026, 12, 31), 1)
    assert "resolved_on_time" not in backdated
    assert "resolved_on_the_spot" not in backdated
    assert backdated["backdated_resolutions"] == (date(2026, 12, 31), 1)
    stands = _counts(_resolved_case(date(2026, 12, 31), date(2026, 12, 31), None))
    assert stands["resolved_on_time"] == stands["resolved_on_the_spot"] == \
        (date(2026, 12, 31), 1)
    assert "backdated_resolutions" not in stands


def test_a_follow_up_completion_judged_after_its_due_day_is_not_on_time() -> None:
    """Never missed (the scheduler was down), completed saying its due day 31 December but
    judged on 3 January 2027: closed, not on time; judged on its due day, or without a judged
    day, on time as before."""
    def counts(judged_on: date | None, completed_on: date = date(2026, 12, 31)
               ) -> dict[str, tuple[date, int]]:
        row: dict[str, Any] = dict.fromkeys(projection.FOLLOWUPS.names)
        row.update(follow_up_id=uuid4(), center_id="SH-PD-HUAMU", due_on=date(2026, 12, 31),
                   completed_on=completed_on, missed=False, cancelled=False,
                   outcome="done", judged_on=judged_on)
        return {name: (day, n) for _, day, name, n in totals.contributions("fig_followups", row)}

    late = counts(date(2027, 1, 3))
    assert late["followups_closed"] == (date(2026, 12, 31), 1)
    assert "followups_on_time" not in late
    for judged in (None, date(2026, 12, 31)):
        assert counts(judged)["followups_on_time"] == (date(2026, 12, 31), 1)
    # Not backdated, done on 2 January 2027 (a provisional year) within the grace: its own
    # day judges it, the scheduler having missed nothing while it was down.
    done_late = counts(None, completed_on=date(2027, 1, 2))
    assert done_late["followups_closed"] == (date(2026, 12, 31), 1)
    assert "followups_on_time" not in done_late


def test_a_follow_up_due_on_sunday_done_on_monday_is_on_time_by_its_working_day() -> None:
    """Due Sunday 20 December 2026 (hand-set), done Monday the 21st: on time by the working
    day its completion records (``due_by``), counted on the 20th as before; a completion
    recorded before ``due_by`` existed is judged on the date of its due moment, as then (no
    closed month recounted)."""
    def counts(due_by: date | None) -> dict[str, tuple[date, int]]:
        row: dict[str, Any] = dict.fromkeys(projection.FOLLOWUPS.names)
        row.update(follow_up_id=uuid4(), center_id="SH-PD-HUAMU", due_on=date(2026, 12, 20),
                   completed_on=date(2026, 12, 21), missed=False, cancelled=False,
                   outcome="done", judged_on=None, due_by=due_by)
        return {name: (day, n) for _, day, name, n in totals.contributions("fig_followups", row)}

    assert counts(date(2026, 12, 21))["followups_on_time"] == (date(2026, 12, 20), 1)
    assert "followups_on_time" not in counts(None)
    assert counts(None)["followups_closed"] == (date(2026, 12, 20), 1)


def test_writes_answer_before_postgresql_ends_a_waiting_consumers_session() -> None:
    """A consumer waits for its commands' group commit inside its transaction: with
    WRITE_TIMEOUT_S at or over DB_IDLE_IN_TRANSACTION_TIMEOUT_S, PostgreSQL ended the session
    first, which asyncpg reports as a closed connection, not a timeout to retry."""
    Settings(write_timeout_s=59, db_idle_in_transaction_timeout_s=60)
    Settings(write_timeout_s=120, db_idle_in_transaction_timeout_s=0)  # no limit
    with pytest.raises(ValidationError, match="WRITE_TIMEOUT_S"):
        Settings(write_timeout_s=90, db_idle_in_transaction_timeout_s=60)

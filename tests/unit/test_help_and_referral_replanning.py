"""A help task's deadline and a referral's reply deadline counted on a provisional year, then on
the published schedule. Server-free: the rules alone.

The 2027 schedule here is illustrative test data, NOT the State Council's notice: New Year's
Day off and Saturday 2 January a make-up working day, so a count over the New Year ends a day
earlier than the law alone says (chinese-calendar 1.11.0 knows 2026 and nothing after).
"""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from services.followup.domain import COUNTED_AS, HelpTask, Referral, working_deadline
from shared.kernel.calendar import Basis, WorkingCalendar
from shared.kernel.holidays import parse_holidays

SHANGHAI = ZoneInfo("Asia/Shanghai")
PROVISIONAL = WorkingCalendar()
MAKE_UP = WorkingCalendar(holidays=parse_holidays(json.dumps({"2027": {
    "source": "illustrative test data", "holidays": ["2027-01-01"],
    "workdays": ["2027-01-02"]}})))
# A notice that agrees with the law on these days: the same moments, now official.
AGREES = WorkingCalendar(holidays=parse_holidays(json.dumps({"2027": {
    "source": "illustrative test data", "holidays": ["2027-01-01"], "workdays": []}})))


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


DECEMBER_20 = at(2026, 12, 20, 10)  # a Sunday
NEW_YEARS_EVE_LATE = at(2026, 12, 31, 23, 30)  # 15:30 UTC, still the 31st in Shanghai


def meta(key: str | None = None, when: datetime = DECEMBER_20) -> dict[str, Any]:
    return {"actor": "system:calendar", "occurred_at": when, "causation_id": key,
            "correlation_id": None, "center_id": "SH-PD-HUAMU", "case_id": uuid.uuid4()}


def task(day: date, days: int, when: datetime) -> HelpTask:
    deadline_at, basis = working_deadline(PROVISIONAL, day, days)
    return HelpTask(id=uuid.uuid4(), owner_clerk="clerk-017", owner_team=None,
                    requested_by="clerk-001", deadline_at=deadline_at, source_id=uuid.uuid4(),
                    service_item=None, meta=meta("open", when), basis=basis.value,
                    counted_from=day, working_days=days, counted_as=COUNTED_AS)


def referral(day: date, days: int, when: datetime) -> Referral:
    reply_due_at, basis = working_deadline(PROVISIONAL, day, days)
    return Referral(id=uuid.uuid4(), unit_kind="social_insurance_bureau", unit_name="社保中心",
                    unit_contact="", referred_by="clerk-001", reply_due_at=reply_due_at,
                    source_id=uuid.uuid4(), meta=meta("send", when), basis=basis.value,
                    counted_from=day, working_days=days, counted_as=COUNTED_AS)


def replanned(aggregate: HelpTask | Referral) -> list[Any]:
    return [e for e in aggregate.collect_events() if type(e).__name__.endswith("Replanned")]


def test_sent_on_december_20_the_make_up_saturday_brings_both_deadlines_a_day_forward(
        ) -> None:
    # Sent on Sunday 20 December: as from Monday 21, ten working days after it: the law
    # alone, Dec 22-25, 28-31, then Jan 1 off and the weekend: Monday 4, Tuesday 5 January.
    # The notice works Saturday the 2nd: Monday 4.
    for made in (task(date(2026, 12, 20), 10, DECEMBER_20),
                 referral(date(2026, 12, 20), 10, DECEMBER_20)):
        due = made.deadline_at if isinstance(made, HelpTask) else made.reply_due_at
        assert (due, made.basis) == (at(2027, 1, 5, 17), Basis.PROVISIONAL.value)
        assert made.replan(MAKE_UP, DECEMBER_20, meta("calendar:a")) is True
        due = made.deadline_at if isinstance(made, HelpTask) else made.reply_due_at
        assert (due, made.basis) == (at(2027, 1, 4, 17), Basis.OFFICIAL.value)
        [event] = replanned(made)
        previous = getattr(event, "previous_deadline_at", None) or event.previous_reply_due_at
        assert previous == at(2027, 1, 5, 17) and event.cause == "calendar_published"
        # The same schedule again (another key: a second reload) records nothing.
        version = made.version
        assert made.replan(MAKE_UP, DECEMBER_20, meta("calendar:b")) is False
        assert made.version == version


def test_a_deadline_the_notice_keeps_is_confirmed_once() -> None:
    made = referral(date(2026, 12, 20), 10, DECEMBER_20)
    assert made.replan(AGREES, DECEMBER_20, meta("calendar:a")) is True
    [event] = replanned(made)
    assert event.reply_due_at == event.previous_reply_due_at == at(2027, 1, 5, 17)
    assert made.basis == Basis.OFFICIAL.value
    assert made.replan(AGREES, NEW_YEARS_EVE_LATE, meta("calendar:a2")) is False


def test_at_new_years_eve_late_a_count_into_january_moves_and_a_missed_one_stays() -> None:
    # Escalated on Thursday 31 December with 3 working days: the law, Jan 4, 5, 6; the
    # notice, Jan 2, 4, 5. Re-planned at 23:30 on the 31st: Tuesday 5 January.
    late = task(date(2026, 12, 31), 3, NEW_YEARS_EVE_LATE)
    assert (late.deadline_at, late.basis) == (at(2027, 1, 6, 17), Basis.PROVISIONAL.value)
    assert late.replan(MAKE_UP, NEW_YEARS_EVE_LATE, meta("calendar:a")) is True
    assert (late.deadline_at, late.basis) == (at(2027, 1, 5, 17), Basis.OFFICIAL.value)
    # Sent Monday 28 December with 3: Dec 29, 30, 31, missed at the close of the 31st on
    # either count: left to the scheduler (督办), never moved to the re-planning's moment.
    missed = referral(date(2026, 12, 28), 3, at(2026, 12, 28, 10))
    assert missed.reply_due_at == at(2026, 12, 31, 17)
    assert missed.replan(MAKE_UP, NEW_YEARS_EVE_LATE, meta("calendar:a")) is False
    assert replanned(missed) == []


def test_a_deadline_the_notice_ends_already_is_due_at_the_re_planning_not_before() -> None:
    # Sent on the 20th (the law: Jan 5); the schedule reaches the service only on Tuesday 5
    # January in the morning, after the Monday it ended on: due then, not on the past Monday.
    made = referral(date(2026, 12, 20), 10, DECEMBER_20)
    now = at(2027, 1, 5, 10)
    assert made.replan(MAKE_UP, now, meta("calendar:a")) is True
    assert (made.reply_due_at, made.basis) == (now, Basis.OFFICIAL.value)


def test_one_opened_before_the_count_was_kept_is_left_as_it_is() -> None:
    deadline_at, basis = working_deadline(PROVISIONAL, date(2026, 12, 20), 10)
    old = HelpTask(id=uuid.uuid4(), owner_clerk=None, owner_team="supervisors",
                   requested_by="clerk-001", deadline_at=deadline_at, source_id=uuid.uuid4(),
                   service_item=None, meta=meta("open"), basis=basis.value)
    assert old.replan(MAKE_UP, DECEMBER_20, meta("calendar:a")) is False
    assert old.deadline_at == at(2027, 1, 5, 17)


def test_a_referral_chased_again_is_counted_from_the_reopening() -> None:
    made = referral(date(2026, 12, 14), 3, at(2026, 12, 14, 10))
    made.close_as_not_needed(meta("close"))
    # Reopened on Wednesday 30 December, 3 working days: the law Dec 31, Jan 4, 5.
    due, basis = working_deadline(PROVISIONAL, date(2026, 12, 30), 3)
    assert made.chase_again(due, basis, meta("reopen"), counted_from=date(2026, 12, 30),
                            working_days=3) is True
    assert made.reply_due_at == at(2027, 1, 5, 17)
    assert made.replan(MAKE_UP, NEW_YEARS_EVE_LATE, meta("calendar:a")) is True
    assert (made.reply_due_at, made.basis) == (at(2027, 1, 4, 17), Basis.OFFICIAL.value)


def test_a_referral_chased_again_after_the_make_up_saturday_is_published_gets_its_ten_days(
        ) -> None:
    # Sent Sunday 20 December with ten working days (the law: Tuesday 5 January), closed by
    # the resolution; the notice then works Saturday 2 January. The unit is given the ten it
    # was given, not what the first deadline holds on the calendar in force.
    for calendar in (PROVISIONAL, MAKE_UP):
        made = referral(date(2026, 12, 20), 10, DECEMBER_20)
        made.close_as_not_needed(meta("close"))
        assert made.reply_working_days(calendar, default=5) == 10
    # One sent before the count was kept (and before stop 51: its first deadline counted
    # the Sunday's next day, Monday 21, as the first of ten: Monday 4 January): counted
    # again on the calendar in force, as it was counted then; Dec 21 to Jan 4 holds eleven
    # working days once Saturday 2 January is worked.
    old = Referral(id=uuid.uuid4(), unit_kind="social_insurance_bureau", unit_name="社保中心",
                   unit_contact="", referred_by="clerk-001", reply_due_at=at(2027, 1, 4, 17),
                   source_id=uuid.uuid4(), meta=meta("send"), basis=Basis.PROVISIONAL.value)
    assert old.reply_working_days(PROVISIONAL, default=5) == 10
    assert old.reply_working_days(MAKE_UP, default=5) == 11


def test_a_deadline_missed_before_the_notice_is_confirmed_only_where_the_notice_gives_it(
        ) -> None:
    # Sent Monday 28 December with five working days: the law, Dec 29-31, Jan 4, 5; the
    # notice with the make-up Saturday, Jan 4. The schedule comes on Wednesday 6 January,
    # before the scheduler's tick: missed either way. Where the notice gives Tuesday the 5th
    # too, the deadline is confirmed official, once; where it gives the 4th, the 5th it was
    # missed at stays, provisional (no schedule says the 5th).
    now = at(2027, 1, 6, 10)
    agreed = referral(date(2026, 12, 28), 5, at(2026, 12, 28, 10))
    assert (agreed.reply_due_at, agreed.basis) == (at(2027, 1, 5, 17), Basis.PROVISIONAL.value)
    assert agreed.replan(AGREES, now, meta("calendar:a", now)) is True
    [event] = replanned(agreed)
    assert event.reply_due_at == event.previous_reply_due_at == at(2027, 1, 5, 17)
    assert agreed.basis == Basis.OFFICIAL.value
    assert agreed.replan(AGREES, now, meta("calendar:a2", now)) is False
    moved = task(date(2026, 12, 28), 5, at(2026, 12, 28, 10))
    assert moved.replan(MAKE_UP, now, meta("calendar:a", now)) is False
    assert (moved.deadline_at, moved.basis) == (at(2027, 1, 5, 17), Basis.PROVISIONAL.value)


def test_an_overdue_referral_and_an_escalated_task_are_confirmed_or_kept_never_moved(
        ) -> None:
    # Sent and escalated on Monday 28 December with five working days (the law: Tuesday 5
    # January 2027), chased (督办) and escalated at its close; the schedule comes on Thursday
    # 7 January. Where the notice gives the 5th too, the board stops saying "provisional" on
    # it: confirmed official, once, the same moment, still overdue / escalated (no timer to
    # re-arm: the aggregate has nothing to fire). Where the notice gives the 4th, the 5th it
    # was judged on stays, provisional, and says so once (published_*_at: the 4th), so no
    # reload reads it again (before, nothing was recorded: read at every reload, for ever);
    # nothing is ever moved to the re-planning's moment.
    now = at(2027, 1, 7, 10)
    due = at(2027, 1, 5, 17)
    for calendar, confirmed in ((AGREES, True), (MAKE_UP, False)):
        chased = referral(date(2026, 12, 28), 5, at(2026, 12, 28, 10))
        assert chased.advance(due, "clerk-017", None, meta("tick", due)) is not None
        escalated = task(date(2026, 12, 28), 5, at(2026, 12, 28, 10))
        assert escalated.advance(due, PROVISIONAL, "supervisors", meta("tick", due))
        for made in (chased, escalated):
            made.collect_events()
            assert made.replan(calendar, now, meta("calendar:a", now)) is True
            [event] = replanned(made)
            published = (event.published_deadline_at if isinstance(made, HelpTask)
                         else event.published_reply_due_at)
            assert published == (None if confirmed else at(2027, 1, 4, 17))
            at_, basis = ((made.deadline_at if isinstance(made, HelpTask)
                           else made.reply_due_at), made.basis)
            assert at_ == due and made.next_fire_at is None
            assert basis == (Basis.OFFICIAL if confirmed else Basis.PROVISIONAL).value
            assert made.replan(calendar, now, meta("calendar:a2", now)) is False, "once"
        assert (chased.status, escalated.escalated_to) == ("overdue", "supervisors")


def test_a_referral_kept_on_its_day_and_chased_again_is_read_again() -> None:
    # Kept on Tuesday 5 January (the notice gives the 4th), then its case reopened on the 7th:
    # chased anew with a new deadline, what was kept is no more; missed again on a provisional
    # day the notice moves, it is kept again, once.
    now = at(2027, 1, 7, 10)
    chased = referral(date(2026, 12, 28), 5, at(2026, 12, 28, 10))
    chased.advance(at(2027, 1, 5, 17), "clerk-017", None, meta("tick", now))
    assert chased.replan(MAKE_UP, now, meta("calendar:a", now)) is True
    again_at, basis = working_deadline(PROVISIONAL, date(2026, 12, 31), 5)
    assert chased.chase_again(again_at, basis, meta("reopened", now),
                              counted_from=date(2026, 12, 31), working_days=5)
    assert chased.__dict__["published_reply_due_at"] is None
    chased.advance(again_at, "clerk-017", None, meta("tick2", again_at))
    assert chased.replan(MAKE_UP, again_at, meta("calendar:b", again_at)) is True
    assert chased.replan(MAKE_UP, again_at, meta("calendar:c", again_at)) is False


def test_a_second_notice_that_corrects_the_first_is_news_to_what_was_kept() -> None:
    # Chased (督办) and escalated on Tuesday 5 January 2027 (the law's count from Monday 28
    # December); the first notice makes Saturday the 2nd a make-up day (the 4th by it): kept on
    # the 5th, said once. A second notice corrects the first: no make-up day after all, the
    # 5th is the published day too. Before, what was kept was never read again: "provisional"
    # on the board for ever, with a published day no schedule gives any more.
    now = at(2027, 1, 7, 10)
    due = at(2027, 1, 5, 17)
    chased = referral(date(2026, 12, 28), 5, at(2026, 12, 28, 10))
    escalated = task(date(2026, 12, 28), 5, at(2026, 12, 28, 10))
    assert chased.advance(due, "clerk-017", None, meta("tick", due))
    assert escalated.advance(due, PROVISIONAL, "supervisors", meta("tick", due))
    for made in (chased, escalated):
        assert made.replan(MAKE_UP, now, meta("calendar:a", now)) is True
        made.collect_events()
        assert made.replan(MAKE_UP, now, meta("calendar:a2", now)) is False, "said once"
        assert made.replan(AGREES, now, meta("calendar:b", now)) is True, "corrected"
        [event] = replanned(made)
        published = (event.published_deadline_at if isinstance(made, HelpTask)
                     else event.published_reply_due_at)
        at_ = made.deadline_at if isinstance(made, HelpTask) else made.reply_due_at
        assert (at_, made.basis, published) == (due, Basis.OFFICIAL.value, None)
        assert made.replan(AGREES, now, meta("calendar:c", now)) is False, "once"


def test_one_counted_before_stop_51_keeps_its_rule_at_a_re_planning() -> None:
    # Raised on Saturday 9 January 2027 (provisional) with 3 days before stop 51, when the
    # count began on the day after: Monday 11 the first, due Wednesday 13 (the rule since:
    # Thursday 14). Re-planned at the first start after the upgrade, nothing published,
    # it stays (until redteam104 it moved to Thursday 14, cause calendar_published); on a
    # schedule that changes its days it moves for those days, on its own rule.
    for made in (HelpTask(id=uuid.uuid4(), owner_clerk="clerk-017", owner_team=None,
                          requested_by="clerk-001", deadline_at=at(2027, 1, 13, 17),
                          source_id=uuid.uuid4(), service_item=None,
                          meta=meta("open", at(2027, 1, 9, 10)), basis="provisional",
                          counted_from=date(2027, 1, 9), working_days=3),
                 Referral(id=uuid.uuid4(), unit_kind="social_insurance_bureau",
                          unit_name="社保中心", unit_contact="", referred_by="clerk-001",
                          reply_due_at=at(2027, 1, 13, 17), source_id=uuid.uuid4(),
                          meta=meta("send", at(2027, 1, 9, 10)), basis="provisional",
                          counted_from=date(2027, 1, 9), working_days=3)):
        assert made.replan(PROVISIONAL, at(2027, 1, 11, 8), meta("calendar:start")) is False
        assert replanned(made) == []
        published = WorkingCalendar(holidays=parse_holidays(json.dumps({"2027": {
            "source": "illustrative test data", "holidays": ["2027-01-01", "2027-01-12"],
            "workdays": []}})))
        assert made.replan(published, at(2027, 1, 11, 8), meta("calendar:a")) is True
        due = made.deadline_at if isinstance(made, HelpTask) else made.reply_due_at
        assert (due, made.basis) == (at(2027, 1, 14, 17), Basis.OFFICIAL.value)

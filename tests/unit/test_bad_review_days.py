"""A bad review's days on the service's own record, without servers: its rectification's
deadline counts from the day feedback recorded it when the review gives an earlier one (a paper
form typed in weeks after its date), and its appeal window is judged on the latest day the
service recorded anything of it when the clock says an earlier one (a clock set back).

Both at the calendar's traps: Sunday 20 December 2026 (a day off: counted from Monday 21), 31
December 23:30 in Shanghai (15:30 UTC: the day is Shanghai's), 2027 on the law alone
(provisional; past the calendar, ``CalendarOutOfRange``, the API's 422), 29 February 2028."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from services.feedback.application import SurveyPolicy
from services.feedback.domain import (
    Answer,
    AppealWindow,
    AppealWindowClosed,
    Rectification,
    Survey,
    judged_day,
)
from services.followup.consumer import verification_rule
from shared.contracts.feedback import (
    AnsweredVia,
    AppealDecision,
    RatingLevel,
    RectificationTrack,
)
from shared.kernel.calendar import Basis, CalendarOutOfRange, WorkingCalendar
from shared.kernel.errors import RuleViolated
from shared.kernel.holidays import parse_holidays

SHANGHAI = ZoneInfo("Asia/Shanghai")
CALENDAR = WorkingCalendar()
DAYS = SurveyPolicy().working_days(SurveyPolicy().default_track)  # 5, the limited track's


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=SHANGHAI)  # type: ignore[misc]


def meta(when: datetime, actor: str = "system:feedback") -> dict[str, Any]:
    return {"actor": actor, "occurred_at": when, "causation_id": None,
            "correlation_id": None, "center_id": "SH-PD-HUAMU", "case_id": uuid.uuid4()}


def bad_review(dated: datetime, recorded: datetime | None = None,
               calendar: WorkingCalendar = CALENDAR) -> Rectification:
    """A dissatisfied answer dated ``dated`` about clerk-017, recorded by feedback at
    ``recorded`` (its clock as the answer came; None: as it is dated)."""
    survey_id = uuid.uuid4()
    s = Survey(id=survey_id, survey_id=survey_id, purpose="resolution", channel="paper_form",
               resident_id=uuid.uuid4(), counter_id="window-3", clerk_id="clerk-017",
               service_item="SA-HARDSHIP-SUBSIDY", send_at=dated,
               expires_at=dated + timedelta(days=60), rectification_id=None, meta=meta(dated))
    s.rate(Answer(RatingLevel.DISSATISFIED, "等了两个小时"), AnsweredVia.TOKEN, None, dated,
           meta(dated))
    recorded_on = None if recorded is None else calendar.local_day(recorded)
    return Rectification.open_for(s, calendar, DAYS, meta(dated), recorded_on=recorded_on)


# -- the deadline: from the later of the review's day and the day it was recorded ---------------


@pytest.mark.parametrize(("dated", "recorded", "counted_from", "deadline", "basis"), [
    # A form dated 30 November typed in on Sunday 20 December 2026: as from Monday 21,
    # 22-25, 28. Counted from its date, it was due 7 December: overdue as it was opened.
    (at(2026, 11, 30, 10), at(2026, 12, 20, 10), date(2026, 12, 20), date(2026, 12, 28),
     Basis.OFFICIAL),
    # Typed in at 23:30 on New Year's Eve in Shanghai (15:30 UTC), a working Thursday:
    # 1 January off (2027 on the law alone), 4-8 January.
    (at(2026, 12, 1, 10), at(2026, 12, 31, 23, 30).astimezone(UTC), date(2026, 12, 31),
     date(2027, 1, 8), Basis.PROVISIONAL),
    # An hour later it is 1 January in Shanghai (still 31 December in UTC): a day off, as
    # from Monday 4: 5-8, 11.
    (at(2026, 12, 1, 10), at(2027, 1, 1, 0, 30).astimezone(UTC), date(2027, 1, 1),
     date(2027, 1, 11), Basis.PROVISIONAL),
    # Tuesday 29 February 2028 (provisional): 1-3, 6, 7 March.
    (at(2028, 2, 1, 10), at(2028, 2, 29, 16), date(2028, 2, 29), date(2028, 3, 7),
     Basis.PROVISIONAL),
])
def test_a_paper_form_typed_in_weeks_after_its_date_is_due_from_the_day_it_was_typed_in(
        dated: datetime, recorded: datetime, counted_from: date, deadline: date,
        basis: Basis) -> None:
    r = bad_review(dated, recorded)
    assert (r.counted_from, r.deadline_on, r.basis) == (counted_from, deadline, basis)
    assert r.reviewed_on == counted_from  # the appeal window counts from the same day
    [opened] = r.collect_events()
    assert (opened.counted_from, opened.deadline_on) == (counted_from, deadline)


@pytest.mark.parametrize(("dated", "recorded", "verified_at", "basis"), [
    # Typed in on Sunday 20 December 2026: Monday 21 at office opening.
    (at(2026, 11, 30, 10), at(2026, 12, 20, 10), at(2026, 12, 21, 9), Basis.OFFICIAL),
    # At 23:30 on New Year's Eve in Shanghai, or an hour later (1 January there, 31 December
    # in UTC): Monday 4 January 2027 either way (1 January off, by law; 2-3 a weekend).
    (at(2026, 12, 1, 10), at(2026, 12, 31, 23, 30).astimezone(UTC), at(2027, 1, 4, 9),
     Basis.PROVISIONAL),
    (at(2026, 12, 1, 10), at(2027, 1, 1, 0, 30).astimezone(UTC), at(2027, 1, 4, 9),
     Basis.PROVISIONAL),
    # Tuesday 29 February 2028: Wednesday 1 March.
    (at(2028, 2, 1, 10), at(2028, 2, 29, 16), at(2028, 3, 1, 9), Basis.PROVISIONAL),
])
def test_a_paper_forms_verification_call_is_due_the_working_morning_after_it_was_typed_in(
        dated: datetime, recorded: datetime, verified_at: datetime, basis: Basis) -> None:
    # Follow-up plans the 回访核实 from RectificationOpened: counted from the review's moment
    # alone, a form typed in three weeks late had its call due three weeks back.
    r = bad_review(dated, recorded)
    planned = CALENDAR.plan(verification_rule(CALENDAR, dated, 1, r.counted_from))
    assert (planned.at, planned.basis) == (verified_at, basis)


def test_a_form_typed_in_past_the_calendar_is_refused_not_counted_from_its_date() -> None:
    # The calendar ends with 2026 (no provisional years): a form dated 1 December typed in on
    # Monday 4 January 2027 has no day to count from (the API's 422 calendar_out_of_range);
    # counted from its date it was due 8 December, overdue and silent.
    ending = WorkingCalendar(provisional_years=0)
    with pytest.raises(CalendarOutOfRange):
        bad_review(at(2026, 12, 1, 10), at(2027, 1, 4, 9), ending)


def test_a_rectification_opened_before_keeps_its_deadline_when_the_calendar_is_planned_again(
        ) -> None:
    # Opened before calendar53: a form dated Friday 18 December typed in on Tuesday 22, its
    # deadline counted from the 18th (Friday 25) and recorded so (``counted_from``: the 18th).
    # Opened now, the same form is due Tuesday 29. A re-planning (every start, every reload)
    # counts the old one again from its own ``counted_from``: Friday 25 stays.
    dated, typed_in = at(2026, 12, 18, 10), date(2026, 12, 22)
    assert bad_review(dated, at(2026, 12, 22, 11)).deadline_on == date(2026, 12, 29)
    # Recorded the day it is dated (the tablet, a form typed in at once): its own day.
    assert bad_review(dated, at(2026, 12, 18, 18)).deadline_on == date(2026, 12, 25)
    rectification_id = uuid.uuid4()
    before = Rectification(
        id=rectification_id, rectification_id=rectification_id, resident_id=uuid.uuid4(),
        rating="dissatisfied", deadline_on=date(2026, 12, 25), summary="", survey_id=uuid.uuid4(),
        channel="paper_form", counter_id="window-3", clerk_id="clerk-017",
        service_item="SA-HARDSHIP-SUBSIDY", meta=meta(dated), counted_from=date(2026, 12, 18),
        working_days=DAYS, recorded_on=typed_in)
    assert before.revise_deadline(CALENDAR, date(2026, 12, 23), meta(at(2026, 12, 23, 9))) \
        is False
    assert before.deadline_on == date(2026, 12, 25)


# -- the appeal window: never judged on a day before what the service already recorded ----------


def complete(r: Rectification, when: datetime) -> None:
    """The supervisor records what was done, on the service's clock at ``when``."""
    r.complete("rectified", "窗口增派人手", r.deadline_on, meta(when, "director-01"))


@pytest.mark.parametrize(("reviewed", "closes_on", "recorded_after", "set_back_to"), [
    # Sunday 20 December 2026: closes Monday 28 (as from Monday 21); the outcome recorded on
    # Tuesday 29, then the clock set back to Monday 28.
    (at(2026, 12, 20, 15), date(2026, 12, 28), at(2026, 12, 29, 10), date(2026, 12, 28)),
    # Thursday 24 December: 25, 28-31, closes Thursday 31. The outcome recorded at 00:30 on
    # 1 January in Shanghai (16:30 UTC on the 31st, the window still open on a UTC day).
    (at(2026, 12, 24, 10), date(2026, 12, 31), at(2027, 1, 1, 0, 30).astimezone(UTC),
     date(2026, 12, 30)),
    # Tuesday 29 February 2028: closes Tuesday 7 March.
    (at(2028, 2, 29, 16), date(2028, 3, 7), at(2028, 3, 8, 9), date(2028, 3, 6)),
])
def test_a_clock_set_back_does_not_reopen_a_closed_appeal_window(
        reviewed: datetime, closes_on: date, recorded_after: datetime,
        set_back_to: date) -> None:
    r = bad_review(reviewed)
    complete(r, recorded_after)
    with pytest.raises(AppealWindowClosed) as refused:
        r.lodge_appeal("居民评错了窗口", meta(at(2030, 1, 1), "clerk-017"),
                       window=AppealWindow(CALENDAR, set_back_to, 5))
    assert refused.value.details["closed_on"] == closes_on.isoformat()
    assert r.appeal is None
    # Its twin, with nothing recorded after the window's end, is judged on the clock.
    twin = bad_review(reviewed)
    twin.lodge_appeal("居民评错了窗口", meta(at(2030, 1, 1), "clerk-017"),
                      window=AppealWindow(CALENDAR, set_back_to, 5))
    assert twin.appeal == "pending"


def test_what_was_recorded_at_23_30_on_new_years_eve_keeps_the_last_day_open() -> None:
    # Reviewed on Thursday 24 December, the window's last day Thursday 31: the outcome
    # recorded at 23:30 that night in Shanghai (15:30 UTC) is of the 31st, and the clerk
    # still appeals on a clock set back to the 30th, as on the 31st itself.
    r = bad_review(at(2026, 12, 24, 10))
    complete(r, at(2026, 12, 31, 23, 30).astimezone(UTC))
    assert r.seen_day(CALENDAR) == date(2026, 12, 31)
    r.lodge_appeal("居民评错了窗口", meta(at(2030, 1, 1), "clerk-017"),
                   window=AppealWindow(CALENDAR, date(2026, 12, 30), 5))
    assert r.appeal == "pending"


def test_the_appeal_windows_mark_is_read_again_from_the_stored_events() -> None:
    # The mark is the events' own meta, already in the store: the rectification loaded
    # again from its events (or one opened before the mark was kept) has it.
    r = bad_review(at(2026, 12, 20, 15))
    assert r.seen_day(CALENDAR) == date(2026, 12, 20)
    complete(r, at(2026, 12, 29, 9))
    loaded: Any = None
    for e in r.collect_events():
        loaded = e.mutate(loaded)
    assert loaded.seen_day(CALENDAR) == date(2026, 12, 29)
    with pytest.raises(AppealWindowClosed):
        loaded.lodge_appeal("迟到", meta(at(2030, 1, 1), "clerk-017"),
                            window=AppealWindow(CALENDAR, date(2026, 12, 21), 5))


def test_a_recorded_day_past_the_calendar_is_refused_not_judged_on_the_clock_set_back() -> None:
    # The calendar ends with 2026: the outcome was recorded on Monday 4 January 2027 (the
    # clock was there), then the clock went back to 30 December. The window is not judged on
    # the 30th as if nothing had been recorded since: the day it is judged on is past the
    # calendar (the API's 422 calendar_out_of_range), as the clock's own would have been.
    # (A window of ten working days from Monday 21 December: open on the 30th by the clock.)
    ending = WorkingCalendar(provisional_years=0)
    r = bad_review(at(2026, 12, 21, 10), calendar=ending)
    twin = bad_review(at(2026, 12, 21, 10), calendar=ending)
    twin.lodge_appeal("居民评错了窗口", meta(at(2030, 1, 1), "clerk-017"),
                      window=AppealWindow(ending, date(2026, 12, 30), 10))
    complete(r, at(2027, 1, 4, 9))
    with pytest.raises(CalendarOutOfRange):
        r.lodge_appeal("居民评错了窗口", meta(at(2030, 1, 1), "clerk-017"),
                       window=AppealWindow(ending, date(2026, 12, 30), 10))


@pytest.mark.parametrize(("reviewed", "decided", "set_back_to"), [
    # Sunday 20 December 2026: due Monday 28; the appeal decided (rejected) on Tuesday 29,
    # then the clock set back to Monday 28, the deadline's own day.
    (at(2026, 12, 20, 15), at(2026, 12, 29, 10), date(2026, 12, 28)),
    # Tuesday 29 February 2028: due Tuesday 7 March; decided on Wednesday 8.
    (at(2028, 2, 29, 16), at(2028, 3, 8, 9), date(2028, 3, 7)),
])
def test_a_clock_set_back_does_not_let_a_triage_move_a_missed_deadline(
        reviewed: datetime, decided: datetime, set_back_to: date) -> None:
    r = bad_review(reviewed)
    r.lodge_appeal("居民评错了窗口", meta(reviewed, "clerk-017"))
    r.decide_appeal(AppealDecision.REJECTED, None, "差评属实", "director-02",
                    meta(decided, "director-02"))
    with pytest.raises(RuleViolated) as refused:
        r.triage(RectificationTrack.EXPLAIN, 15, CALENDAR, set_back_to,
                 meta(datetime.combine(set_back_to, datetime.min.time(), SHANGHAI)
                      + timedelta(hours=10), "director-01"), as_of=set_back_to)
    assert refused.value.details["rule"] == "deadline_missed"
    assert r.track is None


# -- a clock once set ahead, then put right: the operator's CLOCK_AHEAD_UNTIL -------------------


@pytest.mark.parametrize(("reviewed", "ahead_at", "put_right_to", "ahead_until"), [
    # Reviewed on Sunday 20 December 2026 (closes Monday 28). On Monday 28 feedback's clock
    # is set a day ahead by mistake and records the outcome as of Tuesday 29; put right, the
    # clerk appeals that Monday, in time. Judged on the 29th, refused a day early.
    (at(2026, 12, 20, 15), at(2026, 12, 29, 10), date(2026, 12, 28), date(2026, 12, 29)),
    # Reviewed Thursday 24 December (closes Thursday 31). The host's clock kept Shanghai's
    # time read as UTC, 8 hours ahead: at 16:30 on the 31st it records at 00:30 on 1 January
    # in Shanghai (16:30 UTC on the 31st). Put right that evening, the appeal of 23:30 on the
    # 31st (15:30 UTC) is on the window's last day.
    (at(2026, 12, 24, 10), at(2027, 1, 1, 0, 30).astimezone(UTC), date(2026, 12, 31),
     date(2027, 1, 1)),
    # Reviewed Tuesday 29 February 2028 (closes Tuesday 7 March); a clock a year ahead
    # recorded on 7 March 2029 (provisional), put right on 7 March 2028.
    (at(2028, 2, 29, 16), at(2029, 3, 7, 10), date(2028, 3, 7), date(2029, 3, 7)),
])
def test_a_clock_once_set_ahead_closes_no_window_early_once_the_operator_says_so(
        reviewed: datetime, ahead_at: datetime, put_right_to: date, ahead_until: date) -> None:
    r = bad_review(reviewed)
    complete(r, ahead_at)
    clerk = meta(at(2030, 1, 1), "clerk-017")
    # As calendar53 made it: the day recorded ahead closes the window before its end, and
    # nothing in the log can be set right (the clock set back looks just the same).
    with pytest.raises(AppealWindowClosed):
        r.lodge_appeal("居民评错了窗口", clerk, window=AppealWindow(CALENDAR, put_right_to, 5))
    # The operator says the clock ran ahead through that day: judged on the clock again.
    r.lodge_appeal("居民评错了窗口", clerk,
                   window=AppealWindow(CALENDAR, put_right_to, 5, ahead_until))
    assert r.appeal == "pending"


def test_the_centers_mark_is_not_judged_on_up_to_the_day_the_clock_ran_ahead_to() -> None:
    # The center's last closed survey (one recorded while the clock ran ahead) and a clock set
    # back afterwards, told apart only by what the operator says.
    today = date(2026, 12, 28)
    assert judged_day(today, None) == today  # a center with no survey closed yet
    assert judged_day(today, date(2026, 12, 21)) == today  # the clock is ahead of the mark
    assert judged_day(today, date(2026, 12, 29)) == date(2026, 12, 29)  # calendar53's rule
    assert judged_day(today, date(2026, 12, 29), ahead_until=date(2026, 12, 29)) == today
    # A day recorded after the one the operator named is the clock set back again: it stands.
    assert judged_day(today, date(2026, 12, 30), ahead_until=date(2026, 12, 29)) == date(
        2026, 12, 30)
    # The review's own mark and the center's, judged together: the later one not run ahead.
    assert judged_day(today, date(2026, 12, 30), date(2026, 12, 29),
                      ahead_until=date(2026, 12, 29)) == date(2026, 12, 30)
    assert judged_day(today, None, date(2026, 12, 29), ahead_until=date(2026, 12, 29)) == today
    # Past the calendar's years (a clock typed a century ahead): not judged on, not a 422.
    ending = WorkingCalendar(provisional_years=0)
    r = bad_review(at(2026, 12, 21, 10), calendar=ending)
    complete(r, at(2126, 12, 21, 10))
    r.lodge_appeal("居民评错了窗口", meta(at(2030, 1, 1), "clerk-017"),
                   window=AppealWindow(ending, date(2026, 12, 28), 5, date(2126, 12, 31)))
    assert r.appeal == "pending"


def test_a_triage_is_not_refused_for_a_day_the_clock_ran_ahead_to() -> None:
    # Reviewed Sunday 20 December 2026, due Monday 28. On Wednesday 23 feedback's clock ran a
    # week ahead (Wednesday 30) as the appeal was decided; put right, the supervisor triages
    # on Thursday 24, the deadline four days off. Judged on the 30th: "deadline missed".
    def decided_ahead() -> Rectification:
        r = bad_review(at(2026, 12, 20, 15))
        r.lodge_appeal("居民评错了窗口", meta(at(2026, 12, 21, 9), "clerk-017"))
        r.decide_appeal(AppealDecision.REJECTED, None, "差评属实", "director-02",
                        meta(at(2026, 12, 30, 10), "director-02"))
        return r

    thursday = date(2026, 12, 24)
    triaged_at = meta(at(2026, 12, 24, 10), "director-01")
    refused = decided_ahead()
    with pytest.raises(RuleViolated):
        refused.triage(RectificationTrack.EXPLAIN, 15, CALENDAR, thursday, triaged_at,
                       as_of=thursday)
    r = decided_ahead()
    r.triage(RectificationTrack.EXPLAIN, 15, CALENDAR, thursday, triaged_at, as_of=thursday,
             ahead_until=date(2026, 12, 30))
    assert r.track == RectificationTrack.EXPLAIN.value


# -- a triage posted late counts from the day it is judged on, as a review does ------------------


@pytest.mark.parametrize(("reviewed", "given", "recorded", "deadline", "basis"), [
    # Reviewed on Sunday 20 December 2026 (due Monday 28). The supervisor decided the track on
    # Sunday (on paper) and posts it on Tuesday 22 with Sunday's occurred_at: 5 working days
    # from the 22nd (23-25, 28, 29). Counted from Sunday (as from Monday 21), the 28th: the
    # same triage posted with its day cost the work a day.
    (at(2026, 12, 20, 15), at(2026, 12, 20, 16), at(2026, 12, 22, 9), date(2026, 12, 29),
     Basis.OFFICIAL),
    # Posted at 23:30 on New Year's Eve in Shanghai (15:30 UTC), dated the 30th: from Thursday
    # 31 December, 1 January off (2027 on the law alone), 4-8 January. From the 30th: the 7th.
    (at(2026, 12, 28, 10), at(2026, 12, 30, 10), at(2026, 12, 31, 23, 30).astimezone(UTC),
     date(2027, 1, 8), Basis.PROVISIONAL),
    # In 2027 (provisional): dated Tuesday 5 January, posted Wednesday 6: 7, 8, 11-13.
    (at(2027, 1, 4, 10), at(2027, 1, 5, 10), at(2027, 1, 6, 9), date(2027, 1, 13),
     Basis.PROVISIONAL),
    # Dated Monday 28 February 2028, posted Tuesday 29: 1-3, 6, 7 March. From the 28th: the 6th.
    (at(2028, 2, 28, 10), at(2028, 2, 28, 17), at(2028, 2, 29, 9), date(2028, 3, 7),
     Basis.PROVISIONAL),
])
def test_a_triage_posted_with_an_earlier_day_counts_from_the_day_feedback_recorded_it(
        reviewed: datetime, given: datetime, recorded: datetime, deadline: date,
        basis: Basis) -> None:
    r = bad_review(reviewed)
    recorded_on = CALENDAR.local_day(recorded)  # the service's day as it came (Shanghai's)
    r.triage(RectificationTrack.LIMITED, DAYS, CALENDAR, CALENDAR.local_day(given),
             meta(given, "director-01"), as_of=recorded_on)
    assert (r.counted_from, r.deadline_on, r.basis) == (recorded_on, deadline, basis.value)
    # Posted on its own day, it counts from that day, as before.
    same = bad_review(reviewed)
    same.triage(RectificationTrack.LIMITED, DAYS, CALENDAR, recorded_on,
                meta(recorded, "director-01"), as_of=recorded_on)
    assert (same.counted_from, same.deadline_on) == (recorded_on, deadline)


def test_a_triage_on_a_clock_set_back_counts_from_the_day_the_review_reached() -> None:
    # Reviewed on Sunday 20 December (due Monday 28); its appeal decided (rejected) on
    # Wednesday 23. Feedback's clock is then set back to Monday 21, and a supervisor triages
    # on the immediate track (one working day): counted from the clock's 21st, it was due on
    # Tuesday 22, a day the review's own record had passed: born missed. From the 23rd: 24.
    r = bad_review(at(2026, 12, 20, 15))
    r.lodge_appeal("居民评错了窗口", meta(at(2026, 12, 21, 9), "clerk-017"))
    r.decide_appeal(AppealDecision.REJECTED, None, "差评属实", "director-02",
                    meta(at(2026, 12, 23, 10), "director-02"))
    monday = date(2026, 12, 21)
    r.triage(RectificationTrack.IMMEDIATE, 1, CALENDAR, monday,
             meta(at(2026, 12, 21, 10), "director-01"), as_of=monday)
    assert (r.counted_from, r.deadline_on) == (date(2026, 12, 23), date(2026, 12, 24))


# -- re-planning: "already missed" judged as the triage judges it ------------------------------


def published_2027(*off: str) -> WorkingCalendar:
    """2027's schedule published, with ``off`` days off besides New Year (illustrative)."""
    return WorkingCalendar(holidays=parse_holidays(json.dumps({"2027": {
        "source": "illustrative, not the State Council's",
        "holidays": ["2027-01-01..2027-01-03", *off], "workdays": []}})))


@pytest.mark.parametrize(("reviewed", "due", "decided", "set_back_to", "off", "published"), [
    # Reviewed Monday 28 December 2026: due Tuesday 5 January 2027 (29-31, 4, 5; provisional).
    # Its appeal is decided (rejected) on Thursday 7 January: the deadline had passed. The
    # clock is then set back to Monday 4, and 2027's schedule is published with the 5th off:
    # counted again, Wednesday 6 (official), and on the clock's 4th it was not yet missed.
    (at(2026, 12, 28, 10), date(2027, 1, 5), at(2027, 1, 7, 10), date(2027, 1, 4),
     "2027-01-05", date(2027, 1, 6)),
    # Reviewed at 23:30 on New Year's Eve in Shanghai (15:30 UTC): from Thursday 31, 4-8
    # January: due Friday 8; decided on Monday 11; set back to Thursday 7; the 8th off: 11.
    (at(2026, 12, 31, 23, 30).astimezone(UTC), date(2027, 1, 8), at(2027, 1, 11, 10),
     date(2027, 1, 7), "2027-01-08", date(2027, 1, 11)),
])
def test_a_schedule_published_on_a_clock_set_back_moves_no_missed_deadline(
        reviewed: datetime, due: date, decided: datetime, set_back_to: date, off: str,
        published: date) -> None:
    def missed() -> Rectification:
        r = bad_review(reviewed)
        assert (r.deadline_on, r.basis) == (due, Basis.PROVISIONAL.value)
        r.lodge_appeal("居民评错了窗口", meta(reviewed, "clerk-017"))
        r.decide_appeal(AppealDecision.REJECTED, None, "差评属实", "director-02",
                        meta(decided, "director-02"))
        return r

    calendar = published_2027(off)
    r = missed()
    # Missed on its day (the decision recorded after it): kept, the published day said once.
    assert r.revise_deadline(calendar, set_back_to, meta(at(2027, 1, 4, 9))) is True
    assert (r.deadline_on, r.basis, r.published_deadline_on) == (
        due, Basis.PROVISIONAL.value, published)
    # Unless the operator says the clock ran ahead through the day it was decided on.
    r = missed()
    assert r.revise_deadline(calendar, set_back_to, meta(at(2027, 1, 4, 9)),
                             CALENDAR.local_day(decided)) is True
    assert (r.deadline_on, r.basis) == (published, Basis.OFFICIAL.value)

"""A bad review the 好差评 way, without servers: the supervisor's triage and each track's
deadline, the verification contact the next working morning, the clerk's appeal decided by
someone else, and a named resident's revisit asked again until answered.

Dates worked out by hand on the 2026 schedule (Spring Festival: 15-23 February off, Saturdays
14 and 28 February worked) and on 2027 as the law alone plans it (provisional: 1 January off,
no make-up day)."""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from services.feedback.application import SurveyPolicy
from services.feedback.domain import (
    Answer,
    AppealExists,
    AppealWindow,
    AppealWindowClosed,
    NoAppealPending,
    NotYourReview,
    Rectification,
    SelfDecision,
    Survey,
    revisit_survey_id_for,
)
from services.followup.consumer import verification_rule
from shared.contracts.feedback import (
    AnsweredVia,
    AppealDecision,
    AppealGrounds,
    RatingLevel,
    RectificationTrack,
    SurveyChannel,
)
from shared.kernel.calendar import Basis, WorkingCalendar
from shared.kernel.errors import RuleViolated
from shared.kernel.holidays import parse_holidays

SHANGHAI = ZoneInfo("Asia/Shanghai")
CALENDAR = WorkingCalendar()
POLICY = SurveyPolicy()  # the defaults: 1 / 5 / 15 working days, untriaged follows limited


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=SHANGHAI)  # type: ignore[misc]


def meta(when: datetime, actor: str = "system:feedback") -> dict[str, Any]:
    return {"actor": actor, "occurred_at": when, "causation_id": None,
            "correlation_id": None, "center_id": "SH-PD-HUAMU", "case_id": uuid.uuid4()}


def bad_review(when: datetime, resident: bool = True,
               served_by: tuple[str, ...] = ("clerk-017",)) -> Rectification:
    """A dissatisfied answer at ``when`` about clerk-017, its rectification on the default
    track's limit; ``served_by``: the staff who opened or acted on the case."""
    survey_id = uuid.uuid4()
    s = Survey(id=survey_id, survey_id=survey_id, purpose="resolution", channel="sms",
               resident_id=uuid.uuid4() if resident else None, counter_id="window-3",
               clerk_id="clerk-017", service_item="SA-HARDSHIP-SUBSIDY", send_at=when,
               expires_at=when + timedelta(days=7), rectification_id=None, meta=meta(when),
               served_by=served_by)
    s.rate(Answer(RatingLevel.DISSATISFIED, "等了两个小时"), AnsweredVia.TOKEN, None, when,
           meta(when))
    return Rectification.open_for(s, CALENDAR, POLICY.working_days(POLICY.default_track),
                                  meta(when))


def triage(r: Rectification, track: RectificationTrack, day: date) -> None:
    r.triage(track, POLICY.working_days(track), CALENDAR, day,
             meta(at(day.year, day.month, day.day, 10), "director-01"))


# -- triage: each track its own limit --------------------------------------------------------


def test_an_untriaged_bad_review_is_due_on_the_default_tracks_limit() -> None:
    # Friday 13 February 2026, limited (5): Sat 14 (worked), Tue 24, 25, 26, Fri 27.
    r = bad_review(at(2026, 2, 13, 16))
    assert (r.track, r.deadline_on, r.basis) == (None, date(2026, 2, 27), Basis.OFFICIAL)


@pytest.mark.parametrize(("track", "deadline"), [
    (RectificationTrack.IMMEDIATE, date(2026, 2, 14)),  # the make-up Saturday is worked
    (RectificationTrack.LIMITED, date(2026, 2, 27)),  # the Spring Festival week is not
    (RectificationTrack.EXPLAIN, date(2026, 3, 12)),  # 14, 24-28 Feb, 2-6, 9-12 Mar
])
def test_each_track_counts_its_own_working_days_from_the_triage_across_the_holiday(
        track: RectificationTrack, deadline: date) -> None:
    r = bad_review(at(2026, 2, 12, 16))  # Thursday; triaged on Friday 13 February
    triage(r, track, date(2026, 2, 13))
    assert (r.track, r.deadline_on, r.counted_from, r.basis) == (
        track.value, deadline, date(2026, 2, 13), Basis.OFFICIAL)
    [*_, triaged] = r.collect_events()
    assert type(triaged).__name__ == "RectificationTriaged"
    assert triaged.previous_deadline_on == date(2026, 2, 26)  # Thu 12 + 5: 13, 14, 24, 25, 26


def test_a_triage_into_a_provisional_year_says_so_and_is_revised_like_any_deadline() -> None:
    # Thursday 31 December 2026: 1 January 2027 is a statutory holiday (the law alone).
    r = bad_review(at(2026, 12, 31, 9))
    triage(r, RectificationTrack.IMMEDIATE, date(2026, 12, 31))
    assert (r.deadline_on, r.basis) == (date(2027, 1, 4), Basis.PROVISIONAL)
    triage(r, RectificationTrack.LIMITED, date(2026, 12, 31))  # the supervisor thinks again
    assert (r.deadline_on, r.working_days) == (date(2027, 1, 8), 5)
    # 2027's schedule published with 1-3 January off and Monday 4 January worked as usual,
    # plus Friday 8 January off (illustrative): the track's 5 days from the triage end Monday 11.
    published = WorkingCalendar(holidays=parse_holidays(json.dumps({"2027": {
        "source": "illustrative, not the State Council's",
        "holidays": ["2027-01-01..2027-01-03", "2027-01-08"], "workdays": []}})))
    assert r.revise_deadline(published, date(2027, 1, 2), meta(at(2027, 1, 2, 9))) is True
    assert (r.deadline_on, r.basis, r.track) == (date(2027, 1, 11), Basis.OFFICIAL, "limited")


# A review of Sunday 20 December is past its untriaged deadline (the 28th) by the 31st: not
# triaged then (test_a_missed_deadline_is_not_counted_again_by_a_triage); Christmas Eve's is not.
@pytest.mark.parametrize("when", [at(2026, 12, 24, 10), at(2026, 12, 31, 23, 30)])
def test_a_deadline_the_published_schedule_keeps_is_confirmed_official_once(
        when: datetime) -> None:
    """Triaged on the immediate track: one working day after the triage's day, Monday 4
    January 2027 by the law alone (1 January off, 2-3 a weekend). The schedule published with
    1-3 January off keeps the day: revised once, the same day now official (it stayed
    'provisional' on the board for ever), and not again."""
    r = bad_review(when)
    triage(r, RectificationTrack.IMMEDIATE, date(2026, 12, 31))
    assert (r.deadline_on, r.basis) == (date(2027, 1, 4), Basis.PROVISIONAL)
    published = WorkingCalendar(holidays=parse_holidays(json.dumps({"2027": {
        "source": "illustrative, not the State Council's",
        "holidays": ["2027-01-01..2027-01-03"], "workdays": []}})))
    today = date(2026, 12, 31)
    assert r.revise_deadline(published, today, meta(when)) is True
    assert (r.deadline_on, r.basis) == (date(2027, 1, 4), Basis.OFFICIAL)
    [*_, revised] = r.collect_events()
    assert type(revised).__name__ == "RectificationDeadlineRevised"
    assert revised.previous_deadline_on == revised.deadline_on == date(2027, 1, 4)
    assert r.revise_deadline(published, today, meta(when)) is False


def test_a_deadline_missed_on_a_provisional_day_the_schedule_keeps_is_confirmed_not_moved(
        ) -> None:
    """Triaged on the immediate track on New Year's Eve 23:30: Monday 4 January 2027 by the
    law alone, provisional; not done by then. The schedule, published on Wednesday the 6th,
    keeps the 4th: the deadline stays missed on the 4th and its basis is confirmed official,
    once (before, a missed deadline was never looked at: provisional for ever, and so was
    its follow-up, which has no rule of its own). A schedule that moves it (the 4th off) leaves
    it missed on the 4th, provisional, and says so once (published_deadline_on: the 5th), so
    no reload reads it again (before, nothing was recorded: read at every reload, for ever)."""
    published = {True: ["2027-01-01..2027-01-03"], False: ["2027-01-01..2027-01-04"]}
    for keeps, off in published.items():
        r = bad_review(at(2026, 12, 31, 23, 30))
        triage(r, RectificationTrack.IMMEDIATE, date(2026, 12, 31))
        assert (r.deadline_on, r.basis) == (date(2027, 1, 4), Basis.PROVISIONAL)
        r.collect_events()
        calendar = WorkingCalendar(holidays=parse_holidays(json.dumps({"2027": {
            "source": "illustrative", "holidays": off, "workdays": []}})))
        today = date(2027, 1, 6)
        assert r.revise_deadline(calendar, today, meta(at(2027, 1, 6, 10))) is True
        [revised] = r.collect_events()
        assert (revised.deadline_on, revised.previous_deadline_on,
                revised.published_deadline_on) == (
            date(2027, 1, 4), date(2027, 1, 4), None if keeps else date(2027, 1, 5))
        assert (r.deadline_on, r.basis) == (
            date(2027, 1, 4), Basis.OFFICIAL if keeps else Basis.PROVISIONAL)
        assert r.revise_deadline(calendar, today, meta(at(2027, 1, 6, 10))) is False


def test_a_deadline_missed_on_its_provisional_day_stays_missed_when_the_notice_is_later(
        ) -> None:
    """Triaged immediate on New Year's Eve at 23:30 (15:30 UTC, still the 31st in
    Shanghai): Monday 4 January 2027 by the law alone. Not done by then; the notice, typed in
    on Wednesday the 6th, gives 1-8 January off, so its count ends on Monday the 11th, still
    to come. The deadline was missed on the 4th (a triage on the 6th is refused as missed,
    and its follow-up, missed too, keeps the 4th): it keeps its day and says the published
    one once, as an escalated task does. Before, it moved to the 11th and the rectification,
    put right on the 7th, counted on time."""
    r = bad_review(at(2026, 12, 31, 23, 30))
    triage(r, RectificationTrack.IMMEDIATE, date(2026, 12, 31))
    assert (r.deadline_on, r.basis) == (date(2027, 1, 4), Basis.PROVISIONAL)
    r.collect_events()
    published = WorkingCalendar(holidays=parse_holidays(json.dumps({"2027": {
        "source": "illustrative", "holidays": ["2027-01-01..2027-01-08"], "workdays": []}})))
    today = date(2027, 1, 6)
    with pytest.raises(RuleViolated):
        triage(r, RectificationTrack.LIMITED, today)
    assert r.revise_deadline(published, today, meta(at(2027, 1, 6, 10))) is True
    [revised] = r.collect_events()
    assert (revised.deadline_on, revised.previous_deadline_on, revised.published_deadline_on,
            revised.basis) == (date(2027, 1, 4), date(2027, 1, 4), date(2027, 1, 11),
                               Basis.PROVISIONAL.value)
    assert (r.deadline_on, r.basis) == (date(2027, 1, 4), Basis.PROVISIONAL)
    assert r.revise_deadline(published, today, meta(at(2027, 1, 6, 10))) is False, "once"


def test_a_missed_deadline_is_not_counted_again_by_a_triage() -> None:
    """Reviewed on Sunday 20 December 2026, untriaged: limited, due Monday the 28th. Triaged
    on New Year's Eve at 23:30 (still the 31st in Shanghai, 15:30 UTC), the explain track
    counted 15 working days from the triage and the rectification, put right late, was judged
    on time; so was one triaged with an ``occurred_at`` given before the deadline. On the
    deadline day itself the track still changes."""
    r = bad_review(at(2026, 12, 20, 10))
    assert r.deadline_on == date(2026, 12, 28)
    with pytest.raises(RuleViolated):
        triage(r, RectificationTrack.EXPLAIN, date(2026, 12, 31))
    with pytest.raises(RuleViolated):  # a day given earlier than the service's
        r.triage(RectificationTrack.EXPLAIN, POLICY.working_days(RectificationTrack.EXPLAIN),
                 CALENDAR, date(2026, 12, 24), meta(at(2026, 12, 24, 10), "director-01"),
                 as_of=date(2026, 12, 31))
    assert (r.deadline_on, r.track) == (date(2026, 12, 28), None)
    triage(r, RectificationTrack.IMMEDIATE, date(2026, 12, 28))
    assert (r.deadline_on, r.track) == (date(2026, 12, 29), "immediate")


def test_a_change_of_track_counts_from_the_first_triage_not_from_the_change() -> None:
    """Reviewed on Sunday 20 December 2026, triaged immediate on Monday 21 (due Tuesday 22).
    Triaged again on each deadline day, the deadline moved on for ever: explain on the 22nd
    counted 15 working days from the 22nd (13 January 2027), and again on the 13th from
    there, so the rectification was never late (rectification_on_time_rate). The new track's
    days count from the first triage: explain is due 12 January 2027 (provisional: 1 January
    off by the law), and triaging it again on its deadline day changes nothing."""
    r = bad_review(at(2026, 12, 20, 10))
    triage(r, RectificationTrack.IMMEDIATE, date(2026, 12, 21))
    assert r.deadline_on == date(2026, 12, 22)
    triage(r, RectificationTrack.EXPLAIN, date(2026, 12, 22))
    assert (r.deadline_on, r.counted_from, r.basis) == (
        date(2027, 1, 12), date(2026, 12, 21), Basis.PROVISIONAL)
    triage(r, RectificationTrack.EXPLAIN, date(2027, 1, 12))
    assert r.deadline_on == date(2027, 1, 12)
    with pytest.raises(RuleViolated):  # and missed the day after
        triage(r, RectificationTrack.EXPLAIN, date(2027, 1, 13))


def test_a_rectification_with_its_outcome_or_an_upheld_appeal_is_not_triaged() -> None:
    r = bad_review(at(2026, 3, 2, 10))
    r.complete("rectified", "当面道歉", date(2026, 3, 3), meta(at(2026, 3, 3, 10)))
    with pytest.raises(RuleViolated):
        triage(r, RectificationTrack.LIMITED, date(2026, 3, 3))


# -- the verification contact: the next working morning ---------------------------------------


@pytest.mark.parametrize(("reviewed", "due", "basis"), [
    (at(2026, 12, 18, 20), at(2026, 12, 21, 9), Basis.OFFICIAL),  # Friday evening -> Monday
    (at(2026, 12, 20, 11), at(2026, 12, 21, 9), Basis.OFFICIAL),  # Sunday 20 December
    (at(2026, 12, 21, 8), at(2026, 12, 22, 9), Basis.OFFICIAL),  # early Monday: Tuesday
    (at(2026, 2, 13, 18), at(2026, 2, 14, 9), Basis.OFFICIAL),  # the make-up Saturday
    (at(2026, 12, 31, 18), at(2027, 1, 4, 9), Basis.PROVISIONAL),  # New Year 2027, by law
])
def test_the_verification_contact_is_due_the_next_working_morning(
        reviewed: datetime, due: datetime, basis: Basis) -> None:
    planned = CALENDAR.plan(verification_rule(CALENDAR, reviewed, 1))
    assert (planned.at, planned.basis) == (due, basis)


def test_no_verification_delay_means_at_once() -> None:
    reviewed = at(2026, 12, 18, 20)
    assert CALENDAR.plan(verification_rule(CALENDAR, reviewed, 0)).at == reviewed
    assert CALENDAR.plan(verification_rule(CALENDAR, reviewed, 2)).at == at(2026, 12, 22, 9)


# -- the appeal: lodged by the clerk, decided by someone else -----------------------------------


def test_an_upheld_appeal_voids_the_open_rectification_and_is_decided_once() -> None:
    r = bad_review(at(2026, 3, 2, 10))
    r.lodge_appeal("居民把另一家单位的事评到了本窗口", meta(at(2026, 3, 2, 11), "clerk-017"))
    with pytest.raises(AppealExists):
        r.lodge_appeal("again", meta(at(2026, 3, 2, 12), "clerk-017"))
    with pytest.raises(SelfDecision):  # the reviewed clerk, even as a supervisor
        r.decide_appeal(AppealDecision.UPHELD, AppealGrounds.MISTAKEN, "自己核实", "clerk-017",
                        meta(at(2026, 3, 3, 10), "clerk-017"))
    r.decide_appeal(AppealDecision.UPHELD, AppealGrounds.MISTAKEN, "经核实为误评",
                    "director-01", meta(at(2026, 3, 3, 10), "director-01"))
    assert (r.appeal, r.status) == ("upheld", "void")
    [*_, decided] = r.collect_events()
    assert (decided.decision, decided.grounds, decided.appealed_by) == (
        "upheld", "mistaken", "clerk-017")
    with pytest.raises(NoAppealPending):
        r.decide_appeal(AppealDecision.REJECTED, None, "再议", "director-02",
                        meta(at(2026, 3, 4, 10), "director-02"))
    with pytest.raises(RuleViolated):
        r.complete("rectified", "nothing", date(2026, 3, 4), meta(at(2026, 3, 4, 10)))


def test_a_rejected_appeal_leaves_the_rectification_open() -> None:
    r = bad_review(at(2026, 3, 2, 10))
    with pytest.raises(NotYourReview):  # another clerk cannot appeal clerk-017's review
        r.lodge_appeal("不是我", meta(at(2026, 3, 2, 11), "clerk-021"))
    r.lodge_appeal("居民情绪激动，恶意差评", meta(at(2026, 3, 2, 11), "supervisor-02"),
                   on_behalf=True)
    with pytest.raises(SelfDecision):  # whoever appealed does not decide
        r.decide_appeal(AppealDecision.REJECTED, None, "no", "supervisor-02",
                        meta(at(2026, 3, 3, 10), "supervisor-02"))
    with pytest.raises(RuleViolated):  # upheld says why
        r.decide_appeal(AppealDecision.UPHELD, None, "no", "director-01",
                        meta(at(2026, 3, 3, 10), "director-01"))
    r.decide_appeal(AppealDecision.REJECTED, None, "差评属实", "director-01",
                    meta(at(2026, 3, 3, 10), "director-01"))
    assert (r.appeal, r.status) == ("rejected", "open")


def test_a_supervisor_who_served_the_case_neither_triages_nor_decides_its_appeal() -> None:
    # 首问负责制: clerk-017 opened the case on New Year's Eve (23:30) and stays the reviewed
    # clerk; it was handed to director-01, who resolved it. The bad review is of
    # director-01's work too: upholding the appeal would take their own bad review out of
    # the figures (申诉复核 by the one reviewed, by a handover). Another supervisor decides.
    r = bad_review(at(2026, 12, 31, 23, 30), served_by=("clerk-017", "director-01"))
    # Nor do they choose its track: 解释说明 gave their own work 15 working days.
    with pytest.raises(SelfDecision) as refused:
        triage(r, RectificationTrack.EXPLAIN, date(2026, 12, 31))
    assert (r.track, refused.value.details["because"]) == (None, "served")
    r.triage(RectificationTrack.IMMEDIATE, POLICY.working_days(RectificationTrack.IMMEDIATE),
             CALENDAR, date(2026, 12, 31), meta(at(2026, 12, 31, 23, 40), "director-02"))
    assert (r.track, r.deadline_on, r.basis) == ("immediate", date(2027, 1, 4),
                                                 Basis.PROVISIONAL)
    r.lodge_appeal("居民对政策本身不满", meta(at(2027, 1, 4, 9), "clerk-017"))
    with pytest.raises(SelfDecision) as refused:
        r.decide_appeal(AppealDecision.UPHELD, AppealGrounds.MISTAKEN, "经核实为误评",
                        "director-01", meta(at(2027, 1, 4, 10), "director-01"))
    assert r.appeal == "pending"
    # The answer says which of the rule's three it is (the same 403 for the reviewed clerk).
    assert refused.value.details["because"] == "served"
    assert "director-01 served the case" in refused.value.message
    r.decide_appeal(AppealDecision.REJECTED, None, "差评属实", "director-02",
                    meta(at(2027, 1, 4, 10), "director-02"))
    assert (r.appeal, r.status) == ("rejected", "open")


def test_nobody_records_the_outcome_of_a_rectification_about_their_own_work() -> None:
    # clerk-017 opened the case on New Year's Eve (23:30 Shanghai), director-01 resolved it
    # after the handover; the resident rated it dissatisfied. Recording the outcome (整改结果)
    # closes the rectification: neither the reviewed clerk (promoted, or acting as a
    # supervisor), nor who served the case, nor a supervisor who appealed for the clerk
    # closes the one about their own work; director-02 does, and the revisit follows.
    r = bad_review(at(2026, 12, 31, 23, 30), served_by=("clerk-017", "director-01"))
    r.lodge_appeal("居民对政策本身不满", meta(at(2027, 1, 4, 9), "director-03"),
                   on_behalf=True)
    for who, because in (("clerk-017", "reviewed"), ("director-01", "served"),
                         ("director-03", "appealed")):
        with pytest.raises(SelfDecision) as refused:
            r.complete("fixed", "重新核算补贴", date(2027, 1, 4),
                       meta(at(2027, 1, 4, 10), who))
        assert (refused.value.status, refused.value.code) == (403, "self_decision")
        assert refused.value.details["because"] == because
        assert (r.status, getattr(r, "completed_on", None)) == ("open", None)
    r.complete("fixed", "重新核算补贴", date(2027, 1, 4), meta(at(2027, 1, 4, 10), "director-02"))
    assert (r.status, r.completed_on) == ("completed", date(2027, 1, 4))


# -- the revisit: a task until it is done -------------------------------------------------------


def test_a_named_residents_unanswered_revisit_is_asked_again_by_phone() -> None:
    r = bad_review(at(2026, 3, 2, 10))
    r.complete("rectified", "补发救助金", date(2026, 3, 3), meta(at(2026, 3, 3, 10)))
    first = r.request_revisit(at(2026, 3, 3, 12), at(2026, 3, 10, 12), meta(at(2026, 3, 3, 10)),
                              r.revisit_channel_for("sms"))
    assert (first.channel, first.id) == ("sms", revisit_survey_id_for(r.id))
    again = r.ask_again(first.id, at(2026, 3, 10, 12), at(2026, 3, 17, 12),
                        meta(at(2026, 3, 10, 12)))
    assert again is not None
    assert (again.channel, again.id, again.purpose, again.rectification_id) == (
        SurveyChannel.PHONE_CALLBACK, revisit_survey_id_for(r.id, 2), "revisit", r.id)
    assert r.revisit_attempt == 2
    assert r.ask_again(first.id, at(2026, 3, 10, 12), at(2026, 3, 17, 12),
                       meta(at(2026, 3, 10, 12))) is None, "only the latest attempt"


def test_an_anonymous_revisit_is_not_asked_again() -> None:
    r = bad_review(at(2026, 3, 2, 10), resident=False)
    r.complete("explained", "已说明", date(2026, 3, 3), meta(at(2026, 3, 3, 10)))
    first = r.request_revisit(at(2026, 3, 3, 12), at(2026, 3, 10, 12), meta(at(2026, 3, 3, 10)))
    assert first.channel == SurveyChannel.PHONE_CALLBACK, "phone by default"
    assert r.ask_again(first.id, at(2026, 3, 10, 12), at(2026, 3, 17, 12),
                       meta(at(2026, 3, 10, 12))) is None


# -- the appeal's window (申诉时限): 5 working days after the review's day -----------------------


def window(today: date, working_days: int = 5) -> AppealWindow:
    return AppealWindow(CALENDAR, today, working_days)


@pytest.mark.parametrize(("reviewed", "last_day", "first_late"), [
    # Sunday 20 December 2026: as from Monday 21, five working days: Monday 28.
    (at(2026, 12, 20, 15), date(2026, 12, 28), date(2026, 12, 29)),
    # 23:30 on New Year's Eve in Shanghai (15:30 UTC), a working Thursday: 1 January off
    # (2027 on the law alone, provisional), then 4-8 January: Friday 8.
    (at(2026, 12, 31, 23, 30).astimezone(ZoneInfo("UTC")), date(2027, 1, 8),
     date(2027, 1, 11)),
    # Qingming on Monday 5 April 2027 (provisional): as from Tuesday 6: 7, 8, 9, 12, 13.
    (at(2027, 4, 5, 10), date(2027, 4, 13), date(2027, 4, 14)),
    # Tuesday 29 February 2028: 1-3, 6, 7 March.
    (at(2028, 2, 29, 16), date(2028, 3, 7), date(2028, 3, 8)),
])
def test_a_bad_review_is_appealed_within_five_working_days_of_its_day_not_after(
        reviewed: datetime, last_day: date, first_late: date) -> None:
    late = bad_review(reviewed)
    with pytest.raises(AppealWindowClosed) as refused:
        late.lodge_appeal("迟到的申诉", meta(at(2030, 1, 1), "clerk-017"),
                          window=window(first_late))
    assert refused.value.status == 409 and refused.value.code == "appeal_window_closed"
    assert refused.value.details["closed_on"] == last_day.isoformat()
    assert late.appeal is None
    on_time = bad_review(reviewed)
    on_time.lodge_appeal("居民评错了窗口", meta(at(2030, 1, 1), "clerk-017"),
                         window=window(last_day))
    assert on_time.appeal == "pending"


def test_last_years_bad_review_is_not_appealed_even_by_a_supervisor() -> None:
    r = bad_review(at(2026, 3, 2, 10))
    with pytest.raises(AppealWindowClosed):
        r.lodge_appeal("去年的差评", meta(at(2026, 12, 20, 10), "supervisor-02"),
                       on_behalf=True, window=window(date(2027, 3, 1)))


def test_an_appeal_lodged_in_time_is_decided_after_the_window_and_the_triage_moves_nothing(
        ) -> None:
    # Reviewed on Monday 2 March 2026; triaged on Friday 6 (the triage counts its deadline
    # from then): the window still counts from the review's day, Tuesday 3 to Monday 9.
    r = bad_review(at(2026, 3, 2, 10))
    triage(r, RectificationTrack.EXPLAIN, date(2026, 3, 6))
    with pytest.raises(AppealWindowClosed):
        bad_twin = bad_review(at(2026, 3, 2, 10))
        triage(bad_twin, RectificationTrack.EXPLAIN, date(2026, 3, 6))
        bad_twin.lodge_appeal("晚了", meta(at(2026, 3, 10, 9), "clerk-017"),
                              window=window(date(2026, 3, 10)))
    r.lodge_appeal("居民情绪激动", meta(at(2026, 3, 9, 16), "clerk-017"),
                   window=window(date(2026, 3, 9)))
    # Decided a month later: the window bounds the lodging, not the decision.
    r.decide_appeal(AppealDecision.REJECTED, None, "差评属实", "director-01",
                    meta(at(2026, 4, 9, 10), "director-01"))
    assert (r.appeal, r.status) == ("rejected", "open")


def test_an_appeal_at_the_calendars_last_days_is_judged_on_the_days_up_to_today() -> None:
    # The calendar ends with 2026 (no provisional years): reviewed on Tuesday 29 December,
    # appealed the next day, the window is open whatever the days after 31 December hold.
    # Until redteam104 the window's last day was counted first, into 2027: a 422
    # calendar_out_of_range refused an appeal in time on the last days of the horizon.
    ending = WorkingCalendar(provisional_years=0)
    r = bad_review(at(2026, 12, 29, 10))
    r.lodge_appeal("居民评错了窗口", meta(at(2026, 12, 30, 9), "clerk-017"),
                   window=AppealWindow(ending, date(2026, 12, 30), 5))
    assert r.appeal == "pending"
    # Closed is still told with the day it closed on, the days up to it being known.
    late = bad_review(at(2026, 12, 7, 10))
    with pytest.raises(AppealWindowClosed) as refused:
        late.lodge_appeal("晚了", meta(at(2026, 12, 30, 9), "clerk-017"),
                          window=AppealWindow(ending, date(2026, 12, 30), 5))
    assert refused.value.details["closed_on"] == "2026-12-14"

"""Feedback's aggregates, without servers: a survey asks once and takes one answer; a bad
review opens a rectification due fifteen working days later, revised when the year's schedule
is published, and followed by a revisit. Dates are worked out by hand (the 2026 schedule; 2027
provisional: the law's holidays alone)."""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from services.feedback.application import SurveyPolicy
from services.feedback.consumer import IntakeFollower
from services.feedback.domain import (
    Answer,
    Consent,
    Recorder,
    Rectification,
    SelfRating,
    StaffDeclineRefused,
    Survey,
    SurveyAlreadyAnswered,
    SurveyClosed,
    SurveyWithdrawnError,
    revisit_survey_id_for,
)
from shared.contracts.feedback import (
    AnsweredVia,
    RatingLevel,
    StaffChannel,
    SurveyChannel,
    WithdrawalCause,
)
from shared.contracts.vocabulary import Verdict
from shared.kernel.calendar import Basis, WorkingCalendar
from shared.kernel.errors import InvalidCommand, RuleViolated
from shared.kernel.holidays import parse_holidays

SHANGHAI = ZoneInfo("Asia/Shanghai")
CALENDAR = WorkingCalendar()
SENT = datetime(2026, 3, 2, 11, tzinfo=SHANGHAI)
EXPIRES = SENT + timedelta(days=7)


def meta(occurred_at: datetime = SENT) -> dict[str, Any]:
    return {"actor": "system:feedback", "occurred_at": occurred_at, "causation_id": None,
            "correlation_id": None, "center_id": "SH-PD-HUAMU", "case_id": uuid.uuid4()}


def survey(channel: SurveyChannel = SurveyChannel.SMS, resident: bool = True,
           asked_at: datetime = SENT) -> Survey:
    """A survey asked at ``asked_at`` that waits seven days for its answer."""
    survey_id = uuid.uuid4()
    return Survey(id=survey_id, survey_id=survey_id, purpose="resolution", channel=channel.value,
                  resident_id=uuid.uuid4() if resident else None, counter_id="window-3",
                  clerk_id="clerk-017", service_item="SA-HARDSHIP-SUBSIDY", send_at=asked_at,
                  expires_at=asked_at + timedelta(days=7), rectification_id=None,
                  meta=meta(asked_at))


def rate(s: Survey, level: RatingLevel, now: datetime = SENT, comment: str = "",
         aspects: dict[str, int] | None = None) -> None:
    s.rate(Answer(level, comment, aspects or {}), AnsweredVia.TOKEN, None, now, meta(now))


# -- the survey -----------------------------------------------------------------------------


def test_a_survey_is_sent_once_and_not_after_its_deadline() -> None:
    s = survey()
    s.send(SENT, meta())
    assert s.status == "sent"
    with pytest.raises(RuleViolated):
        s.send(SENT, meta())
    late = survey()
    with pytest.raises(SurveyClosed):
        late.send(EXPIRES, meta())


def test_a_survey_takes_one_answer_before_its_deadline() -> None:
    s = survey()
    s.send(SENT, meta())
    rate(s, RatingLevel.SATISFIED, EXPIRES - timedelta(seconds=1))
    assert (s.status, s.level, s.is_bad_review) == ("answered", "satisfied", False)
    with pytest.raises(SurveyAlreadyAnswered):
        rate(s, RatingLevel.VERY_DISSATISFIED)
    too_late = survey()
    with pytest.raises(SurveyClosed):
        rate(too_late, RatingLevel.SATISFIED, EXPIRES)


def test_a_survey_expires_only_unanswered_and_only_once_its_deadline_passed() -> None:
    s = survey()
    s.send(SENT, meta())
    with pytest.raises(RuleViolated):
        s.expire(EXPIRES - timedelta(seconds=1), meta())
    s.expire(EXPIRES, meta())
    assert s.status == "expired" and not s.is_open
    answered = survey()
    rate(answered, RatingLevel.DISSATISFIED)
    with pytest.raises(RuleViolated):
        answered.expire(EXPIRES, meta())


def test_a_withdrawn_survey_takes_no_answer_and_says_why() -> None:
    s = survey()
    s.withdraw("the case was reopened", meta())
    assert (s.status, s.withdrawn_because) == ("withdrawn", WithdrawalCause.REOPENED)
    with pytest.raises(SurveyWithdrawnError, match="reopened"):
        rate(s, RatingLevel.SATISFIED)
    with pytest.raises(RuleViolated):
        s.withdraw("again", meta())


def test_a_survey_past_its_deadline_is_no_answer_whatever_reaches_it_first() -> None:
    """The week ended at 23:59:30 on New Year's Eve; the scheduler, a minute behind, has not
    recorded the no answer when a reopening or a consent taken back comes at 00:00:40: it
    is expired, dated at its deadline (December's no answer), not withdrawn (counted
    nowhere). Before the deadline they withdraw it, as always."""
    eve = datetime(2026, 12, 31, 23, 59, 30, tzinfo=SHANGHAI)
    after = eve + timedelta(seconds=70)
    reopened = survey(asked_at=eve - timedelta(days=7))
    reopened.send(eve - timedelta(days=7), meta(eve - timedelta(days=7)))
    reopened.withdraw("the case was reopened", meta(after))
    refused = survey(asked_at=eve - timedelta(days=7))
    refused.send(eve - timedelta(days=7), meta(eve - timedelta(days=7)))
    assert refused.respect(Consent(surveys=False), meta(after)) is None
    unsent = survey(asked_at=eve - timedelta(days=7))  # never went: the sender was down
    assert unsent.withdraw_unless_sent("the case was reopened", meta(after)) is False
    for s in (reopened, refused, unsent):
        (last,) = [e for e in s.collect_events() if type(e).__name__ != "SurveySent"][1:]
        assert (type(last).__name__, last.meta["occurred_at"], s.status) == ("SurveyExpired", eve,
                                                                   "expired")
    before = survey(asked_at=eve - timedelta(days=7))
    assert before.respect(Consent(surveys=False), meta(eve - timedelta(seconds=1))) == \
        WithdrawalCause.NO_CONSENT
    assert before.status == "withdrawn"


def test_a_reopening_withdraws_a_survey_only_while_it_has_not_really_gone() -> None:
    """Its planned send moment passed, the scheduler down: still waiting, it is withdrawn
    (True, and True again for the same reopening read twice); sent, it stands (False)."""
    waiting = survey()
    assert waiting.withdraw_unless_sent("the case was reopened", meta()) is True
    assert (waiting.status, waiting.withdrawn_because) == ("withdrawn",
                                                           WithdrawalCause.REOPENED)
    assert waiting.withdraw_unless_sent("the case was reopened", meta()) is True
    sent = survey()
    sent.send(SENT, meta())
    assert sent.withdraw_unless_sent("the case was reopened", meta()) is False
    assert sent.status == "sent"
    refused = survey()  # sent, then the resident took back their consent: it was asked
    refused.send(SENT, meta())
    refused.withdraw("no consent", meta(), WithdrawalCause.NO_CONSENT)
    assert refused.withdraw_unless_sent("the case was reopened", meta()) is False


def test_a_tablet_survey_redirected_after_its_resident_left_stands_at_a_reopening() -> None:
    """Resolved at the window at 10:00, the tablet offers the survey; the resident leaves
    without rating and it is redirected to a text due at 12:00 (waiting again, on its new
    channel). Staff reopen at 11:00: it was put before the resident on the tablet, so it
    stands (False, nothing recorded), as a sent one; before, it was withdrawn as never asked
    and a resolution that afternoon put a fresh survey over the one they left unrated."""
    left = survey(SurveyChannel.TABLET)
    left.send(SENT, meta())
    left.redirect(SurveyChannel.SMS, SENT + timedelta(hours=2), EXPIRES, SENT, meta())
    assert left.status == "requested"
    assert left.withdraw_unless_sent("the case was reopened", meta()) is False
    assert (left.status, left.channel) == ("requested", "sms")
    assert [type(e).__name__ for e in left.collect_events()][-1] == "SurveyRedirected"


def test_a_survey_withdrawn_unsent_for_consent_holds_no_day_at_a_reopening() -> None:
    """Resolved at 10:00, its text due at 12:00; the resident takes back their consent at
    11:00 (withdrawn, never sent), staff reopen at 14:00 and, consent given again, resolve at
    16:00. The day's survey never was put before them: the reopening says so (True), and the
    resolution asks them. Before, False: the survey held the day and nothing was asked."""
    refused = survey()
    refused.withdraw("no consent", meta(), WithdrawalCause.NO_CONSENT)
    assert refused.withdraw_unless_sent("the case was reopened", meta()) is True
    assert refused.withdrawn_because == WithdrawalCause.NO_CONSENT


# -- the rectification ----------------------------------------------------------------------


def bad_review(answered_at: datetime, channel: SurveyChannel = SurveyChannel.TABLET,
               resident: bool = True) -> tuple[Survey, Rectification]:
    s = survey(channel, resident, asked_at=answered_at)
    s.send(answered_at, meta(answered_at))
    rate(s, RatingLevel.DISSATISFIED, answered_at, comment="等了两个小时",
         aspects={"listened": 2, "understood": 4, "explained_clearly": 1, "served_well": 3})
    return s, Rectification.open_for(s, CALENDAR, 15, meta(answered_at))


def test_only_a_bad_review_opens_a_rectification() -> None:
    s = survey()
    rate(s, RatingLevel.BASICALLY_SATISFIED)
    with pytest.raises(RuleViolated):
        Rectification.open_for(s, CALENDAR, 15, meta())


def test_a_rectification_is_due_fifteen_working_days_after_the_answer() -> None:
    # Friday 13 February 2026: Sat 14 (make-up), Tue 24 .. Fri 27, Sat 28 (make-up),
    # 2-6 March, 9-12 March.
    s, r = bad_review(datetime(2026, 2, 13, 16, tzinfo=SHANGHAI))
    assert (r.deadline_on, r.basis, r.status) == (date(2026, 3, 12), Basis.OFFICIAL, "open")
    assert r.case_id == s.case_id and r.survey_id == s.id
    assert r.revise_deadline(CALENDAR, date(2026, 2, 20), meta()) is False, "official already"


def published_2027() -> WorkingCalendar:
    """2027's schedule published, 6 January off as well (illustrative)."""
    return WorkingCalendar(holidays=parse_holidays(json.dumps({"2027": {
        "source": "illustrative, not the State Council's",
        "holidays": ["2027-01-01..2027-01-03", "2027-01-06"], "workdays": []}})))


def test_a_provisional_deadline_is_revised_once_the_years_schedule_is_published() -> None:
    # Tuesday 15 December 2026: Dec 16-18, 21-25, 28-31 (12), 1 January off, Jan 4, 5, 6.
    _, r = bad_review(datetime(2026, 12, 15, 10, tzinfo=SHANGHAI))
    assert (r.deadline_on, r.basis) == (date(2027, 1, 6), Basis.PROVISIONAL)
    assert r.revise_deadline(CALENDAR, date(2026, 12, 20), meta()) is False, "not published"
    published = published_2027()
    # With 6 January off the fifteenth working day is Thursday 7 January.
    assert r.revise_deadline(published, date(2026, 12, 20), meta()) is True
    assert (r.deadline_on, r.basis) == (date(2027, 1, 7), Basis.OFFICIAL)
    assert r.revise_deadline(published, date(2026, 12, 20), meta()) is False, "once"
    # The draft taken out of the file again: the law's count, and it says provisional (it
    # stayed 7 January, 'official' on a day no schedule says any more).
    assert r.revise_deadline(CALENDAR, date(2026, 12, 20), meta()) is True
    assert (r.deadline_on, r.basis) == (date(2027, 1, 6), Basis.PROVISIONAL)


def test_a_revised_deadline_is_never_before_today() -> None:
    _, r = bad_review(datetime(2026, 12, 15, 10, tzinfo=SHANGHAI))
    earlier = WorkingCalendar(holidays=parse_holidays(json.dumps({"2027": {
        "source": "illustrative", "holidays": ["2027-01-01"], "workdays": ["2027-01-02"]}})))
    # Saturday 2 January worked: the fifteenth working day would be Tuesday 5 January.
    assert earlier.add_working_days(date(2026, 12, 15), 15) == date(2027, 1, 5)
    later = r.revise_deadline(earlier, date(2027, 1, 6), meta())
    # On the 6th, 6 January stays in force (never before today), confirmed on the published
    # year once: no longer 'provisional' for ever. Not again.
    assert (later, r.deadline_on, r.basis) == (True, date(2027, 1, 6), Basis.OFFICIAL)
    assert r.revise_deadline(earlier, date(2027, 1, 6), meta()) is False
    _, r = bad_review(datetime(2026, 12, 15, 10, tzinfo=SHANGHAI))
    assert r.revise_deadline(earlier, date(2026, 12, 20), meta()) is True
    assert r.deadline_on == date(2027, 1, 5)


def test_a_provisional_deadline_missed_stays_missed_whenever_the_days_are_counted_again(
        ) -> None:
    """Due Wednesday 6 January 2027 (provisional), still open on Friday the 8th: re-planning
    runs at every start of the service and every reload. On the same days the count is the
    same, and since day17 that moved the deadline to the day of the count (8 January, then
    the 9th at the next start...): a missed rectification came out on time. Nor does the
    year's publication forgive it when the new count is past as well (as a follow-up or an
    obligation due either way): kept on the 6th, provisional, said once (the published 7th),
    then read no more."""
    _, r = bad_review(datetime(2026, 12, 15, 10, tzinfo=SHANGHAI))
    assert (r.deadline_on, r.basis) == (date(2027, 1, 6), Basis.PROVISIONAL)
    assert r.revise_deadline(CALENDAR, date(2027, 1, 8), meta()) is False, "nothing changed"
    published = published_2027()
    assert r.revise_deadline(published, date(2027, 1, 8), meta()) is True, "7 Jan: missed too"
    assert (r.deadline_on, r.basis, r.published_deadline_on) == (
        date(2027, 1, 6), Basis.PROVISIONAL, date(2027, 1, 7))
    assert r.revise_deadline(published, date(2027, 1, 8), meta()) is False, "said once"
    # Published while still ahead: it moves, and never before today.
    _, ahead = bad_review(datetime(2026, 12, 15, 10, tzinfo=SHANGHAI))
    assert ahead.revise_deadline(published, date(2027, 1, 5), meta()) is True
    assert (ahead.deadline_on, ahead.basis) == (date(2027, 1, 7), Basis.OFFICIAL)


def test_the_outcome_is_recorded_once_on_time_or_not_then_the_resident_is_asked_again() -> None:
    s, r = bad_review(datetime(2026, 2, 13, 16, tzinfo=SHANGHAI))
    with pytest.raises(RuleViolated):
        r.request_revisit(SENT, EXPIRES, meta())
    r.complete("rectified", "窗口增加叫号提醒", date(2026, 3, 12), meta())
    with pytest.raises(RuleViolated):
        r.complete("explained", "", date(2026, 3, 13), meta())
    [*_, completed] = r.collect_events()
    assert completed.on_time is True and completed.deadline_on == date(2026, 3, 12)
    revisit = r.request_revisit(SENT, EXPIRES, meta(), r.revisit_channel_for("sms"))
    assert revisit.id == revisit_survey_id_for(r.id) and revisit.purpose == "revisit"
    assert revisit.channel == SurveyChannel.SMS, "REVISIT_CHANNEL=sms texts a known resident"
    assert (revisit.case_id, revisit.rectification_id) == (s.case_id, r.id)


def test_a_late_outcome_is_not_on_time_and_a_revisit_without_a_resident_is_a_call() -> None:
    _, r = bad_review(datetime(2026, 2, 13, 16, tzinfo=SHANGHAI), resident=False)
    r.complete("explained", "已再次说明政策", date(2026, 3, 13), meta())
    [*_, completed] = r.collect_events()
    assert completed.on_time is False
    channel = r.revisit_channel_for("sms")
    assert r.request_revisit(SENT, EXPIRES, meta(), channel).channel == \
        SurveyChannel.PHONE_CALLBACK


# -- the resident's verdict, reasons, and no 代评 -------------------------------------------


def test_staff_who_opened_or_served_the_case_cannot_record_its_answer() -> None:
    """代评: the case's clerk, anyone who acted on the case, and an answer attributed to one
    of them are refused; a colleague records it, with how it came."""
    s = survey(SurveyChannel.PHONE_CALLBACK)
    s.served_by = ("clerk-017", "director-01")
    answer = Answer(RatingLevel.SATISFIED, verdict=Verdict.SOLVED)
    for recorder in (Recorder("clerk-017", "clerk-017"), Recorder("director-01", "clerk-021"),
                     Recorder("director-02", "clerk-017")):
        with pytest.raises(SelfRating):
            s.rate(answer, AnsweredVia.CLERK, recorder, SENT, meta())
    s.rate(answer, AnsweredVia.CLERK, Recorder("clerk-021", "clerk-021", StaffChannel.PAPER_FORM),
           SENT, meta())
    event = s.collect_events()[-1]
    assert (event.via, event.clerk_id, event.staff_channel, event.verdict) == (
        "clerk", "clerk-021", "paper_form", "solved")


def test_staff_who_served_the_case_cannot_record_that_the_resident_declined() -> None:
    """代评 by the other route: the clerk a bad review is about, asking its revisit by phone,
    recorded "the resident would rather not" and the revisit ended without the resident's
    verdict. Staff who opened or served the case are refused as for an answer; a colleague
    records it; staff never decline a text's survey."""
    s = survey(SurveyChannel.PHONE_CALLBACK)
    s.served_by = ("clerk-017", "director-01")
    for who in ("clerk-017", "director-01"):
        with pytest.raises(SelfRating):
            s.decline(SENT, meta(), by_staff=who)
    with pytest.raises(StaffDeclineRefused):
        survey(SurveyChannel.SMS).decline(SENT, meta(), by_staff="clerk-021")
    s.decline(SENT, meta(), by_staff="clerk-021")
    assert s.status == "declined"


def test_reasons_are_picked_from_the_centers_list_for_a_bad_review_only() -> None:
    tags = ("态度不好", "等待太久")
    Answer(RatingLevel.DISSATISFIED, reason_tags=("等待太久",)).check(tags)
    for wrong in (Answer(RatingLevel.DISSATISFIED, reason_tags=("太慢了",)),
                  Answer(RatingLevel.SATISFIED, reason_tags=("等待太久",)),
                  Answer(RatingLevel.VERY_DISSATISFIED, reason_tags=("等待太久", "等待太久"))):
        with pytest.raises(InvalidCommand):
            wrong.check(tags)


def test_a_bad_reviews_reasons_go_with_its_rectification() -> None:
    s = survey()
    s.rate(Answer(RatingLevel.VERY_DISSATISFIED, "跑了三趟", verdict=Verdict.NOT_SOLVED,
                  reason_tags=("多次跑腿", "没有解决")), AnsweredVia.TOKEN, None, SENT, meta())
    s.served_by = ("clerk-017", "clerk-021")
    rectification = Rectification.open_for(s, CALENDAR, 15, meta())
    assert rectification.reason_tags == ("多次跑腿", "没有解决")
    # Its revisit cannot be recorded by those who served the case either.
    rectification.complete("rectified", "补齐材料清单", date(2026, 3, 5), meta())
    revisit = rectification.request_revisit(SENT, EXPIRES, meta(),
                                            rectification.revisit_channel_for("sms"))
    with pytest.raises(SelfRating):
        revisit.rate(Answer(RatingLevel.SATISFIED), AnsweredVia.CLERK,
                     Recorder("clerk-021", "clerk-021"), SENT, meta())
    opened = rectification.collect_events()[0]
    assert list(opened.reason_tags) == ["多次跑腿", "没有解决"]


def test_a_center_sets_its_own_reasons_and_a_blank_or_repeated_one_is_refused() -> None:
    from pydantic import ValidationError

    from shared.settings import Settings

    assert Settings().survey_reason_tags == ["态度不好", "等待太久", "多次跑腿", "材料要求不清",
                                             "没有解决"]
    assert Settings(survey_reason_tags=["排队太久", "态度差"]).survey_reason_tags == [
        "排队太久", "态度差"]
    for wrong in ([], ["  "], ["排队太久", "排队太久"], ["x" * 33]):
        with pytest.raises(ValidationError):
            Settings(survey_reason_tags=wrong)


def test_a_tablet_survey_is_asked_elsewhere_once_and_stays_one_survey() -> None:
    """Redirected away from the tablet (its window can no longer offer it): once, only while
    it waits there, before its deadline; then sent on its new channel, and answered once,
    also from the tablet's page still open."""
    asked = survey(SurveyChannel.TABLET)
    with pytest.raises(RuleViolated):  # not sent to the tablet yet
        asked.redirect(SurveyChannel.SMS, SENT + timedelta(hours=2), EXPIRES, SENT, meta())
    asked.send(SENT, meta())
    with pytest.raises(RuleViolated):
        asked.redirect(SurveyChannel.TABLET, SENT, EXPIRES, SENT, meta())
    with pytest.raises(SurveyClosed):
        asked.redirect(SurveyChannel.SMS, SENT, EXPIRES, EXPIRES, meta())
    later = EXPIRES + timedelta(hours=2)
    asked.redirect(SurveyChannel.SMS, SENT + timedelta(hours=2), later, SENT, meta())
    assert (asked.channel, asked.status, asked.expires_at) == ("sms", "requested", later)
    with pytest.raises(RuleViolated):  # once
        asked.redirect(SurveyChannel.PHONE_CALLBACK, SENT, later, SENT, meta())
    asked.rate(Answer(RatingLevel.SATISFIED), AnsweredVia.TOKEN, None, SENT, meta())
    with pytest.raises(RuleViolated):  # answered: nothing more to send
        asked.send(SENT + timedelta(hours=2), meta())
    assert [type(e).__name__ for e in asked.collect_events()] == [
        "SurveyRequested", "SurveySent", "SurveyRedirected", "RatingGiven"]

    declined = survey(SurveyChannel.TABLET)  # "I'd rather not rate", on the pad
    declined.send(SENT, meta())
    declined.decline(SENT, meta())
    with pytest.raises(RuleViolated):  # not asked again by text
        declined.redirect(SurveyChannel.SMS, SENT + timedelta(hours=2), later, SENT, meta())


def test_away_from_the_window_is_a_text_or_a_clerks_call() -> None:
    policy = SurveyPolicy()
    assert policy.away_from_window(uuid.uuid4()) == SurveyChannel.SMS
    assert policy.away_from_window(None) == SurveyChannel.PHONE_CALLBACK


class _CenterDays:
    """What the intake follower asks of feedback to tell a center's day (its zone's)."""

    def __init__(self) -> None:
        self.policy = SurveyPolicy()

    def local_day(self, at: datetime) -> date:
        return at.astimezone(self.policy.tz).date()


@pytest.mark.parametrize(("asked", "then", "same_day"), [
    ("2026-12-20T10:30:00+08:00", "2026-12-20T16:59:00+08:00", True),  # Sunday 20 December
    ("2026-12-31T23:30:00+08:00", "2026-12-31T23:59:00+08:00", True),  # New Year's Eve
    ("2026-12-31T23:30:00+08:00", "2027-01-01T00:10:00+08:00", False),  # into 2027
    ("2026-12-31T15:30:00+00:00", "2026-12-31T16:10:00+00:00", False),  # the same, in UTC
    ("2027-02-05T09:00:00+08:00", "2027-02-05T09:05:00+08:00", True),  # 2027, provisional
    ("2028-03-06T12:30:00+08:00", "2028-03-06T11:00:00+08:00", False),  # a text not sent yet
])
def test_one_tablet_survey_a_case_a_center_day_is_told_on_the_centers_clock(
        asked: str, then: str, same_day: bool) -> None:
    """The intake follower keeps a tablet survey open through a reopening, and asks none anew,
    on the center's day it was asked: 23:30 on New Year's Eve and 00:10 on 1 January are two
    days in Shanghai, though one in UTC. A text or a call is asked at its send moment: a
    reopening before it, that day, finds nothing asked yet (2028: a year no schedule knows)."""
    follower = IntakeFollower(_CenterDays())  # type: ignore[arg-type]
    case = {"last_survey_at": datetime.fromisoformat(asked)}
    assert follower._asked_on(case, datetime.fromisoformat(then)) is same_day
    assert follower._asked_on({"last_survey_at": None}, datetime.fromisoformat(then)) is False

"""No resident is texted or called back in the night: an SMS or phone survey whose delay
(``SURVEY_DELAY_MINUTES``) ends in the quiet hours (``SURVEY_QUIET_FROM``..``UNTIL``, the
center's wall clock) is due at their end. A case resolved at 23:30 on New Year's Eve was texted
at 01:30; the counter's tablet still asks at once, the resident is standing there."""

from __future__ import annotations

import uuid
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.feedback.application import SurveyPolicy
from shared.contracts.feedback import SurveyChannel
from shared.settings import Settings

SHANGHAI = ZoneInfo("Asia/Shanghai")
POLICY = SurveyPolicy()  # two hours' delay, quiet 21:00-08:00


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


@pytest.mark.parametrize(("resolved", "sent"), [
    ("2026-12-31 23:30", "2027-01-01 08:00"),  # 01:30 is in the night
    ("2026-12-31 18:59", "2026-12-31 20:59"),  # before 21:00: as the delay says
    ("2026-12-31 19:00", "2027-01-01 08:00"),  # 21:00 is quiet
    ("2027-01-01 05:00", "2027-01-01 08:00"),  # 07:00, still quiet
    ("2027-01-01 06:00", "2027-01-01 08:00"),  # 08:00 exactly: its end, as is
    ("2027-01-01 06:01", "2027-01-01 08:01"),
])
def test_an_sms_or_a_callback_waits_for_the_morning(resolved: str, sent: str) -> None:
    for channel in (SurveyChannel.SMS, SurveyChannel.PHONE_CALLBACK):
        send_at, expires_at = POLICY.timing(channel, local(resolved))
        assert send_at == local(sent)
        assert expires_at == send_at + POLICY.answer_window


@pytest.mark.parametrize(("send_at", "now", "goes_at"), [
    # Due at 20:59 on New Year's Eve, seen at 23:30 unsent: the morning of New Year's Day.
    ("2026-12-31 20:59", "2026-12-31 23:30", "2027-01-01 08:00"),
    # Due at 20:00 on Sunday 20 December, seen at 20:30: the next tick sends it, as due.
    ("2026-12-20 20:00", "2026-12-20 20:30", "2026-12-20 20:00"),
    ("2026-12-21 08:00", "2026-12-20 23:00", "2026-12-21 08:00"),  # not due yet: as due
])
def test_a_text_held_by_the_quiet_hours_says_when_it_really_goes(
        send_at: str, now: str, goes_at: str) -> None:
    for channel in (SurveyChannel.SMS, SurveyChannel.PHONE_CALLBACK):
        assert POLICY.goes_at(channel, local(send_at), local(now)) == local(goes_at)
    # The tablet asks at the window whatever the hour: as due.
    assert POLICY.goes_at(SurveyChannel.TABLET, local(send_at), local(now)) == local(send_at)


def test_a_moment_in_utc_is_read_on_the_centers_clock() -> None:
    # 15:30 UTC is 23:30 in Shanghai; the answer keeps the caller's offset.
    send_at, _ = POLICY.timing(SurveyChannel.SMS, datetime.fromisoformat(
        "2026-12-31T15:30:00+00:00"))
    assert send_at == local("2027-01-01 08:00")
    assert send_at.utcoffset() == timedelta(0)


def test_the_tablet_asks_at_once_at_any_hour() -> None:
    assert POLICY.timing(SurveyChannel.TABLET, local("2026-12-31 23:30"))[0] == \
        local("2026-12-31 23:30")


def test_quiet_hours_are_settings_and_equal_values_mean_none() -> None:
    none = SurveyPolicy.from_settings(Settings(survey_quiet_from=time(0, 0),
                                               survey_quiet_until=time(0, 0)))
    assert none.timing(SurveyChannel.SMS, local("2026-12-31 23:30"))[0] == \
        local("2027-01-01 01:30")
    lunch = SurveyPolicy.from_settings(Settings(survey_quiet_from=time(12, 0),
                                                survey_quiet_until=time(13, 30)))
    assert lunch.timing(SurveyChannel.SMS, local("2026-12-31 10:15"))[0] == \
        local("2026-12-31 13:30")


@pytest.mark.parametrize("written", ["21:00+08:00", "21:00Z"])
def test_quiet_hours_with_an_offset_are_refused_at_start_up(
        written: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The quiet hours are the center's wall clock (CENTER_TIMEZONE); an hour with an offset
    # was taken at start-up and then every text's or call's survey failed on it (TypeError:
    # can't compare offset-naive and offset-aware times): the resolution dead-lettered.
    monkeypatch.setenv("SURVEY_QUIET_FROM", written)
    with pytest.raises(ValueError, match="SURVEY_QUIET"):
        Settings()


@pytest.mark.parametrize("resolved", [
    "2026-12-20 10:00",  # a Sunday
    "2026-12-31 23:30",  # New Year's Eve, in the night
    "2027-06-01 20:30",  # the provisional calendar's year, its delay ending in the night
    "2028-03-01 09:00",  # a year the holiday package does not know
])
def test_a_resolution_is_planned_once_as_the_policy_times_it(resolved: str) -> None:
    """The intake follower works out a resolution's channel and timing once
    (``Feedback.plan``) and hands it to ``is_too_old`` and ``asked_at``: the same as each
    working it out again, for every channel, at the window or not, with or without consent."""
    from services.feedback.application import Feedback, ResolvedCase
    from services.feedback.domain import Consent
    from shared.kernel.clock import ManualClock

    feedback = Feedback.__new__(Feedback)  # only the policy and the clock are asked
    feedback.policy, feedback.clock = POLICY, ManualClock(local(resolved) + timedelta(days=3))
    for intake_channel in ("counter", "phone", "home_visit", "open311"):
        for at_window in (True, False):
            for resident in (uuid.uuid4(), None):
                case = ResolvedCase(
                    case_id=uuid.uuid4(), center_id="c1", counter_id="w1", clerk_id="k1",
                    service_item="s", intake_channel=intake_channel, resident_id=resident,
                    resolved_event_id=uuid.uuid4(), resolved_at=local(resolved),
                    correlation_id=None, served_by=("k1",), at_window=at_window)
                channel = POLICY.channel_for(intake_channel, resident, at_window)
                plan = feedback.plan(case)
                assert plan == (channel, *POLICY.timing(channel, local(resolved)))
                assert type(plan.channel) is SurveyChannel
                assert feedback.is_too_old(case, plan) == feedback.is_too_old(case)
                for consent in (None, Consent(), Consent(surveys=False), Consent(erased=True)):
                    assert (feedback.asked_at(case, consent, plan)
                            == feedback.asked_at(case, consent))

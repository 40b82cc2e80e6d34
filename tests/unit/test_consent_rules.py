"""What a resident agreed to, as pure rules: what follow-up may plan, what feedback may ask,
who may publish to whom, and how the older events that knew none of it are read."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.feedback.domain import Consent as SurveyConsent
from services.feedback.domain import Survey
from services.followup.domain import (
    CityRoleRequired,
    Consent,
    FollowUp,
    Obligation,
    consent_allows,
    fan_out_center,
    policy_scope,
)
from shared.contracts import REGISTRY, Envelope
from shared.contracts.feedback import SurveyChannel, WithdrawalCause
from shared.contracts.followup import PublisherScope, Reason
from shared.kernel.calendar import Basis, DueRule, WorkingCalendar
from shared.kernel.errors import RuleViolated
from shared.kernel.holidays import parse_holidays

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
META = {"actor": "system:rules", "occurred_at": NOW, "causation_id": None,
        "correlation_id": None, "center_id": "SH-PD-HUAMU", "case_id": uuid.uuid4()}
ERASED, REFUSES, AGREES = Consent(erased=True), Consent(contact=False), Consent()


@pytest.mark.parametrize(("reason", "agrees", "refuses"), [
    (Reason.DEADLINE_REMINDER, True, False),  # owed anyway: a task without contact
    (Reason.OBLIGATION_MISSED, True, False),
    (Reason.RECTIFICATION, True, False),
    (Reason.POST_RESOLUTION_CHECK, True, None),  # only outreach: not at all
    (Reason.POLICY_CHANGE, True, None),
    (Reason.HOME_VISIT, True, None),
])
def test_what_may_be_planned_for_a_resident(reason: Reason, agrees: bool,
                                            refuses: bool | None) -> None:
    assert consent_allows(reason, AGREES) is agrees
    assert consent_allows(reason, REFUSES) is refuses
    assert consent_allows(reason, ERASED) is None, "nothing for an erased resident"


def _follow_up(reason: Reason) -> FollowUp:
    return FollowUp(id=uuid.uuid4(), reason=reason.value, resident_id=uuid.uuid4(),
                    due_at=NOW + timedelta(days=3), assigned_clerk="clerk-017",
                    assigned_team=None, priority="normal", service_item=None, source="test",
                    source_id=None, meta=dict(META))


def test_a_task_without_contact_moves_with_the_published_year_and_stays_a_task() -> None:
    """20 December 2026: a reminder three working days before a deadline on 8 January 2027
    is planned on the provisional year; the resident then refuses contact (a task). When an
    official 2027 schedule makes 6 January a day off, the task moves to 4 January, on the
    official basis, and is still a task."""
    shanghai = ZoneInfo("Asia/Shanghai")
    december_20 = datetime(2026, 12, 20, 10, tzinfo=shanghai)
    rule = DueRule("on_or_before", date(2027, 1, 8), 3, not_before=december_20)
    planned = WorkingCalendar().plan(rule)
    assert planned.basis is Basis.PROVISIONAL
    meta = dict(META) | {"occurred_at": december_20}
    task = FollowUp(id=uuid.uuid4(), reason=Reason.DEADLINE_REMINDER.value,
                    resident_id=uuid.uuid4(), due_at=planned.at, assigned_clerk="clerk-017",
                    assigned_team=None, priority="normal", service_item=None, source="test",
                    source_id=None, meta=meta, basis=planned.basis.value,
                    due_rule=rule.as_dict())
    assert task.respect(REFUSES, dict(meta)) == "FollowUpContactWithdrawn"
    published = WorkingCalendar(holidays=parse_holidays(json.dumps({"2027": {
        "source": "illustrative, not the State Council's",
        "holidays": ["2027-01-01..2027-01-03", "2027-01-06"], "workdays": []}})))
    assert task.replan(published, december_20, dict(meta) | {"causation_id": "calendar:x"})
    assert (task.due_at, task.basis, task.contact, task.status) == (
        datetime(2027, 1, 4, 9, tzinfo=shanghai), Basis.OFFICIAL, False, "scheduled")


def test_an_open_follow_up_is_brought_in_line_with_a_later_no() -> None:
    reminder = _follow_up(Reason.DEADLINE_REMINDER)
    assert reminder.respect(AGREES, dict(META)) is None
    assert reminder.respect(REFUSES, dict(META)) == "FollowUpContactWithdrawn"
    assert (reminder.status, reminder.contact) == ("scheduled", False)
    assert reminder.respect(REFUSES, dict(META)) is None, "once"
    with pytest.raises(RuleViolated):
        reminder.complete("done", "phone", "", dict(META))
    reminder.complete("done", "none", "材料已核对", dict(META))
    assert reminder.respect(ERASED, dict(META)) is None, "ended: left as it is"

    check = _follow_up(Reason.POST_RESOLUTION_CHECK)
    assert check.respect(REFUSES, dict(META)) == "FollowUpCancelled"
    erased = _follow_up(Reason.RECTIFICATION)
    assert erased.respect(ERASED, dict(META)) == "FollowUpCancelled"


def test_an_erased_residents_obligation_is_no_longer_watched() -> None:
    obligation = Obligation(id=uuid.uuid4(), obligation_id=uuid.uuid4(),
                            resident_id=uuid.uuid4(), cadence="monthly",
                            next_due_on=NOW.date(), missed_at=NOW, assigned_clerk=None,
                            service_item=None, meta=dict(META))
    assert obligation.respect(REFUSES, dict(META)) is None, "still watched: tasks follow"
    assert obligation.respect(ERASED, dict(META)) == "ObligationEnded"
    assert obligation.active is False and obligation.next_fire_at is None


def test_only_the_city_publishes_to_every_center() -> None:
    assert policy_scope("city", None, "SH-PD-HUAMU", True) is PublisherScope.CITY
    assert policy_scope("supervisor", "SH-PD-HUAMU", "SH-PD-HUAMU",
                        False) is PublisherScope.CENTER
    for token_center, center, everywhere in (("SH-PD-LUJIAZUI", "SH-PD-LUJIAZUI", True),
                                             ("SH-PD-LUJIAZUI", "SH-PD-HUAMU", False)):
        with pytest.raises(CityRoleRequired):
            policy_scope("supervisor", token_center, center, everywhere)
    assert fan_out_center("SH-PD-HUAMU", True, "city") is None
    assert fan_out_center("SH-PD-HUAMU", True, "center") == "SH-PD-HUAMU", (
        "a center's reach, whatever all_centers says")
    assert fan_out_center("SH-PD-HUAMU", False, "city") == "SH-PD-HUAMU"


@pytest.mark.parametrize(("channel", "refuses", "erased"), [
    (SurveyChannel.SMS, WithdrawalCause.NO_CONSENT, WithdrawalCause.ERASED),
    (SurveyChannel.PHONE_CALLBACK, WithdrawalCause.NO_CONSENT, WithdrawalCause.ERASED),
    (SurveyChannel.TABLET, None, WithdrawalCause.ERASED),  # the resident is there in person
])
def test_who_may_be_asked_for_feedback(channel: SurveyChannel, refuses: WithdrawalCause | None,
                                       erased: WithdrawalCause) -> None:
    assert SurveyConsent().forbids(channel) is None
    assert SurveyConsent(surveys=False).forbids(channel) is refuses
    assert SurveyConsent(erased=True).forbids(channel) is erased
    survey = Survey(id=uuid.uuid4(), survey_id=uuid.uuid4(), purpose="resolution",
                    channel=channel.value, resident_id=uuid.uuid4(), counter_id="window-3",
                    clerk_id="clerk-017", service_item="SA-HARDSHIP-SUBSIDY", send_at=NOW,
                    expires_at=NOW + timedelta(days=7), rectification_id=None,
                    meta=dict(META))
    assert survey.respect(SurveyConsent(surveys=False), dict(META)) is refuses
    assert survey.respect(SurveyConsent(erased=True), dict(META)) is (
        None if refuses else erased), "withdrawn once"
    assert survey.status == "withdrawn"


def _old(type_: str, service: str, payload: dict[str, object]) -> Envelope:
    return Envelope(event_id=uuid.uuid4(), type=type_, version=1, service=service, position=1,
                    aggregate_id=uuid.uuid4(), aggregate_version=1, case_id=None,
                    center_id="SH-PD-HUAMU", occurred_at=NOW, recorded_at=NOW,
                    actor="director-01", payload=payload)


def test_events_from_before_consent_travelled_are_read_as_they_meant() -> None:
    withdrawn = REGISTRY.current(_old("SurveyWithdrawn", "feedback", {
        "survey_id": str(uuid.uuid4()), "reason": "the case was reopened"}))
    assert (withdrawn.version, withdrawn.payload["because"]) == (2, "reopened")
    scheduled = REGISTRY.current(_old("FollowUpScheduled", "followup", {
        "reason": "deadline_reminder", "resident_id": None, "due_at": NOW.isoformat(),
        "assigned_clerk": "clerk-017", "assigned_team": None, "source": "api"}))
    assert (scheduled.version, scheduled.payload["contact"], scheduled.payload["basis"],
            scheduled.payload["due_rule"]) == (2, True, "official", None), (
        "one v2: consent and the calendar's basis filled by the same upcaster")
    published = REGISTRY.current(_old("PolicyChangePublished", "followup", {
        "service_items": ["SA-HARDSHIP-SUBSIDY"], "summary": "补助上调",
        "effective_on": "2026-04-01", "all_centers": True,
        "outreach_due_at": NOW.isoformat()}))
    assert (published.version, published.payload["scope"], published.payload["basis"]) == (
        2, "center", "official"), "published before the city role: the publisher's own center"

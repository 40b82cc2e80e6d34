"""A case reopened on the resident's word goes before its clerk at once on the working-day
calendar: said on a Sunday, it is due at Monday's office opening, across the last days of a
year planned provisionally; resolving the case again closes it."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest

from services.followup.domain import follow_up_id_for, referral_id_for
from shared.settings import Settings
from tests.feedback.helpers import History
from tests.followup.story import CENTER, at, center_day
from tests.support import wait_until


async def test_not_solved_on_a_sunday_is_due_at_mondays_opening_even_in_2028(
        settings: Settings) -> None:
    reopened_at = at(2028, 12, 24, 10)  # Sunday 24 December 2028 (a provisional year)
    async with center_day(settings, at(2028, 12, 24, 10, 30), with_intake=False) as center:
        history = History(CENTER)
        resident = uuid.uuid4()
        case_id = history.case(at(2028, 12, 22, 9).isoformat(), resident_id=resident)
        history.resolved(case_id, at(2028, 12, 22, 10).isoformat())
        reopen = history.add("intake", "CaseReopened", reopened_at.isoformat(),
                             {"reason": "resident_says_unsolved"}, case_id=case_id,
                             actor="system:verdicts")
        await history.publish_new(settings)
        unsolved = follow_up_id_for("unsolved", reopen.event_id)
        found = await _planned(center, unsolved)
        assert (found["reason"], found["priority"], found["assigned_clerk"]) == (
            "resident_says_unsolved", "high", "clerk-017")
        # Monday 25 December 2028 is a working day in China: office opening, provisional.
        assert datetime.fromisoformat(found["due_at"]) == at(2028, 12, 25, 9)
        assert found["basis"] == "provisional"

        # Resolved again on the Monday: the follow-up is done with.
        center.clock.set(at(2028, 12, 25, 11, 5))
        history.resolved(case_id, at(2028, 12, 25, 11).isoformat())
        await history.publish_new(settings)

        async def closed() -> bool:
            r = await center.followup.get(f"/followups/{unsolved}")
            return r.json()["status"] == "cancelled"
        await wait_until(closed, what="the follow-up closed by the second resolution")


async def _some(found: object) -> bool:
    return bool(await found)  # type: ignore[misc]


async def _planned(center: Any, follow_up_id: uuid.UUID) -> dict[str, Any]:
    """The clerk's 'not solved' follow-up, once the rules planned it."""
    async def planned() -> dict | None:
        r = await center.followup.get(f"/followups/{follow_up_id}")
        return r.json() if r.status_code == 200 else None
    await wait_until(lambda: _some(planned()), what="the clerk's 'not solved' follow-up")
    found = await planned()
    assert found is not None
    return found


#: (said (a month back), recorded (now), its judged moment: intake's clock less the 72 h
#: grace, the follow-up's due moment)
SAID_LONG_AGO = {
    "sunday_20_december": (at(2026, 11, 18, 15), at(2026, 12, 20, 10), at(2026, 12, 17, 10),
                           at(2026, 12, 21, 9)),
    "new_years_eve_23_30": (at(2026, 12, 1, 15), at(2026, 12, 31, 23, 30),
                            at(2026, 12, 28, 23, 30), at(2027, 1, 4, 9)),
    "a_2028_friday_18_00": (at(2028, 2, 9, 15), at(2028, 3, 10, 18), at(2028, 3, 7, 18),
                            at(2028, 3, 13, 9)),
}


@pytest.mark.parametrize("story", list(SAID_LONG_AGO))
async def test_not_solved_said_a_month_back_and_recorded_today_is_work_not_lapsed(
        settings: Settings, story: str) -> None:
    """A post-resolution check's "not solved", said on the phone a month ago and recorded
    today: intake reopens the case with the answer's moment and its judged one (its clock less
    the grace). The clerk's follow-up is due on the next working morning; planned from the
    answer's moment, its day lay more than FOLLOWUP_LAPSE_AFTER_DAYS back and the rules
    recorded it lapsed (cancelled) at once: a resident's fresh complaint on nobody's list."""
    said, now, judged, due_at = SAID_LONG_AGO[story]
    async with center_day(settings, now, with_intake=False) as center:
        found, _ = await _not_solved_recorded_late(settings, center, said, judged)
        assert (found["status"], datetime.fromisoformat(found["due_at"])) == (
            "scheduled", due_at), found


async def _not_solved_recorded_late(settings: Settings, center: Any, said: datetime,
                                    judged: datetime, referred: bool = False
                                    ) -> tuple[dict[str, Any], uuid.UUID | None]:
    """A case (``referred``: to the social insurance bureau, five working days to reply)
    resolved two days before the resident's "not solved" at ``said``, recorded now with
    ``judged``: the clerk's follow-up once planned, and the referral's id."""
    history = History(CENTER)
    case_id = history.case((said - timedelta(days=3)).isoformat(), resident_id=uuid.uuid4())
    referral = None
    if referred:
        referral = referral_id_for(history.add(
            "intake", "ActionTaken", (said - timedelta(days=3)).isoformat(),
            {"kind": "referred", "description": "转社保中心核定",
             "referred_to": "浦东新区社保中心", "unit_kind": "social_insurance_bureau",
             "within_working_days": 5}, case_id=case_id, actor="clerk-017").event_id)
    history.resolved(case_id, (said - timedelta(days=2)).isoformat())
    reopen = history.add("intake", "CaseReopened", said.isoformat(),
                         {"reason": "resident_says_unsolved", "judged_at": judged.isoformat()},
                         case_id=case_id, actor="system:verdicts")
    await history.publish_new(settings)
    await _planned(center, follow_up_id_for("unsolved", reopen.event_id))
    await center.settled()
    return await _planned(center, follow_up_id_for("unsolved", reopen.event_id)), referral


#: (said (a month back), recorded (now), its judged moment, the referral's new reply deadline:
#: five working days from the day the "not solved" reached the center's system, from the
#: next working day when that is a day off: Sunday 20 December counts from Monday 21)
CHASED_FROM_THE_POST = {
    "sunday_20_december": (*SAID_LONG_AGO["sunday_20_december"][:3], at(2026, 12, 28, 17)),
    "new_years_eve_23_30": (*SAID_LONG_AGO["new_years_eve_23_30"][:3], at(2027, 1, 8, 17)),
    "provisional_2027": (at(2027, 2, 10, 15), at(2027, 3, 12, 10), at(2027, 3, 9, 10),
                         at(2027, 3, 19, 17)),
    "a_2028_friday_18_00": (*SAID_LONG_AGO["a_2028_friday_18_00"][:3], at(2028, 3, 17, 17)),
}


@pytest.mark.parametrize("story", list(CHASED_FROM_THE_POST))
async def test_a_referral_chased_again_on_a_not_solved_recorded_a_month_late_has_its_days(
        settings: Settings, story: str) -> None:
    """The case was referred to the social insurance bureau (five working days to reply) and
    resolved before the bureau replied: the referral closed. The resident's "not solved",
    said on the phone a month ago, is recorded today (``CaseReopened.judged_at``): the
    referral is awaited again with its five working days counted from the day the center
    learnt of the reopening, as a referral typed in late is. Counted from the day the answer
    was said, its reply was due weeks ago and the bureau was overdue before it was asked."""
    said, now, judged, reply_due = CHASED_FROM_THE_POST[story]
    async with center_day(settings, now, with_intake=False) as center:
        _, referral_id = await _not_solved_recorded_late(settings, center, said, judged,
                                                         referred=True)
        r = await center.followup.get(f"/referrals/{referral_id}")
        assert r.status_code == 200, r.text
        referral = r.json()
        assert (referral["status"], datetime.fromisoformat(referral["reply_due_at"])) == (
            "awaiting_reply", reply_due), referral

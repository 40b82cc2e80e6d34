"""A counter tablet whose clock runs 3 minutes fast resolves a case at 23:58 and the network is
down: the page keeps the step (its clock saying 00:01, the next day) and sends it at 00:20.
Then ``occurred_at`` is behind intake's clock and nothing in it shows the tablet's error; the
``sent_at`` the page stamps as it sends (00:23 by the tablet) does, and intake dates the
resolution 23:58, on the day the resident was at the counter. On New Year's Eve in Shanghai,
Sunday 20 December 2026, and 29 February 2028 (a year the holiday package does not know).
A caller that sends no ``sent_at`` is taken as before; a ``sent_at`` more than
OCCURRED_AT_MAX_FUTURE_S off is a 422 naming it, and records nothing."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from services.intake.main import create_app
from shared.kernel.clock import ManualClock
from shared.settings import Settings
from tests.followup.story import SHANGHAI, at
from tests.intake.test_counter_day import key, open_case, step
from tests.support import headers, running, stream_envelopes

FAST = timedelta(minutes=3)
#: The service's clock as the resident sits at the counter, the last minutes of a day.
EDGES = [at(2026, 12, 20, 23, 58), at(2026, 12, 31, 23, 58), at(2028, 2, 29, 23, 58)]


def tablet(moment: datetime) -> str:
    """What the tablet's clock says at ``moment`` (the service's clock)."""
    return (moment + FAST).astimezone(SHANGHAI).isoformat()


async def heard_case(client: Any) -> str:
    case_id = (await open_case(client))["id"]
    r = await step(client, case_id, "hear", {"words": "想问临时救助怎么申请"})
    assert r.status_code == 200, r.text
    return str(case_id)


async def test_a_resolution_queued_offline_on_a_fast_tablet_is_dated_when_it_happened(
        settings: Settings) -> None:
    clock = ManualClock(EDGES[0] - timedelta(minutes=10))
    resolved: dict[str, datetime] = {}
    async with running(create_app(settings, clock=clock)) as client:
        for happened in EDGES:
            clock.set(happened - timedelta(minutes=10))
            case_id = await heard_case(client)
            clock.set(happened + timedelta(minutes=22))  # 00:20: the network is back
            body = {"outcome": "resolved", "emotion_defused": True,
                    "occurred_at": tablet(happened),  # 00:01 by the tablet: the next day
                    "sent_at": tablet(clock.now())}
            k = key()
            r = await step(client, case_id, "resolve", body, k=k)
            assert r.status_code == 200, r.text
            # The answer was lost: the page sends it again, stamped anew, a minute later.
            clock.set(clock.now() + timedelta(minutes=1))
            again = await step(client, case_id, "resolve",
                               body | {"sent_at": tablet(clock.now())}, k=k)
            assert again.status_code == 200 and again.json()["replayed"] is True, again.text
            resolved[case_id] = happened

        # A caller that says nothing of its clock (Open311, a script) is taken as before.
        before = at(2027, 1, 1, 0, 1)
        clock.set(before - timedelta(minutes=10))
        plain = await heard_case(client)
        clock.set(before + timedelta(minutes=20))
        r = await step(client, plain, "resolve", {"outcome": "resolved", "emotion_defused": True,
                                                   "occurred_at": before.isoformat()})
        assert r.status_code == 200, r.text
        resolved[plain] = before

        # A tablet ten minutes off: set its clock right; nothing is recorded.
        off = await heard_case(client)
        r = await client.post(f"/cases/{off}/resolve", headers=headers(key()), json={
            "outcome": "resolved", "emotion_defused": True,
            "occurred_at": clock.now().isoformat(),
            "sent_at": (clock.now() + timedelta(minutes=10)).isoformat()})
        assert r.status_code == 422, r.text
        assert r.json()["error"]["code"] == "invalid_command"
        assert r.json()["error"]["details"]["field"] == "sent_at"

    envelopes = await stream_envelopes(settings)
    got = {str(e.case_id): e.occurred_at for e in envelopes if e.type == "CaseResolved"}
    assert got == resolved, "the refused one is not resolved"
    for case_id, happened in resolved.items():
        assert got[case_id].astimezone(SHANGHAI).date() == happened.date(), case_id

"""Another center learns nothing of which of our residents a city-wide policy change reached.

The outreach a policy change plans for a resident has the id ``uuid5(policy id, resident id)``
(``policy_follow_up_id``). A policy the city publishes to every center is read by every
center's staff, and its id is the ``source_id`` of their own outreach: a clerk of another
center who knows one of our residents' opaque ids worked out the id of our outreach to them,
and reading or cancelling it answered 403 when the fan-out had reached them here (a case or a
hint of theirs at our center on the policy's items: the affairs they came for) and 404 when
not. Now it is a 404 either way, worded as for an outreach nobody planned."""

from __future__ import annotations

import uuid
from typing import Any

from services.followup.domain import policy_follow_up_id
from shared.security.principals import Role
from shared.settings import Settings
from tests.feedback.helpers import History
from tests.followup.story import CENTER, at, center_day, key
from tests.support import bearer, headers, wait_until

OTHER = "SH-PD-LUJIAZUI"
SUBSIDY = "SA-HARDSHIP-SUBSIDY"


def _words(body: dict[str, Any], asked: str) -> dict[str, Any]:
    error = body["error"]
    return {"code": error["code"], "message": error["message"].replace(asked, "<id>"),
            "details": {k: "<id>" if v == asked else v for k, v in error["details"].items()}}


async def test_another_center_cannot_tell_which_of_our_residents_a_city_policy_reached(
        settings: Settings) -> None:
    history = History(CENTER)
    ours, theirs, nobody = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    history.case(at(2026, 3, 2, 9).isoformat(), resident_id=ours)
    history.case(at(2026, 3, 2, 9).isoformat(), resident_id=theirs, center_id=OTHER)
    city = bearer(settings, role=Role.CITY, center=None, sub="city-affairs-01")
    clerk = bearer(settings, role=Role.CLERK, center=OTHER, sub="clerk-lj-7")

    async with center_day(settings, at(2026, 3, 2, 9), with_intake=False) as center:
        await history.publish_new(settings)
        pool = center.app.state.pool

        async def known() -> bool:
            return await pool.fetchval("SELECT count(*) FROM resident_items") == 2
        await wait_until(known, what="both residents' cases")
        r = await center.followup.post("/policy-changes", headers={**headers(key()), **city},
                                       json={"center_id": OTHER, "service_items": [SUBSIDY],
                                             "summary": "困难补助标准上调",
                                             "effective_on": "2026-04-01",
                                             "all_centers": True})
        assert r.status_code == 202, r.text
        policy = r.json()["id"]
        r = await center.followup.get(f"/policy-changes/{policy}", headers=city,
                                      params={"after": r.json()["position"]})
        assert r.status_code == 200, r.text
        await center.fanout.once()

        async def both() -> bool:
            return await pool.fetchval("SELECT count(*) FROM followups WHERE source_id = $1",
                                       uuid.UUID(policy)) == 2
        await wait_until(both, what="the outreach to both residents")
        await center.settled()

        # What the other center's clerk sees: the policy, and their own outreach naming it.
        assert (await center.followup.get(f"/policy-changes/{policy}",
                                          headers=clerk)).status_code == 200
        own = await center.followup.get(
            f"/followups/{policy_follow_up_id(uuid.UUID(policy), theirs)}", headers=clerk)
        assert own.status_code == 200 and own.json()["source_id"] == policy, own.text

        reached = str(policy_follow_up_id(uuid.UUID(policy), ours))
        unreached = str(policy_follow_up_id(uuid.UUID(policy), nobody))
        reads = [await center.followup.get(f"/followups/{i}", headers=clerk)
                 for i in (reached, unreached)]
        assert [a.status_code for a in reads] == [404, 404], [a.text for a in reads]
        assert _words(reads[0].json(), reached) == _words(reads[1].json(), unreached)
        cancels = [await center.followup.post(f"/followups/{i}/cancel",
                                              headers={**clerk, **headers(key())},
                                              json={"reason": "试一试"})
                   for i in (reached, unreached)]
        assert [a.status_code for a in cancels] == [404, 404], [a.text for a in cancels]
        assert _words(cancels[0].json(), reached) == _words(cancels[1].json(), unreached)
        ours_now = await center.followup.get(f"/followups/{reached}")
        assert ours_now.json()["status"] == "scheduled", "nothing recorded"

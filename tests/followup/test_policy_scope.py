"""A policy change reaches another center's residents only when the city publishes it: a
center's supervisor publishes to their own center, on the route and in the background."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg
import pytest

from services.followup.domain import PolicyChange, follow_up_id_for, policy_follow_up_id
from services.followup.queries import PolicyChangePublic
from shared.contracts.followup import PublisherScope
from shared.eventstore.group_commit import Unit
from shared.security.principals import Role
from shared.settings import Settings
from tests.feedback.helpers import History
from tests.followup.story import CENTER, Center, at, center_day, key
from tests.support import bearer, error_words, headers, wait_until

OTHER = "SH-PD-LUJIAZUI"
SUBSIDY = "SA-HARDSHIP-SUBSIDY"


async def _cases_known(center: Center, history: History, settings: Settings) -> asyncpg.Pool:
    """The history's cases on the stream, and follow-up's pool once it has read both."""
    await history.publish_new(settings)
    pool: asyncpg.Pool = center.app.state.pool

    async def known() -> bool:
        return await pool.fetchval("SELECT count(*) FROM resident_items") == 2
    await wait_until(known, what="both residents' cases")
    return pool


async def test_only_the_city_reaches_every_centers_residents(settings: Settings) -> None:
    history = History(CENTER)
    ours, theirs = uuid.uuid4(), uuid.uuid4()  # a resident of Huamu, one of Lujiazui
    history.case(at(2026, 3, 2, 9).isoformat(), resident_id=ours)
    history.case(at(2026, 3, 2, 9).isoformat(), resident_id=theirs, center_id=OTHER)
    body = {"center_id": OTHER, "service_items": [SUBSIDY], "summary": "困难补助标准上调",
            "effective_on": "2026-04-01"}
    supervisor = bearer(settings, role=Role.SUPERVISOR, center=OTHER, sub="director-lj")
    city = bearer(settings, role=Role.CITY, center=None, sub="city-affairs-01")

    async with center_day(settings, at(2026, 3, 2, 9), with_intake=False) as center:
        pool = await _cases_known(center, history, settings)

        # Lujiazui's supervisor: not to every center, not as another center.
        r = await center.followup.post("/policy-changes", headers={**headers(key()),
                                       **supervisor}, json={**body, "all_centers": True})
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden_role", r.text
        r = await center.followup.post("/policy-changes", headers={**headers(key()),
                                       **supervisor}, json={**body, "center_id": CENTER})
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden_center"

        # The city: every center's residents, each in their own center's worklist.
        r = await center.followup.post("/policy-changes", headers={**headers(key()), **city},
                                       json={**body, "all_centers": True})
        assert r.status_code == 202, r.text
        by_city = r.json()["id"]

        # A policy to all centers recorded with a center's reach (as one published before
        # the city role existed reads, upcast): the fan-out keeps to the publisher's center.
        older = follow_up_id_for("policy", "recorded-before-the-city-role")
        meta = {"actor": "director-lj", "occurred_at": at(2026, 3, 2, 9, 30),
                "causation_id": "older-policy", "correlation_id": None, "center_id": OTHER,
                "case_id": None}

        def record(unit: Unit) -> PolicyChange:
            policy = PolicyChange(id=older, service_items=[SUBSIDY], summary="补助调整",
                                  effective_on=datetime(2026, 4, 1).date(), all_centers=True,
                                  outreach_due_at=at(2026, 3, 4, 9), meta=meta,
                                  scope=PublisherScope.CENTER.value)
            unit.add(policy)
            return policy

        await center.app.state.followups.committer.submit(record, [older])
        await center.settled()
        assert await center.fanout.once() == 2
        await center.settled()

        async def reached(policy_id: uuid.UUID | str) -> dict[str, str]:
            rows = await pool.fetch("SELECT resident_id, center_id FROM followups"
                                    " WHERE source_id = $1", uuid.UUID(str(policy_id)))
            return {str(r["resident_id"]): r["center_id"] for r in rows}

        assert await reached(by_city) == {str(ours): CENTER, str(theirs): OTHER}
        assert await reached(older) == {str(theirs): OTHER}, "nothing in Huamu's worklist"
        r = await center.followup.get(f"/policy-changes/{older}", headers=city)
        assert (r.json()["residents"], r.json()["scope"]) == (1, "center")


async def test_another_center_cannot_tell_which_of_our_residents_a_city_policy_reached(
        settings: Settings) -> None:
    """The outreach a policy change plans for a resident has the id ``uuid5(policy id,
    resident id)``. Every center's staff read a city-wide policy (its id is the ``source_id``
    of their own outreach), so a clerk of another center who knows one of our residents'
    opaque ids worked out our outreach to them, and reading or cancelling it answered 403 when
    the fan-out had reached them here (a case or hint of theirs on the policy's items: the
    affairs they came for) and 404 when not. Now a 404 either way, as for one never planned."""
    history = History(CENTER)
    ours, theirs, nobody = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    history.case(at(2026, 3, 2, 9).isoformat(), resident_id=ours)
    history.case(at(2026, 3, 2, 9).isoformat(), resident_id=theirs, center_id=OTHER)
    city = bearer(settings, role=Role.CITY, center=None, sub="city-affairs-01")
    clerk = bearer(settings, role=Role.CLERK, center=OTHER, sub="clerk-lj-7")

    async with center_day(settings, at(2026, 3, 2, 9), with_intake=False) as center:
        pool = await _cases_known(center, history, settings)
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
        assert error_words(reads[0].json(), reached) == error_words(reads[1].json(), unreached)
        cancels = [await center.followup.post(f"/followups/{i}/cancel",
                                              headers={**clerk, **headers(key())},
                                              json={"reason": "试一试"})
                   for i in (reached, unreached)]
        assert [a.status_code for a in cancels] == [404, 404], [a.text for a in cancels]
        assert error_words(cancels[0].json(), reached) == error_words(cancels[1].json(), unreached)
        ours_now = await center.followup.get(f"/followups/{reached}")
        assert ours_now.json()["status"] == "scheduled", "nothing recorded"


async def test_a_city_policy_is_read_everywhere_and_another_centers_own_one_nowhere_else(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Huamu's clerk reads the city's policy change; Lujiazui's own is a policy nobody has for
    them, refused on its row's center before the row is built into its answer."""
    body = {"service_items": [SUBSIDY], "summary": "困难补助标准上调",
            "effective_on": "2026-04-01"}
    supervisor = bearer(settings, role=Role.SUPERVISOR, center=OTHER, sub="director-lj")
    city = bearer(settings, role=Role.CITY, center=None, sub="city-affairs-01")
    clerk = bearer(settings, role=Role.CLERK, center=CENTER, sub="clerk-017")
    async with center_day(settings, at(2026, 3, 2, 9), with_intake=False) as center:
        published = {}
        for name, auth, extra in (("city", city, {"center_id": OTHER, "all_centers": True}),
                                  ("theirs", supervisor, {"center_id": OTHER})):
            r = await center.followup.post("/policy-changes", headers={**headers(key()),
                                           **auth}, json={**body, **extra})
            assert r.status_code == 202, r.text
            published[name] = r.json()
        after = {"after": max(p["position"] for p in published.values())}
        r = await center.followup.get(f"/policy-changes/{published['city']['id']}",
                                      headers=clerk, params=after)
        assert r.status_code == 200, r.text
        built: list[object] = []
        real = PolicyChangePublic.of

        def counting(cls: type, row: object, **more: object) -> object:
            built.append(row)
            return real(row, **more)

        monkeypatch.setattr(PolicyChangePublic, "of", classmethod(counting))
        nobodys = str(uuid.uuid4())
        theirs, none = [await center.followup.get(f"/policy-changes/{p}", headers=clerk,
                                                  params=after)
                        for p in (published["theirs"]["id"], nobodys)]
        assert (theirs.status_code, none.status_code) == (404, 404), theirs.text
        assert error_words(theirs.json(), published["theirs"]["id"]) == error_words(
            none.json(), nobodys)
        assert built == [], "another center's policy was decoded before its 404"

"""A resident's opaque id, named by a clerk of another center who has no standing for them (no
presence grant, no case of theirs): answered as an id nobody has, by every route that takes
it, with nothing of the resident opened or read for that clerk, and seen in the clerk's own
center's trail as a miss, while the resident's center and the city see whose it was."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from uuid import UUID, uuid4

import httpx

from services.intake.main import create_app
from shared.security.principals import Role
from shared.settings import Settings
from tests.support import TEST_CENTER, bearer, error_words, headers, register_resident, running

OTHER = "SH-PD-ZHANGJIANG"


def routes(auth: dict[str, str], supervisor: dict[str, str]
           ) -> list[tuple[str, Callable[[httpx.AsyncClient, str, int], Any]]]:
    """Every route that names a resident by their opaque id."""
    purpose = {"purpose": "follow-up call"}
    return [
        ("read", lambda c, rid, n: c.get(f"/residents/{rid}", headers=auth, params=purpose)),
        ("masked", lambda c, rid, n: c.get(f"/residents/{rid}/masked", headers=auth,
                                           params=purpose)),
        ("change", lambda c, rid, n: c.patch(f"/residents/{rid}",
                                             headers={**auth, **headers(f"change-{n:04}")},
                                             json={"phone": "13800000000"})),
        ("facts", lambda c, rid, n: c.put(f"/residents/{rid}/facts",
                                          headers={**auth, **headers(f"facts-{n:04}")},
                                          json={"facts": ["lives_alone"], "consent": True})),
        ("hints", lambda c, rid, n: c.post(f"/residents/{rid}/hints", headers=auth)),
        ("erase", lambda c, rid, n: c.delete(f"/residents/{rid}", headers=supervisor)),
        ("open a case", lambda c, rid, n: c.post(
            "/cases", headers={**auth, **headers(f"case-{n:04}")},
            json={"center_id": OTHER, "counter_id": "window-1",
                  "service_item": "SA-HARDSHIP-SUBSIDY", "resident_id": rid})),
    ]


async def test_another_centers_resident_is_answered_as_nobody_and_nothing_of_theirs_is_opened(
        settings: Settings) -> None:
    app = create_app(settings)
    async with running(app, role=Role.CLERK, center=TEST_CENTER) as home:
        resident = await register_resident(home)
        clerk_b = bearer(settings, role=Role.CLERK, center=OTHER, sub="clerk-b")
        sup_b = bearer(settings, role=Role.SUPERVISOR, center=OTHER, sub="sup-b")

        # Everything the vault opens goes through its sealer: count what it unwraps and opens.
        sealer = app.state.vault.sealer
        opened: list[str] = []
        for name in ("unwrap_secret", "unwrap_data_key", "open"):
            def spy(*args: Any, _name: str = name, _real: Any = getattr(sealer, name)) -> Any:
                opened.append(_name)
                return _real(*args)
            setattr(sealer, name, spy)

        for n, (what, call) in enumerate(routes(clerk_b, sup_b)):
            nobody = str(uuid4())
            theirs_answer = await call(home, resident, 2 * n)
            nobodys_answer = await call(home, nobody, 2 * n + 1)
            assert theirs_answer.status_code == nobodys_answer.status_code == 404, \
                (what, theirs_answer.text, nobodys_answer.text)
            assert error_words(theirs_answer.json(), resident) \
                == error_words(nobodys_answer.json(), nobody), what
        assert opened == [], "nothing of the resident is unwrapped or opened for them"

        async def trail(auth: dict[str, str], **params: Any) -> list[dict[str, Any]]:
            answer = await home.get("/audit", headers=auth, params={"limit": 500, **params})
            assert answer.status_code == 200, answer.text
            return answer.json()["items"]

        theirs_trail = await trail(sup_b)
        rows = [(e["action"], e["outcome"], e["resident_center"], e["cross_center"],
                 e["fields"], e["standing"], e["resident_id"] == resident)
                for e in theirs_trail if e["actor_center"] == OTHER]
        mine = sorted(r[:-1] for r in rows if r[-1])
        assert len(mine) == len(routes(clerk_b, sup_b))
        assert mine == sorted(r[:-1] for r in rows if not r[-1]), \
            "their center's trail shows our resident as it shows an id nobody has"
        assert [e for e in await trail(sup_b, cross_center="true")
                if e["resident_id"] == resident] == []
        supervisor_a = bearer(settings, role=Role.SUPERVISOR, center=TEST_CENTER, sub="sup-a")
        for auth in (supervisor_a, bearer(settings, role=Role.CITY, center=None, sub="city-1")):
            ours = [(e["actor"], e["outcome"], e["resident_center"], e["cross_center"])
                    for e in await trail(auth, resident_id=resident)
                    if e["actor_center"] == OTHER]
            assert len(ours) == len(routes(clerk_b, sup_b))
            assert set(ours) <= {("clerk-b", "out_of_reach", TEST_CENTER, True),
                                 ("sup-b", "out_of_reach", TEST_CENTER, True)}


async def test_the_city_narrowing_its_trail_to_the_probers_center_still_sees_whose_it_was(
        settings: Settings) -> None:
    """After an id-probe alert naming a center, the city reads that center's trail: the
    refusals as for nobody are there as what they were (``out_of_reach``, the resident's
    center), not as the prober's center was shown them."""
    app = create_app(settings)
    async with running(app, role=Role.CLERK, center=TEST_CENTER) as home:
        resident = await register_resident(home)
        clerk_b = bearer(settings, role=Role.CLERK, center=OTHER, sub="clerk-b")
        refused = await home.get(f"/residents/{resident}", headers=clerk_b,
                                 params={"purpose": "follow-up call"})
        assert refused.status_code == 404, refused.text
        city = bearer(settings, role=Role.CITY, center=None, sub="city-1")
        seen = {}
        for narrowed in ({}, {"center_id": OTHER}, {"center_id": OTHER, "cross_center": "true"}):
            answer = await home.get("/audit", headers=city,
                                    params={"resident_id": resident, **narrowed})
            assert answer.status_code == 200, answer.text
            seen[str(narrowed)] = [(e["actor"], e["outcome"], e["resident_center"],
                                    e["cross_center"]) for e in answer.json()["items"]
                                   if e["actor_center"] == OTHER]
        assert set(map(tuple, seen.values())) == {
            (("clerk-b", "out_of_reach", TEST_CENTER, True),)}, seen


def _probes(plan: dict[str, Any], tables: set[str]) -> list[tuple[str, int]]:
    """(table, times run) for every node of ``plan`` that reads one of ``tables``."""
    found = [(plan["Relation Name"], plan.get("Actual Loops", 0))] \
        if plan.get("Relation Name") in tables else []
    for child in plan.get("Plans", []):
        found += _probes(child, tables)
    return found


async def test_a_residents_standings_are_looked_up_once_for_another_centers_caller(
        settings: Settings) -> None:
    """The one statement that reads a resident for a caller works out the caller's standings
    once: a grant looked up once, a case once. Until stop 49 PostgreSQL pulled the standings
    into each of the nine columns they guard, and looked them up for each (some twenty index
    probes): another center's resident took 0.26 ms longer than an id nobody has (median of
    six pairs on this host), and their caller could time it."""
    app = create_app(settings)
    async with running(app, role=Role.CLERK, center=TEST_CENTER) as home:
        resident = await register_resident(home)
        vault = app.state.vault
        async with vault.pool.acquire() as conn:
            answer = await conn.fetchval(
                "EXPLAIN (ANALYZE, FORMAT JSON) " + vault._SELECT_IN_REACH, UUID(resident),
                OTHER, "clerk-b", vault.clock.now())
    plan = json.loads(answer)[0]["Plan"]
    probes = _probes(plan, {"presence_grants", "cases"})
    assert sorted(probes) == [("cases", 1), ("presence_grants", 1)], probes

"""Center boundaries around a resident: another center reaches them only with proof that they
are at the window (their full ID number, typed at a lookup), for a short while, and both
centers see it; trying ID numbers is slow and the city sees a burst of misses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx

from services.intake.main import create_app
from shared.kernel.clock import ManualClock
from shared.security.principals import Role
from shared.settings import Settings
from tests.support import (
    TEST_CENTER,
    bearer,
    headers,
    id_number,
    register_resident,
    running,
    stream_envelopes,
    wait_until,
)

OTHER = "SH-PD-ZHANGJIANG"


def staff(settings: Settings, sub: str, center: str = OTHER,
          role: Role = Role.CLERK) -> dict[str, str]:
    return bearer(settings, role=role, center=center, sub=sub)


def case_body(resident_id: str, center: str = OTHER, **extra: Any) -> dict[str, Any]:
    return {"center_id": center, "counter_id": "window-1", "service_item": "SA-HARDSHIP-SUBSIDY",
            "resident_id": resident_id, **extra}


async def trail(client: httpx.AsyncClient, auth: dict[str, str], **params: Any
                ) -> list[tuple[str, str, str, str]]:
    answer = await client.get("/audit", headers=auth, params={"limit": 500, **params})
    assert answer.status_code == 200, answer.text
    return [(e["actor"], e["action"], e["outcome"], e["actor_center"])
            for e in answer.json()["items"]]


async def test_a_resident_of_another_center_is_served_after_their_full_id_number_is_typed(
        settings: Settings) -> None:
    clock = ManualClock(datetime(2026, 3, 2, 1, 0, tzinfo=UTC))
    app = create_app(settings, clock)
    async with running(app, role=Role.CLERK, center=TEST_CENTER) as home:
        number = id_number()
        resident = await register_resident(home, id_=number)
        clerk_b, clerk_b2 = staff(settings, "clerk-b"), staff(settings, "clerk-b2")
        purpose = {"purpose": "city-wide service"}

        # Knowing the opaque id is not enough: no read, no case, no erasure; answered as for
        # an id nobody has (tests/security/test_another_centers_resident.py).
        assert (await home.get(f"/residents/{resident}", headers=clerk_b,
                               params=purpose)).status_code == 404
        refused = await home.post("/cases", headers={**clerk_b, **headers("b-open-1")},
                                  json=case_body(resident))
        assert refused.status_code == 404, refused.text
        assert refused.json()["error"]["code"] == "not_found"
        supervisor_b = staff(settings, "sup-b", role=Role.SUPERVISOR)
        assert (await home.delete(f"/residents/{resident}",
                                  headers=supervisor_b)).status_code == 404

        # The resident is at clerk-b's window and gives their ID number: a presence grant.
        found = await home.post("/residents/lookup", headers=clerk_b,
                                json={"id_number": number, "purpose": "city-wide service"})
        assert found.json()["resident_id"] == resident
        read = await home.get(f"/residents/{resident}", headers=clerk_b, params=purpose)
        assert read.status_code == 200 and read.json()["standing"] == "presence_grant"
        opened = await home.post("/cases", headers={**clerk_b, **headers("b-open-2")},
                                 json=case_body(resident))
        assert opened.status_code == 201, opened.text
        case_id = opened.json()["id"]

        # The grant is clerk-b's: another clerk of B reads only once the case is known.
        async def case_known() -> bool:
            r = await home.get(f"/cases/{case_id}", headers=clerk_b2,
                               params={"after": opened.json()["position"]})
            return r.status_code == 200
        await wait_until(case_known, what="the case in the read model")
        read = await home.get(f"/residents/{resident}", headers=clerk_b2, params=purpose)
        assert read.status_code == 200 and read.json()["standing"] == "case"
        # ... but a case is no proof of presence: no new case, no change, no erasure.
        again = await home.post("/cases", headers={**clerk_b2, **headers("b-open-3")},
                                 json=case_body(resident))
        assert again.status_code == 403
        assert (await home.patch(f"/residents/{resident}",
                                 headers={**clerk_b2, **headers("b-change-1")},
                                 json={"phone": "13800000000"})).status_code == 403

        # Half an hour later clerk-b's grant is over; the case still lets B call the resident.
        clock.advance(timedelta(minutes=31))
        read = await home.get(f"/residents/{resident}", headers=clerk_b, params=purpose)
        assert read.status_code == 200 and read.json()["standing"] == "case"
        late = await home.post("/cases", headers={**clerk_b, **headers("b-open-4")},
                               json=case_body(resident))
        assert late.status_code == 403
        retried = await home.post("/cases", headers={**clerk_b, **headers("b-open-2")},
                                  json=case_body(resident))
        assert (retried.status_code, retried.json()["replayed"]) == (201, True), \
            "a retry of the admitted opening is the same case"

        # Erasure at B: a supervisor who has the resident at their window.
        await home.post("/residents/lookup", headers=supervisor_b,
                        json={"id_number": number, "purpose": "erasure request"})
        erased = await home.delete(f"/residents/{resident}", headers=supervisor_b)
        assert erased.status_code == 200, erased.text

        # Both centers' trails show every access across the boundary, refusals included.
        supervisor_a = staff(settings, "sup-a", center=TEST_CENTER, role=Role.SUPERVISOR)
        city = bearer(settings, role=Role.CITY, center=None, sub="city-1")
        unseen = {("clerk-b", "read", "out_of_reach", OTHER),
                  ("clerk-b", "open_case", "out_of_reach", OTHER),
                  ("sup-b", "erase", "out_of_reach", OTHER)}
        expected = {("clerk-b", "lookup", "presence_granted", OTHER),
                    ("clerk-b", "read", "read", OTHER),
                    ("clerk-b", "open_case", "admitted", OTHER),
                    ("clerk-b2", "read", "read", OTHER),
                    ("clerk-b2", "open_case", "forbidden", OTHER),
                    ("clerk-b2", "change", "forbidden", OTHER),
                    ("clerk-b", "open_case", "forbidden", OTHER),
                    ("sup-b", "erase", "erased", OTHER)}
        assert set(await trail(home, supervisor_a, resident_id=resident)) >= expected | unseen
        # B's trail shows the refusals without standing as B's clerks were answered: misses.
        assert set(await trail(home, supervisor_b, resident_id=resident)) >= expected | {
            (actor, action, "not_found", center) for actor, action, _, center in unseen}
        crossing = await trail(home, city, cross_center="true")
        assert set(crossing) >= expected | unseen
        assert all(center == OTHER for *_, center in crossing)
        assert (await home.get("/audit", headers=clerk_b)).status_code == 403
        assert (await home.get("/audit", headers=supervisor_b,
                               params={"center_id": TEST_CENTER})).status_code == 403

    envelopes = await stream_envelopes(settings)
    [case] = [e for e in envelopes if e.type == "CaseOpened"]
    assert (case.center_id, case.payload["resident_basis"]) == (OTHER, "presence_grant")
    [erasure] = [e for e in envelopes if e.type == "ResidentErased"]
    assert (erasure.center_id, erasure.actor) == (TEST_CENTER, "sup-b"), \
        "the erasure is the registering center's event, by whoever erased"


async def test_a_case_opened_before_the_rule_gives_another_center_no_way_in(
        settings: Settings) -> None:
    async with running(create_app(settings), role=Role.CLERK) as home:
        resident = await register_resident(home)
        # A case at B named the resident before the vault checked it (nothing proves presence).
        conn = await asyncpg.connect(settings.database_url)
        try:
            await conn.execute(
                f'INSERT INTO "{settings.schema_for("intake")}".cases (case_id, center_id,'
                " counter_id, clerk_id, channel, service_item, resident_id, status, stage,"
                " opened_at, updated_at, version, position) VALUES (gen_random_uuid(), $1,"
                " 'w1', 'clerk-b', 'counter', 'SA-HARDSHIP-SUBSIDY', $2, 'open', 'opened',"
                " now(), now(), 1, 1)", OTHER, resident)
        finally:
            await conn.close()
        read = await home.get(f"/residents/{resident}", headers=staff(settings, "clerk-b"),
                              params={"purpose": "follow-up call"})
        assert read.status_code == 404, "answered as for a resident nobody has"


async def test_registering_a_known_id_number_elsewhere_is_a_lookup_with_its_grant(
        settings: Settings) -> None:
    async with running(create_app(settings), role=Role.CLERK) as home:
        number = id_number()
        resident = await register_resident(home, id_=number)
        clerk_b = staff(settings, "clerk-b")
        again = await home.post("/residents", headers=clerk_b, json={
            "name": "王秀英", "id_number": number, "phone": "13912345678",
            "consent": {"contact": True}})
        assert (again.status_code, again.json()["resident_id"]) == (200, resident)
        read = await home.get(f"/residents/{resident}", headers=clerk_b,
                              params={"purpose": "city-wide service"})
        assert read.json()["standing"] == "presence_grant"
        assert read.json()["center_id"] == TEST_CENTER, "still the registering center's"
        supervisor_a = staff(settings, "sup-a", center=TEST_CENTER, role=Role.SUPERVISOR)
        assert ("clerk-b", "register", "presence_granted", OTHER) in await trail(
            home, supervisor_a, resident_id=resident)


async def test_trying_id_numbers_is_slowed_per_clerk_and_per_center_and_the_city_sees_misses(
        settings: Settings) -> None:
    settings = settings.model_copy(update={
        "lookup_burst": 4, "lookup_rate_per_minute": 1.0, "lookup_center_burst": 6,
        "lookup_center_rate_per_minute": 1.0, "lookup_miss_alert": 3})
    app = create_app(settings)
    async with running(app, role=Role.CLERK, center=OTHER) as desk:
        async def look(sub: str) -> httpx.Response:
            return await desk.post("/residents/lookup", headers=staff(settings, sub), json={
                "id_number": id_number(), "purpose": "returning resident"})

        answers = [await look("clerk-b") for _ in range(5)]
        assert [a.status_code for a in answers] == [404, 404, 404, 404, 429]
        assert int(answers[-1].headers["Retry-After"]) >= 1
        assert answers[-1].json()["error"]["details"]["scope"] == "actor"
        others = [await look("clerk-b2") for _ in range(3)]
        assert [a.status_code for a in others] == [404, 404, 429], "the center's bucket is out"
        assert others[-1].json()["error"]["details"]["scope"] == "center"
        elsewhere = await desk.post("/residents/lookup",
                                    headers=staff(settings, "clerk-a", center=TEST_CENTER),
                                    json={"id_number": id_number(), "purpose": "returning"})
        assert elsewhere.status_code == 404, "another center has its own bucket"
        registering = await desk.post("/residents", headers=staff(settings, "clerk-b"), json={
            "name": "李四", "id_number": id_number(), "phone": "13912345678",
            "consent": {"contact": True}})
        assert registering.status_code == 429, "registering by ID number is a lookup too"

        city = bearer(settings, role=Role.CITY, center=None, sub="city-1")
        bursts = await trail(desk, city, action="lookup_burst")
        assert [(actor, center) for actor, _, _, center in bursts] == [("clerk-b", OTHER)]
        theirs = await trail(desk, staff(settings, "sup-b", role=Role.SUPERVISOR),
                             action="lookup_burst")
        assert len(theirs) == 1
        assert await trail(desk, staff(settings, "sup-a", center=TEST_CENTER,
                                       role=Role.SUPERVISOR), action="lookup_burst") == []
        metrics = (await desk.get("/metrics")).text
        assert f'sixstep_resident_lookup_miss_bursts_total{{center="{OTHER}"}} 1.0' in metrics
        assert 'sixstep_resident_lookups_limited_total{scope="actor"}' in metrics


async def test_a_clerk_opens_cases_in_their_own_name_and_a_supervisor_may_record_for_one(
        settings: Settings) -> None:
    async with running(create_app(settings), role=Role.CLERK) as desk:
        clerk = bearer(settings, role=Role.CLERK, sub="clerk-017")
        body = {"center_id": TEST_CENTER, "counter_id": "window-1",
                "service_item": "SA-HARDSHIP-SUBSIDY"}
        spoofed = await desk.post("/cases", headers={**clerk, **headers("own-case-1")},
                                  json={**body, "clerk_id": "clerk-099"})
        assert spoofed.status_code == 403
        assert spoofed.json()["error"]["code"] == "forbidden_clerk"
        own = await desk.post("/cases", headers={**clerk, **headers("own-case-2")}, json=body)
        assert own.status_code == 201
        supervisor = bearer(settings, role=Role.SUPERVISOR, sub="director-01")
        for_clerk = await desk.post("/cases", headers={**supervisor, **headers("own-case-3")},
                                    json={**body, "clerk_id": "clerk-099"})
        assert for_clerk.status_code == 201

    opened = {str(e.aggregate_id): e for e in await stream_envelopes(settings)
              if e.type == "CaseOpened"}
    mine = opened[own.json()["id"]]
    assert (mine.actor, mine.payload["clerk_id"]) == ("clerk-017", "clerk-017")
    recorded = opened[for_clerk.json()["id"]]
    assert (recorded.actor, recorded.payload["clerk_id"]) == ("director-01", "clerk-099")


async def test_a_case_lets_another_centers_colleague_call_the_resident_but_not_open_their_facts(
        settings: Settings) -> None:
    """Eligibility hints open the age in the ID number and the facts the resident declared
    (health data): at another center they need the resident at the window (the ID number
    typed), not a case a colleague opened there once."""
    async with running(create_app(settings), role=Role.CLERK, center=TEST_CENTER) as home:
        number = id_number()
        resident = await register_resident(home, id_=number)
        r = await home.put(f"/residents/{resident}/facts", headers=headers("facts-kept-1"),
                           json={"facts": ["lives_alone", "chronic_illness"], "consent": True})
        assert r.status_code == 200, r.text
        clerk_b, clerk_b2 = staff(settings, "clerk-b"), staff(settings, "clerk-b2")
        await home.post("/residents/lookup", headers=clerk_b,
                        json={"id_number": number, "purpose": "city-wide service"})
        opened = await home.post("/cases", headers={**clerk_b, **headers("b-open-facts")},
                                 json=case_body(resident))
        assert opened.status_code == 201, opened.text

        async def case_known() -> bool:
            r = await home.get(f"/cases/{opened.json()['id']}", headers=clerk_b2,
                               params={"after": opened.json()["position"]})
            return r.status_code == 200
        await wait_until(case_known, what="the case in the read model")

        # clerk-b2 may call the resident about the case ...
        read = await home.get(f"/residents/{resident}", headers=clerk_b2,
                              params={"purpose": "follow-up call"})
        assert (read.status_code, read.json()["standing"]) == (200, "case")
        # ... but not work out their hints, which opens their facts.
        hints = await home.post(f"/residents/{resident}/hints", headers=clerk_b2)
        assert hints.status_code == 403, hints.text
        assert hints.json()["error"]["code"] == "forbidden_center"
        # The clerk with the resident at the window may.
        hints = await home.post(f"/residents/{resident}/hints", headers=clerk_b)
        assert hints.status_code == 200, hints.text

        supervisor_b = staff(settings, "sup-b", role=Role.SUPERVISOR)
        seen = set(await trail(home, supervisor_b, resident_id=resident))
        assert {("clerk-b2", "hints", "forbidden", OTHER),
                ("clerk-b", "read", "read", OTHER)} <= seen

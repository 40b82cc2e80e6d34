"""Staff at work: worklists, and completing, rescheduling, escalating follow-ups over HTTP."""

from __future__ import annotations

from typing import Any

import httpx

from shared.security.principals import Role
from shared.settings import Settings
from tests.followup.story import CENTER, at, center_day, key
from tests.support import bearer, headers


async def schedule(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    body = {"center_id": CENTER, "reason": "home_visit"} | body
    r = await client.post("/followups", json=body, headers=headers(key()))
    assert r.status_code == 201, r.text
    return r.json()


def ids(items: list[dict[str, Any]]) -> list[str]:
    return [f["follow_up_id"] for f in items]


async def test_a_clerks_day_with_the_worklist(settings: Settings) -> None:
    async with center_day(settings, at(2026, 3, 2, 8, 30), with_intake=False) as center:
        api = center.followup
        visit = await schedule(api, due_at=at(2026, 3, 2, 14).isoformat(),
                               assigned_clerk="clerk-017")
        call = await schedule(api, due_on="2026-03-03", assigned_clerk="clerk-017",
                              reason="post_resolution_check")
        later = await schedule(api, due_on="2026-03-07", assigned_clerk="clerk-017")
        team = await schedule(api, due_on="2026-03-02", assigned_team="followup-desk")
        r = await api.get("/worklists/clerks/clerk-017",
                          params={"center_id": CENTER, "after": team["position"]})
        assert r.status_code == 200, r.text
        day = r.json()
        assert day["today"] == "2026-03-02"
        assert ids(day["due_today"]) == [visit["id"]]
        assert ids(day["upcoming"]) == [call["id"], later["id"]]
        assert day["overdue"] == []
        [item] = day["upcoming"][1:]
        assert item["due_at"].startswith("2026-03-09T01:00"), "Saturday Mar 7 -> Monday 09:00"
        r = await api.get("/worklists/teams/followup-desk", params={"center_id": CENTER})
        assert ids(r.json()["due_today"]) == [team["id"]]

        # Wednesday morning: the visit was never made (escalated: two working days overdue),
        # yesterday's call was missed.
        center.clock.set(at(2026, 3, 4, 10))
        tick = await center.scheduler.tick()
        assert tick.fired == {"FollowUpDue": 3, "FollowUpMissed": 3, "FollowUpEscalated": 2}
        await center.settled()
        day = (await api.get("/worklists/clerks/clerk-017", params={"center_id": CENTER})).json()
        assert ids(day["overdue"]) == [visit["id"], call["id"]]
        assert [f["status"] for f in day["overdue"]] == ["escalated", "missed"]
        sup = (await api.get("/worklists/teams/supervisor", params={"center_id": CENTER})).json()
        assert set(ids(sup["overdue"])) == {visit["id"], team["id"]}

        # clerk-017 does not take their own missed call off the supervisors' list: neither
        # moved nor cancelled by them (done late, they complete it). A supervisor may.
        as_clerk = bearer(center.settings, role=Role.CLERK, sub="clerk-017")
        for step, body in (("reschedule", {"due_on": "2026-03-05", "reason": "居民约周四"}),
                           ("cancel", {"reason": "不需要了"})):
            r = await api.post(f"/followups/{call['id']}/{step}", json=body,
                               headers={**headers(key()), **as_clerk})
            assert r.status_code == 403 and r.json()["error"]["code"] == "own_missed_followup"

        # The supervisor escalates the call by hand, reschedules it, completes the visit.
        r = await api.post(f"/followups/{call['id']}/escalate", json={"reason": "电话无人接听"},
                           headers=headers(key()))
        assert r.status_code == 200, r.text
        r = await api.post(f"/followups/{call['id']}/escalate", json={"reason": "again"},
                           headers=headers(key()))
        assert r.status_code == 409 and r.json()["error"]["code"] == "rule_violated"
        r = await api.post(f"/followups/{call['id']}/reschedule", headers=headers(key()),
                           json={"due_on": "2026-03-05", "reason": "居民约周四"})
        assert r.status_code == 200 and r.json()["version"] == 5, r.text
        done_key = key()
        r = await api.post(f"/followups/{visit['id']}/complete", headers=headers(done_key),
                           json={"outcome": "done", "channel": "home_visit",
                                 "note": "已上门，电话13812345678"})
        assert r.status_code == 200, r.text
        day = (await api.get("/worklists/clerks/clerk-017",
                             params={"center_id": CENTER, "after": r.json()["position"]})).json()
        assert day["overdue"] == []
        assert ids(day["upcoming"]) == [call["id"], later["id"]]
        done = await center.get(visit["id"])
        assert done["status"] == "completed" and done["channel"] == "home_visit"


async def test_the_same_rules_as_intake_for_errors_and_retries(settings: Settings) -> None:
    async with center_day(settings, at(2026, 3, 2, 8, 30), with_intake=False) as center:
        api = center.followup
        body = {"center_id": CENTER, "due_on": "2026-03-05", "assigned_clerk": "clerk-017"}
        k = key()
        first = await api.post("/followups", json=body, headers=headers(k))
        again = await api.post("/followups", json=body, headers=headers(k))
        assert first.status_code == again.status_code == 201
        assert again.json() == first.json() | {"replayed": True}
        fid = first.json()["id"]

        r = await api.post("/followups", json=body)
        assert r.status_code == 400 and r.json()["error"]["code"] == "idempotency_key_required"
        r = await api.post("/followups", json=body | {"assigned_clerk": None},
                           headers=headers(key()))
        assert r.status_code == 422 and r.json()["error"]["code"] == "validation_failed"
        r = await api.post("/followups", json=body | {"due_on": "2032-03-01"},
                           headers=headers(key()))
        assert r.status_code == 422 and r.json()["error"]["code"] == "calendar_out_of_range"
        assert r.json()["error"]["details"]["year"] == 2032, "past the provisional years: refused"

        ck = key()
        complete = {"outcome": "done", "channel": "phone"}
        r = await api.post(f"/followups/{fid}/complete", json=complete,
                           headers=headers(ck, If_Match="2"))
        assert r.status_code == 409 and r.json()["error"]["code"] == "version_conflict"
        r1 = await api.post(f"/followups/{fid}/complete", json=complete,
                            headers=headers(ck, If_Match="1"))
        r2 = await api.post(f"/followups/{fid}/complete", json=complete, headers=headers(ck))
        assert r1.status_code == 200 and r2.json() == r1.json() | {"replayed": True}
        r = await api.post(f"/followups/{fid}/cancel", json={"reason": "x"}, headers=headers(ck))
        assert r.status_code == 422 and r.json()["error"]["code"] == "idempotency_key_reused"
        r = await api.post(f"/followups/{fid}/complete", json=complete, headers=headers(key()))
        assert r.status_code == 409 and r.json()["error"]["code"] == "rule_violated"

        other = (await api.post("/followups", json=body, headers=headers(key()))).json()["id"]
        r = await api.post(f"/followups/{other}/reschedule", headers=headers(key()),
                           json={"due_at": at(2026, 3, 1, 9).isoformat(), "reason": "x"})
        assert r.status_code == 422 and r.json()["error"]["details"]["field"] == "due_at"
        r = await api.post("/followups/00000000-0000-0000-0000-000000000000/complete",
                           json=complete, headers=headers(key()))
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
        r = await api.get("/followups/00000000-0000-0000-0000-000000000000")
        assert r.status_code == 404
        r = await api.post(f"/followups/{other}/complete", headers=headers(key()),
                           json={"outcome": "great", "channel": "phone"})
        assert r.status_code == 422
        assert r.json()["error"]["details"]["fields"][0]["field"] == "outcome"


async def test_a_friday_evening_call_waits_for_monday_on_the_worklist_as_on_the_scheduler(
        settings: Settings) -> None:
    async with center_day(settings, at(2026, 3, 6, 16), with_intake=False) as center:
        api = center.followup
        evening = await schedule(api, due_at=at(2026, 3, 6, 18).isoformat(),
                                 assigned_clerk="clerk-017", reason="post_resolution_check")
        saturday = await schedule(api, due_at=at(2026, 3, 7, 10).isoformat(),
                                  assigned_clerk="clerk-017")
        friday = await schedule(api, due_at=at(2026, 3, 6, 11).isoformat(),
                                assigned_clerk="clerk-017")
        await center.settled()

        async def worklist() -> dict[str, Any]:
            await center.settled()
            r = await api.get("/worklists/clerks/clerk-017", params={"center_id": CENTER})
            assert r.status_code == 200, r.text
            return r.json()

        # Saturday and Sunday: Friday's 11:00 call was missed at Friday's closing; the
        # evening one and Saturday's are Monday's, on the worklist as on the scheduler.
        for now in (at(2026, 3, 7, 10), at(2026, 3, 8, 20)):
            center.clock.set(now)
            await center.scheduler.tick()
            day = await worklist()
            assert ids(day["overdue"]) == [friday["id"]]
            assert day["due_today"] == []
            assert ids(day["upcoming"]) == [evening["id"], saturday["id"]]
            assert (await center.get(evening["id"]))["status"] == "due"

        center.clock.set(at(2026, 3, 9, 10))
        await center.scheduler.tick()
        day = await worklist()
        assert ids(day["due_today"]) == [evening["id"], saturday["id"]]
        assert ids(day["overdue"]) == [friday["id"]]

        center.clock.set(at(2026, 3, 9, 17, 30))
        tick = await center.scheduler.tick()
        assert tick.fired.get("FollowUpMissed") == 2
        day = await worklist()
        assert ids(day["overdue"]) == [friday["id"], evening["id"], saturday["id"]]
        assert day["due_today"] == []

        center.clock.set(at(2032, 1, 5, 10))
        r = await api.get("/worklists/clerks/clerk-017", params={"center_id": CENTER})
        assert r.status_code == 422 and r.json()["error"]["code"] == "calendar_out_of_range"


async def test_a_follow_up_booked_past_the_calendar_is_refused_not_left_for_the_scheduler(
        settings: Settings) -> None:
    async with center_day(settings, at(2026, 3, 2, 8, 30), with_intake=False) as center:
        api = center.followup
        for when in ({"due_at": at(2032, 1, 5, 10).isoformat()}, {"due_on": "2032-01-05"}):
            r = await api.post("/followups", headers=headers(key()), json={
                "center_id": CENTER, "reason": "home_visit", "assigned_clerk": "clerk-017",
                **when})
            assert r.status_code == 422, r.text
            assert r.json()["error"]["code"] == "calendar_out_of_range"
        visit = await schedule(api, due_on="2026-03-03", assigned_clerk="clerk-017")
        r = await api.post(f"/followups/{visit['id']}/reschedule", headers=headers(key()),
                           json={"due_at": at(2032, 1, 5, 10).isoformat(), "reason": "later"})
        assert r.status_code == 422 and r.json()["error"]["code"] == "calendar_out_of_range"

"""A resident at the counter, step by step, through intake's HTTP API."""

from __future__ import annotations

import asyncio
import uuid

import httpx

from services.intake.main import create_app
from shared.settings import Settings
from tests.support import headers, register_resident, running, stream_envelopes, wait_until

CENTER = "SH-PD-HUAMU"


def key() -> str:
    return f"k-{uuid.uuid4().hex}"


async def open_case(client: httpx.AsyncClient, **overrides: str) -> dict:
    body = {"center_id": CENTER, "counter_id": "window-3", "clerk_id": "clerk-017",
            "channel": "counter", "service_item": "SA-HARDSHIP-SUBSIDY"} | overrides
    r = await client.post("/cases", json=body, headers=headers(key()))
    assert r.status_code == 201, r.text
    return r.json()


async def step(client: httpx.AsyncClient, case_id: str, name: str, body: dict,
               **extra: str) -> httpx.Response:
    return await client.post(f"/cases/{case_id}/{name}", json=body,
                             headers=headers(extra.pop("k", key()), **extra))


async def test_a_resident_walks_through_the_six_steps(settings: Settings) -> None:
    async with running(create_app(settings)) as client:
        opened = await open_case(client, resident_id=await register_resident(client))
        case_id = opened["id"]
        assert opened["version"] == 1 and opened["position"] >= 1
        steps = [
            ("hear", {"words": "我失业了，想问问能不能领失业金，电话13812345678",
                      "occurred_at": "2026-03-02T09:15:00+08:00"}),
            ("restate", {"restatement": "您想办理失业登记并申领失业保险金", "confirmed": True}),
            ("concerns", {"needs": ["生活费"], "worries": ["房贷"], "emotion": "anxious",
                          "urgency": "high"}),
            ("guidance", {"policy_basis": "《失业保险条例》", "eligibility": "more_documents",
                          "promised": "材料齐全后当场受理", "missing_documents": ["离职证明"]}),
            ("actions", {"kind": "referred", "description": "转介就业援助",
                         "referred_to": "就业服务窗口"}),
            ("deadlines", {"due_on": "2026-03-20", "description": "补交离职证明"}),
            ("resolve", {"outcome": "partly_resolved", "explanation": "已登记，待补材料",
                         "emotion_defused": True}),
        ]
        # Guidance sets the due date (the item's usual working days) and the earlier deadline
        # brings it forward: each of them records a CaseDueDateSet beside its own event.
        recorded = {"guidance": 2, "deadlines": 2}
        last = opened
        for name, body in steps:
            r = await step(client, case_id, name, body)
            assert r.status_code == 200, (name, r.text)
            assert r.json()["version"] == last["version"] + recorded.get(name, 1)
            assert r.json()["position"] > last["position"]
            last = r.json()

        r = await client.get(f"/cases/{case_id}", params={"after": last["position"]})
        assert r.status_code == 200, r.text
        case = r.json()
        assert case["status"] == "resolved" and case["outcome"] == "partly_resolved"
        assert case["emotion_on_arrival"] == "anxious" and case["emotion_defused"] is True
        assert case["next_deadline"] == "2026-03-20"
        assert [t["type"] for t in case["timeline"]] == [
            "CaseOpened", "RequestHeard", "RequestRestated", "ConcernsNoted", "GuidanceGiven",
            "CaseDueDateSet", "ActionTaken", "DeadlineNoted", "CaseDueDateSet", "CaseResolved"]
        assert case["due_on"] == "2026-03-20" and case["due_source"] == "deadline"
        heard = case["timeline"][1]
        assert heard["occurred_at"].startswith("2026-03-02T01:15:00")
        assert "13812345678" not in heard["payload"]["words"], "phone numbers are redacted"

        listed = await client.get("/cases", params={"center_id": CENTER, "status": "resolved"})
        assert [c["case_id"] for c in listed.json()["items"]] == [case_id]

    envelopes = await stream_envelopes(settings)
    mine = [e for e in envelopes if str(e.case_id) == case_id]
    assert [e.aggregate_version for e in mine] == list(range(1, 11)), "in order, once each"
    assert all(e.center_id == CENTER and e.service == "intake" for e in mine)
    assert mine[0].type == "CaseOpened" and mine[0].payload["service_item"] == "SA-HARDSHIP-SUBSIDY"
    assert all("13812345678" not in e.model_dump_json() for e in mine)


async def test_the_methods_rules_hold(settings: Settings) -> None:
    async with running(create_app(settings)) as client:
        case_id = (await open_case(client))["id"]

        r = await step(client, case_id, "resolve", {"outcome": "resolved",
                                                     "emotion_defused": True})
        assert r.status_code == 409 and r.json()["error"]["code"] == "rule_violated"

        assert (await step(client, case_id, "hear", {"words": "想申请低保"})).status_code == 200
        r = await step(client, case_id, "restate", {"restatement": "申请低保", "confirmed": False})
        assert r.status_code == 422 and r.json()["error"]["details"]["field"] == "correction"
        r = await step(client, case_id, "restate", {"restatement": "申请低保", "confirmed": False,
                                                     "correction": "是临时救助"})
        assert r.status_code == 200

        r = await step(client, case_id, "reopen", {"reason": "再看看"})
        assert r.status_code == 409, "an open case cannot be reopened"
        r = await step(client, case_id, "resolve", {"outcome": "cannot_be_resolved",
                                                     "emotion_defused": False})
        assert r.status_code == 422, "an unresolvable outcome needs an explanation"
        r = await step(client, case_id, "resolve", {"outcome": "resolved", "emotion_defused": True})
        assert r.status_code == 200
        r = await step(client, case_id, "hear", {"words": "还有一件事"})
        assert r.status_code == 409, "a resolved case takes no more steps until reopened"
        r = await step(client, case_id, "reopen", {"reason": "居民补充了新情况"})
        assert r.status_code == 200
        r = await client.get(f"/cases/{case_id}", params={"after": r.json()["position"]})
        assert r.json()["status"] == "open" and r.json()["reopen_count"] == 1

        unknown = uuid.uuid4()
        r = await step(client, str(unknown), "hear", {"words": "x"})
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
        assert (await client.get(f"/cases/{unknown}")).status_code == 404

        r = await step(client, case_id, "concerns", {"emotion": "furious", "urgency": "high"})
        assert r.status_code == 422
        assert r.json()["error"]["details"]["fields"][0]["field"] == "emotion"
        r = await client.post(f"/cases/{case_id}/hear", json={"words": "x"})
        assert r.status_code == 400
        assert r.json()["error"]["code"] == "idempotency_key_required"
        r = await client.post("/cases", headers=headers(key()), json={
            "center_id": CENTER, "counter_id": "w1", "clerk_id": "c1",
            "service_item": "NO-SUCH-ITEM"})
        assert r.status_code == 422 and r.json()["error"]["details"]["field"] == "service_item"
        r = await step(client, case_id, "hear", {"words": "x",
                                                  "occurred_at": "2026-03-02T09:15:00"})
        assert r.status_code == 422, "a naive timestamp is refused"


async def test_a_retried_write_is_applied_once(settings: Settings) -> None:
    async with running(create_app(settings)) as client:
        body = {"center_id": CENTER, "counter_id": "window-1", "clerk_id": "clerk-001",
                "service_item": "EMP-UNEMPLOYMENT-REGISTRATION"}
        k = key()
        first = await client.post("/cases", json=body, headers=headers(k))
        again = await client.post("/cases", json=body, headers=headers(k))
        assert first.status_code == 201 and again.status_code == 201
        assert again.json() == first.json() | {"replayed": True}
        case_id = first.json()["id"]

        hk = key()
        r1 = await step(client, case_id, "hear", {"words": "想登记失业"}, k=hk)
        r2 = await step(client, case_id, "hear", {"words": "想登记失业"}, k=hk)
        assert r2.json() == r1.json() | {"replayed": True}
        r3 = await step(client, case_id, "concerns", {"emotion": "calm"}, k=hk)
        assert r3.status_code == 422
        assert r3.json()["error"]["code"] == "idempotency_key_reused"
        r = await client.get(f"/cases/{case_id}", params={"after": r1.json()["position"]})
        assert [t["type"] for t in r.json()["timeline"]] == ["CaseOpened", "RequestHeard"]

    await wait_until(lambda: _count(settings, case_id, 2), what="two events on the stream")


async def _count(settings: Settings, case_id: str, n: int) -> bool:
    return len([e for e in await stream_envelopes(settings) if str(e.case_id) == case_id]) == n


async def test_concurrent_writes_to_one_case_conflict(settings: Settings) -> None:
    async with running(create_app(settings)) as client:
        case_id = (await open_case(client))["id"]
        results = await asyncio.gather(*[
            step(client, case_id, "hear", {"words": f"第{i}种说法"}, If_Match="1")
            for i in range(5)])
        codes = sorted(r.status_code for r in results)
        assert codes == [200, 409, 409, 409, 409], [r.text for r in results]
        conflict = next(r for r in results if r.status_code == 409).json()
        assert conflict["error"]["code"] == "version_conflict"


async def test_a_batch_commits_everyone_but_the_loser(settings: Settings) -> None:
    """Many writes arrive together: one group commit, one caller's conflict stays its own."""
    async with running(create_app(settings)) as client:
        cases = await asyncio.gather(*[open_case(client) for _ in range(40)])
        victim = cases[0]["id"]
        calls = [step(client, c["id"], "hear", {"words": "同时到达"}) for c in cases[1:]]
        calls += [step(client, victim, "hear", {"words": "A"}, If_Match="1"),
                  step(client, victim, "hear", {"words": "B"}, If_Match="1")]
        results = await asyncio.gather(*calls)
        assert [r.status_code for r in results[:-2]] == [200] * 39
        assert sorted(r.status_code for r in results[-2:]) == [200, 409]
        runtime = client._transport.app.state.runtime  # type: ignore[attr-defined]
        samples = runtime.metrics.batches.labels("intake").collect()[0].samples
        count = next(s.value for s in samples if s.name.endswith("_count"))
        total = next(s.value for s in samples if s.name.endswith("_sum"))
        assert total / count > 1.5, "writes that arrive together share a commit"

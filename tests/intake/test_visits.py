"""A resident sits down at the window: one trip (一人次), recorded once, naming the case when
they came back about one; the emotion they left with is kept with the resolution."""

from __future__ import annotations

import uuid

from services.intake.main import create_app
from shared.contracts import Envelope
from shared.security.principals import Role
from shared.settings import Settings
from tests.intake.test_counter_day import CENTER, key, open_case, step
from tests.support import headers, running, stream_envelopes, token_for, wait_until


async def test_a_trip_is_recorded_once_and_names_only_a_case_of_the_center(
        settings: Settings) -> None:
    async with running(create_app(settings), role=Role.CLERK) as client:
        case_id = (await open_case(client, clerk_id="test-clerk"))["id"]
        body = {"center_id": CENTER, "counter_id": "window-3", "case_id": case_id,
                "ticket": "A017", "wait_minutes": 12,
                "occurred_at": "2026-03-03T09:00:00+08:00"}
        same = key()
        first = await client.post("/visits", json=body, headers=headers(same))
        assert first.status_code == 201, first.text
        again = await client.post("/visits", json=body, headers=headers(same))
        assert again.json() == {**first.json(), "replayed": True}

        nowhere = await client.post("/visits", json={**body, "case_id": str(uuid.uuid4())},
                                    headers=headers(key()))
        assert nowhere.status_code == 404, nowhere.text
        for bad in ({"wait_minutes": -1}, {"ticket": "A 017"}, {"channel": "fax"},
                    {"resident_name": "王秀英"}):
            r = await client.post("/visits", json={**body, **bad}, headers=headers(key()))
            assert r.status_code == 422, (bad, r.text)
        other = {**body, "center_id": "SH-XH-OTHER", "case_id": None}
        assert (await client.post("/visits", json=other, headers=headers(key()))
                ).status_code == 403
        # A clerk of another center cannot name this center's case through its own center:
        # as for a case nobody has (tests/security/test_another_centers_case.py).
        stranger = token_for(settings, Role.CLERK, "SH-XH-OTHER", sub="clerk-x")
        r = await client.post("/visits", json={**body, "center_id": "SH-XH-OTHER"},
                              headers={**headers(key()), "Authorization": f"Bearer {stranger}"})
        assert r.status_code == 404, r.text

        r = await step(client, case_id, "hear", {"words": "我来补材料"})
        assert r.status_code == 200
        r = await step(client, case_id, "concerns", {"emotion": "angry", "urgency": "normal"})
        assert r.status_code == 200
        r = await step(client, case_id, "resolve", {"outcome": "resolved",
                                                   "emotion_on_leaving": "calm"})
        assert r.status_code == 200, r.text

        events: list[Envelope] = []

        async def resolution_published() -> bool:  # the relay publishes in its own time
            nonlocal events
            events = await stream_envelopes(settings)
            return any(e.type == "CaseResolved" for e in events)

        await wait_until(resolution_published, what="the resolution on the stream")
        (visit,) = [e for e in events if e.type == "VisitRecorded"]
        assert visit.case_id == uuid.UUID(case_id) and visit.actor == "test-clerk"
        assert visit.payload == {
            "visit_id": str(visit.aggregate_id), "center_id": CENTER, "counter_id": "window-3",
            "clerk_id": "test-clerk", "channel": "counter", "case_id": case_id,
            "ticket": "A017", "wait_minutes": 12}
        (resolved,) = [e for e in events if e.type == "CaseResolved"]
        assert resolved.version == 2
        assert resolved.payload["emotion_on_leaving"] == "calm"
        assert resolved.payload["emotion_defused"] is True  # calm, after angry

        # The case's timeline holds its own events only, not the visit naming it.
        view = await client.get(f"/cases/{case_id}", params={"after": resolved.position})
        assert "VisitRecorded" not in [e["type"] for e in view.json()["timeline"]]


async def test_a_resolution_says_the_emotion_on_leaving_or_whether_it_was_defused(
        settings: Settings) -> None:
    async with running(create_app(settings), role=Role.CLERK) as client:
        case_id = (await open_case(client, clerk_id="test-clerk"))["id"]
        await step(client, case_id, "hear", {"words": "问问"})
        r = await step(client, case_id, "resolve", {"outcome": "resolved"})
        assert r.status_code == 422 and r.json()["error"]["details"]["field"] == \
            "emotion_on_leaving", r.text
        r = await step(client, case_id, "resolve", {"outcome": "resolved",
                                                   "emotion_defused": False})
        assert r.status_code == 200, r.text

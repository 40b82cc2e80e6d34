"""A clerk's app that reuses an Idempotency-Key for a resident's next change is told so: the
vault answered "changed" and changed nothing (a new phone number, or the facts a resident
declared for their care, silently dropped). The same change sent again with its key is still
the retry it always was."""

from __future__ import annotations

from services.intake.main import create_app
from shared.security.principals import Role
from shared.settings import Settings
from tests.support import register_resident, running


async def test_a_key_used_for_one_change_is_refused_for_another_and_the_first_stays(
        settings: Settings) -> None:
    async with running(create_app(settings), role=Role.CLERK) as client:
        resident = await register_resident(client)

        async def phone() -> str:
            r = await client.get(f"/residents/{resident}", params={"purpose": "follow-up call"})
            return str(r.json()["phone"])

        first = {"phone": "13800000001"}
        r = await client.patch(f"/residents/{resident}", json=first,
                               headers={"Idempotency-Key": "desk-7-phone"})
        assert r.status_code == 200, r.text
        assert r.json()["changed"] == ["phone"]
        again = await client.patch(f"/residents/{resident}", json=first,
                                   headers={"Idempotency-Key": "desk-7-phone"})
        assert (again.status_code, again.json()) == (200, r.json()), "a retry answers alike"

        r = await client.patch(f"/residents/{resident}", json={"phone": "13800000002"},
                               headers={"Idempotency-Key": "desk-7-phone"})
        assert r.status_code == 422, r.text
        assert r.json()["error"]["code"] == "idempotency_key_reused"
        assert await phone() == "13800000001"

        r = await client.put(f"/residents/{resident}/facts",
                             json={"facts": ["lives_alone"], "consent": True},
                             headers={"Idempotency-Key": "desk-7-phone"})
        assert r.status_code == 422, r.text
        assert r.json()["error"]["code"] == "idempotency_key_reused"

        r = await client.patch(f"/residents/{resident}", json={"phone": "13800000002"},
                               headers={"Idempotency-Key": "desk-8-phone"})
        assert r.status_code == 200, r.text
        assert await phone() == "13800000002"

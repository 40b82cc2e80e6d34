"""Acting for someone (代办 / 帮办代办): a case records its applicant apart from its
beneficiary. Both are opaque ids on the bus; the relation and the proof seen stay in the
vault; both residents meet the center boundary (registered here, or present at the window)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from services.intake.main import create_app
from shared.contracts.vocabulary import ProofSeen, Relation
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
)

OTHER = "SH-PD-ZHANGJIANG"
PROOF = {Relation.SPOUSE: ProofSeen.MARRIAGE_CERTIFICATE,
         Relation.CHILD: ProofSeen.HOUSEHOLD_REGISTER,
         Relation.PARENT: ProofSeen.BIRTH_CERTIFICATE,
         Relation.GUARDIAN: ProofSeen.GUARDIANSHIP_PAPER,
         Relation.OTHER: ProofSeen.POWER_OF_ATTORNEY}


def opening(beneficiary: str, center: str = TEST_CENTER, **acting: Any) -> dict[str, Any]:
    return {"center_id": center, "counter_id": "window-1",
            "service_item": "MI-RESIDENT-MEDICAL-SUBSIDY", "resident_id": beneficiary,
            **acting}


async def read(client: httpx.AsyncClient, case_id: str, after: int,
               auth: dict[str, str] | None = None) -> dict[str, Any]:
    r = await client.get(f"/cases/{case_id}", params={"after": after}, headers=auth or {})
    assert r.status_code == 200, r.text
    return r.json()


async def test_each_relation_is_recorded_in_the_vault_and_only_the_ids_go_on_the_bus(
        settings: Settings) -> None:
    async with running(create_app(settings), role=Role.CLERK, center=TEST_CENTER) as client:
        beneficiary = await register_resident(client)
        cases: dict[str, tuple[str, str, int]] = {}
        for relation in Relation:
            applicant = beneficiary if relation is Relation.SELF else \
                await register_resident(client)
            acting = {} if relation is Relation.SELF else {
                "applicant_id": applicant, "relation": relation.value,
                "proof_seen": PROOF[relation].value}
            r = await client.post("/cases", headers=headers(f"act-{relation.value}-1"),
                                  json=opening(beneficiary, **acting))
            assert r.status_code == 201, r.text
            cases[relation.value] = (r.json()["id"], applicant, r.json()["position"])
        for relation, (case_id, applicant, position) in cases.items():
            case = await read(client, case_id, position)
            assert case["resident_id"] == beneficiary and case["applicant_id"] == applicant
            if relation == "self":
                assert case["acting_for"] is None
            else:
                assert case["acting_for"] == {
                    "applicant_id": applicant, "beneficiary_id": beneficiary,
                    "relation": relation, "proof_seen": PROOF[Relation(relation)].value}
        opened = {str(e.case_id): e for e in await stream_envelopes(settings)
                  if e.type == "CaseOpened"}
        for case_id, applicant, _ in cases.values():
            payload = opened[case_id].payload
            assert opened[case_id].version == 3
            assert (payload["resident_id"], payload["applicant_id"]) == (beneficiary, applicant)
            assert payload["applicant_basis"] == "registration"
            assert not {"relation", "proof_seen"} & set(payload)


@pytest.mark.parametrize(("acting", "field"), [
    ({"relation": "spouse", "proof_seen": "marriage_certificate"}, "applicant_id"),
    ({"relation": "spouse", "applicant_id": "SAME", "proof_seen": "marriage_certificate"},
     "another resident"),
    ({"relation": "child", "applicant_id": "OTHER"}, "proof_seen"),
    ({"relation": "self", "applicant_id": "OTHER"}, "self"),
    ({"relation": "self", "proof_seen": "household_register"}, "proof_seen"),
    ({"relation": "cousin", "applicant_id": "OTHER", "proof_seen": "other"}, "relation"),
])
async def test_an_opening_acting_for_someone_says_who_and_on_what_proof(
        settings: Settings, acting: dict[str, str], field: str) -> None:
    async with running(create_app(settings), role=Role.CLERK, center=TEST_CENTER) as client:
        beneficiary = await register_resident(client)
        other = await register_resident(client)
        given = {k: {"SAME": beneficiary, "OTHER": other}.get(v, v) for k, v in acting.items()}
        r = await client.post("/cases", headers=headers("act-bad-1"),
                              json=opening(beneficiary, **given))
        assert r.status_code == 422 and field in r.text, r.text


async def test_both_residents_meet_the_center_boundary(settings: Settings) -> None:
    """A clerk of another center opens a case acting for someone only with a presence grant
    for each of them; without one for the applicant the opening is refused, and nothing is
    kept of the relation."""
    clock = ManualClock(datetime(2026, 3, 2, 1, 0, tzinfo=UTC))
    async with running(create_app(settings, clock), role=Role.CLERK,
                       center=TEST_CENTER) as home:
        mother_number, son_number = id_number(), id_number()
        mother = await register_resident(home, id_=mother_number)
        son = await register_resident(home, id_=son_number)
        clerk_b = bearer(settings, role=Role.CLERK, center=OTHER, sub="clerk-b")
        acting = {"applicant_id": son, "relation": "child", "proof_seen": "household_register"}

        # The mother is at clerk-b's window (her ID number typed), her son is not.
        found = await home.post("/residents/lookup", headers=clerk_b, json={
            "id_number": mother_number, "purpose": "son applies for mother"})
        assert found.status_code == 200, found.text
        refused = await home.post("/cases", headers={**clerk_b, **headers("b-act-open-1")},
                                  json=opening(mother, OTHER, **acting))
        assert refused.status_code == 404, refused.text  # as for a resident nobody has
        assert refused.json()["error"]["code"] == "not_found"
        pool = home._transport.app.state.pool  # type: ignore[attr-defined]
        assert await pool.fetchval("SELECT count(*) FROM case_relations") == 0

        # Only the beneficiary's grant is not enough either way round: now both are present.
        found = await home.post("/residents/lookup", headers=clerk_b, json={
            "id_number": son_number, "purpose": "son applies for mother"})
        assert found.status_code == 200, found.text
        opened = await home.post("/cases", headers={**clerk_b, **headers("b-act-open-2")},
                                 json=opening(mother, OTHER, **acting))
        assert opened.status_code == 201, opened.text
        case = await read(home, opened.json()["id"], opened.json()["position"], clerk_b)
        assert case["acting_for"]["relation"] == "child"
        assert case["resident_basis"] == "presence_grant"
        # The home center's clerk does not see it: another center's case, a 404 as for none
        # (a 403 said it was a case; tests/security/test_another_centers_case.py).
        r = await home.get(f"/cases/{opened.json()['id']}",
                           params={"after": opened.json()["position"]})
        assert (r.status_code, r.json()["error"]["code"]) == (404, "not_found"), r.text
        opened_event = [e for e in await stream_envelopes(settings)
                        if e.type == "CaseOpened" and str(e.case_id) == opened.json()["id"]]
        assert opened_event[0].payload["applicant_basis"] == "presence_grant"


async def test_erasing_either_resident_forgets_who_acted_for_whom(settings: Settings) -> None:
    async with running(create_app(settings), role=Role.SUPERVISOR,
                       center=TEST_CENTER) as client:
        father, daughter = await register_resident(client), await register_resident(client)
        r = await client.post("/cases", headers=headers("act-erase-open-1"), json=opening(
            father, applicant_id=daughter, relation="child",
            proof_seen="household_register"))
        assert r.status_code == 201, r.text
        case_id, position = r.json()["id"], r.json()["position"]
        assert (await read(client, case_id, position))["acting_for"]["relation"] == "child"
        erased = await client.delete(f"/residents/{daughter}")
        assert erased.status_code in (200, 204), erased.text
        case = await read(client, case_id, position)
        assert case["acting_for"] is None
        assert case["applicant_id"] == daughter, "the opaque id stays: the log is the log"


async def test_a_key_reused_for_another_opening_leaves_no_row_in_the_audit_trail(
        settings: Settings) -> None:
    """The relation is kept, and audited, only for the opening that records it: the same key
    sent again (a retry, or by mistake with another opening) is answered without the vault."""
    async with running(create_app(settings), role=Role.CLERK, center=TEST_CENTER) as client:
        mother, son = await register_resident(client), await register_resident(client)
        acting = {"applicant_id": son, "relation": "child", "proof_seen": "household_register"}
        first = await client.post("/cases", headers=headers("act-audit-open-1"),
                                  json=opening(mother, **acting))
        assert first.status_code == 201, first.text
        pool = client._transport.app.state.pool  # type: ignore[attr-defined]
        trail = await pool.fetchval("SELECT count(*) FROM personal_data_audit")

        retried = await client.post("/cases", headers=headers("act-audit-open-1"),
                                    json=opening(mother, **acting))
        assert retried.status_code in (200, 201) and retried.json()["replayed"], retried.text
        assert await pool.fetchval("SELECT count(*) FROM personal_data_audit") == trail
        other = await register_resident(client)
        trail = await pool.fetchval("SELECT count(*) FROM personal_data_audit")
        reused = await client.post("/cases", headers=headers("act-audit-open-1"), json=opening(
            other, applicant_id=son, relation="parent", proof_seen="birth_certificate"))
        assert reused.status_code == 422, reused.text
        assert reused.json()["error"]["code"] == "idempotency_key_reused"
        assert await pool.fetchval("SELECT count(*) FROM personal_data_audit") == trail
        assert (await pool.fetchval("SELECT relation FROM case_relations WHERE case_id = $1",
                                    first.json()["id"])) == "child"

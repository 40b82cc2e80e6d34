"""Some identity providers make a clerk's ``sub`` of their mobile number, ID number or e-mail
address, and a counter app may send ids made of what it knows of the resident (a clerk id that
is a phone number, ``tel13812345678`` as a counter). The actor and every id a command carries go
onto events as they are: on the bus, into the logs and the exports, past every erasure. So a
token with such a subject is refused naming the setting to change (``OIDC_SUBJECT_CLAIM``), and
such an id is a 422 naming the field; a provider whose staff number sits in another claim is
taken with that claim as the actor, and nothing of the phone number is anywhere afterwards."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest

from services.followup.main import create_app as create_followup
from services.intake.main import create_app as create_intake
from shared.analytics.export import export
from shared.security.oidc import ClaimMap
from shared.security.principals import Role
from shared.security.tokens import ALGORITHM, AUDIENCE, AuthError, TokenKeys
from shared.settings import Settings
from tests.security.issuer import CLIENT_ID, Issuer, SigningKey, running_issuer
from tests.support import TEST_CENTER, auth_env, headers, running, stream_envelopes
from tools.devservers import free_port

PHONE = "13812345678"
ID_NUMBER = "11010519491231002X"
EMAIL = "wang.jianguo@huamu.gov.cn"


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    with running_issuer(free_port(), SigningKey.rsa()) as running:
        yield running


def with_provider(settings: Settings, issuer: Issuer, **changes: object) -> Settings:
    return Settings(**{**settings.model_dump(), "oidc_issuer": issuer.url,
                       "oidc_client_id": CLIENT_ID, **changes})


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def opening(**changes: object) -> dict[str, object]:
    return {"center_id": TEST_CENTER, "counter_id": "window-3",
            "service_item": "SA-HARDSHIP-SUBSIDY", **changes}


async def test_a_provider_that_makes_sub_of_a_phone_number_is_refused_naming_the_setting(
        settings: Settings, issuer: Issuer) -> None:
    async with running(create_intake(with_provider(settings, issuer)), anonymous=True) as intake:
        for sub, held in ((PHONE, "a phone number"), (f"tel{PHONE}", "a phone number"),
                          (ID_NUMBER, "an ID number"), (EMAIL, "an e-mail address")):
            r = await intake.post("/cases", headers={**headers(f"k-{uuid.uuid4().hex}"),
                                                     **auth(issuer.token(sub=sub))},
                                  json=opening())
            assert r.status_code == 403, r.text
            error = r.json()["error"]
            assert error["code"] == "claim_personal"
            assert error["details"] == {"claim": "sub", "setting": "OIDC_SUBJECT_CLAIM",
                                        "holds": held}
            assert "OIDC_SUBJECT_CLAIM" in error["message"]
            assert sub not in r.text and PHONE not in r.text  # never echoed
            me = await intake.get("/auth/me", headers=auth(issuer.token(sub=sub)))
            assert (me.status_code, me.json()["error"]["code"]) == (403, "claim_personal")
    assert not [e for e in await stream_envelopes(settings) if e.type == "CaseOpened"]


async def test_the_staff_number_claim_is_the_actor_and_the_phone_number_is_nowhere(
        settings: Settings, issuer: Issuer, tmp_path: Path,
        capfd: pytest.CaptureFixture[str]) -> None:
    """The realm keeps its mobile-number subjects; OIDC_SUBJECT_CLAIM names the staff number
    it also puts in the token. The clerk works a case; the stream, the logs and an export
    name the staff number and hold no digit of the phone number."""
    provider = with_provider(settings, issuer, oidc_subject_claim="staff_no")
    token = issuer.token(sub=PHONE, staff_no="clerk-017", center=TEST_CENTER)
    async with running(create_intake(provider), anonymous=True) as intake:
        me = await intake.get("/auth/me", headers=auth(token))
        assert me.json() == {"sub": "clerk-017", "role": "clerk", "center_id": TEST_CENTER}
        r = await intake.post("/cases", headers={**headers(f"k-{uuid.uuid4().hex}"),
                                                 **auth(token)}, json=opening())
        assert r.status_code == 201, r.text
        case_id = r.json()["id"]
        r = await intake.post(f"/cases/{case_id}/hear", headers={
            **headers(f"k-{uuid.uuid4().hex}"), **auth(token)}, json={
            "words": "王建国说他家漏水, 手机 +86 138-1234-5678"})
        assert r.status_code in (200, 201), r.text
        # Without the claim, the same realm's token is refused, not taken under its sub.
        r = await intake.get("/auth/me", headers=auth(issuer.token(sub=PHONE)))
        assert (r.status_code, r.json()["error"]["details"]["claim"]) == (403, "staff_no")

    envelopes = [e for e in await stream_envelopes(settings) if str(e.case_id) == case_id]
    assert {e.actor for e in envelopes} == {"clerk-017"}
    assert [e.payload["clerk_id"] for e in envelopes if e.type == "CaseOpened"] == ["clerk-017"]
    await export(settings, tmp_path / "csv", fmt="csv", layout="wide")
    exported = "".join(p.read_text() for p in (tmp_path / "csv").rglob("*.csv"))
    assert case_id in exported
    logs = "".join(capfd.readouterr())
    assert "service.started" in logs  # the service's log lines were captured
    for where, text in (("stream", "".join(e.model_dump_json() for e in envelopes)),
                        ("export", exported), ("logs", logs)):
        for shape in (PHONE, "138-1234-5678", "王建国"):
            assert shape not in text, (where, shape)


def test_sixstep_s_own_tokens_take_no_personal_subject(settings: Settings,
                                                       tmp_path: Path) -> None:
    keys = TokenKeys.from_settings(settings)
    for sub in (PHONE, f"tel{PHONE}", ID_NUMBER, EMAIL):
        with pytest.raises(ValueError, match="must not be"):
            keys.issue(sub, Role.CLERK, TEST_CENTER)
        with pytest.raises(ValueError, match="must not be"):
            keys.issue(sub, Role.OPS)
    ran = subprocess.run(
        [str(Path(sys.executable).parent / "sixstep"), "token", "issue", "--sub", PHONE,
         "--role", "ops"], cwd=tmp_path, capture_output=True, text=True, timeout=60,
        env={"PATH": os.environ.get("PATH", ""), **auth_env(settings)})
    assert ran.returncode == 2, ran
    assert "phone number" in ran.stderr and "Traceback" not in ran.stderr


async def test_an_own_key_token_signed_with_a_personal_subject_is_refused(
        settings: Settings) -> None:
    """A token minted by hand with the keys (another tool, an old script): 403, named."""
    key = settings.auth_keys[0].get_secret_value()
    claims = {"iss": settings.auth_issuer, "aud": AUDIENCE, "sub": PHONE, "role": "clerk",
              "center": TEST_CENTER, "iat": 1, "exp": 4102444800}
    token = jwt.encode(claims, key, algorithm=ALGORITHM)
    async with running(create_intake(settings), token=token) as intake:
        r = await intake.post("/cases", headers=headers(f"k-{uuid.uuid4().hex}"),
                              json=opening())
        assert r.status_code == 403, r.text
        assert r.json()["error"]["code"] == "claim_personal"
        assert PHONE not in r.text


async def test_ids_a_caller_sends_holding_a_phone_or_id_number_are_refused_by_field(
        settings: Settings) -> None:
    refused = []
    async with running(create_intake(settings)) as intake:  # a supervisor
        for body, field in ((opening(clerk_id=PHONE), "clerk_id"),
                            (opening(clerk_id=f"tel{PHONE}"), "clerk_id"),
                            (opening(counter_id=f"window-{ID_NUMBER}"), "counter_id")):
            r = await intake.post("/cases", headers=headers(f"k-{uuid.uuid4().hex}"),
                                  json=body)
            refused.append(r)
            assert r.status_code == 422, r.text
            assert r.json()["error"]["code"] == "personal_data_in_code"
            assert r.json()["error"]["details"]["field"] == field
        r = await intake.post("/cases", headers=headers(f"k-{uuid.uuid4().hex}"),
                              json=opening(clerk_id="clerk-017", counter_id="window-3"))
        assert r.status_code == 201, r.text
    async with running(create_followup(settings)) as followup:
        r = await followup.post("/followups", headers=headers(f"k-{uuid.uuid4().hex}"), json={
            "center_id": TEST_CENTER, "assigned_clerk": "138-1234-5678",
            "reason": "home_visit", "due_at": "2026-12-10T09:00:00+08:00"})
        assert r.status_code == 422, r.text
        assert r.json()["error"]["details"] == {"field": "assigned_clerk",
                                                "holds": "a phone number"}
        refused.append(r)
    assert not any(PHONE in r.text or ID_NUMBER in r.text for r in refused)
    envelopes = await stream_envelopes(settings)
    assert [e.payload["clerk_id"] for e in envelopes if e.type == "CaseOpened"] == ["clerk-017"]
    text = "".join(e.model_dump_json() for e in envelopes)
    assert PHONE not in text and ID_NUMBER not in text and "1234-5678" not in text


def test_the_subject_claim_may_be_a_path_or_a_staff_number_given_as_a_number() -> None:
    claims = {"sub": PHONE, "roles": ["clerk"], "center": TEST_CENTER,
              "ext": {"staff_no": 17}, "staff_no": "clerk-017"}
    assert ClaimMap(subject_claim="staff_no").principal(claims).sub == "clerk-017"
    assert ClaimMap(subject_claim="ext.staff_no").principal(claims).sub == "17"
    # a user attribute mapped as multivalued: one value is the subject, two are no one's
    assert ClaimMap(subject_claim="staff_no").principal(
        {**claims, "staff_no": ["clerk-017"]}).sub == "clerk-017"
    with pytest.raises(AuthError) as two:
        ClaimMap(subject_claim="staff_no").principal(
            {**claims, "staff_no": ["clerk-017", "clerk-018"]})
    assert (two.value.code, two.value.details["setting"]) == (
        "claim_invalid", "OIDC_SUBJECT_CLAIM")
    with pytest.raises(AuthError) as refused:
        ClaimMap().principal(claims)
    assert (refused.value.status, refused.value.code) == (403, "claim_personal")
    assert PHONE not in refused.value.message and PHONE not in str(refused.value.details)
    with pytest.raises(AuthError) as missing:
        ClaimMap(subject_claim="employee_id").principal(claims)
    assert (missing.value.code, missing.value.details["setting"]) == (
        "claim_missing", "OIDC_SUBJECT_CLAIM")


async def test_a_case_and_a_follow_up_recorded_before_the_check_under_a_phone_number_move_on(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The morning after the upgrade: cases opened, and follow-ups planned, by a clerk whose
    subject was their phone number (before the check existed) still name them. The supervisor
    hands such a case to a clerk with a staff number, and moves the follow-up: the events name
    the old clerk as ``from_clerk`` / ``assigned_clerk`` because the aggregate holds them, which
    is on the stream already. Refusing that would keep the case with them for good. A phone
    number the aggregate does not hold is still refused."""
    monkeypatch.setattr("shared.kernel.scrubbing.personal_number_in", lambda _: None)
    async with running(create_intake(settings)) as intake, \
            running(create_followup(settings)) as followup:  # a supervisor
        r = await intake.post("/cases", headers=headers(f"k-{uuid.uuid4().hex}"),
                              json=opening(clerk_id=PHONE))
        assert r.status_code == 201, r.text
        case_id = r.json()["id"]
        r = await followup.post("/followups", headers=headers(f"k-{uuid.uuid4().hex}"), json={
            "center_id": TEST_CENTER, "assigned_clerk": PHONE, "reason": "home_visit",
            "due_at": "2026-12-10T09:00:00+08:00"})
        assert r.status_code == 201, r.text
        follow_up_id = r.json()["id"]
        monkeypatch.undo()  # the check as it is now

        r = await intake.post(f"/cases/{case_id}/handover",
                              headers=headers(f"k-{uuid.uuid4().hex}"),
                              json={"to_clerk": "13912345678", "reason": "another phone"})
        assert r.status_code == 422, r.text
        assert r.json()["error"]["details"] == {"field": "to_clerk", "holds": "a phone number"}
        r = await intake.post(f"/cases/{case_id}/handover",
                              headers=headers(f"k-{uuid.uuid4().hex}"),
                              json={"to_clerk": "clerk-017", "reason": "staff number now"})
        assert r.status_code == 200, r.text
        r = await followup.post(f"/followups/{follow_up_id}/reschedule",
                                headers=headers(f"k-{uuid.uuid4().hex}"),
                                json={"due_at": "2026-12-11T09:00:00+08:00",
                                      "reason": "moved"})
        assert r.status_code == 200, r.text
    envelopes = await stream_envelopes(settings)
    handed = [e.payload for e in envelopes if e.type == "CaseHandedOver"]
    assert [(p["from_clerk"], p["to_clerk"]) for p in handed] == [(PHONE, "clerk-017")]
    assert [e.payload["assigned_clerk"] for e in envelopes
            if e.type == "FollowUpRescheduled"] == [PHONE]


async def test_a_staff_member_whose_subject_begins_with_system_is_checked_as_anyone(
        settings: Settings) -> None:
    """Only the services' own workers (``system``, ``system:rules``) record without the codes
    being checked again; a provider's ``systemadmin`` is a person, and a token may not name a
    worker at all."""
    keys = TokenKeys.from_settings(settings)
    token = keys.issue("systemadmin", Role.SUPERVISOR, TEST_CENTER)
    async with running(create_intake(settings), token=token) as intake:
        r = await intake.post("/cases", headers=headers(f"k-{uuid.uuid4().hex}"),
                              json=opening(clerk_id=PHONE))
        assert r.status_code == 422, r.text
        assert r.json()["error"]["details"] == {"field": "clerk_id", "holds": "a phone number"}
    for worker in ("system", "system:rules", "system:fan-out"):
        with pytest.raises(ValueError, match="system"):
            keys.issue(worker, Role.SUPERVISOR, TEST_CENTER)
        with pytest.raises(AuthError) as refused:
            ClaimMap().principal({"sub": worker, "roles": ["clerk"], "center": TEST_CENTER})
        assert (refused.value.code, refused.value.details["setting"]) == (
            "claim_invalid", "OIDC_SUBJECT_CLAIM")

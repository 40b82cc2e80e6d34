"""An erasure at the counter reaches every service: a resident who said no to contact and to
surveys is served, helped (帮办) and referred (派单), then erased, and follow-up and feedback
let go of everything still open for them; no table of any service, nor the stream, the dead
letters or the logs, holds their name, phone, ID number or address. All through the real
services: intake's vault and relay, the stream, follow-up's and feedback's consumers and
routes (no event published by hand).

Intake scrubs with the vault (it knows the resident); follow-up and feedback never see the
vault, so what is typed there (a help task handed back, the referred unit's own reply, a
rating's comment) goes to intake to be scrubbed of the case's resident before it is recorded:
a name typed alone (王秀英不在家, 王秀英的低保材料已交), which has no shape the patterns know,
goes too."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg
import pytest

from shared.bus.consumer import wait_for_position
from shared.security.principals import Role
from shared.settings import Settings
from tests.followup.story import CENTER, at, center_day
from tests.followup.test_help_and_referrals import escalate, first, post, unit_client
from tests.support import (
    bearer,
    dead_letters,
    id_number,
    register_resident,
    stream_envelopes,
    wait_until,
)

MONDAY = at(2026, 3, 2, 9)
NAME, PHONE, ADDRESS = "王秀英", "13912345678", "花木路100弄3号"  # register_resident's


async def test_a_resident_erased_after_their_visit_is_followed_up_and_surveyed_no_more(
        settings: Settings, capfd: pytest.CaptureFixture[str]) -> None:
    ident = id_number()
    values = {"name": NAME, "phone": PHONE, "address": ADDRESS, "ID number": ident}
    async with center_day(settings, MONDAY, with_feedback=True) as center:
        assert center.feedback is not None and center.feedback_app is not None
        # Registered at the window: no calls, no surveys.
        resident = UUID(await register_resident(center.intake, id_=ident,
                                                consent={"contact": False, "surveys": False}))
        # Served at the counter: a deadline to keep, then resolved on the spot.
        case_id = await center.open_case(at(2026, 3, 2, 9, 10), resident)
        await center.step(case_id, "hear", {
            "words": f"我是{NAME}，电话{PHONE}，住{ADDRESS}，身份证{ident}",
            "occurred_at": at(2026, 3, 2, 9, 11).isoformat()})
        # 派单 (its read model waited for with the help task's: one stream, in order).
        await center.step(case_id, "actions", {
            "kind": "referred", "description": "转社保中心核定", "referred_to": "浦东新区社保中心",
            "unit_kind": "social_insurance_bureau",
            "occurred_at": at(2026, 3, 2, 9, 12).isoformat()})
        # 帮办: the colleague cannot help, and says why as they would say it.
        task = await escalate(center, case_id, at(2026, 3, 2, 9, 13), owner_clerk="clerk-018",
                              description="王阿姨腿脚不便，需上门")
        back = await post(center.followup, f"/help-tasks/{task['task_id']}/hand-back", {
            "reason": f"已联系{NAME}本人，她说电话{PHONE}白天打不通；{NAME}不在家，下周再访"},
            bearer(settings, role=Role.CLERK, sub="clerk-018"))
        assert back.status_code == 200, back.text
        # The unit answers with its reply link, naming whom it reached.
        referral = await first(center, "/referrals", case_id, "the referral")
        link = await post(center.followup, f"/referrals/{referral['referral_id']}/reply-link", {})
        async with unit_client(center) as unit:
            replied = await post(unit, f"/referrals/{referral['referral_id']}/unit-reply", {
                "token": link.json()["token"],
                "reply": f"已通知{NAME}，身份证{ident}已核，住{ADDRESS}，{NAME}的低保材料已交"})
            assert replied.status_code == 200, replied.text
        await center.step(case_id, "deadlines", {
            "due_on": "2026-03-13", "description": "补交收入证明",
            "occurred_at": at(2026, 3, 2, 9, 20).isoformat()})
        resolved = await center.step(case_id, "resolve", {
            "outcome": "resolved", "explanation": f"当场受理，{NAME}的低保材料已交",
            "emotion_defused": True,
            "occurred_at": at(2026, 3, 2, 9, 30).isoformat()})

        # Barrier: both services have applied the resolution, and so (each consumer applies
        # intake's stream in order) the case before it and the consent given at registration.
        for app, consumer in ((center.app, "followup-rules"),
                              (center.feedback_app, "feedback-intake")):
            assert await wait_for_position(app.state.pool, consumer, "intake",
                                           resolved["position"], 10.0), consumer
        await center.settled()

        # What the center owes them anyway is a task without contact; no check after the
        # visit (that would be a call).
        [reminder] = await center.followups_of(case_id, 1, "the deadline's reminder")
        assert (reminder["reason"], reminder["status"], reminder["contact"]) == (
            "deadline_reminder", "scheduled", False)
        # The counter's tablet may ask a resident who is there; nothing by text or phone.
        [survey] = await surveys(center.feedback, case_id, 1)
        assert survey["channel"] == "tablet" and survey["status"] in ("requested", "sent")

        # At ten the resident asks to be erased; the supervisor does it.
        center.clock.set(at(2026, 3, 2, 10))
        r = await center.intake.delete(f"/residents/{resident}")
        assert r.status_code == 200, r.text

        async def let_go() -> bool:
            [f] = await center.followups_of(case_id, 1)
            [s] = await surveys(center.feedback, case_id, 1)
            return f["status"] == "cancelled" and s["status"] == "withdrawn"

        await wait_until(let_go, what="the reminder cancelled and the survey withdrawn")

    envelopes = await stream_envelopes(settings)
    # Nothing of the resident anywhere: every table of every service, the stream, the dead
    # letters, the logs.
    assert await holding(settings, values) == []
    on_the_bus = [e.model_dump_json() for e in envelopes]
    on_the_bus += [m.data.decode(errors="replace") for m in await dead_letters(settings)]
    assert any("已联系[姓名已隐去]本人" in e for e in on_the_bus), "the hand-back is there"
    logs = "".join(capfd.readouterr())
    for what, value in values.items():
        assert not any(value in e for e in on_the_bus), what
        assert value not in logs, what
    [erased] = [e for e in envelopes if e.type == "ResidentErased"]
    assert erased.aggregate_id == resident and erased.case_id is None
    assert erased.payload == {"resident_id": str(resident)}, "no personal data on the bus"
    assert erased.occurred_at == at(2026, 3, 2, 10), "on the service's clock"
    [cancelled] = [e for e in envelopes if e.type == "FollowUpCancelled"]
    assert cancelled.aggregate_id == UUID(reminder["follow_up_id"])
    assert cancelled.payload["reason"] == "the resident's personal data was erased"
    [withdrawn] = [e for e in envelopes if e.type == "SurveyWithdrawn"]
    assert withdrawn.aggregate_id == UUID(survey["survey_id"])
    assert withdrawn.payload["because"] == "erased"
    asked = [e.payload["channel"] for e in envelopes if e.type == "SurveyRequested"]
    assert asked == ["tablet"], "no text, no callback: the resident did not agree to them"
    assert {e.center_id for e in (erased, cancelled, withdrawn)} == {CENTER}


async def surveys(feedback: Any, case_id: str, n: int) -> list[dict[str, Any]]:
    """The case's surveys in feedback's views, once there are ``n``."""
    found: list[dict[str, Any]] = []

    async def there() -> bool:
        nonlocal found
        r = await feedback.get(f"/cases/{case_id}/feedback")
        found = r.json()["surveys"] if r.status_code == 200 else []
        return len(found) >= n

    await wait_until(there, what=f"{n} survey(s) of the case")
    return found


async def holding(settings: Settings, values: dict[str, str]) -> list[str]:
    """Each table of each schema that holds one of ``values`` (as text, or as the bytes of a
    bytea column), and which."""
    found: list[str] = []
    patterns = [p for v in values.values() for p in (f"%{v}%", f"%{v.encode().hex()}%")]
    conn = await asyncpg.connect(settings.database_url)
    try:
        for t in await conn.fetch(
                "SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema"
                " NOT IN ('pg_catalog', 'information_schema') AND table_type = 'BASE TABLE'"):
            table = f'"{t["table_schema"]}"."{t["table_name"]}"'
            rows = await conn.fetch(f"SELECT x::text AS row FROM {table} x"
                                    " WHERE x::text LIKE ANY($1::text[])", patterns)
            found += [f"{table}: {what}" for what, v in values.items() for r in rows
                      if v in r["row"] or v.encode().hex() in r["row"]]
    finally:
        await conn.close()
    return found


async def test_a_resident_who_names_themself_in_their_comment_is_kept_by_no_service(
        settings: Settings) -> None:
    """Feedback never sees the vault: the comment goes to intake to be scrubbed of the case's
    resident before it is recorded (a name typed alone has no shape the patterns know)."""
    async with center_day(settings, MONDAY, with_feedback=True) as center:
        case_id = await _rated(settings, center, NAME, f"这次{NAME}很满意，秀英阿姨下次还来")
        # Intake answers only a service's signed call: no one tries names against a case.
        unsigned = await center.intake.post(f"/internal/case-texts/{case_id}",
                                            json={"texts": [NAME]})
        assert unsigned.status_code == 401, unsigned.text

    [given] = [e for e in await stream_envelopes(settings) if e.type == "RatingGiven"]
    assert given.payload["comment"] == "这次[姓名已隐去]很满意，[姓名已隐去]下次还来"
    assert await holding(settings, {"name": NAME, "given name": "秀英"}) == []


async def test_a_word_given_name_opening_a_residents_comment_is_scrubbed_by_intake(
        settings: Settings) -> None:
    """李国庆 rates his visit and writes 国庆 (a word too: National Day) before what he thought:
    intake scrubs feedback's comment of him where the clause opens with it, whatever verb
    follows (scrub46: 国庆问, 国庆觉得 were kept); the holiday stays."""
    async with center_day(settings, MONDAY, with_feedback=True) as center:
        await _rated(settings, center, "李国庆", "国庆觉得很好，国庆问国庆期间开不开门")

    [given] = [e for e in await stream_envelopes(settings) if e.type == "RatingGiven"]
    assert given.payload["comment"] == "[姓名已隐去]觉得很好，[姓名已隐去]问国庆期间开不开门"


async def _rated(settings: Settings, center: Any, name: str, comment: str) -> str:
    """A resident on file as ``name`` is served, resolved, and rates the visit with
    ``comment`` (satisfied): the case's id."""
    assert center.feedback is not None
    resident = UUID(await register_resident(center.intake, name=name))
    case_id = await center.open_case(at(2026, 3, 2, 9, 10), resident)
    await center.step(case_id, "resolve", {
        "outcome": "resolved", "explanation": "当场受理", "emotion_defused": True,
        "occurred_at": at(2026, 3, 2, 9, 30).isoformat()})
    [survey] = await surveys(center.feedback, case_id, 1)
    rated = await post(center.feedback, f"/surveys/{survey['survey_id']}/rating", {
        "level": "satisfied", "comment": comment},
        bearer(settings, role=Role.RESIDENT, case_id=UUID(case_id)))
    assert rated.status_code == 200, rated.text
    return case_id

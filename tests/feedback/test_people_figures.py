"""Employment aid's figures counted as the seed counts them (5,600 guidance visits, 126 people
placed): a visit (人次) is one session, people placed are residents. And beneficiaries: a case
applied for by a relative (代办) counts the resident it is for. Every number worked by hand."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx

from services.feedback.figures.people import READ_MODEL
from services.feedback.main import create_app as create_feedback
from services.intake.main import create_app as create_intake
from shared.analytics.rebuild import Rebuild
from shared.kernel.clock import ManualClock
from shared.settings import Settings
from tests.feedback.helpers import KeptSender
from tests.followup.story import CENTER, at, quiet
from tests.support import headers, register_resident, running, stream_envelopes

STUDIO, WINDOW = "studio-emp", "window-2"
AID, GUIDANCE, REFERRAL = ("EMP-EMPLOYMENT-ASSISTANCE", "EMP-CAREER-GUIDANCE",
                           "EMP-JOB-REFERRAL")


@contextlib.asynccontextmanager
async def counter_and_figures(settings: Settings
                              ) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    settings = quiet(settings)
    clock = ManualClock(at(2026, 4, 2, 9))
    async with running(create_intake(settings, clock=clock)) as intake, \
            running(create_feedback(settings, sender=KeptSender(), clock=clock)) as feedback:
        yield intake, feedback


async def post(client: httpx.AsyncClient, path: str, body: dict[str, Any],
               status: int = 200) -> dict[str, Any]:
    r = await client.post(path, json=body, headers=headers(f"k-{uuid.uuid4().hex}"))
    assert r.status_code in ((201,) if path == "/cases" else (status,)), r.text
    return r.json()


async def case(client: httpx.AsyncClient, resident: str, counter: str, item: str, day: int,
               **acting: str) -> str:
    opened = await post(client, "/cases", {
        "center_id": CENTER, "counter_id": counter, "service_item": item,
        "resident_id": resident, "occurred_at": at(2026, 3, day, 9).isoformat(), **acting})
    return str(opened["id"])


async def session(client: httpx.AsyncClient, case_id: str, day: str,
                  counter: str | None = None) -> int:
    body = {"held_on": day, "topic": "career_guidance", "note": "简历修改、岗位匹配"}
    if counter:
        body["counter_id"] = counter
    return int((await post(client, f"/cases/{case_id}/guidance-sessions", body))["position"])


async def placement(client: httpx.AsyncClient, case_id: str, day: str, employer: str,
                    counter: str | None = None) -> int:
    body = {"employed_on": day, "employer_type": employer}
    if counter:
        body["counter_id"] = counter
    return int((await post(client, f"/cases/{case_id}/placement", body))["position"])


async def test_guidance_visits_and_people_placed_per_studio_and_counter(
        settings: Settings) -> None:
    """March at one center:

    - A, at the studio (employment assistance): 3 sessions at the studio; placed 10 March
      (enterprise), credited to the studio.
    - B, at the studio (career guidance): 2 sessions at the studio, 1 at window-2; placed
      12 March (public-welfare job), credited to the studio.
    - B again, at window-2 (job referral): 1 session; placed again 20 March (flexible),
      credited to window-2.
    - C, at window-2, applied for by D, C's spouse: 1 session, not placed.
    - A's hardship subsidy case: no sessions (not employment aid).
    - A session of A's on 1 April: outside March.

    Guidance visits (人次): studio 3 + 2 = 5; window-2 1 + 1 + 1 = 3; in all 8.
    People placed: studio A, B = 2; window-2 B = 1; in all A, B = 2 (B once).
    Beneficiaries: A, B, C = 3 (D applied, and is not one); cases 5; acting for 1.
    """
    async with counter_and_figures(settings) as (intake, feedback):
        a, b, c, d = [await register_resident(intake) for _ in range(4)]
        a1 = await case(intake, a, STUDIO, AID, 2)
        b1 = await case(intake, b, STUDIO, GUIDANCE, 3)
        b2 = await case(intake, b, WINDOW, REFERRAL, 9)
        c1 = await case(intake, c, WINDOW, AID, 16, applicant_id=d, relation="spouse",
                        proof_seen="marriage_certificate")
        hardship = await case(intake, a, WINDOW, "SA-HARDSHIP-SUBSIDY", 16)
        for day in ("2026-03-02", "2026-03-04", "2026-03-06"):
            await session(intake, a1, day)
        await placement(intake, a1, "2026-03-10", "enterprise")
        await session(intake, b1, "2026-03-03")
        await session(intake, b1, "2026-03-05")
        await session(intake, b1, "2026-03-06", counter=WINDOW)
        await placement(intake, b1, "2026-03-12", "public_welfare_job")
        await session(intake, b2, "2026-03-09")
        await placement(intake, b2, "2026-03-20", "flexible")
        await session(intake, c1, "2026-03-16")
        last = await session(intake, a1, "2026-04-01")

        # Not employment aid, and one placement per case: refused, nothing counted.
        refused = await intake.post(f"/cases/{hardship}/guidance-sessions",
                                    headers=headers(f"k-{uuid.uuid4().hex}"),
                                    json={"held_on": "2026-03-16"})
        assert refused.status_code == 409 and "employment_aid_only" in refused.text
        again = await intake.post(f"/cases/{a1}/placement", headers=headers(
            f"k-{uuid.uuid4().hex}"), json={"employed_on": "2026-03-11",
                                            "employer_type": "enterprise"})
        assert again.status_code == 409 and "placed_once" in again.text

        r = await feedback.get("/figures/people", params={
            "from": "2026-03-01", "to": "2026-03-31", "after_intake": last})
        assert r.status_code == 200, r.text
        march = r.json()
        assert (march["guidance_visits"], march["people_placed"]) == (8, 2)
        assert march["counters"] == [
            {"counter_id": STUDIO, "guidance_visits": 5, "people_placed": 2},
            {"counter_id": WINDOW, "guidance_visits": 3, "people_placed": 1}]
        assert (march["beneficiaries"], march["cases"], march["cases_acting_for"]) == (3, 5, 1)

        r = await feedback.get("/figures/people", params={"from": "2026-04-01"})
        assert r.json()["guidance_visits"] == 1 and r.json()["people_placed"] == 0

        # Another center's supervisor sees only their own center.
        from tests.support import bearer
        other = bearer(settings, role="supervisor", center="SH-PD-LUJIAZUI", sub="sup-l")
        r = await feedback.get("/figures/people", headers=other,
                               params={"center_id": CENTER})
        assert r.status_code == 403, r.text

        # No personal data and no employer on the bus: kinds and opaque ids only.
        payloads = [e.payload for e in await stream_envelopes(settings)
                    if e.type in ("GuidanceSessionHeld", "PlacementRecorded")]
        assert len(payloads) == 12
        assert all(set(p) <= {"session_id", "held_on", "counter_id", "topic", "note",
                              "employed_on", "employer_type"} for p in payloads)

        # The figures' tables rebuilt from the log are the same.
        async with Rebuild(settings, READ_MODEL, batch_size=3) as rb:
            await rb.prepare(fresh=True)
            await rb.catch_up()
            diff = await rb.diff()
            assert diff.same, diff
            assert {t.table: t.rebuilt_rows for t in diff.tables} == {
                "fig_people_cases": 5, "fig_guidance_sessions": 9, "fig_placements": 3}
            await rb.discard()

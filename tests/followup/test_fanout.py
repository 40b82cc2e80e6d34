"""A policy change reaches every affected resident once: through a retry and a crash."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import pytest

from services.followup.domain import policy_follow_up_id
from services.followup.fanout import FanOut
from services.followup.main import create_app
from shared.kernel.clock import ManualClock
from shared.leadership import LeadershipLost
from shared.settings import Settings
from tests.followup.story import CENTER, at, center_day, key
from tests.support import (
    end_lock_session,
    headers,
    lock_free,
    running,
    stream_envelopes,
    wait_until,
)

SUBSIDY, ALLOWANCE, PENSION = ("SA-HARDSHIP-SUBSIDY", "SA-MINIMUM-LIVING-ALLOWANCE",
                               "PEN-RETIREMENT-CLAIM")


async def test_policy_fan_out_survives_a_retry_and_a_crash(settings: Settings) -> None:
    body = {"center_id": CENTER, "service_items": [SUBSIDY, ALLOWANCE],
            "summary": "困难补助标准上调", "effective_on": "2026-04-01"}
    # No fan-out in the background (ROLES without fanout): its first pass, late at start
    # under load, could take the change before the power cut is wired in. The test runs it.
    async with center_day(settings, at(2026, 3, 2, 9), followup_fanout_batch=3,
                          roles={"api", "workers"}) as center:
        affected = [await center.resident() for _ in range(7)]
        others = [await center.resident() for _ in range(2)]
        monday = at(2026, 3, 2, 9, 30)
        for i, resident in enumerate(affected):  # some residents came twice
            await center.open_case(monday, resident, item=SUBSIDY if i % 2 else ALLOWANCE)
            if i < 3:
                await center.open_case(monday, resident, item=SUBSIDY)
        for resident in others:
            await center.open_case(monday, resident, item=PENSION)

        k = key()
        first = await center.followup.post("/policy-changes", json=body, headers=headers(k))
        retry = await center.followup.post("/policy-changes", json=body, headers=headers(k))
        assert first.status_code == retry.status_code == 202, first.text
        assert retry.json() == first.json() | {"replayed": True}, "a retry is the same change"
        policy_id = uuid.UUID(first.json()["id"])
        r = await center.followup.get(f"/policy-changes/{policy_id}",
                                      params={"after": first.json()["position"]})
        assert r.json()["state"] == "fanning_out"
        await _cases_known(center.app, 12)

        # The power goes out after the second batch was written, before its cursor was saved.
        fanout = center.fanout
        saved = fanout._save_progress
        calls = 0

        async def power_cut(*args):  # type: ignore[no-untyped-def]
            nonlocal calls
            calls += 1
            if calls == 2:
                raise RuntimeError("power cut")
            return await saved(*args)

        fanout._save_progress = power_cut
        try:
            await fanout.once()
            raise AssertionError("the fan-out should have died")
        except RuntimeError as exc:
            assert str(exc) == "power cut"
        written = await _written(center.app, policy_id)
        # Two batches of three were written; the last one (a resident) was sent while the
        # second committed, so it may have been written too, but it is not counted.
        assert written in (6, 7), written
        r = await center.followup.get(f"/policy-changes/{policy_id}")
        assert r.json()["residents"] == 3, "only the first batch's cursor was saved"

    # Back up: the new process resumes after the last saved cursor.
    restarted = create_app(center.settings, ManualClock(at(2026, 3, 2, 10)))
    async with running(restarted) as api:
        await restarted.state.fanout.once()
        r = await api.get(f"/policy-changes/{policy_id}")
        assert r.json()["residents"] == 7
        await wait_until(lambda: _finished(api, policy_id), what="the fan-out to finish")
        items: list[dict] = []

        async def all_in_worklist() -> bool:
            nonlocal items
            r = await api.get("/followups", params={"source_id": str(policy_id), "limit": 50})
            items = r.json()["items"]
            return len(items) >= 7

        await wait_until(all_in_worklist, what="the outreach follow-ups in the worklist")
        assert sorted(f["resident_id"] for f in items) == sorted(map(str, affected))
        assert {f["follow_up_id"] for f in items} == {
            str(policy_follow_up_id(policy_id, resident)) for resident in affected}
        assert {(f["reason"], f["assigned_team"], f["due_at"][:16]) for f in items} == {
            ("policy_change", "followup-desk", "2026-03-04T01:00")}, "2 working days later"

    envelopes = await stream_envelopes(center.settings)
    _each_scheduled_once(envelopes, policy_id, affected)
    [published] = [e for e in envelopes if e.type == "PolicyChangePublished"]
    assert published.case_id is None and published.center_id == CENTER
    [done] = [e for e in envelopes if e.type == "PolicyChangeFannedOut"]
    assert done.payload == {"residents": 7}


async def _cases_known(app, n: int) -> None:  # type: ignore[no-untyped-def]
    async def check() -> bool:
        return await app.state.pool.fetchval("SELECT count(*) FROM case_refs") >= n
    await wait_until(check, what="the cases in follow-up's read model")


async def _written(app, policy_id: uuid.UUID) -> int:  # type: ignore[no-untyped-def]
    runtime = app.state.runtime
    return await app.state.pool.fetchval(
        f'SELECT count(*) FROM "{runtime.relay.schema}"."{runtime.relay.table}"'
        " WHERE originator_version = 1 AND originator_id <> $1", policy_id)


async def _finished(api, policy_id: uuid.UUID) -> bool:  # type: ignore[no-untyped-def]
    r = await api.get(f"/policy-changes/{policy_id}")
    return r.json()["state"] == "fanned_out"


async def test_a_fan_out_process_of_its_own_reaches_every_resident(settings: Settings) -> None:
    """As compose and k8s run follow-up: its API and workers (``ROLES=api,workers``) leave
    policy changes to a process of their own (``ROLES=fanout``), whose writes then wait
    behind no relay and no consumer on its event loop; the workers publish and project them."""
    body = {"center_id": CENTER, "service_items": [SUBSIDY], "summary": "困难补助标准上调",
            "effective_on": "2026-04-01"}
    async with center_day(settings, at(2026, 3, 2, 9), roles={"api", "workers"},
                          followup_fanout_stall_s=0.5) as center:
        assert "fanout" not in center.app.state.runtime.background.tasks
        affected = [await center.resident() for _ in range(3)]
        for resident in affected:
            await center.open_case(at(2026, 3, 2, 9, 30), resident, item=SUBSIDY)
        await _cases_known(center.app, 3)
        r = await center.followup.post("/policy-changes", json=body, headers=headers(key()))
        assert r.status_code == 202, r.text
        policy_id = uuid.UUID(r.json()["id"])
        r = await center.followup.get(f"/policy-changes/{policy_id}",
                                      params={"after": r.json()["position"]})
        assert r.json()["state"] == "fanning_out"
        # No process fans it out yet: past FOLLOWUP_FANOUT_STALL_S /ready says so.
        reasons: list[str] = []

        async def stalled() -> bool:
            nonlocal reasons
            r = await center.followup.get("/ready")
            reasons = r.json()["reasons"]
            return r.status_code == 200 and r.json()["status"] == "degraded"

        await wait_until(stalled, what="/ready to say the policy change stands still")
        assert any("ROLES=fanout" in reason for reason in reasons), reasons

        fanout = create_app(center.settings.model_copy(update={"roles": {"fanout"}}),
                            center.clock)
        async with running(fanout):
            tasks = fanout.state.runtime.background.tasks
            assert "fanout" in tasks and not {"relay", "scheduler"} & set(tasks)
            await wait_until(lambda: _finished(center.followup, policy_id),
                             what="the fan-out process to finish")
        r = await center.followup.get("/ready")
        assert not any("policy change" in reason for reason in r.json()["reasons"]), r.json()
        items: list[dict] = []

        async def all_in_worklist() -> bool:
            nonlocal items
            r = await center.followup.get("/followups", params={"source_id": str(policy_id)})
            items = r.json()["items"]
            return len(items) >= 3

        await wait_until(all_in_worklist, what="the workers to project the follow-ups")
        assert sorted(f["resident_id"] for f in items) == sorted(map(str, affected))


async def test_a_fan_out_whose_lock_session_ended_stops_before_its_next_batch(
        settings: Settings) -> None:
    """PostgreSQL ends the session holding a policy's fan-out lock (a restart, a failover, a
    proxy's idle cut) in the middle of the walk: another replica may take the lock and walk
    the policy. The walk that lost it writes no further batch and does not finish the policy;
    the next pass (here another replica's) takes the lock and finishes it, counting each
    resident once. Before, the walk never looked at its lock's connection again: it went on
    writing batches and finished the policy with no lock, beside whoever took it."""
    body = {"center_id": CENTER, "service_items": [SUBSIDY],
            "summary": "困难补助标准上调", "effective_on": "2026-12-21"}
    async with center_day(settings, at(2026, 12, 20, 9), followup_fanout_batch=2,
                          roles={"api", "workers"}) as center:  # Sunday 20 December
        affected = [await center.resident() for _ in range(7)]
        for resident in affected:
            await center.open_case(at(2026, 12, 20, 9, 30), resident, item=SUBSIDY)
        r = await center.followup.post("/policy-changes", json=body, headers=headers(key()))
        assert r.status_code == 202, r.text
        policy_id = uuid.UUID(r.json()["id"])
        await _cases_known(center.app, 7)
        await wait_until(lambda: _arrived(center.app, policy_id), what="the policy change")

        fanout, pool = center.fanout, center.app.state.pool
        saved, schedule = fanout._save_progress, fanout.followups.schedule_each
        ended = asyncio.Event()
        after_end = 0

        async def first_save_ends_the_lock(*args):  # type: ignore[no-untyped-def]
            if not ended.is_set():
                # While it holds the lock, another replica's pass stands aside ...
                assert await FanOut(pool, fanout.followups, batch=2,
                                    interval_s=3600).fan_out(policy_id) == 0
                # ... then PostgreSQL ends the lock's session, the walk within it.
                assert await end_lock_session(pool, f"sixstep-fanout:{policy_id}") == 1
                ended.set()
            return await saved(*args)

        async def counted(plans):  # type: ignore[no-untyped-def]
            nonlocal after_end
            after_end += ended.is_set()
            return await schedule(plans)

        fanout._save_progress = first_save_ends_the_lock
        fanout.followups.schedule_each = counted
        try:
            with pytest.raises(LeadershipLost):
                await fanout.fan_out(policy_id)
        finally:
            fanout._save_progress, fanout.followups.schedule_each = saved, schedule
        assert after_end == 0, "no batch written once the lock's session was gone"
        r = await center.followup.get(f"/policy-changes/{policy_id}")
        assert r.json()["state"] == "fanning_out" and r.json()["residents"] == 2

        # Another replica's pass takes the lock and goes on from the saved cursor.
        other = FanOut(pool, fanout.followups, batch=2, interval_s=3600)
        assert await other.fan_out(policy_id) == 1
        r = await center.followup.get(f"/policy-changes/{policy_id}")
        assert r.json()["state"] == "fanned_out" and r.json()["residents"] == 7
        assert await lock_free(pool, f"sixstep-fanout:{policy_id}")

    envelopes = await stream_envelopes(center.settings)
    _each_scheduled_once(envelopes, policy_id, affected)
    [done] = [e for e in envelopes if e.type == "PolicyChangeFannedOut"]
    assert done.payload == {"residents": 7}


async def _arrived(app, policy_id: uuid.UUID) -> bool:  # type: ignore[no-untyped-def]
    return bool(await app.state.pool.fetchval(
        "SELECT count(*) FROM policy_changes WHERE policy_id = $1", policy_id))


def _each_scheduled_once(envelopes, policy_id: uuid.UUID, affected) -> None:  # type: ignore[no-untyped-def]
    scheduled = Counter(e.payload["resident_id"] for e in envelopes
                        if e.type == "FollowUpScheduled"
                        and e.payload["source_id"] == str(policy_id))
    assert sorted(scheduled) == sorted(map(str, affected)) and set(scheduled.values()) == {1}

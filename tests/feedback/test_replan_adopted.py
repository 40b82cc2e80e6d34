"""A re-planning that failed in a process that then went is retried by another (replan57).
Feedback's replica A, an API process of its own, answers the reload of 2027's schedule while
the store takes no write: the rectification's revision fails, and the re-planning is written
to the service's schema as pending (its days, its calendars, since when, tries, the last
error), which ``GET /ops/calendar`` (``sixstep calendar status``) shows on any replica. A is
killed (-9) before its own retry gets through. Replica B, leading ``calendar-replan``, takes
the re-planning nobody tries any more and records the revised deadline, once. Until then the
retry lived only in A's memory: with A gone nothing retried it until a worker's next start or
the next reload, and the deadline stayed the one counted on the provisional year."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import httpx

from services.feedback.main import create_app as feedback_app
from shared.runtime import replan_pending
from shared.runtime.lifecycle import Runtime
from shared.settings import Settings
from tests.faults.harness import ROOT, ServiceProcess, service_env
from tests.feedback.test_appeal_window import on_sunday
from tests.feedback.test_clock_set_back import reviewed_on_monday_28
from tests.support import bearer, running, stream_envelopes, wait_until
from tools.devservers import adopt_process, free_port

MONDAY_4 = "2027-01-04T10:00:00+08:00"


def replica_a(settings: Settings, holidays: Path, logs: Path) -> ServiceProcess:
    """Feedback as an API process of its own (ROLES=api: it leads nothing), its clock on
    Monday 4 January 2027 at 10:00."""
    a = ServiceProcess("feedback", "feedback-a",
                       service_env(settings, ROLES="api", HOLIDAYS_FILE=str(holidays)),
                       free_port(), logs / "feedback-a.log", forked=False)
    with a.log_path.open("ab") as log:
        a.proc = adopt_process(subprocess.Popen(
            [sys.executable, "-m", "tests.faults.clocked", "feedback", MONDAY_4], cwd=ROOT,
            env={**a.env, "FEEDBACK_PORT": str(a.port)}, stdin=subprocess.DEVNULL,
            stdout=log, stderr=subprocess.STDOUT))
    return a


async def test_a_re_planning_failed_in_a_process_killed_since_is_retried_by_another_replica(
        settings: Settings, tmp_path: Path) -> None:
    # Reviewed on Monday 28 December 2026: due Tuesday 5 January 2027 (29-31, 4, 5), a
    # provisional year. On Monday 4 January 2027's schedule is published with the 5th off (an
    # illustrative one) and reloaded on replica A while feedback's store takes no write (its
    # events table locked past WRITE_TIMEOUT_S, 5 s as deployed).
    async with reviewed_on_monday_28(settings, tmp_path) as day:
        settings, b = day.settings, day.feedback
        a = replica_a(settings, day.holidays, tmp_path)
        try:
            await a.wait_ready()
            day.clock.set(datetime.fromisoformat(MONDAY_4))
            day.publish_2027_with_the_5th_off()
            ops = bearer(settings, role="ops", center=None)
            async with day.store_takes_no_write():  # then the obstacle goes: the lock let go
                async with httpx.AsyncClient(timeout=60, trust_env=False) as client:
                    r = await client.post(f"{a.url}/ops/calendar/reload", headers=ops)
                assert r.status_code == 200, r.text
                said = r.json()
                assert said["replanned"]["feedback"]["rectifications_failed"] == 1
                assert (said["failed"], said["retry_scheduled"]) == (1, True)
                pending = said["calendar"]["replan_pending"]
                assert (pending["attempts"], pending["failed"]) == (1, 1), pending
                assert pending["last_error"] and "(1 item)" in pending["last_error"]
                # A killed before its own retry (a second away) gets through.
                a.kill9()
                # Any replica says it: B's status reads the service's pending re-planning.
                status = (await b.get("/ops/calendar", headers=ops)).json()
                assert status["replan_pending"]["since"] == pending["since"]

            async def revised() -> list:
                return [(e.payload["deadline_on"], e.payload["basis"])
                        for e in await stream_envelopes(settings)
                        if e.type == "RectificationDeadlineRevised"]
            # B takes the re-planning A stopped trying: its next try late by ADOPT_AFTER_S.
            await wait_until(revised, timeout=90, what="the re-planning retried by replica B")
            assert await revised() == [("2027-01-06", "official")]

            async def done() -> bool:
                status = (await b.get("/ops/calendar", headers=ops)).json()
                return status["replan_pending"] is None
            # B's adoption takes the row away, also when the revision above was A's own write
            # (its commit held behind the lock, answered OutcomeUnknown, committed once the
            # lock let go as A was killed): then B adopts only once the row's next try is
            # ADOPT_AFTER_S late, seen at its next POLL_S look (~16 s after A's failure).
            await wait_until(done, timeout=60, what="the pending re-planning gone")
            assert (await b.get("/ready")).json()["checks"]["degraded"] == []
        except BaseException:
            print(a.tail(60))
            raise
        finally:
            await a.stop()


async def test_a_replica_adopts_no_re_planning_while_another_replicas_try_of_it_runs(
        settings: Settings, tmp_path: Path) -> None:
    # A re-planning whose try runs for long (a city's: minutes) on replica A looks left alone
    # by its next-try time; replica B, its worker running calendar-replan, must not run it
    # beside A's try: the try's lock, held by A's session, says A is on it.
    settings, clock, sender, _, _ = on_sunday(settings)
    a_app, b_app = (feedback_app(settings, sender=sender, clock=clock) for _ in range(2))
    async with running(a_app), running(b_app):
        a: Runtime = a_app.state.runtime
        b: Runtime = b_app.state.runtime
        inside, go_on = asyncio.Event(), asyncio.Event()
        passes = b_passes = 0

        async def gate() -> dict[str, int]:
            nonlocal passes
            passes += 1
            if passes == 1:
                return {"part_failed": 1}  # the reload's: pending, A's retry in a second
            inside.set()  # A's retry, held here as long as the test likes
            await go_on.wait()
            return {}

        async def counted() -> dict[str, int]:
            nonlocal b_passes
            b_passes += 1
            return {}

        a.calendar_hooks = {"gate": gate, **a.calendar_hooks}
        b.calendar_hooks = {"counted": counted, **b.calendar_hooks}
        said = await a.reload_calendars()
        assert said["failed"] == 1
        await inside.wait()
        await a.pool.execute("UPDATE calendar_replan_pending"
                             " SET next_try_at = now() - interval '1 minute'")
        assert (row := await replan_pending.read(b.pool, "feedback")) and row.orphaned
        await b.replanner.try_again(adopting=True)  # what B's calendar-replan loop runs on it
        assert b_passes == 0
        go_on.set()

        async def through() -> bool:
            return (a.replan_pending.since is None
                    and await replan_pending.read(a.pool, "feedback") is None)
        await wait_until(through, what="A's retry through, the pending row gone")
        assert (passes, b_passes) == (2, 0)

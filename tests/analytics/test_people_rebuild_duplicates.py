"""feedback.people rebuilt by COPY from a log that opens cases again: a case an earlier batch
opened makes the batch's COPY fail mid-stream, and the batch is applied by the live handler
in a clean transaction (alone, beside the other read models of ``--all``, and under the
switch's lock). The tables are the live handler's whatever the batch's path: the first
opening of a case kept, in one batch or across two."""

from __future__ import annotations

import contextlib
import uuid
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import orjson

from shared.analytics import rebuild
from shared.analytics.rebuild import Rebuild, q
from shared.bus.jetstream import connect, ensure_streams, event_subject
from shared.readmodels.readmodel import load_read_model, make_tables
from shared.settings import Settings
from tests.analytics.support import HUAMU, UNEMPLOYMENT, CaseStory
from tests.analytics.test_bulk_rebuild import differing, step

SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YEARS_EVE = datetime(2026, 12, 31, 23, 30, tzinfo=SHANGHAI)  # 31 Dec there, 15:30 UTC
LEAP_DAY = datetime(2028, 2, 29, 9, tzinfo=SHANGHAI)
BATCH = 1000


def opened(case_id: uuid.UUID, when: datetime, *, version: int = 3,
           counter: str = "window-3") -> dict[str, Any]:
    """A CaseOpened as the relay published it at ``version`` (v1 and v2 are upcast: the
    applicant is the beneficiary), for a new resident each time."""
    resident = str(uuid.uuid4())
    payload: dict[str, Any] = {"center_id": HUAMU, "counter_id": counter,
                               "clerk_id": "clerk-017", "channel": "counter",
                               "service_item": UNEMPLOYMENT, "resident_id": resident}
    if version >= 2:
        payload["resident_basis"] = "registration"
    if version >= 3:  # every third acting for another resident (代办)
        payload["applicant_id"] = str(uuid.uuid4()) if when.second % 3 == 0 else resident
        payload["applicant_basis"] = "registration"
    story = CaseStory(HUAMU, UNEMPLOYMENT, when, case_id=case_id)
    return step("intake", "CaseOpened", story, case_id, 1, when, payload,
                schema_version=version)


def session(case_id: uuid.UUID, when: datetime) -> dict[str, Any]:
    story = CaseStory(HUAMU, UNEMPLOYMENT, when, case_id=case_id)
    return step("intake", "GuidanceSessionHeld", story, case_id, 2, when,
                {"session_id": str(uuid.uuid4()), "held_on": when.date().isoformat(),
                 "counter_id": "studio-1", "topic": "job_referral"})


def placed(case_id: uuid.UUID, when: datetime) -> dict[str, Any]:
    story = CaseStory(HUAMU, UNEMPLOYMENT, when, case_id=case_id)
    return step("intake", "PlacementRecorded", story, case_id, 3, when,
                {"employed_on": when.date().isoformat(), "employer_type": "enterprise",
                 "counter_id": "studio-1"})


def reopening_log() -> tuple[list[dict[str, Any]], uuid.UUID, uuid.UUID]:
    """1,200 cases (codes with a tab, a newline and a backslash; v1, v2 and v3 openings)
    and their sessions and placements: the first batch and part of the second. Then, in
    the second batch's middle, the first case opened again by another resident (its COPY
    fails there, 440 rows in) and a session that reads it; 1,200 more cases; and in the
    third batch one case opened twice in a row with two residents (its COPY succeeds:
    the first is kept). Returns the log, the case opened again and the one opened twice."""
    cases = [uuid.uuid4() for _ in range(1200)]
    log: list[dict[str, Any]] = []
    for n, case_id in enumerate(cases):
        when = NEW_YEARS_EVE + timedelta(seconds=n)
        log.append(opened(case_id, when, version=1 + n % 3,
                          counter="win\t3\n\\N" if n % 7 == 0 else "window-3"))
        if n % 5 == 0:
            log.append(session(case_id, when) if n % 10 else placed(case_id, when))
    assert len(log) > BATCH + 400
    log += [opened(cases[0], LEAP_DAY), session(cases[0], LEAP_DAY)]
    twice = uuid.uuid4()
    for n in range(1200):
        log.append(opened(uuid.uuid4(), LEAP_DAY + timedelta(seconds=n)))
        if n == 700:  # in the third batch, which nothing else sends back
            log += [opened(twice, LEAP_DAY), opened(twice, LEAP_DAY + timedelta(hours=1))]
    return log, cases[0], twice


async def publish(settings: Settings, log: list[dict[str, Any]]) -> None:
    """Each event under its own message id (a republish past the duplicate window)."""
    nc = await connect(settings, "test-reopened")
    try:
        js = nc.jetstream()
        await ensure_streams(js, settings)
        for e in log:
            await js.publish(event_subject(settings, "intake", e["type"],
                                           uuid.UUID(e["case_id"])), orjson.dumps(e),
                             headers={"Nats-Msg-Id": f"reopened-{uuid.uuid4()}"})
    finally:
        await nc.close()


def first_resident(log: list[dict[str, Any]], case_id: uuid.UUID) -> uuid.UUID:
    return next(uuid.UUID(e["payload"]["resident_id"]) for e in log
                if e["type"] == "CaseOpened" and e["case_id"] == str(case_id))


async def test_a_case_opened_again_a_batch_later_is_kept_as_first_opened_in_a_rebuild_of_all(
        settings: Settings) -> None:
    """Rebuilt with the other read models the cases feed (``sixstep rebuild --all``), each
    on its own connection: the batch whose COPY met the case again is the live handler's,
    and the other models' rows of that batch are theirs too."""
    log, again, twice = reopening_log()
    await publish(settings, log)
    names = ["feedback.people", "feedback.figures", "intake"]
    conn = await asyncpg.connect(settings.database_url)
    try:
        live_built = {}
        for ref in names:
            async with Rebuild(settings, load_read_model(ref), batch_size=BATCH,
                               copy=False) as rb:
                staging = await rb.prepare(fresh=True)
                await rb.catch_up()
                assert await rb.skipped(limit=10) == [], ref
            kept = f"{settings.schema_prefix}live_{ref.replace('.', '_')}"
            await conn.execute(f"ALTER SCHEMA {q(staging)} RENAME TO {q(kept)}")
            live_built[ref] = kept
        async with contextlib.AsyncExitStack() as stack:
            rebuilds = [await stack.enter_async_context(
                Rebuild(settings, load_read_model(ref), batch_size=BATCH)) for ref in names]
            for rb in rebuilds:
                await rb.prepare(fresh=True)
            await rebuild.catch_up_together(rebuilds, batch_size=BATCH)
            people = rebuilds[0]
            assert people.fallbacks == 1  # the second batch; the third's COPY went through
            for ref, rb in zip(names, rebuilds, strict=True):
                assert rb.staging is not None
                assert await differing(conn, live_built[ref], rb.staging) == {}, ref
            cases = f"{q(str(people.staging))}.fig_people_cases"
            for case_id in (again, twice):
                assert await conn.fetchval(
                    f"SELECT beneficiary_id FROM {cases} WHERE case_id = $1",
                    case_id) == first_resident(log, case_id)
            assert await conn.fetchval(  # the session of the case opened again reads it
                f"SELECT count(*) FROM {q(str(people.staging))}.fig_guidance_sessions"
                " WHERE case_id = $1 AND beneficiary_id = $2", again,
                first_resident(log, again)) == 1
            assert await conn.fetchval(
                f"SELECT count(*) FROM {cases} WHERE counter_id = $1", "win\t3\n\\N") == 172
            assert await conn.fetchval(f"SELECT opened_on::text FROM {cases} WHERE case_id ="
                                       " $1", uuid.UUID(log[0]["case_id"])) == "2026-12-31"
    finally:
        await conn.close()


async def test_a_case_opened_again_while_the_switch_holds_the_lock_keeps_its_first_opening(
        settings: Settings) -> None:
    """The switch applies the last events under its lock, in its own transaction: a case
    opened again there fails the COPY inside that transaction, and the live handler still
    applies the batch (a savepoint, not an aborted transaction): the switch goes through,
    the first opening kept and the new case there."""
    log, _, _ = reopening_log()
    log = log[:200]
    await publish(settings, log)
    model = load_read_model("feedback.people")
    live = model.schema(settings)
    first = uuid.UUID(log[0]["case_id"])
    newcomer = uuid.uuid4()
    conn = await asyncpg.connect(settings.database_url)
    try:
        await make_tables(conn, live, model.ddl)
        async with Rebuild(settings, model, batch_size=BATCH) as rb:
            await rb.prepare(fresh=True)
            await rb.catch_up()
            checked = rb._on_its_stream  # the last step before the swap takes its lock

            async def opened_again_now() -> None:
                await publish(settings, [opened(first, LEAP_DAY), opened(newcomer, LEAP_DAY)])
                await checked()

            rb._on_its_stream = opened_again_now  # type: ignore[method-assign]
            assert (await rb.switch()).tables
            assert rb.fallbacks == 1
        rows = {r["case_id"]: r["beneficiary_id"] for r in await conn.fetch(
            f"SELECT case_id, beneficiary_id FROM {q(live)}.fig_people_cases")}
        assert rows[first] == first_resident(log, first)
        assert newcomer in rows and len(rows) == 1 + sum(
            e["type"] == "CaseOpened" for e in log)
    finally:
        await conn.close()

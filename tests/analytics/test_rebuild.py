"""An analyst rebuilds intake's read model from the log while the counter keeps working,
and looks at a case as it stood earlier in the day."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx

from services.intake.main import create_app
from services.intake.projections import READ_MODEL
from shared.analytics.rebuild import RETIRED, Rebuild
from shared.analytics.timetravel import state_as_of
from shared.readmodels.readmodel import make_tables
from shared.settings import Settings
from tests.support import headers, register_resident, running

CENTER = "SH-PD-HUAMU"


async def post(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    r = await client.post(path, json=body, headers=headers(f"k-{uuid.uuid4().hex}"))
    assert r.status_code in (200, 201), r.text
    return r.json()


async def a_visit(client: httpx.AsyncClient, emotion: str = "upset",
                  resolve: bool = True) -> tuple[str, int]:
    opened = await post(client, "/cases", {
        "center_id": CENTER, "counter_id": "window-3", "clerk_id": "clerk-017",
        "channel": "counter", "service_item": "SA-HARDSHIP-SUBSIDY",
        "resident_id": await register_resident(client)})
    case = f"/cases/{opened['id']}"
    await post(client, f"{case}/hear", {"words": "想申请困难补助"})
    await post(client, f"{case}/concerns", {"emotion": emotion, "urgency": "high"})
    last = await post(client, f"{case}/guidance", {"policy_basis": "条例",
                                                  "eligibility": "eligible"})
    if resolve:
        last = await post(client, f"{case}/resolve", {
            "outcome": "resolved", "explanation": "已办结", "emotion_defused": True})
    return opened["id"], last["position"]


async def read(client: httpx.AsyncClient, case_id: str, after: int) -> dict[str, Any]:
    r = await client.get(f"/cases/{case_id}", params={"after": after})
    assert r.status_code == 200, r.text
    return r.json()


async def test_rebuild_compares_then_switches_while_the_counter_keeps_working(
        settings: Settings) -> None:
    live = settings.schema_for("intake")
    async with running(create_app(settings)) as client:
        visits = [await a_visit(client) for _ in range(4)]
        top = max(p for _, p in visits)
        await read(client, visits[-1][0], top)

        async with Rebuild(settings, READ_MODEL, batch_size=7) as rb:
            await rb.prepare()
            await rb.catch_up()
            diff = await rb.diff()
            assert diff.same, diff
            assert {t.table: t.rebuilt_rows for t in diff.tables} == {
                "cases": 4, "case_timeline": 24, "resident_hints": 0}

        # An old projection bug left the live view wrong for two cases.
        (first, _), (second, _) = visits[0], visits[1]
        conn = await asyncpg.connect(settings.database_url)
        try:
            await conn.execute(f'UPDATE "{live}".cases SET outcome = $2 WHERE case_id = $1',
                               uuid.UUID(first), "cannot_be_resolved")
            await conn.execute(f'DELETE FROM "{live}".case_timeline WHERE case_id = $1'
                               " AND version = 2", uuid.UUID(second))
        finally:
            await conn.close()

        async with Rebuild(settings, READ_MODEL, batch_size=7) as rb:
            staging = await rb.prepare()
            assert rb.resumed, "the unfinished rebuild is picked up again"
            await rb.catch_up()
            diff = await rb.diff()
            found = {t.table: t for t in diff.tables}
            assert found["cases"].changed == 1 and found["cases"].only_live == 0
            assert found["cases"].samples[0]["columns"]["outcome"] == ("cannot_be_resolved",
                                                                      "resolved")
            assert found["case_timeline"].only_rebuilt == 1

            # Switch while residents keep coming: writes before, during and after.
            async def counter_day() -> list[tuple[str, int]]:
                return [await a_visit(client, emotion="calm") for _ in range(6)]

            # Another consumer of the schema holds an event back behind a retry.
            held = ("intake-plans", 10**9, uuid.uuid4(), "intake", 1)
            await rb.conn.execute(f'INSERT INTO "{live}".consumer_held (consumer, seq, key,'
                                  " service, position) VALUES ($1, $2, $3, $4, $5)", *held)
            writer = asyncio.create_task(counter_day())
            await asyncio.sleep(0.05)
            switched = await rb.switch()
            more = await writer
            assert switched.paused_consumer and switched.retired.startswith(f"{live}__old_")
            assert staging not in await rb.schemas()
            # It still holds it back: the switch hands over the rebuilt consumer's own.
            assert [tuple(r) for r in await rb.conn.fetch(
                f'SELECT consumer, seq, key, service, position FROM "{live}".consumer_held'
            )] == [held]

        fixed = await read(client, first, 0)
        assert fixed["outcome"] == "resolved"
        assert len((await read(client, second, 0))["timeline"]) == 6
        # The live consumer went on from the rebuilt tracking: later writes are applied once.
        latest, position = await a_visit(client, resolve=False)
        assert (await read(client, latest, position))["stage"] == "guided"
        for case_id, pos in [*more, (latest, position)]:
            assert len((await read(client, case_id, pos))["timeline"]) >= 4

        async with Rebuild(settings, READ_MODEL) as rb:
            await rb.prepare(fresh=True)
            await rb.catch_up()
            diff = await rb.diff()
            assert diff.same and diff.lagging_keys == 0, diff
            assert {t.table: t.live_rows for t in diff.tables} == {
                "cases": 11, "case_timeline": 65, "resident_hints": 0}
            await rb.discard()


async def test_two_switches_in_the_same_second_retire_to_two_schemas(
        settings: Settings) -> None:
    """An analyst switches, finds one more fix, and switches again straight away: the clock
    still reads the same second (here: the same microsecond)."""
    live = settings.schema_for("intake")
    moment = datetime(2026, 12, 4, 3, 30, 0, 123456, tzinfo=UTC)
    async with running(create_app(settings)) as client:
        case_id, position = await a_visit(client)
        await read(client, case_id, position)
        retired = []
        for _ in range(2):
            async with Rebuild(settings, READ_MODEL, clock=lambda: moment) as rb:
                await rb.prepare()
                await rb.catch_up()
                retired.append((await rb.switch()).retired)
                # The retired schemas, oldest first: what a clean-up keeps or drops.
                assert await rb.schemas(RETIRED) == retired
        assert retired[0] != retired[1], retired
        assert all(r.startswith(f"{live}__old_intake-cases_20261204T033000123456")
                   for r in retired)
        assert (await read(client, case_id, position))["outcome"] == "resolved"

        async with Rebuild(settings, READ_MODEL) as rb:
            await rb.prepare(fresh=True)
            await rb.catch_up()
            assert (await rb.diff()).same
            await rb.discard()


async def test_a_dry_run_kept_from_the_release_before_an_upgrade_is_begun_again(
        settings: Settings) -> None:
    """The operator compared the views before the upgrade (``rebuild --all --dry-run`` keeps
    its staging schemas), upgraded, and compares again: the kept schema was begun with the
    old release's DDL, so nothing of it can go on, and the rebuild starts over by itself
    (it exited 1 with "start over with --fresh", the morning after every upgrade that
    changed a read model's tables)."""
    async with running(create_app(settings)) as client:
        case_id, position = await a_visit(client)
        await read(client, case_id, position)
        # The release before had an index since dropped (cases_center_status, stop 46).
        before = dataclasses.replace(READ_MODEL, ddl=[
            *READ_MODEL.ddl,
            "CREATE INDEX IF NOT EXISTS cases_center_status ON cases (center_id, status)"])
        async with Rebuild(settings, before) as rb:
            kept = await rb.prepare()
            await rb.catch_up()

        async with Rebuild(settings, READ_MODEL) as rb:
            staging = await rb.prepare()
            assert rb.started_over == kept and not rb.resumed
            assert await rb.schemas() == [staging]
            await rb.catch_up()
            diff = await rb.diff()
            assert diff.same, diff
            await rb.discard()


async def test_a_case_as_it_stood_at_any_moment(settings: Settings) -> None:
    async with running(create_app(settings)) as client:
        opened = await post(client, "/cases", {
            "center_id": CENTER, "counter_id": "window-3", "clerk_id": "clerk-017",
            "channel": "counter", "service_item": "SA-HARDSHIP-SUBSIDY",
            "occurred_at": "2026-03-02T09:00:00+08:00"})
        case_id = uuid.UUID(opened["id"])
        case = f"/cases/{case_id}"
        before = datetime.now(UTC)
        await post(client, f"{case}/hear", {"words": "想申请困难补助",
                                            "occurred_at": "2026-03-02T09:02:00+08:00"})
        await post(client, f"{case}/concerns", {"emotion": "angry", "urgency": "high",
                                                "occurred_at": "2026-03-02T09:05:00+08:00"})
        middle = datetime.now(UTC)
        last = await post(client, f"{case}/resolve", {
            "outcome": "resolved", "explanation": "已办结", "emotion_defused": True,
            "occurred_at": "2026-03-02T09:30:00+08:00"})
        await read(client, str(case_id), last["position"])

    # What the system showed at each moment (recorded clock) ...
    then = await state_as_of(settings, READ_MODEL, case_id, before)
    [row] = then.tables["cases"]
    assert then.events == 1 and row["stage"] == "opened" and row["status"] == "open"
    then = await state_as_of(settings, READ_MODEL, case_id, middle)
    [row] = then.tables["cases"]
    assert (row["stage"], row["emotion_on_arrival"], row["status"]) == (
        "concerns_noted", "angry", "open")
    assert [t["type"] for t in then.tables["case_timeline"]] == [
        "CaseOpened", "RequestHeard", "ConcernsNoted"]
    now = await state_as_of(settings, READ_MODEL, case_id, datetime.now(UTC))
    assert now.tables["cases"][0]["status"] == "resolved"

    # ... and what had happened by the counter's clock.
    at_nine_ten = datetime.fromisoformat("2026-03-02T09:10:00+08:00")
    then = await state_as_of(settings, READ_MODEL, case_id, at_nine_ten, clock="occurred")
    assert then.tables["cases"][0]["stage"] == "concerns_noted"
    earlier = datetime.fromisoformat("2026-03-02T08:59:00+08:00")
    assert not (await state_as_of(settings, READ_MODEL, case_id, earlier,
                                  clock="occurred")).exists


async def test_feedback_figures_rebuild_finds_only_real_differences(settings: Settings) -> None:
    """``sixstep rebuild feedback.figures --dry-run`` after a small history: the same rows,
    until a live row is wrong."""
    from services.feedback import figures
    from shared.analytics.replay import Replay
    from shared.readmodels.readmodel import load_read_model
    from tests.analytics.support import aftercare, month_of_march_stories, publish

    model = load_read_model("feedback.figures")
    assert model is figures.READ_MODEL
    stories = month_of_march_stories()
    await publish(settings, stories, aftercare(stories))
    live = settings.schema_for("feedback")
    conn = await asyncpg.connect(settings.database_url)
    try:  # the live view, as its consumer would have built it
        await make_tables(conn, live, figures.DDL)
        projection = figures.FiguresProjection(settings.tz)
        async with Replay(settings) as replay:
            async for batch in replay:
                await projection.apply(conn, batch.events)

        async with Rebuild(settings, model, batch_size=9) as rb:
            await rb.prepare()
            await rb.catch_up()
            diff = await rb.diff()
            assert diff.same, diff
            assert {t.table: t.rebuilt_rows for t in diff.tables} == {
                "fig_cases": 10, "fig_surveys": 8, "fig_rectifications": 2,
                "fig_followups": 7, "fig_visits": 0, "fig_reported": 0, "fig_late_events": 0,
                "fig_closed_marks": 0, "fig_day_totals": 8, "fig_day_totals_filled": 1,
                "fig_day_totals_late_followups_recounted": 1}

            await conn.execute("UPDATE fig_surveys SET level = 'satisfied'"
                               " WHERE level = 'very_dissatisfied'")
            found = {t.table: t for t in (await rb.diff()).tables}
            assert found["fig_surveys"].changed == 1
            assert found["fig_surveys"].samples[0]["columns"] == {
                "level": ("satisfied", "very_dissatisfied")}
            assert all(t.same for name, t in found.items() if name != "fig_surveys")
            await rb.discard()
    finally:
        await conn.close()

    # Follow-up's worklist and feedback's views fold the same history without refusing any.
    for ref, rows in (("followup", {"followups": 7}),
                      ("feedback", {"surveys": 8, "rectifications": 2})):
        async with Rebuild(settings, load_read_model(ref)) as rb:
            await rb.prepare()
            await rb.catch_up()
            assert (await rb.state())["skipped"] == 0, await rb.skipped()
            rebuilt = {t.table: t.rebuilt_rows for t in (await rb.diff()).tables}
            assert rows.items() <= rebuilt.items(), (ref, rebuilt)
            await rb.discard()

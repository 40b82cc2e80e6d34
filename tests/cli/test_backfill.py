"""``sixstep ops backfill`` (the upgrade's once-only read of the log into the tables it added)
runs as the other long runs do: its progress on stderr, Ctrl-C finishes the batch in hand and
exits 130 with nothing half-written that the rerun does not put right; and it says what is
wrong and exits 2 rather than a traceback when it cannot find the services' schemas (another
``SCHEMA_PREFIX``, or the new release not started yet)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import uuid
from datetime import datetime
from typing import Any

import asyncpg
import orjson
import pytest

from services.followup import consumer as followup_consumer
from shared.bus.jetstream import connect, ensure_streams, event_subject
from shared.contracts import event_id_for
from shared.settings import Settings
from tests.analytics.support import HUAMU, SHANGHAI
from tests.cli.in_process import ran
from tests.faults.harness import service_env


def test_a_backfill_without_the_services_tables_names_them_and_exits_2(
        settings: Settings) -> None:
    """The stream is there (``ops apply``), the services never ran under this
    ``SCHEMA_PREFIX``: nothing to write into. Before, a traceback from PostgreSQL (no schema
    selected to create ``due_sources_backfill`` in), after it had maybe written a part."""
    env = service_env(settings)
    assert ran(["ops", "apply"], env=env).code == 0
    out = ran(["ops", "backfill"], env=env)
    assert out.code == 2, out.out + out.err
    said = out.out + out.err
    for schema in (settings.schema_for(s) for s in ("intake", "feedback", "followup")):
        assert schema in said, said
    assert "SCHEMA_PREFIX" in said, said


def _due_date_set(case_id: uuid.UUID, n: int, source: str, position: int) -> dict[str, Any]:
    at = datetime(2026, 3, 2, 9, n, tzinfo=SHANGHAI)
    return {"event_id": str(event_id_for("intake", case_id, n)), "type": "CaseDueDateSet",
            "version": 1, "service": "intake", "position": position,
            "aggregate_id": str(case_id), "aggregate_version": n, "case_id": str(case_id),
            "center_id": HUAMU, "occurred_at": at.isoformat(),
            "recorded_at": at.isoformat(), "causation_id": f"k-{case_id.hex[:8]}-{n}",
            "correlation_id": None, "actor": "director-02",
            "payload": {"due_on": "2026-03-20", "source": source,
                        "cause": "moved" if source == "moved" else "guidance"}}


async def _log_and_tables(settings: Settings, case_id: uuid.UUID) -> None:
    """The services' tables as the new release makes them (only the columns the backfill
    writes), follow-up's row of a case read before ``due_source`` was, and its two due
    dates on the log: the item's days, then moved by hand."""
    conn = await asyncpg.connect(settings.database_url)
    try:
        for service, ddl in (
                ("intake", "CREATE TABLE case_helpers (case_id uuid, actor text,"
                           " PRIMARY KEY (case_id, actor))"),
                ("feedback", "CREATE TABLE case_help_tasks (case_id uuid, task_id uuid,"
                             " read_up_to bigint, PRIMARY KEY (case_id, task_id));"
                             " CREATE TABLE intake_cases (case_id uuid, served_by text[])"),
                ("followup", "CREATE TABLE case_refs (case_id uuid PRIMARY KEY,"
                             " due_source text)")):
            schema = settings.schema_for(service)
            await conn.execute(f'CREATE SCHEMA "{schema}"; SET search_path TO "{schema}"; {ddl}')
        await conn.execute("INSERT INTO case_refs VALUES ($1, NULL)", case_id)
    finally:
        await conn.close()
    nc = await connect(settings, "test-backfill")
    try:
        js = nc.jetstream()
        await ensure_streams(js, settings)
        for n, source in ((1, "item_days"), (2, "moved")):
            e = _due_date_set(case_id, n, source, n)
            await js.publish(event_subject(settings, "intake", e["type"], case_id),
                             orjson.dumps(e), headers={"Nats-Msg-Id": f"intake:{n}"})
    finally:
        await nc.close()


async def _due_source(settings: Settings, case_id: uuid.UUID) -> str | None:
    conn = await asyncpg.connect(settings.database_url)
    try:
        return await conn.fetchval(  # type: ignore[no-any-return]
            f'SELECT due_source FROM "{settings.schema_for("followup")}".case_refs'
            " WHERE case_id = $1", case_id)
    finally:
        await conn.close()


def test_a_backfill_stopped_by_ctrl_c_writes_no_due_source_and_a_rerun_writes_the_last(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C while the first of a case's two due dates is read (one event a batch): the
    batch in hand is finished, follow-up's staged due sources are not written (only part of
    the log was read: the older ``item_days`` would be written, and a rerun fills only the
    empty ones), exit 130 as every long run; the rerun writes ``moved``, the log's last. Its
    progress is on stderr. Before, Ctrl-C ended it without a word of what was done or what to
    do, and nothing showed its progress however long the log."""
    case_id = uuid.uuid4()
    asyncio.run(_log_and_tables(settings, case_id))
    staged = followup_consumer.backfill_due_sources

    async def interrupted(conn: asyncpg.Connection, events: list[Any], seqs: list[int]) -> None:
        if any(e.type == "CaseDueDateSet" for e in events):
            monkeypatch.setattr(followup_consumer, "backfill_due_sources", staged)
            os.kill(os.getpid(), signal.SIGINT)  # the operator's Ctrl-C
        await staged(conn, events, seqs)

    monkeypatch.setattr(followup_consumer, "backfill_due_sources", interrupted)
    env = service_env(settings)
    stopped = ran(["ops", "backfill", "--batch", "1"], env=env)
    assert stopped.code == 130, stopped.out + stopped.err
    assert "Run `sixstep ops backfill` again" in stopped.out, stopped.out
    assert asyncio.run(_due_source(settings, case_id)) is None
    again = ran(["ops", "backfill", "--batch", "1"], env=env)
    assert again.code == 0, again.out + again.err
    assert asyncio.run(_due_source(settings, case_id)) == "moved"
    assert re.search(r"backfill .* 2/2", again.err), again.err


async def _published(settings: Settings, case_id: uuid.UUID, data: bytes) -> None:
    nc = await connect(settings, "test-backfill")
    try:
        await nc.jetstream().publish(event_subject(settings, "intake", "CaseDueDateSet",
                                                   case_id), data)
    finally:
        await nc.close()


def test_a_due_date_the_backfill_cannot_read_is_named_and_exits_3(settings: Settings) -> None:
    """An event on ``CaseDueDateSet``'s subject that does not convert (cut short, not JSON):
    the backfill reads the rest, names it and exits 3, as ``--strict`` long runs do (its
    case's due source is not read in). Before, it was skipped without a word, exit 0."""
    case_id = uuid.uuid4()
    asyncio.run(_log_and_tables(settings, case_id))
    asyncio.run(_published(settings, uuid.uuid4(), b'{"event_id": "cut short'))
    out = ran(["ops", "backfill"], env=service_env(settings))
    assert out.code == 3, out.out + out.err
    assert "seq 3" in out.err, out.err
    assert asyncio.run(_due_source(settings, case_id)) == "moved"


def test_two_backfills_run_at_once_both_fill_the_due_sources(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two operators (or a Job's retried pod) start the backfill at once: the other run's
    first batch is staging its due sources when this one stages its own. Both staged into
    one ``due_sources_backfill`` table of follow-up's schema: this run's CREATE waited for
    the other's and then failed on PostgreSQL's unique type name (a traceback, exit 1), and a
    run that finished dropped the table under the other. Each run stages on its own now."""
    case_id = uuid.uuid4()
    asyncio.run(_log_and_tables(settings, case_id))
    staged = followup_consumer.backfill_due_sources
    schema = settings.schema_for("followup")

    async def beside_another_run(conn: asyncpg.Connection, events: list[Any],
                                 seqs: list[int]) -> None:
        monkeypatch.setattr(followup_consumer, "backfill_due_sources", staged)
        other = await asyncpg.connect(settings.database_url)
        try:
            other_batch = other.transaction()
            await other_batch.start()  # the other run's first batch, not committed yet
            await other.execute(f'SET LOCAL search_path TO "{schema}"')
            await other.execute(followup_consumer.DUE_SOURCES_DDL)
            mine = asyncio.ensure_future(staged(conn, events, seqs))
            pid = conn.get_server_pid()
            while not mine.done() and not await other.fetchval(
                    "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE pid = $1"
                    " AND wait_event_type = 'Lock')", pid):
                await asyncio.sleep(0.01)  # until this run waits on the other or is done
            await other_batch.commit()
            await mine
        finally:
            await other.close()

    monkeypatch.setattr(followup_consumer, "backfill_due_sources", beside_another_run)
    out = ran(["ops", "backfill"], env=service_env(settings))
    assert out.code == 0, out.out + out.err
    assert asyncio.run(_due_source(settings, case_id)) == "moved"

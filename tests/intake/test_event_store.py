"""The event store keeps a batch exactly as the eventsourcing library would: every event once,
in the order given, with notification ids in that order, and a version conflict refused."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime
from importlib.metadata import version
from typing import Any

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError, PersistenceError
from psycopg import Connection, Cursor
from psycopg.sql import SQL, Composed, Identifier

from services.intake.application import IntakeApplication
from services.intake.domain import Case
from shared.eventstore.application import build_application
from shared.eventstore.group_commit import GroupCommitter
from shared.eventstore.postgres import ended_by_server
from shared.eventstore.recorder import ArrayInsertRecorder
from shared.settings import Settings


def new_case(i: int) -> Case:
    meta = {"actor": "clerk-001", "occurred_at": datetime.now(UTC),
            "causation_id": f"store-{i:04d}", "correlation_id": None}
    case = Case(id=uuid.uuid4(), center_id="SH-PD-HUAMU", counter_id="window-1",
                clerk_id="clerk-001", channel="counter", service_item="SA-HARDSHIP-SUBSIDY",
                resident_id=None, meta=meta)
    case.hear_request(f"第{i}位居民想申请补贴", {**meta, "causation_id": f"hear-{i:04d}"})
    return case


async def test_a_batch_is_stored_in_order_and_read_back_whole(settings: Settings) -> None:
    app = build_application(IntakeApplication, settings, "intake")
    try:
        assert isinstance(app.recorder, ArrayInsertRecorder)
        cases = [new_case(i) for i in range(40)]
        events = [e for case in cases for e in case.pending_events]
        recordings = app.save(*cases)
        assert [r.domain_event for r in recordings] == events
        ids = [r.notification.id for r in recordings]
        assert ids == sorted(ids) and len(set(ids)) == len(events)

        stored = app.recorder.select_notifications(start=ids[0], limit=1000)
        assert [n.id for n in stored] == ids
        for notification, event in zip(stored, events, strict=True):
            expected = app.mapper.to_stored_event(event)
            assert (notification.originator_id, notification.originator_version,
                    notification.topic, notification.state) == (
                expected.originator_id, expected.originator_version, expected.topic,
                expected.state)
        again = app.repository.get(cases[7].id)
        assert (again.version, again.heard, again.commands) == (2, True, cases[7].commands)

        stale = app.repository.get(cases[0].id)
        cases[0].hear_request("再说一遍", {"actor": "clerk-001", "occurred_at": datetime.now(UTC),
                                            "causation_id": "hear-again", "correlation_id": None})
        app.save(cases[0])
        stale.hear_request("同时说的", {"actor": "clerk-002", "occurred_at": datetime.now(UTC),
                                        "causation_id": "hear-race", "correlation_id": None})
        with pytest.raises(IntegrityError):
            app.save(stale)
        assert app.repository.get(cases[0].id).version == 3
    finally:
        app.close()


def test_the_save_the_store_mirrors_is_the_librarys_own() -> None:
    """``ServiceApplication.save`` mirrors ``Application.save`` of this very version: on an
    upgrade, compare the two before changing the pin."""
    assert version("eventsourcing") == "9.5.6"


async def test_save_takes_what_the_library_takes(settings: Settings) -> None:
    app = build_application(IntakeApplication, settings, "intake")
    try:
        case = new_case(1)
        event = case.pending_events[0]
        assert [r.domain_event for r in app.save(None, event)] == [event]  # the library's path
        case.collect_events()
        later = new_case(2)
        assert len(app.save(later)) == 2 and app.repository.get(later.id).version == 2
    finally:
        app.close()


async def test_every_batch_is_one_prepared_statement_rendered_once(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch goes to the store as one prepared statement, the call of the recorder's
    function (the library's lock statements, NOTIFY and insert inside it), outside psycopg's
    pipeline: the library's BEGIN, five statements, a sync and COMMIT cost the writer thread
    ~0.5 ms of psycopg's Python a batch. Group commit's look-ups before it are prepared as
    before, and nothing is composed again after the first batch."""
    app = build_application(IntakeApplication, settings, "intake")
    committer = GroupCommitter(app)
    try:
        recorder = app.recorder
        assert isinstance(recorder, ArrayInsertRecorder)
        app.save(new_case(0))  # the first batch renders them
        first = new_case(1)
        committer._load({first.id})
        sent: list[Any] = []
        pipelines = 0
        execute, pipeline = Cursor.execute, Connection.pipeline

        here = threading.get_ident()  # not the pool's thread, opening a connection

        def recording(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
            if threading.get_ident() == here:
                sent.append((query, kwargs.get("prepare")))
            return execute(self, query, *args, **kwargs)

        def piped(self: Any) -> Any:
            nonlocal pipelines
            pipelines += 1
            return pipeline(self)

        rendered = 0
        as_bytes = Composed.as_bytes

        def counted(self: Any, context: Any) -> bytes:
            nonlocal rendered
            rendered += threading.get_ident() == here
            return as_bytes(self, context)

        monkeypatch.setattr(Cursor, "execute", recording)
        monkeypatch.setattr(Connection, "pipeline", piped)
        monkeypatch.setattr(Composed, "as_bytes", counted)
        second = new_case(2)
        recordings = app.save(first, second)
        assert committer._load({uuid.uuid4()}) == {}  # a new case's id: looked up, not read
        assert committer._position_of(first.id, 1) > 0
        monkeypatch.undo()

        assert (rendered, pipelines) == (0, 0)
        with recorder.datastore.get_connection() as conn:
            expected = [(recorder._batch_statement.on(conn)[0], True),
                        (committer._versions_sql.as_bytes(conn), True),
                        (committer._position_sql.as_bytes(conn), True)]
            assert [(q if isinstance(q, bytes) else q.as_bytes(conn), p)
                    for q, p in sent] == expected
        ids = [r.notification.id for r in recordings]
        assert len(ids) == 4 and ids == list(range(ids[0], ids[0] + 4))
    finally:
        app.close()


async def test_a_batch_waits_for_the_table_lock_no_longer_than_lock_timeout(
        settings: Settings) -> None:
    """The recorder's function takes the library's EXCLUSIVE table lock (writers one at a
    time: the log's order, no gap a reader could pass over) within the caller's own
    POSTGRES_LOCK_TIMEOUT: a session holding a lock that conflicts makes the batch refuse,
    as PostgreSQL's lock timeout, with nothing recorded; once it lets go the batch goes in."""
    app = build_application(IntakeApplication, settings, "intake", POSTGRES_LOCK_TIMEOUT=1)
    try:
        recorder = app.recorder
        assert isinstance(recorder, ArrayInsertRecorder)
        app.save(new_case(0))
        table = SQL("{}.{}").format(Identifier(recorder.datastore.schema),
                                    Identifier(recorder.events_table_name))
        case = new_case(1)
        with psycopg.connect(settings.database_url) as holder:
            holder.execute(SQL("LOCK TABLE {} IN SHARE MODE").format(table))
            with pytest.raises(PersistenceError) as refused:
                app.save(case)
            assert ended_by_server(refused.value)
            assert isinstance(refused.value.__cause__, psycopg.errors.LockNotAvailable)
        assert app.recorder.select_events(case.id) == []
        assert len(app.save(new_case(2))) == 2
    finally:
        app.close()


async def test_a_batch_tells_the_relay_as_it_commits(settings: Settings) -> None:
    """The batch's NOTIFY on the events table's channel (the relay's LISTEN wakes on it)
    still goes with every batch, from inside the recorder's function."""
    app = build_application(IntakeApplication, settings, "intake")
    try:
        recorder = app.recorder
        assert isinstance(recorder, ArrayInsertRecorder)
        with psycopg.connect(settings.database_url, autocommit=True) as listener:
            listener.execute(SQL("LISTEN {}").format(Identifier(recorder.channel_name)))
            app.save(new_case(0))
            told = list(listener.notifies(timeout=10, stop_after=1))
        assert [n.channel for n in told] == [recorder.channel_name]
    finally:
        app.close()

"""redteam133: the recorder's one-call write (``sixstep_insert_events``) attacked with a real
PostgreSQL: the ids answered are the very rows' in a batch of many aggregates and versions,
two writers at once leave the log gapless and each batch's ids together, a version
conflict inside the function says nothing but the key, and a schema on the search_path cannot
stand in for the function's calls. No defect found; the attacks kept as tests."""

from __future__ import annotations

import threading
import uuid

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError, PersistenceError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg.sql import SQL, Identifier

from services.intake.application import IntakeApplication
from shared.eventstore.application import build_application
from shared.eventstore.postgres import ended_by_server
from shared.eventstore.recorder import ArrayInsertRecorder
from shared.settings import Settings


def interleaved(aggregates: int, versions: int) -> list[StoredEvent]:
    """Events of many aggregates, their versions interleaved (a1v1, a2v1, ..., a1v2, ...),
    each state naming its own row."""
    ids = [uuid.uuid4() for _ in range(aggregates)]
    return [StoredEvent(originator_id=a, originator_version=v, topic="t:E",
                        state=f"{a}/{v}".encode())
            for v in range(1, versions + 1) for a in ids]


async def test_each_id_answered_is_its_own_rows_in_a_batch_of_many_aggregates(
        settings: Settings) -> None:
    app = build_application(IntakeApplication, settings, "intake")
    try:
        recorder = app.recorder
        assert isinstance(recorder, ArrayInsertRecorder)
        events = interleaved(97, 7)
        ids = recorder.insert_events(events)
        assert ids is not None and len(ids) == len(events)
        table = SQL("{}.{}").format(Identifier(recorder.datastore.schema),
                                    Identifier(recorder.events_table_name))
        with psycopg.connect(settings.database_url) as conn:
            rows = dict(conn.execute(SQL(
                "SELECT notification_id, state FROM {} WHERE notification_id = ANY(%s)"
            ).format(table), (list(ids),)).fetchall())
        assert [rows[i] for i in ids] == [e.state for e in events]
        assert list(ids) == list(range(ids[0], ids[0] + len(events)))
    finally:
        app.close()


#: The library's pipelined write (BEGIN, SET LOCAL lock_timeout, LOCK TABLE, NOTIFY, insert,
#: COMMIT): what a replica of the release before sends, beside one of this release.
LIBRARYS_WRITE = PostgresApplicationRecorder.insert_events.__wrapped__  # type: ignore[attr-defined]


@pytest.mark.parametrize("rolling", [False, True], ids=["same-release", "rolling-pair"])
async def test_two_writers_at_once_leave_the_log_gapless_and_each_batch_together(
        settings: Settings, rolling: bool) -> None:
    apps = [build_application(IntakeApplication, settings, "intake") for _ in range(2)]
    try:
        start = threading.Barrier(2)
        answered: list[list[int]] = []
        failed: list[BaseException] = []

        def write(app: IntakeApplication) -> None:
            try:
                start.wait()
                old = rolling and app is apps[0]
                for _ in range(40):
                    batch = interleaved(5, 3)
                    ids = (LIBRARYS_WRITE(app.recorder, batch) if old
                           else app.recorder.insert_events(batch))
                    assert ids is not None
                    answered.append(list(ids))
            except BaseException as exc:
                failed.append(exc)

        threads = [threading.Thread(target=write, args=(a,)) for a in apps]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert failed == []
        every = sorted(i for ids in answered for i in ids)
        assert every == list(range(every[0], every[0] + len(every)))
        for ids in answered:
            assert ids == list(range(ids[0], ids[0] + len(ids)))
    finally:
        for app in apps:
            app.close()


async def test_a_version_conflict_inside_the_function_names_no_state(
        settings: Settings) -> None:
    app = build_application(IntakeApplication, settings, "intake")
    try:
        recorder = app.recorder
        events = interleaved(3, 2)
        recorder.insert_events(events)
        again = [StoredEvent(originator_id=events[4].originator_id, originator_version=2,
                             topic="t:E", state="张三 13800138000".encode())]
        with pytest.raises(IntegrityError) as refused:
            recorder.insert_events(again)
        text = f"{refused.value!r} {refused.value.__cause__!r} {refused.value}"
        assert "13800138000" not in text and "\\x" not in text
    finally:
        app.close()


async def test_a_function_on_the_search_path_cannot_stand_in_for_the_recorders_calls(
        settings: Settings) -> None:
    """The recorder's function runs with the caller's search_path (SECURITY INVOKER, no SET
    clause): a schema on it that another role can create in may hold an ``unnest(uuid[])``
    (an exact match wins over pg_catalog's ``unnest(anyarray)`` whatever the schemas' order)
    that would record the batch under other aggregates' ids. No defect: PostgreSQL's parser
    turns a many-argument ``unnest`` in FROM into pg_catalog's own (``SystemFuncName``), and
    ``set_config(text, text, boolean)`` is found in pg_catalog first. Kept as the attack."""
    app = build_application(IntakeApplication, settings, "intake")
    hijack = f"{app.recorder.datastore.schema}_hijack"
    try:
        with psycopg.connect(settings.database_url, autocommit=True) as conn:
            conn.execute(SQL("CREATE SCHEMA {}").format(Identifier(hijack)))
            conn.execute(SQL(
                "CREATE FUNCTION {}.unnest(uuid[]) RETURNS SETOF uuid LANGUAGE sql"
                " AS $$ SELECT gen_random_uuid() FROM pg_catalog.unnest($1) $$"
            ).format(Identifier(hijack)))
        recorder = app.recorder
        assert isinstance(recorder, ArrayInsertRecorder)
        events = interleaved(4, 2)
        with psycopg.connect(settings.database_url, autocommit=True) as conn:
            conn.execute(SQL("SET search_path = {}, public").format(Identifier(hijack)))
            conn.execute(recorder._batch_statement.on(conn)[0], (
                [e.originator_id for e in events], [e.originator_version for e in events],
                [e.topic for e in events], [e.state for e in events]))
        for event in events[:4]:
            assert len(recorder.select_events(event.originator_id)) == 2
    finally:
        app.close()
        with psycopg.connect(settings.database_url, autocommit=True) as conn:
            conn.execute(SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(Identifier(hijack)))


async def test_the_function_made_anew_by_a_replica_starting_leaves_the_others_writing(
        settings: Settings) -> None:
    """A replica starting (an upgrade's or a restart's) makes the function anew (CREATE OR
    REPLACE) while the others hold its call prepared and its plan cached: their next batch
    still goes in, whole."""
    app = build_application(IntakeApplication, settings, "intake")
    try:
        recorder = app.recorder
        assert isinstance(recorder, ArrayInsertRecorder)
        for _ in range(7):  # past plpgsql's and the prepared statement's custom plans
            recorder.insert_events(interleaved(2, 2))
        other = build_application(IntakeApplication, settings, "intake")
        other.close()
        events = interleaved(3, 2)
        ids = recorder.insert_events(events)
        assert ids is not None and len(ids) == 6
        assert len(recorder.select_events(events[0].originator_id)) == 2
    finally:
        app.close()


@pytest.mark.parametrize("odd", ["OddQ", "x$body$y", "x$$y"])
async def test_a_schema_named_oddly_records_and_tells(settings: Settings, odd: str) -> None:
    """The schema prefix is a setting: a name PostgreSQL must quote (capitals), or one
    holding the function body's dollar-quote tag (``$body$``: the body ended there and the
    CREATE FUNCTION was refused, the rest of the body parsed as SQL; the release before
    intake60 took it), still makes the function and records a batch through it. (A quote,
    single or double, in the name is refused by the library's own CREATE TYPE, before and
    after intake60: left alone.)"""
    oddly = settings.model_copy(update={"schema_prefix": settings.schema_prefix + odd})
    schema = oddly.schema_for("intake")
    try:
        app = build_application(IntakeApplication, oddly, "intake")
        try:
            events = interleaved(2, 2)
            ids = app.recorder.insert_events(events)
            assert ids is not None and len(ids) == 4
            assert len(app.recorder.select_events(events[0].originator_id)) == 2
        finally:
            app.close()
    finally:
        with psycopg.connect(settings.database_url, autocommit=True) as conn:
            conn.execute(SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(Identifier(schema)))


async def test_with_no_lock_timeout_the_statement_timeout_still_ends_a_batch_held_back(
        settings: Settings) -> None:
    """POSTGRES_LOCK_TIMEOUT 0 (none): a batch held back by a conflicting lock waits inside
    the function's one statement, so DB_STATEMENT_TIMEOUT_S ends it, as PostgreSQL's
    cancel (group commit's ``ended_by_server``), with nothing recorded."""
    bounded = settings.model_copy(update={"db_statement_timeout_s": 1.0})
    app = build_application(IntakeApplication, bounded, "intake", POSTGRES_LOCK_TIMEOUT=0)
    try:
        recorder = app.recorder
        assert isinstance(recorder, ArrayInsertRecorder)
        recorder.insert_events(interleaved(1, 1))
        table = SQL("{}.{}").format(Identifier(recorder.datastore.schema),
                                    Identifier(recorder.events_table_name))
        events = interleaved(2, 1)
        with psycopg.connect(settings.database_url) as holder:
            holder.execute(SQL("LOCK TABLE {} IN SHARE MODE").format(table))
            with pytest.raises(PersistenceError) as refused:
                recorder.insert_events(events)
        assert ended_by_server(refused.value)
        assert isinstance(refused.value.__cause__, psycopg.errors.QueryCanceled)
        assert recorder.select_events(events[0].originator_id) == []
    finally:
        app.close()

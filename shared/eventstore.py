"""Building a service's eventsourcing Application on PostgreSQL from settings."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from typing import Any, TypeVar

import psycopg
from eventsourcing.application import Application, ProcessingEvent
from eventsourcing.domain import BaseAggregate
from eventsourcing.persistence import Recording, StoredEvent, Transcoder, Transcoding
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.utils import get_topic
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

from shared.settings import ServiceName, Settings
from shared.store import ensure_schema, postgres_env


class DateAsISO(Transcoding):
    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


class ServiceApplication(Application):
    """Base for each service's write side: its events in its own schema, dates transcoded."""

    def register_transcodings(self, transcoder: Transcoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())  # type: ignore[attr-defined]

    #: Told how many events each save() stored (the runtime counts them for /metrics).
    on_recorded: Callable[[int], None] | None = None

    def _notify(self, recordings: list[Recording[Any]]) -> None:
        if self.on_recorded is not None and recordings:
            self.on_recorded(len(recordings))

    def save(self, *objs: Any, **kwargs: Any) -> list[Recording[Any]]:
        """``Application.save`` (eventsourcing 9.5.6, pinned), minus two runtime ``Protocol``
        checks per aggregate that cost some 9 us each time on Python 3.11: when every object
        is an aggregate, its events are collected directly. Anything else (domain events,
        None, keyword arguments) goes to the library's own ``save``."""
        if kwargs or not all(isinstance(obj, BaseAggregate) for obj in objs):
            return super().save(*objs, **kwargs)
        processing_event: ProcessingEvent[Any] = ProcessingEvent()
        for aggregate in objs:
            processing_event.events.extend(aggregate.collect_events())
            processing_event.aggregates[aggregate.id] = aggregate
        recordings = self._record(processing_event)
        self._take_snapshots(processing_event)
        self._notify(recordings)
        self.notify(processing_event.events)  # deprecated in the library, kept as it calls it
        return recordings


class ArrayInsertRecorder(PostgresApplicationRecorder):
    """The library's recorder, with a batch's events sent as four typed arrays in binary.

    The library sends a batch as one array of a composite type, which psycopg renders as
    text, field by field in Python, and PostgreSQL parses back: a third of the writer
    thread's time for a batch. Here the same rows go as ``uuid[]``, ``bigint[]``, ``text[]``
    and ``bytea[]`` in binary, unnested side by side in the same order. Everything else is the
    library's: the table lock, the NOTIFY, the pipeline, the transaction, the returned
    notification ids, the errors.
    """

    def __init__(self, datastore: PostgresDatastore, *,
                 events_table_name: str = "stored_events") -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        self.insert_events_statement = SQL(
            "INSERT INTO {schema}.{table} AS t"
            " (originator_id, originator_version, topic, state)"
            " SELECT * FROM unnest(%b::{id_type}[], %b::bigint[], %b::text[], %b::bytea[])"
            " RETURNING notification_id"
        ).format(schema=Identifier(datastore.schema), table=Identifier(events_table_name),
                 id_type=SQL(datastore.originator_id_type))

    def _insert_stored_events(self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent],
                              **kwargs: Any) -> None:
        self._lock_table(curs)
        self._notify_channel(curs)
        curs.execute(self.insert_events_statement, (
            [e.originator_id for e in stored_events],
            [e.originator_version for e in stored_events],
            [e.topic for e in stored_events],
            [e.state for e in stored_events]))


A = TypeVar("A", bound=ServiceApplication)


def build_application(cls: type[A], settings: Settings, service: ServiceName,
                      **extra_env: Any) -> A:
    schema = settings.schema_for(service)
    ensure_schema(settings, schema)
    env = postgres_env(settings, schema, service)
    env["APPLICATION_RECORDER_TOPIC"] = get_topic(ArrayInsertRecorder)
    env.update({k: str(v) for k, v in extra_env.items()})
    # The application creates its tables when it is built; replicas starting together would
    # race on CREATE TABLE IF NOT EXISTS (a unique violation in pg_type), so one at a time.
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (f"sixstep-schema:{schema}",))
        return cls(env=env)  # the lock goes with the connection


def events_table(app: Application) -> tuple[str, str]:
    """(schema, table) of an application's stored events: the outbox the relay reads."""
    recorder: Any = app.recorder
    return recorder.datastore.schema, recorder.events_table_name

"""A service's write side: its eventsourcing Application on PostgreSQL, built from settings."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any, TypeVar

import psycopg
from eventsourcing.application import Application, ProcessingEvent, Repository
from eventsourcing.domain import BaseAggregate
from eventsourcing.persistence import JSONTranscoder, Recording, Transcoder, Transcoding
from eventsourcing.utils import get_topic

from shared.eventstore.postgres import (
    bound_statements,
    ensure_schema,
    postgres_env,
    reconnect_promptly,
)
from shared.eventstore.recorder import ArrayInsertRecorder
from shared.eventstore.transcoding import OrjsonTranscoder
from shared.kernel.applying import project
from shared.settings import ServiceName, Settings


class DateAsISO(Transcoding):
    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


class ProjectingRepository(Repository):
    """The library's ``Repository`` replaying events through ``shared.kernel.applying``'s
    ``project`` unless the caller names a ``projector_func``: the same aggregate, without a
    runtime ``Protocol`` check and the generic ``@event`` apply per event."""

    def get(self, aggregate_id: Any, *, version: int | None = None,
            projector_func: Any = project, fastforward_skipping: bool = False,
            deepcopy_from_cache: bool = True) -> Any:
        return super().get(aggregate_id, version=version, projector_func=projector_func,
                           fastforward_skipping=fastforward_skipping,
                           deepcopy_from_cache=deepcopy_from_cache)


class ServiceApplication(Application):
    """Base for each service's write side: its events in its own schema, dates transcoded."""

    def construct_repository(self) -> Repository:
        """The library's repository (its cache and fast-forward settings from ``env``),
        loading through :class:`ProjectingRepository`; a subclass's own repository as it is."""
        repository = super().construct_repository()
        if type(repository) is Repository:
            repository.__class__ = ProjectingRepository  # same state, one method more
        return repository

    def construct_transcoder(self) -> Transcoder:
        """The library's JSON transcoder writing through orjson (``transcoding.py``: the same
        bytes); one a ``TRANSCODER_TOPIC`` names is used as it is."""
        transcoder = self.factory.transcoder()
        if type(transcoder) is JSONTranscoder:
            transcoder = OrjsonTranscoder()
        if isinstance(transcoder, JSONTranscoder):
            self.register_transcodings(transcoder)
        return transcoder

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
        app = cls(env=env)  # the lock goes with the connection
    reconnect_promptly(app.recorder.datastore.pool)  # type: ignore[attr-defined]
    bound_statements(app.recorder.datastore.pool, settings)  # type: ignore[attr-defined]
    return app

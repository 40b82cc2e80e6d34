"""Building a service's eventsourcing Application on PostgreSQL from settings."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any, TypeVar

import psycopg
from eventsourcing.application import Application
from eventsourcing.persistence import Recording, Transcoder, Transcoding

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


A = TypeVar("A", bound=ServiceApplication)


def build_application(cls: type[A], settings: Settings, service: ServiceName,
                      **extra_env: Any) -> A:
    schema = settings.schema_for(service)
    ensure_schema(settings, schema)
    env = postgres_env(settings, schema, service)
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

"""What a read model is, for the tools that rebuild it or fold it at a moment.

Each service describes each of its read models with one :class:`ReadModel`
(``READ_MODEL = ReadModel(...)`` in its ``projections.py``): the handler its consumer runs, the
DDL of its tables, the consumer's name and subject filters, and registers it by name in
``pyproject.toml``::

    [project.entry-points."sixstep.read_models"]
    intake = "services.intake.projections:READ_MODEL"

The analysts' tools (``sixstep rebuild intake``) look a read model up in that table
(:func:`registered`), or take an explicit ``module:attribute``. Shared code never imports a
service: the table names each one, and a new read model is one line there.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Protocol, runtime_checkable

import asyncpg

from shared.bus.consumer import Handler
from shared.contracts import Envelope
from shared.readmodels.bulk import q
from shared.settings import ServiceName, Settings


@runtime_checkable
class BulkHandler(Protocol):
    """A handler that can also build its tables the bulk way, for a rebuild.

    ``copy_apply`` applies a batch, in the caller's transaction, to tables that only the
    caller writes (a rebuild's staging schema), with COPY and set-based statements
    (``shared.readmodels.bulk``). After every batch the tables must hold exactly what
    ``apply`` would have left; it may raise where ``apply`` would not (e.g. a COPY meeting a
    key an earlier batch wrote): the rebuild then applies that batch with ``apply``.
    """

    async def apply(self, conn: asyncpg.Connection, events: Sequence[Envelope]) -> None: ...

    async def copy_apply(self, conn: asyncpg.Connection, events: Sequence[Envelope]) -> None:
        ...


@dataclass(frozen=True)
class ReadModel:
    """A service's read model, as its consumer builds it from the log.

    ``handler(settings)`` makes the handler the live consumer runs (settings give it, e.g.,
    the center's time zone). When it is also a :class:`BulkHandler`, a rebuild writes its
    staging tables with ``copy_apply``.

    ``keys`` names, per table, the column holding the event's partition key (the case id), so
    that a comparison can leave out cases the live consumer has not caught up with and a time
    travel can pick one case's rows. ``volatile`` columns (e.g. when a row was projected) differ
    between two correct builds and are not compared.

    ``built_after`` names secondary indexes of ``ddl`` (each made by one ``CREATE INDEX IF
    NOT EXISTS <name> ON ...`` statement, never a unique one) that no statement of the
    handler finds rows by: a rebuild creates them once its catch-up has read the log to its
    end, one sort each, instead of an entry in each for every row and every row version it
    writes (``shared.analytics.rebuild``). Live tables have them all along; rebuilt ones
    before they are compared or switched.

    ``kept_live`` names tables a use case writes too, outside the consumer (the figures'
    marks of a month being closed: ``fig_closed_marks``): at the switch, each live row whose
    key the rebuilt table has no row for is kept (the rebuilt rows win where both have one).
    A close that marked its month before the switch and records it after would otherwise lose
    its mark: the log, the rebuild's only source, does not have the close yet.

    ``kept_numbered`` names, per kept table, its columns numbered from a sequence of the
    read model, which a rebuild numbers anew from 1, so that a live number says nothing of
    where it stands among the rebuilt ones: ``{table: {column: sequence}}``, a kept row
    takes a new number after every rebuilt one, in its live order (the figures' notes,
    ``noted_seq``: a note kept at 2 below May's rebuilt mark at 4 was never counted again);
    ``{table: {column: None}}``, 0, before every rebuilt one (a close's marks: a slip the
    rebuild noted at 1, below the kept mark at 1000, was never counted again).

    ``at_switch`` are statements the switch runs after the kept rows, in its transaction,
    when every ``kept_live`` table was live: ``{retired}`` names the schema the live tables
    moved to, ``{live}`` the one the rebuilt tables are in now (what the live rows owed that
    the log's order does not say: a closed month's note applied after its count's mark and
    on the log before its record, taken as counted by the rebuild).
    """

    service: ServiceName
    consumer: str
    handler: Callable[[Settings], Handler]
    ddl: Sequence[str]
    subjects: Callable[[Settings], list[str]]
    keys: Mapping[str, str] = field(default_factory=dict)
    volatile: frozenset[str] = frozenset()
    built_after: frozenset[str] = frozenset()
    kept_live: frozenset[str] = frozenset()
    kept_numbered: Mapping[str, Mapping[str, str | None]] = field(default_factory=dict)
    at_switch: Sequence[str] = ()

    def schema(self, settings: Settings) -> str:
        return settings.schema_for(self.service)


async def make_tables(conn: asyncpg.Connection, schema: str, ddl: Iterable[str], *,
                      local: bool = False) -> None:
    """A read model's tables made in ``schema`` by its own DDL (``ReadModel.ddl``, or a part
    of it): the schema made if missing and put first on ``conn``'s search path (then
    ``public``; ``local``: for the transaction under way only), where ``conn`` stays, and each
    statement run there, the connection's prepared statements forgotten (they name the types
    of the schema they were prepared in). A rebuild's staging schema, a time travel's, a
    test's and a benchmark's are made so.

    ``local`` outside a transaction is refused: PostgreSQL answers ``SET LOCAL`` there with a
    warning and leaves the search path as it was, so the tables were made in ``public``."""
    if local and not conn.is_in_transaction():
        raise RuntimeError(f"make_tables(local=True) for {schema!r} outside a transaction:"
                           " SET LOCAL would do nothing and the tables land in public")
    await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {q(schema)}")
    await conn.execute(f"SET {'LOCAL ' if local else ''}search_path TO {q(schema)}, public")
    # The connection's prepared statements hold the oids of the types they were prepared with
    # (a read model's row types, bulk.RowType, are made per schema): one prepared in another
    # schema fails here with "cannot cast type <other>.fig_cases_row_...[]" (a test projecting
    # into two schemas on one connection did). Prepared again against this schema's.
    await conn.reload_schema_state()
    for statement in ddl:
        await conn.execute(statement)


#: Events a rebuild reads in one batch from the log and applies in one batch to each read model
#: (``sixstep rebuild --batch``, ``Rebuild``, ``catch_up_together``). A batch costs
#: PostgreSQL its statements and round trips, and each key it touches one tracking row and
#: one row version of each of its tables, however many of the key's events it folds: in
#: batches of 4,000 instead of 1,000 PostgreSQL spent ~22 % less CPU an event applied and
#: the whole rebuild ~9 % less (benchmarks/README.md, "Rebuild near the read limit: stop 53").
#: Memory grows with it: the decoded batch in hand and the one read ahead, and each read
#: model's share filling up (peak RSS of all seven at once 145 -> 216 MB).
REBUILD_BATCH = 4000

#: The entry-point group each service's read models are registered in (``pyproject.toml``).
GROUP = "sixstep.read_models"


def registered() -> dict[str, str]:
    """Every registered read model: name -> ``module:attribute``."""
    return {ep.name: ep.value for ep in entry_points(group=GROUP)}


def load_read_model(ref: str) -> ReadModel:
    """A registered read model by name (``intake``, ``feedback.figures``: see
    :func:`registered`) or an explicit ``package.module:ATTRIBUTE``."""
    known = registered()
    target = known.get(ref, ref)
    module_name, _, attr = target.partition(":")
    if not attr:
        raise LookupError(f"no read model {ref!r}: the registered ones are "
                          f"{', '.join(sorted(known)) or 'none'} (or give module:ATTRIBUTE)")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise LookupError(f"no read model {ref!r}: cannot import {module_name}") from exc
    model = getattr(module, attr, None)
    if not isinstance(model, ReadModel):
        raise LookupError(f"no read model {ref!r}: {module_name} has no ReadModel {attr}")
    return model


def read_model_of(consumer: str) -> str | None:
    """The registered read model whose consumer is ``consumer`` (its name for ``sixstep
    rebuild``); None for a consumer that builds none (one that writes commands)."""
    for name in sorted(registered()):
        try:
            if load_read_model(name).consumer == consumer:
                return name
        except LookupError:
            continue
    return None

"""Writing a batch of read-model rows in a few statements, for a rebuild's staging tables.

A rebuild builds its tables in a staging schema nobody else writes, so a read model can offer,
beside the live handler it runs on the stream (``apply``), a bulk path (``copy_apply``, see
:class:`shared.readmodels.readmodel.BulkHandler`) that leaves exactly the same rows after each
batch and writes them the cheap way:

* rows a batch creates: folded in memory with whatever else the batch does to them, then one
  ``COPY`` (binary) per table: :func:`copy_rows`;
* rows of earlier batches: one ``UPDATE ... FROM unnest(...)`` per table (its patches'
  shapes told apart by a mask): :func:`update_rows`; where the change depends on the row (a
  version guard) they are read first with one ``SELECT ... = ANY(...)``: :func:`fetch_rows`.

A live handler's batch of many columns goes as one array of a composite type
(:class:`RowType`, ``unnest($1::<type>[])``), not one array a column: asyncpg asks each
element of an array parameter whether it is itself an array (``isinstance`` against
``collections.abc``, a Python call each, two for a text), so a row of 18 columns took some 25
such calls as column arrays and takes 4 as one composite, whose fields go straight through
their codecs. Its changes to rows of earlier batches likewise: one array of a
:func:`patch_type` (the key, every column a patch may have, the mask).

A bulk path never decides what the live handler would do differently: a new row whose key an
earlier batch already wrote (a duplicate on the stream) makes its COPY fail, and the rebuild
applies that batch with the live handler instead (``Rebuild._apply``).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from operator import itemgetter
from typing import Any
from uuid import UUID

import asyncpg

Row = dict[str, Any]


def q(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


class Tables:
    """Column types of the tables a bulk path writes, looked up once per table (staging
    schemas are created from the same DDL, so one lookup serves every rebuild)."""

    def __init__(self) -> None:
        self._types: dict[str, dict[str, str]] = {}

    async def types(self, conn: asyncpg.Connection, table: str) -> dict[str, str]:
        found = self._types.get(table)
        if found is None:
            rows = await conn.fetch(
                "SELECT attname, format_type(atttypid, atttypmod) AS type FROM pg_attribute"
                " WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped"
                " ORDER BY attnum", q(table))
            if not rows:
                raise LookupError(f"no table {table!r} on the search path")
            found = self._types[table] = {r["attname"]: r["type"] for r in rows}
        return found


@dataclass(frozen=True)
class RowType:
    """A composite type a batch's rows are sent as: one parameter, an array of it, each row a
    tuple of its ``fields`` (name, SQL type) in order.

    Its name is ``base`` and a digest of the fields: a type is never altered, a new shape is
    a new type beside the old one (a replica of the previous release still running uses the
    old one; asyncpg keeps each type's fields per connection, by its oid). ``ddl`` creates it
    in the schema first on the search path unless it is there already (the read model's DDL,
    run at start under the migration lock, in a rebuild's staging schema and in a time-travel
    one). A rebuild's switch moves tables and views only: the live schema's type stays where
    it is, with the oid the live consumers' prepared statements hold."""

    base: str
    fields: tuple[tuple[str, str], ...]

    @cached_property
    def name(self) -> str:
        shape = ",".join(f"{n} {t}" for n, t in self.fields)
        return f"{self.base}_{hashlib.sha256(shape.encode()).hexdigest()[:8]}"

    @cached_property
    def columns(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.fields)

    @property
    def ddl(self) -> str:
        name = self.name
        fields = ", ".join(f"{q(n)} {t}" for n, t in self.fields)
        return ("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_type WHERE typname = "
                f"'{name}' AND typnamespace = (SELECT oid FROM pg_namespace"
                " WHERE nspname = current_schema())) THEN"
                f" CREATE TYPE {q(name)} AS ({fields}); END IF; END $$")


#: What PostgreSQL says when a prepared statement holds the oid of a type dropped since.
_DROPPED_TYPE = "cache lookup failed for type"


async def send_rows(conn: asyncpg.Connection, statement: str, rows: list[tuple[Any, ...]],
                    *, fetch: bool = False) -> list[asyncpg.Record]:
    """``statement`` with one array of a :class:`RowType` (``$1``). Its prepared statement
    holds the type's oid: a type dropped and made again (``DROP TYPE`` of the live digest by
    mistake, then a replica's start) fails it with ``cache lookup failed for type`` on
    every later call, each event of a batch dead-lettered in turn. That failure forgets
    the connection's (its pool's) statements and types, so the batch's next try (its
    events one by one, a redelivery) prepares anew against the type as it is now."""
    if fetch:
        return await _typed(conn, conn.fetch(statement, rows))
    await _typed(conn, conn.execute(statement, rows))
    return []


async def changed_rows(conn: asyncpg.Connection, statement: str,
                       rows: list[tuple[Any, ...]]) -> int:
    """:func:`send_rows` of an UPDATE (or INSERT, DELETE): how many rows it changed, from its
    command tag (``UPDATE 498``), no row sent back."""
    tag = await _typed(conn, conn.execute(statement, rows))
    return int(tag.rsplit(" ", 1)[-1])


async def _typed(conn: asyncpg.Connection, call: Awaitable[Any]) -> Any:
    """``call`` (a statement with a :class:`RowType` parameter), its result; a type dropped
    and made again since the statement was prepared forgets the connection's statements
    and types (:func:`send_rows`)."""
    try:
        return await call
    except asyncpg.InternalServerError as exc:
        if _DROPPED_TYPE in str(exc):
            await conn.reload_schema_state()
        raise


def patch_type(base: str, key: tuple[str, str],
               fields: Sequence[tuple[str, str]]) -> RowType:
    """The :class:`RowType` :func:`update_rows` sends a table's patches as: the key, every
    column a patch may have, and the mask saying which of them it has (a bigint's bits: at
    most ``_MAX_MASKED`` columns)."""
    if len(fields) > _MAX_MASKED:
        raise ValueError(f"{base}: {len(fields)} columns, a mask holds {_MAX_MASKED}")
    return RowType(base, (key, *fields, (_MASK, "bigint")))


async def copy_rows(conn: asyncpg.Connection, table: str, columns: Sequence[str],
                    rows: Iterable[Mapping[str, Any]]) -> None:
    """New rows (dicts) by COPY; a key already in the table fails the whole COPY."""
    if len(columns) == 1:
        records = [(row[columns[0]],) for row in rows]
    else:
        get = itemgetter(*columns)  # a tuple in the order of columns, at C speed
        records = [get(row) for row in rows]
    await copy_records(conn, table, columns, records)


async def copy_records(conn: asyncpg.Connection, table: str, columns: Sequence[str],
                       records: Sequence[tuple[Any, ...]]) -> None:
    """New rows (tuples in the order of ``columns``) by COPY."""
    if records:
        await conn.copy_records_to_table(table, records=records, columns=list(columns))


async def insert_rows(conn: asyncpg.Connection, tables: Tables, table: str,
                      columns: Sequence[str], records: Sequence[tuple[Any, ...]],
                      conflict: str = "DO NOTHING",
                      returning: Sequence[str] = (),
                      row_type: RowType | None = None) -> list[asyncpg.Record]:
    """Rows (tuples in the order of ``columns``) in one ``INSERT ... SELECT FROM unnest(...)
    ON CONFLICT {conflict}``: what an ``executemany`` of the same INSERT leaves, in one
    statement (a live handler's batch, where a key may already be there). With
    ``returning``, those columns of the rows inserted (not of those the conflict skipped).
    With ``row_type`` (its fields ``columns``, created by the read model's DDL; a jsonb
    column's field text, cast in the SELECT as below), the rows go as one array of it; else
    as one array a column."""
    if not records:
        return []
    types = await tables.types(conn, table)
    _no_arrays(types, table, columns)
    if row_type is not None:
        if row_type.columns != tuple(columns):
            raise ValueError(f"{row_type.name} has fields {row_type.columns}, not {columns}")
        picked = ", ".join(f"s.{q(c)}::jsonb" if types[c] == "jsonb" else f"s.{q(c)}"
                           for c in columns)
        statement = (f"INSERT INTO {q(table)} ({', '.join(q(c) for c in columns)})"
                     f" SELECT {picked} FROM unnest($1::{q(row_type.name)}[]) AS s"
                     f" ON CONFLICT {conflict}")
        rows = records if isinstance(records, list) else list(records)
        if not returning:
            await send_rows(conn, statement, rows)
            return []
        return await send_rows(
            conn, f"{statement} RETURNING {', '.join(q(c) for c in returning)}", rows,
            fetch=True)
    # A jsonb column's values go as text and are cast row by row in the SELECT: PostgreSQL
    # spent ~1 us more a row receiving a jsonb[] parameter and unnesting it (case_timeline's
    # payloads, 492-row batches, backend CPU), for the same jsonb in the table.
    arrays = ", ".join(f"${i + 1}::{_sent_as(types[c])}[]" for i, c in enumerate(columns))
    names = [f"c{i}" for i in range(len(columns))]
    picked = ", ".join(f"{n}::jsonb" if types[c] == "jsonb" else n
                       for n, c in zip(names, columns, strict=True))
    statement = (f"INSERT INTO {q(table)} ({', '.join(q(c) for c in columns)})"
                 f" SELECT {picked} FROM unnest({arrays}) AS s({', '.join(names)})"
                 f" ON CONFLICT {conflict}")
    values = [list(column) for column in zip(*records, strict=True)]
    if not returning:
        await conn.execute(statement, *values)
        return []
    return await conn.fetch(f"{statement} RETURNING {', '.join(q(c) for c in returning)}",
                            *values)


def _sent_as(sql_type: str) -> str:
    """The type a column's values are sent as by :func:`insert_rows` (jsonb as text)."""
    return "text" if sql_type == "jsonb" else sql_type


def first_of_each(rows: Iterable[tuple[Any, ...]], key: int) -> list[tuple[Any, ...]]:
    """``rows`` without a later one whose first ``key`` columns (the primary key) came
    before: what one ``INSERT ... ON CONFLICT DO NOTHING`` per row, in turn, leaves (for
    :func:`insert_rows`)."""
    first: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    for row in rows:
        first.setdefault(row[:key], row)
    return list(first.values())


async def update_rows(conn: asyncpg.Connection, tables: Tables, table: str, key: str,
                      patches: Mapping[Any, Mapping[str, Any]],
                      expressions: Mapping[str, str] | None = None, also: str = "",
                      row_type: RowType | None = None) -> int:
    """``patches[key value] = {column: value}`` applied to rows already in the table, in one
    statement. ``expressions`` replaces the plain assignment of a column with SQL over ``t``
    (the row) and ``s`` (the patch), e.g. ``{"n": "t.n + s.n"}``; ``also`` is set on every
    row changed (e.g. ``"stamped = clock_timestamp()"``). A key not in the table changes
    nothing (as an UPDATE would). Returns how many rows it changed (fewer than the patches:
    some keys were not in the table).

    Patches of one shape (set of columns) are one plain ``UPDATE ... FROM unnest(...)``.
    Patches of several shapes are one statement too, over the union of their columns: each
    patch says which columns it has in a bit mask, and a column it does not have keeps the
    row's value (``CASE WHEN``), so each row ends as its own shape's UPDATE would leave it
    (one round trip a batch instead of one a shape: a batch of cases has some seven).

    With ``row_type`` (:func:`patch_type`, created by the read model's DDL) every patch is
    one element of one array of it, whatever the shapes: the masked statement over all its
    columns (a patch naming a column it lacks is a ``ValueError``)."""
    if not patches:
        return 0
    if row_type is not None:
        return await _update_typed(conn, table, key, row_type, patches, expressions or {},
                                   also)
    types = await tables.types(conn, table)
    by_shape: dict[tuple[str, ...], list[tuple[Any, Mapping[str, Any]]]] = defaultdict(list)
    for ident, patch in patches.items():
        if patch:
            by_shape[tuple(sorted(patch))].append((ident, patch))
    expressions = expressions or {}
    union = sorted({c for shape in by_shape for c in shape})
    if len(by_shape) > 1 and len(union) <= _MAX_MASKED:
        return await _update_masked(conn, types, table, key, union,
                                    [item for items in by_shape.values() for item in items],
                                    expressions, also)
    changed = 0
    for columns, items in by_shape.items():
        names = [key, *columns]
        _no_arrays(types, table, names)
        arrays = ", ".join(f"${i + 1}::{types[c]}[]" for i, c in enumerate(names))
        sets = ", ".join([*(f"{q(c)} = {expressions.get(c, f's.{q(c)}')}" for c in columns),
                          *([also] if also else [])])
        args = [[ident for ident, _ in items],
                *([patch[c] for _, patch in items] for c in columns)]
        changed += _rows(await conn.execute(
            f"UPDATE {q(table)} AS t SET {sets} FROM unnest({arrays})"
            f" AS s({', '.join(q(c) for c in names)}) WHERE t.{q(key)} = s.{q(key)}", *args))
    return changed


def _rows(status: str) -> int:
    """The rows a statement's status (``UPDATE 3``) says it changed."""
    return int(status.rsplit(" ", 1)[-1])


#: Columns one masked UPDATE can say a patch has (the bits of a bigint).
_MAX_MASKED = 62
#: The mask's name in the unnest (no table has such a column).
_MASK = "?patched"


def _no_arrays(types: Mapping[str, str], table: str, names: Sequence[str]) -> None:
    for c in names:
        if types[c].endswith("[]"):
            raise TypeError(f"{table}.{c} is an array: unnest would flatten it")


def _masked_sets(columns: Sequence[str], expressions: Mapping[str, str], also: str) -> str:
    """The masked UPDATE's SET list: ``columns[i]`` takes the patch's value (or its
    ``expressions`` entry) where the patch's mask has bit i, else keeps the row's."""
    return ", ".join([
        *(f"{q(c)} = CASE WHEN s.{q(_MASK)} & {1 << i} <> 0"
          f" THEN {expressions.get(c, f's.{q(c)}')} ELSE t.{q(c)} END"
          for i, c in enumerate(columns)),
        *([also] if also else [])])


async def _update_masked(conn: asyncpg.Connection, types: Mapping[str, str], table: str,
                         key: str, columns: Sequence[str],
                         items: Sequence[tuple[Any, Mapping[str, Any]]],
                         expressions: Mapping[str, str], also: str) -> int:
    """Patches of several shapes in one ``UPDATE ... FROM unnest(...)``: ``columns`` are the
    union of their columns, and a patch's mask has bit i set when it has ``columns[i]``."""
    names = [key, *columns]
    _no_arrays(types, table, names)
    arrays = ", ".join([*(f"${i + 1}::{types[c]}[]" for i, c in enumerate(names)),
                        f"${len(names) + 1}::bigint[]"])
    sets = _masked_sets(columns, expressions, also)
    bit = {c: 1 << i for i, c in enumerate(columns)}
    args = [[ident for ident, _ in items],
            *([patch.get(c) for _, patch in items] for c in columns),
            [sum(bit[c] for c in patch) for _, patch in items]]
    return _rows(await conn.execute(
        f"UPDATE {q(table)} AS t SET {sets} FROM unnest({arrays})"
        f" AS s({', '.join(q(c) for c in [*names, _MASK])}) WHERE t.{q(key)} = s.{q(key)}",
        *args))


async def _update_typed(conn: asyncpg.Connection, table: str, key: str, row_type: RowType,
                        patches: Mapping[Any, Mapping[str, Any]],
                        expressions: Mapping[str, str], also: str) -> int:
    """:func:`update_rows`' masked statement with its patches as one array of ``row_type``."""
    return await update_patched(conn, table, key, row_type, patch_rows(row_type, patches),
                                expressions, also)


def patch_rows(row_type: RowType, patches: Mapping[Any, Mapping[str, Any]]
               ) -> list[tuple[Any, ...]]:
    """``patches`` (as :func:`update_rows` takes them) as elements of ``row_type``
    (:func:`patch_type`): the key, each column's value (None where the patch has none), the
    mask; an empty patch left out. Pure: a live handler builds them ahead of its batch
    (``Preparing``) and sends them with :func:`update_patched`."""
    if row_type.columns[-1] != _MASK:
        raise ValueError(f"{row_type.name} is not a patch type")
    columns = row_type.columns[1:-1]
    bit = {c: 1 << i for i, c in enumerate(columns)}
    rows = []
    for ident, patch in patches.items():
        if not patch:
            continue
        mask = 0
        for c in patch:
            if c not in bit:
                raise ValueError(f"{row_type.name} has no field {c!r}")
            mask |= bit[c]
        rows.append((ident, *[patch.get(c) for c in columns], mask))
    return rows


async def update_patched(conn: asyncpg.Connection, table: str, key: str, row_type: RowType,
                         rows: list[tuple[Any, ...]],
                         expressions: Mapping[str, str] | None = None, also: str = "") -> int:
    """:func:`update_rows` of patches built by :func:`patch_rows`: how many rows changed."""
    names = row_type.columns
    if names[0] != key or names[-1] != _MASK:
        raise ValueError(f"{row_type.name} is not a patch type of {table}.{key}")
    if not rows:
        return 0
    sets = _masked_sets(names[1:-1], expressions or {}, also)
    return _rows(await _typed(conn, conn.execute(
        f"UPDATE {q(table)} AS t SET {sets} FROM unnest($1::{q(row_type.name)}[]) AS s"
        f" WHERE t.{q(key)} = s.{q(key)}", rows)))


async def fetch_rows(conn: asyncpg.Connection, table: str, key: str,
                     keys: Iterable[UUID]) -> dict[Any, Row]:
    """The rows of ``table`` with these keys (earlier batches' rows a batch is about to
    change), as dicts by key."""
    wanted = list(keys)
    if not wanted:
        return {}
    rows = await conn.fetch(f"SELECT * FROM {q(table)} WHERE {q(key)} = ANY($1::uuid[])",
                            wanted)
    return {r[key]: dict(r) for r in rows}

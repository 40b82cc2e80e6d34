"""Export: events flattened (envelope + payload) to Parquet or CSV, partitioned by month.

Layouts: ``per-type`` writes one table per event type (``<Type>/month=YYYY-MM/part-*.parquet``,
columns = envelope + that type's payload fields); ``wide`` writes one table of every event
(``events/month=YYYY-MM/...``, columns = envelope + the union of all payload fields). The month
is the month of ``occurred_at`` on the center's clock. Every row carries ``schema_version``
(the contract version it was read as, after upcasting) and ``stored_version`` (the version it
was stored under); each Parquet file also records its contract versions in its metadata, and
``_manifest.json`` at the root records them for every file, CSV included.

No personal data: the opaque resident id (a key into the vault) is left out, and every field
its contract marks as free text (``shared.contracts.fields``) is passed through
:func:`shared.kernel.privacy.redact` again, so an event stored before a redaction rule existed
cannot leak a phone or ID number into an export.

CSV cells that a spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``, ``@``,
a tab or a carriage return) get a leading single quote (OWASP's rule against CSV injection);
Parquet keeps the text as it is (already scrubbed).

An event that cannot be converted (one the contracts refuse, e.g. an ``occurred_at`` in the
year 1 stored before the APIs bounded it) is not exported: it is counted and named (stream
sequence, event id, reason) in the result and in the manifest's ``unreadable``, and the
export goes on.

Memory stays bounded: rows wait in column buffers of at most ``buffer_rows`` rows in all, then
go out as row groups; at most ``max_open`` files are open at once. The manifest is the
checkpoint: it is rewritten (atomically) only after the files it lists are complete, every
``commit_every`` events and at the end. A rerun resumes after the manifest's last sequence and
deletes any file the manifest does not list (the remains of an interrupted segment).
"""

from __future__ import annotations

import asyncio
import enum
import json
import os
import re
import types
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin
from uuid import UUID

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from shared.analytics.replay import (
    CONVERSION_ERRORS,
    UNREADABLE_LISTED,
    Batch,
    Replay,
    Selection,
    Unreadable,
)
from shared.contracts import REGISTRY, Envelope
from shared.contracts.fields import free_text_fields, plain_types
from shared.contracts.registry import EventContract
from shared.kernel.privacy import redact
from shared.settings import Settings

Format = Literal["parquet", "csv"]
Layout = Literal["per-type", "wide"]
Kind = Literal["plain", "text", "text_list", "list", "date", "datetime", "json", "known"]

MANIFEST = "_manifest.json"
WIDE_TABLE = "events"
#: The layout of an export folder (manifest, partitions, columns, file metadata). A reader
#: refuses a folder with a higher one: it was written by a newer sixstep. 2 (December 2026):
#: optional moments and days, choices and lists of codes are typed columns, which 1 wrote as
#: JSON text (still read, as those types); an export of 1 is not resumed into (its files and
#: the new ones would disagree on the columns' types): another folder, or ``--restart``.
EXPORT_VERSION = 2

#: Payload fields never exported: keys that lead back to a person (the beneficiary, and the
#: resident who applied: 代办, the same id when they came for themselves). Each is exported
#: only as ``<field>_known``, whether the event named one (实名: the 实名差评回访率 needs it).
#: A resident's own record (``ConsentChanged``, ``CareNeedChanged``, ``ResidentErased``) has
#: the resident as its aggregate: its ``aggregate_id`` is left empty too.
PERSONAL_FIELDS = frozenset({"resident_id", "applicant_id"})

TIMESTAMP = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    field: str  # the envelope attribute or payload key it comes from
    kind: Kind = "plain"
    payload: bool = True


ENVELOPE_COLUMNS: tuple[Column, ...] = (
    Column("stream_seq", pa.int64(), "stream_seq", payload=False),
    Column("event_id", pa.string(), "event_id", payload=False),
    Column("type", pa.string(), "type", payload=False),
    Column("schema_version", pa.int32(), "version", payload=False),
    Column("stored_version", pa.int32(), "stored_version", payload=False),
    Column("service", pa.string(), "service", payload=False),
    Column("position", pa.int64(), "position", payload=False),
    Column("aggregate_id", pa.string(), "aggregate_id", payload=False),
    Column("aggregate_version", pa.int64(), "aggregate_version", payload=False),
    Column("case_id", pa.string(), "case_id", payload=False),
    Column("center_id", pa.string(), "center_id", payload=False),
    Column("occurred_at", TIMESTAMP, "occurred_at", payload=False),
    Column("recorded_at", TIMESTAMP, "recorded_at", payload=False),
    Column("causation_id", pa.string(), "causation_id", payload=False),
    Column("correlation_id", pa.string(), "correlation_id", payload=False),
    Column("actor", pa.string(), "actor", payload=False),
)
_ENVELOPE_NAMES = frozenset(c.name for c in ENVELOPE_COLUMNS)


def _arrow(annotation: Any) -> tuple[pa.DataType, Kind]:
    """The Arrow type of a payload field, from its pydantic annotation.

    Pydantic unwraps only a field's top-level ``Annotated``: the one inside an optional
    (``Moment | None``, ``Day | None``), a list (``list[Code]``) stays, and is unwrapped here,
    as a ``Literal`` of strings is a string: else they were written as JSON text, and an
    optional moment (``judged_at``) was no timestamp to DuckDB."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _arrow(get_args(annotation)[0])
    if origin is Literal:
        values = get_args(annotation)
        if all(isinstance(v, str) for v in values):
            return pa.string(), "plain"
        return pa.string(), "json"
    if origin in (Union, types.UnionType):
        inner = [a for a in get_args(annotation) if a is not type(None)]
        return _arrow(inner[0]) if len(inner) == 1 else (pa.string(), "json")
    if origin is list:
        item, kind = _arrow(get_args(annotation)[0])
        if kind == "text":
            return pa.list_(pa.string()), "text_list"
        return (pa.list_(item), "list") if kind == "plain" else (pa.string(), "json")
    if isinstance(annotation, type):
        if issubclass(annotation, bool):
            return pa.bool_(), "plain"
        if issubclass(annotation, enum.Enum):
            return pa.string(), "plain"
        if issubclass(annotation, str):
            return pa.string(), "text"
        if issubclass(annotation, int):
            return pa.int64(), "plain"
        if issubclass(annotation, float):
            return pa.float64(), "plain"
        if issubclass(annotation, UUID):
            return pa.string(), "plain"
        if issubclass(annotation, datetime):
            return TIMESTAMP, "datetime"
        if issubclass(annotation, date):
            return pa.date32(), "date"
    return pa.string(), "json"


def payload_columns(contract: EventContract) -> list[Column]:
    """The exported payload columns of one event type (personal fields left out); the free
    text its contract marks is scrubbed again on the way out, codes are not touched."""
    out = []
    free_text = set(free_text_fields(contract.payload))
    for name, info in contract.payload.model_fields.items():
        if name in PERSONAL_FIELDS:
            out.append(Column(f"{name}_known", pa.bool_(), name, "known"))
            continue
        arrow_type, kind = _arrow(info.annotation)
        if name not in free_text and kind in ("text", "text_list"):
            kind = "plain" if kind == "text" else "list"
        column = f"payload_{name}" if name in _ENVELOPE_NAMES else name
        out.append(Column(column, arrow_type, name, kind))
    return out


def quoted_before(contract: EventContract) -> frozenset[str]:
    """The string columns of ``contract`` an export written before they were typed holds as
    JSON text (``'"registration"'``): its ``Literal`` fields. A reader unquotes them; the
    moments, days and lists of such an export it casts to their types."""
    fields = contract.payload.model_fields
    return frozenset(c.name for c in payload_columns(contract) if c.kind == "plain" and any(
        get_origin(t) is Literal for t in plain_types(fields[c.field].annotation)))


def type_columns(contract: EventContract) -> list[Column]:
    return [*ENVELOPE_COLUMNS, *payload_columns(contract)]


def wide_columns(contracts: Iterable[EventContract]) -> list[Column]:
    """Envelope + the union of payload columns; a name with two types becomes JSON text, and
    a name that is free text in any contract is scrubbed in every row (``reason`` is a code
    in ConsentChanged, an enum in FollowUpScheduled and free text in CaseReopened)."""
    merged: dict[str, Column] = {}
    for contract in contracts:
        for col in payload_columns(contract):
            seen = merged.get(col.name)
            if seen is None:
                merged[col.name] = col
            elif seen.type != col.type:
                merged[col.name] = Column(col.name, pa.string(), col.field, "json")
            elif col.kind in ("text", "text_list") and seen.kind in ("plain", "list"):
                merged[col.name] = col
    return [*ENVELOPE_COLUMNS, *merged.values()]


_ABSENT = object()
_DEFAULTS: dict[tuple[str, int], dict[str, Any]] = {}


def absent_defaults(contract: EventContract) -> dict[str, Any]:
    """What ``contract`` reads a field as when an event stored before the field existed does
    not hold it (``counted`` true, ``basis`` official, ``comment`` ''): the export writes that,
    not null, so an analyst's ``WHERE counted`` or ``basis = 'official'`` counts old events as
    every service reads them. Fields whose default is None stay null. One made by a factory
    (``default_factory=list``: an optional list added later) is made: asked without calling
    the factory, pydantic answers its "undefined" marker, which the export wrote into the
    cell (a JSON column could not take it: the old event was left out as unreadable)."""
    key = (contract.type, contract.version)
    if key in _DEFAULTS:
        return _DEFAULTS[key]
    out: dict[str, Any] = {}
    for name, info in contract.payload.model_fields.items():
        if info.is_required() or name in PERSONAL_FIELDS:
            continue
        default = info.get_default(call_default_factory=True)
        if default is None:
            continue
        out[name] = default.value if isinstance(default, enum.Enum) else default
    _DEFAULTS[key] = out
    return out


def _value(col: Column, e: Envelope, seq: int, stored_version: int,
           defaults: dict[str, Any]) -> Any:
    if not col.payload:
        if col.field == "stream_seq":
            return seq
        if col.field == "stored_version":
            return stored_version
        value = getattr(e, col.field)
        if col.field == "aggregate_id" and _names_a_person(e):
            return None  # the resident's own record: its aggregate is the person
        return str(value) if isinstance(value, UUID) else value
    value = e.payload.get(col.field, _ABSENT)
    if value is _ABSENT:
        value = defaults.get(col.field)
    if col.kind == "known":
        return value is not None
    if value is None:
        return None
    kind = col.kind
    if kind == "plain" or kind == "list":
        return value
    if kind == "text":
        return redact(value)
    if kind == "text_list":
        return [redact(v) for v in value]
    if kind == "date":
        return date.fromisoformat(value) if isinstance(value, str) else value
    if kind == "datetime":  # converted here, per event: one out of range is skipped alone
        moment = datetime.fromisoformat(value) if isinstance(value, str) else value
        return moment.astimezone(UTC)
    return orjson.dumps(value).decode()


def _names_a_person(e: Envelope) -> bool:
    """Whether the event's aggregate is a resident (its id is a personal field's value)."""
    aggregate = str(e.aggregate_id)
    return any(e.payload.get(name) == aggregate for name in PERSONAL_FIELDS)


_INT64 = range(-(2**63), 2**63)


def row_of(columns: list[Column], e: Envelope, seq: int, stored_version: int,
           contract: EventContract | None = None) -> list[Any]:
    """One event's cells (a field the event does not hold as ``contract`` reads it); raises
    one of ``CONVERSION_ERRORS`` when it cannot be converted."""
    defaults = absent_defaults(contract) if contract is not None else {}
    row = [_value(col, e, seq, stored_version, defaults) for col in columns]
    for col, value in zip(columns, row, strict=True):
        if isinstance(value, int) and not isinstance(value, bool) and value not in _INT64:
            raise OverflowError(f"{col.name} = {value} does not fit a 64-bit integer")
    return row


def schema_of(columns: list[Column], metadata: dict[str, str]) -> pa.Schema:
    return pa.schema([pa.field(c.name, c.type) for c in columns],
                     metadata={k.encode(): v.encode() for k, v in metadata.items()})


FORMULA_START = "=+-@\t\r"
"""A CSV cell starting with one of these is run as a formula by spreadsheets (OWASP)."""
_FORMULA = "^([" + "".join(re.escape(c) for c in FORMULA_START) + "])"


def csv_ready(table: pa.Table) -> pa.Table:
    """CSV has no lists: list columns become JSON text. Every text cell that would start a
    formula in a spreadsheet (``FORMULA_START``) gets a leading single quote."""
    for i, f in enumerate(table.schema):
        column = table.column(i)
        if pa.types.is_list(f.type):
            texts = [None if v is None else json.dumps(v, ensure_ascii=False)
                     for v in column.to_pylist()]
            column = pa.chunked_array([pa.array(texts, pa.string())])
        elif not pa.types.is_string(f.type):
            continue
        column = pc.replace_substring_regex(column, pattern=_FORMULA, replacement="'\\1")
        table = table.set_column(i, pa.field(f.name, pa.string()), column)
    return table


@dataclass
class _Partition:
    table: str
    month: str
    columns: list[Column]
    schema: pa.Schema
    buffer: dict[str, list[Any]]
    rows: int = 0
    parts: int = 0
    writer: Any = None
    path: Path | None = None
    entry: dict[str, Any] | None = None


@dataclass
class ExportResult:
    root: Path
    events: int = 0
    scanned: int = 0
    files: int = 0
    first_seq: int | None = None
    last_seq: int = 0
    resumed_from: int | None = None
    stopped: bool = False
    undecodable: int = 0
    unreadable: int = 0
    """Events left out because they could not be converted (undecodable ones included)."""
    unreadable_events: list[Unreadable] = field(default_factory=list)
    """The first ``UNREADABLE_LISTED`` of them, with stream sequence, event id and reason."""
    rows_by_table: dict[str, int] = field(default_factory=dict)


class Exporter:
    """Writes a selection of the log under ``root``; ``await run()`` resumes when it can."""

    def __init__(self, settings: Settings, root: Path, *, fmt: Format = "parquet",
                 layout: Layout = "per-type", selection: Selection | None = None,
                 batch_size: int = 2000, buffer_rows: int = 65_536, max_open: int = 32,
                 commit_every: int = 250_000, stop: asyncio.Event | None = None,
                 on_start: Callable[[Replay], None] | None = None,
                 on_batch: Callable[[Replay, Batch], None] | None = None) -> None:
        self.settings = settings
        self.root = root
        self.fmt = fmt
        self.layout = layout
        self.selection = selection or Selection()
        self.batch_size = batch_size
        self.buffer_rows = buffer_rows
        self.max_open = max_open
        self.commit_every = commit_every
        self.stop = stop
        self.on_start = on_start
        self.on_batch = on_batch
        self.tz = settings.tz
        self.contracts = {c.type: c for c in REGISTRY}
        self.versions = {c.type: c.version for c in self.contracts.values()}
        self._partitions: dict[tuple[str, str], _Partition] = {}
        self._open: OrderedDict[tuple[str, str], _Partition] = OrderedDict()
        self._pending: list[dict[str, Any]] = []
        self._buffered = 0
        self._segment = 0
        self._wide = wide_columns(self.contracts.values()) if layout == "wide" else None
        self.manifest: dict[str, Any] = {}

    # -- manifest (the checkpoint) ----------------------------------------------------------

    def _new_manifest(self) -> dict[str, Any]:
        return {
            "export_version": EXPORT_VERSION,
            "format": self.fmt, "layout": self.layout, "stream": self.settings.stream_name,
            "subject_prefix": self.settings.subject_prefix,
            "selection": self.selection.fingerprint(),
            "selection_text": self.selection.describe(),
            "month_of": "occurred_at", "timezone": self.settings.center_timezone,
            "contracts": {t: {"service": c.service, "version": c.version}
                          for t, c in sorted(self.contracts.items())},
            "privacy": {"dropped_fields": sorted(PERSONAL_FIELDS),
                        "aggregate_id": "empty where the aggregate is a resident (their own "
                                        "record: ConsentChanged, CareNeedChanged, "
                                        "ResidentErased)",
                        "redacted": "every free-text payload field (shared.kernel.privacy.redact)",
                        "csv_formulas": "cells starting with = + - @ tab CR get a leading '"},
            "unreadable": {"count": 0, "events": []},
            "first_seq": None, "last_seq": 0, "events": 0, "files": [],
            "started_at": datetime.now(UTC).isoformat(), "completed_at": None,
        }

    def _load_manifest(self, restart: bool) -> int | None:
        path = self.root / MANIFEST
        if not path.exists():
            self._refuse_foreign_folder()
        if restart or not path.exists():
            self._remove_parts(keep=set())
            path.unlink(missing_ok=True)
            self.manifest = self._new_manifest()
            return None
        manifest = json.loads(path.read_text())
        mine = self._new_manifest()
        check_readable(self.root, manifest)
        manifest.setdefault("export_version", 1)  # written before the version was recorded
        if manifest["export_version"] < EXPORT_VERSION:
            raise ValueError(
                f"{self.root} holds an export with export_version={manifest['export_version']}"
                f", written by an older sixstep (optional moments and days, choices and lists "
                f"as JSON text; this one writes version {EXPORT_VERSION}, typed): it is not "
                "resumed with files of other column types beside its own. `sixstep sql` and "
                "`sixstep report` still read it as it is; to export on, use another folder, "
                "or --restart (deletes it and exports everything again)")
        for key in ("export_version", "format", "layout", "stream", "selection"):
            if manifest.get(key) != mine[key]:
                raise ValueError(
                    f"{self.root} holds an export with {key}={manifest.get(key)!r}, not "
                    f"{mine[key]!r}; use another folder or --restart")
        if manifest.get("contracts") != mine["contracts"]:
            raise ValueError(f"{self.root} was exported under other contract versions; "
                             "--restart to export again")
        self.manifest = manifest
        self.manifest.setdefault("unreadable", {"count": 0, "events": []})
        self._remove_parts(keep={f["path"] for f in manifest["files"]})
        return int(manifest["last_seq"]) + 1 if manifest["last_seq"] else None

    def _tables(self) -> set[str]:
        """The folders an export writes its files in: one per event type, or the wide one."""
        return {WIDE_TABLE, *self.contracts}

    def _refuse_foreign_folder(self) -> None:
        """A folder with no manifest is exported into only when it holds nothing but what an
        export writes (an export stopped before its first manifest): anything else is
        someone's, and starting an export there deleted every ``part-*`` file beneath it
        (``sixstep sql /tmp --export`` emptied other exports under /tmp)."""
        if not self.root.exists():
            return
        tables = self._tables()
        foreign = sorted(p.name for p in self.root.iterdir()
                         if p.name != MANIFEST + ".tmp" and not _housekeeping(p)
                         and not (p.is_dir() and p.name in tables
                                  and all(_housekeeping(m)
                                          or (m.is_dir() and m.name.startswith("month="))
                                          for m in p.iterdir())))
        if foreign:
            shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more"
                                               if len(foreign) > 5 else "")
            raise ValueError(
                f"{self.root} is not an export (no {MANIFEST}) and is not empty ({shown}): "
                "export into a new or empty folder")

    def _remove_parts(self, keep: set[str]) -> None:
        """Files an export left unfinished or unrecorded, only where an export writes them
        (``<table>/month=YYYY-MM/part-*``), never anywhere else beneath the folder."""
        if not self.root.exists():
            return
        for table in sorted(self._tables()):
            for path in (self.root / table).glob("month=*/part-*"):
                if path.is_file() and path.relative_to(self.root).as_posix() not in keep:
                    path.unlink()

    def _save_manifest(self) -> None:
        path = self.root / MANIFEST
        tmp = path.with_name(MANIFEST + ".tmp")
        with tmp.open("w") as f:
            json.dump(self.manifest, f, indent=1, ensure_ascii=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    # -- rows -------------------------------------------------------------------------------

    def _partition(self, e: Envelope) -> _Partition:
        local = e.occurred_at.astimezone(self.tz)
        month = f"{local.year:04d}-{local.month:02d}"
        table = WIDE_TABLE if self._wide is not None else e.type
        key = (table, month)
        part = self._partitions.get(key)
        if part is None:
            if self._wide is not None:
                columns = self._wide
                meta = {"sixstep.table": WIDE_TABLE,
                        "sixstep.schema_version": "mixed: see sixstep.contracts",
                        "sixstep.contracts": json.dumps(self.versions, sort_keys=True)}
            else:
                contract = self.contracts[e.type]
                columns = type_columns(contract)
                meta = {"sixstep.table": e.type, "sixstep.type": e.type,
                        "sixstep.schema_version": str(contract.version),
                        "sixstep.contracts": json.dumps({e.type: contract.version})}
            meta["sixstep.stream"] = self.settings.stream_name
            meta["sixstep.export_version"] = str(EXPORT_VERSION)
            part = _Partition(table, month, columns, schema_of(columns, meta),
                              {c.name: [] for c in columns})
            self._partitions[key] = part
        return part

    def add(self, batch: Batch) -> None:
        for unreadable in batch.undecodable:
            self._unreadable(unreadable)
        for e, seq, stored in zip(batch.events, batch.seqs, batch.stored_versions, strict=True):
            try:
                part = self._partition(e)
                row = row_of(part.columns, e, seq, stored, self.contracts[e.type])
            except CONVERSION_ERRORS as exc:
                self._unreadable(Unreadable.of(seq, None, exc, event_id=str(e.event_id)))
                continue
            buf = part.buffer
            for col, value in zip(part.columns, row, strict=True):
                buf[col.name].append(value)
            part.rows += 1
            self._buffered += 1
            if self._buffered >= self.buffer_rows:
                self._flush_all()

    def _unreadable(self, event: Unreadable) -> None:
        """Count an event left out, and name it while the list is short."""
        skipped = self.manifest["unreadable"]
        skipped["count"] += 1
        if len(skipped["events"]) < UNREADABLE_LISTED:
            skipped["events"].append(event.as_dict())

    def _flush(self, part: _Partition) -> None:
        if not part.rows:
            return
        arrays = [pa.array(part.buffer[c.name], type=c.type) for c in part.columns]
        table = pa.Table.from_arrays(arrays, schema=part.schema)
        writer = self._writer(part)
        writer.write_table(table if self.fmt == "parquet" else csv_ready(table))
        assert part.entry is not None
        part.entry["rows"] += part.rows
        part.buffer = {c.name: [] for c in part.columns}
        self._buffered -= part.rows
        part.rows = 0

    def _flush_all(self) -> None:
        for part in self._partitions.values():
            self._flush(part)

    def _writer(self, part: _Partition) -> Any:
        key = (part.table, part.month)
        if part.writer is not None:
            self._open.move_to_end(key)
            return part.writer
        while len(self._open) >= self.max_open:
            _, oldest = self._open.popitem(last=False)
            self._close(oldest)
        folder = self.root / part.table / f"month={part.month}"
        folder.mkdir(parents=True, exist_ok=True)
        part.parts += 1
        name = f"part-{self._segment:012d}-{part.parts:04d}.{self.fmt}"
        part.path = folder / (name + ".tmp")
        if self.fmt == "parquet":
            part.writer = pq.ParquetWriter(part.path, part.schema, compression="zstd")
        else:
            csv_schema = pa.schema([pa.field(f.name, pa.string() if pa.types.is_list(f.type)
                                             else f.type) for f in part.schema])
            part.writer = pacsv.CSVWriter(part.path, csv_schema)
        self._open[key] = part
        part.entry = {"tmp": part.path, "table": part.table, "month": part.month, "rows": 0}
        self._pending.append(part.entry)
        return part.writer

    def _close(self, part: _Partition) -> None:
        if part.writer is not None:
            part.writer.close()
            part.writer = None

    def commit(self, last_seq: int, events: int) -> None:
        """Finish every open file, then record them (and ``last_seq``) in the manifest."""
        self._flush_all()
        for part in list(self._open.values()):
            self._close(part)
        self._open.clear()
        for entry in self._pending:
            tmp: Path = entry["tmp"]
            final = tmp.with_suffix("")
            os.replace(tmp, final)
            self.manifest["files"].append({
                "path": final.relative_to(self.root).as_posix(), "table": entry["table"],
                "month": entry["month"], "rows": entry["rows"]})
        self._pending.clear()
        self.manifest["last_seq"] = last_seq
        self.manifest["events"] += events
        if self.manifest["first_seq"] is None and events:
            self.manifest["first_seq"] = self._segment_first
        self._save_manifest()
        self._segment = last_seq + 1
        self._segment_first = None
        for part in self._partitions.values():
            part.parts = 0

    def abandon(self) -> None:
        """Drop the unfinished segment's files (on an error)."""
        for part in list(self._open.values()):
            self._close(part)
        self._open.clear()
        for entry in self._pending:
            Path(entry["tmp"]).unlink(missing_ok=True)
        self._pending.clear()

    # -- the run ----------------------------------------------------------------------------

    async def run(self, *, restart: bool = False) -> ExportResult:
        if self.root.exists() and not self.root.is_dir():
            raise ValueError(f"{self.root} is a file, not a folder: export into a new or "
                             "empty folder")
        self.root.mkdir(parents=True, exist_ok=True)
        from_seq = self._load_manifest(restart)
        result = ExportResult(self.root, resumed_from=from_seq)
        self._segment = from_seq or 1
        self._segment_first: int | None = None
        since_commit = 0
        # reader="auto": a long export reads the log in a child process while this one
        # decodes and writes the Parquet files.
        replay = Replay(self.settings, self.selection, from_seq=from_seq,
                        batch_size=self.batch_size, stop=self.stop, reader="auto")
        try:
            async with replay:
                if self.on_start:
                    self.on_start(replay)
                async for batch in replay:
                    if batch.events and self._segment_first is None:
                        self._segment_first = batch.seqs[0]
                    self.add(batch)
                    result.events += len(batch.events)
                    since_commit += len(batch.events)
                    if since_commit >= self.commit_every:
                        self.commit(batch.last_seq, since_commit)
                        since_commit = 0
                    if self.on_batch:
                        self.on_batch(replay, batch)
                result.stopped = replay.stopped
                result.scanned = replay.scanned
                result.undecodable = replay.undecodable
                self.commit(max(replay.last_seq, int(self.manifest["last_seq"] or 0)),
                            since_commit)
        except BaseException:
            self.abandon()
            raise
        if not result.stopped:
            self.manifest["completed_at"] = datetime.now(UTC).isoformat()
            self._save_manifest()
        result.last_seq = int(self.manifest["last_seq"])
        result.first_seq = self.manifest["first_seq"]
        result.unreadable = int(self.manifest["unreadable"]["count"])
        result.unreadable_events = [Unreadable(u["seq"], u["event_id"], u["reason"])
                                    for u in self.manifest["unreadable"]["events"]]
        result.files = len(self.manifest["files"])
        for f in self.manifest["files"]:
            result.rows_by_table[f["table"]] = result.rows_by_table.get(f["table"], 0) + f["rows"]
        return result


async def export(settings: Settings, root: Path, **options: Any) -> ExportResult:
    restart = options.pop("restart", False)
    return await Exporter(settings, root, **options).run(restart=restart)


class ExportNotReadable(ValueError):
    """Not an export this sixstep can read (none there, or written by a newer one)."""


def _housekeeping(path: Path) -> bool:
    """What a file system or a desktop leaves in any folder, nobody's data: a fresh volume's
    ``lost+found``, Finder's ``.DS_Store`` and ``._*``, a ``.Trash``. An export beside it
    deletes nothing of it (only ``<table>/month=*/part-*``), so an empty disk mounted for
    the export, or a folder a Mac has shown, is exported into, not refused as someone's."""
    return path.name == "lost+found" or path.name.startswith(".")


def read_manifest(root: Path) -> dict[str, Any]:
    """The manifest of the export at ``root``, once :func:`check_readable` has passed it."""
    path = root / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except (FileNotFoundError, NotADirectoryError):
        raise ExportNotReadable(f"{root} is not an export: it has no {MANIFEST} "
                                "(write one with `sixstep export`)") from None
    except json.JSONDecodeError as exc:
        raise ExportNotReadable(f"{path} is not valid JSON ({exc})") from None
    check_readable(root, manifest)
    return manifest


def check_readable(root: Path, manifest: dict[str, Any]) -> None:
    """Refuse an export written by a newer sixstep: a newer layout (``export_version``), or
    an event type at a contract version this one does not know (its columns may mean
    something else). An export without ``export_version`` predates it: version 1."""
    version = manifest.get("export_version", 1)
    if not isinstance(version, int) or version > EXPORT_VERSION:
        raise ExportNotReadable(
            f"{root} was written by a newer sixstep (export version {version}; this one reads "
            f"up to {EXPORT_VERSION}): read it with that version, or export again with this one")
    known = {c.type: c.version for c in REGISTRY}
    newer = sorted(f"{t} v{v['version']} (this sixstep knows up to v{known[t]})"
                   for t, v in (manifest.get("contracts") or {}).items()
                   if t in known and int(v.get("version", 0)) > known[t])
    if newer:
        raise ExportNotReadable(
            f"{root} holds events of newer contract versions than this sixstep knows: "
            f"{', '.join(newer)}; read it with the sixstep that wrote it, or upgrade")

"""The export's columns have their contract's types, optional moments and days included, and
an export written before they were typed (JSON text) reads back as those types."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, get_args, get_origin

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from pydantic import BaseModel

from shared.analytics.export import (
    EXPORT_VERSION,
    MANIFEST,
    TIMESTAMP,
    export,
    payload_columns,
    type_columns,
)
from shared.analytics.figures import connect_export, contract_columns
from shared.analytics.sql import open_history
from shared.contracts import REGISTRY
from shared.contracts.fields import plain_types
from shared.settings import Settings


def structured(annotation: Any) -> bool:
    """A mapping, or a nested model, in an optional or a list."""
    if get_origin(annotation) is dict:
        return True
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    return any(structured(a) for a in get_args(annotation))


def test_only_a_mapping_or_a_nested_model_is_exported_as_json_text() -> None:
    """Pydantic unwraps a field's top-level ``Annotated`` only: ``Moment | None`` (judged_at),
    ``Day | None`` (counted_from), ``list[Code]`` and choices (``Literal``) were JSON text."""
    for contract in REGISTRY:
        fields = contract.payload.model_fields
        for column in payload_columns(contract):
            where = f"{contract.type}.{column.name}"
            holds = plain_types(fields[column.field].annotation)
            if column.kind == "json":
                assert structured(fields[column.field].annotation), where
            if datetime in holds:
                assert column.type == TIMESTAMP, where
            elif date in holds:
                assert column.type == pa.date32(), where
    judged = {c.name: c.type for c in payload_columns(REGISTRY.get("FollowUpCompleted"))}
    assert judged["judged_at"] == TIMESTAMP
    revised = {c.name: c.type for c in payload_columns(REGISTRY.get("PeriodRevised"))}
    assert revised["changed"] == pa.list_(pa.string())


def written(root: Path, tables: dict[str, dict[str, object]], export_version: int) -> None:
    """One row per event type, in the export's folders (``<Type>/month=2026-12/``)."""
    files = []
    for kind, cells in tables.items():
        path = root / kind / "month=2026-12" / "part-000000000001-0001.parquet"
        path.parent.mkdir(parents=True)
        pq.write_table(pa.table({"type": [kind], **{c: [v] for c, v in cells.items()}}), path)
        files.append({"path": path.relative_to(root).as_posix(), "table": kind,
                      "month": "2026-12", "rows": 1})
    (root / MANIFEST).write_text(json.dumps({
        "export_version": export_version, "format": "parquet", "layout": "per-type",
        "files": files}))


def test_a_closed_months_own_month_is_read_not_its_folders(tmp_path: Path) -> None:
    """December 2026 closed on New Year's Eve: ``PeriodClosed.month`` is a day (1 December),
    its file's folder ``month=2026-12``. The folder's text was read over the day and failed
    to cast to it, and every query of the ``events`` view with it."""
    written(tmp_path, {"PeriodClosed": {"month": date(2026, 12, 1)},
                       "PeriodRevised": {"month": date(2026, 12, 1), "revision": 1}},
            export_version=EXPORT_VERSION)
    con = open_history(tmp_path, tz="Asia/Shanghai")
    try:
        for kind in ("PeriodClosed", "PeriodRevised"):
            assert con.execute(f'SELECT month FROM "{kind}"').fetchall() == [
                (date(2026, 12, 1),)]
        assert con.execute("SELECT type, payload->>'month' FROM events ORDER BY type"
                           ).fetchall() == [("PeriodClosed", "2026-12-01"),
                                            ("PeriodRevised", "2026-12-01")]
    finally:
        con.close()


def test_a_csv_exports_codes_that_look_like_numbers_stay_text(tmp_path: Path) -> None:
    """Windows numbered 1, 2, 3 and a clerk 7: a CSV reader took the columns for integers,
    and a query comparing them with text (``counter_id = 'W1'``) failed."""
    path = tmp_path / "CaseOpened" / "month=2026-12" / "part-000000000001-0001.csv"
    path.parent.mkdir(parents=True)
    pacsv.write_csv(pa.table({"type": ["CaseOpened"] * 2, "counter_id": ["1", "2"],
                              "clerk_id": ["7", "7"], "stream_seq": [1, 2]}), path)
    (tmp_path / MANIFEST).write_text(json.dumps({
        "export_version": EXPORT_VERSION, "format": "csv", "layout": "per-type",
        "files": [{"path": path.relative_to(tmp_path).as_posix(), "table": "CaseOpened",
                   "month": "2026-12", "rows": 2}]}))
    con = connect_export(tmp_path)
    try:
        assert con.execute('SELECT counter_id, clerk_id, stream_seq FROM "CaseOpened" WHERE'
                           " counter_id <> 'W1' ORDER BY 1").fetchall() == [("1", "7", 1),
                                                                            ("2", "7", 2)]
    finally:
        con.close()


def test_an_export_written_before_the_columns_were_typed_reads_as_their_types(
        tmp_path: Path) -> None:
    """Sunday 20 December 2026 and New Year's Eve 23:30 in Shanghai, as an older export wrote
    them: JSON text, a choice quoted, a list of codes as a JSON array."""
    tables = {
        "CaseResolved": {"judged_at": '"2026-12-31T23:30:00+08:00"'},
        "CaseDueDateSet": {"counted_from": '"2026-12-20"'},
        "CaseOpened": {"resident_basis": '"presence_grant"'},
        "PeriodRevised": {"changed": '["on_time_rate", "followups_on_time_rate"]'},
    }
    written(tmp_path, tables, export_version=1)
    con = connect_export(tmp_path)
    try:
        def one(sql: str) -> object:
            [(value,)] = con.execute(sql).fetchall()
            return value

        assert one('SELECT judged_at FROM "CaseResolved"') == datetime(2026, 12, 31, 15, 30,
                                                                        tzinfo=UTC)
        assert one('SELECT counted_from FROM "CaseDueDateSet"') == date(2026, 12, 20)
        assert one('SELECT resident_basis FROM "CaseOpened"') == "presence_grant"
        assert one('SELECT changed FROM "PeriodRevised"') == ["on_time_rate",
                                                             "followups_on_time_rate"]
        assert one('SELECT applicant_basis IS NULL FROM "CaseOpened"') is True  # no column
    finally:
        con.close()

    # Exported on into: refused, saying why and what still reads it; nothing is deleted.
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(ValueError, match=r"export_version=1, written by an older sixstep"
                       r"(.|\n)*`sixstep sql` and `sixstep report` still read it"):
        asyncio.run(export(Settings(), tmp_path))
    assert sorted(tmp_path.rglob("*")) == before


def test_every_event_types_columns_are_named_as_duckdb_types_them() -> None:
    """The views' wanted types come from the contract (``DUCKDB_TYPES``), not from a DESCRIBE
    of each type's empty table at every open: they must be what DuckDB says of that table."""
    con = duckdb.connect()
    try:
        for contract in REGISTRY:
            con.register("empty", pa.schema([pa.field(c.name, c.type)
                                             for c in type_columns(contract)]).empty_table())
            described = tuple((c, t) for c, t, *_ in con.execute(
                "DESCRIBE SELECT * FROM empty").fetchall())
            assert contract_columns(contract.type) == described, contract.type
            con.unregister("empty")
    finally:
        con.close()

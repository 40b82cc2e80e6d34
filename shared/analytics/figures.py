"""The center's figures for a period, computed with DuckDB from an export's Parquet files.

One row per case (``case_facts``) says when it was opened, whether and when it was last
resolved and how; every figure is a count over those rows or a rate of two counts, by day, by
service item, and in total. The definitions are those of the feedback service's figures
(``services/feedback/figures.py``: ``FIGURES``), restated over the exported events:

- visits: cases opened (``CaseOpened``), counted on the day they were opened;
- resolution rate: of the cases whose last resolution event is ``CaseResolved`` (not reopened
  since), counted on the day of that resolution, those with outcome ``resolved``;
- emotion-defused rate: of those resolved cases whose emotion on arrival (the first
  ``ConcernsNoted``) was upset, angry or distressed, those resolved with ``emotion_defused``;
- service item: the last ``GuidanceGiven`` item, else the one the case was opened for.

Days are the center's calendar days of ``occurred_at``. ``as_of`` leaves out every event
recorded after that moment: the figures as they stood then. A new figure is a column in
``case_facts`` (or a view joined to it) and a :class:`Rate`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from shared.analytics.export import WIDE_TABLE, read_manifest, type_columns
from shared.contracts import REGISTRY
from shared.contracts.vocabulary import Emotion, Outcome

NEEDS_DEFUSING = tuple(e.value for e in Emotion if e.needs_defusing)


@dataclass(frozen=True)
class Rate:
    name: str
    label: str
    numerator: str
    denominator: str


COUNTS = ("visits", "resolved", "resolved_as_resolved", "upset_resolved", "defused")
RATES: tuple[Rate, ...] = (
    Rate("resolution_rate", "Resolution rate", "resolved_as_resolved", "resolved"),
    Rate("emotion_defused_rate", "Emotion-defused rate", "defused", "upset_resolved"),
)
DEFINITIONS = {
    "visits": "cases opened (CaseOpened), on the day they were opened",
    "resolved": "cases whose last resolution event is CaseResolved, on the day of it",
    "resolved_as_resolved": "of those, outcome 'resolved'",
    "upset_resolved": f"resolved cases that arrived {'/'.join(NEEDS_DEFUSING)}",
    "defused": "of those, resolved with emotion_defused",
}
#: Figures the feedback service defines over its own events, not in this report yet.
PENDING = {"satisfaction_rate": "needs the feedback service's survey events (RatingGiven)"}


@dataclass
class Row:
    key: Any
    counts: dict[str, int]
    rates: dict[str, float | None]


@dataclass
class Figures:
    start: date
    end: date
    center: str | None
    as_of: datetime | None
    total: Row
    by_day: list[Row] = field(default_factory=list)
    by_item: list[Row] = field(default_factory=list)
    rates: tuple[Rate, ...] = RATES


def connect_export(root: Path) -> duckdb.DuckDBPyConnection:
    """DuckDB with one view per event type over an export (either layout)."""
    manifest = read_manifest(root)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    files: dict[str, list[str]] = {}
    for f in manifest["files"]:
        files.setdefault(f["table"], []).append(str(root / f["path"]))
    reader = "read_parquet" if manifest["format"] == "parquet" else "read_csv_auto"
    if manifest["layout"] == "wide" and files.get(WIDE_TABLE):
        con.execute(f"CREATE VIEW {WIDE_TABLE} AS SELECT * FROM "
                    f"{reader}({files[WIDE_TABLE]!r}, union_by_name = true)")
    for contract in REGISTRY:
        name = contract.type
        if manifest["layout"] == "wide" and files.get(WIDE_TABLE):
            cols = ", ".join(f'"{c.name}"' for c in type_columns(contract))
            con.execute(f'CREATE VIEW "{name}" AS SELECT {cols} FROM {WIDE_TABLE} '
                        f"WHERE type = '{name}'")
        elif files.get(name):
            con.execute(f'CREATE VIEW "{name}" AS SELECT * FROM '
                        f"{reader}({files[name]!r}, union_by_name = true)")
        else:
            schema = pa.schema([pa.field(c.name, c.type) for c in type_columns(contract)])
            con.register(f"_empty_{name}", schema.empty_table())
            con.execute(f'CREATE VIEW "{name}" AS SELECT * FROM "_empty_{name}"')
    return con


def _facts_sql(tz: str) -> str:
    defusing = ", ".join(f"'{e}'" for e in NEEDS_DEFUSING)
    seen = "recorded_at <= $as_of"
    return f"""
    WITH opened AS (
        SELECT case_id, center_id, service_item AS opened_item, occurred_at AS opened_at,
               CAST(timezone('{tz}', occurred_at) AS DATE) AS day
        FROM "CaseOpened" WHERE {seen}),
    item AS (SELECT case_id, arg_max(service_item, aggregate_version) AS item
             FROM "GuidanceGiven" WHERE {seen} GROUP BY case_id),
    arrival AS (SELECT case_id, arg_min(emotion, aggregate_version) AS emotion
                FROM "ConcernsNoted" WHERE {seen} GROUP BY case_id),
    resolved AS (SELECT case_id, arg_max(outcome, aggregate_version) AS outcome,
                        arg_max(emotion_defused, aggregate_version) AS defused,
                        arg_max(CAST(timezone('{tz}', occurred_at) AS DATE), aggregate_version)
                            AS day
                 FROM "CaseResolved" WHERE {seen} GROUP BY case_id),
    ending AS (SELECT case_id, arg_max(type, aggregate_version) AS last_type FROM (
                   SELECT case_id, aggregate_version, type FROM "CaseResolved" WHERE {seen}
                   UNION ALL
                   SELECT case_id, aggregate_version, type FROM "CaseReopened" WHERE {seen})
               GROUP BY case_id)
    SELECT o.case_id, o.center_id, o.day AS opened_on,
           CASE WHEN e.last_type = 'CaseResolved' THEN r.day END AS resolved_on,
           coalesce(i.item, o.opened_item) AS service_item, a.emotion,
           e.last_type = 'CaseResolved' AS is_resolved,
           coalesce(r.outcome = '{Outcome.RESOLVED}', false) AS as_resolved,
           coalesce(a.emotion IN ({defusing}), false) AS upset,
           coalesce(r.defused, false) AS defused
    FROM opened o LEFT JOIN item i USING (case_id) LEFT JOIN arrival a USING (case_id)
         LEFT JOIN resolved r USING (case_id) LEFT JOIN ending e USING (case_id)
    """


def _rows(con: duckdb.DuckDBPyConnection, group: str | None, params: dict[str, Any],
          where: str) -> list[Row]:
    """Visits count on the opening day; resolutions on the resolution day (as the feedback
    service's figures anchor them); one row per ``group`` value seen in either."""
    opened_key = {"day": "opened_on", "item": "service_item", None: "NULL"}[group]
    resolved_key = {"day": "resolved_on", "item": "service_item", None: "NULL"}[group]
    opened = (f"SELECT {opened_key} AS key,"
              " count(*) AS visits, 0 AS resolved, 0 AS resolved_as_resolved,"
              " 0 AS upset_resolved, 0 AS defused FROM case_facts"
              f" WHERE opened_on BETWEEN $start AND $end {where} GROUP BY 1")
    resolved = (f"SELECT {resolved_key} AS key,"
                " 0, count(*), count(*) FILTER (WHERE as_resolved),"
                " count(*) FILTER (WHERE upset), count(*) FILTER (WHERE upset AND defused)"
                " FROM case_facts WHERE is_resolved AND resolved_on BETWEEN $start AND $end"
                f" {where} GROUP BY 1")
    sums = ", ".join(f"sum({c})::BIGINT" for c in COUNTS)
    result = con.execute(f"SELECT key, {sums} FROM ({opened} UNION ALL {resolved})"
                         " GROUP BY key ORDER BY key", params)
    out = []
    for record in result.fetchall():
        counts = {c: int(record[i + 1] or 0) for i, c in enumerate(COUNTS)}
        out.append(Row(record[0], counts, {
            r.name: (counts[r.numerator] / counts[r.denominator]
                     if counts[r.denominator] else None) for r in RATES}))
    return out


def compute(root: Path, start: date, end: date, *, tz: str, center: str | None = None,
            as_of: datetime | None = None) -> Figures:
    """The center's figures for visits from ``start`` to ``end`` (inclusive)."""
    con = connect_export(root)
    try:
        moment = as_of or datetime(9999, 12, 31, tzinfo=datetime.now().astimezone().tzinfo)
        con.execute(f"CREATE TEMP TABLE case_facts AS {_facts_sql(tz)}", {"as_of": moment})
        params: dict[str, Any] = {"start": start, "end": end}
        where = ""
        if center:
            where = "AND center_id = $center"
            params["center"] = center
        total = _rows(con, None, params, where)
        empty = Row(None, dict.fromkeys(COUNTS, 0), dict.fromkeys(r.name for r in RATES))
        return Figures(start, end, center, as_of, total[0] if total else empty,
                       _rows(con, "day", params, where), _rows(con, "item", params, where))
    finally:
        con.close()

"""SQL over the history: DuckDB over an export, with the views an analyst asks for by name.

:func:`open_history` gives a DuckDB connection over an export folder (``sixstep export``,
either layout, Parquet or CSV) with these views:

- one per event type, named as the type (``"CaseOpened"``, ``"RatingGiven"`` ...): the envelope
  columns and that type's payload fields, as the export wrote them (a type with no events in
  the export is an empty view with the right columns);
- ``events``: every event, the envelope columns plus ``payload`` (JSON: the exported payload
  fields, so ``payload->>'level'``), the shape the README's worked example queries;
- the fact rows every figure is counted over, folded exactly as ``sixstep report`` folds them
  (``shared/analytics/figures.py``): ``case_facts``, ``visit_facts``, ``survey_facts``,
  ``rectification_facts``, ``followup_facts``;
- ``daily_figures``: one row per (day, center_id, service_item) with every count of
  :data:`shared.analytics.figures.COUNTS` and every rate, each count on its own day as the
  definitions anchor it;
- one view per figure, named as the figure (``visits``, ``cases``, ``resolution_rate``,
  ``satisfaction_rate``, ``no_consent``, ``bad_reviews`` ...): ``day, center_id, service_item``
  and the count, or ``numerator, denominator, rate``. Over a period, a rate is
  ``sum(numerator) / sum(denominator)``, never an average of the daily rates.

Rectification deadlines are judged as of today (the report's ``--as-of`` is a report option).
The folder is checked first (:func:`shared.analytics.export.check_readable`): an export written
by a newer sixstep (a newer export layout, or newer contract versions) is refused, not misread.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from shared.analytics.export import type_columns
from shared.analytics.figures import (
    COUNTS,
    PARTS,
    RATES,
    Rate,
    aftercare_sql,
    cell,
    connect_export,
    facts_sql,
    visits_sql,
)
from shared.contracts import REGISTRY

#: The figures' own views (as the README names the figures); the rest of COUNTS are parts.
COUNT_FIGURES = ("visits", "cases", "no_consent", "declined", "bad_reviews",
                 "staff_recorded_answers", "rectifications_opened", "appeals_upheld",
                 "overdue_open_cases", "followups_unreachable", "backdated_resolutions",
                 "followups_open_past_due")
FACT_VIEWS = ("case_facts", "visit_facts", "survey_facts", "rectification_facts",
              "followup_facts")


def open_history(root: Path, *, tz: str) -> duckdb.DuckDBPyConnection:
    """DuckDB over the export at ``root`` with every view of this module's docstring."""
    con = connect_export(root)
    try:
        _events_view(con)
        _figure_views(con, tz)
    except BaseException:
        con.close()
        raise
    return con


def views(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [r[0] for r in con.execute(
        "SELECT view_name FROM duckdb_views() WHERE NOT internal ORDER BY 1").fetchall()]


def _events_view(con: duckdb.DuckDBPyConnection) -> None:
    parts = []
    for contract in sorted(REGISTRY, key=lambda c: c.type):
        columns = type_columns(contract)
        envelope = ", ".join(f'"{c.name}"' for c in columns if not c.payload)
        fields = [c for c in columns if c.payload]
        # A column the export writes as JSON text (a mapping, a nested model: due_rule) goes
        # in as JSON, not as a string holding JSON: payload->'due_rule'->>'day' reads it.
        payload = ("json_object(" + ", ".join(
            f"'{c.field}', \"{c.name}\"" + ("::JSON" if c.kind == "json" else "")
            for c in fields) + ")") if fields else "'{}'::JSON"
        parts.append(f'SELECT {envelope}, {payload} AS payload FROM "{contract.type}"')
    con.execute("CREATE VIEW events AS " + "\nUNION ALL BY NAME ".join(parts))


def _figure_views(con: duckdb.DuckDBPyConnection, tz: str) -> None:
    every = "TIMESTAMPTZ 'infinity'"
    con.execute(f"CREATE VIEW case_facts AS {facts_sql(tz).replace('$as_of', every)}")
    con.execute(f"CREATE VIEW visit_facts AS {visits_sql(tz).replace('$as_of', every)}")
    for name, sql in aftercare_sql(tz).items():
        con.execute(f"CREATE VIEW {name} AS {sql.replace('$as_of', every)}")
    keys = "day, center_id, service_item"
    con.execute(f"CREATE VIEW daily_figures AS {_daily(tz, COUNTS, RATES)}")
    # Each figure's view sums only the parts that hold its counts (a part without them gives
    # its days zeros, which the view's filter drops): the same rows as over daily_figures,
    # but DuckDB binds a view's whole query when it is created, and binding daily_figures,
    # every fact view and part, for each of the ~25 figures was 2.5 s of each open.
    for count in COUNT_FIGURES:
        con.execute(f"CREATE VIEW {count} AS SELECT {keys}, {count} "
                    f"FROM ({_daily(tz, (count,), ())}) WHERE {count} > 0")
    for r in RATES:
        con.execute(f"CREATE VIEW {r.name} AS SELECT {keys}, {r.numerator} AS numerator, "
                    f"{r.denominator} AS denominator, {r.name} AS rate "
                    f"FROM ({_daily(tz, (r.numerator, r.denominator), (r,))}) "
                    f"WHERE {r.denominator} > 0")


def _daily(tz: str, counts: tuple[str, ...], rates: tuple[Rate, ...]) -> str:
    """One row per (day, center_id, service_item) with ``counts`` (each on its own day as the
    definitions anchor it) and ``rates`` over them, from the parts (``PARTS``) holding any of
    ``counts``."""
    today = f"CAST(timezone('{tz}', now()) AS DATE)"
    parts = []
    for table, anchor, held in PARTS:
        if not any(c in held for c in counts):
            continue
        cells = ", ".join(
            f"{cell(held[c].replace('$today', today))} AS {c}"
            if c in held else f"0 AS {c}" for c in counts)
        parts.append(f"SELECT {anchor} AS day, center_id, service_item, {cells} "
                     f"FROM {table} WHERE {anchor} IS NOT NULL GROUP BY ALL")
    sums = ", ".join(f"sum({c})::BIGINT AS {c}" for c in counts)
    rated = "".join(f", CASE WHEN sum({r.denominator}) > 0 THEN sum({r.numerator}) / "
                    f"sum({r.denominator}) END AS {r.name}" for r in rates)
    return (f"SELECT day, center_id, service_item, {sums}{rated} "
            f"FROM ({' UNION ALL '.join(parts)}) GROUP BY ALL")

"""``sixstep sql`` runs a script's statements in order and shows the last one's result,
without DuckDB's warning of an extra copy on the analyst's terminal."""

from __future__ import annotations

import warnings

import duckdb

from shared.cli.sql import _run


def test_a_script_runs_in_order_and_gives_the_last_result_without_a_warning() -> None:
    con = duckdb.connect()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # DuckDB's "extra copy of the rows" UserWarning
        result = _run(con, "CREATE TABLE t AS SELECT 1 AS a; SELECT 7 AS seven;\n"
                           "INSERT INTO t VALUES (2); SELECT a * 10 AS b FROM t ORDER BY a")
        assert result.column_names == ["b"] and result.column("b").to_pylist() == [10, 20]
        assert _run(con, "INSERT INTO t VALUES (3)").column_names  # DuckDB's row count
        assert _run(con, "") is None
    assert con.execute("SELECT count(*) FROM t").fetchone() == (3,)  # each statement once

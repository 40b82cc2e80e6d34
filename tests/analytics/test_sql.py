"""An analyst asks the history questions in SQL: `sixstep sql` over an export, the figures by
name, the worked example of docs/figures.md as written; the export read back by DuckDB and
pyarrow as Spark or Trino would read it (Hive partitions by month, versions in every file)."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from shared.analytics.export import EXPORT_VERSION, MANIFEST, ExportNotReadable, export
from shared.analytics.figures import RATES, compute
from shared.analytics.sql import COUNT_FIGURES, open_history
from shared.contracts import REGISTRY
from shared.settings import Settings
from tests.analytics.support import HUAMU, aftercare, month_of_march_stories, publish
from tests.cli.in_process import ran as in_process
from tests.cli.system import Ran, sixstep

ROOT = Path(__file__).resolve().parents[2]
MARCH_2, MARCH_31 = date(2026, 3, 2), date(2026, 3, 31)
TZ = "Asia/Shanghai"


def sql_blocks() -> list[tuple[str, str]]:
    """Every ```sql block of the README and docs/: (file, SQL)."""
    found = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]:
        for block in re.findall(r"```sql\n(.*?)```", path.read_text(), re.S):
            found.append((path.relative_to(ROOT).as_posix(), block))
    return found


def sql_in_process(export_dir: Path, *args: str, stdin: str | None = None) -> Ran:
    """``sixstep sql EXPORT ARGS`` in this process."""
    return in_process(["sql", str(export_dir), *args], stdin=stdin)


@pytest.fixture
async def history(settings: Settings, tmp_path: Path) -> Path:
    stories = month_of_march_stories()
    await publish(settings, stories, aftercare(stories))
    await export(settings, tmp_path / "export")
    return tmp_path / "export"


async def test_every_figure_is_a_view_that_agrees_with_the_report(history: Path) -> None:
    con = open_history(history, tz=TZ)
    report = compute(history, MARCH_2, MARCH_31, tz=TZ)
    period = "day BETWEEN DATE '2026-03-02' AND DATE '2026-03-31'"
    for name in COUNT_FIGURES:
        [(n,)] = con.execute(f"SELECT coalesce(sum({name}), 0) FROM {name} WHERE {period}")\
            .fetchall()
        assert n == report.total.counts[name], name
    for rate in RATES:
        [(num, den)] = con.execute(f"SELECT sum(numerator), sum(denominator) FROM {rate.name} "
                                   f"WHERE {period}").fetchall()
        assert (num or 0, den or 0) == (report.total.counts[rate.numerator],
                                        report.total.counts[rate.denominator]), rate.name
    assert report.total.counts["cases"] > 0 and report.total.counts["survey_answers"] > 0
    # each figure's view holds daily_figures' rows of that figure, row for row
    rows = con.execute("SELECT * FROM daily_figures")
    daily = [dict(zip([d[0] for d in rows.description], r, strict=True))
             for r in rows.fetchall()]
    for name in COUNT_FIGURES:
        assert sorted(con.execute(f"SELECT * FROM {name}").fetchall()) == sorted(
            (d["day"], d["center_id"], d["service_item"], d[name]) for d in daily
            if d[name] > 0), name
    for rate in RATES:
        assert sorted(con.execute(f"SELECT * FROM {rate.name}").fetchall()) == sorted(
            (d["day"], d["center_id"], d["service_item"], d[rate.numerator],
             d[rate.denominator], d[rate.name]) for d in daily if d[rate.denominator] > 0), \
            rate.name

    # events: every event once, its payload as JSON
    [(events,)] = con.execute("SELECT count(*) FROM events").fetchall()
    by_type = sum(con.execute(f'SELECT count(*) FROM "{c.type}"').fetchall()[0][0]
                  for c in REGISTRY)
    assert events == by_type > 0
    [(levels,)] = con.execute("SELECT count(*) FROM events WHERE type = 'RatingGiven' "
                              "AND payload->>'level' IS NOT NULL").fetchall()
    assert levels == con.execute('SELECT count(*) FROM "RatingGiven"').fetchall()[0][0] > 0
    con.close()


async def test_an_export_made_before_judged_at_existed_gives_the_same_figures(
        history: Path) -> None:
    """An export written before the backdating rule (December 2026) has no ``judged_at``
    column in CaseResolved's and FollowUpCompleted's files (no contract version changed, so
    it is read as current). The report and `sixstep sql` read it as every judged_at null: the
    same figures as the export with the column (none of March's stories is backdated)."""
    report = compute(history, MARCH_2, MARCH_31, tz=TZ)
    for kind in ("CaseResolved", "FollowUpCompleted"):
        parts = sorted((history / kind).glob("**/*.parquet"))
        assert parts, kind
        for part in parts:
            table = pq.read_table(part)
            pq.write_table(table.drop_columns(["judged_at"]), part)
    old = compute(history, MARCH_2, MARCH_31, tz=TZ)
    assert old.total.counts == report.total.counts
    con = open_history(history, tz=TZ)
    [(n,)] = con.execute("SELECT count(*) FROM events WHERE type = 'CaseResolved' "
                         "AND payload->>'judged_at' IS NULL").fetchall()
    assert n == con.execute('SELECT count(*) FROM "CaseResolved"').fetchall()[0][0] > 0
    [(on_time,)] = con.execute("SELECT coalesce(sum(numerator), 0) FROM on_time_rate "
                               "WHERE day BETWEEN DATE '2026-03-02' AND DATE '2026-03-31'"
                               ).fetchall()
    assert on_time == report.total.counts["resolved_on_time"]
    con.close()


async def test_the_readmes_sql_example_runs_as_written(history: Path) -> None:
    """Every block in one ``sixstep sql`` (a -c each: opening the export's ~60 views takes
    seconds), in this process (its start as a process of its own is
    test_sql_prints_a_table_writes_csv_and_parquet_and_says_what_is_wrong's); the worked
    example last, its result written out."""
    blocks = sql_blocks()
    example = [sql for _, sql in blocks if "payload->>'level'" in sql]
    assert example, "the worked example of the figures' definitions is gone"
    report = compute(history, date(2026, 3, 1), MARCH_31, tz=TZ, center=HUAMU)
    every = [arg for _, sql in blocks for arg in ("-c", sql)]
    ran = sql_in_process(history, *every, "-c", example[0],
                         "--out", str(history.parent / "example.csv"))
    if ran.code != 0:  # which block: one at a time
        for where, sql in blocks:
            alone = sql_in_process(history, "-c", sql)
            assert alone.code == 0, (where, sql, alone)
    assert ran.code == 0, ran
    numerator, denominator = (history.parent / "example.csv").read_text().splitlines()[1]\
        .split(",")
    assert (int(numerator), int(denominator)) == (report.total.counts["satisfied_own_answers"],
                                                  report.total.counts["own_answers"])


async def test_sql_prints_a_table_writes_csv_and_parquet_and_says_what_is_wrong(
        history: Path, tmp_path: Path) -> None:
    query = "SELECT type, count(*) AS n FROM events GROUP BY type ORDER BY type"
    ran = sixstep(ROOT, "sql", str(history), "-c", query)  # as a process of its own
    assert ran.code == 0 and "CaseOpened" in ran.out and "row(s)" in ran.out, ran

    ran = sql_in_process(history, "-c", query, "--out", str(tmp_path / "n.parquet"))
    assert ran.code == 0, ran
    written = pq.read_table(tmp_path / "n.parquet").to_pylist()
    assert {"type": "CaseOpened", "n": written[0]["n"]} in written

    ran = sql_in_process(history, stdin=query + ";\nSELECT 42 AS answer;")
    assert ran.code == 0 and "42" in ran.out, ran
    ran = sql_in_process(history)  # no -c, stdin not a terminal, nothing on it
    assert ran.code == 2 and "no SQL" in ran.flat, ran

    ran = sql_in_process(history, "-c", "SELECT nope FROM events")
    assert ran.code == 1 and "SQL error" in ran.err and "nope" in ran.err, ran
    assert "Traceback" not in ran.err

    ran = sql_in_process(tmp_path / "nothing", "-c", "SELECT 1")
    assert ran.code == 2 and "not an export" in ran.flat, ran


async def test_an_export_from_a_newer_sixstep_is_refused(history: Path) -> None:
    manifest = json.loads((history / MANIFEST).read_text())
    assert manifest["export_version"] == EXPORT_VERSION
    newer = {**manifest, "export_version": EXPORT_VERSION + 1}
    (history / MANIFEST).write_text(json.dumps(newer))
    with pytest.raises(ExportNotReadable, match="newer sixstep"):
        open_history(history, tz=TZ)
    ran = sql_in_process(history, "-c", "SELECT 1")
    assert ran.code == 2 and "refused" in ran.err and \
        f"export version {EXPORT_VERSION + 1}" in ran.flat, ran
    ran = in_process(["report", str(history), "--from", "2026-03-01", "--to", "2026-03-31"])
    assert ran.code != 0 and "newer sixstep" in ran.flat and "Traceback" not in ran.err, ran

    manifest["contracts"]["RatingGiven"]["version"] += 1
    (history / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ExportNotReadable, match="RatingGiven v"):
        open_history(history, tz=TZ)


async def test_the_export_reads_back_as_hive_partitions_in_duckdb_and_pyarrow(
        history: Path) -> None:
    """The commands docs/analysts.md gives, as written there."""
    con = duckdb.connect()
    months = dict(con.execute(
        f"SELECT month, count(*) FROM read_parquet('{history}/CaseOpened/*/*.parquet', "
        "hive_partitioning = true) GROUP BY month").fetchall())
    assert months["2026-03"] > 0

    dataset = ds.dataset(history / "CaseOpened", format="parquet", partitioning="hive")
    table = dataset.to_table()
    assert {m: table.column("month").to_pylist().count(m) for m in months} == months
    for fragment in dataset.get_fragments():
        meta = pq.read_metadata(fragment.path).metadata
        assert meta[b"sixstep.export_version"] == str(EXPORT_VERSION).encode()
        assert meta[b"sixstep.schema_version"] == str(REGISTRY.get("CaseOpened").version).encode()
        assert re.search(r"/month=\d{4}-\d{2}/part-[^/]+\.parquet$", fragment.path)


async def test_the_shell_on_a_terminal_answers_statement_by_statement(history: Path) -> None:
    main, terminal = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-c", "from shared.cli import main; main()", "sql", str(history)],
        cwd=ROOT, env={"COLUMNS": "200"}, stdin=terminal, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    os.close(terminal)
    os.write(main, b"SELECT nope;\nSELECT 6 * 7\n  AS answer;\n.tables\n.quit\n")
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        os.close(main)
    assert proc.returncode == 0, (out, err)
    assert "SQL error" in err and "nope" in err  # and the shell went on
    assert "answer" in out and "42" in out
    assert "resolution_rate" in out and "CaseOpened" in out  # .tables

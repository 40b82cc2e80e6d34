"""On-time completion (按时办结率) and on-the-spot completion (当场办结率): a hand-built week with
a time-zone trap, counted by hand, by the feedback service's figures (per center, clerk and
service item) and by the analysts' report from an export: the three agree."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from services.feedback import figures as feedback
from shared.analytics.export import export
from shared.analytics.figures import compute, connect_export
from shared.analytics.replay import Replay
from shared.analytics.sql import open_history
from shared.readmodels.readmodel import make_tables
from shared.settings import Settings
from tests.analytics.support import (
    HARDSHIP,
    HUAMU,
    LUJIAZUI,
    SHANGHAI,
    UNEMPLOYMENT,
    Aggregate,
    CaseStory,
    at,
    follow_up,
    publish,
)

MARCH_2, MARCH_6 = date(2026, 3, 2), date(2026, 3, 6)
FIGURES_DOC = Path(__file__).resolve().parents[2] / "docs" / "figures.md"


def case(center: str, item: str, clerk: str, opened: datetime,
         dues: list[tuple[datetime, str]], resolved: datetime | None,
         reopened: datetime | None = None, posted: datetime | None = None,
         story: CaseStory | None = None) -> list[dict[str, Any]]:
    """``posted``: when intake recorded a backdated resolution, more than the grace
    (``OCCURRED_AT_GRACE_S``, 72 h) after the ``resolved`` it gives: judged then less 72 h."""
    story = story or CaseStory(center, item, opened)
    a = Aggregate("intake", story, aggregate_id=story.case_id)
    a.add("CaseOpened", opened, center_id=center, counter_id="window-3", clerk_id=clerk,
          channel="counter", service_item=item, resident_id=None)
    for when, due_on in dues:
        a.add("CaseDueDateSet", when, due_on=due_on, source="deadline", cause="deadline_noted")
    if resolved is not None:
        judged = posted - timedelta(hours=72) if posted is not None else None
        a.add("CaseResolved", resolved, outcome="resolved", explanation="已办结",
              emotion_defused=True, judged_at=judged.isoformat() if judged else None)
        if posted is not None:
            a.events[-1]["recorded_at"] = posted.isoformat()
    if reopened is not None:
        a.add("CaseReopened", reopened, reason="材料有误")
    return a.events


def week() -> list[dict[str, Any]]:
    """Seven cases, 2-6 March 2026 (Shanghai):

    1. Huamu, hardship, clerk-017: due 23 Mar, resolved the day it opened: on time, on the spot.
    2. Huamu, hardship, clerk-017: due 4 Mar, resolved 5 Mar: late, not on the spot.
    3. Huamu, unemployment, clerk-020: no due date, resolved the next day: not on the spot,
       not in the on-time count.
    4. Huamu, unemployment, clerk-020: due 3 Mar, moved to 6 Mar, resolved 5 Mar: on time
       against the latest due date (late against the first).
    5. Lujiazui, hardship, clerk-031: opened 23:50 on 2 Mar, resolved 00:10 on 3 Mar (the same
       UTC day, not the same day in Shanghai): not on the spot; due 3 Mar: on time.
    6. Huamu, hardship, clerk-017: due 4 Mar, still open: in neither count.
    7. Huamu, hardship, clerk-017: due 4 Mar, resolved and reopened: in neither count.
    8. Huamu, unemployment, clerk-020: due 2 Mar, the day it opened; its resolution, posted
       on 6 Mar at 09:00, says 2 Mar 16:00: backdated beyond the 72 h grace, judged on 3 Mar
       09:00: late, and not on the spot (counted on 2 Mar, its day, as backdated).
    """
    eight = CaseStory(HUAMU, UNEMPLOYMENT, at("2026-03-02", 8, 30))
    return [
        *case(HUAMU, HARDSHIP, "clerk-017", at("2026-03-02", 9),
              [(at("2026-03-02", 9, 5), "2026-03-23")], at("2026-03-02", 9, 30)),
        *case(HUAMU, HARDSHIP, "clerk-017", at("2026-03-02", 10),
              [(at("2026-03-02", 10, 5), "2026-03-04")], at("2026-03-05", 10)),
        *case(HUAMU, UNEMPLOYMENT, "clerk-020", at("2026-03-02", 11), [],
              at("2026-03-03", 11)),
        *case(HUAMU, UNEMPLOYMENT, "clerk-020", at("2026-03-03", 9),
              [(at("2026-03-03", 9, 5), "2026-03-03"), (at("2026-03-03", 16), "2026-03-06")],
              at("2026-03-05", 15)),
        *case(LUJIAZUI, HARDSHIP, "clerk-031", at("2026-03-02", 23, 50),
              [(at("2026-03-02", 23, 55), "2026-03-03")], at("2026-03-03", 0, 10)),
        *case(HUAMU, HARDSHIP, "clerk-017", at("2026-03-02", 14),
              [(at("2026-03-02", 14, 5), "2026-03-04")], None),
        *case(HUAMU, HARDSHIP, "clerk-017", at("2026-03-02", 15),
              [(at("2026-03-02", 15, 5), "2026-03-04")], at("2026-03-02", 15, 30),
              reopened=at("2026-03-03", 9)),
        *case(HUAMU, UNEMPLOYMENT, "clerk-020", at("2026-03-02", 8, 30),
              [(at("2026-03-02", 8, 35), "2026-03-02")], at("2026-03-02", 16),
              posted=at("2026-03-06", 9), story=eight),
        *backdated_check(eight),
        *late_check(eight),
        *evening_checks(eight),
    ]


def backdated_check(story: CaseStory) -> list[dict[str, Any]]:
    """Case 8's check due 2 Mar 10:00, its completion posted on 6 Mar at 09:00 saying 2 Mar
    11:00 (follow-up's scheduler down meanwhile: never missed): judged on 3 Mar 09:00, late."""
    check = follow_up(story, at("2026-03-02", 9, 40), at("2026-03-02", 10))
    posted = at("2026-03-06", 9)
    check.add("FollowUpCompleted", at("2026-03-02", 11), outcome="done", channel="phone",
              judged_at=(posted - timedelta(hours=72)).isoformat())
    check.events[-1]["recorded_at"] = posted.isoformat()
    return check.events


def late_check(story: CaseStory) -> list[dict[str, Any]]:
    """Case 8's second check, due 2 Mar 10:00, done and posted on 4 Mar at 10:00 (within the
    grace: not backdated) while follow-up's scheduler was down: never missed, and late all
    the same (judged on the day it was done, not on what the scheduler saw)."""
    check = follow_up(story, at("2026-03-02", 9, 45), at("2026-03-02", 10))
    check.add("FollowUpCompleted", at("2026-03-04", 10), outcome="done", channel="phone")
    return check.events


def evening_checks(story: CaseStory) -> list[dict[str, Any]]:
    """Case 8's two calls hand-set for Thursday 5 Mar at 18:00, after closing: the scheduler
    misses them at Friday's closing, their working day. Both done on Friday 6 Mar at 10:00.
    The one recorded with its working day (``due_by``, 6 Mar) is on time; it was counted late
    against the date of its due moment (the 5th), a day nobody could do it on. The one
    recorded before ``due_by`` existed is judged as then: late (no closed month recounted)."""
    events = []
    for due_by in ("2026-03-06", None):
        call = follow_up(story, at("2026-03-04", 9), at("2026-03-05", 18))
        call.add("FollowUpCompleted", at("2026-03-06", 10), outcome="done", channel="phone",
                 **({"due_by": due_by} if due_by else {}))
        events += call.events
    return events


def as_exported_before_typed_columns(root: Path, fmt: str) -> None:
    """Rewrite ``judged_at`` as exports before typed columns wrote an optional moment: JSON
    text (``'"2026-03-03T09:00:00+08:00"'``), the way an analyst's older export holds it."""
    for kind in ("CaseResolved", "FollowUpCompleted"):
        parts = sorted((root / kind).glob(f"**/*.{fmt}"))
        assert parts, kind
        for part in parts:
            table = pq.read_table(part) if fmt == "parquet" else pacsv.read_csv(part)
            i = table.schema.get_field_index("judged_at")
            texts = [None if v is None else orjson.dumps(v.isoformat()).decode()
                     for v in table.column(i).to_pylist()]
            table = table.set_column(i, "judged_at", pa.array(texts, pa.string()))
            if fmt == "parquet":
                pq.write_table(table, part)
            else:
                pacsv.write_csv(table, part)


def rates(on_time: tuple[int, int], on_the_spot: tuple[int, int]) -> dict[str, Any]:
    def rate(n: int, d: int) -> dict[str, Any]:
        return {"numerator": n, "denominator": d, "rate": round(n / d, 6) if d else None}

    return {"on_time_rate": rate(*on_time), "on_the_spot_rate": rate(*on_the_spot)}


#: Worked out by hand from :func:`week`'s docstring: (on time, with a due date), (on the spot,
#: resolved).
BY_HAND = {
    ("center_id", HUAMU): rates((2, 4), (1, 5)),
    ("center_id", LUJIAZUI): rates((1, 1), (0, 1)),
    ("clerk_id", "clerk-017"): rates((1, 2), (1, 2)),
    ("clerk_id", "clerk-020"): rates((1, 2), (0, 3)),
    ("clerk_id", "clerk-031"): rates((1, 1), (0, 1)),
    ("service_item", HARDSHIP): rates((2, 3), (1, 3)),
    ("service_item", UNEMPLOYMENT): rates((1, 2), (0, 3)),
}
TOTAL = rates((3, 5), (1, 6))


async def test_on_time_and_on_the_spot_completion_by_hand_service_and_report(
        settings: Settings, tmp_path: Path) -> None:
    await publish(settings, [], week())

    # The feedback service's figures: the projection over a replay, the service's queries.
    conn = await asyncpg.connect(settings.database_url)
    tx = conn.transaction()
    await tx.start()
    try:
        await make_tables(conn, f"{settings.schema_prefix}completion_check", feedback.DDL,
                          local=True)
        projection = feedback.FiguresProjection(SHANGHAI)
        async with Replay(settings) as replay:
            async for batch in replay:
                await projection.apply(conn, batch.events)

        async def service(group_by: tuple[str, ...]) -> dict[Any, dict[str, Any]]:
            query = feedback.FigureQuery(period="all", date_from=MARCH_2, date_to=MARCH_6,
                                         as_of=MARCH_6, group_by=group_by)  # type: ignore[arg-type]
            return {tuple(r[d] for d in group_by): {k: r[k] for k in TOTAL}
                    for r in await feedback.compute(conn, query)}

        assert await service(()) == {(): TOTAL}
        [row] = await feedback.compute(conn, feedback.FigureQuery(
            period="all", date_from=MARCH_2, date_to=MARCH_6, as_of=MARCH_6, group_by=()))
        assert row["backdated_resolutions"] == 1  # case 8, seen by the supervisor
        assert row["followups_on_time_rate"] == {"numerator": 1, "denominator": 4,
                                                 "rate": 0.25}
        for dimension in ("center_id", "clerk_id", "service_item"):
            found = await service((dimension,))
            expected = {(value,): figures for (d, value), figures in BY_HAND.items()
                        if d == dimension}
            assert found == expected, dimension
    finally:
        await tx.rollback()
        await conn.close()

    # The analysts' report from an export agrees, in total, per center and per item.
    await export(settings, tmp_path / "export")

    def report_of(root: Path, center: str | None = None) -> Any:
        return compute(root, MARCH_2, MARCH_6, tz="Asia/Shanghai", center=center,
                       as_of=at("2026-03-06", 23, 59))

    def report(center: str | None = None) -> Any:
        return report_of(tmp_path / "export", center)

    def as_rates(counts: dict[str, int]) -> dict[str, Any]:
        return rates((counts["resolved_on_time"], counts["resolved_with_due"]),
                     (counts["resolved_on_the_spot"], counts["resolved"]))

    whole = report()
    assert as_rates(whole.total.counts) == TOTAL
    for center in (HUAMU, LUJIAZUI):
        assert as_rates(report(center).total.counts) == BY_HAND[("center_id", center)]
    for row in whole.by_item:
        assert as_rates(row.counts) == BY_HAND[("service_item", row.key)], row.key
    assert whole.total.rates["on_time_rate"] == 3 / 5
    assert whole.total.rates["on_the_spot_rate"] == 1 / 6
    assert whole.total.counts["backdated_resolutions"] == 1
    assert (whole.total.counts["followups_on_time"],
            whole.total.counts["followups_closed"]) == (1, 4)

    # docs/figures.md's event query of the two rates (Huamu, March 2026), run as written.
    [doc_sql] = [sql for sql in re.findall(r"```sql\n(.*?)```", FIGURES_DOC.read_text(), re.S)
                 if "CaseDueDateSet" in sql]
    con = open_history(tmp_path / "export", tz="Asia/Shanghai")
    try:
        [(on_time, with_due, on_the_spot, resolved)] = con.execute(doc_sql).fetchall()
    finally:
        con.close()
    assert rates((on_time, with_due), (on_the_spot, resolved)) == BY_HAND[("center_id", HUAMU)]

    # judged_at is a timestamp, in the files and in the views `sixstep sql` and the report
    # read; a CSV export, and exports written before the column was typed (JSON text), read
    # as the same moments and give the same figures.
    for part in (tmp_path / "export" / "CaseResolved").glob("**/*.parquet"):
        assert pq.read_schema(part).field("judged_at").type == pa.timestamp("us", tz="UTC")
    await export(settings, tmp_path / "csv", fmt="csv")
    assert report_of(tmp_path / "csv").total == whole.total
    for root, fmt in ((tmp_path / "export", "parquet"), (tmp_path / "csv", "csv")):
        as_exported_before_typed_columns(root, fmt)
        assert report_of(root).total == whole.total, fmt
        con = connect_export(root)
        try:
            for kind in ("CaseResolved", "FollowUpCompleted"):
                [(judged, column_type)] = con.execute(
                    f'SELECT max(judged_at), typeof(max(judged_at)) FROM "{kind}"').fetchall()
                assert (judged, column_type) == (at("2026-03-03", 9),
                                                 "TIMESTAMP WITH TIME ZONE"), (fmt, kind)
        finally:
            con.close()

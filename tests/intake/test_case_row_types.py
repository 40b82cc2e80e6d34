"""The composite types the cases projection sends its rows as (``bulk.RowType``) against the
tables they fill: a field of another type than its column is cast on the way in, where the
column arrays asyncpg sent before were of the table's own types."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from services.intake.main import create_app
from services.intake.projections import CASE_CHANGE, CASE_ROW, TIMELINE_ROW
from shared.kernel.clock import ManualClock
from shared.settings import Settings
from tests.intake.case_tables import with_case_tables
from tests.intake.test_counter_day import open_case, step
from tests.readmodel_tables import column_types
from tests.support import running, stream_envelopes

#: A clerk's words as residents say them: quotes, backslashes, the characters a composite's
#: text form quotes (commas, parentheses, braces), emoji, Chinese punctuation, and length.
WORDS = ('他说："不行"，（再问问）【低保】《条例》……——；', 'a\\b \\\\ "q" \'s\' (x, y) {z} ,,',
         '😀🧧 家里有困难 ‼', 'NULL', '\\N', '行一\n行二\t制表\r', '长' * 4000)


async def test_each_row_type_has_its_tables_columns_and_their_types(
        settings: Settings) -> None:
    """A later release that adds a column to ``cases`` or widens one (``version`` to bigint)
    and not the type would have the live INSERT leave the column empty, or refuse a value
    the table takes: each type has its table's columns (``cases`` less ``projected_at``,
    the timeline's payload as text), each of the column's own type."""
    conn = await with_case_tables(settings)
    try:
        cases = await column_types(conn, "cases")
        timeline = await column_types(conn, "case_timeline")
        row = await column_types(conn, CASE_ROW.name)
        step = await column_types(conn, TIMELINE_ROW.name)
        change = await column_types(conn, CASE_CHANGE.name)
        assert row == {c: t for c, t in cases.items() if c != "projected_at"}
        assert step == {**timeline, "payload": "text"}
        assert {c: t for c, t in change.items() if c != "?patched"} == {
            c: cases[c] for c in change if c != "?patched"}
    finally:
        await conn.close()


async def test_a_clerks_words_and_the_calendars_edges_come_back_as_they_were_said(
        settings: Settings) -> None:
    """New Year's Eve, 23:30 in Shanghai (15:30 UTC, the UTC day before): what the clerk
    typed goes into the timeline through one composite array and comes back from the case's
    read exactly, with a deadline on 29 February 2028 (a year the holiday package does not
    know) and one on Sunday 20 December 2026."""
    eve = datetime(2026, 12, 31, 23, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
    async with running(create_app(settings, clock=ManualClock(eve))) as client:
        case_id = (await open_case(client))["id"]
        last = 0
        for words in WORDS:
            r = await step(client, case_id, "hear", {"words": words,
                                                     "occurred_at": eve.isoformat()})
            assert r.status_code == 200, r.text
        for due_on in ("2028-02-29", "2026-12-20"):
            r = await step(client, case_id, "deadlines", {"due_on": due_on,
                                                          "description": WORDS[0]})
            assert r.status_code == 200, r.text
            last = r.json()["position"]
        r = await client.get(f"/cases/{case_id}", params={"after": last})
        assert r.status_code == 200, r.text
        case = r.json()
        heard = [t for t in case["timeline"] if t["type"] == "RequestHeard"]
        # As the command kept them (the ends of a text trimmed at the door), byte for byte.
        assert [t["payload"]["words"] for t in heard] == [w.strip() for w in WORDS]
        assert {t["occurred_at"][:19] for t in heard} == {"2026-12-31T15:30:00"}
        noted = [t["payload"] for t in case["timeline"] if t["type"] == "DeadlineNoted"]
        assert [(n["due_on"], n["description"]) for n in noted] == [
            ("2028-02-29", WORDS[0]), ("2026-12-20", WORDS[0])]
        assert case["next_deadline"] == "2026-12-20" and case["stage"] == "heard"
    logged = {e.aggregate_version: e.payload for e in await stream_envelopes(settings)
              if str(e.case_id) == case_id}
    assert {t["version"]: t["payload"] for t in case["timeline"]} == logged

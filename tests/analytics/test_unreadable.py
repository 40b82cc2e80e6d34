"""Old events the contracts now refuse are reported and skipped, and the rest goes on; a CSV
export never hands a spreadsheet a formula."""

from __future__ import annotations

import asyncio
import csv
import os
import sys
import uuid
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from shared.analytics.export import export, read_manifest
from shared.analytics.replay import Replay
from shared.contracts import REGISTRY
from shared.settings import Settings
from tests.analytics.support import (
    CaseStory,
    at,
    follow_up,
    month_of_march_stories,
    publish,
    rated,
    survey,
)

SIXSTEP = str(Path(sys.executable).with_name("sixstep"))


def poison(stories: list[CaseStory]) -> list[dict[str, Any]]:
    """Two events as an older release stored them, before the APIs bounded moments: a case
    'opened' in the year 1 (+14:00: before year 1 in UTC), and a follow-up due in the year 1."""
    early = stories[0].events()[0] | {
        "event_id": str(uuid.uuid4()), "aggregate_id": str(uuid.uuid4()), "position": 9001,
        "occurred_at": "0001-01-01T00:00:00+14:00"}
    due = follow_up(stories[1], at("2026-03-02", 12), at("2026-03-03", 10)).events[0]
    due["payload"]["due_at"] = "0001-01-01T00:00:00+14:00"
    # At the current version, so that replay hands it on as stored (an older version is
    # upcast, and its payload checked on the way).
    due.update(version=REGISTRY.get(due["type"]).version)
    due["payload"]["basis"] = "official"
    return [early, due]


async def test_an_old_out_of_range_event_is_named_and_skipped_and_the_export_goes_on(
        settings: Settings, tmp_path: Path) -> None:
    stories = month_of_march_stories()
    bad = poison(stories)
    published = await publish(settings, stories, bad)

    for fmt in ("parquet", "csv"):
        result = await export(settings, tmp_path / fmt, fmt=fmt)
        assert not result.stopped
        assert result.unreadable == 2
        assert {u.event_id for u in result.unreadable_events} == {e["event_id"] for e in bad}
        manifest = read_manifest(tmp_path / fmt)
        assert manifest["unreadable"]["count"] == 2
        assert sum(f["rows"] for f in manifest["files"]) == published - 2

    async with Replay(settings) as replay:
        seen = [e async for batch in replay for e in batch.events]
    assert replay.undecodable == 1 and replay.unreadable[0].event_id == bad[0]["event_id"]
    assert len(seen) == published - 1, "replay hands on the payload as stored"


async def test_the_cli_reports_them_and_fails_only_when_asked(settings: Settings,
                                                              tmp_path: Path) -> None:
    stories = month_of_march_stories()[:2]
    bad = poison(stories)
    await publish(settings, stories, bad)
    env = {**os.environ, "NATS_URL": settings.nats_url, "STREAM_NAME": settings.stream_name,
           "SUBJECT_PREFIX": settings.subject_prefix, "PARTITIONS": str(settings.partitions),
           "COLUMNS": "200"}

    async def sixstep(*args: str) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(SIXSTEP, *args, env=env,
                                                    stderr=asyncio.subprocess.PIPE,
                                                    stdout=asyncio.subprocess.DEVNULL)
        _, stderr = await asyncio.wait_for(proc.communicate(), 60)
        return proc.returncode or 0, stderr.decode()

    code, said = await sixstep("export", str(tmp_path / "x"), "--format", "csv", "--strict")
    assert code == 3, said
    assert "2 event(s) could not be converted" in said
    assert all(e["event_id"] in said for e in bad)
    code, said = await sixstep("replay")
    assert code == 0, said
    assert bad[0]["event_id"] in said


FORMULAS = ["=cmd|' /C calc'!A0", "+1 555 0100", "-2+3", "@SUM(A1:A9)", "\tx", "\r=1"]


async def test_a_comment_that_is_a_formula_reaches_csv_neutralised_and_parquet_as_written(
        settings: Settings, tmp_path: Path) -> None:
    story = month_of_march_stories()[0]
    answers = [rated(survey(story, at("2026-03-02", 9, 30)), at("2026-03-02", 12), "satisfied")
               for _ in FORMULAS]
    for answer, comment in zip(answers, FORMULAS, strict=True):
        answer.events[-1]["payload"]["comment"] = comment
    await publish(settings, [story], [e for a in answers for e in a.events])

    await export(settings, tmp_path / "csv", fmt="csv")
    rows = []
    for path in (tmp_path / "csv" / "RatingGiven").rglob("*.csv"):
        with path.open(newline="") as f:
            rows += list(csv.DictReader(f))
    assert sorted(r["comment"] for r in rows) == sorted("'" + c for c in FORMULAS)
    assert not [cell for r in rows for cell in r.values() if cell[:1] and cell[0] in "=+-@\t\r"]

    await export(settings, tmp_path / "parquet")
    parquet = pq.read_table(tmp_path / "parquet" / "RatingGiven").to_pylist()
    assert sorted(r["comment"] for r in parquet) == sorted(FORMULAS)

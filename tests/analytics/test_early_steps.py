"""A step of a case published ahead of the case's opening (an untidy log: a restored or merged
stream, a republish) does to intake's ``cases`` what it does one event at a time, wherever the
batches end and on both paths (the live handler, a rebuild's COPY path): it is kept in the
case's timeline and changes no row, since there is none yet when it arrives. So do a
follow-up's step ahead of its scheduling and a survey's or a rectification's ahead of its
request or opening, to follow-up's worklists and feedback's views."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from structlog.testing import capture_logs

from services.intake.projections import CASE_COLUMNS
from shared.analytics.rebuild import Rebuild, q
from shared.readmodels.readmodel import load_read_model
from shared.settings import Settings
from tests.analytics.support import HARDSHIP, HUAMU, LUJIAZUI, UNEMPLOYMENT, CaseStory, at
from tests.analytics.test_bulk_rebuild import differing, publish, step, untidy_log

#: The calendar's edges: a Sunday (20 Dec 2026), New Year's Eve late in Shanghai, a day of
#: 2027 (provisional holidays), one of 2028 (a year nobody published yet).
DAYS = [at("2026-12-20", 10), at("2026-12-31", 23, 30), at("2027-02-10", 9),
        at("2028-05-02", 15)]

#: Every step of a case that changes its ``cases`` row, as it would arrive early.
EARLY: list[tuple[str, int, dict[str, Any]]] = [
    ("RequestHeard", 1, {"words": "想问问"}),
    ("RequestRestated", 1, {"restatement": "您是想问补贴", "confirmed": True}),
    ("ConcernsNoted", 2, {"needs": [], "worries": [], "emotion": "angry", "urgency": "urgent",
                          "needs_defusing": True}),
    ("GuidanceGiven", 1, {"service_item": HARDSHIP, "policy_basis": "条例",
                          "eligibility": "more_documents", "promised": "",
                          "missing_documents": []}),
    ("DeadlineNoted", 1, {"deadline_id": str(uuid.uuid4()), "due_on": "2026-12-01",
                          "description": "申请截止"}),
    ("CaseDueDateSet", 1, {"due_on": "2028-05-08", "source": "moved", "cause": "moved",
                           "basis": "provisional", "previous_due_on": None}),
    ("CaseHandedOver", 1, {"to_clerk": "clerk-019", "to_team": None,
                           "first_clerk": "clerk-017", "reason": "早到"}),
    ("CaseResolved", 1, {"outcome": "partly_resolved", "explanation": "已办结",
                         "emotion_defused": False}),
    ("CaseReopened", 1, {"reason": "没有解决"}),
    ("ObligationDeclared", 1, {"obligation_id": str(uuid.uuid4()), "description": "每月报销",
                               "cadence": "monthly", "next_due_on": "2027-01-04"}),
]


def early_log() -> list[dict[str, Any]]:
    """Per step type a case whose step (version 9) is on the stream before its opening, a
    filler case between them (so that batches of 2 and 7 split some pairs and keep others),
    then the case's own steps; per type a case with the early step and its opening alone; and
    one case that has two early steps."""
    out: list[dict[str, Any]] = []
    for n, (type_name, schema_version, payload) in enumerate(EARLY):
        when = DAYS[n % len(DAYS)]
        story = CaseStory(HUAMU if n % 2 else LUJIAZUI, UNEMPLOYMENT, when, outcome=None)
        early = step("intake", type_name, story, story.case_id, 9, when + timedelta(hours=1),
                     payload, schema_version=schema_version)
        filler = CaseStory(HUAMU, HARDSHIP, when + timedelta(minutes=n)).events()
        out += [early, *filler[: n % 3], *story.events(), *filler[n % 3:]]
        # Its case's last step: nothing after the opening covers what it would change.
        bare = CaseStory(HUAMU, HARDSHIP, when, outcome=None)
        out += [step("intake", type_name, bare, bare.case_id, 9, when + timedelta(hours=1),
                     payload, schema_version=schema_version), bare.events()[0]]
    story = CaseStory(HUAMU, HARDSHIP, DAYS[1], outcome=None)
    out += [step("intake", "CaseHandedOver", story, story.case_id, 8, DAYS[1], EARLY[6][2]),
            step("intake", "CaseResolved", story, story.case_id, 9, DAYS[1], EARLY[7][2]),
            *story.events()]
    return out


async def build(settings: Settings, conn: asyncpg.Connection, ref: str, batch: int,
                copy: bool) -> str:
    """The read model rebuilt from the stream into a schema of its own."""
    async with Rebuild(settings, load_read_model(ref), batch_size=batch, copy=copy) as rb:
        staging = await rb.prepare(fresh=True)
        await rb.catch_up()
    kept = f"{settings.schema_prefix}{ref.replace('.', '_')}_{batch}_{int(copy)}"
    await conn.execute(f"DROP SCHEMA IF EXISTS {q(kept)} CASCADE")
    await conn.execute(f"ALTER SCHEMA {q(staging)} RENAME TO {q(kept)}")
    return kept


async def changed(conn: asyncpg.Connection, expected: str, built: str) -> list[str]:
    """The early steps whose cases' rows differ between two builds (and the tables that
    differ, should any other)."""
    found = await differing(conn, expected, built)
    cols = ", ".join(q(c) for c in CASE_COLUMNS)
    types = await conn.fetch(
        f"SELECT DISTINCT t.type FROM {q(expected)}.case_timeline t WHERE t.version >= 8"
        f" AND t.case_id IN (SELECT case_id FROM (SELECT {cols} FROM {q(expected)}.cases"
        f" EXCEPT ALL SELECT {cols} FROM {q(built)}.cases) x)")
    return sorted([*(r["type"] for r in types), *(t for t in found if t != "cases")])


async def test_a_step_ahead_of_its_opening_leaves_the_same_rows_wherever_batches_end(
        settings: Settings) -> None:
    log = early_log()
    early_cases = {e["case_id"] for e in log if e["aggregate_version"] >= 8}
    await publish(settings, log)
    conn = await asyncpg.connect(settings.database_url)
    try:
        built: dict[tuple[int, bool], str] = {}
        named: dict[tuple[int, bool], set[str]] = {}
        for batch in (1, 2, 7, 1000):
            for copy in (False, True):
                with capture_logs() as logged:
                    built[batch, copy] = await build(settings, conn, "intake", batch, copy)
                named[batch, copy] = {c for e in logged
                                      if e["event"] == "cases.steps_without_opening"
                                      for c in e["case_ids"]}
        one_by_one = built.pop((1, False))
        # One event at a time: no early step touched a row (the opening's own values stand).
        assert await conn.fetchval(f"SELECT count(*) FROM {q(one_by_one)}.cases") == \
            3 * len(EARLY) + 1
        rows = await conn.fetch(
            f"SELECT * FROM {q(one_by_one)}.cases WHERE case_id IN (SELECT case_id"
            f" FROM {q(one_by_one)}.case_timeline WHERE version >= 8)")
        assert len(rows) == 2 * len(EARLY) + 1
        assert {(r["stage"], r["status"], r["owner_clerk"], r["reopen_count"], r["due_on"],
                 r["next_deadline"], r["eligibility"]) for r in rows} == {
            ("guided", "open", None, 0, None, None, "eligible"),
            ("opened", "open", None, 0, None, None, None)}
        assert {r["version"] for r in rows} == {1, 4}  # the opening's, or its last step's
        # ... and it is in the case's timeline.
        assert await conn.fetchval(
            f"SELECT count(*) FROM {q(one_by_one)}.case_timeline WHERE version >= 8") == \
            2 * len(EARLY) + 2
        differ = {key: await changed(conn, one_by_one, other)
                  for key, other in built.items()}
        assert not any(differ.values()), differ
        # Each case whose early steps changed nothing is named in the log, whatever the batches.
        assert {key: cases == early_cases for key, cases in named.items()} == dict.fromkeys(
            named, True)
    finally:
        await conn.close()


def second_first(service: str) -> list[dict[str, Any] | bytes]:
    """The untidy log's events of ``service``, each aggregate's second event moved ahead of
    its first (a survey answered before it was requested, a follow-up done before it was
    scheduled, a rectification triaged before it was opened)."""
    out: list[dict[str, Any]] = []
    first: dict[str, int] = {}
    seen: dict[str, int] = {}
    for e in untidy_log():
        if isinstance(e, bytes) or e["service"] != service:
            continue
        n = seen[e["aggregate_id"]] = seen.get(e["aggregate_id"], 0) + 1
        if n == 1:
            first[e["aggregate_id"]] = len(out)
            out.append(e)
        elif n == 2:
            out.insert(first[e["aggregate_id"]], e)
            first = {a: i + (i >= first[e["aggregate_id"]]) for a, i in first.items()}
        else:
            out.append(e)
    return out


@pytest.mark.parametrize("ref", ["followup", "feedback"])
async def test_a_step_ahead_of_its_making_leaves_the_same_worklists_and_views(
        settings: Settings, ref: str) -> None:
    await publish(settings, second_first(ref))
    conn = await asyncpg.connect(settings.database_url)
    try:
        one_by_one = await build(settings, conn, ref, 1, False)
        differ = {(batch, copy): await differing(
            conn, one_by_one, await build(settings, conn, ref, batch, copy))
            for batch in (2, 7, 1000) for copy in (False, True)}
        assert not any(differ.values()), differ
    finally:
        await conn.close()

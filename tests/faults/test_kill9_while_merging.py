"""kill -9 of feedback while its intake follower merges batches (``Merging``: the next batch
applied in the one waiting for its survey requests' round, both committed and acked
together): killed during a round, after a merged apply, between a commit and its ack, as the
load falls. After each start again every resolution's survey is asked exactly once and each
case comes out as every other case of the same story does: nothing skipped, nothing twice,
nothing out of the case's order."""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from typing import Any

import asyncpg
import httpx

from services.feedback.domain import survey_id_for_resolution
from shared.security.principals import Role
from shared.settings import Settings
from tests.faults.harness import Load, System, audit, read_log
from tests.support import bearer, token_for

KILLS = 6


class Resolutions(Load):
    """Cases heard and resolved, nothing after: batches of lone survey requests, the ones
    that take the next batch in (a batch with a reopening's run of steps does not)."""

    STORY = Load.STORY[:4]  # opened, heard, concerns, resolved

    async def _write(self, client: httpx.AsyncClient, url: str, key: str,
                     body: dict[str, Any]) -> dict[str, Any]:
        return await super()._write(client, url, f"rush-{key}", body)  # keys of its own


async def _merged(system: System, settings: Settings) -> int:
    """The batches feedback's intake follower merged since its last start (``/ops``)."""
    ops = {"Authorization": f"Bearer {token_for(settings, Role.OPS, center=None)}"}
    async with httpx.AsyncClient(timeout=5.0, trust_env=False) as client:
        r = await client.get(f"{system['feedback'].url}/ops/consumers", headers=ops)
    r.raise_for_status()
    return sum(c["merged"] for c in r.json()["consumers"])


def _outcome(events: list[str]) -> str | None:
    """What became of a resolution's survey: never asked (None), withdrawn, or standing
    (sent, redirected to a text, answered...); asked once at most."""
    if not events:
        return None
    assert events[0] == "SurveyRequested" and events.count("SurveyRequested") == 1, events
    return "withdrawn" if "SurveyWithdrawn" in events else "stands"


async def test_kill_9_feedback_while_its_follower_merges_batches(
        system: System, settings: Settings) -> None:
    """An evening's rush at the windows (Sun 20 Dec 2026 is what the stories say; the clock
    is the machine's): resolved, reopened by staff and resolved again, case after case, and
    a rush of cases resolved at once, so that each batch's round has the next batch
    arriving. Feedback is killed six times mid-load and started again."""
    system.add("intake")
    # Its rounds wait for a burst's rest (up to 50 ms): the next batch arrives while one waits.
    system.add("feedback", GROUP_COMMIT_MAX_WAIT_MS="50")
    await system.start()
    load = Load(system["intake"].url, headers=bearer(settings), workers=4, pause_s=0.0)
    rush = Resolutions(system["intake"].url, headers=bearer(settings), workers=12,
                       pause_s=0.0)
    load.start()
    rush.start()
    merged = 0
    try:
        for i in range(KILLS):
            await load.until_writes(load.writes + 30 + 7 * i)  # a different point each time
            merged += await _merged(system, settings)
            system["feedback"].kill9()
            await load.until_writes(load.writes + 12)
            await system["feedback"].start()
        await load.until_writes(load.writes + 60)
    finally:
        await load.stop()
        await rush.stop()
    report = await audit(settings, load, services=("intake", "feedback"))
    merged += await _merged(system, settings)
    print(f"kill -9 feedback x{KILLS} while merging: {report}, merged batches {merged}")

    log = [e.envelope for e in await read_log(settings)]
    resolutions: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    for e in log:
        if e.service == "intake" and e.type == "CaseResolved" and e.case_id is not None:
            resolutions[e.case_id].append(e.event_id)
    by_survey: dict[uuid.UUID, list[str]] = defaultdict(list)
    for e in log:
        if e.service == "feedback":
            by_survey[e.aggregate_id].append(e.type)
    conn = await asyncpg.connect(settings.database_url)
    try:
        rows = {r["case_id"]: r for r in await conn.fetch(
            f'SELECT case_id, last_survey_id, last_survey_at IS NULL AS no_day'
            f' FROM "{settings.schema_for("feedback")}".intake_cases')}
    finally:
        await conn.close()
    stories: Counter[tuple[object, ...]] = Counter()
    for case_id, resolved in resolutions.items():
        surveys = [survey_id_for_resolution(r) for r in resolved]
        row = rows.get(case_id)
        assert row is not None, f"case {case_id}: no row of feedback's follower"
        stories[(
            tuple(_outcome(by_survey.get(s, [])) for s in surveys),
            surveys.index(row["last_survey_id"]) if row["last_survey_id"] in surveys else None,
            row["no_day"])] += 1
    for story, n in stories.most_common():
        print(f"{n:4d} x {story}")
    # The reopening withdraws the first survey if it has not gone yet, and the second
    # resolution then asks anew; a reopening read after the first survey went (feedback
    # down, the reopening behind it on the stream) leaves that one standing, none asked anew.
    withdrawn_asked_anew = (("withdrawn", "stands"), 1, False)
    gone_stands = (("stands", None), 0, False)
    resolved_once = (("stands",), 0, False)
    assert set(stories) <= {withdrawn_asked_anew, gone_stands, resolved_once}, stories
    assert stories[resolved_once] == rush.stories, stories
    assert stories[withdrawn_asked_anew] > 0, stories
    assert merged > 0, "no batch was merged: the test did not reach the merging"

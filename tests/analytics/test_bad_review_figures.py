"""Bad reviews the 好差评 way in the figures: a hand-built week whose every number is worked out
below, through the feedback service's figures projection and through the analysts' export, and
the two agree. Old events (``RevisitRequested`` v1) are read as they always were.

Huamu, Monday 2 March 2026: five visits, five resolution surveys answered that day.

- s0 dissatisfied, named (r0, deadline 3 Mar): the clerk appeals, a supervisor upholds it
  (malicious) on 3 Mar: it leaves bad_reviews, satisfaction and the on-time rate (r0 is past
  its deadline and never completed), and counts in appeals_upheld.
- s1 very dissatisfied, named (r1): triaged immediate on 3 Mar (deadline 4 Mar); appealed and
  the appeal rejected; completed 4 Mar (on time); the SMS revisit (v1 ``RevisitRequested``)
  expired unanswered, asked again by phone (attempt 2), answered satisfied 6 Mar: revisited.
- s2 dissatisfied, named (r2): triaged explain on 3 Mar (deadline 24 Mar), completed 5 Mar;
  its revisit expired, asked again (attempt 2), still unanswered: not revisited.
- s3 dissatisfied, anonymous (r3): triaged limited on 2 Mar (deadline 9 Mar), not completed
  and not yet due on 6 Mar.
- s4 satisfied.
- s5 dissatisfied, named (r5): completed 5 Mar; the clerk's revisit call reaches the resident,
  who would rather not rate (``SurveyDeclined``, 6 Mar): revisited (the center reached them,
  as 12345 / 好差评 count a contacted resident), though no answer and no revisit satisfaction.

By hand, 2-6 March, as of 6 March: satisfaction 1/5 (s0 out), response 6/6, bad reviews 4,
appeals upheld 1, rectifications opened 5, on time 3/3 (r1, r2, r5; r0 out, r3 not due),
revisit satisfaction 1/1, 实名差评回访率 2/3 (r1 and r5 of r1, r2, r5; r0 out, r3 anonymous).
Before, a declined revisit ended the board's task but not the figure: 1/3.
"""

from __future__ import annotations

import uuid
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from services.feedback import figures as feedback
from shared.analytics.export import export
from shared.analytics.figures import RATES, Row, compute
from shared.analytics.replay import Replay
from shared.readmodels.readmodel import make_tables
from shared.settings import Settings
from tests.analytics.support import (
    HARDSHIP,
    HUAMU,
    SHANGHAI,
    Aggregate,
    CaseStory,
    at,
    publish,
    rated,
    survey,
)

MARCH_2, MARCH_6 = date(2026, 3, 2), date(2026, 3, 6)

BY_HAND: dict[str, Any] = {
    "satisfaction_rate": (1, 5), "response_rate": (6, 6), "bad_reviews": 4,
    "appeals_upheld": 1, "rectifications_opened": 5, "rectification_on_time_rate": (3, 3),
    "revisit_satisfaction_rate": (1, 1), "named_revisit_rate": (2, 3),
}


def stories() -> list[CaseStory]:
    return [CaseStory(HUAMU, HARDSHIP, at("2026-03-02", 9 + n)) for n in range(6)]


def rectification(story: CaseStory, answered: Aggregate, level: str, deadline: str,
                  named: bool = True) -> Aggregate:
    r = Aggregate("feedback", story)
    return r.add("RectificationOpened", at("2026-03-02", 17), rectification_id=str(r.id),
                 resident_id=str(uuid.uuid4()) if named else None, rating=level,
                 deadline_on=deadline, survey_id=str(answered.id), counted_from="2026-03-02",
                 working_days=5)


def triaged(r: Aggregate, day: str, track: str, deadline: str, previous: str) -> None:
    r.add("RectificationTriaged", at(day, 10), rectification_id=str(r.id), track=track,
          working_days={"immediate": 1, "limited": 5, "explain": 15}[track],
          counted_from=day, deadline_on=deadline, previous_deadline_on=previous)


def appealed(r: Aggregate, answered: Aggregate, decision: str) -> None:
    r.add("RectificationAppealed", at("2026-03-03", 9), rectification_id=str(r.id),
          survey_id=str(answered.id), reasons="居民所评非本窗口事项")
    r.add("RectificationAppealDecided", at("2026-03-03", 11), rectification_id=str(r.id),
          survey_id=str(answered.id), decision=decision,
          grounds="malicious" if decision == "upheld" else None, reasons="经复核",
          appealed_by="clerk-017")


def completed(r: Aggregate, day: str, deadline: str) -> None:
    r.add("RectificationCompleted", at(day, 15), rectification_id=str(r.id),
          outcome="rectified", actions="当面道歉并补办", deadline_on=deadline,
          completed_on=day, on_time=day <= deadline)


def revisits(story: CaseStory, r: Aggregate, answered_on: str | None) -> list[Aggregate]:
    """An SMS revisit (asked by a v1 ``RevisitRequested``) that expired, asked again by phone;
    the second answered satisfied on ``answered_on``, or still open."""
    first = survey(story, at("2026-03-03", 16), "revisit", r.id)
    r.add("RevisitRequested", at("2026-03-03", 16), rectification_id=str(r.id),
          survey_id=str(first.id))
    v1 = r.events[-1]  # exactly as the relay published it before v2
    v1["version"], v1["payload"] = 1, {"rectification_id": str(r.id),
                                       "survey_id": str(first.id)}
    first.add("SurveyExpired", at("2026-03-05", 16), survey_id=str(first.id), purpose="revisit",
              was_sent=True)
    second = survey(story, at("2026-03-05", 16), "revisit", r.id)
    r.add("RevisitRequested", at("2026-03-05", 16), rectification_id=str(r.id),
          survey_id=str(second.id), attempt=2, channel="phone_callback")
    if answered_on:
        second.add("RatingGiven", at(answered_on, 10), survey_id=str(second.id),
                   purpose="revisit", level="satisfied", via="clerk", clerk_id="clerk-021",
                   rectification_id=str(r.id))
    return [first, second]


def declined_revisit(story: CaseStory, r: Aggregate) -> Aggregate:
    """A revisit by phone whose resident, reached, would rather not rate (the clerk records it)."""
    called = survey(story, at("2026-03-05", 16), "revisit", r.id)
    r.add("RevisitRequested", at("2026-03-05", 16), rectification_id=str(r.id),
          survey_id=str(called.id), attempt=1, channel="phone_callback")
    return called.add("SurveyDeclined", at("2026-03-06", 11), survey_id=str(called.id),
                      purpose="revisit")


def week(cases: list[CaseStory]) -> list[dict[str, Any]]:
    s0, s1, s2, s3, s4, s5 = (
        rated(survey(c, at("2026-03-02", 14)), at("2026-03-02", 16), level)
        for c, level in zip(cases, ("dissatisfied", "very_dissatisfied", "dissatisfied",
                                    "dissatisfied", "satisfied", "dissatisfied"), strict=True))
    r0 = rectification(cases[0], s0, "dissatisfied", "2026-03-03")
    appealed(r0, s0, "upheld")
    r1 = rectification(cases[1], s1, "very_dissatisfied", "2026-03-09")
    triaged(r1, "2026-03-03", "immediate", "2026-03-04", "2026-03-09")
    appealed(r1, s1, "rejected")
    completed(r1, "2026-03-04", "2026-03-04")
    r1_revisits = revisits(cases[1], r1, "2026-03-06")
    r2 = rectification(cases[2], s2, "dissatisfied", "2026-03-09")
    triaged(r2, "2026-03-03", "explain", "2026-03-24", "2026-03-09")
    completed(r2, "2026-03-05", "2026-03-24")
    r2_revisits = revisits(cases[2], r2, None)
    r3 = rectification(cases[3], s3, "dissatisfied", "2026-03-09", named=False)
    triaged(r3, "2026-03-02", "limited", "2026-03-09", "2026-03-09")
    r5 = rectification(cases[5], s5, "dissatisfied", "2026-03-09")
    completed(r5, "2026-03-05", "2026-03-09")
    r5_revisit = declined_revisit(cases[5], r5)
    return [e for a in (s0, s1, s2, s3, s4, s5, r0, r1, *r1_revisits, r2, *r2_revisits, r3,
                        r5, r5_revisit) for e in a.events]


def as_service(row: Row) -> dict[str, Any]:
    """The analysts' row in the by-hand shape: counts, or (numerator, denominator)."""
    out: dict[str, Any] = {}
    for name, expected in BY_HAND.items():
        if isinstance(expected, int):
            out[name] = row.counts[name]
        else:
            rate = next(r for r in RATES if r.name == name)
            out[name] = (row.counts[rate.numerator], row.counts[rate.denominator])
    return out


async def test_triage_appeals_and_revisits_counted_by_hand_agree_in_service_and_export(
        settings: Settings, tmp_path: Path) -> None:
    cases = stories()
    await publish(settings, cases, week(cases))
    await export(settings, tmp_path / "export")
    ours = compute(tmp_path / "export", MARCH_2, MARCH_6, tz="Asia/Shanghai",
                   as_of=at("2026-03-06", 23, 59)).total
    assert as_service(ours) == BY_HAND
    assert ours.rates["named_revisit_rate"] == pytest.approx(2 / 3)

    conn = await asyncpg.connect(settings.database_url)
    tx = conn.transaction()
    await tx.start()
    try:
        await make_tables(conn, f"{settings.schema_prefix}bad_reviews", feedback.DDL, local=True)
        projection = feedback.FiguresProjection(SHANGHAI)
        async with Replay(settings) as replay:
            async for batch in replay:
                await projection.apply(conn, batch.events)
        [theirs] = await feedback.compute(conn, feedback.FigureQuery(
            period="all", date_from=MARCH_2, date_to=MARCH_6, as_of=MARCH_6, group_by=()))
        got = {name: (theirs[name] if isinstance(theirs[name], int)
                      else (theirs[name]["numerator"], theirs[name]["denominator"]))
               for name in BY_HAND}
        assert got == BY_HAND
        assert theirs["named_revisit_rate"]["rate"] == pytest.approx(2 / 3, abs=1e-6)
        tracks = dict(await conn.fetch(
            "SELECT track, deadline_on FROM fig_rectifications WHERE track IS NOT NULL"))
        assert tracks == {"immediate": date(2026, 3, 4), "explain": date(2026, 3, 24),
                          "limited": date(2026, 3, 9)}
    finally:
        await tx.rollback()
        await conn.close()


async def test_old_revisit_events_read_as_the_first_attempt(settings: Settings) -> None:
    cases = stories()
    await publish(settings, cases, week(cases))
    async with Replay(settings) as replay:
        revisits = [e async for batch in replay for e in batch.events
                    if e.type == "RevisitRequested"]
    assert sorted(((e.version, e.payload["attempt"], e.payload["channel"]) for e in revisits),
                  key=str) == [(2, 1, "phone_callback"), (2, 1, None), (2, 1, None),
                               (2, 2, "phone_callback"), (2, 2, "phone_callback")]

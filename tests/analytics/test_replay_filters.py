"""A replay of several event types reads through one covering filter when that is cheaper:
the same events, in the same order, as through the exact filters."""

from __future__ import annotations

import pytest

from services.feedback import figures
from shared.analytics import replay as replay_module
from shared.analytics.replay import Replay, Selection, SubjectFilter, covering, subject_matches
from shared.bus.connection import covers
from shared.settings import Settings
from tests.analytics.support import aftercare, month_of_march_stories, publish


def test_one_filter_covers_several() -> None:
    assert covering(figures.subjects("p")) == "p.>"
    assert covering(["p.intake.CaseOpened.*", "p.intake.CaseResolved.p3"]) == "p.intake.>"
    assert covering(["p.intake.CaseOpened.*", "p.open311.CaseOpened.*"]) == "p.*.CaseOpened.>"
    assert covering(["p.intake.CaseOpened.p1", "p.intake.CaseOpened.p1"]) == (
        "p.intake.CaseOpened.p1")
    assert covering(["p.intake.>", "p.feedback.RatingGiven.p1"]) == "p.>"
    keep = SubjectFilter(["p.intake.CaseOpened.*", "p.feedback.>"])
    assert keep("p.intake.CaseOpened.p7") and keep("p.feedback.RatingGiven.p0")
    assert not keep("p.intake.RequestHeard.p7") and not keep("p.followup.FollowUpDue.p1")
    assert subject_matches("p.>", "p.a") and not subject_matches("p.>", "p")
    assert not subject_matches("p.*", "p.a.b") and not subject_matches("p.a.b", "p.a")
    # Between filters (a rebuild's consumer drops those another one covers): "p.*" covers
    # "p.a" but not "p.>", whose subjects may have more tokens.
    assert covers("p.>", "p.*.b") and covers("p.*", "p.a") and not covers("p.*", "p.>")


async def events_of(settings: Settings, selection: Selection) -> tuple[list[tuple[int, str]],
                                                                     Replay]:
    out = []
    async with Replay(settings, selection, batch_size=5) as replay:
        async for batch in replay:
            out += [(s, e.type) for s, e in zip(batch.seqs, batch.events, strict=True)]
    return out, replay


async def test_covering_filter_reads_what_the_exact_filters_read(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    stories = month_of_march_stories()
    await publish(settings, stories, aftercare(stories))
    counted = Selection(subjects=tuple(figures.subjects(settings.subject_prefix)))
    few = Selection(types=("CaseOpened", "FollowUpCompleted"))

    covered, wide = await events_of(settings, counted)
    assert wide._filters == [f"{settings.subject_prefix}.>"]  # most events are counted
    assert wide.scanned > len(covered)  # the others were dropped on the client
    monkeypatch.setattr(replay_module, "COVER_AT_MOST", 0.0)
    exact, narrow = await events_of(settings, counted)
    assert len(narrow._filters) > 1
    assert covered == exact and {t for _, t in exact} <= set(figures.INTAKE_TYPES
                                                             + figures.FEEDBACK_TYPES
                                                             + figures.FOLLOWUP_TYPES)

    monkeypatch.setattr(replay_module, "COVER_AT_MOST", 3.0)
    picked, replay = await events_of(settings, few)
    assert len(replay._filters) == 2  # two types of many: the exact filters are cheaper
    assert {t for _, t in picked} == {"CaseOpened", "FollowUpCompleted"}

"""The sweep of the plan steps' links the rules passed before they applied them reads the links
of its own durable's partitions only (``LinkedBefore.subjects``): a split worker's
``followup-rules-p0to7x8`` the links on p0..p7, the other worker's the rest, one worker alone
all of them; never feedback's subjects beside them."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from services.followup.linked_before import LinkedBefore
from shared.settings import Settings


def _sweep(filters: list[str]) -> LinkedBefore:
    consumer: Any = SimpleNamespace(filter_subjects=filters, name="followup-rules")
    settings = Settings(subject_prefix="sixstep")
    return LinkedBefore(None, None, settings, None, consumer)  # type: ignore[arg-type]


def test_the_sweep_reads_the_links_of_its_own_partitions() -> None:
    alone = _sweep(["sixstep.intake.*.*", "sixstep.feedback.RectificationOpened.*"])
    assert alone.subjects() == ["sixstep.intake.PlanCaseLinked.*"]
    split = _sweep([*(f"sixstep.intake.*.p{p}" for p in (0, 1)),
                    *(f"sixstep.feedback.RectificationCompleted.p{p}" for p in (0, 1))])
    assert split.subjects() == ["sixstep.intake.PlanCaseLinked.p0",
                                "sixstep.intake.PlanCaseLinked.p1"]
    assert alone.step == "followup-rules:plan-case-linked:followup-rules"

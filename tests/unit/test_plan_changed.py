"""A rule's plan moved to a day to come, or lapsed (``FollowUps.on_a_day_to_come``), is the plan
``dataclasses.replace`` would give: the same fields and values, as frozen, the plan it came
from left as it was; a field a plan does not have is refused as ``replace`` refuses it."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime

import pytest

from services.followup.application import Plan, _changed
from services.followup.domain import Reason

PLAN = Plan(follow_up_id=uuid.uuid4(), center_id="SH-PD-HUAMU", case_id=uuid.uuid4(),
            reason=Reason.POST_RESOLUTION_CHECK, resident_id=uuid.uuid4(),
            due_at=datetime(2026, 12, 20, 1, 0, tzinfo=UTC), assigned_clerk="clerk-017",
            assigned_team=None, source="intake:CaseResolved")


def test_a_lapsed_or_moved_plan_is_the_plan_replace_gives() -> None:
    moved_to = datetime(2026, 12, 21, 1, 0, tzinfo=UTC)
    for changes in ({"lapsed": True}, {"due_at": moved_to, "due_rule": None}):
        made = _changed(PLAN, **changes)
        assert made == dataclasses.replace(PLAN, **changes)
        assert vars(made) == vars(dataclasses.replace(PLAN, **changes))
        assert hash(made) == hash(dataclasses.replace(PLAN, **changes))
        with pytest.raises(dataclasses.FrozenInstanceError):
            made.lapsed = False  # type: ignore[misc]
    assert PLAN.lapsed is False and PLAN.due_at.day == 20


def test_a_field_no_plan_has_is_refused() -> None:
    with pytest.raises(TypeError):
        _changed(PLAN, lapsd=True)

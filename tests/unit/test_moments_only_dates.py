"""A command's window check looks only at its moments and days (server-free): the other
fields (texts, codes, ids, lists) are passed over without a call each, and a moment or day out
of its window is still refused by name."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, Field

from services.followup import commands as fu
from services.intake import commands as c
from shared.kernel.errors import InvalidCommand
from shared.kernel.moments import Moments, _field_names


def test_only_the_moments_and_days_of_a_command_are_checked(
        monkeypatch: pytest.MonkeyPatch) -> None:
    moments = Moments()
    now = datetime(2026, 12, 20, 4, 0, tzinfo=UTC)  # a Sunday
    checked: list[str] = []
    real = Moments.check_value
    monkeypatch.setattr(Moments, "check_value",
                        lambda self, name, value, at, arrived=None: (
                            checked.append(name), real(self, name, value, at, arrived)))
    moments.check(c.OpenCase(center_id="c1", counter_id="w1", service_item="SA-X",
                             occurred_at=now), now)
    moments.check(fu.PublishPolicyChange(center_id="c1", service_items=["SA-X"],
                                         summary="新政策", effective_on=date(2028, 1, 3)), now)
    assert checked == ["occurred_at", "effective_on"]
    with pytest.raises(InvalidCommand) as refused:
        moments.check(c.HearRequest(words="x", occurred_at=now + timedelta(hours=1)), now)
    assert refused.value.details["field"] == "occurred_at"
    with pytest.raises(InvalidCommand):
        moments.check(fu.PublishPolicyChange(center_id="c1", service_items=["SA-X"],
                                             summary="x", effective_on=date(1999, 12, 31)), now)


class _Step(BaseModel):
    due_on: date


class _Anything(BaseModel):
    code: str
    kind: Literal["a", "b"] = "a"
    count: int | None = None
    note: Annotated[str | None, Field(max_length=9)] = None
    held: Any = None
    steps: list[_Step] | None = None
    step: _Step | None = None
    when: datetime | None = None


def test_a_command_class_is_read_once_for_the_fields_that_may_hold_a_day() -> None:
    """OpenCase's codes, ids and enums are never looked at, request after request: its window
    check is its two moments (it was all twelve fields, a third of the check's time a write)."""
    assert _field_names(c.OpenCase) == ("sent_at", "occurred_at")
    # Whatever may hold a day is kept, in the class's order: a model, a list, Any, a moment.
    assert _field_names(_Anything) == ("held", "steps", "step", "when")


def test_a_day_out_of_its_window_is_refused_wherever_a_command_holds_it() -> None:
    moments = Moments()
    now = datetime(2026, 12, 31, 15, 30, tzinfo=UTC)  # 23:30 on New Year's Eve in Shanghai
    moments.check(_Anything(code="x", steps=[_Step(due_on=date(2028, 2, 29))]), now)
    for bad, field in [({"steps": [{"due_on": "1999-12-31"}]}, "steps[0].due_on"),
                       ({"step": {"due_on": "1999-12-31"}}, "step.due_on"),
                       ({"held": date(1999, 12, 31)}, "held"),
                       ({"when": "2038-01-01T00:00:00+08:00"}, "when")]:
        with pytest.raises(InvalidCommand) as refused:
            moments.check(_Anything(code="x", **bad), now)
        assert refused.value.details["field"] == field

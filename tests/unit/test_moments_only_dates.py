"""A command's window check looks only at its moments and days (server-free): the other
fields (texts, codes, ids, lists) are passed over without a call each, and a moment or day out
of its window is still refused by name."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from services.followup import commands as fu
from services.intake import commands as c
from shared.kernel.errors import InvalidCommand
from shared.kernel.moments import Moments


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

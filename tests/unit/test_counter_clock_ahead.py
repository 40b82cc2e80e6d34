"""A counter tablet whose clock runs a few minutes fast: what it says happened at 00:01 reached
the service at 23:58 the evening before. Within ``OCCURRED_AT_MAX_FUTURE_S`` the post is
accepted, and recorded at the service's moment (``CommandPath.meta``), so every rule that
reads ``occurred_at`` (the figures' day and month, on time, deadlines, surveys, follow-ups)
judges it on the day it really happened. At the calendar's edges: New Year's Eve in Shanghai,
Sunday 20 December, the last minute of February 2028 (a year the holiday package does not
know)."""

from __future__ import annotations

from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from shared.eventstore.command_path import CommandPath
from shared.kernel.clock import ManualClock
from shared.kernel.moments import Moments
from shared.kernel.typed import Command
from shared.settings import Settings

SHANGHAI = ZoneInfo("Asia/Shanghai")
FAST = timedelta(minutes=3)

#: The service's clock at the counter's last minute of a day (23:58 in Shanghai).
EDGES = {
    "new_years_eve": datetime(2026, 12, 31, 23, 58, tzinfo=SHANGHAI),
    "sunday_20_december": datetime(2026, 12, 20, 23, 58, tzinfo=SHANGHAI),
    "february_2028": datetime(2028, 2, 29, 23, 58, tzinfo=SHANGHAI),
}


def path(now: datetime, moments: Moments) -> tuple[CommandPath, list[float]]:
    ahead: list[float] = []
    committer: Any = SimpleNamespace(command_digest_key=b"k" * 32, app=None,
                                     on_clock_ahead=ahead.append)
    return CommandPath(committer, ManualClock(now), moments), ahead


@pytest.mark.parametrize("edge", list(EDGES))
def test_a_post_from_a_tablet_three_minutes_fast_is_recorded_on_the_day_it_happened(
        edge: str) -> None:
    now = EDGES[edge]
    given = (now + FAST).astimezone(SHANGHAI)
    assert given.date() != now.date()  # the tablet is a day (and a month, a year) ahead
    p, ahead = path(now, Moments.from_settings(Settings()))
    meta = p.meta("clerk-017", "k-1", Command(occurred_at=given))
    assert meta["occurred_at"] == now
    assert meta["occurred_at"].astimezone(SHANGHAI).date() == now.date()
    assert meta["occurred_at"].utcoffset() == given.utcoffset()
    assert ahead == [FAST.total_seconds()], "how far ahead goes to the metrics only"


def test_a_moment_at_or_behind_the_clock_stands() -> None:
    now = EDGES["new_years_eve"]
    p, ahead = path(now, Moments())
    for said in (now, now - timedelta(minutes=1)):
        assert p.meta("clerk-017", None, Command(occurred_at=said))["occurred_at"] == said
    assert p.meta("clerk-017", None, Command())["occurred_at"] == now
    assert ahead == []

"""A counter tablet whose clock runs a few minutes fast: what it says happened at 00:01 reached
the service at 23:58 the evening before. Within ``OCCURRED_AT_MAX_FUTURE_S`` the post is
accepted, and recorded at the service's moment (``CommandPath.meta``), so every rule that
reads ``occurred_at`` (the figures' day and month, on time, deadlines, surveys, follow-ups)
judges it on the day it really happened. At the calendar's edges: New Year's Eve in Shanghai,
Sunday 20 December, the last minute of February 2028 (a year the holiday package does not
know).

A step queued while the network was down arrives behind the service's clock whatever the
tablet's clock says: the ``sent_at`` the page stamps as it sends shows the tablet's error, and
``occurred_at`` is moved by it."""

from __future__ import annotations

from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from shared.eventstore.command_path import CommandPath
from shared.eventstore.group_commit import arrived_at, clock_reading, refused_unless_replayed
from shared.kernel.clock import ManualClock
from shared.kernel.errors import InvalidCommand
from shared.kernel.meta import COMMAND_DIGEST
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
                                     on_clock_ahead=ahead.append, on_clock_behind=None)
    return CommandPath(committer, ManualClock(now), moments), ahead


def answered() -> None:
    """A post under a key is answered (not a retry's replay): how far its sender's clock was
    off is told to the metrics then (``ClockReading``, the group commit's)."""
    if (reading := clock_reading.get()) is not None:
        reading.told()


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
    assert ahead == [], "under a key: told when answered"
    answered()
    assert ahead == [FAST.total_seconds()], "how far ahead goes to the metrics only"


def test_a_moment_at_or_behind_the_clock_stands() -> None:
    now = EDGES["new_years_eve"]
    p, ahead = path(now, Moments())
    for said in (now, now - timedelta(minutes=1)):
        assert p.meta("clerk-017", None, Command(occurred_at=said))["occurred_at"] == said
    assert p.meta("clerk-017", None, Command())["occurred_at"] == now
    assert ahead == []


#: How long the queued step waited for the network (sent at 00:20 by the service's clock).
QUEUED = timedelta(minutes=22)


@pytest.mark.parametrize("edge", list(EDGES))
def test_a_step_queued_offline_on_a_tablet_three_minutes_fast_is_dated_when_it_happened(
        edge: str) -> None:
    happened = EDGES[edge]  # 23:58 by the service's clock, the resident at the counter
    said = (happened + FAST).astimezone(SHANGHAI)  # 00:01 by the tablet: the next day
    arrives = happened + QUEUED  # behind the clock: occurred_at alone shows no error
    p, ahead = path(arrives, Moments.from_settings(Settings()))
    meta = p.meta("clerk-017", "k-1", Command(occurred_at=said, sent_at=arrives + FAST))
    assert meta["occurred_at"] == happened
    assert meta["occurred_at"].astimezone(SHANGHAI).date() == happened.date()
    assert meta["occurred_at"].utcoffset() == said.utcoffset()
    answered()
    assert ahead == [FAST.total_seconds()], "the tablet's error goes to the metrics"


def test_a_tablet_running_slow_is_moved_forward_into_the_new_year() -> None:
    happened = datetime(2027, 1, 1, 0, 1, tzinfo=SHANGHAI)  # 2027: provisional holidays
    said = happened - FAST  # 23:58 on 31 December by a tablet 3 minutes slow
    arrives = happened + QUEUED
    p, ahead = path(arrives, Moments.from_settings(Settings()))
    behind: list[float] = []
    p.committer.on_clock_behind = behind.append
    meta = p.meta("clerk-017", None, Command(occurred_at=said, sent_at=arrives - FAST))
    assert meta["occurred_at"] == happened
    assert ahead == [], "a slow clock is not ahead"
    assert behind == [FAST.total_seconds()], "but counted as slow"


def test_a_clock_within_five_seconds_and_a_post_without_sent_at_are_taken_as_said() -> None:
    now = EDGES["new_years_eve"]
    p, ahead = path(now, Moments.from_settings(Settings()))
    said = now - timedelta(minutes=1)
    for sent_at in (None, now + timedelta(seconds=5), now - timedelta(seconds=5)):
        meta = p.meta("clerk-017", None, Command(occurred_at=said, sent_at=sent_at))
        assert meta["occurred_at"] == said
    assert p.meta("clerk-017", None, Command(sent_at=now + FAST))["occurred_at"] == now
    assert ahead == []


@pytest.mark.parametrize("off", [timedelta(seconds=301), -timedelta(seconds=301),
                                 timedelta(hours=8)])
def test_a_sent_at_more_than_five_minutes_off_is_refused_naming_it(off: timedelta) -> None:
    """At once without a key. Under a key, unless the key was answered already (a client
    sending the same bytes again, its sent_at kept): ``refused_unless_replayed``, decided by
    the group commit where the key is looked up; occurred_at is read as said meanwhile."""
    now = EDGES["sunday_20_december"]
    p, ahead = path(now, Moments.from_settings(Settings()))
    said = now - QUEUED
    with pytest.raises(InvalidCommand) as refused:
        p.meta("clerk-017", None, Command(occurred_at=said, sent_at=now + off))
    assert refused.value.details["field"] == "sent_at"
    assert refused.value.details["max_future_s"] == 300
    assert refused_unless_replayed.get() is None
    meta = p.meta("clerk-017", "k-1", Command(occurred_at=said, sent_at=now + off))
    assert meta["occurred_at"] == said, "not moved by a clock refused"
    pending = refused_unless_replayed.get()
    assert pending is not None and pending[0] == "k-1"
    assert pending[1].details == refused.value.details
    # A live post from a tablet that far ahead: its clock is named, not the occurred_at it
    # made, and at once (out of its window, it is no retry of a command once taken).
    if off > timedelta(0):
        with pytest.raises(InvalidCommand) as refused:
            p.meta("clerk-017", "k-2", Command(occurred_at=now + off, sent_at=now + off))
        assert refused.value.details["field"] == "sent_at"
    p.meta("clerk-017", "k-3", Command(occurred_at=said, sent_at=now))
    assert refused_unless_replayed.get() is None, "the next command is not refused"
    assert ahead == []


def test_a_retry_stamped_with_another_sent_at_is_the_same_command() -> None:
    now = EDGES["february_2028"]
    p, _ = path(now, Moments.from_settings(Settings()))
    said = now - QUEUED
    first = p.meta("clerk-017", "k-1", Command(occurred_at=said, sent_at=now - FAST))
    again = p.meta("clerk-017", "k-1", Command(occurred_at=said, sent_at=now))
    bare = p.meta("clerk-017", "k-1", Command(occurred_at=said))
    assert first[COMMAND_DIGEST] == again[COMMAND_DIGEST] == bare[COMMAND_DIGEST]


@pytest.mark.parametrize("max_future_s", [0, 2])
def test_a_center_that_tolerates_no_clock_ahead_still_takes_the_pages_posts(
        max_future_s: int) -> None:
    """``OCCURRED_AT_MAX_FUTURE_S=0`` (no moment ahead of the clock taken): every post of the
    counter page carries a ``sent_at`` a few milliseconds behind the service's clock (its
    time in transit), which is within the 5 s taken as sent; before, it was out of a window
    of 0 s either way and every write of the page was a 422 ``sent_at``."""
    now = EDGES["new_years_eve"]
    p, ahead = path(now, Moments(max_future=timedelta(seconds=max_future_s)))
    said = now - QUEUED
    for sent_at in (now - timedelta(milliseconds=40), now - timedelta(seconds=5),
                    now + timedelta(seconds=5)):
        meta = p.meta("clerk-017", None, Command(occurred_at=said, sent_at=sent_at))
        assert meta["occurred_at"] == said
    with pytest.raises(InvalidCommand) as refused:
        p.meta("clerk-017", None, Command(occurred_at=said, sent_at=now - timedelta(seconds=6)))
    assert refused.value.details == {"field": "sent_at", "max_future_s": 5}
    assert ahead == []


@pytest.mark.parametrize("edge", list(EDGES))
def test_a_minute_inside_the_service_is_not_a_slow_clock(edge: str) -> None:
    """A right clock's request came in at 23:58:30 (``arrived_at``, set by the front door)
    and reached the command path a minute later (its body on a slow network, a queue):
    measured against the path's clock it read as a clock a minute slow, the step moved a
    minute later and was counted slow; against the arrival nothing moves, nothing counts."""
    came = EDGES[edge] + timedelta(seconds=30)
    p, ahead = path(came + timedelta(minutes=1), Moments.from_settings(Settings()))
    behind: list[float] = []
    p.committer.on_clock_behind = behind.append
    token = arrived_at.set(came)
    try:
        meta = p.meta("clerk-017", "k-1", Command(occurred_at=came, sent_at=came))
    finally:
        arrived_at.reset(token)
    assert meta["occurred_at"] == came
    assert (ahead, behind) == ([], [])


@pytest.mark.parametrize("edge", [*EDGES, "2027"])
def test_a_tablet_ten_minutes_off_is_counted_as_it_is_refused(edge: str) -> None:
    """Every post of a tablet ten minutes fast or slow is refused (nothing recorded), so the
    histograms of how far ahead or behind never saw it and no alert read it: it is counted
    refused, fast or slow: at once without a key; under one, only once the key's look-up
    answers it refused (``KeyedRefusal.clock_fast``, counted by the group commit): a script's
    replay of an answered key, its old ``sent_at`` kept, is no clock off
    (tests/intake/test_counter_clock_skew.py). 2027: a year of provisional holidays."""
    now = EDGES.get(edge, datetime(2027, 1, 29, 23, 58, tzinfo=SHANGHAI))
    p, ahead = path(now, Moments.from_settings(Settings()))
    refused: list[bool] = []
    p.committer.on_clock_refused = refused.append
    for off, key in ((timedelta(minutes=10), None), (-timedelta(minutes=10), None),
                     (timedelta(minutes=10), "k-1")):
        try:
            p.meta("clerk-017", key, Command(occurred_at=now, sent_at=now + off))
        except InvalidCommand as exc:
            assert exc.details["field"] == "sent_at"
        else:
            pending = refused_unless_replayed.get()
            assert key is not None and pending is not None and pending.clock_fast is True
    assert refused == [True, False], "a key's refusal is counted when answered"
    assert ahead == []
    p.meta("clerk-017", None, Command(occurred_at=now, sent_at=now + FAST))
    assert refused == [True, False], "a clock within the window is not refused"


@pytest.mark.parametrize("edge", [*EDGES, "2027"])
def test_a_post_refused_for_its_clock_is_not_counted_ahead_as_well(edge: str) -> None:
    """A tablet ten minutes fast sends a step it kept offline for eight: its ``occurred_at``
    is two minutes ahead of intake's clock, its ``sent_at`` ten. Under a key, its refusal
    waits for the key's look-up and is counted refused when answered; it was also counted
    two minutes ahead, so one post was two in SixstepCounterClockFast's share (a tablet
    whose every post was such: 200 % of the writes). Counted once, as refused."""
    now = EDGES.get(edge, datetime(2027, 1, 29, 23, 58, tzinfo=SHANGHAI))
    p, ahead = path(now, Moments.from_settings(Settings()))
    early = now + timedelta(minutes=2)
    meta = p.meta("clerk-017", "k-1", Command(occurred_at=early,
                                              sent_at=now + timedelta(minutes=10)))
    pending = refused_unless_replayed.get()
    assert pending is not None and pending.clock_fast is True, "counted refused if answered so"
    assert ahead == [], "not counted ahead as well"
    assert meta["occurred_at"] == now, "dated at its arrival were it a retry's replay"
    answered()
    assert ahead == [], "not counted ahead when answered refused either"
    p.meta("clerk-017", "k-2", Command(occurred_at=early, sent_at=early))
    answered()
    assert ahead == [120.0], "a post within the window is counted ahead"

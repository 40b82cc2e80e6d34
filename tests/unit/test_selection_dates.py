"""`sixstep export` and `sixstep replay` take a period as --since/--until; typed backwards it
matched nothing, and the export or replay ran through the log to write nothing, silently
(`sixstep report` refuses a reversed period since stop 45). Dates are the center's days."""

from __future__ import annotations

import pytest
import typer

from shared.cli.long_runs import selection_of
from shared.settings import Settings


def select(since: str | None, until: str | None) -> object:
    settings = Settings(center_timezone="Asia/Shanghai")
    return selection_of(settings, [], [], [], [], since, until, "recorded")


def test_a_period_typed_backwards_is_refused_on_the_centers_day() -> None:
    with pytest.raises(typer.BadParameter, match="--since 2027-01-01 is after --until"):
        select("2027-01-01", "2026-12-31")
    # Midnight in Shanghai is 16:00 UTC on New Year's Eve: that moment is 1 January's, after
    # the whole of 31 December.
    with pytest.raises(typer.BadParameter):
        select("2026-12-31T16:00:00+00:00", "2026-12-31")
    # 23:30 on New Year's Eve in Shanghai is still in that day; one day, or open-ended, is a
    # period too.
    for since, until in (("2026-12-31T23:30:00+08:00", "2026-12-31"),
                         ("2026-12-20", "2026-12-20"), ("2028-02-29", None), (None, "2027-01-01")):
        select(since, until)

"""An analyst's typo in a replay or export filter is refused (exit 2), not read as an empty log."""

from __future__ import annotations

import pytest
import typer

from shared.cli.long_runs import selection_of
from shared.settings import Settings


def _selection(**given: object) -> object:
    options: dict[str, object] = {"services": [], "types": [], "centers": [], "cases": [],
                                  "since": None, "until": None, "clock": "recorded"}
    return selection_of(Settings(center_timezone="Asia/Shanghai"), **{**options, **given})  # type: ignore[arg-type]


def test_a_period_given_backwards_is_refused() -> None:
    with pytest.raises(typer.BadParameter, match="--since 2026-03-05 is after --until"):
        _selection(since="2026-03-05", until="2026-03-01")
    _selection(since="2026-03-01", until="2026-03-01")  # one day: both count
    # Across the year, at 23:30 on New Year's Eve in the center's zone, into 2027 and 2028.
    _selection(since="2026-12-31T23:30:00+08:00", until="2027-01-01")
    _selection(since="2027-12-31", until="2028-02-29")
    with pytest.raises(typer.BadParameter, match="is after --until"):
        _selection(since="2027-01-01T00:00:00+08:00", until="2026-12-31T23:30:00+08:00")
    with pytest.raises(typer.BadParameter, match="is after --until"):
        # 2026-12-31T16:00Z is 1 January 00:00 in Shanghai: after the 31st has ended there
        _selection(since="2026-12-31T16:00:00+00:00", until="2026-12-31")


def test_a_misspelt_event_type_or_service_is_refused_with_the_near_names() -> None:
    with pytest.raises(typer.BadParameter, match="did you mean CaseResolved"):
        _selection(types=["CaseResolvd"])
    with pytest.raises(typer.BadParameter, match="did you mean intake"):
        _selection(services=["intak"])
    _selection(services=["intake"], types=["CaseResolved"])


def test_a_type_of_another_service_than_the_one_named_is_refused() -> None:
    # -s followup -t CaseResolved: an event is of both or not selected, so nothing matched.
    with pytest.raises(typer.BadParameter, match="CaseResolved is recorded by intake"):
        _selection(services=["followup"], types=["CaseResolved"])
    _selection(services=["followup", "intake"], types=["CaseResolved", "FollowUpScheduled"])
    _selection(types=["CaseResolved"])

"""An analyst's typo in a replay or export filter is refused (exit 2), not read as an empty log."""

from __future__ import annotations

import pytest
import typer

from shared.cli.long_runs import selection_of
from shared.settings import Settings


def _selection(**given: object) -> object:
    options: dict[str, object] = {"services": [], "types": [], "centers": [], "cases": [],
                                  "since": None, "until": None, "clock": "recorded"}
    return selection_of(Settings(), **{**options, **given})  # type: ignore[arg-type]


def test_a_period_given_backwards_is_refused() -> None:
    with pytest.raises(typer.BadParameter, match="--since 2026-03-05 is after --until"):
        _selection(since="2026-03-05", until="2026-03-01")
    _selection(since="2026-03-01", until="2026-03-01")  # one day: both count


def test_a_misspelt_event_type_or_service_is_refused_with_the_near_names() -> None:
    with pytest.raises(typer.BadParameter, match="did you mean CaseResolved"):
        _selection(types=["CaseResolvd"])
    with pytest.raises(typer.BadParameter, match="did you mean intake"):
        _selection(services=["intak"])
    _selection(services=["intake"], types=["CaseResolved"])

"""A parked resolution or reopening applied again (``retry_parked``) only while it is still
its case's latest turn: one overtaken since (reopened after the resolution, resolved after the
reopening) is dropped, the later turn's own rule standing. Server-free: the decision alone
(``_turned_since``), on the case as ``case_refs`` holds it."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import pytest

from services.followup.consumer import _turned_since
from shared.contracts import Envelope

DECEMBER_31 = datetime(2026, 12, 31, 23, 30, tzinfo=ZoneInfo("Asia/Shanghai"))


def turn(kind: str, case_id: UUID) -> Envelope:
    return Envelope(event_id=uuid4(), type=kind, version=1, service="intake", position=1,
                    aggregate_id=case_id, aggregate_version=2, case_id=case_id,
                    center_id="SH-PD-HUAMU", occurred_at=DECEMBER_31, recorded_at=DECEMBER_31,
                    actor="clerk-017", payload={})


def case(status: str, turned_by: UUID | None) -> dict[str, Any]:
    return {"case_id": uuid4(), "status": status, "turned_by": turned_by}


@pytest.mark.parametrize("kind", ["CaseResolved", "CaseReopened"])
def test_a_parked_turn_still_its_cases_latest_is_applied(kind: str) -> None:
    e = turn(kind, uuid4())
    status = "resolved" if kind == "CaseResolved" else "open"
    assert not _turned_since(e, case(status, e.event_id))
    assert not _turned_since(e, case(status, None)), "a row from before turned_by: its status"
    assert not _turned_since(e, {}), "a case unknown: its rule says so itself"


def test_a_parked_resolution_of_a_case_reopened_since_is_dropped() -> None:
    e = turn("CaseResolved", uuid4())
    assert _turned_since(e, case("open", uuid4()))
    assert _turned_since(e, case("resolved", uuid4())), "reopened and resolved again since"
    assert _turned_since(e, case("open", None))


def test_a_parked_reopening_of_a_case_resolved_since_is_dropped() -> None:
    """Its referral would be chased again, and its resident's 'not solved' follow-up planned,
    on a case resolved since; the resolution's check cancelled."""
    e = turn("CaseReopened", uuid4())
    assert _turned_since(e, case("resolved", uuid4()))
    assert _turned_since(e, case("resolved", None))


@pytest.mark.parametrize("kind", ["CaseResolved", "CaseReopened"])
def test_a_parked_turn_overtaken_on_a_replica_of_the_old_code_is_dropped(kind: str) -> None:
    """During a rolling upgrade a replica still on the code before ``turned_by`` applies the
    later turn: its ``case_refs`` upsert sets the status but leaves ``turned_by`` naming the
    parked turn. Judged by ``turned_by`` alone, the parked resolution ran on the reopened case
    (its check planned, its referrals closed), the parked reopening on the resolved one. The
    status the turn would have left says it was overtaken."""
    e = turn(kind, uuid4())
    overtaken = "open" if kind == "CaseResolved" else "resolved"
    assert _turned_since(e, case(overtaken, e.event_id))

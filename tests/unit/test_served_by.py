"""Who served a case may not record its answer (代评): every staff member who took a step of
serving is remembered, whatever their id looks like; only the services' own workers
(``system``, ``system:<worker>``) are no one who served."""

from __future__ import annotations

from datetime import UTC, datetime

from services.feedback.consumer import _served
from tests.support import bare_envelope

AT = datetime(2026, 12, 5, 2, 0, tzinfo=UTC)


def test_a_clerk_whose_id_begins_with_system_is_remembered_as_serving() -> None:
    for actor in ("systemadmin", "system-ops-07"):
        assert _served(["clerk-017"], bare_envelope("RequestHeard", AT, actor=actor)) == [
            "clerk-017", actor]
    for worker in ("system", "system:verdicts", "system:calendar"):
        assert _served(["clerk-017"], bare_envelope("DeadlineNoted", AT, actor=worker)) == [
            "clerk-017"]

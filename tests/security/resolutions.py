"""A counter resolution feedback asks its survey about, as the security tests give it
(``Feedback.request_survey``): one shape, the center and the case the only things a test varies."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from services.feedback.application import ResolvedCase
from tests.followup.story import CENTER


def resolved_at_counter(case_id: uuid.UUID | None = None, center_id: str = CENTER
                        ) -> ResolvedCase:
    """A case resolved at window 3 by clerk-017 just now (a new case id unless given)."""
    return ResolvedCase(
        case_id=case_id or uuid.uuid4(), center_id=center_id, counter_id="window-3",
        clerk_id="clerk-017", service_item="SA-HARDSHIP-SUBSIDY", intake_channel="counter",
        resident_id=uuid.uuid4(), resolved_event_id=uuid.uuid4(), resolved_at=datetime.now(UTC))

"""The Resident aggregate, without servers: what the log learns of a resident (consent, erasure),
once each, and nothing after an erasure."""

from __future__ import annotations

import uuid
from typing import Any

from services.intake.domain import Resident


def meta(center: str = "SH-PD-HUAMU") -> dict[str, Any]:
    return {"actor": "clerk-017", "causation_id": None, "center_id": center}


def recorded(resident: Resident) -> list[str]:
    return [type(e).__name__ for e in resident.collect_events()]


def test_a_registration_records_the_consent_given_and_the_home_center() -> None:
    resident = Resident.registered(uuid.uuid4(), contact=True, surveys=False, meta=meta())
    assert (resident.home_center, resident.contact, resident.surveys, resident.erased) == (
        "SH-PD-HUAMU", True, False, False)
    assert recorded(resident) == ["ConsentChanged"]


def test_a_consent_is_recorded_only_when_it_changes_whoever_changes_it() -> None:
    resident = Resident.registered(uuid.uuid4(), contact=True, surveys=True, meta=meta())
    assert resident.change_consent(True, True, meta()) is False
    assert resident.change_consent(False, True, meta("SH-PD-ZHANGJIANG")) is True
    assert (resident.contact, resident.surveys) == (False, True)
    assert resident.home_center == "SH-PD-HUAMU", "another center serving them: still ours"
    assert recorded(resident) == ["ConsentChanged", "ConsentChanged"]


def test_an_erasure_is_recorded_once_and_ends_every_consent() -> None:
    resident = Resident.registered(uuid.uuid4(), contact=True, surveys=True, meta=meta())
    assert resident.erase(meta()) is True
    assert (resident.erased, resident.contact, resident.surveys) == (True, False, False)
    assert resident.erase(meta()) is False
    assert resident.change_consent(True, True, meta()) is False, "nothing after an erasure"
    assert recorded(resident) == ["ConsentChanged", "ResidentErased"]


def test_a_resident_erased_before_any_consent_was_recorded_starts_erased() -> None:
    resident = Resident.erased_before_recorded(uuid.uuid4(), meta())
    assert (resident.erased, resident.home_center) == (True, "SH-PD-HUAMU")
    assert resident.erase(meta()) is False
    assert recorded(resident) == ["ResidentErased"]

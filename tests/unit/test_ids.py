"""Deterministic ids are the standard library's ``uuid5``, only cheaper: a follow-up or a
survey planned before this change is found again under the same id."""

from __future__ import annotations

import copy
import pickle
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.feedback.domain import FEEDBACK_NAMESPACE, survey_id_for_resolution
from services.followup.domain import FOLLOWUP_NAMESPACE, follow_up_id_for
from shared.kernel.ids import uuid5


@given(st.uuids(), st.text())
def test_an_id_is_the_standard_librarys_uuid5(namespace: uuid.UUID, name: str) -> None:
    made, expected = uuid5(namespace, name), uuid.uuid5(namespace, name)
    assert made == expected
    assert (str(made), made.int, made.version, made.variant, made.is_safe, hash(made)) == (
        str(expected), expected.int, expected.version, expected.variant, expected.is_safe,
        hash(expected))
    assert pickle.loads(pickle.dumps(made)) == expected == copy.deepcopy(made)


def test_a_follow_up_keeps_the_id_it_was_planned_under() -> None:
    resolved = uuid.UUID("0e1d3b25-84d4-413a-97b7-17d3d5a589bd")
    assert follow_up_id_for("resolution", resolved) == uuid.uuid5(
        FOLLOWUP_NAMESPACE, f"resolution:{resolved}")
    assert type(follow_up_id_for("resolution", resolved)) is uuid.UUID
    assert survey_id_for_resolution(resolved) == uuid.uuid5(
        FEEDBACK_NAMESPACE, f"survey:resolution:{resolved}")


def test_a_case_opened_again_with_its_key_is_found_under_the_same_id() -> None:
    """Opening a case names it after the center and the Idempotency-Key, on every request
    (``uuid.uuid5`` and its ``UUID(bytes=..., version=5)`` were ~7 % of the intake app's CPU
    for a POST /cases in py-spy): the kernel's, the same id as before."""
    from services.intake import domain

    assert domain.uuid5 is uuid5
    for key in ("key-00000001", "clerk-017:2026-12-20:0001", "x" * 128):
        assert domain.case_id_for("SH-PD-HUAMU", key) == uuid.uuid5(
            domain.CASE_NAMESPACE, f"SH-PD-HUAMU\x1f{key}")


@given(st.sampled_from(["intake", "followup", "feedback"]), st.uuids(), st.integers(1, 10**9))
def test_an_events_id_is_the_one_it_was_published_under(service: str, aggregate: uuid.UUID,
                                                         version: int) -> None:
    """The relay names every event it publishes (``event_id_for``): a re-publish after this
    change carries the id of the first publish, which consumers and the stream's readers key
    on."""
    from shared.contracts.envelope import EVENT_ID_NAMESPACE, event_id_for

    assert event_id_for(service, aggregate, version) == uuid.uuid5(
        EVENT_ID_NAMESPACE, f"{service}:{aggregate}:{version}")


def test_an_events_id_is_made_without_the_standard_librarys_checks(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The relay's per-event cost: ``uuid.uuid5`` builds its answer through ``UUID(bytes=...,
    version=5)`` (~2 us of the relay's ~55 us an event); the id is the same."""
    from shared.contracts.envelope import event_id_for

    aggregate = uuid.UUID("0e1d3b25-84d4-413a-97b7-17d3d5a589bd")
    expected = uuid.uuid5(uuid.UUID("6f1c2a64-93f5-4f0c-9a51-5e0b6a1c7d21"),
                          f"intake:{aggregate}:3")
    monkeypatch.setattr(uuid.UUID, "__init__",
                        lambda *a, **k: pytest.fail("UUID(...) made per event"))
    assert event_id_for("intake", aggregate, 3) == expected

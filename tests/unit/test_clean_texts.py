"""The follow-up rules write the same few words on thousands of events (a lapsed follow-up's
reason, "case resolved"): a short text the redactor found clean, with no resident known to the
command, is not read by it again; one holding personal data is redacted every time, and only
clean texts are remembered (``shared.kernel.scrubbing._redacted``)."""

from __future__ import annotations

from typing import Any

import pytest

from shared.kernel import scrubbing
from shared.kernel.privacy import KnownPerson, redact

LAPSED_REASON = "lapsed: its working day was long over when the rule was applied"
A_CALL = "resident asked to be called back on 13812345678"


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    read: list[str] = []

    def counted(text: str, known: Any = None) -> str:
        read.append(text)
        return redact(text, known)

    monkeypatch.setattr(scrubbing, "redact", counted)
    return read


def _cancelled(reason: str, **meta: Any) -> dict[str, Any]:
    return scrubbing.scrub_fields("FollowUpCancelled", {
        "reason": reason, "meta": {"actor": "system:followup-rules", **meta}})


def test_the_rules_own_reason_is_read_by_the_redactor_once_for_a_thousand_cancels(
        monkeypatch: pytest.MonkeyPatch) -> None:
    read = _counting(monkeypatch)
    for _ in range(1000):
        assert _cancelled(LAPSED_REASON)["reason"] == LAPSED_REASON
    assert read == [LAPSED_REASON]


def test_a_reason_holding_a_phone_number_is_redacted_every_time_and_never_remembered(
        monkeypatch: pytest.MonkeyPatch) -> None:
    read = _counting(monkeypatch)
    for _ in range(3):
        assert "13812345678" not in _cancelled(A_CALL)["reason"]
    assert read == [A_CALL] * 3
    assert A_CALL not in scrubbing._CLEAN_TEXTS
    assert all(redact(text) == text for text in scrubbing._CLEAN_TEXTS)


def test_a_text_about_a_known_resident_is_read_every_time(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Clean of the patterns, a text may still name the resident the command is about: it is
    never taken from what was found clean without them."""
    read = _counting(monkeypatch)
    zhang = KnownPerson(name="张建国")
    for _ in range(2):
        said = _cancelled("张建国 moved away", known_person=zhang)["reason"]
        assert "张建国" not in said
    assert _cancelled("张建国 moved away")["reason"] == "张建国 moved away"
    assert read == ["张建国 moved away"] * 3


def test_what_a_stand_in_for_the_redactor_passed_is_not_taken_for_clean_after_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scrubbing, "redact", lambda text, known=None: text)
    assert _cancelled(A_CALL)["reason"] == A_CALL
    monkeypatch.undo()
    assert "13812345678" not in _cancelled(A_CALL)["reason"]


def test_a_long_text_is_not_remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    read = _counting(monkeypatch)
    note = "the resident will bring the papers next week. " * 10
    for _ in range(2):
        _cancelled(note)
    assert read == [note, note]


def test_what_is_remembered_stays_bounded() -> None:
    for i in range(scrubbing._CLEAN_TEXTS_MAX + 10):
        _cancelled(f"moved to window {i}")
    assert 0 < len(scrubbing._CLEAN_TEXTS) <= scrubbing._CLEAN_TEXTS_MAX

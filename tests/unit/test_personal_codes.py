"""An id a counter app makes (an Idempotency-Key, a correlation id) is refused when it holds a
resident's phone number or ID number, and never because a UUID or a count happens to hold
digits (``shared.kernel.privacy.patterns.personal_number_in``)."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.kernel.privacy.patterns import personal_data_in, personal_number_in


def test_phone_and_id_numbers_are_found_whole_or_in_groups() -> None:
    for code in ("13812345678", "visit-13812345678-2", "138-1234-5678", "0086.13812345678",
                 "a:138.1234.5678:b"):
        assert personal_number_in(code) == "a phone number", code
    for code in ("310101199001011234", "c-11010519491231002x", "310101-19900101-1234"):
        assert personal_number_in(code) == "an ID number", code


def test_ids_that_only_hold_digits_are_not_personal() -> None:
    for code in ("visit-2026-12-04.17", "20261204-0001", "1733299200000", "call-17",
                 "12345678-1234-1234-1234-123456789012", "000000000000000000",
                 "310101209913451234"):
        assert personal_number_in(code) is None, code


@given(st.uuids(), st.sampled_from(["", "k-", "story-", "open:"]))
def test_no_uuid_is_ever_taken_for_a_personal_number(value: uuid.UUID, prefix: str) -> None:
    assert personal_number_in(prefix + str(value)) is None
    assert personal_number_in(prefix + value.hex) is None


def test_an_apps_own_numbered_parts_are_not_read_as_one_number() -> None:
    """A load generator's keys (a random run number and a count: bench-138123456-78) and a
    device's numbered keys join digit groups that are no number written out."""
    for code in ("bench-138123456-78", "open-1381234567-8", "desk-1381-2345678",
                 "310101-1990010112-34"):
        assert personal_number_in(code) is None, code


def test_an_apps_eighteen_digit_ids_are_not_read_as_id_numbers() -> None:
    """Eighteen digits with a date-like middle are a resident's ID number only when its check
    digit holds (GB 11643), as it does on every card: a time in ms and a count (Date.now()
    then 20003), or an area-date-count ticket, were refused, one in a thousand of the first
    and every one of the second."""
    for code in ("179643199005120003", "k-179643199005120003", "310101-20261204-0001",
                 "310101202612040001", "c-31010119900101123x"):
        assert personal_number_in(code) is None, code
    for code in ("179643199005120000", "310101-20261204-0004"):  # valid check digits
        assert personal_number_in(code) == "an ID number", code


def test_a_number_glued_to_a_word_is_found_and_one_glued_to_hex_digits_is_not() -> None:
    """tel13812345678, mobile8613812345678: a word (a letter past f) glued to the number; in a
    hex id (only a-f around it) such a run is chance and stays."""
    for code in ("tel13812345678", "mobile8613812345678", "k13812345678", "13812345678tel",
                 "counter-tel13812345678", "visit13812345678-2"):
        assert personal_number_in(code) == "a phone number", code
    for code in ("sfz11010519491231002x", "id11010519491231002X"):
        assert personal_number_in(code) == "an ID number", code
    for code in ("a13812345678b", "req0a1b13812345678c", "ba13812345678fe", "clerk-017",
                 "window3", "t1733299200000", "case13812345"):
        assert personal_number_in(code) is None, code


def test_a_subject_is_no_phone_or_id_number_nor_an_e_mail_address() -> None:
    for subject, held in (("13812345678", "a phone number"), ("tel13812345678", "a phone number"),
                          ("11010519491231002X", "an ID number"),
                          ("wang.li@huamu.gov.cn", "an e-mail address"),
                          ("li@example.com", "an e-mail address")):
        assert personal_data_in(subject) == held, subject
    for subject in ("clerk-017", "6f1c2a9e-4b7d-4f0e-9a51-0d3c6e2b8f47", "clerk@SH-PD-HUAMU",
                    "service-account:open311", "ops@center"):
        assert personal_data_in(subject) is None, subject


def test_a_code_refused_once_is_refused_again_and_only_clean_codes_are_remembered(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``check_codes`` remembers the codes it found clean (a center's, a clerk's come again on
    every write), never one that holds a number: that is refused every time it comes, and
    nothing personal stays in memory. What a stand-in for the check passed (a test's "before
    the check existed") is not taken for clean once the check is back."""
    from shared.kernel import scrubbing
    from shared.kernel.errors import PersonalDataInCode

    meta = {"actor": "clerk-017"}
    clean = {"center_id": "SH-PD-HUAMU", "counter_id": "window-3", "clerk_id": "clerk-017",
             "service_item": "SA-HARDSHIP-SUBSIDY", "meta": meta}
    monkeypatch.setattr(scrubbing, "personal_number_in", lambda _: None)
    scrubbing.check_codes("CaseOpened", {**clean, "clerk_id": "tel13812345678"})
    monkeypatch.undo()
    for _ in range(2):
        scrubbing.check_codes("CaseOpened", clean)
    assert {"SH-PD-HUAMU", "SA-HARDSHIP-SUBSIDY"} <= scrubbing._CLEAN
    for _ in range(2):
        try:
            scrubbing.check_codes("CaseOpened", {**clean, "clerk_id": "tel13812345678"})
        except PersonalDataInCode as refused:
            assert refused.details["field"] == "clerk_id"
        else:
            raise AssertionError("a clerk id holding a phone number was taken")
    assert not any(personal_number_in(code) for code in scrubbing._CLEAN)

"""An id a counter app makes (an Idempotency-Key, a correlation id) is refused when it holds a
resident's phone number or ID number, and never because a UUID or a count happens to hold
digits (``shared.kernel.privacy.patterns.personal_number_in``)."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from shared.kernel.privacy.patterns import personal_number_in


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

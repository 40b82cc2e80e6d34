"""Every write's Idempotency-Key (and a correlation id) is looked at for a resident's phone or
ID number before it goes onto the events. The pages' keys and UUIDs are cleared by their
shape, and a code without eleven digits in a row or three groups of digits by one search:
whatever the code, the answer is the one reading every rule gives."""

from __future__ import annotations

import re
import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.kernel.privacy.numbers import _read_code, personal_number_in


def _read_whole(code: str) -> str | None:
    """What the rules answered before the quick looks: every code of 11 characters or more
    with a digit was read."""
    if len(code) < 11 or re.search(r"\d", code) is None:
        return None
    return _read_code(code)


def _id_number(first17: str) -> str:
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    total = sum(int(d) * w for d, w in zip(first17, weights, strict=True))
    return first17 + "10X98765432"[total % 11]


def test_the_keys_apps_send_are_told_as_the_rules_tell_them():
    cleared = [str(uuid.UUID(int=0)), str(uuid.UUID("12345678-1234-5678-1234-567812345678")),
               "step-" + "1" * 32, "page-0123456789abcdef0123456789ABCDEF", "q:" + "9" * 32,
               "bench-138123456-78", "SA-HARDSHIP-SUBSIDY", "31234-0000000005dc"]
    refused = {"k-13812345678": "a phone number", "tel13812345678": "a phone number",
               "138-1234-5678": "a phone number", "0086.13812345678": "a phone number",
               "k-" + _id_number("11010519491231002"): "an ID number",
               "step-13812345678" + "g" * 21: "a phone number"}
    for code in cleared:
        assert personal_number_in(code) is None is _read_whole(code), code
    for code, held in refused.items():
        assert personal_number_in(code) == held == _read_whole(code), code


_PIECE = st.one_of(
    st.text(alphabet="0123456789", min_size=1, max_size=18),
    st.sampled_from(["-", "_", ".", ":", "x", "X", "a", "f", "g", "tel", "step-", "86",
                     "138", "1234", "5678", "0086", "٣", "３", "1" * 11]),
    st.uuids().map(str), st.uuids().map(lambda u: u.hex),
    st.text(alphabet="0123456789", min_size=17, max_size=17).map(_id_number))


@settings(max_examples=1500, deadline=None)
@given(st.lists(_PIECE, min_size=1, max_size=7).map("".join))
def test_any_code_is_told_as_reading_every_rule_tells_it(code):
    assert personal_number_in(code) == _read_whole(code)

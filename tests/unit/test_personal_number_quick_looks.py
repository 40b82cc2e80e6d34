"""Every write's Idempotency-Key (and a correlation id) is looked at for a resident's phone or
ID number before it goes onto the events. The pages' keys and UUIDs are cleared by their
shape, and a code without eleven digits in a row or three groups of digits by one search:
whatever the code, the answer is the one reading every rule gives."""

from __future__ import annotations

import re
import uuid

import pytest
from fastapi import HTTPException
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.http import dependencies
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


# redteam112: keys a counter app may make of a resident's number, spelled every way, and keys
# that look like the ones the quick looks clear (a UUID, a page's key) with a number in them:
# each is answered by the Idempotency-Key's check exactly as the whole reading answered it
# (the same 400 or 422, the same body), and a correlation id or a code as well.
_FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
_ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
_SEPARATORS = ["", "-", ".", "_", ":", "--", " ", "/"]
_AROUND = ["", "k-", "tel", "TEL", "step-", "x", "abc", "ABCDEF", "g", "id:", "0086", "86",
           "key_", "-", "9"]
# The strategies each example draws from, made once: made again at every draw, building and
# validating them was about half of the examples' generation (the same draws either way).
_DIGIT_3456789 = st.sampled_from("3456789")
_NINE_DIGITS = st.text(alphabet="0123456789", min_size=9, max_size=9)
_SIXTEEN_DIGITS = st.text(alphabet="0123456789", min_size=16, max_size=16)
_A_SEPARATOR = st.sampled_from(_SEPARATORS)
_ID_FIRST = st.sampled_from("12345678")
_PHONE_OR_ID = st.builds(lambda d: d, st.sampled_from(["phone", "id"]))
_ID_LAST_BUT_ONE = st.sampled_from("0123")
_TAIL = st.sampled_from(["", "", "0", "g", "X", "-1"])
_CUT = st.sampled_from([0, 0, 1])
_PAGE_PREFIX = st.sampled_from(["step-", "page-", "q:", "s_", "", "g-", "step"])
_AROUND_IT = st.sampled_from(_AROUND)
_DIGITS_SPELLED = st.sampled_from([None, None, _FULL_WIDTH, _ARABIC_INDIC])


def _phones(draw: st.DrawFn) -> str:
    digits = "1" + draw(_DIGIT_3456789) + draw(_NINE_DIGITS)
    sep = draw(_A_SEPARATOR)
    return draw(st.sampled_from([digits, sep.join([digits[:3], digits[3:7], digits[7:]]),
                                 "86" + sep + digits, "0086" + sep + digits,
                                 sep.join(["86", digits[:3], digits[3:7], digits[7:]])]))


def _ids(draw: st.DrawFn) -> str:
    number = _id_number(draw(_ID_FIRST) + draw(_SIXTEEN_DIGITS))
    if draw(st.booleans()):
        number = number.lower()
    sep = draw(_A_SEPARATOR)
    return draw(st.sampled_from([number, sep.join([number[:6], number[6:14], number[14:]])]))


_NUMBERS = st.sampled_from([_phones, _ids])


def _uuid_shaped(draw: st.DrawFn) -> str:
    """A UUID or a page's key with a number laid into it, or one hex digit off the shape."""
    hexes = draw(st.uuids()).hex
    hexes = hexes.upper() if draw(st.booleans()) else hexes
    number = draw(_PHONE_OR_ID)
    digits = ("1" + draw(_DIGIT_3456789) + draw(_NINE_DIGITS)) \
        if number == "phone" else _id_number("1101051949123100" + draw(_ID_LAST_BUT_ONE))
    at = draw(st.integers(0, 32 - len(digits)))
    hexes = hexes[:at] + digits + hexes[at + len(digits):]
    hexes = hexes + draw(_TAIL)
    hexes = hexes[draw(_CUT):]
    if draw(st.booleans()):
        return draw(_PAGE_PREFIX) + hexes
    h = hexes
    return "-".join([h[:8], h[8:12], h[12:16], h[16:20], h[20:]])


@st.composite
def _keys(draw: st.DrawFn) -> str:
    number = draw(_NUMBERS)(draw)
    key = draw(_AROUND_IT) + number + draw(_AROUND_IT)
    digits = draw(_DIGITS_SPELLED)
    if digits is None:
        return key
    cut = draw(st.integers(0, len(key)))  # the whole key, or its tail only (13٨١٢...)
    return key[:cut] + key[cut:].translate(digits)


@st.composite
def _looks_clear(draw: st.DrawFn) -> str:
    return _uuid_shaped(draw)


def _answer(code: str) -> tuple[int, object] | None:
    """The check's answer, its coroutine run by hand: it awaits nothing, and an event loop
    made and closed for each of 5,000 calls (``asyncio.run``) was ~90 % of the test's own
    time."""
    check = dependencies._idempotency_key(code)
    try:
        check.send(None)
    except StopIteration:
        return None
    except HTTPException as exc:
        return exc.status_code, exc.detail
    check.close()
    raise AssertionError("the Idempotency-Key's check awaited something: run it on a loop")


@settings(max_examples=2500, deadline=None)
@given(st.one_of(_keys(), _looks_clear()))
def test_a_key_holding_a_residents_number_is_refused_as_the_whole_reading_refused_it(key):
    told = personal_number_in(key)
    assert told == _read_whole(key), key
    now = _answer(key)
    assert told is None or now is not None, key  # refused: 422, or 400 for its characters
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(dependencies, "personal_number_in", _read_whole)
        assert now == _answer(key), key


def test_every_way_a_number_is_laid_in_a_key_is_refused():
    # the shapes the quick looks clear, each with a number in them the rules read
    for key in ["k-13812345678", "step-13812345678" + "g" * 21, "13812345-678a-bcde-f012-3456",
                "q:13812345678" + "a" * 21, "step-" + "a" * 21 + "13812345678",
                "abcdef01-2345-6789-abcd-138123456789"[:-1],
                "12345678-1234-1234-1234-13812345678g",
                "0abcdef0-1234-5678-9abc-" + "13812345678" + "0"[:0] + "a",
                "step-" + _id_number("11010519491231002") + "abcdef0123456",
                "STEP-13812345678ABCDEF0123456789ABCD", "x_138-1234-5678",
                "k:310101-19491231-002" + _id_number("31010119491231002")[-1]]:
        assert personal_number_in(key) == _read_whole(key), key

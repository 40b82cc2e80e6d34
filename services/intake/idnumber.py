"""China's 18-character resident identity number (GB 11643-1999): region, birth date,
sequence, and an ISO 7064 MOD 11-2 check character. No I/O."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Literal
from zoneinfo import ZoneInfo

from shared.kernel.invisible import INVISIBLE

#: The numbers are issued in China, whose one zone their birth dates are in: from 16:00 UTC
#: a child born "today" there was born tomorrow by the machine's (UTC) date.
_ISSUED_IN = ZoneInfo("Asia/Shanghai")

_SHAPE = re.compile(r"^[1-9][0-9]{16}[0-9X]$")  # ASCII digits only: \d is any script's
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
#: First two digits: the province-level division the number was issued in.
_PROVINCES = frozenset({
    "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37",
    "41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64",
    "65", "71", "81", "82", "83", "91"})


def check_character(first17: str) -> str:
    return _CHECK[sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True)) % 11]


#: What an input method types for a digit or the check character X: the full-width forms.
FULL_WIDTH = {**{0xFF10 + i: ord("0") + i for i in range(10)}, 0xFF38: ord("X"),
              0xFF58: ord("x"), 0xFF0D: ord("-")}
#: What a clerk types between the groups of a number (spaces of any width, dashes) or pastes
#: with it unseen (``shared.kernel.invisible``: a phone number is folded with the same,
#: ``residents.py``).
_BETWEEN = re.compile(rf"[\s\-{INVISIBLE}]+")


def normalize(value: str) -> str:
    """The number as the vault keeps and finds it: full-width digits and X as ASCII, the
    spaces and dashes typed between its groups dropped, the check character upper-cased
    (``３１０１１５ 19850312 123x`` is ``31011519850312123X``). An ASCII number typed plainly
    is unchanged, so the vault's tags of numbers already on file still match."""
    return _BETWEEN.sub("", value.translate(FULL_WIDTH)).upper()


def issued_today(now: datetime) -> date:
    """China's date at ``now`` (an aware moment of the service's clock): a birth date is
    never after it. From 16:00 UTC it is the machine's tomorrow (31 December 16:30 UTC is
    1 January in Shanghai)."""
    return now.astimezone(_ISSUED_IN).date()


def problem_with(value: str, today: date | None = None) -> str | None:
    """Why ``value`` is not a valid resident ID number, or None when it is.

    ``today``: China's date by the service's clock (``issued_today``); a birth date after it
    is out of range. None: that bound is not checked here, and the caller checks it with its
    clock (``residents.py``: a pydantic validator has no clock; the wall clock it read
    before disagreed with a service whose clock tests set, and with a replayed day).

    The reason never quotes the number (it ends up in an error body)."""
    number = normalize(value)
    if not _SHAPE.fullmatch(number):
        return "a resident ID number is 17 digits and a check digit or X (18 characters)"
    if number[:2] not in _PROVINCES:
        return "the ID number's region code is not a province of China"
    try:
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return "the ID number's birth date is not a real date"
    if born.year < 1900 or (today is not None and born > today):
        return "the ID number's birth date is out of range"
    if check_character(number[:17]) != number[17]:
        return "the ID number's check digit does not match (a typo?)"
    return None



def birth_date(number: str) -> date:
    """The birth date a valid ID number carries (characters 7-14)."""
    return date(int(number[6:10]), int(number[10:12]), int(number[12:14]))


def sex_of(number: str) -> Literal["male", "female"]:
    """The sex a valid ID number carries: the 17th character is odd for a man."""
    return "male" if int(number[16]) % 2 else "female"

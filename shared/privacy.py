"""Keeps personal data out of free text before it is stored as an event or logged."""

from __future__ import annotations

import re

_RESIDENT_ID = re.compile(r"(?<![0-9A-Za-z])[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])"
                          r"(?:0[1-9]|[12]\d|3[01])\d{3}[0-9Xx](?![0-9A-Za-z])")
_MOBILE = re.compile(r"(?<!\d)(?:\+?86[- ]?)?1[3-9]\d[- ]?\d{4}[- ]?\d{4}(?!\d)")
_LANDLINE = re.compile(r"(?<!\d)0\d{2,3}-\d{7,8}(?!\d)")

REDACTED_ID = "[身份证号已隐去]"
REDACTED_PHONE = "[电话已隐去]"


def redact(text: str) -> str:
    """Replace resident ID numbers and phone numbers in free text with a marker.

    Free text (the resident's own words, notes) is the one place where a clerk may type
    personal data by habit; it never reaches the bus with it.
    """
    text = _RESIDENT_ID.sub(REDACTED_ID, text)
    text = _MOBILE.sub(REDACTED_PHONE, text)
    return _LANDLINE.sub(REDACTED_PHONE, text)

"""Bytes in a link: base64url without its padding (RFC 4648 section 5, as JWTs write it).

What the survey links, the referral reply links and the rating pads' tokens are spelt in;
each of the three wrote these two lines for itself.
"""

from __future__ import annotations

import base64


def encode(data: bytes) -> str:
    """``data`` as base64url, without the ``=`` padding (a link's ``=`` needs escaping)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def decode(text: str) -> bytes:
    """What :func:`encode` wrote (the padding put back); ``binascii.Error`` (a ValueError) on
    what is not base64url."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))

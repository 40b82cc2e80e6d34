"""Tokens signed out before their expiry: the ids a sign-out revoked (``POST /auth/sign-out``,
``shared.http.auth``): one the bus delivered is kept until its message's own time plus the
bucket's keep time (``shared.bus.revocations``: no value written to the bucket ends it), one
taken here until the token's own ``exp`` at least.

Every replica of every service holds the same set, fed by the bus's ``revoked tokens`` bucket
(``shared.bus.revocations``): only the token's id travels (its ``jti``, or a digest of the
token when the identity provider gave it none), never a subject or a name. A revoked token is
answered exactly as an expired one (401 ``token_expired``).
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from collections.abc import Callable

from shared.security.tokens import LEEWAY_S

#: What a bus key may hold; any other token id travels as its digest.
_PLAIN = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")


def revocation_key(token_id: str) -> str:
    """The token's key in the bucket: its ``jti`` when the bus can carry it as is."""
    if _PLAIN.fullmatch(token_id):
        return token_id
    return "h-" + hashlib.sha256(b"sixstep-revoked\x00" + token_id.encode()).hexdigest()[:40]


def is_revocation_key(key: str) -> bool:
    """Whether a bucket key is one :func:`revocation_key` gives: no other is ever asked, so a
    replica holds no other (a key of 4,000 characters cost each replica 4 kB)."""
    return _PLAIN.fullmatch(key) is not None


def token_digest(token: str) -> str:
    """The id of a token that has no ``jti`` (some identity providers issue none)."""
    return "t-" + hashlib.sha256(b"sixstep-token\x00" + token.encode()).hexdigest()[:40]


class RevokedTokens:
    """The revoked ids (their bucket keys) with the time each is kept until (``expires``: the
    token's ``exp`` for a sign-out taken here, the message's time plus the bucket's keep time
    for one the bus delivered), past the leeway verification gives ``exp`` (``LEEWAY_S``), and
    at the latest ``within_s`` from now: nothing is held for ever in a replica's memory. A
    later ``add`` never shortens what an earlier one kept."""

    def __init__(self, now: Callable[[], float] = time.time) -> None:
        self._until: dict[str, float] = {}
        #: Keys this replica refuses that the bus has not taken (a sign-out answered 503).
        self._here_only: set[str] = set()
        self._now = now
        #: Whether the bucket's revocations were all read (start-up: /ready waits for it).
        self.loaded = False
        #: The bucket's stream's fields that are not as sixstep makes it, as the start found
        #: them (a bucket made before stop 56: a service's write may end a revocation for the
        #: replicas started after): /ready's warnings say it until ``sixstep ops apply``.
        self.bucket_differs: list[str] = []

    def add(self, key: str, expires: float, *, within_s: float = math.inf,
            on_bus: bool = True) -> None:
        """``on_bus`` False: refused on this replica before (or without) the bus taking it;
        ``within_s``: kept no longer than that from now (the bucket's keep time)."""
        now = self._now()
        # verified up to then: refused as revoked up to then (NaN: never kept)
        until = min(expires, now + within_s) + LEEWAY_S
        if until > now:
            if on_bus:
                self._here_only.discard(key)
            elif key not in self._until:
                self._here_only.add(key)
            self._until[key] = max(until, self._until.get(key, 0.0))

    def on_bus(self, token_id: str) -> bool:
        """Revoked, and the bus has taken it (every replica refuses it, or will)."""
        return self.revoked(token_id) and revocation_key(token_id) not in self._here_only

    def revoked(self, token_id: str) -> bool:
        if not self._until or not token_id:
            return False
        key = revocation_key(token_id)
        until = self._until.get(key)
        if until is None:
            return False
        if until <= self._now():
            self._until.pop(key, None)
            self._here_only.discard(key)
            return False
        return True

    def __len__(self) -> int:
        now = self._now()
        for key in [k for k, until in self._until.items() if until <= now]:
            self._until.pop(key, None)
            self._here_only.discard(key)
        return len(self._until)

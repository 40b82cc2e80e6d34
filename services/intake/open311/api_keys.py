"""Open311's api_key, mapped onto sixstep's own auth: a counter-app credential for one center.

A civic app holds a key for one center, not a person's bearer token: the credentials are a
configured list, ``settings.open311_api_keys`` (api_key -> center_id). Only SHA-256 digests are
kept in memory; a presented key is hashed and compared with every configured digest in
constant time, so neither the answer's timing nor a log line tells anything about the keys.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

ROLE = "counter-app"


def _digest(api_key: str) -> bytes:
    return hashlib.sha256(api_key.encode("utf-8")).digest()


@dataclass(frozen=True)
class Credential:
    """Who an api_key stands for: the counter-app role, scoped to one center."""

    center_id: str
    fingerprint: str
    role: str = ROLE

    @property
    def actor(self) -> str:
        """The envelope's actor for what this credential writes (never the key itself)."""
        return f"open311:{self.fingerprint}"

    @property
    def clerk_id(self) -> str:
        return f"open311-{self.fingerprint}"


class ApiKeys:
    def __init__(self, configured: Mapping[str, str]) -> None:
        self._digests: list[tuple[bytes, str]] = []
        for key, center_id in configured.items():
            if key.startswith("sha256:"):
                digest = bytes.fromhex(key.removeprefix("sha256:"))
            else:
                digest = _digest(key)
            self._digests.append((digest, center_id))

    @property
    def centers(self) -> frozenset[str]:
        """The jurisdictions this endpoint serves: the centers that have a credential."""
        return frozenset(center for _, center in self._digests)

    def credential(self, api_key: str | None) -> Credential | None:
        """The credential for ``api_key``, or None when it is missing or unknown."""
        if not api_key:
            return None
        presented = _digest(api_key)
        found: str | None = None
        for digest, center_id in self._digests:  # no early exit: every key costs the same
            if hmac.compare_digest(presented, digest):
                found = center_id
        if found is None:
            return None
        return Credential(center_id=found, fingerprint=presented.hex()[:12])

"""How fast one clerk, and one center, may try ID numbers: a token bucket each (429 with
``Retry-After`` beyond it), and the metrics the city watches (lookups refused for speed, bursts
of lookups that find no one).

A lookup with a full ID number is the proof of presence that opens another center's resident
(``presence.py``), so trying numbers one after the other must be slow and seen. The buckets
live in each replica's memory (``shared.http.limits.TokenBuckets``): with N replicas a caller gets
at most N times the rate, still far from walking a range of ID numbers. The bursts are counted
in the audit table, so every replica sees the same count.
"""

from __future__ import annotations

import math

from fastapi import HTTPException
from prometheus_client import CollectorRegistry, Counter

from shared.http.limits import TokenBuckets
from shared.security.principals import Principal
from shared.settings import Settings


class LookupGuard:
    def __init__(self, settings: Settings, registry: CollectorRegistry) -> None:
        self.per_actor = TokenBuckets(settings.lookup_rate_per_minute / 60.0,
                                      settings.lookup_burst)
        self.per_center = TokenBuckets(settings.lookup_center_rate_per_minute / 60.0,
                                       settings.lookup_center_burst)
        self.limited = Counter(
            "sixstep_resident_lookups_limited_total",
            "Lookups and registrations refused for speed (429), by the bucket that ran out",
            ["scope"], registry=registry)
        self.bursts = Counter(
            "sixstep_resident_lookup_miss_bursts_total",
            "Bursts of lookups that found no one (LOOKUP_MISS_ALERT within "
            "LOOKUP_MISS_WINDOW_MINUTES by one clerk), by the clerk's center",
            ["center"], registry=registry)

    def check(self, principal: Principal) -> None:
        """429 ``rate_limited`` when the caller, or the caller's center, has no token left."""
        wait = self.per_actor.take(f"{principal.center_id}\x1f{principal.sub}")
        scope = "actor"
        if wait == 0:
            wait = self.per_center.take(principal.center_id or "")
            scope = "center"
        if wait > 0:
            self.limited.labels(scope).inc()
            seconds = max(1, math.ceil(wait))
            raise HTTPException(429, {"code": "rate_limited", "message": (
                "too many lookups by ID number from this clerk" if scope == "actor" else
                "too many lookups by ID number from this center") + "; retry later",
                "details": {"retry_after_s": seconds, "scope": scope}},
                headers={"Retry-After": str(seconds)})

    def miss_burst(self, center: str | None) -> None:
        self.bursts.labels(center or "none").inc()

"""What time it is, injectable: the system clock in production, a hand-set one in tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """An aware datetime."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """Stands still until told: ``set(moment)`` or ``advance(timedelta)``. For tests and demos."""

    def __init__(self, start: datetime) -> None:
        if start.utcoffset() is None:
            raise ValueError("give the clock an aware datetime")
        self._now = start

    def now(self) -> datetime:
        return self._now

    def set(self, moment: datetime) -> None:
        if moment.utcoffset() is None:
            raise ValueError("give the clock an aware datetime")
        self._now = moment

    def advance(self, by: timedelta) -> None:
        self._now += by

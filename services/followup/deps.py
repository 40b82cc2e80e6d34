"""What follow-up's routers take from the app (``api.py``, ``helping.py``): the use cases,
the clock, and the wait for a write to reach the read model (``?after=``)."""

from __future__ import annotations

from typing import Annotated

import asyncpg
from fastapi import Depends, Request

from services.followup.application import FollowUps
from services.followup.projections import CONSUMER
from shared.kernel.clock import Clock
from shared.readmodels.positions import wait_for_write
from shared.settings import Settings


async def _followups(request: Request) -> FollowUps:
    return request.app.state.followups


async def _clock(request: Request) -> Clock:
    return request.app.state.clock


FollowUpsDep = Annotated[FollowUps, Depends(_followups)]
ClockDep = Annotated[Clock, Depends(_clock)]


async def wait_for(pool: asyncpg.Pool, settings: Settings, after: int | None) -> None:
    """Until follow-up's read model has applied position ``after`` (none: at once)."""
    await wait_for_write(pool, settings, CONSUMER, "followup", after)

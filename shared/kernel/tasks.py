"""Ending the tasks a coroutine started, also when it is cancelled again while it waits, or
when one of them failed."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar, cast

T = TypeVar("T")


async def cancel_and_wait(*tasks: asyncio.Future[Any]) -> None:
    """Cancel ``tasks`` and return once every one has ended. A cancellation of the caller
    while it waits is passed on to the tasks still running (cancelled again) and raised once
    they have all ended: a shutdown cancels a loop again every 0.2 s (``Background.stop``),
    and a plain ``await asyncio.wait(tasks)`` gave up at the second cancel and left a child
    that took longer to unwind (a consumer's batch rolling back, a lock given back) running
    with no owner. Its loop closed under it: "Task was destroyed but it is pending!", and
    the garbage collector closing its coroutine mid-``finally`` ("coroutine ignored
    GeneratorExit") broke an unrelated ``compile`` in CI (CPython 3.11's gh-106905).

    The tasks' own outcomes are retrieved, not raised: a failure is the caller's to report
    (it has seen ``done`` already), a cancellation is what was asked."""
    running = {task for task in tasks if not task.done()}
    interrupted = False
    while running:
        for task in running:
            task.cancel()
        try:
            await asyncio.wait(running)
        except asyncio.CancelledError:
            interrupted = True
        running = {task for task in running if not task.done()}
    for task in tasks:
        if not task.cancelled():
            task.exception()  # retrieved: else "exception was never retrieved", an error
    if interrupted:
        raise asyncio.CancelledError


async def gather_all(*aws: Awaitable[T]) -> list[T]:
    """``asyncio.gather`` that returns, or raises the first failure, only once every one of
    ``aws`` has ended. A plain gather raises at the first failure and leaves the others
    running with no owner: a consumer's batch given back (rolled back, retried) or a
    scheduler's tick ended (started again, the lock perhaps given up) while a sibling's
    command was still on its way, which the retry then sent again. Cancelled, gather already
    waits for all (cancelled again too)."""
    outcomes = await asyncio.gather(*aws, return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return cast(list[T], outcomes)

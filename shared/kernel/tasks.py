"""Ending the tasks a coroutine started, also when it is cancelled again while it waits."""

from __future__ import annotations

import asyncio
from typing import Any


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

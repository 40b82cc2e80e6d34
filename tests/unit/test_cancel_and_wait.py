"""``shared/kernel/tasks.py``: the tasks a coroutine started end before it does, also when it
is cancelled again while it waits for them (a shutdown cancels every 0.2 s)."""

from __future__ import annotations

import asyncio

import pytest

from shared.kernel.tasks import cancel_and_wait


async def test_the_tasks_are_cancelled_and_ended_when_it_returns() -> None:
    never = asyncio.ensure_future(asyncio.Event().wait())
    done = asyncio.ensure_future(asyncio.sleep(0))
    await done
    await cancel_and_wait(never, done)
    assert never.cancelled() and done.done() and not done.cancelled()


async def test_cancelled_again_while_a_task_unwinds_it_ends_only_after_the_task() -> None:
    unwinding, let_go = asyncio.Event(), asyncio.Event()

    async def slow_to_unwind() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            unwinding.set()
            await let_go.wait()  # a rollback on a slow database: a second cancel ends it

    child = asyncio.ensure_future(slow_to_unwind())
    await asyncio.sleep(0)
    parent = asyncio.ensure_future(cancel_and_wait(child))
    await unwinding.wait()
    parent.cancel()  # the shutdown's next cancel: passed on to the child
    await asyncio.wait((parent,))
    assert parent.cancelled()
    assert child.done()


async def test_a_task_that_swallowed_its_cancel_is_cancelled_again_at_the_callers_next() -> None:
    swallowed = asyncio.Event()

    async def swallows_one() -> None:  # nats-py's flush does: Background.stop's reason
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            swallowed.set()
        await asyncio.Event().wait()

    child = asyncio.ensure_future(swallows_one())
    await asyncio.sleep(0)
    parent = asyncio.ensure_future(cancel_and_wait(child))
    await swallowed.wait()
    assert not parent.done()
    parent.cancel()
    with pytest.raises(asyncio.CancelledError):
        await parent
    assert child.cancelled()


async def test_a_tasks_own_failure_is_retrieved_not_raised() -> None:
    async def fails() -> None:
        raise ValueError("the caller reports it")

    failed = asyncio.ensure_future(fails())
    await asyncio.wait((failed,))
    await cancel_and_wait(failed)  # no "Task exception was never retrieved" later either
    assert isinstance(failed.exception(), ValueError)

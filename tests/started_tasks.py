"""Which tasks a block of a test started: the ones created by the code it runs, and by the tasks
that code started (each inherits the block's context), not the ones another app on the run's
shared loop started meanwhile.

The run's event loop is one for the whole session (pyproject's ``asyncio_default_*_loop_scope``),
and some apps live on it from one test to the next: tests/pages' center (three services, a
session fixture) goes on applying its surveys' and schedulers' events while the worker runs
the next files. Counted by "created while the block ran", its consumers' batches
(``Consumer.process``, ``Puller.arrival``) were another test's orphans: stop 53's CI failed a
follow-up block that had started none of them (tests/unit/test_started_tasks.py).

Python 3.11 does not say in which context a task was made (``Task.get_context`` is 3.12's), so
the loop's task factory notes it as each task is made (``_noting``)."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import weakref
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

#: The block the running code is in (None: none), inherited by every task it creates.
_BLOCK: contextvars.ContextVar[object | None] = contextvars.ContextVar("block", default=None)
#: The block each task was made in, as the loop's task factory saw it (``_noting``).
_MADE_IN: weakref.WeakKeyDictionary[asyncio.Future[Any], object | None] = (
    weakref.WeakKeyDictionary())

Started = Callable[[], list[asyncio.Task[Any]]]


@contextlib.contextmanager
def started_here() -> Iterator[Started]:
    """``with started_here() as started:``: ``started()`` lists the tasks made so far by the
    code running in the block and by the tasks it made, still running; never a task another
    app's loop made meanwhile. A task made outside the loop's task factory (``asyncio.Task``
    called directly), whose context nobody noted, is counted: the guard stays on the safe
    side; a task a callback registered before the block makes in that callback's context (an
    async termination listener of an asyncpg connection opened outside it: the product's
    are plain functions) is not. Inside another block it is that block's (whose ``started``
    must see them too): ``started()`` is then what was made there since this one began."""
    loop = asyncio.get_running_loop()
    _note_contexts(loop)
    block = _BLOCK.get() or object()
    before = asyncio.all_tasks(loop)
    token = _BLOCK.set(block)

    def started() -> list[asyncio.Task[Any]]:
        return [task for task in asyncio.all_tasks(loop) - before
                if _MADE_IN.get(task, block) is block]
    try:
        yield started
    finally:
        _BLOCK.reset(token)


def _note_contexts(loop: asyncio.AbstractEventLoop) -> None:
    """The loop's task factory notes the block each task is made in (once per loop; a factory
    already there still makes the tasks)."""
    made = loop.get_task_factory()
    if getattr(made, "notes_blocks", False):
        return

    def _noting(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any], *,
                context: contextvars.Context | None = None) -> asyncio.Future[Any]:
        block = context.get(_BLOCK) if context is not None else _BLOCK.get()
        if made is not None:
            task = (made(loop, coro) if context is None
                    else made(loop, coro, context=context))  # type: ignore[call-arg]
        else:
            task = asyncio.Task(coro, loop=loop, context=context)
        _MADE_IN[task] = block
        return task

    _noting.notes_blocks = True  # type: ignore[attr-defined]
    loop.set_task_factory(_noting)  # type: ignore[arg-type]

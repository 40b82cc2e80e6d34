"""The orphan guard (``tests.support.nothing_left_running``) counts the tasks its block
started, and the ones those started; not the batches another app on the run's shared loop
starts meanwhile (tests/pages' center, a session fixture: stop 53's CI failed a follow-up's
lifespan on them)."""

from __future__ import annotations

import asyncio

import pytest

from tests.support import nothing_left_running


async def test_a_session_long_centers_batch_is_not_the_blocks_but_its_own_loops_tasks_are(
        ) -> None:
    go, batch_on_its_way, done = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def pages_center() -> None:  # started before the block, as a session fixture is
        await go.wait()
        batch = asyncio.create_task(done.wait(), name="pages-center-batch")
        batch_on_its_way.set()
        await batch

    tasks: list[asyncio.Task[object]] = []

    async def service_loop() -> None:  # the block's app's loop, its batch left running
        tasks.append(asyncio.create_task(done.wait(), name="its-batch"))
        await done.wait()

    beside = asyncio.create_task(pages_center())
    try:
        with pytest.raises(AssertionError) as failed:
            async with nothing_left_running("sixstep follow-up's lifespan"):
                tasks.append(asyncio.create_task(service_loop(), name="its-loop"))
                go.set()
                await batch_on_its_way.wait()
        said = str(failed.value)
        assert "its-loop" in said and "its-batch" in said, said
        assert "pages-center-batch" not in said, said
    finally:
        done.set()
        await asyncio.gather(beside, *tasks)


async def test_a_block_that_leaves_nothing_passes_while_another_app_works_beside_it() -> None:
    go, batch_on_its_way, done = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def pages_center() -> None:
        await go.wait()
        batch = asyncio.create_task(done.wait(), name="pages-center-batch")
        batch_on_its_way.set()
        await batch

    beside = asyncio.create_task(pages_center())
    try:
        async with nothing_left_running("sixstep follow-up's lifespan"):
            mine = asyncio.create_task(asyncio.sleep(0), name="its-own")
            go.set()
            await batch_on_its_way.wait()
            await mine
    finally:
        done.set()
        await beside

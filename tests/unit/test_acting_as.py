"""Whoever a request or a background job acts as is the caller inside it and nobody's after it,
whatever ends the work: ``acting_as`` is a plain class now (every request enters one), and it
must keep what the ``@contextmanager`` it replaced did."""

from __future__ import annotations

import asyncio

import pytest

from shared.security.principals import Principal, Role, acting_as, current_caller

CLERK = Principal("clerk-017", Role.CLERK, center_id="SH-PD-HUAMU")
SUPERVISOR = Principal("sup-003", Role.SUPERVISOR, center_id="SH-PD-HUAMU")


def test_the_clerk_is_the_caller_inside_and_nobody_is_after() -> None:
    assert current_caller() is None
    with acting_as(CLERK) as caller:
        assert caller is CLERK
        assert current_caller() is CLERK
    assert current_caller() is None


def test_a_supervisor_stepping_in_hands_the_counter_back_to_the_clerk() -> None:
    with acting_as(CLERK):
        with acting_as(SUPERVISOR):
            assert current_caller() is SUPERVISOR
        assert current_caller() is CLERK
    assert current_caller() is None


def test_a_failed_write_leaves_nobody_acting() -> None:
    with pytest.raises(RuntimeError), acting_as(CLERK):
        raise RuntimeError("the store refused it")
    assert current_caller() is None


def test_a_request_cancelled_half_way_leaves_nobody_acting() -> None:
    async def day() -> None:
        started = asyncio.Event()

        async def request() -> None:
            with acting_as(CLERK):
                started.set()
                await asyncio.Event().wait()

        task = asyncio.create_task(request())
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert current_caller() is None

    asyncio.run(day())


def test_two_counters_at_once_each_see_their_own_clerk() -> None:
    other = Principal("clerk-018", Role.CLERK, center_id="SH-XH-TIANPING")

    async def counter(principal: Principal, arrived: asyncio.Barrier) -> Principal | None:
        with acting_as(principal):
            await arrived.wait()  # both inside at once
            return current_caller()

    async def day() -> list[Principal | None]:
        arrived = asyncio.Barrier(2)
        return list(await asyncio.gather(counter(CLERK, arrived), counter(other, arrived)))

    assert asyncio.run(day()) == [CLERK, other]
    assert current_caller() is None


def test_no_caller_is_a_caller_of_its_own() -> None:
    with acting_as(CLERK), acting_as(None):
        assert current_caller() is None


def test_one_acting_as_entered_again_is_refused_before_it_acts() -> None:
    """One ``acting_as`` kept and entered again inside itself (a job's ``as_publisher =
    acting_as(...)`` used by two of its steps) was refused by the ``@contextmanager`` at the
    second entry (an AttributeError), before anything was set. The plain class took it, and
    the outer exit then reset the inner's used token: a RuntimeError there, and the clerk
    left as the caller of whatever the task did next (a loop that goes on after a
    failure)."""
    acting = acting_as(CLERK)
    with acting:
        with pytest.raises(RuntimeError), acting:
            pass
        assert current_caller() is CLERK
    assert current_caller() is None
    with pytest.raises(RuntimeError), acting:  # once only, as before
        pass
    assert current_caller() is None


def test_one_acting_as_shared_by_two_counters_is_refused_to_the_second() -> None:
    """Shared by two tasks, the second entry overwrote the first's reset token, and the
    first's exit failed on a token of another context."""
    acting = acting_as(CLERK)

    async def counter(inside: asyncio.Event, done: asyncio.Event) -> None:
        with acting:
            inside.set()
            await done.wait()

    async def day() -> None:
        inside, done = asyncio.Event(), asyncio.Event()
        first = asyncio.create_task(counter(inside, done))
        await inside.wait()
        over = asyncio.Event()
        over.set()
        with pytest.raises(RuntimeError):
            await counter(asyncio.Event(), over)
        done.set()
        await first  # its exit resets its own caller
        assert current_caller() is None

    asyncio.run(day())

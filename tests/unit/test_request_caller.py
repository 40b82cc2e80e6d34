"""Two clerks of two centers at two counters at once: each write is theirs, whatever ends it.

The request path sets the authenticated caller around every request (``shared.http.auth``,
``acting_as``) and hands a write route's request to ``FastRoute``'s fast path, which awaits
the endpoint itself. Here the use cases behind intake's write routes are replaced by ones
that record who they were called for (the actor, the staff principal, ``current_caller``)
before and after every await, and that wait for the other counter's request to be inside too,
fail, or are cancelled half-way. Each request must see its own clerk at every step, on the
fast path and on FastAPI's own, and the task that sent it must be nobody's afterwards (the
in-process transport runs the app in the sender's task: a caller left behind would show).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.intake.main import create_app
from shared.eventstore.group_commit import Written
from shared.security.principals import Principal, Role, current_caller
from shared.security.tokens import issue_token
from shared.settings import Settings
from tests.unit.test_fast_route import _never_used

HUAMU, TIANPING = "SH-PD-HUAMU", "SH-XH-TIANPING"
CLERKS = {HUAMU: "clerk-017", TIANPING: "clerk-018"}


class Counters:
    """Intake's write use cases as the routes call them, recording who each call is for."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str | None, str | None]] = []
        self.both_inside: asyncio.Barrier | None = None
        self.fail: set[str] = set()
        self.hang: set[str] = set()
        self.inside = asyncio.Event()

    async def _step(self, actor: str, principal: Principal | None) -> None:
        caller = current_caller()
        self.seen.append(("before", actor, getattr(principal, "sub", None),
                          getattr(caller, "sub", None)))
        if self.both_inside is not None:
            await self.both_inside.wait()  # the other counter's request is inside too
        for _ in range(3):
            await asyncio.sleep(0)  # every await is a chance to interleave
        if actor in self.hang:
            self.inside.set()
            await asyncio.Event().wait()  # a slow store: the request is cancelled here
        caller = current_caller()
        self.seen.append(("after", actor, getattr(principal, "sub", None),
                          getattr(caller, "sub", None)))
        if actor in self.fail:
            raise RuntimeError("the store failed")

    async def open_case(self, body: Any, actor: str, key: str,
                        principal: Principal | None = None) -> Written:
        await self._step(actor, principal)
        return Written(uuid.uuid4(), 1, 7)

    async def hear_request(self, case_id: uuid.UUID, body: Any, actor: str, key: str,
                           expected_version: int | None) -> Written:
        await self._step(actor, current_caller())
        return Written(case_id, 2, 8)


def _app(settings: Settings, counters: Counters, *, standard: bool) -> FastAPI:
    app = create_app(settings)
    app.state.intake = counters
    if standard:  # any override sends every request to FastAPI's own path
        app.dependency_overrides[_never_used] = _never_used
    return app


@pytest.fixture(scope="module")
def local_settings() -> Settings:
    return Settings(environment="development", log_json=False)


def _case(center: str) -> dict[str, Any]:
    return {"center_id": center, "counter_id": "window-1", "clerk_id": CLERKS[center],
            "service_item": "SA-HARDSHIP-SUBSIDY"}


def _headers(settings: Settings, center: str, key: str) -> dict[str, str]:
    token = issue_token(settings, CLERKS[center], Role.CLERK, center)
    return {"Authorization": f"Bearer {token}", "Idempotency-Key": key}


def _client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
                             base_url="http://sixstep.test")


def _everyone_saw_their_own(counters: Counters) -> None:
    for _, actor, principal, caller in counters.seen:
        assert actor == principal == caller, counters.seen


@pytest.mark.parametrize("standard", [False, True], ids=["fast", "fastapi"])
async def test_two_clerks_of_two_centers_writing_at_once_each_write_as_themselves(
        local_settings: Settings, standard: bool) -> None:
    counters = Counters()
    counters.both_inside = asyncio.Barrier(2)
    async with _client(_app(local_settings, counters, standard=standard)) as client:
        step = f"/cases/{uuid.UUID(int=7)}/hear"

        async def counter(center: str, n: int) -> list[int]:
            headers = _headers(local_settings, center, f"key-{center}-{n}")
            opened = await client.post("/cases", json=_case(center), headers=headers)
            heard = await client.post(step, json={"words": "x"}, headers=headers)
            assert current_caller() is None
            return [opened.status_code, heard.status_code]

        for n in range(5):
            answers = await asyncio.gather(counter(HUAMU, n), counter(TIANPING, n))
            assert answers == [[201, 200], [201, 200]]
    assert len(counters.seen) == 5 * 2 * 2 * 2
    _everyone_saw_their_own(counters)
    assert current_caller() is None


@pytest.mark.parametrize("standard", [False, True], ids=["fast", "fastapi"])
async def test_a_failed_write_leaves_the_next_request_of_the_same_task_its_own_clerk(
        local_settings: Settings, standard: bool) -> None:
    counters = Counters()
    counters.fail = {CLERKS[HUAMU]}
    async with _client(_app(local_settings, counters, standard=standard)) as client:
        failed = await client.post("/cases", json=_case(HUAMU),
                                   headers=_headers(local_settings, HUAMU, "key-failed-1"))
        assert failed.status_code == 500
        assert current_caller() is None
        other = await client.post("/cases", json=_case(TIANPING),
                                  headers=_headers(local_settings, TIANPING, "key-other-1"))
        assert other.status_code == 201
    _everyone_saw_their_own(counters)
    assert [actor for _, actor, *_ in counters.seen] == [CLERKS[HUAMU]] * 2 + [
        CLERKS[TIANPING]] * 2
    assert current_caller() is None


@pytest.mark.parametrize("standard", [False, True], ids=["fast", "fastapi"])
async def test_a_request_cancelled_in_a_slow_write_leaves_its_task_nobody_s(
        local_settings: Settings, standard: bool) -> None:
    """The cancel lands in the sender's own task (the in-process transport runs the app
    there), which goes on after it: the clerk must not be its caller any more."""
    counters = Counters()
    counters.hang = {CLERKS[HUAMU]}
    app = _app(local_settings, counters, standard=standard)
    async with _client(app) as client:
        me = asyncio.current_task()
        assert me is not None

        async def cancel_me_once_inside() -> None:
            await counters.inside.wait()
            me.cancel()

        canceller = asyncio.ensure_future(cancel_me_once_inside())
        with pytest.raises(asyncio.CancelledError):
            await client.post("/cases", json=_case(HUAMU),
                              headers=_headers(local_settings, HUAMU, "key-cancelled"))
        me.uncancel()
        await canceller
        assert current_caller() is None
        counters.hang = set()
        other = await client.post("/cases", json=_case(TIANPING),
                                  headers=_headers(local_settings, TIANPING, "key-after-1"))
        assert other.status_code == 201
    _everyone_saw_their_own(counters)
    assert current_caller() is None

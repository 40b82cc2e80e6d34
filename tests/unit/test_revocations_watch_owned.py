"""The watch of the revoked-tokens bucket (``shared.bus.revocations.load_and_watch``) always has
an owner, and ending it never eats a cancel of its owner.

A start cancelled while it waited for the bucket's first read left the watch running with no
owner (its loop closed under it: "Task was destroyed but it is pending!"). ``stop_runtime``
awaited the cancelled watch under ``suppress(BaseException)``: a cancel of the stop itself
(a shutdown's deadline), arriving while the watch unwound, was swallowed and the stop went on
draining NATS and closing the store as if it had never been asked to stop."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from nats.js.errors import NotFoundError

from shared.bus.revocations import bucket_stream_config, load_and_watch
from shared.runtime.lifecycle import stop_runtime
from shared.security.revocations import RevokedTokens
from shared.settings import Settings


class _Watcher:
    def __init__(self) -> None:
        self.waiting = asyncio.Event()
        self.stopped = False

    async def updates(self, timeout: float | None = None) -> Any:
        self.waiting.set()
        await asyncio.Event().wait()  # the bucket's first read never comes

    async def stop(self) -> None:
        self.stopped = True


class _Bucket:
    def __init__(self, watcher: _Watcher) -> None:
        self.watcher = watcher

    async def watchall(self) -> _Watcher:
        return self.watcher


class _Nats:
    def __init__(self, watcher: _Watcher) -> None:
        self.bucket = _Bucket(watcher)

    def jetstream(self) -> _Nats:
        return self

    async def key_value(self, bucket: str) -> _Bucket:
        return self.bucket

    async def stream_info(self, name: str) -> Any:
        if name.endswith("_again"):  # no ops apply is making the bucket again
            raise NotFoundError
        return SimpleNamespace(config=bucket_stream_config(Settings()))


def _watches() -> list[asyncio.Task[Any]]:
    return [t for t in asyncio.all_tasks() if t.get_name() == "revoked-tokens" and not t.done()]


async def test_a_start_cancelled_before_the_first_read_ends_the_watch() -> None:
    others = set(_watches())  # another test's on a loop the run shares: not this one's
    watcher = _Watcher()
    starting = asyncio.create_task(
        load_and_watch(_Nats(watcher), Settings(), RevokedTokens()))  # type: ignore[arg-type]
    await watcher.waiting.wait()
    starting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await starting
    assert [t for t in _watches() if t not in others] == []
    assert watcher.stopped


class _Stopped:
    async def stop(self, names: Any = None, end_sessions: Any = None) -> None:
        return None

    async def close(self) -> None:
        return None


async def test_a_stop_cancelled_while_the_watch_unwinds_is_not_swallowed() -> None:
    got_cancel, unwound = asyncio.Event(), asyncio.Event()

    async def watch() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            got_cancel.set()
            await asyncio.Event().wait()  # a slow unwind: cancelled again, it ends
        finally:
            unwound.set()

    drained: list[bool] = []

    async def drain() -> None:
        drained.append(True)

    quiet = _Stopped()
    runtime = SimpleNamespace(
        consumers={}, background=SimpleNamespace(tasks={}, stop=quiet.stop), committer=quiet,
        relay=None, revocations_watch=asyncio.create_task(watch()),
        nc=SimpleNamespace(drain=drain), pool=quiet, lock_pool=quiet,
        application=SimpleNamespace(close=lambda: None), tracer_provider=None,
        froze_heap=False, service="intake")
    stopping = asyncio.create_task(stop_runtime(runtime))  # type: ignore[arg-type]
    await got_cancel.wait()
    stopping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopping
    assert unwound.is_set()  # the watch was still waited for
    assert drained == []  # and the stop went no further


class _StoreGone(_Stopped):
    def __init__(self) -> None:
        self.closed = False

    async def fetchval(self, *args: Any) -> Any:
        raise ConnectionRefusedError("PostgreSQL is gone")

    async def close(self) -> None:
        self.closed = True


async def test_a_stop_whose_graceful_part_fails_still_lets_everything_go() -> None:
    """PostgreSQL gone at shutdown: the relay's last position cannot be read. The stop went
    no further: every loop, the watch of signed-out tokens, NATS and the pool stayed running
    with no owner (on a test run's shared loop, for the rest of the run). Now they are let
    go, and the failure is still raised, once they are."""
    watch = asyncio.create_task(asyncio.Event().wait())
    drained: list[bool] = []
    stopped: list[Any] = []

    async def drain() -> None:
        drained.append(True)

    async def stop(names: Any = None, end_sessions: Any = None) -> None:
        stopped.append(names)

    store, locks = _StoreGone(), _StoreGone()
    runtime = SimpleNamespace(
        consumers={}, background=SimpleNamespace(tasks={"relay": None}, stop=stop),
        committer=_Stopped(), relay=SimpleNamespace(leading=True, schema="s", table="t",
                                                    position=0),
        revocations_watch=watch, nc=SimpleNamespace(drain=drain), pool=store, lock_pool=locks,
        application=SimpleNamespace(close=lambda: None), tracer_provider=None,
        froze_heap=False, service="intake")
    with pytest.raises(ConnectionRefusedError):
        await stop_runtime(runtime)  # type: ignore[arg-type]
    assert stopped == [[], None]  # the relay stopped too, with every other loop
    assert watch.cancelled()
    assert drained == [True] and store.closed and locks.closed  # the loops' lock pool too

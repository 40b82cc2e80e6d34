"""``shared/leadership.py``'s own rules, on a real PostgreSQL: the leader sees its lock as
its own whatever the sign of the key's hash (``hashtext`` is negative for half the names:
the lock's high 32 bits are then all ones), a second replica stands by until the first
steps down, and a session PostgreSQL ended is a ``LeadershipLost``; a look at the lock that
fails with the session still open (a statement timeout on a busy server) is not."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import asyncpg
import pytest
from structlog.testing import capture_logs

from shared.leadership import Leadership, LeadershipLost
from shared.readmodels.pool import create_pool
from shared.runtime.background import Background
from shared.settings import Settings
from tests.support import end_lock_session, lock_free, schema_pool, wait_until

#: The session setting that makes the leader's look at ``pg_locks`` fail while another
#: session keeps that view locked: a lock wait ended by ``lock_timeout`` (55P03), or the
#: statement ended by ``statement_timeout`` (57014), as on a database too busy to answer.
TIMEOUTS = {"lock_timeout": "SET lock_timeout = '50ms'",
            "statement_timeout": "SET lock_timeout = 0; SET statement_timeout = '50ms'"}


@contextlib.asynccontextmanager
async def pg_locks_held(settings: Settings) -> AsyncIterator[None]:
    """Another session holds ``pg_locks`` (the view the leader looks at) in ACCESS EXCLUSIVE
    mode until the block ends: the leader's look waits, then its session's timeout ends it."""
    blocker = await asyncpg.connect(settings.database_url)
    try:
        async with blocker.transaction():
            await blocker.execute("LOCK TABLE pg_catalog.pg_locks IN ACCESS EXCLUSIVE MODE")
            yield
    finally:
        await blocker.close()


def said(logs: list[dict[str, object]], event: str) -> bool:
    return any(line["event"] == event for line in logs)


@pytest.mark.parametrize("negative", [True, False], ids=["hash<0", "hash>=0"])
async def test_a_leader_sees_its_lock_whatever_the_sign_of_its_hash_and_loses_it_with_its_session(
        settings: Settings, negative: bool) -> None:
    async with schema_pool(settings, "leadership", []) as pool:
        key = await pool.fetchval(
            "SELECT k FROM (SELECT 'sixstep-test-leadership:' || n AS k FROM"
            " generate_series(1, 50) n) names WHERE (hashtext(k) < 0) = $1 LIMIT 1", negative)
        standing_by = asyncio.Event()
        first = Leadership(pool, key, what="test", standby_s=0.01)
        # confirm_s=0: every check looks at pg_locks, so the look itself is what meets the
        # ended session here (the termination listener may not have heard it yet)
        second = Leadership(pool, key, what="test", standby_s=0.01, confirm_s=0,
                            on_standby=lambda waiting: waiting and standing_by.set())
        async with first as lead:
            await lead.check()
            assert lead.leading
            waiting = asyncio.create_task(second.__aenter__())
            await standing_by.wait()
            assert not second.leading
        await waiting  # the first stepped down: the second leads
        assert second.leading
        await second.check()
        assert await end_lock_session(pool, key) == 1

        async def gone() -> bool:  # a barrier: the backend ended, its lock with it
            return await lock_free(pool, key)
        await wait_until(gone, what="the lock's session ended")
        with pytest.raises(LeadershipLost):
            await second.check()
        assert not second.leading
        await second.__aexit__(None, None, None)


async def test_replicas_standing_by_hold_no_session_while_they_wait(
        settings: Settings) -> None:
    """A loop standing by kept a pool connection, its session idle, for as long as it waited:
    a second replica of feedback's workers held seven sessions for nothing. A try that did
    not get the lock holds nothing on its session: the connection goes back to the pool, and
    only the winning try keeps its own (the first test: a standby still takes over)."""
    async with schema_pool(settings, "leadership_standby", []) as pool:
        key = "sixstep-test-leadership:standby"
        async with Leadership(pool, key, what="test"):
            said = [asyncio.Event() for _ in range(3)]
            standbys = [Leadership(pool, key, what="test", standby_s=3600,
                                   on_standby=lambda waiting, e=e: waiting and e.set())
                        for e in said]
            waiting = [asyncio.create_task(s.__aenter__()) for s in standbys]
            try:
                for e in said:  # a barrier: each has tried once and is now waiting
                    await e.wait()
                assert pool.get_size() - pool.get_idle_size() == 1  # the leader's own
                assert not any(s.leading for s in standbys)
            finally:
                for task in waiting:
                    task.cancel()
                await asyncio.gather(*waiting, return_exceptions=True)


class Counted:
    """A pool whose acquires are counted: ``enough`` is set at the ``n``-th."""

    def __init__(self, pool: asyncpg.Pool, n: int) -> None:
        self.pool, self.n, self.acquired = pool, n, 0
        self.enough = asyncio.Event()

    def acquire(self) -> object:
        self.acquired += 1
        if self.acquired >= self.n:
            self.enough.set()
        return self.pool.acquire()

    async def release(self, conn: asyncpg.Connection) -> None:
        await self.pool.release(conn)


async def test_a_worker_standing_by_tries_its_loops_locks_on_one_session(
        settings: Settings) -> None:
    """Feedback's worker stands by on seven loops, started together and pausing alike: their
    tries came at the same moment, each on a connection of its own, and the lock pool kept
    those six or seven idle sessions for good (each reused every second or two, none
    reached the pool's idle lifetime; redteam127: 3 working + 6 lock sessions for a standby,
    where the docs said one). The tries go one at a time now, on one session."""
    async with schema_pool(settings, "leadership_tries", []):
        holder = await asyncpg.connect(settings.database_url)  # the leading replica
        keys = [f"sixstep-test-leadership:tries-{n}" for n in range(7)]
        try:
            for key in keys:
                await holder.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", key)
            locks = await create_pool(settings, f"{settings.schema_prefix}leadership_tries",
                                      min_size=0, max_size=32)
            counted = Counted(locks, 3 * len(keys))
            standbys = [Leadership(counted, key, what="test",  # type: ignore[arg-type]
                                   standby_s=0.01)
                        for key in keys]
            waiting = [asyncio.create_task(s.__aenter__()) for s in standbys]
            try:
                await counted.enough.wait()  # a barrier: each tried three times, on one beat
                assert locks.get_size() == 1, locks.get_size()
                assert not any(s.leading for s in standbys)
            finally:
                for task in waiting:
                    task.cancel()
                await asyncio.gather(*waiting, return_exceptions=True)
                await locks.close()
        finally:
            await holder.close()


async def test_a_leader_whose_session_ended_says_so_at_once_not_at_its_next_round(
        settings: Settings) -> None:
    """The period scheduler looks at its lock once a minute: after PostgreSQL ended the
    session, ``leading`` (the ``sixstep_leading`` gauge, /ready's ``checks.leading``) said 1
    for up to a minute on the old leader beside the replica that took the lock (two leaders
    shown). The session's end is heard as it happens (asyncpg's termination listener)."""
    async with schema_pool(settings, "leadership_gauge", []) as pool:
        key = "sixstep-test-leadership:gauge"
        async with Leadership(pool, key, what="test") as lead:
            await lead.check()
            assert await end_lock_session(pool, key) == 1

            async def gone() -> bool:  # a barrier: the backend ended, its lock with it
                return await lock_free(pool, key)
            await wait_until(gone, what="the lock's session ended")

            async def said() -> bool:  # no check() called: nothing but the session's end
                return not lead.leading
            await wait_until(said, what="the old leader to stop saying it leads")
            with pytest.raises(LeadershipLost):
                await lead.check()


async def test_a_leader_cancelled_again_while_stepping_down_gives_its_connection_back(
        settings: Settings) -> None:
    """A shutdown cancels a loop again every 0.2 s until it ends (``Background.stop``: nats-py
    swallows a cancel). One landing on the unlock skipped the connection's return to the
    pool: the lock's connection was lost, and ``pool.close()`` at the end of the shutdown
    waits for it for ever."""
    async with schema_pool(settings, "leadership_cancel", []) as pool:
        key = "sixstep-test-leadership:cancel"
        leading, leaving = asyncio.Event(), asyncio.Event()

        async def loop() -> None:
            async with Leadership(pool, key, what="test"):
                leading.set()
                try:
                    await asyncio.Event().wait()
                finally:
                    leaving.set()  # on into __aexit__: its unlock is sent before we wake

        task = asyncio.create_task(loop())
        await leading.wait()
        task.cancel()
        await leaving.wait()
        task.cancel()  # the second cancel: lands on the unlock's round trip
        with pytest.raises(asyncio.CancelledError):
            await task

        async def back() -> bool:  # a barrier: every connection idle in the pool again
            return pool.get_idle_size() == pool.get_size()
        await wait_until(back, what="the lock's connection back in the pool")
        await wait_until(lambda: lock_free(pool, key), what="the lock given up")


@pytest.mark.parametrize("timeout", list(TIMEOUTS))
async def test_a_leader_that_cannot_tell_for_a_moment_keeps_leading_and_looks_again(
        settings: Settings, timeout: str) -> None:
    """Any error of ``check`` was a loss: a statement timeout on a busy database made the
    leader step down and its loop start again (every loop of the replica at once: a thrash),
    while its session, and the lock, were there all along. Now the look is asked again (the
    round held back meanwhile) and the leader leads on once it answers."""
    async with schema_pool(settings, "leadership_unsure", []) as pool:
        key = "sixstep-test-leadership:unsure"
        async with Leadership(pool, key, what="test", confirm_s=0, retry_s=0.05,
                              doubt_s=600) as lead:
            await lead.connection.execute(TIMEOUTS[timeout])
            with capture_logs() as logs:
                async with pg_locks_held(settings):
                    checking = asyncio.create_task(lead.check())

                    async def unsure() -> bool:  # a barrier: one look has failed
                        return said(logs, "leader.unsure") or checking.done()
                    await wait_until(unsure, what="the leader's look timing out")
                    assert not checking.done(), "a timeout is not a loss"
                await checking  # the view free again: the look answers, still ours
            assert lead.leading
            assert said(logs, "leader.sure_again") and not said(logs, "leader.lost")
            assert not await lock_free(pool, key)


async def test_a_leader_that_cannot_tell_for_too_long_gives_the_lock_up(
        settings: Settings) -> None:
    """"Could not tell" is bounded: a leader whose looks keep failing (a session cut off
    without either side closing it looks just so) gives the lock up after ``doubt_s``."""
    async with schema_pool(settings, "leadership_doubt", []) as pool:
        key = "sixstep-test-leadership:doubt"
        async with Leadership(pool, key, what="test", confirm_s=0, retry_s=0.02,
                              doubt_s=0.2) as lead:
            await lead.connection.execute(TIMEOUTS["lock_timeout"])
            async with pg_locks_held(settings):
                with pytest.raises(LeadershipLost, match="could not tell"):
                    await lead.check()
            assert not lead.leading


async def test_a_leader_checked_every_round_looks_at_pg_locks_once_per_confirm_interval(
        settings: Settings) -> None:
    """The survey scheduler checks before every tick, every 0.25 s: each check was a query on
    ``pg_locks`` (240 a minute on an idle system, the lock manager's every partition read
    each time). The session's end is heard without a query (the termination listener);
    the look runs once per ``confirm_s``, and a session ended is still a loss at once."""
    async with schema_pool(settings, "leadership_confirm", []) as pool:
        key = "sixstep-test-leadership:confirm"
        looks: list[str] = []
        async with Leadership(pool, key, what="test", confirm_s=3600) as lead:
            lead.connection.add_query_logger(
                lambda record: "pg_locks" in record.query and looks.append(record.query))
            for _ in range(100):
                await lead.check()
            assert looks == []  # elected a moment ago: confirmed then
            assert await end_lock_session(pool, key) == 1
            await wait_until(lambda: lock_free(pool, key), what="the lock's session ended")

            async def heard() -> bool:  # a barrier: the client read the session's end
                return not lead.leading
            await wait_until(heard, what="the leader hearing its session end")
            with pytest.raises(LeadershipLost, match="the session ended"):
                await lead.check()
            assert looks == []  # said without a look


class FrozenNetwork:
    """A TCP relay in front of PostgreSQL that the test can freeze: from then on no byte
    passes either way and nothing is closed (no FIN, no RST), as a network partition or a
    hung proxy looks to both ends. Connections made while frozen hang as well."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.flowing = asyncio.Event()
        self.flowing.set()
        self.server: asyncio.Server | None = None
        self.pumps: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def __aexit__(self, *_: object) -> None:
        assert self.server is not None
        self.server.close()
        for pump in self.pumps:
            pump.cancel()
        await asyncio.gather(*self.pumps, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self.flowing.wait()
        up_reader, up_writer = await asyncio.open_connection(self.host, self.port)
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            pump = asyncio.create_task(self._pump(source, sink))
            self.pumps.add(pump)
            pump.add_done_callback(self.pumps.discard)

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                await self.flowing.wait()
                sink.write(data)
                await sink.drain()
            await self.flowing.wait()
        finally:
            sink.close()


@contextlib.asynccontextmanager
async def behind_a_freezable_network(settings: Settings, name: str
                                     ) -> AsyncIterator[tuple[FrozenNetwork, asyncpg.Pool]]:
    """A pool whose connections reach PostgreSQL through a ``FrozenNetwork``, with no client
    timeout at all (DB_STATEMENT_TIMEOUT_S=0); at the end the network flows again and the
    pool is let go (terminated: a step-down under test may have waited for ever)."""
    target = urlsplit(settings.database_url)
    network = FrozenNetwork(target.hostname or "127.0.0.1", target.port or 5432)
    async with network as port:
        through = settings.model_copy(update={
            "database_url": settings.database_url.replace(
                f"{target.hostname}:{target.port}", f"127.0.0.1:{port}"),
            "db_statement_timeout_s": 0})
        pool = await create_pool(through, f"{settings.schema_prefix}{name}",
                                 min_size=1, max_size=2)
        try:
            yield network, pool
        finally:
            network.flowing.set()
            pool.terminate()


async def lock_given_up(settings: Settings, network: FrozenNetwork, key: str) -> None:
    """A barrier: the network back, the closed session reaches PostgreSQL, the lock is free."""
    network.flowing.set()
    async with schema_pool(settings, "leadership_frozen_look", []) as direct:
        await wait_until(lambda: lock_free(direct, key), what="the lock given up")


async def test_a_leader_cut_off_without_a_word_gives_the_lock_up_within_its_doubt(
        settings: Settings) -> None:
    """A look at the lock that no answer ever comes to (the network between the replica and
    PostgreSQL gone silent: no FIN, no RST) waited for the pool's client timeout, twice (the
    retry waits for asyncpg's cancel of the first), 70 s by default, and for ever with
    DB_STATEMENT_TIMEOUT_S=0: ``doubt_s`` bounded only looks that failed. Meanwhile the gauge
    said this replica led, beside the one PostgreSQL gave the lock to once it ended the
    session. Now the doubt counts from the look that did not answer, and no look outlasts it:
    the leader gives the lock up (its connection closed) ``doubt_s`` after it stopped
    knowing."""
    async with behind_a_freezable_network(settings, "leadership_frozen") as (network, pool):
        key = "sixstep-test-leadership:frozen"
        async with Leadership(pool, key, what="test", confirm_s=0, retry_s=0.05,
                              doubt_s=0.5) as lead:
            await lead.check()
            network.flowing.clear()
            checking = asyncio.ensure_future(lead.check())
            # not a timing bound: a liveness guard (the merge's look waited for ever)
            done, _ = await asyncio.wait([checking], timeout=30)
            if not done:
                pool.terminate()  # else stepping down waits for ever as well
                pytest.fail("the leader's look at its lock waited for ever")
            with pytest.raises(LeadershipLost, match="could not tell"):
                await checking
            assert not lead.leading
        await lock_given_up(settings, network, key)


@pytest.mark.parametrize("leaving", ["the loop failed", "a shutdown", "a listener failed"])
async def test_a_leader_cut_off_without_a_word_steps_down_without_waiting_for_ever(
        settings: Settings, leaving: str) -> None:
    """A loop leaving its lock (it failed, or a shutdown cancels it again every 0.2 s:
    ``Background.stop``) while the network to PostgreSQL is silent (no FIN, no RST) with
    DB_STATEMENT_TIMEOUT_S=0: the unlock waited for ever for its answer; cancelled, the
    pool's reset of the connection waited for ever instead, and ``pool.close()`` for it: the
    shutdown hung. Now the unlock is bounded and one not answered closes the connection
    without a word (PostgreSQL frees the lock when the close reaches it)."""
    async with behind_a_freezable_network(settings, "leadership_frozen_exit") as (
            network, pool):
        key = "sixstep-test-leadership:frozen-exit"
        cut = asyncio.Event()

        def heard(*_: object) -> None:
            pass

        async def loop() -> None:
            async with Leadership(pool, key, what="test", doubt_s=0.5) as lead:
                await lead.check()
                if leaving == "a listener failed":  # the relay's LISTEN, the scheduler's
                    await lead.connection.add_listener("sixstep_test", heard)
                    try:
                        network.flowing.clear()
                        cut.set()
                        raise RuntimeError(leaving)
                    finally:  # its UNLISTEN waited for ever before the step-down
                        await lead.unlisten("sixstep_test", heard)
                network.flowing.clear()
                cut.set()
                if leaving == "the loop failed":
                    raise RuntimeError(leaving)
                await asyncio.Event().wait()

        running: list[asyncio.Future[None]] = []
        if leaving == "a shutdown":
            background = Background()
            background.start("test", loop)
            await cut.wait()
            await background.stop()  # at most its 10 s: the loop may be left behind
        else:
            running.append(asyncio.ensure_future(loop()))
            await cut.wait()

        async def closed() -> None:  # the loop ended, every connection back
            await asyncio.gather(*running, return_exceptions=True)
            await pool.close()
        # not a timing bound: a liveness guard (the old step-down waited for ever)
        done, _ = await asyncio.wait([asyncio.ensure_future(closed())], timeout=30)
        if not done:
            pool.terminate()
            pytest.fail(f"stepping down after {leaving} waited for ever")
        await lock_given_up(settings, network, key)

"""One replica leads a singleton loop: the one whose PostgreSQL session holds its advisory lock.

The lock lives with its session. PostgreSQL ending that session (a restart, a failover, a
proxy cutting an idle connection, ``pg_terminate_backend``) frees the lock at once, and
another replica takes it. A leader that took the lock on a connection it never used again
went on with its rounds through the pool: two leaders (the period scheduler, redteam95).

``Leadership`` is the one way to hold it::

    async with self.leadership as lead:   # waits, saying once that it stands by
        while True:
            await lead.check()            # before each round: still ours? (and keeps the
            await self.tick()             # session busy for a proxy's idle timeout)
            await asyncio.sleep(self.tick_s)

``check`` raises ``LeadershipLost`` when the session is gone or no longer holds the lock;
what it cannot tell (its look at ``pg_locks`` timed out, a busy server refused it, the session
still open) is asked again, the round held back meanwhile, for up to ``doubt_s`` from the
look that did not answer (no look waits longer; giving up closes the connection): a statement
timeout on a loaded database made every leader step down and every loop start again, a thrash
where nothing had been lost. ``check`` looks at ``pg_locks`` at most every ``confirm_s`` (a
session's end is heard at once without a query, by the connection's termination listener): the
survey scheduler looked every 0.25 s, 240 statements a minute on an idle system. On a loss
the loop ends (``watch`` says so at once for a loop busy on the lock's own connection: a
consumer; the relay, whose LISTEN shares that session, watches it itself and calls
``lost``), the supervisor (``shared.runtime.background``) starts it again, and it waits for
the lock like any other replica. Leaving the block (shutdown, a failure) gives the lock
up. ``leading`` says whether this replica leads now (the ``sixstep_leading`` gauge; it stays 1
while ``check`` is unsure); the log says ``leader.standby``, ``leader.elected``,
``leader.unsure``, ``leader.sure_again``, ``leader.lost`` and ``leader.stepped_down`` with
the lock's name (no personal data: a loop's name and a schema).

A replica standing by holds no session while it waits: each try takes a pool connection and
gives it back when it lost (a lost try holds nothing on its session); only the winning try
keeps its connection. A process's tries on one pool go one at a time, so they share one
idle connection (redteam127: at the same moment, each took its own, kept for good).
Stepping down (and ``unlisten``, a LISTEN on the lock's session) waits for its answer at most
``STEP_DOWN_S`` (or ``doubt_s`` if shorter); one not answered (a
silent cut: no FIN, no RST, DB_STATEMENT_TIMEOUT_S=0) or cancelled closes the connection
without a word, as giving up does: PostgreSQL frees the lock when the close reaches it.
Until stop 52 a shutdown hung on it (seen and left in stop 51).

Work any replica may pick up, one at a time (a policy's fan-out), enters with
``wait=False``: the lock if it is free, else at once with ``leading`` False (someone else is
on it), and ``check`` between its batches as a loop between rounds.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable
from types import TracebackType
from typing import NoReturn

import asyncpg
import structlog

log = structlog.get_logger("sixstep.leadership")

#: The lock of ``key`` held by this session (``pg_try_advisory_lock(bigint)`` of
#: ``hashtext``: the high 32 bits in ``classid``, the low ones in ``objid``, ``objsubid`` 1).
_HELD = ("SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted"
         " AND pid = pg_backend_pid() AND objsubid = 1"
         " AND ((classid::bigint << 32) | objid::bigint) = hashtext($1)::bigint)")


#: What says the session itself is gone (the lock with it), whatever the statement was: the
#: connection closed under asyncpg (``InterfaceError``, ``InternalClientError``, a socket's
#: ``OSError``), the server ending it (``PostgresConnectionError``; 57P01-57P03: a shutdown,
#: a crash, not accepting). Anything else, on a connection still open, is "could not tell":
#: a statement or lock timeout (57014, 55P03), the client's own timeout, a server out of
#: memory or connections: the lock may well be held.
_SESSION_GONE: tuple[type[BaseException], ...] = (
    asyncpg.InterfaceError, asyncpg.InternalClientError, asyncpg.PostgresConnectionError,
    asyncpg.AdminShutdownError, asyncpg.CrashShutdownError, asyncpg.CannotConnectNowError)


def closed(conn: asyncpg.Connection) -> bool:
    """Whether ``conn``'s session has ended: also when asyncpg, on hearing it, has already
    given the connection back to its pool (the proxy then refuses even ``is_closed``)."""
    try:
        return conn.is_closed()
    except asyncpg.InterfaceError:
        return True


def session_gone(conn: asyncpg.Connection, exc: BaseException) -> bool:
    """Whether ``exc``, raised by a statement on ``conn``, says the session has ended."""
    if closed(conn) or isinstance(exc, _SESSION_GONE):
        return True
    # TimeoutError is an OSError: the client gave up on the answer, the session lives on
    return isinstance(exc, OSError) and not isinstance(exc, TimeoutError)


#: One try at a time per pool in this process (``_one_try_at_a_time``). A process's loops
#: standing by try on one beat (started together, pausing alike), and tries at the same
#: moment each took a connection of their own: idle between tries, reused every second or
#: two, those never reached the pool's idle lifetime (300 s), and a feedback worker standing
#: by held six lock-pool sessions for good (redteam127), where its tries need one.
_TRIES: dict[object, asyncio.Lock] = {}


def _one_try_at_a_time(pool: object) -> asyncio.Lock:
    lock = _TRIES.get(pool)
    if lock is None:
        for gone in [p for p in _TRIES if getattr(p, "is_closing", lambda: False)()]:
            del _TRIES[gone]  # a closed pool's (a test run's many runtimes)
        lock = _TRIES[pool] = asyncio.Lock()
    return lock


#: The longest a leader stepping down waits for its unlock (or ``doubt_s`` if shorter): an
#: unlock answers in milliseconds; one that does not is a session cut off, closed instead.
STEP_DOWN_S = 5.0


class LeadershipLost(ConnectionError):
    """The session holding the lock is gone (or holds it no more): another replica may lead."""


class Leadership:
    """The advisory lock named ``key`` held on a connection of its own from ``pool``: in a
    service, the runtime's lock pool (``Runtime.locks``), so that the loops a process leads
    hold none of its working pool's connections for good."""

    def __init__(self, pool: asyncpg.Pool, key: str, *, what: str,
                 standby_s: float = 2.0, wait: bool = True,
                 on_standby: Callable[[bool], None] | None = None,
                 confirm_s: float = 10.0, doubt_s: float = 30.0,
                 retry_s: float = 1.0) -> None:
        self.pool = pool
        self.key = key
        self.what = what
        self.standby_s = standby_s
        #: False: take the lock if it is free, else enter without leading (``leading`` is
        #: False: another replica is on it), for work any replica may pick up (a fan-out).
        self.wait = wait
        #: Told True when this replica starts standing by, False when it leads.
        self.on_standby = on_standby
        #: ``check`` looks at ``pg_locks`` at most this often (seconds; 0: every call).
        self.confirm_s = confirm_s
        #: How long ``check`` asks again when it cannot tell, before it gives the lock up.
        self.doubt_s = doubt_s
        #: The pause between those asks.
        self.retry_s = retry_s
        self.leading = False
        self._conn: asyncpg.Connection | None = None
        #: When (the loop's clock) ``pg_locks`` last said the lock is this session's.
        self._confirmed = -math.inf

    async def __aenter__(self) -> Leadership:
        waited = False
        while True:
            # A connection per try, given back when the try lost: a try that did not get the
            # lock holds nothing on its session, so only the winner keeps its connection. A
            # standby kept one for as long as it stood by: a second replica's seven loops
            # held seven sessions doing nothing (stop 51).
            # One at a time, the lost one's connection given back before the next: the
            # process's tries share one idle connection (LIFO), the rest of the pool's
            # idle ones close after its idle lifetime.
            async with _one_try_at_a_time(self.pool):
                conn: asyncpg.Connection = await self.pool.acquire()
                try:
                    won = await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))",
                                              self.key)
                except BaseException:  # a cancelled try may have won: the reset unlocks it
                    await self._release(conn)
                    raise
                if not won:
                    await self._release(conn)
            if won:
                break
            if not self.wait:
                return self
            if not waited:
                log.info("leader.standby", loop=self.what, lock=self.key)
                waited = True
                if self.on_standby:
                    self.on_standby(True)
            await asyncio.sleep(self.standby_s)
        self._conn, self.leading = conn, True
        self._confirmed = asyncio.get_running_loop().time()
        # Heard as it happens, not at the next ``check`` (the period scheduler's is a minute
        # away): the gauge and /ready stop saying this replica leads at once, beside the
        # replica that took the lock (redteam101: two leaders shown for up to a minute).
        conn.add_termination_listener(self._session_ended)
        if self.on_standby:
            self.on_standby(False)
        log.info("leader.elected", loop=self.what, lock=self.key)
        return self

    def _session_ended(self, *_: object) -> None:
        self._say_lost("the session ended")

    def _say_lost(self, why: str) -> None:
        """``leader.lost``, once: the termination listener and ``lost`` may both hear it."""
        if self.leading:
            self.leading = False
            log.warning("leader.lost", loop=self.what, lock=self.key, error=why)

    @property
    def connection(self) -> asyncpg.Connection:
        """The lock's own connection (a loop may work on it: a query there fails once the
        session is gone, as the lock)."""
        if self._conn is None:
            raise LeadershipLost(f"{self.what}: not leading")
        return self._conn

    async def check(self) -> None:
        """Raise ``LeadershipLost`` unless this session still holds the lock.

        The session's end is known without a query (the termination listener, or the
        connection closed). Else one look at ``pg_locks`` on the lock's own connection, at
        most every ``confirm_s`` (it also keeps that session from looking idle to a proxy):
        not held, or the session gone on the way, is a loss; a failure that leaves the
        session open (a statement timeout on a busy server) is "could not tell": said once
        (``leader.unsure``), asked again every ``retry_s`` with the round held back, and a
        loss only once it has lasted ``doubt_s``."""
        conn = self.connection
        if not self.leading or closed(conn):
            self.lost("the session ended")
        clock = asyncio.get_running_loop()
        if clock.time() - self._confirmed < self.confirm_s:
            return
        # The doubt's end, set by the first look that fails, counted from when that look
        # began: a look no answer comes to (the network gone silent, no FIN, no RST) waited
        # for the pool's client timeout, then its retry for asyncpg's cancel of it, 70 s by
        # default and for ever with DB_STATEMENT_TIMEOUT_S=0, while the gauge said this
        # replica led. No look outlasts the doubt now.
        deadline: float | None = None
        why = ""
        while True:
            started = clock.time()
            if deadline is not None and started >= deadline:
                self._give_up(conn)
                self.lost(f"could not tell for {self.doubt_s:g} s: {why}")
            try:
                async with asyncio.timeout_at(
                        started + self.doubt_s if deadline is None else deadline):
                    held = await conn.fetchval(_HELD, self.key)
            except Exception as exc:
                why = f"{type(exc).__name__}: {exc}"
                if session_gone(conn, exc):
                    self.lost(why)
                if deadline is None:
                    deadline = started + self.doubt_s
                    log.warning("leader.unsure", loop=self.what, lock=self.key, error=why,
                                retry_s=self.retry_s, gives_up_after_s=self.doubt_s)
                await asyncio.sleep(max(0.0, min(self.retry_s, deadline - clock.time())))
                continue
            if not held:
                self.lost("the session no longer holds the lock")
            if deadline is not None:
                log.info("leader.sure_again", loop=self.what, lock=self.key)
            self._confirmed = clock.time()
            return

    @staticmethod
    def _give_up(conn: asyncpg.Connection) -> None:
        """Close the lock's connection without a word to the server: whether the session
        still holds the lock is not known, and a polite unlock or the pool's reset would wait
        on the same silence. PostgreSQL ends the session (and frees the lock) when the close
        reaches it, or when its keepalive or the proxy's timeout ends it."""
        with contextlib.suppress(Exception):
            conn.terminate()

    async def watch(self) -> None:
        """Never return; raise ``LeadershipLost`` as soon as the lock's session ends (the
        connection's termination listener: PostgreSQL closing it is seen without a query).
        For a loop that works on the lock's own connection between rounds it cannot
        interrupt with ``check`` (a consumer's batches): run beside it, the first to end
        ends both."""
        conn = self.connection
        gone = asyncio.Event()

        def ended(*_: object) -> None:
            gone.set()
        conn.add_termination_listener(ended)
        try:
            if not closed(conn):
                await gone.wait()
        finally:  # a connection PostgreSQL ended is given back to the pool by asyncpg
            with contextlib.suppress(asyncpg.InterfaceError):
                conn.remove_termination_listener(ended)
        self.lost("the session ended")

    async def unlisten(self, channel: str, callback: Callable[..., object]) -> None:
        """Take a LISTEN callback off the lock's connection (the relay's, the survey
        scheduler's), bounded as stepping down is: an UNLISTEN no answer comes to (a silent
        cut, DB_STATEMENT_TIMEOUT_S=0) closed nothing and waited for ever, so the loop never
        reached its step-down. Not answered in time, the connection is closed without a
        word (``_give_up``); a session already gone has nothing to unlisten."""
        conn = self._conn
        if conn is None or closed(conn):
            return
        try:
            async with asyncio.timeout(min(self.doubt_s, STEP_DOWN_S)):
                await conn.remove_listener(channel, callback)
        except Exception:
            self._give_up(conn)

    def lost(self, why: str) -> NoReturn:
        """Say the lock's session is gone (``leader.lost``, once: ``_session_ended`` may have
        said it already) and raise ``LeadershipLost``: also for a loop that sees the session
        end by itself (the relay's own termination listener, which also wakes its rounds)."""
        self._say_lost(why)
        raise LeadershipLost(f"{self.what}: lost the lock's session ({why})")

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        conn, self._conn = self._conn, None
        was, self.leading = self.leading, False
        if conn is None:
            return
        with contextlib.suppress(Exception):  # gone with the session, or given back below
            conn.remove_termination_listener(self._session_ended)
        unlocked = not was
        try:
            if was:
                # Bounded: a session cut off without a word (no FIN, no RST) answers nothing,
                # and with DB_STATEMENT_TIMEOUT_S=0 the unlock, then the pool's reset, waited
                # for ever: a shutdown hung on it (stop 51).
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(min(self.doubt_s, STEP_DOWN_S)):
                        await conn.execute("SELECT pg_advisory_unlock(hashtext($1))",
                                           self.key)
                    unlocked = True
                log.info("leader.stepped_down", loop=self.what, lock=self.key,
                         unlocked=unlocked)
        finally:
            # An unlock not answered (its bound, a failure, a cancel: a shutdown cancels a
            # loop again every 0.2 s, ``Background.stop``) closes the connection without a
            # word, as ``_give_up``: the pool's reset would wait on the same silence, and
            # ``pool.close()`` for it, for ever. Also when cancelled on the unlock: skipped,
            # the connection never went back and ``pool.close()`` waited for ever
            # (redteam101). asyncpg's release is shielded; its reset gives up every advisory
            # lock the session still holds.
            if not unlocked:
                self._give_up(conn)
            await self._release(conn)

    async def _release(self, conn: asyncpg.Connection) -> None:
        with contextlib.suppress(Exception):
            await self.pool.release(conn)

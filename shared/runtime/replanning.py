"""Re-planning after the calendar changed: every candidate a read model names, a page at a time.

When an official holiday schedule replaces a provisional year, each service works out again
what it planned on that year (follow-up: the follow-ups waiting to fall due; feedback: the
open rectifications' deadlines). :func:`replan_each` walks the candidates in id order, a page
of ``batch`` at a time, and re-plans a page at once through the service's use case, which
answers True when something moved. A version conflict is another replica re-planning the same
aggregate at the same moment (the store settles it); any other failure (the write not taken
within WRITE_TIMEOUT_S, the store away) is counted in ``failed`` and the walk goes on: a
re-planning with a failed item is not remembered as done, and the service runs it again
(``Replanner.keep_retrying``, and every worker's ``calendar-replan`` loop once that process
is gone: ``shared.runtime.replan_pending``) until none fails.

The failures are logged ``replan.failed``, one line per distinct error (how many items, the
first ids), and an error said once is said again at most every ``REPEAT_S`` with how many
times it came meanwhile (``FailureLog``): an item that cannot go through until a person acts
(a recount into a year no calendar covers) failed at every try, one line per item per minute.

:class:`Replanner` is what a service does when its calendars change (a reload here or on
another replica, a start): it runs the service's hooks, remembers what was re-planned on, and
keeps a failed run (``Pending``) going until it goes through. ``Runtime`` holds one.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import asyncpg

from shared.kernel.errors import VersionConflict
from shared.runtime import calendar_seen, replan_pending
from shared.runtime.calendars import Calendars
from shared.runtime.replan_pending import Row
from shared.settings import Settings


@dataclass(frozen=True)
class Replanned:
    checked: int = 0
    moved: int = 0
    conflicts: int = 0
    #: Items whose re-plan failed (not a conflict): the re-planning must be run again.
    failed: int = 0


async def replan_each(pool: asyncpg.Pool, candidates: str,
                      replan: Callable[..., Awaitable[bool]], *, batch: int,
                      log: Any, key: str, args: tuple[Any, ...] = ()) -> Replanned:
    """``candidates`` takes the last id seen (None at first), the page size and ``args``, and
    answers ids in order, each row's columns handed to ``replan`` (the id first: feedback's
    rectifications come with their center); ``key`` names the id in a failure's log line."""
    checked = moved = conflicts = failed = 0
    errors: dict[str, list[str]] = {}
    after: UUID | None = None
    while True:
        rows = await pool.fetch(candidates, after, batch, *args)
        if not rows:
            break
        outcomes = await asyncio.gather(*(replan(*row) for row in rows),
                                        return_exceptions=True)
        for row, outcome in zip(rows, outcomes, strict=True):
            checked += 1
            if outcome is True:
                moved += 1
            elif isinstance(outcome, VersionConflict):
                conflicts += 1  # another replica re-planned it at the same moment
            elif isinstance(outcome, BaseException):
                failed += 1
                errors.setdefault(f"{type(outcome).__name__}: {outcome}", []).append(
                    str(row[0]))
        after = rows[-1][0]
        if len(rows) < batch:
            break
    said = FAILURES.get() or FailureLog()
    for error, ids in errors.items():
        said.say(log, "replan.failed", error, ids, key)
    return Replanned(checked, moved, conflicts, failed)


#: An error said once is said again at most this often (with how many times it came since).
REPEAT_S = 3600.0
#: At most this many ids of the items an error failed named in its line.
IDS_SAID = 5


class FailureLog:
    """``replan.failed`` once per distinct error, then at most every ``REPEAT_S`` (``again``:
    how many tries it came at since it was last said); what the run failed with, for the
    pending re-planning's ``last_error``. A runtime keeps one and hands it to its runs
    (``FAILURES``); without one every error of the walk is said."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        #: error -> (when last said, tries it came at since)
        self.said: dict[str, tuple[float, int]] = {}
        #: This run's errors -> items
        self.run: dict[str, int] = {}

    def say(self, log: Any, event: str, error: str, ids: list[str], key: str) -> None:
        self.run[error] = self.run.get(error, 0) + len(ids)
        now = self.clock()
        last = self.said.get(error)
        if last is not None and now - last[0] < REPEAT_S:
            self.said[error] = (last[0], last[1] + 1)
            return
        if len(self.said) >= 1000:  # errors naming something new at each try: said anew
            self.said.clear()
        self.said[error] = (now, 0)
        log.error(event, error=error, items=len(ids), **{key: ids[0]},
                  **({"more": ids[1:IDS_SAID]} if len(ids) > 1 else {}),
                  **({"again": last[1], "repeat_s": REPEAT_S} if last is not None else {}))

    def begin(self) -> None:
        self.run = {}

    def summary(self) -> str | None:
        """This run's errors, the most frequent first: ``TimeoutError: ... (3 items); ...``."""
        if not self.run:
            return None
        return "; ".join(f"{error} ({n} item{'' if n == 1 else 's'})" for error, n in
                         sorted(self.run.items(), key=lambda kv: -kv[1]))


#: The runtime's FailureLog while one of its re-plannings runs (``Replanner.replan``).
FAILURES: contextvars.ContextVar[FailureLog | None] = contextvars.ContextVar(
    "replan_failures", default=None)


#: The pause before a failed re-planning is run again, doubled after each one that fails too.
RETRY_FIRST_S = 1.0
RETRY_MOST_S = 60.0


def failures(hooks: dict[str, dict[str, int]]) -> int:
    """The items the hooks' counts say failed (``rectifications_failed``, ``hook_failed`` ...)."""
    return sum(n for counts in hooks.values() for key, n in counts.items()
               if key.endswith("_failed"))


@dataclass
class Pending:
    """Whether a re-planning had failed items and is to be run again: ``failed`` (what the last
    one counted), since when (``time.time()``), and the wake-up of :meth:`keep_retrying`.
    Re-plannings may overlap (a reload during the retry, as a reload during a start's): each
    covers the changed days not yet re-planned (``Calendars.changed_official`` keeps a failed
    one's), so whichever ends last says whether one is still pending.

    ``row``: the service's pending re-planning as the database holds it
    (``shared.runtime.replan_pending``), as this process last wrote or, in a
    worker's ``calendar-replan``, read it: also another replica's, which this one retries once that
    replica has stopped (/ready and ``sixstep_calendar_replan_pending`` say it here then)."""

    service: str
    log: Any
    since: float | None = None
    failed: int = 0
    wanted: asyncio.Event = field(default_factory=asyncio.Event)
    #: How a pause is waited (a test records them instead).
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    row: Row | None = None
    #: Counts the re-plannings that ended here: a row read before one ended is not shown.
    ended: int = 0

    def seen(self, row: Row | None, ended: int) -> None:
        """A worker's ``calendar-replan`` read ``row`` (``ended`` as it began to): shown
        here unless this process has one pending (its own says more) or a re-planning ended
        here during the read (the row it read may be gone)."""
        if self.since is None and self.ended == ended:
            self.row = row

    @property
    def shown(self) -> int:
        """Items failed at the last try, here or (as the database says) on any replica."""
        return max(self.failed, self.row.public.failed if self.row is not None else 0)

    def went(self, failed: int, row: Row | None = None) -> None:
        """A re-planning ended with ``failed`` items failed: said once when it starts
        failing and once when it goes through, not at every try."""
        self.row = row if failed else None
        self.ended += 1
        if failed:
            if self.since is None:
                self.since = time.time()
                self.log.warning("calendar.replan_pending", service=self.service, failed=failed,
                                 hint="retried by the service itself, with back-off")
            self.failed = failed
            self.wanted.set()
        elif self.since is not None:
            self.log.info("calendar.replan_caught_up", service=self.service,
                          pending_s=round(time.time() - self.since, 1))
            self.since, self.failed = None, 0

    async def keep_retrying(self, replan: Callable[[], Awaitable[Any]]) -> None:
        """Run ``replan`` again after a pause (``RETRY_FIRST_S``, doubled up to
        ``RETRY_MOST_S``) while one failed; a reload that went through meanwhile ends it."""
        pause = RETRY_FIRST_S
        while True:
            await self.wanted.wait()
            await self.sleep(pause)
            self.wanted.clear()
            if self.since is None:  # a reload (or a start) went through meanwhile
                pause = RETRY_FIRST_S
                continue
            try:
                await replan()
            except Exception as exc:  # the store away while remembering: tried again
                self.log.debug("calendar.replan_retry_failed",
                               error=f"{type(exc).__name__}: {exc}")
                self.wanted.set()
            pause = RETRY_FIRST_S if self.since is None else min(pause * 2, RETRY_MOST_S)


#: A calendar hook: run after the calendars changed, answers its counts (``..._failed``).
Hook = Callable[[], Awaitable[dict[str, int]]]


class Replanner:
    """What a service does when its working-day calendars change: reload them (and tell the
    other replicas, over core NATS), run the hooks (re-planning, parked rules), remember what
    was re-planned on (``calendar_seen``), and, while a run has failed items, run it again
    (``keep_retrying``: the process whose run failed; ``adopt``: every worker, for a row whose
    process stopped trying it). ``Runtime`` holds one and delegates to it."""

    def __init__(self, service: str, settings: Settings, pool: asyncpg.Pool, nc: Any,
                 calendars: Calendars | None, *, origin: str, log: Any) -> None:
        self.service = service
        self.settings = settings
        self.pool = pool
        self.nc = nc
        self.calendars = calendars
        #: This process, in a reload's word to the others (its own word is not heard again).
        self.origin = origin
        self.log = log
        #: Run after the calendars changed (re-planning, parked rules): name -> counts.
        self.hooks: dict[str, Hook] = {}
        #: A re-planning with failed items, run again by ``keep_retrying`` until it goes through.
        self.pending = Pending(service, log)
        #: ``replan.failed`` said once per distinct error, then at a slower pace.
        self.failures = FailureLog()
        #: The revision of the pending re-planning this worker left, its calendars not its own
        #: (said once per revision, not at every look).
        self.not_adopted: int | None = None

    def subject(self) -> str:
        """Core NATS (outside every stream): a reload on one replica reaches the others."""
        return f"ops.{self.settings.subject_prefix}.calendar.reload"

    async def reload(self, *, tell_others: bool = True) -> dict[str, Any]:
        """Read the holidays files again (all or nothing: ``HolidaysFileError`` names the file
        and line and leaves everything as it was), tell the other replicas of every service
        to reload too, then run the hooks (re-planning, parked rules). ``failed``: the
        items whose re-plan failed; any, and the service runs the re-planning again by itself
        (``retry_scheduled``)."""
        if self.calendars is None:
            return {"changed": [], "hooks": {}, "failed": 0, "retry_scheduled": False}
        changed = await asyncio.to_thread(self.calendars.reload)
        self.log.info("calendar.reloaded", service=self.service, changed=changed)
        if tell_others:
            # Before re-planning, not after: another replica's re-planning (its retry, its
            # start's) runs on its own calendars until told, and what it wrote on the old
            # ones during ours (minutes for a city) stayed there.
            with contextlib.suppress(Exception):
                await self.nc.publish(self.subject(), self.origin.encode())
        hooks = await self.replan()
        failed = failures(hooks)
        return {"changed": changed, "hooks": hooks, "failed": failed,
                "retry_scheduled": failed > 0}

    async def at_start(self) -> dict[str, Any]:
        """A holidays file added or corrected, or the package upgraded, while the service was
        stopped: the hooks re-plan the provisional dates and the official days changed since
        the last re-planning (``calendar_seen``)."""
        if self.calendars is None:
            return {}
        await calendar_seen.recall(self.pool, self.calendars)
        return await self.replan()

    async def replan(self) -> dict[str, Any]:
        """Only a re-planning with no item failed marks its span re-planned and remembers the
        calendars: an item whose re-plan failed (its write not taken in time) may be on a
        changed official day that the candidates of a later run would no longer name, so the
        span stays for ``keep_retrying``, the next reload, the next start (which recalls it
        from ``calendar_seen``), and is written to the database (``replan_pending``) for
        every worker's ``calendar-replan`` should this process go. Every run covers the days a
        failed one left there too, and one that goes through takes the row away."""
        assert self.calendars is not None
        said = self.failures
        told = FAILURES.set(said)
        try:
            while True:
                row = await self._pending_row()
                if row is not None and row.span is not None:
                    self.calendars.changed_since_span(row.span)
                # What this re-planning runs on, taken before it starts: a reload meanwhile is
                # remembered as re-planned only by a run that began on it (a stop before then
                # leaves its days to the next start).
                span, calendars = self.calendars.changed_official, self.calendars.centers()
                said.begin()
                hooks = await self.run_hooks()
                if self.calendars.fingerprints() == {c: k.fingerprint
                                                     for c, k in calendars.items()}:
                    break
                # The calendars changed under it (a reload here, or told by another replica,
                # whose re-planning may have counted an item before this one counted it again
                # on the old calendars): run again on the new ones before it is done.
                self.log.info("calendar.replan_again", service=self.service,
                              hint="the calendars changed during the re-planning")
        finally:
            FAILURES.reset(told)
        failed = failures(hooks)
        if not failed:
            self.calendars.replanned(span)
            await calendar_seen.remember(self.pool, calendars)
            if row is not None and await replan_pending.done(self.pool, self.service,
                                                             row.revision):
                self.log.info("calendar.replan_pending_kept", service=self.service,
                              hint="another replica's re-planning failed meanwhile: retried")
        else:
            try:
                row = await replan_pending.failed(
                    self.pool, self.service, span,
                    {c: k.fingerprint for c, k in calendars.items()}, failed, said.summary(),
                    first_s=RETRY_FIRST_S, most_s=RETRY_MOST_S)
            except Exception as exc:  # the store away: retried here, and said
                self.log.warning("calendar.replan_pending_not_recorded", service=self.service,
                                 error=f"{type(exc).__name__}: {exc}",
                                 hint="retried by this process only until the store answers")
                row = None
        self.pending.went(failed, row)
        return hooks

    async def _pending_row(self) -> replan_pending.Row | None:
        try:
            return await replan_pending.read(self.pool, self.service)
        except Exception as exc:  # the store away: the run's own items will say so
            self.log.debug("calendar.replan_pending_unread",
                           error=f"{type(exc).__name__}: {exc}")
            return None

    def _try_key(self) -> str:
        return f"sixstep-calendar-replan-try:{self.settings.schema_for(self.service)}"

    async def try_again(self, *, adopting: bool = False) -> None:
        """One more try of the pending re-planning, holding the try's lock (no two replicas
        retry at once; a reload's re-planning runs beside, as before). Here after this
        process's own failure (``keep_retrying``): another replica's run that went through
        since (the row gone) ends it. Adopting (a worker's ``calendar-replan``): only a row
        nobody tries any more, on calendars read again from the files if the row's ran on
        others (a reload this replica was not told of)."""
        assert self.calendars is not None
        pending = self.pending
        async with replan_pending.trying(self.pool, self._try_key()) as mine:
            if not mine:  # another replica's try runs now
                if not adopting:
                    pending.wanted.set()  # looked at again after the next pause
                return
            row = await self._pending_row()
            if adopting:
                if row is None or not row.orphaned:
                    return
                if row.public.fingerprints != self.calendars.fingerprints():
                    # Read again once per row, not at every look (a city's files, every 5 s):
                    # a reload told here later changes the fingerprints by itself.
                    first = self.not_adopted != row.revision
                    if first:
                        try:
                            changed = await asyncio.to_thread(self.calendars.reload)
                        except ValueError as exc:  # a bad file (or hours): as it was, said
                            self.log.error("calendar.reload_failed", service=self.service,
                                           error=str(exc))
                        else:
                            self.log.info("calendar.reloaded", service=self.service,
                                          changed=changed,
                                          why="a pending re-planning ran on other calendars")
                    if row.public.fingerprints != self.calendars.fingerprints():
                        # Run on these, it would undo what it was made to do (a schedule
                        # this replica's files do not have) and go through: the row gone.
                        if first:
                            self.not_adopted = row.revision
                            self.log.error(
                                "calendar.replan_not_adopted", service=self.service,
                                since=row.public.since.isoformat(),
                                attempts=row.public.attempts, made_on=row.public.fingerprints,
                                here=self.calendars.fingerprints(),
                                hint="its calendars are not the ones this replica's holidays "
                                "files and chinese-calendar give (a file missing or older "
                                "here, a rollout half done): left pending, not run on these; "
                                "give every replica the same files and package, then "
                                "`sixstep calendar reload`")
                        return
                self.log.warning("calendar.replan_adopted", service=self.service,
                                 since=row.public.since.isoformat(),
                                 attempts=row.public.attempts, failed=row.public.failed,
                                 last_error=row.public.last_error,
                                 hint="its process stopped trying it (gone?): retried here")
            elif row is None and pending.row is not None:
                # Recorded, and gone since: a run after it went through (another replica's).
                self.log.info("calendar.replan_done_elsewhere", service=self.service)
                pending.went(0)
                return
            await self.replan()

    async def keep_retrying(self) -> None:
        """A re-planning with failed items, run again after a pause (backing off) until it
        goes through; in every process, as any process may run a reload's hooks. Exactly
        once in effect over replicas, as the hooks are (their commands' keys)."""
        await self.pending.keep_retrying(self.try_again)

    async def adopt(self) -> None:
        """``calendar-replan``, in every worker process: every ``POLL_S`` reads the service's
        pending re-planning (for /ready and the gauge here) and retries one whose process
        stopped trying it (``replan_pending.ADOPT_AFTER_S`` past its next try: scaled down,
        killed). One try at a time over replicas (``try_again``'s advisory lock, taken only
        while a try runs), so no leadership: a leader's lock would hold a connection for
        good (stop 55: feedback's pool of ten was then one short for a close of the month
        beside a batch, tests/feedback/test_close_before_relay.py)."""
        while True:
            ended = self.pending.ended
            row = await replan_pending.read(self.pool, self.service)
            self.pending.seen(row, ended)
            if row is not None and row.orphaned:
                await self.try_again(adopting=True)
            await asyncio.sleep(replan_pending.POLL_S)

    async def run_hooks(self) -> dict[str, Any]:
        """Every hook runs; one that raises is logged and counted ``hook_failed`` (the
        re-planning is run again), and the others go on."""
        out: dict[str, Any] = {}
        for name, hook in self.hooks.items():
            try:
                out[name] = await hook()
            except Exception as exc:
                self.failures.say(self.log, "replan.hook_failed",
                                  f"{type(exc).__name__}: {exc}", [name], "hook")
                out[name] = {"hook_failed": 1}
        return out

    async def listen(self) -> None:
        """Another replica reloaded (``POST /ops/calendar/reload``): reload here too, so every
        replica plans on the same calendar; a bad file is logged and changes nothing."""
        async def heard(msg: Any) -> None:
            if msg.data.decode(errors="replace") == self.origin:
                return
            try:
                changed = await asyncio.to_thread(self.calendars.reload)  # type: ignore[union-attr]
                self.log.info("calendar.reloaded", service=self.service, changed=changed,
                              told_by="another replica")
            except Exception as exc:
                self.log.error("calendar.reload_failed", service=self.service, error=str(exc))

        if self.calendars is not None:
            await self.nc.subscribe(self.subject(), cb=heard)

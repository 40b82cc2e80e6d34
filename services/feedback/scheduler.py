"""Due surveys -> sent through the resident's channel; past their deadline -> no answer.

One replica schedules at a time (a PostgreSQL advisory lock elects it; the others stand by).
Each survey is marked sent in the store first (the Survey aggregate takes ``SurveySent`` once),
then handed to the sender: a survey is sent at most once, and a crash between the two leaves
it unsent and, at its deadline, recorded as no answer. Expiry is a command on the aggregate
too, so an answer and the deadline never both win. A named resident's revisit that expires is
asked again by phone in the same commit: it stays a task until it is answered.

Before sending, the resident's consent is read again (``residents``): a survey that may no
longer ask them (a text or a call without their consent to surveys, anything to an erased
resident) is withdrawn instead, whatever order the events came in and whoever requested it
(a revisit survey is requested by the supervisor's outcome, not by a consumer).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from datetime import datetime, timedelta
from uuid import UUID

import asyncpg
import structlog

from services.feedback.application import Feedback
from services.feedback.domain import Consent, SurveyClosed
from services.feedback.projections import CHANNEL
from services.feedback.sending import SurveyMessage, SurveySender, survey_link
from services.feedback.window_offer import (
    ASKED_AGAIN_WITHIN,
    SHOWN_MINUTES,
    TOGETHER,
    no_longer_offered,
)
from shared.contracts.feedback import SurveyChannel
from shared.eventstore.group_commit import background
from shared.kernel.clock import SystemClock
from shared.kernel.errors import CommandError, NotFound, RuleViolated
from shared.kernel.tasks import gather_all
from shared.leadership import Leadership

log = structlog.get_logger("sixstep.feedback.scheduler")

#: How long a tablet survey waits before the scheduler judges whether its window can still
#: offer it: the window's trips and openings come from every partition of the stream, each
#: applied by its own worker; one applied a moment late must not decide for the resident.
SETTLE = timedelta(minutes=1)


class SurveyScheduler:
    def __init__(self, pool: asyncpg.Pool, feedback: Feedback, sender: SurveySender,
                 link_base: str, *, schema: str, tick_s: float = 1.0, idle_s: float = 60.0,
                 batch: int = 500, locks: asyncpg.Pool | None = None) -> None:
        self.pool = pool
        self.feedback = feedback
        self.sender = sender
        self.link_base = link_base
        self.lock_key = f"sixstep-feedback-scheduler:{schema}"
        # Its lock on a connection of ``locks`` (the runtime's lock pool), else of ``pool``.
        self.leadership = Leadership(locks or pool, self.lock_key, what="survey-scheduler")
        self.tick_s = tick_s
        #: The longest an idle scheduler waits without a wake-up (``idle_wait``).
        self.idle_s = max(idle_s, tick_s)
        self.batch = batch
        # Surveys handled lately, still shown as due until the read model catches up.
        self._done: OrderedDict[tuple[str, UUID], None] = OrderedDict()

    async def run(self) -> None:
        async with self.leadership as lead:
            # Woken by every batch that writes ``surveys`` (``FeedbackViews``' NOTIFY, on
            # whichever replica applies it), on the lock's own session: a survey requested
            # or redirected is seen as soon as it is applied, not at the next tick.
            woken = asyncio.Event()
            loop = asyncio.get_running_loop()

            def wake(*_: object) -> None:
                woken.set()
            conn = lead.connection
            # The session's end wakes it too: PostgreSQL ending it (a restart, a proxy's cut)
            # takes the LISTEN with it, so no NOTIFY comes any more, and an idle wait slept
            # on blind for up to ``idle_s`` before ``check`` saw the lock gone (a tablet
            # survey requested meanwhile waited for it while the resident sat at the window).
            channel = await conn.fetchval(CHANNEL)
            await conn.add_listener(channel, wake)
            conn.add_termination_listener(wake)  # ended before: ``check`` sees it closed
            try:
                while True:
                    # still ours? PostgreSQL ending the lock's session (a restart, a proxy's
                    # cut) frees the lock for another replica: this one stops and waits for
                    # it again (supervised) rather than send beside it (shared/leadership.py)
                    await lead.check()
                    woken.clear()  # before the tick's reads: a batch applied meanwhile wakes
                    began = loop.time()
                    expired, sent = await self.tick()
                    wait = self.tick_s if expired or sent else await self.idle_wait()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(wait):
                            await woken.wait()
                    # Woken early, still ``tick_s`` after the last tick began: at the peak
                    # every batch of the read model wakes it (its own sends' too), and it
                    # ticked per batch (31 ticks in 0.22 s at tick_s 1 s, each with its
                    # reads and their resets) and sent in as many small batches beside the
                    # surveys being requested. An idle one, its last tick long ago, goes on.
                    await asyncio.sleep(max(0.0, began + self.tick_s - loop.time()))
            finally:
                with contextlib.suppress(Exception):  # gone with the session
                    conn.remove_termination_listener(wake)
                await lead.unlisten(channel, wake)

    async def idle_wait(self) -> float:
        """How long a tick that found nothing to do may wait before the next (seconds),
        unless a batch written to ``surveys`` wakes it: until the next moment the read model
        says something falls due (a send, an expiry; a text's send after the quiet hours),
        at least ``tick_s`` and at most ``idle_s``. ``tick_s`` as before while a tablet
        survey waits on its window (whether it is still offered depends on who comes to the
        window: trips, another read model) or something due was not done (a command refused
        for now, a read model behind), and with a clock that does not run by itself (a
        hand-set one: tests, demos). An idle system ran the tick's three reads every 0.25 s,
        some 720 statements a minute, asking about surveys nobody had requested."""
        if not isinstance(self.feedback.clock, SystemClock):
            return self.tick_s
        now = self.feedback.clock.now()
        row = await self.pool.fetchrow(
            "SELECT (SELECT min(expires_at) FROM surveys WHERE status IN ('requested', 'sent'))"
            " AS expires, (SELECT min(send_at) FROM surveys WHERE status = 'requested'"
            " AND channel = $1) AS tablet, (SELECT min(send_at) FROM surveys WHERE status ="
            " 'requested' AND channel <> $1) AS other, EXISTS (SELECT 1 FROM surveys"
            " WHERE channel = $1 AND status = 'sent' AND purpose = 'resolution'"
            " AND expires_at > $2 AND sent_at > $3) AS on_tablet",
            SurveyChannel.TABLET.value, now, now - ASKED_AGAIN_WITHIN)
        if row["on_tablet"]:
            return self.tick_s
        other = row["other"]
        if other is not None:  # a text or a call waits for the quiet hours' end
            other = max(other, self.feedback.policy.not_quiet(now))
        due = [m for m in (row["expires"], row["tablet"], other) if m is not None]
        until = (min(due) - now).total_seconds() if due else self.idle_s
        return min(max(until, self.tick_s), self.idle_s)

    async def tick(self) -> tuple[int, int]:
        """One pass: expire what is past its deadline, send what is due. (expired, sent)

        Its commands go in the writer's background lane (``group_commit.background``): a
        resolution's survey request that comes while a round of sends is written goes
        after the chunk in hand, not behind the whole round. Each send still waits for its
        ``SurveySent`` to be stored before it leaves."""
        lane = background.set(True)
        try:
            return await self._tick()
        finally:
            background.reset(lane)

    async def _tick(self) -> tuple[int, int]:
        now = self.feedback.clock.now()
        to_expire = await self.pool.fetch(
            "SELECT survey_id, CASE WHEN purpose = 'revisit' AND resident_id IS NOT NULL"
            " THEN rectification_id END AS again FROM surveys"
            " WHERE status IN ('requested', 'sent')"
            " AND expires_at <= $1 ORDER BY expires_at LIMIT $2", now, self.batch)
        expired = sum(await gather_all(*(self._expire(r["survey_id"], r["again"])
                                      for r in to_expire)))
        # A text or a call due before the quiet hours but reached in them (the scheduler
        # down or behind at 21:00, a resolution read late) waits for their end too.
        quiet = self.feedback.policy.not_quiet(now) != now  # as ``SurveyPolicy.goes_at``
        to_send = await self.pool.fetch(
            "SELECT s.survey_id, s.channel, r.surveys, r.erased, CASE WHEN s.purpose ="
            " 'revisit' AND s.resident_id IS NOT NULL THEN s.rectification_id END AS again"
            " FROM surveys s"
            " LEFT JOIN residents r ON r.resident_id = s.resident_id"
            " WHERE s.status = 'requested' AND s.send_at <= $1 AND s.expires_at > $1"
            " AND (s.channel = $3 OR NOT $4)"
            " ORDER BY s.send_at LIMIT $2", now, self.batch, SurveyChannel.TABLET.value, quiet)
        sent = sum(await gather_all(*(self._send_if_allowed(r) for r in to_send)))
        await self.redirect_from_windows(now)
        return expired, sent

    async def redirect_from_windows(self, now: datetime) -> int:
        """Ask where the resident is each tablet survey still waiting that the rating pad no
        longer offers them (``window_offer.no_longer_offered``, the complement of the pad's
        own definition): shown its ``SHOWN_MINUTES`` without an answer (the resident left
        without rating, whether or not anybody sat down since), or, once it has been on the
        tablet ``SETTLE``, someone else has come to the window since (a case finished in
        the back office with another resident sitting there, a resident who left before the
        next sat down). ``SETTLE``: a trip applied a moment late by another partition's
        worker is seen first.

        Here, not in the follower: who came to the window is known from events of every
        partition, applied by their own workers in whatever order; a follower deciding as
        it applies a resolution would miss a trip applied after it, and one deciding as it
        applies a trip would miss a resolution applied after that. The sweep reads the
        window as it stands, on one replica (the advisory lock), and the survey takes the
        redirection once (``Survey.redirect``). Sent on its new channel by a later tick,
        after the resident's consent and the quiet hours. One sent to the tablet more than
        ``ASKED_AGAIN_WITHIN`` ago (the sweep did not run meanwhile) is left to its deadline."""
        gone = no_longer_offered("s", "s.center_id", "s.counter_id", "$2", "$3", "$4")
        rows = await self.pool.fetch(
            "SELECT s.survey_id FROM surveys s WHERE s.channel = 'tablet' AND s.status = 'sent'"
            f" AND s.purpose = 'resolution' AND s.expires_at > $1 AND s.sent_at > $6"
            f" AND {gone} ORDER BY s.sent_at LIMIT $5", now,
            now - timedelta(minutes=SHOWN_MINUTES), now - SETTLE, TOGETHER, self.batch,
            now - ASKED_AGAIN_WITHIN)
        return sum(await gather_all(*(self._redirect(r["survey_id"]) for r in rows)))

    async def _redirect(self, survey_id: UUID) -> int:
        if ("redirect", survey_id) in self._done:
            return 0
        try:
            await self.feedback.redirect_survey(survey_id)
        except (RuleViolated, NotFound, SurveyClosed):
            self._mark("redirect", survey_id)  # answered, withdrawn or redirected already
            return 0
        except CommandError as exc:  # the store is busy or down: next tick
            log.warning("survey.redirect_failed", survey_id=str(survey_id), error=exc.message)
            return 0
        self._mark("redirect", survey_id)
        log.info("survey.redirected", survey_id=str(survey_id))
        return 1

    async def _send_if_allowed(self, row: asyncpg.Record) -> int:
        consent = Consent(surveys=row["surveys"] is not False, erased=row["erased"] is True)
        if consent.forbids(row["channel"]) is None:
            return await self._send(row["survey_id"], row["channel"], row["again"])
        survey_id, kind = row["survey_id"], f"send:{row['channel']}"
        if (kind, survey_id) in self._done:
            return 0
        try:
            because = await self.feedback.respect_consent(survey_id, consent, None)
        except CommandError as exc:  # the store is busy or down: next tick
            log.warning("survey.withdraw_failed", survey_id=str(survey_id), error=exc.message)
            return 0
        self._mark(kind, survey_id)
        log.info("survey.not_sent", survey_id=str(survey_id),
                 because=because.value if because else None)
        return 0

    def _mark(self, kind: str, survey_id: UUID) -> None:
        self._done[(kind, survey_id)] = None
        while len(self._done) > 50_000:
            self._done.popitem(last=False)

    async def _expire(self, survey_id: UUID, again: UUID | None = None) -> int:
        """``again``: the rectification of a named resident's revisit, asked again by phone
        in the same commit (a revisit is a task until it is done)."""
        if ("expire", survey_id) in self._done:
            return 0
        try:
            await self.feedback.expire_survey(survey_id, again)
        except (RuleViolated, NotFound):
            self._mark("expire", survey_id)  # answered or withdrawn meanwhile
            return 0
        except CommandError as exc:  # the store is busy or down: next tick
            log.warning("survey.expire_failed", survey_id=str(survey_id), error=exc.message)
            return 0
        self._mark("expire", survey_id)
        return 1

    async def _send(self, survey_id: UUID, channel: str, again: UUID | None = None) -> int:
        """``channel``: the one the view says it waits on. A survey handled is remembered by
        it: a tablet survey sent, then redirected (``redirect_from_windows``), is sent again
        on its new channel."""
        kind = f"send:{channel}"
        if (kind, survey_id) in self._done:
            return 0
        try:
            out = await self.feedback.send_survey(survey_id)
        except SurveyClosed:
            return await self._expire(survey_id, again)
        except (RuleViolated, NotFound):
            self._mark(kind, survey_id)  # sent, answered or withdrawn already
            return 0
        except CommandError as exc:
            log.warning("survey.send_failed", survey_id=str(survey_id), error=exc.message)
            return 0
        self._mark(kind, survey_id)
        message = SurveyMessage(
            survey_id=out.survey_id, case_id=out.case_id, center_id=out.center_id,
            counter_id=out.counter_id, resident_id=out.resident_id, channel=out.channel,
            purpose=out.purpose, token=out.token, expires_at=out.expires_at,
            link=(None if out.token is None
                  else survey_link(self.link_base, out.survey_id, out.token)))
        try:
            await self.sender.send(message)
        except Exception as exc:  # the gateway's failure: the survey ends as no answer
            log.error("survey.gateway_failed", survey_id=str(survey_id), channel=out.channel,
                      error=f"{type(exc).__name__}: {exc}")
            return 0
        return 1

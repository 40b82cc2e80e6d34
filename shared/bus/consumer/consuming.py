"""The ``Consumer``: leading its durable, pulling, gathering and reading ahead, timeouts,
starting again; the batch's steps are the methods of its bases (``batch``,
``one_by_one``, ``isolation``, ``holds``, ``dead_letters``, ``tracking``)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import cast

import asyncpg
import structlog
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js.api import AckPolicy, ConsumerConfig, ConsumerInfo, DeliverPolicy
from nats.js.errors import NotFoundError
from pydantic import ValidationError

from shared import tracing
from shared.bus.backoff import Backoff
from shared.bus.consumer.batch import Batches
from shared.bus.consumer.dead_letters import DeadLetters
from shared.bus.consumer.durables import (
    durables_of,
    partitions_consumed,
)
from shared.bus.consumer.handlers import Handler
from shared.bus.consumer.holds import Holds
from shared.bus.consumer.isolation import Isolation
from shared.bus.consumer.items import (
    _handled,
    _Item,
    _Prepared,
    _seq_of,
    _type_in,
)
from shared.bus.consumer.one_by_one import OneByOne
from shared.bus.consumer.pacing import START_AGAIN_MAX_S, STREAM_RECHECK_S
from shared.bus.consumer.stats import ConsumerStats
from shared.bus.consumer.tracking import (
    APPLIED_SEQ,
    Tracking,
)
from shared.bus.durable_names import base_consumer
from shared.bus.jetstream import not_its_subject
from shared.bus.pulling import Puller, sequence_and_delivered
from shared.bus.store_timeouts import STORE_TIMED_OUT
from shared.bus.stream_identity import check_stream, stream_seen
from shared.contracts import REGISTRY
from shared.contracts.decoding import EnvelopeHead, decode_envelope, decode_head
from shared.kernel.tasks import cancel_and_wait
from shared.leadership import Leadership, closed
from shared.settings import Settings

log = structlog.get_logger("sixstep.consumer")


#: The durable's metadata key saying why its consumer applies nothing (``ops status``).
REFUSED_KEY = "sixstep_refused"
#: The durable's metadata key saying since when, and on what, its consumer has handed its
#: batches back without counting a try (``STORE_TIMED_OUT``: a hung statement, or a command
#: the store or the vault refuses as ``Unavailable`` for as long as it is not put right, the
#: vault's key bucket missing): retried for ever, nothing dead-lettered (``ops status``).
RETRYING_KEY = "sixstep_retrying"
#: How long a consumer hands its batches back before its durable says so (``RETRYING_KEY``):
#: a lock held a few seconds does not rewrite the durable's configuration twice.
RETRYING_SAID_AFTER_S = 10.0


#: The longest a consumer's graceful stop waits for its durable's reset
#: (``Consumer._hand_back_delivered``).
STOP_RESET_S = 2.0


class _StartAgain(Exception):
    """What this consumer started on is gone (``Consumer._still_there``): start again."""

DECODE_SLICE = 64
"""How many messages read ahead are decoded between two turns of the event loop (~0.5-1 ms
of work): the batch being applied waits no longer than that for the loop
(``Consumer._read_ahead``)."""


@dataclass
class Consumer(Batches, OneByOne, Isolation, Holds, DeadLetters, Tracking):
    """One durable pull consumer feeding one handler."""

    settings: Settings
    nc: NATS
    pool: asyncpg.Pool
    name: str
    handler: Handler
    filter_subjects: list[str]
    batch: int = 500
    max_deliver: int = 5
    backoff: Sequence[float] = (0.2, 1.0, 5.0, 15.0)
    deliver_from_seq: int | None = None
    on_batch: Callable[[ConsumerStats], None] | None = None
    ack_wait: float = 30.0
    #: Called each time a batch is given back because a statement ran out of time.
    on_store_timeout: Callable[[], None] | None = None
    #: How many batches in a row may run out of time before the next is applied one event
    #: at a time, to find the one that does (``_isolate``; ``CONSUMER_ISOLATE_AFTER_TIMEOUTS``).
    isolate_after: int = 3
    #: How long batches go back before the durable says so (``RETRYING_KEY``).
    retrying_said_after_s: float = RETRYING_SAID_AFTER_S
    #: Where the lock's connection comes from, held while it leads (its batches run on it):
    #: the runtime's lock pool; None: ``pool``.
    locks: asyncpg.Pool | None = None
    #: How long a busy consumer waits for more before applying fewer than ``gather_below``
    #: events (``_gather``; ``CONSUMER_GATHER_MS``); 0: never.
    gather_s: float = 0.0
    gather_below: int = 8
    #: Busy: the last batch ended less than this before the next one's events came.
    gather_window_s: float = 0.02
    #: The pauses between start-agains (``_consume_again_and_again``).
    restarts: Backoff = field(default_factory=lambda: Backoff(cap=START_AGAIN_MAX_S))
    stats: ConsumerStats = field(default_factory=ConsumerStats)
    #: Batches in a row given back because a statement ran out of time (``_timed_out``).
    _timeouts_in_a_row: int = field(default=0, init=False, repr=False)
    #: The durable's ``RETRYING_KEY`` being cleared once a batch went through again.
    _unsaying: asyncio.Future[None] | None = field(default=None, init=False, repr=False)
    #: Whether ``ensure`` wrote ``RETRYING_KEY`` into the durable (cleared with it).
    _said_retrying: bool = field(default=False, init=False, repr=False)
    #: When the stream this consumer reads was made (its dead letters say so).
    _stream_created: datetime | None = field(default=None, init=False, repr=False)
    _conn: asyncpg.Connection | None = field(default=None, init=False, repr=False)
    #: The lock's connection while ``run`` leads, until what it started has ended (``_conn``
    #: is let go first): a graceful stop's reset is made only while its session lives.
    _lock_conn: asyncpg.Connection | None = field(default=None, init=False, repr=False)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event, init=False, repr=False)
    _idle: asyncio.Event = field(default_factory=asyncio.Event, init=False, repr=False)
    _analyzed_at: int = field(default=0, init=False, repr=False)
    _analyzing: asyncio.Future[str] | None = field(default=None, init=False, repr=False)
    _scale: int = field(default=1, init=False, repr=False)
    #: Messages of the next batch decoded while the one before was applied (by ``id``).
    _decoded_ahead: dict[int, _Item] = field(default_factory=dict, init=False, repr=False)
    #: The next batch prepared while the one before was applied (``Preparing``).
    _prepared_ahead: _Prepared | None = field(default=None, init=False, repr=False)
    _prepared_now: _Prepared | None = field(default=None, init=False, repr=False)
    #: The read-ahead of the batch being applied (``_read_ahead``'s list, None outside the
    #: loop): where a ``Merging`` handler's ``more`` takes the next batch from.
    _ahead: list[Msg] | None = field(default=None, init=False, repr=False)
    #: The batch merged into the one being applied (``Batches._more``), acked with it.
    _merged: list[_Item] = field(default_factory=list, init=False, repr=False)
    _merging: bool = field(default=False, init=False, repr=False)
    #: Set as each slice read ahead is decoded: a merging batch waits for it (``_more``).
    _ahead_grew: asyncio.Event = field(default_factory=asyncio.Event, init=False, repr=False)
    #: When (loop time) an idle consumer next looks at its stream and durable.
    _next_look: float = field(default=0.0, init=False, repr=False)
    #: When (loop time) a gap in the deliveries started this consumer again (``_after_a_loss``).
    _lost_at: float | None = field(default=None, init=False, repr=False)
    #: Whether ``consumer_held`` may have rows of this consumer (``_forget_gone_holds``):
    #: set by each hold, and at start (rows of a process before); cleared when none is left.
    _holding: bool = field(default=True, init=False, repr=False)
    #: When (loop time) a consumer holding events next looks whether they are still there.
    _next_hold_look: float = field(default=0.0, init=False, repr=False)
    #: The event types the handler does nothing with (``Handler.ignores``): only tracked.
    _ignores: frozenset[str] = field(default=frozenset(), init=False, repr=False)
    #: When (loop time) the last batch ended (``_gather``: whether the consumer is busy).
    _last_done: float = field(default=float("-inf"), init=False, repr=False)

    def __post_init__(self) -> None:
        self._idle.set()
        # A handler that appends commands asks for larger batches (``batch_scale``): its
        # commands go to group commit together, one round per command of its busiest case,
        # so a larger batch fills each round instead of adding rounds.
        self._scale = max(1, int(getattr(self.handler, "batch_scale", 1)))
        self.batch *= self._scale
        self._ignores = frozenset(getattr(self.handler, "ignores", ()))

    @property
    def leads(self) -> bool:
        """Whether this process drives the durable now (it holds the durable's lock: no
        other process, of this release or an older one, applies or acks its events)."""
        return self._conn is not None

    @property
    def lock_key(self) -> str:
        return f"sixstep-consumer:{self.settings.stream_name}:{self.name}"

    def _retrying(self) -> str | None:
        """What the durable's ``RETRYING_KEY`` says: since when and on what this consumer's
        batches go back, once that has lasted ``RETRYING_SAID_AFTER_S``; else None."""
        since = self.stats.timing_out_since
        if since is None or time.time() - since < self.retrying_said_after_s:
            return None
        at = datetime.fromtimestamp(since, UTC).isoformat(timespec="seconds")
        return f"since {at}: {self.stats.last_timeout}"[:1000]

    async def ensure(self, refused: str | None = None) -> None:
        """Create the durable consumer (or align its filters); idempotent. ``refused``: why
        it applies nothing (``_on_its_stream``), kept in the durable's metadata, as is what
        it has been retrying for a while (``RETRYING_KEY``; at each start again)."""
        js = self.nc.jetstream()
        retrying = self._retrying()
        self._said_retrying = retrying is not None
        metadata = {**({REFUSED_KEY: refused[:1000]} if refused else {}),
                    **({RETRYING_KEY: retrying} if retrying else {})} or None
        config = ConsumerConfig(
            durable_name=self.name,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.ack_wait,
            # No limit on the server: a message at JetStream's limit is silently never
            # delivered again. The tries that count are ours (``_apply_one_by_one``).
            max_deliver=-1,
            max_ack_pending=max(self.batch * 4, 1000),
            filter_subjects=self.filter_subjects,
            deliver_policy=(DeliverPolicy.BY_START_SEQUENCE if self.deliver_from_seq
                            else DeliverPolicy.ALL),
            opt_start_seq=self.deliver_from_seq,
            max_waiting=64,
            metadata=metadata,
        )
        try:
            info = await js.consumer_info(self.settings.stream_name, self.name)
            if (sorted(info.config.filter_subjects or []) != sorted(self.filter_subjects)
                    or info.config.max_ack_pending != config.max_ack_pending
                    or (info.config.metadata or {}).get(REFUSED_KEY) != refused
                    or (info.config.metadata or {}).get(RETRYING_KEY) != retrying
                    or (info.config.max_deliver or -1) > 0):  # made with a limit: lift it
                await js.add_consumer(self.settings.stream_name, config)
        except NotFoundError:
            await js.add_consumer(self.settings.stream_name, config)

    async def measure_oldest_unapplied(self) -> float | None:
        """Ask the server for the oldest event this consumer has not applied yet: the first
        message on its subjects past its ack floor (an event held for a retry, fetched and
        not yet applied, or not fetched yet). Dead-lettered events count as done. Sets
        ``stats.pending`` (how many are not applied yet) and ``stats.oldest_unapplied_at``
        (returned): true even while the consumer fetches nothing."""
        js = self.nc.jetstream()
        stream = self.settings.stream_name
        info = await js.consumer_info(stream, self.name)
        self.stats.pending = (info.num_pending or 0) + (info.num_ack_pending or 0)
        if not info.num_pending and not info.num_ack_pending:
            self.stats.oldest_unapplied_at = None
            return None
        floor = info.ack_floor.stream_seq if info.ack_floor else 0
        oldest: tuple[int, float] | None = None
        for subject in self.filter_subjects:
            try:
                msg = await js.get_msg(stream, seq=floor + 1, subject=subject, next=True)
            except NotFoundError:
                continue
            if msg.seq is not None and msg.time is not None and (
                    oldest is None or msg.seq < oldest[0]):
                oldest = (msg.seq, msg.time.timestamp())
        self.stats.oldest_unapplied_at = oldest[1] if oldest else None
        return self.stats.oldest_unapplied_at

    async def caught_up(self) -> bool:
        """Whether this consumer has applied (or dead-lettered) every event on its subjects the
        stream holds now, in whichever process: every partition is some durable's of it
        (``base_consumer``: the partitioned workers' ``-p0_1``, ``-p2_3`` too; an API process
        of a split layout asks about the workers' durables, never its own name) that has
        nothing pending and nothing delivered and not yet acked (an event held behind a retry
        is). A durable the split no longer uses (``CONSUMER_PARTITIONS`` changed, deploy/
        README) stays behind for ever; its partitions count by the durables that took them
        over. Every page of the stream's consumers; False when no such durable is there
        (never started, deleted), a partition is no durable's, or the server does not
        answer."""
        try:
            infos = await self.durables()
        except (NatsError, TimeoutError):
            return False
        counted: set[int] = set()
        for info in infos:
            if not info.num_pending and not info.num_ack_pending:
                counted |= partitions_consumed(info, self.settings.partitions)
        return counted >= set(range(self.settings.partitions))

    async def durables(self) -> list[ConsumerInfo]:
        """The server's durables of this consumer in whichever process (``durables_of``)."""
        return await durables_of(self.nc.jetstream(), self.settings.stream_name, self.name)

    async def drain(self, timeout: float = 10.0) -> None:
        """Finish the batch in hand (applied, tracked, acked), then fetch no more."""
        self._stopping.set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._idle.wait()

    async def run(self) -> None:
        """Drive the durable while this process holds its lock (``shared.leadership``);
        stand by until then. PostgreSQL ending the lock's session (a restart, a proxy's cut)
        frees the lock for a standby: this process stops at once (``LeadershipLost``, the
        supervisor starts it again to stand by) rather than pull beside the new leader."""
        async with Leadership(self.locks or self.pool, self.lock_key,
                              what=f"consumer:{self.name}",
                              standby_s=1.0, on_standby=self._standing_by) as lead:
            self._conn = self._lock_conn = lead.connection
            consuming = asyncio.ensure_future(self._consume_again_and_again())
            watching = asyncio.ensure_future(lead.watch())
            try:
                done, _ = await asyncio.wait((consuming, watching),
                                             return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()
            finally:
                self._conn = None
                try:
                    await cancel_and_wait(consuming, watching)  # a failure: said above
                finally:
                    self._lock_conn = None

    def _standing_by(self, waiting: bool) -> None:
        self.stats.standing_by = waiting

    async def _consume_again_and_again(self) -> None:
        """``_consume``, started again each time what it started on is gone (``_StartAgain``:
        deliveries lost on the way, the durable deleted, the stream made anew): at once the
        first time, then after pauses that double, with jitter, up to ``START_AGAIN_MAX_S``
        (``restarts``), from the first again once a batch went through or it ran that long.
        Said once per change: the first start-again of a run and each new reason (warning),
        and the first batch after a run of them (``consumer.going_again``). Before, a reason
        that came back at once (a server losing every delivery) was a tight loop of
        reconnects and log lines."""
        loop = asyncio.get_running_loop()
        reason: str | None = None
        while True:
            started = loop.time()
            try:
                await self._consume()
            except _StartAgain as exc:
                if loop.time() - started > self.restarts.cap:
                    self._went_well()
                pause = self.restarts.next()
                if str(exc) != reason or self.restarts.streak == 1:
                    log.warning("consumer.start_again", consumer=self.name, reason=str(exc),
                                times=self.restarts.streak, retry_in_s=round(pause, 2))
                reason = str(exc)
                if pause:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(pause):
                            await self._stopping.wait()

    def _went_well(self) -> None:
        """A batch went through (or a start lasted): the next start-again is at once."""
        if self.restarts.streak:
            log.info("consumer.going_again", consumer=self.name,
                     started_again=self.restarts.succeeded())

    async def _reset_to_ack_floor(self) -> ConsumerInfo | None:
        """Have what a crashed predecessor fetched and never acked redelivered now, in order.

        The floor is named, not left to the server: a durable made with a delivery limit
        keeps the messages it gave up on below its floor, unacked, and a reset without a
        sequence moves the floor past them (they were lost for good, their cases behind:
        ``ensure`` lifting the limit brings them back only with this). What was applied
        among what comes again is skipped by its tracking record. Returns the durable as the
        reset left it (None: the server could not reset it)."""
        js = self.nc.jetstream()
        stream = self.settings.stream_name
        try:
            info = await js.consumer_info(stream, self.name)
            floor = info.ack_floor.stream_seq if info.ack_floor else 0
            start = info.config.opt_start_seq or 0  # a reset below it is refused
            reset = await js.reset_consumer(stream, self.name,
                                            seq=floor + 1 if floor + 1 >= start else None)
        except NatsError as exc:  # an older server: redelivery waits for ack_wait instead
            log.warning("consumer.reset_unavailable", consumer=self.name, error=str(exc))
            return None
        return reset.info

    async def _after_a_loss(self, reset: bool) -> None:
        """Deliveries were lost on the way (``Puller.lost``) and the server could not be reset
        to the ack floor: nothing is asked for until ack_wait has passed since, so that the
        lost messages are due for redelivery, which comes before anything newer."""
        lost_at, self._lost_at = self._lost_at, None
        if reset or lost_at is None:
            return
        wait = lost_at + self.ack_wait + 0.5 - asyncio.get_running_loop().time()
        if wait > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._stopping.wait()

    async def _next_delivery(self, info: ConsumerInfo | None) -> int | None:
        """The consumer sequence the durable's next delivery will carry, from ``info`` (the
        reset's answer) or, without it, asked now (None: unknown)."""
        if info is None:
            try:
                info = await self.nc.jetstream().consumer_info(self.settings.stream_name,
                                                               self.name)
            except (NatsError, TimeoutError):
                return None
        return (info.delivered.consumer_seq if info.delivered else 0) + 1

    async def _on_its_stream(self) -> datetime | None:
        """Return once the stream is the one this consumer's tracking rows were written
        against (``shared.bus.stream_identity``: one STREAM.INFO). Until then nothing is
        fetched: a stream made anew numbers its messages from 1 again, and the rows would
        skip new events as applied and apply old ones again. The durable is made (and says
        why in its metadata, for ``sixstep ops status``); /ready, the metric
        ``sixstep_consumer_stream_refused`` and the log say what to run."""
        js = self.nc.jetstream()
        while True:
            seen = await stream_seen(js, self.settings.stream_name)
            async with self._connection() as conn:
                why = await check_stream(conn, self.name, seen, applied_seq_sql=APPLIED_SEQ)
            if why is None:
                if self.stats.stream_refused is not None:
                    log.warning("consumer.stream_accepted", consumer=self.name)
                self.stats.stream_refused = None
                return seen.created
            if self.stats.stream_refused != why:
                log.error("consumer.stream_refused", consumer=self.name, reason=why,
                          fix=f"rebuild the read model of {base_consumer(self.name)} "
                              "(`sixstep rebuild <read model>`, or `sixstep rebuild --all`)")
                self.stats.stream_refused = why
                await self.ensure(refused=why)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(STREAM_RECHECK_S):
                    await self._stopping.wait()
            if self._stopping.is_set():
                await asyncio.Event().wait()  # drained: wait to be cancelled

    async def _still_there(self, made: datetime | None) -> None:
        """While idle, every ``STREAM_RECHECK_S``: raise ``_StartAgain`` when the stream is
        not the one made at ``made`` that this loop started on, or its durable is gone. A
        stream deleted and made again under a running consumer takes the durable with it:
        the pulls found nobody, and the consumer waited for ever, applying nothing and
        saying nothing; started again it refuses the new stream (``_on_its_stream``), or
        makes its durable again. A stream not there (deleted, not made yet) is looked at
        again later, as is one the server does not answer for now."""
        loop = asyncio.get_running_loop()
        if loop.time() < self._next_look:
            return
        self._next_look = loop.time() + STREAM_RECHECK_S
        js = self.nc.jetstream()
        stream = self.settings.stream_name
        try:
            seen = await stream_seen(js, stream)
        except (NatsError, TimeoutError):
            return
        if made is not None and seen.created is not None and seen.created != made:
            raise _StartAgain(f"the stream was made anew at {seen.created.isoformat()}")
        try:
            await js.consumer_info(stream, self.name)
        except NotFoundError:
            raise _StartAgain("the durable consumer is gone") from None
        except (NatsError, TimeoutError):
            return

    async def _consume(self) -> None:
        made = self._stream_created = await self._on_its_stream()
        await self.ensure()
        reset = await self._reset_to_ack_floor()
        await self._after_a_loss(reset is not None)
        # Lingering pull requests stay open on the server: an event published while this
        # consumer waits is delivered at once, and under load the next batch is already on
        # its way while one is applied. Batches are applied one after the other, in stream
        # order; while one waits on PostgreSQL (its statements, its commands' group commit),
        # the next is taken and decoded (``_read_ahead``). At most four batches are held (one
        # applied, one read ahead, two on their way), far inside ack_wait; three of a command
        # writer's larger ones (one on its way).
        puller = Puller(self.nc, self.settings.stream_name, self.name, self.batch,
                        depth=2 if self._scale == 1 else 1)
        held: list[Msg] = []  # taken from the puller, neither acked nor handed back yet
        try:  # every way out, its start's too, stops the puller: its inbox unsubscribed
            await puller.start(next_delivery=await self._next_delivery(reset))
            if not self.restarts.streak:  # each start of a run of start-agains is said once
                log.info("consumer.started", consumer=self.name, subjects=self.filter_subjects)
            while not self._stopping.is_set():
                await self._forget_gone_holds()
                if not held:
                    held = await puller.take(timeout=1.0)
                    if not held:
                        if puller.lost is not None:
                            self._lost_at = asyncio.get_running_loop().time()
                            missing, came = puller.lost
                            raise _StartAgain(
                                f"deliveries {missing}-{came - 1} were lost on the way (the "
                                "connection they went out on broke): again from the ack floor")
                        await self._still_there(made)
                    continue
                self._idle.clear()  # a drain waits for the batch gathered too
                if self.gather_s > 0 and len(held) < min(self.gather_below, self.batch):
                    try:
                        await self._gather(puller, held)
                    except BaseException:
                        self._idle.set()
                        raise
                ahead: list[Msg] = []
                # What was prepared of this batch while the last one was applied.
                self._prepared_now, self._prepared_ahead = self._prepared_ahead, None
                self._ahead = ahead  # a merging handler's batch takes the next from it
                applying = asyncio.ensure_future(self.process(held))
                try:
                    await self._read_ahead(puller, applying, ahead)
                    await applying
                except Exception as exc:
                    # The store or the bus failed under us: hand the batches back now
                    # rather than after ack_wait, then let the supervisor restart us (with
                    # back-off, ``shared.runtime.background.supervise``).
                    self._timed_out(exc)
                    await self._stop_applying(applying)
                    for msg in [*held, *ahead]:
                        with contextlib.suppress(Exception):
                            await msg.nak(delay=self.backoff[0])
                    held = []
                    raise
                except BaseException:  # cancelled: the batch in hand goes with us
                    try:
                        await self._stop_applying(applying)
                    finally:  # with a batch merged into it, rolled back (``_unmerge``)
                        held = [*held, *ahead]
                    raise
                finally:
                    self._ahead = None
                    self._idle.set()
                    self._last_done = asyncio.get_running_loop().time()
                self._answers_again()
                self._went_well()
                held = ahead
            await asyncio.Event().wait()  # drained: wait to be cancelled
        finally:
            # Not started, or delivered but never taken: back to the stream at once, for the
            # next leader (an unsubscribe on a connection being drained must not hold the
            # shutdown).
            # The stop is bounded in this task (``asyncio.timeout``), not in a task of its own
            # (``asyncio.wait_for`` on 3.11): this ``finally`` runs during a shutdown's
            # repeated cancels (``Background.stop``), and wait_for, cancelled again while it
            # waited for its cancelled child, gave up on it: the stop went on with no owner,
            # and what it would have returned was never handed back (the next leader got it
            # only after ack_wait). What was delivered is taken (``left``) however the stop
            # ended, and handed back before the cancel goes on. The stop drains the inbox
            # (``Puller.stop``): nothing the server delivers is dropped unseen, unless its
            # round trip outlasts the bound; then what it sent meanwhile stays delivered
            # until the next leader starts (``_reset_to_ack_floor``: at once) or ack_wait.
            unstarted = list(held)
            self._decoded_ahead.clear()
            self._prepared_ahead = self._prepared_now = None
            if self._analyzing is not None and not self._analyzing.done():
                self._analyzing.cancel()
            try:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(2.0):
                        await puller.stop()
            finally:
                unstarted += puller.left()
                for msg in unstarted:
                    with contextlib.suppress(Exception):
                        await msg.nak()
                if self._stopping.is_set():
                    await self._hand_back_delivered()

    async def _hand_back_delivered(self) -> None:
        """At a graceful stop, with the inbox gone and what it held nakked: the durable reset
        to its ack floor (``_reset_to_ack_floor``), while this process still holds the lock,
        so that nothing stays delivered and unacknowledged on it. JetStream counts a nakked
        message pending an ack until it is delivered again (with nobody pulling: until the
        next leader; ``sixstep ops status`` and the lag said so meanwhile), and a delivery the
        server picked for a request just before it heard the inbox go, and sent after the
        drain's answer (its internal send queue: one in some hundreds of stops under load),
        was dropped by the client unseen. Bounded (``STOP_RESET_S``): a server that does not
        answer leaves both to the next leader's own reset at its start.

        Not once the lock's session has ended (a hard stop ended it, a proxy cut it): a
        standby may lead already, and a reset under it had every event it held in hand
        delivered to it again, one more delivery counted against each one's limit; its own
        reset at its start hands back what this process left."""
        lock = self._lock_conn
        if lock is None or closed(lock):
            return
        with contextlib.suppress(Exception):
            async with asyncio.timeout(STOP_RESET_S):
                await self._reset_to_ack_floor()

    def _timed_out(self, exc: BaseException) -> None:
        """A batch went back because a statement ran out of time: counted, said (the first of
        a run at error level, the others at warning), and kept for /ready until a batch
        goes through again."""
        if not isinstance(exc, STORE_TIMED_OUT):
            return
        stats = self.stats
        stats.store_timeouts += 1
        self._timeouts_in_a_row += 1
        stats.last_timeout = f"{type(exc).__name__}: {str(exc)[:200]}"
        if self.on_store_timeout is not None:
            self.on_store_timeout()
        first = stats.timing_out_since is None
        stats.timing_out_since = stats.timing_out_since or time.time()
        (log.error if first else log.warning)(
            "consumer.store_timed_out", consumer=self.name, error=stats.last_timeout,
            times=stats.store_timeouts, hint="a lock another session holds, a hung backend: "
            "pg_stat_activity (deploy/README, 'A hung statement')")

    def _answers_again(self) -> None:
        self._timeouts_in_a_row = 0
        if self.stats.timing_out_since is not None:
            log.warning("consumer.store_answers_again", consumer=self.name,
                        after_s=round(time.time() - self.stats.timing_out_since, 1))
            self.stats.timing_out_since = None
            if self._said_retrying:  # the durable said it retried: no longer (``ops status``)
                self._said_retrying = False
                self._unsaying = asyncio.ensure_future(self._unsay_retrying())

    async def _unsay_retrying(self) -> None:
        try:
            await self.ensure(refused=self.stats.stream_refused)
        except Exception as exc:  # said again at the next start, or this one's next try
            log.warning("consumer.retrying_not_cleared", consumer=self.name, error=str(exc))

    async def _gather(self, puller: Puller, held: list[Msg]) -> None:
        """A small batch of a busy consumer waits up to ``gather_s`` for more, taken into
        ``held`` (in place: a cancellation leaves nothing taken outside it). Every batch pays
        the same fixed cost whatever its size (its transaction and tracking write, the
        handler's round trips, the ack, the span): at middle rates each stage applied one
        event at a time and spent as much CPU a second as at the maximum. Busy means the
        last batch ended within ``gather_window_s``: an idle consumer's lone event (a quiet
        hour's write) is applied at once, never delayed."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        if now - self._last_done >= self.gather_window_s:
            return
        deadline, enough = now + self.gather_s, min(self.gather_below, self.batch)
        while len(held) < enough and not self._stopping.is_set():
            left = deadline - loop.time()
            if left <= 0 or puller.lost is not None:
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await puller.arrival()
            held += await puller.take_now(self.batch - len(held))

    async def _read_ahead(self, puller: Puller, applying: asyncio.Future[None],
                          ahead: list[Msg]) -> None:
        """While ``applying`` runs, take the next batch into ``ahead`` and decode it: what
        arrives until the batch is full or the one applied is done. Nothing of it is applied
        (or acked) before ``applying`` has committed.

        The batch applied comes first: it starts (sends its first statement) before anything
        is decoded here, and the decoding goes in slices of ``DECODE_SLICE`` messages with a
        turn of the loop between them, so that the batch goes on as soon as an answer it
        waits for comes. Decoded in one run, a full batch read ahead (2,000 messages of a
        command writer: 20-40 ms) held up each of the applied batch's statements and its
        commands' answers until the run was over."""
        await asyncio.sleep(0)  # ``applying`` starts first
        while len(ahead) < self.batch:
            got = await puller.take_now(self.batch - len(ahead))
            if got:
                ahead += got
                for start in range(0, len(got), DECODE_SLICE):
                    if start:
                        await asyncio.sleep(0)
                    for msg in got[start:start + DECODE_SLICE]:
                        self._decoded_ahead[id(msg)] = self._decode(msg)
                    self._ahead_grew.set()  # a merging batch waiting for it (``_more``)
                continue
            if applying.done():
                return
            arrival = asyncio.ensure_future(puller.arrival())
            try:
                await asyncio.wait((applying, arrival), return_when=asyncio.FIRST_COMPLETED)
            finally:
                await cancel_and_wait(arrival)
        if not applying.done():
            self._prepare_ahead(ahead)

    def _prepare_ahead(self, ahead: list[Msg]) -> None:
        """The full batch read ahead, prepared while the one before still waits on
        PostgreSQL (``Preparing``): pure work, used only if the batch is applied as it is."""
        prepare = getattr(self.handler, "prepare", None)
        if prepare is None:
            return
        items = [self._decoded_ahead.get(id(m)) for m in ahead]
        if all(i is not None and i.envelope is not None for i in items):
            events = _handled(cast(list[_Item], items))
            try:
                self._prepared_ahead = _Prepared(events, prepare(events))
            except Exception:  # the batch's own apply meets it again, and retries it
                self._prepared_ahead = None

    @staticmethod
    async def _stop_applying(applying: asyncio.Future[None]) -> None:
        """The batch being applied is abandoned: its transaction rolls back."""
        await cancel_and_wait(applying)  # its own failure is the caller's to report

    # -- one batch --------------------------------------------------------------------------

    async def process(self, msgs: Sequence[Msg]) -> None:
        prepared, self._prepared_now = self._prepared_now, None
        # In stream order: a batch comes in delivery order, and a redelivered event can
        # follow a newer one of its case (applied after it, the case's view went back).
        items = self._once_each(sorted([self._decoded(m) for m in msgs], key=_seq_of))
        for item in items:
            if item.envelope is None:
                await self._dead_letter(item, item.error or "undecodable")
        good = [i for i in items if i.envelope is not None]
        if good and tracing.enabled():
            # One span for the batch, linked to each message of a kept trace (not one of a
            # type the handler ignores: only tracked); the commands it causes go on in
            # their message's trace.
            with tracing.consuming(f"consume {self.name}", [
                    i for i in good if type(i.envelope) is not EnvelopeHead]):
                await self._apply(good, prepared)
        elif good:
            await self._apply(good, prepared)
        self.stats.batches += 1
        if self.on_batch:
            self.on_batch(self.stats)

    def _once_each(self, items: list[_Item]) -> list[_Item]:
        """``items`` (in stream order) with each stream sequence once: its latest delivery.
        A message not acked within ack_wait is delivered again while the first copy is still
        in hand (a batch held longer: a slow statement, a long ``CONSUMER_GATHER_MS``), and
        both copies could land in one batch: every event of it new to its row, the batch's
        tracking write passed and the handler was given the event twice. The copy left out
        is not answered: the server keeps one pending entry a sequence, answered by the
        kept copy's ack or nak (an ack of the left-out one before the commit would let the
        event go should the batch fail)."""
        once: list[_Item] = []
        last = -1
        for item in items:
            if item.seq != last:
                once.append(item)
                last = item.seq
                continue
            self.stats.duplicates += 1
            if item.delivered > once[-1].delivered:
                once[-1] = item
        return once

    def _decoded(self, msg: Msg) -> _Item:
        """The message decoded: ahead of its batch (``_read_ahead``), or now."""
        item = self._decoded_ahead.pop(id(msg), None)
        return item if item is not None and item.msg is msg else self._decode(msg)

    def _decode(self, msg: Msg) -> _Item:
        item = _Item(msg, *sequence_and_delivered(msg))
        self.stats.last_stream_seq = max(self.stats.last_stream_seq, item.seq)
        if self._ignores and _type_in(msg.subject) in self._ignores:
            head = decode_head(msg.data)
            if head is not None and head.type in self._ignores:
                item.envelope = head  # only tracked: no span, never handed to the handler
                return item
        try:
            decoded = decode_envelope(msg.data)
            item.envelope = REGISTRY.current(decoded)
        except (ValidationError, LookupError, ValueError) as exc:
            item.error = f"undecodable event: {type(exc).__name__}: {str(exc)[:500]}"
            return item
        forged = not_its_subject(msg.subject, decoded.service, decoded.type)
        if forged is not None:  # dead-lettered, never handed to the handler
            item.envelope, item.error = None, forged
        return item

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[asyncpg.Connection]:
        """The leader's own connection (it holds the lock); a pooled one outside ``run``."""
        if self._conn is not None:
            yield self._conn
            return
        async with self.pool.acquire() as conn:
            yield conn

    def _analyze_when_grown(self) -> None:
        """Fresh statistics for ``consumer_tracking`` (and the handler's ``analyzed``) at
        start and each time this consumer has doubled what it applied: the tracking lookup is
        a prepared statement, and a plan made while the table was young scans every row
        (1.2 s a batch at a million rows, 0.9 ms with statistics) long before autovacuum
        looks at it. PostgreSQL plans a prepared statement again once the statistics of its
        tables change.

        ANALYZE runs beside the batches, on a pooled connection, not first thing in a batch:
        it blocks no writer (SHARE UPDATE EXCLUSIVE) and took 3-40 ms each of the 3-7 times a
        26,000-event backlog asked for it, a batch's whole wait each time."""
        if self.stats.applied < self._analyzed_at or (
                self._analyzing is not None and not self._analyzing.done()):
            return
        self._analyzed_at = max(2 * self.stats.applied, 5_000)
        # The handler's own tables read by key the same way (``Handler.analyzed``): the
        # figures' ``= ANY($1)`` lookups planned on empty tables scanned every fact row each
        # batch (4.6 of the figures' 19 us an event at 37,764 events, and growing).
        tables = ", ".join(("consumer_tracking", *getattr(self.handler, "analyzed", ())))
        self._analyzing = asyncio.ensure_future(self.pool.execute(f"ANALYZE {tables}"))
        self._analyzing.add_done_callback(self._analyzed)

    def _analyzed(self, analyzing: asyncio.Future[str]) -> None:
        if not analyzing.cancelled() and (exc := analyzing.exception()) is not None:
            self._analyzed_at = 0  # asked again with the next batch
            log.warning("consumer.analyze_failed", consumer=self.name,
                        error=f"{type(exc).__name__}: {exc}")


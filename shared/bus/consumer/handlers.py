"""What a consumer feeds: the handler's protocols (``Handler``, ``Preparing``, ``Waiting``,
``Merging``) and ``PermanentError``, an event a handler can never apply."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import asyncpg

from shared.contracts import Envelope


class PermanentError(Exception):
    """Raised by a handler for an event it can never apply: dead-lettered without retries."""


class Handler(Protocol):
    """Applies a batch of events. A handler may also say ``batch_scale: int``: how many
    times the consumer's configured batch it takes at once (the command writers'), offer
    ``prepare`` (:class:`Preparing`), run the consumer's tracking while it waits
    (:class:`Waiting`), or name the event types on its subjects it does nothing with
    (``ignores``: a ``frozenset[str]``). An event of such a type is only tracked: read no
    further than its head (``EnvelopeHead``: no payload, no moments), never handed to
    ``apply``, applied in no span of its own, in the same transaction and order as the
    others. Only a type the handler reads nothing of belongs there: one left out is handed
    to it as before. A handler that reads its own tables by key in prepared statements names
    them in ``analyzed`` (a ``tuple[str, ...]``): they get fresh statistics with
    ``consumer_tracking``'s (``Consumer._analyze_when_grown``)."""

    async def apply(self, conn: asyncpg.Connection, events: Sequence[Envelope]) -> None:
        """Apply events (in stream order) inside the caller's transaction."""
        ...


class Preparing(Handler, Protocol):
    """A handler whose batch has work that needs no database (rows built from the events):
    the consumer calls ``prepare`` on the next batch while the one before waits on
    PostgreSQL, and hands the result to ``apply`` when it applies exactly those events.
    ``prepare`` must not change anything: a batch may be applied without it (its events
    were not all fresh, or it was not ready in time), and then ``apply`` gets None."""

    def prepare(self, events: Sequence[Envelope]) -> object:
        ...

    async def apply(self, conn: asyncpg.Connection, events: Sequence[Envelope],
                    prepared: object | None = None) -> None:
        ...


Meanwhile = Callable[[], Awaitable[None]]
"""The consumer's own write of a batch (its tracking rows and progress), handed to a
:class:`Waiting` handler to run while the batch waits on something else."""


class Waiting(Handler, Protocol):
    """A handler whose batch waits on something other than its connection (the commands it
    sent to group commit, run on the writer thread): it takes ``meanwhile``, the consumer's
    own write of the batch, and awaits it on its connection while it waits, so that the
    statement is off the batch's path instead of after it. Same transaction, so it commits
    with the handler's writes or not at all. A handler says so with ``waits = True``; if its
    ``apply`` returns without having awaited ``meanwhile``, the consumer runs it then. A batch
    whose events were all fresh wrote its tracking first (``Consumer._apply_if_all_fresh``):
    its ``meanwhile`` has nothing left to do."""

    waits: bool

    async def apply(self, conn: asyncpg.Connection, events: Sequence[Envelope],
                    meanwhile: Meanwhile | None = None) -> None:
        ...


More = Callable[["asyncio.Future[Any]"], Awaitable[None]]
"""The next batch read ahead, applied in the batch's own transaction as soon as one is read
while the batch waits on the future it is given (``Merging``)."""


class Merging(Handler, Protocol):
    """A handler whose batch waits on something other than its connection (its commands'
    group-commit round) and that can apply the next batch meanwhile: ``apply`` takes
    ``more``, and awaits ``more(waiting)`` with the future it waits on, only once its own
    writes are done and when nothing it still does after the wait could be seen differently
    by the next batch. ``more`` applies the events read ahead by then (as soon as any is
    decoded, unless ``waiting`` is done first; in stream order), tracked first,
    on the same connection in a savepoint of the same transaction: they see this batch's
    writes, their commands queue behind this batch's, and they commit and are acked with it,
    or not at all (a savepoint that failed, or events not all new, hands them back to be
    applied as the next batch). The merged batch is given no ``more`` of its own. A handler
    says so with ``merges = True``; ``more`` is None where the batch is not the usual one
    (sorted by its rows, one by one, isolated). ``more`` is given by keyword: a handler that
    is also :class:`Waiting` (follow-up's rules) takes ``meanwhile`` in the third place, for
    the batches that are not the usual one."""

    merges: bool

    async def apply(self, conn: asyncpg.Connection, events: Sequence[Envelope],
                    more: More | None = None) -> None:
        ...

"""A delivered message as a batch carries it (``_Item``), and the small signals between the
batch's steps (``_RowsMoved``, ``_NotAllFresh``, ``_Once``)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from uuid import UUID

from nats.aio.msg import Msg

from shared import tracing
from shared.bus.consumer.handlers import Meanwhile
from shared.contracts import Envelope
from shared.contracts.decoding import EnvelopeHead


class _RowsMoved(Exception):
    """A tracking write after a batch's effects found a row another transaction moved since
    the batch was sorted by it (``Consumer._track``): rolled back, sorted again."""


class _NotAllFresh(Exception):
    """A batch's first statement found an event applied already, or waiting behind a retried
    one of its case: its transaction is rolled back and the batch sorted as before
    (``Consumer._apply_if_all_fresh``)."""


class _Once:
    """``write`` run at most once, by whichever asks first (the handler or the consumer)."""

    __slots__ = ("_write", "done")

    def __init__(self, write: Meanwhile) -> None:
        self._write = write
        self.done = False

    async def __call__(self) -> None:
        if not self.done:
            self.done = True
            await self._write()


async def _nothing() -> None:
    return None


#: The ``meanwhile`` of a batch whose tracking write was its first statement: done already.
_TRACKED_ALREADY = _Once(_nothing)
_TRACKED_ALREADY.done = True


@dataclass(slots=True)
class _Item:
    msg: Msg
    seq: int
    delivered: int
    #: The event; only its head when the handler ignores its type (``Handler.ignores``).
    envelope: Envelope | EnvelopeHead | None = None
    error: str | None = None

    # What a batch's span reads of the message (``tracing.Applied``): the header of each,
    # the rest only of a message whose trace is kept, or that caused a command.
    @property
    def traceparent(self) -> str | None:
        headers = self.msg.headers
        return headers.get(tracing.TRACEPARENT) if headers else None

    @property
    def event_id(self) -> UUID:
        assert self.envelope is not None
        return self.envelope.event_id

    @property
    def type(self) -> str:
        assert self.envelope is not None
        return self.envelope.type

    @property
    def case_id(self) -> UUID | None:
        assert self.envelope is not None
        return self.envelope.case_id


def _seq_of(item: _Item) -> int:
    return item.seq


def _handled(items: Iterable[_Item]) -> list[Envelope]:
    """The events of ``items`` the handler is given: those decoded whole."""
    return [e for i in items
            if (e := i.envelope) is not None and type(e) is not EnvelopeHead]  # type: ignore[misc]


def _type_in(subject: str) -> str:
    """The event type a subject names (``<prefix>.<service>.<type>.p<partition>``:
    ``jetstream.event_subject``)."""
    parts = subject.rsplit(".", 2)
    return parts[1] if len(parts) == 3 else ""


@dataclass(slots=True)
class _Prepared:
    """A batch's ``Preparing.prepare``, made while the batch before it was applied."""

    events: list[Envelope]
    result: object


def _same(a: list[Envelope], b: list[Envelope]) -> bool:
    """The same envelopes (the same objects), in the same order."""
    return len(a) == len(b) and all(x is y for x, y in zip(a, b, strict=True))


"""What the services' APIs accept as a moment or a day: a window around now, from settings.

A counter reports when something happened (``occurred_at``); a clerk gives deadlines and
due days. One request with ``occurred_at`` in the year 1 or 9999 once made an event no reader
could convert, so every command's moments and days are checked before anything is recorded:

* ``occurred_at`` from ``OCCURRED_AT_EARLIEST`` (2000-01-01 by default) to
  ``OCCURRED_AT_MAX_FUTURE_S`` seconds ahead of the service's clock (300: counters' clocks
  drift a little);
* every other moment or day of a command (a deadline, a due day, an effective day) from the
  same earliest day to ``DATES_HORIZON_DAYS`` ahead (3660, ten years).

The horizon's last day is the center's day (``CENTER_TIMEZONE``): from 16:00 UTC Shanghai is a
day ahead of UTC. (The earliest moment is a floor in UTC, as the contracts' own.)

A deadline is judged on ``occurred_at`` only within ``OCCURRED_AT_GRACE_S`` (72 h) before the
service's clock: the counter page keeps steps while the network is down, and a weekend's are
sent on Monday. An older ``occurred_at`` is recorded as given (the day it happened, for the
figures' periods) but judged on the service's clock less the grace (:meth:`Moments.judged_at`),
so a resolution or a rectification recorded after its deadline plus the grace never counts on
time, whatever ``occurred_at`` says, and the figures count it as backdated.

A moment ahead of the service's clock (within ``OCCURRED_AT_MAX_FUTURE_S``) is recorded as
that clock's (:meth:`Moments.recorded`, by ``CommandPath.meta``): the counter's clock is fast,
and the post is judged, dated and counted on the moment the service received it, never on a
day or month still to come. How far ahead it was goes to the metrics only
(``sixstep_occurred_at_ahead_seconds``).

A sender may say its own clock as it sends (``sent_at``, on every attempt: the counter page
stamps each request). Measured against the service's clock as the request came in at its
front door (``group_commit.arrived_at``: the time it then spends in the service, its body on a
slow network, a queue, a wait for the vault, is not the sender's clock), more than
``SKEW_TOLERANCE`` (5 s) off, the
difference is the sender's clock error, and ``occurred_at`` is moved by it
(:meth:`Moments.skew`, by ``CommandPath.meta``): a step queued offline at 23:58 on 31
December on a tablet 3 minutes fast said 00:01 and was sent at 00:20, behind the service's
clock, so only ``sent_at`` shows the tablet's error. A ``sent_at`` more than
``OCCURRED_AT_MAX_FUTURE_S`` (never less than those 5 s) off either way is a 422 naming it:
a clock that far off (or a ``sent_at`` in the wrong zone) is set right, not corrected by a
guess. Without ``sent_at`` (Open311, the callers that never sent it) the post is taken as
before.

Anything else is a 422 naming the field. The contracts (``shared.contracts.fields``) accept a
wider, fixed range that no setting can exceed, so whatever the API accepts stays readable.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from enum import Enum
from types import UnionType
from typing import Annotated, Any, Literal, Protocol, Union, get_args, get_origin
from uuid import UUID
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from shared.kernel.errors import InvalidCommand

CENTER_TZ = ZoneInfo("Asia/Shanghai")  # the default center zone (settings' CENTER_TIMEZONE)

SKEW_TOLERANCE = timedelta(seconds=5)
"""How far a sender's ``sent_at`` may lie off the service's clock and its ``occurred_at`` still
be taken as said: a request's time in transit before the service's front door (which makes
every sender look slow by it, and which nothing tells apart from a clock running slow) stays
under it, and a clock kept by NTP is within milliseconds. The time after the front door is not
in it: ``sent_at`` is measured against the request's arrival there."""


class MomentSettings(Protocol):
    """What the windows are made of (the service's ``Settings`` has these fields)."""

    occurred_at_earliest: date
    occurred_at_max_future_s: float
    occurred_at_grace_s: float
    dates_horizon_days: int

    @property
    def tz(self) -> tzinfo: ...


@dataclass(frozen=True)
class Moments:
    earliest: date = date(2000, 1, 1)
    max_future: timedelta = timedelta(minutes=5)
    horizon: timedelta = timedelta(days=3660)
    tz: tzinfo = CENTER_TZ
    grace: timedelta = timedelta(hours=72)

    @classmethod
    def from_settings(cls, settings: MomentSettings) -> Moments:
        return cls(earliest=settings.occurred_at_earliest,
                   max_future=timedelta(seconds=settings.occurred_at_max_future_s),
                   horizon=timedelta(days=settings.dates_horizon_days), tz=settings.tz,
                   grace=timedelta(seconds=settings.occurred_at_grace_s))

    def recorded(self, occurred_at: datetime, now: datetime) -> tuple[datetime, float]:
        """The moment a post is recorded at, and how many seconds ahead of ``now`` (the
        service's clock) ``occurred_at`` was: ``occurred_at`` and 0.0, or ``now`` (in the
        offset the counter gave) and how far ahead when it lies ahead. A counter's clock
        running fast (within ``max_future``) is the counter's error, not a moment to come: a
        resolution at 23:58 on 31 December from a tablet 3 minutes fast said 00:01 on 1
        January, and was judged on that day (late, and January's). Every rule that reads
        ``occurred_at`` (the figures' day and month, on time, deadlines, the survey's window,
        the follow-ups planned from it) then reads this one moment; how far ahead goes to the
        metrics only."""
        if occurred_at > now:
            return now.astimezone(occurred_at.tzinfo), (occurred_at - now).total_seconds()
        return occurred_at, 0.0

    def skew(self, sent_at: datetime, now: datetime) -> timedelta | None:
        """How far the sender's clock runs ahead of ``now`` (the service's clock as the
        request arrived at its front door; negative: behind), by the ``sent_at`` it stamped on
        the request; None within :data:`SKEW_TOLERANCE`. The window (``max_future`` either
        way) is checked before, with the command's other moments (:meth:`check_value`)."""
        off = sent_at - now
        return off if abs(off) > SKEW_TOLERANCE else None

    def judged_at(self, occurred_at: datetime, now: datetime) -> datetime | None:
        """The moment a deadline judges a post by when its ``occurred_at`` lies more than the
        grace before ``now`` (the service's clock): ``now`` less the grace. None when
        ``occurred_at`` stands (within the grace, or ahead)."""
        floor = now - self.grace
        return floor if occurred_at < floor else None

    def check(self, command: BaseModel, now: datetime, within: str = "",
              arrived: datetime | None = None) -> None:
        """Raise :class:`InvalidCommand` (422) for the first moment or day of ``command``
        outside its window; ``now`` is the service's clock. The models a command holds, alone
        or in a list, are checked too, their fields named from the command (``steps[1].
        effective_on``): a plan's steps were not, and a step dated in the year 1 (outside the
        contracts' ``Day``) or 2199 was recorded. ``arrived``: the service's clock as the
        request came in (its ``sent_at`` is measured against it); None: ``now``."""
        values = command.__dict__
        for name in _field_names(type(command)):
            value = values[name] if name in values else getattr(command, name)
            if isinstance(value, date):  # a moment is one too
                self.check_value(within + name, value, now, arrived)
            elif isinstance(value, BaseModel):
                self.check(value, now, f"{within}{name}.", arrived)
            elif isinstance(value, list | tuple):
                for n, item in enumerate(value):
                    if isinstance(item, BaseModel):
                        self.check(item, now, f"{within}{name}[{n}].", arrived)

    def check_value(self, name: str, value: Any, now: datetime,
                    arrived: datetime | None = None) -> None:
        """The answer names the window by its settings, not by the moment ``now`` (the same
        request gets the same answer). ``sent_at`` is measured against ``arrived`` (the
        request's arrival), else ``now``."""
        horizon_days = self.horizon.days
        if isinstance(value, datetime):
            first = datetime.combine(self.earliest, time(), UTC)
            moment = value if value.utcoffset() is not None else value.replace(tzinfo=UTC)
            if name == "occurred_at":
                seconds = int(self.max_future.total_seconds())
                if not first <= moment <= now + self.max_future:
                    raise InvalidCommand(
                        f"occurred_at must lie between {self.earliest} and {seconds} s after "
                        "the service's clock (a counter's clock may run a little ahead)",
                        field=name, earliest=self.earliest.isoformat(), max_future_s=seconds)
            elif name == "sent_at":
                # Never narrower than what is taken as sent: a post's time in transit puts its
                # sent_at behind the clock (OCCURRED_AT_MAX_FUTURE_S=0 refused every post).
                window = max(self.max_future, SKEW_TOLERANCE)
                seconds = int(window.total_seconds())
                came = now if arrived is None else arrived
                if not came - window <= moment <= came + window:
                    raise InvalidCommand(
                        f"sent_at must lie within {seconds} s of the service's clock: the "
                        "sender's clock is set wrong (or sent_at is not in its offset); "
                        "nothing was recorded", field=name, max_future_s=seconds)
            elif not first <= moment <= now + self.horizon:
                raise InvalidCommand(
                    f"{name} must lie between {self.earliest} and {horizon_days} days ahead",
                    field=name, earliest=self.earliest.isoformat(), horizon_days=horizon_days)
        elif isinstance(value, date) and not (
                self.earliest <= value <= (now + self.horizon).astimezone(self.tz).date()):
            raise InvalidCommand(
                f"{name} must lie between {self.earliest} and {horizon_days} days ahead",
                field=name, earliest=self.earliest.isoformat(), horizon_days=horizon_days)


_FIELDS: dict[type, tuple[str, ...]] = {}

#: What a field declared as one of these (or an Enum, a Literal, None, a union of them) holds
#: after validation: never a moment, a day, a model or a list of them.
_SCALARS = (str, int, float, bool, bytes, UUID, Decimal, type(None))


def _field_names(cls: type[BaseModel]) -> tuple[str, ...]:
    """The names of ``cls``' fields that may hold a moment, a day, a model or a list, in the
    class's order, read once per command class: a code, a number, an id or an enum is never
    looked at (``OpenCase``'s ten such fields were most of its window check; pydantic's class
    property behind ``model_fields`` was half of it before that)."""
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = tuple(
            name for name, info in cls.model_fields.items() if not _scalar(info.annotation))
    return names


def _scalar(annotation: Any) -> bool:
    """Whether a field declared ``annotation`` holds a scalar only (see ``_SCALARS``); anything
    not known to be one (``Any``, a model, a list, a date, a type unknown here) is looked at."""
    if isinstance(annotation, type):
        return (issubclass(annotation, _SCALARS) or issubclass(annotation, Enum)) \
            and not issubclass(annotation, date)
    origin = get_origin(annotation)
    if origin is Literal:
        return True
    if origin is Annotated:
        return _scalar(get_args(annotation)[0])
    if origin is Union or origin is UnionType:
        return all(_scalar(a) for a in get_args(annotation))
    supertype = getattr(annotation, "__supertype__", None)  # a NewType
    return supertype is not None and _scalar(supertype)


def judged_by(occurred_at: datetime, payload: dict[str, Any]) -> datetime:
    """The moment a recorded post is judged by: its ``occurred_at``, or the ``judged_at`` the
    service recorded on a backdated one (:meth:`Moments.judged_at`; a string as the stream
    carries it, or a moment)."""
    judged = payload.get("judged_at")
    if judged is None:
        return occurred_at
    return datetime.fromisoformat(judged) if isinstance(judged, str) else judged

"""Who is calling: the verified principal (subject, role, center scope), and the caller of the
work being done here (a request's, or the publisher's of a background fan-out).

Roles (:class:`Role`): a counter ``clerk`` writes and reads its own center's cases; a
``supervisor`` does the same plus rectifications, escalations, the audit trail and erasure; an
``analyst`` reads figures (no personal data); ``ops`` runs the operations routes; a
``resident`` token answers one case's survey; ``city`` is the city's (or district's) own
supervisor above the centers: what reaches every center at once (a policy change published to
all centers) and the city-wide view of cross-center access (audit entries the city must see).

The write path (``shared.eventstore.group_commit``) checks every aggregate a command touches
against :func:`current_caller`, so no route can write across centers by forgetting a check;
the HTTP layer sets it for each request (``shared.http.auth``), a background job with
:func:`acting_as`.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID


class Role(StrEnum):
    CLERK = "clerk"
    SUPERVISOR = "supervisor"
    ANALYST = "analyst"
    OPS = "ops"
    RESIDENT = "resident"
    CITY = "city"


#: Roles whose tokens must name a center (their data is one center's).
CENTER_SCOPED = frozenset({Role.CLERK, Role.SUPERVISOR, Role.RESIDENT})
STAFF = (Role.CLERK, Role.SUPERVISOR)


@dataclass(frozen=True)
class Principal:
    """The verified caller. ``center_id`` None: every center (analyst, ops)."""

    sub: str
    role: Role
    center_id: str | None = None
    case_id: UUID | None = None
    token_id: str = ""

    @property
    def actor(self) -> str:
        """What the envelope records as ``actor``: the subject, never a name."""
        return self.sub


_CALLER: contextvars.ContextVar[Principal | None] = contextvars.ContextVar(
    "sixstep_caller", default=None)


def current_caller() -> Principal | None:
    """The principal of the request (or job) being handled here, if any (the write path checks
    an aggregate's center against it)."""
    return _CALLER.get()


class acting_as:  # read as a verb in a with statement, as it always was
    """Run work as ``principal``: a request, for as long as it is handled (``shared.http.auth``),
    or work they began that goes on outside their request (a background fan-out of what they
    published). The write path checks it as it checks a request's.

    ``with acting_as(principal):`` sets the caller and resets it at the exit, whatever ends
    the block. A plain class, not a ``@contextmanager`` generator: every request of every
    service enters one, and the generator's wrapper (its ``__init__``, ``__enter__``'s
    ``next``, ``__exit__``'s second ``next`` and ``StopIteration``) was ~2.5 % of intake's
    request path in-process (py-spy of ``intake_asgi_paired.py --child``).

    Entered once, as the generator was: a second entry (one kept and used again, inside
    itself or by another task) is refused before it sets anything. Taken, it overwrote the
    first entry's reset token, and the first exit then failed and left the principal as the
    caller of whatever its task did next."""

    __slots__ = ("_principal", "_reset")

    def __init__(self, principal: Principal | None) -> None:
        self._principal = principal
        self._reset: contextvars.Token[Principal | None] | None = None

    def __enter__(self) -> Principal | None:
        if self._reset is not None:
            raise RuntimeError("acting_as is entered once: write `with acting_as(principal):`"
                               " where the work is done")
        self._reset = _CALLER.set(self._principal)
        return self._principal

    def __exit__(self, *exc: object) -> None:
        _CALLER.reset(self._reset)  # type: ignore[arg-type]  # set by __enter__

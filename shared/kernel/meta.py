"""``Meta``: the envelope parts every event records besides its payload, built one way.

``actor`` (the authenticated caller, or ``system:<worker>``), ``occurred_at`` (the command's
own moment, or the service's clock), ``causation_id`` (the Idempotency-Key, or the upstream
event a consumer acts on), ``correlation_id``, and where the event happened: ``center_id``,
``case_id`` (filled from the aggregate by ``shared.eventstore.command_path``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Protocol

from pydantic import AfterValidator, Field

from shared.kernel.privacy.patterns import personal_number_in

Meta = dict[str, Any]

SYSTEM = "system"
"""The actor of what the services' own workers record: ``system`` or ``system:<worker>``."""


def by_a_worker(actor: str) -> bool:
    """Whether ``actor`` is one of the services' own workers (``system``, ``system:rules``):
    no token may name one (``shared.security.tokens``), as what they copy is not checked again
    (``shared.kernel.scrubbing``)."""
    return actor == SYSTEM or actor.startswith(SYSTEM + ":")

COMMAND_DIGEST = "command_digest"
"""Meta key of a command's keyed digest (``shared.eventstore.command_path.CommandDigests``):
kept with the command's events in the service's own store, so that its Idempotency-Key sent
again with another command is told apart from a retry. Never on the bus: the envelope takes
only the meta fields it names (``shared.eventstore.outbox``)."""

CORRELATION_ID = r"^[A-Za-z0-9_.:\-]{1,128}$"
"""What a correlation id may hold, from a header or a command's body: it is recorded on every
event of the visit and bound into every log line, so never free text (a name, an address)."""


def _holds_no_personal_number(value: str) -> str:
    if (what := personal_number_in(value)) is not None:
        raise ValueError(f"a correlation id must not hold {what}: it is recorded on every "
                         "event of the visit; send an id of the app's own")
    return value


CorrelationId = Annotated[str, Field(pattern=CORRELATION_ID),
                          AfterValidator(_holds_no_personal_number)]
"""A command's ``correlation_id``: ``CORRELATION_ID``, and no phone number or ID number in it
(``shared.kernel.privacy.patterns.personal_number_in``): 422 otherwise."""


class Stamped(Protocol):
    """What a command may say of itself: when it happened, and what it belongs with."""

    @property
    def occurred_at(self) -> datetime | None: ...

    @property
    def correlation_id(self) -> str | None: ...


def meta_for(actor: str, key: str | None, now: datetime, command: Stamped | None = None,
             **where: Any) -> Meta:
    """The meta of a command run by ``actor`` under ``key`` at ``now`` (the command's own
    ``occurred_at`` when it gives one); ``where``: ``center_id``, ``case_id`` when known."""
    return {
        "actor": actor,
        "occurred_at": (command.occurred_at if command is not None else None) or now,
        "causation_id": key,
        "correlation_id": command.correlation_id if command is not None else None,
        **where,
    }

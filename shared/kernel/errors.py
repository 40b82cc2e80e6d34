"""Errors a command can end with; each maps to one HTTP status and a machine-readable code."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True, slots=True)
class OutOfReach:
    """What a refusal kept from its caller, for the operators only: the caller named a thing
    of another center (or of another case than a resident's token is bound to). The answer
    says nothing of it (a 404 worded as for none, or a 403 naming nothing of the owner);
    where it is answered (``shared.http.errors``) it is logged, without personal data, and
    counted, so that a clerk of one center probing another's ids leaves a trace.

    ``what``: the kind of thing ("case", "survey", "center" for a filter or body naming
    another center); ``id``: its opaque id, None for a filter; ``owner_center``: whose it is
    (the center asked, for a filter)."""

    what: str
    id: str | None
    owner_center: str | None
    reason: Literal["another_center", "another_case"] = "another_center"


class CommandError(Exception):
    status: int = 400
    code: str = "bad_request"
    #: Seconds a client should wait before trying again (the ``Retry-After`` header), if any.
    retry_after: int | None = None
    #: Set on a refusal of something out of the caller's reach (``OutOfReach``): never in
    #: the answer, logged and counted where the answer is made.
    out_of_reach: OutOfReach | None = None

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotFound(CommandError):
    status = 404
    code = "not_found"


class Forbidden(CommandError):
    """The caller's token is scoped to another center (or case) than the aggregate's."""

    status = 403
    code = "forbidden_center"


class VersionConflict(CommandError):
    """Someone else wrote first: the caller's view of the aggregate is stale."""

    status = 409
    code = "version_conflict"


class RuleViolated(CommandError):
    """The command breaks one of the method's rules in the aggregate's current state."""

    status = 409
    code = "rule_violated"


class InvalidCommand(CommandError):
    status = 422
    code = "invalid_command"


class PersonalDataInCode(InvalidCommand):
    """An id in the command (a clerk's, a counter's, a ticket number) holds a phone number or an
    ID number: ids are recorded as they are, on the bus, in the logs and the exports."""

    code = "personal_data_in_code"


class FreeTextUnscrubbable(InvalidCommand):
    """The scrubber failed on a free-text field a person typed (a defect of its own, warned as
    ``RedactionFailed``): nothing is recorded, neither the text nor a blank for it, and the
    person can say it otherwise. ``details.field`` names the field; nothing of the text."""

    code = "free_text_unscrubbable"


class IdempotencyKeyReused(CommandError):
    status = 422
    code = "idempotency_key_reused"


class Unavailable(CommandError):
    """Nothing was recorded: the store could not take the write (down, or not within
    ``WRITE_TIMEOUT_S``, and the command was withdrawn before it was sent). Retry with the
    same Idempotency-Key."""

    status = 503
    code = "store_unavailable"
    retry_after = 1


class OutcomeUnknown(Unavailable):
    """The write was sent to the store, but its commit was not confirmed within
    ``WRITE_TIMEOUT_S``: it may or may not be recorded. A retry with the same
    Idempotency-Key returns the first answer if it was recorded, and records it if not."""

    code = "outcome_unknown"


class StatementTimedOut(Unavailable):
    """Nothing was recorded: PostgreSQL ended a statement of the write
    (``DB_STATEMENT_TIMEOUT_S``: a lock held elsewhere, a slow query) and rolled its
    transaction back. Retry with the same Idempotency-Key."""

    code = "statement_timed_out"
    retry_after = 5


class AlreadyDoneError(Exception):
    """Not a failure: the command's Idempotency-Key was already applied to this aggregate.

    Raised by a domain ``check_new_command``; the write path answers with the earlier result.
    """

    def __init__(self, aggregate_id: Any, version: int) -> None:
        super().__init__(f"{aggregate_id}@{version}")
        self.aggregate_id = aggregate_id
        self.version = version

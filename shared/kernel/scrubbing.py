"""The one place free text is scrubbed: every event an aggregate records, before it exists.

Every sixstep aggregate is a :class:`ScrubsFreeText` (through ``shared.kernel.idempotency``'s
``RemembersCommands``). When a command method records an event, the event's arguments pass
here first: each field its contract marks as free text (``shared.contracts.fields``) goes
through :func:`shared.kernel.privacy.redact`, with the resident the command is about when the
application put one in the command's meta (``meta[KNOWN_PERSON]``, see below). Only then is the
event built, applied to the aggregate and, with the aggregate, saved. So

* no domain method scrubs anything itself, and a new free-text field is scrubbed as soon as
  its contract marks it (``tests/unit/test_free_text.py`` refuses an unmarked ``str`` field);
* the aggregate's own state is built from the scrubbed text, exactly as it is when the
  aggregate is loaded again from the store (a comment kept by a survey and cut short into a
  rectification's summary cannot keep half a phone number);
* the ids its contract marks as codes (a clerk's, a counter's, a ticket number: never
  scrubbed) are checked too, when a caller sent them: one that holds a phone number or an ID
  number (``tel13812345678``, ``clerk_id: 13812345678``) refuses the command with a 422
  ``personal_data_in_code`` naming the field, before anything is recorded. What the services'
  own workers (``system:...``) copy from events already recorded is not checked again, nor is
  a code the aggregate already holds (its state is what its events recorded): a case opened
  before the check by a clerk whose subject was their phone number names them as
  ``from_clerk`` when a supervisor hands it over, and refusing that would leave the case with
  them for good while keeping nothing off the stream;
* the known person travels in memory only: it is taken out of the meta before the event is
  built, so it is never stored (and were it ever left in, the store could not encode it and
  the write would fail rather than keep it).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from eventsourcing.domain import Aggregate

from shared.contracts import REGISTRY
from shared.contracts.fields import CODE, field_marks, free_text_fields
from shared.kernel.errors import PersonalDataInCode
from shared.kernel.meta import by_a_worker
from shared.kernel.privacy import KnownPerson, redact
from shared.kernel.privacy.patterns import personal_number_in

KNOWN_PERSON = "known_person"
"""Meta key for the :class:`KnownPerson` a command is about; never recorded."""


@cache
def free_text_of(type_name: str) -> tuple[str, ...]:
    """The free-text fields of an event type (none for a type without a contract)."""
    if type_name not in REGISTRY:
        return ()
    return free_text_fields(REGISTRY.get(type_name).payload)


@cache
def codes_of(type_name: str) -> tuple[str, ...]:
    """The fields of an event type its contract marks as codes."""
    if type_name not in REGISTRY:
        return ()
    payload = REGISTRY.get(type_name).payload
    return tuple(name for name, info in payload.model_fields.items()
                 if CODE.kind in field_marks(info))


def check_codes(type_name: str, fields: dict[str, Any],
                recorded: Callable[[str], bool] | None = None) -> None:
    """A caller's ids hold no phone or ID number (``PersonalDataInCode``, 422); ``recorded``:
    whether the aggregate holds a code already (asked only of one that holds such a number)."""
    meta = fields.get("meta")
    actor = meta.get("actor") if isinstance(meta, dict) else None
    if not isinstance(actor, str) or by_a_worker(actor):
        return
    for name in codes_of(type_name):
        value = fields.get(name)
        for code in (value if isinstance(value, list | tuple) else (value,)):
            if isinstance(code, str) and (held := personal_number_in(code)) is not None \
                    and (recorded is None or not recorded(code)):
                raise PersonalDataInCode(
                    f"{name} must not hold {held}: ids are recorded as they are, on every "
                    "event, in the logs and the exports; send the id sixstep knows",
                    field=name, holds=held)


def scrub_fields(type_name: str, fields: dict[str, Any],
                 recorded: Callable[[str], bool] | None = None) -> dict[str, Any]:
    """An event's arguments with every free-text field scrubbed and the known person taken
    out of the meta (a new dict; ``fields`` is left as it was). ``recorded``: see
    :func:`check_codes`."""
    check_codes(type_name, fields, recorded)
    meta = fields.get("meta")
    known: KnownPerson | None = None
    out = dict(fields)
    if isinstance(meta, dict) and KNOWN_PERSON in meta:
        known = meta[KNOWN_PERSON]
        out["meta"] = {k: v for k, v in meta.items() if k != KNOWN_PERSON}
    for name in free_text_of(type_name):
        value = out.get(name)
        if isinstance(value, str):
            out[name] = redact(value, known)
        elif isinstance(value, list | tuple):
            out[name] = [redact(v, known) if isinstance(v, str) else v for v in value]
    return out


class ScrubsFreeText(Aggregate):
    """An aggregate whose events are scrubbed of personal data before they are built."""

    def trigger_event(self, event_class: type[Any], **kwargs: Any) -> None:
        super().trigger_event(event_class,
                              **scrub_fields(event_class.__name__, kwargs, self._holds))

    def _holds(self, code: str) -> bool:
        """Whether the aggregate's state holds ``code`` (as a value, or in a list, a set or a
        dict of it): its events recorded it already."""
        for held in vars(self).values():
            if isinstance(held, str):
                if held == code:
                    return True
            elif isinstance(held, list | tuple | set | frozenset):
                if code in held:
                    return True
            elif isinstance(held, dict) and (code in held or code in held.values()):
                return True
        return False

    @classmethod
    def _create(cls, event_class: type[Any], *, id: Any = None,
                **kwargs: Any) -> Any:
        return super()._create(event_class, id=id,
                               **scrub_fields(event_class.__name__, kwargs))

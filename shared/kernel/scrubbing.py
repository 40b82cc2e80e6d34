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
  the write would fail rather than keep it). So does what intake answered for a service
  that never sees the vault (``meta[SCRUBBED_BY_INTAKE]``, an :class:`IntakeScrubbed`:
  follow-up's and feedback's free text about a case, sent to intake before the command,
  ``shared.http.case_texts``): each text is replaced by intake's scrubbed copy first, then
  the patterns run over it as over any other.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from contextlib import nullcontext
from enum import Enum
from functools import cache
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.domain import Aggregate, BaseAggregate
from pydantic import BaseModel

from shared.contracts import REGISTRY
from shared.contracts.fields import CODE, field_marks, free_text_fields
from shared.kernel.applying import trigger
from shared.kernel.creation import creator
from shared.kernel.errors import FreeTextUnscrubbable, PersonalDataInCode
from shared.kernel.meta import by_a_worker
from shared.kernel.privacy import KnownPerson, redact
from shared.kernel.privacy.markers import REDACTED_TEXT
from shared.kernel.privacy.patterns import personal_number_in
from shared.kernel.privacy.redaction import Unscrubbable, refusing

KNOWN_PERSON = "known_person"
"""Meta key for the :class:`KnownPerson` a command is about; never recorded."""
SCRUBBED_BY_INTAKE = "scrubbed_by_intake"
"""Meta key for a command's texts as intake scrubbed them of the case's resident (raw text ->
scrubbed text), for a service that never sees the vault (``shared.http.case_texts``); in
memory only, never recorded, as :data:`KNOWN_PERSON`."""
_IN_MEMORY = (KNOWN_PERSON, SCRUBBED_BY_INTAKE)


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


class _Clean:
    """Values a check found clean, remembered (the check a function of the value alone): only
    clean ones are kept, so nothing personal stays in memory; emptied when ``most`` are held,
    and when the check is another function than the one whose answers it holds (a test's
    stand-in for the check as it was before it existed)."""

    __slots__ = ("by", "held", "most")

    def __init__(self, held: set[str], most: int, by: Callable[..., Any]) -> None:
        self.held, self.most, self.by = held, most, by

    def known(self, value: str, check: Callable[..., Any]) -> bool:
        """Whether ``check`` found ``value`` clean before."""
        if check is not self.by:
            self.held.clear()
            self.by = check
            return False
        return value in self.held

    def keep(self, value: str) -> None:
        if len(self.held) >= self.most:
            self.held.clear()
        self.held.add(value)


#: Codes found to hold no personal number (``personal_number_in`` is a function of the text
#: alone): a center's, a counter's, a clerk's, a service item's come again on every write, and
#: looking one up is ~20 x cheaper than looking at it again (its regular expressions were ~17 %
#: of building and encoding an ``OpenCase``).
_CLEAN: set[str] = set()
_CLEAN_MAX = 20_000
_CODES = _Clean(_CLEAN, _CLEAN_MAX, personal_number_in)
_SEQUENCE = (list, tuple)


def _holds_number(code: str) -> str | None:
    """``personal_number_in(code)``, remembered for a clean code."""
    check = personal_number_in
    if _CODES.known(code, check):
        return None
    held = check(code)
    if held is None:
        _CODES.keep(code)
    return held


#: Free texts found to hold nothing personal when no resident is known to the command
#: (``redact(text)`` gave ``text`` back; it is a function of the text alone then): the words
#: the services' own rules write come again on every event they record (a lapsed follow-up's
#: ``LAPSED``, "case resolved", "case reopened"), and the redactor's rules over one were ~15 %
#: of the follow-up rules' writer thread (stop 49's py-spy). Only short ones
#: (``_CLEAN_TEXT_LONGEST``), at most ``_CLEAN_TEXTS_MAX`` (~1 MB: staff's short clean notes
#: come and go, the rules' few words come again at once).
_CLEAN_TEXTS: set[str] = set()
_CLEAN_TEXT_LONGEST = 200
_CLEAN_TEXTS_MAX = 2_000
_TEXTS = _Clean(_CLEAN_TEXTS, _CLEAN_TEXTS_MAX, redact)


def _redacted(text: str) -> str:
    """``redact(text)`` with no known person, remembered for a short clean text."""
    check = redact
    if _TEXTS.known(text, check):
        return text
    out = check(text)
    if out == text and len(text) <= _CLEAN_TEXT_LONGEST:
        _TEXTS.keep(text)
    return out


def _typed_by_a_person(fields: dict[str, Any]) -> bool:
    """Whether the command's actor is a caller (a clerk, a supervisor, a resident's link), whose
    ids are checked (``check_codes``) and who can be asked to say a text otherwise, not one of
    the services' own workers (what they copy was recorded already: there is no one to ask)."""
    meta = fields.get("meta")
    actor = meta.get("actor") if isinstance(meta, dict) else None
    return isinstance(actor, str) and not by_a_worker(actor)


def check_codes(type_name: str, fields: dict[str, Any],
                recorded: Callable[[str], bool] | None = None) -> None:
    """A caller's ids hold no phone or ID number (``PersonalDataInCode``, 422); ``recorded``:
    whether the aggregate holds a code already (asked only of one that holds such a number)."""
    if not _typed_by_a_person(fields):
        return
    for name in codes_of(type_name):
        value = fields.get(name)
        for code in (value if isinstance(value, _SEQUENCE) else (value,)):
            if isinstance(code, str) and (held := _holds_number(code)) is not None \
                    and (recorded is None or not recorded(code)):
                raise PersonalDataInCode(
                    f"{name} must not hold {held}: ids are recorded as they are, on every "
                    "event, in the logs and the exports; send the id sixstep knows",
                    field=name, holds=held)


def scrub_fields(type_name: str, fields: dict[str, Any],
                 recorded: Callable[[str], bool] | None = None) -> dict[str, Any]:
    """An event's arguments with every free-text field scrubbed and the known person taken
    out of the meta (a new dict; ``fields`` is left as it was). ``recorded``: see
    :func:`check_codes`.

    A text a caller typed that the scrubber fails on (``RedactionFailed``) refuses the command
    (``FreeTextUnscrubbable``, 422 naming the field): the clerk still has the words on the
    page and can rephrase them, where a blank (``[文字已隐去]``, what a log line, a dead letter
    or an export gets) would lose the note for good. A worker's copy still fails closed. So
    does a text intake scrubbed for follow-up or feedback (``SCRUBBED_BY_INTAKE``): intake's
    answer for it is the blank, which refuses the caller's command the same way."""
    check_codes(type_name, fields, recorded)
    ask_again = _typed_by_a_person(fields)
    meta = fields.get("meta")
    known: KnownPerson | None = None
    by_intake: IntakeScrubbed | None = None
    out = dict(fields)
    if isinstance(meta, dict) and any(k in meta for k in _IN_MEMORY):
        known = meta.get(KNOWN_PERSON)
        by_intake = meta.get(SCRUBBED_BY_INTAKE)
        out["meta"] = {k: v for k, v in meta.items() if k not in _IN_MEMORY}

    def scrubbed(text: str) -> str:
        if not known and not by_intake:
            return _redacted(text)
        if by_intake:
            said = by_intake.apply(text)
            if ask_again and said == REDACTED_TEXT != text:
                raise Unscrubbable("at intake")
            text = said
        return redact(text, known)

    with refusing() if ask_again else nullcontext():
        for name in free_text_of(type_name):
            value = out.get(name)
            try:
                if isinstance(value, str):
                    out[name] = scrubbed(value)
                elif isinstance(value, list | tuple):
                    out[name] = [scrubbed(v) if isinstance(v, str) else v for v in value]
            except Unscrubbable:
                raise _unscrubbable(name) from None
    return out


def _unscrubbable(field: str) -> FreeTextUnscrubbable:
    return FreeTextUnscrubbable(
        f"{field}: the scrubber could not read this text for personal data; "
        "nothing was recorded: say it otherwise and send it again", field=field)


def check_scrubbable(field: str, text: str) -> None:
    """``FreeTextUnscrubbable`` now for a caller's text the scrubber fails on, before a use
    case records a first step of a command whose later step carries the text: Open311 opens
    the case, then hears the description (redteam115: the case stayed opened, described and
    never heard, and the words said again opened a second one)."""
    try:
        with refusing():
            _redacted(text)
    except Unscrubbable:
        raise _unscrubbable(field) from None


class IntakeScrubbed:
    """The meta value of :data:`SCRUBBED_BY_INTAKE`: each text of a command that intake
    changed, as intake scrubbed it, longest first (a text that holds another is replaced whole
    before the one it holds). Like :class:`KnownPerson`, its ``repr`` shows nothing and the
    store cannot encode it: were it ever left in a meta, the write would fail, not keep it."""

    __slots__ = ("pairs",)

    def __init__(self, raw: Iterable[str], clean: Iterable[str]) -> None:
        changed = {r: c for r, c in zip(raw, clean, strict=True) if r and r != c}
        self.pairs: tuple[tuple[str, str], ...] = tuple(
            sorted(changed.items(), key=lambda p: len(p[0]), reverse=True))

    def __repr__(self) -> str:
        return "IntakeScrubbed(<hidden>)"

    def __bool__(self) -> bool:
        return bool(self.pairs)

    def apply(self, text: str) -> str:
        for raw, clean in self.pairs:
            if raw in text:
                text = text.replace(raw, clean)
        return text


class ScrubsFreeText(Aggregate):
    """An aggregate whose events are scrubbed of personal data before they are built."""

    def trigger_event(self, event_class: type[Any], **kwargs: Any) -> None:
        """The library's ``trigger_event`` of the scrubbed arguments, applied through
        ``shared.kernel.applying.trigger`` (the same steps, the apply's lookups once per
        class) when the class lets it (:func:`_triggers_leanly`), else ``super()``'s."""
        fields = scrub_fields(event_class.__name__, kwargs, self._holds)
        cls = type(self)
        lean = _lean_triggers.get(cls)
        if lean is None:
            lean = _triggers_leanly(cls)
        if lean:
            trigger(self, event_class, fields)
        else:
            super().trigger_event(event_class, **fields)

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
        """The library's ``_create`` of the scrubbed arguments; built by
        ``shared.kernel.creation`` (the same steps, its lookups once per class) when it can
        and the class lets it (:func:`_creates_leanly`)."""
        fields = scrub_fields(event_class.__name__, kwargs)
        lean = _lean_creates.get(cls)
        if lean is None:
            lean = _creates_leanly(cls)
        if lean and isinstance(id, UUID) and (create := creator(cls, event_class)) is not None:
            return create(id, fields)
        return super()._create(event_class, id=id, **fields)


_lean_triggers: dict[type, bool] = {}
_lean_creates: dict[type, bool] = {}


def _triggers_leanly(cls: type) -> bool:
    """Whether ``applying.trigger`` records ``cls``'s events as ``super().trigger_event``
    would: no explicit ``TOPIC`` (the library checks its registration) and the library's own
    ``trigger_event`` next after :class:`ScrubsFreeText` (:func:`_library_follows`)."""
    lean = _lean_triggers[cls] = (not getattr(cls, "TOPIC", None)
                                  and _library_follows(cls, "trigger_event"))
    return lean


def _creates_leanly(cls: type) -> bool:
    """Whether ``shared.kernel.creation`` may build ``cls`` for ``super()._create``: the
    library's own ``_create`` next after :class:`ScrubsFreeText` (:func:`_library_follows`)."""
    lean = _lean_creates[cls] = _library_follows(cls, "_create")
    return lean


def _library_follows(cls: type, name: str) -> bool:
    """Whether ``super()``'s ``name`` from :class:`ScrubsFreeText` in ``cls``'s MRO is the
    library's own (``BaseAggregate``'s): a mixin's there (an audit or stamping mixin placed
    after the scrubber) is what the library's path runs, and the lean path would skip it."""
    mro = cls.__mro__
    for klass in mro[mro.index(ScrubsFreeText) + 1:]:
        if name in klass.__dict__:
            return klass is BaseAggregate
    return False


class CaseTexts(Protocol):
    """Port: free text about a case, as intake scrubs it of the case's resident
    (``shared.http.case_texts``), or None when intake does not answer."""

    def scrubbed(self, case_id: UUID, texts: list[str],
                 about: str = "case") -> Awaitable[list[str] | None]:
        """``about="resident"``: ``case_id`` is a resident's, about whom the texts are (an
        aggregate that names a resident and no case)."""
        ...


def said_in(command: Any) -> list[str]:
    """The texts a command carries (its ``str`` fields and lists of them, no enum): what a
    service that never sees the vault sends to intake before the command (codes among them
    come back as they went)."""
    fields = command.model_dump() if isinstance(command, BaseModel) else {}
    out: list[str] = []
    for value in fields.values():
        for text in (value if isinstance(value, list | tuple) else (value,)):
            if isinstance(text, str) and not isinstance(text, Enum) and text.strip():
                out.append(text)
    return out


async def scrubbing_by_intake(case_texts: CaseTexts | None, case_id: UUID | None,
                              texts: list[str], meta: dict[str, Any],
                              about: str = "case") -> None:
    """Put in ``meta`` what intake answers for ``texts`` about ``case_id`` (``about``:
    ``"resident"`` when it is a resident's id) (:data:`SCRUBBED_BY_INTAKE`); nothing when
    there is nothing to ask or no answer."""
    if case_texts is None or case_id is None or not texts:
        return
    clean = await case_texts.scrubbed(case_id, texts, about)
    if clean is not None and (scrubbed := IntakeScrubbed(texts, clean)):
        meta[SCRUBBED_BY_INTAKE] = scrubbed

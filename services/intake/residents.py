"""The resident vault's HTTP API (``vault.py``) and its audit trail.

    POST   /residents                 register (or find) a resident -> opaque resident_id
    POST   /residents/lookup          resident_id for an ID number (in the body, never the URL)
    GET    /residents/{id}?purpose=   the personal data, the reason recorded
    GET    /residents/{id}/masked?purpose=  name and phone masked, for the counter (audited)
    PATCH  /residents/{id}            change phone, address, contact channel or consent
    DELETE /residents/{id}            erasure (PIPL art. 47): the keys are destroyed
    PUT    /residents/{id}/facts      facts the resident declares (special work type, lives
                                      alone, disability, chronic illness), kept with consent
    POST   /residents/{id}/hints      eligibility hints: items the resident may be entitled to
    POST   /hints/{id}/taken          a hint taken up (the resident applies)
    POST   /hints/{id}/dismissed      a hint dismissed
    GET    /audit                     who reached which resident, when, why, on which standing
                                      (a supervisor: their center; the city: every center)

Every access is audited; the ID number travels in request bodies only, so it cannot end up in
an access log or a proxy's URL log. Who may reach a resident of another center is the
presence rule (``presence.py``); lookups by ID number are rate-limited (``lookup_limits.py``).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from services.intake import commands as c
from services.intake.application import Residents
from services.intake.hints import Hints
from services.intake.idnumber import FULL_WIDTH, issued_today, normalize, problem_with
from services.intake.lookup_limits import LookupGuard
from services.intake.masking import mask_name, mask_phone
from services.intake.vault import Access, AuditAction, ResidentData, Vault
from shared.catalogue import LocalizedText
from shared.catalogue.eligibility import FACTS
from shared.http.auth import Staff, Supervisor, check_center, require_roles
from shared.http.correlation import CORRELATION_HEADER, valid_correlation
from shared.http.dependencies import IdempotencyKey, Write, WrittenPublic
from shared.http.errors import error_responses
from shared.kernel.invisible import INVISIBLE
from shared.kernel.typed import Typed
from shared.security.principals import Principal, Role

ERRORS = error_responses(400, 401, 403, 404, 410, 422, 429, 503)
PHONE = r"^(?:1[3-9][0-9]{9}|0[0-9]{2,3}-?[0-9]{7,8})$"  # ASCII digits (after _typed_phone)
ContactChannel = Literal["phone", "sms", "home_visit", "counter"]
Purpose = Annotated[str, Query(min_length=3, max_length=200, description=(
    "Why the data is read (recorded in the audit trail), e.g. 'follow-up call'."))]


async def _vault(request: Request) -> Vault:
    return request.app.state.vault


async def _residents(request: Request) -> Residents:
    return request.app.state.residents


async def _limited_staff(request: Request, staff: Staff) -> Principal:
    """A clerk or supervisor who has not tried too many ID numbers too fast (429)."""
    guard: LookupGuard = request.app.state.lookup_guard
    guard.check(staff)
    return staff


async def _hints(request: Request) -> Hints:
    return request.app.state.hints


VaultDep = Annotated[Vault, Depends(_vault)]
HintsDep = Annotated[Hints, Depends(_hints)]
ResidentsDep = Annotated[Residents, Depends(_residents)]
LimitedStaff = Annotated[Principal, Depends(_limited_staff)]
AuditReader = Annotated[Principal, Depends(require_roles(Role.SUPERVISOR, Role.CITY))]

residents = APIRouter(prefix="/residents", tags=["residents"], responses=ERRORS)
audit = APIRouter(prefix="/audit", tags=["audit"], responses=ERRORS)
hints = APIRouter(prefix="/hints", tags=["hints"], responses=ERRORS)


def _checked_id_number(value: str) -> str:
    """The number normalised, or why it is not one (never echoing it). A birth date after
    today is the route's to refuse (``_born_by_today``): a validator has no clock."""
    if (why := problem_with(value)) is not None:
        raise ValueError(why)
    return normalize(value)


def _born_by_today(number: str, request: Request) -> None:
    """422 ``validation_failed`` on ``id_number``, as the body's other checks answer it, for
    a birth date after China's today on the service's clock (``issued_today``: it was the
    wall clock, which a service whose clock tests set, or a clock set for a replayed day,
    disagreed with)."""
    today = issued_today(request.app.state.runtime.clock.now())
    if (why := problem_with(number, today)) is not None:
        raise RequestValidationError([{"loc": ("body", "id_number"),
                                       "msg": f"Value error, {why}", "type": "value_error"}])


def _typed(value: Any) -> Any:
    """An ID number as typed, before its length is checked: full-width digits folded and the
    spaces and dashes between its groups dropped (``normalize``)."""
    return normalize(value) if isinstance(value, str) else value


_SPACES = re.compile(rf"[\s{INVISIBLE}]+")


def _typed_phone(value: Any) -> Any:
    """A phone number as typed: full-width digits and dashes folded to ASCII, spaces dropped
    (``138 1234 5678``, ``１３８１２３４５６７８``); the pattern then checks ASCII digits only, so
    nothing an SMS gateway cannot dial is kept."""
    return _SPACES.sub("", value.translate(FULL_WIDTH)) if isinstance(value, str) else value


IdNumber = Annotated[str, BeforeValidator(_typed), AfterValidator(_checked_id_number)]
Phone = Annotated[str, BeforeValidator(_typed_phone)]


class Consent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    contact: bool = Field(description="Agrees to be contacted for follow-ups.")
    surveys: bool = Field(False, description="Agrees to be asked for feedback.")
    given_at: datetime | None = None


class ResidentCreate(Typed):

    name: str = Field(min_length=1, max_length=64)
    id_number: IdNumber = Field(min_length=18, max_length=18, description=(
        "The 18-character resident identity number; its check digit is verified."))
    phone: Phone = Field(pattern=PHONE, description=(
        "Mobile (11 digits) or landline; full-width digits and spaces are taken as typed."))
    address: str = Field("", max_length=200)
    contact_channel: ContactChannel = "phone"
    consent: Consent


class ResidentLookup(Typed):

    id_number: IdNumber = Field(min_length=18, max_length=18)
    purpose: str = Field(min_length=3, max_length=200)


class ResidentChange(Typed):
    """What may change about a resident, in person: omitted fields stay as they are."""

    phone: Phone | None = Field(None, pattern=PHONE)
    address: str | None = Field(None, max_length=200)
    contact_channel: ContactChannel | None = None
    consent: Consent | None = None

    @model_validator(mode="after")
    def _something(self) -> ResidentChange:
        if not self.model_fields_set:
            raise ValueError("give at least one of phone, address, contact_channel, consent")
        if any(getattr(self, f) is None for f in self.model_fields_set):
            raise ValueError("a field given cannot be null; leave it out to keep it")
        return self


class ResidentChanged(BaseModel):
    resident_id: UUID
    changed: list[str]


class ResidentRef(BaseModel):
    resident_id: UUID
    created: bool = False


class ResidentPublic(BaseModel):
    resident_id: UUID
    center_id: str
    status: Literal["on_file", "erased"]
    registered_at: datetime
    erased_at: datetime | None = None
    name: str | None = None
    id_number: str | None = None
    phone: str | None = None
    address: str | None = None
    contact_channel: str | None = None
    consent: Consent | None = None
    standing: Literal["registration", "presence_grant", "case"] | None = Field(None, description=(
        "Why the caller may read: registered at their center, a presence grant (their "
        "lookup by the full ID number), or a case at their center opened under either."))


class ResidentMasked(BaseModel):
    """What the counter shows to recognise a returning resident (王*英 · 139****5678)."""

    resident_id: UUID
    status: Literal["on_file", "erased"]
    name: str | None = Field(None, description="First and last character, the rest starred.")
    phone: str | None = Field(None, description="First three and last four digits.")
    consent: Consent | None = None


def _known_facts(value: list[str]) -> list[str]:
    unknown = sorted(set(value) - set(FACTS))
    if unknown:
        raise ValueError(f"unknown facts {unknown}; known: {', '.join(FACTS)}")
    return sorted(set(value))


class FactsDeclared(BaseModel):
    """What the resident declares about themselves, to be kept in the vault (sealed) so that
    the counter can suggest what they may be entitled to and the team can care for them.
    The list replaces what was kept; an empty list keeps nothing."""

    model_config = ConfigDict(extra="forbid")

    facts: Annotated[list[str], AfterValidator(_known_facts)] = Field(
        max_length=len(FACTS), description=f"Any of: {', '.join(FACTS)}.")
    consent: bool = Field(description="The resident agreed to have these facts kept.")

    @model_validator(mode="after")
    def _consented(self) -> FactsDeclared:
        if self.facts and not self.consent:
            raise ValueError("declared facts are kept only with the resident's consent")
        return self


class FactsKept(BaseModel):
    resident_id: UUID
    facts: list[str]


class HintPublic(BaseModel):
    """An item the resident may be entitled to, why, and what came of it."""

    hint_id: UUID
    rule_id: str
    rule_version: int
    service_item: str
    name_zh: str
    name_en: str
    because: LocalizedText = Field(description="What made the rule fire, e.g. 'age 53, "
                                               "special work type declared'.")
    reason: LocalizedText = Field(description="The rule's reason, in plain words.")
    policy_basis: LocalizedText
    status: Literal["shown", "taken", "dismissed"]
    version: int


class HintList(BaseModel):
    resident_id: UUID
    items: list[HintPublic]


class Erased(BaseModel):
    resident_id: UUID
    erased_at: datetime


class AuditEntry(BaseModel):
    audit_id: int
    at: datetime
    actor: str
    role: str
    actor_center: str | None
    action: str
    resident_id: UUID | None
    resident_center: str | None
    purpose: str
    fields: list[str]
    outcome: str
    correlation_id: str | None
    standing: str | None = None
    cross_center: bool = False


class AuditPage(BaseModel):
    items: list[AuditEntry]
    next_before: int | None


def _access(principal: Any, purpose: str, request: Request) -> Access:
    return Access(principal, purpose,
                  valid_correlation(request.headers.get(CORRELATION_HEADER)))


@residents.post("", response_model=ResidentRef, status_code=status.HTTP_201_CREATED,
                summary="Register a resident (an ID number already on file: their id, 200)")
async def register(body: ResidentCreate, use_cases: ResidentsDep, staff: LimitedStaff,
                   request: Request, response: Response) -> ResidentRef:
    _born_by_today(body.id_number, request)
    data = ResidentData(name=body.name, id_number=body.id_number, phone=body.phone,
                        address=body.address, contact_channel=body.contact_channel,
                        consent=body.consent.model_dump(mode="json"))
    registered = await use_cases.register(data, _access(staff, "registration", request))
    if not registered.created:
        response.status_code = status.HTTP_200_OK
    return ResidentRef(resident_id=registered.resident_id, created=registered.created)


@residents.post("/lookup", response_model=ResidentRef,
                summary="Find a returning resident by ID number (audited; at another center "
                        "than theirs, a presence grant for the caller)")
async def lookup(body: ResidentLookup, vault: VaultDep, staff: LimitedStaff,
                 request: Request) -> ResidentRef:
    _born_by_today(body.id_number, request)
    resident_id = await vault.lookup(body.id_number, _access(staff, body.purpose, request))
    return ResidentRef(resident_id=resident_id)


@residents.get("/{resident_id}", response_model=ResidentPublic,
               summary="A resident's personal data (audited with the purpose given)")
async def read(resident_id: UUID, purpose: Purpose, vault: VaultDep, staff: Staff,
               request: Request) -> ResidentPublic:
    found = await vault.read(resident_id, _access(staff, purpose, request))
    out = ResidentPublic(resident_id=found.resident_id, center_id=found.center_id,
                         status="erased" if found.erased_at else "on_file",
                         registered_at=found.registered_at, erased_at=found.erased_at,
                         standing=found.standing.value if found.standing else None)
    if found.data is not None:
        d = found.data
        out = out.model_copy(update={
            "name": d.name, "id_number": d.id_number, "phone": d.phone, "address": d.address,
            "contact_channel": d.contact_channel, "consent": Consent(**d.consent)})
    return out


@residents.get("/{resident_id}/masked", response_model=ResidentMasked,
               summary="A resident's name and phone, masked, for the counter to recognise them "
                       "(audited as a read, with the purpose given)")
async def read_masked(resident_id: UUID, purpose: Purpose, vault: VaultDep, staff: Staff,
                      request: Request) -> ResidentMasked:
    found = await vault.read(resident_id, _access(staff, purpose, request))
    if found.data is None:
        return ResidentMasked(resident_id=resident_id, status="erased")
    d = found.data
    return ResidentMasked(resident_id=resident_id, status="on_file", name=mask_name(d.name),
                          phone=mask_phone(d.phone), consent=Consent(**d.consent))


@residents.patch("/{resident_id}", response_model=ResidentChanged,
                 summary="Change a resident's phone, address, contact channel or consent "
                         "(in person: registered here, or a presence grant)")
async def change(resident_id: UUID, body: ResidentChange, use_cases: ResidentsDep,
                 staff: Staff, key: IdempotencyKey, request: Request) -> ResidentChanged:
    changes = body.model_dump(mode="json", include=body.model_fields_set)
    await use_cases.change(resident_id, changes, _access(staff, "details changed", request),
                           key)
    return ResidentChanged(resident_id=resident_id, changed=sorted(changes))


@residents.delete("/{resident_id}", response_model=Erased,
                  summary="Erase a resident (PIPL right to deletion): the keys are destroyed")
async def erase(resident_id: UUID, use_cases: ResidentsDep, supervisor: Supervisor,
                request: Request) -> Erased:
    erased_at = await use_cases.erase(resident_id,
                                      _access(supervisor, "erasure request", request))
    return Erased(resident_id=resident_id, erased_at=erased_at)


@residents.put("/{resident_id}/facts", response_model=FactsKept,
                summary="Facts the resident declares (kept sealed, with their consent): a "
                        "special work type, living alone, disability, chronic illness")
async def declare_facts(resident_id: UUID, body: FactsDeclared, use_cases: ResidentsDep,
                        staff: Staff, key: IdempotencyKey, request: Request) -> FactsKept:
    await use_cases.declare_facts(resident_id, body.facts,
                                  _access(staff, "facts declared", request), key)
    return FactsKept(resident_id=resident_id, facts=body.facts)


@residents.post("/{resident_id}/hints", response_model=HintList,
                summary="Eligibility hints: what the resident may be entitled to, with the rule "
                        "that fired and its policy basis (each recorded as shown, once)")
async def show_hints(resident_id: UUID, use_cases: HintsDep, staff: Staff,
                     request: Request) -> HintList:
    shown = await use_cases.show(resident_id, _access(staff, "eligibility hints", request))
    items = []
    for h in shown:
        s = h.suggestion
        item = use_cases.catalogue.require(s.service_item)
        items.append(HintPublic(
            hint_id=h.hint_id, rule_id=s.rule_id, rule_version=s.rule_version,
            service_item=s.service_item, name_zh=item.name_zh, name_en=item.name_en,
            because=s.because, reason=s.reason, policy_basis=item.policy_basis,
            status=h.status, version=h.version))  # type: ignore[arg-type]
    return HintList(resident_id=resident_id, items=items)


@hints.post("/{hint_id}/taken", response_model=WrittenPublic,
            summary="The resident takes up a suggested item")
async def take_hint(hint_id: UUID, body: c.TakeHint, use_cases: HintsDep, write: Write,
                    staff: Staff) -> WrittenPublic:
    return WrittenPublic.of(await use_cases.take(hint_id, body, write.actor, write.key,
                                                 write.expected_version))


@hints.post("/{hint_id}/dismissed", response_model=WrittenPublic,
            summary="The suggested item is dismissed")
async def dismiss_hint(hint_id: UUID, body: c.DismissHint, use_cases: HintsDep, write: Write,
                       staff: Staff) -> WrittenPublic:
    return WrittenPublic.of(await use_cases.dismiss(hint_id, body, write.actor, write.key,
                                                    write.expected_version))


@audit.get("", response_model=AuditPage,
           summary="The personal-data audit trail, newest first: a supervisor's center's, or "
                   "(the city's token) every center's")
async def audit_trail(
    vault: VaultDep, reader: AuditReader,
    center_id: Annotated[str | None, Query(max_length=64, description=(
        "The city: one center's entries; a supervisor: their own (the default)"))] = None,
    resident_id: UUID | None = None,
    actor: Annotated[str | None, Query(max_length=64)] = None,
    action: Annotated[AuditAction | None, Query(description=(
        "Only entries of this action"))] = None,
    cross_center: Annotated[bool | None, Query(description=(
        "Only accesses by one center to another center's resident (true), or none of them"))]
        = None,
    since: datetime | None = None, until: datetime | None = None,
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1,  # audit_id is a bigint
                                        description="next_before of the previous page")]
        = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AuditPage:
    if reader.center_id is not None:
        check_center(reader, center_id or reader.center_id)
        center_id = reader.center_id
    rows = await vault.audit_trail(center_id, resident_id, actor, since, until, before,
                                   limit + 1, action=action, cross_center=cross_center,
                                   reader_center=reader.center_id)
    more = len(rows) > limit
    rows = rows[:limit]
    return AuditPage(items=[AuditEntry(**r) for r in rows],
                     next_before=rows[-1]["audit_id"] if more else None)

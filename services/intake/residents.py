"""The resident vault's HTTP API (``vault.py``) and its audit trail.

    POST   /residents                 register (or find) a resident -> opaque resident_id
    POST   /residents/lookup          resident_id for an ID number (in the body, never the URL)
    GET    /residents/{id}?purpose=   the personal data, the reason recorded
    DELETE /residents/{id}            erasure (PIPL art. 47): the data key is destroyed
    GET    /audit                     who read which resident's data, when and why (supervisor)

Every access is audited; the ID number travels in request bodies only, so it cannot end up in
an access log or a proxy's URL log.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.intake.idnumber import normalize, problem_with
from services.intake.vault import Access, ResidentData, Vault
from shared.auth import Staff, Supervisor
from shared.http import ErrorResponse

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse}, 401: {"model": ErrorResponse},
    403: {"model": ErrorResponse}, 404: {"model": ErrorResponse},
    422: {"model": ErrorResponse}, 503: {"model": ErrorResponse},
}
PHONE = r"^(?:1[3-9]\d{9}|0\d{2,3}-?\d{7,8})$"
ContactChannel = Literal["phone", "sms", "home_visit", "counter"]
Purpose = Annotated[str, Query(min_length=3, max_length=200, description=(
    "Why the data is read (recorded in the audit trail), e.g. 'follow-up call'."))]


async def _vault(request: Request) -> Vault:
    return request.app.state.vault


VaultDep = Annotated[Vault, Depends(_vault)]

residents = APIRouter(prefix="/residents", tags=["residents"], responses=ERRORS)
audit = APIRouter(prefix="/audit", tags=["audit"], responses=ERRORS)


class Consent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    contact: bool = Field(description="Agrees to be contacted for follow-ups.")
    surveys: bool = Field(False, description="Agrees to be asked for feedback.")
    given_at: datetime | None = None


class ResidentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=64)
    id_number: str = Field(min_length=18, max_length=18, description=(
        "The 18-character resident identity number; its check digit is verified."))
    phone: str = Field(pattern=PHONE, description="Mobile (11 digits) or landline.")
    address: str = Field("", max_length=200)
    contact_channel: ContactChannel = "phone"
    consent: Consent

    @field_validator("id_number")
    @classmethod
    def _valid_id(cls, value: str) -> str:
        if (why := problem_with(value)) is not None:
            raise ValueError(why)
        return normalize(value)


class ResidentLookup(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id_number: str = Field(min_length=18, max_length=18)
    purpose: str = Field(min_length=3, max_length=200)

    @field_validator("id_number")
    @classmethod
    def _valid_id(cls, value: str) -> str:
        if (why := problem_with(value)) is not None:
            raise ValueError(why)
        return normalize(value)


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


class AuditPage(BaseModel):
    items: list[AuditEntry]
    next_before: int | None


def _access(principal: Any, purpose: str, request: Request) -> Access:
    return Access(principal, purpose, request.headers.get("x-correlation-id"))


@residents.post("", response_model=ResidentRef, status_code=status.HTTP_201_CREATED,
                summary="Register a resident (an ID number already on file: their id, 200)")
async def register(body: ResidentCreate, vault: VaultDep, staff: Staff, request: Request,
                   response: Response) -> ResidentRef:
    data = ResidentData(name=body.name, id_number=body.id_number, phone=body.phone,
                        address=body.address, contact_channel=body.contact_channel,
                        consent=body.consent.model_dump(mode="json"))
    resident_id, created = await vault.register(data, _access(staff, "registration", request))
    if not created:
        response.status_code = status.HTTP_200_OK
    return ResidentRef(resident_id=resident_id, created=created)


@residents.post("/lookup", response_model=ResidentRef,
                summary="Find a returning resident by ID number (keyed hash; audited)")
async def lookup(body: ResidentLookup, vault: VaultDep, staff: Staff,
                 request: Request) -> ResidentRef:
    resident_id = await vault.lookup(body.id_number, _access(staff, body.purpose, request))
    return ResidentRef(resident_id=resident_id)


@residents.get("/{resident_id}", response_model=ResidentPublic,
               summary="A resident's personal data (audited with the purpose given)")
async def read(resident_id: UUID, purpose: Purpose, vault: VaultDep, staff: Staff,
               request: Request) -> ResidentPublic:
    found = await vault.read(resident_id, _access(staff, purpose, request))
    out = ResidentPublic(resident_id=found.resident_id, center_id=found.center_id,
                         status="erased" if found.erased_at else "on_file",
                         registered_at=found.registered_at, erased_at=found.erased_at)
    if found.data is not None:
        d = found.data
        out = out.model_copy(update={
            "name": d.name, "id_number": d.id_number, "phone": d.phone, "address": d.address,
            "contact_channel": d.contact_channel, "consent": Consent(**d.consent)})
    return out


@residents.delete("/{resident_id}", response_model=Erased,
                  summary="Erase a resident (PIPL right to deletion): the data key is destroyed")
async def erase(resident_id: UUID, vault: VaultDep, supervisor: Supervisor,
                request: Request) -> Erased:
    erased_at = await vault.erase(resident_id, _access(supervisor, "erasure request", request))
    return Erased(resident_id=resident_id, erased_at=erased_at)


@audit.get("", response_model=AuditPage,
           summary="The personal-data audit trail of the supervisor's center, newest first")
async def audit_trail(
    vault: VaultDep, supervisor: Supervisor,
    resident_id: UUID | None = None,
    actor: Annotated[str | None, Query(max_length=64)] = None,
    since: datetime | None = None, until: datetime | None = None,
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1,  # audit_id is a bigint
                                        description="next_before of the previous page")]
        = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AuditPage:
    rows = await vault.audit_trail(supervisor.center_id, resident_id, actor, since, until,
                                   before, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return AuditPage(items=[AuditEntry(**r) for r in rows],
                     next_before=rows[-1]["audit_id"] if more else None)

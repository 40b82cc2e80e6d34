"""What a civic app reads: the read model's cases as GeoReport v2 requests.

Open while the case is open (opened, heard, guided, served, reopened), closed once resolved;
``status_notes`` from the latest event of the case's life, ``agency_responsible`` the service a
clerk referred the resident to (else the center), ``expected_datetime`` the end of the case's
due date (办结时限; for a case from before due dates, the nearest noted deadline), all
date-times in the center's zone.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from services.intake.open311.wire import Open311Error, end_of, parse_w3c, w3c
from services.intake.open311.wording import (
    PROVISIONAL,
    PROVISIONAL_JOIN,
    Lang,
    service_notice,
    status_notes,
)
from shared.catalogue import Catalogue
from shared.settings import Settings

MAX_SPAN = timedelta(days=90)
MAX_RESULTS = 1000  # "first 1000 requests returned"


async def readable(pool: asyncpg.Pool, case_id: UUID, version: int, timeout: float) -> bool:
    """Wait (bounded) until the read model shows the case at ``version`` or later."""
    loop = asyncio.get_running_loop()
    deadline, delay = loop.time() + timeout, 0.005
    while True:
        seen = await pool.fetchval("SELECT version FROM cases WHERE case_id = $1", case_id)
        if seen is not None and seen >= version:
            return True
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.1)


SELECT_REQUESTS = (
    "SELECT c.case_id, c.center_id, c.service_item, c.status, c.opened_at, c.updated_at,"
    " c.resolved_at, c.next_deadline, c.due_on, c.due_basis, c.due_source, heard.words,"
    " life.type AS life_type, life.payload::text AS life_payload, referral.referred_to"
    " FROM cases c"
    " LEFT JOIN LATERAL (SELECT t.payload->>'words' AS words FROM case_timeline t"
    "  WHERE t.case_id = c.case_id AND t.type = 'RequestHeard' ORDER BY t.version LIMIT 1)"
    "  heard ON true"
    " LEFT JOIN LATERAL (SELECT t.type, t.payload FROM case_timeline t"
    "  WHERE t.case_id = c.case_id AND t.type = ANY($1::text[]) ORDER BY t.version DESC LIMIT 1)"
    "  life ON true"
    " LEFT JOIN LATERAL (SELECT t.payload->>'referred_to' AS referred_to FROM case_timeline t"
    "  WHERE t.case_id = c.case_id AND t.type = 'ActionTaken'"
    "  AND t.payload->>'referred_to' IS NOT NULL ORDER BY t.version DESC LIMIT 1)"
    "  referral ON true"
    " WHERE c.center_id = $2 AND c.channel = $3"
)


def service_request(row: asyncpg.Record, cat: Catalogue, lang: Lang,
                    settings: Settings, today: date) -> dict[str, Any]:
    """One case as the spec's ``request``: open until resolved, closed when resolved.
    ``today``: the center's, on the service's clock."""
    tz = settings.tz
    item = cat.get(row["service_item"])
    closed = row["status"] == "resolved"
    # An expected date counted on a year without a published holiday schedule may move when
    # it is published: the app's resident reads that beside it, as the paper says it (the
    # spec's expected_datetime has no room for it). Not one typed (promised, a deadline: never
    # counted again), nor one past (overdue: it keeps its day), as the notice's due_may_move.
    provisional = (not closed and row["due_on"] is not None and row["due_on"] >= today
                   and row["due_basis"] == "provisional" and row["due_source"] == "item_days")
    notice = service_notice(item, lang)
    if provisional:
        notice = PROVISIONAL[lang] if notice is None else f"{notice}{PROVISIONAL_JOIN[lang]}" \
            f"{PROVISIONAL[lang]}"
    name = (item.name_zh if lang == "zh" else item.name_en) if item else row["service_item"]
    return {
        "service_request_id": str(row["case_id"]),
        "status": "closed" if closed else "open",
        "status_notes": status_notes(row["life_type"], row["life_payload"], lang),
        "service_name": name,
        "service_code": row["service_item"],
        "description": row["words"],
        "agency_responsible": row["referred_to"] or row["center_id"],
        "service_notice": notice,
        "requested_datetime": w3c(row["opened_at"], tz),
        "updated_datetime": w3c(row["resolved_at"] if closed and row["resolved_at"]
                                else row["updated_at"], tz),
        "expected_datetime": w3c(end_of(row["due_on"] or row["next_deadline"], tz), tz),
        # Location is not kept: a center's affairs are about people, and addresses are
        # personal data that never leaves the (future) resident vault.
        "address": None, "address_id": None, "zipcode": None,
        "lat": None, "long": None, "media_url": None,
    }


def split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def window(start: str | None, end: str | None, settings: Settings, now: datetime
           ) -> tuple[datetime, datetime]:
    """start_date/end_date as the spec reads them: the last 90 days when neither is given (up
    to ``now``, the service's clock), 90 days from the one given, never more than 90 days."""
    try:
        since = parse_w3c(start, settings.tz) if start else None
        until = parse_w3c(end, settings.tz, end=True) if end else None
    except ValueError as exc:
        raise Open311Error(400, f"{exc} is not a W3C date-time with a zone, e.g. "
                                "2010-01-01T00:00:00Z") from None
    if since is None:
        until = until or now
        since = until - MAX_SPAN
    elif until is None:
        until = since + MAX_SPAN
    if until < since:
        raise Open311Error(400, "end_date is before start_date")
    if until - since > MAX_SPAN:
        raise Open311Error(400, "start_date to end_date may not span more than 90 days")
    return since, until

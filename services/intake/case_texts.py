"""``POST /internal/case-texts/{case_id}``: follow-up's and feedback's free text about a case,
scrubbed of the case's resident, whom only the vault knows (``shared.http.case_texts``); and
``POST /internal/resident-texts/{resident_id}``: their free text about a resident with no case
(a follow-up planned by hand for them, a policy's outreach to one who was only shown a hint),
scrubbed of that resident.

The answer holds the texts the caller sent, each with the resident's own name (whole, the
given name, with a form of address, in pinyin), phone, ID number and address replaced by
markers, as intake's own free text is (``known_people.py``), and the patterns run too. The
caller is a service: the call is signed over the case (or resident) id and the body (401
otherwise), so no clerk, unit or resident can use it to try names against a case or a
resident; the calling service asks only for a caller the aggregate is in reach of
(``CommandPath.scrubbing``).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from shared.http.case_texts import HEADER, MAX_TEXTS, PATH, RESIDENT_PATH, signed
from shared.http.errors import error_response
from shared.kernel.privacy import KnownPerson, redact
from shared.settings import Settings

router = APIRouter(include_in_schema=False)

Who = Callable[[], Awaitable[KnownPerson | None]]
"""Whom the texts are scrubbed of, read from the vault once the call is known to be signed."""


@router.post(PATH)
async def case_texts(case_id: UUID, request: Request) -> JSONResponse:
    known = request.app.state.intake.known  # None: no vault (a benchmark): the patterns
    return await _scrubbed(request, case_id, "case",
                           None if known is None else lambda: known.of_case(case_id))


@router.post(RESIDENT_PATH)
async def resident_texts(resident_id: UUID, request: Request) -> JSONResponse:
    known = request.app.state.intake.known
    return await _scrubbed(request, resident_id, "resident",
                           None if known is None else lambda: known.of_resident(resident_id))


async def _scrubbed(request: Request, about_id: UUID, about: str, who: Who | None
                    ) -> JSONResponse:
    """The signed call's texts, scrubbed of ``who`` (None: the patterns alone)."""
    settings: Settings = request.app.state.settings
    body = await request.body()
    if not signed(settings, about_id, body, request.headers.get(HEADER), about):
        return error_response(401, "unsigned", "only sixstep's services may ask this")
    try:
        texts = json.loads(body)["texts"]
    except (ValueError, KeyError, TypeError):
        texts = None
    if not isinstance(texts, list) or len(texts) > MAX_TEXTS \
            or not all(isinstance(t, str) for t in texts):
        return error_response(422, "invalid_texts",
                              f"texts: a list of at most {MAX_TEXTS} strings")
    person = await who() if who is not None else None
    return JSONResponse({"texts": [redact(t, person) for t in texts]})

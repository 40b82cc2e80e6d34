"""``POST /internal/case-texts/{case_id}``: follow-up's and feedback's free text about a case,
scrubbed of the case's resident, whom only the vault knows (``shared.http.case_texts``).

The answer holds the texts the caller sent, each with the resident's own name (whole, the
given name, with a form of address, in pinyin), phone, ID number and address replaced by
markers, as intake's own free text is (``known_people.py``), and the patterns run too. The
caller is a service: the call is signed over the case id and the body (401 otherwise), so no
clerk, unit or resident can use it to try names against a case.
"""

from __future__ import annotations

import json
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from shared.http.case_texts import HEADER, MAX_TEXTS, PATH, signed
from shared.http.errors import error_response
from shared.kernel.privacy import redact
from shared.settings import Settings

router = APIRouter(include_in_schema=False)


@router.post(PATH)
async def case_texts(case_id: UUID, request: Request) -> JSONResponse:
    settings: Settings = request.app.state.settings
    body = await request.body()
    if not signed(settings, case_id, body, request.headers.get(HEADER)):
        return error_response(401, "unsigned", "only sixstep's services may ask this")
    try:
        texts = json.loads(body)["texts"]
    except (ValueError, KeyError, TypeError):
        texts = None
    if not isinstance(texts, list) or len(texts) > MAX_TEXTS \
            or not all(isinstance(t, str) for t in texts):
        return error_response(422, "invalid_texts",
                              f"texts: a list of at most {MAX_TEXTS} strings")
    known = request.app.state.intake.known  # None: no vault (a benchmark): the patterns
    person = await known.of_case(case_id) if known is not None else None
    return JSONResponse({"texts": [redact(t, person) for t in texts]})

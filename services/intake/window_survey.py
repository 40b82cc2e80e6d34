"""The survey waiting at the window, for the clerk's screen: its link as a QR code, for a
resident who prefers their phone to the rating pad.

The survey and its link are feedback's (``GET /cases/{id}/survey/qr`` there, which draws the
code). The clerk's page asks it through ``GET /counter/survey-qr/{case_id}`` here, with the
clerk's own token, so the page talks to one origin and needs no CORS (as the board reads the
follow-up worklist). Feedback checks the caller; this route only passes the answer on.
"""

from __future__ import annotations

from uuid import UUID

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from shared.http.errors import error_response, problem
from shared.settings import Settings

router = APIRouter(include_in_schema=False)


def feedback_url(settings: Settings) -> str:
    return (settings.feedback_url or f"http://{settings.host}:{settings.feedback_port}").rstrip(
        "/")


@router.get("/counter/survey-qr/{case_id}")
async def survey_qr(case_id: UUID, request: Request) -> JSONResponse:
    """Feedback's answer for the case's survey at the window (404 ``survey_not_waiting``
    until the resolution's survey is there). ``case_id`` is a UUID before it becomes part
    of the URL asked."""
    settings: Settings = request.app.state.settings
    headers = {k: v for k, v in request.headers.items()
               if k in ("authorization", "x-correlation-id")}
    try:
        async with httpx.AsyncClient(timeout=5.0) as client:
            answer = await client.get(f"{feedback_url(settings)}/cases/{case_id}/survey/qr",
                                      headers=headers)
    except httpx.HTTPError:
        raise problem(502, "feedback_unavailable",
                      "the feedback service cannot be reached") from None
    if answer.headers.get("content-type", "").startswith("application/json"):
        return JSONResponse(answer.json(), status_code=answer.status_code,
                            headers={"Cache-Control": "no-store"})
    return error_response(502, "feedback_unavailable",
                          f"the feedback service answered {answer.status_code}")

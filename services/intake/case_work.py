"""What follow-up tracks of a case, for the clerk's screen: its help tasks (帮办: owner,
deadline, status) and referrals (派单: the unit, the reply deadline, awaiting a reply or not).

They live in the follow-up service (``GET /help-tasks?case_id=``, ``GET /referrals?case_id=``
there). The clerk's page asks for both through ``GET /counter/case-work/{case_id}`` here, with
the clerk's own token, so the page talks to one origin and needs no CORS; follow-up checks the
caller. A follow-up service without those routes (404) has nothing to say: empty lists.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from shared.http.errors import error_response
from shared.kernel.tasks import gather_all
from shared.settings import Settings

router = APIRouter(include_in_schema=False)


def followup_url(settings: Settings) -> str:
    return (settings.followup_url or f"http://{settings.host}:{settings.followup_port}").rstrip(
        "/")


@router.get("/counter/case-work/{case_id}")
async def case_work(case_id: UUID, request: Request) -> JSONResponse:
    """``{help_tasks: [...], referrals: [...]}`` of the case, as follow-up has them.
    ``case_id`` is a UUID before it becomes part of the URLs asked."""
    settings: Settings = request.app.state.settings
    headers = {k: v for k, v in request.headers.items()
               if k in ("authorization", "x-correlation-id")}
    base = followup_url(settings)
    try:
        async with httpx.AsyncClient(timeout=5.0) as client:
            answers = await gather_all(
                client.get(f"{base}/help-tasks", params={"case_id": str(case_id)},
                           headers=headers),
                client.get(f"{base}/referrals", params={"case_id": str(case_id)},
                           headers=headers))
    except httpx.HTTPError:
        return error_response(502, "followup_unavailable",
                              "the follow-up service cannot be reached")
    out: dict[str, Any] = {}
    for name, answer in zip(("help_tasks", "referrals"), answers, strict=True):
        if answer.status_code == 404:  # a follow-up service without help tasks or referrals
            out[name] = []
            continue
        if not answer.headers.get("content-type", "").startswith("application/json"):
            return error_response(502, "followup_unavailable",
                                  f"the follow-up service answered {answer.status_code}")
        if answer.status_code != 200:
            return JSONResponse(answer.json(), status_code=answer.status_code)
        body = answer.json()
        out[name] = body.get("items", []) if isinstance(body, dict) else body
    return JSONResponse(out, headers={"Cache-Control": "no-store"})

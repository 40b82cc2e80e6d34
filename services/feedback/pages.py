"""Feedback's pages: the resident's survey (opened from the survey link) and the supervisor's
board.

* ``GET /s/{survey_id}?t=<token>`` — the link the resident gets (``settings.survey_link_base``).
  The page is rendered here with the state the link is in (open, answered, expired, invalid,
  withdrawn); the answer goes to ``POST /surveys/{id}/rating`` with the link's token, like any
  other client's.
* ``GET /board`` — today's and this month's figures, 30 days of them, the follow-up worklist
  and the open rectifications, polled every few seconds. The worklist lives in the follow-up
  service: the board reads it through ``GET /board/worklist`` here, which asks follow-up with
  the supervisor's own token (``settings.followup_url``), so the browser talks to one origin
  and needs no CORS.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode
from uuid import UUID

import httpx
from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

from services.feedback.tokens import TokenExpired, TokenSuperseded, check_still_at_window
from shared import web
from shared.catalogue import Catalogue
from shared.contracts.feedback import Aspect, RatingLevel
from shared.contracts.fields import CODE_PATTERN
from shared.contracts.vocabulary import Verdict
from shared.http.errors import error_response, problem
from shared.kernel.errors import CommandError
from shared.settings import Settings

WEB = Path(__file__).parent / "web"
TEMPLATES = web.templates(WEB)


def board_words() -> dict[str, dict[str, str]]:
    """The supervisor's board's words: its own (``web/board.json``) and every error code's."""
    return web.strings(WEB / "board.json", codes=True)
NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
            "X-Robots-Tag": "noindex"}

router = APIRouter(include_in_schema=False)


@router.get("/")
async def home() -> RedirectResponse:
    return RedirectResponse("/board", status_code=307)


# -- the resident's survey ----------------------------------------------------------------------


async def _survey_state(request: Request, survey_id: UUID, token: str
                        ) -> tuple[str, dict[str, Any] | None]:
    """open | used | declined | expired | invalid | closed, and the survey's row when it is
    known."""
    feedback = request.app.state.feedback
    try:
        link = feedback.tokens.check(token, survey_id, feedback.clock.now())
    except TokenExpired:
        return "expired", None
    except CommandError:
        return "invalid", None
    row = await request.app.state.pool.fetchrow(
        "SELECT status, service_item, requested_at, channel FROM surveys"
        " WHERE survey_id = $1", survey_id)
    if row is None:  # the read model has not caught up with a survey just sent: still open
        return "open", None
    try:  # a window's link once the survey is asked elsewhere: spent
        check_still_at_window(link, row["channel"])
    except TokenSuperseded:
        return "closed", dict(row)
    state = {"answered": "used", "expired": "expired", "withdrawn": "closed",
             "declined": "declined"}.get(row["status"], "open")
    return state, dict(row)


def _untriaged_days(request: Request) -> int:
    """The working days a bad review's deadline has until a supervisor triages it."""
    policy = request.app.state.feedback.policy
    return int(policy.working_days(policy.default_track))


@router.get("/s/{survey_id}", response_class=HTMLResponse)
async def survey(request: Request, survey_id: UUID,
                 t: Annotated[str, Query(max_length=200)] = "") -> HTMLResponse:
    settings: Settings = request.app.state.settings
    words = web.strings(WEB / "survey.json", codes=True)  # a refusal in the page's words
    context = web.page_context(request, words)
    lang = context["lang"]
    state, row = await _survey_state(request, survey_id, t)
    item_name, requested_on = None, None
    if row is not None:
        catalogue: Catalogue = request.app.state.catalogue
        item = catalogue.get(row["service_item"] or "")
        if item is not None:
            item_name = item.name_zh if lang == "zh" else item.name_en
        day: date = row["requested_at"].astimezone(settings.tz).date()
        requested_on = (f"{day.year}年{day.month}月{day.day}日" if lang == "zh"
                        else day.strftime("%d %B %Y"))
    context.update(
        state=state, survey_id=str(survey_id), token=t,
        key=f"survey-{survey_id.hex}-{web.random_key()}",
        levels=[level.value for level in RatingLevel], aspects=[a.value for a in Aspect],
        verdicts=[v.value for v in Verdict], reason_tags=settings.survey_reason_tags,
        item_name=item_name, requested_on=requested_on,
        rectification_days=_untriaged_days(request),
        query_zh=urlencode({"t": t, "lang": "zh"}), query_en=urlencode({"t": t, "lang": "en"}),
        pad=request.query_params.get("pad") == "1")
    status = {"open": 200, "used": 200, "declined": 200, "expired": 410, "closed": 410,
              "invalid": 403}[state]
    return TEMPLATES.TemplateResponse(request, "survey.html", context, status_code=status,
                                      headers=NO_STORE)


# -- the rating pad at the window ------------------------------------------------------------------


@router.get("/pad", response_class=HTMLResponse)
async def pad(request: Request) -> HTMLResponse:
    """The counter tablet: paired once with a supervisor's code, then idle until the window's
    survey waits (``pads.py``)."""
    words = web.strings(WEB / "pad.json")
    windows = request.app.state.settings.center_windows
    return TEMPLATES.TemplateResponse(request, "pad.html",
                                      web.page_context(request, words, windows=windows),
                                      headers=NO_STORE)


# -- the supervisor's board -----------------------------------------------------------------------


@router.get("/board", response_class=HTMLResponse)
async def board(request: Request,
                every: Annotated[float, Query(ge=1, le=300, description=(
                    "Seconds between refreshes"))] = 5) -> HTMLResponse:
    settings: Settings = request.app.state.settings
    words = board_words()
    return TEMPLATES.TemplateResponse(
        request, "board.html",
        web.page_context(request, words, every=every, time_zone=settings.center_timezone,
                         windows=settings.center_windows))


def followup_url(settings: Settings) -> str:
    return (settings.followup_url or f"http://{settings.host}:{settings.followup_port}").rstrip(
        "/")


@router.get("/board/worklist")
async def board_worklist(request: Request,
                         center_id: Annotated[str, Query(pattern=CODE_PATTERN)]) -> JSONResponse:
    """The center's follow-up worklist, from the follow-up service, with the caller's token.
    ``center_id`` is checked before it becomes part of the URL asked, and sent escaped."""
    settings: Settings = request.app.state.settings
    headers = {k: v for k, v in request.headers.items()
               if k in ("authorization", "x-correlation-id")}
    try:
        async with httpx.AsyncClient(timeout=5.0) as client:
            answer = await client.get(
                f"{followup_url(settings)}/worklists/centers/{quote(center_id, safe='')}",
                headers=headers)
    except httpx.HTTPError:
        raise problem(502, "followup_unavailable",
                      "the follow-up service cannot be reached") from None
    if answer.headers.get("content-type", "").startswith("application/json"):
        return JSONResponse(answer.json(), status_code=answer.status_code)
    return error_response(502, "followup_unavailable",
                          f"the follow-up service answered {answer.status_code}")


def install(app: FastAPI) -> None:
    """The survey page at ``/s/{id}``, the board at ``/board``, their files under ``/ui``."""
    app.include_router(router)
    web.mount_static(app, "feedback", WEB)

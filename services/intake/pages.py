"""The clerk's screen, served by intake: one page that walks a resident through the six steps.

The page is a template and a few plain ES modules (``web/static``); it drives intake's own HTTP
API with the clerk's bearer token, so it needs nothing the API does not already give a counter
app. Steps go through a queue kept in the browser (``web/static/queue.js``), each with its own
Idempotency-Key, so a dropped network delays them and loses or doubles none.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from services.intake import case_work, window_survey
from shared import web

WEB = Path(__file__).parent / "web"
TEMPLATES = web.templates(WEB)


def counter_words() -> dict[str, dict[str, str]]:
    """The counter page's words: its own (``web/strings.json``) and every error code's."""
    return web.strings(WEB / "strings.json", codes=True)

router = APIRouter(include_in_schema=False)


def _has_vault(request: Request) -> bool:
    """Whether the resident register (``/residents``) is served here: then the page looks
    returning residents up by ID number, else only by their opaque resident id."""
    return "/residents/lookup" in request.app.openapi().get("paths", {})


def _helps(request: Request) -> bool:
    """Whether intake hands cases over and tracks escalations and referrals (帮办, 派单, 转办:
    ``POST /cases/{id}/handover`` and the fields of ``ActionTaken`` v2 come together): then
    the page offers them."""
    return "/cases/{case_id}/handover" in request.app.openapi().get("paths", {})


@router.get("/")
async def home() -> RedirectResponse:
    return RedirectResponse("/counter", status_code=307)


@router.get("/counter", response_class=HTMLResponse)
async def counter(request: Request) -> HTMLResponse:
    words = counter_words()
    return TEMPLATES.TemplateResponse(
        request, "counter.html",
        web.page_context(request, words, vault=_has_vault(request), helps=_helps(request),
                         windows=request.app.state.settings.center_windows,
                         time_zone=request.app.state.settings.center_timezone))


def install(app: FastAPI) -> None:
    """The clerk's screen at ``/counter`` and its files under ``/ui``."""
    app.include_router(router)
    app.include_router(window_survey.router)  # the survey's QR code on the clerk's screen
    app.include_router(case_work.router)  # the case's help tasks and referrals, from follow-up
    web.mount_static(app, "intake", WEB)

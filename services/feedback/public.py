"""The public page of a center's monthly figures (公示): ``GET /public/{center_id}``.

Readable without a token, Chinese first (``?lang=en`` for English), printable. It shows only
closed months, as reported (``closing.py``), with their revisions: counts and rates, which
carry no personal data and no free text. Each address may ask ``PUBLIC_FIGURES_RATE_PER_MINUTE``
times a minute (429 ``rate_limited`` after), and the answer may be cached for five minutes.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse

from services.feedback.closing import ReportedRow, reported
from services.feedback.pages import TEMPLATES, WEB
from shared import web
from shared.contracts.fields import CODE_PATTERN
from shared.http.limits import TokenBuckets

MONTHS_SHOWN = 12
CACHE = {"Cache-Control": "public, max-age=300", "Vary": "Cookie"}  # the language cookie

router = APIRouter(include_in_schema=False)


def limits(per_minute: int) -> TokenBuckets:
    return TokenBuckets(per_minute / 60.0, per_minute)


def _value(figure: dict[str, Any], t: dict[str, str]) -> str:
    if figure.get("count") is not None:
        return f"{figure['count']:,}"
    if not figure.get("denominator"):
        return t["no_rate"]
    if figure["name"] == "trips_per_resolved_case":  # a ratio, not a share
        return f"{figure['numerator'] / figure['denominator']:.2f}"
    return t["rate"].format(pct=f"{figure['rate']:.1%}", numerator=figure["numerator"],
                            denominator=figure["denominator"])


def _month(row: ReportedRow, t: dict[str, str], tz: Any) -> dict[str, Any]:
    def label(name: str) -> str:
        return t.get(name, name)
    revised = (t["revised"].format(n=row.revision, names="、".join(label(n) for n in row.changed))
               if row.revision else "")
    return {
        "key": row.month.isoformat()[:7],
        "title": t["month"].format(year=row.month.year, month=f"{row.month.month:02d}"
                                   if "-" in t["month"] else row.month.month),
        "closed": t["closed_on"].format(day=row.closed_at.astimezone(tz).date().isoformat()),
        "closed_by": t[f"closed_by_{row.closed_by}"],
        "revision": row.revision, "revised": revised,
        "figures": [{"name": f["name"], "label": label(f["name"]), "value": _value(f, t)}
                    for f in row.figures],
    }


@router.get("/public/{center_id}", response_class=HTMLResponse)
async def public_figures(request: Request,
                         center_id: Annotated[str, Path(pattern=CODE_PATTERN)]) -> HTMLResponse:
    request.app.state.public_limits.check(request.client.host if request.client else "?")
    words = web.strings(WEB / "public.json")
    context = web.page_context(request, words)
    rows = await reported(request.app.state.pool, [center_id])
    tz = request.app.state.settings.tz
    months = [_month(r, context["t"], tz) for r in reversed(rows[-MONTHS_SHOWN:])]
    context.update(center_id=center_id, months=months)
    return TEMPLATES.TemplateResponse(request, "public.html", context, headers=CACHE)

"""The survey link as a QR code, for the clerk's screen: a resident who prefers their phone
scans it instead of answering on the rating pad. Same survey, same single answer.

    GET /cases/{case_id}/survey/qr   staff: the window's survey of the case, while it waits

Only while the resident is at the window: the case's counter-tablet survey, sent less than
``window_offer.SHOWN_MINUTES`` ago, not answered, expired or withdrawn. A clerk sees the code of the
cases they served only (opened, took a step of, or had handed to them: the one who resolves
a case handed over mid-day has the resident before them), a supervisor those of their
center. The code is drawn here (segno, an SVG as a ``data:`` URI the page's policy allows):
nothing leaves for a QR service.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID

import asyncpg
import segno
from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from services.feedback.sending import survey_link
from services.feedback.window_offer import SHOWN_MINUTES
from shared.http.auth import Staff, not_found_elsewhere
from shared.http.dependencies import PoolDep, SettingsDep
from shared.http.errors import ERRORS, problem
from shared.kernel.serving import is_own_case
from shared.readmodels.public import in_reach

survey_qr = APIRouter(prefix="/cases", tags=["surveys"], responses=ERRORS)


class SurveyQrPublic(BaseModel):
    survey_id: UUID
    link: str = Field(description="The survey link (absolute: it is opened on a phone).")
    qr_svg: str = Field(description="The link as a QR code: an SVG ``data:`` URI.")
    expires_at: datetime


_WAITING_COLUMNS = in_reach(
    ["s.survey_id", "s.clerk_id", "s.status", "s.expires_at",
     "coalesce((SELECT c.served_by FROM intake_cases c WHERE c.case_id = s.case_id), '{}')"
     " AS served_by"], "$3", center="s.center_id")
WAITING = (f"SELECT {_WAITING_COLUMNS} FROM surveys s WHERE s.case_id = $1"
           " AND s.channel = 'tablet' AND s.purpose = 'resolution' AND s.sent_at > $2"
           " ORDER BY s.sent_at DESC LIMIT 1")


async def waiting(pool: asyncpg.Pool, case_id: UUID, since: datetime, reach: str | None
                  ) -> asyncpg.Record | None:
    """The case's tablet survey sent after ``since``, the latest; of another center than
    ``reach`` (the caller's; None: every center's) its center alone (``public.in_reach``):
    nor is the case's row of intake (who served it) looked up for it. Until stop 49 the
    statement joined it first and sent the whole row, refused after."""
    return await pool.fetchrow(WAITING, case_id, since, reach)


def qr_data_uri(link: str) -> str:
    """``link`` as a QR code (error correction M, quiet zone kept), an SVG ``data:`` URI."""
    return segno.make(link, error="m", micro=False).svg_data_uri(scale=6, border=4)


@survey_qr.get("/{case_id}/survey/qr", response_model=SurveyQrPublic,
               summary="The case's survey waiting at the window, as a QR code for a phone")
async def case_survey_qr(case_id: UUID, request: Request, pool: PoolDep,
                         settings: SettingsDep, staff: Staff) -> SurveyQrPublic:
    feedback = request.app.state.feedback
    now = feedback.clock.now()  # sent_at and expires_at were written on the service's clock
    row = await waiting(pool, case_id, now - timedelta(minutes=SHOWN_MINUTES),
                        staff.center_id)
    if row is not None:
        # Another center's case: no survey of it waits here (a 403 said it was a case).
        not_found_elsewhere(staff, row["center_id"], "case", case_id,
                            f"no survey of case {case_id} waits at the window",
                            code="survey_not_waiting")
        # The survey names the first responder (首问); after a handover (转办) the colleague
        # who has the case resolves it with the resident before them: every clerk who served
        # it (``intake_cases.served_by``: its steps' actors, the clerk it was handed to;
        # ``shared.kernel.serving.is_own_case``).
        if staff.role == "clerk" and not is_own_case(staff.sub, row["clerk_id"],
                                                     row["served_by"]):
            raise problem(403, "forbidden", "the survey's QR code is shown to the clerk who "
                                            "served the case only",
                          rule="survey_qr_served_only")
    if row is None or row["status"] != "sent" or row["expires_at"] <= now:
        raise problem(404, "survey_not_waiting",
                      f"no survey of case {case_id} waits at the window", id=str(case_id))
    token = feedback.tokens.issue(row["survey_id"], row["expires_at"], at_window=True)
    link = survey_link(settings.survey_link_base, row["survey_id"], token)
    return SurveyQrPublic(survey_id=row["survey_id"], link=link, qr_svg=qr_data_uri(link),
                          expires_at=row["expires_at"])

"""The survey's way to the resident: a port, and the adapter that only logs.

A real adapter (an SMS gateway, the counter tablet's push, the callback list of the phone
desk) looks up the resident's contact in intake's vault by the opaque resident id; nothing
personal passes through feedback. The logging adapter never logs the token itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

import structlog

log = structlog.get_logger("sixstep.feedback.sending")


@dataclass(frozen=True)
class SurveyMessage:
    survey_id: UUID
    case_id: UUID
    center_id: str
    counter_id: str
    resident_id: UUID | None
    channel: str
    purpose: str
    link: str | None
    """The survey's page with its token; None for a call (``phone_callback``): the desk asks
    and records as staff, a link in its hands would answer as the resident."""
    token: str | None
    expires_at: datetime


class SurveySender(Protocol):
    async def send(self, message: SurveyMessage) -> None:
        """Deliver the survey through ``message.channel``; raise if the gateway refused it."""
        ...


class LoggingSender:
    """Development and tests: says what it would send, with the token masked unless
    ``reveal`` (``ENVIRONMENT=development``: the link opens the survey page from the log)."""

    def __init__(self, reveal: bool = False) -> None:
        self.reveal = reveal

    async def send(self, message: SurveyMessage) -> None:
        link = message.link
        if link is not None and message.token is not None and not self.reveal:
            link = link.replace(message.token, message.token[:6] + "…")
        log.info("survey.sent", channel=message.channel, purpose=message.purpose,
                 survey_id=str(message.survey_id), case_id=str(message.case_id),
                 center_id=message.center_id, counter_id=message.counter_id,
                 resident_id=str(message.resident_id) if message.resident_id else None,
                 link=link, expires_at=message.expires_at.isoformat())


def survey_link(base: str, survey_id: UUID, token: str) -> str:
    return f"{base.rstrip('/')}/{survey_id}?t={token}"

"""Survey links a resident can answer without an account: signed, expiring, bound to a survey.

A token is ``<body>.<mac>`` in base64url: the body holds the survey id and the expiry (epoch
seconds); the MAC is HMAC-SHA256 under ``settings.survey_token_secret``, truncated to 128 bits.
Nobody without the secret can make a token for another survey (another resident's case), and
the expiry cannot be moved. Single use is not the token's job: the Survey aggregate takes one
answer, so a second answer with the same link is refused by the store, on every replica.

Each token has exactly one spelling: base64 decoding skips characters outside its alphabet
and extra padding, so ``read`` refuses any string that is not the token as issued. What is
keyed on a token (the answer's rate limit) is keyed on the survey it verifiably answers.

A window's link (the rating pad's, the QR code on the clerk's screen, a tablet survey's own) is
signed in a context of its own (``at_window``): it answers its survey only while the survey is
asked at the window (channel ``tablet``). Once the survey is asked where the resident is
(``SurveyRedirected``: by text, or by a clerk's call), the window's links are spent (410
``token_superseded``): else the clerk who had the QR code on their screen could answer, as the
resident, a survey the resident is texted about, or one the phone desk must record as staff
(代评, past the ``self_rating`` check). Links issued before this rule are in the one context and
keep answering until they expire.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from shared.contracts.feedback import SurveyChannel
from shared.kernel.errors import CommandError
from shared.security import base64url

_CONTEXT = b"sixstep-survey-token-v1\x00"
_WINDOW_CONTEXT = b"sixstep-survey-token-v1\x00window\x00"
#: The channel a window's link answers on.
WINDOW: str = SurveyChannel.TABLET.value
_MAC_BYTES = 16


class TokenInvalid(CommandError):
    status = 403
    code = "token_invalid"


class TokenWrongCase(CommandError):
    status = 403
    code = "token_wrong_case"


class TokenExpired(CommandError):
    status = 410
    code = "token_expired"


class TokenSuperseded(CommandError):
    """A window's link used once its survey is asked elsewhere (by text, by a clerk's call)."""

    status = 410
    code = "token_superseded"


@dataclass(frozen=True)
class SurveyToken:
    survey_id: UUID
    expires_at: datetime
    at_window: bool = False


class SurveyTokens:
    """Issues and reads survey tokens with one secret."""

    def __init__(self, secret: str | bytes) -> None:
        key = secret.encode() if isinstance(secret, str) else secret
        if len(key) < 16:
            raise ValueError("the survey token secret needs at least 16 bytes")
        self._key = key

    def _mac(self, body: bytes, at_window: bool = False) -> bytes:
        context = _WINDOW_CONTEXT if at_window else _CONTEXT
        return hmac.new(self._key, context + body, hashlib.sha256).digest()[:_MAC_BYTES]

    def issue(self, survey_id: UUID, expires_at: datetime, *, at_window: bool = False) -> str:
        """``at_window``: a window's link (the pad's, the QR code's, a tablet survey's)."""
        body = survey_id.bytes + int(expires_at.timestamp()).to_bytes(5, "big")
        return f"{base64url.encode(body)}.{base64url.encode(self._mac(body, at_window))}"

    def read(self, token: str) -> SurveyToken:
        """The token's survey and expiry; ``TokenInvalid`` unless this secret signed it."""
        try:
            body_text, _, mac_text = token.partition(".")
            body, mac = base64url.decode(body_text), base64url.decode(mac_text)
        except (ValueError, UnicodeEncodeError):
            raise TokenInvalid("the survey link is not valid") from None
        if len(body) != 21:
            raise TokenInvalid("the survey link is not valid")
        if hmac.compare_digest(mac, self._mac(body)):
            at_window = False
        elif hmac.compare_digest(mac, self._mac(body, at_window=True)):
            at_window = True
        else:
            raise TokenInvalid("the survey link is not valid")
        # the same token, spelled another way
        if token != f"{base64url.encode(body)}.{base64url.encode(mac)}":
            raise TokenInvalid("the survey link is not valid")
        expires = datetime.fromtimestamp(int.from_bytes(body[16:], "big"), tz=UTC)
        return SurveyToken(UUID(bytes=body[:16]), expires, at_window)

    def of_survey(self, token: str, survey_id: UUID) -> SurveyToken:
        """The token, read, when it is ``survey_id``'s link (``TokenWrongCase`` else)."""
        read = self.read(token)
        if read.survey_id != survey_id:
            raise TokenWrongCase("this survey link belongs to another case's survey",
                                 survey_id=str(survey_id))
        return read

    def check(self, token: str, survey_id: UUID, now: datetime,
              channel: str | None = None) -> SurveyToken:
        """A token that answers ``survey_id`` at ``now``, or the reason it does not;
        ``channel``: where the survey is asked now (a window's link answers only ``tablet``,
        :func:`check_still_at_window`)."""
        read = self.of_survey(token, survey_id)
        if now >= read.expires_at:
            raise TokenExpired("the survey link has expired",
                               expires_at=read.expires_at.isoformat())
        if channel is not None:
            check_still_at_window(read, channel)
        return read


def check_still_at_window(link: SurveyToken, channel: str) -> None:
    """A window's link answers its survey only while the survey is asked at the window: once
    asked where the resident is (``SurveyRedirected``), 410 ``token_superseded``."""
    if link.at_window and channel != WINDOW:
        raise TokenSuperseded("this link was the window's; the survey is now asked elsewhere "
                              "(by text, or by a clerk's call)", channel=channel)

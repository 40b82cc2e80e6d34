"""Reply links for a referred unit (派单 / 回复): signed, expiring, bound to one referral.

The unit that received a referral (a street office, the social insurance bureau, an employer)
has no account here. The clerk asks for a reply link (``POST /referrals/{id}/reply-link``)
and passes it on; with it the unit records its reply (``POST /referrals/{id}/reply``) and
nothing else: it reads no case, no other referral, no resident.

A token is ``<body>.<mac>`` in base64url, as survey links are (``services/feedback/tokens.py``):
the body holds the referral id and the expiry (epoch seconds); the MAC is HMAC-SHA256 under
``settings.survey_token_secret`` with its own context (``sixstep-referral-token-v1``), so a
survey link is never a reply link nor the other way round, truncated to 128 bits. Nobody
without the secret makes a token for another referral (another case, another center), and the
expiry cannot be moved. Each token has exactly one spelling. Replying once is the Referral
aggregate's rule, not the token's.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from shared.kernel.errors import CommandError
from shared.security import base64url

_CONTEXT = b"sixstep-referral-token-v1\x00"
_MAC_BYTES = 16
_BODY_BYTES = 21


class ReplyLinkInvalid(CommandError):
    status = 403
    code = "token_invalid"


class ReplyLinkWrongReferral(CommandError):
    status = 403
    code = "token_wrong_referral"


class ReplyLinkExpired(CommandError):
    status = 410
    code = "token_expired"


@dataclass(frozen=True)
class ReplyLink:
    referral_id: UUID
    expires_at: datetime


def link_expires_at(now: datetime, reply_due_at: datetime, at_least_days: int,
                    grace_days: int, at_most_days: int) -> datetime:
    """When a reply link issued ``now`` stops working: ``grace_days`` after the referral's
    reply deadline (a reply a little late is still the unit's to give, and a provisional
    deadline the published schedule moves is covered), and never before ``at_least_days``
    from now (a link asked for an overdue referral, chased with 督办, still works), but never
    beyond ``at_most_days`` from now: a link is a bearer secret passed through other hands.
    Before, it was ``at_least_days`` (30) alone, while a reply may be asked within 60 working
    days (some 90 calendar days over the Spring Festival): the unit was locked out first."""
    wanted = max(reply_due_at + timedelta(days=grace_days), now + timedelta(days=at_least_days))
    return min(wanted, now + timedelta(days=at_most_days))


class ReferralTokens:
    """Issues and reads referral reply links with one secret."""

    def __init__(self, secret: str | bytes) -> None:
        key = secret.encode() if isinstance(secret, str) else secret
        if len(key) < 16:
            raise ValueError("the token secret needs at least 16 bytes")
        self._key = key

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self._key, _CONTEXT + body, hashlib.sha256).digest()[:_MAC_BYTES]

    def issue(self, referral_id: UUID, expires_at: datetime) -> str:
        body = referral_id.bytes + int(expires_at.timestamp()).to_bytes(5, "big")
        return f"{base64url.encode(body)}.{base64url.encode(self._mac(body))}"

    def read(self, token: str) -> ReplyLink:
        """The link's referral and expiry; ``ReplyLinkInvalid`` unless this secret signed it."""
        try:
            body_text, _, mac_text = token.partition(".")
            body, mac = base64url.decode(body_text), base64url.decode(mac_text)
        except (ValueError, UnicodeEncodeError):
            raise ReplyLinkInvalid("the reply link is not valid") from None
        if len(body) != _BODY_BYTES or not hmac.compare_digest(mac, self._mac(body)):
            raise ReplyLinkInvalid("the reply link is not valid")
        # the same token, spelled another way
        if token != f"{base64url.encode(body)}.{base64url.encode(mac)}":
            raise ReplyLinkInvalid("the reply link is not valid")
        expires = datetime.fromtimestamp(int.from_bytes(body[16:], "big"), tz=UTC)
        return ReplyLink(UUID(bytes=body[:16]), expires)

    def check(self, token: str, referral_id: UUID, now: datetime) -> ReplyLink:
        """A link that answers ``referral_id`` at ``now``, or the reason it does not."""
        link = self.read(token)
        if link.referral_id != referral_id:
            raise ReplyLinkWrongReferral("this reply link belongs to another referral",
                                         referral_id=str(referral_id))
        if now >= link.expires_at:
            raise ReplyLinkExpired("the reply link has expired",
                                   expires_at=link.expires_at.isoformat())
        return link

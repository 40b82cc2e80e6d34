"""The token a POST Service Request answers with while the case is not readable yet: the case,
the version the POST left it at and the POST's log position, with a MAC under the service's
signing key that makes the token the POST's own (``GET tokens/{token}`` resolves it)."""

from __future__ import annotations

import hashlib
import hmac
import re
from uuid import UUID

from shared.settings import Settings

TOKEN = re.compile(r"([0-9a-f]{32})\.(\d{1,9})\.(\d{1,18})(?:\.([0-9a-f]{16}))?")


def _mac(key: str, case_id: UUID, version: int, position: int) -> str:
    message = f"sixstep-open311-token\x00{case_id.hex}.{version}.{position}".encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()[:16]


def issue_token(settings: Settings, case_id: UUID, version: int, position: int) -> str:
    """The case, the version the POST left it at, the POST's log position, and a MAC (under
    the service's signing key) that makes the token the POST's own."""
    signing = settings.auth_keys[0].get_secret_value()
    return f"{case_id.hex}.{version}.{position}.{_mac(signing, case_id, version, position)}"


def signed(settings: Settings, case_id: UUID, version: int, position: int,
            mac: str | None) -> bool:
    return mac is not None and any(
        hmac.compare_digest(mac, _mac(k.get_secret_value(), case_id, version, position))
        for k in settings.auth_keys)

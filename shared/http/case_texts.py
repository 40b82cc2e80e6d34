"""Free text about a case, scrubbed by intake of the case's resident, for follow-up and
feedback, which never see the vault (docs/security.md, "A name typed alone").

A resident's name typed alone (``王秀英不在家，下周再访``) has no shape the patterns can tell
from other words; only the vault, which knows the name, can find it. Intake scrubs its own
free text with the case's resident (``services/intake/known_people.py``). A follow-up or
feedback command that carries free text about a case sends those texts here first:
``POST /internal/case-texts/{case_id}`` on intake answers them scrubbed of that case's
resident (and the applicant acting for them), and the command's events are built from intake's
copy (``shared.kernel.scrubbing.SCRUBBED_BY_INTAKE``), then the patterns run as always. So:

* nothing of the resident travels on the bus or reaches follow-up or feedback: they send text
  their caller typed, and get it back with the resident's own data replaced by markers;
* the call is made by a write route only (the caller waits for it); no consumer and no
  scheduler depends on intake answering;
* intake answers only a call signed with a key drawn from ``SURVEY_TOKEN_SECRET`` (which
  every service has, and production refuses to leave at its development value), over the
  case id and the body: a clerk, a unit or a resident cannot ask it whether a case's resident
  is called so-and-so (an oracle that would bypass the vault's audited lookups);
* when intake cannot be reached (down, a timeout of ``CASE_TEXTS_TIMEOUT_S``, any answer but
  200), the write is not refused: the patterns alone scrub it, as before, and a warning
  (``case_texts.unscrubbed``, the case id, no text) says so. A name typed alone then stays
  in that event: docs/security.md says so;
* intake slow (hung, a black-holed address) costs one write the timeout, not every write:
  after a timeout the client asks no more for ``CASE_TEXTS_BACKOFF_S`` (the patterns alone,
  ``case_texts.skipped``), so a clerk's writes do not each wait 2 s, nor pile up on the
  connection pool, until intake answers again.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any
from uuid import UUID

import httpx
import structlog

from shared.settings import Settings, derived_key

PATH = "/internal/case-texts/{case_id}"
RESIDENT_PATH = "/internal/resident-texts/{resident_id}"
"""Free text about a resident with no case (a follow-up planned by hand for them, a policy's
outreach to one who only had a hint shown): scrubbed of that resident."""
PATTERN = r"/internal/(case|resident)-texts/[^/]+"
"""The routes' paths as a public pattern: they authenticate their caller themselves (the
signature)."""
HEADER = "x-sixstep-signature"
CONTEXT = b"sixstep-case-texts-v1"
CASE_TEXTS_TIMEOUT_S = 2.0
CASE_TEXTS_BACKOFF_S = 10.0
"""After a timeout, how long no write waits for intake (the patterns alone scrub)."""
MAX_TEXTS = 64

log = structlog.get_logger("sixstep.case_texts")


def signature(settings: Settings, case_id: UUID, body: bytes, about: str = "case") -> str:
    """The MAC a call carries: over what it is about (a case's id; ``about="resident"``, a
    resident's, never taken for a case's), and the body, with a key of its own."""
    key = derived_key(settings.survey_token_secret.get_secret_value(), CONTEXT)
    message = str(case_id).encode() + b"\n" + hashlib.sha256(body).digest()
    if about != "case":  # a case's call is signed as before the resident's route existed
        message = about.encode() + b"\n" + message
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def signed(settings: Settings, case_id: UUID, body: bytes, given: str | None,
           about: str = "case") -> bool:
    return given is not None and hmac.compare_digest(
        signature(settings, case_id, body, about), given)


def intake_url(settings: Settings) -> str:
    return (settings.intake_url or f"http://{settings.host}:{settings.intake_port}").rstrip("/")


class IntakeCaseTexts:
    """The client follow-up and feedback ask with (one per process; ``client``: another
    transport, as the tests give intake's app in process)."""

    def __init__(self, settings: Settings, client: httpx.AsyncClient | None = None) -> None:
        self.settings = settings
        self._client = client
        self._own = client is None
        self._quiet_until = 0.0  # monotonic: no call before, after a timeout

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(base_url=intake_url(self.settings),
                                             timeout=CASE_TEXTS_TIMEOUT_S)
        return self._client

    async def aclose(self) -> None:
        if self._own and self._client is not None:
            await self._client.aclose()
            self._client = None

    async def scrubbed(self, case_id: UUID, texts: list[str],
                       about: str = "case") -> list[str] | None:
        """``texts`` as intake scrubbed them of the case's resident (``about="resident"``:
        ``case_id`` is a resident's id, the texts are scrubbed of them), in the same order, or
        None when intake did not answer (the patterns alone will scrub them)."""
        if not texts:
            return []
        about_id = {f"{about}_id": str(case_id)}  # what the warnings name: a case or a resident
        if time.monotonic() < self._quiet_until:  # intake timed out a moment ago
            log.warning("case_texts.skipped", **about_id)
            return None
        body = json.dumps({"texts": texts[:MAX_TEXTS]}, ensure_ascii=False).encode()
        path = (PATH.format(case_id=case_id) if about == "case"
                else RESIDENT_PATH.format(resident_id=case_id))
        try:
            answer = await self._http().post(
                path, content=body,
                headers={HEADER: signature(self.settings, case_id, body, about),
                         "content-type": "application/json"})
        except httpx.TimeoutException as e:
            self._quiet_until = time.monotonic() + CASE_TEXTS_BACKOFF_S
            log.warning("case_texts.unscrubbed", **about_id, error=type(e).__name__,
                        quiet_for_s=CASE_TEXTS_BACKOFF_S)
            return None
        except httpx.HTTPError as e:
            log.warning("case_texts.unscrubbed", **about_id, error=type(e).__name__)
            return None
        try:
            got: Any = answer.json() if answer.status_code == 200 else None
        except ValueError:  # a proxy's page, a truncated body: not intake's answer
            got = None
        out = got.get("texts") if isinstance(got, dict) else None
        if not isinstance(out, list) or len(out) != len(texts[:MAX_TEXTS]) \
                or not all(isinstance(t, str) for t in out):
            log.warning("case_texts.unscrubbed", **about_id,
                        status=answer.status_code)
            return None
        return out + texts[MAX_TEXTS:]

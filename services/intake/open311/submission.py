"""POST Service Request, the use case: a civic app's request becomes a case, opened and heard.

The request is named (``form.py``) so that a retried POST is one case: from the app's
``Idempotency-Key`` when it sends one, otherwise by a random key that identical forms share
for ``open311_retry_window_s`` (``recent_forms.py``: the form stays server-side and is
forgotten after the window; nothing of it is in the key that travels). The case is opened with
``<key>-open`` and heard with ``<key>-hear``, so a retry after a half-done POST finishes the
hearing; two copies racing each other meet one answer. Whether the request has words is part
of the opening (:class:`Opening`): a key sent without a description and then with one (or the
other way round) is another request under the key, refused as another description is.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from services.intake import commands as c
from services.intake.application import Intake
from services.intake.open311.api_keys import Credential
from services.intake.open311.form import first_values, form_digest, header_key, sender_of
from services.intake.open311.recent_forms import RecentForms
from shared.contracts.vocabulary import Channel
from shared.eventstore.group_commit import Written
from shared.kernel.errors import VersionConflict
from shared.kernel.scrubbing import check_scrubbable

COUNTER = "open311"
"""The counter every Open311 case is opened at."""


class Opening(c.OpenCase):
    """An Open311 request's opening: ``described``, whether it has words to hear, is in its
    digest (``shared.eventstore.command_path.CommandDigests``), so that one key cannot be a
    request without words and then one with words, the second's added to the first's case."""

    described: bool


@dataclass(frozen=True)
class ServiceRequest:
    """A POST Service Request its route has checked: who sends it, the form as sent, the item,
    the resident's own words, and the app's Idempotency-Key if it sent one."""

    credential: Credential
    api_key: str
    pairs: list[tuple[str, str]]
    service_code: str
    description: str | None
    idempotency_key: str | None


async def _twice(call: Callable[[], Awaitable[Written]]) -> Written:
    """Two copies of one POST racing: the loser's retry finds the winner's answer."""
    try:
        return await call()
    except VersionConflict:
        return await call()


class Submissions:
    """Opens and hears the cases civic apps send, through intake's own use cases."""

    def __init__(self, intake: Intake, forms: RecentForms, forms_key: bytes) -> None:
        self.intake = intake
        self.forms = forms
        self.forms_key = forms_key

    async def submit(self, request: ServiceRequest) -> Written:
        """The case opened (and heard, when there is a description): its last write."""
        credential = request.credential
        if request.description:  # refused before the case opens, not after (redteam115)
            check_scrubbable("description", request.description)
        key = await self._key(request)
        opening = Opening(center_id=credential.center_id, counter_id=COUNTER,
                          clerk_id=credential.clerk_id, channel=Channel.OPEN311,
                          service_item=request.service_code, correlation_id=key,
                          described=bool(request.description))
        written = await _twice(lambda: self.intake.open_case(opening, credential.actor,
                                                             f"{key}-open"))
        if request.description:
            hearing = c.HearRequest(words=request.description, correlation_id=key)
            case_id = written.aggregate_id
            written = await _twice(lambda: self.intake.hear_request(
                case_id, hearing, credential.actor, f"{key}-hear",
                sender=sender_of(first_values(request.pairs))))
        return written

    async def _key(self, request: ServiceRequest) -> str:
        """The app's Idempotency-Key as ours, or the key of this form's first POST less than a
        window ago, or a new random one."""
        credential = request.credential
        if request.idempotency_key is not None:
            return header_key(request.api_key, credential.center_id, request.idempotency_key)
        return await self.forms.key_for(form_digest(
            self.forms_key, credential.center_id, credential.fingerprint, request.pairs))

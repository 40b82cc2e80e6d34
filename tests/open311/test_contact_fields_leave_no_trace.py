"""A civic app's form carries the resident's phone and name; what an Open311 POST leaves on the
bus and in the stream for good (case id, causation and correlation ids) must hold nothing of
it, also when the app sends no Idempotency-Key, while identical POSTs within the retry window
stay one case."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta
from uuid import uuid5
from zoneinfo import ZoneInfo

import orjson

from services.intake.domain import CASE_NAMESPACE
from services.intake.main import create_app
from shared.kernel.clock import ManualClock
from shared.settings import Settings
from tests.open311.support import CENTER, KEY, with_keys
from tests.support import running, stream_envelopes, wait_until

WINDOW_S = 600
# New Year's Eve, half an hour before midnight in Shanghai: the window crosses the year.
EVE = datetime(2026, 12, 31, 23, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
FORM = {"api_key": KEY, "service_code": "SA-HARDSHIP-SUBSIDY", "first_name": "秀英",
        "last_name": "王", "description": "老伴住院了，家里生活困难"}
PHONE = "13912345678"


def keys_a_key_holder_derives(phone: str, at: datetime) -> set[str]:
    """What whoever holds the api_key computes for a guessed phone, were the request's key an
    HMAC of the form under the api_key (xcenter43's finding): the key, its ``-open`` and
    ``-hear`` commands and the case id they name, for the slot of ``at`` and the one before."""
    form = sorted((n, v) for n, v in (FORM | {"phone": phone}).items() if n != "api_key")
    slot = int(at.timestamp()) // WINDOW_S
    found: set[str] = set()
    for s in (slot - 1, slot):
        material = f"{CENTER}\x1fform\x1f{s}\x1f{orjson.dumps(form).decode()}"
        key = "o311-" + hmac.new(KEY.encode(), material.encode(),
                                 hashlib.sha256).hexdigest()[:40]
        found |= {key, f"{key}-open", f"{key}-hear",
                  str(uuid5(CASE_NAMESPACE, f"{CENTER}\x1f{key}-open"))}
    return found


async def test_a_phone_in_the_form_cannot_be_found_again_from_the_stream(
        settings: Settings) -> None:
    clock = ManualClock(EVE)
    app = create_app(with_keys(settings, open311_retry_window_s=WINDOW_S), clock=clock)
    async with running(app) as client:
        async def post() -> str:
            r = await client.post("/open311/v2/requests.json", data=FORM | {"phone": PHONE})
            assert r.status_code == 200, r.text
            return r.json()[0]["service_request_id"]

        first = await post()
        # The app retries 9 minutes 59 seconds later (across a slot boundary of the old
        # scheme): still the one case.
        clock.advance(timedelta(seconds=WINDOW_S - 1))
        assert await post() == first
        # A window after the first, the same form is a new request.
        clock.advance(timedelta(seconds=2))
        second = await post()
        assert second != first

        async def settled() -> bool:
            return len([e for e in await stream_envelopes(settings)
                        if e.type == "RequestHeard"]) == 2
        await wait_until(settled, what="both cases heard on the stream")
        travelled = set()
        for e in await stream_envelopes(settings):
            travelled |= {str(e.case_id), str(e.aggregate_id), e.causation_id, e.correlation_id}
        # The key holder tries phone numbers: none, the resident's included, is confirmed.
        for moment in (EVE, EVE + timedelta(seconds=WINDOW_S + 1)):
            for guess in (PHONE, "13912345679", "13800000000"):
                assert not keys_a_key_holder_derives(guess, moment) & travelled, guess

        # Nothing of the form outlives its window on the server either: a window after the
        # last POST the forms seen are forgotten.
        clock.advance(timedelta(seconds=WINDOW_S + 1))
        await app.state.open311_forms.forget_expired()
        assert await app.state.pool.fetchval("SELECT count(*) FROM open311_recent_forms") == 0

"""A civic app's description of characters nobody sees (a zero-width space pasted from a chat)
is no description: the request opens its case without words, as one sent without a
description does. Before, the case was opened, its words were then refused as blank (every
request text is trimmed of them), and the app was answered 400 for a case already recorded:
it sent again with words, and the resident had two cases."""

from __future__ import annotations

from services.intake.main import create_app
from shared.settings import Settings
from tests.open311.support import KEY, with_keys
from tests.support import running, stream_envelopes, wait_until

ITEM = "EMP-UNEMPLOYMENT-REGISTRATION"


async def test_a_description_of_characters_nobody_sees_is_no_description(
        settings: Settings) -> None:
    async with running(create_app(with_keys(settings))) as client:
        r = await client.post("/open311/v2/requests.json", data={
            "api_key": KEY, "service_code": ITEM, "description": "\u200b\ufeff"})
        assert r.status_code == 200, r.text
        blank = r.json()[0]["service_request_id"]
        r = await client.post("/open311/v2/requests.json", data={
            "api_key": KEY, "service_code": ITEM, "description": "\u200b上个月离职了\u200b"})
        assert r.status_code == 200, r.text
        worded = r.json()[0]["service_request_id"]

        async def heard() -> list[str]:  # published after the blank request's events
            return [e.payload["words"] for e in await stream_envelopes(settings)
                    if e.type == "RequestHeard" and str(e.case_id) == worded]

        await wait_until(heard, what="the second request's words on the stream")
        assert await heard() == ["上个月离职了"]
        events = [e.type for e in await stream_envelopes(settings) if str(e.case_id) == blank]
    assert events == ["CaseOpened"]

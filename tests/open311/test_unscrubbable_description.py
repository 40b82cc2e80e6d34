"""A civic app's description the scrubber fails on (a defect of its own, as redteam108 found
one) is refused as a counter's note is (422 ``free_text_unscrubbable`` there, 400 by GeoReport
v2 here, naming the description), so that the resident can say it otherwise. Before redteam115
the case was opened first and its words refused after: the app was answered an error for a case
already recorded, sent the words again otherwise, and the resident had two cases, one opened as
described but never heard."""

from __future__ import annotations

import pytest

from services.intake.main import create_app
from shared.settings import Settings
from tests.open311.support import KEY, with_keys
from tests.support import running, scrubber_broken_on, stream_envelopes, wait_until

ITEM = "EMP-UNEMPLOYMENT-REGISTRATION"


async def test_a_description_the_scrubber_fails_on_opens_no_case_and_said_again_opens_one(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.kernel.privacy import redaction

    scrubber_broken_on("锟斤拷", monkeypatch)
    async with running(create_app(with_keys(settings))) as client:
        with pytest.warns(redaction.RedactionFailed):
            r = await client.post("/open311/v2/requests.json", data={
                "api_key": KEY, "service_code": ITEM,
                "description": "上个月离职了，锟斤拷，电话13912345678"})
        assert r.status_code == 400, r.text  # GeoReport v2 answers every refusal 400
        assert r.json()[0]["description"].startswith("description: "), r.text
        assert "139" not in r.text and "离职" not in r.text
        r = await client.post("/open311/v2/requests.json", data={
            "api_key": KEY, "service_code": ITEM, "description": "上个月离职了"})
        assert r.status_code == 200, r.text
        worded = r.json()[0]["service_request_id"]

        async def heard() -> list[str]:
            return [e.payload["words"] for e in await stream_envelopes(settings)
                    if e.type == "RequestHeard" and str(e.case_id) == worded]

        await wait_until(heard, what="the words said again on the stream")
        opened = [e.case_id for e in await stream_envelopes(settings) if e.type == "CaseOpened"]
    assert [str(c) for c in opened] == [worded]

"""A supervisor closes a month for the public page (公示): only a month the center's events can
lie in. The year 1 or 1969 once closed as "reported, nothing happened" and stood on the public
page for good (a closed month is revised, never withdrawn), and the year 0000 was a 500."""

from __future__ import annotations

from services.feedback.main import create_app
from shared.settings import Settings
from tests.support import TEST_CENTER, running, stream_envelopes


async def test_a_month_before_any_event_could_lie_in_it_is_not_closed(
        settings: Settings) -> None:
    async with running(create_app(settings)) as client:
        for month, code in (("0000-01", "validation_failed"), ("0001-01", "validation_failed"),
                            ("1969-12", "invalid_command"), ("1999-12", "invalid_command")):
            r = await client.post(f"/periods/{TEST_CENTER}/{month}/close",
                                  headers={"Idempotency-Key": f"close-{month}"})
            assert (r.status_code, r.json()["error"]["code"]) == (422, code), (month, r.text)
        r = await client.post(f"/periods/{TEST_CENTER}/2000-01/close",
                              headers={"Idempotency-Key": "close-2000-01"})
        assert r.status_code in (200, 201), r.text

    closed = [e.payload["month"] for e in await stream_envelopes(settings)
              if e.type == "PeriodClosed"]
    assert closed == ["2000-01-01"]

"""GET Service Requests without dates is the last 90 days of the service's own clock: the
center's today, not the machine's (time is injected, as everywhere else)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from services.intake.main import create_app
from shared.kernel.clock import ManualClock
from shared.settings import Settings
from tests.open311.support import KEY, with_keys
from tests.support import running, wait_until

# New Year's Eve, half an hour before midnight in Shanghai, some years on: whatever day the
# machine's clock says, it is more than 90 days away.
EVE = datetime(2030, 12, 31, 23, 30, tzinfo=ZoneInfo("Asia/Shanghai"))


async def test_the_last_90_days_end_on_the_services_clock(settings: Settings) -> None:
    clock = ManualClock(EVE)
    async with running(create_app(with_keys(settings), clock=clock)) as client:
        r = await client.post("/open311/v2/requests.json", data={
            "api_key": KEY, "service_code": "SA-HARDSHIP-SUBSIDY", "description": "家里困难"})
        assert r.status_code == 200, r.text
        [created] = r.json()
        found: list[dict] = []

        async def listed() -> bool:
            nonlocal found
            r = await client.get(f"/open311/v2/requests/{created['service_request_id']}.json",
                                 params={"api_key": KEY})
            if r.status_code != 200:
                return False
            r = await client.get("/open311/v2/requests.json", params={"api_key": KEY})
            assert r.status_code == 200, r.text
            found = r.json()
            return True

        await wait_until(listed, what="the request in the read model")
        assert [x["service_request_id"] for x in found] == [created["service_request_id"]]
        assert found[0]["requested_datetime"].startswith("2030-12-31T23:30")

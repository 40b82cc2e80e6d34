"""GET Service Requests without dates is the last 90 days of the service's own clock: the
center's today, not the machine's (time is injected, as everywhere else)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from services.intake.main import create_app
from shared.kernel.clock import ManualClock
from shared.settings import Settings
from tests.open311.support import KEY, with_keys
from tests.support import headers, running, wait_until

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


async def test_an_expected_date_in_a_year_without_a_schedule_says_it_may_move(
        settings: Settings) -> None:
    """Guided on Sunday 20 December 2026, a hardship subsidy is due Tuesday 12 January 2027,
    counted on the law alone. The civic app read expected_datetime 2027-01-12 as firm while
    the paper and the counter said 暂定; now the request's service_notice says so, while the
    date can still move: overdue on the 14th, it keeps its day and reads bare again."""
    clock = ManualClock(datetime(2026, 12, 20, 10, tzinfo=ZoneInfo("Asia/Shanghai")))
    async with running(create_app(with_keys(settings), clock=clock)) as client:
        r = await client.post("/open311/v2/requests.json", data={
            "api_key": KEY, "service_code": "SA-HARDSHIP-SUBSIDY", "description": "家里困难"})
        assert r.status_code == 200, r.text
        case_id = r.json()[0]["service_request_id"]
        r = await client.post(f"/cases/{case_id}/guidance", headers=headers("k-guide-1"), json={
            "policy_basis": "《社会救助暂行办法》", "eligibility": "eligible"})
        assert r.status_code == 200, r.text
        r = await client.get(f"/cases/{case_id}", params={"after": r.json()["position"]})
        assert r.status_code == 200, r.text

        async def asked() -> dict:
            r = await client.get(f"/open311/v2/requests/{case_id}.json",
                                 params={"api_key": KEY})
            assert r.status_code == 200, r.text
            return r.json()[0]

        now = await asked()
        assert now["expected_datetime"] == "2027-01-12T23:59:59+08:00", now
        assert now["service_notice"] == (
            "通常15个工作日内办结；预计办结日期暂按法定节假日推算，以国务院公布的放假安排为准")
        clock.set(datetime(2027, 1, 14, 10, tzinfo=ZoneInfo("Asia/Shanghai")))
        late = await asked()
        assert (late["expected_datetime"], late["service_notice"]) == (
            "2027-01-12T23:59:59+08:00", "通常15个工作日内办结")

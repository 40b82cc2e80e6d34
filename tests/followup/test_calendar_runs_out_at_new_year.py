"""The calendar's own "runs out" warning at the year's turn, on the service's clock in the
center's zone (calendar50).

At 23:30 on 31 December in Shanghai (15:30 UTC) the official schedules end today: 0 days left,
2027 said to be planned provisionally. At 00:30 on 1 January in Shanghai the UTC date is still
the 31st, but the center's day is 2027's: -1 day, and ops read that dates are planned
provisionally, on /ops/calendar and on the gauge the alerts read. On 29 February 2028, a year
the holiday package does not know, the warning asks for 2027's schedule and 2028's."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import httpx

from shared.settings import Settings
from tests.followup.story import center_day
from tests.followup.test_calendar_published import ops


async def _days_left(client: httpx.AsyncClient, settings: Settings
                     ) -> tuple[str, int, list[str], float]:
    r = await client.get("/ops/calendar", headers=ops(settings))
    assert r.status_code == 200, r.text
    body = r.json()
    metrics = (await client.get("/metrics")).text
    [gauge] = re.findall(r'^sixstep_calendar_official_days_left\{service="followup"\} (\S+)$',
                         metrics, re.MULTILINE)
    return (body["today"], body["centers"][0]["official_days_left"], body["warnings"],
            float(gauge))


async def test_ops_read_the_schedules_end_on_the_center_s_day_at_new_year_and_in_2028(
        settings: Settings) -> None:
    eve = datetime(2026, 12, 31, 15, 30, tzinfo=UTC)  # 23:30 in Shanghai
    async with center_day(settings, eve, with_intake=False) as center:
        today, left, [warning], gauge = await _days_left(center.followup, settings)
        assert (today, left, gauge) == ("2026-12-31", 0, 0.0)
        assert "in 0 days; 2027 is planned provisionally" in warning

        center.clock.set(datetime(2026, 12, 31, 16, 30, tzinfo=UTC))  # 00:30 on 1 January
        today, left, [warning], gauge = await _days_left(center.followup, settings)
        assert (today, left, gauge) == ("2027-01-01", -1, -1.0)
        assert "today is past the official schedules (they end 2026-12-31)" in warning
        assert "dates are planned provisionally: add 2027's official schedule" in warning

        center.clock.set(datetime(2028, 2, 29, 2, 0, tzinfo=UTC))
        today, left, [warning], gauge = await _days_left(center.followup, settings)
        assert (today, left, gauge) == ("2028-02-29", -425, -425.0)
        assert "add the official schedules of 2027 to 2028" in warning

"""The API's window for days, without servers: its last day is the center's, so the window
does not shift by a day from 16:00 UTC (the Shanghai-date trap)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from shared.kernel.errors import InvalidCommand
from shared.kernel.moments import Moments
from shared.settings import Settings

SHANGHAI = ZoneInfo("Asia/Shanghai")
# Half an hour after midnight on New Year's Day in Shanghai: 31 December on a UTC machine.
AFTER_MIDNIGHT = datetime(2027, 1, 1, 0, 30, tzinfo=SHANGHAI).astimezone(UTC)


def test_the_horizons_last_day_is_the_centers_day() -> None:
    moments = Moments.from_settings(Settings(environment="development", log_json=False,
                                             dates_horizon_days=1))
    assert moments.tz == SHANGHAI
    # Tomorrow in Shanghai is 2 January: within a one-day horizon; the 3rd is not.
    moments.check_value("due_on", date(2027, 1, 2), AFTER_MIDNIGHT)
    with pytest.raises(InvalidCommand):
        moments.check_value("due_on", date(2027, 1, 3), AFTER_MIDNIGHT)

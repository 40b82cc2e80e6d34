"""`sixstep calendar status|reload`: ops see the calendar's years and reload a new holidays file
on the running services, which answer over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path

from services.followup.main import create_app as create_followup
from shared.kernel.clock import ManualClock
from shared.settings import Settings
from tests.cli.in_process import invoke
from tests.followup.story import DECEMBER_20, quiet
from tests.pages.center import _serve
from tests.support import token_for
from tools.devservers import free_port

SCHEDULE_2027 = {"2027": {"source": "illustrative test data",
                          "holidays": ["2027-01-01..2027-01-03", "2027-01-06"],
                          "workdays": ["2027-02-20"]}}


def sixstep(*args: str, **env: str) -> tuple[int, str]:
    result = invoke(args, env=env)
    return result.exit_code, result.output


def test_status_works_out_the_calendar_from_the_shells_settings(tmp_path: Path) -> None:
    code, out = sixstep("calendar", "status", "--local", "--today", "2026-12-20")
    assert code == 0, out
    assert "2004-2026 package" in out and "2027-2031 provisional" in out
    assert "in 11" in out and "days" in out  # the warning: official schedules end Dec 31

    bad = tmp_path / "holidays.json"
    bad.write_text('{\n  "2027": {\n    "workdays": ["2027-01-06"]\n  }\n}')
    code, out = sixstep("calendar", "status", "--local", HOLIDAYS_FILE=str(bad))
    assert code == 2
    assert "line 3" in out.replace("\n", " ") and "Wednesday" in out

    good = tmp_path / "next.json"
    good.write_text(json.dumps(SCHEDULE_2027))
    code, out = sixstep("calendar", "status", "--local", "--today", "2026-12-20",
                        HOLIDAYS_FILE=str(good))
    assert code == 0 and "2027 file" in out and "2028-2032 provisional" in out


async def test_reload_tells_the_running_service_and_a_bad_file_changes_nothing(
        settings: Settings, tmp_path: Path) -> None:
    holidays = tmp_path / "holidays.json"
    holidays.write_text("{}")
    app = create_followup(quiet(settings, holidays_file=holidays), ManualClock(DECEMBER_20))
    ops = token_for(settings, role="ops", center=None)
    async with contextlib.AsyncExitStack() as stack:
        url = await _serve(app, free_port(), stack)

        def run(*args: str) -> tuple[int, str]:
            return sixstep("calendar", *args, "--url", url, SIXSTEP_TOKEN=ops)

        code, out = await asyncio.to_thread(run, "status")
        assert code == 0 and "2027-2031 provisional" in out, out

        holidays.write_text('{\n  "2027": {\n    "holidays": ["2027-01-01",\n'
                            '                 "2027-01-01"]\n  }\n}')
        code, out = await asyncio.to_thread(run, "reload")
        assert code == 2, out
        flat = " ".join(out.split())
        assert "nothing changed" in flat and "line 4" in flat and "listed twice" in flat

        holidays.write_text(json.dumps(SCHEDULE_2027))
        code, out = await asyncio.to_thread(run, "reload")
        assert code == 0, out
        assert "official schedules changed for *" in out
        assert "followups replanned 0" in out and "rules unparked 0" in out
        code, out = await asyncio.to_thread(run, "status")
        assert "2027 file" in out and "2028-2032 provisional" in out

        code, out = await asyncio.to_thread(
            sixstep, "calendar", "reload", "--url", url,
            SIXSTEP_TOKEN=token_for(settings, role="supervisor"))
        assert code == 2 and "nothing changed" in out and "ops" in out.lower(), out

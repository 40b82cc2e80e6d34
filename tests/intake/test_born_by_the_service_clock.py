"""A resident ID number's birth date is checked against China's today on intake's clock, not
the machine's wall clock: a child born just after midnight on New Year's Day in Shanghai is
registered while UTC is still on 31 December, and the same number is refused by a clock a day
earlier. Before, the wall clock decided, so a service whose clock was set (the tests, a
replayed day) refused or took numbers by the day the machine happened to be on."""

from __future__ import annotations

from datetime import date

from services.intake.idnumber import check_character
from services.intake.main import create_app as create_intake
from shared.kernel.clock import ManualClock
from shared.settings import Settings
from tests.followup.story import at
from tests.support import running


def born_on(day: date) -> str:
    first17 = f"310115{day:%Y%m%d}002"
    return first17 + check_character(first17)


def resident(number: str) -> dict[str, object]:
    return {"name": "王小宝", "id_number": number, "phone": "13912345678",
            "consent": {"contact": True}}


async def test_a_new_years_baby_is_registered_while_utc_is_still_on_the_old_year(
        settings: Settings) -> None:
    clock = ManualClock(at(2027, 1, 1, 0, 30))  # 31 December 16:30 UTC
    newborn = born_on(date(2027, 1, 1))
    async with running(create_intake(settings, clock=clock)) as intake:
        clock.set(at(2026, 12, 31, 23, 30))  # the eve, half an hour to go in Shanghai
        early = await intake.post("/residents", json=resident(newborn))
        assert early.status_code == 422, early.text
        assert early.json()["error"]["details"]["fields"][0]["field"] == "id_number"
        assert newborn not in early.text
        clock.set(at(2027, 1, 1, 0, 30))
        registered = await intake.post("/residents", json=resident(newborn))
        assert registered.status_code == 201, registered.text
        found = await intake.post("/residents/lookup",
                                  json={"id_number": newborn, "purpose": "newborn allowance"})
        assert found.status_code == 200, found.text
        # 29 February 2028, a year the holiday package does not know: born that day, found
        # that day, refused the day before.
        leap = born_on(date(2028, 2, 29))
        clock.set(at(2028, 2, 28, 23, 59))
        assert (await intake.post("/residents", json=resident(leap))).status_code == 422
        clock.set(at(2028, 2, 29, 0, 1))
        assert (await intake.post("/residents", json=resident(leap))).status_code == 201

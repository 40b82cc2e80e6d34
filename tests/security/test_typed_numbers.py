"""An ID number and a phone number as a clerk really types them: in the input method's
full-width digits, in groups with spaces, or with a digit of another form slipped in. Each is
kept as the one ASCII number it is, so the resident is found again whichever way the number is
typed next time, and nothing an SMS gateway cannot dial is kept; digits of another script are
refused, never kept as a second resident."""

from __future__ import annotations

from services.intake.main import create_app
from shared.security.principals import Role
from shared.settings import Settings
from tests.support import id_number, running

FULL_WIDTH = str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")


async def test_a_number_typed_in_full_width_or_in_groups_is_the_same_resident(
        settings: Settings) -> None:
    number = id_number()
    async with running(create_app(settings), role=Role.CLERK) as client:
        r = await client.post("/residents", json={
            "name": "阿卜杜拉·艾买提", "id_number": number.translate(FULL_WIDTH),
            "phone": "１３９ １２３４ ５６７８", "consent": {"contact": True}})
        assert r.status_code == 201, r.text
        resident = r.json()["resident_id"]

        for typed in (number, f"{number[:6]} {number[6:14]} {number[14:]}",
                      f"{number[:6]}-{number[6:14]}-{number[14:]}".translate(FULL_WIDTH),
                      number.lower()):
            r = await client.post("/residents/lookup",
                                  json={"id_number": typed, "purpose": "returning resident"})
            assert (r.status_code, r.json().get("resident_id")) == (200, resident), typed
        r = await client.post("/residents", json={
            "name": "阿卜杜拉·艾买提", "id_number": number, "phone": "13912345678",
            "consent": {"contact": True}})
        assert (r.status_code, r.json()["resident_id"]) == (200, resident), "no second record"

        r = await client.get(f"/residents/{resident}", params={"purpose": "follow-up call"})
        assert (r.json()["id_number"], r.json()["phone"]) == (number, "13912345678")

        # A digit of another form in the middle is folded too, never stored as typed.
        r = await client.patch(f"/residents/{resident}", json={"phone": "13８１２３４５６７８"},
                               headers={"Idempotency-Key": "typed-phone-1"})
        assert r.status_code == 200, r.text
        r = await client.get(f"/residents/{resident}", params={"purpose": "follow-up call"})
        assert r.json()["phone"] == "13812345678"

        # Digits of another script are not a Chinese number: refused, not kept.
        arabic = number[:2] + number[2:17].translate(str.maketrans("0123456789",
                                                                   "٠١٢٣٤٥٦٧٨٩")) + number[17]
        r = await client.post("/residents/lookup",
                              json={"id_number": arabic, "purpose": "returning resident"})
        assert r.status_code == 422, r.text
        r = await client.patch(f"/residents/{resident}", json={"phone": "13٨١٢٣٤٥٦٧٨"},
                               headers={"Idempotency-Key": "typed-phone-2"})
        assert r.status_code == 422, r.text

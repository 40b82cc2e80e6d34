"""What goes wrong answers as the spec says: 403 api_key, 404 not found, 400 the rest."""

from __future__ import annotations

from services.intake.main import create_app
from shared.settings import Settings
from tests.open311.support import CENTER, KEY, OTHER_CENTER, OTHER_KEY, spec_error, with_keys
from tests.support import running

ITEM = "SA-HARDSHIP-SUBSIDY"


async def test_what_goes_wrong_answers_in_the_specs_error_format(settings: Settings) -> None:
    async with running(create_app(with_keys(settings))) as client:

        async def post(status: int, **form: str) -> str:
            return await spec_error(client, "POST", "requests", status, data=form)

        # "403 - Missing or Invalid API Key (specify in error message)"
        assert "Missing api_key" in await post(403, service_code=ITEM, description="x")
        assert "Invalid api_key" in await post(403, api_key="guess-0123456789abcdef",
                                               service_code=ITEM, description="x")
        await spec_error(client, "GET", "requests", 403)
        await spec_error(client, "GET", f"requests/{'0' * 32}", 403, params={"api_key": "no"})
        # "400 - service_code or jurisdiction_id was not provided"
        assert "service_code" in await post(400, api_key=KEY, description="x")
        # "404 - service_code or jurisdiction_id was not found"
        assert "NO-SUCH" in await post(404, api_key=KEY, service_code="NO-SUCH")
        assert "jurisdiction_id" in await post(404, api_key=KEY, service_code=ITEM,
                                               jurisdiction_id=OTHER_CENTER)
        await spec_error(client, "GET", "requests", 404,
                         params={"api_key": KEY, "jurisdiction_id": OTHER_CENTER})
        # Malformed requests: 400.
        assert "lat and long" in await post(400, api_key=KEY, service_code=ITEM, lat="31.2")
        assert "lat and long" in await post(400, api_key=KEY, service_code=ITEM, lat="north",
                                            long="east")
        assert "4000" in await post(400, api_key=KEY, service_code=ITEM, description="多" * 4001)
        assert "COLOUR" in await spec_error(client, "POST", "requests", 400, data={
            "api_key": KEY, "service_code": ITEM, "attribute[COLOUR]": "red"})
        r = await client.post("/open311/v2/requests.json", json={"api_key": KEY})
        assert r.status_code == 400 and "x-www-form-urlencoded" in r.json()[0]["description"]
        r = await client.post("/open311/v2/requests.json", data={
            "api_key": KEY, "service_code": ITEM}, headers={"Idempotency-Key": "short"})
        assert r.status_code == 400 and "Idempotency-Key" in r.json()[0]["description"]
        # GET Service Requests: "Must use w3 format"; "may not span more than 90 days";
        # "status ... Options: open, closed".
        mine = {"api_key": KEY}
        assert "W3C" in await spec_error(client, "GET", "requests", 400,
                                         params=mine | {"start_date": "05/24/2010"})
        await spec_error(client, "GET", "requests", 400,
                         params=mine | {"start_date": "2010-05-24T00:00:00"})  # no zone
        assert "90 days" in await spec_error(client, "GET", "requests", 400, params=mine | {
            "start_date": "2010-01-01T00:00:00Z", "end_date": "2010-06-01T00:00:00Z"})
        await spec_error(client, "GET", "requests", 400, params=mine | {
            "start_date": "2010-06-01T00:00:00+08:00", "end_date": "2010-05-01"})
        assert "pending" in await spec_error(client, "GET", "requests", 400,
                                             params=mine | {"status": "open,pending"})
        # A well-formed W3C window (dates alone are the center's days) is fine.
        r = await client.get("/open311/v2/requests.json", params=mine | {
            "start_date": "2010-05-24", "end_date": "2010-06-24T00:00:00+08:00"})
        assert r.status_code == 200 and r.json() == []
        # "404 for resources that don't exist"
        await spec_error(client, "GET", "requests/293944", 404, params=mine)
        await spec_error(client, "GET", "tokens/12345", 404)
        # A hashed credential works like a plain one, for its own center only.
        r = await client.post("/open311/v2/requests.json", data={
            "api_key": OTHER_KEY, "service_code": ITEM, "jurisdiction_id": CENTER})
        assert r.status_code == 404
        r = await client.post("/open311/v2/requests.json", data={
            "api_key": OTHER_KEY, "service_code": ITEM, "jurisdiction_id": OTHER_CENTER})
        assert r.status_code == 200, r.text

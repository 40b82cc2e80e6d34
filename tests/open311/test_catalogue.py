"""A civic app finds the center: discovery, the service list and what each item needs."""

from __future__ import annotations

from services.intake.main import create_app
from shared.catalogue import load_catalogue
from shared.settings import Settings
from tests.open311.support import (
    CENTER,
    W3C_DATETIME,
    both,
    spec_error,
    with_keys,
)
from tests.support import running

# GET Service List, Response: "service_code", "service_name", "description", "metadata",
# "type", "keywords", "group".
SERVICE_FIELDS = ["service_code", "service_name", "description", "metadata", "type",
                  "keywords", "group"]
# GET Service Definition, Response: "service_code", "attributes" of "attribute": "variable",
# "code", "datatype", "required", "datatype_description", "order", "description", "values".
ATTRIBUTE_FIELDS = ["variable", "code", "datatype", "required", "datatype_description",
                    "order", "description", "values"]
# "datatype ... Options: string, number, datetime, text, singlevaluelist, multivaluelist."
DATATYPES = {"string", "number", "datetime", "text", "singlevaluelist", "multivaluelist"}


async def test_a_civic_app_discovers_the_center_and_its_catalogue(settings: Settings) -> None:
    catalogue = load_catalogue()
    async with running(create_app(with_keys(settings))) as client:
        # Service Discovery: "All fields are required." changeset, contact, key_service,
        # endpoints.endpoint.{specification, url, changeset, type, formats.format}.
        found = await both(client, "GET", "discovery", "discovery")
        assert list(found) == ["changeset", "contact", "key_service", "endpoints"]
        assert all(found[k] for k in ("changeset", "contact", "key_service"))
        [endpoint] = found["endpoints"]
        assert endpoint == {
            "specification": "http://wiki.open311.org/GeoReport_v2",
            "url": "http://sixstep.test/open311/v2", "changeset": found["changeset"],
            "type": "production", "formats": ["text/xml", "application/json"]}
        assert W3C_DATETIME.fullmatch(found["changeset"])

        listed = await both(client, "GET", "services", "services")
        assert [s["service_code"] for s in listed] == [i.code for i in catalogue.items()]
        for s in listed:
            assert list(s) == SERVICE_FIELDS
            assert s["metadata"] in (True, False)  # "Possible values: true, false."
            assert s["type"] == "realtime"  # "Possible values: realtime, batch, blackbox."
        hardship = next(s for s in listed if s["service_code"] == "SA-HARDSHIP-SUBSIDY")
        assert hardship["service_name"] == "困难补助" and hardship["group"] == "社会救助"
        assert "hardship allowance" in hardship["keywords"].split(", ")
        assert "社会救助暂行办法" in hardship["description"] and hardship["metadata"] is True
        # The plain words come first: what a resident reads in the app before the policy.
        summary = catalogue.require("SA-HARDSHIP-SUBSIDY").summary
        assert summary is not None and hardship["description"].startswith(summary.zh + "办理依据")
        english = await both(client, "GET", "services", "services",
                             headers={"Accept-Language": "en-GB,en;q=0.9,zh;q=0.5"})
        assert english[listed.index(hardship)]["service_name"] == "Hardship subsidy"
        assert english[listed.index(hardship)]["description"].startswith(summary.en + " Policy")
        same = await both(client, "GET", "services", "services",
                          params={"jurisdiction_id": CENTER})
        assert same == listed

        defined = await both(client, "GET", "services/SA-HARDSHIP-SUBSIDY", "service_definition")
        assert list(defined) == ["service_code", "attributes"]
        assert defined["service_code"] == "SA-HARDSHIP-SUBSIDY"
        item = catalogue.require("SA-HARDSHIP-SUBSIDY")
        attributes = defined["attributes"]
        assert len(attributes) == len(item.documents) + 2
        for a in attributes:
            assert list(a) == ATTRIBUTE_FIELDS
            assert a["datatype"] in DATATYPES and a["variable"] is False
            assert a["required"] is False and a["values"] == []
        # "order ... Any positive integer not used for other attributes in the same code"
        assert [a["order"] for a in attributes] == list(range(1, len(attributes) + 1))
        assert len({a["code"] for a in attributes}) == len(attributes)
        assert [a["description"] for a in attributes[:len(item.documents)]] == [
            f"需携带：{d.zh}" for d in item.documents]

        # Possible Errors: "404 - service_code or jurisdiction_id provided were not found"
        assert "NO-SUCH" in await spec_error(client, "GET", "services/NO-SUCH", 404)
        await spec_error(client, "GET", "services", 404, params={"jurisdiction_id": "x.gov"})
        await spec_error(client, "GET", "services/SA-HARDSHIP-SUBSIDY", 404,
                         params={"jurisdiction_id": "x.gov"})
        # Anything under /open311 that is not a resource answers in the spec's shape too.
        await spec_error(client, "GET", "no-such-resource", 404)
        await spec_error(client, "DELETE", "services", 404)
        r = await client.get("/open311/v2/services.csv")
        assert r.status_code == 400 and r.text.startswith("<?xml")
        assert "<code>400</code>" in r.text

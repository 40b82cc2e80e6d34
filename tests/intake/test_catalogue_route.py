"""The counter's catalogue: an item in plain words, and what else the resident may need."""

from __future__ import annotations

import json
from pathlib import Path

from services.intake.main import create_app
from shared.security.principals import Role
from shared.settings import Settings
from tests.support import running


async def test_a_clerk_finds_an_item_in_plain_words_with_what_else_the_resident_needs(
    settings: Settings, tmp_path: Path
) -> None:
    # The center's own file, written before summaries existed, points at a shipped item.
    center_file = tmp_path / "center.json"
    center_file.write_text(json.dumps({"items": [{
        "code": "SA-WINTER-HEATING-SUBSIDY", "name_zh": "冬季取暖补贴",
        "name_en": "Winter heating subsidy", "category": "social_assistance",
        "documents": [{"zh": "居民身份证", "en": "Resident identity card"}],
        "policy_basis": {"zh": "本市冬季取暖补贴办法", "en": "The city's heating rules"},
        "typical_days": 10, "recurring": False,
        "related_items": ["SA-HARDSHIP-SUBSIDY"],
    }]}, ensure_ascii=False), encoding="utf-8")
    app = create_app(settings.model_copy(update={"catalogue_paths": [center_file]}))
    async with running(app, role=Role.CLERK) as client:
        found = (await client.get("/catalogue", params={"q": "tingbao"})).json()
        assert found[0]["code"] == "SI-FLEXIBLE-CONTRIBUTION-SUSPENSION"
        assert found[0]["summary"]["zh"].startswith("自己交社保的人")
        assert "SI-UNEMPLOYMENT-BENEFIT" in found[0]["related_items"]

        benefit = (await client.get("/catalogue/SI-UNEMPLOYMENT-BENEFIT")).json()
        for code in benefit["related_items"]:
            assert (await client.get(f"/catalogue/{code}")).status_code == 200

        heating = (await client.get("/catalogue/SA-WINTER-HEATING-SUBSIDY")).json()
        assert heating["summary"] is None
        assert heating["related_items"] == ["SA-HARDSHIP-SUBSIDY"]
        everything = (await client.get("/catalogue")).json()
        assert len(everything) >= 201

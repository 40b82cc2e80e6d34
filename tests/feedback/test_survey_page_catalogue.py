"""The survey page names the resident's affair as the center's catalogue files say: the files
are read when the service starts, as intake's and follow-up's, so an edit is there at the next
start (docs/catalogue.md), also when one process starts the service again."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from pathlib import Path

from services.feedback.application import ResolvedCase
from services.feedback.main import create_app
from shared.settings import Settings
from tests.support import TEST_CENTER, running, wait_until

ITEM = "SA-WINTER-HEATING-SUBSIDY"


def center_file(path: Path, name_zh: str) -> None:
    path.write_text(json.dumps({"items": [{
        "code": ITEM, "name_zh": name_zh, "name_en": "Winter heating subsidy",
        "category": "social_assistance",
        "documents": [{"zh": "居民身份证", "en": "Resident identity card"}],
        "policy_basis": {"zh": "本市冬季取暖补贴办法", "en": "The city's heating rules"},
        "typical_days": 10, "recurring": False,
    }]}, ensure_ascii=False), encoding="utf-8")


async def test_the_survey_page_names_the_item_as_the_catalogue_file_read_at_the_last_start(
        settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "center.json"
    center_file(path, "冬季取暖补贴")
    settings = settings.model_copy(update={"catalogue_paths": [path]})
    app = create_app(settings)
    async with running(app, anonymous=True) as client:
        feedback = app.state.feedback
        resolved = ResolvedCase(
            case_id=uuid.uuid4(), center_id=TEST_CENTER, counter_id="window-3",
            clerk_id="clerk-005", service_item=ITEM, intake_channel="counter",
            resident_id=uuid.uuid4(), resolved_event_id=uuid.uuid4(),
            resolved_at=feedback.clock.now())
        survey_id = (await feedback.request_survey(resolved)).aggregate_id
        link = feedback.tokens.issue(survey_id, feedback.clock.now() + timedelta(days=7))

        async def names(name: str) -> bool:
            page = await client.get(f"/s/{survey_id}", params={"t": link, "lang": "zh"})
            return page.status_code == 200 and f"<dd>{name}</dd>" in page.text

        await wait_until(lambda: names("冬季取暖补贴"), what="the page to name the item")
    # The center renames the item and starts the service again.
    center_file(path, "冬季供暖补贴")
    async with running(create_app(settings), anonymous=True) as client:
        page = await client.get(f"/s/{survey_id}", params={"t": link, "lang": "zh"})
        assert page.status_code == 200, page.text
        assert "<dd>冬季供暖补贴</dd>" in page.text and "冬季取暖补贴" not in page.text

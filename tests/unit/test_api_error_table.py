"""A counter-app developer finds every error code a service can answer in docs/api.md's error
table, and no code there that no service answers."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: Codes only a page makes for itself, never a service's answer: the counter's offline queue
#: refuses a step whose case was never opened, and drops one still unsent at the end of the
#: day it was taken on (services/intake/web/static/queue.js); a staff page says a sign-out's
#: token is not ended everywhere yet, then that it is (shared/web/static/oidc.js, keepEnding).
PAGE_ONLY = {"case_not_opened", "queue_expired", "sign_out_unshared", "sign_out_shared"}


def _table_codes() -> set[str]:
    page = (ROOT / "docs" / "api.md").read_text()
    table = page[page.index("Errors always have one shape"):page.index("Health and operations:")]
    codes: set[str] = set()
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].isdigit():
            codes |= set(re.findall(r"`([a-z_]+)`", cells[1]))
    return codes


def _answered_codes() -> set[str]:
    words = json.loads((ROOT / "shared" / "web" / "codes.json").read_text())
    return {key.removeprefix("code_") for key in words["en"] if key.startswith("code_")}


def test_every_code_a_service_answers_is_in_the_error_table() -> None:
    assert not _answered_codes() - PAGE_ONLY - _table_codes()


def test_every_code_in_the_error_table_is_one_a_service_answers() -> None:
    assert not _table_codes() - _answered_codes()

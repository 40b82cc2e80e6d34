"""An ops engineer finds every setting in docs/settings.md (or the page it points to), with the
default the service really has, and no documented setting the service does not read."""

from __future__ import annotations

import re
from datetime import time
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from shared.settings import Settings

DOCS = Path(__file__).resolve().parents[2] / "docs"
PAGE = (DOCS / "settings.md").read_text()
#: settings.md: "More settings live with what they tune" (prefix -> page).
ELSEWHERE = {"FOLLOWUP_": "api.md", "SURVEY_": "api.md", "OPEN311_": "open311.md",
             "VAULT_": "vault.md", "AUTH_": "api.md", "OIDC_": "sign-in.md"}
#: The sixstep command's own variables (settings.md's last table), not Settings fields.
CLI_ONLY = {"SIXSTEP_INTAKE_URL", "SIXSTEP_FOLLOWUP_URL", "SIXSTEP_FEEDBACK_URL",
            "SIXSTEP_STATE_DIR", "SIXSTEP_TOKEN"}
#: Names in the first column that are not variables of their own.
NOT_VARIABLES = {"HOST"}  # `HOST` is its own field, named in the ports row


def _rows(page: str = PAGE) -> list[tuple[list[str], str]]:
    rows = []
    for line in page.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| `") and len(cells) >= 3:
            rows.append((re.findall(r"`([A-Z][A-Z0-9_]+)`", cells[0]), cells[1]))
    return rows


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, time):
        return value.strftime("%H:%M")
    return str(value)


def test_every_setting_is_documented() -> None:
    missing = []
    for name in Settings.model_fields:
        env = name.upper()
        if re.search(rf"`{env}`", PAGE):
            continue
        page = next((p for prefix, p in ELSEWHERE.items() if env.startswith(prefix)), None)
        if page is None or not re.search(rf"\b{env}\b", (DOCS / page).read_text()):
            missing.append(env)
    assert not missing, f"settings no page documents: {missing}"


def test_every_documented_variable_is_a_setting() -> None:
    fields = {n.upper() for n in Settings.model_fields}
    named = {env for names, _ in _rows() for env in names}
    assert not named - fields - CLI_ONLY - NOT_VARIABLES


def test_a_documented_default_is_the_settings_default() -> None:
    wrong, checked = [], 0
    sign_in = (DOCS / "sign-in.md").read_text()  # the OIDC_* table
    for names, default in _rows() + _rows(sign_in):
        literals = re.findall(r"`([^`]*)`", default)
        if not literals or len(literals) != len(names) or set(names) & CLI_ONLY:
            continue
        for env, literal in zip(names, literals, strict=True):
            field = Settings.model_fields[env.lower()]
            value = field.get_default(call_default_factory=True)
            if value is None or isinstance(value, SecretStr):
                continue
            if isinstance(value, (list, tuple, set, dict)):
                continue  # JSON-ish: checked by eye, too many spellings
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                same = re.fullmatch(r"-?[0-9.]+", literal) is not None and float(literal) == value
            else:
                same = _shown(value) == literal
            checked += 1
            if not same:
                wrong.append(f"{env}: docs `{literal}`, settings {value!r}")
    assert not wrong, wrong
    assert checked > 50, "the tables' defaults are read"

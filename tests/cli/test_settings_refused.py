"""A ``sixstep`` command whose settings are refused says which and why in one line and exits 2,
as a service's start does (``shared.http.app.serve``): it printed pydantic's traceback (58 to
138 lines, exit 1), whose text quotes the values given (redteam127 saw it)."""

from __future__ import annotations

from pathlib import Path

from tests.cli.system import sixstep

ROOT = Path(__file__).resolve().parents[2]


def test_production_with_the_development_keys_names_them_in_one_line_and_exits_2() -> None:
    said = sixstep(ROOT, "ops", "status", env={"ENVIRONMENT": "production", "PATH": "/usr/bin"})
    assert said.code == 2, said
    assert "Traceback" not in said.err and "input_value" not in said.err, said
    assert said.err.startswith("error: the settings are refused:"), said
    assert "AUTH_KEYS" in said.err and len(said.err.strip().splitlines()) == 1, said


def test_a_value_that_does_not_parse_is_named_not_printed() -> None:
    secret = "not-a-key-list-s3cr3t"
    said = sixstep(ROOT, "ops", "status", env={"AUTH_KEYS": secret, "PATH": "/usr/bin"})
    assert said.code == 2, said
    assert secret not in said.out + said.err and "Traceback" not in said.err, said
    assert "auth_keys" in said.err.lower(), said

"""Where a `sixstep` command looks for its servers, in order: its flags, the environment, the
endpoints `make run` wrote, the defaults (no server needed to check the order)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from shared.cli.servers import Flags, remember, resolve, write_endpoints
from shared.settings import without_password


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("NATS_URL", "DATABASE_URL", "SIXSTEP_INTAKE_URL", "SIXSTEP_FOLLOWUP_URL",
                 "SIXSTEP_FEEDBACK_URL", "INTAKE_PORT", "FOLLOWUP_PORT", "FEEDBACK_PORT",
                 "HOST", "SIXSTEP_STATE_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    remember(Flags())
    write_endpoints(tmp_path / ".state", "postgresql://u:secret@127.0.0.1:7001/db",
                    "nats://127.0.0.1:7002", {"intake": "http://127.0.0.1:7003"})
    return tmp_path / ".state"


def test_the_endpoints_make_run_wrote_come_after_the_environment(
        state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    servers = resolve()
    assert servers.settings.nats_url == "nats://127.0.0.1:7002"
    assert servers.settings.database_url == "postgresql://u:secret@127.0.0.1:7001/db"
    assert servers.url("intake") == "http://127.0.0.1:7003"
    assert servers.endpoints["nats"].source == ".state/endpoints.env, written by make run"
    assert servers.endpoints["followup"].source == "the defaults"  # make run did not say

    monkeypatch.setenv("NATS_URL", "nats://127.0.0.1:8002")
    monkeypatch.setenv("FEEDBACK_PORT", "8803")
    servers = resolve()
    assert (servers.settings.nats_url, servers.endpoints["nats"].source) == (
        "nats://127.0.0.1:8002", "environment NATS_URL")
    assert servers.url("feedback") == "http://127.0.0.1:8803"
    assert servers.settings.database_url.endswith(":7001/db")  # still make run's


def test_flags_come_first_and_a_commands_own_flag_before_them(
        state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIXSTEP_INTAKE_URL", "http://127.0.0.1:8003")
    remember(Flags(urls={"intake": "http://127.0.0.1:9003", "nats": "nats://h:9002"}))
    servers = resolve()
    assert servers.url("intake") == "http://127.0.0.1:9003"
    assert servers.endpoints["intake"].source == "--intake-url"
    assert servers.settings.nats_url == "nats://h:9002"
    assert resolve(intake="http://127.0.0.1:9999").url("intake") == "http://127.0.0.1:9999"
    remember(Flags())


def test_another_state_folder_and_no_password_on_screen(
        state: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = tmp_path / "elsewhere"
    write_endpoints(elsewhere, "postgresql://x@127.0.0.1:6001/db", "nats://127.0.0.1:6002")
    monkeypatch.setenv("SIXSTEP_STATE_DIR", str(elsewhere))
    assert resolve().settings.nats_url == "nats://127.0.0.1:6002"
    assert without_password("postgresql://u:secret@127.0.0.1:7001/db") == (
        "postgresql://u:***@127.0.0.1:7001/db")


def test_the_endpoints_file_with_a_password_in_a_url_is_the_owners_only(
        tmp_path: Path) -> None:
    """A NATS_URL (or DATABASE_URL) given to make run with its password is written as given,
    for the later commands: not for every user of the machine to read."""
    before = os.umask(0o022)  # the usual umask: a file made without a mode is readable by all
    try:
        path = write_endpoints(tmp_path, "postgresql://u:secret@127.0.0.1:7001/db",
                               "nats://intake:secret@127.0.0.1:7002")
    finally:
        os.umask(before)
    assert "secret" in path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_nats_cluster_with_credentials_is_named_without_them(
        state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The three-node cluster of deploy/ given with its user (or a token) on every URL: each
    command names its servers before it starts (it raised ValueError on the first URL's
    "port" ``4222,nats:``; a password on a later URL only was shown as given)."""
    cluster = "nats://ops:secret@n1:4222,nats://ops:secret@n2:4222, nats://ops:secret@n3:4222"
    monkeypatch.setenv("NATS_URL", cluster)
    shown = resolve().endpoints["nats"].shown
    assert shown == "nats://ops:***@n1:4222,nats://ops:***@n2:4222, nats://ops:***@n3:4222"
    assert without_password("nats://n1:4222,nats://ops:secret@n2:4222") == (
        "nats://n1:4222,nats://ops:***@n2:4222")
    # A NATS token is the URL's user part: as secret as a password.
    assert without_password("nats://s3cr3t-token@n1:4222") == "nats://***@n1:4222"
    assert without_password("postgresql://x@127.0.0.1:6001/db") == (
        "postgresql://x@127.0.0.1:6001/db")

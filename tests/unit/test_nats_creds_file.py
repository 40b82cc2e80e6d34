"""NATS_CREDS_FILE that nats-py could not use stops a start in one line (``SignInRefused``,
exit 2 as a refused password does), before any server is asked: a file it cannot read, or no
``nkeys`` package to sign with. Before, nats-py's FileNotFoundError or ``ModuleNotFoundError:
nkeys`` reached uvicorn: a traceback, exit 3 (redteam125)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from shared.bus.connection import SignInRefused, connect_to

#: Nothing listens here: the check must answer before any connection is tried.
NOWHERE = "nats://127.0.0.1:9"


async def test_a_creds_file_that_cannot_be_read_is_refused_naming_the_setting(
        tmp_path: Path) -> None:
    with pytest.raises(SignInRefused, match=r"NATS_CREDS_FILE cannot be read \(FileNotFound"):
        await connect_to(NOWHERE, "t", reconnect=False,
                         user_credentials=str(tmp_path / "missing.creds"))


async def test_a_creds_file_without_nkeys_to_sign_with_is_refused_saying_so(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    creds = tmp_path / "service.creds"
    creds.write_text("-----BEGIN NATS USER JWT-----\n")
    found = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "nkeys" else found(name, *a))
    with pytest.raises(SignInRefused, match="nkeys") as refused:
        await connect_to(NOWHERE, "t", reconnect=False, user_credentials=str(creds))
    assert str(refused.value).startswith("nats: NATS_CREDS_FILE needs the nkeys package")

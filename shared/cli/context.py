"""Settings for CLI commands: the environment first, else the servers `make run` started."""

from __future__ import annotations

import os
from pathlib import Path

from shared.settings import Settings

ENDPOINTS_FILE = "endpoints.env"


def write_endpoints(state_dir: Path, database_url: str, nats_url: str) -> Path:
    """Where `make run` tells later commands (tail, replay, export) its servers are."""
    path = state_dir / ENDPOINTS_FILE
    path.write_text(f"DATABASE_URL={database_url}\nNATS_URL={nats_url}\n")
    return path


def cli_settings(state_dir: Path | None = None) -> Settings:
    """Settings from the environment; DATABASE_URL / NATS_URL default to a running `make run`."""
    folder = state_dir or Path(os.environ.get("SIXSTEP_STATE_DIR", ".state"))
    overrides: dict[str, str] = {}
    path = folder / ENDPOINTS_FILE
    if path.exists():
        for line in path.read_text().splitlines():
            name, _, value = line.partition("=")
            if name in ("DATABASE_URL", "NATS_URL") and name not in os.environ and value:
                overrides[name.lower()] = value
    return Settings(**overrides)  # type: ignore[arg-type]

"""The house's layers hold: import-linter checks pyproject.toml's contracts on every test run
(shared/ in layers, the kernel and the contracts below everything, shared/ never importing a
service, services never importing each other, domain modules free of I/O)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def test_every_import_goes_down_the_layers_the_house_declares() -> None:
    done = subprocess.run([str(LINT_IMPORTS), "--no-cache", "--no-logo"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"an import breaks a contract:\n{done.stdout}\n{done.stderr}"
    assert "0 broken" in done.stdout, done.stdout

"""Where a replay stopped: a small JSON file, replaced atomically, so a rerun resumes there."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


class CheckpointMismatch(ValueError):
    """The checkpoint belongs to another stream or another selection: resuming would mix them."""


class Checkpoint:
    """The last stream sequence a job has fully handled, with whatever else it needs to resume.

    ``save`` writes a temporary file, fsyncs it and renames it over the old one, so the file on
    disk is always a complete checkpoint: either the previous one or the new one.
    """

    def __init__(self, path: Path, *, stream: str, selection: str) -> None:
        self.path = path
        self.stream = stream
        self.selection = selection

    def load(self) -> dict[str, Any] | None:
        """The saved state, or None when there is none yet."""
        try:
            state: dict[str, Any] = json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        if state.get("stream") != self.stream or state.get("selection") != self.selection:
            raise CheckpointMismatch(
                f"{self.path} was written for stream {state.get('stream')!r} and selection "
                f"{state.get('selection')!r}, not {self.stream!r} / {self.selection!r}; "
                "start over with --restart, or give another checkpoint file")
        return state

    def save(self, seq: int, **extra: Any) -> None:
        state = {"stream": self.stream, "selection": self.selection, "seq": seq,
                 "saved_at": datetime.now(UTC).isoformat(), **extra}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("w") as f:
            json.dump(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)

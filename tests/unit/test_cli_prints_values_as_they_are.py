"""What a `sixstep` command prints of the log (a clerk's words, a reason) is printed as it
is, never read as rich's markup: "[/b]" in a note ended `sixstep tail` (MarkupError) and
"[急]" vanished from its line."""

from __future__ import annotations

import io

import orjson
from rich.console import Console

from shared.cli.tail import _line


def test_tail_prints_a_clerks_bracketed_words_as_they_are() -> None:
    event = {"case_id": "0c1e2d3f-0000-4000-8000-000000000001", "service": "intake",
             "type": "RequestHeard", "aggregate_version": 2, "center_id": "SH-PD-[HUAMU]",
             "occurred_at": "2026-12-20T09:30:00+08:00",
             "payload": {"words": "[急] 低保 [/b] 续办"}}
    out = io.StringIO()
    Console(file=out, width=400, highlight=False).print(_line(7, orjson.dumps(event)))
    assert "[急] 低保 [/b] 续办" in out.getvalue()
    assert "SH-PD-[HUAMU]" in out.getvalue()

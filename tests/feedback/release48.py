"""The release before months49 (stop 48) as a replica of it records and settles a month's
pending record: one slot per month (``pending_through``, ``pending_key``), no lock on a record
under way, no ``pending`` jsonb. Its statements as that release ran them (``git show
69a9d2e5^:services/feedback/closing.py``), put in place of this release's on a ``Periods``:
a rolling upgrade's two releases on one database, in one test."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest

from services.feedback.closing import MARKS_NOW, Mark, Periods
from services.feedback.figures.projection import MARKS
from services.feedback.periods import ReportedMonth, period_id_for
from shared.kernel.meta import Meta


@contextlib.contextmanager
def release48(periods: Periods, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``periods`` records and settles as the release before did, while in the block."""
    pool = periods.pool

    async def pending(center_id: str, month: date, mark: Mark, key: str,
                      **_: Any) -> None:
        await pool.execute(
            f"INSERT INTO {MARKS} AS k VALUES ($1, $2, 0, 0, CASE WHEN $5::bigint IS NULL OR"
            f" {MARKS_NOW} = $5::bigint THEN $3::bigint ELSE 0 END, $4) ON CONFLICT"
            " (center_id, month) DO UPDATE SET pending_through = EXCLUDED.pending_through,"
            " pending_key = $4",
            center_id, month, mark.seq, key, mark.marks)

    async def settle(center_id: str, month: date) -> None:
        left = await pool.fetchrow(
            f"SELECT pending_through, pending_key FROM {MARKS} WHERE center_id = $1"
            " AND month = $2 AND pending_key IS NOT NULL", center_id, month)
        if left is None:
            return
        seen: dict[str, bool] = {}

        def look(period: ReportedMonth, meta: Meta) -> None:
            seen["recorded"] = left["pending_key"] in period.commands

        await periods.path.on(period_id_for(center_id, month), "period", "PeriodRevised",
                              look, periods.path.meta("system:feedback-periods", None), None)
        await counted(center_id, month, Mark(left["pending_through"]),
                      recorded=seen.get("recorded", False), key=left["pending_key"],
                      counted=seen.get("recorded", False),
                      revised=bool(seen.get("recorded"))
                      and left["pending_key"].startswith("period-revise:"))

    async def counted(center_id: str, month: date, mark: Mark, *, recorded: bool,
                      key: str | None = None, counted: bool = True, revised: bool = False,
                      **_: Any) -> None:
        same = f"($9::bigint IS NULL OR {MARKS_NOW} = $9::bigint)"
        await pool.execute(
            f"INSERT INTO {MARKS} AS k VALUES ($1, $2, $3::bigint, CASE WHEN $4::boolean"
            " THEN $3::bigint ELSE 0 END) ON CONFLICT (center_id, month) DO UPDATE SET"
            f" counted_through = CASE WHEN $6::boolean AND {same} THEN"
            " greatest(k.counted_through, $3::bigint) ELSE k.counted_through END,"
            f" recorded_through = CASE WHEN $4::boolean AND {same} THEN"
            " greatest(k.recorded_through, $3::bigint) ELSE k.recorded_through END,"
            " pending_through = CASE WHEN k.pending_key = $5"
            " THEN NULL ELSE k.pending_through END, pending_key = CASE WHEN k.pending_key"
            " = $5 THEN NULL ELSE k.pending_key END, revised_at = CASE WHEN $7::boolean"
            " THEN $8::timestamptz ELSE k.revised_at END",
            center_id, month, mark.seq, recorded, key, counted, revised, periods.path.now(),
            mark.marks)

    with monkeypatch.context() as m:
        m.setattr(periods, "_pending", pending)
        m.setattr(periods, "_settle", settle)
        m.setattr(periods, "_counted", counted)
        yield

"""A center's reported month, no I/O here: closing it records its figures as reported
(``PeriodClosed``); a later change to them is a revision that names the late events
(``PeriodRevised``), never a silent change."""

from __future__ import annotations

import calendar
from datetime import date, timedelta
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import event

from shared.kernel.errors import RuleViolated
from shared.kernel.idempotency import RemembersCommands
from shared.kernel.meta import Meta

PERIOD_NAMESPACE = UUID("9e4b2c71-6d3a-4f80-b5e2-7a1c0d9f3e48")

Reported = list[dict[str, Any]]
"""Figures as reported: ``{"name", "count"}`` or ``{"name", "numerator", "denominator",
"rate"}`` (``shared.contracts.periods.ReportedFigure``)."""


def period_id_for(center_id: str, month: date) -> UUID:
    """One reported month per center: closing it twice closes it once."""
    return uuid5(PERIOD_NAMESPACE, f"{center_id}\x1f{month.isoformat()[:7]}")


def month_end(month: date) -> date:
    return month.replace(day=calendar.monthrange(month.year, month.month)[1])


def closable(month: date, today: date, after_days: int) -> bool:
    """A month closes by itself once ``after_days`` days have passed since its last day."""
    return today > month_end(month) + timedelta(days=after_days)


def as_reported(row: dict[str, Any], names: list[str]) -> Reported:
    """One row of the figures (``figures.compute``) as the figures a month reports."""
    out: Reported = []
    for name in names:
        value = row.get(name)
        if isinstance(value, dict):
            out.append({"name": name, "numerator": value["numerator"],
                        "denominator": value["denominator"], "rate": value["rate"]})
        else:
            out.append({"name": name, "count": int(value or 0)})
    return out


def changed_figures(before: Reported, after: Reported) -> list[str]:
    """The reported figures whose counts differ now (rates follow their counts). A figure
    the service counts since the month was closed is no change of what was reported."""
    def counts(figures: Reported) -> dict[str, tuple[Any, ...]]:
        return {f["name"]: (f.get("count"), f.get("numerator"), f.get("denominator"))
                for f in figures}
    old, new = counts(before), counts(after)
    return [name for name in old if name in new and old[name] != new[name]]


class ReportedMonth(RemembersCommands):
    """One center's month as reported: closed once, then revised whenever late events change
    its figures."""

    where = "on this month"
    KIND = "period"  # what the command path calls it (``Unit.get``)

    @event("PeriodClosed")
    def __init__(self, id: UUID, center_id: str, month: date, closed_by: str, as_of: date,
                 figures: Reported, meta: Meta) -> None:
        self.center_id = center_id
        self.month = month
        self.as_of = as_of
        self.figures = figures
        self.revision = 0
        self.commands: dict[str, tuple[str, int]] = {}
        self._remember(meta, "PeriodClosed", created=True)

    @staticmethod
    def check_closable(month: date, today: date) -> None:
        """A month is named by its first day and closed once it has ended."""
        if month.day != 1:
            raise RuleViolated("a month is named by its first day", month=month.isoformat(),
                               rule="month_first_day")
        if today <= month_end(month):
            raise RuleViolated("a month is closed once it has ended",
                               month=month.isoformat()[:7], rule="period_not_ended")

    @classmethod
    def close(cls, center_id: str, month: date, closed_by: str, today: date,
              figures: Reported, meta: Meta) -> ReportedMonth:
        cls.check_closable(month, today)
        return cls(id=period_id_for(center_id, month), center_id=center_id, month=month,
                   closed_by=closed_by, as_of=today, figures=figures, meta=meta)

    def revise(self, figures: Reported, late_events: list[dict[str, Any]],
               late_events_total: int, meta: Meta) -> bool:
        """Record the figures again when they changed (True); nothing when they did not."""
        changed = changed_figures(self.figures, figures)
        if not changed:
            return False
        self._revised(center_id=self.center_id, month=self.month, revision=self.revision + 1,
                      figures=figures, changed=changed, late_events=late_events,
                      late_events_total=late_events_total, meta=meta)
        return True

    @event("PeriodRevised")
    def _revised(self, center_id: str, month: date, revision: int, figures: Reported,
                 changed: list[str], late_events: list[dict[str, Any]],
                 late_events_total: int, meta: Meta) -> None:
        self.figures = figures
        self.revision = revision
        self._remember(meta, "PeriodRevised")

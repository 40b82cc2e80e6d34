"""A calendar re-planning still pending, as ``sixstep`` says it: since when, the tries, the
items failed at the last, the next try, the official days still to re-plan, the last error and
what to do, every moment in the center's time with its offset (``CENTER_TIMEZONE``). Printed by
``calendar status`` and ``calendar reload`` (from the services' ``GET /ops/calendar``) and by
``ops status`` (from each service's row in the database), which exit
``EXIT_REPLAN_PENDING`` while one is pending."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo

from shared.runtime.replan_pending import ADOPT_AFTER_S, ReplanPendingPublic

#: ``sixstep calendar status``'s exit code while a service has a re-planning pending (the
#: service retries it; 2 stays for a service that did not answer), as reload's when one failed.
EXIT_REPLAN_PENDING = 1


def _moment(at: datetime, tz: tzinfo) -> str:
    """``2026-12-18 10:00:00+08:00``: the center's time, with its offset (UTC until stop 56:
    "02:00:00 UTC" for a failure at ten in the morning at the center)."""
    return at.astimezone(tz).isoformat(sep=" ", timespec="seconds")


def pending_lines(pending: ReplanPendingPublic, tz: tzinfo) -> list[str]:
    """A re-planning still pending, and what to do about it."""
    days = (f"{pending.first_day}..{pending.last_day}" if pending.first_day
            else "provisional dates only")
    late = (datetime.now(UTC) - pending.next_try_at).total_seconds() > ADOPT_AFTER_S
    lines = [f"re-planning pending since {_moment(pending.since, tz)}: "
             f"{pending.attempts} tries, {pending.failed} item(s) failed at the last "
             f"({_moment(pending.last_try_at, tz)}), next try "
             f"{'due ' if late else ''}{_moment(pending.next_try_at, tz)}; "
             f"official days to re-plan: {days}",
             f"  last error: {pending.last_error or '-'}"]
    if late:
        # Its process gone, and no worker took it: none runs, or their calendars differ.
        lines.append("  no replica is trying it: any worker (calendar-replan) "
                     "takes it once its next try is late, unless it cannot load its calendars "
                     "(its log: calendar.replan_not_adopted; give every replica the same "
                     "holidays files, then `sixstep calendar reload`); none running? start one")
    if pending.last_error and "CalendarNotCovered" in pending.last_error:
        lines.append("  an item's new count falls in a year no calendar covers: add that "
                     "year's official schedule to the holidays file and run `sixstep calendar "
                     "reload` (or raise CALENDAR_PROVISIONAL_YEARS); retried until then")
    else:
        lines.append("  retried by the service with back-off (a worker's "
                     "calendar-replan, should the one that failed be gone); lasting: the "
                     "store's locks and load, docs/calendar.md 'A re-planning that fails'")
    return lines

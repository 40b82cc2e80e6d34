"""How many ``access.refused_out_of_reach`` lines one caller may write: the first
:data:`LINES_PER_MINUTE` of each minute, then nothing until the minute is over, when one
``access.refused_out_of_reach.suppressed`` line says how many were left out.

A clerk of another center trying our ids wrote one line per request: a script trying ids
as fast as the service answers flooded the log (and its disk, and whoever reads it) with
lines that say the same thing. The operators need to know who probes, what and how much,
not every try. The answer and the counts (``sixstep_not_found_by_id_total``,
``sixstep_refused_out_of_reach_total``) are untouched: every request is still counted.
No count of left-out lines is on ``/metrics`` (it takes no token): it would move for our
ids and not for ids nobody has, the very thing the 404 hides.

The left-out count of a minute is said at the caller's next refusal after it, when the
caller's window is let go to keep the table bounded, at the minute's end by the service's
timer (:meth:`ProbeLines.ended`, ``shared.http.errors``), or at shutdown
(:meth:`ProbeLines.drain`). Until stop 49 only the first two: a prober who stopped inside
the minute left their last minute's count unsaid.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

#: Lines one caller writes in a minute before the rest are left out.
LINES_PER_MINUTE = 20
#: The window, in seconds.
WINDOW_S = 60.0
#: Callers whose window is kept at once (bounded memory whatever the number of tokens).
CALLERS_KEPT = 10_000

Caller = tuple[str | None, str | None]  # (subject, center) of the token


@dataclass(slots=True)
class _Window:
    started: float
    logged: int = 0
    left_out: int = 0


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to write for one refusal: its line or not, and the left-out count of the
    caller's window that ended (with ``caller``: whose; 0 for none)."""

    write: bool
    left_out: int = 0
    caller: Caller = (None, None)


class ProbeLines:
    """Per caller, the lines of the current minute (one per service process)."""

    def __init__(self, per_minute: int = LINES_PER_MINUTE, window_s: float = WINDOW_S,
                 kept: int = CALLERS_KEPT,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute, self.window_s, self.kept, self.clock = per_minute, window_s, kept, clock
        self._windows: dict[Caller, _Window] = {}  # oldest window first
        # The lines are written in the response's background task, a sync function Starlette
        # runs on its thread pool: two refusals may be counted at once.
        self._lock = threading.Lock()

    def refused(self, caller: Caller) -> list[Verdict]:
        """The verdicts for ``caller``'s refusal now: one for the line itself, and one per
        window let go meanwhile whose lines were left out (the caller's own ended minute,
        or another caller's let go to keep at most ``kept``)."""
        with self._lock:
            return self._refused(caller, self.clock())

    def ended(self) -> list[Verdict]:
        """The left-out counts of the minutes over by now (their windows let go): what the
        timer says for callers who stopped trying inside their minute."""
        with self._lock:
            now, said = self.clock(), []
            # Oldest window first: the first not over ends the walk.
            while self._windows:
                caller, window = next(iter(self._windows.items()))
                if now - window.started < self.window_s:
                    break
                del self._windows[caller]
                if window.left_out:
                    said.append(Verdict(False, window.left_out, caller))
            return said

    def drain(self) -> list[Verdict]:
        """Every window's left-out count, over or not, and the table emptied: at shutdown."""
        with self._lock:
            said = [Verdict(False, w.left_out, caller)
                    for caller, w in self._windows.items() if w.left_out]
            self._windows.clear()
            return said

    def seconds_to_next_end(self) -> float:
        """How long until the oldest window's minute is over (a whole window with none)."""
        with self._lock:
            if not self._windows:
                return self.window_s
            window = next(iter(self._windows.values()))
            return max(0.0, window.started + self.window_s - self.clock())

    def _refused(self, caller: Caller, now: float) -> list[Verdict]:
        said: list[Verdict] = []
        window = self._windows.get(caller)
        if window is not None and now - window.started >= self.window_s:
            del self._windows[caller]
            if window.left_out:
                said.append(Verdict(False, window.left_out, caller))
            window = None
        if window is None:
            while len(self._windows) >= self.kept:
                oldest, gone = next(iter(self._windows.items()))
                del self._windows[oldest]
                if gone.left_out:
                    said.append(Verdict(False, gone.left_out, oldest))
            window = self._windows[caller] = _Window(now)
        if window.logged < self.per_minute:
            window.logged += 1
            said.append(Verdict(True))
        else:
            window.left_out += 1
        return said

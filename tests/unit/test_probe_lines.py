"""A prober's lines: the first of each minute written, the rest counted and said once the
minute is over; the table of callers stays bounded, a caller let go says its count."""

from __future__ import annotations

import contextlib

from fastapi import FastAPI
from structlog.testing import capture_logs

from shared.http.errors import install_error_handlers
from shared.http.probe_lines import ProbeLines, Verdict
from tests.support import wait_until

A, B, C = ("clerk-900", "SH-PD-ZHANGJIANG"), ("clerk-901", "SH-PD-ZHANGJIANG"), (
    "clerk-902", "SH-PD-LUJIAZUI")


def test_a_minutes_first_lines_are_written_and_the_rest_said_as_a_count_after_it() -> None:
    now = [0.0]
    lines = ProbeLines(per_minute=2, clock=lambda: now[0])
    assert [lines.refused(A) for _ in range(4)] == [[Verdict(True)]] * 2 + [[]] * 2
    now[0] = 59.9
    assert lines.refused(A) == []
    now[0] = 60.0
    assert lines.refused(A) == [Verdict(False, 3, A), Verdict(True)]
    assert lines.refused(B) == [Verdict(True)], "another caller has a minute of their own"


def test_a_caller_let_go_to_keep_the_table_bounded_says_its_count() -> None:
    lines = ProbeLines(per_minute=1, kept=2, clock=lambda: 0.0)
    assert (lines.refused(A), lines.refused(A), lines.refused(B)) == (
        [Verdict(True)], [], [Verdict(True)])
    assert lines.refused(C) == [Verdict(False, 1, A), Verdict(True)]


def test_a_prober_who_stops_inside_the_minute_has_the_count_said_when_it_ends() -> None:
    """Until stop 49 the count waited for the caller's next refusal: one who stopped for
    good left it unsaid."""
    now = [0.0]
    lines = ProbeLines(per_minute=2, clock=lambda: now[0])
    for _ in range(5):
        lines.refused(A)
    now[0] = 10.0
    lines.refused(B)
    assert lines.seconds_to_next_end() == 50.0
    assert lines.ended() == [], "A's minute is not over"
    now[0] = 60.0
    assert lines.ended() == [Verdict(False, 3, A)], "B wrote its one line: nothing to say"
    assert lines.ended() == [], "said once"
    assert lines.seconds_to_next_end() == 10.0
    assert lines.refused(A) == [Verdict(True)], "a new minute, nothing owed"


def test_at_shutdown_every_count_left_out_is_said_minute_over_or_not() -> None:
    lines = ProbeLines(per_minute=1, clock=lambda: 0.0)
    for caller in (A, A, A, B, C, C):
        lines.refused(caller)
    assert lines.drain() == [Verdict(False, 2, A), Verdict(False, 1, C)]
    assert lines.drain() == []


async def test_a_round_of_the_timer_that_fails_is_not_its_last() -> None:
    """One round of the service's timer raises (a log write that failed, say): the next round
    still says the count, and the service stops cleanly, saying what it owes. Until stop 49
    the exception ended the timer for the process's life (no count said at a minute's end
    again) and was raised again from the lifespan's shutdown, before the shutdown's counts."""
    app = FastAPI()
    install_error_handlers(app)
    lines: ProbeLines = app.state.probe_lines
    now = [0.0]
    lines.clock, lines.window_s, lines.per_minute = (lambda: now[0]), 0.1, 1
    real, rounds = lines.ended, []

    def ended() -> list[Verdict]:
        rounds.append(now[0])
        if len(rounds) == 1:
            raise RuntimeError("the log's pipe is full")
        return real()

    lines.ended = ended  # type: ignore[method-assign]
    with capture_logs() as logs:
        async with app.router.lifespan_context(app):
            for _ in range(3):
                lines.refused(A)
            now[0] = 1.0  # A's minute is over

            async def said() -> bool:
                return any(e["event"].endswith("suppressed") for e in logs)
            await wait_until(said, what="the count said by a later round")
            for _ in range(4):
                lines.refused(B)  # a minute not over at the stop
    suppressed = [(e["left_out"], e["actor"]) for e in logs
                  if e["event"] == "access.refused_out_of_reach.suppressed"]
    assert suppressed == [(2, A[0]), (3, B[0])], suppressed


async def test_a_count_that_cannot_be_said_at_shutdown_does_not_stop_the_shutdown() -> None:
    """The shutdown's last counts fail to be said (the log's pipe is gone as the process
    stops): the failure is logged where it can be, the service's own shutdown still runs to
    its end and nothing is raised from the lifespan. Until stop 50 the drain was unguarded:
    its exception was raised from the lifespan's exit, through the service's own."""
    app = FastAPI()
    stopped: list[str] = []
    serving = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def service(app_: FastAPI):  # type: ignore[no-untyped-def]
        async with serving(app_) as state:
            try:
                yield state
            finally:
                stopped.append("the service's own shutdown")

    app.router.lifespan_context = service
    install_error_handlers(app)
    lines: ProbeLines = app.state.probe_lines

    def drain() -> list[Verdict]:
        raise RuntimeError("the log's pipe is gone")

    lines.drain = drain  # type: ignore[method-assign]
    with capture_logs() as logs:
        async with app.router.lifespan_context(app):
            lines.refused(A)
    assert stopped == ["the service's own shutdown"]
    assert [e["event"] for e in logs] == ["access.refused_out_of_reach.shutdown_failed"]

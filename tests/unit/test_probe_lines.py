"""A prober's lines: the first of each minute written, the rest counted and said once the
minute is over; the table of callers stays bounded, a caller let go says its count."""

from __future__ import annotations

from shared.http.probe_lines import ProbeLines, Verdict

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

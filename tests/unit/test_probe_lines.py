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

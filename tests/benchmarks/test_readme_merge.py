"""``make bench``'s README merge (benchmarks/run_all.py), server-free: a rerun of some scripts
replaces their sections and their rows of the targets table, and keeps every other one."""

from __future__ import annotations

from benchmarks.common import OBSERVABILITY, target
from benchmarks.run_all import ISSUE_23, merge, parse_sections, section

MACHINE = "2 cores, x86_64, Python 3.11.7, Linux"

LEGACY = """# Benchmarks

Intro the engineers wrote; it may name `<!-- FIGURES -->` in a sentence.

<!-- FIGURES -->

## Latest figures (2026-11-25, 2 cores, x86_64, Python 3.11.7, Linux)

Produced by `make bench` (`.venv/bin/python benchmarks/run_all.py`).

### The city-scale targets in this run

| target: measured (goal) | script |
|---|---|
| intake HTTP writes vs CRUD baseline: 0.72 x (>= 0.6 x) met | `intake.py` |

### Intake HTTP writes and end-to-end latency

`.venv/bin/python benchmarks/intake.py` (52 s)

```
sixstep intake, one process                      3,348 req/s
TARGET intake HTTP writes vs CRUD baseline: 0.72 x (>= 0.6 x) met
### not a heading: inside the code block
```

### Policy-change fan-out over 100,000 past cases

`.venv/bin/python benchmarks/followup_fanout.py` (80 s)

```
fan-out: 80,000 outreach follow-ups in 16.4 s = 4,877 follow-ups/s
```
"""


def fresh(script: str, title: str, lines: list[str], date: str = "2026-12-04") -> object:
    return section(script, title, f".venv/bin/python benchmarks/{script}", 12.0, lines, 0,
                   date, MACHINE)


def test_a_legacy_page_is_read_by_its_titles() -> None:
    sections = parse_sections(LEGACY.partition("\n<!-- FIGURES -->\n")[2])
    assert set(sections) == {"intake.py", "followup_fanout.py"}
    intake = sections["intake.py"]
    assert intake.date == "2026-11-25" and intake.machine == MACHINE
    assert intake.targets == ["intake HTTP writes vs CRUD baseline: 0.72 x (>= 0.6 x) met"]
    assert "### not a heading" in intake.body, "a code block's lines stay in their section"


def test_only_the_rerun_scripts_are_replaced() -> None:
    rerun = fresh("followup_fanout.py", "Policy-change fan-out over 100,000 past cases", [
        "fan-out: 80,000 outreach follow-ups in 6.0 s",
        target("policy fan-out vs raw batched eventsourcing saves", 0.61, 0.5),
        f"{OBSERVABILITY}services as deployed: tracing ON"])
    page = merge(LEGACY, [rerun], "2026-12-04", MACHINE)

    intro, _, figures = page.partition("\n<!-- FIGURES -->\n")
    assert intro == LEGACY.partition("\n<!-- FIGURES -->\n")[0], "the intro is kept as it was"
    sections = parse_sections(figures)
    assert set(sections) == {"intake.py", "followup_fanout.py"}
    assert sections["intake.py"].date == "2026-11-25", "a section not rerun keeps its date"
    assert "3,348 req/s" in sections["intake.py"].body
    assert sections["followup_fanout.py"].date == "2026-12-04"
    assert "4,877" not in page and "6.0 s" in page
    assert "| intake HTTP writes vs CRUD baseline: 0.72 x (>= 0.6 x) met | `intake.py` " \
           "(2026-11-25) |" in page, "the other script's target row is kept"
    assert "0.61 x (>= 0.5 x) met | `followup_fanout.py` (2026-12-04) |" in page

    # Merging the page again with nothing new changes nothing: the page reads itself back.
    assert merge(page, [], "2026-12-04", MACHINE) == page
    # A second rerun of the same script replaces it again, once.
    again = merge(page, [fresh("followup_fanout.py", "Policy-change fan-out", ["x"])],
                  "2026-12-05", MACHINE)
    assert again.count("<!-- bench: followup_fanout.py |") == 1
    assert "0.61 x" not in again


def test_every_issue_23_target_has_a_row_met_or_not() -> None:
    page = merge(LEGACY, [], "2026-12-04", MACHINE)
    table = page.split("### Issue 23's targets in these figures")[1].split("\n\n")[1]
    numbers = [row.split("|")[1].strip() for row in table.splitlines()[2:]]
    assert [n for n in numbers if n] == [n for n, _, _ in ISSUE_23]
    assert "not measured: `consumers.py`" in table
    assert "tracing, metrics, logging on in 0 of 2 runs MISSED" in table, (
        "runs that did not say what was on miss target 7")

"""``make bench``: every benchmark in one run, written to benchmarks/README.md.

Each benchmark starts its own servers and prints its figures beside the baselines measured in
the same run. This script runs them one after the other and keeps their output, with the date,
the machine and the command, in benchmarks/README.md, below ``<!-- FIGURES -->``: one section
per script, each with its own date and machine, and above them the table of issue 23's targets
(met, or missed by how much) built from the sections' ``TARGET`` lines.

* ``--only intake.py pipeline.py`` reruns those scripts: their sections and their rows of the
  table are replaced, every other section is kept as it was (with its own date);
* ``--quick`` passes each script that takes a size smaller sizes (``QUICK``): a smoke run, not
  figures to keep (its sections say so).

Ctrl-C (or SIGTERM) stops the benchmark in hand: it gets one SIGINT (it runs in its own session,
so the terminal's does not reach it twice), stops every server and service it started, and
README.md is left as it was.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks.common import OBSERVABILITY, TARGET, machine  # noqa: E402
from tools.devservers import exit_on_signals  # noqa: E402

SUITE: list[tuple[str, list[str], str]] = [
    ("intake.py", [], "Intake HTTP writes and end-to-end latency"),
    ("pipeline.py", [], "Each pipeline stage beside its raw baseline"),
    ("consumers.py", [], "Each consumer's events/s beside raw fetch + ack"),
    ("end_to_end.py", [], "A resolution until every read model shows it"),
    ("scale_out.py", [], "Consumers with one and two replicas"),
    ("city_month.py", [], "A city's month: 220 centers, 20,000,000 events"),
    ("followup_fanout.py", [], "Policy-change fan-out over 100,000 past cases"),
    ("feedback_figures.py", [], "The center's figures from a synthetic year"),
    ("replay_export.py", [], "Replay and export of the log"),
    ("rebuild_all.py", [], "Every read model rebuilt from 1,000,000 events"),
]

QUICK: dict[str, list[str]] = {
    "intake.py": ["--seconds", "3"],
    "pipeline.py": ["--events", "4000"],
    "consumers.py": ["--events", "10000"],
    "end_to_end.py": ["--seconds", "2"],
    "scale_out.py": ["--events", "4000", "--repeat", "1"],
    "followup_fanout.py": ["--cases", "10000", "--residents", "8000"],
    "replay_export.py": ["--events", "50000"],
    "rebuild_all.py": ["--events", "50000"],
    "city_month.py": ["--centers", "4"],
}
"""``--quick``: the smaller sizes each script that takes a size is given (smoke run)."""

ISSUE_23: list[tuple[str, str, list[str]]] = [
    ("1", "intake HTTP writes >= 1.0 x CRUD (same process count), >= 3 x naive save() loop",
     ["intake.py"]),
    ("2", "every live consumer >= 0.8 x raw fetch + ack of its share; the commands it appends "
     ">= 0.5 x group commit", ["consumers.py"]),
    ("3", "end to end p99 <= 100 ms into every read model at half of max, <= 250 ms at 90 %",
     ["end_to_end.py"]),
    ("4", "every read model rebuilt at >= 0.5 x the raw pipelined pull", ["rebuild_all.py"]),
    ("5", "a city's month on one small machine (peak kept up, rebuild <= 300 MB, figures "
     "< 1 s, disk per million events); two consumer replicas vs one",
     ["city_month.py", "scale_out.py"]),
    ("6", "policy fan-out over 100,000 past cases >= 0.5 x raw batched eventsourcing saves",
     ["followup_fanout.py"]),
    ("7", "tracing, metrics and logging on in every run, their cost stated", ["pipeline.py"]),
]
"""Issue 23's targets, each with the scripts whose ``TARGET`` lines measure it."""

FIGURES = re.compile(r"^<!-- FIGURES -->$", re.MULTILINE)
"""The line the figures start after (the intro above it is the engineers')."""
MARKER = re.compile(r"^<!-- bench: (?P<script>\S+) \| (?P<date>[^|]*) \| (?P<machine>[^>]*) -->$")
LEGACY_HEADING = re.compile(r"^## Latest figures \((?P<date>\d{4}-\d\d-\d\d), (?P<machine>.*)\)$")


@dataclass(frozen=True)
class Section:
    """One script's figures in README.md: when and where they were measured, and the text."""

    script: str
    date: str
    machine: str
    body: str  # from its ``###`` heading to its end

    def render(self) -> str:
        return f"<!-- bench: {self.script} | {self.date} | {self.machine} -->\n{self.body}"

    @property
    def output(self) -> list[str]:
        """The script's printed lines (inside the section's code block)."""
        lines, inside = [], False
        for line in self.body.splitlines():
            if line.startswith("```"):
                inside = not inside
            elif inside:
                lines.append(line)
        return lines

    @property
    def targets(self) -> list[str]:
        return [x.removeprefix(TARGET).strip() for x in self.output if x.startswith(TARGET)]

    @property
    def observed(self) -> bool:
        """Whether the run said what tracing, metrics and logging were (target 7)."""
        return any(x.startswith(OBSERVABILITY) for x in self.output)


def section(script: str, title: str, command: str, elapsed: float, lines: list[str],
            code: int, date: str, where: str, quick: bool = False, load: str = "") -> Section:
    status = "" if code == 0 else f" — FAILED (exit {code})"
    smoke = " — `--quick` smoke run, sizes too small to compare" if quick else ""
    return Section(script, date, where,
                   f"### {title}{status}{smoke}\n\n`{command}` ({elapsed:.0f} s; {date}, "
                   f"{where}{'; load average ' + load if load else ''})\n\n```\n"
                   + "\n".join(lines) + "\n```\n")


def _headed_blocks(text: str) -> list[list[str]]:
    """``text`` cut before each marker and each ``###`` heading (a heading right after its
    marker stays with it), outside code blocks."""
    blocks: list[list[str]] = [[]]
    inside = False
    for line in text.splitlines():
        if line.startswith("```"):
            inside = not inside
        elif not inside and MARKER.match(line):
            blocks.append([])
        elif not inside and line.startswith("### ") and not (
                len(blocks[-1]) == 1 and MARKER.match(blocks[-1][0])):
            blocks.append([])
        blocks[-1].append(line)
    return blocks


def parse_sections(figures: str) -> dict[str, Section]:
    """The sections under ``<!-- FIGURES -->``, by script. Sections written before they had a
    marker are recognised by their ``SUITE`` title and given the old page's date."""
    titles = {title: script for script, _, title in SUITE}
    legacy = next((m for m in map(LEGACY_HEADING.match, figures.splitlines()) if m), None)
    found: dict[str, Section] = {}
    for block in _headed_blocks(figures):
        if not block:
            continue
        marked = MARKER.match(block[0])
        body_lines = block[1:] if marked else block
        if not body_lines or not body_lines[0].startswith("### "):
            continue
        body = "\n".join(body_lines).rstrip("\n") + "\n"
        if marked:
            found[marked["script"]] = Section(marked["script"], marked["date"].strip(),
                                              marked["machine"].strip(), body)
            continue
        heading = body_lines[0].removeprefix("### ")
        script = next((s for t, s in titles.items() if heading.startswith(t)), None)
        if script is not None and legacy is not None:
            found[script] = Section(script, legacy["date"], legacy["machine"], body)
    return found


def target_table(sections: dict[str, Section]) -> str:
    """Issue 23's targets, each with what its scripts' latest sections measured."""
    rows = []
    mapped = set()
    for number, goal, scripts in ISSUE_23:
        mapped.update(scripts)
        cells = [(t, s) for s in scripts if s in sections for t in sections[s].targets]
        if number == "7":
            runs = list(sections.values())
            on = [s for s in runs if s.observed]
            verdict = "met" if runs and len(on) == len(runs) else (
                f"MISSED: {len(runs) - len(on)} of {len(runs)} runs did not say")
            cells.insert(0, (f"tracing, metrics, logging on in {len(on)} of {len(runs)} "
                             f"runs {verdict}", ", ".join(s.script for s in on) or "-"))
        if not cells:
            cells = [(f"not measured: {' / '.join(f'`{s}`' for s in scripts)} not in these "
                      "figures or printed no TARGET line", "")]
        for i, (measured, script) in enumerate(cells):
            when = (f"`{script}` ({sections[script].date})" if script in sections
                    else script)
            rows.append(f"| {number if i == 0 else ''} | {goal if i == 0 else ''} | "
                        f"{measured} | {when} |")
    for script, sec in sections.items():
        if script not in mapped:
            rows += [f"| | | {t} | `{script}` ({sec.date}) |" for t in sec.targets]
    return ("### Issue 23's targets in these figures\n\n"
            "| # | target | measured (goal): verdict | script (run on) |\n|---|---|---|---|\n"
            + "\n".join(rows) + "\n")


def merge(readme: str, fresh: list[Section], today: str, where: str) -> str:
    """README.md with ``fresh`` sections in place of the same scripts' old ones; the others
    kept as they were; the targets table rebuilt from them all."""
    marker = FIGURES.search(readme)
    intro = readme[:marker.start()] if marker else readme or "# Benchmarks\n\n"
    figures = readme[marker.end():] if marker else ""
    sections = parse_sections(figures)
    sections.update({s.script: s for s in fresh})
    order = [s for s, _, _ in SUITE]
    ordered = sorted(sections.values(), key=lambda s: (
        order.index(s.script) if s.script in order else len(order), s.script))
    kept = {s.script: s for s in ordered}
    return (intro + "<!-- FIGURES -->\n\n## Latest figures\n\n"
            f"Written by `make bench` (`.venv/bin/python benchmarks/run_all.py`); last run "
            f"{today} on {where}. Each section says when and on which machine it ran.\n\n"
            + target_table(kept) + "\n" + "\n".join(s.render() for s in ordered))


def run_one(path: Path, extra: list[str]) -> tuple[int, list[str], list[str]]:
    """Run one benchmark, its output shown as it comes; (exit code, stdout lines, the last
    lines of stderr). Interrupted, it hands the benchmark one SIGINT and waits for it to stop
    its servers before it re-raises."""
    proc = subprocess.Popen([sys.executable, str(path), *extra], cwd=HERE.parent, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    errors: collections.deque[str] = collections.deque(maxlen=15)

    def pump(stream: IO[str]) -> None:
        for line in stream:
            errors.append(line.rstrip("\n"))
            sys.stderr.write(line)
            sys.stderr.flush()

    assert proc.stdout is not None and proc.stderr is not None
    pumping = threading.Thread(target=pump, args=(proc.stderr,), daemon=True)
    pumping.start()
    lines: list[str] = []
    try:
        for line in proc.stdout:
            line = line.rstrip("\n")
            if not line.startswith(("adding o+x", "{\"")):  # a service's JSON log line is no figure
                lines.append(line)
                print(line, flush=True)
        proc.wait()
    except BaseException:
        if proc.poll() is None:
            print(f"stopping {path.name} and the servers it started ...", file=sys.stderr,
                  flush=True)
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut it
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        raise
    pumping.join(timeout=5)
    return proc.returncode, lines, list(errors)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", help="run only these scripts (e.g. intake.py); "
                        "the other scripts' figures are kept")
    parser.add_argument("--quick", action="store_true",
                        help="smaller sizes for each script that takes one (a smoke run)")
    args = parser.parse_args()
    today = dt.date.today().isoformat()
    where = machine()
    fresh: list[Section] = []
    for script, extra, title in SUITE:
        if args.only and script not in args.only:
            continue
        path = HERE / script
        if not path.exists():
            continue
        extra = [*extra, *(QUICK.get(script, []) if args.quick else [])]
        command = f".venv/bin/python benchmarks/{script} {' '.join(extra)}".strip()
        print(f"== {command}", flush=True)
        start, before = time.perf_counter(), os.getloadavg()[0]
        code, lines, errors = run_one(path, extra)
        if code:
            lines += errors
        fresh.append(section(script, title, command, time.perf_counter() - start, lines, code,
                             today, where, args.quick,
                             f"{before:.1f} -> {os.getloadavg()[0]:.1f}"))
    readme = HERE / "README.md"
    old = readme.read_text() if readme.exists() else ""
    readme.write_text(merge(old, fresh, today, where))
    print(f"wrote {readme}")


if __name__ == "__main__":
    # SIGTERM and SIGHUP end it as Ctrl-C does (its script and the script's servers
    # stopped); Ctrl-C works even when a script started it with `&` (SIGINT ignored), and
    # the scripts it runs inherit that.
    exit_on_signals()
    main()

"""``make bench``: every benchmark in one run, written to benchmarks/README.md.

Each benchmark starts its own servers and prints its figures beside the baselines measured in
the same run. This script runs them one after the other and keeps their output, with the date,
the machine and the command, in benchmarks/README.md.

Ctrl-C (or SIGTERM) stops the benchmark in hand: it gets one SIGINT (it runs in its own session,
so the terminal's does not reach it twice), stops every server and service it started, and
README.md is left as it was.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks.common import TARGET, machine  # noqa: E402

SUITE: list[tuple[str, list[str], str]] = [
    ("intake.py", [], "Intake HTTP writes and end-to-end latency"),
    ("pipeline.py", [], "Each pipeline stage beside its raw baseline"),
    ("consumers.py", [], "Each consumer's events/s beside raw fetch + ack"),
    ("end_to_end.py", [], "A resolution until follow-up and feedback show it"),
    ("scale_out.py", [], "Consumers with one and two replicas"),
    ("city_month.py", [], "A city's month: 220 centers, 20,000,000 events"),
    ("followup_fanout.py", [], "Policy-change fan-out over 100,000 past cases"),
    ("feedback_figures.py", [], "The center's figures from a synthetic year"),
    ("replay_export.py", [], "Replay and export of the log"),
    ("rebuild_all.py", [], "Every read model rebuilt from 1,000,000 events"),
]


def target_table(rows: list[str]) -> str:
    if not rows:
        return ""
    return ("### The city-scale targets in this run\n\n| target: measured (goal) | script |\n"
            "|---|---|\n" + "\n".join(rows) + "\n\n")


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
            if not line.startswith("adding o+x"):
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
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", nargs="*", help="run only these scripts (e.g. intake.py)")
    args = parser.parse_args()
    sections: list[str] = []
    targets: list[str] = []
    for script, extra, title in SUITE:
        if args.only and script not in args.only:
            continue
        path = HERE / script
        if not path.exists():
            continue
        command = f".venv/bin/python benchmarks/{script} {' '.join(extra)}".strip()
        print(f"== {command}", flush=True)
        start = time.perf_counter()
        code, lines, errors = run_one(path, extra)
        elapsed = time.perf_counter() - start
        targets += [f"| {x.removeprefix(TARGET).strip()} | `{script}` |"
                    for x in lines if x.startswith(TARGET)]
        status = "" if code == 0 else f" — FAILED (exit {code})"
        if code:
            lines += errors
        sections.append(f"### {title}{status}\n\n`{command}` ({elapsed:.0f} s)\n\n```\n"
                        + "\n".join(lines) + "\n```\n")
    today = dt.date.today().isoformat()
    readme = HERE / "README.md"
    intro = (readme.read_text().split("<!-- FIGURES -->")[0] if readme.exists() else
             "# Benchmarks\n\n")
    readme.write_text(intro + "<!-- FIGURES -->\n\n"
                      f"## Latest figures ({today}, {machine()})\n\n"
                      "Produced by `make bench` (`.venv/bin/python benchmarks/run_all.py`).\n\n"
                      + target_table(targets) + "\n".join(sections))
    print(f"wrote {readme}")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda signum, _: sys.exit(128 + signum))
    main()

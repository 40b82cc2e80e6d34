"""``make bench``: every benchmark in one run, written to benchmarks/README.md.

Each benchmark starts its own servers and prints its figures beside the baselines measured in
the same run. This script runs them one after the other and keeps their output, with the date,
the machine and the command, in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks.common import TARGET, machine  # noqa: E402

SUITE: list[tuple[str, list[str], str]] = [
    ("intake.py", [], "Intake HTTP writes and end-to-end latency"),
    ("pipeline.py", [], "Each pipeline stage beside its raw baseline"),
    ("consumers.py", [], "Each consumer's events/s beside raw fetch + ack"),
    ("end_to_end.py", [], "A resolution until follow-up and feedback show it"),
    ("scale_out.py", [], "Consumers with one and two replicas"),
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
        done = subprocess.run([sys.executable, str(path), *extra], cwd=HERE.parent,
                              capture_output=True, text=True)
        elapsed = time.perf_counter() - start
        lines = [x for x in done.stdout.splitlines() if not x.startswith("adding o+x")]
        targets += [f"| {x.removeprefix(TARGET).strip()} | `{script}` |"
                    for x in lines if x.startswith(TARGET)]
        print("\n".join(lines), flush=True)
        status = "" if done.returncode == 0 else f" — FAILED (exit {done.returncode})"
        if done.returncode:
            lines += done.stderr.splitlines()[-15:]
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
    main()

"""Where a resolution's time goes on its way into feedback's surveys and figures, hop by hop.

    .venv/bin/python benchmarks/e2e_hops.py [end_to_end.py's arguments, e.g. --rate 180]
    .venv/bin/python benchmarks/e2e_hops.py --marks <folder> --window <t0> <t1>  # an earlier

Runs ``end_to_end.py`` with the probe ``benchmarks/hops/sitecustomize.py`` loaded into every
service process (wall-clock marks at each hop; measurement only, it changes nothing), then
joins the marks by case and position: for each resolution stored on the stream while the
step ran (``--step 50``, the default: half of the maximum, or ``--rate``'s rate; ``--step 90``;
the first round's, as ``end_to_end.py`` says on stderr when each step ran), its
time in each hop, from the CaseResolved's ``recorded_at`` (built on intake's group-commit
writer) to the views consumer's batch that applied its SurveyRequested, and to the figures
consumer's batch that applied the resolution. Prints p50 / p90 / p99 of each hop, the
slowest cases hop by hop, and what the writers, relays and event loops were doing: the
writer's batches as wall and thread CPU, whether the survey's writer batch waited behind
another one (the scheduler's sends, or requests), the relays' waits for room, the loops'
lateness. All clocks are the host's (one machine).
"""

from __future__ import annotations

import bisect
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent

HOPS = ("intake's commit (recorded_at -> insert returned)",
        "intake's relay wakes (commit -> round starts)",
        "intake's relay round (read, encode, publish)",
        "NATS stores it (published -> stream time)",
        "to the follower (stream time -> pulled)",
        "the follower's batch starts (pulled -> batch)",
        "follower batch -> survey built on feedback's writer",
        "feedback's commit (built -> insert returned)",
        "feedback's relay wakes",
        "feedback's relay round",
        "NATS stores the SurveyRequested",
        "to the views consumer",
        "the views' batch starts",
        "the views' batch (start -> committed)")
FIGURES = ("to the figures consumer (stream time -> pulled)", "the figures' batch starts",
           "the figures' batch (start -> committed)")
#: Into intake's own read model (its cases projection, ``intake-cases``): the same first
#: hops as the survey's, then the projection's pull and batch.
INTAKE = ("to the cases projection (stream time -> pulled)", "the projection's batch starts",
          "the projection's batch (start -> committed)")
#: The consumers whose batches are summed up (count, size, wall) after the hops.
BATCHES = ("intake-cases", "feedback-intake", "feedback-views", "feedback-figures")


def moment(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[max(0, int(len(values) * q) - 1)] if values else float("nan")


def line(name: str, ms: list[float]) -> str:
    return (f"  {name:58s} {statistics.median(ms):7.1f} {pct(ms, 0.9):7.1f} {pct(ms, 0.99):7.1f}"
            f"  ({len(ms)})" if ms else f"  {name:58s} (none)")


class Marks:
    def __init__(self, folder: Path) -> None:
        self.procs: dict[int, str] = {}
        self.rx: dict[tuple[str, str, str], tuple] = {}
        self.batches: dict[str, dict[int, tuple[float, float]]] = defaultdict(dict)
        self.spans: dict[str, list[tuple[float, float, int]]] = defaultdict(list)
        self.inserts: dict[str, list[tuple]] = defaultdict(list)
        self.rounds: dict[str, list[tuple]] = defaultdict(list)
        self.rooms: dict[str, list[float]] = defaultdict(list)
        self.lags: dict[int, list[float]] = defaultdict(list)
        self.executes: dict[int, list[tuple]] = defaultdict(list)
        self.ticks: list[tuple] = []
        merged = []
        for path in folder.glob("*.jsonl"):
            pid = int(path.stem)
            for raw in path.read_bytes().splitlines():
                kind, *m = orjson.loads(raw)
                if kind == "proc":
                    self.procs[pid] = f"{m[1].split(' -m ')[-1]} {m[2]}".strip()
                elif kind == "rx":
                    consumer, seq, t, type_, case, position, recorded, stream_ns = m
                    self.rx[(consumer, type_, case)] = (seq, t, position, recorded,
                                                        stream_ns / 1e9 if stream_ns else None)
                elif kind == "batch":
                    name, t0, t1, n, seqs = m
                    self.spans[name].append((t0, t1, n))
                    for seq in seqs:
                        self.batches[name][seq] = (t0, t1)
                elif kind == "merged":
                    merged.append(m)
                elif kind == "insert" and m[5] is not None:
                    schema, t0, t1, n, low, high, cpu = m
                    self.inserts[schema].append((high, low, t0, t1, n, cpu))
                elif kind == "round":
                    service, t0, t1, n, last = m
                    self.rounds[service].append((last, t0, t1, n))
                elif kind == "room":
                    self.rooms[m[0]].append((m[2] - m[1]) * 1000)
                elif kind == "lag":
                    self.lags[pid].append(m[1] * 1000)
                elif kind == "execute":
                    self.executes[pid].append(tuple(m))
                elif kind == "tick":
                    self.ticks.append(tuple(m))
        for name, t0, _t1, _n, seqs in merged:  # applied with the batch it was merged into
            spans = sorted(self.spans[name])
            i = bisect.bisect_right(spans, (t0, float("inf"), 0)) - 1
            for seq in seqs:
                self.batches[name][seq] = (t0, spans[i][1] if i >= 0 else t0)
        for table in (self.inserts, self.rounds):
            for rows in table.values():
                rows.sort()
        for rows in self.executes.values():
            rows.sort()

    def insert_of(self, service: str, position: int) -> tuple | None:
        rows = next((r for s, r in self.inserts.items() if service in s), [])
        i = bisect.bisect_left(rows, (position,))
        return rows[i] if i < len(rows) and rows[i][1] <= position <= rows[i][0] else None

    def round_of(self, service: str, position: int) -> tuple | None:
        rows = self.rounds[service]
        i = bisect.bisect_left(rows, (position,))
        return rows[i] if i < len(rows) else None


def report(folder: Path, window: tuple[float, float]) -> None:
    m = Marks(folder)
    resolved = sorted((c for (consumer, type_, c) in m.rx
                       if consumer == "feedback-intake" and type_ == "CaseResolved"),
                      key=lambda c: m.rx[("feedback-intake", "CaseResolved", c)][4] or 0)
    cases = [c for c in resolved
             if window[0] <= (m.rx[("feedback-intake", "CaseResolved", c)][4] or 0) <= window[1]]
    hops: dict[str, list[float]] = {h: [] for h in (*HOPS, *FIGURES, *INTAKE)}
    totals: dict[str, list[float]] = {"into the surveys' view": [], "into the figures": [],
                                      "into intake's cases": []}
    writer = next((p for p, s in m.procs.items() if "feedback" in s and "workers" in s), None)
    executes = m.executes.get(writer, [])
    requested = sorted(moment(v[3]) for (consumer, type_, _), v in m.rx.items()
                       if consumer == "feedback-views" and type_ == "SurveyRequested")
    behind: dict[str, list[float]] = defaultdict(list)
    slowest = []
    for case in cases:
        seq1, pulled1, p1, recorded1, stream1 = m.rx[("feedback-intake", "CaseResolved", case)]
        survey = m.rx.get(("feedback-views", "SurveyRequested", case))
        follower = m.batches["feedback-intake"].get(seq1)
        insert1, round1 = m.insert_of("intake", p1), m.round_of("intake", p1)
        if survey is None or None in (follower, insert1, round1, stream1):
            continue
        seq2, pulled2, p2, recorded2, stream2 = survey
        views = m.batches["feedback-views"].get(seq2)
        insert2, round2 = m.insert_of("feedback", p2), m.round_of("feedback", p2)
        if None in (views, insert2, round2, stream2):
            continue
        built = moment(recorded2)
        marks = [moment(recorded1), insert1[3], round1[1], round1[2], stream1, pulled1,
                 follower[0], built, insert2[3], round2[1], round2[2], stream2, pulled2,
                 views[0], views[1]]
        spent = [(b - a) * 1000 for a, b in itertools.pairwise(marks)]
        for hop, ms in zip(HOPS, spent, strict=True):
            hops[hop].append(ms)
        totals["into the surveys' view"].append((views[1] - marks[0]) * 1000)
        slowest.append(((views[1] - marks[0]) * 1000, spent))
        figures = m.rx.get(("feedback-figures", "CaseResolved", case))
        applied = figures and m.batches["feedback-figures"].get(figures[0])
        if figures and applied:
            for hop, ms in zip(FIGURES, ((figures[1] - stream1) * 1000,
                                         (applied[0] - figures[1]) * 1000,
                                         (applied[1] - applied[0]) * 1000), strict=True):
                hops[hop].append(ms)
            totals["into the figures"].append((applied[1] - marks[0]) * 1000)
        own = _consumed(m, "intake-cases", case)
        applied = own and m.batches[own[0]].get(own[1][0])
        if own and applied:
            for hop, ms in zip(INTAKE, ((own[1][1] - stream1) * 1000,
                                        (applied[0] - own[1][1]) * 1000,
                                        (applied[1] - applied[0]) * 1000), strict=True):
                hops[hop].append(ms)
            totals["into intake's cases"].append((applied[1] - marks[0]) * 1000)
        i = bisect.bisect_right(executes, (built, float("inf"))) - 1
        if i >= 0 and executes[i][0] <= built <= executes[i][1]:
            busy = [e for e in executes[:i] if e[1] > follower[0]]
            kind = ("idle" if not busy else "behind another survey request's batch" if all(
                _holds(requested, e) for e in busy) else "behind a batch of the scheduler's")
            behind[kind].append((executes[i][0] - follower[0]) * 1000)
    print(f"{len(cases)} resolutions of the step; {len(slowest)} followed to the "
          f"surveys' view. ms: p50, p90, p99 (cases)")
    for name, ms in hops.items():
        print(line(name, ms))
    for name, ms in totals.items():
        print(line(f"total {name} (from intake's recorded_at)", ms))
    for name in BATCHES:
        spans = [s for n, rows in m.spans.items() if n.startswith(name) for s in rows]
        if spans:
            wall = [(t1 - t0) * 1000 for t0, t1, _ in spans]
            print(f"  {name}'s batches: {len(spans)}, {statistics.mean(n for *_, n in spans):.1f}"
                  f" messages each, wall p50 {statistics.median(wall):.1f} p90"
                  f" {pct(wall, 0.9):.1f} p99 {pct(wall, 0.99):.1f} ms")
    print("the slowest five into the surveys' view, ms in each hop above, in order:")
    for total, spent in sorted(slowest, key=lambda s: -s[0])[:5]:
        print(f"  {total:6.0f}: " + " ".join(f"{ms:4.0f}" for ms in spent))
    print("feedback's writer when the follower's batch began (follower batch -> writer batch):")
    for kind, ms in behind.items():
        print(line(f"writer {kind}", ms))
    for pid, rows in m.executes.items():
        wall = [(t1 - t0) * 1000 for t0, t1, _, _ in rows]
        cpu = [c * 1000 for *_, c in rows]
        print(f"  {m.procs.get(pid, pid)[:40]:40s} writer: {len(rows)} batches of "
              f"{statistics.mean(n for _, _, n, _ in rows):.1f}, wall p50 "
              f"{statistics.median(wall):.1f} p99 {pct(wall, 0.99):.1f} ms, its thread's CPU "
              f"p50 {statistics.median(cpu):.1f} ms")
    for service, ms in m.rooms.items():
        print(f"  {service}'s relay waited for room (the round before acknowledged) "
              f"{len(ms)} times, p50 {statistics.median(ms):.1f} max {max(ms):.1f} ms")
    for pid, ms in m.lags.items():
        print(f"  {m.procs.get(pid, pid)[:40]:40s} loop > 3 ms late {len(ms)} times, p50 "
              f"{statistics.median(ms):.1f} max {max(ms):.1f} ms")
    if m.ticks:
        ms = [(t1 - t0) * 1000 for t0, t1, *_ in m.ticks]
        print(f"  survey scheduler: {len(ms)} ticks, p50 {statistics.median(ms):.1f} "
              f"p99 {pct(ms, 0.99):.1f} ms, {sum(t[3] for t in m.ticks)} surveys sent")


def _consumed(m: Marks, name: str, case: str) -> tuple[str, tuple] | None:
    """The CaseResolved of ``case`` as consumer ``name`` pulled it: (the durable, its rx
    mark). ``end_to_end.py`` runs no partitioned durable: the name is the durable's."""
    rx = m.rx.get((name, "CaseResolved", case))
    return (name, rx) if rx is not None else None


def _holds(requested: list[float], execute: tuple) -> bool:
    """Whether a writer batch built a SurveyRequested (else: the scheduler's sends)."""
    i = bisect.bisect_left(requested, execute[0])
    return i < len(requested) and requested[i] <= execute[1]


def main() -> None:
    args = sys.argv[1:]
    step = "50%"
    if "--step" in args:
        at = args.index("--step")
        step = f"{args[at + 1]}%"
        del args[at:at + 2]
    if args[:1] == ["--marks"]:
        report(Path(args[1]), (float(args[3]), float(args[4])))
        return
    folder = Path(tempfile.mkdtemp(prefix="sixstep-hops-"))
    env = {**os.environ, "HOPS_PROBE_DIR": str(folder),
           "PYTHONPATH": os.pathsep.join([str(ROOT / "benchmarks" / "hops"), str(ROOT)])}
    run = subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / "end_to_end.py"), *args],
                           env=env, stderr=subprocess.PIPE, text=True)
    window: tuple[float, float] | None = None
    assert run.stderr is not None
    for said in run.stderr:  # passed on, and the step's times kept
        sys.stderr.write(said)
        words = said.split()
        if words[1:3] == ["e2e", "step"] and words[5] == step and window is None:
            window = (float(words[6]), float(words[7]))
    if run.wait() != 0 or window is None:
        raise SystemExit(f"end_to_end.py failed, or ran no {step} step")
    print(f"marks: {folder} (--window {window[0]:.3f} {window[1]:.3f})")
    report(folder, window)


if __name__ == "__main__":
    main()

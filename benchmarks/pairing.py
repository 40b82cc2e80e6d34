"""Two source trees measured in turn, as the ``*_paired.py`` micro-runs do: ``run(tree)`` gives
one figure (a process of its own, the best of its rounds), the trees alternate and so does
which goes first, and each pair is printed with the load average; then the medians, their
ratio and in how many pairs this tree was lower."""

from __future__ import annotations

import statistics
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path


def alternate(other_tree: Path, this_tree: Path, pairs: int, run: Callable[[Path], float],
              unit: str) -> None:
    other: list[float] = []
    this: list[float] = []
    for pair in range(pairs):
        order = [(other_tree, other), (this_tree, this)]
        for tree, into in order if pair % 2 == 0 else order[::-1]:
            into.append(run(tree))
        with open("/proc/loadavg") as loadavg:
            load = loadavg.read().split()[0]
        print(f"pair {pair} ({'other' if pair % 2 == 0 else 'this'} first, load {load}): "
              f"other {other[-1]:.2f}, this {this[-1]:.2f} us {unit}", flush=True)
    lower = sum(t < o for o, t in zip(other, this, strict=True))
    print(f"medians: other {statistics.median(other):.2f}, this {statistics.median(this):.2f} "
          f"us {unit} ({statistics.median(this) / statistics.median(other):.2f} x); "
          f"this lower in {lower} of {pairs}")


def child(script: Path, tree: Path, *argv: str) -> float:
    """``script --child *argv`` run with ``tree``'s code (this virtualenv's packages): the
    figure it prints last."""
    out = subprocess.run(
        [sys.executable, str(script), "--child", *argv],
        cwd=tree, env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        check=True, capture_output=True, text=True)
    return float(out.stdout.split()[-1])


async def theirs_minus_nobodys(read: Callable[[object], Awaitable[object]], theirs: object,
                               nobody: object, rounds: int, reads: int,
                               clock: Callable[[], float]) -> float:
    """us of ``clock`` (seconds of CPU) a read: ``read(theirs)`` minus ``read(nobody)``,
    each the best of ``rounds`` rounds of ``reads`` reads, which goes first alternating."""
    best = {"theirs": float("inf"), "nobody": float("inf")}
    for round_ in range(rounds):
        ids = (("theirs", theirs), ("nobody", nobody))
        for name, id_ in ids if round_ % 2 == 0 else ids[::-1]:
            started = clock()
            for _ in range(reads):
                await read(id_)
            best[name] = min(best[name], (clock() - started) / reads * 1e6)
    return best["theirs"] - best["nobody"]

"""A rebuild reads in a child process only where a second CPU is really there: a container
limited to one CPU on a many-core host is one CPU."""

from __future__ import annotations

import os
from pathlib import Path

from shared.runtime.cpus import usable_cpus


def test_the_cgroup_quota_caps_the_cpus_the_host_has(tmp_path: Path) -> None:
    cpu_max = tmp_path / "cpu.max"
    mine = len(os.sched_getaffinity(0))
    cpu_max.write_text("100000 100000\n")  # limits.cpu: 1
    assert usable_cpus(cpu_max) == 1
    cpu_max.write_text("50000 100000\n")  # half a CPU is still one
    assert usable_cpus(cpu_max) == 1
    cpu_max.write_text("150000 100000\n")
    assert usable_cpus(cpu_max) == min(mine, 2)
    cpu_max.write_text("max 100000\n")
    assert usable_cpus(cpu_max) == mine
    assert usable_cpus(tmp_path / "none") == mine  # no cgroup v2: its affinity
    cpu_max.write_text("garbled")
    assert usable_cpus(cpu_max) == mine

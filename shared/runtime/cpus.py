"""How many CPUs this process may really use: the ones it may run on (its affinity: a
container's cpuset) and no more than its cgroup's quota (Kubernetes' ``limits.cpu``, docker's
``--cpus``), which ``os.cpu_count()`` does not see: it counts the host's."""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def usable_cpus(cpu_max: Path = CGROUP_CPU_MAX) -> int:
    """The CPUs the process may use, at least 1: its affinity, capped by a cgroup v2 quota
    (``cpu.max``: ``max 100000``, none; ``150000 100000``, one and a half: 2)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cpus = os.cpu_count() or 1
    try:
        quota, period = cpu_max.read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):  # no cgroup v2 here, or a line not as documented
        pass
    return max(cpus, 1)

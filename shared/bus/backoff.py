"""How long to wait before starting something again that keeps stopping: at once the first
time, then a pause that doubles up to a cap, each drawn between half and all of its value
(jitter: replicas that lost the same server do not all come back in step), and from the first
again once it went well."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """The pauses of one run of failures (``next``), forgotten by ``succeeded``."""

    first: float = 0.25
    cap: float = 15.0
    #: Draws the jitter (a seeded ``random.Random`` in a test).
    rng: random.Random = field(default_factory=random.Random, repr=False)
    #: Failures in a row since the last success.
    streak: int = 0

    def next(self) -> float:
        """The pause before the next start: 0 after the first failure of a run, then between
        half and all of ``first``, ``2 * first`` ... up to ``cap``."""
        self.streak += 1
        if self.streak == 1:
            return 0.0
        ceiling = min(self.cap, self.first * 2 ** (self.streak - 2))
        return self.rng.uniform(ceiling / 2, ceiling)

    def succeeded(self) -> int:
        """It went well: the next failure starts a new run. Returns the failures the run had."""
        streak, self.streak = self.streak, 0
        return streak

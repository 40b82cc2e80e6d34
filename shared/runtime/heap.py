"""Whether this process has frozen its heap (``gc.freeze``), known without counting it.

``gc.get_freeze_count()`` walks every frozen object: 30-55 ms for the ~500,000 a test run
freezes once it has collected. ``start_runtime`` asked it at every start (to freeze only a
heap nobody froze) and the test run after every test (to freeze again a heap a test gave
back): ~3,300 walks, some three minutes of CI's fifteen. Freezing and giving back through
here keeps the answer in a flag. gc's state is the process's, so this is too.
"""

from __future__ import annotations

import gc

_frozen = False


def freeze() -> None:
    """``gc.freeze()``: what the heap holds now is left out of the collector's passes."""
    global _frozen
    gc.freeze()
    _frozen = True


def unfreeze() -> None:
    """``gc.unfreeze()``: the frozen objects are the collector's again."""
    global _frozen
    gc.unfreeze()
    _frozen = False


def frozen() -> bool:
    """Whether the heap was frozen here and not given back since."""
    return _frozen

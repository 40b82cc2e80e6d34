"""How much a backtracking regex engine reads while a module's patterns run: counted, not timed.

Python's ``re`` tells nobody how many steps a search took, and a clock says as much about the
machine's load as about the pattern. What makes a search catastrophic is how far each attempt
reads before it fails: a search tries the pattern at every position, and an attempt that can
read to the end of a run of digits (``\\d+`` looking for a 号 that never comes) makes the run
quadratic. How far an attempt at ``i`` can read is a property of the pattern and the text, not
of the machine: the longest stretch from ``i`` that is still the beginning of some match
(``regex``'s partial matching answers that), plus the character that ended it.

:func:`counting` puts a counting stand-in in place of every compiled pattern of the modules
given (and of their ``re`` module's functions), runs the real pattern, and charges each call
the reads of every attempt it made: each position a search tried before a match (or to the end
of the text), and each match. Comparing the charges on a text and on one four times as long
tells a linear scrubber (about four times the work) from a quadratic one (sixteen), the same
on a laptop or a CI machine at load 14.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
import regex

_FLAGS = ("IGNORECASE", "MULTILINE", "DOTALL", "VERBOSE", "ASCII", "UNICODE")
"""The flags ``re`` and ``regex`` share by name (their values differ: re.ASCII is regex.V1)."""


@cache
def _partial(pattern: str, flags: int) -> Any:
    """The same pattern in ``regex``, which can say whether a text begins a match."""
    same = 0
    for name in _FLAGS:
        if flags & getattr(re, name):
            same |= getattr(regex, name)
    return regex.compile(pattern, same)


def reads(pattern: re.Pattern[str], text: str, at: int, end: int) -> int:
    """How many characters an attempt of ``pattern`` at ``at`` reads, at most, before it fails
    or matches: the longest stretch up to ``end`` that still begins a match, plus one."""
    rx = _partial(pattern.pattern, pattern.flags)
    longest = 0  # text[at:at + longest] begins a match (or is one)

    def begins(k: int) -> bool:
        nonlocal longest
        m = rx.match(text, at, at + k, partial=True)
        if m is None:
            return False
        longest = max(longest, m.end() - at)
        return bool(m.partial)

    good, k = 0, 1
    while at + k <= end and begins(k):
        good, k = k, k * 2
    bad = min(k, end - at + 1)
    while bad - good > 1:  # a stretch that begins a match: so does every shorter one
        mid = (good + bad) // 2
        good, bad = (mid, bad) if begins(mid) else (good, mid)
    return max(good, longest) + 1


def _string_and_bounds(method: str, args: tuple[Any, ...],
                       kwargs: dict[str, Any]) -> tuple[str, int, int]:
    if method in ("sub", "subn"):
        text = args[1] if len(args) > 1 else kwargs["string"]
        return text, 0, len(text)
    if method == "split":
        text = args[0] if args else kwargs["string"]
        return text, 0, len(text)
    text = args[0] if args else kwargs["string"]
    pos = args[1] if len(args) > 1 else kwargs.get("pos", 0)
    endpos = args[2] if len(args) > 2 else kwargs.get("endpos", sys.maxsize)
    return text, max(0, pos), min(len(text), endpos)


def work_of(pattern: re.Pattern[str], method: str, args: tuple[Any, ...],
            kwargs: dict[str, Any]) -> int:
    """What one call of ``pattern.<method>`` reads: each attempt it made, and one for the
    call."""
    text, pos, end = _string_and_bounds(method, args, kwargs)
    if not isinstance(text, str):
        return 1
    if method in ("match", "fullmatch"):
        return 1 + reads(pattern, text, pos, end)
    total, at = 1, pos
    for m in pattern.finditer(text, pos, end):
        total += sum(1 + reads(pattern, text, i, end) for i in range(at, m.start()))
        total += 1 + reads(pattern, text, m.start(), end)
        at = max(m.end(), m.start() + 1)
        if method == "search":
            return total
    return total + sum(1 + reads(pattern, text, i, end) for i in range(at, end + 1))


class _Counted:
    """A compiled pattern that charges what each call reads to ``work[pattern]``."""

    def __init__(self, pattern: re.Pattern[str], work: Counter[str]) -> None:
        self._pattern = pattern
        self._work = work

    def __getattr__(self, name: str) -> Any:
        real = getattr(self._pattern, name)
        if name not in ("match", "fullmatch", "search", "finditer", "findall", "sub", "subn",
                        "split"):
            return real

        def counted(*args: Any, **kwargs: Any) -> Any:
            self._work[self._pattern.pattern] += work_of(self._pattern, name, args, kwargs)
            return real(*args, **kwargs)
        return counted


def _counting_re(work: Counter[str]) -> SimpleNamespace:
    """The ``re`` module as a module's functions see it, its one-off calls counted too."""

    def one_off(name: str) -> Callable[..., Any]:
        def call(pattern: str | re.Pattern[str], *args: Any, **kwargs: Any) -> Any:
            flags = kwargs.pop("flags", 0)
            compiled = pattern if isinstance(pattern, re.Pattern) else re.compile(pattern, flags)
            return getattr(_Counted(compiled, work), name)(*args, **kwargs)
        return call

    return SimpleNamespace(**{
        **{name: getattr(re, name) for name in dir(re) if not name.startswith("__")},
        **{name: one_off(name) for name in ("match", "fullmatch", "search", "finditer",
                                            "findall", "sub", "subn", "split")}})


@contextmanager
def counting(monkeypatch: pytest.MonkeyPatch, *modules: ModuleType) -> Iterator[Counter[str]]:
    """Inside, every compiled pattern of ``modules`` (and their ``re.<function>`` calls)
    charges what it reads to the counter yielded, keyed by the pattern's text."""
    work: Counter[str] = Counter()
    with monkeypatch.context() as patched:
        for module in modules:
            for name, value in list(vars(module).items()):
                if isinstance(value, re.Pattern):
                    patched.setattr(module, name, _Counted(value, work))
                elif value is re:
                    patched.setattr(module, name, _counting_re(work))
        yield work

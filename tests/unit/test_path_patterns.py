"""Auth's public and optional paths are told apart once per request by ``PathPatterns``: a
set for the plain ones, a pattern tried only on a path that starts as it does. Whatever the
patterns, it answers as trying every pattern on the path did."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.http.auth import PUBLIC_PATHS, PathPatterns
from shared.http.case_texts import PATTERN as CASE_TEXTS

# Every service's own, as their main.py pass them (intake, follow-up, feedback).
SERVICES = [
    [r"/", r"/counter", CASE_TEXTS],
    [r"/referrals/[^/]+/unit-reply"],
    [r"/", r"/board", r"/s/[^/]+", r"/pad", r"/pads/pair", r"/pads/next", r"/public/[^/]+"],
    [r"/surveys/[^/]+/rating", r"/surveys/[^/]+/decline"],
]
PATHS = ["/", "", "/cases", "/counter", "/counter/", "/counterx", "/internal/case-texts/abc",
         "/internal/resident-texts/x", "/internal/other-texts/x", "/internal/case-texts/a/b",
         "/referrals/r1/unit-reply", "/referrals//unit-reply", "/s/tok", "/s/", "/s/a/b",
         "/public/2026-12", "/surveys/s1/rating", "/surveys/s1/decline", "/health", "/docs",
         "/pads/pair", "/pad"]


def _any_fullmatch(patterns: list[str], path: str, exact: frozenset[str] = frozenset()) -> bool:
    return path in exact or any(re.fullmatch(p, path) for p in patterns)


def test_the_services_own_paths_answer_as_every_pattern_tried():
    for patterns in SERVICES:
        public = PathPatterns(patterns, exact=PUBLIC_PATHS)
        for path in PATHS:
            assert public.holds(path) == _any_fullmatch(patterns, path, PUBLIC_PATHS), \
                (patterns, path)


def test_a_pattern_that_may_start_otherwise_is_tried_on_every_path():
    # an alternative at the top, a quantified first letter, flags, a class holding ']' or '|'
    for pattern, path, held in [
            (r"/a/x|/b/y", "/b/y", True), (r"/ab?c", "/ac", True), (r"/ab*", "/a", True),
            (r"(?i)/ADMIN", "/admin", True), (r"/x[]|]/|/y", "/y", True),
            (r"/x[^]|]|/z", "/z", True), (r"/q\|/r", "/r", False), (r"/q\|/r", "/q|/r", True),
            (r"/p(a|b)|/w", "/w", True), (r"/k{2}", "/kk", True), (r"/k{2}", "/k", False)]:
        assert PathPatterns([pattern]).holds(path) is held, (pattern, path)
        assert _any_fullmatch([pattern], path) is held, (pattern, path)


_PIECES = st.sampled_from(["/", "a", "b", "ab", "-", ".", "[^/]+", "[ab]", "(a|b)", "|", "?",
                           "*", "+", "{2}", "\\.", "\\|", "[]a]", "[^]/]", "(?:a|/)", "x"])
_PATTERN = st.lists(_PIECES, min_size=1, max_size=6).map("".join).filter(
    lambda p: _compiles(p))


def _compiles(pattern: str) -> bool:
    try:
        re.compile(pattern)
    except re.error:
        return False
    return True


@settings(max_examples=400, deadline=None)
@given(st.lists(_PATTERN, min_size=1, max_size=4),
       st.lists(st.text(alphabet="/ab.-x|]", max_size=8), min_size=1, max_size=10))
def test_any_patterns_answer_as_every_pattern_tried(patterns, paths):
    held = PathPatterns(patterns)
    for path in paths:
        assert held.holds(path) == _any_fullmatch(patterns, path), (patterns, path)


# redteam112: patterns grown from a grammar (groups, alternatives inside and outside them,
# classes holding ']' '|' '(' or an escape, quantifiers of every kind, anchors, escapes), and
# paths drawn from each pattern itself (``from_regex``: the ones it matches, where the prefix
# gate would wrongly turn a public path away) as well as near misses of them.
_ATOM = st.sampled_from(["/", "a", "b", "-", "ab", "/a", "\\.", "\\|", "\\(", "\\d", "\\w",
                         "\\/", "[^/]", "[ab]", "[]a]", "[^]/]", "[a\\]]", "[(|]", "[a-]",
                         "."])
_QUANTIFIER = st.sampled_from(["", "", "", "", "?", "*", "+", "{2}", "{0,2}", "*?", "??"])
_GROUP_QUANTIFIER = st.sampled_from(["", "", "?", "{2}", "??"])


def _grown(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    pair = st.tuples(children, children)
    return st.one_of(  # a group's quantifiers are few: nested stars backtrack for ages
        pair.map("".join),
        pair.map(lambda p: f"{p[0]}|{p[1]}"),
        st.tuples(st.sampled_from(["(", "(?:"]), pair, _GROUP_QUANTIFIER).map(
            lambda t: f"{t[0]}{t[1][0]}|{t[1][1]}){t[2]}"),
        st.tuples(children, _GROUP_QUANTIFIER).map(lambda t: f"({t[0]}){t[1]}"))


_GROWN = st.tuples(st.recursive(st.tuples(_ATOM, _QUANTIFIER).map("".join), _grown,
                                max_leaves=5),
                   st.sampled_from(["", "", "$", "\\Z"])).map(
    lambda t: "/" + "".join(t)).filter(_compiles)


@settings(max_examples=400, deadline=None)
@given(st.lists(_GROWN, min_size=1, max_size=3), st.data())
def test_grown_patterns_answer_as_every_pattern_tried_on_the_paths_they_match(patterns, data):
    held = PathPatterns(patterns)
    paths = [data.draw(st.from_regex(p, fullmatch=True).filter(lambda s: len(s) < 40))
             for p in patterns]
    paths += [path + tail for path in paths for tail in ("/", "a", "//", "\x00")]
    paths += [path[:-1] for path in paths if path]
    paths += data.draw(st.lists(st.text(alphabet="/ab.-|(0\\", max_size=8), max_size=5))
    for path in paths:
        assert held.holds(path) == _any_fullmatch(patterns, path), (patterns, path)

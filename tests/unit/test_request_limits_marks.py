"""The front door's NUL check of a request's target and body reads each part alone
(``shared.http.limits.RequestLimits``): it refuses exactly what the joined target
(``raw_path + b"?" + query_string``) and a body window searched for every mark refused."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.http.limits import _NUL_MARKS, BodyNul, RequestLimits

LIMITS = RequestLimits(1 << 20)
# the marks' own bytes, a "?" and a few others, so the marks and their halves are met often
parts = st.lists(st.sampled_from([b"\x00", b"%", b"0", b"%0", b"00", b"?", b"\\", b"u", b"a",
                                  b"\\u00", b"/"]), max_size=8).map(b"".join)


@settings(max_examples=500, deadline=None)
@given(raw_path=parts, query=parts)
def test_a_nul_in_a_path_or_a_query_is_refused_as_in_the_joined_target(
        raw_path: bytes, query: bytes) -> None:
    scope = {"path": raw_path.decode("latin-1").replace("%00", ""), "raw_path": raw_path,
             "query_string": query, "headers": []}
    target = raw_path + b"?" + query
    joined = 422 if ("\x00" in scope["path"] or any(m in target for m in _NUL_MARKS[:2])) \
        else None
    assert LIMITS.refusal(scope) == joined


@settings(max_examples=300, deadline=None)
@given(chunks=st.lists(parts, min_size=1, max_size=5))
def test_a_nul_split_across_a_streamed_bodys_chunks_is_refused(chunks: list[bytes]) -> None:
    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
                for i, c in enumerate(chunks)]
    sent = iter(messages)

    async def receive() -> Any:
        return next(sent)

    async def read() -> bool:
        counted = LIMITS.counting(receive)
        try:
            for _ in messages:
                await counted()
        except BodyNul:
            return True
        return False

    # every mark lies within one chunk and the 5 bytes before it (the longest mark is 6)
    expected = any(m in b"".join(chunks) for m in _NUL_MARKS)
    assert asyncio.run(read()) == expected

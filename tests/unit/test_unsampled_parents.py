"""A consumer makes no span below a message whose trace is not sampled, and reads that off
its ``traceparent`` in one match: the same answer as reading the parent in full."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.tracing import spans

HEX = "0123456789abcdef"


def full_reading(traceparent: str) -> bool:
    """The parent read in full (``_span_context``: version 00, ids not all zeros): valid and
    not sampled."""
    parent = spans._span_context(traceparent)
    return parent is not None and not parent.trace_flags.sampled


@pytest.fixture(autouse=True)
def sampler_follows_parent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spans, "_follows_parent", True)


TRACE = "0af7651916cd43dd8448eb211c80319c"
SPAN = "b7ad6b7169203331"
EDGES = [
    f"00-{TRACE}-{SPAN}-00", f"00-{TRACE}-{SPAN}-01", f"00-{TRACE}-{SPAN}-02",
    f"00-{TRACE}-{SPAN}-ff", f"00-{TRACE}-{SPAN}-fe", f"00-{TRACE}-{SPAN}-0A",
    f"00-{'0' * 32}-{SPAN}-00", f"00-{TRACE}-{'0' * 16}-00", f"00-{'0' * 31}1-{SPAN}-00",
    f"00-{TRACE}-{'0' * 15}1-00", f"00-{TRACE.upper()}-{SPAN}-00", f"01-{TRACE}-{SPAN}-00",
    f"00-{TRACE}-{SPAN}-00-extra", f"00-{TRACE}-{SPAN}-00\n", f" 00-{TRACE}-{SPAN}-00",
    f"00-{TRACE[:-1]}-{SPAN}-00", f"00-{TRACE}-{SPAN}-0", f"00_{TRACE}-{SPAN}-00", "",
]


@pytest.mark.parametrize("traceparent", EDGES)
def test_an_unsampled_parent_is_told_as_a_full_reading_tells_it(traceparent: str) -> None:
    assert spans._not_recorded(traceparent) == full_reading(traceparent)


def _hex(size: int) -> st.SearchStrategy[str]:
    return st.one_of(st.just("0" * size), st.text(HEX, min_size=size, max_size=size),
                     st.text(HEX + "ABCDEF-0 g", min_size=size - 1, max_size=size + 1))


@given(st.sampled_from(["00", "01", "ff", "0", "000"]), _hex(32), _hex(16), _hex(2),
       st.sampled_from(["", "-", "-00", "\n"]))
def test_any_traceparent_is_told_as_a_full_reading_tells_it(
        version: str, trace_id: str, span_id: str, flags: str, tail: str) -> None:
    traceparent = f"{version}-{trace_id}-{span_id}-{flags}{tail}"
    assert spans._not_recorded(traceparent) == full_reading(traceparent)


def test_nothing_is_skipped_when_the_sampler_decides_for_itself(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spans, "_follows_parent", False)
    assert not spans._not_recorded(f"00-{TRACE}-{SPAN}-00")


class _Event:
    def __init__(self, causation_id: object) -> None:
        self.meta: dict[str, object] = {"causation_id": causation_id}


def test_a_command_is_stamped_with_the_trace_of_the_message_it_answers() -> None:
    """The causes are keyed by the messages' event ids as read (no string made per message);
    a command's ``causation_id`` is the id's text, or something else for a command no
    message caused, which keeps the trace it was submitted in."""
    caused_by = uuid.uuid4()
    cause, submitted_in = f"00-{TRACE}-{SPAN}-00", f"00-{'1' * 32}-{SPAN}-01"
    trace = spans.CommandTrace(submitted_in, {caused_by: cause, uuid.uuid4(): "other"})
    events = [_Event(str(caused_by)), _Event(str(caused_by).upper()), _Event(caused_by),
              _Event("request-7"), _Event(None), _Event(str(uuid.uuid4()))]
    spans.stamp(events, trace)
    assert [e.meta[spans.TRACEPARENT] for e in events] == [
        cause, cause, cause, submitted_in, submitted_in, submitted_in]


def kept_in_full(traceparent: str) -> bool:
    """A span below ``traceparent`` would be recorded: the parent read in full (the
    propagator's reading), valid and sampled."""
    parent = spans.context_of(traceparent)
    if parent is None:
        return False
    return spans.trace.get_current_span(parent).get_span_context().trace_flags.sampled


@pytest.mark.parametrize("traceparent", EDGES)
def test_a_batch_links_a_message_as_a_full_reading_tells_it(traceparent: str) -> None:
    """A batch's span reads each message's sampled flag off the last character of its
    header: the same answer as reading it in full."""
    assert (spans._kept(traceparent) is not None) == kept_in_full(traceparent)


@given(st.sampled_from(["00", "01", "ff", "0", "000"]), _hex(32), _hex(16), _hex(2),
       st.sampled_from(["", "-", "-00", "\n"]))
def test_any_message_is_linked_as_a_full_reading_tells_it(
        version: str, trace_id: str, span_id: str, flags: str, tail: str) -> None:
    traceparent = f"{version}-{trace_id}-{span_id}-{flags}{tail}"
    assert (spans._kept(traceparent) is not None) == kept_in_full(traceparent)

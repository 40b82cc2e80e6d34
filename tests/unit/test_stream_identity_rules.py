"""When a consumer's tracking rows belong to the stream it finds (``not_the_stream``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.bus.stream_identity import StreamSeen, not_the_stream

MADE = datetime(2026, 12, 4, 20, 0, 0, 123456, tzinfo=UTC)


def test_the_stream_it_recorded_with_more_events_on_it_is_its_stream() -> None:
    assert not_the_stream(MADE, 900, StreamSeen(MADE, 1000)) is None


def test_a_stream_whose_limits_took_the_applied_events_is_still_its_stream() -> None:
    # first_seq beyond what was applied, or a purge: the creation time and sequences stay
    assert not_the_stream(MADE, 1000, StreamSeen(MADE, 1000)) is None


def test_a_stream_made_at_another_time_is_another_stream_whatever_its_length() -> None:
    why = not_the_stream(MADE, 5, StreamSeen(MADE + timedelta(hours=3), 100_000))
    assert why is not None and why.startswith("recreated")


def test_a_stream_ending_before_what_was_applied_lost_it() -> None:
    why = not_the_stream(MADE, 1200, StreamSeen(MADE, 1000))
    assert why is not None and why.startswith("behind")


def test_rows_of_an_older_version_without_a_creation_time_are_judged_by_sequence() -> None:
    assert not_the_stream(None, 1000, StreamSeen(MADE, 1000)) is None
    assert (not_the_stream(None, 1001, StreamSeen(MADE, 1000)) or "").startswith("behind")


def test_a_consumer_that_applied_nothing_takes_any_stream() -> None:
    assert not_the_stream(None, None, StreamSeen(MADE, 0)) is None

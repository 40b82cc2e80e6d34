"""The fault tests' final audit waits until the log has settled (tests/faults/harness.py):
a look that catches a consumer committing between the store's read and the tracking's read
does not end the wait."""

from __future__ import annotations

from tests.faults.harness import Settling


def test_a_clean_look_after_a_look_that_found_a_consumer_behind_is_not_settled() -> None:
    settling = Settling()
    assert not settling.look(40, clean=False)  # a consumer behind; its derived event to come
    # it committed the effect and the derived event between this look's store and tracking
    # reads: caught up, the derived event in neither the stream nor the store as read
    assert not settling.look(40, clean=True)
    assert not settling.look(41, clean=True)  # the derived event, found
    assert settling.look(41, clean=True)


def test_two_clean_looks_at_the_same_length_are_settled() -> None:
    settling = Settling()
    assert not settling.look(12, clean=True)
    assert settling.look(12, clean=True)

"""Consumers and replays read a message's delivery facts from its ack subject as nats-py would."""

from __future__ import annotations

import pytest
from nats.aio.msg import Msg

from shared.bus.pulling import delivery, sequence_and_delivered


@pytest.mark.parametrize("reply", [
    "$JS.ACK.SIXSTEP.intake-cases.3.1042.977.1764048000000000000.58",
    "$JS.ACK.hub.ACCHASH.SIXSTEP.intake-cases.3.1042.977.1764048000000000000.58.x7Yt",
    "$JS.ACK.hub.ACCHASH.SIXSTEP.intake-cases.1.7.7.1764048000000000000.0",
])
def test_delivery_matches_nats_py_metadata(reply: str) -> None:
    msg = Msg(_client=None, subject="sixstep.intake.CaseOpened.p0", reply=reply)  # type: ignore[arg-type]
    meta = msg.metadata
    assert delivery(msg) == (meta.sequence.stream, meta.sequence.consumer, meta.num_delivered,
                             meta.num_pending)
    assert sequence_and_delivered(msg) == (meta.sequence.stream, meta.num_delivered)


def test_a_message_without_an_ack_subject_is_refused() -> None:
    msg = Msg(_client=None, subject="sixstep.intake.CaseOpened.p0", reply="")  # type: ignore[arg-type]
    with pytest.raises(Exception):  # noqa: B017 - nats-py's own error for "not a JetStream message"
        delivery(msg)
    with pytest.raises(Exception):  # noqa: B017 - the same
        sequence_and_delivered(msg)

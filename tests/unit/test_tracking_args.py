"""A batch's tracking write names each case once, with the lowest and highest sequence of its
events in the batch, and each service's last position and sequence (``TRACK``'s arguments,
``Tracking._tracking_args``): the same arguments however the batch is ordered and however
many copies of a case's key its events carry, worked out without the keys' Python
``__hash__`` and ``__eq__``."""

from __future__ import annotations

import random
import uuid
from types import SimpleNamespace
from typing import Any

from shared.bus.consumer.tracking import Tracking


class CountedKey(uuid.UUID):
    """A case's key that counts how often a dict asks it for its hash or compares it."""

    asked = 0

    def __hash__(self) -> int:
        CountedKey.asked += 1
        return super().__hash__()

    def __eq__(self, other: object) -> bool:
        CountedKey.asked += 1
        return super().__eq__(other)


def item(key: uuid.UUID, seq: int, service: str, position: int) -> Any:
    envelope = SimpleNamespace(partition_key=key, service=service, position=position)
    return SimpleNamespace(envelope=envelope, seq=seq)


def expected(items: list[Any]) -> tuple[object, ...]:
    """``TRACK``'s arguments as the rule says them: cases in the order first met."""
    cases: dict[uuid.UUID, list[int]] = {}
    first: dict[uuid.UUID, uuid.UUID] = {}
    services: dict[str, list[int]] = {}
    for i in items:
        key = uuid.UUID(int=i.envelope.partition_key.int)
        first.setdefault(key, i.envelope.partition_key)
        cases.setdefault(key, []).append(i.seq)
        services.setdefault(i.envelope.service, []).append(i.envelope.position)
        services[i.envelope.service + "/seq"] = [*services.get(
            i.envelope.service + "/seq", []), i.seq]
    names = [s for s in services if "/" not in s]
    return ("followup-rules", [first[k] for k in cases], [max(s) for s in cases.values()],
            names, [max(services[s]) for s in names], [max(services[s + "/seq"]) for s in names],
            [min(s) for s in cases.values()], [max(s) for s in cases.values()])


def test_a_mornings_batch_is_tracked_once_a_case_without_hashing_its_keys() -> None:
    rnd = random.Random(20261220)
    cases = [uuid.UUID(int=rnd.getrandbits(128)) for _ in range(40)]
    tracking = SimpleNamespace(name="followup-rules")
    for _ in range(50):
        seqs = rnd.sample(range(1, 5000), 300)
        if rnd.random() < 0.5:
            seqs.sort()  # as a batch comes: in stream order; redeliveries out of it
        items = [item(CountedKey(int=rnd.choice(cases).int), seq,
                      rnd.choice(("intake", "feedback")), rnd.randrange(1, 10_000))
                 for seq in seqs]
        CountedKey.asked = 0
        args = Tracking._tracking_args(tracking, items)  # type: ignore[arg-type]
        assert CountedKey.asked == 0
        assert args == expected(items)
        assert all(type(k) is CountedKey for k in args[1])  # the event's own key, sent as is

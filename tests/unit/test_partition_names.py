"""The partitions a durable's name says it consumes, as ``Runtime.add_consumer`` names them
(``partitioned_name``): ``Consumer.caught_up`` counts a partition by them (a split layout's
API asks the workers')."""

from __future__ import annotations

from shared.bus.consumer import partitioned_name, partitions_named
from shared.bus.durable_names import base_consumer
from shared.settings import Settings


def named(partitions: str, total: int = 16) -> str:
    """The durable ``feedback-figures`` gets on a worker owning ``partitions``."""
    owned = Settings(partitions=total, consumer_partitions=partitions).owned_partitions()
    assert owned is not None
    return partitioned_name("feedback-figures", owned)


def test_a_durables_name_gives_its_partitions() -> None:
    assert partitions_named("feedback-figures", 16) == set(range(16))
    assert partitions_named(named("0-7"), 16) == set(range(8))
    assert partitions_named(named("8-15"), 16) == set(range(8, 16))
    assert partitions_named(named("3"), 16) == {3}
    assert partitions_named(named("0,2,5,9"), 16) == {0, 2, 5, 9}
    assert partitions_named(named("2-3", 4), 4) == {2, 3}
    assert base_consumer(named("0-7")) == "feedback-figures"

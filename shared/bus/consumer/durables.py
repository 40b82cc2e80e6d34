"""The durables of a consumer on the server: partitioned workers' names (``partitioned_name``)
and the partitions a durable consumes."""

from __future__ import annotations

from collections.abc import Sequence

from nats.js.api import ConsumerInfo
from nats.js.client import JetStreamContext

from shared.bus.durable_names import PARTITION_SUFFIX, base_consumer
from shared.bus.jetstream import every_consumer


async def durables_of(js: JetStreamContext, stream: str, consumer: str) -> list[ConsumerInfo]:
    """The server's durables of ``consumer``: its own name's and each partitioned worker's
    (``base_consumer``), and one a changed split left behind; from every page of the
    stream's consumers (``every_consumer``)."""
    base = base_consumer(consumer)
    return [info for info in await every_consumer(js, stream)
            if base_consumer(info.name) == base]


def partitioned_name(name: str, owned: Sequence[int]) -> str:
    """The durable of consumer ``name`` on a worker owning the partitions ``owned`` (sorted):
    each one named up to four, else the first, the last and how many."""
    return (f"{name}-p{'_'.join(str(p) for p in owned)}" if len(owned) <= 4
            else f"{name}-p{owned[0]}to{owned[-1]}x{len(owned)}")


def partitions_named(name: str, partitions: int) -> set[int]:
    """The partitions a durable's name says it consumes (``partitioned_name``): all
    without a suffix, ``-p0_1`` 0 and 1, ``-p8to15x8`` 8 to 15 (a name of more than four
    partitions keeps only the first and the last: those between are taken as its)."""
    suffix = PARTITION_SUFFIX.search(name)
    if suffix is None:
        return set(range(partitions))
    named = suffix.group(0)[2:]
    if "to" in named:
        first, last = named.split("x")[0].split("to")
        return set(range(int(first), int(last) + 1))
    return {int(p) for p in named.split("_")}


def partitions_consumed(info: ConsumerInfo, partitions: int) -> set[int]:
    """The partitions a durable on the server consumes: by its filter subjects, each ending
    in ``.p<N>`` on a partitioned worker (``Runtime.add_consumer``) or in a wildcard (every
    partition); by its name when it has none. The name of more than four partitions keeps
    only the first and the last (``partitioned_name``): ``0-3,15`` is ``-p0to15x5``, which
    would take 4-14 as its too."""
    config = info.config
    subjects = list(config.filter_subjects or []) or (
        [config.filter_subject] if config.filter_subject else [])
    if not subjects:
        return partitions_named(info.name, partitions)
    consumed: set[int] = set()
    for subject in subjects:
        last = subject.rsplit(".", 1)[-1]
        if not (last.startswith("p") and last[1:].isdigit()):
            return set(range(partitions))
        consumed.add(int(last[1:]))
    return consumed


"""What a durable's name says: the consumer (handler) it belongs to, and the partitions a
replica of it reads (``Runtime.add_consumer`` names them)."""

from __future__ import annotations

import re

#: The suffix a partitioned replica's durable carries (``-p0_1``, ``-p0to15x16``; see
#: ``Runtime.add_consumer``): ``intake-cases-p0_1`` is ``intake-cases`` on partitions 0 and 1.
PARTITION_SUFFIX = re.compile(r"-p(?:\d+(?:_\d+)*|\d+to\d+x\d+)$")


def base_consumer(name: str) -> str:
    """The consumer a (possibly partitioned) durable belongs to: its handler's name."""
    return PARTITION_SUFFIX.sub("", name)

"""The consumer framework: durable pull consumers that apply events exactly once in effect.

A consumer fetches a batch, drops what it has already applied, and applies the rest in one
PostgreSQL transaction together with its tracking records (per aggregate: the last stream
sequence applied). The usual batch (every event fresh) writes its tracking records first,
in a statement that writes a case's row only where the batch's events are all new to it, as
the row stands when locked (``TRACK_FIRST``): one statement and one PostgreSQL transaction a
batch fewer than a read of its own before the transaction; a batch found not all fresh is
rolled back, its rows read and it is sorted as before (duplicates, waiting, holds). Such a
batch, and one applied one event at a time, writes its tracking after its effects with the
same test (``TRACK``): a row another transaction moved since it was read (the rebuild's
switch, a batch of the durable's before-leader) rolls it back and it is sorted again,
never moved back (an event applied alone is applied again at once: ``_applied_alone_again``).
A batch is applied in stream order (a redelivered event can come after a newer one of its
case), each stream sequence once (a copy delivered again into it: ``_once_each``), each
case's row at its highest sequence. It
acks only after the commit, so a crash before the commit redelivers and a crash after it
finds the tracking records and skips. Events of one aggregate are
applied in stream order: when one fails, later events of the same aggregate wait behind it
(durably: the block is a column of the tracking row) until it succeeds or is dead-lettered,
or is no longer on the stream (its limits took it, an operator removed it: ``_released``).
A failing event is retried with back-off up to ``max_deliver`` times, then published to the
dead-letter stream with the reason; an event that cannot be decoded goes there at once. The
tries are counted in the tracking row (``blocked_attempts``), not taken from JetStream's
delivery count: an event waiting behind a failing one is handed back each time it comes, and
each hand-back counts as a delivery. For the same reason the durable has no delivery limit of
its own: JetStream stops delivering a message at its limit without a word, and the case's
later events waiting behind a retry were lost that way.

Per-aggregate order also holds across crashes and replicas, because a durable consumer is
only ever driven by one process at a time:

* **one leader per durable**: a consumer applies its batches on one PostgreSQL connection that
  holds an advisory lock named after the stream and the durable; a second process with the
  same consumer (a rolling update, a double start) waits on standby. If that connection dies,
  the lock goes with it and so does every batch still being applied on it.
* **in-order recovery**: the leader resets its durable to the ack floor when it starts
  (``$JS.API.CONSUMER.RESET``, nats-server 2.14+), so whatever a crashed predecessor had
  fetched but not acknowledged comes back at once and in stream order, before anything newer;
  what was applied already is skipped by its tracking record.
* **deliveries lost on the way**: a message the server sent on a connection that broke (the
  node it came through died) counts as delivered and never came; the pull after the reconnect
  brings what follows, a case's later events among it. Applied, they would move the case's
  tracking past the lost one, which comes back after ack_wait looking like a duplicate. The
  puller watches the deliveries' numbers (``Puller.lost``): at a gap the consumer applies what
  came before it and starts again from its ack floor (``_reset_to_ack_floor``), so the lost
  message comes first; a server without the reset is left ack_wait to give it back first.
* **drain**: ``drain()`` lets the batch in hand finish (applied, tracked, acked) and fetches
  no more; the service's shutdown calls it before it stops the loops.

Tracking rows hold stream sequences, which mean something only on the stream they were read
from: on a stream deleted and made again, or restored from an older backup, the consumer
applies nothing until its read model is rebuilt (``shared.bus.stream_identity``,
``_on_its_stream``; deploy/README, "A stream made anew"). An idle consumer looks again every
few seconds (``_still_there``): a stream made anew under it, or its durable deleted, makes it
start again.

A transaction PostgreSQL rolls back to break a deadlock, or for a serialization conflict
(``ROLLED_BACK``: the rebuild's switch holds the live tables and settles the tracking rows),
is not the events' fault either: a batch's tracking write so rolled back reads its rows
again and is sorted; an event applied alone is applied again at once, a try counted only
after ``MOVED_AGAIN`` such rollbacks in a row.

A statement that runs out of time (``DB_STATEMENT_TIMEOUT_S``; a lock wait ends just before
it, as ``lock_timeout``) is not the events' fault: the whole batch goes back, no try counted
(``_timed_out``). But an event whose own handling always runs out of time (a row another
session keeps locked, a statement that is slow for that one case) took every batch it was
in back with it, for ever, and the log behind it waited. After ``isolate_after`` batches in
a row ran out of time, the next is applied one event at a time (``_isolate``): an event that
runs out of time on its own while others of the pass are applied, and again when tried once
more after them (a lock that went during the pass dead-letters nothing), is dead-lettered
(its reason says so: ``sixstep dlq list``; ``sixstep dlq replay`` once the lock is gone) and
the log goes on; its case's later events in the pass wait behind it and are applied after
it, as after any dead letter. A pass in which nothing is applied (``ISOLATION_GIVES_UP``
events in a row ran out of time) is the store's fault, not the events': the batch goes
back, nothing counted. A pass that ran out of events first (those that timed out were the
last on the stream, no other case's came) counts a try for each, and dead-letters one after
``max_deliver`` such passes (``_nothing_else_to_apply``).

Where each part lives (``shared.bus.consumer`` re-exports what other modules import):

* ``consuming``: the ``Consumer`` itself, leading its durable, pulling, reading ahead,
  timeouts and starting again; its bases hold the batch's steps:
* ``batch``: a batch in one transaction, tracked first or sorted by its rows;
* ``one_by_one``: a batch one event at a time, retries with back-off (``MOVED_AGAIN``);
* ``isolation``: the pass that finds an event running out of time (``ISOLATION_GIVES_UP``);
* ``holds``: events held behind a retried one, blocks lifted when their event is gone;
* ``dead_letters``: the dead-letter stream;
* ``tracking``: the tracking tables' DDL and statements, ``wait_for_position``;
* ``handlers`` (what a handler may offer), ``items`` (a delivered message in a batch),
  ``stats``, ``pacing`` (how often it looks again), ``durables`` (partitioned workers'
  durables).
"""

from shared.bus.consumer.batch import Batches
from shared.bus.consumer.consuming import (
    DECODE_SLICE,
    REFUSED_KEY,
    RETRYING_KEY,
    RETRYING_SAID_AFTER_S,
    Consumer,
    _StartAgain,
)
from shared.bus.consumer.dead_letters import DeadLetters, _timed_out_alone
from shared.bus.consumer.durables import (
    durables_of,
    partitioned_name,
    partitions_consumed,
    partitions_named,
)
from shared.bus.consumer.handlers import (
    Handler,
    Meanwhile,
    Merging,
    More,
    PermanentError,
    Preparing,
    Waiting,
)
from shared.bus.consumer.holds import GONE_CHECK_EVERY, NO_MESSAGE, Holds
from shared.bus.consumer.isolation import ISOLATION_GIVES_UP, Isolation
from shared.bus.consumer.items import _Item, _Prepared, _RowsMoved
from shared.bus.consumer.one_by_one import MOVED_AGAIN, OneByOne
from shared.bus.consumer.pacing import START_AGAIN_MAX_S, STREAM_RECHECK_S
from shared.bus.consumer.stats import ConsumerStats
from shared.bus.consumer.tracking import (
    APPLIED_POSITION,
    APPLIED_SEQ,
    BLOCK,
    FORGET_DONE_HOLDS,
    TRACK,
    TRACK_FIRST,
    TRACKING_DDL,
    Tracking,
    wait_for_position,
)

__all__ = [
    "APPLIED_POSITION", "APPLIED_SEQ", "BLOCK", "DECODE_SLICE", "FORGET_DONE_HOLDS",
    "GONE_CHECK_EVERY", "ISOLATION_GIVES_UP", "MOVED_AGAIN", "NO_MESSAGE", "REFUSED_KEY",
    "RETRYING_KEY", "RETRYING_SAID_AFTER_S", "START_AGAIN_MAX_S", "STREAM_RECHECK_S", "TRACK",
    "TRACKING_DDL", "TRACK_FIRST", "Batches", "Consumer", "ConsumerStats", "DeadLetters",
    "Handler", "Holds", "Isolation", "Meanwhile", "Merging", "More", "OneByOne",
    "PermanentError", "Preparing", "Tracking", "Waiting", "_Item", "_Prepared", "_RowsMoved",
    "_StartAgain", "_timed_out_alone",
    "durables_of", "partitioned_name", "partitions_consumed", "partitions_named",
    "wait_for_position",
]

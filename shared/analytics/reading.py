"""The log's raw messages in whole batches, read in this process or in a child process.

A :class:`LogReader` reads an ephemeral replay consumer with pipelined pull requests and hands
out :class:`Pulled` batches: ``batch_size`` messages scanned (fewer only at the end or when
nothing more comes within the wait), the kept ones' stream sequences, subjects and raw data,
nothing decoded. The consumer's own sequence numbers must follow each other; a gap (a message
the client dropped) restarts the consumer just after the last message handed out, as an
ordered consumer would.

:class:`ReaderProcess` runs a :class:`LogReader` in a child process and hands its batches over
a pipe, pickled: nats-py's reading (its parser, the message objects, the subscription's
dispatch: some 10 us a message, half of what reading and decoding cost) is then done on the
machine's other core while this process decodes and applies. The batches are the same either
way. At most a batch on the pipe and the puller's two requests are in flight (memory does not
grow with the log). The child ignores Ctrl-C (the parent ends it) and ends when its stdin
closes: when the parent closes it or goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import heapq
import os
import pickle
import signal
import sys
import threading
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from shared.bus.connection import connect_to, subject_matches
from shared.bus.pulling import Puller, sequences_and_pending
from shared.kernel.tasks import cancel_and_wait


class SubjectFilter:
    """Whether a subject matches any of the filters, remembered per subject (a stream has
    services x types x partitions of them)."""

    def __init__(self, patterns: Sequence[str]) -> None:
        self.patterns = list(patterns)
        self._seen: dict[str, bool] = {}

    def __call__(self, subject: str) -> bool:
        found = self._seen.get(subject)
        if found is None:
            if len(self._seen) > 100_000:
                self._seen.clear()
            found = self._seen[subject] = any(subject_matches(p, subject)
                                              for p in self.patterns)
        return found


@dataclass
class Pulled:
    """One batch as read: ``scanned`` messages up to ``last_seq``, of which those the subject
    filter kept (``seqs``, ``subjects``, ``data``). ``done``: the end of the replay."""

    scanned: int = 0
    last_seq: int = 0
    done: bool = False
    #: Consumers the reader restarted so far (after a gap, or when nothing came).
    restarts: int = 0
    seqs: list[int] = field(default_factory=list)
    subjects: list[str] = field(default_factory=list)
    data: list[bytes] = field(default_factory=list)


@dataclass(frozen=True)
class ReaderSpec:
    """What a reader needs to go on with a consumer another process created (picklable).
    With ``parts``, the consumers of one filter subject each whose messages are read merged
    in stream order (:class:`MergedReader`); ``consumer`` and ``filters`` are then unused.
    The servers and the stream by name, not the settings: unpickling those imported the
    settings' modules into the reader process (see ``shared.bus.connection``)."""

    nats_url: str
    stream: str
    consumer: str
    filters: tuple[str, ...]
    keep: tuple[str, ...] | None
    batch_size: int
    upto: int
    last_seq: int
    parts: tuple[ReaderSpec, ...] = ()
    #: How the reader signs in to NATS (``Settings.nats_credentials``), never shown.
    credentials: tuple[tuple[str, str], ...] = field(default=(), repr=False)


def replay_consumer_config(filters: Sequence[str], **policy: Any) -> ConsumerConfig:
    """An ephemeral replay consumer (no acks, in-memory state, removed by the server when its
    reader goes away); ``policy``: its deliver policy (all, by start sequence or time)."""
    subjects = (dict(filter_subject=filters[0]) if len(filters) == 1
                else dict(filter_subjects=list(filters)))
    return ConsumerConfig(
        ack_policy=AckPolicy.NONE, inactive_threshold=60.0, mem_storage=True,
        num_replicas=1, description="sixstep replay (ephemeral)",
        **(policy or dict(deliver_policy=DeliverPolicy.ALL)), **subjects)


class LogReader:
    """The raw batches of a replay consumer (created by the caller, deleted by ``close``)."""

    def __init__(self, nc: NATS, spec: ReaderSpec) -> None:
        self.nc = nc
        self.spec = spec
        self.consumer: str | None = spec.consumer
        self.last_seq = spec.last_seq
        self.restarts = 0
        self._keep = SubjectFilter(spec.keep) if spec.keep is not None else None
        self._sub: Puller | None = None
        self._expected_cseq = 1
        self._held: list[Msg] = []

    async def start(self) -> None:
        assert self.consumer is not None
        self._sub = Puller(self.nc, self.spec.stream, self.consumer,
                           self.spec.batch_size)
        await self._sub.start()
        self._expected_cseq = 1

    async def close(self) -> None:
        if self._sub is not None:
            await self._sub.stop()
            self._sub = None
        if self.consumer is not None:
            with contextlib.suppress(Exception):
                await self.nc.jetstream().delete_consumer(self.spec.stream,
                                                          self.consumer)
            self.consumer = None

    async def _restart(self) -> None:
        """A new consumer just after the last message handed out."""
        self.restarts += 1
        self._held = []
        await self.close()
        info = await self.nc.jetstream().add_consumer(
            self.spec.stream, replay_consumer_config(
                self.spec.filters, deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                opt_start_seq=self.last_seq + 1))
        self.consumer = info.name
        await self.start()

    async def _pending(self) -> int:
        assert self.consumer is not None
        info = await self.nc.jetstream().consumer_info(self.spec.stream,
                                                       self.consumer)
        return int(info.num_pending)

    async def _take(self) -> list[Msg]:
        """A whole batch (``batch_size`` messages) unless the end comes first or nothing more
        comes within the wait: batches do not depend on how the server's replies arrive (a
        read model's handler may fold a batch differently from two halves of it)."""
        assert self._sub is not None
        size, upto = self.spec.batch_size, self.spec.upto
        msgs, self._held = self._held, []
        while len(msgs) < size:
            if msgs:
                seq, _, pending = sequences_and_pending(msgs[-1])
                if pending == 0 or seq >= upto:
                    break
            more = await self._sub.take(timeout=2.0)
            if not more:
                break
            msgs += more
        msgs, self._held = msgs[:size], msgs[size:]
        return msgs

    async def batches(self) -> AsyncIterator[Pulled]:
        if self._sub is None:
            return
        keep, upto = self._keep, self.spec.upto
        idle = 0
        done = False
        while not done:
            msgs = await self._take()
            if not msgs:
                if self.last_seq >= upto or await self._pending() == 0:
                    yield Pulled(last_seq=self.last_seq, done=True, restarts=self.restarts)
                    return
                idle += 1
                if idle >= 3:
                    await self._restart()
                    idle = 0
                continue
            idle = 0
            out = Pulled()
            seqs, subjects, data = out.seqs, out.subjects, out.data
            gap = False
            for msg in msgs:
                seq, cseq, pending = sequences_and_pending(msg)
                if cseq != self._expected_cseq:
                    gap = True
                    break
                if seq > upto:
                    done = True
                    break
                self._expected_cseq += 1
                self.last_seq = seq
                out.scanned += 1
                if pending == 0:
                    done = True
                if keep is not None and not keep(msg.subject):
                    continue
                seqs.append(seq)
                subjects.append(msg.subject)
                data.append(msg.data)
            out.last_seq = self.last_seq
            out.restarts = self.restarts
            if self.last_seq >= upto:
                done = True
            out.done = done
            if out.scanned or done:
                yield out
            if gap:
                await self._restart()


class MergedReader:
    """The batches of several consumers of one filter subject each (disjoint filters),
    merged in stream order: the batches one consumer of all the filters would give
    (``batch_size`` messages each, the last one shorter). nats-server reads a consumer of
    several filter subjects at some 60 us of its CPU a message delivered, matching every
    message of the stream against them all; one filter subject at 10-20 (a sparse read model's
    three event types, ``benchmarks`` 2026-12-04). Each part restarts after a gap by itself,
    just after what it handed out."""

    def __init__(self, nc: NATS, spec: ReaderSpec) -> None:
        self.spec = spec
        self.parts = [LogReader(nc, part) for part in spec.parts]

    @property
    def restarts(self) -> int:
        return sum(part.restarts for part in self.parts)

    async def start(self) -> None:
        for part in self.parts:
            await part.start()

    async def close(self) -> None:
        for part in self.parts:
            await part.close()

    async def batches(self) -> AsyncIterator[Pulled]:
        size = self.spec.batch_size
        sources = [part.batches() for part in self.parts]
        # Per part its messages read and not yet handed out, (seq, subject, data) in order
        # from ``at[i]`` on; ``heads``: (seq, part) of every part's next message (a heap).
        held: list[list[tuple[int, str, bytes]]] = [[] for _ in self.parts]
        at = [0] * len(self.parts)
        ended = [False] * len(self.parts)
        heads: list[tuple[int, int]] = []

        async def next_of(i: int) -> None:
            """Part ``i``'s next message onto ``heads``, read first if need be."""
            while at[i] >= len(held[i]) and not ended[i]:
                pulled = await anext(sources[i], None)
                if pulled is None:
                    ended[i] = True
                    break
                held[i] = list(zip(pulled.seqs, pulled.subjects, pulled.data, strict=True))
                at[i] = 0
                ended[i] = pulled.done
            if at[i] < len(held[i]):
                heapq.heappush(heads, (held[i][at[i]][0], i))

        last_seq = self.spec.last_seq
        out = Pulled()
        try:
            for i in range(len(self.parts)):
                await next_of(i)
            while heads:
                last_seq, i = heapq.heappop(heads)
                _, subject, data = held[i][at[i]]
                at[i] += 1
                out.seqs.append(last_seq)
                out.subjects.append(subject)
                out.data.append(data)
                out.scanned += 1
                await next_of(i)
                if out.scanned >= size:
                    out.last_seq, out.restarts = last_seq, self.restarts
                    yield out
                    out = Pulled()
            out.last_seq, out.done, out.restarts = last_seq, True, self.restarts
            yield out
        finally:
            for source in sources:
                with contextlib.suppress(Exception):
                    await source.aclose()


def open_reader(nc: NATS, spec: ReaderSpec) -> LogReader | MergedReader:
    """The reader a spec asks for: one consumer's, or several merged."""
    return MergedReader(nc, spec) if spec.parts else LogReader(nc, spec)


# -- the reader in a child process ------------------------------------------------------------

#: The frames on the child's pipe: an 8-byte length, then a pickled :class:`Pulled`.
_LENGTH = 8
#: Linux ``fcntl`` F_SETPIPE_SZ: a pipe holding a whole batch takes one write, not sixteen.
_SET_PIPE_SIZE = 1031
#: Where ``shared`` is imported from, for the child's ``python -m``.
_ROOT = str(Path(__file__).resolve().parents[2])


class ReaderProcess:
    """A :class:`LogReader` in a child process (``python -m shared.analytics.reading``, which
    imports only what reading needs): ``await rp.start()``, ``async for pulled in
    rp.batches()``, ``await rp.close()``. The spec goes to the child on its stdin, the
    batches come back on its stdout; closing its stdin (or this process ending) ends it.

    The child's stdout has one reader, this object's own task (``_read_frames``): it reads a
    frame when ``batches()`` asks for one (one batch read ahead at most, as before), and after
    ``close`` reads and drops what the child still sends, so a child blocked writing to a
    full pipe can always end. Before, ``close`` drained the pipe itself, and gave up when
    another coroutine was reading it (asyncio allows one): the child, stuck in its write,
    was terminated 5 s later. One ``batches()`` at a time; a second is refused."""

    def __init__(self, spec: ReaderSpec) -> None:
        self.spec = spec
        self.finished = False
        self._proc: asyncio.subprocess.Process | None = None
        self._frames: asyncio.Queue[Pulled | BaseException | None] = asyncio.Queue()
        self._asked = asyncio.Event()
        self._closing = False
        self._taking = False
        self._reading: asyncio.Task[None] | None = None

    async def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            p for p in (_ROOT, os.environ.get("PYTHONPATH")) if p)}
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "shared.analytics.reading", stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, env=env, limit=2**21)
        assert self._proc.stdin is not None
        spec = pickle.dumps(self.spec, protocol=pickle.HIGHEST_PROTOCOL)
        self._proc.stdin.write(len(spec).to_bytes(_LENGTH, "big") + spec)
        await self._proc.stdin.drain()
        self._reading = asyncio.ensure_future(self._read_frames(self._proc))

    async def _read_frames(self, proc: asyncio.subprocess.Process) -> None:
        """The only reader of the child's stdout: a frame each time ``batches()`` asks, into
        ``_frames``; once closing, every frame, dropped, until the child's end. At its end it
        puts what ends ``batches()``: None (closed, or the replay done), or the error."""
        out = proc.stdout
        assert out is not None
        try:
            while True:
                if not self._closing:
                    await self._asked.wait()
                    self._asked.clear()
                size = int.from_bytes(await out.readexactly(_LENGTH), "big")
                frame = await out.readexactly(size)
                if self._closing:
                    continue  # read and dropped: the child is never stuck writing
                pulled: Pulled = pickle.loads(frame)
                self._frames.put_nowait(pulled)
                if pulled.done:
                    return
        except asyncio.IncompleteReadError:
            code = await proc.wait()
            self._frames.put_nowait(None if self._closing else RuntimeError(
                "the replay's reader process ended before the replay did"
                f" (exit code {code})"))
        except BaseException as exc:
            self._frames.put_nowait(None if self._closing else exc)
            raise

    async def batches(self) -> AsyncIterator[Pulled]:
        """The child's batches, in order, until the replay is done (or ``close``)."""
        assert self._reading is not None, "start() first"
        if self._taking:
            raise RuntimeError("the reader process's batches are already being taken")
        self._taking = True
        try:
            while not self.finished:
                self._asked.set()
                got = await self._frames.get()
                if got is None:
                    return
                if isinstance(got, BaseException):
                    raise got
                self.finished = got.done
                yield got
        finally:
            self._taking = False

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    async def close(self) -> None:
        """End the child: it sees its stdin close, stops reading, deletes its consumer and
        exits; one that does not within a few seconds is terminated (the server then drops
        its consumer after the inactivity threshold). What it still sends is read and
        dropped (``_read_frames``), whoever is waiting on ``batches()``; that waits no more."""
        self._closing = True
        self._asked.set()
        self._frames.put_nowait(None)  # a ``batches()`` waiting now ends
        proc = self._proc
        try:
            if proc is None or proc.returncode is not None:
                return
            if proc.stdin is not None:
                with contextlib.suppress(Exception):
                    proc.stdin.close()
            for end in (None, proc.terminate, proc.kill):
                if end is not None:
                    with contextlib.suppress(ProcessLookupError):
                        end()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(5.0):
                        await proc.wait()
                        return
        finally:
            if self._reading is not None:
                await cancel_and_wait(self._reading)


def main() -> None:
    """The child: a spec on stdin, frames of batches on stdout until the replay ends or
    stdin closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the parent, which ends us
    spec: ReaderSpec = pickle.loads(_read_exactly(0, int.from_bytes(_read_exactly(0, _LENGTH),
                                                                    "big")))
    out = os.dup(1)  # the frames' own descriptor; anything printed goes to stderr instead
    os.dup2(2, 1)
    with contextlib.suppress(OSError):
        fcntl.fcntl(out, _SET_PIPE_SIZE, 2**20)
    with contextlib.suppress(BrokenPipeError, asyncio.CancelledError, KeyboardInterrupt):
        asyncio.run(_serve(spec, out))


async def _serve(spec: ReaderSpec, out: int) -> None:
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None

    def watch_stdin() -> None:  # EOF: the parent closed it, or is gone
        while os.read(0, 65536):
            pass
        loop.call_soon_threadsafe(task.cancel)

    threading.Thread(target=watch_stdin, daemon=True, name="parent-watch").start()
    sending = ThreadPoolExecutor(1, thread_name_prefix="reader-send")
    # The batches carry each message's subject and bytes: its header lines are not read.
    nc = await connect_to(spec.nats_url, "sixstep-replay-reader", headers=False,
                          **dict(spec.credentials))
    reader = open_reader(nc, spec)
    try:
        await reader.start()
        async for pulled in reader.batches():
            payload = pickle.dumps(pulled, protocol=pickle.HIGHEST_PROTOCOL)
            # Written from a thread: the puller's next batch arrives meanwhile.
            await loop.run_in_executor(sending, _write_all, out,
                                       len(payload).to_bytes(_LENGTH, "big") + payload)
            if pulled.done:
                break
    finally:
        sending.shutdown(wait=False)
        with contextlib.suppress(Exception):
            await reader.close()
        with contextlib.suppress(Exception):
            await nc.close()


def _read_exactly(fd: int, n: int) -> bytes:
    out = bytearray()
    while len(out) < n:
        got = os.read(fd, n - len(out))
        if not got:
            raise EOFError("the parent closed the pipe before the spec was read")
        out += got
    return bytes(out)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


if __name__ == "__main__":
    # Under its own name, so that what it pickles is read back as shared.analytics.reading's.
    from shared.analytics.reading import main as reader_main

    reader_main()

"""An analyst replays the center's history: all of it, a slice of it, and after a Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from pathlib import Path

import orjson
import psutil
import pytest

from shared.analytics import replay as replay_module
from shared.analytics.checkpoint import Checkpoint
from shared.analytics.reading import MergedReader, ReaderProcess
from shared.analytics.replay import Batch, Replay, Selection
from shared.bus.jetstream import connect, ensure_streams, event_subject
from shared.settings import Settings
from tests.analytics.support import (
    HUAMU,
    LUJIAZUI,
    CaseStory,
    at,
    month_of_march_stories,
    publish,
)


async def replay_all(settings: Settings, selection: Selection | None = None,
                     **kw: object) -> list[tuple[int, int, object]]:
    out = []
    async with Replay(settings, selection, **kw) as replay:  # type: ignore[arg-type]
        async for batch in replay:
            out += list(zip(batch.seqs, batch.stored_versions, batch.events, strict=True))
    return out


async def test_replay_reads_the_whole_log_in_order_and_upcasts_old_events(
        settings: Settings) -> None:
    stories = month_of_march_stories()
    published = await publish(settings, stories)

    replayed = await replay_all(settings, batch_size=7)
    assert len(replayed) == published
    seqs = [s for s, _, _ in replayed]
    assert seqs == sorted(seqs) and seqs[0] == 1 and seqs[-1] == published

    # One Lujiazui visit was recorded under ConcernsNoted v1, before v2 said whether the
    # emotion needs defusing: it is read as v2, and the stored version is still known.
    v1_case = next(s for s in stories if s.concerns_v1).case_id
    concerns = [(v, e) for _, v, e in replayed
                if e.type == "ConcernsNoted" and e.case_id == v1_case]  # type: ignore[attr-defined]
    [(stored, envelope)] = concerns
    assert stored == 1 and envelope.version == 2  # type: ignore[attr-defined]
    assert envelope.payload["needs_defusing"] is True  # type: ignore[attr-defined]
    assert envelope.payload["urgency"] == "high"  # type: ignore[attr-defined]


async def test_replay_selects_by_type_center_case_and_moment(settings: Settings) -> None:
    stories = month_of_march_stories()
    await publish(settings, stories)

    opened = await replay_all(settings, Selection(types=("CaseOpened",)))
    assert len(opened) == len(stories)

    lujiazui = await replay_all(settings, Selection(centers=(LUJIAZUI,),
                                                   types=("CaseResolved",)))
    assert len(lujiazui) == 3
    assert {e.center_id for _, _, e in lujiazui} == {LUJIAZUI}  # type: ignore[attr-defined]

    one = stories[3]
    case = await replay_all(settings, Selection(cases=(one.case_id,)))
    assert [e.aggregate_version for _, _, e in case] == [1, 2, 3, 4, 5]  # type: ignore[attr-defined]

    # From a date on the center's clock: 3 March only (the stream itself was written today,
    # so the server-side start time cannot skip anything: the filter is exact).
    march_3 = await replay_all(settings, Selection(
        since=at("2026-03-03", 0), until=at("2026-03-03", 23, 59), clock="occurred",
        centers=(HUAMU,), types=("CaseOpened",)))
    assert len(march_3) == 2


async def test_a_stopped_replay_resumes_from_its_checkpoint(settings: Settings,
                                                            tmp_path: Path) -> None:
    published = await publish(settings, month_of_march_stories())
    selection = Selection(services=("intake",))
    mark = Checkpoint(tmp_path / "cp.json", stream=settings.stream_name,
                      selection=selection.fingerprint())
    stop = asyncio.Event()
    first: list[int] = []
    async with Replay(settings, selection, batch_size=10, stop=stop) as replay:
        async for batch in replay:
            first += batch.seqs
            mark.save(batch.last_seq)
            if len(first) >= 20:
                stop.set()  # what the first Ctrl-C does
    assert replay.stopped and len(first) == 20

    state = mark.load()
    assert state is not None and state["seq"] == 20
    rest = await replay_all(settings, selection, from_seq=state["seq"] + 1, batch_size=10)
    assert first + [s for s, _, _ in rest] == list(range(1, published + 1))


async def test_ctrl_c_stops_the_command_cleanly_and_a_rerun_resumes(settings: Settings,
                                                                    tmp_path: Path) -> None:
    stories = [CaseStory(HUAMU, "SA-HARDSHIP-SUBSIDY", at("2026-03-02", 9, m))
               for m in range(60)]
    published = await publish(settings, stories)
    out = tmp_path / "events.jsonl"
    env = {**os.environ, "NATS_URL": settings.nats_url, "STREAM_NAME": settings.stream_name,
           "SUBJECT_PREFIX": settings.subject_prefix, "PARTITIONS": str(settings.partitions),
           "COLUMNS": "120"}
    args = [str(Path(sys.executable).with_name("sixstep")), "replay", "--out", str(out),
            "--batch", "10", "--max-rate", "150"]
    checkpoint = tmp_path / "events.jsonl.checkpoint.json"

    proc = await asyncio.create_subprocess_exec(*args, env=env, stderr=asyncio.subprocess.PIPE)
    for _ in range(400):
        if checkpoint.exists():
            break
        await asyncio.sleep(0.025)
    proc.send_signal(signal.SIGINT)
    _, stderr = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 130, stderr.decode()
    assert b"run the same command again to resume" in stderr
    stopped_at = orjson.loads(checkpoint.read_bytes())["seq"]
    assert 0 < stopped_at < published

    again = await asyncio.create_subprocess_exec(*args, env=env, stderr=asyncio.subprocess.PIPE)
    _, stderr = await asyncio.wait_for(again.communicate(), 60)
    assert again.returncode == 0, stderr.decode()
    assert b"resuming after stream sequence" in stderr
    lines = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert [line["stream_seq"] for line in lines] == list(range(1, published + 1))


def as_compared(batch: Batch) -> tuple[object, ...]:
    return (batch.first_seq, batch.last_seq, batch.scanned, batch.seqs, batch.subjects,
            batch.stored_versions, [e.model_dump() for e in batch.events],
            batch.undecodable, batch.undecodable_subjects)


async def test_a_replay_read_in_a_child_process_hands_out_the_same_batches(
        settings: Settings) -> None:
    """``reader="process"``: the messages are read in a child process and decoded here; the
    batches (their ends, events, versions and subjects) are those of the one-process read,
    with a selection narrowed on the client too, and the child is gone after the replay."""
    await publish(settings, month_of_march_stories())
    for selection in (None, Selection(centers=(LUJIAZUI,)),
                      Selection(services=("intake", "feedback"))):
        got: dict[str, list[tuple[object, ...]]] = {}
        for reader in ("inline", "process"):
            async with Replay(settings, selection, batch_size=7,
                              reader=reader) as replay:  # type: ignore[arg-type]
                assert replay.in_child == (reader == "process")
                got[reader] = [as_compared(b) async for b in replay]
                source = replay._source
            assert replay.last_seq == got[reader][-1][1]
            if isinstance(source, ReaderProcess):
                assert not source.running
        assert got["process"] == got["inline"] and got["inline"], selection


async def test_a_selection_of_a_few_event_types_is_read_one_consumer_each_in_the_same_batches(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """A read model's few event types (feedback.people's) are read through one consumer per
    type, merged in stream order, in this process or the child: the batches one consumer of
    all the types gives, and no consumer is left on the stream."""
    await publish(settings, month_of_march_stories())
    selection = Selection(types=("CaseOpened", "ConcernsNoted", "CaseResolved"))
    monkeypatch.setattr(replay_module, "COVER_AT_MOST", 0.0)  # as on a long log: exact filters
    got: dict[tuple[str, int], list[tuple[object, ...]]] = {}
    for split in (replay_module.SPLIT_AT_MOST, 1):
        monkeypatch.setattr(replay_module, "SPLIT_AT_MOST", split)
        for reader in ("inline", "process"):
            async with Replay(settings, selection, batch_size=7,
                              reader=reader) as replay:  # type: ignore[arg-type]
                if reader == "inline":
                    assert isinstance(replay._source, MergedReader) == (split > 1)
                got[reader, split] = [as_compared(b) async for b in replay]
            assert replay.last_seq == got[reader, split][-1][1]
    one = got["inline", 1]
    assert len(one) > 3 and all(batches == one for batches in got.values())
    nc = await connect(settings, "test")
    try:
        left = await nc.jetstream().consumers_info(settings.stream_name)
    finally:
        await nc.close()
    assert left == []


async def test_a_replay_read_in_a_child_process_stops_and_resumes(settings: Settings) -> None:
    """The stop (what Ctrl-C sets) ends the replay after the batch in hand, the child process
    with it, and a rerun from the last sequence handed out reads the rest, once."""
    published = await publish(settings, month_of_march_stories())
    stop = asyncio.Event()
    first: list[int] = []
    async with Replay(settings, batch_size=10, stop=stop, reader="process") as replay:
        async for batch in replay:
            first += batch.seqs
            if len(first) >= 20:
                stop.set()
        source = replay._source
    assert isinstance(source, ReaderProcess) and not source.running
    assert replay.stopped and first == list(range(1, 21))
    # The rerun given its server as a deployment gives it, a user and password in the URL:
    # the reader process connects with them (it is handed the URL, not the settings).
    deployed = settings.model_copy(update={"nats_url": settings.nats_url.replace(
        "nats://", "nats://reader:secret@")})
    rest = await replay_all(deployed, from_seq=replay.last_seq + 1, batch_size=10,
                            reader="process")
    assert first + [s for s, _, _ in rest] == list(range(1, published + 1))
    # A stream not there is named with its server, not with the server's password.
    with pytest.raises(replay_module.NoSuchStream) as missing:
        await replay_all(deployed.model_copy(update={"stream_name": "ELSEWHERE"}))
    assert "reader:***@" in str(missing.value) and "secret" not in str(missing.value)


async def test_ctrl_c_in_a_long_replay_read_in_a_child_ends_the_child_at_once(
        settings: Settings) -> None:
    """A long log read in a child runs ahead of the analyst's process until the pipe between
    them is full; stopped then, the child ends as soon as it is told (its last write read and
    dropped), not terminated after waiting for it 10 s."""
    nc = await connect(settings, "test-long-log")
    try:
        js = nc.jetstream()
        await ensure_streams(js, settings)
        garbled = b"{not json" + b"x" * 2000  # 6 MB: more than the pipe and the reading buffer
        await asyncio.gather(*(js.publish(event_subject(
            settings, "intake", "CaseOpened", uuid.uuid4()), garbled) for _ in range(3000)))
    finally:
        await nc.close()
    stop = asyncio.Event()
    async with Replay(settings, batch_size=50, stop=stop, reader="process") as replay:
        source = replay._source
        assert isinstance(source, ReaderProcess) and source.pid is not None
        async for _ in replay:
            await full_pipe(source.pid)
            stop.set()
    # It ended by itself (0): one that did not would have been terminated (-15) after 5 s.
    assert source._proc is not None and source._proc.returncode == 0


async def full_pipe(pid: int) -> None:
    """Wait until a thread of process ``pid`` is blocked writing to a full pipe (Linux)."""
    deadline = asyncio.get_running_loop().time() + 10
    while not any("pipe_write" in (Path(f"/proc/{pid}/task") / t / "wchan").read_text()
                  for t in os.listdir(f"/proc/{pid}/task")):
        assert asyncio.get_running_loop().time() < deadline, "the reader never filled the pipe"
        await asyncio.sleep(0.01)


ORPHANED = """
import asyncio, os, sys
from shared.analytics.replay import Replay
from shared.settings import Settings

async def main() -> None:
    replay = Replay(Settings(), batch_size=5, reader="process")
    await replay.__aenter__()
    async for _ in replay:
        print(replay._source.pid, flush=True)
        os._exit(9)  # gone without closing anything, as after kill -9

asyncio.run(main())
"""


async def test_the_reader_process_ends_when_the_replay_process_is_gone(
        settings: Settings) -> None:
    await publish(settings, month_of_march_stories())
    env = {**os.environ, "NATS_URL": settings.nats_url, "STREAM_NAME": settings.stream_name,
           "SUBJECT_PREFIX": settings.subject_prefix, "PARTITIONS": str(settings.partitions)}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", ORPHANED, env=env,
                                                stdout=asyncio.subprocess.PIPE)
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 9
    # Its stdin closed with its parent: it stops reading, drops its consumer and exits.
    pid, deadline = int(out), asyncio.get_running_loop().time() + 30
    while not ended(pid):
        assert asyncio.get_running_loop().time() < deadline, "the reader process lives on"
        await asyncio.sleep(0.05)


def ended(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def test_the_reader_child_ends_by_itself_when_closed_while_its_batches_are_being_read(
        settings: Settings) -> None:
    """The replay's loop waits on the child's next batch (a frame larger than the pipe and
    the reading buffer, partly read) when another task closes the reader, and that loop is then
    cancelled (Ctrl-C): the child's stdout has one reader, the reader's own, which goes on
    reading and dropping, so the child ends by itself (exit 0). Before, the close's drain
    gave up because another coroutine was reading the pipe, the cancelled loop read no more,
    and the child, stuck in its write, was terminated 5 s later."""
    nc = await connect(settings, "test-big-frames")
    try:
        js = nc.jetstream()
        await ensure_streams(js, settings)
        garbled = b"{not json" + b"x" * 60_000  # 300 a batch: 18 MB frames
        for _ in range(3):
            await asyncio.gather(*(js.publish(event_subject(
                settings, "intake", "CaseOpened", uuid.uuid4()), garbled) for _ in range(300)))
    finally:
        await nc.close()
    async with Replay(settings, batch_size=300, reader="process") as replay:
        source = replay._source
        assert isinstance(source, ReaderProcess) and source.pid is not None
        go = asyncio.Event()
        taken: list[int] = []

        async def replay_loop() -> None:
            async for pulled in source.batches():
                taken.append(len(pulled.seqs))
                await go.wait()
                go.clear()

        loop = asyncio.create_task(replay_loop())
        while not taken:  # the first batch taken ...
            await asyncio.sleep(0.01)
        await full_pipe(source.pid)  # ... and the child ahead until blocked
        go.set()  # the loop asks for the next batch: part of it is there ...
        out = source._proc.stdout if source._proc is not None else None
        assert out is not None
        while getattr(out, "_waiter", None) is None:  # ... the pipe read waits for the rest
            await asyncio.sleep(0)
        closing = asyncio.create_task(source.close())  # Ctrl-C's handler
        for _ in range(5):
            await asyncio.sleep(0)
        loop.cancel()  # ... and the loop goes with Ctrl-C
        await asyncio.wait((loop,))
        await closing
        assert taken == [300]
        assert source._proc is not None and source._proc.returncode == 0

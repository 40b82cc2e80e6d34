"""A replay is remembered per event stream, not per sequence alone: a stream deleted and made
again numbers its events from 1 again, and the dead letter of its first event was taken for
the old stream's first (replayed before): reported as already applied, deleted, and never
applied. Within the dead-letter stream's duplicate window the server dropped that letter
outright, its message id being the old one's."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from shared.bus.consumer import TRACKING_DDL
from shared.bus.deadletters import (
    REPLAY_DDL,
    DeadLetter,
    _first_replay,
    repeats,
    replay_dead_letters,
)
from shared.bus.jetstream import publish_dead_letter
from shared.settings import Settings
from tests.faults.test_consumer_recovery import Recorder
from tests.intake.test_log_guarantees import open_and_hear, run_relay, stream_made, write_side
from tests.support import bus_connection, schema_pool, stream_messages


async def test_the_first_event_of_a_stream_made_anew_is_replayed_though_the_old_first_was(
        settings: Settings) -> None:
    async with write_side(settings) as side:
        await open_and_hear(side, 1)  # CaseOpened, RequestHeard
        await run_relay(settings, side, 2)
    async with schema_pool(settings, "again", [*TRACKING_DDL, *REPLAY_DDL]) as pool, \
            bus_connection(settings, "again") as nc:
        js = nc.jetstream()
        opened, heard = await stream_messages(settings)
        await publish_dead_letter(js, settings, "again", seq=1, subject=opened.subject,
                                  data=opened.data, reason="failed for good", tries=5)
        recorder = Recorder()
        report = await replay_dead_letters(nc, pool, settings, "again", recorder)
        assert len(report.replayed) == 1

        # Disaster recovery: the stream made anew; its first event is another one.
        await js.delete_stream(settings.stream_name)
        await stream_made(settings)
        await js.publish(heard.subject, heard.data)
        await publish_dead_letter(js, settings, "again", seq=1, subject=heard.subject,
                                  data=heard.data, reason="failed for good", tries=5)
        report = await replay_dead_letters(nc, pool, settings, "again", recorder)
        assert len(report.replayed) == 1 and not report.already_applied, report
        assert recorder.applied == ["CaseOpened", "RequestHeard"]
        assert await pool.fetchval("SELECT count(DISTINCT stream_created) FROM"
                                   " consumer_replays") == 2


def _letter(seq: int, created: datetime | None) -> DeadLetter:
    return DeadLetter(seq=seq, consumer="figures", reason="", subject="", stream_seq=3,
                      delivered=5, data=b"", stream_created=created)


def test_letters_of_the_same_sequence_on_two_streams_are_no_repeats() -> None:
    old = datetime(2026, 12, 20, tzinfo=UTC)
    new = old + timedelta(days=1)
    assert repeats([_letter(1, old), _letter(2, new), _letter(3, new)]) == {3: 2}
    # a letter of an older version says no stream: taken for whichever came first
    assert repeats([_letter(1, None), _letter(2, new)]) == {2: 1}


async def test_the_replays_of_an_older_version_are_kept_and_take_a_second_stream(
        settings: Settings) -> None:
    older = ["CREATE TABLE IF NOT EXISTS consumer_replays ("
             " consumer text NOT NULL, stream_seq bigint NOT NULL, dlq_seq bigint NOT NULL,"
             " replayed_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (consumer, stream_seq))",
             "INSERT INTO consumer_replays (consumer, stream_seq, dlq_seq)"
             " VALUES ('figures', 3, 1)"]
    async with schema_pool(settings, "upgraded", [*older, *REPLAY_DDL, *REPLAY_DDL]) as pool:
        made = datetime(2026, 12, 31, 15, 30, tzinfo=UTC)
        await pool.execute("INSERT INTO consumer_replays VALUES ('figures', 3, 2, now(), $1)",
                           made)
        assert await pool.fetchval("SELECT count(*) FROM consumer_replays") == 2


async def test_a_replay_recorded_before_the_upgrade_is_not_taken_for_a_newer_streams(
        settings: Settings) -> None:
    """A replay of an older version (no stream said) at sequence 3, on 18 December; the
    stream made anew on 20 December, its event at sequence 3 dead-lettered: replayed, not
    reported as already applied. A replay said nothing about recorded after the stream was
    made may be of its event: still taken for it."""
    made = datetime(2026, 12, 20, 2, tzinfo=UTC)
    async with schema_pool(settings, "upgraded", REPLAY_DDL) as pool:
        await pool.execute("INSERT INTO consumer_replays (consumer, stream_seq, dlq_seq,"
                           " replayed_at) VALUES ('figures', 3, 1, $1)", made - timedelta(days=2))
        letter = dataclasses.replace(_letter(7, made), dead_at=made + timedelta(hours=1))
        async with pool.acquire() as conn, conn.transaction():
            assert await _first_replay(conn, letter)
        await pool.execute("INSERT INTO consumer_replays (consumer, stream_seq, dlq_seq,"
                           " replayed_at) VALUES ('figures', 4, 2, $1)", made + timedelta(hours=2))
        async with pool.acquire() as conn, conn.transaction():
            assert not await _first_replay(conn, dataclasses.replace(letter, stream_seq=4))
    # an old letter (no stream said) dead before a letter's stream was made is no repeat
    old = dataclasses.replace(_letter(1, None), dead_at=made - timedelta(days=1))
    assert repeats([old, _letter(2, made)]) == {}
